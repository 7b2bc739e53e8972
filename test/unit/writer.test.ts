/** Group commit on a real SQLite file: batching, isolation of failures, durability order. */
import { afterEach, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { openSqlite, migrateToLatest, type OpenedDatabase } from '../../src/store/db.js';
import { createWriter } from '../../src/store/writer.js';
import { tempDir } from '../helpers/server.js';

let opened: OpenedDatabase | null = null;
const dir = tempDir();
afterEach(async () => {
  await opened?.close();
  opened = null;
});

async function open() {
  opened = openSqlite(join(dir.path, `w${Math.random()}.sqlite`));
  await migrateToLatest(opened.db);
  return opened;
}

const tag = (id: number) => ({ id: String(1_000_000_000_000_000_000n + BigInt(id)), name: `t${id}`, created_at: '2026-01-01T00:00:00.000Z' });

describe('group commit writer', () => {
  it('batches concurrent writes into fewer transactions, each answered after commit', async () => {
    const { db } = await open();
    const writer = createWriter(db);
    const results = await Promise.all(Array.from({ length: 200 }, (_, i) => writer.write((trx) => trx.insertInto('tags').values(tag(i)).execute().then(() => i))));
    expect(results).toEqual(Array.from({ length: 200 }, (_, i) => i));
    expect(writer.stats.writes).toBe(200);
    expect(writer.stats.batches).toBeLessThan(200);
    expect(writer.stats.largestBatch).toBeGreaterThan(1);
    const count = await db.selectFrom('tags').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
    expect(Number(count.n)).toBe(200);
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
