/**
 * Group commit on a real SQLite file, or (in the postgres test project) a real PostgreSQL database:
 * batching, isolation of failures, durability order, and on PostgreSQL retries across a lost connection.
 */
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { sql } from 'kysely';
import { openPostgres, openSqlite, migrateToLatest, type OpenedDatabase } from '../../src/store/db.js';
import { createWriter } from '../../src/store/writer.js';
import { classifyDbError } from '../../src/store/errors.js';
import { onPostgres, tempDir } from '../helpers/server.js';
import { createTestDatabase } from '../helpers/postgres.js';

let opened: OpenedDatabase | null = null;
const dir = tempDir();
afterAll(() => dir.remove());
afterEach(async () => {
  await opened?.close();
  opened = null;
});

async function open() {
  if (onPostgres) {
    // A fresh database, migrated (cloned from the run's template).
    opened = openPostgres(await createTestDatabase(process.env.STARLING_TEST_PG_URL!));
    return opened;
  }
  opened = openSqlite(join(dir.path, `w${Math.random()}.sqlite`));
  await migrateToLatest(opened.db);
  return opened;
}

const tag = (id: number) => ({ id: String(1_000_000_000_000_000_000n + BigInt(id)), name: `t${id}`, created_at: '2026-01-01T00:00:00.000Z' });

/** 200 writes at once: each answered with its own value, in fewer batches than writes, each row kept once. */
async function expectBatchedOnce(db: OpenedDatabase['db'], writer: ReturnType<typeof createWriter>) {
  const results = await Promise.all(Array.from({ length: 200 }, (_, i) => writer.write((trx) => trx.insertInto('tags').values(tag(i)).execute().then(() => i))));
  expect(results).toEqual(Array.from({ length: 200 }, (_, i) => i));
  expect(writer.stats.batches).toBeLessThan(200);
  expect(writer.stats.largestBatch).toBeGreaterThan(1);
  const count = await db.selectFrom('tags').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
  expect(Number(count.n)).toBe(200);
}

describe('group commit writer', () => {
  it('batches concurrent writes into fewer transactions, each answered after commit', async () => {
    const { db } = await open();
    const writer = createWriter(db);
    await expectBatchedOnce(db, writer);
    expect(writer.stats.writes).toBe(200);
  });

  it('with maxBatchMs, ends a batch that ran that long, commits it, and lets the event loop turn before the rest, in order', async () => {
    const { db } = await open();
    const writer = createWriter(db, { maxBatchMs: 5 });
    const ran: number[] = [];
    // The loop's turns while the writes run: a batch that held the loop throughout would leave none.
    let turns = 0;
    let counting = true;
    const count = () => {
      turns++;
      if (counting) setImmediate(count);
    };
    setImmediate(count);
    const slowWrite = (i: number) =>
      writer.write(async (trx) => {
        await trx.insertInto('tags').values(tag(i)).execute();
        ran.push(i);
        // 2 ms of work that does not yield, as a fan-out to many followers is on SQLite.
        const until = performance.now() + 2;
        while (performance.now() < until);
        return i;
      });
    const results = await Promise.all(Array.from({ length: 30 }, (_, i) => slowWrite(i)));
    counting = false;
    expect(results).toEqual(Array.from({ length: 30 }, (_, i) => i));
    expect(ran).toEqual(Array.from({ length: 30 }, (_, i) => i));
    expect(writer.stats.writes).toBe(30);
    // 2 ms each, cut at 5 ms: three per batch at most, and the loop turned between batches.
    expect(writer.stats.largestBatch).toBeLessThanOrEqual(3);
    expect(writer.stats.batches).toBeGreaterThanOrEqual(10);
    if (!onPostgres) expect(turns).toBeGreaterThanOrEqual(writer.stats.batches - 1);
    const n = await db.selectFrom('tags').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
    expect(Number(n.n)).toBe(30);
  });

  it('puts the writes someone waits for ahead of background ones, and still moves the background ones in every batch', async () => {
    const { db } = await open();
    let foregroundNow = false;
    const writer = createWriter(db, { maxBatch: 4, isForeground: () => foregroundNow });
    const order: string[] = [];
    const write = (name: string, i: number) => writer.write((trx) => trx.insertInto('tags').values(tag(i)).execute().then(() => order.push(name)));
    // A first write starts a batch at once; everything after it waits for the next batches.
    const all = [write('b0', 0)];
    for (let i = 1; i <= 6; i++) all.push(write(`b${i}`, i));
    foregroundNow = true;
    for (let i = 1; i <= 4; i++) all.push(write(`f${i}`, 100 + i));
    foregroundNow = false;
    await Promise.all(all);
    // Batches of 4: the oldest background write, then the foreground ones in order, then background ones in order.
    expect(order).toEqual(['b0', 'b1', 'f1', 'f2', 'f3', 'b2', 'f4', 'b3', 'b4', 'b5', 'b6']);
    expect(writer.stats.batches).toBe(4);
  });

  it('rolls back a failing write without losing the others in its batch', async () => {
    const { db } = await open();
    const writer = createWriter(db);
    const outcomes = await Promise.allSettled(
      Array.from({ length: 20 }, (_, i) =>
        writer.write(async (trx) => {
          await trx.insertInto('tags').values(tag(i)).execute();
          // Every fifth write inserts a duplicate after its first row: all of it must be undone.
          if (i % 5 === 0) await trx.insertInto('tags').values(tag(i)).execute();
          return i;
        }),
      ),
    );
    expect(outcomes.filter((o) => o.status === 'rejected')).toHaveLength(4);
    const names = (await db.selectFrom('tags').select('name').orderBy('name').execute()).map((r) => r.name);
    expect(names).toHaveLength(16);
    expect(names).not.toContain('t0');
    expect(names).not.toContain('t5');
  });

  it('behaves as a plain transaction for a lone write', async () => {
    const { db } = await open();
    const writer = createWriter(db);
    await expect(writer.write(async (trx) => {
      await trx.insertInto('tags').values(tag(1)).execute();
      throw new Error('no');
    })).rejects.toThrow('no');
    expect(await db.selectFrom('tags').selectAll().execute()).toEqual([]);
    expect(writer.stats.batches).toBe(1);
  });
});

describe('database errors', () => {
  it('classifies a unique violation as the write’s own fault (constraint), not the database’s', async () => {
    const { db } = await open();
    await db.insertInto('tags').values(tag(1)).execute();
    const err = await db.insertInto('tags').values(tag(1)).execute().catch((e: unknown) => e);
    expect(classifyDbError(err)).toBe('constraint');
    expect(classifyDbError(new Error('not from a database'))).toBe('other');
  });
});

describe.runIf(onPostgres)('PostgreSQL: the primary going away', () => {
  /** Ends this transaction's own server process, as a primary that crashed or shut down would (57P01). */
  const dropConnection = (trx: Parameters<Parameters<ReturnType<typeof createWriter>['write']>[0]>[0]) =>
    sql`SELECT pg_terminate_backend(pg_backend_pid())`.execute(trx).catch((err: unknown) => {
      expect(classifyDbError(err)).toBe('unavailable');
      throw err;
    });

  it('runs a lone write again on a new connection, once, when its connection died before COMMIT', async () => {
    const { db } = await open();
    const writer = createWriter(db);
    let attempts = 0;
    const value = await writer.write(async (trx) => {
      attempts++;
      await trx.insertInto('tags').values(tag(1)).execute();
      if (attempts === 1) await dropConnection(trx);
      return 'kept';
    });
    expect(value).toBe('kept');
    expect(attempts).toBe(2);
    expect(writer.stats.retried).toBe(1);
    expect((await db.selectFrom('tags').select('name').execute()).map((r) => r.name)).toEqual(['t1']);
  });

  it('runs a whole batch again when one write’s connection died, and keeps every write exactly once', async () => {
    const { db } = await open();
    const writer = createWriter(db);
    let dropped = false;
    // The first write holds the writer so the others gather into one batch behind it.
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const first = writer.write(async () => gate);
    const batch = Array.from({ length: 10 }, (_, i) =>
      writer.write(async (trx) => {
        await trx.insertInto('tags').values(tag(i)).execute();
        if (i === 5 && !dropped) {
          dropped = true;
          await dropConnection(trx);
        }
        return i;
      }),
    );
    release();
    await first;
    expect(await Promise.all(batch)).toEqual(Array.from({ length: 10 }, (_, i) => i));
    expect(writer.stats.retried).toBeGreaterThanOrEqual(1);
    const names = (await db.selectFrom('tags').select('name').orderBy('name').execute()).map((r) => r.name);
    expect(names).toEqual(Array.from({ length: 10 }, (_, i) => `t${i}`).sort());
  });

  it('gives up after retryUnavailableMs and lets the caller hear why (a standby: 25006)', async () => {
    const { db } = await open();
    const writer = createWriter(db, { retryUnavailableMs: 300 });
    const err = await writer
      .write(async (trx) => {
        // What a write meets on a server that is (still, or again) a standby.
        await sql`SET TRANSACTION READ ONLY`.execute(trx);
        await trx.insertInto('tags').values(tag(1)).execute();
      })
      .catch((e: unknown) => e);
    expect((err as { code?: string }).code).toBe('25006');
    expect(classifyDbError(err)).toBe('unavailable');
    expect(writer.stats.retried).toBeGreaterThanOrEqual(1);
    expect(await db.selectFrom('tags').selectAll().execute()).toEqual([]);
  });
});

describe.runIf(onPostgres)('PostgreSQL: lanes', () => {
  type Trx = Parameters<Parameters<ReturnType<typeof createWriter>['write']>[0]>[0];
  const pause = (trx: Trx, s: number) => sql`SELECT pg_sleep(${s})`.execute(trx);

  it('runs a write beside a slow batch instead of after it, each in its own transaction', async () => {
    const { db } = await open();
    for (const lanes of [1, 2]) {
      const writer = createWriter(db, { lanes });
      const answered: string[] = [];
      const slow = writer.write(async (trx) => {
        await trx.insertInto('tags').values(tag(lanes * 10)).execute();
        await pause(trx, 0.3);
      }).then(() => answered.push('slow'));
      const fast = writer.write((trx) => trx.insertInto('tags').values(tag(lanes * 10 + 1)).execute()).then(() => answered.push('fast'));
      await Promise.all([slow, fast]);
      // One lane: the fast write waits for the slow one's batch to commit. Two: it commits while the slow one sleeps.
      expect(answered).toEqual(lanes === 1 ? ['slow', 'fast'] : ['fast', 'slow']);
      expect(writer.stats.batches).toBe(2);
    }
    expect(await db.selectFrom('tags').select('name').orderBy('name').execute()).toEqual(['t10', 't11', 't20', 't21'].map((name) => ({ name })));
  });

  it('gathers writes into batches once every lane is busy, and keeps each exactly once', async () => {
    const { db } = await open();
    await expectBatchedOnce(db, createWriter(db, { lanes: 3 }));
  });

  it('runs a write that lost a deadlock again after the batch holding its locks committed, instead of failing it', async () => {
    const { db } = await open();
    await db.insertInto('tags').values([tag(1), tag(2)]).execute();
    const writer = createWriter(db, { lanes: 2 });
    // Two writes taking the same two rows in opposite orders, each holding the first while the other takes it:
    // PostgreSQL finds the deadlock (after deadlock_timeout, 1 s) and cancels one of them (40P01).
    const rename = (first: number, second: number, to: string) => (trx: Trx) =>
      trx.updateTable('tags').set({ name: `${to}${first}` }).where('id', '=', tag(first).id).execute()
        .then(() => pause(trx, 0.2))
        .then(() => trx.updateTable('tags').set({ name: `${to}${second}` }).where('id', '=', tag(second).id).execute());
    const outcomes = await Promise.allSettled([writer.write(rename(1, 2, 'a')), writer.write(rename(2, 1, 'b'))]);
    expect(outcomes.map((o) => o.status)).toEqual(['fulfilled', 'fulfilled']);
    expect(writer.stats.raced).toBe(1);
    // Both ran to their end, one after the other: every row carries the same writer's prefix.
    const names = (await db.selectFrom('tags').select('name').orderBy('id').execute()).map((r) => r.name);
    expect([['a1', 'a2'], ['b1', 'b2']]).toContainEqual(names);
  });
});

describe('bounds (overload protection)', () => {
  it('fails a write at once when the queue is full, and one that waited too long without running it', async () => {
    const { createWriter } = await import('../../src/store/writer.js');
    const { openSqlite, migrateToLatest } = await import('../../src/store/db.js');
    const database = openSqlite(':memory:');
    await migrateToLatest(database.db);
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const writer = createWriter(database.db, { maxQueue: 2, queueTimeoutMs: 30 });
    const first = writer.write(async () => gate); // holds the writer
    let ran = 0;
    const queued = [writer.write(async () => ran++), writer.write(async () => ran++)];
    expect(writer.queued).toBe(2);
    await expect(writer.write(async () => ran++)).rejects.toMatchObject({ code: 'overloaded', status: 503 });
    await new Promise((r) => setTimeout(r, 60));
    release();
    await first;
    for (const q of queued) await expect(q).rejects.toMatchObject({ code: 'overloaded' });
    expect(ran).toBe(0);
    expect(writer.stats).toMatchObject({ rejectedFull: 1, timedOut: 2 });
    expect(await writer.write(async () => 'ok')).toBe('ok');
    await database.close();
  });
});

describe('circuit breaker', () => {
  it('opens after K failures, fails fast, half-opens one trial after the cool-down, closes on success', async () => {
    const { CircuitBreaker } = await import('../../src/ops/breaker.js');
    let now = 0;
    const b = new CircuitBreaker({ failures: 3, coolDownMs: 1000, now: () => now });
    for (let i = 0; i < 2; i++) {
      expect(b.allow()).toBe(true);
      b.failure();
    }
    expect(b.state).toBe('closed');
    b.allow();
    b.failure();
    expect(b.state).toBe('open');
    expect(b.allow()).toBe(false);
    now = 1000;
    expect(b.state).toBe('half_open');
    expect(b.allow()).toBe(true);
    expect(b.allow()).toBe(false); // one trial at a time
    b.failure();
    expect(b.state).toBe('open');
    now = 2000;
    expect(b.allow()).toBe(true);
    b.success();
    expect(b.state).toBe('closed');
    expect(b.opens).toBe(2);
  });
});
