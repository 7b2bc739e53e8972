/**
 * Reading timelines and status lists. Each query returns a page of status
 * rows, newest first, already filtered to what the viewer may see; the HTTP
 * layer renders them with views.ts and writes Link headers.
 */
import { sql, type Expression, type SqlBool } from 'kysely';
import { StarlingError, notFound } from '../domain/errors.js';
import type { Status } from '../store/schema.js';
import type { Db } from '../store/db.js';
import { sqliteUnindexed } from '../store/sql.js';
import { applyPage, pageRows, type PageParams } from '../store/paging.js';
import type { AppContext } from './context.js';
import { filterVisible, loadViewerFacts } from './views.js';
import { normalizeTag } from '../domain/text.js';

async function statusesByIds(ctx: AppContext, ids: readonly string[]): Promise<Status[]> {
  if (ids.length === 0) return [];
  const rows = await ctx.db.selectFrom('statuses').selectAll().where('id', 'in', [...ids]).execute();
  const byId = new Map(rows.map((r) => [r.id, r]));
  return ids.flatMap((id) => byId.get(id) ?? []);
}

/** Accounts whose statuses the viewer does not want to see (muted) or may not (blocks either way). */
function hiddenAuthors(viewerId: string) {
  return sql`(SELECT target_account_id FROM mutes WHERE account_id = ${viewerId}
    UNION SELECT target_account_id FROM blocks WHERE account_id = ${viewerId}
    UNION SELECT account_id FROM blocks WHERE target_account_id = ${viewerId})`;
}

/**
 * The home timeline: the viewer's pushed feed merged with the statuses of
 * 'pull' authors they follow. Both halves are paged by the same cursor and
 * merged, so pages have no gaps and no duplicates.
 */
export async function homeTimeline(ctx: AppContext, viewerId: string, page: PageParams): Promise<Status[]> {
  const a = await homePushedQuery(ctx.db, viewerId, page).execute();
  // When the pushed page is full, anything pulled must fall inside its span to make the page:
  // bounding the pull by the page's edge keeps it from sorting a popular author's whole history.
  const edge = a.length === page.limit ? a[a.length - 1].id : null;
  const b = await homePulledQuery(ctx.db, viewerId, page, edge).execute();
  const ids = [...new Set([...a, ...b].map((r) => r.id))];
  // Ids have a fixed number of digits, so string order is numeric order.
  ids.sort((x, y) => (x < y ? 1 : x > y ? -1 : 0));
  const window = page.min_id !== undefined ? ids.slice(-page.limit) : ids.slice(0, page.limit);
  return filterVisible(ctx.db, viewerId, await statusesByIds(ctx, window));
}

/*
 * The list queries below are built by functions of their own so that
 * test/integration/query-plans.test.ts can compile them and check SQLite's
 * plan for them without running the service.
 */

/** The pushed half of the home timeline: the viewer's home_feed rows. */
export function homePushedQuery(db: Db, viewerId: string, page: PageParams) {
  const hidden = hiddenAuthors(viewerId);
  return applyPage(
    db
      .selectFrom('home_feed')
      .innerJoin('statuses', 'statuses.id', 'home_feed.status_id')
      .select('home_feed.status_id as id')
      .where('home_feed.account_id', '=', viewerId)
      .where('statuses.deleted_at', 'is', null)
      .where(sql<SqlBool>`home_feed.author_id NOT IN ${hidden}`)
      .where(sql<SqlBool>`(home_feed.reblog_of_author_id IS NULL OR home_feed.reblog_of_author_id NOT IN ${hidden})`),
    'home_feed.status_id',
    page,
  );
}

/** The pulled half of the home timeline: statuses of followed 'pull' authors, bounded by the pushed page's edge. */
export function homePulledQuery(db: Db, viewerId: string, page: PageParams, edge: string | null) {
  const hidden = hiddenAuthors(viewerId);
  let pulledQuery = db
      .selectFrom('statuses')
      .innerJoin('follows', (j) => j.onRef('follows.target_account_id', '=', 'statuses.account_id').on('follows.account_id', '=', viewerId))
      .select('statuses.id')
      // A literal, not a parameter: the partial index (statuses_pull_covering) is usable only for this value, so SQLite
      // reads a bound value to plan with and plans the statement again each time it is bound (every run): 62 µs a
      // run against 6 µs (docs/PERFORMANCE.md). PostgreSQL's generic plans likewise use a partial index only for a literal.
      .where('statuses.distribution', '=', sql.lit('pull'))
      .where('statuses.deleted_at', 'is', null)
      // Not through an index on SQLite (store/sql.ts): the three visibilities are nearly every status, yet with any
      // statistics SQLite chose statuses_visibility_id for them, read all statuses and sorted the few that are
      // 'pull': 7-8 ms on 42k statuses, growing with the table. It now reads the partial index of 'pull' statuses
      // (statuses_pull_covering, migration 0008, which also keeps it off statuses_account_id): 0.06-0.6 ms.
      .where(sqliteUnindexed(db, 'statuses.visibility'), 'in', ['public', 'unlisted', 'private'])
      .where(sql<SqlBool>`statuses.account_id NOT IN ${hidden}`)
      .where((eb) => eb.or([eb('statuses.reblog_of_id', 'is', null), eb('follows.show_reblogs', '=', 1)]))
      .where(sql<SqlBool>`(statuses.reblog_of_id IS NULL OR (SELECT o.account_id FROM statuses o WHERE o.id = statuses.reblog_of_id) NOT IN ${hidden})`)
      .where(
        sql<SqlBool>`(statuses.in_reply_to_account_id IS NULL OR statuses.in_reply_to_account_id = statuses.account_id
          OR statuses.in_reply_to_account_id = ${viewerId}
          OR statuses.in_reply_to_account_id IN (SELECT target_account_id FROM follows WHERE account_id = ${viewerId}))`,
      );
  if (edge !== null) pulledQuery = pulledQuery.where('statuses.id', page.min_id !== undefined ? '<=' : '>=', edge);
  return applyPage(pulledQuery, 'statuses.id', page);
}

export async function publicTimeline(ctx: AppContext, viewerId: string | null, page: PageParams, opts: { remoteOnly?: boolean; onlyMedia?: boolean } = {}): Promise<Status[]> {
  // Starling has no remote statuses (yet) and no media: those filters select nothing.
  if (opts.remoteOnly || opts.onlyMedia) return [];
  const rows = pageRows(await publicTimelineQuery(ctx.db, viewerId, page).execute(), page);
  return filterVisible(ctx.db, viewerId, rows);
}

export function publicTimelineQuery(db: Db, viewerId: string | null, page: PageParams) {
  let q = db
    .selectFrom('statuses')
    .selectAll()
    .where('visibility', '=', 'public')
    .where('deleted_at', 'is', null)
    // Not through an index on SQLite (store/sql.ts): with sampled or stale statistics (the seeder's ANALYZE
    // with analysis_limit) SQLite believed `reblog_of_id IS NULL` matched ~10 rows, read every original
    // through statuses_reblog_of and sorted them: 22 ms on 42k statuses, growing with the table. Without that
    // index it walks statuses_visibility_id newest first and stops at the page: 0.10 ms (docs/PERFORMANCE.md).
    .where(sql<SqlBool>`${sqliteUnindexed(db, 'statuses.reblog_of_id')} IS NULL`)
    .where(sql<SqlBool>`(in_reply_to_account_id IS NULL OR in_reply_to_account_id = account_id)`);
  if (viewerId) q = q.where(sql<SqlBool>`account_id NOT IN ${hiddenAuthors(viewerId)}`);
  return applyPage(q, 'statuses.id', page);
}

export async function tagTimeline(ctx: AppContext, viewerId: string | null, tag: string, page: PageParams): Promise<Status[]> {
  const t = await ctx.db.selectFrom('tags').select('id').where('name', '=', normalizeTag(tag)).executeTakeFirst();
  if (!t) return [];
  const rows = pageRows(await tagTimelineQuery(ctx.db, viewerId, t.id, page).execute(), page);
  return filterVisible(ctx.db, viewerId, rows);
}

export function tagTimelineQuery(db: Db, viewerId: string | null, tagId: string, page: PageParams) {
  let q = db
    .selectFrom('status_tags')
    .innerJoin('statuses', 'statuses.id', 'status_tags.status_id')
    .selectAll('statuses')
    .where('status_tags.tag_id', '=', tagId)
    .where('statuses.visibility', '=', 'public')
    .where('statuses.deleted_at', 'is', null);
  if (viewerId) q = q.where(sql<SqlBool>`statuses.account_id NOT IN ${hiddenAuthors(viewerId)}`);
  return applyPage(q, 'status_tags.status_id', page);
}

export interface AccountStatusesOptions {
  excludeReplies: boolean;
  excludeReblogs: boolean;
  onlyMedia: boolean;
  pinned: boolean;
}

export async function accountStatuses(ctx: AppContext, viewerId: string | null, accountId: string, page: PageParams, opts: AccountStatusesOptions): Promise<Status[]> {
  const account = await ctx.db.selectFrom('accounts').select('id').where('id', '=', accountId).executeTakeFirst();
  if (!account) throw notFound();
  if (opts.onlyMedia || opts.pinned) return []; // no media or pins yet
  let follows = false;
  if (viewerId && viewerId !== accountId) {
    const facts = await loadViewerFacts(ctx.db, viewerId, [accountId]);
    if (facts.blocked.has(accountId)) return [];
    follows = facts.follows.has(accountId);
  }
  const rows = pageRows(await accountStatusesQuery(ctx.db, viewerId, accountId, follows, page, opts).execute(), page);
  return filterVisible(ctx.db, viewerId, rows);
}

/** An account's statuses as `viewerId` (who follows the account or not) may see them. */
export function accountStatusesQuery(db: Db, viewerId: string | null, accountId: string, follows: boolean, page: PageParams, opts: AccountStatusesOptions) {
  let q = db.selectFrom('statuses').selectAll().where('account_id', '=', accountId).where('deleted_at', 'is', null);
  if (viewerId !== accountId) {
    // Only what this viewer may see, in SQL, so pages are full.
    q = q.where((eb) => {
      const ors: Expression<SqlBool>[] = [eb('visibility', 'in', follows ? ['public', 'unlisted', 'private'] : ['public', 'unlisted'])];
      if (viewerId) ors.push(sql<SqlBool>`id IN (SELECT status_id FROM mentions WHERE account_id = ${viewerId})`);
      return eb.or(ors);
    });
  }
  if (opts.excludeReplies) q = q.where(sql<SqlBool>`(in_reply_to_id IS NULL OR in_reply_to_account_id = account_id)`);
  // Not through an index on SQLite (store/sql.ts): with sampled statistics SQLite read the account's every
  // original through statuses_reblog_of (reblog_of_id IS NULL AND account_id = ?) and sorted them, instead of
  // walking statuses_account_id newest first (docs/PERFORMANCE.md).
  if (opts.excludeReblogs) q = q.where(sql<SqlBool>`${sqliteUnindexed(db, 'statuses.reblog_of_id')} IS NULL`);
  return applyPage(q, 'statuses.id', page);
}

const MAX_ANCESTORS = 40;
const MAX_DESCENDANTS = 4096;

/** A thread around a status: ancestors oldest first, descendants in depth-first reply order. */
export async function statusContext(ctx: AppContext, viewerId: string | null, status: Status): Promise<{ ancestors: Status[]; descendants: Status[] }> {
  const ancestors: Status[] = [];
  let parentId = status.in_reply_to_id;
  while (parentId && ancestors.length < MAX_ANCESTORS) {
    const p = await ctx.db.selectFrom('statuses').selectAll().where('id', '=', parentId).executeTakeFirst();
    if (!p) break;
    ancestors.unshift(p);
    parentId = p.in_reply_to_id;
  }
  const children = new Map<string, Status[]>();
  let frontier = [status.id];
  let found = 0;
  while (frontier.length && found < MAX_DESCENDANTS) {
    const rows = await ctx.db.selectFrom('statuses').selectAll().where('in_reply_to_id', 'in', frontier).where('deleted_at', 'is', null).orderBy('id').limit(MAX_DESCENDANTS - found).execute();
    found += rows.length;
    for (const r of rows) {
      const list = children.get(r.in_reply_to_id!) ?? [];
      list.push(r);
      children.set(r.in_reply_to_id!, list);
    }
    frontier = rows.map((r) => r.id);
  }
  const descendants: Status[] = [];
  const walk = (id: string) => {
    for (const c of children.get(id) ?? []) {
      descendants.push(c);
      walk(c.id);
    }
  };
  walk(status.id);
  const visible = new Set((await filterVisible(ctx.db, viewerId, [...ancestors, ...descendants])).map((s) => s.id));
  // Statuses by accounts the viewer muted are left out of threads too (Mastodon's StatusFilter); replies to them stay.
  const { muted } = await loadViewerFacts(ctx.db, viewerId, [...ancestors, ...descendants].map((s) => s.account_id));
  // A reply under a status the viewer cannot see is hidden with it.
  const shownDescendants: Status[] = [];
  const shown = new Set([status.id]);
  for (const d of descendants) {
    if (visible.has(d.id) && shown.has(d.in_reply_to_id!)) {
      if (!muted.has(d.account_id)) shownDescendants.push(d);
      shown.add(d.id);
    }
  }
  return { ancestors: ancestors.filter((a) => visible.has(a.id) && !muted.has(a.account_id)), descendants: shownDescendants };
}

/** Statuses the viewer favourited or bookmarked; the cursor is the favourite's own id. */
export async function markedStatuses(ctx: AppContext, viewerId: string, table: 'favourites' | 'bookmarks', page: PageParams) {
  const rows = pageRows(await markedStatusesQuery(ctx.db, viewerId, table, page).execute(), page);
  const statuses = await filterVisible(ctx.db, viewerId, await statusesByIds(ctx, rows.map((r) => r.status_id)));
  return { statuses, cursor: rows.length ? { newest: rows[0].id, oldest: rows[rows.length - 1].id } : null };
}

export function markedStatusesQuery(db: Db, viewerId: string, table: 'favourites' | 'bookmarks', page: PageParams) {
  return applyPage(db.selectFrom(table).select(['id', 'status_id']).where('account_id', '=', viewerId), `${table}.id`, page);
}

/** Who favourited or reblogged a status: account ids, with the favourite's or reblog's id as cursor. */
export async function actorsOf(ctx: AppContext, statusId: string, kind: 'favourites' | 'reblogs', page: PageParams) {
  const rows =
    kind === 'favourites'
      ? pageRows(await applyPage(ctx.db.selectFrom('favourites').select(['id', 'account_id']).where('status_id', '=', statusId), 'favourites.id', page).execute(), page)
      : pageRows(
          await applyPage(ctx.db.selectFrom('statuses').select(['id', 'account_id']).where('reblog_of_id', '=', statusId).where('deleted_at', 'is', null), 'statuses.id', page).execute(),
          page,
        );
  return { accountIds: rows.map((r) => r.account_id), cursor: rows.length ? { newest: rows[0].id, oldest: rows[rows.length - 1].id } : null };
}

export function assertTagName(tag: string): string {
  if (!/^[\p{L}\p{M}\p{N}_\u00b7\u200c]{1,100}$/u.test(tag)) throw new StarlingError('not_found');
  return tag;
}
