/**
 * Operators annotate the status page: the admin API (admin role and admin
 * scopes, zod-validated input, Mastodon errors, never a 500) and the
 * `starling incident` CLI run as a real child process on the node's data
 * folder while the node runs — the node picks its changes up by itself.
 */
import { execFile } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { childDatabaseEnv, createUser, eventually, startTestServer, type TestServer, type TestUser } from '../helpers/server.js';
import type { IncidentView, MaintenanceView } from '../../src/ops/model.js';
import { issueToken } from '../../src/services/auth.js';

const run = promisify(execFile);
const BIN = resolve(import.meta.dirname, '../../bin/starling.js');
const SECRET = 'admin-test-secret';

interface Hit {
  headers: Record<string, string | string[] | undefined>;
  raw: string;
  body: { event: string; incident: IncidentView | null };
}

let server: TestServer;
let hookServer: Server;
let hookUrl: string;
const hits: Hit[] = [];
let admin: TestUser;
let readOnlyAdmin: TestUser;
let user: TestUser;

beforeAll(async () => {
  hookServer = createServer((req, res) => {
    let raw = '';
    req.on('data', (d) => (raw += d));
    req.on('end', () => {
      hits.push({ headers: req.headers, raw, body: JSON.parse(raw) });
      res.writeHead(200).end('ok');
    });
  });
  await new Promise<void>((r) => hookServer.listen(0, '127.0.0.1', () => r()));
  hookUrl = `http://127.0.0.1:${(hookServer.address() as { port: number }).port}/alerts`;
  server = await startTestServer({ ops: { probeIntervalSeconds: 0.2, staleAfterSeconds: 10, alertWebhooks: [{ url: hookUrl, kind: 'json', secret: SECRET }] } });
  admin = await createUser(server.url, 'ops_admin', { scopes: 'read write admin:read admin:write' });
  // An admin whose token may only read (registration itself needs write, so the narrow token is issued after).
  const reader = await createUser(server.url, 'ops_reader', { scopes: 'read write admin:read admin:write' });
  const tokenRow = await server.ctx.db.selectFrom('oauth_tokens').select('application_id').where('account_id', '=', reader.id).executeTakeFirstOrThrow();
  const narrow = await issueToken(server.ctx, { applicationId: tokenRow.application_id, accountId: reader.id, scopes: ['read', 'admin:read'] });
  readOnlyAdmin = { ...reader, token: narrow.access_token };
  user = await createUser(server.url, 'ops_user', { scopes: 'read write admin:read admin:write' });
  await server.ctx.db.updateTable('users').set({ role: 'admin' }).where('account_id', 'in', [admin.id, readOnlyAdmin.id]).execute();
});

afterAll(async () => {
  await server?.stop();
  await new Promise((r) => hookServer?.close(r));
});

const API = '/api/v1/admin/starling';

async function call(method: string, path: string, token?: string, body?: unknown): Promise<{ status: number; json: any }> {
  const res = await fetch(`${server.url}${API}${path}`, {
    method,
    headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, json: text ? JSON.parse(text) : null };
}

const signed = (h: Hit) => {
  const ts = String(h.headers['x-starling-timestamp']);
  return h.headers['x-starling-signature'] === `sha256=${createHmac('sha256', SECRET).update(`${ts}.${h.raw}`).digest('hex')}`;
};

describe('admin API', () => {
  it('needs an admin with the admin scopes', async () => {
    expect((await call('GET', '/incidents')).status).toBe(401);
    expect((await call('GET', '/incidents', 'not-a-token')).status).toBe(401);
    const notAdmin = await call('GET', '/incidents', user.token);
    expect(notAdmin.status).toBe(403);
    expect(notAdmin.json).toEqual({ error: expect.any(String) });
    expect((await call('GET', '/incidents', readOnlyAdmin.token)).status).toBe(200);
    expect((await call('POST', '/incidents', readOnlyAdmin.token, { title: 'x', body: 'y' })).status).toBe(403);
    expect((await call('GET', '/maintenances', admin.token)).status).toBe(200);
  });

  it('answers bad input with Mastodon errors, never a 500, and changes nothing', async () => {
    // Operators' incidents only: detection may open an automatic one meanwhile on a busy machine.
    const operators = () => server.ops.listIncidents().filter((i) => i.source === 'operator').length;
    const before = operators();
    const cases: [string, string, unknown, number][] = [
      ['POST', '/incidents', {}, 400],
      ['POST', '/incidents', { title: '' }, 422],
      ['POST', '/incidents', { title: 'x'.repeat(201) }, 422],
      ['POST', '/incidents', { title: 'ok', status: 'exploded' }, 422],
      ['POST', '/incidents', { title: 'ok', impact: 'apocalyptic' }, 422],
      ['POST', '/incidents', { title: 'ok', components: ['posting', 'coffee'] }, 422],
      ['POST', '/incidents', { title: 'ok', components: 42 }, 422],
      ['POST', '/incidents', { title: ['a', 'b'] }, 422],
      ['POST', '/incidents', '{"title": ', 400],
      ['POST', '/incidents/abc/updates', { body: 'x' }, 404],
      ['POST', '/incidents/1999999999999999999/updates', { body: 'x' }, 404],
      ['POST', '/incidents/1999999999999999999/resolve', {}, 404],
      ['GET', '/incidents/1999999999999999999', undefined, 404],
      ['GET', '/incidents?limit=abc', undefined, 422],
      ['POST', '/maintenances', { title: 'm', components: ['search'], starts_at: 'tomorrow', ends_at: 'later' }, 422],
      ['POST', '/maintenances', { title: 'm', components: [], starts_at: '2030-01-01T00:00:00Z', ends_at: '2030-01-01T01:00:00Z' }, 422],
      ['POST', '/maintenances', { title: 'm', components: ['search'], starts_at: '2030-01-01T02:00:00Z', ends_at: '2030-01-01T01:00:00Z' }, 422],
      ['DELETE', '/maintenances/1999999999999999999', undefined, 404],
      ['DELETE', '/maintenances/nope', undefined, 404],
    ];
    for (const [method, path, body, status] of cases) {
      const r = await call(method, path, admin.token, body);
      expect({ method, path, body, status: r.status }).toEqual({ method, path, body, status });
      expect(typeof r.json.error).toBe('string');
    }
    expect(operators()).toBe(before);
  });

  it('opens, updates and resolves an incident: on the page at once, alerted, signed, stored', async () => {
    const created = await call('POST', '/incidents', admin.token, { title: 'Slow search', body: 'Search answers slowly; we are looking into it.', impact: 'minor', components: ['search'] });
    expect(created.status).toBe(200);
    const incident = created.json as IncidentView;
    expect(incident).toMatchObject({ name: 'Slow search', status: 'investigating', impact: 'minor', source: 'operator', components: ['search'] });
    expect(incident.incident_updates[0]).toMatchObject({ author: 'ops_admin', body: 'Search answers slowly; we are looking into it.' });
    expect(server.ops.summary().incidents.map((i) => i.id)).toContain(incident.id);

    const alert = await eventually(async () => hits.find((h) => h.body.incident?.id === incident.id && h.body.event === 'incident.opened'));
    expect(signed(alert)).toBe(true);
    const row = await server.ctx.db.selectFrom('incidents').selectAll().where('id', '=', incident.id).executeTakeFirst();
    expect(row).toMatchObject({ title: 'Slow search', source: 'operator', status: 'investigating' });

    const updated = await call('POST', `/incidents/${incident.id}/updates`, admin.token, { status: 'identified', body: 'A missing index; adding it.' });
    expect(updated.status).toBe(200);
    expect(updated.json.status).toBe('identified');
    const resolved = await call('POST', `/incidents/${incident.id}/resolve`, admin.token, { body: 'The index is in place.' });
    expect(resolved.status).toBe(200);
    expect(resolved.json.incident_updates.map((u: { status: string }) => u.status)).toEqual(['resolved', 'identified', 'investigating']);
    expect((await call('POST', `/incidents/${incident.id}/resolve`, admin.token, {})).status).toBe(422);
    expect(server.ops.pastIncidents(5).map((i) => i.id)).toContain(incident.id);
    expect(server.ops.summary().incidents.map((i) => i.id)).not.toContain(incident.id);
    const list = await call('GET', '/incidents', readOnlyAdmin.token);
    expect(list.json.map((i: IncidentView) => i.id)).toContain(incident.id);
    expect((await call('GET', `/incidents/${incident.id}`, readOnlyAdmin.token)).json.status).toBe('resolved');
    await eventually(async () => hits.some((h) => h.body.incident?.id === incident.id && h.body.event === 'incident.resolved'));
    const updates = await server.ctx.db.selectFrom('incident_updates').select(['status', 'author']).where('incident_id', '=', incident.id).orderBy('id').execute();
    expect(updates).toEqual([
      { status: 'investigating', author: 'ops_admin' },
      { status: 'identified', author: 'ops_admin' },
      { status: 'resolved', author: 'ops_admin' },
    ]);
  });

  it('schedules maintenance: the component shows under maintenance, and alerts about it alone are silenced', async () => {
    const now = Date.now();
    const created = await call('POST', '/maintenances', admin.token, {
      title: 'Search index rebuild',
      body: 'Search may be unavailable.',
      components: 'search,notifications',
      starts_at: new Date(now - 60_000).toISOString(),
      ends_at: new Date(now + 3600_000).toISOString(),
    });
    expect(created.status).toBe(200);
    const m = created.json as MaintenanceView;
    expect(m).toMatchObject({ name: 'Search index rebuild', status: 'in_progress', components: ['search', 'notifications'] });
    const summary = server.ops.summary();
    expect(summary.components.find((c) => c.id === 'search')!.status).toBe('under_maintenance');
    expect(summary.scheduled_maintenances.map((x) => x.id)).toContain(m.id);
    // ('maintenance' overall unless something else is wrong at the same time: a loaded test machine can make a probe slow.)
    expect(summary.status.indicator).not.toBe('none');

    // An incident on covered components only: on the page, but no alert.
    const quiet = (await call('POST', '/incidents', admin.token, { title: 'Reindexing', body: 'Expected.', components: ['search'] })).json as IncidentView;
    // One that also names an uncovered component: alerted.
    const loud = (await call('POST', '/incidents', admin.token, { title: 'Posting too', body: 'Not expected.', components: ['search', 'posting'] })).json as IncidentView;
    await eventually(async () => hits.some((h) => h.body.incident?.id === loud.id));
    await new Promise((r) => setTimeout(r, 300));
    expect(hits.some((h) => h.body.incident?.id === quiet.id)).toBe(false);
    await call('POST', `/incidents/${quiet.id}/resolve`, admin.token, {});
    await call('POST', `/incidents/${loud.id}/resolve`, admin.token, {});

    const cancelled = await call('DELETE', `/maintenances/${m.id}`, admin.token);
    expect(cancelled.status).toBe(200);
    expect(server.ops.summary().components.find((c) => c.id === 'search')!.status).toBe('operational');
    expect(server.ops.summary().scheduled_maintenances.map((x) => x.id)).not.toContain(m.id);
    const row = await server.ctx.db.selectFrom('maintenances').selectAll().where('id', '=', m.id).executeTakeFirstOrThrow();
    expect(row.cancelled_at).not.toBeNull();
  });
});

describe('starling incident (CLI)', () => {
  const starling = async (...args: string[]) =>
    run(process.execPath, [BIN, 'incident', ...args, '--data-dir', server.dataDir], {
      env: { PATH: process.env.PATH, STARLING_ALERT_WEBHOOK: hookUrl, STARLING_ALERT_WEBHOOK_SECRET: SECRET, ...(await childDatabaseEnv(server.dataDir)) },
    }).then(
      (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
      (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
    );

  it('creates, updates and resolves incidents that the running node shows, and alerts itself', async () => {
    const created = await starling('create', '--title', 'Database failover', '--status', 'identified', '--impact', 'major', '--components', 'database,posting', '--body', 'The primary is being replaced.', '--author', 'oncall');
    expect(created.code, created.stderr).toBe(0);
    const id = /created incident (\d+)/.exec(created.stdout)?.[1];
    expect(id).toBeDefined();
    expect(created.stdout).toContain('alerted 1 webhook');
    const alert = hits.find((h) => h.body.incident?.id === id)!;
    expect(alert.body.event).toBe('incident.opened');
    expect(signed(alert)).toBe(true);

    // The node takes it in from the database by itself.
    const shown = await eventually(async () => server.ops.summary().incidents.find((i) => i.id === id), 10_000);
    expect(shown).toMatchObject({ name: 'Database failover', status: 'identified', impact: 'major', source: 'operator', components: ['database', 'posting'] });
    expect(shown.incident_updates[0].author).toBe('oncall');

    expect((await starling('update', id!, '--status', 'monitoring', '--body', 'The new primary is serving.', '--author', 'oncall')).code).toBe(0);
    await eventually(async () => server.ops.summary().incidents.find((i) => i.id === id)?.status === 'monitoring', 10_000);
    const resolved = await starling('resolve', id!, '--author', 'oncall');
    expect(resolved.code).toBe(0);
    await eventually(async () => server.ops.pastIncidents(10).some((i) => i.id === id), 10_000);
    expect(server.ops.pastIncidents(10).find((i) => i.id === id)!.incident_updates.map((u) => u.status)).toEqual(['resolved', 'monitoring', 'identified']);

    const listed = await starling('list');
    expect(listed.stdout).toContain(id!);
  }, 90_000);

  it('schedules maintenance the node shows, and refuses bad input clearly', async () => {
    const starts = new Date(Date.now() + 3600_000).toISOString();
    const ends = new Date(Date.now() + 7200_000).toISOString();
    const made = await starling('maintenance', '--title', 'Kernel upgrade', '--starts', starts, '--ends', ends, '--components', 'api,web');
    expect(made.code).toBe(0);
    const id = /scheduled maintenance (\d+)/.exec(made.stdout)?.[1];
    const shown = await eventually(async () => server.ops.summary().scheduled_maintenances.find((m) => m.id === id), 10_000);
    expect(shown).toMatchObject({ name: 'Kernel upgrade', status: 'scheduled', components: ['api', 'web'] });

    const bad = await starling('create', '--title', 'x', '--components', 'posting,coffee');
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('unknown component: coffee');
    const badStatus = await starling('update', '1999999999999999999', '--body', 'x');
    expect(badStatus.code).toBe(1);
    expect(badStatus.stderr).toContain('no incident');
    const backwards = await starling('maintenance', '--title', 'x', '--starts', ends, '--ends', starts, '--components', 'api');
    expect(backwards.code).toBe(1);
    expect(backwards.stderr).toContain('end after');
  }, 90_000);
});
