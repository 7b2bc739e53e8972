/**
 * The OAuth flow as a browser-based client drives it, against a real server
 * on 127.0.0.1: register an app, open the sign-in page, post the form,
 * follow the redirect by hand, exchange the code with PKCE, and use the
 * token. Also the other grants, scope enforcement, revocation, metadata and
 * that only token hashes are stored.
 */
import { createHash, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRestAPIClient } from 'masto';
import { startTestServer, createUser, type TestServer, type TestUser } from '../helpers/server.js';

const REDIRECT = 'http://127.0.0.1:9/callback';
const OOB = 'urn:ietf:wg:oauth:2.0:oob';
const PASSWORD = 'correct horse battery';
const APP_NAME = 'Tusk <b>&</b> "Friends"';

interface RegisteredApp {
  client_id: string;
  client_secret: string;
  name: string;
}

interface TokenResponse {
  access_token: string;
  token_type: string;
  scope: string;
  created_at: number;
}

let server: TestServer;
let user: TestUser;
let app: RegisteredApp;

const sha256hex = (s: string) => createHash('sha256').update(s).digest('hex');

function pkce(): { verifier: string; challenge: string } {
  const verifier = randomBytes(32).toString('base64url');
  const challenge = createHash('sha256').update(verifier).digest('base64url');
  return { verifier, challenge };
}

async function registerApp(scopes = 'read write follow', redirectUris = `${REDIRECT}\n${OOB}`, name = APP_NAME): Promise<RegisteredApp> {
  const res = await fetch(`${server.url}/api/v1/apps`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ client_name: name, redirect_uris: redirectUris, scopes, website: 'https://tusk.example' }),
  });
  expect(res.status).toBe(200);
  return (await res.json()) as RegisteredApp;
}

function authorizeQuery(a: RegisteredApp, extra: Record<string, string> = {}): URLSearchParams {
  return new URLSearchParams({ response_type: 'code', client_id: a.client_id, redirect_uri: REDIRECT, scope: 'read write', ...extra });
}

/** The hidden fields of the sign-in form, as a browser would submit them. */
function hiddenFields(html: string): Record<string, string> {
  const unescape = (s: string) =>
    s.replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&#x27;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');
  const out: Record<string, string> = {};
  for (const m of html.matchAll(/<input type="hidden" name="([^"]*)" value="([^"]*)">/g)) out[unescape(m[1])] = unescape(m[2]);
  return out;
}

async function postForm(fields: Record<string, string>): Promise<Response> {
  return fetch(`${server.url}/oauth/authorize`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(fields).toString(),
    redirect: 'manual',
  });
}

async function token(params: Record<string, string>): Promise<Response> {
  return fetch(`${server.url}/oauth/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(params).toString(),
  });
}

/** Runs the browser part of the flow and returns the code from the redirect. */
async function authorizeCode(a: RegisteredApp, extra: Record<string, string> = {}): Promise<string> {
  const page = await fetch(`${server.url}/oauth/authorize?${authorizeQuery(a, extra)}`);
  expect(page.status).toBe(200);
  const res = await postForm({ ...hiddenFields(await page.text()), username: user.username, password: PASSWORD, decision: 'approve' });
  expect(res.status).toBe(302);
  const code = new URL(res.headers.get('location')!).searchParams.get('code');
  expect(code).toBeTruthy();
  return code!;
}

async function passwordToken(scope: string, a: RegisteredApp = app): Promise<string> {
  const res = await token({ grant_type: 'password', client_id: a.client_id, client_secret: a.client_secret, username: user.username, password: PASSWORD, scope });
  expect(res.status).toBe(200);
  return ((await res.json()) as TokenResponse).access_token;
}

const bearer = (t: string) => ({ authorization: `Bearer ${t}` });

beforeAll(async () => {
  server = await startTestServer();
  user = await createUser(server.url, 'oauthuser');
  app = await registerApp();
});
afterAll(async () => {
  await server?.stop();
});

describe('authorization code flow with PKCE', () => {
  it('signs in through the form, redirects with the code and state, and exchanges it for a working token', async () => {
    const { verifier, challenge } = pkce();
    const state = `st-${randomBytes(8).toString('hex')}`;
    const query = authorizeQuery(app, { state, code_challenge: challenge, code_challenge_method: 'S256' });

    const page = await fetch(`${server.url}/oauth/authorize?${query}`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    expect(page.headers.get('cache-control')).toContain('no-store');
    const csp = page.headers.get('content-security-policy');
    expect(csp).toBeTruthy();
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain('form-action');
    const html = await page.text();
    expect(html).toMatch(/<form method="post" action="\/oauth\/authorize">/);
    expect(html).toContain('name="password"');
    // The app name is escaped, never raw markup.
    expect(html).not.toContain(APP_NAME);
    expect(html).not.toContain('<b>&</b>');
    expect(html).toContain('Tusk &lt;b&gt;&amp;&lt;/b&gt;');

    const hidden = hiddenFields(html);
    expect(hidden).toMatchObject({ client_id: app.client_id, redirect_uri: REDIRECT, state, code_challenge: challenge, code_challenge_method: 'S256' });

    const res = await postForm({ ...hidden, username: user.username, password: PASSWORD, decision: 'approve' });
    expect(res.status).toBe(302);
    expect(res.headers.get('cache-control')).toContain('no-store');
    const location = new URL(res.headers.get('location')!);
    expect(`${location.origin}${location.pathname}`).toBe(REDIRECT);
    expect(location.searchParams.get('state')).toBe(state);
    const code = location.searchParams.get('code')!;
    expect(code).toBeTruthy();

    const exchanged = await token({
      grant_type: 'authorization_code',
      client_id: app.client_id,
      client_secret: app.client_secret,
      code,
      redirect_uri: REDIRECT,
      code_verifier: verifier,
    });
    expect(exchanged.status).toBe(200);
    expect(exchanged.headers.get('cache-control')).toContain('no-store');
    const body = (await exchanged.json()) as TokenResponse;
    expect(body.token_type).toBe('Bearer');
    expect(body.scope).toBe('read write');
    expect(typeof body.created_at).toBe('number');

    const client = createRestAPIClient({ url: server.url, accessToken: body.access_token });
    const me = await client.v1.accounts.verifyCredentials();
    expect(me.id).toBe(user.id);
    expect(me.username).toBe(user.username);

    // A code is good for one exchange only.
    const again = await token({
      grant_type: 'authorization_code',
      client_id: app.client_id,
      client_secret: app.client_secret,
      code,
      redirect_uri: REDIRECT,
      code_verifier: verifier,
    });
    expect(again.status).toBe(400);
    expect(((await again.json()) as { error: string }).error).toBe('invalid_grant');
  });

  it('rejects a wrong or missing code_verifier', async () => {
    const { challenge } = pkce();
    const code = await authorizeCode(app, { code_challenge: challenge, code_challenge_method: 'S256' });
    const base = { grant_type: 'authorization_code', client_id: app.client_id, client_secret: app.client_secret, code, redirect_uri: REDIRECT };
    const wrong = await token({ ...base, code_verifier: pkce().verifier });
    expect(wrong.status).toBe(400);
    expect(((await wrong.json()) as { error: string }).error).toBe('invalid_grant');
    const none = await token(base);
    expect(none.status).toBe(400);
    expect(((await none.json()) as { error: string }).error).toBe('invalid_grant');
  });

  it('rejects a code presented by another client or with another redirect URI', async () => {
    const other = await registerApp();
    const code = await authorizeCode(app);
    const foreign = await token({ grant_type: 'authorization_code', client_id: other.client_id, client_secret: other.client_secret, code, redirect_uri: REDIRECT });
    expect(foreign.status).toBe(400);
    const wrongUri = await token({ grant_type: 'authorization_code', client_id: app.client_id, client_secret: app.client_secret, code, redirect_uri: OOB });
    expect(wrongUri.status).toBe(400);
  });

  it('shows the code on the page for the out-of-band redirect URI', async () => {
    const page = await fetch(`${server.url}/oauth/authorize?${authorizeQuery(app, { redirect_uri: OOB, scope: 'read' })}`);
    expect(page.status).toBe(200);
    const res = await postForm({ ...hiddenFields(await page.text()), username: user.username, password: PASSWORD, decision: 'approve' });
    expect(res.status).toBe(200);
    expect(res.headers.get('location')).toBeNull();
    expect(res.headers.get('cache-control')).toContain('no-store');
    const html = await res.text();
    const m = /<code class="oauth-code" id="code"[^>]*>([^<]+)<\/code>/.exec(html);
    expect(m).not.toBeNull();
    const exchanged = await token({ grant_type: 'authorization_code', client_id: app.client_id, client_secret: app.client_secret, code: m![1], redirect_uri: OOB });
    expect(exchanged.status).toBe(200);
    const body = (await exchanged.json()) as TokenResponse;
    expect(body.scope).toBe('read');
    const me = await createRestAPIClient({ url: server.url, accessToken: body.access_token }).v1.accounts.verifyCredentials();
    expect(me.id).toBe(user.id);
  });

  it('re-renders the form with 401 on a wrong password, without redirecting', async () => {
    const state = 'keep-me';
    const page = await fetch(`${server.url}/oauth/authorize?${authorizeQuery(app, { state })}`);
    const res = await postForm({ ...hiddenFields(await page.text()), username: user.username, password: 'not the password', decision: 'approve' });
    expect(res.status).toBe(401);
    expect(res.headers.get('location')).toBeNull();
    expect(res.headers.get('content-type')).toMatch(/^text\/html/);
    expect(res.headers.get('cache-control')).toContain('no-store');
    const html = await res.text();
    expect(html).toContain('role="alert"');
    expect(html).toMatch(/<form method="post"/);
    // The login is kept, the password is not, and the request travels on.
    expect(html).toContain(`value="${user.username}"`);
    expect(html).not.toContain('not the password');
    expect(hiddenFields(html)).toMatchObject({ client_id: app.client_id, state });
  });

  it('redirects with error=access_denied when the person denies', async () => {
    const page = await fetch(`${server.url}/oauth/authorize?${authorizeQuery(app, { state: 'deny-state' })}`);
    const res = await postForm({ ...hiddenFields(await page.text()), decision: 'deny' });
    expect(res.status).toBe(302);
    const location = new URL(res.headers.get('location')!);
    expect(`${location.origin}${location.pathname}`).toBe(REDIRECT);
    expect(location.searchParams.get('error')).toBe('access_denied');
    expect(location.searchParams.get('state')).toBe('deny-state');
    expect(location.searchParams.get('code')).toBeNull();
  });

  it('never redirects to an unregistered redirect URI', async () => {
    const res = await fetch(`${server.url}/oauth/authorize?${authorizeQuery(app, { redirect_uri: 'http://127.0.0.1:9/evil' })}`, { redirect: 'manual' });
    expect(res.status).toBe(400);
    expect(res.headers.get('location')).toBeNull();
  });
});

describe('other grants', () => {
  it('issues a user token with the password grant', async () => {
    const t = await passwordToken('read');
    const me = await createRestAPIClient({ url: server.url, accessToken: t }).v1.accounts.verifyCredentials();
    expect(me.id).toBe(user.id);
    const bad = await token({ grant_type: 'password', client_id: app.client_id, client_secret: app.client_secret, username: user.username, password: 'nope', scope: 'read' });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: string }).error).toBe('invalid_grant');
  });

  it('issues an app-only token with client_credentials that cannot act as a user', async () => {
    const res = await token({ grant_type: 'client_credentials', client_id: app.client_id, client_secret: app.client_secret, scope: 'read' });
    expect(res.status).toBe(200);
    const t = ((await res.json()) as TokenResponse).access_token;
    const me = await fetch(`${server.url}/api/v1/accounts/verify_credentials`, { headers: bearer(t) });
    expect(me.status).toBeGreaterThanOrEqual(400);
    expect(me.status).toBeLessThan(500);
    // It still identifies its app.
    const appRes = await fetch(`${server.url}/api/v1/apps/verify_credentials`, { headers: bearer(t) });
    expect(appRes.status).toBe(200);
  });

  it('rejects a wrong client secret', async () => {
    const res = await token({ grant_type: 'client_credentials', client_id: app.client_id, client_secret: 'wrong', scope: 'read' });
    expect(res.status).toBe(401);
    expect(((await res.json()) as { error: string }).error).toBe('invalid_client');
  });
});

describe('scopes', () => {
  it('a read-only token cannot post', async () => {
    const t = await passwordToken('read');
    const res = await fetch(`${server.url}/api/v1/statuses`, {
      method: 'POST',
      headers: { ...bearer(t), 'content-type': 'application/json' },
      body: JSON.stringify({ status: 'should not appear' }),
    });
    expect(res.status).toBe(403);
    expect(await res.json()).toEqual({ error: 'This action is outside the authorized scopes' });
    // But it reads.
    const home = await fetch(`${server.url}/api/v1/timelines/home`, { headers: bearer(t) });
    expect(home.status).toBe(200);
  });

  it('a write:statuses token can post but cannot read the home timeline', async () => {
    const t = await passwordToken('write:statuses');
    const posted = await fetch(`${server.url}/api/v1/statuses`, {
      method: 'POST',
      headers: { ...bearer(t), 'content-type': 'application/json' },
      body: JSON.stringify({ status: 'posted with a narrow token' }),
    });
    expect(posted.status).toBe(200);
    expect(((await posted.json()) as { content: string }).content).toContain('posted with a narrow token');
    const home = await fetch(`${server.url}/api/v1/timelines/home`, { headers: bearer(t) });
    expect(home.status).toBe(403);
    expect(await home.json()).toEqual({ error: 'This action is outside the authorized scopes' });
  });

  it('cannot be widened beyond what the app registered', async () => {
    const narrow = await registerApp('read');
    const res = await token({ grant_type: 'password', client_id: narrow.client_id, client_secret: narrow.client_secret, username: user.username, password: PASSWORD, scope: 'read write' });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: string }).error).toBe('invalid_scope');
  });
});

describe('revocation', () => {
  it('makes a token fail with 401 afterwards', async () => {
    const t = await passwordToken('read');
    expect((await fetch(`${server.url}/api/v1/accounts/verify_credentials`, { headers: bearer(t) })).status).toBe(200);
    const res = await fetch(`${server.url}/oauth/revoke`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ client_id: app.client_id, client_secret: app.client_secret, token: t }).toString(),
    });
    expect(res.status).toBe(200);
    const after = await fetch(`${server.url}/api/v1/accounts/verify_credentials`, { headers: bearer(t) });
    expect(after.status).toBe(401);
    expect(await after.json()).toEqual({ error: 'The access token is invalid' });
  });

  it('does not let another app revoke a token', async () => {
    const t = await passwordToken('read');
    const other = await registerApp();
    const res = await fetch(`${server.url}/oauth/revoke`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ client_id: other.client_id, client_secret: other.client_secret, token: t }).toString(),
    });
    expect(res.status).toBe(200);
    expect((await fetch(`${server.url}/api/v1/accounts/verify_credentials`, { headers: bearer(t) })).status).toBe(200);
  });
});

describe('discovery and app credentials', () => {
  it('publishes RFC 8414 metadata with S256 PKCE', async () => {
    const res = await fetch(`${server.url}/.well-known/oauth-authorization-server`);
    expect(res.status).toBe(200);
    const meta = (await res.json()) as Record<string, unknown>;
    expect(meta.code_challenge_methods_supported).toContain('S256');
    expect(meta.issuer).toBe(server.url);
    expect(meta.authorization_endpoint).toBe(`${server.url}/oauth/authorize`);
    expect(meta.token_endpoint).toBe(`${server.url}/oauth/token`);
    expect(meta.grant_types_supported).toEqual(expect.arrayContaining(['authorization_code', 'password', 'client_credentials']));
  });

  it('names the app behind a token at /api/v1/apps/verify_credentials', async () => {
    const t = await passwordToken('write:statuses');
    const res = await fetch(`${server.url}/api/v1/apps/verify_credentials`, { headers: bearer(t) });
    expect(res.status).toBe(200);
    const body = (await res.json()) as Record<string, unknown>;
    expect(body.name).toBe(APP_NAME);
    expect(body).not.toHaveProperty('client_secret');
    const anon = await fetch(`${server.url}/api/v1/apps/verify_credentials`);
    expect(anon.status).toBe(401);
  });
});

describe('storage', () => {
  it('stores only the SHA-256 of tokens', async () => {
    const t = await passwordToken('read');
    const rows = await server.ctx.db.selectFrom('oauth_tokens').select(['token_hash']).execute();
    expect(rows.length).toBeGreaterThan(0);
    expect(rows.some((r) => r.token_hash === t)).toBe(false);
    expect(rows.filter((r) => r.token_hash === sha256hex(t))).toHaveLength(1);
    for (const r of rows) expect(r.token_hash).toMatch(/^[0-9a-f]{64}$/);
  });
});
