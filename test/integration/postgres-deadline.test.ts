/**
 * PostgreSQL only: the client-side query deadline (config writes.queryDeadlineMs). The backends serving this
 * server's connections are frozen with SIGSTOP, as a hung primary would be: statement_timeout never fires,
 * since the server is not running. A request then gets a 503 to retry (not a hang), the stuck connections are
 * abandoned so later requests get fresh ones, and after SIGCONT everything works. Only this test's own
 * backends are stopped (the run's PostgreSQL is shared with other test files); SIGCONT is sent in `finally`.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import postgres from 'postgres';
import { createUser, onPostgres, startTestServer, type TestServer, type TestUser } from '../helpers/server.js';

describe.runIf(onPostgres)('PostgreSQL query deadline', () => {
  let server: TestServer;
  let user: TestUser;
  let admin: postgres.Sql;

  beforeAll(async () => {
    server = await startTestServer({ ops: { enabled: false }, runJobs: false, writes: { queryDeadlineMs: 1500 } });
    user = await createUser(server.url, 'frozen');
    admin = postgres(process.env.STARLING_TEST_PG_URL!, { max: 1, onnotice: () => {} });
  });
  afterAll(async () => {
    await admin?.end({ timeout: 1 });
    await server?.stop();
  });

  const home = () =>
    fetch(`${server.url}/api/v1/timelines/home`, { headers: { authorization: `Bearer ${user.token}` }, signal: AbortSignal.timeout(25_000) });

  async function serverBackends(): Promise<number[]> {
    const database = new URL(server.ctx.config.databaseUrl!).pathname.slice(1);
    const rows = await admin<{ pid: number }[]>`SELECT pid FROM pg_stat_activity WHERE datname = ${database} AND application_name = 'starling'`;
    return rows.map((r) => r.pid);
  }

  it('answers 503 within the deadline while the backends are frozen, reconnects around them, and recovers after SIGCONT', { timeout: 60_000 }, async () => {
    // Some open connections to freeze.
    await Promise.all(Array.from({ length: 4 }, () => home()));
    const frozen = await serverBackends();
    expect(frozen.length).toBeGreaterThan(0);
    const statuses: number[] = [];
    try {
      for (const pid of frozen) process.kill(pid, 'SIGSTOP');
      const first = await home();
      expect(first.status).toBe(503);
      expect(first.headers.get('retry-after')).toBeTruthy();
      expect(((await first.json()) as { error?: string }).error).toBeTruthy();
      // Still frozen: each stuck connection costs one 503 at most, then the pool has fresh ones.
      for (let i = 0; i < frozen.length + 5 && statuses.at(-1) !== 200; i++) statuses.push((await home()).status);
      expect(statuses.at(-1)).toBe(200);
      expect(statuses.every((s) => s === 200 || s === 503)).toBe(true);
      const fresh = await serverBackends();
      expect(fresh.some((pid) => !frozen.includes(pid))).toBe(true);
      // A post while they are still frozen: 200, or 503 to retry under the same key; kept exactly once.
      const posts: number[] = [];
      for (let i = 0; i < frozen.length + 5 && posts.at(-1) !== 200; i++) {
        const res = await fetch(`${server.url}/api/v1/statuses`, {
          method: 'POST',
          headers: { authorization: `Bearer ${user.token}`, 'content-type': 'application/json', 'idempotency-key': 'frozen-post' },
          body: JSON.stringify({ status: 'posted while frozen' }),
          signal: AbortSignal.timeout(25_000),
        });
        posts.push(res.status);
      }
      expect(posts.at(-1)).toBe(200);
      expect(posts.every((s) => s === 200 || s === 503)).toBe(true);
    } finally {
      for (const pid of frozen) {
        try {
          process.kill(pid, 'SIGCONT');
        } catch {
          /* already gone */
        }
      }
    }
    const posted = await user.client.v1.statuses.create({ status: 'after the thaw' });
    const after = await home();
    expect(after.status).toBe(200);
    expect(((await after.json()) as { id: string }[]).map((s) => s.id)).toContain(posted.id);
    const frozenPosts = await server.ctx.db.selectFrom('statuses').select('id').where('account_id', '=', user.id).where('text', '=', 'posted while frozen').execute();
    expect(frozenPosts).toHaveLength(1);
  });
});
