/** Followed tags and trend statistics. (Filled in by the tags and trends work.) */
import type { Kysely } from 'kysely';

export async function up(_db: Kysely<any>): Promise<void> {}
export async function down(_db: Kysely<any>): Promise<void> {}
