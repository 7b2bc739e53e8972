/**
 * A physical streaming replica of a throwaway PostgreSQL (test/helpers/postgres.ts): `pg_basebackup -R` of the
 * primary into a temporary folder, then a hot standby on a free 127.0.0.1 port, run as the postgres user when
 * we are root. Stopped by its PID and the folder removed. The primary must have full_page_writes on
 * (pg_basebackup refuses otherwise) and be started with the same `settings` (a standby needs at least the
 * primary's max_connections).
 */
import { execFileSync, spawn } from 'node:child_process';
import { chownSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, pgCommand, waitReady, type TempPostgres } from './postgres.js';

export interface TempStandby {
  readonly port: number;
  readonly pid: number;
  urlFor(database: string): string;
  /** Fast shutdown; resolves once the process is gone. Safe to call twice. */
  stop(): Promise<void>;
}

export async function startStandby(primary: TempPostgres, settings: Record<string, string>): Promise<TempStandby> {
  const dir = mkdtempSync(join(tmpdir(), 'starling-pg-standby-'));
  const data = join(dir, 'data');
  try {
    if (process.getuid?.() === 0) {
      const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
      const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
      chownSync(dir, uid, gid);
    }
    const [bb, bbArgs] = pgCommand('pg_basebackup', ['-D', data, '-R', '-X', 'stream', '-c', 'fast', '-h', '127.0.0.1', '-p', String(primary.port), '-U', 'postgres', '--no-sync']);
    execFileSync(bb, bbArgs, { stdio: ['ignore', 'ignore', 'pipe'], timeout: 60_000 });
    for (let attempt = 0; ; attempt++) {
      const port = await freePort();
      const all = { ...settings, listen_addresses: '127.0.0.1', hot_standby: 'on', log_min_messages: 'warning', logging_collector: 'off' };
      const [bin, args] = pgCommand('postgres', ['-D', data, '-p', String(port), '-k', dir, ...Object.entries(all).flatMap(([k, v]) => ['-c', `${k}=${v}`])]);
      let log = '';
      const p = spawn(bin, args, { stdio: ['ignore', 'ignore', 'pipe'] });
      p.stderr!.on('data', (d) => (log = (log + d).slice(-4000)));
      try {
        await waitReady(`postgres://postgres@127.0.0.1:${port}/postgres`, p, () => log);
      } catch (err) {
        if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
        if (attempt < 3 && /could not bind|already in use/i.test(log)) continue;
        throw err;
      }
      const exited = new Promise<void>((r) => (p.exitCode !== null || p.signalCode !== null ? r() : p.once('exit', () => r())));
      return {
        port,
        pid: p.pid!,
        urlFor: (database) => `postgres://postgres@127.0.0.1:${port}/${encodeURIComponent(database)}`,
        async stop() {
          if (p.exitCode === null && p.signalCode === null) process.kill(p.pid!, 'SIGINT');
          const timer = setTimeout(() => p.exitCode === null && p.signalCode === null && process.kill(p.pid!, 'SIGKILL'), 10_000);
          await exited;
          clearTimeout(timer);
          rmSync(dir, { recursive: true, force: true });
        },
      };
    }
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}
