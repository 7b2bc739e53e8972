/**
 * The ops engine's life on a real node: its canary, staleness when its probes
 * stop reporting, and what it remembers across a restart.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { eventually, startTestServer, tempDir, type TestServer } from '../helpers/server.js';
import { canaryUsername } from '../../src/ops/probes.js';

const servers: TestServer[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await s.stop();
});

async function start(overrides: Record<string, unknown>, dataDir?: string): Promise<TestServer> {
  const s = await startTestServer(overrides, dataDir);
  if (!dataDir) servers.push(s);
  return s;
}

const fresh = (s: TestServer) => eventually(async () => !s.ops.summary().freshness.stale && s.ops.summary().components.every((c) => c.status === 'operational'), 15_000);

describe('the canary', () => {
  it('is a bot nobody can find, posts only followers-only statuses, and leaves none behind', async () => {
    const s = await start({ ops: { probeIntervalSeconds: 0.2, staleAfterSeconds: 5 } });
    await fresh(s);
    await eventually(async () => s.ops.tickCount >= 3);
    const canary = await s.ctx.db.selectFrom('accounts').selectAll().where('username', '=', canaryUsername(0)).executeTakeFirstOrThrow();
    expect(canary).toMatchObject({ bot: 1, discoverable: 0 });
    const statuses = await s.ctx.db.selectFrom('statuses').select(['visibility', 'deleted_at']).where('account_id', '=', canary.id).execute();
    expect(statuses.length).toBeGreaterThan(0);
    expect(new Set(statuses.map((x) => x.visibility))).toEqual(new Set(['private']));
    // Every test status is deleted once read back (the one of a round in flight may not be yet).
    expect(statuses.filter((x) => x.deleted_at === null).length).toBeLessThanOrEqual(1);
    // Not in the public timeline, not in account search.
    const pub = (await (await fetch(`${s.url}/api/v1/timelines/public`)).json()) as unknown[];
    expect(pub).toEqual([]);
    // Only one live token: the one this engine made at start.
    const tokens = await s.ctx.db.selectFrom('oauth_tokens').select('id').where('account_id', '=', canary.id).where('revoked_at', 'is', null).execute();
    expect(tokens).toHaveLength(1);
    // The probe results are stored and exported as metrics.
    const rows = await s.ctx.db.selectFrom('probe_results').select(['probe', 'ok']).where('probe', '=', 'posting').execute();
    expect(rows.length).toBeGreaterThan(0);
    const metrics = await (await fetch(`${s.url}/metrics`)).text();
    expect(metrics).toMatch(/starling_probe_latency_seconds\{[^}]*probe="posting"[^}]*\} \d/);
  });
});

describe("the API's objectives on the page", () => {
  it('calls the API slow, not failing, when its requests burn the latency objective', async () => {
    // Every request slower than 1 µs: all of them burn the latency objective; none is a 5xx.
    const s = await start({ ops: { probeIntervalSeconds: 0.2, staleAfterSeconds: 5, slo: { latencyThresholdMs: 0.001 } } });
    for (let i = 0; i < 30; i++) expect((await fetch(`${s.url}/api/v1/timelines/public`)).status).toBe(200);
    const incident = await eventually(async () => s.ops.summary().incidents.find((x) => x.components.includes('api')) ?? null, 15_000);
    expect(incident.name).toBe('API is slow');
    const api = s.ops.summary().components.find((c) => c.id === 'api')!;
    expect(api.status).toBe('degraded_performance');
    expect(s.app.slo.evaluate().find((x) => x.name === 'availability')!.alert).toBeNull();
  });
});

describe('never claims more than it knows', () => {
  it('says "unknown" and since when once its probes stop reporting', async () => {
    const s = await start({ ops: { probeIntervalSeconds: 0.2, staleAfterSeconds: 1 } });
    await fresh(s);
    expect(s.ops.summary().status.indicator).toBe('none');
    // The probes stop (the engine is stopped; the node keeps serving).
    await s.ops.stop();
    const last = s.ops.summary().freshness.last_probe_at!;
    const stale = await eventually(async () => (s.ops.summary().freshness.stale ? s.ops.summary() : null), 5000);
    expect(stale.status.indicator).toBe('unknown');
    expect(stale.status.description).toContain(last);
    expect(stale.freshness).toEqual({ last_probe_at: last, stale: true, stale_since: new Date(Date.parse(last) + 1000).toISOString() });
  });

  it('is unknown from the start when the engine is disabled', async () => {
    const s = await start({ ops: { enabled: false } });
    await new Promise((r) => setTimeout(r, 100));
    const summary = s.ops.summary();
    expect(summary.freshness.stale).toBe(true);
    expect(summary.freshness.last_probe_at).toBeNull();
    expect(summary.status.indicator).toBe('unknown');
    expect(s.ops.tickCount).toBe(0);
  });
});

describe('a restart', () => {
  it('keeps incidents, maintenance, uptime and latency history', async () => {
    const dir = tempDir();
    try {
      const a = await start({ ops: { probeIntervalSeconds: 0.2, staleAfterSeconds: 5 } }, dir.path);
      let incidentId: string;
      try {
        await fresh(a);
        const i = await a.ops.createIncident({ title: 'Planned test', body: 'Kept across restarts.', components: ['web'], author: 'tester' });
        incidentId = i.id;
        await a.ops.scheduleMaintenance({ title: 'Later', components: ['api'], startsAt: new Date(Date.now() + 3600_000).toISOString(), endsAt: new Date(Date.now() + 7200_000).toISOString() });
        await eventually(async () => a.ops.latency('posting').length >= 3);
      } finally {
        await a.close();
      }
      const b = await start({ ops: { probeIntervalSeconds: 0.2, staleAfterSeconds: 5 } }, dir.path);
      try {
        // From the database, before (and whatever) its own probes say.
        expect(b.ops.summary().incidents.map((x) => x.id)).toContain(incidentId!);
        expect(b.ops.summary().incidents.find((x) => x.id === incidentId)!.incident_updates[0].author).toBe('tester');
        expect(b.ops.summary().scheduled_maintenances.map((m) => m.name)).toContain('Later');
        expect(b.ops.latency('posting').length).toBeGreaterThanOrEqual(3);
        const today = b.ops.uptime('posting', 90);
        expect(today).toHaveLength(90);
        expect(today[89].uptime).not.toBeNull();
        expect(today[0].uptime).toBeNull();
      } finally {
        await b.close();
      }
    } finally {
      dir.remove();
    }
  });
});
