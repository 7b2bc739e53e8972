/**
 * A throwaway PostgreSQL for tests: `initdb` in a temporary folder, the
 * postmaster on a free 127.0.0.1 port (and a socket in that folder), stopped by
 * its PID and the folder removed afterwards. PostgreSQL refuses to run as
 * root, so as root it runs as the `postgres` user (setpriv) in a folder that
 * user owns.
 *
 * One server per test run (test/helpers/postgres-setup.ts, a vitest
 * globalSetup); each test server gets a fresh database cloned from a migrated
 * template (`CREATE DATABASE … TEMPLATE`), which takes milliseconds where
 * running the migrations would take a second.
 *
 * Durability is off (fsync, synchronous_commit, full_page_writes): these
 * servers hold nothing worth keeping, and the suite runs several times faster.
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import postgres from 'postgres';

export const PG_BIN = process.env.STARLING_PG_BIN ?? '/usr/lib/postgresql/15/bin';

/** Null when PostgreSQL can be used here, else why not. */
export function postgresMissing(): string | null {
  for (const b of ['initdb', 'postgres']) if (!existsSync(join(PG_BIN, b))) return `${join(PG_BIN, b)} not found (apt-get install postgresql, or set STARLING_PG_BIN)`;
  if (process.getuid?.() === 0) {
    try {
      execFileSync('id', ['-u', 'postgres'], { stdio: 'ignore' });
    } catch {
      return 'running as root and there is no postgres user to run PostgreSQL as';
    }
  }
  return null;
}

export interface TempPostgres {
  /** Superuser URL of the `postgres` database. */
  readonly url: string;
  readonly port: number;
  readonly pid: number;
  /** The same server, another database. */
  urlFor(database: string): string;
  stop(): Promise<void>;
}

const asRoot = () => process.getuid?.() === 0;

/** Runs a PostgreSQL binary, as the postgres user when we are root. */
export function pgCommand(bin: string, args: string[]): [string, string[]] {
  const path = join(PG_BIN, bin);
  return asRoot() ? ['setpriv', ['--reuid=postgres', '--regid=postgres', '--init-groups', path, ...args]] : [path, args];
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

export async function waitReady(url: string, proc: ChildProcess, log: () => string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (proc.exitCode !== null || proc.signalCode !== null) throw new Error(`postgres exited (${proc.exitCode ?? proc.signalCode}) before it was ready:\n${log()}`);
    const sql = postgres(url, { max: 1, connect_timeout: 2, onnotice: () => {} });
    try {
      await sql`SELECT 1`;
      return;
    } catch (err) {
      if (Date.now() > deadline) throw new Error(`postgres not ready after ${timeoutMs} ms: ${(err as Error).message}\n${log()}`);
    } finally {
      await sql.end({ timeout: 1 }).catch(() => {});
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * `settings` replace or add server settings (e.g. WAL archiving for the point-in-time recovery test, which also
 * needs full_page_writes back on for pg_basebackup). `dir`: the temporary folder (owned by postgres when root).
 */
export async function startTempPostgres(opts: { settings?: Record<string, string> } = {}): Promise<TempPostgres & { dir: string }> {
  const missing = postgresMissing();
  if (missing) throw new Error(`cannot start PostgreSQL: ${missing}`);
  const dir = ownedTempDir('starling-pg-');
  const data = join(dir, 'data');
  try {
    const [initdb, initArgs] = pgCommand('initdb', ['-D', data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--no-locale', '--no-sync', '--no-instructions']);
    execFileSync(initdb, initArgs, { stdio: ['ignore', 'ignore', 'pipe'] });
    const settings = { fsync: 'off', synchronous_commit: 'off', full_page_writes: 'off', max_connections: '300', shared_buffers: '64MB', ...opts.settings };
    return { dir, ...(await runPostgres(data, dir, settings)) };
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}

/** A temporary folder, the postgres user's when we are root (PostgreSQL then runs as that user). */
export function ownedTempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  if (asRoot()) {
    const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
    chownSync(dir, uid, gid);
  }
  return dir;
}

/**
 * Starts PostgreSQL on the data folder `data` (its socket in `dir`) on a free 127.0.0.1 port and waits until it
 * answers. `stop()` shuts it down by its PID and removes `dir`.
 */
export async function runPostgres(data: string, dir: string, settings: Record<string, string>): Promise<TempPostgres> {
  // A port found free can be taken before postgres binds it (other helpers share this machine): try a few.
  for (let attempt = 0; ; attempt++) {
    const port = await freePort();
    const all: Record<string, string> = { listen_addresses: '127.0.0.1', log_min_messages: 'warning', logging_collector: 'off', ...settings };
    const [bin, args] = pgCommand('postgres', ['-D', data, '-p', String(port), '-k', dir, ...Object.entries(all).flatMap(([k, v]) => ['-c', `${k}=${v}`])]);
    let log = '';
    const p = spawn(bin, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    p.stderr!.on('data', (d) => (log = (log + d).slice(-4000)));
    const url = `postgres://postgres@127.0.0.1:${port}/postgres`;
    try {
      await waitReady(url, p, () => log);
    } catch (err) {
      if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
      if (attempt < 3 && /could not bind|already in use/i.test(log)) continue;
      throw err;
    }
    const exited = new Promise<void>((r) => (p.exitCode !== null || p.signalCode !== null ? r() : p.once('exit', () => r())));
    return {
      url,
      port,
      pid: p.pid!,
      urlFor: (database) => `postgres://postgres@127.0.0.1:${port}/${encodeURIComponent(database)}`,
      async stop() {
        // SIGINT: fast shutdown (disconnects clients, no checkpoint wait worth having on throwaway data).
        if (p.exitCode === null && p.signalCode === null) process.kill(p.pid!, 'SIGINT');
        const timer = setTimeout(() => p.exitCode === null && p.signalCode === null && process.kill(p.pid!, 'SIGKILL'), 10_000);
        await exited;
        clearTimeout(timer);
        rmSync(dir, { recursive: true, force: true });
      },
    };
  }
}

/** The template every test database is cloned from (migrated once per run by postgres-setup.ts). */
export const TEMPLATE_DATABASE = 'starling_template';

/** A fresh database on the run's server, migrated (or empty, for tests of `starling migrate`); returns its URL. */
export async function createTestDatabase(adminUrl: string, opts: { migrated?: boolean } = {}): Promise<string> {
  const template = opts.migrated === false ? 'template0' : TEMPLATE_DATABASE;
  const name = `t_${process.pid}_${randomBytes(6).toString('hex')}`;
  const sql = postgres(adminUrl, { max: 1, onnotice: () => {} });
  try {
    for (let attempt = 0; ; attempt++) {
      try {
        // FILE_COPY: for a small database, copying the files beats WAL-logging every block.
        await sql.unsafe(`CREATE DATABASE "${name}" TEMPLATE ${template} STRATEGY FILE_COPY`);
        break;
      } catch (err) {
        // Two clones of one template at the same moment: "source database is being accessed by other users".
        if (attempt < 20 && (err as { code?: string }).code === '55006') {
          await new Promise((r) => setTimeout(r, 50 + Math.random() * 100));
          continue;
        }
        throw err;
      }
    }
  } finally {
    await sql.end({ timeout: 1 });
  }
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return url.toString();
}

/** The file in a test server's data folder that names its database, so a restart on the same folder finds the same data. */
const MARKER = 'postgres-test-database-url';

/** The database for a data folder: the one made for it before, or a new one. */
export async function testDatabaseFor(dataDir: string, adminUrl: string, opts: { migrated?: boolean } = {}): Promise<string> {
  const marker = join(dataDir, MARKER);
  if (existsSync(marker)) return readFileSync(marker, 'utf8').trim();
  const url = await createTestDatabase(adminUrl, opts);
  writeFileSync(marker, url + '\n');
  return url;
}
