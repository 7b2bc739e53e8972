/**
 * The visibility matrix: who sees a status of each visibility on each read
 * surface, driven through a real Mastodon client (masto) against a real
 * server. The expected table follows Mastodon's rules (StatusPolicy#show?,
 * StatusFilter, FanOutOnWriteService, PublicFeed), with one deliberate
 * Starling rule: a block hides statuses both ways, so a viewer who blocked
 * the author gets a 404 too, where Mastodon would still show them the
 * author's public statuses on request.
 *
 * The matrix runs twice: with ordinary push fan-out, and with the author
 * above the fan-out threshold, so home timelines are merged on read.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRestAPIClient, MastoHttpError, type mastodon } from 'masto';
import { createUser, startTestServer, type TestServer, type TestUser } from '../helpers/server.js';

const VISIBILITIES = ['public', 'unlisted', 'private', 'direct'] as const;
type Vis = (typeof VISIBILITIES)[number];

const VIEWERS = ['author', 'follower', 'mentionedFollower', 'mentioned', 'stranger', 'muter', 'blocked', 'blocker', 'anonymous'] as const;
type Viewer = (typeof VIEWERS)[number];

const SURFACES = ['show', 'descendant', 'ancestor', 'home', 'public', 'tag', 'account'] as const;
type Surface = (typeof SURFACES)[number];

/**
 * viewer × surface → one letter per visibility, in the order public,
 * unlisted, private, direct: Y visible, N hidden, - not applicable.
 *
 * - follower, mentionedFollower and muter follow the author; blocked and
 *   blocker followed the author before the block (which ends the follow).
 * - mentioned and mentionedFollower are mentioned in every status.
 * - muter muted the author: Mastodon hides muted accounts from home, the
 *   public and tag timelines and threads (StatusFilter), not from show or
 *   the account's own profile.
 * - show / account: public and unlisted to everyone; private to followers
 *   and the mentioned; direct to the mentioned; the author sees all.
 * - descendant: the status is a reply under a public status by the author,
 *   seen in that parent's context. ancestor: the status is the parent of a
 *   public reply by `mentioned`, seen in that reply's context.
 * - public / tag: public statuses only.
 * - home: the author, and followers for public, unlisted and private; a
 *   direct status reaches only mentioned accounts that follow the author
 *   (Mastodon's deliver_to_mentioned_followers), never a muter.
 */
const EXPECTED: Record<Viewer, Record<Surface, string>> = {
  //                  show     descendant      ancestor        home          public        tag           account
  author:            { show: 'YYYY', descendant: 'YYYY', ancestor: 'YYYY', home: 'YYYY', public: 'YNNN', tag: 'YNNN', account: 'YYYY' },
  follower:          { show: 'YYYN', descendant: 'YYYN', ancestor: 'YYYN', home: 'YYYN', public: 'YNNN', tag: 'YNNN', account: 'YYYN' },
  mentionedFollower: { show: 'YYYY', descendant: 'YYYY', ancestor: 'YYYY', home: 'YYYY', public: 'YNNN', tag: 'YNNN', account: 'YYYY' },
  mentioned:         { show: 'YYYY', descendant: 'YYYY', ancestor: 'YYYY', home: 'NNNN', public: 'YNNN', tag: 'YNNN', account: 'YYYY' },
  stranger:          { show: 'YYNN', descendant: 'YYNN', ancestor: 'YYNN', home: 'NNNN', public: 'YNNN', tag: 'YNNN', account: 'YYNN' },
  muter:             { show: 'YYYN', descendant: 'NNNN', ancestor: 'NNNN', home: 'NNNN', public: 'NNNN', tag: 'NNNN', account: 'YYYN' },
  blocked:           { show: 'NNNN', descendant: 'NNNN', ancestor: 'NNNN', home: 'NNNN', public: 'NNNN', tag: 'NNNN', account: 'NNNN' },
  blocker:           { show: 'NNNN', descendant: 'NNNN', ancestor: 'NNNN', home: 'NNNN', public: 'NNNN', tag: 'NNNN', account: 'NNNN' },
  anonymous:         { show: 'YYNN', descendant: 'YYNN', ancestor: 'YYNN', home: '----', public: 'YNNN', tag: 'YNNN', account: 'YYNN' },
};

function expected(viewer: Viewer, vis: Vis, surface: Surface): boolean | null {
  const c = EXPECTED[viewer][surface][VISIBILITIES.indexOf(vis)];
  return c === 'Y' ? true : c === 'N' ? false : null;
}

function statusCodeOf(err: unknown): number | undefined {
  return err instanceof MastoHttpError ? err.statusCode : undefined;
}

/** What a surface shows a viewer: the statuses listed, or 'not_found' when the whole request 404s. */
type Listing = mastodon.v1.Status[] | 'not_found';

async function listOr404(load: () => Promise<mastodon.v1.Status[]>): Promise<Listing> {
  try {
    return await load();
  } catch (err) {
    if (statusCodeOf(err) === 404) return 'not_found';
    throw err;
  }
}

const MODES = [
  { name: 'push fan-out', overrides: {} },
  { name: 'pull (author above the fan-out threshold)', overrides: { fanoutThreshold: 1 } },
] as const;

describe.each(MODES)('visibility matrix, $name', ({ overrides }) => {
  let server: TestServer;
  let users: Record<Exclude<Viewer, 'anonymous'>, TestUser>;
  let author: TestUser;
  const clients = {} as Record<Viewer, mastodon.rest.Client>;
  const tag = `vis${process.pid}${Object.keys(overrides).length}`;
  /** The status under test, per visibility: top-level, and a reply under a public parent. */
  const posts = {} as Record<Vis, mastodon.v1.Status>;
  const replies = {} as Record<Vis, mastodon.v1.Status>;
  /** A public reply by `mentioned` to each status in `posts`. */
  const answers = {} as Record<Vis, mastodon.v1.Status>;
  let parent: mastodon.v1.Status;
  const cache = new Map<string, Promise<Listing>>();

  beforeAll(async () => {
    server = await startTestServer(overrides);
    const make = async () => createUser(server.url);
    users = {
      author: await make(),
      follower: await make(),
      mentionedFollower: await make(),
      mentioned: await make(),
      stranger: await make(),
      muter: await make(),
      blocked: await make(),
      blocker: await make(),
    };
    author = users.author;
    for (const v of VIEWERS) clients[v] = v === 'anonymous' ? createRestAPIClient({ url: server.url }) : users[v].client;

    for (const v of ['follower', 'mentionedFollower', 'muter', 'blocked', 'blocker'] as const) {
      const rel = await users[v].client.v1.accounts.$select(author.id).follow();
      expect(rel.following).toBe(true);
    }
    expect((await users.muter.client.v1.accounts.$select(author.id).mute()).muting).toBe(true);
    expect((await author.client.v1.accounts.$select(users.blocked.id).block()).blocking).toBe(true);
    expect((await users.blocker.client.v1.accounts.$select(author.id).block()).blocking).toBe(true);
    await server.worker.drain();

    const mentions = `@${users.mentioned.username} @${users.mentionedFollower.username}`;
    parent = await author.client.v1.statuses.create({ status: 'a public thread start', visibility: 'public' });
    for (const vis of VISIBILITIES) {
      posts[vis] = await author.client.v1.statuses.create({ status: `${mentions} a ${vis} post #${tag}`, visibility: vis });
      replies[vis] = await author.client.v1.statuses.create({ status: `${mentions} a ${vis} reply #${tag}`, visibility: vis, inReplyToId: parent.id });
      answers[vis] = await users.mentioned.client.v1.statuses.create({ status: 'a public answer', visibility: 'public', inReplyToId: posts[vis].id });
      expect(posts[vis].visibility).toBe(vis);
      expect(replies[vis].visibility).toBe(vis);
      expect(posts[vis].mentions.map((m) => m.id).sort()).toEqual([users.mentioned.id, users.mentionedFollower.id].sort());
    }
    await server.worker.drain();
  });

  afterAll(async () => {
    await server?.stop();
  });

  /** The listing a surface gives a viewer, fetched once per viewer and surface (or thread). */
  function listing(viewer: Viewer, surface: Exclude<Surface, 'show'>, vis: Vis): Promise<Listing> {
    const key = surface === 'ancestor' ? `${viewer}:${surface}:${vis}` : `${viewer}:${surface}`;
    let p = cache.get(key);
    if (!p) {
      const c = clients[viewer];
      const load: Record<typeof surface, () => Promise<mastodon.v1.Status[]>> = {
        descendant: async () => (await c.v1.statuses.$select(parent.id).context.fetch()).descendants,
        ancestor: async () => (await c.v1.statuses.$select(answers[vis].id).context.fetch()).ancestors,
        home: async () => c.v1.timelines.home.list({ limit: 40 }),
        public: async () => c.v1.timelines.public.list({ limit: 40 }),
        tag: async () => c.v1.timelines.tag.$select(tag).list({ limit: 40 }),
        account: async () => c.v1.accounts.$select(author.id).statuses.list({ limit: 40 }),
      };
      p = listOr404(load[surface]);
      cache.set(key, p);
    }
    return p;
  }

  for (const viewer of VIEWERS) {
    for (const vis of VISIBILITIES) {
      for (const surface of SURFACES) {
        const want = expected(viewer, vis, surface);
        if (want === null) continue;
        it(`${viewer} ${want ? 'sees' : 'does not see'} a ${vis} status on ${surface}`, async () => {
          const target = surface === 'descendant' ? replies[vis] : posts[vis];
          if (surface === 'show') {
            if (want) {
              const s = await clients[viewer].v1.statuses.$select(target.id).fetch();
              expect(s.id).toBe(target.id);
              expect(s.visibility).toBe(vis);
              expect(s.account.id).toBe(author.id);
            } else {
              const err = await clients[viewer].v1.statuses.$select(target.id).fetch().then(
                (s) => new Error(`expected a 404, got status ${s.id}`),
                (e: unknown) => e,
              );
              expect(statusCodeOf(err), String(err)).toBe(404);
            }
            return;
          }
          const got = await listing(viewer, surface, vis);
          // Only a thread under a status the viewer may not see may 404 as a whole; lists never do.
          if (got === 'not_found') {
            expect(want).toBe(false);
            expect(surface === 'descendant' && (viewer === 'blocked' || viewer === 'blocker')).toBe(true);
            return;
          }
          const found = got.filter((s) => s.id === target.id || s.reblog?.id === target.id);
          if (want) {
            expect(found).toHaveLength(1);
            expect(found[0].id).toBe(target.id);
            expect(found[0].visibility).toBe(vis);
          } else {
            expect(found.map((s) => `${s.id} (${s.visibility})`)).toEqual([]);
          }
        });
      }
    }
  }

  it('the answers under each status are themselves visible, so the ancestor cells test the parent, not the thread', async () => {
    for (const viewer of VIEWERS) {
      for (const vis of VISIBILITIES) {
        const s = await clients[viewer].v1.statuses.$select(answers[vis].id).fetch();
        expect(s.id).toBe(answers[vis].id);
      }
    }
  });

  describe('reblogs into home timelines', () => {
    let original: mastodon.v1.Status;
    let reblog: mastodon.v1.Status;
    let u: Record<'reblogger' | 'poster' | 'control' | 'blocksPoster' | 'blockedByPoster' | 'mutesPoster' | 'blocksLater', TestUser>;

    beforeAll(async () => {
      const make = async () => createUser(server.url);
      u = {
        reblogger: await make(),
        poster: await make(),
        control: await make(),
        blocksPoster: await make(),
        blockedByPoster: await make(),
        mutesPoster: await make(),
        blocksLater: await make(),
      };
      for (const k of ['control', 'blocksPoster', 'blockedByPoster', 'mutesPoster', 'blocksLater'] as const) {
        expect((await u[k].client.v1.accounts.$select(u.reblogger.id).follow()).following).toBe(true);
      }
      await u.blocksPoster.client.v1.accounts.$select(u.poster.id).block();
      await u.poster.client.v1.accounts.$select(u.blockedByPoster.id).block();
      await u.mutesPoster.client.v1.accounts.$select(u.poster.id).mute();
      await server.worker.drain();
      original = await u.poster.client.v1.statuses.create({ status: 'boost me', visibility: 'public' });
      reblog = await u.reblogger.client.v1.statuses.$select(original.id).reblog();
      expect(reblog.reblog?.id).toBe(original.id);
      await server.worker.drain();
    });

    const home = async (who: TestUser) => {
      const list = await who.client.v1.timelines.home.list({ limit: 40 });
      return list.filter((s) => s.id === original.id || s.reblog?.id === original.id).map((s) => s.id);
    };

    it('a follower of the reblogger sees the reblog (the control)', async () => {
      expect(await home(u.control)).toEqual([reblog.id]);
      expect(await home(u.blocksLater)).toEqual([reblog.id]);
    });

    it('a viewer who blocked the original author does not', async () => {
      expect(await home(u.blocksPoster)).toEqual([]);
    });

    it('a viewer the original author blocked does not', async () => {
      expect(await home(u.blockedByPoster)).toEqual([]);
    });

    it('a viewer who muted the original author does not', async () => {
      expect(await home(u.mutesPoster)).toEqual([]);
    });

    it('a reblog already in the home timeline leaves it when the viewer blocks the original author', async () => {
      await u.blocksLater.client.v1.accounts.$select(u.poster.id).block();
      await server.worker.drain();
      expect(await home(u.blocksLater)).toEqual([]);
      expect(await home(u.control)).toEqual([reblog.id]);
    });
  });
});

describe('the expected table', () => {
  it('has visible and hidden cells on every surface, so no surface can pass vacuously', () => {
    for (const surface of SURFACES) {
      const cells = VIEWERS.flatMap((v) => VISIBILITIES.map((vis) => expected(v, vis, surface)));
      expect(cells, surface).toContain(true);
      expect(cells, surface).toContain(false);
    }
  });
});
