/**
 * Trends: tags rising against their own baseline, and statuses drawing
 * interactions now. Computed on request with queries bounded by id ranges
 * (ids are time-ordered, so "the last hour" is a primary-key range scan),
 * and kept for CACHE_TTL_MS in a small per-node cache (one entry per kind).
 *
 * Tags. For each tag used in the recent window (the last hour) count the
 * distinct accounts that used it in public, not deleted, original (not
 * reblogged) statuses: `observed`. Its `expected` count is its own baseline:
 * the average, over the previous 7 days cut into windows of the same length,
 * of distinct accounts per window (distinct (account, window) pairs ÷ number
 * of windows). Only rising tags trend (observed > expected), and only when at
 * least TREND_MIN_ACCOUNTS accounts used it in the window, so one account
 * posting a tag a hundred times makes no trend. The score is Mastodon's
 * ((observed − expected)² / max(expected, 1)); ties go to the larger
 * `observed`, then the name. A tag used steadily every day has an expected
 * count close to its observed one and does not trend; a tag suddenly used by
 * many accounts does.
 *
 * Statuses. Public, original, top-level statuses of the last 48 hours by
 * discoverable accounts, with at least one interaction, ranked by
 * (favourites + reblogs + replies) halved every STATUS_HALF_LIFE_MS of age.
 * The ranking is shared; what each viewer may see (blocks, mutes) is applied
 * per request.
 */
import { sql, type SqlBool } from 'kysely';
import { idAtTime, timeOfId } from '../domain/ids.js';
import type { Status } from '../store/schema.js';
import type { AppContext } from './context.js';
import { filterVisible, loadViewerFacts } from './views.js';
import { tagHistories, tagViews, type MastoTagEntity, type TagHistoryDay, type TagRef } from './tags.js';

const HOUR_MS = 3_600_000;
/** The recent window whose use is compared with the baseline. */
export const TREND_WINDOW_MS = HOUR_MS;
/** How far back the baseline reaches, before the window. A whole number of windows. */
export const TREND_BASELINE_MS = 7 * 24 * HOUR_MS;
/** Distinct accounts a tag needs in the window to trend at all. */
export const TREND_MIN_ACCOUNTS = 2;
/** Tags (by accounts in the window) whose baseline is looked at, and how many trends are kept. */
const TAG_CANDIDATES = 200;
const MAX_TRENDING_TAGS = 50;
/** Trending statuses: how far back, how fast interest fades, how many are ranked and kept. */
export const STATUS_TREND_MS = 48 * HOUR_MS;
export const STATUS_HALF_LIFE_MS = 6 * HOUR_MS;
const STATUS_CANDIDATES = 500;
const MAX_TRENDING_STATUSES = 200;
/** How long a computed ranking is served before it is computed again. */
export const CACHE_TTL_MS = 60_000;

export interface TagTrend extends TagRef {
  /** Distinct accounts in the window. */
  observed: number;
  /** Average distinct accounts per window over the baseline. */
  expected: number;
  score: number;
}

/** Only public, live, original statuses count (`s` is the statuses alias). */
const counted = sql<SqlBool>`s.visibility = 'public' AND s.deleted_at IS NULL AND s.reblog_of_id IS NULL`;

/** Ranks rising tags at `ctx.now()`, best first. */
export async function computeTagTrends(ctx: AppContext): Promise<TagTrend[]> {
  const now = ctx.now().getTime();
  const end = BigInt(idAtTime(now + 1));
  const windowStart = BigInt(idAtTime(now - TREND_WINDOW_MS));
  const baseStart = BigInt(idAtTime(now - TREND_WINDOW_MS - TREND_BASELINE_MS));
  const width = windowStart - BigInt(idAtTime(now - 2 * TREND_WINDOW_MS));
  const windows = TREND_BASELINE_MS / TREND_WINDOW_MS;

  // The window: every tagged status of the last hour, through the statuses key.
  const recent = await sql<{ tag_id: string; name: string; observed: number }>`
    SELECT st.tag_id AS tag_id, t.name AS name, COUNT(DISTINCT s.account_id) AS observed
    FROM statuses s
    JOIN status_tags st ON st.status_id = s.id
    JOIN tags t ON t.id = st.tag_id
    WHERE s.id >= ${windowStart} AND s.id < ${end} AND ${counted}
    GROUP BY st.tag_id, t.name
    HAVING COUNT(DISTINCT s.account_id) >= ${TREND_MIN_ACCOUNTS}
    ORDER BY observed DESC, st.tag_id
    LIMIT ${sql.lit(TAG_CANDIDATES)}`.execute(ctx.db);
  if (recent.rows.length === 0) return [];

  // The baseline of those tags only, through status_tags' (tag_id, status_id) key:
  // distinct (account, window) pairs over the previous week.
  const ids = recent.rows.map((r) => BigInt(r.tag_id));
  const base = await sql<{ tag_id: string; pairs: number }>`
    SELECT tag_id, COUNT(*) AS pairs FROM (
      SELECT DISTINCT st.tag_id AS tag_id, s.account_id AS account_id, (st.status_id - ${baseStart}) / ${width} AS w
      FROM status_tags st JOIN statuses s ON s.id = st.status_id
      WHERE st.tag_id IN (${sql.join(ids)}) AND st.status_id >= ${baseStart} AND st.status_id < ${windowStart} AND ${counted}
    ) pairs
    GROUP BY tag_id`.execute(ctx.db);
  const pairsBy = new Map(base.rows.map((r) => [r.tag_id, Number(r.pairs)]));

  const trends: TagTrend[] = [];
  for (const r of recent.rows) {
    const observed = Number(r.observed);
    const expected = (pairsBy.get(r.tag_id) ?? 0) / windows;
    if (observed <= expected) continue; // rising tags only
    trends.push({ id: r.tag_id, name: r.name, observed, expected, score: (observed - expected) ** 2 / Math.max(expected, 1) });
  }
  trends.sort((a, b) => b.score - a.score || b.observed - a.observed || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return trends.slice(0, MAX_TRENDING_TAGS);
}

export interface StatusTrend {
  id: string;
  score: number;
}

/** Ranks recent public statuses by interactions decayed by age, best first. */
export async function computeStatusTrends(ctx: AppContext): Promise<StatusTrend[]> {
  const now = ctx.now().getTime();
  const engagement = sql<number>`(s.favourites_count + s.reblogs_count + s.replies_count)`;
  const rows = await sql<{ id: string; engagement: number }>`
    SELECT s.id AS id, ${engagement} AS engagement
    FROM statuses s JOIN accounts a ON a.id = s.account_id
    WHERE s.id >= ${BigInt(idAtTime(now - STATUS_TREND_MS))} AND s.id < ${BigInt(idAtTime(now + 1))} AND ${counted}
      AND s.in_reply_to_id IS NULL AND a.discoverable = 1 AND ${engagement} > 0
    ORDER BY engagement DESC, s.id DESC
    LIMIT ${sql.lit(STATUS_CANDIDATES)}`.execute(ctx.db);
  const ranked = rows.rows.map((r) => {
    const age = Math.max(0, now - timeOfId(r.id));
    return { id: r.id, score: Number(r.engagement) * 0.5 ** (age / STATUS_HALF_LIFE_MS) };
  });
  ranked.sort((a, b) => b.score - a.score || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0));
  return ranked.slice(0, MAX_TRENDING_STATUSES);
}

interface CacheEntry<T> {
  at: number;
  value: Promise<T>;
}

/**
 * A cached computation: one value at a time, recomputed after the TTL;
 * concurrent requests share one computation, and a failed one is not kept.
 */
function cached<T>(ctx: AppContext, compute: () => Promise<T>, ttlMs: number): (() => Promise<T>) & { invalidate(): void } {
  let entry: CacheEntry<T> | null = null;
  const get = () => {
    const now = ctx.now().getTime();
    if (entry && now - entry.at < ttlMs && now >= entry.at) return entry.value;
    const mine: CacheEntry<T> = { at: now, value: compute() };
    entry = mine;
    mine.value.catch(() => {
      if (entry === mine) entry = null;
    });
    return mine.value;
  };
  return Object.assign(get, {
    invalidate() {
      entry = null;
    },
  });
}

export interface Page {
  offset: number;
  limit: number;
}

export interface Trends {
  tags(viewerId: string | null, page: Page): Promise<MastoTagEntity[]>;
  statuses(viewerId: string | null, page: Page): Promise<Status[]>;
}

/** The trends of one node, with their cache. Made once per app (no module-level state). */
export function createTrends(ctx: AppContext, opts: { ttlMs?: number } = {}): Trends {
  const ttl = opts.ttlMs ?? CACHE_TTL_MS;
  const tagRanking = cached(
    ctx,
    async () => {
      const trends = await computeTagTrends(ctx);
      const histories: Map<string, TagHistoryDay[]> = await tagHistories(ctx, trends.map((t) => t.id));
      return { trends, histories };
    },
    ttl,
  );
  const statusRanking = cached(ctx, () => computeStatusTrends(ctx), ttl);
  // A deleted status must leave trends now, not after the TTL, on every node: the bus
  // (NATS in cluster mode) brings deletions made on other nodes too.
  ctx.bus.subscribe((e) => {
    if (e.type !== 'status.deleted') return;
    tagRanking.invalidate();
    statusRanking.invalidate();
  });
  return {
    async tags(viewerId, page) {
      const { trends, histories } = await tagRanking();
      return tagViews(ctx, trends.slice(page.offset, page.offset + page.limit), viewerId, histories);
    },
    async statuses(viewerId, page) {
      const ranking = await statusRanking();
      if (page.offset >= ranking.length) return [];
      // Fresh rows (counts change, statuses get deleted), then what this viewer may see, down the ranking only
      // as far as the page needs: a first page used to read and filter all of it (up to 200 statuses, the
      // viewer's relationships to every author) to show 20.
      const want = page.offset + page.limit;
      const visible: Status[] = [];
      for (let from = 0; from < ranking.length && visible.length < want; ) {
        // A few more than are missing: some are hidden from this viewer, deleted or muted.
        const ids = ranking.slice(from, from + want - visible.length + 10).map((r) => r.id);
        from += ids.length;
        const rows = await ctx.db.selectFrom('statuses').selectAll().where('id', 'in', ids).execute();
        const byId = new Map(rows.map((r) => [r.id, r]));
        let seen = await filterVisible(ctx.db, viewerId, ids.flatMap((id) => byId.get(id) ?? []));
        if (viewerId) {
          const { muted } = await loadViewerFacts(ctx.db, viewerId, seen.map((s) => s.account_id));
          seen = seen.filter((s) => !muted.has(s.account_id));
        }
        visible.push(...seen);
      }
      return visible.slice(page.offset, want);
    },
  };
}
