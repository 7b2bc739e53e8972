/**
 * Id-cursor pagination for newest-first lists. `min_id` pages forward from a
 * point (the oldest items newer than it), so the query runs ascending and
 * the result is reversed; `max_id`/`since_id` run descending.
 */
import { sql, type SelectQueryBuilder } from 'kysely';

export interface PageParams {
  max_id?: string;
  since_id?: string;
  min_id?: string;
  limit: number;
}

export function applyPage<DB, TB extends keyof DB, O>(
  qb: SelectQueryBuilder<DB, TB, O>,
  column: string,
  page: PageParams,
): SelectQueryBuilder<DB, TB, O> {
  const col = sql.ref(column);
  let q = qb;
  if (page.max_id !== undefined) q = q.where(sql<boolean>`${col} < ${page.max_id}`);
  if (page.since_id !== undefined) q = q.where(sql<boolean>`${col} > ${page.since_id}`);
  if (page.min_id !== undefined) q = q.where(sql<boolean>`${col} > ${page.min_id}`);
  return q.orderBy(sql`${col}`, page.min_id !== undefined ? 'asc' : 'desc').limit(page.limit);
}

/** Puts rows from applyPage back in newest-first order. */
export function pageRows<T>(rows: T[], page: PageParams): T[] {
  return page.min_id !== undefined ? rows.reverse() : rows;
}
