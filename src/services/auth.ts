/**
 * OAuth applications, authorization codes and access tokens. Tokens and
 * codes are random 256-bit values; only their SHA-256 is stored, and
 * lookups go by that hash. Client secrets are compared in constant time.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { StarlingError } from '../domain/errors.js';
import { parseScopes, invalidScopes, scopesWithin } from '../domain/scopes.js';
import type { OauthApplication } from '../store/schema.js';
import type { AppContext } from './context.js';
import { nowIso } from './context.js';

export interface AuthInfo {
  tokenId: string;
  applicationId: string;
  /** Null for app-only (client_credentials) tokens. */
  accountId: string | null;
  scopes: string[];
  /** The account's read fence (store/replica.ts), read on the primary with the token: null when it never wrote. */
  fence?: string | null;
}

export const OOB_REDIRECT = 'urn:ietf:wg:oauth:2.0:oob';
const CODE_TTL_MS = 10 * 60_000;

export const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');
const randomToken = () => randomBytes(32).toString('base64url');

export function safeEqual(a: string, b: string): boolean {
  const ba = Buffer.from(sha256(a));
  const bb = Buffer.from(sha256(b));
  return timingSafeEqual(ba, bb);
}

export async function findToken(ctx: AppContext, token: string): Promise<AuthInfo | null> {
  const row = await ctx.db
    .selectFrom('oauth_tokens')
    .leftJoin('users', 'users.account_id', 'oauth_tokens.account_id')
    .leftJoin('read_fences', 'read_fences.account_id', 'oauth_tokens.account_id')
    .select(['oauth_tokens.id', 'oauth_tokens.application_id', 'oauth_tokens.account_id', 'oauth_tokens.scopes', 'oauth_tokens.revoked_at', 'users.disabled', 'read_fences.xid'])
    .where('oauth_tokens.token_hash', '=', sha256(token))
    .executeTakeFirst();
  if (!row || row.revoked_at !== null || row.disabled === 1) return null;
  return { tokenId: row.id, applicationId: row.application_id, accountId: row.account_id, scopes: parseScopes(row.scopes), fence: row.xid };
}

export function validateScopes(scope: string | undefined, fallback = 'read'): string[] {
  const scopes = parseScopes(scope ?? fallback);
  if (scopes.length === 0) return parseScopes(fallback);
  const bad = invalidScopes(scopes);
  if (bad.length) throw new StarlingError('invalid_scope', `Validation failed: Scopes are invalid: ${bad.join(', ')}`);
  return scopes;
}

export async function createApplication(
  ctx: AppContext,
  input: { name: string; redirectUris: string[]; scopes: string[]; website: string | null },
): Promise<OauthApplication> {
  const row: OauthApplication = {
    id: ctx.ids.next(),
    name: input.name,
    website: input.website,
    redirect_uris: input.redirectUris.join('\n'),
    scopes: input.scopes.join(' '),
    client_id: randomToken(),
    client_secret: randomToken(),
    created_at: nowIso(ctx),
  };
  await ctx.write((trx) => trx.insertInto('oauth_applications').values(row).execute());
  return row;
}

export async function findApplication(ctx: AppContext, clientId: string): Promise<OauthApplication | null> {
  return (await ctx.db.selectFrom('oauth_applications').selectAll().where('client_id', '=', clientId).executeTakeFirst()) ?? null;
}

export async function authenticateClient(ctx: AppContext, clientId: string | undefined, clientSecret: string | undefined): Promise<OauthApplication> {
  if (!clientId) throw new StarlingError('invalid_client');
  const app = await findApplication(ctx, clientId);
  if (!app || clientSecret === undefined || !safeEqual(app.client_secret, clientSecret)) throw new StarlingError('invalid_client');
  return app;
}

export function redirectUris(app: OauthApplication): string[] {
  return app.redirect_uris.split('\n').filter(Boolean);
}

export async function issueToken(ctx: AppContext, input: { applicationId: string; accountId: string | null; scopes: string[] }) {
  const token = randomToken();
  const createdAt = nowIso(ctx);
  await ctx.write((trx) =>
    trx
      .insertInto('oauth_tokens')
      .values({
        id: ctx.ids.next(),
        token_hash: sha256(token),
        application_id: input.applicationId,
        account_id: input.accountId,
        scopes: input.scopes.join(' '),
        created_at: createdAt,
        revoked_at: null,
      })
      .execute(),
  );
  return { access_token: token, token_type: 'Bearer', scope: input.scopes.join(' '), created_at: Math.floor(Date.parse(createdAt) / 1000) };
}

export async function issueCode(
  ctx: AppContext,
  input: { app: OauthApplication; accountId: string; redirectUri: string; scopes: string[]; codeChallenge: string | null; codeChallengeMethod: string | null },
): Promise<string> {
  if (!scopesWithin(input.scopes, parseScopes(input.app.scopes))) throw new StarlingError('invalid_scope');
  const code = randomToken();
  await ctx.write((trx) =>
    trx
      .insertInto('oauth_codes')
      .values({
        code_hash: sha256(code),
        application_id: input.app.id,
        account_id: input.accountId,
        redirect_uri: input.redirectUri,
        scopes: input.scopes.join(' '),
        code_challenge: input.codeChallenge,
        code_challenge_method: input.codeChallengeMethod,
        expires_at: new Date(ctx.now().getTime() + CODE_TTL_MS).toISOString(),
        used_at: null,
      })
      .execute(),
  );
  return code;
}

/** Exchanges a code for a token: once only, before it expires, with the same redirect URI and a matching PKCE verifier. */
export async function redeemCode(
  ctx: AppContext,
  input: { app: OauthApplication; code: string; redirectUri: string | undefined; codeVerifier: string | undefined },
) {
  return ctx.write(async (trx) => {
    const row = await trx.selectFrom('oauth_codes').selectAll().where('code_hash', '=', sha256(input.code)).executeTakeFirst();
    const now = nowIso(ctx);
    if (!row || row.application_id !== input.app.id || row.used_at !== null || row.expires_at < now) throw new StarlingError('invalid_grant');
    if (input.redirectUri !== undefined && input.redirectUri !== row.redirect_uri) throw new StarlingError('invalid_grant');
    if (row.code_challenge) {
      if (!input.codeVerifier) throw new StarlingError('invalid_grant');
      const computed = row.code_challenge_method === 'plain' ? input.codeVerifier : createHash('sha256').update(input.codeVerifier).digest('base64url');
      if (!safeEqual(computed, row.code_challenge)) throw new StarlingError('invalid_grant');
    }
    const used = await trx.updateTable('oauth_codes').set({ used_at: now }).where('code_hash', '=', row.code_hash).where('used_at', 'is', null).executeTakeFirst();
    if (Number(used.numUpdatedRows) !== 1) throw new StarlingError('invalid_grant');
    const token = randomToken();
    await trx
      .insertInto('oauth_tokens')
      .values({ id: ctx.ids.next(), token_hash: sha256(token), application_id: row.application_id, account_id: row.account_id, scopes: row.scopes, created_at: now, revoked_at: null })
      .execute();
    return { access_token: token, token_type: 'Bearer', scope: row.scopes, created_at: Math.floor(Date.parse(now) / 1000) };
  });
}

/** Revoking is idempotent and says nothing about whether the token existed (RFC 7009). */
export async function revokeToken(ctx: AppContext, app: OauthApplication, token: string): Promise<void> {
  await ctx.write((trx) =>
    trx
      .updateTable('oauth_tokens')
      .set({ revoked_at: nowIso(ctx) })
      .where('token_hash', '=', sha256(token))
      .where('application_id', '=', app.id)
      .where('revoked_at', 'is', null)
      .execute(),
  );
}
