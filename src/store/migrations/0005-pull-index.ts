/**
 * Merge-on-read looks up the 'pull' statuses (authors with very many
 * followers) of the accounts a person follows. A partial index holds only
 * those, so the lookup for an ordinary followee finds nothing at once instead
 * of reading their whole history.
 */
import { sql, type Kysely } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.createIndex('statuses_pull_account_id').on('statuses').columns(['account_id', 'id']).where(sql.ref('distribution'), '=', 'pull').execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropIndex('statuses_pull_account_id').ifExists().execute();
}
