/**
 * Notifications: created by jobs, one per (recipient, type, actor, status)
 * however often the job runs; read newest first, filtered at read time as
 * well (a block or a notification-hiding mute made after the fact hides what
 * came before it; a deleted status takes its notifications with it).
 */
import { sql, type SqlBool } from 'kysely';
import { renderAccount, renderNotification, type MastoAccount, type MastoNotification, type NotificationType } from '../domain/entities.js';
import type { Notification, Status } from '../store/schema.js';
import { applyPage, pageRows, type PageParams } from '../store/paging.js';
import type { AppContext } from './context.js';
import { notFound } from '../domain/errors.js';
import type { Db } from '../store/db.js';
import type { JobPayloads } from './jobs.js';
import { filterVisible, loadAccounts, statusViews } from './views.js';

export const NOTIFICATION_TYPES: readonly NotificationType[] = ['mention', 'status', 'reblog', 'follow', 'follow_request', 'favourite', 'update'];

/** Mastodon's limits for unread_count. */
export const UNREAD_COUNT_DEFAULT = 100;
export const UNREAD_COUNT_MAX = 1000;

/** Accounts whose notifications the viewer does not get: blocks either way, and mutes that hide notifications (unexpired). */
function silencedFor(viewerId: string, nowIso: string) {
  return sql`(SELECT target_account_id FROM blocks WHERE account_id = ${viewerId}
    UNION SELECT account_id FROM blocks WHERE target_account_id = ${viewerId}
    UNION SELECT target_account_id FROM mutes WHERE account_id = ${viewerId} AND hide_notifications = 1
      AND (expires_at IS NULL OR expires_at > ${nowIso}))`;
}

export async function createNotification(ctx: AppContext, p: JobPayloads['notify']): Promise<void> {
  if (p.accountId === p.fromAccountId) return;
  // Blocks silence everything; mutes silence notifications unless the mute keeps them (or has expired).
  const silenced = await ctx.db
    .selectFrom('accounts')
    .select('id')
    .where('id', '=', p.fromAccountId)
    .where(sql<SqlBool>`id IN ${silencedFor(p.accountId, ctx.now().toISOString())}`)
    .executeTakeFirst();
  if (silenced) return;
  let key = `${p.type}:${p.fromAccountId}:${p.statusId ?? ''}`;
  if (p.type === 'update' && p.statusId) {
    // Each edit is news (Mastodon notifies for every one); a re-run of the same job still finds the same edit.
    const s = await ctx.db.selectFrom('statuses').select('edited_at').where('id', '=', p.statusId).executeTakeFirst();
    if (s?.edited_at) key += `:${s.edited_at}`;
  }
  const id = ctx.ids.next();
  const inserted = await ctx.write((trx) =>
    trx
      .insertInto('notifications')
      .values({
        id,
        account_id: p.accountId,
        from_account_id: p.fromAccountId,
        type: p.type,
        status_id: p.statusId,
        dedupe_key: key,
        created_at: ctx.now().toISOString(),
      })
      .onConflict((oc) => oc.columns(['account_id', 'dedupe_key']).doNothing())
      .executeTakeFirst(),
  );
  // A repeated job inserts nothing and so announces nothing.
  if (Number(inserted.numInsertedOrUpdatedRows ?? 0n) > 0) ctx.bus.publish({ type: 'notification.created', notificationId: id, accountId: p.accountId });
}

export interface NotificationFilter {
  /** Only these types; unknown names are ignored, as in Mastodon (so only unknown names select nothing). */
  types?: readonly string[];
  excludeTypes?: readonly string[];
  /** Only notifications caused by this account. */
  accountId?: string;
}

/** The types a filter asks for, or null for all of them. */
function requestedTypes(f: NotificationFilter): NotificationType[] | null {
  if (!f.types?.length && !f.excludeTypes?.length) return null;
  const wanted = f.types?.length ? NOTIFICATION_TYPES.filter((t) => f.types!.includes(t)) : [...NOTIFICATION_TYPES];
  const excluded = new Set(f.excludeTypes ?? []);
  return wanted.filter((t) => !excluded.has(t));
}

/** The viewer's notifications that a client may be shown, as a query (selection left to the caller). */
function browsable(ctx: AppContext, viewerId: string, f: NotificationFilter) {
  return browsableQuery(ctx.db, viewerId, ctx.now().toISOString(), f);
}

function browsableQuery(db: Db, viewerId: string, nowIso: string, f: NotificationFilter) {
  let q = db
    .selectFrom('notifications')
    .leftJoin('statuses', 'statuses.id', 'notifications.status_id')
    .where('notifications.account_id', '=', viewerId)
    .where((eb) => eb.or([eb('notifications.status_id', 'is', null), eb('statuses.deleted_at', 'is', null)]))
    .where(sql<SqlBool>`notifications.from_account_id NOT IN ${silencedFor(viewerId, nowIso)}`);
  const types = requestedTypes(f);
  if (types) q = types.length ? q.where('notifications.type', 'in', types) : q.where(sql<SqlBool>`1 = 0`);
  if (f.accountId !== undefined) q = q.where('notifications.from_account_id', '=', f.accountId);
  return q;
}

/**
 * One page of the viewer's notifications, newest first, with the cursor for
 * Link headers (taken before rendering, so a notification dropped there
 * never stalls paging).
 */
export async function listNotifications(
  ctx: AppContext,
  viewerId: string,
  opts: { page: PageParams } & NotificationFilter,
): Promise<{ rows: Notification[]; cursor: { newest: string; oldest: string } | null }> {
  const rows = pageRows(await listNotificationsQuery(ctx.db, viewerId, ctx.now().toISOString(), opts).execute(), opts.page);
  return { rows, cursor: rows.length ? { newest: rows[0].id, oldest: rows[rows.length - 1].id } : null };
}

/** listNotifications' query, apart so that test/integration/query-plans.test.ts can check its plan. */
export function listNotificationsQuery(db: Db, viewerId: string, nowIso: string, opts: { page: PageParams } & NotificationFilter) {
  return applyPage(browsableQuery(db, viewerId, nowIso, opts).selectAll('notifications'), 'notifications.id', opts.page);
}

/**
 * Renders notifications for their recipient, in the order given, in one
 * query per kind of row. Dropped: rows that are not the viewer's, from
 * accounts the viewer no longer hears from, and those whose status is gone
 * or no longer visible to the viewer. A reblog notification shows the
 * status that was reblogged, as Mastodon does (the row names the reblog).
 */
export async function notificationViews(ctx: AppContext, rows: readonly Notification[], viewerId: string): Promise<MastoNotification[]> {
  const mine = rows.filter((r) => r.account_id === viewerId);
  if (mine.length === 0) return [];
  const fromIds = [...new Set(mine.map((r) => r.from_account_id))];
  const statusIds = [...new Set(mine.flatMap((r) => (r.status_id ? [r.status_id] : [])))];
  const [accounts, silencedRows, statusRows] = await Promise.all([
    loadAccounts(ctx.db, fromIds),
    ctx.db.selectFrom('accounts').select('id').where('id', 'in', fromIds).where(sql<SqlBool>`id IN ${silencedFor(viewerId, ctx.now().toISOString())}`).execute(),
    statusIds.length ? ctx.db.selectFrom('statuses').selectAll().where('id', 'in', statusIds).execute() : Promise.resolve([]),
  ]);
  const silenced = new Set(silencedRows.map((r) => r.id));
  const statusById = new Map(statusRows.map((s) => [s.id, s]));
  const originalIds = [...new Set(statusRows.flatMap((s) => (s.reblog_of_id && !statusById.has(s.reblog_of_id) ? [s.reblog_of_id] : [])))];
  if (originalIds.length) {
    for (const s of await ctx.db.selectFrom('statuses').selectAll().where('id', 'in', originalIds).execute()) statusById.set(s.id, s);
  }
  /** The status a notification is about: for a reblog, the reblogged status (while the reblog stands). */
  const subjectOf = (r: Notification): Status | null => {
    const s = r.status_id ? statusById.get(r.status_id) : undefined;
    if (!s || s.deleted_at) return null;
    if (!s.reblog_of_id) return s;
    const original = statusById.get(s.reblog_of_id);
    return original && !original.deleted_at ? original : null;
  };
  const subjects = new Map<string, Status>();
  for (const r of mine) {
    const s = subjectOf(r);
    if (s) subjects.set(s.id, s);
  }
  const visible = await filterVisible(ctx.db, viewerId, [...subjects.values()]);
  const statusView = new Map((await statusViews(ctx, visible, viewerId)).map((v) => [v.id, v]));
  const accountView = new Map<string, MastoAccount>();
  const out: MastoNotification[] = [];
  for (const r of mine) {
    if (silenced.has(r.from_account_id)) continue;
    const account = accounts.get(r.from_account_id);
    if (!account) continue;
    let a = accountView.get(account.id);
    if (!a) {
      a = renderAccount(account, ctx.urls);
      accountView.set(account.id, a);
    }
    const subject = subjectOf(r);
    const n = renderNotification(r, a, subject ? statusView.get(subject.id) ?? null : null);
    if (n) out.push(n);
  }
  return out;
}

/** One of the viewer's notifications as a client may see it, or null (missing, someone else's, or hidden). */
export async function notificationView(ctx: AppContext, id: string, viewerId: string): Promise<MastoNotification | null> {
  const row = await browsable(ctx, viewerId, {}).selectAll('notifications').where('notifications.id', '=', id).executeTakeFirst();
  if (!row) return null;
  const [view] = await notificationViews(ctx, [row], viewerId);
  return view ?? null;
}

/** Deletes one of the viewer's notifications; not_found when there is none by that id (thrown inside the write: it rolls back). */
export async function dismissNotification(ctx: AppContext, viewerId: string, id: string): Promise<void> {
  await ctx.write(async (trx) => {
    const res = await trx.deleteFrom('notifications').where('id', '=', id).where('account_id', '=', viewerId).executeTakeFirst();
    if (Number(res.numDeletedRows) === 0) throw notFound();
  });
}

/** Deletes all of the viewer's notifications. */
export async function clearNotifications(ctx: AppContext, viewerId: string): Promise<number> {
  const res = await ctx.write((trx) => trx.deleteFrom('notifications').where('account_id', '=', viewerId).executeTakeFirst());
  return Number(res.numDeletedRows);
}

/**
 * How many of the viewer's notifications are newer than their
 * `notifications` marker (all of them without a marker), counted up to
 * `limit` as Mastodon does (default 100, at most 1000).
 */
export async function unreadCount(ctx: AppContext, viewerId: string, limit: number = UNREAD_COUNT_DEFAULT, filter: NotificationFilter = {}): Promise<number> {
  const cap = Math.max(1, Math.min(UNREAD_COUNT_MAX, Math.floor(limit)));
  const marker = await ctx.db.selectFrom('markers').select('last_read_id').where('account_id', '=', viewerId).where('timeline', '=', 'notifications').executeTakeFirst();
  let q = browsable(ctx, viewerId, filter).select('notifications.id');
  if (marker) q = q.where(sql<SqlBool>`notifications.id > ${marker.last_read_id}`);
  const row = await ctx.db
    .selectFrom(q.limit(cap).as('unread'))
    .select((eb) => eb.fn.countAll<number>().as('count'))
    .executeTakeFirstOrThrow();
  return Number(row.count);
}
