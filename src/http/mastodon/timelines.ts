/** Timelines and the viewer's own status lists (favourites, bookmarks). */
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { AppContext } from '../../services/context.js';
import { homeTimeline, publicTimeline, tagTimeline, markedStatuses, assertTagName } from '../../services/timelines.js';
import { statusViews } from '../../services/views.js';
import { StarlingError } from '../../domain/errors.js';
import { requireUser, optionalUser } from '../auth.js';
import { parse, zBool, PageQuery } from '../validation.js';
import { setLinkHeader, cursorOf } from '../pagination.js';
import { readFrom } from '../replica-reads.js';

const PublicQuery = PageQuery.extend({ local: zBool.optional(), remote: zBool.optional(), only_media: zBool.optional() });

export async function timelineRoutes(app: FastifyInstance, { ctx }: { ctx: AppContext }): Promise<void> {
  app.get('/api/v1/timelines/home', async (req, reply) => {
    const me = requireUser(req, 'read:statuses');
    const page = parse(PageQuery, req.query);
    const statuses = await homeTimeline(ctx, me.accountId, page);
    setLinkHeader(req, reply, ctx.urls.base, cursorOf(statuses, (s) => s.id));
    return statusViews(ctx, statuses, me.accountId);
  });

  app.get('/api/v1/timelines/public', async (req, reply) => {
    const viewerId = optionalUser(req, 'read:statuses');
    const q = parse(PublicQuery, req.query);
    return readFrom(ctx, req, reply, async (c) => {
      const statuses = await publicTimeline(c, viewerId, q, { remoteOnly: q.remote === true, onlyMedia: q.only_media === true });
      setLinkHeader(req, reply, c.urls.base, cursorOf(statuses, (s) => s.id));
      return statusViews(c, statuses, viewerId);
    });
  });

  app.get('/api/v1/timelines/tag/:hashtag', async (req, reply) => {
    const viewerId = optionalUser(req, 'read:statuses');
    const { hashtag } = parse(z.object({ hashtag: z.string() }), req.params);
    const q = parse(PublicQuery, req.query);
    const tag = assertTagName(hashtag.replace(/^#/, ''));
    return readFrom(ctx, req, reply, async (c) => {
      const statuses = q.remote || q.only_media ? [] : await tagTimeline(c, viewerId, tag, q);
      setLinkHeader(req, reply, c.urls.base, cursorOf(statuses, (s) => s.id));
      return statusViews(c, statuses, viewerId);
    });
  });

  app.get('/api/v1/timelines/list/:id', async (req) => {
    requireUser(req, 'read:lists');
    throw new StarlingError('not_found');
  });

  for (const [path, table, scope] of [
    ['/api/v1/favourites', 'favourites', 'read:favourites'],
    ['/api/v1/bookmarks', 'bookmarks', 'read:bookmarks'],
  ] as const) {
    app.get(path, async (req, reply) => {
      const me = requireUser(req, scope);
      const page = parse(PageQuery, req.query);
      const { statuses, cursor } = await markedStatuses(ctx, me.accountId, table, page);
      setLinkHeader(req, reply, ctx.urls.base, cursor);
      return statusViews(ctx, statuses, me.accountId);
    });
  }
}
