/**
 * SQLite's plans for list queries that sampled planner statistics once sent astray. Production databases
 * get sampled statistics (the seeder's `ANALYZE` with analysis_limit, kept by `PRAGMA optimize` at open), and with
 * them SQLite read the public timeline through statuses_reblog_of (every original status, then a sort:
 * 22 ms on 42k statuses) and the home timeline's pulled half through statuses_visibility_id (every status,
 * then a sort), an account's statuses without reblogs through statuses_reblog_of too. The queries now keep
 * SQLite off those indexes (store/sql.ts sqliteUnindexed) and the 'pull' index covers the pulled half
 * (migration 0008); this checks the plans of the SQL the services really run, on a real migrated database
 * with sampled statistics, and guards the list pages that were already fine.
 * docs/PERFORMANCE.md has the figures. SQLite only: PostgreSQL plans on its own (vitest.config.ts).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'kysely';
import { openSqlite, migrateToLatest, type OpenedDatabase } from '../../src/store/db.js';
import { accountStatusesQuery, homePulledQuery, homePushedQuery, markedStatusesQuery, publicTimelineQuery, tagTimelineQuery } from '../../src/services/timelines.js';
import { listNotificationsQuery } from '../../src/services/notifications.js';
import { onPostgres } from '../helpers/server.js';

const ACCOUNTS = 200;
const STATUSES = 4000;
/** Accounts 1..PULL_AUTHORS post as 'pull' (merged on read). */
const PULL_AUTHORS = 20;
/** Follows of each account other than the viewer. */
const FOLLOWS_EACH = 30;
/** Ids as the app makes them: 19 digits (domain/ids.ts), so they are bound as integers, as in production. */
const BASE = 1_900_000_000_000_000_000n;
const accountId = (i: number) => String(BASE + BigInt(i));
const statusId = (i: number) => String(BASE + 1_000_000n + BigInt(i) * 1000n);
const VIEWER = accountId(0);

interface PlanRow {
  id: number;
  parent: number;
  detail: string;
}

describe.skipIf(onPostgres)('SQLite query plans under sampled statistics', () => {
  let opened: OpenedDatabase;

  beforeAll(async () => {
    opened = openSqlite(':memory:');
    await migrateToLatest(opened.db);
    const raw = opened.sqlite;
    const now = new Date().toISOString();
    raw.transaction(() => {
      const account = raw.prepare(
        `INSERT INTO accounts (id, username, username_lower, created_at, updated_at) VALUES (?, ?, ?, ?, ?)`,
      );
      for (let i = 0; i < ACCOUNTS; i++) account.run(BigInt(accountId(i)), `u${i}`, `u${i}`, now, now);
      // The viewer follows half the accounts, among them the three 'pull' authors (1, 2, 3).
      const follow = raw.prepare(`INSERT INTO follows (id, account_id, target_account_id, created_at) VALUES (?, ?, ?, ?)`);
      const followed = [2, ...Array.from({ length: ACCOUNTS / 2 }, (_, k) => 2 * k + 1)];
      for (const i of followed) follow.run(BigInt(statusId(STATUSES + i)), BigInt(VIEWER), BigInt(accountId(i)), now);
      // Everyone else follows some too, so that the viewer's follows are a small part of the table.
      for (let a = 1; a < ACCOUNTS; a++) {
        for (let k = 1; k <= FOLLOWS_EACH; k++) {
          follow.run(BigInt(statusId(STATUSES + ACCOUNTS * (a + 1) + k)), BigInt(accountId(a)), BigInt(accountId(1 + ((a + k * 7) % (ACCOUNTS - 1)))), now);
        }
      }
      // Shaped like the seeded database: mostly public originals, some reblogs, replies, unlisted and private.
      const status = raw.prepare(
        `INSERT INTO statuses (id, account_id, text, content, visibility, in_reply_to_id, in_reply_to_account_id, reblog_of_id, distribution, created_at)
         VALUES (?, ?, '', '', ?, ?, ?, ?, ?, ?)`,
      );
      for (let i = 0; i < STATUSES; i++) {
        const author = 1 + (i % (ACCOUNTS - 1));
        const visibility = i % 17 === 0 ? 'private' : i % 13 === 0 ? 'unlisted' : 'public';
        const reblogOf = i > 100 && i % 25 === 0 ? BigInt(statusId(i - 50)) : null;
        const replyTo = reblogOf === null && i > 100 && i % 10 === 3 ? i - 7 : null;
        const distribution = author <= PULL_AUTHORS ? 'pull' : 'push';
        status.run(
          BigInt(statusId(i)),
          BigInt(accountId(author)),
          reblogOf === null ? visibility : 'public',
          replyTo === null ? null : BigInt(statusId(replyTo)),
          replyTo === null ? null : BigInt(accountId(1 + (replyTo % (ACCOUNTS - 1)))),
          reblogOf,
          distribution,
          now,
        );
      }
    })();
    // Sampled statistics, as production has them.
    raw.exec('PRAGMA analysis_limit = 100; ANALYZE');
  });

  afterAll(async () => {
    await opened?.close();
  });

  /** EXPLAIN QUERY PLAN of a query the service builds, with the parameters it binds. */
  function planOf(query: { compile(): { sql: string; parameters: readonly unknown[] } }): PlanRow[] {
    const c = query.compile();
    return (opened.sqlite.prepare(`EXPLAIN QUERY PLAN ${c.sql}`).all(...c.parameters) as Record<string, unknown>[]).map((r) => ({
      id: Number(r.id),
      parent: Number(r.parent),
      detail: String(r.detail),
    }));
  }
  /** The outer query's steps (subqueries such as the hidden-authors UNION have their own sorts). */
  const outer = (plan: PlanRow[]) => plan.filter((r) => r.parent === 0).map((r) => r.detail);
  const show = (plan: PlanRow[]) => plan.map((r) => `${r.parent}/${r.id} ${r.detail}`).join('\n');

  it('has sampled statistics that misjudge reblog_of_id IS NULL (the condition the fix is for)', () => {
    const stat = opened.sqlite.prepare(`SELECT stat FROM sqlite_stat1 WHERE idx = 'statuses_reblog_of'`).get() as { stat: string } | undefined;
    expect(stat, 'ANALYZE wrote no statistics for statuses_reblog_of').toBeDefined();
    // "rows  rows-per-reblog_of_id ...": sampling sees a few distinct values, so the NULL group looks small.
    const [, perValue] = stat!.stat.split(' ').map(Number);
    const originals = opened.sqlite.prepare(`SELECT count(*) AS n FROM statuses WHERE reblog_of_id IS NULL`).get() as { n: bigint };
    expect(perValue).toBeLessThan(Number(originals.n) / 10);
  });

  for (const viewer of [null, VIEWER]) {
    it(`walks the public timeline newest first through statuses_visibility_id (${viewer ? 'signed in' : 'anonymous'})`, () => {
      const plan = planOf(publicTimelineQuery(opened.db, viewer, { limit: 20 }));
      const steps = outer(plan);
      expect(steps.some((d) => /^SEARCH statuses USING INDEX statuses_visibility_id \(visibility=\?\)/.test(d)), show(plan)).toBe(true);
      expect(steps, show(plan)).not.toContain('USE TEMP B-TREE FOR ORDER BY');
      expect(show(plan)).not.toContain('statuses_reblog_of');
    });
  }

  it("reads the home timeline's pulled half through the partial index of 'pull' statuses", () => {
    // Without an edge (the pushed page was not full): the case that used to read every status.
    const plan = planOf(homePulledQuery(opened.db, VIEWER, { limit: 20 }, null));
    const statusesStep = outer(plan).find((d) => /^(SCAN|SEARCH) statuses\b/.test(d));
    // Sorting the followees' 'pull' statuses is expected (they come from many authors); reading every status is not.
    expect(statusesStep, show(plan)).toMatch(/USING (COVERING )?INDEX statuses_pull_(account_id|covering)/);
  });

  // SQLite plans a statement again each time a value its plan depends on is bound, and better-sqlite3 binds every
  // parameter on every run: a cached statement with `LIMIT ?` or `distribution = ?` (the partial index's value) was
  // planned on every run, at 2-10x the cost of running it (docs/PERFORMANCE.md). store/db.ts writes LIMIT and OFFSET
  // into the SQL; the pulled half writes 'pull'.
  it('binds no value that SQLite plans with: LIMIT, OFFSET and the partial index value are in the SQL', () => {
    const generic = opened.db.selectFrom('statuses').select('id').orderBy('id', 'desc').limit(20).offset(40).compile();
    expect(generic.sql).toMatch(/ limit 20 offset 40$/);
    expect(generic.parameters).toEqual([]);
    const pushed = homePushedQuery(opened.db, VIEWER, { limit: 21 }).compile();
    expect(pushed.sql).toMatch(/ limit 21$/);
    expect(pushed.parameters).not.toContain(21);
    // Ids are bound as 64-bit integers (store/db.ts), not as the strings the services hold.
    expect(pushed.parameters.length).toBeGreaterThan(0);
    for (const p of pushed.parameters) expect(typeof p, String(p)).toBe('bigint');
    const pulled = homePulledQuery(opened.db, VIEWER, { limit: 21, max_id: statusId(9) }, statusId(3)).compile();
    expect(pulled.sql).toMatch(/"statuses"\."distribution" = 'pull'/);
    expect(pulled.sql).toMatch(/ limit 21$/);
    expect(pulled.parameters).not.toContain('pull');
    expect(pulled.parameters).not.toContain(21);
    // A limit that is not a plain number stays as it was.
    expect(opened.db.selectFrom('statuses').select('id').limit(sql<number>`1 + 1`).compile().sql).toMatch(/ limit 1 \+ 1$/);
  });

  // The other list pages were measured fine under every kind of statistics (docs/PERFORMANCE.md); these keep them so.
  const page = { limit: 20 };
  const flags = { excludeReplies: true, excludeReblogs: true, onlyMedia: false, pinned: false };
  const others: [string, () => { compile(): { sql: string; parameters: readonly unknown[] } }, RegExp][] = [
    ['an account\'s statuses', () => accountStatusesQuery(opened.db, VIEWER, accountId(5), false, page, flags), /^SEARCH statuses USING INDEX statuses_account_id \(account_id=\?\)/],
    ['the home timeline\'s pushed half', () => homePushedQuery(opened.db, VIEWER, page), /^SEARCH home_feed USING (COVERING )?INDEX sqlite_autoindex_home_feed_1 \(account_id=\?\)/],
    ['a tag timeline', () => tagTimelineQuery(opened.db, VIEWER, statusId(1), page), /^SEARCH status_tags USING (COVERING )?INDEX \w+ \(tag_id=\?\)/],
    ['favourites', () => markedStatusesQuery(opened.db, VIEWER, 'favourites', page), /^SEARCH favourites USING INDEX favourites_account_id \(account_id=\?\)/],
    ['notifications', () => listNotificationsQuery(opened.db, VIEWER, new Date().toISOString(), { page }), /^SEARCH notifications USING INDEX notifications_account_id \(account_id=\?\)/],
  ];
  for (const [name, query, index] of others) {
    it(`pages ${name} through its index without sorting`, () => {
      const plan = planOf(query());
      const steps = outer(plan);
      expect(steps.some((d) => index.test(d)), show(plan)).toBe(true);
      expect(steps, show(plan)).not.toContain('USE TEMP B-TREE FOR ORDER BY');
    });
  }

  it("keeps the pulled half on the 'pull' index under the statistics of a database with 100 'pull' authors", () => {
    // sqlite_stat1 as `PRAGMA analysis_limit = 10000; ANALYZE` wrote it for the 42k-status seeded database with the
    // 100 most-followed authors' statuses made 'pull' (docs/PERFORMANCE.md). Sampling made the 'pull' index look
    // less selective per account (31 rows) than statuses_account_id (25), and SQLite read every followee's whole
    // history through the latter; the covering index (migration 0008) needs no table lookups and wins anyway.
    const measured: Record<string, string> = {
      statuses_pull_account_id: '2199 31 1', // the index before migration 0008
      statuses_pull_covering: '2199 31 1 1 1 1 1',
      statuses_visibility_id: '41799 5001 1',
      statuses_reblog_of: '41799 10 6',
      statuses_in_reply_to: '41799 5',
      statuses_account_id: '41799 25 1',
      sqlite_autoindex_statuses_1: '41799 1',
      follows_target: '167614 77 1',
      sqlite_autoindex_follows_2: '167614 67 1',
      sqlite_autoindex_follows_1: '167614 1',
    };
    const raw = opened.sqlite;
    const indexes = new Set(
      (raw.prepare(`SELECT name FROM sqlite_schema WHERE type = 'index' AND tbl_name IN ('statuses', 'follows')`).all() as { name: string }[]).map((r) => r.name),
    );
    expect([...indexes].some((n) => n.startsWith('statuses_pull_')), 'no partial index of pull statuses').toBe(true);
    raw.transaction(() => {
      raw.prepare(`DELETE FROM sqlite_stat1 WHERE tbl IN ('statuses', 'follows')`).run();
      const put = raw.prepare(`INSERT INTO sqlite_stat1 (tbl, idx, stat) VALUES (?, ?, ?)`);
      for (const [idx, stat] of Object.entries(measured)) if (indexes.has(idx)) put.run(idx.includes('follows') ? 'follows' : 'statuses', idx, stat);
    })();
    // Makes SQLite load the statistics just written (sqlite.org/lang_analyze.html).
    raw.exec('ANALYZE sqlite_schema');
    const plan = planOf(homePulledQuery(opened.db, VIEWER, { limit: 20 }, null));
    const statusesStep = outer(plan).find((d) => /^(SCAN|SEARCH) statuses\b/.test(d));
    expect(statusesStep, show(plan)).toMatch(/USING (COVERING )?INDEX statuses_pull_/);
  });
});
