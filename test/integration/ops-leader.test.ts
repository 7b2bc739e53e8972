/**
 * One ops engine per cluster (src/ops/leader.ts). On PostgreSQL: two real servers on one database elect one
 * leader through a session-level advisory lock; only the leader probes (its node id alone in probe_results);
 * the follower's status page shows what the leader wrote; a lock session killed on the server ends that node's
 * leadership and one node leads again; stopping the leader hands over to the other. On SQLite a lone node leads,
 * and two nodes on one shared file elect one through SQLite's file lock. No timing assertions: everything is polled with generous deadlines.
 */
import { afterAll, describe, expect, it } from 'vitest';
import postgres from 'postgres';
import { eventually, onPostgres, startTestServer, tempDir, type TestServer } from '../helpers/server.js';

interface ReadyOps {
  ops: { enabled: boolean; leader: boolean; leader_node: number | null; election?: string; losses?: number };
}
const readyOps = async (s: TestServer) => ((await (await fetch(`${s.url}/readyz`)).json()) as ReadyOps).ops;
const leaderGauge = async (s: TestServer) => Number(/^starling_ops_leader(?:\{[^}]*\})? (\d+)$/m.exec(await (await fetch(`${s.url}/metrics`)).text())?.[1]);

const servers: TestServer[] = [];
afterAll(async () => {
  for (const s of servers) await s.stop().catch(() => {});
});

const OPS = { probeIntervalSeconds: 0.5, leaderCheckSeconds: 0.2 };

describe.skipIf(onPostgres)('ops leader on SQLite', () => {
  it('a lone node leads', async () => {
    const s = await startTestServer({ ops: OPS, nodeId: 5 });
    servers.push(s);
    expect(s.ops.leading).toBe(true);
    expect(await readyOps(s)).toMatchObject({ enabled: true, leader: true, leader_node: 5, election: 'sqlite-file-lock' });
    expect(await leaderGauge(s)).toBe(1);
  });

  it('two nodes on one shared SQLite file (cluster up --app-db sqlite): one leads and probes; stopping it hands over', async () => {
    const dir = tempDir('starling-shared-');
    try {
      const common = { ops: OPS, writes: { busyTimeoutMs: 2000 } };
      const a = await startTestServer({ ...common, nodeId: 1 }, dir.path);
      servers.push(a);
      const b = await startTestServer({ ...common, nodeId: 2 }, dir.path);
      servers.push(b);
      expect([a.ops.leading, b.ops.leading]).toEqual([true, false]);
      await eventually(async () => (await readyOps(b)).leader_node === 1, 20_000);
      expect([await leaderGauge(a), await leaderGauge(b)]).toEqual([1, 0]);
      await eventually(async () => (await a.ctx.db.selectFrom('probe_results').select('id').where('node_id', '=', 1).limit(1).execute()).length > 0, 20_000);
      expect((await a.ctx.db.selectFrom('probe_results').select('node_id').distinct().execute()).map((r) => Number(r.node_id))).toEqual([1]);

      await a.stop();
      servers.splice(servers.indexOf(a), 1);
      await eventually(async () => b.ops.leading, 20_000);
      expect(await readyOps(b)).toMatchObject({ leader: true, leader_node: 2 });
      await eventually(async () => (await b.ctx.db.selectFrom('probe_results').select('id').where('node_id', '=', 2).limit(1).execute()).length > 0, 20_000);
    } finally {
      for (const s of servers.splice(0)) await s.stop().catch(() => {});
      dir.remove();
    }
  }, 60_000);
});

describe.skipIf(!onPostgres)('ops leader on PostgreSQL', () => {
  it('two nodes on one database: exactly one leads and probes, the follower shows its state, and the other takes over', async () => {
    const a = await startTestServer({ ops: OPS, nodeId: 1 });
    servers.push(a);
    const b = await startTestServer({ ops: OPS, nodeId: 2, databaseUrl: a.ctx.config.databaseUrl });
    servers.push(b);
    const nodes = [a, b];
    // Never two leaders at once, at any point we look (checked on every poll below).
    let both = 0;
    const leaders = () => {
      const l = nodes.filter((s) => s.ops.leading);
      if (l.length > 1) both++;
      return l;
    };

    // Exactly one leads (a, which started first and found the lock free), and both say so.
    await eventually(async () => leaders().length === 1, 20_000);
    expect(a.ops.leading).toBe(true);
    expect(b.ops.leading).toBe(false);
    await eventually(async () => (await readyOps(b)).leader_node === 1, 20_000);
    expect(await readyOps(a)).toMatchObject({ leader: true, leader_node: 1, election: 'postgres-advisory-lock' });
    expect(await readyOps(b)).toMatchObject({ leader: false, leader_node: 1, election: 'postgres-advisory-lock' });
    expect([await leaderGauge(a), await leaderGauge(b)]).toEqual([1, 0]);

    // Only the leader probes: every probe result so far is node 1's.
    const db = a.ctx.db;
    await eventually(async () => (await db.selectFrom('probe_results').select('id').where('node_id', '=', 1).limit(1).execute()).length > 0, 20_000);
    const probers = async () => (await db.selectFrom('probe_results').select('node_id').distinct().execute()).map((r) => Number(r.node_id)).sort();
    expect(await probers()).toEqual([1]);

    // The follower's public status page shows what the leader wrote: its components and an incident made there.
    const made = await a.ops.createIncident({ title: 'Leader-made incident', body: 'seen from every node', author: 'ops', components: ['search'], impact: 'minor' });
    const summary = await eventually(async () => {
      const s = (await (await fetch(`${b.url}/status/api/summary.json`)).json()) as { incidents: { id: string }[]; components: unknown[]; freshness?: { stale: boolean } };
      return s.incidents.some((i) => i.id === made.id) ? s : null;
    }, 20_000);
    expect(summary.components.length).toBeGreaterThan(0);
    expect(summary.freshness?.stale).toBe(false);
    const page = await (await fetch(`${b.url}/status`)).text();
    expect(page).toContain('Leader-made incident');

    // The lock session dies (killed on the server): node 1 notices, stops leading, and one node leads again.
    const admin = postgres(process.env.STARLING_TEST_PG_URL!, { max: 1, onnotice: () => {} });
    try {
      const killed = await admin`select pg_terminate_backend(pid) as ok from pg_stat_activity where application_name = 'starling-ops-leader-node-1'`;
      expect(killed.map((r) => r.ok)).toEqual([true]);
    } finally {
      await admin.end({ timeout: 1 });
    }
    await eventually(async () => a.ops.leadership()!.losses >= 1, 20_000);
    await eventually(async () => leaders().length === 1, 20_000);

    // Stop whichever leads now: the other takes over, and probes under its own node id.
    const [old] = leaders();
    const other = old === a ? b : a;
    const otherId = other.ctx.config.nodeId;
    await old.stop();
    servers.splice(servers.indexOf(old), 1);
    nodes.splice(nodes.indexOf(old), 1);
    await eventually(async () => other.ops.leading, 20_000);
    expect(await readyOps(other)).toMatchObject({ leader: true, leader_node: otherId });
    expect(await leaderGauge(other)).toBe(1);
    await eventually(async () => (await other.ctx.db.selectFrom('probe_results').select('id').where('node_id', '=', otherId).limit(1).execute()).length > 0, 20_000);
    // It carried on from the state the database remembers (the incident made on the first leader is still open).
    expect(other.ops.summary().incidents.map((i) => i.id)).toContain(made.id);
    expect(both).toBe(0);
  }, 120_000);
});
