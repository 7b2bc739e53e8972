/**
 * Hashtags as things one can look at and follow: the Tag entity with its
 * daily history, following and unfollowing, and the list of followed tags.
 * Statuses with a followed tag reach the follower's home feed through the
 * fan-out (feeds.ts); following does not backfill, as in Mastodon.
 */
import { sql } from 'kysely';
import { notFound } from '../domain/errors.js';
import { idAtTime } from '../domain/ids.js';
import { normalizeTag } from '../domain/text.js';
import type { MastoTag } from '../domain/entities.js';
import { applyPage, pageRows, type PageParams } from '../store/paging.js';
import type { AppContext } from './context.js';

const DAY_MS = 86_400_000;
/** How many days of history a Tag entity carries, newest first. */
export const HISTORY_DAYS = 7;
/** The same rule as a hashtag in post text (domain/text.ts): letters, numbers, `_`, joiners, at least one non-digit. */
const TAG_NAME = /^[\p{L}\p{M}\p{N}_\u00b7\u200c]*[\p{L}\p{M}_][\p{L}\p{M}\p{N}_\u00b7\u200c]*$/u;
const MAX_TAG_LENGTH = 100;

export interface TagHistoryDay {
  /** Unix seconds of the day's UTC midnight, as a string. */
  day: string;
  uses: string;
  accounts: string;
}

export interface MastoTagEntity extends MastoTag {
  id: string;
  history: TagHistoryDay[];
  following?: boolean;
}

export interface TagRef {
  id: string;
  name: string;
}

/**
 * A tag name from a URL or a client (`#Café` and `café` are the same tag), or
 * a 404 when it could not be a hashtag at all: Mastodon answers a malformed
 * name as an unknown record.
 */
export function tagNameOf(raw: string): string {
  const name = raw.replace(/^#/, '');
  if (name.length > MAX_TAG_LENGTH || !TAG_NAME.test(name)) throw notFound();
  return normalizeTag(name);
}

export async function findTag(ctx: AppContext, name: string): Promise<TagRef | undefined> {
  return ctx.db.selectFrom('tags').select(['id', 'name']).where('name', '=', name).executeTakeFirst();
}

/**
 * Daily uses (statuses) and distinct accounts of each tag over the last
 * HISTORY_DAYS UTC days, newest first, with zero days filled in. Counts
 * listed statuses (public and unlisted), as Mastodon does; reblogs carry no
 * tags of their own. One query for all tags, bounded by the id range of the
 * week through status_tags' (tag_id, status_id) key; days are buckets of ids
 * (ids are time-ordered), so no date arithmetic differs between databases.
 */
export async function tagHistories(ctx: AppContext, tagIds: readonly string[]): Promise<Map<string, TagHistoryDay[]>> {
  const today = Math.floor(ctx.now().getTime() / DAY_MS) * DAY_MS;
  const first = today - (HISTORY_DAYS - 1) * DAY_MS;
  const start = BigInt(idAtTime(first));
  const end = BigInt(idAtTime(today + DAY_MS));
  const dayWidth = BigInt(idAtTime(first + DAY_MS)) - start;
  const counts = new Map<string, { uses: number; accounts: number }>();
  const ids = [...new Set(tagIds)];
  if (ids.length) {
    const rows = await sql<{ tag_id: string; bucket: number; uses: number; accounts: number }>`
      SELECT st.tag_id AS tag_id, (st.status_id - ${start}) / ${dayWidth} AS bucket,
        COUNT(*) AS uses, COUNT(DISTINCT s.account_id) AS accounts
      FROM status_tags st JOIN statuses s ON s.id = st.status_id
      WHERE st.tag_id IN (${sql.join(ids.map((id) => BigInt(id)))}) AND st.status_id >= ${start} AND st.status_id < ${end}
        AND s.deleted_at IS NULL AND s.visibility IN ('public', 'unlisted')
      GROUP BY st.tag_id, bucket`.execute(ctx.db);
    for (const r of rows.rows) counts.set(`${r.tag_id}:${Number(r.bucket)}`, { uses: Number(r.uses), accounts: Number(r.accounts) });
  }
  const out = new Map<string, TagHistoryDay[]>();
  for (const id of ids) {
    const days: TagHistoryDay[] = [];
    for (let i = HISTORY_DAYS - 1; i >= 0; i--) {
      const c = counts.get(`${id}:${i}`);
      days.push({ day: String((first + i * DAY_MS) / 1000), uses: String(c?.uses ?? 0), accounts: String(c?.accounts ?? 0) });
    }
    out.set(id, days);
  }
  return out;
}

/** Which of these tags the viewer follows. */
export async function followedAmong(ctx: AppContext, viewerId: string, tagIds: readonly string[]): Promise<Set<string>> {
  if (tagIds.length === 0) return new Set();
  const rows = await ctx.db.selectFrom('followed_tags').select('tag_id').where('account_id', '=', viewerId).where('tag_id', 'in', [...new Set(tagIds)]).execute();
  return new Set(rows.map((r) => r.tag_id));
}

export function tagUrl(ctx: AppContext, name: string): string {
  return `${ctx.urls.base}/tags/${encodeURIComponent(name)}`;
}

/**
 * Tag entities in the order given, with history; `following` only for a
 * signed-in viewer (Mastodon leaves it out otherwise). `histories` may be
 * passed in when the caller has them already (trends cache them).
 */
export async function tagViews(
  ctx: AppContext,
  tags: readonly TagRef[],
  viewerId: string | null,
  histories?: Map<string, TagHistoryDay[]>,
): Promise<MastoTagEntity[]> {
  if (tags.length === 0) return [];
  const ids = tags.map((t) => t.id);
  const [history, followed] = await Promise.all([
    histories ?? tagHistories(ctx, ids),
    viewerId ? followedAmong(ctx, viewerId, ids) : Promise.resolve(null),
  ]);
  return tags.map((t) => ({
    id: t.id,
    name: t.name,
    url: tagUrl(ctx, t.name),
    history: history.get(t.id) ?? [],
    ...(followed ? { following: followed.has(t.id) } : {}),
  }));
}

/** GET /api/v1/tags/:name: a tag that was never used (nor followed) is a 404. */
export async function showTag(ctx: AppContext, viewerId: string | null, rawName: string): Promise<MastoTagEntity> {
  const tag = await findTag(ctx, tagNameOf(rawName));
  if (!tag) throw notFound();
  const [view] = await tagViews(ctx, [tag], viewerId);
  return view;
}

/** Follows a tag, creating it if nobody used it yet. Following twice is one follow. */
export async function followTag(ctx: AppContext, viewerId: string, rawName: string): Promise<MastoTagEntity> {
  const name = tagNameOf(rawName);
  const { tag, added } = await ctx.write(async (trx) => {
    const now = ctx.now().toISOString();
    await trx.insertInto('tags').values({ id: ctx.ids.next(), name, created_at: now }).onConflict((oc) => oc.column('name').doNothing()).execute();
    const tag = await trx.selectFrom('tags').select(['id', 'name']).where('name', '=', name).executeTakeFirstOrThrow();
    const inserted = await trx
      .insertInto('followed_tags')
      .values({ id: ctx.ids.next(), account_id: viewerId, tag_id: tag.id, created_at: now })
      .onConflict((oc) => oc.columns(['account_id', 'tag_id']).doNothing())
      .executeTakeFirst();
    return { tag, added: Number(inserted.numInsertedOrUpdatedRows ?? 0n) > 0 };
  });
  if (added) ctx.bus.publish({ type: 'relationship.changed', accountId: viewerId, targetAccountId: viewerId, change: 'tag.follow', tag: tag.name });
  const [view] = await tagViews(ctx, [tag], viewerId);
  return view;
}

/** Unfollows a tag; unfollowing a tag one does not follow changes nothing. Statuses already in the feed stay. */
export async function unfollowTag(ctx: AppContext, viewerId: string, rawName: string): Promise<MastoTagEntity> {
  const tag = await findTag(ctx, tagNameOf(rawName));
  if (!tag) throw notFound();
  const deleted = await ctx.write((trx) => trx.deleteFrom('followed_tags').where('account_id', '=', viewerId).where('tag_id', '=', tag.id).executeTakeFirst());
  if (Number(deleted.numDeletedRows) > 0) {
    ctx.bus.publish({ type: 'relationship.changed', accountId: viewerId, targetAccountId: viewerId, change: 'tag.unfollow', tag: tag.name });
  }
  const [view] = await tagViews(ctx, [tag], viewerId);
  return view;
}

/** The viewer's followed tags, most recently followed first; the cursor is the follow's own id. */
export async function followedTags(ctx: AppContext, viewerId: string, page: PageParams) {
  const rows = pageRows(
    await applyPage(
      ctx.db
        .selectFrom('followed_tags')
        .innerJoin('tags', 'tags.id', 'followed_tags.tag_id')
        .select(['followed_tags.id as follow_id', 'tags.id', 'tags.name'])
        .where('followed_tags.account_id', '=', viewerId),
      'followed_tags.id',
      page,
    ).execute(),
    page,
  );
  const tags = await tagViews(ctx, rows, viewerId);
  return { tags, cursor: rows.length ? { newest: rows[0].follow_id, oldest: rows[rows.length - 1].follow_id } : null };
}
