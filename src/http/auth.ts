/**
 * Bearer-token authentication. The hook resolves the token once per request
 * (a bad token is a 401 even on public routes, as in Mastodon); handlers
 * then say what they need with `requireUser(req, scope)` or
 * `optionalUser(req, scope)`, so the scope a route demands is written
 * beside the route.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { StarlingError } from '../domain/errors.js';
import { scopeSatisfies } from '../domain/scopes.js';
import type { AppContext } from '../services/context.js';
import { findToken, type AuthInfo } from '../services/auth.js';
import type { Account } from '../store/schema.js';

declare module 'fastify' {
  interface FastifyRequest {
    auth: AuthInfo | null;
  }
}

export function bearerToken(req: FastifyRequest): string | null {
  const h = req.headers.authorization;
  // Other schemes (Basic on /oauth/token) are not ours to judge here, as in Mastodon.
  if (!h || !/^Bearer\s/i.test(h)) return null;
  const m = /^Bearer\s+(\S+)\s*$/i.exec(h);
  if (!m) throw new StarlingError('unauthorized');
  return m[1];
}

const PUBLIC_PATHS = /^\/(status|healthz|readyz|metrics|health)(\/|\?|$)/;

export const authPlugin = fp(
  async (app: FastifyInstance, opts: { ctx: AppContext }) => {
    app.decorateRequest('auth', null);
    app.addHook('onRequest', async (req) => {
      // The status page and health checks never look at tokens: they must answer when the database cannot.
      if (PUBLIC_PATHS.test(req.url)) return;
      const token = bearerToken(req);
      if (token === null) return;
      const info = await findToken(opts.ctx, token);
      if (!info) throw new StarlingError('unauthorized');
      req.auth = info;
    });
  },
  { name: 'starling-auth' },
);

function checkScope(auth: AuthInfo, scope: string): void {
  if (!scopeSatisfies(auth.scopes, scope)) throw new StarlingError('scope_missing');
}

/** The signed-in account, or 401/403. */
export function requireUser(req: FastifyRequest, scope: string): AuthInfo & { accountId: string } {
  const auth = req.auth;
  if (!auth) throw new StarlingError('unauthorized');
  if (!auth.accountId) throw new StarlingError('login_required');
  checkScope(auth, scope);
  return auth as AuthInfo & { accountId: string };
}

/** Any valid token (also an app-only one), or 401/403. */
export function requireToken(req: FastifyRequest, scope: string): AuthInfo {
  const auth = req.auth;
  if (!auth) throw new StarlingError('unauthorized');
  checkScope(auth, scope);
  return auth;
}

/** The viewer's account id for public routes that show more to a signed-in viewer. */
export function optionalUser(req: FastifyRequest, scope: string): string | null {
  const auth = req.auth;
  if (!auth || !auth.accountId) return null;
  checkScope(auth, scope);
  return auth.accountId;
}

/**
 * A signed-in administrator (users.role = 'admin') with the given admin scope
 * (`admin:read` for reads, `admin:write` for changes), or 401/403/422.
 * Returns the auth and the admin's account (its username signs operator updates).
 */
export async function requireAdmin(ctx: AppContext, req: FastifyRequest, scope: 'admin:read' | 'admin:write'): Promise<AuthInfo & { accountId: string; account: Account }> {
  const auth = requireUser(req, scope);
  const row = await ctx.db
    .selectFrom('users')
    .innerJoin('accounts', 'accounts.id', 'users.account_id')
    .selectAll('accounts')
    .select('users.role')
    .where('users.account_id', '=', auth.accountId)
    .executeTakeFirst();
  if (!row || row.role !== 'admin') throw new StarlingError('forbidden');
  const { role: _role, ...account } = row;
  return { ...auth, account };
}
