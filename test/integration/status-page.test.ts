/**
 * The status page over real HTTP: content types and headers; staying up
 * when the database is really gone (its connection closed) — from memory,
 * from the snapshot on disk after a restart, and as a static copy published
 * continuously and by `starling status publish`; webhook subscriptions with
 * confirmation and signed deliveries to a receiver on 127.0.0.1.
 *
 * Most of these tests drive the page through a fake StatusSource (a stand-in
 * for the ops engine, test/helpers/status-fake.ts) whose "probe" is a real
 * database write; the last block runs the real ops engine against a real fault.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createHash, createHmac } from 'node:crypto';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { onPostgres, startTestServer, tempDir, eventually, type TestServer } from '../helpers/server.js';
import { FakeStatusSource, demoStatus } from '../helpers/status-fake.js';
import { databaseWriteCheck } from '../../src/ops/readiness.js';
import { configureSubscriptions, notifySubscribers, signPayload } from '../../src/ops/subscriptions.js';
import type { IncidentView, StatusSummary } from '../../src/ops/model.js';

const run = promisify(execFile);
const BIN = resolve(import.meta.dirname, '../../bin/starling.js');

function starling(...args: string[]) {
  return run(process.execPath, [BIN, ...args], { env: { PATH: process.env.PATH } }).then(
    (r) => ({ code: 0, ...r }),
    (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
  );
}

const get = (url: string) => fetch(url, { redirect: 'manual' });
const summaryOf = async (base: string) => (await (await get(`${base}/status/api/summary.json`)).json()) as StatusSummary;

describe('status page over HTTP', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ ops: { enabled: false } });
  });
  afterAll(async () => {
    await server?.stop();
  });

  it('with no data at all answers 200 and says the status is unknown', async () => {
    server.app.statusPage.setSource(() => null);
    const res = await get(`${server.url}/status`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(res.headers.get('content-security-policy')).toBe("default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:");
    expect(res.headers.get('cache-control')).toBe('public, max-age=10');
    const html = await res.text();
    expect(html).toContain('Status unknown');
    expect(html).not.toMatch(/<script/i);
    expect((await summaryOf(server.url)).status.indicator).toBe('unknown');
  });

  it('serves the summary exactly, the Statuspage documents (also under v2), HTML and Atom', async () => {
    const fake = demoStatus(new Date(), { id: 'starling', name: 'Starling', url: `${server.url}/status` });
    server.app.statusPage.setSource(() => fake);

    const res = await get(`${server.url}/status/api/summary.json`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/json; charset=utf-8');
    expect(res.headers.get('access-control-allow-origin')).toBe('*');
    expect(await res.json()).toEqual(fake.summary());
    expect(await (await get(`${server.url}/status/api/v2/summary.json`)).json()).toEqual(fake.summary());

    const docs: Record<string, string[]> = {
      'status.json': ['page', 'status'],
      'components.json': ['page', 'components'],
      'incidents.json': ['page', 'incidents'],
      'incidents/unresolved.json': ['page', 'incidents'],
      'scheduled-maintenances.json': ['page', 'scheduled_maintenances'],
      'scheduled-maintenances/upcoming.json': ['page', 'scheduled_maintenances'],
      'scheduled-maintenances/active.json': ['page', 'scheduled_maintenances'],
    };
    for (const [name, keys] of Object.entries(docs)) {
      for (const prefix of ['api', 'api/v2']) {
        const r = await get(`${server.url}/status/${prefix}/${name}`);
        expect(r.status, name).toBe(200);
        expect(Object.keys((await r.json()) as object)).toEqual(keys);
      }
    }
    const incidents = (await (await get(`${server.url}/status/api/incidents.json`)).json()) as { incidents: IncidentView[] };
    expect(incidents.incidents.map((i) => i.name)).toContain('Streaming connections dropped');

    const page = await get(`${server.url}/status/`);
    expect(page.status).toBe(200);
    const html = await page.text();
    for (const name of ['API', 'Posting', 'Database', 'Event bus', 'Posting is slow: database writes failing', 'Database upgrade to PostgreSQL 16']) expect(html).toContain(name);

    const feed = await get(`${server.url}/status/feed.atom`);
    expect(feed.status).toBe(200);
    expect(feed.headers.get('content-type')).toBe('application/atom+xml; charset=utf-8');
    const xml = await feed.text();
    expect(xml).toMatch(/^<\?xml version="1.0" encoding="utf-8"\?>\n<feed xmlns="http:\/\/www.w3.org\/2005\/Atom">/);
    expect(xml).toContain(`<link rel="self" type="application/atom+xml" href="${server.url}/status/feed.atom"/>`);
    expect(xml).toContain(`<id>${server.url}/status#incident-1001</id>`);
  });

  it('keeps answering with the last known data when the engine fails', async () => {
    const fake = new FakeStatusSource();
    fake.setState('search', 'partial_outage', 'Search is slow');
    server.app.statusPage.setSource(() => fake);
    expect((await summaryOf(server.url)).status.indicator).toBe('major');
    fake.failing = true;
    const res = await get(`${server.url}/status`);
    expect(res.status).toBe(200);
    const html = await res.text();
    expect(html).toContain('Partial outage');
    expect(html).toContain('served from the last snapshot');
    expect((await summaryOf(server.url)).status.indicator).toBe('major');
  });
});

/**
 * A stand-in for the ops engine: every 50 ms a real database write (the
 * readiness probe); when it fails, the database and posting go to
 * major_outage and an incident opens, as detection would.
 */
function miniEngine(server: TestServer) {
  const fake = new FakeStatusSource(() => new Date(), { id: 'starling', name: 'Starling', url: `${server.url}/status` });
  let incident: IncidentView | null = null;
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      const r = await databaseWriteCheck(server.ctx);
      fake.probed();
      if (!r.ok && !incident) {
        fake.setState('database', 'major_outage', `Database write probe failed: ${r.error}`);
        fake.setState('posting', 'major_outage', 'Posting needs the database');
        incident = fake.openIncident('Database unavailable: posting is down', ['database', 'posting'], `Automatic detection: the database write probe failed (${r.error}).`);
        await server.app.statusPage.refresh();
      }
      await new Promise((res) => setTimeout(res, 50));
    }
  })();
  return {
    fake,
    async stop() {
      stopped = true;
      await loop;
    },
  };
}

// SQLite only (skipped in the postgres test project): the outage is made by closing the SQLite handle.
describe.skipIf(onPostgres)('with the database really unavailable', () => {
  let server: TestServer;
  let engine: ReturnType<typeof miniEngine>;
  // Made when the tests run, not when they are collected: skipped on PostgreSQL, nothing would remove them.
  let publish: ReturnType<typeof tempDir>, later: ReturnType<typeof tempDir>, cliData: ReturnType<typeof tempDir>, out: ReturnType<typeof tempDir>;

  beforeAll(async () => {
    [publish, later, cliData, out] = [tempDir('starling-publish-'), tempDir('starling-later-'), tempDir('starling-cli-'), tempDir('starling-out-')];
    server = await startTestServer({ ops: { enabled: false, statusPublishDir: publish.path } });
    engine = miniEngine(server);
    server.app.statusPage.setSource(() => engine.fake);
  });
  afterAll(async () => {
    await engine?.stop();
    await server?.stop();
    for (const d of [publish, later, cliData, out]) d?.remove();
  });

  it('publishes the healthy state first: snapshot in the data folder, static copy in the publish folder', async () => {
    await eventually(async () => existsSync(join(server.dataDir, 'status-snapshot.json')) && existsSync(join(publish.path, 'index.html')));
    expect(readFileSync(join(publish.path, 'index.html'), 'utf8')).toContain('All Systems Operational');
    expect(JSON.parse(readFileSync(join(publish.path, 'api/summary.json'), 'utf8')).status.indicator).toBe('none');
  });

  it('shows the outage on /status, in summary.json, in the feed and in the static copy after the connection is closed', async () => {
    // The fault, for real: the server's own SQLite connection is closed under it.
    server.database.sqlite.close();
    const ready = await get(`${server.url}/readyz`);
    expect(ready.status).toBe(503);
    expect(((await ready.json()) as { reason: string }).reason).toMatch(/database/);

    const summary = await eventually(async () => {
      const s = await summaryOf(server.url);
      return s.incidents.length ? s : null;
    });
    expect(summary.status.indicator).toBe('critical');
    expect(summary.components.find((c) => c.id === 'database')!.status).toBe('major_outage');
    expect(summary.incidents[0].name).toBe('Database unavailable: posting is down');
    expect(summary.incidents[0].incident_updates[0].body).toMatch(/database connection is not open|not open/i);

    const page = await get(`${server.url}/status`);
    expect(page.status).toBe(200);
    const html = await page.text();
    expect(html).toContain('Major Service Outage');
    expect(html).toContain('Database unavailable: posting is down');
    expect(html).toMatch(/<h3>Database<\/h3><span class="state s-critical"><span class="dot" aria-hidden="true"><\/span>Major outage<\/span>/);

    const feed = await (await get(`${server.url}/status/feed.atom`)).text();
    expect(feed).toContain('<title>Database unavailable: posting is down</title>');

    // The static copy, written on change by the running node.
    await eventually(async () => readFileSync(join(publish.path, 'index.html'), 'utf8').includes('Database unavailable: posting is down'));
    const copy = readFileSync(join(publish.path, 'index.html'), 'utf8');
    expect(copy).toContain('Major Service Outage');
    expect(copy).toContain('href="api/summary.json"');
    expect(JSON.parse(readFileSync(join(publish.path, 'api/summary.json'), 'utf8')).incidents[0].name).toBe('Database unavailable: posting is down');
    expect(readFileSync(join(publish.path, 'feed.atom'), 'utf8')).toContain('Database unavailable: posting is down');
    // And the snapshot on disk carries it too.
    await eventually(async () => readFileSync(join(server.dataDir, 'status-snapshot.json'), 'utf8').includes('Database unavailable'));
  });

  it('a node restarted with no engine data and its database down answers from the snapshot on disk', async () => {
    copyFileSync(join(server.dataDir, 'status-snapshot.json'), join(later.path, 'status-snapshot.json'));
    const again = await startTestServer({ ops: { enabled: false } }, later.path);
    try {
      again.app.statusPage.setSource(() => null);
      again.database.sqlite.close();
      expect((await get(`${again.url}/readyz`)).status).toBe(503);
      const res = await get(`${again.url}/status`);
      expect(res.status).toBe(200);
      const html = await res.text();
      expect(html).toContain('Database unavailable: posting is down');
      expect(html).toContain('served from the last snapshot');
      expect((await summaryOf(again.url)).incidents[0].name).toBe('Database unavailable: posting is down');
    } finally {
      await again.stop();
    }
  });

  it('`starling status publish` writes a complete copy from the snapshot when the database cannot be read', async () => {
    copyFileSync(join(server.dataDir, 'status-snapshot.json'), join(cliData.path, 'status-snapshot.json'));
    writeFileSync(join(cliData.path, 'starling.sqlite'), 'this is not a database, it is what is left of one');

    const fromDb = await starling('status', 'publish', '--to', out.path, '--from', 'database', '--data-dir', cliData.path);
    expect(fromDb.code).not.toBe(0);
    expect(fromDb.stderr).toMatch(/cannot read the status from the database/);

    // A stale snapshot (stale after 1 s here) is not trusted as current: the database is tried, fails, and the snapshot is used, marked unknown.
    writeFileSync(join(cliData.path, 'config.json'), JSON.stringify({ ops: { staleAfterSeconds: 1 } }));
    await new Promise((r) => setTimeout(r, 1200));
    const auto = await starling('status', 'publish', '--to', out.path, '--data-dir', cliData.path, '--config', join(cliData.path, 'config.json'));
    expect(auto.code).toBe(0);
    expect(auto.stderr).toMatch(/note: database not used/);
    expect(auto.stdout).toMatch(/from the snapshot: unknown since/);
    const html = readFileSync(join(out.path, 'index.html'), 'utf8');
    expect(html).toContain('Database unavailable: posting is down');
    expect(html).toMatch(/Status unknown since <time/);
    expect(html).toContain('static copy of the status page');
    const summary = JSON.parse(readFileSync(join(out.path, 'api/summary.json'), 'utf8')) as StatusSummary;
    expect(summary.status.indicator).toBe('unknown');
    expect(summary.incidents[0].name).toBe('Database unavailable: posting is down');
    for (const f of ['api/v2/summary.json', 'api/status.json', 'api/components.json', 'api/incidents.json', 'api/scheduled-maintenances.json']) expect(existsSync(join(out.path, f)), f).toBe(true);
    expect(readFileSync(join(out.path, 'feed.atom'), 'utf8')).toContain('Database unavailable: posting is down');
  });

  it('`starling status publish` with no snapshot and no database says "unknown", honestly', async () => {
    const empty = tempDir();
    try {
      mkdirSync(join(empty.path, 'site'));
      const r = await starling('status', 'publish', '--to', join(empty.path, 'site'), '--data-dir', join(empty.path, 'data'));
      expect(r.code).toBe(0);
      expect(r.stdout).toContain('from nothing');
      expect(readFileSync(join(empty.path, 'site', 'index.html'), 'utf8')).toContain('Status unknown');
    } finally {
      empty.remove();
    }
  });
});

interface Received {
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
}

function receiver(): Promise<{ url: string; got: Received[]; replies: number[]; server: Server }> {
  const got: Received[] = [];
  const replies: number[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      got.push({ path: req.url ?? '', headers: req.headers, body });
      res.writeHead(replies.shift() ?? 200).end('ok');
    });
  });
  return new Promise((r) => server.listen(0, '127.0.0.1', () => r({ url: `http://127.0.0.1:${(server.address() as { port: number }).port}`, got, replies, server })));
}

describe('webhook subscriptions', () => {
  let server: TestServer;
  let hook: Awaited<ReturnType<typeof receiver>>;
  let secret = '';
  const incident = (name: string): IncidentView => ({
    id: '42',
    name,
    status: 'investigating',
    impact: 'major',
    source: 'auto',
    components: ['posting'],
    created_at: new Date().toISOString(),
    updated_at: new Date().toISOString(),
    resolved_at: null,
    incident_updates: [{ id: '43', status: 'investigating', body: 'Posting fails.', created_at: new Date().toISOString(), author: 'system' }],
  });
  const deliveries = () => hook.got.filter((r) => r.path === '/hook' && JSON.parse(r.body).type !== 'subscription.confirm');

  beforeAll(async () => {
    server = await startTestServer({ ops: { enabled: false } });
    hook = await receiver();
    configureSubscriptions(server.ctx, { retryDelaysMs: [100] });
  });
  afterAll(async () => {
    await server?.stop();
    await new Promise((r) => hook?.server.close(r));
  });

  const post = (body: unknown, method = 'POST') =>
    fetch(`${server.url}/status/api/subscriptions`, { method, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

  it('rejects bad URLs, and URLs that do not accept the confirmation request', async () => {
    const bad = await post({ url: 'ftp://127.0.0.1/x' });
    expect(bad.status).toBe(422);
    expect(((await bad.json()) as { error: string }).error).toMatch(/http or https/);
    expect((await post({})).status).toBe(422);
    const dead = await post({ url: 'http://127.0.0.1:1/nobody-listens' });
    expect(dead.status).toBe(422);
    expect(((await dead.json()) as { error: string }).error).toMatch(/confirmation request/);
    expect(await server.ctx.db.selectFrom('status_subscribers').selectAll().execute()).toEqual([]);
    // On a public node, internal addresses are refused before anything is sent.
    configureSubscriptions(server.ctx, { allowPrivateTargets: false });
    const internal = await post({ url: `${hook.url}/hook` });
    expect(internal.status).toBe(422);
    expect(((await internal.json()) as { error: string }).error).toMatch(/public address/);
    configureSubscriptions(server.ctx, { allowPrivateTargets: true });
    expect(hook.got).toEqual([]);
  });

  it('sends a signed confirmation request; nothing is delivered until it is confirmed', async () => {
    const res = await post({ url: `${hook.url}/hook` });
    expect(res.status).toBe(202);
    expect(await res.json()).toMatchObject({ url: `${hook.url}/hook`, confirmed: false });
    expect(hook.got).toHaveLength(1);
    const confirm = hook.got[0];
    const body = JSON.parse(confirm.body) as { type: string; confirm_url: string; secret: string };
    expect(body.type).toBe('subscription.confirm');
    expect(body.confirm_url).toMatch(new RegExp(`^${server.url}/status/api/subscriptions/confirm\\?token=`));
    secret = body.secret;
    expect(confirm.headers['x-starling-signature']).toBe(signPayload(secret, confirm.headers['x-starling-timestamp'] as string, confirm.body));
    // Only the token's hash is stored.
    const token = new URL(body.confirm_url).searchParams.get('token')!;
    const row = (await server.ctx.db.selectFrom('status_subscribers').selectAll().executeTakeFirst())!;
    expect(row.confirm_token_hash).toBe(createHash('sha256').update(token).digest('hex'));
    expect(JSON.stringify(row)).not.toContain(token);
    expect(row.confirmed_at).toBeNull();

    expect(await notifySubscribers(server.ctx, { type: 'incident.opened', incident: incident('Before confirmation') })).toEqual({ subscribers: 0, delivered: 0, failed: 0 });
    expect((await get(`${server.url}/status/api/subscriptions/confirm?token=wrong`)).status).toBe(404);
    const ok = await get(body.confirm_url);
    expect(ok.status).toBe(200);
    expect(await ok.json()).toMatchObject({ confirmed: true, url: `${hook.url}/hook` });
    expect((await post({ url: `${hook.url}/hook` })).status).toBe(409);
  });

  it('delivers incident events signed with HMAC-SHA256 over "timestamp.body"', async () => {
    const result = await notifySubscribers(server.ctx, { type: 'incident.opened', incident: incident('Posting is failing') });
    expect(result).toEqual({ subscribers: 1, delivered: 1, failed: 0 });
    const d = deliveries().at(-1)!;
    const ts = d.headers['x-starling-timestamp'] as string;
    expect(Math.abs(Number(ts) - Date.now() / 1000)).toBeLessThan(60);
    // Checked as a receiver would, with nothing but the secret and node:crypto.
    expect(d.headers['x-starling-signature']).toBe(`sha256=${createHmac('sha256', secret).update(`${ts}.${d.body}`).digest('hex')}`);
    expect(d.headers['x-starling-event']).toBe('incident.opened');
    expect(d.headers['content-type']).toBe('application/json');
    const body = JSON.parse(d.body) as { type: string; incident: IncidentView; page: { url: string } };
    expect(body.type).toBe('incident.opened');
    expect(body.incident.name).toBe('Posting is failing');
    expect(body.page.url).toBe(`${server.url}/status`);
    // A tampered body does not verify.
    expect(signPayload(secret, ts, d.body.replace('failing', 'fine'))).not.toBe(d.headers['x-starling-signature']);
  });

  it('retries a failed delivery from memory, signed afresh', async () => {
    const before = deliveries().length;
    hook.replies.push(503);
    const result = await notifySubscribers(server.ctx, { type: 'incident.updated', incident: incident('Still failing') });
    expect(result.failed).toBe(1);
    await eventually(async () => deliveries().length === before + 2);
    const [first, retry] = deliveries().slice(-2);
    expect(JSON.parse(retry.body).id).toBe(JSON.parse(first.body).id);
    expect(retry.headers['x-starling-signature']).toBe(signPayload(secret, retry.headers['x-starling-timestamp'] as string, retry.body));
  });

  it('unsubscribes only with the secret or a signature made with it', async () => {
    const other = `${hook.url}/other`;
    expect((await post({ url: other })).status).toBe(202);
    const conf = JSON.parse(hook.got.filter((r) => r.path === '/other').at(-1)!.body) as { confirm_url: string; secret: string };
    expect((await fetch(conf.confirm_url, { method: 'POST' })).status).toBe(200);
    expect((await post({ url: other, secret: 'guess' }, 'DELETE')).status).toBe(403);
    const ts = String(Math.floor(Date.now() / 1000));
    expect((await post({ url: other, timestamp: ts, signature: signPayload('guess', ts, other) }, 'DELETE')).status).toBe(403);
    const del = await post({ url: other, timestamp: ts, signature: signPayload(conf.secret, ts, other) }, 'DELETE');
    expect(del.status).toBe(200);
    expect((await post({ url: other, secret: conf.secret }, 'DELETE')).status).toBe(404);
    const result = await notifySubscribers(server.ctx, { type: 'incident.updated', incident: incident('Only one subscriber left') });
    expect(result.subscribers).toBe(1);
  });

  it.skipIf(onPostgres)('still delivers when the database is gone (the subscriber list is kept in memory)', async () => {
    server.database.sqlite.close();
    expect((await get(`${server.url}/readyz`)).status).toBe(503);
    const result = await notifySubscribers(server.ctx, { type: 'incident.opened', incident: incident('Database unavailable') });
    expect(result).toEqual({ subscribers: 1, delivered: 1, failed: 0 });
    const d = deliveries().at(-1)!;
    expect(JSON.parse(d.body).incident.name).toBe('Database unavailable');
    expect(d.headers['x-starling-signature']).toBe(signPayload(secret, d.headers['x-starling-timestamp'] as string, d.body));
  });
});

describe.skipIf(onPostgres)('with the real ops engine and the database connection closed', () => {
  let server: TestServer;
  let publish: ReturnType<typeof tempDir>;

  beforeAll(async () => {
    publish = tempDir('starling-publish-engine-');
    server = await startTestServer({ ops: { probeIntervalSeconds: 0.2, staleAfterSeconds: 5, statusPublishDir: publish.path } });
    await eventually(async () => {
      const s = await summaryOf(server.url);
      return !s.freshness.stale && s.status.indicator === 'none' && s.components.length > 0;
    }, 20_000);
  });
  afterAll(async () => {
    await server?.stop();
    publish?.remove();
  });

  it('/status, summary.json, the feed and the static copy show the outage the engine detected', async () => {
    await eventually(async () => readFileSync(join(publish.path, 'index.html'), 'utf8').includes('All Systems Operational'), 10_000);
    server.database.sqlite.close();
    try {
      const summary = await eventually(async () => {
        const s = await summaryOf(server.url);
        const db = s.components.find((c) => c.id === 'database');
        return db && db.status !== 'operational' && s.incidents.some((i) => i.components.includes('database')) ? s : null;
      }, 30_000);
      const incident = summary.incidents.find((i) => i.components.includes('database'))!;
      expect(summary.status.indicator).not.toBe('none');

      const page = await get(`${server.url}/status`);
      expect(page.status).toBe(200);
      const html = await page.text();
      expect(html).toContain(incident.name.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;'));
      expect(html).not.toContain('All Systems Operational');
      expect(await (await get(`${server.url}/status/feed.atom`)).text()).toContain(`#incident-${incident.id}</id>`);

      // index.html is the last file of a copy to be written: once it shows the incident, the whole copy does.
      await eventually(async () => readFileSync(join(publish.path, 'index.html'), 'utf8').includes(`id="incident-${incident.id}"`), 10_000);
      expect(readFileSync(join(publish.path, 'index.html'), 'utf8')).not.toContain('All Systems Operational');
      expect(JSON.parse(readFileSync(join(publish.path, 'api/summary.json'), 'utf8')).incidents.some((i: IncidentView) => i.id === incident.id)).toBe(true);
      expect(readFileSync(join(publish.path, 'feed.atom'), 'utf8')).toContain(`#incident-${incident.id}</id>`);
    } finally {
      server.database.reopen();
    }
  });
});
