/**
 * /readyz separates "can serve" from "can write" (src/ops/readiness.ts), on real servers and real databases:
 * - writes that fail for real (SQLite: another connection holds the write lock; PostgreSQL: the database turned
 *   read-only with default_transaction_read_only, as a standby answers during a failover) leave the node ready
 *   (200, writable false) while `?require=write` and the writes themselves get 503 + Retry-After with Mastodon's
 *   error JSON, and reads are served;
 * - reads failing within the grace period keep it ready; past it (0 on SQLite by default) it is unready;
 * - draining makes it unready at once; bad input is a 400.
 */
import { afterAll, describe, expect, it } from 'vitest';
import SQLite from 'better-sqlite3';
import postgres from 'postgres';
import { createUser, eventually, onPostgres, startTestServer, type TestServer } from '../helpers/server.js';

interface Ready {
  status: string;
  mode?: string;
  writable?: boolean;
  reason?: string;
  error?: string;
  checks?: { database: { ok: boolean; error?: string }; database_write: { ok: boolean; error?: string }; bus: { ok: boolean } };
  database_failing_since?: string | null;
  ops?: { enabled: boolean; leader: boolean; leader_node: number | null; election?: string };
}

async function ready(url: string, query = ''): Promise<{ status: number; body: Ready }> {
  const res = await fetch(`${url}/readyz${query}`);
  return { status: res.status, body: (await res.json()) as Ready };
}

async function post(url: string, token: string, status: string) {
  const res = await fetch(`${url}/api/v1/statuses`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ status }),
  });
  return { status: res.status, retryAfter: res.headers.get('retry-after'), body: (await res.json()) as { id?: string; error?: string } };
}

const servers: TestServer[] = [];
afterAll(async () => {
  for (const s of servers) await s.stop().catch(() => {});
});

/** What every "writes fail, reads work" case must show, whatever made the writes fail. */
async function expectServesButCannotWrite(server: TestServer, token: string, firstId: string) {
  // The write check fails: ready for reads, not writable. (Polled: the first heartbeat may still be in flight, and
  // on PostgreSQL the pool's first queries after its sessions were ended fail as well, within the grace period.)
  const unready: Ready[] = [];
  const r = await eventually(async () => {
    const x = await ready(server.url);
    if (x.status !== 200) unready.push(x.body);
    return x.body.writable === false && x.body.checks?.database.ok ? x : null;
  }, 15_000);
  expect(unready).toEqual([]);
  expect(r.status).toBe(200);
  expect(r.body).toMatchObject({ status: 'ready', mode: 'writes-failing', writable: false, checks: { database: { ok: true }, database_write: { ok: false }, bus: { ok: true } } });
  expect(r.body.checks!.database_write.error).toBeTruthy();

  // Asking for writes: 503, with the reason.
  const w = await eventually(async () => {
    const x = await ready(server.url, '?require=write');
    return x.status === 503 ? x : null;
  }, 15_000);
  expect(w.body).toMatchObject({ status: 'not_writable', writable: false });
  expect(w.body.reason).toMatch(/database writes/);

  // A write gets the app's own 503 + Retry-After in Mastodon's error JSON (the breaker, then at once).
  const refused = await post(server.url, token, 'during the fault');
  expect(refused.status).toBe(503);
  expect(Number(refused.retryAfter)).toBeGreaterThan(0);
  expect(typeof refused.body.error).toBe('string');
  const fast = await eventually(async () => {
    const x = await post(server.url, token, 'refused by the open breaker');
    return x.status === 503 && server.ctx.writeGuard.breaker.state === 'open' ? x : null;
  }, 15_000);
  expect(fast.body.error).toBeTruthy();

  // Reads are served. (On PostgreSQL each pooled session the test ended fails once when next used, then reconnects:
  // polled until a dozen reads in a row succeed.)
  const read = async () => (await fetch(`${server.url}/api/v1/statuses/${firstId}`, { headers: { authorization: `Bearer ${token}` } })).status;
  await eventually(async () => {
    for (let i = 0; i < 12; i++) if ((await read()) !== 200) return false;
    return true;
  }, 15_000);
}

async function expectWritableAgain(server: TestServer, token: string) {
  await eventually(async () => (await ready(server.url, '?require=write')).status === 200, 20_000);
  const after = await eventually(async () => {
    const x = await post(server.url, token, 'after the fault');
    return x.status === 200 ? x : null;
  }, 20_000);
  expect(after.body.id).toBeTruthy();
  expect((await ready(server.url)).body).toMatchObject({ status: 'ready', mode: 'read-write', writable: true });
}

describe('readiness: serve versus write', () => {
  it('is ready and writable on a healthy node, and refuses a bad require parameter with a 400', async () => {
    const server = await startTestServer({ ops: { enabled: false } });
    servers.push(server);
    const r = await ready(server.url);
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ status: 'ready', mode: 'read-write', writable: true, checks: { database: { ok: true }, database_write: { ok: true } } });
    expect((await ready(server.url, '?require=write')).status).toBe(200);
    const bad = await fetch(`${server.url}/readyz?require=everything`);
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: string }).error).toMatch(/require/);
  });

  it('turns unready at once while draining (both questions), whatever the database says', async () => {
    const server = await startTestServer({ ops: { enabled: false }, shutdown: { drainDelaySeconds: 2 } });
    servers.push(server);
    expect((await ready(server.url)).status).toBe(200);
    const stopping = server.shutdown();
    try {
      const r = await ready(server.url);
      expect(r.status).toBe(503);
      expect(r.body).toMatchObject({ status: 'draining', writable: false });
      expect((await ready(server.url, '?require=write')).status).toBe(503);
    } finally {
      await stopping;
    }
  });

  // SQLite: another connection holds the write lock, so every write of the node gets SQLITE_BUSY (what a write
  // sees while a database cannot take writes), and reads go on (WAL).
  it.skipIf(onPostgres)('SQLite: stays ready while another connection holds the write lock; writes get 503', async () => {
    const server = await startTestServer({
      ops: { enabled: false },
      writes: { busyTimeoutMs: 50, breaker: { failures: 3, coolDownSeconds: 0.5 } },
      readOnly: { afterFailingSeconds: 600 },
    });
    servers.push(server);
    const ann = await createUser(server.url, 'ann');
    const first = await post(server.url, ann.token, 'before the lock');
    expect(first.status).toBe(200);
    const other = new SQLite(server.ctx.config.databaseFile);
    other.exec('BEGIN IMMEDIATE');
    try {
      await expectServesButCannotWrite(server, ann.token, first.body.id!);
    } finally {
      other.exec('ROLLBACK');
      other.close();
    }
    await expectWritableAgain(server, ann.token);
  }, 60_000);

  // PostgreSQL: the database turns read-only (25006 on every write, as on a standby during a failover).
  it.skipIf(!onPostgres)('PostgreSQL: stays ready while the database refuses writes (default_transaction_read_only); writes get 503', async () => {
    const server = await startTestServer({
      ops: { enabled: false },
      writes: { queueTimeoutMs: 2000, breaker: { failures: 3, coolDownSeconds: 0.5 } },
      readOnly: { afterFailingSeconds: 600 },
    });
    servers.push(server);
    const bea = await createUser(server.url, 'bea');
    const first = await post(server.url, bea.token, 'before read-only');
    expect(first.status).toBe(200);
    const dbName = new URL(server.ctx.config.databaseUrl!).pathname.slice(1);
    const admin = postgres(process.env.STARLING_TEST_PG_URL!, { max: 1, onnotice: () => {} });
    // The setting applies to new sessions: end the node's so its pool reconnects under it.
    const reconnect = () => admin`select pg_terminate_backend(pid) from pg_stat_activity where datname = ${dbName} and pid <> pg_backend_pid()`;
    try {
      await admin.unsafe(`alter database "${dbName}" set default_transaction_read_only = on`);
      await reconnect();
      await expectServesButCannotWrite(server, bea.token, first.body.id!);
      await admin.unsafe(`alter database "${dbName}" reset default_transaction_read_only`);
      await reconnect();
      await expectWritableAgain(server, bea.token);
    } finally {
      await admin.unsafe(`alter database "${dbName}" reset default_transaction_read_only`).catch(() => {});
      await admin.end({ timeout: 1 });
    }
  }, 90_000);

  // SQLite: reads fail for real when the node's handle is closed (ops-faults.test.ts does the same).
  it.skipIf(onPostgres)('failing database reads: ready within the grace period, unready past it (0 s by default on SQLite)', async () => {
    const lenient = await startTestServer({ ops: { enabled: false }, readiness: { databaseGraceSeconds: 600 } });
    const strict = await startTestServer({ ops: { enabled: false } });
    servers.push(lenient, strict);
    lenient.database.sqlite.close();
    strict.database.sqlite.close();
    try {
      const r = await ready(lenient.url);
      expect(r.status).toBe(200);
      expect(r.body).toMatchObject({ status: 'ready', mode: 'database-unreachable', writable: false, checks: { database: { ok: false } } });
      expect(r.body.database_failing_since).toBeTruthy();
      expect(r.body.checks!.database.error).toMatch(/unready after 600 s/);
      const s = await ready(strict.url);
      expect(s.status).toBe(503);
      expect(s.body.status).toBe('unavailable');
      expect(s.body.reason).toMatch(/database/);
    } finally {
      lenient.database.reopen();
      strict.database.reopen();
    }
    expect((await ready(lenient.url)).body).toMatchObject({ status: 'ready', database_failing_since: null });
    expect((await ready(strict.url)).status).toBe(200);
  });
});
