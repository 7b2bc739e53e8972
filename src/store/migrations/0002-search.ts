/** Full-text search index for statuses. (Filled in by the search work.) */
import type { Kysely } from 'kysely';

export async function up(_db: Kysely<any>): Promise<void> {}
export async function down(_db: Kysely<any>): Promise<void> {}
