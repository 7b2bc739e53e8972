/**
 * Group commit. Every write transaction goes through one writer; while a
 * batch is being committed, new writes queue, and the next batch runs them
 * all in one database transaction, each inside its own savepoint. One fsync
 * then makes many writes durable, and each caller is answered only after the
 * commit, so an acknowledged write is still a durable one.
 *
 * With one write at a time it behaves exactly like a plain transaction; under
 * load the batches grow by themselves. A write that fails rolls back to its
 * savepoint without touching the others in its batch.
 *
 * Do not call `write` from inside a write: the inner call would wait for the
 * batch that is waiting for it.
 *
 * Bounded: at most `maxQueue` writes wait (a new one beyond that fails at once
 * with `overloaded`), and a write that waited longer than `queueTimeoutMs`
 * before its batch began fails with `overloaded` without running. A write that
 * has begun is never abandoned: its caller hears how it ended. A database that
 * is locked by someone else (SQLITE_BUSY) fails the whole batch at once rather
 * than making every write in it wait out the busy timeout in turn.
 *
 * On SQLite a batch runs synchronously: the event loop waits for all of it.
 * With `maxBatchMs` a batch stops taking writes once it has run that long
 * (a write that has begun is finished), commits, and leaves the rest for the
 * next batch, after a turn of the event loop: one fan-out to a thousand
 * followers or a hundred posts at once would otherwise hold every request
 * for a hundred milliseconds (the overload bench saw 60–104 ms).
 *
 * Writes made for someone waiting (`isForeground`: a request's) go ahead of
 * background ones (jobs: fan-out, notifications) in the next batch: a job
 * worker that runs fifty fan-outs at once queues fifty writes of up to a
 * hundred feed rows each, and a post made meanwhile waited behind all of them
 * (the overload bench saw 30–55 ms at p99 for posts on a quiet node). Each
 * batch still takes the oldest background write, so the jobs are never
 * starved.
 *
 * On PostgreSQL several batches may run at once (`lanes`), each in its own
 * transaction on its own connection: the server makes concurrent commits
 * share a WAL flush by itself, and one writer's batches in a row, every
 * statement and savepoint a round trip, capped posting (the overload bench on
 * PostgreSQL: batches of 15–50 ms back to back, posts waiting ~85 ms at 50 a
 * second). Nothing relies on one node's writes being serial: several nodes
 * already write to the same primary at once. SQLite has one writer: 1 there.
 *
 * On PostgreSQL a batch that failed before COMMIT because the primary went
 * away is run again (a fresh transaction, on whichever server is primary
 * now) for up to `retryUnavailableMs`: the callers see a slow write, not an
 * error, across a failover.
 */
import type { ControlledTransaction, Kysely, Transaction } from 'kysely';
import { classifyDbError } from './errors.js';
import { StarlingError } from '../domain/errors.js';
import type { Database } from './schema.js';

export type WriteFn<T> = (trx: Transaction<Database>) => Promise<T>;

export interface Writer {
  write<T>(fn: WriteFn<T>): Promise<T>;
  /** Batches committed and writes done, for metrics and benchmarks. */
  readonly stats: { batches: number; writes: number; largestBatch: number; rejectedFull: number; timedOut: number; retried: number; raced: number };
  /** Writes waiting for a batch now (the one committing not counted): load shedding reads it. */
  readonly queued: number;
}

export interface WriterOptions {
  maxBatch?: number;
  /** More waiting writes than this and a new one fails at once (503). Default 10 000. */
  maxQueue?: number;
  /** A write that waited longer than this before its batch began fails (503) without running. Default 10 s. */
  queueTimeoutMs?: number;
  /** A batch ended: how many writes it answered and how long it took from BEGIN to COMMIT (ms). */
  onBatch?: (size: number, ms: number) => void;
  /** A batch takes no further write once it has run this long (ms); the rest wait for the next. Default: no bound. */
  maxBatchMs?: number;
  /**
   * How long a batch that failed because the database went away (store/errors.ts 'unavailable': a PostgreSQL
   * failover) is run again before its callers hear the error. Default 10 s, about a Patroni failover. SQLite
   * never fails that way.
   */
  retryUnavailableMs?: number;
  /** Read when a write is queued: true if someone waits for it (a request), so it goes ahead of background writes. */
  isForeground?: () => boolean;
  /** Read when a write is queued: what `beforeCommit` is told about it (the signed-in account it is made for). */
  tagOf?: () => string | null;
  /**
   * Runs in each batch's transaction just before COMMIT, with the tags of its writes (the read fences,
   * store/replica.ts). Failing fails the batch as its COMMIT would.
   */
  beforeCommit?: (trx: Transaction<Database>, tags: (string | null)[]) => Promise<void>;
  /**
   * Batches that may run at once, each in its own transaction (PostgreSQL; a new write starts a batch of its own
   * while a lane is free). Default 1: SQLite allows one writer at a time.
   */
  lanes?: number;
}

interface Pending {
  fn: WriteFn<unknown>;
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
  queuedAt: number;
  tag: string | null;
  background: boolean;
  /** Times it lost a race (deadlock, serialization failure) and went back to the queue. */
  raced: number;
}

/**
 * How often a write that lost a race on PostgreSQL (deadlock 40P01, serialization failure 40001, lock not
 * available 55P03: store/errors.ts 'busy') goes back to the queue before its caller hears the error. Its
 * savepoint or transaction was rolled back, so nothing of it was kept; run again after the batch that held it
 * has committed (the other side of a deadlock waits for locks this batch still holds), it finds the locks free.
 * Lanes and several nodes writing at once make such races possible; they are not the caller's fault.
 */
const MAX_RACES = 3;

/** A write that lost a race on PostgreSQL (see MAX_RACES), as opposed to SQLite's lock held by another process. */
const lostRace = (err: unknown, p: Pending) => p.raced < MAX_RACES && !isBusy(err) && classifyDbError(err) === 'busy';

/** SQLite's "someone else holds the write lock": no write in this batch can succeed now. */
export const isBusy = (err: unknown) => (err as { code?: string } | null)?.code === 'SQLITE_BUSY';

export function createWriter(db: Kysely<Database>, opts: WriterOptions = {}): Writer {
  const maxBatch = opts.maxBatch ?? 128;
  const maxQueue = opts.maxQueue ?? 10_000;
  const queueTimeoutMs = opts.queueTimeoutMs ?? 10_000;
  const retryUnavailableMs = opts.retryUnavailableMs ?? 10_000;
  const lanes = Math.max(1, opts.lanes ?? 1);
  // Waiting writes, foreground (for a request) and background (jobs), each in the order they came.
  const foreground: Pending[] = [];
  const background: Pending[] = [];
  const waiting = () => foreground.length + background.length;
  /** The next batch: the oldest background write if any (so jobs always move), then foreground ones, then background. */
  const nextBatch = (): Pending[] => {
    const first = background.splice(0, 1);
    const fg = foreground.splice(0, maxBatch - first.length);
    return [...first, ...fg, ...background.splice(0, maxBatch - first.length - fg.length)];
  };
  const stats = { batches: 0, writes: 0, largestBatch: 0, rejectedFull: 0, timedOut: 0, retried: 0, raced: 0 };
  /** Back to the front of its queue, to run in a later batch (a lane is running: its loop takes it). */
  const requeue = (p: Pending) => {
    p.raced++;
    stats.raced++;
    (p.background ? background : foreground).unshift(p);
  };
  /** Lanes taking batches now. */
  let active = 0;

  /** Counts a batch of `n` writes begun at `started`, before its callers hear how it went (they may read the stats at once). */
  function counted(n: number, started: number): void {
    stats.batches++;
    stats.writes += n;
    stats.largestBatch = Math.max(stats.largestBatch, n);
    opts.onBatch?.(n, performance.now() - started);
  }

  /**
   * Runs one batch. Returns 'retry', having answered nobody, when it failed before COMMIT because the database
   * went away (a PostgreSQL failover: store/errors.ts 'unavailable') and `mayRetry`: the server then kept
   * nothing of it, so running it again is safe. A COMMIT cut off that way is not retried: whether it was
   * kept is unknown, and its callers hear the error (a client retries a post under its idempotency key).
   * Otherwise returns how many of the batch, from its start, it answered: fewer than all when it ran out of
   * `maxBatchMs`; the others have not begun.
   */
  async function runBatch(batch: Pending[], mayRetry: boolean): Promise<'retry' | number> {
    const retryable = (err: unknown) => mayRetry && classifyDbError(err) === 'unavailable';
    const started = performance.now();
    let trx: ControlledTransaction<Database>;
    try {
      trx = await db.startTransaction().execute();
    } catch (err) {
      // BEGIN itself can fail (the connection is closed, the database is locked): every caller hears it.
      if (retryable(err)) return 'retry';
      counted(batch.length, started);
      for (const item of batch) item.reject(err);
      return batch.length;
    }
    // A single write needs no savepoint: it is the whole transaction.
    if (batch.length === 1) {
      const [item] = batch;
      let committing = false;
      try {
        const value = await item.fn(trx);
        if (opts.beforeCommit) await opts.beforeCommit(trx, [item.tag]);
        committing = true;
        await trx.commit().execute();
        counted(1, started);
        item.resolve(value);
      } catch (err) {
        // SQLite rolls back by itself after some errors (SQLITE_FULL, SQLITE_IOERR): a failing ROLLBACK then
        // must not replace the error that says what happened. A COMMIT cut off is not retried (see above).
        await trx.rollback().execute().catch(() => {});
        if (!committing && retryable(err)) return 'retry';
        counted(1, started);
        if (!committing && lostRace(err, item)) requeue(item);
        else item.reject(err);
      }
      return 1;
    }
    const outcomes: ({ ok: true; value: unknown } | { ok: false; error: unknown })[] = [];
    let committing = false;
    let end = batch.length;
    try {
      for (let i = 0; i < batch.length; i++) {
        if (i > 0 && opts.maxBatchMs !== undefined && performance.now() - started >= opts.maxBatchMs) {
          end = i;
          break;
        }
        const name = `w${i}`;
        const sp = await trx.savepoint(name).execute();
        try {
          const value = await batch[i].fn(sp);
          await sp.releaseSavepoint(name).execute();
          outcomes.push({ ok: true, value });
        } catch (error) {
          // Locked by another connection: the rest would each wait out the busy timeout for nothing.
          // The database went away: the transaction is gone with it.
          if (isBusy(error) || classifyDbError(error) === 'unavailable') throw error;
          try {
            await sp.rollbackToSavepoint(name).execute();
            await sp.releaseSavepoint(name).execute();
          } catch {
            // The transaction is gone (SQLite rolled it back after a disk or I/O error): the batch fails with the cause.
            throw error;
          }
          outcomes.push({ ok: false, error });
        }
      }
      // Fences for the writes that happened: one rolled back to its savepoint changed nothing to read back.
      if (opts.beforeCommit) await opts.beforeCommit(trx, batch.slice(0, end).flatMap((b, i) => (outcomes[i].ok ? [b.tag] : [])));
      committing = true;
      await trx.commit().execute();
    } catch (err) {
      // The commit itself failed (disk full, I/O error): nothing in the batch happened.
      await trx.rollback().execute().catch(() => {});
      if (!committing && retryable(err)) return 'retry';
      counted(end, started);
      for (const item of batch.slice(0, end)) item.reject(err);
      return end;
    }
    counted(end, started);
    outcomes.forEach((o, i) => {
      if (o.ok) batch[i].resolve(o.value);
      else if (lostRace(o.error, batch[i])) requeue(batch[i]);
      else batch[i].reject(o.error);
    });
    return end;
  }

  /** A batch again and again while the database is away (failover), within `retryUnavailableMs`, backing off. */
  async function runWithRetries(batch: Pending[]): Promise<number> {
    const deadline = Date.now() + retryUnavailableMs;
    let delay = 50;
    for (;;) {
      const answered = await runBatch(batch, Date.now() < deadline);
      if (answered !== 'retry') return answered;
      stats.retried++;
      await new Promise((r) => setTimeout(r, Math.min(delay, Math.max(0, deadline - Date.now()))));
      delay = Math.min(delay * 2, 1000);
    }
  }

  /** One lane: batches one after another while writes wait. */
  async function drain(): Promise<void> {
    active++;
    try {
      while (waiting() > 0) {
        const now = Date.now();
        const batch: Pending[] = [];
        for (const item of nextBatch()) {
          if (now - item.queuedAt > queueTimeoutMs) {
            stats.timedOut++;
            item.reject(new StarlingError('overloaded', undefined, { details: { retryAfter: 5 }, cause: new Error(`write waited ${now - item.queuedAt} ms`) }));
          } else batch.push(item);
        }
        if (batch.length === 0) continue;
        const answered = await runWithRetries(batch);
        // Out of time: the rest, not begun, go first in the next batch, each back to its own queue.
        const rest = batch.slice(answered);
        foreground.unshift(...rest.filter((p) => !p.background));
        background.unshift(...rest.filter((p) => p.background));
        // A bounded batch is only worth it if the next one does not follow at once: the event loop has a turn first.
        if (opts.maxBatchMs !== undefined && waiting() > 0) await new Promise((r) => setImmediate(r));
      }
    } finally {
      active--;
    }
  }

  return {
    stats,
    get queued() {
      return waiting();
    },
    write<T>(fn: WriteFn<T>): Promise<T> {
      if (waiting() >= maxQueue) {
        stats.rejectedFull++;
        return Promise.reject(new StarlingError('overloaded', undefined, { details: { retryAfter: 5 }, cause: new Error(`${waiting()} writes waiting`) }));
      }
      return new Promise<T>((resolve, reject) => {
        const isBackground = opts.isForeground ? !opts.isForeground() : false;
        (isBackground ? background : foreground).push({
          fn: fn as WriteFn<unknown>,
          resolve: resolve as (v: unknown) => void,
          reject,
          queuedAt: Date.now(),
          tag: opts.tagOf?.() ?? null,
          background: isBackground,
          raced: 0,
        });
        if (active < lanes) void drain();
      });
    },
  };
}
