/**
 * The social graph: follows (and follow requests for locked accounts),
 * blocks, mutes, and the Relationship entity that describes them.
 */
import type { Transaction } from 'kysely';
import { StarlingError, notFound } from '../domain/errors.js';
import type { Database } from '../store/schema.js';
import { applyPage, pageRows, type PageParams } from '../store/paging.js';
import { decrement, increment } from '../store/sql.js';
import type { AppContext } from './context.js';
import { enqueue } from './jobs.js';

type Trx = Transaction<Database>;

export interface Relationship {
  id: string;
  following: boolean;
  showing_reblogs: boolean;
  notifying: boolean;
  languages: null;
  followed_by: boolean;
  blocking: boolean;
  blocked_by: boolean;
  muting: boolean;
  muting_notifications: boolean;
  requested: boolean;
  requested_by: boolean;
  domain_blocking: boolean;
  endorsed: boolean;
  note: string;
}

export async function relationships(ctx: AppContext, viewerId: string, ids: readonly string[]): Promise<Relationship[]> {
  const unique = [...new Set(ids)];
  if (unique.length === 0) return [];
  const db = ctx.db;
  const [existing, following, followedBy, blocking, blockedBy, muting, requested, requestedBy] = await Promise.all([
    db.selectFrom('accounts').select('id').where('id', 'in', unique).execute(),
    db.selectFrom('follows').select(['target_account_id as id', 'show_reblogs', 'notify']).where('account_id', '=', viewerId).where('target_account_id', 'in', unique).execute(),
    db.selectFrom('follows').select('account_id as id').where('target_account_id', '=', viewerId).where('account_id', 'in', unique).execute(),
    db.selectFrom('blocks').select('target_account_id as id').where('account_id', '=', viewerId).where('target_account_id', 'in', unique).execute(),
    db.selectFrom('blocks').select('account_id as id').where('target_account_id', '=', viewerId).where('account_id', 'in', unique).execute(),
    db.selectFrom('mutes').select(['target_account_id as id', 'hide_notifications']).where('account_id', '=', viewerId).where('target_account_id', 'in', unique).execute(),
    db.selectFrom('follow_requests').select(['target_account_id as id', 'show_reblogs', 'notify']).where('account_id', '=', viewerId).where('target_account_id', 'in', unique).execute(),
    db.selectFrom('follow_requests').select('account_id as id').where('target_account_id', '=', viewerId).where('account_id', 'in', unique).execute(),
  ]);
  const known = new Set(existing.map((r) => r.id));
  const set = (rows: { id: string }[]) => new Set(rows.map((r) => r.id));
  const fol = new Map(following.map((r) => [r.id, r]));
  const req = new Map(requested.map((r) => [r.id, r]));
  const mut = new Map(muting.map((r) => [r.id, r]));
  const [fb, bl, bb, rb] = [set(followedBy), set(blocking), set(blockedBy), set(requestedBy)];
  return unique.filter((id) => known.has(id)).map((id) => {
    const f = fol.get(id) ?? req.get(id);
    return {
      id,
      following: fol.has(id),
      showing_reblogs: f ? f.show_reblogs === 1 : false,
      notifying: f ? f.notify === 1 : false,
      languages: null,
      followed_by: fb.has(id),
      blocking: bl.has(id),
      blocked_by: bb.has(id),
      muting: mut.has(id),
      muting_notifications: mut.get(id)?.hide_notifications === 1,
      requested: req.has(id),
      requested_by: rb.has(id),
      domain_blocking: false,
      endorsed: false,
      note: '',
    };
  });
}

export async function relationship(ctx: AppContext, viewerId: string, id: string): Promise<Relationship> {
  const [r] = await relationships(ctx, viewerId, [id]);
  if (!r) throw notFound();
  return r;
}

function changed(ctx: AppContext, accountId: string, targetAccountId: string, change: 'follow' | 'unfollow' | 'block' | 'unblock' | 'mute' | 'unmute'): void {
  ctx.bus.publish({ type: 'relationship.changed', accountId, targetAccountId, change });
}

async function targetAccount(trx: Trx, viewerId: string, targetId: string) {
  const t = await trx.selectFrom('accounts').select(['id', 'locked']).where('id', '=', targetId).executeTakeFirst();
  if (!t) throw notFound();
  if (t.id === viewerId) throw new StarlingError('forbidden', 'You cannot do this to yourself');
  return t;
}

async function isBlockedEitherWay(trx: Trx, a: string, b: string): Promise<boolean> {
  const row = await trx
    .selectFrom('blocks')
    .select('id')
    .where((eb) => eb.or([eb.and([eb('account_id', '=', a), eb('target_account_id', '=', b)]), eb.and([eb('account_id', '=', b), eb('target_account_id', '=', a)])]))
    .executeTakeFirst();
  return row !== undefined;
}

/** Adds an accepted follow and everything that goes with it. Idempotent. */
async function addFollow(ctx: AppContext, trx: Trx, followerId: string, targetId: string, opts: { reblogs: boolean; notify: boolean }): Promise<void> {
  const res = await trx
    .insertInto('follows')
    .values({ id: ctx.ids.next(), account_id: followerId, target_account_id: targetId, show_reblogs: opts.reblogs ? 1 : 0, notify: opts.notify ? 1 : 0, created_at: ctx.now().toISOString() })
    .onConflict((oc) => oc.columns(['account_id', 'target_account_id']).doNothing())
    .executeTakeFirst();
  if (Number(res.numInsertedOrUpdatedRows ?? 0n) === 0) return;
  await trx.updateTable('accounts').set({ following_count: increment('following_count') }).where('id', '=', followerId).execute();
  await trx.updateTable('accounts').set({ followers_count: increment('followers_count') }).where('id', '=', targetId).execute();
  await enqueue(ctx, trx, 'feed.merge', { accountId: followerId, targetAccountId: targetId });
}

async function removeFollow(ctx: AppContext, trx: Trx, followerId: string, targetId: string): Promise<void> {
  const res = await trx.deleteFrom('follows').where('account_id', '=', followerId).where('target_account_id', '=', targetId).executeTakeFirst();
  if (Number(res.numDeletedRows) === 0) return;
  await trx.updateTable('accounts').set({ following_count: decrement('following_count') }).where('id', '=', followerId).execute();
  await trx.updateTable('accounts').set({ followers_count: decrement('followers_count') }).where('id', '=', targetId).execute();
  await enqueue(ctx, trx, 'feed.unmerge', { accountId: followerId, targetAccountId: targetId });
}

export async function follow(ctx: AppContext, viewerId: string, targetId: string, opts: { reblogs?: boolean; notify?: boolean } = {}): Promise<Relationship> {
  await ctx.write(async (trx) => {
    const target = await targetAccount(trx, viewerId, targetId);
    if (await isBlockedEitherWay(trx, viewerId, targetId)) throw new StarlingError('forbidden');
    const existing =
      (await trx.selectFrom('follows').select(['show_reblogs', 'notify']).where('account_id', '=', viewerId).where('target_account_id', '=', targetId).executeTakeFirst()) ??
      (await trx.selectFrom('follow_requests').select(['show_reblogs', 'notify']).where('account_id', '=', viewerId).where('target_account_id', '=', targetId).executeTakeFirst());
    const accepted = await trx.selectFrom('follows').select('id').where('account_id', '=', viewerId).where('target_account_id', '=', targetId).executeTakeFirst();
    const reblogs = opts.reblogs ?? (existing ? existing.show_reblogs === 1 : true);
    const notify = opts.notify ?? (existing ? existing.notify === 1 : false);
    if (accepted) {
      // Following again updates the options, as in Mastodon.
      await trx.updateTable('follows').set({ show_reblogs: reblogs ? 1 : 0, notify: notify ? 1 : 0 }).where('account_id', '=', viewerId).where('target_account_id', '=', targetId).execute();
      return;
    }
    if (target.locked === 1) {
      const res = await trx
        .insertInto('follow_requests')
        .values({ id: ctx.ids.next(), account_id: viewerId, target_account_id: targetId, show_reblogs: reblogs ? 1 : 0, notify: notify ? 1 : 0, created_at: ctx.now().toISOString() })
        .onConflict((oc) => oc.columns(['account_id', 'target_account_id']).doUpdateSet({ show_reblogs: reblogs ? 1 : 0, notify: notify ? 1 : 0 }))
        .executeTakeFirst();
      if (Number(res.numInsertedOrUpdatedRows ?? 0n) > 0) {
        await enqueue(ctx, trx, 'notify', { accountId: targetId, fromAccountId: viewerId, type: 'follow_request', statusId: null });
      }
      return;
    }
    await addFollow(ctx, trx, viewerId, targetId, { reblogs, notify });
    await enqueue(ctx, trx, 'notify', { accountId: targetId, fromAccountId: viewerId, type: 'follow', statusId: null });
  });
  ctx.kickJobs();
  changed(ctx, viewerId, targetId, 'follow');
  return relationship(ctx, viewerId, targetId);
}

export async function unfollow(ctx: AppContext, viewerId: string, targetId: string): Promise<Relationship> {
  await ctx.write(async (trx) => {
    await targetAccount(trx, viewerId, targetId);
    await removeFollow(ctx, trx, viewerId, targetId);
    await trx.deleteFrom('follow_requests').where('account_id', '=', viewerId).where('target_account_id', '=', targetId).execute();
  });
  ctx.kickJobs();
  changed(ctx, viewerId, targetId, 'unfollow');
  return relationship(ctx, viewerId, targetId);
}

export async function authorizeFollowRequest(ctx: AppContext, viewerId: string, requesterId: string): Promise<Relationship> {
  await ctx.write(async (trx) => {
    const req = await trx.selectFrom('follow_requests').selectAll().where('account_id', '=', requesterId).where('target_account_id', '=', viewerId).executeTakeFirst();
    if (!req) throw notFound();
    await trx.deleteFrom('follow_requests').where('id', '=', req.id).execute();
    await addFollow(ctx, trx, requesterId, viewerId, { reblogs: req.show_reblogs === 1, notify: req.notify === 1 });
    await enqueue(ctx, trx, 'notify', { accountId: viewerId, fromAccountId: requesterId, type: 'follow', statusId: null });
  });
  ctx.kickJobs();
  changed(ctx, requesterId, viewerId, 'follow');
  return relationship(ctx, viewerId, requesterId);
}

export async function rejectFollowRequest(ctx: AppContext, viewerId: string, requesterId: string): Promise<Relationship> {
  // Thrown inside the write, as authorizeFollowRequest: it rolls back, so a request that names nothing leaves nothing.
  await ctx.write(async (trx) => {
    const res = await trx.deleteFrom('follow_requests').where('account_id', '=', requesterId).where('target_account_id', '=', viewerId).executeTakeFirst();
    if (Number(res.numDeletedRows) === 0) throw notFound();
  });
  return relationship(ctx, viewerId, requesterId);
}

export async function block(ctx: AppContext, viewerId: string, targetId: string): Promise<Relationship> {
  await ctx.write(async (trx) => {
    await targetAccount(trx, viewerId, targetId);
    await trx
      .insertInto('blocks')
      .values({ id: ctx.ids.next(), account_id: viewerId, target_account_id: targetId, created_at: ctx.now().toISOString() })
      .onConflict((oc) => oc.columns(['account_id', 'target_account_id']).doNothing())
      .execute();
    // A block ends the follow in both directions, and any pending request.
    await removeFollow(ctx, trx, viewerId, targetId);
    await removeFollow(ctx, trx, targetId, viewerId);
    await trx
      .deleteFrom('follow_requests')
      .where((eb) => eb.or([eb.and([eb('account_id', '=', viewerId), eb('target_account_id', '=', targetId)]), eb.and([eb('account_id', '=', targetId), eb('target_account_id', '=', viewerId)])]))
      .execute();
  });
  ctx.kickJobs();
  changed(ctx, viewerId, targetId, 'block');
  return relationship(ctx, viewerId, targetId);
}

export async function unblock(ctx: AppContext, viewerId: string, targetId: string): Promise<Relationship> {
  await ctx.write(async (trx) => {
    await targetAccount(trx, viewerId, targetId);
    await trx.deleteFrom('blocks').where('account_id', '=', viewerId).where('target_account_id', '=', targetId).execute();
  });
  changed(ctx, viewerId, targetId, 'unblock');
  return relationship(ctx, viewerId, targetId);
}

export async function mute(ctx: AppContext, viewerId: string, targetId: string, opts: { notifications?: boolean; durationSeconds?: number } = {}): Promise<Relationship> {
  await ctx.write(async (trx) => {
    await targetAccount(trx, viewerId, targetId);
    const hide = opts.notifications === false ? 0 : 1;
    const expires = opts.durationSeconds ? new Date(ctx.now().getTime() + opts.durationSeconds * 1000).toISOString() : null;
    await trx
      .insertInto('mutes')
      .values({ id: ctx.ids.next(), account_id: viewerId, target_account_id: targetId, hide_notifications: hide, expires_at: expires, created_at: ctx.now().toISOString() })
      .onConflict((oc) => oc.columns(['account_id', 'target_account_id']).doUpdateSet({ hide_notifications: hide, expires_at: expires }))
      .execute();
  });
  changed(ctx, viewerId, targetId, 'mute');
  return relationship(ctx, viewerId, targetId);
}

export async function unmute(ctx: AppContext, viewerId: string, targetId: string): Promise<Relationship> {
  await ctx.write(async (trx) => {
    await targetAccount(trx, viewerId, targetId);
    await trx.deleteFrom('mutes').where('account_id', '=', viewerId).where('target_account_id', '=', targetId).execute();
  });
  changed(ctx, viewerId, targetId, 'unmute');
  return relationship(ctx, viewerId, targetId);
}

export type GraphList = 'followers' | 'following' | 'follow_requests' | 'blocks' | 'mutes';

/**
 * One page of accounts from a graph table, newest first. The cursor is the
 * row's own id (not the account's), so it is carried only in Link headers.
 */
export async function listGraph(ctx: AppContext, list: GraphList, accountId: string, page: PageParams): Promise<{ accountIds: string[]; cursor: { newest: string; oldest: string } | null }> {
  const [table, mine, theirs] = (
    {
      followers: ['follows', 'target_account_id', 'account_id'],
      following: ['follows', 'account_id', 'target_account_id'],
      follow_requests: ['follow_requests', 'target_account_id', 'account_id'],
      blocks: ['blocks', 'account_id', 'target_account_id'],
      mutes: ['mutes', 'account_id', 'target_account_id'],
    } as const
  )[list];
  const rows = pageRows(
    await applyPage(ctx.db.selectFrom(table).select(['id', `${theirs} as account_id`]).where(mine, '=', accountId), `${table}.id`, page).execute(),
    page,
  );
  return {
    accountIds: rows.map((r) => r.account_id),
    cursor: rows.length ? { newest: rows[0].id, oldest: rows[rows.length - 1].id } : null,
  };
}
