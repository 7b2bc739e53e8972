/**
 * Accounts: registration, the signed-in account (verify/update credentials),
 * profiles, their statuses and social graph, and the follow/block/mute
 * actions that answer with a Relationship.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { StarlingError, notFound } from '../../domain/errors.js';
import { renderAccount } from '../../domain/entities.js';
import { isId } from '../../domain/ids.js';
import type { Account, User } from '../../store/schema.js';
import type { AppContext } from '../../services/context.js';
import { findAccount, findAccountByUsername, findUser, registerAccount, requireAccount, updateProfile } from '../../services/accounts.js';
import { issueToken } from '../../services/auth.js';
import { block, follow, listGraph, mute, relationships, unblock, unfollow, unmute, type GraphList } from '../../services/graph.js';
import { accountStatuses } from '../../services/timelines.js';
import { accountViews, statusViews } from '../../services/views.js';
import { optionalUser, requireToken, requireUser } from '../auth.js';
import { cursorOf, setLinkHeader } from '../pagination.js';
import { PageQuery, parse, zArray, zBool, zLimit } from '../validation.js';
import { readFrom } from '../replica-reads.js';

// ---------------------------------------------------------------- schemas

const IdParams = z.object({ id: z.string() });

/** Fields are optional here so that a blank one is Mastodon's 422 with details, not a 400. */
const RegisterBody = z.object({
  username: z.string().optional(),
  email: z.string().optional(),
  password: z.string().optional(),
  agreement: zBool.optional(),
  locale: z.string().max(16).regex(/^[a-zA-Z]{2,3}([-_][a-zA-Z0-9]{2,8})?$/, 'is not included in the list').optional(),
  reason: z.string().max(2000).optional(),
});

const Visibility = z.enum(['public', 'unlisted', 'private', 'direct']);
/** ISO 639 code, or empty for none. */
const Language = z
  .string()
  .trim()
  .regex(/^([a-zA-Z]{2,3})?$/, 'is not a valid language code')
  .transform((s) => (s === '' ? null : s.toLowerCase()));

const UpdateCredentialsBody = z.object({
  display_name: z.string().optional(),
  note: z.string().optional(),
  locked: zBool.optional(),
  bot: zBool.optional(),
  discoverable: zBool.optional(),
  source: z
    .object({
      privacy: Visibility.optional(),
      sensitive: zBool.optional(),
      language: Language.nullable().optional(),
    })
    .optional(),
});

const LookupQuery = z.object({ acct: z.string() });

const RelationshipsQuery = z.object({
  id: zArray(z.string()).pipe(z.array(z.string()).max(1000)).optional(),
});

const StatusesQuery = PageQuery.extend({
  exclude_replies: zBool.optional(),
  exclude_reblogs: zBool.optional(),
  only_media: zBool.optional(),
  pinned: zBool.optional(),
  tagged: z.string().optional(),
});

/** Account lists (followers, blocks…): Mastodon's default 40, at most 80. */
export const AccountPageQuery = PageQuery.extend({ limit: zLimit(40, 80) });

const FollowBody = z.object({
  reblogs: zBool.optional(),
  notify: zBool.optional(),
});

const MuteBody = z.object({
  notifications: zBool.optional(),
  duration: z
    .preprocess((v) => (v === '' || v === null ? undefined : typeof v === 'string' ? Number(v) : v), z.number().int().min(0).max(10 * 365 * 24 * 3600))
    .optional(),
});

// ---------------------------------------------------------------- helpers

/** A path id that is not one of ours cannot name a record: 404, never a 500. */
export function pathId(req: FastifyRequest): string {
  const { id } = parse(IdParams, req.params);
  if (!isId(id)) throw notFound();
  return id;
}

/** Mastodon's 422 with a `details` map, as Rails validation errors render. */
function fieldError(field: string, code: string, description: string, label: string): StarlingError {
  return new StarlingError('validation', `Validation failed: ${label} ${description}`, {
    details: { details: { [field]: [{ error: code, description }] } },
  });
}

const FIELD_OF: Record<string, string> = { Username: 'username', Email: 'email', Password: 'password' };

/** Adds `details` to a registration error from the service, for clients that show them per field. */
function withRegistrationDetails(err: unknown): unknown {
  if (!(err instanceof StarlingError) || err.code !== 'validation' || err.details) return err;
  const m = /^Validation failed: (Username|Email|Password) (.+)$/.exec(err.message);
  if (!m) return err;
  const description = m[2];
  const code = /already been taken/.test(description)
    ? 'ERR_TAKEN'
    : /reserved/.test(description)
      ? 'ERR_RESERVED'
      : /too short/.test(description)
        ? 'ERR_TOO_SHORT'
        : /too long/.test(description)
          ? 'ERR_TOO_LONG'
          : 'ERR_INVALID';
  return new StarlingError('validation', err.message, { cause: err, details: { details: { [FIELD_OF[m[1]]]: [{ error: code, description }] } } });
}

const ROLES: Record<User['role'], { id: string; name: string; permissions: string; color: string; highlighted: boolean }> = {
  user: { id: '-99', name: '', permissions: '0', color: '', highlighted: false },
  moderator: { id: '1', name: 'Moderator', permissions: '1308', color: '', highlighted: true },
  // Permission bit 1 is Mastodon's "administrator": every permission.
  admin: { id: '2', name: 'Admin', permissions: '1', color: '', highlighted: true },
};

async function credentialAccount(ctx: AppContext, account: Account) {
  const [user, followRequests] = await Promise.all([findUser(ctx, account.id), countFollowRequests(ctx, account.id)]);
  return {
    ...renderAccount(account, ctx.urls),
    source: {
      privacy: user.default_visibility,
      sensitive: user.default_sensitive === 1,
      language: user.default_language,
      note: account.note,
      fields: [],
      follow_requests_count: followRequests,
      hide_collections: false,
      discoverable: account.discoverable === 1,
      indexable: account.discoverable === 1,
    },
    role: ROLES[user.role] ?? ROLES.user,
  };
}

/**
 * TODO(services/graph.ts): belongs in the graph service as
 * `countFollowRequests(ctx, accountId)`; kept here until it exists.
 */
async function countFollowRequests(ctx: AppContext, accountId: string): Promise<number> {
  const row = await ctx.db
    .selectFrom('follow_requests')
    .select((eb) => eb.fn.countAll<string | number>().as('n'))
    .where('target_account_id', '=', accountId)
    .executeTakeFirst();
  return Number(row?.n ?? 0);
}

/** One page of a graph list, rendered as accounts, with its Link header. */
export async function sendGraphPage(ctx: AppContext, req: FastifyRequest, reply: FastifyReply, list: GraphList, accountId: string) {
  const page = parse(AccountPageQuery, req.query);
  const { accountIds, cursor } = await listGraph(ctx, list, accountId, page);
  setLinkHeader(req, reply, ctx.urls.base, cursor);
  return accountViews(ctx, accountIds);
}

// ---------------------------------------------------------------- routes

export async function accountRoutes(app: FastifyInstance, opts: { ctx: AppContext }): Promise<void> {
  const { ctx } = opts;

  app.post('/api/v1/accounts', async (req) => {
    const auth = requireToken(req, 'write:accounts');
    if (!ctx.config.registrationsOpen) throw new StarlingError('registrations_closed');
    const body = parse(RegisterBody, req.body);
    const username = body.username?.trim() ?? '';
    const email = body.email?.trim() ?? '';
    const password = body.password ?? '';
    if (username === '') throw fieldError('username', 'ERR_BLANK', "can't be blank", 'Username');
    if (email === '') throw fieldError('email', 'ERR_BLANK', "can't be blank", 'Email');
    if (password === '') throw fieldError('password', 'ERR_BLANK', "can't be blank", 'Password');
    if (body.agreement !== true) throw fieldError('agreement', 'ERR_ACCEPTED', 'must be accepted', 'Agreement');
    let account: Account;
    try {
      account = await registerAccount(ctx, { username, email, password, locale: body.locale?.replace('_', '-') });
    } catch (err) {
      throw withRegistrationDetails(err);
    }
    return issueToken(ctx, { applicationId: auth.applicationId, accountId: account.id, scopes: auth.scopes });
  });

  app.get('/api/v1/accounts/verify_credentials', async (req) => {
    const { accountId } = requireUser(req, 'profile');
    return credentialAccount(ctx, await requireAccount(ctx, accountId));
  });

  app.patch('/api/v1/accounts/update_credentials', async (req) => {
    const { accountId } = requireUser(req, 'write:accounts');
    const body = parse(UpdateCredentialsBody, req.body);
    const account = await updateProfile(ctx, accountId, body);
    return credentialAccount(ctx, account);
  });

  app.get('/api/v1/accounts/lookup', async (req, reply) => {
    optionalUser(req, 'read:accounts');
    const { acct } = parse(LookupQuery, req.query);
    const account = await readFrom(ctx, req, reply, (c) => findAccountByUsername(c, acct));
    if (!account) throw notFound();
    return renderAccount(account, ctx.urls);
  });

  app.get('/api/v1/accounts/relationships', async (req) => {
    const { accountId } = requireUser(req, 'read:follows');
    const { id = [] } = parse(RelationshipsQuery, req.query);
    // Ids that cannot be ours are unknown accounts: left out, as Mastodon does.
    return relationships(ctx, accountId, id.filter(isId));
  });

  app.get('/api/v1/accounts/:id', async (req, reply) => {
    optionalUser(req, 'read:accounts');
    const id = pathId(req);
    const account = await readFrom(ctx, req, reply, (c) => findAccount(c, id));
    if (!account) throw notFound();
    return renderAccount(account, ctx.urls);
  });

  app.get('/api/v1/accounts/:id/statuses', async (req, reply) => {
    const viewerId = optionalUser(req, 'read:statuses');
    const id = pathId(req);
    const q = parse(StatusesQuery, req.query);
    return readFrom(ctx, req, reply, async (c) => {
      const rows = await accountStatuses(c, viewerId, id, q, {
        excludeReplies: q.exclude_replies ?? false,
        excludeReblogs: q.exclude_reblogs ?? false,
        onlyMedia: q.only_media ?? false,
        pinned: q.pinned ?? false,
      });
      setLinkHeader(req, reply, c.urls.base, cursorOf(rows, (s) => s.id));
      return statusViews(c, rows, viewerId);
    });
  });

  app.get('/api/v1/accounts/:id/followers', async (req, reply) => {
    optionalUser(req, 'read:accounts');
    const id = pathId(req);
    return readFrom(ctx, req, reply, async (c) => {
      await requireAccount(c, id);
      return sendGraphPage(c, req, reply, 'followers', id);
    });
  });

  app.get('/api/v1/accounts/:id/following', async (req, reply) => {
    optionalUser(req, 'read:accounts');
    const id = pathId(req);
    return readFrom(ctx, req, reply, async (c) => {
      await requireAccount(c, id);
      return sendGraphPage(c, req, reply, 'following', id);
    });
  });

  app.post('/api/v1/accounts/:id/follow', async (req) => {
    const { accountId } = requireUser(req, 'write:follows');
    const id = pathId(req);
    const body = parse(FollowBody, req.body);
    return follow(ctx, accountId, id, { reblogs: body.reblogs, notify: body.notify });
  });

  app.post('/api/v1/accounts/:id/unfollow', async (req) => {
    const { accountId } = requireUser(req, 'write:follows');
    return unfollow(ctx, accountId, pathId(req));
  });

  app.post('/api/v1/accounts/:id/block', async (req) => {
    const { accountId } = requireUser(req, 'write:blocks');
    return block(ctx, accountId, pathId(req));
  });

  app.post('/api/v1/accounts/:id/unblock', async (req) => {
    const { accountId } = requireUser(req, 'write:blocks');
    return unblock(ctx, accountId, pathId(req));
  });

  app.post('/api/v1/accounts/:id/mute', async (req) => {
    const { accountId } = requireUser(req, 'write:mutes');
    const id = pathId(req);
    const body = parse(MuteBody, req.body);
    return mute(ctx, accountId, id, { notifications: body.notifications ?? true, durationSeconds: body.duration ?? 0 });
  });

  app.post('/api/v1/accounts/:id/unmute', async (req) => {
    const { accountId } = requireUser(req, 'write:mutes');
    return unmute(ctx, accountId, pathId(req));
  });

  app.get('/api/v1/blocks', async (req, reply) => {
    const { accountId } = requireUser(req, 'read:blocks');
    return sendGraphPage(ctx, req, reply, 'blocks', accountId);
  });

  app.get('/api/v1/mutes', async (req, reply) => {
    const { accountId } = requireUser(req, 'read:mutes');
    return sendGraphPage(ctx, req, reply, 'mutes', accountId);
  });
}
