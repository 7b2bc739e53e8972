/**
 * A physical streaming replica of a throwaway PostgreSQL (test/helpers/postgres.ts): `pg_basebackup -R` of the
 * primary into a temporary folder, then a hot standby on a free 127.0.0.1 port, run as the postgres user when
 * we are root. Stopped by its PID and the folder removed. The primary must have full_page_writes on
 * (pg_basebackup refuses otherwise) and be started with the same `settings` (a standby needs at least the
 * primary's max_connections).
 */
import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { ownedTempDir, pgCommand, runPostgres, type TempPostgres } from './postgres.js';

export interface TempStandby {
  readonly port: number;
  readonly pid: number;
  urlFor(database: string): string;
  /** Fast shutdown; resolves once the process is gone. Safe to call twice. */
  stop(): Promise<void>;
}

export async function startStandby(primary: TempPostgres, settings: Record<string, string>): Promise<TempStandby> {
  const dir = ownedTempDir('starling-pg-standby-');
  const data = join(dir, 'data');
  try {
    const [bb, bbArgs] = pgCommand('pg_basebackup', ['-D', data, '-R', '-X', 'stream', '-c', 'fast', '-h', '127.0.0.1', '-p', String(primary.port), '-U', 'postgres', '--no-sync']);
    execFileSync(bb, bbArgs, { stdio: ['ignore', 'ignore', 'pipe'], timeout: 60_000 });
    return await runPostgres(data, dir, { ...settings, hot_standby: 'on' });
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}
