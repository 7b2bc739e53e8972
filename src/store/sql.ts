/** Small SQL expressions that must read the same on SQLite and PostgreSQL. */
import { sql, SqliteAdapter, type Kysely, type RawBuilder } from 'kysely';

/** `col - 1`, never below zero (counters must not go negative if a job runs twice). */
export function decrement(column: string): RawBuilder<number> {
  const c = sql.ref(column);
  return sql<number>`CASE WHEN ${c} > 0 THEN ${c} - 1 ELSE 0 END`;
}

export function increment(column: string): RawBuilder<number> {
  return sql<number>`${sql.ref(column)} + 1`;
}

/**
 * An id (or null) as a bigint value where nothing else gives it a type: in the
 * select list of INSERT … SELECT, PostgreSQL reads an untyped parameter as
 * text and refuses it for a bigint column. On SQLite the cast changes nothing.
 */
export function idValue(id: string | null): RawBuilder<string | null> {
  return sql<string | null>`CAST(${id} AS bigint)`;
}

/**
 * A column that SQLite must not use an index for in this term: SQLite's unary `+`
 * (sqlite.org/optoverview.html, "Disqualifying WHERE clause terms using unary +").
 * For terms where sampled or stale statistics (ANALYZE with analysis_limit, as the seeder runs
 * it) lead SQLite to a plan that reads far more rows than the page needs. PostgreSQL plans from its own statistics and has no unary + for text, so there
 * the column stays as it is.
 */
export function sqliteUnindexed(db: Kysely<any>, column: string): RawBuilder<unknown> {
  return db.getExecutor().adapter instanceof SqliteAdapter ? sql`+${sql.ref(column)}` : sql`${sql.ref(column)}`;
}
