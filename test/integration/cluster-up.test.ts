/**
 * `starling cluster up|status|down` for real: etcd ×3, PostgreSQL + Patroni ×3
 * (strict synchronous replication), NATS ×3, two Starling nodes and HAProxy
 * on loopback, started by the CLI as a child process. Then:
 * - status (JSON) shows one Patroni leader and a synchronous standby, every member alive;
 * - the app answers through HAProxy, and a post made on node 1 reaches a stream held on node 2;
 * - the Patroni primary's Patroni and PostgreSQL are SIGKILLed (by PID): a standby is
 *   promoted, writes through HAProxy's PostgreSQL frontend succeed again, and every
 *   row acknowledged before the kill is still there;
 * - `down` leaves no process behind.
 *
 * The app nodes use PostgreSQL (--app-db postgres) when this build has the
 * PostgreSQL dialect, else one shared SQLite file (--app-db sqlite); either way the
 * database failover is also checked with postgres.js directly, and a post through
 * HAProxy must succeed after it (retried under one Idempotency-Key).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chmodSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import postgres from 'postgres';
import WebSocket from 'ws';
import { needBinaries } from '../helpers/binaries.js';
import { CLUSTER_BINARIES, clusterCli, tearDownCluster } from '../helpers/cluster.js';
import { createUser, eventually, tempDir } from '../helpers/server.js';
import { processesUnder, postgresDialectAvailable, type ClusterStatus } from '../../src/cluster/cluster.js';

const appDb = postgresDialectAvailable() ? 'postgres' : 'sqlite';
const skip = needBinaries(CLUSTER_BINARIES);

// No load shedding on the app nodes: a dozen processes share two cores here (see test/chaos/cluster-chaos.test.ts).
const cli = (...args: string[]) => clusterCli(args, { STARLING_PRESSURE_ENABLED: '0' });

describe.skipIf(skip)('starling cluster', () => {
  // Made when the suite runs (not when it is collected and skipped), removed after it.
  let tmp: ReturnType<typeof tempDir>;
  let dir = '';
  beforeAll(() => {
    tmp = tempDir('starling-cluster-');
    // When root, PostgreSQL runs as the postgres user: it must be able to traverse the temporary folder.
    chmodSync(tmp.path, 0o755);
    dir = join(tmp.path, 'c');
  });
  let started = false;

  afterAll(async () => {
    if (!dir) return;
    try {
      // Whatever happened, nothing started from this folder may outlive the test (by PID).
      await tearDownCluster(dir, started);
    } finally {
      tmp?.remove();
    }
  }, 90_000);

  it('comes up, fails the database over without losing an acknowledged commit, and goes down leaving nothing', { timeout: 240_000 }, async () => {
    started = true;
    const up = JSON.parse(await cli('up', '--dir', dir, '--nodes', '2', '--pg-members', '3', '--app-db', appDb, '--json')) as ClusterStatus;
    expect(up.members.map((m) => m.kind).sort()).toEqual([...Array(3).fill('etcd'), 'haproxy', ...Array(3).fill('nats'), ...Array(3).fill('patroni'), 'starling', 'starling']);

    const status = JSON.parse(await cli('status', '--dir', dir, '--json')) as ClusterStatus;
    expect(status.members.every((m) => m.alive)).toBe(true);
    const pg = status.members.filter((m) => m.kind === 'patroni');
    expect(pg.filter((m) => m.role === 'leader')).toHaveLength(1);
    expect(pg.filter((m) => m.role === 'sync_standby').length).toBeGreaterThanOrEqual(1);
    expect(status.members.filter((m) => m.kind === 'etcd' && m.role === 'leader')).toHaveLength(1);
    expect(status.members.filter((m) => m.kind === 'starling').map((m) => m.role)).toEqual(['ready', 'ready']);
    const oldLeader = pg.find((m) => m.role === 'leader')!;
    expect(oldLeader.postgresAlive).toBe(true);

    // The app through HAProxy, and a post on node 1 arriving on a stream held on node 2 (over NATS).
    const viaLb = await fetch(`${status.endpoints.http}/api/v1/instance`);
    expect(viaLb.status).toBe(200);
    const [node1, node2] = status.endpoints.nodes;
    const author = await createUser(node1, 'clusterauthor');
    const frames: { event: string; payload: string }[] = [];
    const ws = new WebSocket(`${node2.replace(/^http/, 'ws')}/api/v1/streaming?stream=public`, author.token);
    ws.on('message', (d) => frames.push(JSON.parse(String(d))));
    try {
      await new Promise<void>((res, rej) => {
        ws.once('open', () => res());
        ws.once('error', rej);
      });
      await eventually(async () => {
        const post = await author.client.v1.statuses.create({ status: `across nodes ${Date.now()}` });
        await new Promise((r) => setTimeout(r, 300));
        return frames.some((f) => f.event === 'update' && JSON.parse(f.payload).id === post.id);
      }, 20_000);
    } finally {
      ws.terminate();
    }

    // Acknowledged commits before the failover (synchronous: each is on the standby too).
    const sql = postgres(status.endpoints.superuserViaHaproxy, { max: 1, connect_timeout: 3, idle_timeout: 1, onnotice: () => {}, fetch_types: false });
    try {
      // The cluster's PostgreSQL settings reach the server (Patroni's bootstrap configuration), the planner's among them.
      const [{ random_page_cost }] = await sql<{ random_page_cost: string }[]>`SHOW random_page_cost`;
      expect(random_page_cost).toBe('1.1');
      await sql`CREATE TABLE acked (n int PRIMARY KEY)`;
      for (let n = 0; n < 50; n++) await sql`INSERT INTO acked VALUES (${n})`;
    } finally {
      await sql.end({ timeout: 2 });
    }

    // The primary's whole node dies: Patroni and PostgreSQL together, by PID.
    process.kill(oldLeader.pid, 'SIGKILL');
    process.kill(oldLeader.postgresPid!, 'SIGKILL');

    const after = await eventually(async () => {
      const s = JSON.parse(await cli('status', '--dir', dir, '--json')) as ClusterStatus;
      const leader = s.members.find((m) => m.kind === 'patroni' && m.role === 'leader' && m.alive);
      return leader && leader.name !== oldLeader.name ? s : null;
    }, 60_000);
    const newLeader = after.members.find((m) => m.kind === 'patroni' && m.role === 'leader')!;
    expect(newLeader.name).not.toBe(oldLeader.name);
    expect(after.members.find((m) => m.name === oldLeader.name)!.alive).toBe(false);

    // Writes succeed again through HAProxy (which follows Patroni's /primary), and nothing acknowledged was lost.
    const count = await eventually(async () => {
      const s2 = postgres(after.endpoints.superuserViaHaproxy, { max: 1, connect_timeout: 3, idle_timeout: 1, onnotice: () => {}, fetch_types: false });
      try {
        await s2`SET statement_timeout = 3000`;
        await s2`INSERT INTO acked VALUES (1000)`;
        const [{ n }] = await s2<{ n: number }[]>`SELECT count(*)::int AS n FROM acked WHERE n < 50`;
        const [{ recovery }] = await s2<{ recovery: boolean }[]>`SELECT pg_is_in_recovery() AS recovery`;
        return recovery ? null : { n };
      } finally {
        await s2.end({ timeout: 1 }).catch(() => {});
      }
    }, 60_000);
    expect(count.n).toBe(50);
    // WAL archiving follows the primary: the new one archives its timeline's history file into the cluster's archive.
    await eventually(async () => readdirSync(join(dir, 'patroni', 'wal-archive')).some((f) => f.endsWith('.history')), 60_000);

    // The app writes again through the load balancer (on PostgreSQL: through the new primary), one post whatever the retries.
    const posted = await eventually(async () => {
      const r = await fetch(`${after.endpoints.http}/api/v1/statuses`, {
        method: 'POST',
        headers: { authorization: `Bearer ${author.token}`, 'content-type': 'application/json', 'idempotency-key': 'after-failover' },
        body: JSON.stringify({ status: 'after the failover' }),
        signal: AbortSignal.timeout(10_000),
      });
      return r.status === 200 ? ((await r.json()) as { id: string }) : null;
    }, 60_000);
    const mine = (await (await fetch(`${after.endpoints.http}/api/v1/accounts/${author.id}/statuses?limit=40`, { headers: { authorization: `Bearer ${author.token}` } })).json()) as { id: string; content: string }[];
    expect(mine.filter((s) => s.content.includes('after the failover')).map((s) => s.id)).toEqual([posted.id]);

    await cli('down', '--dir', dir);
    started = false;
    expect(processesUnder(dir)).toEqual([]);
    const final = JSON.parse(await cli('status', '--dir', dir, '--json')) as ClusterStatus;
    expect(final.members.filter((m) => m.alive)).toEqual([]);
  });
});
