/**
 * Home feeds. Ordinary authors' statuses are pushed into each follower's
 * home_feed by a job (fan-out on write); authors with very many followers are
 * 'pull' and merged into home timelines on read (timelines.ts), so one
 * celebrity post is not 100,000 inserts. A feed holds only derived data and
 * can always be rebuilt from statuses and follows.
 */
import { sql } from 'kysely';
import { idValue } from '../store/sql.js';
import type { AppContext } from './context.js';
import { createNotification } from './notifications.js';

/** How many recent statuses of a newly followed account enter the follower's feed. */
const MERGE_DEPTH = 100;

/**
 * Follows reached by one fan-out write. On SQLite a write holds the event loop, and each row costs ~35 µs on
 * these machines (one page of the feed's index per follower): a post to 1,800 followers in one write held every
 * request for 50–170 ms. In writes this size each is a few milliseconds, and the writer's `maxBatchMs` lets the
 * loop turn between them. Exported for the tests.
 */
export const FANOUT_CHUNK = 100;

/**
 * The end of the next range of the author's follows, by follow id, after `after`: the range is `after` < id ≤ the
 * id returned, or open-ended (null) when it is the last, so a follow made meanwhile is not missed (one made after
 * the status is merged in by mergeInto). One short read of the follows index per range, each in its own turn of
 * the event loop: reading every follower's id at once cost 1–2 ms for 1,800 followers, and a job worker starting
 * fifty fan-outs together held the loop for 50 ms with those reads. A range may be written twice (a job run
 * again): the inserts do nothing on conflict.
 */
async function rangeEnd(ctx: AppContext, accountId: string, after: string): Promise<string | null> {
  const ids = await ctx.db
    .selectFrom('follows')
    .select('id')
    .where('target_account_id', '=', accountId)
    .where('id', '>', after)
    .orderBy('id')
    .limit(2)
    .offset(FANOUT_CHUNK - 1)
    .execute();
  // A follow after this range's last: the range is bounded; none: it is the last range, open-ended.
  return ids.length === 2 ? ids[0].id : null;
}

export async function fanOut(ctx: AppContext, statusId: string): Promise<void> {
  const s = await ctx.db.selectFrom('statuses').selectAll().where('id', '=', statusId).executeTakeFirst();
  if (!s || s.deleted_at) return;
  let reblogAuthor: string | null = null;
  if (s.reblog_of_id) {
    const original = await ctx.db.selectFrom('statuses').select(['account_id', 'deleted_at']).where('id', '=', s.reblog_of_id).executeTakeFirst();
    if (!original || original.deleted_at) return;
    reblogAuthor = original.account_id;
  }
  if (s.visibility === 'direct') {
    // Direct statuses reach only the people they mention, and of those only
    // followers (Mastodon's rule: anyone else sees them in notifications).
    await ctx.write((trx) =>
      sql`
        INSERT INTO home_feed (account_id, status_id, author_id, reblog_of_author_id)
        SELECT m.account_id, ${idValue(s.id)}, ${idValue(s.account_id)}, ${idValue(null)} FROM mentions m
        JOIN follows f ON f.account_id = m.account_id AND f.target_account_id = ${s.account_id}
        WHERE m.status_id = ${s.id}
        ON CONFLICT DO NOTHING`.execute(trx),
    );
    return;
  }
  if (s.distribution === 'push') {
    // A reply to someone else reaches only followers who also follow that someone (Mastodon's rule),
    // a reblog only followers who want reblogs from this account and did not write the original.
    const replyFilter =
      s.in_reply_to_account_id && s.in_reply_to_account_id !== s.account_id
        ? sql`AND (f.account_id = ${s.in_reply_to_account_id} OR EXISTS (SELECT 1 FROM follows f2 WHERE f2.account_id = f.account_id AND f2.target_account_id = ${s.in_reply_to_account_id}))`
        : sql``;
    const reblogFilter = reblogAuthor ? sql`AND f.show_reblogs = 1 AND f.account_id <> ${reblogAuthor}` : sql``;
    for (let after: string | null = '0'; after !== null; ) {
      const last = await rangeEnd(ctx, s.account_id, after);
      const upTo = last === null ? sql`` : sql`AND f.id <= ${last}`;
      await ctx.write((trx) =>
        sql`
          INSERT INTO home_feed (account_id, status_id, author_id, reblog_of_author_id)
          SELECT f.account_id, ${idValue(s.id)}, ${idValue(s.account_id)}, ${idValue(reblogAuthor)} FROM follows f
          WHERE f.target_account_id = ${s.account_id} AND f.id > ${after} ${upTo} ${replyFilter} ${reblogFilter}
          ON CONFLICT DO NOTHING`.execute(trx),
      );
      after = last;
    }
  }
  if (s.visibility === 'public' && !s.reblog_of_id) {
    // Accounts following one of its tags get a public status too, whoever wrote it and however it is
    // distributed ('pull' merging on read covers followed accounts, not followed tags). Blocks and
    // mutes apply on read. No backfill on following a tag, as in Mastodon.
    await ctx.write((trx) =>
      sql`
        INSERT INTO home_feed (account_id, status_id, author_id, reblog_of_author_id)
        SELECT DISTINCT ft.account_id, ${idValue(s.id)}, ${idValue(s.account_id)}, ${idValue(null)} FROM status_tags st
        JOIN followed_tags ft ON ft.tag_id = st.tag_id
        WHERE st.status_id = ${s.id} AND ft.account_id <> ${s.account_id}
        ON CONFLICT DO NOTHING`.execute(trx),
    );
  }
  // Followers who asked to be notified of this account's posts (blocks and mutes apply there);
  // replies only to the author's own statuses (threads), as Mastodon's FeedInsertWorker#notify?.
  if (!s.reblog_of_id && (!s.in_reply_to_id || s.in_reply_to_account_id === s.account_id)) {
    const subscribers = await ctx.db.selectFrom('follows').select('account_id').where('target_account_id', '=', s.account_id).where('notify', '=', 1).execute();
    for (const sub of subscribers) {
      await createNotification(ctx, { accountId: sub.account_id, fromAccountId: s.account_id, type: 'status', statusId: s.id });
    }
  }
}

export async function unfanOut(ctx: AppContext, statusId: string): Promise<void> {
  // In writes of FANOUT_CHUNK rows, as the fan-out put them there.
  for (;;) {
    const { numDeletedRows } = await ctx.write((trx) =>
      trx
        .deleteFrom('home_feed')
        .where('status_id', '=', statusId)
        .where('account_id', 'in', trx.selectFrom('home_feed').select('account_id').where('status_id', '=', statusId).limit(FANOUT_CHUNK))
        .executeTakeFirstOrThrow(),
    );
    if (numDeletedRows < BigInt(FANOUT_CHUNK)) return;
  }
}

/** After a follow: the followee's recent statuses enter the follower's feed. */
export async function mergeInto(ctx: AppContext, accountId: string, targetId: string): Promise<void> {
  const following = await ctx.db.selectFrom('follows').select('id').where('account_id', '=', accountId).where('target_account_id', '=', targetId).executeTakeFirst();
  if (!following) return; // unfollowed again before the job ran
  const insert = sql`
    INSERT INTO home_feed (account_id, status_id, author_id, reblog_of_author_id)
    SELECT ${idValue(accountId)}, s.id, s.account_id, o.account_id FROM statuses s
    LEFT JOIN statuses o ON o.id = s.reblog_of_id
    WHERE s.account_id = ${targetId} AND s.deleted_at IS NULL AND s.visibility IN ('public', 'unlisted', 'private')
      AND (s.in_reply_to_account_id IS NULL OR s.in_reply_to_account_id = s.account_id OR s.in_reply_to_account_id = ${accountId})
      AND (o.account_id IS NULL OR o.account_id <> ${accountId})
    ORDER BY s.id DESC LIMIT ${sql.lit(MERGE_DEPTH)}
    ON CONFLICT DO NOTHING`;
  await ctx.write((trx) => insert.execute(trx));
}

/** After an unfollow or block: the target's statuses and reblogs leave the feed. */
export async function unmergeFrom(ctx: AppContext, accountId: string, targetId: string): Promise<void> {
  const following = await ctx.db.selectFrom('follows').select('id').where('account_id', '=', accountId).where('target_account_id', '=', targetId).executeTakeFirst();
  if (following) return; // followed again before the job ran
  await ctx.write((trx) => trx.deleteFrom('home_feed').where('account_id', '=', accountId).where('author_id', '=', targetId).execute());
}

/** Rebuilds one account's feed from statuses and follows: its own statuses, then each followee's recent ones. */
export async function rebuildFeed(ctx: AppContext, accountId: string): Promise<void> {
  await ctx.write(async (trx) => {
    await trx.deleteFrom('home_feed').where('account_id', '=', accountId).execute();
    await sql`
      INSERT INTO home_feed (account_id, status_id, author_id, reblog_of_author_id)
      SELECT ${idValue(accountId)}, s.id, s.account_id, o.account_id FROM statuses s
      LEFT JOIN statuses o ON o.id = s.reblog_of_id
      WHERE s.account_id = ${accountId} AND s.deleted_at IS NULL
      ORDER BY s.id DESC LIMIT ${sql.lit(MERGE_DEPTH * 4)}`.execute(trx);
    await sql`
      INSERT INTO home_feed (account_id, status_id, author_id, reblog_of_author_id)
      SELECT ${idValue(accountId)}, m.status_id, s.account_id, ${idValue(null)} FROM mentions m JOIN statuses s ON s.id = m.status_id
      JOIN follows f ON f.account_id = ${accountId} AND f.target_account_id = s.account_id
      WHERE m.account_id = ${accountId} AND s.visibility = 'direct' AND s.deleted_at IS NULL
      ON CONFLICT DO NOTHING`.execute(trx);
  });
  const followees = await ctx.db.selectFrom('follows').select('target_account_id').where('account_id', '=', accountId).execute();
  for (const f of followees) await mergeInto(ctx, accountId, f.target_account_id);
}
