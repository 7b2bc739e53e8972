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
 */
import type { Kysely, Transaction } from 'kysely';
import type { Database } from './schema.js';

export type WriteFn<T> = (trx: Transaction<Database>) => Promise<T>;

export interface Writer {
  write<T>(fn: WriteFn<T>): Promise<T>;
  /** Batches committed and writes done, for metrics and benchmarks. */
  readonly stats: { batches: number; writes: number; largestBatch: number };
}

interface Pending {
  fn: WriteFn<unknown>;
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
}

export function createWriter(db: Kysely<Database>, opts: { maxBatch?: number; onBatch?: (size: number) => void } = {}): Writer {
  const maxBatch = opts.maxBatch ?? 128;
  const queue: Pending[] = [];
  const stats = { batches: 0, writes: 0, largestBatch: 0 };
  let draining = false;

  async function runBatch(batch: Pending[]): Promise<void> {
    // A single write needs no savepoint: it is the whole transaction.
    if (batch.length === 1) {
      const [item] = batch;
      try {
        item.resolve(await db.transaction().execute(item.fn));
      } catch (err) {
        item.reject(err);
      }
      return;
    }
    const outcomes: ({ ok: true; value: unknown } | { ok: false; error: unknown })[] = [];
    const trx = await db.startTransaction().execute();
    try {
      for (let i = 0; i < batch.length; i++) {
        const name = `w${i}`;
        const sp = await trx.savepoint(name).execute();
        try {
          const value = await batch[i].fn(sp);
          await sp.releaseSavepoint(name).execute();
          outcomes.push({ ok: true, value });
        } catch (error) {
          await sp.rollbackToSavepoint(name).execute();
          await sp.releaseSavepoint(name).execute();
          outcomes.push({ ok: false, error });
        }
      }
      await trx.commit().execute();
    } catch (err) {
      // The commit itself failed (disk full, I/O error): nothing in the batch happened.
      await trx.rollback().execute().catch(() => {});
      for (const item of batch) item.reject(err);
      return;
    }
    outcomes.forEach((o, i) => (o.ok ? batch[i].resolve(o.value) : batch[i].reject(o.error)));
  }

  async function drain(): Promise<void> {
    draining = true;
    try {
      while (queue.length > 0) {
        const batch = queue.splice(0, maxBatch);
        stats.batches++;
        stats.writes += batch.length;
        stats.largestBatch = Math.max(stats.largestBatch, batch.length);
        opts.onBatch?.(batch.length);
        await runBatch(batch);
      }
    } finally {
      draining = false;
    }
  }

  return {
    stats,
    write<T>(fn: WriteFn<T>): Promise<T> {
      return new Promise<T>((resolve, reject) => {
        queue.push({ fn: fn as WriteFn<unknown>, resolve: resolve as (v: unknown) => void, reject });
        if (!draining) void drain();
      });
    },
  };
}
