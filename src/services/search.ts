/**
 * Search: accounts, hashtags and statuses, as Mastodon's SearchService and
 * AccountSearchService answer them for a server without federation.
 *
 * - Accounts: an exact username (`name`, `@name`, `name@ourdomain`) first,
 *   then usernames starting with the query, then display names with a word
 *   starting with it (accents and case ignored; several words each match a
 *   word, the last as a prefix); most-followed first within each group.
 *   Accounts that block the viewer or that the viewer blocks are left out. An
 *   address on another domain finds nothing (Starling resolves no remote
 *   accounts).
 * - Hashtags: names starting with the query (a leading `#` is ignored), the
 *   exact name first.
 * - Statuses: full text through the status search index (store/search.ts),
 *   newest first, only for a signed-in viewer (as Mastodon), and only what
 *   that viewer may see: the visibility rule is written in SQL so that pages
 *   are full and offsets stable, and `filterVisible` checks the page again.
 *   Statuses of muted or blocked authors are left out (Mastodon's StatusFilter).
 */
import { sql, type Expression, type SqlBool } from 'kysely';
import { notFound } from '../domain/errors.js';
import { isId } from '../domain/ids.js';
import { normalizeTag } from '../domain/text.js';
import type { Account, Status } from '../store/schema.js';
import type { Db } from '../store/db.js';
import { accountSearchFor, statusSearchIndexFor } from '../store/search.js';
import type { AppContext } from './context.js';
import type { TagRef } from './tags.js';
import { filterVisible } from './views.js';

export type SearchType = 'accounts' | 'hashtags' | 'statuses';

export interface SearchPage {
  limit: number;
  offset: number;
}

export interface SearchRequest extends SearchPage {
  q: string;
  /** Only this kind of result; all three when absent. */
  type?: SearchType;
  /** Accounts: only those the viewer follows. */
  following?: boolean;
  /** Statuses: only this author's. */
  accountId?: string;
  /** Statuses: only ids below / above these. */
  maxId?: string;
  minId?: string;
}

export interface SearchResults {
  accounts: Account[];
  statuses: Status[];
  hashtags: TagRef[];
}

/** `%`, `_` and the escape character itself, escaped for `LIKE … ESCAPE '\'`. */
function likeEscape(s: string): string {
  return s.replace(/[\\%_]/g, (c) => `\\${c}`);
}

const like = (column: Expression<string>, pattern: Expression<string> | string) => sql<SqlBool>`${column} LIKE ${pattern} ESCAPE '\\'`;

/** Accounts blocking the viewer or blocked by them. */
function blockedEitherWay(viewerId: string) {
  return sql`(SELECT target_account_id FROM blocks WHERE account_id = ${viewerId}
    UNION SELECT account_id FROM blocks WHERE target_account_id = ${viewerId})`;
}

/** Authors whose statuses the viewer does not want to see (muted) or may not (blocks either way). */
function hiddenAuthors(viewerId: string) {
  return sql`(SELECT target_account_id FROM mutes WHERE account_id = ${viewerId}
    UNION SELECT target_account_id FROM blocks WHERE account_id = ${viewerId}
    UNION SELECT account_id FROM blocks WHERE target_account_id = ${viewerId})`;
}

export async function search(ctx: AppContext, viewerId: string | null, req: SearchRequest): Promise<SearchResults> {
  const q = req.q.trim();
  const wants = (t: SearchType) => req.type === undefined || req.type === t;
  // Mastodon pages only a search of one kind; across all three, offset is ignored.
  const page = { limit: req.limit, offset: req.type === undefined ? 0 : req.offset };
  // A lone address (`user@domain`) is an account, not words to look for (Mastodon's rule).
  const isAddress = q.includes('@') && !/\s/.test(q);
  const [accounts, hashtags, statuses] = await Promise.all([
    wants('accounts') ? searchAccounts(ctx, viewerId, q, { ...page, following: req.following === true }) : [],
    wants('hashtags') && !q.includes('@') ? searchHashtags(ctx, q, page) : [],
    wants('statuses') && viewerId !== null && !isAddress
      ? searchStatuses(ctx, viewerId, q, { ...page, accountId: req.accountId, maxId: req.maxId, minId: req.minId })
      : [],
  ]);
  return { accounts, statuses, hashtags };
}

/** Accounts by username or display name; see the module comment for the order. */
export async function searchAccounts(
  ctx: AppContext,
  viewerId: string | null,
  query: string,
  opts: SearchPage & { following?: boolean },
): Promise<Account[]> {
  let term = query.trim().replace(/^@/, '');
  let exactOnly = false;
  const at = term.indexOf('@');
  if (at >= 0) {
    const domain = term.slice(at + 1);
    if (domain.toLowerCase() !== ctx.urls.domain.toLowerCase()) return [];
    term = term.slice(0, at);
    exactOnly = true;
  }
  if (term === '') return [];
  const name = term.toLowerCase();
  // Both conditions are served by indexes (store/search.ts, migrations/0009): a search reads what matches.
  const index = accountSearchFor(ctx.db);
  const exact = sql<SqlBool>`accounts.username_lower = ${name}`;
  const namePrefix = index.usernameStartsWith(name);
  const displayName = index.displayNameMatching(term);

  let qb = ctx.db.selectFrom('accounts').selectAll();
  qb = exactOnly ? qb.where(exact) : qb.where((eb) => (displayName ? eb.or([namePrefix, displayName]) : namePrefix));
  if (viewerId) {
    qb = qb.where(sql<SqlBool>`id NOT IN ${blockedEitherWay(viewerId)}`);
    if (opts.following) qb = qb.where(sql<SqlBool>`id IN (SELECT target_account_id FROM follows WHERE account_id = ${viewerId})`);
  }
  return qb
    .orderBy(sql`CASE WHEN ${exact} THEN 0 WHEN ${namePrefix} THEN 1 ELSE 2 END`)
    .orderBy('followers_count', 'desc')
    .orderBy('username_lower', 'asc')
    .limit(opts.limit)
    .offset(opts.offset)
    .execute();
}

/** A hashtag's allowed characters (as in domain/text.ts and the tag timeline). */
const TAG_CHARS = /^[\p{L}\p{M}\p{N}_\u00b7\u200c]{1,100}$/u;

/** Hashtags whose (normalised) name starts with the query; the exact name first. Rendered with tags.ts `tagViews`. */
export async function searchHashtags(ctx: AppContext, query: string, page: SearchPage): Promise<TagRef[]> {
  const name = normalizeTag(query.trim().replace(/^#/, ''));
  if (!TAG_CHARS.test(name)) return [];
  return ctx.db
    .selectFrom('tags')
    .select(['id', 'name'])
    .where(like(sql.ref('name'), `${likeEscape(name)}%`))
    .orderBy(sql`CASE WHEN name = ${name} THEN 0 ELSE 1 END`)
    .orderBy('name', 'asc')
    .limit(page.limit)
    .offset(page.offset)
    .execute();
}

/**
 * Statuses matching the query that the viewer may see, newest first. An
 * unknown `accountId` is a 404, as in Mastodon.
 */
export async function searchStatuses(
  ctx: AppContext,
  viewerId: string,
  query: string,
  opts: SearchPage & { accountId?: string; maxId?: string; minId?: string },
): Promise<Status[]> {
  if (opts.accountId !== undefined) {
    const known = isId(opts.accountId) && (await ctx.db.selectFrom('accounts').select('id').where('id', '=', opts.accountId).executeTakeFirst());
    if (!known) throw notFound();
  }
  const qb = searchStatusesQuery(ctx.db, viewerId, query, opts);
  if (!qb) return [];
  const rows = await qb.execute();
  return filterVisible(ctx.db, viewerId, rows.filter((s) => s.reblog_of_id === null));
}

/** searchStatuses' query (null: the query has no terms), apart so that test/integration/query-plans.test.ts can check its plan. */
export function searchStatusesQuery(db: Db, viewerId: string, query: string, opts: SearchPage & { accountId?: string; maxId?: string; minId?: string }) {
  const matching = statusSearchIndexFor(db).matching(query);
  if (!matching) return null;
  let qb = db
    .selectFrom('statuses')
    .selectAll()
    .where(matching)
    // The index holds originals only, so no `reblog_of_id IS NULL` here: on SQLite that
    // condition would make the planner walk every status through its reblog index
    // instead of looking up the few matches by id (checked below instead).
    .where('deleted_at', 'is', null)
    // domain/visibility.ts, as SQL: the author; public and unlisted for all; private for followers; mentioned people.
    .where(
      sql<SqlBool>`(statuses.account_id = ${viewerId}
        OR statuses.visibility IN ('public', 'unlisted')
        OR (statuses.visibility = 'private' AND statuses.account_id IN (SELECT target_account_id FROM follows WHERE account_id = ${viewerId}))
        OR statuses.id IN (SELECT status_id FROM mentions WHERE account_id = ${viewerId}))`,
    )
    .where(sql<SqlBool>`statuses.account_id NOT IN ${hiddenAuthors(viewerId)}`);
  if (opts.accountId !== undefined) qb = qb.where('account_id', '=', opts.accountId);
  if (opts.maxId !== undefined) qb = qb.where('id', '<', opts.maxId);
  if (opts.minId !== undefined) qb = qb.where('id', '>', opts.minId);
  return qb.orderBy('id', 'desc').limit(opts.limit).offset(opts.offset);
}
