/** Hashtags (show, follow, unfollow, the followed list) and trends. */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import type { AppContext } from '../../services/context.js';
import { showTag, followTag, unfollowTag, followedTags } from '../../services/tags.js';
import { createTrends } from '../../services/trends.js';
import { statusViews } from '../../services/views.js';
import { scopeSatisfies } from '../../domain/scopes.js';
import { requireUser } from '../auth.js';
import { parse, zLimit, zOptId } from '../validation.js';
import { setLinkHeader } from '../pagination.js';

const NameParams = z.object({ name: z.string() });
/** Mastodon's followed-tags list pages by 100 by default, up to 200. */
const FollowedQuery = z.object({ max_id: zOptId, since_id: zOptId, min_id: zOptId, limit: zLimit(100, 200) });
const offset = z.preprocess((v) => (v === undefined || v === '' ? 0 : typeof v === 'string' ? Number(v) : v), z.number().int().min(0));
const TrendTagsQuery = z.object({ limit: zLimit(10, 20), offset });
const TrendStatusesQuery = z.object({ limit: zLimit(20, 40), offset });

/**
 * The signed-in viewer when the token may read what the viewer-specific
 * parts show; otherwise the public answer (these routes are public, and a
 * narrow token is not a reason to refuse them).
 */
function viewerOf(req: FastifyRequest, scope: string): string | null {
  const auth = req.auth;
  return auth?.accountId && scopeSatisfies(auth.scopes, scope) ? auth.accountId : null;
}

/** Trends page by offset (as Mastodon's do): `next` when the page was full, `prev` after the first. */
function setOffsetLinks(req: FastifyRequest, reply: FastifyReply, baseUrl: string, page: { offset: number; limit: number }, count: number): void {
  const url = new URL(req.url, baseUrl);
  const make = (o: number) => {
    const p = new URLSearchParams(url.searchParams);
    p.set('offset', String(o));
    return `${baseUrl}${url.pathname}?${p.toString()}`;
  };
  const links: string[] = [];
  if (count >= page.limit) links.push(`<${make(page.offset + page.limit)}>; rel="next"`);
  if (page.offset > 0) links.push(`<${make(Math.max(0, page.offset - page.limit))}>; rel="prev"`);
  if (links.length) reply.header('Link', links.join(', '));
}

export async function tagRoutes(app: FastifyInstance, { ctx }: { ctx: AppContext }): Promise<void> {
  app.get('/api/v1/tags/:name', async (req) => {
    const { name } = parse(NameParams, req.params);
    return showTag(ctx, viewerOf(req, 'read:follows'), name);
  });

  app.post('/api/v1/tags/:name/follow', async (req) => {
    const me = requireUser(req, 'write:follows');
    const { name } = parse(NameParams, req.params);
    return followTag(ctx, me.accountId, name);
  });

  app.post('/api/v1/tags/:name/unfollow', async (req) => {
    const me = requireUser(req, 'write:follows');
    const { name } = parse(NameParams, req.params);
    return unfollowTag(ctx, me.accountId, name);
  });

  app.get('/api/v1/followed_tags', async (req, reply) => {
    const me = requireUser(req, 'read:follows');
    const page = parse(FollowedQuery, req.query);
    const { tags, cursor } = await followedTags(ctx, me.accountId, page);
    setLinkHeader(req, reply, ctx.urls.base, cursor);
    return tags;
  });

  const trends = createTrends(ctx);

  for (const path of ['/api/v1/trends', '/api/v1/trends/tags']) {
    app.get(path, async (req, reply) => {
      const page = parse(TrendTagsQuery, req.query);
      const tags = await trends.tags(viewerOf(req, 'read:follows'), page);
      setOffsetLinks(req, reply, ctx.urls.base, page, tags.length);
      return tags;
    });
  }

  app.get('/api/v1/trends/statuses', async (req, reply) => {
    const viewerId = viewerOf(req, 'read:statuses');
    const page = parse(TrendStatusesQuery, req.query);
    const statuses = await trends.statuses(viewerId, page);
    setOffsetLinks(req, reply, ctx.urls.base, page, statuses.length);
    return statusViews(ctx, statuses, viewerId);
  });

  app.get('/api/v1/trends/links', async () => []);
}
