/**
 * People's own copies: the account archive in Mastodon's shapes (ActivityPub
 * actor and outbox, likes, bookmarks), the CSV exports, and importing those
 * CSVs into another account, through the API with real tokens.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createUser, startTestServer, type TestServer, type TestUser } from '../helpers/server.js';
import { issueToken } from '../../src/services/auth.js';

let server: TestServer;
let alice: TestUser, bob: TestUser, carol: TestUser, dave: TestUser, erin: TestUser;
const posts: Record<string, string> = {};

beforeAll(async () => {
  server = await startTestServer({ ops: { enabled: false }, backup: { intervalMinutes: 0 } });
  [alice, bob, carol, dave, erin] = await Promise.all(['alice', 'bob', 'carol', 'dave', 'erin'].map((n) => createUser(server.url, `ar_${n}`)));
  posts.bob = (await bob.client.v1.statuses.create({ status: 'bob says hi' })).id;
  posts.carol = (await carol.client.v1.statuses.create({ status: 'carol posts' })).id;
  posts.first = (await alice.client.v1.statuses.create({ status: 'Hello #archives @ar_bob', language: 'en' })).id;
  posts.reply = (await alice.client.v1.statuses.create({ status: 'a reply', inReplyToId: posts.bob })).id;
  posts.cw = (await alice.client.v1.statuses.create({ status: 'hidden', spoilerText: 'cw', visibility: 'unlisted' })).id;
  await alice.client.v1.statuses.$select(posts.bob).reblog();
  await alice.client.v1.statuses.$select(posts.bob).favourite();
  await alice.client.v1.statuses.$select(posts.carol).bookmark();
  await alice.client.v1.accounts.$select(bob.id).follow();
  await alice.client.v1.accounts.$select(carol.id).follow({ reblogs: false, notify: true });
  await alice.client.v1.accounts.$select(dave.id).block();
  await alice.client.v1.accounts.$select(erin.id).mute({ notifications: false });
});

afterAll(async () => {
  await server?.stop();
});

async function get(path: string, token?: string): Promise<{ status: number; type: string; disposition: string; text: string }> {
  const res = await fetch(`${server.url}${path}`, { headers: token ? { authorization: `Bearer ${token}` } : {} });
  return { status: res.status, type: res.headers.get('content-type') ?? '', disposition: res.headers.get('content-disposition') ?? '', text: await res.text() };
}

async function importCsv(token: string | undefined, body: unknown): Promise<{ status: number; json: any }> {
  const res = await fetch(`${server.url}/api/v1/starling/imports`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify(body),
  });
  return { status: res.status, json: await res.json() };
}

describe('account archive', () => {
  it('exports the account, its posts, likes and bookmarks in the shape of Mastodon’s archive', async () => {
    const r = await get('/api/v1/starling/archive', alice.token);
    expect(r.status).toBe(200);
    expect(r.disposition).toMatch(/^attachment; filename="ar_alice-\d{4}-\d\d-\d\d-archive\.json"$/);
    const a = JSON.parse(r.text);
    const actor = `${server.url}/users/ar_alice`;
    const uri = (user: string, id: string) => `${server.url}/users/${user}/statuses/${id}`;
    expect(a['actor.json']).toMatchObject({ id: actor, type: 'Person', preferredUsername: 'ar_alice', outbox: 'outbox.json', followers: `${actor}/followers` });
    const outbox = a['outbox.json'];
    expect(outbox).toMatchObject({ type: 'OrderedCollection', totalItems: 4 });
    const items = outbox.orderedItems as any[];
    expect(items.map((i) => i.type)).toEqual(['Create', 'Create', 'Create', 'Announce']);
    const first = items[0].object;
    expect(first).toMatchObject({
      id: uri('ar_alice', posts.first!),
      type: 'Note',
      attributedTo: actor,
      inReplyTo: null,
      to: ['https://www.w3.org/ns/activitystreams#Public'],
      contentMap: { en: first.content },
    });
    expect(first.cc).toEqual([`${actor}/followers`, `${server.url}/users/ar_bob`]);
    expect(first.content).toContain('archives');
    expect(first.tag).toEqual(
      expect.arrayContaining([
        { type: 'Hashtag', href: `${server.url}/tags/archives`, name: '#archives' },
        { type: 'Mention', href: `${server.url}/users/ar_bob`, name: expect.stringMatching(/^@ar_bob@/) },
      ]),
    );
    expect(items[1].object.inReplyTo).toBe(uri('ar_bob', posts.bob!));
    expect(items[2].object).toMatchObject({ summary: 'cw', to: [`${actor}/followers`], cc: ['https://www.w3.org/ns/activitystreams#Public'] });
    expect(items[3]).toMatchObject({ type: 'Announce', actor, object: uri('ar_bob', posts.bob!) });
    expect(a['likes.json']).toMatchObject({ type: 'OrderedCollection', totalItems: 1, orderedItems: [uri('ar_bob', posts.bob!)] });
    expect(a['bookmarks.json'].orderedItems).toEqual([uri('ar_carol', posts.carol!)]);

    const one = await get('/api/v1/starling/archive/outbox.json', alice.token);
    expect(one.status).toBe(200);
    expect(JSON.parse(one.text)).toEqual(outbox);
    expect((await get('/api/v1/starling/archive/secrets.json', alice.token)).status).toBe(404);
    expect(JSON.parse((await get('/api/v1/starling/archive')).text)).toEqual({ error: expect.any(String) });
    expect((await get('/api/v1/starling/archive')).status).toBe(401);
  });

  it('exports follows, blocks, mutes and bookmarks as Mastodon’s CSV files', async () => {
    const domain = new URL(server.url).host;
    const following = await get('/api/v1/starling/exports/following_accounts.csv', alice.token);
    expect(following.status).toBe(200);
    expect(following.type).toMatch(/^text\/csv/);
    expect(following.text).toBe(`Account address,Show boosts,Notify on new posts,Languages\nar_bob@${domain},true,false,\nar_carol@${domain},false,true,\n`);
    expect((await get('/api/v1/starling/exports/blocked_accounts.csv', alice.token)).text).toBe(`ar_dave@${domain}\n`);
    expect((await get('/api/v1/starling/exports/muted_accounts.csv', alice.token)).text).toBe(`Account address,Hide notifications\nar_erin@${domain},false\n`);
    expect((await get('/api/v1/starling/exports/bookmarks.csv', alice.token)).text).toBe(`${server.url}/users/ar_carol/statuses/${posts.carol}\n`);
    expect((await get('/api/v1/starling/exports/passwords.csv', alice.token)).status).toBe(404);
  });

  it('imports those CSVs into another account, reporting what it could not find', async () => {
    const frank = await createUser(server.url, 'ar_frank');
    const following = (await get('/api/v1/starling/exports/following_accounts.csv', alice.token)).text;
    const withExtras = `${following}someone@elsewhere.example,true,false,\nnot an address!,true,false,\nar_nobody,true,false,\n`;
    const r = await importCsv(frank.token, { type: 'following', data: withExtras });
    expect(r.status).toBe(200);
    expect(r.json).toEqual({
      type: 'following',
      total: 5,
      imported: 2,
      skipped: [
        { line: 4, value: 'someone@elsewhere.example', reason: 'account on another server (federation is not supported yet)' },
        { line: 5, value: 'not an address!', reason: 'not an account address' },
        { line: 6, value: 'ar_nobody', reason: 'account not found' },
      ],
    });
    const rel = await frank.client.v1.accounts.relationships.fetch({ id: [bob.id, carol.id] });
    expect(rel.map((x) => [x.following, x.showingReblogs, x.notifying])).toEqual([
      [true, true, false],
      [true, false, true],
    ]);

    for (const [type, file] of [['blocking', 'blocked_accounts.csv'], ['muting', 'muted_accounts.csv'], ['bookmarks', 'bookmarks.csv']] as const) {
      const csv = (await get(`/api/v1/starling/exports/${file}`, alice.token)).text;
      const res = await importCsv(frank.token, { type, data: csv });
      expect(res.status).toBe(200);
      expect(res.json).toMatchObject({ total: 1, imported: 1, skipped: [] });
    }
    expect((await frank.client.v1.blocks.list()).map((a) => a.id)).toEqual([dave.id]);
    expect((await frank.client.v1.mutes.list()).map((a) => a.id)).toEqual([erin.id]);
    expect((await frank.client.v1.bookmarks.list()).map((s) => s.id)).toEqual([posts.carol]);
    // Importing the same file again changes nothing and fails nothing.
    expect((await importCsv(frank.token, { type: 'following', data: following })).json).toMatchObject({ imported: 2, skipped: [] });
  });

  it('answers bad imports with Mastodon errors', async () => {
    expect(await importCsv(undefined, { type: 'following', data: 'x' })).toEqual({ status: 401, json: { error: expect.any(String) } });
    expect(await importCsv(alice.token, { type: 'lists', data: 'x' })).toEqual({ status: 422, json: { error: expect.stringMatching(/^Validation failed/) } });
    expect(await importCsv(alice.token, { type: 'following', data: '' })).toEqual({ status: 422, json: { error: expect.stringMatching(/^Validation failed/) } });
    expect(await importCsv(alice.token, { type: 'following', data: 'Account address,Show boosts\n\n' })).toEqual({
      status: 422,
      json: { error: 'Validation failed: the file has no rows to import' },
    });
    // A missing parameter is a 400, as in Mastodon.
    expect(await importCsv(alice.token, { type: 'following' })).toEqual({ status: 400, json: { error: expect.stringMatching(/data/) } });
    // A token that may only read (registration needs write, so it is issued after).
    const reader = await createUser(server.url, 'ar_reader');
    const app = await server.ctx.db.selectFrom('oauth_tokens').select('application_id').where('account_id', '=', reader.id).executeTakeFirstOrThrow();
    const narrow = await issueToken(server.ctx, { applicationId: app.application_id, accountId: reader.id, scopes: ['read'] });
    expect(await importCsv(narrow.access_token, { type: 'blocks', data: 'ar_bob' })).toEqual({ status: 403, json: { error: expect.any(String) } });
    expect((await get('/api/v1/starling/exports/blocked_accounts.csv', narrow.access_token)).status).toBe(200);
  });
});
