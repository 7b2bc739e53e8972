/**
 * `starling drill restore`: a restore rehearsed end to end, timed.
 *
 * Takes the newest backup, verifies and restores it into a scratch folder,
 * adds a drill account to the scratch copy only (the real data never sees
 * it), starts a real `starling serve` child process on it on a free loopback
 * port, and drives it through the HTTP API as a client would: register an app,
 * sign in with the OAuth password grant, read a restored post, read the home
 * and public timelines, post, and see the post on the home timeline. Then it
 * stops the child by its pid and removes the scratch folder.
 *
 * RTO: from the start of the drill to the moment every smoke check passed (a
 * working restored service). RPO: the age, at the start of the drill, of the
 * newest post in the backup: what would be lost if the site died now and this
 * backup were the one restored. Every result, failed ones too, is appended to
 * `<dataDir>/drill-log.jsonl`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { appendFile, mkdir, mkdtemp, open, readFile, rm } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { STARLING_VERSION } from '../version.js';
import { BackupError, STARLING_BIN } from './files.js';
import { listBackups } from './backup.js';
import { verifyBackup } from './verify.js';

export const DRILL_LOG = 'drill-log.jsonl';

/** What every drill's log entry has (restore: here; failover: failover-drill.ts). */
export interface DrillCommon {
  kind: string;
  ok: boolean;
  started_at: string;
  finished_at: string;
  rto_seconds: number | null;
  rpo_seconds: number | null;
  /** Milliseconds per phase. */
  phases: Record<string, number>;
  checks: string[];
  error?: string;
  host: string;
  starling_version: string;
}

export interface DrillEntry extends DrillCommon {
  kind: 'restore';
  /** Seconds from the start of the drill to a working restored service (null if it never worked). */
  rto_seconds: number | null;
  /** Age in seconds of the newest post in the backup at the start of the drill (null: the backup holds no post). */
  rpo_seconds: number | null;
  /** Age in seconds of the backup itself at the start of the drill. */
  backup_age_seconds: number | null;
  backup: { path: string; created_at: string; newest_status: { id: string; created_at: string } | null; bytes: number; statuses: number } | null;
  /** Milliseconds per phase. */
  phases: Record<string, number>;
  checks: string[];
  /** Requests the smoke checks repeated after a 503 (the restored service shedding load or read-only right after start). */
  smoke_retries: number;
  /** Whether the restored copy was checked with quick_check (--quick) rather than integrity_check. */
  quick: boolean;
  /** The scratch folder the backup was restored into (removed after the drill unless kept). */
  scratch_dir: string;
  error?: string;
  host: string;
  starling_version: string;
}

export interface DrillOptions {
  dataDir: string;
  backupDir: string;
  /** A given backup instead of the newest one. */
  from?: string;
  /** Check the restored copy with quick_check instead of integrity_check (see verify.ts). */
  quick?: boolean;
  /** Keep the scratch folder (for looking around after a failed drill). */
  keep?: boolean;
  log?: (line: string) => void;
  /**
   * Makes the drill account in the restored copy at `dataDir` and returns the id
   * of a post the restored service must serve (null if it holds none). Passed in
   * by the CLI, which may open a full context; this module stays below http.
   */
  prepare: (dataDir: string, account: { username: string; email: string; password: string }) => Promise<string | null>;
}

/** Milliseconds per named phase of a drill: `phase(name)` closes the phase that began at the previous call (or at `t0`). */
export function phaseTimer(t0: number): { phases: Record<string, number>; phase(name: string): void } {
  const phases: Record<string, number> = {};
  let mark = t0;
  return {
    phases,
    phase(name) {
      const now = Date.now();
      phases[name] = now - mark;
      mark = now;
    },
  };
}

export async function drillRestore(opts: DrillOptions): Promise<DrillEntry> {
  const t0 = Date.now();
  const say = opts.log ?? (() => {});
  const { phases, phase } = phaseTimer(t0);
  const checks: string[] = [];
  const scratch = await mkdtemp(join(tmpdir(), 'starling-drill-'));
  const entry: DrillEntry = {
    kind: 'restore',
    ok: false,
    started_at: new Date(t0).toISOString(),
    finished_at: '',
    rto_seconds: null,
    rpo_seconds: null,
    backup_age_seconds: null,
    backup: null,
    phases,
    checks,
    scratch_dir: scratch,
    smoke_retries: 0,
    quick: opts.quick ?? false,
    host: hostname(),
    starling_version: STARLING_VERSION,
  };
  let child: ChildProcess | null = null;
  try {
    const path = opts.from ?? (await listBackups(opts.backupDir))[0]?.path;
    if (!path) throw new BackupError(`no backup in ${opts.backupDir}: take one with starling backup first`);
    say(`restoring ${path} into ${scratch}`);
    const verified = await verifyBackup(path, { into: scratch, quick: opts.quick });
    const m = verified.manifest;
    entry.backup = { path: verified.path, created_at: m.created_at, newest_status: m.newest_status, bytes: m.file.bytes, statuses: m.tables.statuses ?? 0 };
    entry.backup_age_seconds = (t0 - Date.parse(m.created_at)) / 1000;
    entry.rpo_seconds = m.newest_status ? (t0 - Date.parse(m.newest_status.created_at)) / 1000 : null;
    checks.push(...verified.checks);
    phase('verify_and_restore_ms');
    Object.assign(phases, { 'verify.hash_ms': verified.phases.hash_ms, 'verify.decompress_ms': verified.phases.decompress_ms, 'verify.check_ms': verified.phases.check_ms });

    // The drill account exists only in the scratch copy (the caller makes it through the sign-up service, so its password hash is real).
    const login = { username: `drill_${randomBytes(4).toString('hex')}`, password: randomBytes(18).toString('base64url') };
    const email = `${login.username}@drill.invalid`;
    const sample = await opts.prepare(scratch, { ...login, email });
    phase('drill_account_ms');

    say('starting a Starling on the restored copy');
    const started = await startChild(scratch);
    child = started.proc;
    phase('start_ms');
    say(`restored Starling listening on ${started.url} (pid ${child.pid}); running smoke checks`);
    const sm: Smoke = { base: started.url, deadline: Date.now() + SMOKE_DEADLINE_MS, retries: 0 };
    try {
      await smoke(sm, { email, password: login.password, username: login.username, sample }, checks);
    } finally {
      entry.smoke_retries = sm.retries;
    }
    phase('smoke_ms');
    entry.rto_seconds = (Date.now() - t0) / 1000;
    entry.ok = true;
  } catch (err) {
    entry.error = err instanceof Error ? err.message : String(err);
  } finally {
    if (child) {
      await stopChild(child);
      phase('stop_ms');
    }
    if (!opts.keep) await rm(scratch, { recursive: true, force: true });
    entry.finished_at = new Date().toISOString();
  }
  await appendDrillLog(opts.dataDir, entry);
  return entry;
}

interface Started {
  proc: ChildProcess;
  url: string;
}

function startChild(dataDir: string, timeoutMs = 120_000): Promise<Started> {
  // cwd is the scratch folder, so no starling.json of the operator's applies: the drill runs defaults on the restored data.
  const proc = spawn(process.execPath, [STARLING_BIN, 'serve', '--port', '0', '--host', '127.0.0.1', '--data-dir', dataDir], {
    cwd: dataDir,
    env: { PATH: process.env.PATH ?? '', STARLING_LOG_LEVEL: 'info', STARLING_BACKUP_INTERVAL: '0' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return new Promise((res, rej) => {
    let out = '';
    let err = '';
    const fail = (why: string) => {
      clearTimeout(timer);
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
      rej(new BackupError(`${why}: ${(err || out).trim().split('\n').at(-1)?.slice(0, 300) ?? ''}`));
    };
    const timer = setTimeout(() => fail(`the restored Starling did not start in ${timeoutMs / 1000} s`), timeoutMs);
    proc.stderr!.on('data', (d) => (err += d));
    proc.stdout!.on('data', (d) => {
      out += d;
      for (const line of out.split('\n')) {
        if (!line.includes('Starling listening on')) continue;
        try {
          const { url } = JSON.parse(line) as { url: string };
          clearTimeout(timer);
          proc.removeAllListeners('exit');
          // Keep draining the child's output so a full pipe never blocks it.
          proc.stdout!.removeAllListeners('data');
          proc.stderr!.removeAllListeners('data');
          proc.stdout!.resume();
          proc.stderr!.resume();
          res({ proc, url });
          return;
        } catch {
          /* partial line */
        }
      }
    });
    proc.once('exit', (code) => fail(`the restored Starling exited with ${code} before listening`));
  });
}

async function stopChild(proc: ChildProcess): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = new Promise<void>((r) => proc.once('exit', () => r()));
  process.kill(proc.pid!, 'SIGTERM');
  const timer = setTimeout(() => {
    if (proc.exitCode === null && proc.signalCode === null) process.kill(proc.pid!, 'SIGKILL');
  }, 15_000);
  await exited;
  clearTimeout(timer);
}

/**
 * The smoke checks behave like a well-made client: a 503 (load shedding or
 * read-only mode right after start, e.g. while the first probes run) is retried
 * after its Retry-After, under the same idempotency key for a post, until the
 * smoke deadline. The retries are counted in the drill's result.
 */
interface Smoke {
  base: string;
  deadline: number;
  retries: number;
}

/** How long the restored service may take, from its start, to pass the smoke checks. */
const SMOKE_DEADLINE_MS = 120_000;

async function call(sm: Smoke, method: string, path: string, opts: { token?: string; body?: unknown; headers?: Record<string, string> } = {}): Promise<any> {
  for (;;) {
    const res = await fetch(sm.base + path, {
      method,
      headers: {
        ...(opts.body ? { 'content-type': 'application/json' } : {}),
        ...(opts.token ? { authorization: `Bearer ${opts.token}` } : {}),
        ...opts.headers,
      },
      body: opts.body ? JSON.stringify(opts.body) : undefined,
      signal: AbortSignal.timeout(30_000),
    });
    const text = await res.text();
    if (res.status === 503 && Date.now() < sm.deadline) {
      const after = Number(res.headers.get('retry-after'));
      sm.retries++;
      await new Promise((r) => setTimeout(r, Math.min(5000, Math.max(200, Number.isFinite(after) ? after * 1000 : 1000))));
      continue;
    }
    if (!res.ok) throw new BackupError(`smoke check ${method} ${path} failed: HTTP ${res.status} ${text.slice(0, 200)}`);
    return JSON.parse(text);
  }
}

async function smoke(sm: Smoke, who: { email: string; password: string; username: string; sample: string | null }, checks: string[]): Promise<void> {
  const app = await call(sm, 'POST', '/api/v1/apps', { body: { client_name: 'starling-drill', redirect_uris: 'urn:ietf:wg:oauth:2.0:oob', scopes: 'read write' } });
  const token = await call(sm, 'POST', '/oauth/token', {
    body: { grant_type: 'password', username: who.email, password: who.password, client_id: app.client_id, client_secret: app.client_secret, scope: 'read write' },
  });
  const me = await call(sm, 'GET', '/api/v1/accounts/verify_credentials', { token: token.access_token });
  if (me.username !== who.username) throw new BackupError(`smoke check: signed in as ${me.username}, expected ${who.username}`);
  checks.push('sign in (OAuth password grant)');
  if (who.sample) {
    const s = await call(sm, 'GET', `/api/v1/statuses/${who.sample}`, { token: token.access_token });
    if (s.id !== who.sample) throw new BackupError(`smoke check: restored post ${who.sample} came back as ${s.id}`);
    const pub = await call(sm, 'GET', '/api/v1/timelines/public?limit=5', { token: token.access_token });
    if (!Array.isArray(pub) || pub.length === 0) throw new BackupError('smoke check: the public timeline is empty although the backup holds public posts');
    checks.push('read a restored post', 'read the public timeline');
  }
  const posted = await call(sm, 'POST', '/api/v1/statuses', {
    token: token.access_token,
    body: { status: `Restore drill ${new Date().toISOString()}`, visibility: 'public' },
    headers: { 'idempotency-key': randomBytes(8).toString('hex') },
  });
  checks.push('post');
  // The author's own post reaches their home timeline through the same path as every post (fan-out may be a job).
  for (;;) {
    const home = (await call(sm, 'GET', '/api/v1/timelines/home?limit=5', { token: token.access_token })) as { id: string }[];
    if (home.some((s) => s.id === posted.id)) break;
    if (Date.now() > sm.deadline) throw new BackupError(`smoke check: the new post did not reach the home timeline within ${SMOKE_DEADLINE_MS / 1000} s of the start`);
    await new Promise((r) => setTimeout(r, 50));
  }
  checks.push('read the home timeline with the new post');
}

export async function appendDrillLog(dataDir: string, entry: DrillCommon): Promise<void> {
  const file = join(dataDir, DRILL_LOG);
  await mkdir(dataDir, { recursive: true });
  await appendFile(file, JSON.stringify(entry) + '\n');
  const fh = await open(file, 'r');
  await fh.sync().finally(() => fh.close());
}

/** The drill log, oldest first (restore and failover drills; tell them by `kind`); a damaged line (a crash mid-append) is skipped, not fatal. */
export async function readDrillLog(dataDir: string): Promise<DrillCommon[]> {
  const file = join(dataDir, DRILL_LOG);
  if (!existsSync(file)) return [];
  const out: DrillCommon[] = [];
  for (const line of (await readFile(file, 'utf8')).split('\n')) {
    if (!line.trim()) continue;
    try {
      out.push(JSON.parse(line) as DrillCommon);
    } catch {
      /* torn line */
    }
  }
  return out;
}
