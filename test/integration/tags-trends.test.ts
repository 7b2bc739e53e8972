/**
 * Hashtags and trends through a real Mastodon client (masto): the Tag entity
 * and its history, following tags (and what that does to home timelines),
 * the followed-tags list, trending tags rising against their own baseline,
 * and trending statuses.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRestAPIClient, MastoHttpError } from 'masto';
import { startTestServer, createUser, type TestServer, type TestUser } from '../helpers/server.js';
import { idAtTime } from '../../src/domain/ids.js';
import type { DomainEvent } from '../../src/bus/events.js';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

let server: TestServer;
let viewer: TestUser;
let stranger: TestUser;
let spammer: TestUser;
let celeb: TestUser;
let posters: TestUser[];

beforeAll(async () => {
  // Two followers make an author "popular" (pull distribution) here.
  server = await startTestServer({ fanoutThreshold: 2 });
  [viewer, stranger, spammer, celeb, ...posters] = await Promise.all(
    ['viewer', 'stranger', 'spammer', 'celeb', 'p1', 'p2', 'p3', 'p4', 'p5', 'p6'].map((n) => createUser(server.url, n)),
  );
  await posters[0].client.v1.accounts.$select(celeb.id).follow();
  await posters[1].client.v1.accounts.$select(celeb.id).follow();
  await server.worker.drain();
});
afterAll(async () => {
  await server?.stop();
});

let seq = 0;
/** Writes a public status with one tag as if it had been posted at `ms` (ids and created_at in the past). */
async function insertPast(rows: { accountId: string; tag: string; ms: number }[]): Promise<void> {
  await server.ctx.db.transaction().execute(async (trx) => {
    for (const r of rows) {
      await trx.insertInto('tags').values({ id: server.ctx.ids.next(), name: r.tag, created_at: new Date(r.ms).toISOString() }).onConflict((oc) => oc.column('name').doNothing()).execute();
      const tag = await trx.selectFrom('tags').select('id').where('name', '=', r.tag).executeTakeFirstOrThrow();
      const id = (BigInt(idAtTime(r.ms)) + BigInt(++seq % 4096)).toString();
      await trx
        .insertInto('statuses')
        .values({
          id,
          account_id: r.accountId,
          text: `#${r.tag}`,
          content: `<p>#${r.tag}</p>`,
          spoiler_text: '',
          sensitive: 0,
          visibility: 'public',
          language: null,
          in_reply_to_id: null,
          in_reply_to_account_id: null,
          reblog_of_id: null,
          application_id: null,
          distribution: 'push',
          created_at: new Date(r.ms).toISOString(),
          edited_at: null,
          deleted_at: null,
        })
        .execute();
      await trx.insertInto('status_tags').values({ status_id: id, tag_id: tag.id }).execute();
    }
  });
}

async function homeIds(user: TestUser): Promise<string[]> {
  return (await user.client.v1.timelines.home.list({ limit: 40 })).map((s) => s.id);
}

function utcMidnight(ms: number): number {
  return Math.floor(ms / DAY) * DAY;
}

describe('trending tags', () => {
  const steadyTimes: number[] = [];

  it('ranks a tag rising now above one used steadily every day, and never one account’s tag', async () => {
    const now = Date.now();
    // #steadytag: the same three accounts every hour of the past week...
    const rows: { accountId: string; tag: string; ms: number }[] = [];
    for (let k = 0; k < 7 * 24; k++) {
      for (const [i, p] of posters.slice(0, 3).entries()) {
        const ms = now - HOUR - k * HOUR - 5 * 60_000 - i * 1000;
        rows.push({ accountId: p.id, tag: 'steadytag', ms });
        steadyTimes.push(ms);
      }
    }
    // ...while #risingtag was used once, three days ago.
    rows.push({ accountId: posters[5].id, tag: 'risingtag', ms: now - 3 * DAY });
    await insertPast(rows);

    // The last hour: the steady three again (as usual), six accounts on #RisingTag, one account twelve times on #spamtag.
    for (const p of posters.slice(0, 3)) {
      await p.client.v1.statuses.create({ status: 'as every hour #steadytag' });
      steadyTimes.push(Date.now());
    }
    for (const p of posters) await p.client.v1.statuses.create({ status: 'look at this #RisingTag' });
    for (let i = 0; i < 12; i++) await spammer.client.v1.statuses.create({ status: `buy now ${i} #spamtag` });
    // Statuses that do not count: unlisted and private ones, and a deleted one.
    await viewer.client.v1.statuses.create({ status: 'quiet #hiddentag', visibility: 'unlisted' });
    await stranger.client.v1.statuses.create({ status: 'quiet #hiddentag', visibility: 'private' });
    const gone = await celeb.client.v1.statuses.create({ status: 'soon gone #hiddentag' });
    await celeb.client.v1.statuses.$select(gone.id).remove();

    const trends = await viewer.client.v1.trends.tags.list();
    const names = trends.map((t) => t.name);
    expect(names[0]).toBe('risingtag');
    expect(names).not.toContain('steadytag');
    expect(names).not.toContain('spamtag');
    expect(names).not.toContain('hiddentag');

    const rising = trends[0];
    expect(rising.url).toBe(`${server.url}/tags/risingtag`);
    expect(rising.following).toBe(false);
    expect(rising.history).toHaveLength(7);
    expect(rising.history![0]).toEqual({ day: String(utcMidnight(Date.now()) / 1000), uses: '6', accounts: '6' });
    // The alias answers the same, and anonymously (no `following` then); the Link header pages by offset.
    const res = await fetch(`${server.url}/api/v1/trends?limit=1`);
    expect(res.headers.get('link')).toBe(`<${server.url}/api/v1/trends?limit=1&offset=1>; rel="next"`);
    const anon = (await res.json()) as { name: string; following?: boolean }[];
    expect(anon.map((t) => t.name)).toEqual(['risingtag']);
    expect(anon[0]).not.toHaveProperty('following');
  });

  it('shows a tag’s daily uses and accounts for the last seven days, newest first', async () => {
    const tag = await viewer.client.v1.tags.$select('SteadyTag').fetch();
    expect(tag.name).toBe('steadytag');
    const today = utcMidnight(Date.now());
    const expected = Array.from({ length: 7 }, (_, i) => {
      const day = today - i * DAY;
      const uses = steadyTimes.filter((ms) => ms >= day && ms < day + DAY).length;
      return { day: String(day / 1000), uses: String(uses), accounts: String(uses ? 3 : 0) };
    });
    expect(tag.history).toEqual(expected);
    expect(Number(tag.history![3].uses)).toBe(72);
  });
});

describe('following tags', () => {
  it('shows a tag with following, and 404 for a tag that never existed or could not exist', async () => {
    expect((await viewer.client.v1.tags.$select('risingtag').fetch()).following).toBe(false);
    for (const name of ['neverusedtag', '1234', 'no-dash']) {
      const err = await viewer.client.v1.tags.$select(name).fetch().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(MastoHttpError);
      expect((err as MastoHttpError).statusCode).toBe(404);
    }
    const res = await fetch(`${server.url}/api/v1/tags/neverusedtag`);
    expect(res.status).toBe(404);
    expect(await res.json()).toEqual({ error: 'Record not found' });
  });

  it('follows a tag (creating it), idempotently, and tells the bus', async () => {
    const events: DomainEvent[] = [];
    const off = server.ctx.bus.subscribe((e) => void events.push(e));
    const first = await viewer.client.v1.tags.$select('Birds').follow();
    const again = await viewer.client.v1.tags.$select('birds').follow();
    off();
    for (const t of [first, again]) {
      expect(t).toMatchObject({ name: 'birds', url: `${server.url}/tags/birds`, following: true });
      expect(t.history).toHaveLength(7);
    }
    // Only this viewer's events: the ops engine's canary may post meanwhile.
    expect(events.filter((e) => e.type === 'relationship.changed' && e.accountId === viewer.id)).toEqual([
      { type: 'relationship.changed', accountId: viewer.id, targetAccountId: viewer.id, change: 'tag.follow', tag: 'birds' },
    ]);
    const rows = await server.ctx.db.selectFrom('followed_tags').select('id').where('account_id', '=', viewer.id).execute();
    expect(rows).toHaveLength(1);
    expect((await viewer.client.v1.tags.$select('birds').fetch()).following).toBe(true);
    expect((await stranger.client.v1.tags.$select('birds').fetch()).following).toBe(false);
  });

  it('needs write:follows to follow and read:follows to list', async () => {
    const reader = await createUser(server.url, 'reader', { scopes: 'read write:accounts' });
    const err = await reader.client.v1.tags.$select('birds').follow().catch((e: unknown) => e);
    expect((err as MastoHttpError).statusCode).toBe(403);
    const writer = await createUser(server.url, 'writer', { scopes: 'write read:accounts' });
    const res = await fetch(`${server.url}/api/v1/followed_tags`, { headers: { authorization: `Bearer ${writer.token}` } });
    expect(res.status).toBe(403);
  });

  it('brings strangers’ public posts with a followed tag into the home timeline, until unfollowed', async () => {
    const tagged = await stranger.client.v1.statuses.create({ status: 'a robin! #birds' });
    const privateOne = await stranger.client.v1.statuses.create({ status: 'a secret robin #birds', visibility: 'private' });
    const unlisted = await stranger.client.v1.statuses.create({ status: 'a quiet robin #birds', visibility: 'unlisted' });
    const untagged = await stranger.client.v1.statuses.create({ status: 'no tag here' });
    // An author past the fan-out threshold: their posts are merged on read for followers, pushed to tag followers.
    const popular = await celeb.client.v1.statuses.create({ status: 'a famous robin #Birds' });
    const boost = await stranger.client.v1.statuses.$select(popular.id).reblog();
    await server.worker.drain();
    let home = await homeIds(viewer);
    expect(home).toContain(tagged.id);
    expect(home).toContain(popular.id);
    for (const id of [privateOne.id, unlisted.id, untagged.id, boost.id]) expect(home).not.toContain(id);
    // Follower of the tag and author at once: no duplicate.
    expect(new Set(home).size).toBe(home.length);

    // Blocks and mutes still apply on read: muting the author hides it.
    await viewer.client.v1.accounts.$select(stranger.id).mute();
    expect(await homeIds(viewer)).not.toContain(tagged.id);
    await viewer.client.v1.accounts.$select(stranger.id).unmute();
    expect(await homeIds(viewer)).toContain(tagged.id);

    const unfollowed = await viewer.client.v1.tags.$select('birds').unfollow();
    expect(unfollowed.following).toBe(false);
    expect((await viewer.client.v1.tags.$select('birds').unfollow()).following).toBe(false);
    const later = await stranger.client.v1.statuses.create({ status: 'another robin #birds' });
    await server.worker.drain();
    home = await homeIds(viewer);
    expect(home).not.toContain(later.id);
    // What arrived before the unfollow stays, as in Mastodon.
    expect(home).toContain(tagged.id);
  });

  it('lists followed tags, newest first, paged by the Link header', async () => {
    const follower = posters[4];
    for (const name of ['alpha', 'beta', 'gamma']) await follower.client.v1.tags.$select(name).follow();
    const pages: string[][] = [];
    for await (const page of follower.client.v1.followedTags.list({ limit: 2 })) pages.push(page.map((t) => t.name));
    // The last Link leads to an empty page, which ends the walk.
    expect(pages).toEqual([['gamma', 'beta'], ['alpha'], []]);
    const all = await follower.client.v1.followedTags.list();
    expect(all.every((t) => t.following === true)).toBe(true);
    expect(await stranger.client.v1.followedTags.list()).toEqual([]);
  });
});

describe('trending statuses', () => {
  it('ranks a much-favourited recent post first, decaying older ones', async () => {
    const [author, other] = [posters[3], posters[4]];
    const hot = await author.client.v1.statuses.create({ status: 'everyone likes this' });
    const warm = await other.client.v1.statuses.create({ status: 'someone likes this' });
    const secret = await author.client.v1.statuses.create({ status: 'followers only', visibility: 'private' });
    for (const p of [...posters.slice(0, 3), viewer, stranger]) await p.client.v1.statuses.$select(hot.id).favourite();
    await viewer.client.v1.statuses.$select(warm.id).favourite();
    await viewer.client.v1.statuses.$select(secret.id).favourite().catch(() => null);
    // Six favourites a day ago count for less than one now; three days ago, not at all.
    await insertPast([
      { accountId: other.id, tag: 'old', ms: Date.now() - DAY },
      { accountId: other.id, tag: 'older', ms: Date.now() - 3 * DAY },
    ]);
    const old = await server.ctx.db.selectFrom('statuses').select('id').where('text', 'in', ['#old', '#older']).orderBy('id', 'desc').execute();
    await server.ctx.db.updateTable('statuses').set({ favourites_count: 6 }).where('id', 'in', old.map((r) => r.id)).execute();

    const trending = (await viewer.client.v1.trends.statuses.list()).map((s) => s.id);
    expect(trending[0]).toBe(hot.id);
    expect(trending.indexOf(warm.id)).toBeGreaterThan(0);
    expect(trending.indexOf(old[0].id)).toBeGreaterThan(trending.indexOf(warm.id));
    expect(trending).not.toContain(old[1].id);
    expect(trending).not.toContain(secret.id);
    const shown = await viewer.client.v1.trends.statuses.list({ limit: 1 });
    expect(shown[0]).toMatchObject({ id: hot.id, favouritesCount: 5, favourited: true });

    // A viewer who blocked the author does not see it.
    await stranger.client.v1.accounts.$select(author.id).block();
    expect((await stranger.client.v1.trends.statuses.list()).map((s) => s.id)).not.toContain(hot.id);
    // Paged one at a time, the same list as in one page: what the viewer hid (the first-ranked) left out of both.
    const full = (await stranger.client.v1.trends.statuses.list({ limit: 40 })).map((s) => s.id);
    expect(full.length).toBeGreaterThan(1);
    const paged: string[] = [];
    for (let offset = 0; offset <= full.length; offset++) {
      // masto's types have no `offset` here; Mastodon's API pages trends by it.
      const res = await fetch(`${server.url}/api/v1/trends/statuses?limit=1&offset=${offset}`, { headers: { authorization: `Bearer ${stranger.token}` } });
      paged.push(...((await res.json()) as { id: string }[]).map((s) => s.id));
    }
    expect(paged).toEqual(full);
    expect(await createRestAPIClient({ url: server.url }).v1.trends.links.list()).toEqual([]);
  });
});
