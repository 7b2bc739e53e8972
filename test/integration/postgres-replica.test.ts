/**
 * PostgreSQL only: reads from a physical streaming replica (config databaseReplicaUrl). Its own primary
 * (full_page_writes on, for pg_basebackup) and a hot standby made with `pg_basebackup -R`; two Starling
 * nodes on them, as in a cluster.
 *
 * Replay on the standby is paused to make staleness visible: a read the replica served then misses the
 * newest post, which proves where it came from (besides the X-Starling-Read header and the metric).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import postgres from 'postgres';
import { startTempPostgres, type TempPostgres } from '../helpers/postgres.js';
import { startStandby, type TempStandby } from '../helpers/postgres-replica.js';
import { createUser, eventually, onPostgres, startTestServer, type TestServer, type TestUser } from '../helpers/server.js';

const SETTINGS = { full_page_writes: 'on', wal_level: 'replica', max_connections: '300', shared_buffers: '64MB', fsync: 'off', synchronous_commit: 'off' };

describe.runIf(onPostgres)('reads from a PostgreSQL replica', () => {
  let primary: TempPostgres | undefined;
  let standby: TempStandby | undefined;
  let standbyAdmin: postgres.Sql | undefined;
  let nodeA: TestServer | undefined;
  let nodeB: TestServer | undefined;
  let author: TestUser;
  let reader: TestUser;

  beforeAll(async () => {
    primary = await startTempPostgres({ settings: SETTINGS });
    const admin = postgres(primary.url, { max: 1, onnotice: () => {} });
    try {
      await admin.unsafe('CREATE DATABASE starling_replica');
    } finally {
      await admin.end({ timeout: 1 });
    }
    // Migrated before the copy, so the standby has the schema at once.
    nodeA = await startTestServer({ databaseUrl: primary.urlFor('starling_replica'), ops: { enabled: false }, nodeId: 1 });
    standby = await startStandby(primary, SETTINGS);
    standbyAdmin = postgres(standby.urlFor('postgres'), { max: 1, onnotice: () => {} });
    await nodeA.stop();
    const config = { databaseUrl: primary.urlFor('starling_replica'), databaseReplicaUrl: standby.urlFor('starling_replica'), ops: { enabled: false } };
    nodeA = await startTestServer({ ...config, nodeId: 1 });
    nodeB = await startTestServer({ ...config, nodeId: 2 });
    author = await createUser(nodeA.url, 'author');
    reader = await createUser(nodeA.url, 'reader');
  }, 120_000);

  afterAll(async () => {
    await standbyAdmin?.unsafe('SELECT pg_wal_replay_resume()').catch(() => {});
    await standbyAdmin?.end({ timeout: 1 }).catch(() => {});
    await nodeB?.stop().catch(() => {});
    await nodeA?.stop().catch(() => {});
    await standby?.stop();
    await primary?.stop();
  });

  const get = async (server: TestServer, path: string, token?: string) => {
    const res = await fetch(`${server.url}${path}`, { headers: token ? { authorization: `Bearer ${token}` } : {} });
    return { status: res.status, read: res.headers.get('x-starling-read'), body: (await res.json()) as { id: string; content: string }[] };
  };
  const post = async (server: TestServer, text: string) => {
    const res = await fetch(`${server.url}/api/v1/statuses`, {
      method: 'POST',
      headers: { authorization: `Bearer ${author.token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ status: text, visibility: 'public' }),
    });
    expect(res.status).toBe(200);
    return ((await res.json()) as { id: string }).id;
  };
  const replayed = async () => (await standbyAdmin!`SELECT pg_last_wal_replay_lsn()::text AS lsn`)[0]!.lsn as string;

  it('serves others from the replica and the author from the primary until the replica has the write, across nodes', async () => {
    const before = await post(nodeA!, 'replicated before the pause');
    // Everything so far reaches the standby; then replay stops there.
    await eventually(async () => (await get(nodeB!, `/api/v1/accounts/${author.id}/statuses`, reader.token)).body.some((s) => s.id === before), 15_000);
    await standbyAdmin!.unsafe('SELECT pg_wal_replay_pause()');
    await eventually(async () => (await standbyAdmin!`SELECT pg_get_wal_replay_pause_state() AS s`)[0]!.s === 'paused', 10_000);
    const lsnPaused = await replayed();

    // Written through node A, read at once through node B by the author: the fence (read on the primary) says
    // the replica lacks it, so node B reads the primary.
    const fresh = await post(nodeA!, 'written while replay is paused');
    const own = await get(nodeB!, `/api/v1/accounts/${author.id}/statuses`, author.token);
    expect(own.status).toBe(200);
    expect(own.read).toBe('primary');
    expect(own.body.map((s) => s.id)).toContain(fresh);
    // The author's own public timeline read too.
    const ownPublic = await get(nodeA!, '/api/v1/timelines/public?local=true', author.token);
    expect(ownPublic.read).toBe('primary');
    expect(ownPublic.body.map((s) => s.id)).toContain(fresh);

    // Another account, and nobody signed in: the replica answers, without the post it has not replayed.
    const other = await get(nodeB!, `/api/v1/accounts/${author.id}/statuses`, reader.token);
    expect(other.status).toBe(200);
    expect(other.read).toBe('replica');
    expect(other.body.map((s) => s.id)).toContain(before);
    expect(other.body.map((s) => s.id)).not.toContain(fresh);
    const anonymous = await get(nodeA!, '/api/v1/timelines/public?local=true');
    expect(anonymous.read).toBe('replica');
    expect(anonymous.body.map((s) => s.id)).not.toContain(fresh);
    expect(await replayed()).toBe(lsnPaused);
    const metrics = await (await fetch(`${nodeB!.url}/metrics`)).text();
    expect(metrics).toMatch(/starling_replica_reads_total\{target="replica"[^}]*\} [1-9]/);
    expect(metrics).toMatch(/starling_replica_reads_total\{target="primary"[^}]*\} [1-9]/);

    // Replay resumes: the author's reads move to the replica once it has the write, and see it there.
    await standbyAdmin!.unsafe('SELECT pg_wal_replay_resume()');
    const later = await eventually(async () => {
      const r = await get(nodeB!, `/api/v1/accounts/${author.id}/statuses`, author.token);
      return r.read === 'replica' ? r : null;
    }, 15_000);
    expect(later.body.map((s) => s.id)).toContain(fresh);
    const otherLater = await get(nodeB!, `/api/v1/accounts/${author.id}/statuses`, reader.token);
    expect(otherLater.read).toBe('replica');
    expect(otherLater.body.map((s) => s.id)).toContain(fresh);
  });

  it('reads from the primary when the replica is down', async () => {
    await standbyAdmin!.end({ timeout: 1 }).catch(() => {});
    standbyAdmin = undefined;
    await standby!.stop();
    standby = undefined;
    const id = await post(nodeA!, 'after the replica went away');
    for (const [server, token] of [[nodeB!, undefined], [nodeB!, reader.token], [nodeA!, author.token]] as const) {
      const r = await get(server, `/api/v1/accounts/${author.id}/statuses`, token);
      expect(r.status).toBe(200);
      expect(r.read).toBe('fallback');
      expect(r.body.map((s) => s.id)).toContain(id);
    }
    const search = await fetch(`${nodeB!.url}/api/v2/search?q=author&type=accounts`, { headers: { authorization: `Bearer ${reader.token}` } });
    expect(search.status).toBe(200);
    expect(search.headers.get('x-starling-read')).toBe('fallback');
  });
});
