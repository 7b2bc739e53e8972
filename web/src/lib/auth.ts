/**
 * Signing in and out, as any Mastodon client does: the app registers itself
 * (POST /api/v1/apps), sends the person to Starling's own sign-in page
 * (/oauth/authorize, authorization code with PKCE), and exchanges the code for
 * a token. Signing up uses an app token (client_credentials) for
 * POST /api/v1/accounts. Signing out revokes the token.
 */
import { api, ApiError, setToken } from './http';
import { sha256 } from './sha256';
import { createStore } from './store';
import type { Account } from './types';

export const SCOPES = 'read write follow push';
/** Asked for only when an administrator opens the operations page: nobody else's token carries it. */
export const ADMIN_SCOPES = `${SCOPES} admin:read`;
// v2: registered with admin:read among the scopes the app may ask for (a v1 registration could not).
const APP_KEY = 'starling.app.v2';
const SESSION_KEY = 'starling.session.v1';
const PKCE_KEY = 'starling.pkce.v1';

export interface Session {
  token: string;
  account: Account;
}

interface AppRegistration {
  client_id: string;
  client_secret: string;
  redirect_uri: string;
}

function readJson<T>(storage: Storage, key: string): T | null {
  try {
    const raw = storage.getItem(key);
    return raw ? (JSON.parse(raw) as T) : null;
  } catch {
    return null;
  }
}

export const session = createStore<Session | null>(readJson<Session>(localStorage, SESSION_KEY));
setToken(session.get()?.token ?? null);
session.subscribe(() => setToken(session.get()?.token ?? null));

function saveSession(s: Session | null): void {
  if (s) localStorage.setItem(SESSION_KEY, JSON.stringify(s));
  else localStorage.removeItem(SESSION_KEY);
  session.set(s);
}

// Another tab signed in or out: follow it.
window.addEventListener('storage', (e) => {
  if (e.key === SESSION_KEY) session.set(readJson<Session>(localStorage, SESSION_KEY));
});

export function redirectUri(): string {
  return `${location.origin}/auth/callback`;
}

async function registerApp(): Promise<AppRegistration> {
  const { data } = await api<{ client_id: string; client_secret: string }>('/api/v1/apps', {
    method: 'POST',
    token: null,
    body: { client_name: 'Starling Web', redirect_uris: redirectUri(), scopes: ADMIN_SCOPES, website: location.origin },
  });
  const reg = { client_id: data.client_id, client_secret: data.client_secret, redirect_uri: redirectUri() };
  localStorage.setItem(APP_KEY, JSON.stringify(reg));
  return reg;
}

/** An app token (client_credentials); also proves the stored registration still exists on the server. */
async function appToken(app: AppRegistration): Promise<string> {
  const { data } = await api<{ access_token: string }>('/oauth/token', {
    method: 'POST',
    token: null,
    body: { grant_type: 'client_credentials', client_id: app.client_id, client_secret: app.client_secret, redirect_uri: app.redirect_uri, scope: SCOPES },
  });
  return data.access_token;
}

/** The registered app and an app token, registering again if the server no longer knows the stored one. */
async function ensureApp(): Promise<{ app: AppRegistration; appToken: string }> {
  const stored = readJson<AppRegistration>(localStorage, APP_KEY);
  if (stored && stored.redirect_uri === redirectUri()) {
    try {
      return { app: stored, appToken: await appToken(stored) };
    } catch (err) {
      if (!(err instanceof ApiError && (err.status === 401 || err.status === 400))) throw err;
    }
  }
  const app = await registerApp();
  return { app, appToken: await appToken(app) };
}

function base64url(bytes: Uint8Array): string {
  let s = '';
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

function randomString(bytes = 32): string {
  return base64url(crypto.getRandomValues(new Uint8Array(bytes)));
}

async function challengeFor(verifier: string): Promise<string> {
  const data = new TextEncoder().encode(verifier);
  if (crypto.subtle) return base64url(new Uint8Array(await crypto.subtle.digest('SHA-256', data)));
  return base64url(sha256(data));
}

/**
 * Sends the browser to Starling's sign-in page. Resolves only if it could not.
 * `admin` also asks for admin:read (the operations page); the server still
 * answers admin routes only for administrators.
 */
export async function beginSignIn(returnTo = '/', opts: { admin?: boolean } = {}): Promise<void> {
  const { app } = await ensureApp();
  const verifier = randomString(48);
  const state = randomString(16);
  const scope = opts.admin ? ADMIN_SCOPES : SCOPES;
  sessionStorage.setItem(PKCE_KEY, JSON.stringify({ verifier, state, returnTo, scope }));
  const url = new URL('/oauth/authorize', location.origin);
  url.search = new URLSearchParams({
    response_type: 'code',
    client_id: app.client_id,
    redirect_uri: app.redirect_uri,
    scope,
    state,
    code_challenge: await challengeFor(verifier),
    code_challenge_method: 'S256',
    force_login: 'true',
  }).toString();
  location.assign(url.toString());
}

/** The OAuth redirect: checks the state, exchanges the code (with the PKCE verifier) for a token. */
export async function completeSignIn(params: URLSearchParams): Promise<string> {
  const pending = readJson<{ verifier: string; state: string; returnTo: string; scope?: string }>(sessionStorage, PKCE_KEY);
  const error = params.get('error');
  if (error) throw new Error(error === 'access_denied' ? 'Sign-in was cancelled.' : params.get('error_description') || error);
  const code = params.get('code');
  if (!code || !pending || params.get('state') !== pending.state) throw new Error('This sign-in link is not valid any more. Please sign in again.');
  const app = readJson<AppRegistration>(localStorage, APP_KEY);
  if (!app) throw new Error('Please sign in again.');
  const { data } = await api<{ access_token: string }>('/oauth/token', {
    method: 'POST',
    token: null,
    body: { grant_type: 'authorization_code', code, client_id: app.client_id, client_secret: app.client_secret, redirect_uri: app.redirect_uri, code_verifier: pending.verifier, scope: pending.scope ?? SCOPES },
  });
  sessionStorage.removeItem(PKCE_KEY);
  await startSession(data.access_token);
  return pending.returnTo || '/';
}

async function startSession(accessToken: string): Promise<void> {
  const { data: account } = await api<Account>('/api/v1/accounts/verify_credentials', { token: accessToken });
  saveSession({ token: accessToken, account });
}

export interface SignUpInput {
  username: string;
  email: string;
  password: string;
  agreement: boolean;
}

/** Creates an account with an app token; the answer is the new account's own token. */
export async function signUp(input: SignUpInput): Promise<void> {
  const { appToken: tokenForApp } = await ensureApp();
  const { data } = await api<{ access_token: string }>('/api/v1/accounts', {
    method: 'POST',
    token: tokenForApp,
    body: { ...input, locale: navigator.language?.split('-')[0] || 'en' },
  });
  await startSession(data.access_token);
}

const REVOKE_KEY = 'starling.revoke.v1';
type PendingRevoke = { client_id: string; client_secret: string; token: string };

async function revoke(r: PendingRevoke): Promise<void> {
  await api('/oauth/revoke', { method: 'POST', token: null, body: r });
}

/**
 * Revokes the token on the server, then forgets it here. If the server can't be
 * reached, the token is forgotten here at once and revoked as soon as it can be
 * (retryRevocations, at start and on recovery).
 */
export async function signOut(): Promise<void> {
  const s = session.get();
  const app = readJson<AppRegistration>(localStorage, APP_KEY);
  saveSession(null);
  if (!s || !app) return;
  const pending = { client_id: app.client_id, client_secret: app.client_secret, token: s.token };
  try {
    await revoke(pending);
  } catch (err) {
    if (err instanceof ApiError) return; // the server answered: nothing more to do
    const list = readJson<PendingRevoke[]>(localStorage, REVOKE_KEY) ?? [];
    localStorage.setItem(REVOKE_KEY, JSON.stringify([...list, pending]));
    throw err;
  }
}

export async function retryRevocations(): Promise<void> {
  const list = readJson<PendingRevoke[]>(localStorage, REVOKE_KEY) ?? [];
  if (!list.length) return;
  const left: PendingRevoke[] = [];
  for (const r of list) {
    try {
      await revoke(r);
    } catch (err) {
      if (!(err instanceof ApiError)) left.push(r);
    }
  }
  if (left.length) localStorage.setItem(REVOKE_KEY, JSON.stringify(left));
  else localStorage.removeItem(REVOKE_KEY);
}

/** The token no longer works (revoked elsewhere): forget it. */
export function dropSession(): void {
  saveSession(null);
}

export function updateAccount(account: Account): void {
  const s = session.get();
  if (s && s.account.id === account.id) saveSession({ ...s, account });
}
