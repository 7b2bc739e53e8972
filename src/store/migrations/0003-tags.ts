/**
 * Followed tags, and what trends need. Frozen: a later change is a new migration.
 *
 * Trends need no table of their own: they are computed on request from
 * status_tags, whose primary key (tag_id, status_id) already serves "this
 * tag's statuses in an id range" (ids are time-ordered), and from the
 * statuses primary key for "all statuses in the last hour".
 */
import type { Kysely } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  const s = db.schema;
  await s
    .createTable('followed_tags')
    .addColumn('id', 'bigint', (c) => c.primaryKey())
    .addColumn('account_id', 'bigint', (c) => c.notNull().references('accounts.id').onDelete('cascade'))
    .addColumn('tag_id', 'bigint', (c) => c.notNull().references('tags.id').onDelete('cascade'))
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addUniqueConstraint('followed_tags_unique', ['account_id', 'tag_id'])
    .execute();
  // Fan-out asks "who follows this tag"; the unique constraint serves "which tags does this account follow".
  await s.createIndex('followed_tags_tag').on('followed_tags').columns(['tag_id', 'account_id']).execute();
  // The followed-tags list is paged by id per account.
  await s.createIndex('followed_tags_account_id').on('followed_tags').columns(['account_id', 'id']).execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('followed_tags').ifExists().execute();
}
