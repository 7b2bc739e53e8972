/**
 * Home feeds: pushed for ordinary authors, merged on read for authors past the
 * fan-out threshold, and always rebuildable from statuses and follows.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, createUser, type TestServer, type TestUser } from '../helpers/server.js';
import { FANOUT_CHUNK, fanOut, rebuildFeed, unfanOut } from '../../src/services/feeds.js';
import type { AppContext } from '../../src/services/context.js';

let server: TestServer;
let celeb: TestUser;
let plain: TestUser;
let fan1: TestUser;
let fan2: TestUser;

beforeAll(async () => {
  // Two followers make an author "very many followers" here.
  server = await startTestServer({ fanoutThreshold: 2 });
  [celeb, plain, fan1, fan2] = await Promise.all(['celeb', 'plain', 'fan1', 'fan2'].map((n) => createUser(server.url, n)));
  await fan1.client.v1.accounts.$select(celeb.id).follow();
  await fan2.client.v1.accounts.$select(celeb.id).follow();
  await fan1.client.v1.accounts.$select(plain.id).follow();
  await server.worker.drain();
});
afterAll(async () => {
  await server?.stop();
});

async function homeIds(user: TestUser, limit = 40): Promise<string[]> {
  return (await user.client.v1.timelines.home.list({ limit })).map((s) => s.id);
}

async function feedRows(accountId: string, statusId: string): Promise<number> {
  const rows = await server.ctx.db.selectFrom('home_feed').select('status_id').where('account_id', '=', accountId).where('status_id', '=', statusId).execute();
  return rows.length;
}

describe('home feeds', () => {
  it('merges a popular author’s posts on read instead of fanning them out', async () => {
    const loud = await celeb.client.v1.statuses.create({ status: 'to my many followers' });
    const quiet = await plain.client.v1.statuses.create({ status: 'to my one follower' });
    await server.worker.drain();
    expect(await feedRows(fan1.id, loud.id)).toBe(0);
    expect(await feedRows(fan1.id, quiet.id)).toBe(1);
    const home = await homeIds(fan1);
    // Both appear, newest first, merged into one timeline.
    expect(home.slice(0, 2)).toEqual([quiet.id, loud.id]);
    expect(await homeIds(fan2)).toContain(loud.id);
    // Unfollowing takes the merged posts out as well.
    await fan2.client.v1.accounts.$select(celeb.id).unfollow();
    expect(await homeIds(fan2)).not.toContain(loud.id);
  });

  it('pages a merged timeline without gaps or duplicates', async () => {
    const posted: string[] = [];
    for (let i = 0; i < 12; i++) {
      const who = i % 2 === 0 ? celeb : plain;
      posted.push((await who.client.v1.statuses.create({ status: `interleaved ${i}` })).id);
    }
    await server.worker.drain();
    const seen: string[] = [];
    for await (const page of fan1.client.v1.timelines.home.list({ limit: 5 })) seen.push(...page.map((s) => s.id));
    expect(new Set(seen).size).toBe(seen.length);
    for (const id of posted) expect(seen).toContain(id);
  });

  it('rebuilds a feed from statuses and follows', async () => {
    const before = await homeIds(fan1);
    expect(before.length).toBeGreaterThan(5);
    await server.ctx.db.deleteFrom('home_feed').where('account_id', '=', fan1.id).execute();
    const emptied = await homeIds(fan1);
    // Only the merged (celebrity) posts remain without the pushed feed.
    expect(emptied.length).toBeLessThan(before.length);
    await rebuildFeed(server.ctx, fan1.id);
    expect(await homeIds(fan1)).toEqual(before);
  });
});

describe('a fan-out to many followers', () => {
  let big: TestServer;
  afterAll(async () => {
    await big?.stop();
  });

  it('is written in bounded writes, reaches every follower once, and is taken back the same way', async () => {
    big = await startTestServer();
    const author = await createUser(big.url, 'popular');
    // Two and a half chunks of followers, made in the database directly (the API would take minutes).
    const followers = 2 * FANOUT_CHUNK + FANOUT_CHUNK / 2;
    const now = new Date().toISOString();
    const accounts = Array.from({ length: followers }, (_, i) => ({ id: big.ctx.ids.next(), username: `f${i}`, username_lower: `f${i}`, display_name: '', note: '', locked: 0 as const, bot: 0 as const, discoverable: 1 as const, created_at: now, updated_at: now }));
    await big.ctx.write(async (trx) => {
      await trx.insertInto('accounts').values(accounts).execute();
      await trx
        .insertInto('follows')
        .values(accounts.map((a) => ({ id: big.ctx.ids.next(), account_id: a.id, target_account_id: author.id, show_reblogs: 1 as const, notify: 0 as const, created_at: now })))
        .execute();
    });
    const status = await author.client.v1.statuses.create({ status: 'to all of you' });
    await big.worker.drain();
    const reached = async () =>
      Number((await big.ctx.db.selectFrom('home_feed').select((eb) => eb.fn.countAll().as('n')).where('status_id', '=', status.id).executeTakeFirstOrThrow()).n);
    // Every follower, and the author's own feed.
    expect(await reached()).toBe(followers + 1);

    // Counted again, writes and all: one write per chunk of follows, never one for all of them (and one for the
    // accounts that follow its tags, a public status's).
    let writes = 0;
    const counting: AppContext = Object.create(big.ctx, {
      write: { value: (fn: Parameters<AppContext['write']>[0]) => (writes++, big.ctx.write(fn)) },
    });
    await big.ctx.db.deleteFrom('home_feed').where('status_id', '=', status.id).where('account_id', '<>', author.id).execute();
    await fanOut(counting, status.id);
    expect(await reached()).toBe(followers + 1);
    expect(writes).toBe(Math.ceil(followers / FANOUT_CHUNK) + 1);

    writes = 0;
    await unfanOut(counting, status.id);
    expect(await reached()).toBe(0);
    expect(writes).toBe(Math.ceil((followers + 1) / FANOUT_CHUNK));
  });
});
