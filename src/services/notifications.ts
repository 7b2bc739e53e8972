/** Notifications: created by jobs, one per (recipient, type, actor, status) however often the job runs. */
import type { AppContext } from './context.js';
import type { JobPayloads } from './jobs.js';

export async function createNotification(ctx: AppContext, p: JobPayloads['notify']): Promise<void> {
  if (p.accountId === p.fromAccountId) return;
  // Blocks silence everything; mutes silence notifications unless the mute keeps them.
  const silenced = await ctx.db
    .selectFrom('blocks')
    .select('id')
    .where((eb) =>
      eb.or([
        eb.and([eb('account_id', '=', p.accountId), eb('target_account_id', '=', p.fromAccountId)]),
        eb.and([eb('account_id', '=', p.fromAccountId), eb('target_account_id', '=', p.accountId)]),
      ]),
    )
    .unionAll(ctx.db.selectFrom('mutes').select('id').where('account_id', '=', p.accountId).where('target_account_id', '=', p.fromAccountId).where('hide_notifications', '=', 1))
    .executeTakeFirst();
  if (silenced) return;
  const id = ctx.ids.next();
  const inserted = await ctx.db
    .insertInto('notifications')
    .values({
      id,
      account_id: p.accountId,
      from_account_id: p.fromAccountId,
      type: p.type,
      status_id: p.statusId,
      dedupe_key: `${p.type}:${p.fromAccountId}:${p.statusId ?? ''}`,
      created_at: ctx.now().toISOString(),
    })
    .onConflict((oc) => oc.columns(['account_id', 'dedupe_key']).doNothing())
    .executeTakeFirst();
  // A repeated job inserts nothing and so announces nothing.
  if (Number(inserted.numInsertedOrUpdatedRows ?? 0n) > 0) ctx.bus.publish({ type: 'notification.created', notificationId: id, accountId: p.accountId });
}
