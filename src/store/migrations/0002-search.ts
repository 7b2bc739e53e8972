/**
 * Full-text search index for statuses. Frozen: a later change is a new migration.
 *
 * On SQLite: an FTS5 table `statuses_fts` over `text` and `spoiler_text`,
 * contentless (it stores only the index, not a second copy of the text) with
 * `contentless_delete=1` (SQLite 3.43+; better-sqlite3 bundles a newer one) so a
 * row can be removed by rowid alone, and rowid = statuses.id. Triggers keep it
 * in step with `statuses`, so no service writes to it:
 *
 * - only originals that are not deleted are indexed: a reblog (empty text) or a
 *   soft-deleted status is never in the index;
 * - an edit, a soft delete or an undelete re-indexes the row (or drops it);
 * - a hard delete (an account removed with its statuses) drops the row.
 *
 * The `UPDATE OF` column list means counter updates (replies, favourites) do
 * not touch the index. Tokenizer `unicode61 remove_diacritics 2`: case- and
 * accent-insensitive ("Café" is found by "cafe").
 *
 * On other dialects this migration does nothing: PostgreSQL will get its own
 * index (a tsvector column with a GIN index) from a later migration, and
 * `store/search.ts` holds the matching query side. Services do not change.
 */
import { sql, SqliteAdapter, type Kysely } from 'kysely';

const isSqlite = (db: Kysely<any>) => db.getExecutor().adapter instanceof SqliteAdapter;

export async function up(db: Kysely<any>): Promise<void> {
  if (!isSqlite(db)) return;
  await sql`CREATE VIRTUAL TABLE statuses_fts USING fts5(
    text, spoiler_text,
    content = '', contentless_delete = 1,
    tokenize = 'unicode61 remove_diacritics 2'
  )`.execute(db);

  // The DELETE first makes the insert safe even if a row with this id was
  // replaced without delete triggers firing (INSERT OR REPLACE).
  await sql`CREATE TRIGGER statuses_fts_insert AFTER INSERT ON statuses BEGIN
    DELETE FROM statuses_fts WHERE rowid = new.id;
    INSERT INTO statuses_fts (rowid, text, spoiler_text)
      SELECT new.id, new.text, new.spoiler_text WHERE new.reblog_of_id IS NULL AND new.deleted_at IS NULL;
  END`.execute(db);

  await sql`CREATE TRIGGER statuses_fts_update AFTER UPDATE OF id, text, spoiler_text, reblog_of_id, deleted_at ON statuses BEGIN
    DELETE FROM statuses_fts WHERE rowid = old.id;
    INSERT INTO statuses_fts (rowid, text, spoiler_text)
      SELECT new.id, new.text, new.spoiler_text WHERE new.reblog_of_id IS NULL AND new.deleted_at IS NULL;
  END`.execute(db);

  await sql`CREATE TRIGGER statuses_fts_delete AFTER DELETE ON statuses BEGIN
    DELETE FROM statuses_fts WHERE rowid = old.id;
  END`.execute(db);

  // Statuses written before this migration.
  await sql`INSERT INTO statuses_fts (rowid, text, spoiler_text)
    SELECT id, text, spoiler_text FROM statuses WHERE reblog_of_id IS NULL AND deleted_at IS NULL`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  if (!isSqlite(db)) return;
  for (const t of ['statuses_fts_insert', 'statuses_fts_update', 'statuses_fts_delete']) {
    await sql`DROP TRIGGER IF EXISTS ${sql.id(t)}`.execute(db);
  }
  await sql`DROP TABLE IF EXISTS statuses_fts`.execute(db);
}
