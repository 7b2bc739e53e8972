/**
 * The core schema. Frozen: a later change is a new migration. Types are
 * chosen so that the same migration runs on SQLite and PostgreSQL:
 * `bigint` ids (INTEGER affinity in SQLite), `smallint` booleans, `text` times (ISO-8601 UTC).
 */
import type { Kysely } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  const s = db.schema;
  await s
    .createTable('accounts')
    .addColumn('id', 'bigint', (c) => c.primaryKey())
    .addColumn('username', 'text', (c) => c.notNull())
    .addColumn('username_lower', 'text', (c) => c.notNull().unique())
    .addColumn('display_name', 'text', (c) => c.notNull().defaultTo(''))
    .addColumn('note', 'text', (c) => c.notNull().defaultTo(''))
    .addColumn('locked', 'smallint', (c) => c.notNull().defaultTo(0))
    .addColumn('bot', 'smallint', (c) => c.notNull().defaultTo(0))
    .addColumn('discoverable', 'smallint', (c) => c.notNull().defaultTo(1))
    .addColumn('followers_count', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('following_count', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('statuses_count', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('last_status_at', 'text')
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .execute();

  await s
    .createTable('users')
    .addColumn('account_id', 'bigint', (c) => c.primaryKey().references('accounts.id').onDelete('cascade'))
    .addColumn('email', 'text', (c) => c.notNull().unique())
    .addColumn('password_hash', 'text', (c) => c.notNull())
    .addColumn('role', 'text', (c) => c.notNull().defaultTo('user'))
    .addColumn('locale', 'text', (c) => c.notNull().defaultTo('en'))
    .addColumn('default_visibility', 'text', (c) => c.notNull().defaultTo('public'))
    .addColumn('default_sensitive', 'smallint', (c) => c.notNull().defaultTo(0))
    .addColumn('default_language', 'text')
    .addColumn('disabled', 'smallint', (c) => c.notNull().defaultTo(0))
    .addColumn('created_at', 'text', (c) => c.notNull())
    .execute();

  await s
    .createTable('oauth_applications')
    .addColumn('id', 'bigint', (c) => c.primaryKey())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('website', 'text')
    .addColumn('redirect_uris', 'text', (c) => c.notNull())
    .addColumn('scopes', 'text', (c) => c.notNull())
    .addColumn('client_id', 'text', (c) => c.notNull().unique())
    .addColumn('client_secret', 'text', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .execute();

  await s
    .createTable('oauth_codes')
    .addColumn('code_hash', 'text', (c) => c.primaryKey())
    .addColumn('application_id', 'bigint', (c) => c.notNull().references('oauth_applications.id').onDelete('cascade'))
    .addColumn('account_id', 'bigint', (c) => c.notNull().references('accounts.id').onDelete('cascade'))
    .addColumn('redirect_uri', 'text', (c) => c.notNull())
    .addColumn('scopes', 'text', (c) => c.notNull())
    .addColumn('code_challenge', 'text')
    .addColumn('code_challenge_method', 'text')
    .addColumn('expires_at', 'text', (c) => c.notNull())
    .addColumn('used_at', 'text')
    .execute();

  await s
    .createTable('oauth_tokens')
    .addColumn('id', 'bigint', (c) => c.primaryKey())
    .addColumn('token_hash', 'text', (c) => c.notNull().unique())
    .addColumn('application_id', 'bigint', (c) => c.notNull().references('oauth_applications.id').onDelete('cascade'))
    .addColumn('account_id', 'bigint', (c) => c.references('accounts.id').onDelete('cascade'))
    .addColumn('scopes', 'text', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('revoked_at', 'text')
    .execute();
  await s.createIndex('oauth_tokens_account').on('oauth_tokens').column('account_id').execute();

  await s
    .createTable('statuses')
    .addColumn('id', 'bigint', (c) => c.primaryKey())
    .addColumn('account_id', 'bigint', (c) => c.notNull().references('accounts.id').onDelete('cascade'))
    .addColumn('text', 'text', (c) => c.notNull())
    .addColumn('content', 'text', (c) => c.notNull())
    .addColumn('spoiler_text', 'text', (c) => c.notNull().defaultTo(''))
    .addColumn('sensitive', 'smallint', (c) => c.notNull().defaultTo(0))
    .addColumn('visibility', 'text', (c) => c.notNull())
    .addColumn('language', 'text')
    .addColumn('in_reply_to_id', 'bigint')
    .addColumn('in_reply_to_account_id', 'bigint')
    .addColumn('reblog_of_id', 'bigint')
    .addColumn('application_id', 'bigint')
    .addColumn('distribution', 'text', (c) => c.notNull().defaultTo('push'))
    .addColumn('replies_count', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('reblogs_count', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('favourites_count', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('edited_at', 'text')
    .addColumn('deleted_at', 'text')
    .execute();
  await s.createIndex('statuses_account_id').on('statuses').columns(['account_id', 'id']).execute();
  await s.createIndex('statuses_in_reply_to').on('statuses').column('in_reply_to_id').execute();
  await s.createIndex('statuses_reblog_of').on('statuses').columns(['reblog_of_id', 'account_id']).execute();
  await s.createIndex('statuses_visibility_id').on('statuses').columns(['visibility', 'id']).execute();

  await s
    .createTable('status_edits')
    .addColumn('id', 'bigint', (c) => c.primaryKey())
    .addColumn('status_id', 'bigint', (c) => c.notNull().references('statuses.id').onDelete('cascade'))
    .addColumn('text', 'text', (c) => c.notNull())
    .addColumn('content', 'text', (c) => c.notNull())
    .addColumn('spoiler_text', 'text', (c) => c.notNull())
    .addColumn('sensitive', 'smallint', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .execute();
  await s.createIndex('status_edits_status').on('status_edits').columns(['status_id', 'id']).execute();

  await s
    .createTable('mentions')
    .addColumn('status_id', 'bigint', (c) => c.notNull().references('statuses.id').onDelete('cascade'))
    .addColumn('account_id', 'bigint', (c) => c.notNull().references('accounts.id').onDelete('cascade'))
    .addPrimaryKeyConstraint('mentions_pk', ['status_id', 'account_id'])
    .execute();
  await s.createIndex('mentions_account').on('mentions').columns(['account_id', 'status_id']).execute();

  await s
    .createTable('tags')
    .addColumn('id', 'bigint', (c) => c.primaryKey())
    .addColumn('name', 'text', (c) => c.notNull().unique())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .execute();
  await s
    .createTable('status_tags')
    .addColumn('tag_id', 'bigint', (c) => c.notNull().references('tags.id').onDelete('cascade'))
    .addColumn('status_id', 'bigint', (c) => c.notNull().references('statuses.id').onDelete('cascade'))
    .addPrimaryKeyConstraint('status_tags_pk', ['tag_id', 'status_id'])
    .execute();
  await s.createIndex('status_tags_status').on('status_tags').column('status_id').execute();

  for (const table of ['favourites', 'bookmarks']) {
    await s
      .createTable(table)
      .addColumn('id', 'bigint', (c) => c.primaryKey())
      .addColumn('account_id', 'bigint', (c) => c.notNull().references('accounts.id').onDelete('cascade'))
      .addColumn('status_id', 'bigint', (c) => c.notNull().references('statuses.id').onDelete('cascade'))
      .addColumn('created_at', 'text', (c) => c.notNull())
      .addUniqueConstraint(`${table}_unique`, ['account_id', 'status_id'])
      .execute();
    await s.createIndex(`${table}_status`).on(table).columns(['status_id', 'id']).execute();
    await s.createIndex(`${table}_account_id`).on(table).columns(['account_id', 'id']).execute();
  }

  for (const table of ['follows', 'follow_requests']) {
    await s
      .createTable(table)
      .addColumn('id', 'bigint', (c) => c.primaryKey())
      .addColumn('account_id', 'bigint', (c) => c.notNull().references('accounts.id').onDelete('cascade'))
      .addColumn('target_account_id', 'bigint', (c) => c.notNull().references('accounts.id').onDelete('cascade'))
      .addColumn('show_reblogs', 'smallint', (c) => c.notNull().defaultTo(1))
      .addColumn('notify', 'smallint', (c) => c.notNull().defaultTo(0))
      .addColumn('created_at', 'text', (c) => c.notNull())
      .addUniqueConstraint(`${table}_unique`, ['account_id', 'target_account_id'])
      .execute();
    await s.createIndex(`${table}_target`).on(table).columns(['target_account_id', 'id']).execute();
  }

  for (const table of ['blocks', 'mutes']) {
    let t = s
      .createTable(table)
      .addColumn('id', 'bigint', (c) => c.primaryKey())
      .addColumn('account_id', 'bigint', (c) => c.notNull().references('accounts.id').onDelete('cascade'))
      .addColumn('target_account_id', 'bigint', (c) => c.notNull().references('accounts.id').onDelete('cascade'))
      .addColumn('created_at', 'text', (c) => c.notNull());
    if (table === 'mutes') {
      t = t.addColumn('hide_notifications', 'smallint', (c) => c.notNull().defaultTo(1)).addColumn('expires_at', 'text');
    }
    await t.addUniqueConstraint(`${table}_unique`, ['account_id', 'target_account_id']).execute();
    await s.createIndex(`${table}_target`).on(table).column('target_account_id').execute();
  }

  await s
    .createTable('home_feed')
    .addColumn('account_id', 'bigint', (c) => c.notNull().references('accounts.id').onDelete('cascade'))
    .addColumn('status_id', 'bigint', (c) => c.notNull().references('statuses.id').onDelete('cascade'))
    .addColumn('author_id', 'bigint', (c) => c.notNull())
    .addColumn('reblog_of_author_id', 'bigint')
    .addPrimaryKeyConstraint('home_feed_pk', ['account_id', 'status_id'])
    .execute();
  await s.createIndex('home_feed_status').on('home_feed').column('status_id').execute();

  await s
    .createTable('notifications')
    .addColumn('id', 'bigint', (c) => c.primaryKey())
    .addColumn('account_id', 'bigint', (c) => c.notNull().references('accounts.id').onDelete('cascade'))
    .addColumn('from_account_id', 'bigint', (c) => c.notNull().references('accounts.id').onDelete('cascade'))
    .addColumn('type', 'text', (c) => c.notNull())
    .addColumn('status_id', 'bigint', (c) => c.references('statuses.id').onDelete('cascade'))
    .addColumn('dedupe_key', 'text', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addUniqueConstraint('notifications_dedupe', ['account_id', 'dedupe_key'])
    .execute();
  await s.createIndex('notifications_account_id').on('notifications').columns(['account_id', 'id']).execute();

  await s
    .createTable('idempotency_keys')
    .addColumn('account_id', 'bigint', (c) => c.notNull())
    .addColumn('key', 'text', (c) => c.notNull())
    .addColumn('status_id', 'bigint', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('idempotency_keys_pk', ['account_id', 'key'])
    .execute();
  await s.createIndex('idempotency_keys_created').on('idempotency_keys').column('created_at').execute();

  await s
    .createTable('jobs')
    .addColumn('id', 'bigint', (c) => c.primaryKey())
    .addColumn('type', 'text', (c) => c.notNull())
    .addColumn('payload', 'text', (c) => c.notNull())
    .addColumn('run_at', 'text', (c) => c.notNull())
    .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('locked_until', 'text')
    .addColumn('last_error', 'text')
    .addColumn('created_at', 'text', (c) => c.notNull())
    .execute();
  await s.createIndex('jobs_run_at').on('jobs').columns(['run_at', 'id']).execute();

  await s
    .createTable('markers')
    .addColumn('account_id', 'bigint', (c) => c.notNull().references('accounts.id').onDelete('cascade'))
    .addColumn('timeline', 'text', (c) => c.notNull())
    .addColumn('last_read_id', 'bigint', (c) => c.notNull())
    .addColumn('version', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('markers_pk', ['account_id', 'timeline'])
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  for (const t of [
    'markers', 'jobs', 'idempotency_keys', 'notifications', 'home_feed', 'mutes', 'blocks', 'follow_requests', 'follows',
    'bookmarks', 'favourites', 'status_tags', 'tags', 'mentions', 'status_edits', 'statuses', 'oauth_tokens', 'oauth_codes',
    'oauth_applications', 'users', 'accounts',
  ]) {
    await db.schema.dropTable(t).ifExists().execute();
  }
}
