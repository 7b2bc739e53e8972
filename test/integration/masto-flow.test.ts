/**
 * The core promise, driven by a real Mastodon client library (masto) against a
 * real server on 127.0.0.1: register, post, follow, see it in a follower's
 * home timeline, favourite, reblog, reply, read the thread, follow a locked
 * account through a request, and page a 100-post timeline while posts arrive.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRestAPIClient } from 'masto';
import { startTestServer, createUser, eventually, type TestServer, type TestUser } from '../helpers/server.js';

let server: TestServer;
let alice: TestUser;
let bob: TestUser;
let carol: TestUser;

beforeAll(async () => {
  server = await startTestServer();
  [alice, bob, carol] = await Promise.all([createUser(server.url, 'alice'), createUser(server.url, 'bob'), createUser(server.url, 'carol')]);
});
afterAll(async () => {
  await server?.stop();
});

describe('instance discovery', () => {
  it('serves v1 and v2 instance documents that clients accept', async () => {
    const anon = createRestAPIClient({ url: server.url });
    const v2 = await anon.v2.instance.fetch();
    expect(v2.configuration.statuses.maxCharacters).toBe(500);
    expect(v2.configuration.urls.streaming).toMatch(/^ws:\/\/127\.0\.0\.1:\d+$/);
    const v1 = await anon.v1.instance.fetch();
    expect(v1.version).toMatch(/^\d+\.\d+\.\d+/);
    expect(v1.urls.streamingApi).toBe(v2.configuration.urls.streaming);
  });

  it('declares Mastodon compatibility in NodeInfo', async () => {
    const links = (await (await fetch(`${server.url}/.well-known/nodeinfo`)).json()) as { links: { href: string }[] };
    const doc = (await (await fetch(links.links[0].href)).json()) as { metadata: { upstream: { name: string } } };
    expect(doc.metadata.upstream.name).toBe('mastodon');
  });
});

describe('posting and timelines', () => {
  it('delivers a post to a follower’s home timeline', async () => {
    const rel = await bob.client.v1.accounts.$select(alice.id).follow();
    expect(rel.following).toBe(true);
    const post = await alice.client.v1.statuses.create({ status: 'Hello #starling from @bob', visibility: 'public' });
    expect(post.content).toContain('#<span>starling</span>');
    expect(post.mentions.map((m) => m.username)).toEqual(['bob']);
    expect(post.tags.map((t) => t.name)).toEqual(['starling']);
    const seen = await eventually(async () => (await bob.client.v1.timelines.home.list({ limit: 20 })).find((s) => s.id === post.id));
    expect(seen.account.username).toBe('alice');
    // A stranger's home timeline does not get it.
    expect((await carol.client.v1.timelines.home.list()).some((s) => s.id === post.id)).toBe(false);
  });

  it('favourites, reblogs and bookmarks with counts and viewer flags', async () => {
    const post = await alice.client.v1.statuses.create({ status: 'Favourite me' });
    const fav = await bob.client.v1.statuses.$select(post.id).favourite();
    expect(fav.favourited).toBe(true);
    expect(fav.favouritesCount).toBe(1);
    // Favouriting twice is harmless.
    expect((await bob.client.v1.statuses.$select(post.id).favourite()).favouritesCount).toBe(1);
    const reblog = await carol.client.v1.statuses.$select(post.id).reblog();
    expect(reblog.reblog?.id).toBe(post.id);
    expect(reblog.reblog?.reblogsCount).toBe(1);
    const bookmarked = await carol.client.v1.statuses.$select(post.id).bookmark();
    expect(bookmarked.bookmarked).toBe(true);
    expect((await carol.client.v1.bookmarks.list()).map((s) => s.id)).toContain(post.id);
    expect((await bob.client.v1.favourites.list()).map((s) => s.id)).toContain(post.id);
    const favouritedBy = await alice.client.v1.statuses.$select(post.id).favouritedBy.list();
    expect(favouritedBy.map((a) => a.username)).toEqual(['bob']);
    const rebloggedBy = await alice.client.v1.statuses.$select(post.id).rebloggedBy.list();
    expect(rebloggedBy.map((a) => a.username)).toEqual(['carol']);
    // Each viewer's own flags, and only theirs.
    expect(await carol.client.v1.statuses.$select(post.id).fetch()).toMatchObject({ reblogged: true, bookmarked: true, favourited: false });
    expect(await bob.client.v1.statuses.$select(post.id).fetch()).toMatchObject({ reblogged: false, bookmarked: false, favourited: true });
    const seenByAlice = await alice.client.v1.statuses.$select(post.id).fetch();
    expect(seenByAlice).toMatchObject({ favouritesCount: 1, reblogsCount: 1, favourited: false });
    const unfav = await bob.client.v1.statuses.$select(post.id).unfavourite();
    expect(unfav).toMatchObject({ favourited: false, favouritesCount: 0 });
    const unreblogged = await carol.client.v1.statuses.$select(post.id).unreblog();
    expect(unreblogged).toMatchObject({ reblogged: false, reblogsCount: 0 });
  });

  it('threads replies and serves the context', async () => {
    const root = await alice.client.v1.statuses.create({ status: 'Root of a thread' });
    const reply = await bob.client.v1.statuses.create({ status: '@alice a reply', inReplyToId: root.id });
    const nested = await alice.client.v1.statuses.create({ status: '@bob a reply to the reply', inReplyToId: reply.id });
    expect(reply.inReplyToAccountId).toBe(alice.id);
    const ctxOfReply = await carol.client.v1.statuses.$select(reply.id).context.fetch();
    expect(ctxOfReply.ancestors.map((s) => s.id)).toEqual([root.id]);
    expect(ctxOfReply.descendants.map((s) => s.id)).toEqual([nested.id]);
    const ctxOfRoot = await carol.client.v1.statuses.$select(root.id).context.fetch();
    expect(ctxOfRoot.descendants.map((s) => s.id)).toEqual([reply.id, nested.id]);
    expect((await alice.client.v1.statuses.$select(root.id).fetch()).repliesCount).toBe(1);
  });

  it('edits with history, and deletes returning the source text', async () => {
    const post = await alice.client.v1.statuses.create({ status: 'First version' });
    const edited = await alice.client.v1.statuses.$select(post.id).update({ status: 'Second version' });
    expect(edited.content).toContain('Second version');
    expect(edited.editedAt).not.toBeNull();
    const history = await alice.client.v1.statuses.$select(post.id).history.list();
    expect(history.map((h) => h.content)).toEqual(['<p>First version</p>', '<p>Second version</p>']);
    const deleted = await alice.client.v1.statuses.$select(post.id).remove();
    expect(deleted.text).toBe('Second version');
    await expect(bob.client.v1.statuses.$select(post.id).fetch()).rejects.toMatchObject({ statusCode: 404 });
  });

  it('follows a locked account through a follow request', async () => {
    const dave = await createUser(server.url, 'dave');
    await dave.client.v1.accounts.updateCredentials({ locked: true });
    const requested = await carol.client.v1.accounts.$select(dave.id).follow();
    expect(requested).toMatchObject({ following: false, requested: true });
    const privatePost = await dave.client.v1.statuses.create({ status: 'For followers only', visibility: 'private' });
    await expect(carol.client.v1.statuses.$select(privatePost.id).fetch()).rejects.toMatchObject({ statusCode: 404 });
    const pending = await dave.client.v1.followRequests.list();
    expect(pending.map((a) => a.id)).toEqual([carol.id]);
    const rel = await dave.client.v1.followRequests.$select(carol.id).authorize();
    expect(rel.followedBy).toBe(true);
    const [carolView] = await carol.client.v1.accounts.relationships.fetch({ id: [dave.id] });
    expect(carolView).toMatchObject({ following: true, requested: false });
    expect((await carol.client.v1.statuses.$select(privatePost.id).fetch()).id).toBe(privatePost.id);
    // Accepting the request brings the account's earlier posts into the new follower's home.
    await eventually(async () => (await carol.client.v1.timelines.home.list()).some((s) => s.id === privatePost.id));
    expect((await dave.client.v1.followRequests.list()).length).toBe(0);
  });
});

describe('pagination', () => {
  it('pages 100 posts with max_id and min_id while new posts arrive, with no gap and no duplicate', async () => {
    const erin = await createUser(server.url, 'erin');
    const frank = await createUser(server.url, 'frank');
    await frank.client.v1.accounts.$select(erin.id).follow();
    const posted: string[] = [];
    for (let i = 0; i < 100; i++) posted.push((await erin.client.v1.statuses.create({ status: `post ${i}` })).id);
    await server.worker.drain();

    // Walk backwards (older) with max_id, following the Link header as clients do, posting as we go.
    const seen: string[] = [];
    const arrived: string[] = [];
    let pages = 0;
    const paginator = frank.client.v1.timelines.home.list({ limit: 15 });
    for await (const page of paginator) {
      pages++;
      seen.push(...page.map((s) => s.id));
      arrived.push((await erin.client.v1.statuses.create({ status: `arrived during page ${pages}` })).id);
    }
    await server.worker.drain();
    expect(pages).toBeGreaterThanOrEqual(7);
    expect(new Set(seen).size).toBe(seen.length);
    const postedSet = new Set(posted);
    expect(seen.filter((id) => postedSet.has(id)).sort()).toEqual([...posted].sort());
    // Newest first, strictly.
    for (let i = 1; i < seen.length; i++) expect(BigInt(seen[i - 1]) > BigInt(seen[i])).toBe(true);

    // Walk forwards (newer) with min_id from the oldest post: every post, then every arrival, in order.
    const forward: string[] = [];
    let minId = posted[0];
    for (;;) {
      const res = await fetch(`${server.url}/api/v1/timelines/home?limit=20&min_id=${minId}`, { headers: { authorization: `Bearer ${frank.token}` } });
      const page = (await res.json()) as { id: string }[];
      if (page.length === 0) break;
      // A min_id page is newest first, the oldest entries just after min_id.
      forward.push(...page.map((s) => s.id).reverse());
      minId = page[0].id;
      const prev = /<([^>]+)>; rel="prev"/.exec(res.headers.get('link') ?? '')?.[1];
      expect(prev).toBe(`${server.url}/api/v1/timelines/home?limit=20&min_id=${page[0].id}`);
    }
    expect(forward).toEqual([...posted.slice(1), ...arrived]);
  });

  it('answers since_id with the newest entries after the cursor', async () => {
    const gina = await createUser(server.url, 'gina');
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await gina.client.v1.statuses.create({ status: `s${i}` })).id);
    const res = await gina.client.v1.accounts.$select(gina.id).statuses.list({ sinceId: ids[1], limit: 2 });
    expect(res.map((s) => s.id)).toEqual([ids[4], ids[3]]);
    const older = await gina.client.v1.accounts.$select(gina.id).statuses.list({ maxId: ids[2] });
    expect(older.map((s) => s.id)).toEqual([ids[1], ids[0]]);
  });
});
