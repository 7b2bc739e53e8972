/**
 * Read fences: per account, the transaction that last wrote on its behalf (PostgreSQL's pg_current_xact_id(),
 * as text). Reads by that account may use a replica only once the replica has applied that transaction
 * (store/replica.ts), so an author always reads their own writes, whichever node served the write.
 * SQLite has one database and never fills it. Frozen: a later change is a new migration.
 */
import type { Kysely } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  // No foreign key: a fence for a deleted account is harmless, and the key check would lock the account row.
  await db.schema
    .createTable('read_fences')
    .addColumn('account_id', 'bigint', (c) => c.primaryKey())
    .addColumn('xid', 'text', (c) => c.notNull())
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('read_fences').ifExists().execute();
}
