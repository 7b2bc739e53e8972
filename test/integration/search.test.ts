/**
 * Search through a real Mastodon client (masto) against a real server:
 * statuses by full text (case- and accent-insensitive, only what the viewer
 * may see, never deleted or edited-away words), accounts by username prefix
 * and display name, hashtags by prefix, paging and filters, and hostile
 * queries that must never reach the full-text engine as syntax.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Migrator, sql, type RawBuilder } from 'kysely';
import { createRestAPIClient, MastoHttpError, type mastodon } from 'masto';
import { createUser, onPostgres, startTestServer, type TestServer, type TestUser } from '../helpers/server.js';
import { migrateToLatest, openSqlite } from '../../src/store/db.js';
import { migrations } from '../../src/store/migrations/index.js';
import { accountSearchFor, fts5AccountSearch, fts5StatusSearch, postgresStatusSearch, prefixUpperBound } from '../../src/store/search.js';

let server: TestServer;
/**
 * alice 'marigold' (display name Ophelia Nightingale) is the author; bob and
 * carol follow her, dave does not; erin 'marigoldfan' is followed by alice,
 * carol and dave.
 */
let alice: TestUser, bob: TestUser, carol: TestUser, dave: TestUser, erin: TestUser;
let anon: mastodon.rest.Client;

const ids = (list: { id: string }[]) => list.map((x) => x.id);

async function statuses(user: TestUser | null, q: string, extra: Partial<mastodon.rest.v2.SearchParams> = {}) {
  const client = user ? user.client : anon;
  return (await client.v2.search.list({ q, type: 'statuses', ...extra })).statuses;
}

async function raw(path: string, token?: string) {
  const res = await fetch(`${server.url}${path}`, { headers: token ? { Authorization: `Bearer ${token}` } : {} });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

/**
 * PostgreSQL's plan for `query` with sequential scans off (so a tiny test table is read through an index if one
 * fits), in a transaction rolled back after: `before` (a DDL statement) is undone with it.
 */
async function postgresPlan(query: RawBuilder<unknown>, before?: RawBuilder<unknown>): Promise<string> {
  let plan = '';
  const rollback = new Error('rollback');
  await server.ctx.db
    .transaction()
    .execute(async (trx) => {
      if (before) await before.execute(trx);
      await sql`SET LOCAL enable_seqscan = off`.execute(trx);
      const rows = await sql<{ 'QUERY PLAN': string }>`EXPLAIN ${query}`.execute(trx);
      plan = rows.rows.map((r) => r['QUERY PLAN']).join('\n');
      throw rollback;
    })
    .catch((err) => {
      if (err !== rollback) throw err;
    });
  return plan;
}

async function statusCode(p: PromiseLike<unknown>): Promise<number | undefined> {
  try {
    await p;
    return 200;
  } catch (err) {
    return err instanceof MastoHttpError ? err.statusCode : undefined;
  }
}

beforeAll(async () => {
  server = await startTestServer();
  anon = createRestAPIClient({ url: server.url });
  [alice, bob, carol, dave, erin] = await Promise.all(
    ['marigold', 'bramble', 'clover', 'dandelion', 'marigoldfan'].map((name) => createUser(server.url, name)),
  );
  await alice.client.v1.accounts.updateCredentials({ displayName: 'Ophelia Nightingale' });
  await bob.client.v1.accounts.$select(alice.id).follow();
  await carol.client.v1.accounts.$select(alice.id).follow();
  // erin is more followed than alice (3 to 2): an exact username must still come first.
  for (const u of [alice, carol, dave]) await u.client.v1.accounts.$select(erin.id).follow();
}, 60_000);

afterAll(async () => {
  await server?.stop();
});

describe('statuses', () => {
  it('finds a status by a word of its text, whatever the case or accents, and by a prefix of the last word', async () => {
    const s = await alice.client.v1.statuses.create({ status: 'The Café serves excellent croissants #Breakfast' });
    for (const q of ['cafe', 'CAFÉ', 'café', 'Croissants', 'croiss', 'excellent cafe', 'breakfast', '#breakfast']) {
      expect(ids(await statuses(dave, q)), q).toContain(s.id);
    }
    expect(await statuses(dave, 'croissantsxyz')).toEqual([]);
    // A quoted phrase must appear as such.
    expect(ids(await statuses(dave, '"serves excellent"'))).toContain(s.id);
    expect(ids(await statuses(dave, '"excellent serves"'))).not.toContain(s.id);
    const [found] = await statuses(dave, 'croissants');
    expect(found.content).toContain('croissants');
    expect(found.account.id).toBe(alice.id);
  });

  it('finds hosts, hyphenated words and their parts, whole or as the word being typed', async () => {
    const s = await alice.client.v1.statuses.create({ status: 'Read numbat-facts.example for well-known numbat lore' });
    for (const q of ['numbat-facts.example', 'well-known', 'known', 'well known', 'numbat lore', 'well-kno']) {
      expect(ids(await statuses(dave, q)), q).toContain(s.id);
    }
    expect(await statuses(dave, 'known-well')).toEqual([]);
  });

  it('finds words in the content warning', async () => {
    const s = await alice.client.v1.statuses.create({ status: 'behind the warning', spoilerText: 'Spoilers about Zeppelins' });
    expect(ids(await statuses(bob, 'zeppelin'))).toContain(s.id);
  });

  it('answers no statuses to an anonymous searcher (Mastodon needs a user for full text), without an error', async () => {
    await alice.client.v1.statuses.create({ status: 'anonymous folk cannot find pangolins' });
    const res = await anon.v2.search.list({ q: 'pangolins' });
    expect(res.statuses).toEqual([]);
    expect(ids(await statuses(dave, 'pangolins'))).toHaveLength(1);
  });

  it('shows a private status to followers and the author, never to others', async () => {
    const s = await alice.client.v1.statuses.create({ status: 'secret marmalade recipe', visibility: 'private' });
    expect(ids(await statuses(bob, 'marmalade'))).toEqual([s.id]);
    expect(ids(await statuses(alice, 'marmalade'))).toEqual([s.id]);
    expect(await statuses(dave, 'marmalade')).toEqual([]);
    expect(await statuses(erin, 'marmalade')).toEqual([]);
  });

  it('shows a direct status only to the mentioned and the author, not to followers', async () => {
    const s = await alice.client.v1.statuses.create({ status: '@bramble whispered pumpernickel', visibility: 'direct' });
    expect(ids(await statuses(bob, 'pumpernickel'))).toEqual([s.id]);
    expect(ids(await statuses(alice, 'pumpernickel'))).toEqual([s.id]);
    expect(await statuses(carol, 'pumpernickel')).toEqual([]);
    expect(await statuses(dave, 'pumpernickel')).toEqual([]);
  });

  it('hides the statuses of blocked and muted authors', async () => {
    const s = await erin.client.v1.statuses.create({ status: 'erin loves rhubarb' });
    expect(ids(await statuses(dave, 'rhubarb'))).toEqual([s.id]);
    await dave.client.v1.accounts.$select(erin.id).mute();
    expect(await statuses(dave, 'rhubarb')).toEqual([]);
    await dave.client.v1.accounts.$select(erin.id).unmute();
    await erin.client.v1.accounts.$select(bob.id).block();
    expect(await statuses(bob, 'rhubarb')).toEqual([]);
    expect(ids(await statuses(dave, 'rhubarb'))).toEqual([s.id]);
    await erin.client.v1.accounts.$select(bob.id).unblock();
  });

  it('does not find deleted statuses', async () => {
    const s = await alice.client.v1.statuses.create({ status: 'ephemeral zanzibar' });
    expect(ids(await statuses(bob, 'zanzibar'))).toEqual([s.id]);
    await alice.client.v1.statuses.$select(s.id).remove();
    expect(await statuses(bob, 'zanzibar')).toEqual([]);
    expect(await statuses(alice, 'zanzibar')).toEqual([]);
  });

  it('follows edits: the old words are gone, the new ones found', async () => {
    const s = await alice.client.v1.statuses.create({ status: 'original wombat' });
    expect(ids(await statuses(bob, 'wombat'))).toEqual([s.id]);
    await alice.client.v1.statuses.$select(s.id).update({ status: 'revised platypus' });
    expect(await statuses(bob, 'wombat')).toEqual([]);
    expect(ids(await statuses(bob, 'platypus'))).toEqual([s.id]);
    // A favourite updates counters, not text: still found.
    await bob.client.v1.statuses.$select(s.id).favourite();
    expect(ids(await statuses(bob, 'platypus'))).toEqual([s.id]);
  });

  it('finds a reblogged status once, as the original, never the reblog', async () => {
    const s = await alice.client.v1.statuses.create({ status: 'boost this narwhal' });
    await bob.client.v1.statuses.$select(s.id).reblog();
    const found = await statuses(dave, 'narwhal');
    expect(ids(found)).toEqual([s.id]);
    expect(found[0].reblog).toBeNull();
  });

  it('pages with offset and limit, newest first', async () => {
    const made: string[] = [];
    for (let i = 0; i < 5; i++) made.push((await alice.client.v1.statuses.create({ status: `quokka number ${i}` })).id);
    const newestFirst = [...made].reverse();
    const pages = [];
    for (const offset of [0, 2, 4, 6]) pages.push(ids(await statuses(bob, 'quokka', { limit: 2, offset })));
    expect(pages).toEqual([newestFirst.slice(0, 2), newestFirst.slice(2, 4), newestFirst.slice(4), []]);
    expect(ids(await statuses(bob, 'quokka'))).toEqual(newestFirst);
    // max_id / min_id bound the ids, as in Mastodon.
    expect(ids(await statuses(bob, 'quokka', { maxId: newestFirst[1] }))).toEqual(newestFirst.slice(2));
    expect(ids(await statuses(bob, 'quokka', { minId: newestFirst[1] }))).toEqual(newestFirst.slice(0, 1));
  });

  it('restricts to one author with account_id', async () => {
    const a = await alice.client.v1.statuses.create({ status: 'kumquat season' });
    const b = await bob.client.v1.statuses.create({ status: 'kumquat jam' });
    expect(ids(await statuses(carol, 'kumquat')).sort()).toEqual([a.id, b.id].sort());
    expect(ids(await statuses(carol, 'kumquat', { accountId: bob.id }))).toEqual([b.id]);
    expect(ids(await statuses(carol, 'kumquat', { accountId: alice.id }))).toEqual([a.id]);
    expect(await statusCode(statuses(carol, 'kumquat', { accountId: '1000000000000000001' }))).toBe(404);
  });
});

describe('accounts', () => {
  it('finds accounts by a prefix of the username, case-insensitively, the exact one first', async () => {
    const res = await dave.client.v2.search.list({ q: 'MARI', type: 'accounts' });
    expect(ids(res.accounts).sort()).toEqual([alice.id, erin.id].sort());
    const exact = await dave.client.v2.search.list({ q: 'marigold', type: 'accounts' });
    expect(ids(exact.accounts)).toEqual([alice.id, erin.id]);
    expect(ids((await dave.client.v2.search.list({ q: '@marigold', type: 'accounts' })).accounts)[0]).toBe(alice.id);
  });

  it('finds accounts by a word of the display name', async () => {
    for (const q of ['ophelia', 'Nightin', 'ophelia night']) {
      expect(ids((await dave.client.v2.search.list({ q, type: 'accounts' })).accounts), q).toEqual([alice.id]);
    }
    expect((await dave.client.v2.search.list({ q: 'ightingale', type: 'accounts' })).accounts).toEqual([]);
  });

  it('treats user@ourdomain as an exact address, and another domain as nothing', async () => {
    const domain = server.ctx.urls.domain;
    expect(ids((await dave.client.v2.search.list({ q: `marigold@${domain}`, type: 'accounts' })).accounts)).toEqual([alice.id]);
    expect(ids((await dave.client.v2.search.list({ q: `@marigold@${domain.toUpperCase()}`, type: 'accounts' })).accounts)).toEqual([alice.id]);
    expect((await dave.client.v2.search.list({ q: 'marigold@elsewhere.example', type: 'accounts' })).accounts).toEqual([]);
  });

  it('finds accounts for anonymous searchers too', async () => {
    expect(ids((await anon.v2.search.list({ q: 'marigold', type: 'accounts' })).accounts)).toEqual([alice.id, erin.id]);
  });

  it('restricts to followed accounts with following=true', async () => {
    expect(ids((await bob.client.v2.search.list({ q: 'mari', type: 'accounts', following: true })).accounts)).toEqual([alice.id]);
    expect(ids((await carol.client.v2.search.list({ q: 'mari', type: 'accounts', following: true })).accounts).sort()).toEqual([alice.id, erin.id].sort());
    expect((await erin.client.v2.search.list({ q: 'mari', type: 'accounts', following: true })).accounts).toEqual([]);
  });

  it('leaves out accounts blocked either way', async () => {
    await dave.client.v1.accounts.$select(erin.id).block();
    try {
      expect(ids((await dave.client.v2.search.list({ q: 'mari', type: 'accounts' })).accounts)).toEqual([alice.id]);
      expect((await erin.client.v2.search.list({ q: 'dandelion', type: 'accounts' })).accounts).toEqual([]);
    } finally {
      await dave.client.v1.accounts.$select(erin.id).unblock();
    }
  });

  it('pages accounts with offset', async () => {
    const first = await dave.client.v2.search.list({ q: 'marigold', type: 'accounts', limit: 1 });
    const second = await dave.client.v2.search.list({ q: 'marigold', type: 'accounts', limit: 1, offset: 1 });
    expect([...ids(first.accounts), ...ids(second.accounts)]).toEqual([alice.id, erin.id]);
  });

  it('answers GET /api/v1/accounts/search (mention autocomplete)', async () => {
    const found = await dave.client.v1.accounts.search.list({ q: 'mari' });
    expect(ids(found).sort()).toEqual([alice.id, erin.id].sort());
    expect(ids(await bob.client.v1.accounts.search.list({ q: 'mari', following: true }))).toEqual([alice.id]);
    expect(ids(await dave.client.v1.accounts.search.list({ q: 'Ophelia', limit: 5 }))).toEqual([alice.id]);
    expect(await statusCode(anon.v1.accounts.search.list({ q: 'mari' }))).toBe(401);
  });

  it('matches display-name words after punctuation and without their accents, and follows a rename', async () => {
    const frank = await createUser(server.url, 'frankincense');
    await frank.client.v1.accounts.updateCredentials({ displayName: 'Zoë (la Señora) Quillfeather' });
    const found = async (q: string) => ids((await dave.client.v2.search.list({ q, type: 'accounts' })).accounts);
    for (const q of ['zoe', 'ZOË', 'senora', 'Señ', 'quill', 'la senora', 'senora zoe']) expect(await found(q), q).toEqual([frank.id]);
    for (const q of ['uillfeather', 'zoe x', 'señorita']) expect(await found(q), q).toEqual([]);
    await frank.client.v1.accounts.updateCredentials({ displayName: 'Gulliver' });
    expect(await found('quill')).toEqual([]);
    expect(await found('gulli')).toEqual([frank.id]);
    expect(await found('franki')).toEqual([frank.id]); // the username, unchanged
  });
});

describe('the account search indexes', () => {
  it('are what a search uses, on either database (no scan of the accounts table)', async () => {
    const db = server.ctx.db;
    const index = accountSearchFor(db);
    const cond = sql<boolean>`${index.usernameStartsWith('mari')} OR ${index.displayNameMatching('ophelia')!}`;
    if (!onPostgres) {
      const plan = await sql<{ detail: string }>`EXPLAIN QUERY PLAN SELECT id FROM accounts WHERE ${cond}`.execute(db);
      const details = plan.rows.map((r) => r.detail);
      expect(details.join('\n')).toContain('MULTI-INDEX OR');
      expect(details.some((d) => /^SCAN accounts\b/.test(d))).toBe(false);
      return;
    }
    const plan = await postgresPlan(sql`SELECT id FROM accounts WHERE ${cond}`);
    expect(plan).toContain('accounts_username_c');
    expect(plan).toContain('accounts_display_name_search');
  });

  it.runIf(!onPostgres)('hold every account once, through renames and deletes (SQLite)', async () => {
    const db = server.ctx.db;
    const inIndex = async () => (await sql<{ id: bigint }>`SELECT rowid AS id FROM accounts_fts`.execute(db)).rows.map((r) => String(r.id)).sort();
    const all = async () => (await db.selectFrom('accounts').select('id').execute()).map((r) => r.id).sort();
    expect(await inIndex()).toEqual(await all());
    const gone = await createUser(server.url, 'ephemeral');
    await gone.client.v1.accounts.updateCredentials({ displayName: 'Transient Tapir' });
    expect(ids((await dave.client.v2.search.list({ q: 'tapir', type: 'accounts' })).accounts)).toEqual([gone.id]);
    await db.deleteFrom('accounts').where('id', '=', gone.id).execute();
    expect((await dave.client.v2.search.list({ q: 'tapir', type: 'accounts' })).accounts).toEqual([]);
    expect(await inIndex()).toEqual(await all());
  });
});

describe('prefixUpperBound', () => {
  it('is the least string above every string with the prefix, in code point order', () => {
    expect(prefixUpperBound('mari')).toBe('marj');
    expect(prefixUpperBound('a_')).toBe('a`');
    expect(prefixUpperBound('z\u{10FFFF}')).toBe('{');
    expect(prefixUpperBound('\u{10FFFF}')).toBeNull();
    expect(prefixUpperBound('\uD7FF')).toBe('\uE000'); // past the surrogates
    expect(prefixUpperBound('é')).toBe('ê');
  });
});

describe('hashtags', () => {
  it('finds hashtags by a prefix of their name, with or without #', async () => {
    await alice.client.v1.statuses.create({ status: 'tags #Gardening and #GardenParty and #garden' });
    const res = await dave.client.v2.search.list({ q: 'garden', type: 'hashtags' });
    expect(res.hashtags.map((t) => t.name)).toEqual(['garden', 'gardening', 'gardenparty']);
    const tag = res.hashtags[0];
    expect(tag.url).toBe(`${server.url}/tags/garden`);
    expect(tag.history).toHaveLength(7);
    expect(tag.history![0]).toMatchObject({ uses: '1', accounts: '1' });
    expect(tag.following).toBe(false);
    await dave.client.v1.tags.$select('gardening').follow();
    expect((await dave.client.v2.search.list({ q: 'gardening', type: 'hashtags' })).hashtags[0].following).toBe(true);
    expect((await anon.v2.search.list({ q: 'gardening', type: 'hashtags' })).hashtags[0]).not.toHaveProperty('following');
    expect((await anon.v2.search.list({ q: '#GARDENP', type: 'hashtags' })).hashtags.map((t) => t.name)).toEqual(['gardenparty']);
    expect((await dave.client.v2.search.list({ q: 'garden', type: 'hashtags', limit: 1, offset: 1 })).hashtags.map((t) => t.name)).toEqual(['gardening']);
  });
});

describe('one search of all kinds', () => {
  it('answers accounts, statuses and hashtags together', async () => {
    await alice.client.v1.statuses.create({ status: 'heliotrope is a colour #heliotrope' });
    const res = await dave.client.v2.search.list({ q: 'heliotrope' });
    expect(res.statuses).toHaveLength(1);
    expect(res.hashtags.map((t) => t.name)).toEqual(['heliotrope']);
    expect(res.accounts).toEqual([]);
  });
});

describe('bad and hostile input', () => {
  const HOSTILE = ['"', '""', '*', 'a OR', 'OR', 'NEAR(', 'NEAR(a b)', "')--", "'; DROP TABLE statuses; --", 'AND(', '(', ')', '^', '-', ':', 'text:secret', 'spoiler_text : x', '{text}: marmalade', '%', '_', '\\', '%marmalade%', 'a" OR "b', 'marmalade*', '\u0000', '🐦', 'x'.repeat(2000), Array.from({ length: 60 }, (_, i) => `w${i}`).join(' ')];

  it.each(HOSTILE)('answers 200 to %j', async (q) => {
    for (const token of [dave.token, undefined]) {
      const res = await raw(`/api/v2/search?q=${encodeURIComponent(q)}`, token);
      expect(res.status).toBe(200);
      expect(Object.keys(res.body).sort()).toEqual(['accounts', 'hashtags', 'statuses']);
    }
  });

  it('does not let query syntax or LIKE wildcards widen a search', async () => {
    // dave may not see the private marmalade post; column filters and wildcards must not change that or match everything.
    for (const q of ['text:secret', '{text}: marmalade', '%marmalade%', 'marmalade*', 'secret OR marmalade']) {
      expect(await statuses(dave, q), q).toEqual([]);
    }
    expect((await dave.client.v2.search.list({ q: '%', type: 'accounts' })).accounts).toEqual([]);
    expect((await dave.client.v2.search.list({ q: '_', type: 'accounts' })).accounts).toEqual([]);
    expect((await dave.client.v2.search.list({ q: '%', type: 'hashtags' })).hashtags).toEqual([]);
    // The words still match as plain words for whoever may see them.
    expect(await statuses(bob, 'secret OR marmalade')).toEqual([]); // no "or" in the text: terms are ANDed
    expect(await statuses(bob, 'marmalade*')).toHaveLength(1);
  });

  it('answers 400 without q, 401 for anonymous paging or resolving, and ignores an unknown type', async () => {
    expect(await raw('/api/v2/search')).toEqual({ status: 400, body: { error: 'param is missing or the value is empty: q' } });
    expect(await raw('/api/v2/search?q=%20%20', dave.token)).toEqual({ status: 400, body: { error: 'param is missing or the value is empty: q' } });
    expect(await raw('/api/v2/search?q=mari&offset=1')).toEqual({ status: 401, body: { error: 'Search queries pagination is not supported without authentication' } });
    expect(await raw('/api/v2/search?q=mari&resolve=true')).toEqual({
      status: 401,
      body: { error: 'Search queries that resolve remote resources are not supported without authentication' },
    });
    expect(await raw('/api/v2/search?q=mari&type=people', dave.token)).toEqual({ status: 200, body: { accounts: [], statuses: [], hashtags: [] } });
    expect((await raw('/api/v2/search?q=mari&limit=abc', dave.token)).status).toBe(422);
    expect((await raw('/api/v2/search?q=mari&offset=-1', dave.token)).status).toBe(422);
    expect((await raw('/api/v2/search?q=mari&type=statuses&account_id=abc', dave.token)).status).toBe(404);
    expect((await raw('/api/v1/accounts/search', dave.token)).status).toBe(400);
  });

  it('caps limit at 40', async () => {
    for (let i = 0; i < 3; i++) await alice.client.v1.statuses.create({ status: `limitless yak ${i}` });
    expect((await raw('/api/v2/search?q=yak&type=statuses&limit=1000', dave.token)).status).toBe(200);
  });
});

describe('the index', () => {
  /**
   * Ids in the FTS index, and ids of the statuses that should be there: originals not deleted. On PostgreSQL
   * the index is a partial expression index that PostgreSQL maintains itself: no rows of its own to compare.
   */
  async function indexed() {
    const db = server.ctx.db;
    if (onPostgres) return { actual: [], expected: [] };
    const inIndex = await sql<{ id: bigint }>`SELECT rowid AS id FROM statuses_fts`.execute(db);
    const expected = await db.selectFrom('statuses').select('id').where('reblog_of_id', 'is', null).where('deleted_at', 'is', null).execute();
    return { actual: inIndex.rows.map((r) => String(r.id)).sort(), expected: expected.map((r) => r.id).sort() };
  }

  it('holds exactly the originals that are not deleted, through soft and hard deletes and undeletes', async () => {
    const before = await indexed();
    expect(before.actual).toEqual(before.expected);
    const db = server.ctx.db;
    const s = await alice.client.v1.statuses.create({ status: 'mongoose on the loose' });
    await db.updateTable('statuses').set({ deleted_at: new Date().toISOString() }).where('id', '=', s.id).execute();
    expect(await statuses(alice, 'mongoose')).toEqual([]);
    await db.updateTable('statuses').set({ deleted_at: null }).where('id', '=', s.id).execute();
    expect(ids(await statuses(alice, 'mongoose'))).toEqual([s.id]);
    await db.deleteFrom('statuses').where('id', '=', s.id).execute();
    expect(await statuses(alice, 'mongoose')).toEqual([]);
    const after = await indexed();
    expect(after.actual).toEqual(after.expected);
  });
});

describe.runIf(onPostgres)('the PostgreSQL index', () => {
  it('is what a search uses: the condition repeats the index expression and predicate', async () => {
    await alice.client.v1.statuses.create({ status: 'pangolin in the planner' });
    const cond = postgresStatusSearch.matching('pangolin')!;
    // The other index a tiny table would be read through is dropped (and restored by the rollback) only to see
    // whether this one fits.
    const plan = await postgresPlan(sql`SELECT id FROM statuses WHERE ${cond}`, sql`DROP INDEX statuses_reblog_of`);
    expect(plan).toContain('statuses_search');
  });
});
describe('the migration', () => {
  it('index the statuses and accounts written before them, and can be undone and redone', async () => {
    const { db, close } = openSqlite(':memory:');
    try {
      const migrator = new Migrator({ db, provider: { getMigrations: async () => migrations } });
      const to0001 = await migrator.migrateTo('0001-core');
      expect(to0001.error).toBeUndefined();
      const now = new Date().toISOString();
      await db.insertInto('accounts').values({ id: '1000000000000000001', username: 'old', username_lower: 'old', display_name: '', note: '', locked: 0, bot: 0, discoverable: 1, last_status_at: null, created_at: now, updated_at: now }).execute();
      await db.insertInto('accounts').values({ id: '1000000000000000002', username: 'older', username_lower: 'older', display_name: 'Aged Aardvark', note: '', locked: 0, bot: 0, discoverable: 1, last_status_at: null, created_at: now, updated_at: now }).execute();
      const status = (id: string, text: string, extra: Record<string, unknown> = {}) => ({
        id, account_id: '1000000000000000001', text, content: text, spoiler_text: '', sensitive: 0 as const, visibility: 'public' as const, language: null,
        in_reply_to_id: null, in_reply_to_account_id: null, reblog_of_id: null, application_id: null, distribution: 'push' as const,
        created_at: now, edited_at: null, deleted_at: null, ...extra,
      });
      await db.insertInto('statuses').values([
        status('1000000000000000010', 'ancient armadillo'),
        status('1000000000000000011', 'ancient armadillo', { reblog_of_id: '1000000000000000010' }),
        status('1000000000000000012', 'deleted armadillo', { deleted_at: now }),
      ]).execute();
      const found = async () => {
        const rows = await db.selectFrom('statuses').select('id').where(fts5StatusSearch.matching('armadillo')!).orderBy('id').execute();
        return rows.map((r) => r.id);
      };
      const foundAccounts = async () => {
        const rows = await db.selectFrom('accounts').select('id').where(fts5AccountSearch.displayNameMatching('aardv')!).execute();
        return rows.map((r) => r.id);
      };
      await migrateToLatest(db);
      expect(await found()).toEqual(['1000000000000000010']);
      expect(await foundAccounts()).toEqual(['1000000000000000002']);
      expect((await migrator.migrateTo('0001-core')).error).toBeUndefined();
      const left = await sql<{ name: string }>`SELECT name FROM sqlite_master WHERE name LIKE 'statuses_fts%' OR name LIKE 'accounts_fts%'`.execute(db);
      expect(left.rows).toEqual([]);
      await migrateToLatest(db);
      expect(await found()).toEqual(['1000000000000000010']);
      expect(await foundAccounts()).toEqual(['1000000000000000002']);
    } finally {
      await close();
    }
  });
});
