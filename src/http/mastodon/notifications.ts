/** Notifications: list, show, dismiss, clear, unread count. */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import type { AppContext } from '../../services/context.js';
import {
  clearNotifications,
  dismissNotification,
  listNotifications,
  notificationView,
  notificationViews,
  unreadCount,
  UNREAD_COUNT_DEFAULT,
  UNREAD_COUNT_MAX,
} from '../../services/notifications.js';
import { notFound } from '../../domain/errors.js';
import { isId } from '../../domain/ids.js';
import { requireUser } from '../auth.js';
import { parse, zArray, zLimit, zOptId, PageQuery } from '../validation.js';
import { setLinkHeader } from '../pagination.js';

/** Unknown type names are kept here and ignored by the service, as Mastodon ignores them. */
const Filters = {
  types: zArray(z.string()).optional(),
  exclude_types: zArray(z.string()).optional(),
  account_id: zOptId,
};
const ListQuery = PageQuery.extend({ limit: zLimit(40, 80), ...Filters });
const UnreadQuery = z.object({ limit: zLimit(UNREAD_COUNT_DEFAULT, UNREAD_COUNT_MAX), ...Filters });

/** A path id that is not one of ours cannot name a notification: 404. */
function notificationId(req: FastifyRequest): string {
  const { id } = parse(z.object({ id: z.string() }), req.params);
  if (!isId(id)) throw notFound();
  return id;
}

export async function notificationRoutes(app: FastifyInstance, { ctx }: { ctx: AppContext }): Promise<void> {
  app.get('/api/v1/notifications', async (req, reply) => {
    const me = requireUser(req, 'read:notifications');
    const q = parse(ListQuery, req.query);
    const { rows, cursor } = await listNotifications(ctx, me.accountId, {
      page: q,
      types: q.types,
      excludeTypes: q.exclude_types,
      accountId: q.account_id,
    });
    setLinkHeader(req, reply, ctx.urls.base, cursor);
    return notificationViews(ctx, rows, me.accountId);
  });

  app.get('/api/v1/notifications/unread_count', async (req) => {
    const me = requireUser(req, 'read:notifications');
    const q = parse(UnreadQuery, req.query);
    const count = await unreadCount(ctx, me.accountId, q.limit, { types: q.types, excludeTypes: q.exclude_types, accountId: q.account_id });
    return { count };
  });

  app.post('/api/v1/notifications/clear', async (req) => {
    const me = requireUser(req, 'write:notifications');
    await clearNotifications(ctx, me.accountId);
    return {};
  });

  app.get('/api/v1/notifications/:id', async (req) => {
    const me = requireUser(req, 'read:notifications');
    const view = await notificationView(ctx, notificationId(req), me.accountId);
    if (!view) throw notFound();
    return view;
  });

  app.post('/api/v1/notifications/:id/dismiss', async (req) => {
    const me = requireUser(req, 'write:notifications');
    await dismissNotification(ctx, me.accountId, notificationId(req));
    return {};
  });
}
