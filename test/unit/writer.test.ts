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
