/**
 * Real faults, real detection. A node runs its ops engine with fast rounds
 * (0.2 s) and an alert webhook on 127.0.0.1; the test then breaks a
 * dependency for real and watches the engine notice, open an incident by
 * itself, send a signed alert, and — once the fault is removed — move the
 * incident to monitoring and resolve it by itself.
 *
 * The database fault: the node's better-sqlite3 connection is closed under
 * it (`database.sqlite.close()`), so every query fails as it would when the
 * database went away. Tests run as root, so a chmod would not stop writes;
 * closing the connection fails reads and writes alike and can be undone with
 * `database.reopen()` (the same file, a fresh connection), which is also the
 * production recovery path. The bus fault: the in-process bus is closed, so
 * `connected` turns false and nothing is delivered any more.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, eventually, type TestServer } from '../helpers/server.js';
import type { IncidentView } from '../../src/ops/model.js';

interface Received {
  at: number;
  headers: Record<string, string | string[] | undefined>;
  raw: string;
  body: { event: string; incident: IncidentView | null; components: { id: string; status: string }[]; page: { url: string }; summary: string };
}

const SECRET = 'webhook-secret-for-tests';

function startReceiver(): Promise<{ server: Server; url: string; received: Received[] }> {
  const received: Received[] = [];
  const server = createServer((req, res) => {
    let raw = '';
    req.on('data', (d) => (raw += d));
    req.on('end', () => {
      received.push({ at: Date.now(), headers: req.headers, raw, body: JSON.parse(raw) });
      res.writeHead(204).end();
    });
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      resolve({ server, url: `http://127.0.0.1:${port}/hook`, received });
    });
  });
}

function verify(r: Received): boolean {
  const ts = String(r.headers['x-starling-timestamp']);
  const sig = String(r.headers['x-starling-signature']);
  const expected = `sha256=${createHmac('sha256', SECRET).update(`${ts}.${r.raw}`).digest('hex')}`;
  return sig.length === expected.length && timingSafeEqual(Buffer.from(sig), Buffer.from(expected));
}

let server: TestServer;
let hook: Awaited<ReturnType<typeof startReceiver>>;

beforeAll(async () => {
  hook = await startReceiver();
  server = await startTestServer({
    ops: { probeIntervalSeconds: 0.2, staleAfterSeconds: 5, alertWebhooks: [{ url: hook.url, kind: 'json', secret: SECRET }] },
  });
  // Healthy first: every component operational on fresh data.
  await eventually(async () => {
    const s = server.ops.summary();
    return !s.freshness.stale && s.status.indicator === 'none' && s.components.every((c) => c.status === 'operational');
  }, 15_000);
});

afterAll(async () => {
  await server?.stop();
  await new Promise((r) => hook?.server.close(r));
});

describe('a database that goes away', () => {
  // Undo the fault even when an assertion fails before the test removes it, so
  // one failure does not leave the next test waiting on a closed database.
  afterEach(() => {
    if (!server.database.sqlite.open) server.database.reopen();
  });

  it('is detected, becomes an incident with a signed alert, and resolves by itself once it is back', async () => {
    const readyBefore = await fetch(`${server.url}/readyz`);
    expect(readyBefore.status).toBe(200);
    const transitionsBefore = server.ops.transitions.length;

    // The fault, for real: the node's database connection is gone.
    const faultAt = Date.now();
    server.database.sqlite.close();

    const ready = await fetch(`${server.url}/readyz`);
    expect(ready.status).toBe(503);
    expect(((await ready.json()) as { reason: string }).reason).toContain('database');

    // Degraded first (two failures in a row), then a major outage (three, or 30 s).
    await eventually(async () => server.ops.summary().components.find((c) => c.id === 'database')?.status === 'major_outage', 15_000);
    const db = server.ops.transitions.slice(transitionsBefore).filter((t) => t.component === 'database');
    expect(db.map((t) => t.to)).toEqual(['degraded_performance', 'major_outage']);
    const posting = server.ops.transitions.slice(transitionsBefore).filter((t) => t.component === 'posting');
    expect(posting.map((t) => t.to)).toContain('degraded_performance');

    // An incident opened by itself, listing what is affected, with the reason in words.
    const incident = await eventually(async () => server.ops.summary().incidents.find((i) => i.source === 'auto'), 15_000);
    console.log(`fault → incident opened: ${Date.parse(incident.created_at) - faultAt} ms (probe interval 0.2 s)`);
    expect(incident.status).toBe('investigating');
    expect(incident.components).toEqual(expect.arrayContaining(['database', 'posting']));
    expect(incident.name).toMatch(/failing/);
    expect(incident.incident_updates[0].author).toBe('system');
    expect(incident.incident_updates[0].body).toMatch(/database/i);

    // The page as a whole: a major outage on fresh data; dependents carry the reason.
    await eventually(async () => server.ops.summary().status.indicator === 'critical', 10_000);
    const summary = server.ops.summary();
    expect(summary.freshness.stale).toBe(false);
    const timelines = summary.components.find((c) => c.id === 'timelines')!;
    expect(['partial_outage', 'major_outage']).toContain(timelines.status);
    expect(summary.incidents.find((i) => i.id === incident.id)!.impact).toBe('critical');

    // A signed alert reached the webhook while the database was still down.
    const opened = await eventually(async () => hook.received.find((r) => r.body.event === 'incident.opened'), 10_000);
    expect(verify(opened)).toBe(true);
    expect(Math.abs(Number(opened.headers['x-starling-timestamp']) - Date.now() / 1000)).toBeLessThan(60);
    expect(opened.body.incident!.id).toBe(incident.id);
    // What was failing at that moment: whichever probe crossed its threshold first
    // (under load, the notifications probe can beat posting by a round).
    expect(opened.body.components.length).toBeGreaterThan(0);
    expect(opened.body.components.every((c) => c.status !== 'operational')).toBe(true);
    // Operators are told that posting is affected while the fault lasts: in the
    // opening alert, or in an update for the same incident.
    const namesPosting = await eventually(
      async () =>
        hook.received.find(
          (r) => r.body.incident?.id === incident.id && r.body.event !== 'incident.resolved' && r.body.components.some((c) => c.id === 'posting' && c.status !== 'operational'),
        ),
      10_000,
    );
    expect(verify(namesPosting)).toBe(true);
    expect(opened.body.page.url).toMatch(/\/status$/);
    console.log(`fault → signed alert received: ${opened.at - faultAt} ms`);
    // Tampering is detected: the signature covers the body.
    expect(verify({ ...opened, raw: opened.raw.replace('incident.opened', 'incident.resolved') })).toBe(false);

    // Remove the fault: the same file, a fresh connection.
    const fixedAt = Date.now();
    server.database.reopen();
    await eventually(async () => (await fetch(`${server.url}/readyz`)).status === 200, 10_000);

    const monitoring = await eventually(async () => {
      const i = server.ops.summary().incidents.find((x) => x.id === incident.id);
      return i?.status === 'monitoring' ? i : null;
    }, 15_000);
    expect(monitoring.incident_updates[0].body).toMatch(/recovered/);
    const resolved = await eventually(async () => server.ops.pastIncidents(10).find((x) => x.id === incident.id), 20_000);
    console.log(`fault removed → resolved: ${Date.now() - fixedAt} ms`);
    expect(resolved.status).toBe('resolved');
    expect(resolved.resolved_at).not.toBeNull();
    // Newest first: resolved, monitoring, then what detection saw while it got worse (all "investigating").
    const statuses = resolved.incident_updates.map((u) => u.status);
    expect(statuses.slice(0, 2)).toEqual(['resolved', 'monitoring']);
    expect(new Set(statuses.slice(2))).toEqual(new Set(['investigating']));
    expect(resolved.incident_updates.every((u) => u.author === 'system' && Date.parse(u.created_at) > 0)).toBe(true);
    expect(server.ops.summary().incidents.find((x) => x.id === incident.id)).toBeUndefined();
    expect(server.ops.summary().status.indicator).toBe('none');

    // Alerts for each step, all signed.
    await eventually(async () => hook.received.some((r) => r.body.event === 'incident.resolved' && r.body.incident?.id === incident.id), 10_000);
    const forIncident = hook.received.filter((r) => r.body.incident?.id === incident.id);
    expect(forIncident.every(verify)).toBe(true);
    expect(forIncident.map((r) => r.body.event)).toEqual(expect.arrayContaining(['incident.opened', 'incident.updated', 'incident.resolved']));

    // What happened while the database was down was kept in memory and written once it came back.
    const row = await eventually(async () => {
      const r = await server.ctx.db.selectFrom('incidents').selectAll().where('id', '=', incident.id).executeTakeFirst();
      return r?.status === 'resolved' ? r : null;
    }, 10_000);
    expect(JSON.parse(row.components)).toEqual(expect.arrayContaining(['database', 'posting']));
    const updates = await server.ctx.db.selectFrom('incident_updates').selectAll().where('incident_id', '=', incident.id).execute();
    expect(updates.map((u) => u.status)).toEqual(expect.arrayContaining(['investigating', 'monitoring', 'resolved']));
    const failures = await server.ctx.db.selectFrom('probe_results').select('id').where('probe', '=', 'database').where('ok', '=', 0).execute();
    expect(failures.length).toBeGreaterThan(0);

    // Uptime for today counts the outage; the posting latency series has points.
    const today = server.ops.uptime('database', 1)[0];
    expect(today.uptime).not.toBeNull();
    expect(today.uptime!).toBeLessThan(1);
    expect(today.worst).toBe('major_outage');
    expect(server.ops.latency('posting').length).toBeGreaterThan(3);

    // Metrics follow.
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    expect(metrics).toMatch(/starling_probe_success\{[^}]*probe="posting"[^}]*\} 1/);
    expect(metrics).toMatch(/starling_probe_runs_total\{[^}]*probe="database"[^}]*result="failure"[^}]*\} \d+/);
    expect(metrics).toMatch(/starling_component_state\{[^}]*component="database"[^}]*state="operational"[^}]*\} 1/);
  }, 90_000);
});

describe('an event bus that stops', () => {
  it('makes the node unready, takes the bus and streaming down and opens an incident', async () => {
    await eventually(async () => server.ops.summary().status.indicator === 'none', 20_000);
    const before = hook.received.length;
    const transitionsBefore = server.ops.transitions.length;

    await server.ctx.bus.close();
    const ready = await fetch(`${server.url}/readyz`);
    expect(ready.status).toBe(503);
    expect(((await ready.json()) as { reason: string }).reason).toContain('bus');

    await eventually(async () => server.ops.summary().components.find((c) => c.id === 'bus')?.status === 'major_outage', 20_000);
    const bus = server.ops.transitions.slice(transitionsBefore).filter((t) => t.component === 'bus');
    expect(bus.map((t) => t.to)).toEqual(['degraded_performance', 'major_outage']);
    const streaming = server.ops.summary().components.find((c) => c.id === 'streaming')!;
    expect(['partial_outage', 'major_outage']).toContain(streaming.status);
    expect(streaming.reason).toMatch(/event bus unavailable|stream/);

    const incident = await eventually(async () => server.ops.summary().incidents.find((i) => i.source === 'auto' && i.components.includes('bus')), 10_000);
    expect(incident.status).toBe('investigating');
    const alert = await eventually(async () => hook.received.slice(before).find((r) => r.body.event === 'incident.opened' && r.body.incident?.id === incident.id), 10_000);
    expect(verify(alert)).toBe(true);
    // Posting itself still works: the posts are stored, only live delivery is gone.
    expect(server.ops.summary().components.find((c) => c.id === 'posting')!.status).toBe('operational');
  }, 60_000);
});
