/**
 * Application registration (`POST /api/v1/apps`) and the app behind a token
 * (`GET /api/v1/apps/verify_credentials`), answered as Mastodon's
 * Application / CredentialApplication entities.
 */
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { StarlingError, validation } from '../../domain/errors.js';
import { parseScopes } from '../../domain/scopes.js';
import { OOB_REDIRECT, createApplication, redirectUris, validateScopes } from '../../services/auth.js';
import type { AppContext } from '../../services/context.js';
import type { OauthApplication } from '../../store/schema.js';
import { parse } from '../validation.js';

const MAX_NAME = 60;
const MAX_URI = 2000;
/** Schemes a browser would run or read locally rather than hand to an app. */
const FORBIDDEN_SCHEMES = new Set(['javascript:', 'data:', 'vbscript:', 'file:', 'blob:', 'about:']);

const text = z.preprocess((v) => (Array.isArray(v) && v.length === 1 ? v[0] : v), z.string().optional());

const CreateApp = z.object({
  client_name: text,
  redirect_uris: z.union([z.string(), z.array(z.string())]).optional(),
  scopes: text,
  website: text,
});

/** Redirect URIs may come as an array, or as one string separated by newlines or spaces. */
export function splitRedirectUris(input: string | string[] | undefined): string[] {
  const list = Array.isArray(input) ? input : input === undefined ? [] : [input];
  return [...new Set(list.flatMap((s) => s.split(/\s+/)).filter(Boolean))];
}

/** Throws Mastodon's validation error unless `uri` is an absolute URI an app can receive a code at, or the OOB URI. */
export function checkRedirectUri(uri: string): void {
  if (uri === OOB_REDIRECT) return;
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    throw validation('Redirect URI must be an absolute URI.');
  }
  if (uri.length > MAX_URI) throw validation(`Redirect URI is too long (maximum is ${MAX_URI} characters)`);
  if (url.hash || uri.includes('#')) throw validation('Redirect URI cannot contain a fragment.');
  if (FORBIDDEN_SCHEMES.has(url.protocol.toLowerCase())) throw validation('Redirect URI is forbidden by the server.');
  if ((url.protocol === 'http:' || url.protocol === 'https:') && !url.hostname) throw validation('Redirect URI must be an absolute URI.');
}

function checkWebsite(website: string | undefined): string | null {
  const w = website?.trim();
  if (!w) return null;
  let url: URL;
  try {
    url = new URL(w);
  } catch {
    throw validation('Website is invalid');
  }
  if ((url.protocol !== 'http:' && url.protocol !== 'https:') || w.length > MAX_URI) throw validation('Website is invalid');
  return w;
}

/** Mastodon's Application entity, as verify_credentials shows it. */
export function renderApplication(app: OauthApplication) {
  const uris = redirectUris(app);
  return {
    id: app.id,
    name: app.name,
    website: app.website,
    scopes: parseScopes(app.scopes),
    redirect_uri: uris.join('\n'),
    redirect_uris: uris,
    vapid_key: '',
  };
}

/** The CredentialApplication answered once, at registration: with the client secret. */
export function renderCredentialApplication(app: OauthApplication) {
  return {
    ...renderApplication(app),
    client_id: app.client_id,
    client_secret: app.client_secret,
    client_secret_expires_at: 0,
  };
}

export async function appRoutes(app: FastifyInstance, opts: { ctx: AppContext }): Promise<void> {
  const { ctx } = opts;

  app.post('/api/v1/apps', async (req) => {
    const p = parse(CreateApp, req.body);
    const name = p.client_name?.trim() ?? '';
    if (!name) throw validation("Application name can't be blank");
    if ([...name].length > MAX_NAME) throw validation(`Application name is too long (maximum is ${MAX_NAME} characters)`);
    const uris = splitRedirectUris(p.redirect_uris);
    if (uris.length === 0) throw validation("Redirect URI can't be blank");
    uris.forEach(checkRedirectUri);
    let scopes: string[];
    try {
      scopes = validateScopes(p.scopes, 'read');
    } catch (err) {
      // Registration reports bad scopes as a validation failure (422), as Mastodon does.
      if (err instanceof StarlingError && err.code === 'invalid_scope') throw new StarlingError('validation', err.message);
      throw err;
    }
    const website = checkWebsite(p.website);
    const created = await createApplication(ctx, { name, redirectUris: uris, scopes, website });
    return renderCredentialApplication(created);
  });

  app.get('/api/v1/apps/verify_credentials', async (req) => {
    // Any valid token will do, whatever its scopes (a write-only token included).
    const auth = req.auth;
    if (!auth) throw new StarlingError('unauthorized');
    const row = await ctx.db.selectFrom('oauth_applications').selectAll().where('id', '=', auth.applicationId).executeTakeFirst();
    if (!row) throw new StarlingError('unauthorized');
    return renderApplication(row);
  });
}
