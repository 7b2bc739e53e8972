/**
 * The operations page's figures: the per-minute series (bounded ring,
 * percentiles from the per-minute histogram, burn rates sampled from the SLO
 * tracker) and GET /api/v1/admin/starling/ops (admins only).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createUser, eventually, startTestServer, type TestServer, type TestUser } from '../helpers/server.js';
import { OpsSeries, SERIES_MINUTES, type MinuteFigures } from '../../src/ops/ops-series.js';
import type { SloStatus } from '../../src/ops/slo.js';

const MINUTE = 60_000;
const T0 = Date.parse('2030-01-01T00:00:00Z');

describe('OpsSeries', () => {
  it('counts requests and 5xx per minute, with percentiles from the histogram', () => {
    let now = T0 + 5_000;
    const series = new OpsSeries({ now: () => now });
    for (let i = 0; i < 100; i++) series.record('/api/v1/statuses', i < 3 ? 503 : 200, i < 90 ? 3 : i < 97 ? 40 : 800);
    // Not API requests: left out, as the SLOs leave them out.
    series.record('/healthz', 500, 1);
    series.record('/status', 200, 1);
    series.record('unmatched', 404, 1);
    now += MINUTE;
    series.record('/api/v1/statuses', 200, 7);
    const [first, second] = series.minutes();
    expect(first).toMatchObject({ t: '2030-01-01T00:00:00.000Z', requests: 100, errors: 3, burn: null, probe_ms: null });
    expect(first.p50_ms!).toBeLessThanOrEqual(5);
    expect(first.p95_ms!).toBeGreaterThan(25);
    expect(first.p95_ms!).toBeLessThanOrEqual(50);
    // The slowest bucket's percentile never exceeds the slowest request.
    expect(first.p99_ms!).toBeGreaterThan(500);
    expect(first.p99_ms!).toBe(800);
    expect(second).toMatchObject({ requests: 1, errors: 0, p50_ms: expect.any(Number) });
    expect(second.p99_ms!).toBeLessThanOrEqual(7);
  });

  it('keeps 6 hours and no more, with empty minutes as zeros', () => {
    let now = T0;
    const series = new OpsSeries({ now: () => now });
    series.record('/api/v1/statuses', 200, 1);
    now += 10 * MINUTE;
    expect(series.minutes()).toHaveLength(11);
    expect(series.minutes()[5]).toMatchObject({ requests: 0, errors: 0, p50_ms: null });
    now = T0 + 24 * 60 * MINUTE;
    series.record('/api/v1/statuses', 200, 1);
    const all = series.minutes();
    expect(all).toHaveLength(SERIES_MINUTES);
    expect(all.reduce((s, m) => s + m.requests, 0)).toBe(1);
    expect(all[all.length - 1].t).toBe(new Date(now).toISOString());
  });

  it('samples burn rates and averages probe latency by minute', () => {
    let now = T0;
    const status = (burn: number): SloStatus[] => [
      { name: 'availability', objective: 0.999, burnRates: { '5m': burn, '1h': burn / 2 }, errorBudgetRemaining: 1, alert: null },
      { name: 'latency', objective: 0.99, burnRates: { '5m': 0 }, errorBudgetRemaining: 1, alert: null },
    ];
    let burn = 20;
    const series = new OpsSeries({
      now: () => now,
      slo: () => status(burn),
      probeLatency: () => [
        { t: new Date(T0 + 1000).toISOString(), ms: 10 },
        { t: new Date(T0 + 2000).toISOString(), ms: 30 },
      ],
    });
    series.sample();
    now += 2 * MINUTE;
    burn = 7;
    const minutes: MinuteFigures[] = series.minutes(status(burn));
    expect(minutes).toHaveLength(3);
    expect(minutes[0].burn).toMatchObject({ availability_5m: 20, availability_1h: 10, latency_5m: 0 });
    expect(minutes[0].probe_ms).toBe(20);
    expect(minutes[1].burn).toBeNull();
    // The current minute, not sampled yet, takes the statuses just evaluated.
    expect(minutes[2].burn).toMatchObject({ availability_5m: 7 });
  });
});

describe('GET /api/v1/admin/starling/ops', () => {
  let server: TestServer;
  let admin: TestUser;
  let user: TestUser;

  beforeAll(async () => {
    server = await startTestServer({ ops: { probeIntervalSeconds: 0.2, staleAfterSeconds: 10 } });
    admin = await createUser(server.url, 'series_admin', { scopes: 'read write admin:read' });
    user = await createUser(server.url, 'series_user', { scopes: 'read write admin:read' });
    await server.ctx.db.updateTable('users').set({ role: 'admin' }).where('account_id', '=', admin.id).execute();
  });

  afterAll(async () => {
    await server?.stop();
  });

  const get = async (token?: string) => {
    const res = await fetch(`${server.url}/api/v1/admin/starling/ops`, { headers: token ? { authorization: `Bearer ${token}` } : {} });
    return { status: res.status, json: (await res.json()) as any, headers: res.headers };
  };

  it('answers 401 without a valid token and 403 to someone who is not an admin', async () => {
    expect((await get()).status).toBe(401);
    expect((await get('not-a-token')).status).toBe(401);
    const notAdmin = await get(user.token);
    expect(notAdmin.status).toBe(403);
    expect(notAdmin.json).toEqual({ error: expect.any(String) });
  });

  it('gives an admin the minutes, SLOs and components, counting live requests', async () => {
    for (let i = 0; i < 12; i++) {
      const res = await fetch(`${server.url}/api/v1/timelines/public`);
      expect(res.status).toBe(200);
    }
    // The posting probe has reported at least once.
    await eventually(async () => server.ops.latency('posting').length > 0, 10_000);
    const { status, json, headers } = await get(admin.token);
    expect(status).toBe(200);
    expect(headers.get('cache-control')).toBe('no-store');
    expect(Date.parse(json.generated_at)).toBeGreaterThan(0);
    expect(json.minutes.length).toBeGreaterThanOrEqual(1);
    expect(json.minutes.length).toBeLessThanOrEqual(SERIES_MINUTES);
    const total = json.minutes.reduce((s: number, m: MinuteFigures) => s + m.requests, 0);
    // The 12 reads and the test's own earlier API calls (registration, the 403s): probes are not counted.
    expect(total).toBeGreaterThanOrEqual(12);
    const last: MinuteFigures = json.minutes[json.minutes.length - 1];
    expect(last.burn).toMatchObject({ availability_5m: expect.any(Number), availability_1h: expect.any(Number), latency_1h: expect.any(Number) });
    const withTraffic = json.minutes.filter((m: MinuteFigures) => m.requests > 0);
    for (const m of withTraffic) {
      expect(m.p50_ms).toBeGreaterThanOrEqual(0);
      expect(m.p95_ms).toBeGreaterThanOrEqual(m.p50_ms!);
      expect(m.p99_ms).toBeGreaterThanOrEqual(m.p95_ms!);
    }
    expect(json.minutes.some((m: MinuteFigures) => m.probe_ms !== null)).toBe(true);
    expect(json.slo.map((s: SloStatus) => s.name)).toEqual(['availability', 'latency']);
    expect(json.slo[0]).toMatchObject({ objective: expect.any(Number), errorBudgetRemaining: expect.any(Number), alert: null });
    expect(json.alert_policy).toContainEqual({ severity: 'page', long: '1h', short: '5m', burn: 14.4 });
    expect(json.components.map((c: { id: string }) => c.id)).toContain('posting');
    expect(json.components[0]).toMatchObject({ name: expect.any(String), status: expect.any(String) });
  });
});
