/** Liveness, readiness and metrics on a real node. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, createUser, type TestServer } from '../helpers/server.js';

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer();
});
afterAll(async () => {
  await server?.stop();
});

describe('health and metrics', () => {
  it('is alive and ready, with the checks it made', async () => {
    expect(await (await fetch(`${server.url}/healthz`)).text()).toBe('ok');
    const ready = await fetch(`${server.url}/readyz`);
    expect(ready.status).toBe(200);
    const body = (await ready.json()) as { status: string; checks: { database: { ok: boolean } } };
    expect(body.status).toBe('ready');
    expect(body.checks.database.ok).toBe(true);
    const beat = await server.ctx.db.selectFrom('ops_heartbeat').selectAll().execute();
    expect(beat).toHaveLength(1);
  });

  it('is not ready when the event bus is disconnected', async () => {
    const bus = server.ctx.bus as { connected: boolean };
    Object.defineProperty(bus, 'connected', { value: false, configurable: true });
    try {
      const res = await fetch(`${server.url}/readyz`);
      expect(res.status).toBe(503);
      expect(((await res.json()) as { reason: string }).reason).toContain('bus');
    } finally {
      Object.defineProperty(bus, 'connected', { value: true, configurable: true });
    }
  });

  it('exports Prometheus series for requests, the database, posts and Node itself', async () => {
    const user = await createUser(server.url, 'metered');
    await user.client.v1.statuses.create({ status: 'counted' });
    const text = await (await fetch(`${server.url}/metrics`)).text();
    expect(text).toMatch(/starling_http_requests_total\{[^}]*route="\/api\/v1\/statuses"[^}]*status="200"[^}]*\} 1/);
    expect(text).toMatch(/starling_http_request_duration_seconds_bucket\{/);
    expect(text).toMatch(/starling_db_query_duration_seconds_count\{[^}]*kind="insert"[^}]*\} \d+/);
    expect(text).toMatch(/starling_posts_created_total\{[^}]*\} 1/);
    expect(text).toContain('starling_nodejs_eventloop_lag_seconds');
    expect(text).toContain('starling_streaming_connections');
  });
});
