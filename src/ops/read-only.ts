/**
 * The guarded write path and read-only mode. Every write (`ctx.write`) passes
 * through here on its way to the group-commit writer:
 *
 * - **Read-only mode.** When a write cannot be made durable — the disk is full
 *   (SQLITE_FULL, PostgreSQL 53100), the database is read-only (SQLITE_READONLY),
 *   an I/O error (SQLITE_IOERR) — or writes have kept failing for longer than
 *   `readOnly.afterFailingSeconds`, the node refuses writes with 503 and keeps
 *   serving reads. Every `readOnly.probeIntervalSeconds` it tries one small,
 *   bounded write (its heartbeat row) and switches back by itself when it works.
 * - **Forced by an operator.** `starling maintenance on` writes `read-only.json`
 *   into the data folder (no database needed); the node reads it every
 *   `readOnly.flagPollSeconds`. `starling maintenance off` removes it.
 * - **Circuit breaker.** Consecutive dependency failures (busy database, writes
 *   that waited too long, a PostgreSQL primary that went away: store/errors.ts) open a breaker (ops/breaker.ts): writes then fail at
 *   once with 503 instead of piling up behind a database that cannot take them.
 */
import { readFile, writeFile, rm, mkdir, statfs } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { Config } from '../config.js';
import { StarlingError } from '../domain/errors.js';
import type { Writer, WriteFn } from '../store/writer.js';
import type { Metrics } from './metrics.js';
import { CircuitBreaker } from './breaker.js';
import { classifyDbError, isDependencyFailure as isDbDependencyFailure, storageWords } from '../store/errors.js';

export const FLAG_FILE = 'read-only.json';

export interface ReadOnlyState {
  /** Writes are refused. */
  active: boolean;
  /** An operator asked for it (`starling maintenance on`); only `off` ends it. */
  forced: boolean;
  reason: string | null;
  since: string | null;
}

/** Errors that mean "this write cannot be made durable here now", not "this write was wrong" (store/errors.ts knows the codes). */
export function isStorageError(err: unknown): boolean {
  return classifyDbError(err) === 'storage';
}

/** Failures of the dependency itself (count for the breaker), as opposed to a write's own error. */
function isDependencyFailure(err: unknown): boolean {
  if (err instanceof StarlingError) return err.code === 'overloaded';
  return isDbDependencyFailure(err);
}

export async function readFlag(dataDir: string): Promise<{ reason: string; at: string } | null> {
  try {
    const v = JSON.parse(await readFile(join(dataDir, FLAG_FILE), 'utf8')) as { reason?: unknown; at?: unknown };
    return { reason: typeof v.reason === 'string' && v.reason ? v.reason : 'maintenance', at: typeof v.at === 'string' ? v.at : new Date().toISOString() };
  } catch (err) {
    // Present but unreadable (half written): still forced; absent: not forced.
    return (err as NodeJS.ErrnoException).code === 'ENOENT' ? null : { reason: 'maintenance', at: new Date().toISOString() };
  }
}

/** `starling maintenance on|off`: works with the database down (it is only a file). */
export async function setFlag(dataDir: string, on: boolean, reason = 'maintenance'): Promise<void> {
  const file = join(dataDir, FLAG_FILE);
  if (!on) return rm(file, { force: true });
  await mkdir(dataDir, { recursive: true });
  await writeFile(file, JSON.stringify({ reason, at: new Date().toISOString() }) + '\n');
}

/** Free bytes for unprivileged writers on the data folder's filesystem, or null where unknown. */
export async function freeBytes(dir: string): Promise<number | null> {
  try {
    const s = await statfs(dir);
    return s.bavail * s.bsize;
  } catch {
    return null;
  }
}

export interface WriteGuardDeps {
  config: Config;
  writer: Writer;
  metrics: Metrics;
  log: Logger;
  /** One small bounded write that proves writes are durable again (the node's heartbeat row). */
  probeWrite: (write: <T>(fn: WriteFn<T>) => Promise<T>) => Promise<unknown>;
  now?: () => number;
}

export class WriteGuard {
  readonly breaker: CircuitBreaker;
  private auto: { reason: string; since: number } | null = null;
  private forcedFlag: { reason: string; at: string } | null = null;
  private failingSince: number | null = null;
  private timers: NodeJS.Timeout[] = [];
  private probing = false;
  private readonly now: () => number;

  constructor(private readonly deps: WriteGuardDeps) {
    this.now = deps.now ?? Date.now;
    const { breaker } = deps.config.writes;
    this.breaker = new CircuitBreaker({
      failures: breaker.failures,
      coolDownMs: breaker.coolDownSeconds * 1000,
      now: this.now,
      onChange: (from, to) => deps.log.warn({ from, to }, 'database write breaker changed state'),
    });
  }

  /** Writes waiting in the group-commit writer (for load shedding). */
  get queued(): number {
    return this.deps.writer.queued;
  }

  state(): ReadOnlyState {
    if (this.forcedFlag) return { active: true, forced: true, reason: `an operator switched on maintenance mode (${this.forcedFlag.reason})`, since: this.forcedFlag.at };
    if (this.auto) return { active: true, forced: false, reason: this.auto.reason, since: new Date(this.auto.since).toISOString() };
    return { active: false, forced: false, reason: null, since: null };
  }

  get readOnly(): boolean {
    return this.forcedFlag !== null || this.auto !== null;
  }

  /** `ctx.write`: refused in read-only mode or with the breaker open, otherwise the group-commit writer. */
  async write<T>(fn: WriteFn<T>): Promise<T> {
    if (this.readOnly) throw new StarlingError('read_only', undefined, { details: { retryAfter: this.deps.config.readOnly.retryAfterSeconds } });
    if (!this.breaker.allow()) {
      throw new StarlingError('overloaded', undefined, { details: { retryAfter: this.breaker.retryAfterSeconds() }, cause: new Error('database write breaker open') });
    }
    try {
      const value = await this.deps.writer.write(fn);
      this.breaker.success();
      this.failingSince = null;
      return value;
    } catch (err) {
      throw this.failed(err);
    }
  }

  /** Classifies a failed write and returns what the caller should see. */
  private failed(err: unknown): unknown {
    if (isStorageError(err)) {
      this.breaker.failure();
      this.enter(storageWords(err), err);
      return new StarlingError('read_only', undefined, { cause: err, details: { retryAfter: this.deps.config.readOnly.retryAfterSeconds } });
    }
    if (!isDependencyFailure(err)) {
      this.breaker.success();
      return err;
    }
    this.breaker.failure();
    const now = this.now();
    this.failingSince ??= now;
    const limit = this.deps.config.readOnly.afterFailingSeconds * 1000;
    if (now - this.failingSince >= limit) this.enter(`database writes have been failing for ${Math.round((now - this.failingSince) / 1000)} s`, err);
    if (err instanceof StarlingError) return err;
    // A busy or failing database is a temporary 503, never a 500.
    return new StarlingError('overloaded', undefined, { cause: err, details: { retryAfter: this.breaker.retryAfterSeconds() } });
  }

  private enter(reason: string, err: unknown): void {
    if (this.auto) return;
    this.auto = { reason, since: this.now() };
    this.deps.log.error({ err, reason }, 'switching to read-only mode');
    this.publish();
  }

  private leave(): void {
    if (!this.auto) return;
    this.deps.log.warn({ after: this.now() - this.auto.since }, 'writes work again: leaving read-only mode');
    this.auto = null;
    this.failingSince = null;
    this.breaker.success();
    this.publish();
  }

  private publish(): void {
    this.deps.metrics.readOnly.set(this.readOnly ? 1 : 0);
  }

  /** One bounded trial write; leaves automatic read-only mode when it succeeds. */
  async probe(): Promise<boolean> {
    if (this.probing || !this.auto) return !this.auto;
    this.probing = true;
    const timeoutMs = this.deps.config.writes.queueTimeoutMs;
    let timer: NodeJS.Timeout | undefined;
    try {
      // A tiny write can land in WAL space already allocated and succeed on a full disk: ask for room as well.
      const free = await freeBytes(this.deps.config.dataDir);
      if (free !== null && free < this.deps.config.readOnly.minFreeBytes) throw new Error(`only ${free} bytes free`);
      await Promise.race([
        this.deps.probeWrite((fn) => this.deps.writer.write(fn)),
        new Promise((_, reject) => (timer = setTimeout(() => reject(new Error('trial write timed out')), timeoutMs))),
      ]);
      this.leave();
      return true;
    } catch (err) {
      this.deps.log.debug({ err }, 'still read-only: trial write failed');
      return false;
    } finally {
      clearTimeout(timer);
      this.probing = false;
    }
  }

  async pollFlag(): Promise<void> {
    const flag = await readFlag(this.deps.config.dataDir);
    const was = this.forcedFlag !== null;
    this.forcedFlag = flag;
    if (was !== (flag !== null)) {
      this.deps.log.warn({ forced: flag !== null, reason: flag?.reason }, flag ? 'maintenance mode on: read-only' : 'maintenance mode off');
      this.publish();
    }
  }

  /** Reads the flag now, then keeps polling it and probing while read-only. */
  async start(): Promise<void> {
    await this.pollFlag();
    const every = (ms: number, run: () => Promise<unknown>) => {
      const t = setInterval(() => void run().catch(() => {}), ms);
      t.unref();
      this.timers.push(t);
    };
    every(this.deps.config.readOnly.flagPollSeconds * 1000, () => this.pollFlag());
    every(this.deps.config.readOnly.probeIntervalSeconds * 1000, () => this.probe());
    this.publish();
  }

  stop(): void {
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
  }
}
