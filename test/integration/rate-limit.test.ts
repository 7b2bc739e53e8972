/**
 * Rate limiting on a real server: anonymous requests are counted per IP and
 * tokens per token, every limited response says where the client stands, the
 * request over the limit gets a 429 with Retry-After, and the health check
 * is never limited.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRestAPIClient, type mastodon } from 'masto';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { registerAccount } from '../../src/services/accounts.js';
import { createApplication, issueToken } from '../../src/services/auth.js';

const MAX = 5;

let server: TestServer;
let user: { token: string; client: mastodon.rest.Client };

beforeAll(async () => {
  server = await startTestServer({ rateLimit: { max: MAX, windowSeconds: 60 } });
  // The user and token are made in-process: signing up over HTTP would spend the anonymous (per-IP) budget under test.
  const account = await registerAccount(server.ctx, { username: 'ratelimited', email: 'ratelimited@example.test', password: 'correct horse battery' });
  const app = await createApplication(server.ctx, { name: 'rate-limit-tests', redirectUris: ['urn:ietf:wg:oauth:2.0:oob'], scopes: ['read', 'write'], website: null });
  const { access_token } = await issueToken(server.ctx, { applicationId: app.id, accountId: account.id, scopes: ['read', 'write'] });
  user = { token: access_token, client: createRestAPIClient({ url: server.url, accessToken: access_token }) };
});
afterAll(async () => {
  await server?.stop();
});

describe('rate limiting', () => {
  it('counts anonymous requests down, then answers 429 with Retry-After', async () => {
    const remaining: number[] = [];
    for (let i = 0; i < MAX; i++) {
      const res = await fetch(`${server.url}/api/v1/timelines/public`);
      expect(res.status).toBe(200);
      expect(res.headers.get('x-ratelimit-limit')).toBe(String(MAX));
      const reset = res.headers.get('x-ratelimit-reset');
      expect(reset).toMatch(/^\d+$/);
      expect(Number(reset)).toBeLessThanOrEqual(60);
      remaining.push(Number(res.headers.get('x-ratelimit-remaining')));
      await res.arrayBuffer();
    }
    expect(remaining).toEqual([4, 3, 2, 1, 0]);

    const limited = await fetch(`${server.url}/api/v1/timelines/public`);
    expect(limited.status).toBe(429);
    expect(limited.headers.get('content-type')).toMatch(/^application\/json/);
    const retryAfter = limited.headers.get('retry-after');
    expect(retryAfter).toMatch(/^\d+$/);
    expect(Number(retryAfter)).toBeGreaterThan(0);
    expect(Number(retryAfter)).toBeLessThanOrEqual(60);
    expect(limited.headers.get('x-ratelimit-limit')).toBe(String(MAX));
    expect(limited.headers.get('x-ratelimit-remaining')).toBe('0');
    const body = (await limited.json()) as { error: unknown };
    expect(typeof body.error).toBe('string');
    expect(body.error).toBeTruthy();

    // Still limited on other routes for the same client.
    const other = await fetch(`${server.url}/api/v1/instance`);
    expect(other.status).toBe(429);
    await other.arrayBuffer();
  });

  it('keeps a separate budget per token', async () => {
    const res = await fetch(`${server.url}/api/v1/timelines/public`, { headers: { authorization: `Bearer ${user.token}` } });
    expect(res.status).toBe(200);
    expect(res.headers.get('x-ratelimit-limit')).toBe(String(MAX));
    expect(Number(res.headers.get('x-ratelimit-remaining'))).toBeGreaterThan(0);
    await res.arrayBuffer();
    const me = await user.client.v1.accounts.verifyCredentials();
    expect(me.username).toBe('ratelimited');
  });

  it('never limits /health, even for a client over its limit', async () => {
    for (let i = 0; i < MAX * 2; i++) {
      const res = await fetch(`${server.url}/health`);
      expect(res.status).toBe(200);
      expect(res.headers.get('x-ratelimit-limit')).toBeNull();
      expect(await res.text()).toBe('OK');
    }
    // Probes that add a query string or a trailing slash reach the same route.
    for (const path of ['/health?probe=1', '/health/']) {
      const res = await fetch(`${server.url}${path}`);
      expect(res.status).toBe(200);
      await res.arrayBuffer();
    }
  });
});
