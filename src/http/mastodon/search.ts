/**
 * Search: `GET /api/v2/search` (accounts, hashtags, statuses) and
 * `GET /api/v1/accounts/search` (accounts only: mention autocomplete).
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { renderAccount } from '../../domain/entities.js';
import { StarlingError } from '../../domain/errors.js';
import type { AppContext } from '../../services/context.js';
import { search, searchAccounts } from '../../services/search.js';
import { tagViews } from '../../services/tags.js';
import { statusViews } from '../../services/views.js';
import { optionalUser, requireUser } from '../auth.js';
import { parse, zBool, zLimit, zOptId } from '../validation.js';
import { readFrom } from '../replica-reads.js';

const single = (v: unknown) => (Array.isArray(v) && v.length === 1 ? v[0] : v);

/** Skip the first n results: a whole number from 0. */
const zOffset = z.preprocess((v) => {
  v = single(v);
  if (v === undefined || v === '') return 0;
  return typeof v === 'string' ? Number(v) : v;
}, z.number().int().min(0));

/** Required and not blank: Rails' `params.require(:q)` answers 400 for both. */
const zQuery = z.preprocess((v) => {
  v = single(v);
  return typeof v === 'string' && v.trim() === '' ? undefined : v;
}, z.string());

const SearchQuery = z.object({
  q: zQuery,
  // An unknown type searches nothing, as in Mastodon (empty results, not an error).
  type: z.preprocess((v) => (v === '' ? undefined : single(v)), z.string().optional()),
  resolve: zBool.optional(),
  following: zBool.optional(),
  account_id: z.preprocess((v) => (v === '' ? undefined : single(v)), z.string().optional()),
  exclude_unreviewed: zBool.optional(),
  max_id: zOptId,
  min_id: zOptId,
  limit: zLimit(20, 40),
  offset: zOffset,
});

const AccountSearchQuery = z.object({
  q: zQuery,
  resolve: zBool.optional(),
  following: zBool.optional(),
  limit: zLimit(40, 80),
  offset: zOffset,
});

const TYPES = new Set(['accounts', 'hashtags', 'statuses']);

function present(req: FastifyRequest, key: string): boolean {
  const v = (req.query as Record<string, unknown> | undefined)?.[key];
  return v !== undefined && v !== '';
}

export async function searchRoutes(app: FastifyInstance, { ctx }: { ctx: AppContext }): Promise<void> {
  app.get('/api/v2/search', async (req, reply) => {
    const viewerId = optionalUser(req, 'read:search');
    const q = parse(SearchQuery, req.query);
    if (viewerId === null) {
      if (present(req, 'offset')) throw new StarlingError('unauthorized', 'Search queries pagination is not supported without authentication');
      if (q.resolve) throw new StarlingError('unauthorized', 'Search queries that resolve remote resources are not supported without authentication');
    }
    if (q.type !== undefined && !TYPES.has(q.type)) return { accounts: [], statuses: [], hashtags: [] };
    return readFrom(ctx, req, reply, async (c) => {
    const results = await search(c, viewerId, {
      q: q.q,
      type: q.type as 'accounts' | 'hashtags' | 'statuses' | undefined,
      following: q.following,
      accountId: q.account_id,
      maxId: q.max_id,
      minId: q.min_id,
      limit: q.limit,
      offset: q.offset,
    });
    return {
      accounts: results.accounts.map((a) => renderAccount(a, c.urls)),
      statuses: await statusViews(c, results.statuses, viewerId),
      hashtags: await tagViews(c, results.hashtags, viewerId),
    };
    });
  });

  app.get('/api/v1/accounts/search', async (req, reply) => {
    const { accountId } = requireUser(req, 'read:accounts');
    const q = parse(AccountSearchQuery, req.query);
    return readFrom(ctx, req, reply, async (c) => {
      const accounts = await searchAccounts(c, accountId, q.q, { limit: q.limit, offset: q.offset, following: q.following === true });
      return accounts.map((a) => renderAccount(a, c.urls));
    });
  });
}
