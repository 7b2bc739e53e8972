/**
 * Full-text search index for statuses on PostgreSQL (SQLite's is FTS5, made
 * by 0002-search). Frozen: a later change is a new migration.
 *
 * A partial GIN expression index over `spoiler_text || ' ' || text`, only for
 * originals that are not deleted, so it never holds a reblog or a deleted
 * status and needs no triggers: PostgreSQL keeps it in step with `statuses`
 * itself. Configuration 'simple' (no stemming, as FTS5's unicode61) over
 * unaccented text, so search is case- and accent-insensitive as on SQLite
 * ("Café" is found by "cafe"). `unaccent` is a trusted extension: the
 * database owner may create it. It is wrapped in an IMMUTABLE function (with
 * the dictionary named) because an index expression must be immutable.
 *
 * store/search.ts writes the matching condition with the very same
 * expression and predicate, or the planner would not use the index.
 *
 * On SQLite this migration does nothing.
 */
import { sql, SqliteAdapter, type Kysely } from 'kysely';

const isSqlite = (db: Kysely<any>) => db.getExecutor().adapter instanceof SqliteAdapter;

export async function up(db: Kysely<any>): Promise<void> {
  if (isSqlite(db)) return;
  await sql`CREATE EXTENSION IF NOT EXISTS unaccent`.execute(db);
  await sql`CREATE OR REPLACE FUNCTION starling_unaccent(text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
    AS $$ SELECT public.unaccent('public.unaccent'::regdictionary, $1) $$`.execute(db);
  await sql`CREATE INDEX statuses_search ON statuses
    USING gin (to_tsvector('simple'::regconfig, starling_unaccent(spoiler_text || ' ' || text)))
    WHERE reblog_of_id IS NULL AND deleted_at IS NULL`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  if (isSqlite(db)) return;
  await sql`DROP INDEX IF EXISTS statuses_search`.execute(db);
  await sql`DROP FUNCTION IF EXISTS starling_unaccent(text)`.execute(db);
}
