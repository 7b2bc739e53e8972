/**
 * Indexes for account search, so that finding people reads what matches
 * instead of every account. Frozen: a later change is a new migration.
 *
 * Before it, `searchAccounts` matched `lower(display_name) LIKE '% word%'`,
 * which no index serves: every search read the whole accounts table (25–45 ms
 * a search on 100,000 accounts on SQLite, the event loop held all the while;
 * docs/PERFORMANCE.md).
 *
 * - Display names: word prefixes through a full-text index, as status search
 *   (0002, 0006), with the same tokenizers: case- and accent-insensitive.
 *   SQLite: a contentless FTS5 table `accounts_fts` (rowid = accounts.id)
 *   kept in step by triggers. PostgreSQL: a GIN index on
 *   `to_tsvector('simple', starling_unaccent(display_name))`; the function is
 *   0006's.
 * - Usernames: a prefix is a range on `username_lower`. SQLite's unique index
 *   (BINARY) serves it as it is. On PostgreSQL that index sorts by the
 *   database's collation, under which a range need not be a prefix (glibc's
 *   en_US ignores `_` at first), so a second index sorts by bytes
 *   (`COLLATE "C"`) and the query names that collation.
 *
 * store/search.ts (`accountSearchFor`) writes the conditions with the very
 * same expressions, or the indexes would not be used.
 */
import { sql, SqliteAdapter, type Kysely } from 'kysely';

const isSqlite = (db: Kysely<any>) => db.getExecutor().adapter instanceof SqliteAdapter;

export async function up(db: Kysely<any>): Promise<void> {
  if (!isSqlite(db)) {
    await sql`CREATE INDEX accounts_username_c ON accounts ((username_lower COLLATE "C"))`.execute(db);
    await sql`CREATE INDEX accounts_display_name_search ON accounts
      USING gin (to_tsvector('simple'::regconfig, starling_unaccent(display_name)))`.execute(db);
    return;
  }
  await sql`CREATE VIRTUAL TABLE accounts_fts USING fts5(
    display_name,
    content = '', contentless_delete = 1,
    tokenize = 'unicode61 remove_diacritics 2'
  )`.execute(db);
  // The DELETE first makes the insert safe if a row with this id was replaced without delete triggers firing.
  await sql`CREATE TRIGGER accounts_fts_insert AFTER INSERT ON accounts BEGIN
    DELETE FROM accounts_fts WHERE rowid = new.id;
    INSERT INTO accounts_fts (rowid, display_name) VALUES (new.id, new.display_name);
  END`.execute(db);
  // Only a changed name re-indexes: counters and last_status_at are updated on every post.
  await sql`CREATE TRIGGER accounts_fts_update AFTER UPDATE OF id, display_name ON accounts BEGIN
    DELETE FROM accounts_fts WHERE rowid = old.id;
    INSERT INTO accounts_fts (rowid, display_name) VALUES (new.id, new.display_name);
  END`.execute(db);
  await sql`CREATE TRIGGER accounts_fts_delete AFTER DELETE ON accounts BEGIN
    DELETE FROM accounts_fts WHERE rowid = old.id;
  END`.execute(db);
  await sql`INSERT INTO accounts_fts (rowid, display_name) SELECT id, display_name FROM accounts`.execute(db);
  // A bulk insert leaves the index in many segments, each searched by every query until FTS5's automerge
  // gets to them; merged now, the first searches after an upgrade are as fast as later ones.
  await sql`INSERT INTO accounts_fts (accounts_fts) VALUES ('optimize')`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  if (!isSqlite(db)) {
    await sql`DROP INDEX IF EXISTS accounts_display_name_search`.execute(db);
    await sql`DROP INDEX IF EXISTS accounts_username_c`.execute(db);
    return;
  }
  for (const t of ['accounts_fts_insert', 'accounts_fts_update', 'accounts_fts_delete']) {
    await sql`DROP TRIGGER IF EXISTS ${sql.id(t)}`.execute(db);
  }
  await sql`DROP TABLE IF EXISTS accounts_fts`.execute(db);
}
