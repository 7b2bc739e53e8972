/**
 * Point-in-time recovery on PostgreSQL, with PostgreSQL's own tools:
 *
 * - `baseBackup`: `pg_basebackup` (plain format, WAL streamed into the copy so
 *   it is consistent on its own, fast checkpoint) into
 *   `<to>/pgbase-<UTC time>/data`, plus a manifest.json with the server's clock
 *   at the start and end, the start/end LSN and the size. Written to a
 *   `.tmp-…` folder and renamed, so a backup folder is complete or absent.
 * - WAL archiving is the server's (`archive_mode=on`, `archive_command` that
 *   copies each finished segment into an archive folder); see docs/OPERATIONS.md.
 * - `pitrRestore`: copies a base backup into a NEW folder (the old cluster is
 *   never touched), configures recovery from the WAL archive up to a time,
 *   starts a postmaster on a free 127.0.0.1 port and waits until recovery has
 *   ended and the server is promoted, then reports how to reach and stop it.
 *
 * PostgreSQL refuses to run as root: as root its programs run as the
 * `postgres` user (setpriv) and the new folder is chowned to it.
 */
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { chown, cp, mkdir, readFile, readdir, rename, rm, stat, writeFile, appendFile, lstat, chmod } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import postgres from 'postgres';
import { BackupError, stamp } from './files.js';

const run = promisify(execFile);

export const PG_BIN = process.env.STARLING_PG_BIN ?? '/usr/lib/postgresql/15/bin';

const asRoot = () => process.getuid?.() === 0;

/** A PostgreSQL server program, as the postgres user when we are root (client programs run as whoever we are). */
function serverCommand(bin: string, args: string[]): [string, string[]] {
  const path = join(PG_BIN, bin);
  return asRoot() ? ['setpriv', ['--reuid=postgres', '--regid=postgres', '--init-groups', path, ...args]] : [path, args];
}

function binary(name: string): string {
  const path = join(PG_BIN, name);
  if (!existsSync(path)) throw new BackupError(`${path} not found: install PostgreSQL's client and server programs (apt-get install postgresql) or set STARLING_PG_BIN`);
  return path;
}

/** The last lines of a program's error output: what the operator needs to see, on one line. */
function lastLines(text: string, n = 3): string {
  return text.trim().split('\n').slice(-n).join(' | ');
}

export interface PgBaseManifest {
  kind: 'starling-pg-basebackup';
  version: 1;
  /** Server clock when the backup started and after it ended: commit timestamps, which recovery targets compare, use the server's clock. */
  start_time: string;
  end_time: string;
  start_lsn: string;
  end_lsn: string | null;
  timeline: number | null;
  label: string;
  server_version: string;
  /** Where it came from (no password): the restore's connection URL names the same user and database. */
  source: { host: string; port: number; user: string; database: string };
  wal_method: 'stream';
  archive_mode: string;
  bytes: number;
  duration_ms: number;
  /** pg_verifybackup ran on the copy and found it whole. */
  verified: boolean;
}

export interface BaseBackupResult {
  path: string;
  data_dir: string;
  manifest: PgBaseManifest;
  warnings: string[];
}

async function folderBytes(dir: string): Promise<number> {
  let total = 0;
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    if (entry.isDirectory()) total += await folderBytes(p);
    else if (entry.isFile()) total += (await stat(p)).size;
  }
  return total;
}

function sourceOf(databaseUrl: string): PgBaseManifest['source'] {
  let u: URL;
  try {
    u = new URL(databaseUrl);
  } catch {
    throw new BackupError(`--database-url is not a URL: expected postgres://user[:password]@host[:port]/database`);
  }
  if (u.protocol !== 'postgres:' && u.protocol !== 'postgresql:') throw new BackupError(`--database-url must be a postgres:// URL, got ${u.protocol}`);
  return { host: u.hostname || '127.0.0.1', port: Number(u.port || 5432), user: decodeURIComponent(u.username || 'postgres'), database: decodeURIComponent(u.pathname.slice(1) || 'postgres') };
}

/** Takes a base backup of the server `databaseUrl` names into `<to>/pgbase-<UTC time>/`. */
export async function baseBackup(opts: { databaseUrl: string; to: string; now?: () => Date }): Promise<BaseBackupResult> {
  const now = opts.now ?? (() => new Date());
  const source = sourceOf(opts.databaseUrl);
  const pgBasebackup = binary('pg_basebackup');
  const to = resolve(opts.to);
  await mkdir(to, { recursive: true });
  const sql = postgres(opts.databaseUrl, { max: 1, connect_timeout: 10, onnotice: () => {} });
  const warnings: string[] = [];
  const name = `pgbase-${stamp(now())}`;
  const tmp = join(to, `.tmp-${name}-${randomBytes(3).toString('hex')}`);
  try {
    let info: { start: Date; version: string; archive_mode: string; wal_level: string };
    try {
      const [row] = await sql<{ start: Date; version: string; archive_mode: string; wal_level: string }[]>`
        SELECT clock_timestamp() AS start, current_setting('server_version') AS version,
               current_setting('archive_mode') AS archive_mode, current_setting('wal_level') AS wal_level`;
      info = row!;
    } catch (err) {
      throw new BackupError(`cannot connect to ${source.host}:${source.port}/${source.database}: ${(err as Error).message}`);
    }
    if (info.wal_level === 'minimal') throw new BackupError('the server has wal_level=minimal: a base backup needs wal_level=replica (or logical); set it and restart PostgreSQL');
    if (info.archive_mode === 'off') {
      warnings.push('WAL archiving is off on this server (archive_mode=off): this backup restores to its own end only, not to later points in time');
    }
    await mkdir(tmp);
    const data = join(tmp, 'data');
    const label = `starling ${name}`;
    const started = Date.now();
    try {
      // Plain format: a restore is a copy. -X stream: the WAL written during the copy goes into it, so the copy is
      // consistent without the archive. --checkpoint=fast: otherwise it waits for a spread checkpoint (minutes).
      await run(pgBasebackup, ['-d', opts.databaseUrl, '-D', data, '-Fp', '-X', 'stream', '--checkpoint=fast', '-l', label, '--no-password'], {
        maxBuffer: 16 * 1024 * 1024,
        env: { ...process.env, PGCONNECT_TIMEOUT: '10' },
      });
    } catch (err) {
      throw new BackupError(`pg_basebackup failed: ${lastLines((err as { stderr?: string }).stderr || (err as Error).message)}`);
    }
    const duration = Date.now() - started;
    const [end] = await sql<{ end: Date }[]>`SELECT clock_timestamp() AS end`;
    // backup_label (start) and backup_manifest (WAL range) are written by the server; read the LSNs from them.
    const backupLabel = await readFile(join(data, 'backup_label'), 'utf8');
    const startLsn = /START WAL LOCATION: (\S+)/.exec(backupLabel)?.[1] ?? 'unknown';
    let endLsn: string | null = null;
    let timeline: number | null = null;
    let verified = false;
    if (existsSync(join(data, 'backup_manifest'))) {
      const bm = JSON.parse(await readFile(join(data, 'backup_manifest'), 'utf8')) as { 'WAL-Ranges'?: { Timeline: number; 'End-LSN': string }[] };
      const range = bm['WAL-Ranges']?.at(-1);
      endLsn = range?.['End-LSN'] ?? null;
      timeline = range?.Timeline ?? null;
      const verify = join(PG_BIN, 'pg_verifybackup');
      if (existsSync(verify)) {
        try {
          await run(verify, [data], { maxBuffer: 16 * 1024 * 1024 });
          verified = true;
        } catch (err) {
          throw new BackupError(`the base backup did not verify: ${lastLines((err as { stderr?: string }).stderr || (err as Error).message)}`);
        }
      }
    }
    const manifest: PgBaseManifest = {
      kind: 'starling-pg-basebackup',
      version: 1,
      start_time: info.start.toISOString(),
      end_time: end!.end.toISOString(),
      start_lsn: startLsn,
      end_lsn: endLsn,
      timeline,
      label,
      server_version: info.version,
      source,
      wal_method: 'stream',
      archive_mode: info.archive_mode,
      bytes: await folderBytes(data),
      duration_ms: duration,
      verified,
    };
    await writeFile(join(tmp, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n');
    const path = join(to, name);
    await rename(tmp, path);
    return { path, data_dir: join(path, 'data'), manifest, warnings };
  } finally {
    await sql.end({ timeout: 1 }).catch(() => {});
    await rm(tmp, { recursive: true, force: true });
  }
}

/** The base backup folder (or its manifest.json, or its data/) and its manifest. */
export async function readBaseBackup(path: string): Promise<{ path: string; manifest: PgBaseManifest }> {
  let dir = resolve(path);
  if (dir.endsWith('manifest.json')) dir = resolve(dir, '..');
  if (!existsSync(join(dir, 'manifest.json')) && existsSync(join(dir, '..', 'manifest.json'))) dir = resolve(dir, '..');
  const file = join(dir, 'manifest.json');
  if (!existsSync(file)) throw new BackupError(`${path} is not a base backup (no manifest.json): pass the pgbase-… folder starling pg base-backup wrote`);
  const manifest = JSON.parse(await readFile(file, 'utf8')) as PgBaseManifest;
  if (manifest.kind !== 'starling-pg-basebackup') throw new BackupError(`${file} is not a starling pg base-backup manifest`);
  if (!existsSync(join(dir, 'data', 'PG_VERSION'))) throw new BackupError(`${dir}/data is missing or not a PostgreSQL data folder`);
  return { path: dir, manifest };
}

function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolvePort(port));
    });
  });
}

async function chownTree(path: string, uid: number, gid: number): Promise<void> {
  await chown(path, uid, gid);
  if (!(await lstat(path)).isDirectory()) return;
  for (const entry of await readdir(path)) await chownTree(join(path, entry), uid, gid);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

const quoteConf = (s: string) => `'${s.replace(/'/g, "''")}'`;
/** For restore_command, which /bin/sh runs: single-quoted, so spaces and $ in the path are literal. */
const quoteShell = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

export interface PitrRestoreOptions {
  base: string;
  wal: string;
  into: string;
  toTime: Date;
  port?: number;
  /** How long recovery may take before we give up (and stop the server we started). */
  timeoutSeconds?: number;
}

export interface PitrRestoreResult {
  into: string;
  data_dir: string;
  log_file: string;
  base: string;
  wal: string;
  target_time: string;
  base_end_time: string;
  port: number;
  /** The postmaster's PID: stop the restored server with `kill -INT <pid>` (or pg_ctl stop -D <data_dir>). */
  pid: number;
  url: string;
  /** WAL segments the recovery read from the archive. */
  wal_segments_restored: number;
  phases: { copy_ms: number; recovery_ms: number; total_ms: number };
}

/**
 * Restores the base backup into `into` (which must not exist or be empty), replays the archived WAL up to
 * `toTime`, and leaves a promoted PostgreSQL running on it.
 */
export async function pitrRestore(opts: PitrRestoreOptions): Promise<PitrRestoreResult> {
  const t0 = Date.now();
  binary('pg_ctl');
  binary('postgres');
  if (Number.isNaN(opts.toTime.getTime())) throw new BackupError('--to-time is not a valid time: use ISO 8601 with a zone, e.g. 2026-11-24T23:10:00Z');
  const base = await readBaseBackup(opts.base);
  if (opts.toTime.getTime() <= Date.parse(base.manifest.end_time)) {
    throw new BackupError(
      `--to-time ${opts.toTime.toISOString()} is before the end of base backup ${base.path} (${base.manifest.end_time}): pick a later time, or a base backup taken before that time`,
    );
  }
  const wal = resolve(opts.wal);
  if (!existsSync(wal) || !statSync(wal).isDirectory()) throw new BackupError(`WAL archive ${wal} is not a folder`);
  const into = resolve(opts.into);
  if (existsSync(into) && readdirSync(into).length > 0) throw new BackupError(`${into} is not empty: restore into a new folder (a restore never replaces an existing cluster)`);
  await mkdir(into, { recursive: true });
  const data = join(into, 'data');
  const logFile = join(into, 'postgres.log');
  let started: { pid: number; port: number } | null = null;
  try {
    await cp(join(base.path, 'data'), data, { recursive: true, preserveTimestamps: true });
    await chmod(data, 0o700);
    // The copy must not be mistaken for a running server's folder, and the new server keeps its WAL to itself.
    await rm(join(data, 'postmaster.pid'), { force: true });
    await writeFile(join(data, 'recovery.signal'), '');
    const atLeast = await primarySettings(data);
    await appendFile(
      join(data, 'postgresql.auto.conf'),
      [
        '',
        `# starling pg restore ${new Date().toISOString()}: recover from ${wal} up to ${opts.toTime.toISOString()}`,
        `restore_command = ${quoteConf(`cp ${quoteShell(wal)}/%f %p`)}`,
        // PostgreSQL's parser here takes `2026-11-24 23:54:59.392+00`, not ISO's `T…Z`.
        `recovery_target_time = ${quoteConf(opts.toTime.toISOString().replace('T', ' ').replace('Z', '+00'))}`,
        "recovery_target_action = 'promote'",
        "recovery_target_timeline = 'current'",
        // The restored cluster must not write into the old cluster's archive (a new timeline would mix into it).
        "archive_mode = 'off'",
        // Recovery aborts when these are lower than on the server the WAL came from (which may have set them on its command line).
        ...Object.entries(atLeast).map(([k, v]) => `${k} = ${v}`),
        '',
      ].join('\n'),
    );
    await writeFile(logFile, '');
    if (asRoot()) {
      const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
      const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
      await chownTree(into, uid, gid);
      // Every folder above `into` must let the postgres user through (a root-only mkdtemp folder would not).
      try {
        execFileSync('setpriv', ['--reuid=postgres', '--regid=postgres', '--init-groups', 'test', '-w', data], { stdio: 'ignore' });
      } catch {
        throw new BackupError(`the postgres user cannot write ${data}: a folder above ${into} is closed to it (chmod o+x it, or restore elsewhere)`);
      }
    }
    const copied = Date.now();
    const timeout = opts.timeoutSeconds ?? 600;
    // A port found free can be taken before postgres binds it: with no --port, try a few.
    for (let attempt = 0; ; attempt++) {
      const port = opts.port ?? (await freePort());
      const [bin, args] = serverCommand('pg_ctl', [
        'start', '-D', data, '-l', logFile, '-w', '-t', String(timeout),
        '-o', `-p ${port} -k ${into} -c listen_addresses=127.0.0.1`,
      ]);
      try {
        await run(bin, args, { maxBuffer: 16 * 1024 * 1024 });
      } catch (err) {
        const log = await readFile(logFile, 'utf8').catch(() => '');
        const pid = await postmasterPid(data);
        if (pid && alive(pid)) started = { pid, port };
        if (opts.port === undefined && attempt < 3 && /could not bind|already in use/i.test(log) && !started) continue;
        throw new BackupError(`the restored server did not start: ${reasonIn(log) || lastLines((err as { stderr?: string }).stderr || (err as Error).message)} (log: ${logFile})`);
      }
      const pid = await postmasterPid(data);
      if (!pid) {
        // pg_ctl saw it start, and it has already stopped (e.g. recovery ended before the target): say why.
        const log = await readFile(logFile, 'utf8').catch(() => '');
        throw new BackupError(`the restored server did not start: ${reasonIn(log) || 'it stopped at once'} (log: ${logFile})`);
      }
      started = { pid, port };
      break;
    }
    const url = `postgres://${encodeURIComponent(base.manifest.source.user)}@127.0.0.1:${started.port}/${encodeURIComponent(base.manifest.source.database)}`;
    // Watched without logging in: the source's users and pg_hba came along in the copy, and we have no password.
    await waitPromoted(data, started.port, started.pid, logFile, Date.now() + timeout * 1000);
    const recovered = Date.now();
    const log = await readFile(logFile, 'utf8');
    const segments = (log.match(/restored log file "[0-9A-F]{24}" from archive/g) ?? []).length;
    return {
      into,
      data_dir: data,
      log_file: logFile,
      base: base.path,
      wal,
      target_time: opts.toTime.toISOString(),
      base_end_time: base.manifest.end_time,
      port: started.port,
      pid: started.pid,
      url,
      wal_segments_restored: segments,
      phases: { copy_ms: copied - t0, recovery_ms: recovered - copied, total_ms: recovered - t0 },
    };
  } catch (err) {
    // A failed restore leaves no server running; the folder stays for the operator to read the log.
    if (started && alive(started.pid)) {
      process.kill(started.pid, 'SIGINT');
      for (let i = 0; i < 100 && alive(started.pid); i++) await new Promise((r) => setTimeout(r, 100));
      if (alive(started.pid)) process.kill(started.pid, 'SIGKILL');
    }
    throw err;
  }
}

/** The settings a standby/recovery must match or exceed, as the source server had them (pg_controldata of the copy). */
async function primarySettings(data: string): Promise<Record<string, number>> {
  const { stdout } = await run(binary('pg_controldata'), [data], { env: { ...process.env, LC_ALL: 'C' } });
  const out: Record<string, number> = {};
  for (const name of ['max_connections', 'max_worker_processes', 'max_wal_senders', 'max_prepared_xacts', 'max_locks_per_xact']) {
    const m = new RegExp(`^${name} setting:\\s+(\\d+)`, 'm').exec(stdout);
    // The parameter behind max_prepared_xacts / max_locks_per_xact has a longer name.
    const param = name === 'max_prepared_xacts' ? 'max_prepared_transactions' : name === 'max_locks_per_xact' ? 'max_locks_per_transaction' : name;
    if (m) out[param] = Number(m[1]);
  }
  return out;
}

/** Why a server stopped, from its log: the FATAL/PANIC lines (with the line before, often the cause), else its last lines. */
function reasonIn(log: string): string {
  const lines = log.trim().split('\n');
  const i = lines.findIndex((l) => /\b(FATAL|PANIC):/.test(l));
  if (i < 0) return lastLines(log);
  return lines.slice(Math.max(0, i - 1), i + 2).filter((l) => /\b(FATAL|PANIC|ERROR|LOG|DETAIL|HINT):/.test(l)).slice(0, 3).join(' | ');
}

async function postmasterPid(data: string): Promise<number | null> {
  const text = await readFile(join(data, 'postmaster.pid'), 'utf8').catch(() => null);
  const pid = text ? Number(text.split('\n')[0]) : NaN;
  return Number.isInteger(pid) && pid > 0 ? pid : null;
}

/**
 * Waits until the server has left recovery (target reached, promoted: pg_control says `in production`) and
 * accepts connections (pg_isready); fails with the log's reason if it dies first. Neither needs a login.
 */
async function waitPromoted(data: string, port: number, pid: number, logFile: string, deadline: number): Promise<void> {
  for (;;) {
    if (!alive(pid)) {
      const log = await readFile(logFile, 'utf8').catch(() => '');
      throw new BackupError(`recovery failed: ${reasonIn(log)} (log: ${logFile})`);
    }
    const control = await run(binary('pg_controldata'), [data], { env: { ...process.env, LC_ALL: 'C' } }).then((r) => r.stdout, () => '');
    if (/^Database cluster state:\s+in production/m.test(control)) {
      const ready = await run(binary('pg_isready'), ['-q', '-h', '127.0.0.1', '-p', String(port), '-t', '2']).then(() => true, () => false);
      if (ready) return;
    }
    if (Date.now() > deadline) throw new BackupError(`recovery did not finish in time (log: ${logFile})`);
    await new Promise((r) => setTimeout(r, 200));
  }
}
