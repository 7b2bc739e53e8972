/**
 * PostgreSQL only: statements with parameters are prepared on their connection and run again by name (one round
 * trip, a plan PostgreSQL may keep), and what must not be prepared is not. A real database, one connection, so
 * `pg_prepared_statements` (which lists the asking connection's own) sees what the queries before it left.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { sql } from 'kysely';
import { openPostgres, type OpenedDatabase } from '../../src/store/db.js';
import { onPostgres } from '../helpers/server.js';
import { createTestDatabase } from '../helpers/postgres.js';

let opened: OpenedDatabase | null = null;
let url = '';
afterEach(async () => {
  await opened?.close();
  opened = null;
});

async function open() {
  url = await createTestDatabase(process.env.STARLING_TEST_PG_URL!);
  opened = openPostgres(url, undefined, { max: 1 });
  return opened.db;
}

/** The statements this connection has prepared (no parameters: sent as a simple query, so not one of them). */
async function prepared(db: OpenedDatabase['db']): Promise<string[]> {
  const { rows } = await sql<{ statement: string }>`SELECT statement FROM pg_prepared_statements`.execute(db);
  return rows.map((r) => r.statement);
}

const tag = (id: number) => ({ id: String(1_000_000_000_000_000_000n + BigInt(id)), name: `t${id}`, created_at: '2026-01-01T00:00:00.000Z' });

describe.runIf(onPostgres)('PostgreSQL: prepared statements', () => {
  it('prepares a statement with parameters once and runs it again by name, with the right answers', async () => {
    const db = await open();
    await db.insertInto('tags').values([tag(1), tag(2), tag(3)]).execute();
    const byName = (name: string) => db.selectFrom('tags').select('id').where('name', '=', name).executeTakeFirst();
    expect((await byName('t1'))?.id).toBe(tag(1).id);
    expect((await byName('t2'))?.id).toBe(tag(2).id);
    expect(await byName('nope')).toBeUndefined();
    const mine = (await prepared(db)).filter((s) => /from "tags" where "name" = \$1/.test(s));
    // Three runs, one statement.
    expect(mine).toHaveLength(1);
  });

  it('does not prepare schema changes, nor statements with more parameters than a page of ids', async () => {
    const db = await open();
    const many = Array.from({ length: 300 }, (_, i) => tag(100 + i));
    await db.insertInto('tags').values(many).execute();
    const ids = many.map((t) => t.id);
    const found = await db.selectFrom('tags').select('id').where('id', 'in', ids).execute();
    expect(found).toHaveLength(300);
    await db.schema.createIndex('tags_name_len').on('tags').expression(sql`length(name)`).execute();
    const statements = await prepared(db);
    expect(statements.some((s) => /^insert into "tags"/.test(s))).toBe(false);
    expect(statements.some((s) => /"id" in \(/.test(s))).toBe(false);
    expect(statements.some((s) => /create index/i.test(s))).toBe(false);
  });

  it('answers a prepared statement again after the table under it changed (a migration on another node)', async () => {
    const db = await open();
    await db.insertInto('tags').values(tag(1)).execute();
    const row = () => sql<Record<string, unknown>>`SELECT * FROM tags WHERE id = ${tag(1).id}`.execute(db).then((r) => r.rows[0]);
    expect(Object.keys(await row())).not.toContain('added');
    expect((await prepared(db)).some((s) => /SELECT \* FROM tags WHERE id = \$1/.test(s))).toBe(true);
    // Another connection changes the table: the prepared statement's result would change type.
    const other = openPostgres(url, undefined, { max: 1 });
    try {
      await sql`ALTER TABLE tags ADD COLUMN added integer NOT NULL DEFAULT 7`.execute(other.db);
    } finally {
      await other.close();
    }
    const after = await row();
    expect(after.added).toBe(7);
    expect(after.id).toBe(tag(1).id);
  });
});

