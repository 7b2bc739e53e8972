/**
 * The OAuth 2 authorization server Mastodon clients expect: the sign-in and
 * consent page (`/oauth/authorize`), the token endpoint (authorization code
 * with PKCE, password, client credentials), revocation, and RFC 8414
 * metadata. Token and revocation errors use the OAuth shape
 * `{"error": "<code>", "error_description": "<text>"}` rather than the API's.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { ERRORS, StarlingError } from '../../domain/errors.js';
import { ALL_SCOPES, invalidScopes, parseScopes, scopesWithin } from '../../domain/scopes.js';
import { checkCredentials } from '../../services/accounts.js';
import {
  OOB_REDIRECT,
  authenticateClient,
  findApplication,
  issueCode,
  issueToken,
  redeemCode,
  redirectUris,
  revokeToken,
  validateScopes,
} from '../../services/auth.js';
import type { AppContext } from '../../services/context.js';
import type { OauthApplication } from '../../store/schema.js';
import { parse } from '../validation.js';
import { pageCsp, redirectWith, renderAuthorizePage, renderCodePage, renderMessagePage } from './pages.js';

export const OAUTH_PATHS = {
  authorize: '/oauth/authorize',
  token: '/oauth/token',
  revoke: '/oauth/revoke',
  metadata: '/.well-known/oauth-authorization-server',
} as const;

const GRANT_TYPES = ['authorization_code', 'password', 'client_credentials'] as const;
const WRONG_CREDENTIALS = 'Wrong username/e-mail or password';

/** An OAuth-shaped failure: sent as `{error, error_description}`, never through the API error handler. */
class OauthError extends Error {
  constructor(
    readonly status: number,
    readonly error: string,
    readonly description: string,
  ) {
    super(description);
  }
}

const DESCRIPTIONS = {
  invalid_request: 'The request is missing a required parameter, includes an unsupported parameter value, or is otherwise malformed.',
  invalid_redirect_uri: "The requested redirect uri is malformed or doesn't match client redirect URI.",
  unsupported_response_type: 'The authorization server does not support this response type.',
  access_denied: 'The resource owner or authorization server denied the request.',
  unauthorized_client: 'You are not authorized to revoke this token',
} as const;

/** An optional string parameter; an empty string counts as absent. */
const optStr = (max = 2048) => z.preprocess((v) => (v === '' || v === null ? undefined : v), z.string().max(max).optional());

const AuthorizeParams = z.object({
  response_type: optStr(),
  client_id: optStr(),
  redirect_uri: optStr(),
  scope: optStr(),
  state: optStr(4096),
  code_challenge: optStr(),
  code_challenge_method: optStr(),
  force_login: z.unknown().optional(),
  lang: optStr(35),
});

const AuthorizeForm = AuthorizeParams.extend({
  username: optStr(320),
  password: optStr(1024),
  decision: optStr(),
});

const TokenParams = z.object({
  grant_type: optStr(),
  client_id: optStr(),
  client_secret: optStr(),
  code: optStr(),
  redirect_uri: optStr(),
  code_verifier: optStr(),
  scope: optStr(),
  username: optStr(320),
  password: optStr(1024),
});

const RevokeParams = z.object({
  client_id: optStr(),
  client_secret: optStr(),
  token: optStr(),
});

/** Doorkeeper reads OAuth parameters from the query and the body alike; so do clients. */
function params(req: FastifyRequest): Record<string, unknown> {
  const query = req.query && typeof req.query === 'object' ? (req.query as Record<string, unknown>) : {};
  const body = req.body && typeof req.body === 'object' ? (req.body as Record<string, unknown>) : {};
  return { ...query, ...body };
}

/** Client credentials from `Authorization: Basic` (RFC 6749 §2.3.1), if that is how the client sent them. */
export function basicCredentials(header: string | undefined): { clientId: string; clientSecret: string } | null {
  const m = header ? /^Basic\s+([A-Za-z0-9+/=_-]+)\s*$/i.exec(header) : null;
  if (!m) return null;
  const decoded = Buffer.from(m[1], 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return null;
  const unescape = (s: string) => {
    try {
      return decodeURIComponent(s.replace(/\+/g, ' '));
    } catch {
      return s;
    }
  };
  return { clientId: unescape(decoded.slice(0, colon)), clientSecret: unescape(decoded.slice(colon + 1)) };
}

/** Turns a service's StarlingError into the OAuth error it stands for. */
function toOauthError(err: unknown): OauthError | null {
  if (err instanceof OauthError) return err;
  if (!(err instanceof StarlingError)) return null;
  switch (err.code) {
    case 'invalid_client':
      return new OauthError(401, 'invalid_client', err.message);
    case 'invalid_grant':
      return new OauthError(400, 'invalid_grant', err.message);
    case 'account_disabled':
      return new OauthError(400, 'invalid_grant', err.message);
    case 'invalid_scope':
      return new OauthError(400, 'invalid_scope', err.message);
    case 'unsupported_grant_type':
      return new OauthError(400, 'unsupported_grant_type', err.message);
    case 'param_missing':
    case 'validation':
    case 'bad_request':
      return new OauthError(400, 'invalid_request', err.message);
    default:
      return null;
  }
}

function sendOauthError(reply: FastifyReply, err: OauthError, basicUsed: boolean) {
  if (err.status === 401 && basicUsed) reply.header('WWW-Authenticate', 'Basic realm="Starling", error="invalid_client"');
  return reply.code(err.status).header('Cache-Control', 'no-store').header('Pragma', 'no-cache').send({ error: err.error, error_description: err.description });
}

function sendHtml(reply: FastifyReply, status: number, html: string, redirectUri?: string) {
  return reply
    .code(status)
    .type('text/html; charset=utf-8')
    .header('Cache-Control', 'no-store')
    .header('Pragma', 'no-cache')
    .header('X-Frame-Options', 'DENY')
    .header('Content-Security-Policy', pageCsp(redirectUri))
    .send(html);
}

function wantsJson(req: FastifyRequest): boolean {
  const accept = req.headers.accept ?? '';
  return accept.includes('json') && !accept.includes('html');
}

// ---------------------------------------------------------------------------
// The authorization request

interface AuthorizeRequest {
  app: OauthApplication;
  redirectUri: string;
  scopes: string[];
  state: string | undefined;
  codeChallenge: string | null;
  codeChallengeMethod: string | null;
  lang: string | undefined;
}

type Resolution =
  | { kind: 'ok'; request: AuthorizeRequest }
  /** The client or redirect URI cannot be trusted: show the error here, never redirect. */
  | { kind: 'fatal'; error: string; description: string; lang: string | undefined }
  /** The redirect URI is registered: the error goes back to the client. */
  | { kind: 'redirect'; redirectUri: string; state: string | undefined; error: string; description: string; lang: string | undefined };

const PKCE_CHALLENGE = /^[A-Za-z0-9\-._~]{43,128}$/;

/** Checks an authorization request (from the query, or again from the posted form, whose hidden fields anyone can edit). */
async function resolveAuthorize(ctx: AppContext, p: z.infer<typeof AuthorizeParams>): Promise<Resolution> {
  const lang = p.lang;
  if (!p.client_id) return { kind: 'fatal', error: 'invalid_request', description: 'Missing required parameter: client_id.', lang };
  const app = await findApplication(ctx, p.client_id);
  if (!app) return { kind: 'fatal', error: 'invalid_client', description: ERRORS.invalid_client.message, lang };

  const registered = redirectUris(app);
  // RFC 6749 §3.1.2.3: the redirect URI may be left out only when exactly one is registered.
  const redirectUri = p.redirect_uri ?? (registered.length === 1 ? registered[0] : undefined);
  if (!redirectUri || !registered.includes(redirectUri)) {
    return { kind: 'fatal', error: 'invalid_redirect_uri', description: DESCRIPTIONS.invalid_redirect_uri, lang };
  }
  const fail = (error: string, description: string): Resolution => ({ kind: 'redirect', redirectUri, state: p.state, error, description, lang });

  if (p.response_type !== 'code') {
    return p.response_type
      ? fail('unsupported_response_type', DESCRIPTIONS.unsupported_response_type)
      : fail('invalid_request', 'Missing required parameter: response_type.');
  }

  const allowed = parseScopes(app.scopes);
  const scopes = p.scope ? parseScopes(p.scope) : allowed;
  if (scopes.length === 0 || invalidScopes(scopes).length > 0 || !scopesWithin(scopes, allowed)) {
    return fail('invalid_scope', ERRORS.invalid_scope.message);
  }

  let codeChallenge: string | null = null;
  let codeChallengeMethod: string | null = null;
  if (p.code_challenge_method !== undefined && p.code_challenge_method !== 'S256' && p.code_challenge_method !== 'plain') {
    return fail('invalid_request', 'Invalid code_challenge_method: only S256 and plain are supported.');
  }
  if (p.code_challenge !== undefined) {
    if (!PKCE_CHALLENGE.test(p.code_challenge)) return fail('invalid_request', 'The code_challenge is malformed.');
    codeChallenge = p.code_challenge;
    // RFC 7636 §4.3: without a method the challenge is plain.
    codeChallengeMethod = p.code_challenge_method ?? 'plain';
  } else if (p.code_challenge_method !== undefined) {
    return fail('invalid_request', 'Missing required parameter: code_challenge.');
  }

  return { kind: 'ok', request: { app, redirectUri, scopes, state: p.state, codeChallenge, codeChallengeMethod, lang } };
}

function sendAuthorizeError(req: FastifyRequest, reply: FastifyReply, res: Exclude<Resolution, { kind: 'ok' }>) {
  if (res.kind === 'redirect' && res.redirectUri !== OOB_REDIRECT) {
    return reply
      .header('Cache-Control', 'no-store')
      .redirect(redirectWith(res.redirectUri, { error: res.error, error_description: res.description, state: res.state }), 302);
  }
  if (wantsJson(req)) {
    return reply.code(400).header('Cache-Control', 'no-store').send({ error: res.error, error_description: res.description });
  }
  return sendHtml(reply, 400, renderMessagePage({ title: 'Authorization failed', message: res.description, lang: res.lang }));
}

/** The hidden form fields that carry the request through the sign-in form. */
function hiddenFields(r: AuthorizeRequest): Record<string, string | undefined> {
  return {
    response_type: 'code',
    client_id: r.app.client_id,
    redirect_uri: r.redirectUri,
    scope: r.scopes.join(' '),
    state: r.state,
    code_challenge: r.codeChallenge ?? undefined,
    code_challenge_method: r.codeChallengeMethod ?? undefined,
    lang: r.lang,
  };
}

function renderConsent(r: AuthorizeRequest, extra: { error?: string; login?: string; notice?: string } = {}): string {
  return renderAuthorizePage({
    appName: r.app.name,
    appWebsite: r.app.website,
    scopes: r.scopes,
    hidden: hiddenFields(r),
    action: OAUTH_PATHS.authorize,
    lang: r.lang,
    ...extra,
  });
}

/** Parses the request's parameters; a malformed one is shown on the page, not as an API error. */
function parseAuthorize<S extends z.ZodTypeAny>(schema: S, input: unknown): { ok: true; value: z.infer<S> } | { ok: false; failure: Exclude<Resolution, { kind: 'ok' }> } {
  try {
    return { ok: true, value: parse(schema, input) };
  } catch (err) {
    if (err instanceof StarlingError) return { ok: false, failure: { kind: 'fatal', error: 'invalid_request', description: err.message, lang: undefined } };
    throw err;
  }
}

// ---------------------------------------------------------------------------
// Token grants

function grantScopes(app: OauthApplication, scope: string | undefined): string[] {
  const allowed = parseScopes(app.scopes);
  // Mastodon's default is `read`; an app registered without it gets what it registered.
  const requested = scope ? validateScopes(scope) : scopesWithin(['read'], allowed) ? ['read'] : allowed;
  if (!scopesWithin(requested, allowed)) throw new StarlingError('invalid_scope');
  return requested;
}

const missing = (name: string) => new OauthError(400, 'invalid_request', `Missing required parameter: ${name}.`);

export async function oauthRoutes(app: FastifyInstance, opts: { ctx: AppContext }): Promise<void> {
  const { ctx } = opts;

  app.get(OAUTH_PATHS.authorize, async (req, reply) => {
    const parsed = parseAuthorize(AuthorizeParams, req.query);
    if (!parsed.ok) return sendAuthorizeError(req, reply, parsed.failure);
    const res = await resolveAuthorize(ctx, parsed.value);
    if (res.kind !== 'ok') return sendAuthorizeError(req, reply, res);
    // There are no sessions: every authorization signs in afresh, so force_login always holds.
    // In read-only mode the form is still shown (a read), saying before anyone types a password that it will not work yet.
    const notice = ctx.writeGuard.readOnly ? ERRORS.read_only_sign_in.message : undefined;
    return sendHtml(reply, 200, renderConsent(res.request, { notice }), res.request.redirectUri);
  });

  app.post(OAUTH_PATHS.authorize, async (req, reply) => {
    const parsed = parseAuthorize(AuthorizeForm, params(req));
    if (!parsed.ok) return sendAuthorizeError(req, reply, parsed.failure);
    const p = parsed.value;
    const res = await resolveAuthorize(ctx, p);
    if (res.kind !== 'ok') return sendAuthorizeError(req, reply, res);
    const r = res.request;

    if (p.decision === 'deny') {
      if (r.redirectUri === OOB_REDIRECT) {
        return sendHtml(reply, 200, renderMessagePage({ title: 'Authorization denied', message: `You did not allow ${r.app.name} to use your account.`, lang: r.lang }));
      }
      return reply
        .header('Cache-Control', 'no-store')
        .redirect(redirectWith(r.redirectUri, { error: 'access_denied', error_description: DESCRIPTIONS.access_denied, state: r.state }), 302);
    }

    let accountId: string | null = null;
    if (p.username && p.password) {
      try {
        accountId = await checkCredentials(ctx, p.username, p.password);
      } catch (err) {
        if (err instanceof StarlingError && err.code === 'account_disabled') {
          return sendHtml(reply, 403, renderConsent(r, { error: err.message, login: p.username }), r.redirectUri);
        }
        throw err;
      }
    }
    if (!accountId) {
      return sendHtml(reply, 401, renderConsent(r, { error: WRONG_CREDENTIALS, login: p.username }), r.redirectUri);
    }

    const code = await issueCode(ctx, {
      app: r.app,
      accountId,
      redirectUri: r.redirectUri,
      scopes: r.scopes,
      codeChallenge: r.codeChallenge,
      codeChallengeMethod: r.codeChallengeMethod,
    });
    if (r.redirectUri === OOB_REDIRECT) {
      return sendHtml(reply, 200, renderCodePage({ appName: r.app.name, code, lang: r.lang }));
    }
    return reply.header('Cache-Control', 'no-store').redirect(redirectWith(r.redirectUri, { code, state: r.state }), 302);
  });

  app.post(OAUTH_PATHS.token, async (req, reply) => {
    const basic = basicCredentials(req.headers.authorization);
    try {
      const p = parse(TokenParams, params(req));
      if (!p.grant_type) throw missing('grant_type');
      if (!(GRANT_TYPES as readonly string[]).includes(p.grant_type)) {
        throw new OauthError(400, 'unsupported_grant_type', ERRORS.unsupported_grant_type.message);
      }
      const client = await authenticateClient(ctx, basic?.clientId ?? p.client_id, basic ? basic.clientSecret : p.client_secret);

      let token: { access_token: string; token_type: string; scope: string; created_at: number };
      switch (p.grant_type) {
        case 'authorization_code': {
          if (!p.code) throw missing('code');
          token = await redeemCode(ctx, { app: client, code: p.code, redirectUri: p.redirect_uri, codeVerifier: p.code_verifier });
          break;
        }
        case 'password': {
          if (!p.username) throw missing('username');
          if (!p.password) throw missing('password');
          const scopes = grantScopes(client, p.scope);
          const accountId = await checkCredentials(ctx, p.username, p.password);
          if (!accountId) throw new OauthError(400, 'invalid_grant', ERRORS.invalid_grant.message);
          token = await issueToken(ctx, { applicationId: client.id, accountId, scopes });
          break;
        }
        default: {
          token = await issueToken(ctx, { applicationId: client.id, accountId: null, scopes: grantScopes(client, p.scope) });
        }
      }
      return reply.header('Cache-Control', 'no-store').header('Pragma', 'no-cache').send(token);
    } catch (err) {
      const oauth = toOauthError(err);
      if (!oauth) throw err;
      return sendOauthError(reply, oauth, basic !== null);
    }
  });

  app.post(OAUTH_PATHS.revoke, async (req, reply) => {
    const basic = basicCredentials(req.headers.authorization);
    let p: z.infer<typeof RevokeParams>;
    try {
      p = parse(RevokeParams, params(req));
    } catch (err) {
      const oauth = toOauthError(err);
      if (!oauth) throw err;
      return sendOauthError(reply, oauth, basic !== null);
    }
    let client: OauthApplication;
    try {
      client = await authenticateClient(ctx, basic?.clientId ?? p.client_id, basic ? basic.clientSecret : p.client_secret);
    } catch (err) {
      if (err instanceof StarlingError && err.code === 'invalid_client') {
        // Mastodon (Doorkeeper) answers 403 here, not 401.
        return sendOauthError(reply, new OauthError(403, 'unauthorized_client', DESCRIPTIONS.unauthorized_client), false);
      }
      throw err;
    }
    // RFC 7009 §2.2: an unknown, foreign or already revoked token is still a 200.
    if (p.token) await revokeToken(ctx, client, p.token);
    return reply.header('Cache-Control', 'no-store').send({});
  });

  app.get(OAUTH_PATHS.metadata, async () => {
    const base = ctx.urls.base;
    return {
      issuer: base,
      service_documentation: 'https://docs.joinmastodon.org/',
      authorization_endpoint: `${base}${OAUTH_PATHS.authorize}`,
      token_endpoint: `${base}${OAUTH_PATHS.token}`,
      revocation_endpoint: `${base}${OAUTH_PATHS.revoke}`,
      app_registration_endpoint: `${base}/api/v1/apps`,
      scopes_supported: [...ALL_SCOPES],
      response_types_supported: ['code'],
      response_modes_supported: ['query'],
      grant_types_supported: [...GRANT_TYPES],
      code_challenge_methods_supported: ['S256'],
      token_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post'],
      revocation_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post'],
    };
  });
}
