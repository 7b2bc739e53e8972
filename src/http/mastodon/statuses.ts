/** /api/v1/statuses: create, show, edit, delete, context, history and the status actions. */
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { notFound, StarlingError } from '../../domain/errors.js';
import { VISIBILITIES } from '../../domain/visibility.js';
import { renderAccount } from '../../domain/entities.js';
import type { AppContext } from '../../services/context.js';
import * as posts from '../../services/posts.js';
import { findUser } from '../../services/accounts.js';
import { statusViews, findVisibleStatus, accountViews, loadAccounts } from '../../services/views.js';
import { statusContext, actorsOf } from '../../services/timelines.js';
import type { Status } from '../../store/schema.js';
import { requireUser, optionalUser } from '../auth.js';
import { parse, zBool, zId, PageQuery, zLimit } from '../validation.js';
import { setLinkHeader } from '../pagination.js';
import { PROBE_HEADER } from '../../ops/probes.js';

const IdParams = z.object({ id: z.string() });
const CreateBody = z.object({
  status: z.string().max(100_000).optional(),
  /** Checked in the handler: a malformed id names no status, so it is a 404 like an unknown one (as in Mastodon). */
  in_reply_to_id: z.preprocess((v) => (v === '' || v === null ? undefined : v), z.string().optional()),
  sensitive: zBool.optional(),
  spoiler_text: z.string().max(10_000).optional(),
  visibility: z.enum(VISIBILITIES).optional(),
  language: z.preprocess((v) => (v === '' ? null : v), z.string().max(16).nullable().optional()),
  media_ids: z.array(z.string()).max(4).optional(),
  scheduled_at: z.string().nullable().optional(),
  poll: z.unknown().optional(),
});
const EditBody = CreateBody.pick({ status: true, sensitive: true, spoiler_text: true, language: true, media_ids: true, poll: true });
const IdempotencyKey = z.string().min(1).max(256);

/** A malformed id can name no status: 404, like an unknown one. */
function statusId(params: unknown): string {
  const { id } = parse(IdParams, params);
  if (!zId.safeParse(id).success) throw notFound();
  return id;
}

export async function statusRoutes(app: FastifyInstance, { ctx }: { ctx: AppContext }): Promise<void> {
  const one = async (s: Status, viewerId: string | null) => {
    const [view] = await statusViews(ctx, [s], viewerId);
    if (!view) throw notFound();
    return view;
  };

  app.post('/api/v1/statuses', async (req, reply) => {
    const me = requireUser(req, 'write:statuses');
    const body = parse(CreateBody, req.body);
    if (body.media_ids?.length) throw new StarlingError('validation', 'Validation failed: Media attachments are not supported yet');
    if (body.poll !== undefined && body.poll !== null && body.poll !== '') throw new StarlingError('validation', 'Validation failed: Polls are not supported yet');
    if (body.scheduled_at) throw new StarlingError('validation', 'Validation failed: Scheduled statuses are not supported yet');
    if (body.in_reply_to_id !== undefined && !zId.safeParse(body.in_reply_to_id).success) throw notFound();
    const keyHeader = req.headers['idempotency-key'];
    const idempotencyKey = keyHeader === undefined ? null : parse(IdempotencyKey, Array.isArray(keyHeader) ? keyHeader[0] : keyHeader);
    const user = await findUser(ctx, me.accountId);
    const { status, created } = await posts.createStatus(ctx, {
      accountId: me.accountId,
      applicationId: me.applicationId,
      idempotencyKey,
      text: body.status ?? '',
      spoilerText: body.spoiler_text,
      sensitive: body.sensitive ?? user.default_sensitive === 1,
      visibility: body.visibility ?? (user.default_visibility as (typeof VISIBILITIES)[number]),
      language: body.language === undefined ? user.default_language : body.language,
      inReplyToId: body.in_reply_to_id ?? null,
    });
    // The ops engine's canary posts are probes, not users' posts (they have their own series).
    if (created && !app.ops.isProbe(req.headers[PROBE_HEADER])) ctx.metrics.postsCreated.inc();
    return reply.send(await one(status, me.accountId));
  });

  app.get('/api/v1/statuses', async (req) => {
    const viewerId = optionalUser(req, 'read:statuses');
    const { id } = parse(z.object({ id: z.preprocess((v) => (v === undefined ? [] : Array.isArray(v) ? v : [v]), z.array(z.string()).max(40)) }), req.query);
    const found: Status[] = [];
    for (const sid of id.filter((x) => zId.safeParse(x).success)) {
      const s = await findVisibleStatus(ctx, sid, viewerId);
      if (s) found.push(s);
    }
    return statusViews(ctx, found, viewerId);
  });

  app.get('/api/v1/statuses/:id', async (req) => {
    const viewerId = optionalUser(req, 'read:statuses');
    const s = await findVisibleStatus(ctx, statusId(req.params), viewerId);
    if (!s) throw notFound();
    return one(s, viewerId);
  });

  app.put('/api/v1/statuses/:id', async (req) => {
    const me = requireUser(req, 'write:statuses');
    const id = statusId(req.params);
    const body = parse(EditBody, req.body);
    if (body.media_ids?.length) throw new StarlingError('validation', 'Validation failed: Media attachments are not supported yet');
    const s = await posts.editStatus(ctx, me.accountId, id, { text: body.status ?? '', spoilerText: body.spoiler_text, sensitive: body.sensitive, language: body.language });
    return one(s, me.accountId);
  });

  app.delete('/api/v1/statuses/:id', async (req) => {
    const me = requireUser(req, 'write:statuses');
    const s = await posts.deleteStatus(ctx, me.accountId, statusId(req.params));
    // The deleted status comes back with its source text, for delete-and-redraft.
    const [view] = await statusViews(ctx, [{ ...s, deleted_at: null }], me.accountId);
    return { ...view, text: s.text };
  });

  app.get('/api/v1/statuses/:id/context', async (req) => {
    const viewerId = optionalUser(req, 'read:statuses');
    const s = await findVisibleStatus(ctx, statusId(req.params), viewerId);
    if (!s) throw notFound();
    const { ancestors, descendants } = await statusContext(ctx, viewerId, s);
    return { ancestors: await statusViews(ctx, ancestors, viewerId), descendants: await statusViews(ctx, descendants, viewerId) };
  });

  app.get('/api/v1/statuses/:id/history', async (req) => {
    const viewerId = optionalUser(req, 'read:statuses');
    const s = await findVisibleStatus(ctx, statusId(req.params), viewerId);
    if (!s) throw notFound();
    const edits = await posts.statusHistory(ctx, s.id);
    const account = (await loadAccounts(ctx.db, [s.account_id])).get(s.account_id)!;
    const accountView = renderAccount(account, ctx.urls);
    const versions = edits.length ? edits : [{ content: s.content, spoiler_text: s.spoiler_text, sensitive: s.sensitive, created_at: s.created_at }];
    return versions.map((e) => ({
      content: e.content,
      spoiler_text: e.spoiler_text,
      sensitive: e.sensitive === 1,
      created_at: e.created_at,
      account: accountView,
      poll: null,
      media_attachments: [],
      emojis: [],
    }));
  });

  app.get('/api/v1/statuses/:id/source', async (req) => {
    const me = requireUser(req, 'read:statuses');
    const s = await findVisibleStatus(ctx, statusId(req.params), me.accountId);
    if (!s || s.account_id !== me.accountId) throw notFound();
    return { id: s.id, text: s.text, spoiler_text: s.spoiler_text };
  });

  for (const kind of ['favourited_by', 'reblogged_by'] as const) {
    app.get(`/api/v1/statuses/:id/${kind}`, async (req, reply) => {
      const viewerId = optionalUser(req, 'read:accounts');
      const s = await findVisibleStatus(ctx, statusId(req.params), viewerId);
      if (!s) throw notFound();
      const page = parse(PageQuery.extend({ limit: zLimit(40, 80) }), req.query);
      const { accountIds, cursor } = await actorsOf(ctx, s.id, kind === 'favourited_by' ? 'favourites' : 'reblogs', page);
      setLinkHeader(req, reply, ctx.urls.base, cursor);
      return accountViews(ctx, accountIds);
    });
  }

  const action = (path: string, scope: string, run: (accountId: string, id: string, body: unknown) => Promise<Status>) => {
    app.post(`/api/v1/statuses/:id/${path}`, async (req) => {
      const me = requireUser(req, scope);
      const s = await run(me.accountId, statusId(req.params), req.body);
      return one(s, me.accountId);
    });
  };
  action('favourite', 'write:favourites', (a, id) => posts.favourite(ctx, a, id));
  action('unfavourite', 'write:favourites', (a, id) => posts.unfavourite(ctx, a, id));
  action('bookmark', 'write:bookmarks', (a, id) => posts.bookmark(ctx, a, id, true));
  action('unbookmark', 'write:bookmarks', (a, id) => posts.bookmark(ctx, a, id, false));
  action('reblog', 'write:statuses', (a, id, body) => {
    const { visibility } = parse(z.object({ visibility: z.enum(VISIBILITIES).optional() }), body);
    return posts.reblog(ctx, a, id, visibility);
  });
  action('unreblog', 'write:statuses', (a, id) => posts.unreblog(ctx, a, id));
}
