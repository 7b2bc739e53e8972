/**
 * `starling seed`, run as a real child process on a temporary folder, then
 * served by a real node: the dataset's counts match the summary, every
 * counter agrees with the rows, home feeds follow the fan-out rules, the
 * seeded credentials work, and the follow graph is skewed. No timing checks.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { resolve } from 'node:path';
import { sql } from 'kysely';
import { startTestServer, tempDir, type TestServer } from '../helpers/server.js';
import type { SeedSummary } from '../../src/cli/seed.js';

const run = promisify(execFile);
const BIN = resolve(import.meta.dirname, '../../bin/starling.js');
const dir = tempDir('starling-seed-');
let summary: SeedSummary;
let stderr: string;
let server: TestServer;

function starling(...args: string[]) {
  return run(process.execPath, [BIN, ...args, '--data-dir', dir.path], { env: { PATH: process.env.PATH } }).then(
    (r) => ({ code: 0, ...r }),
    (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
  );
}

beforeAll(async () => {
  const r = await starling('seed', '--accounts', '300', '--posts', '3000', '--seed', 'test', '--json');
  expect(r.code, r.stderr).toBe(0);
  summary = JSON.parse(r.stdout.trim().split('\n').pop()!) as SeedSummary;
  stderr = r.stderr;
  // No ops engine: its canary account would add rows to the counts checked below.
  server = await startTestServer({ ops: { enabled: false } }, dir.path);
}, 120_000);

afterAll(async () => {
  await server?.close();
  dir.remove();
});

const one = async (q: ReturnType<typeof sql<{ n: number }>>) => Number((await q.execute(server.ctx.db)).rows[0].n);

describe('starling seed', () => {
  it('shows progress on stderr and refuses to seed over data without --force', async () => {
    expect(stderr).toMatch(/write: statuses: 3,000 in/);
    const again = await starling('seed', '--accounts', '10', '--posts', '10');
    expect(again.code).not.toBe(0);
    expect(again.stderr).toContain('--force');
  });

  it('writes what the summary says', async () => {
    expect(summary.accounts).toBe(300);
    expect(summary.statuses).toBe(3000);
    expect(summary.originals + summary.replies + summary.reblogs).toBe(3000);
    expect(summary.replies).toBeGreaterThan(3000 * 0.1);
    expect(summary.reblogs).toBeGreaterThan(0);
    const counts = {
      accounts: await one(sql`SELECT count(*) AS n FROM accounts`),
      users: await one(sql`SELECT count(*) AS n FROM users`),
      follows: await one(sql`SELECT count(*) AS n FROM follows`),
      statuses: await one(sql`SELECT count(*) AS n FROM statuses`),
      replies: await one(sql`SELECT count(*) AS n FROM statuses WHERE in_reply_to_id IS NOT NULL`),
      reblogs: await one(sql`SELECT count(*) AS n FROM statuses WHERE reblog_of_id IS NOT NULL`),
      favourites: await one(sql`SELECT count(*) AS n FROM favourites`),
      tags: await one(sql`SELECT count(*) AS n FROM tags`),
      statusTags: await one(sql`SELECT count(*) AS n FROM status_tags`),
      mentions: await one(sql`SELECT count(*) AS n FROM mentions`),
      homeFeedRows: await one(sql`SELECT count(*) AS n FROM home_feed`),
      tokens: await one(sql`SELECT count(*) AS n FROM oauth_tokens`),
    };
    expect(counts).toEqual({
      accounts: summary.accounts,
      users: summary.accounts,
      follows: summary.follows,
      statuses: summary.statuses,
      replies: summary.replies,
      reblogs: summary.reblogs,
      favourites: summary.favourites,
      tags: summary.tags,
      statusTags: summary.statusTags,
      mentions: summary.mentions,
      homeFeedRows: summary.homeFeedRows,
      tokens: summary.accounts,
    });
    const vis = await sql<{ visibility: string; n: number }>`SELECT visibility, count(*) AS n FROM statuses GROUP BY visibility`.execute(server.ctx.db);
    expect(Object.fromEntries(vis.rows.map((r) => [r.visibility, Number(r.n)]))).toEqual(summary.visibility);
  });

  it('keeps every counter consistent with the rows', async () => {
    const mismatches = {
      followers: await one(sql`SELECT count(*) AS n FROM accounts a WHERE followers_count <> (SELECT count(*) FROM follows f WHERE f.target_account_id = a.id)`),
      following: await one(sql`SELECT count(*) AS n FROM accounts a WHERE following_count <> (SELECT count(*) FROM follows f WHERE f.account_id = a.id)`),
      statuses: await one(sql`SELECT count(*) AS n FROM accounts a WHERE statuses_count <> (SELECT count(*) FROM statuses s WHERE s.account_id = a.id)`),
      lastStatusAt: await one(sql`SELECT count(*) AS n FROM accounts a WHERE last_status_at IS NOT (SELECT max(created_at) FROM statuses s WHERE s.account_id = a.id)`),
      replies: await one(sql`SELECT count(*) AS n FROM statuses s WHERE replies_count <> (SELECT count(*) FROM statuses r WHERE r.in_reply_to_id = s.id)`),
      reblogs: await one(sql`SELECT count(*) AS n FROM statuses s WHERE reblogs_count <> (SELECT count(*) FROM statuses r WHERE r.reblog_of_id = s.id)`),
      favourites: await one(sql`SELECT count(*) AS n FROM statuses s WHERE favourites_count <> (SELECT count(*) FROM favourites f WHERE f.status_id = s.id)`),
      foreignKeys: await one(sql`SELECT count(*) AS n FROM pragma_foreign_key_check`),
      // Replies and reblogs point back in time, as ids do.
      timeOrder: await one(sql`SELECT count(*) AS n FROM statuses s JOIN statuses p ON p.id = coalesce(s.in_reply_to_id, s.reblog_of_id) WHERE p.id >= s.id`),
      distribution: await one(sql`SELECT count(*) AS n FROM statuses s JOIN accounts a ON a.id = s.account_id
        WHERE s.distribution <> CASE WHEN a.followers_count >= ${summary.fanoutThreshold} THEN 'pull' ELSE 'push' END`),
    };
    expect(mismatches).toEqual({ followers: 0, following: 0, statuses: 0, lastStatusAt: 0, replies: 0, reblogs: 0, favourites: 0, foreignKeys: 0, timeOrder: 0, distribution: 0 });
  });

  it('fills home feeds as fan-out would have, up to the feed depth', async () => {
    const { rows } = await sql<{ id: string }>`SELECT id FROM accounts ORDER BY followers_count DESC, id LIMIT 5`.execute(server.ctx.db);
    const { rows: more } = await sql<{ id: string }>`SELECT id FROM accounts ORDER BY id LIMIT 15`.execute(server.ctx.db);
    for (const { id } of [...rows, ...more]) {
      const expected = await sql<{ id: string }>`
        SELECT id FROM (
          SELECT s.id FROM statuses s WHERE s.account_id = ${id}
          UNION
          SELECT s.id FROM follows f JOIN statuses s ON s.account_id = f.target_account_id
          WHERE f.account_id = ${id} AND s.distribution = 'push'
            AND (s.in_reply_to_account_id IS NULL OR s.in_reply_to_account_id = s.account_id OR s.in_reply_to_account_id = ${id}
                 OR EXISTS (SELECT 1 FROM follows f2 WHERE f2.account_id = ${id} AND f2.target_account_id = s.in_reply_to_account_id))
            AND (s.reblog_of_id IS NULL OR (SELECT o.account_id FROM statuses o WHERE o.id = s.reblog_of_id) <> ${id})
        ) ORDER BY id DESC LIMIT ${summary.feedDepth}`.execute(server.ctx.db);
      const got = await sql<{ id: string }>`SELECT status_id AS id FROM home_feed WHERE account_id = ${id} ORDER BY status_id DESC`.execute(server.ctx.db);
      expect(got.rows.map((r) => String(r.id))).toEqual(expected.rows.map((r) => String(r.id)));
    }
  });

  it('gives every account a working token: the home timeline answers 20 statuses and a Link header', async () => {
    const { rows } = await sql<{ account_id: string }>`SELECT account_id FROM home_feed GROUP BY account_id HAVING count(*) > 40 ORDER BY account_id LIMIT 1`.execute(server.ctx.db);
    expect(rows.length).toBe(1);
    const res = await fetch(`${server.url}/api/v1/timelines/home`, { headers: { authorization: `Bearer bench-token-${rows[0].account_id}` } });
    expect(res.status).toBe(200);
    const statuses = (await res.json()) as { id: string; account: { id: string }; content: string }[];
    expect(statuses).toHaveLength(20);
    expect(res.headers.get('link')).toMatch(/max_id=\d+>; rel="next"/);
    const ids = statuses.map((s) => s.id);
    expect([...ids].sort().reverse()).toEqual(ids);
    const bad = await fetch(`${server.url}/api/v1/timelines/home`, { headers: { authorization: 'Bearer bench-token-0' } });
    expect(bad.status).toBe(401);
  });

  it('signs a seeded user in with the documented password', async () => {
    const app = (await sql<{ client_id: string; client_secret: string }>`SELECT client_id, client_secret FROM oauth_applications`.execute(server.ctx.db)).rows[0];
    const user = (await sql<{ email: string }>`SELECT email FROM users ORDER BY account_id LIMIT 1`.execute(server.ctx.db)).rows[0];
    const res = await fetch(`${server.url}/oauth/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ grant_type: 'password', client_id: app.client_id, client_secret: app.client_secret, username: user.email, password: summary.password, scope: 'read' }),
    });
    expect(res.status).toBe(200);
    expect(((await res.json()) as { access_token: string }).access_token).toBeTruthy();
  });

  it('has a skewed (power-law) follow graph', async () => {
    const max = await one(sql`SELECT max(followers_count) AS n FROM accounts`);
    const median = await one(sql`SELECT followers_count AS n FROM accounts ORDER BY followers_count LIMIT 1 OFFSET 150`);
    expect(max).toBe(summary.followers.max);
    expect(max).toBeGreaterThan(median * 5);
    // Most accounts follow a handful (a median of N/20 below 1,000 accounts, 50 above); a few popular accounts are followed by most.
    expect(summary.following.median).toBeGreaterThanOrEqual(10);
    expect(max).toBeGreaterThan(300 * 0.4);
  });
});
