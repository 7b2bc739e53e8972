/**
 * Clients send JSON (masto), form-urlencoded (Phanpy) and multipart bodies,
 * with Rails-style `key[]` arrays and `key[sub]` objects; all are accepted.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, createUser, type TestServer, type TestUser } from '../helpers/server.js';
import { sweep } from '../../src/services/housekeeping.js';

let server: TestServer;
let alice: TestUser;
let bob: TestUser;

beforeAll(async () => {
  server = await startTestServer();
  alice = await createUser(server.url, 'alice');
  bob = await createUser(server.url, 'bob');
});
afterAll(async () => {
  await server?.stop();
});

const auth = (u: TestUser) => ({ authorization: `Bearer ${u.token}` });

describe('request formats', () => {
  it('accepts form-urlencoded bodies', async () => {
    const res = await fetch(`${server.url}/api/v1/statuses`, {
      method: 'POST',
      headers: { ...auth(alice), 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ status: 'from a form', visibility: 'unlisted', sensitive: 'true', spoiler_text: 'cw' }),
    });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ visibility: 'unlisted', sensitive: true, spoiler_text: 'cw', content: '<p>from a form</p>' });
  });

  it('accepts multipart bodies with nested source fields', async () => {
    const form = new FormData();
    form.set('display_name', 'Alice A.');
    form.set('note', 'Bio with #tag');
    form.set('source[privacy]', 'private');
    const res = await fetch(`${server.url}/api/v1/accounts/update_credentials`, { method: 'PATCH', headers: auth(alice), body: form });
    expect(res.status).toBe(200);
    const me = (await res.json()) as { display_name: string; note: string; source: { privacy: string; note: string } };
    expect(me.display_name).toBe('Alice A.');
    expect(me.source).toMatchObject({ privacy: 'private', note: 'Bio with #tag' });
    expect(me.note).toContain('hashtag');
    // The new default visibility applies to the next post.
    const post = await alice.client.v1.statuses.create({ status: 'default visibility' });
    expect(post.visibility).toBe('private');
    const prefs = await alice.client.v1.preferences.fetch();
    expect(prefs['posting:default:visibility']).toBe('private');
  });

  it('reads id[] arrays from the query string', async () => {
    const res = await fetch(`${server.url}/api/v1/accounts/relationships?id[]=${bob.id}&id[]=${alice.id}`, { headers: auth(alice) });
    expect(res.status).toBe(200);
    expect(((await res.json()) as { id: string }[]).map((r) => r.id)).toEqual([bob.id, alice.id]);
  });

  it('accepts an empty JSON body on status actions', async () => {
    const post = await bob.client.v1.statuses.create({ status: 'like me' });
    const res = await fetch(`${server.url}/api/v1/statuses/${post.id}/favourite`, { method: 'POST', headers: { ...auth(alice), 'content-type': 'application/json' } });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ favourited: true, favourites_count: 1 });
  });

  it('saves and returns markers', async () => {
    const post = await bob.client.v1.statuses.create({ status: 'marker' });
    const saved = await alice.client.v1.markers.create({ home: { lastReadId: post.id } });
    expect(saved.home?.lastReadId).toBe(post.id);
    const again = await alice.client.v1.markers.create({ home: { lastReadId: post.id } });
    expect(again.home?.version).toBe((saved.home?.version ?? 0) + 1);
    const read = await alice.client.v1.markers.fetch({ timeline: ['home'] });
    expect(read.home?.lastReadId).toBe(post.id);
  });
});

describe('housekeeping', () => {
  it('forgets idempotency keys after their lifetime', async () => {
    const headers = { ...auth(alice), 'content-type': 'application/json', 'idempotency-key': 'old-key' };
    const first = (await (await fetch(`${server.url}/api/v1/statuses`, { method: 'POST', headers, body: JSON.stringify({ status: 'a' }) })).json()) as { id: string };
    const later = { ...server.ctx, now: () => new Date(Date.now() + 25 * 3600_000) };
    expect((await sweep(later)).idempotencyKeys).toBeGreaterThanOrEqual(1);
    const second = (await (await fetch(`${server.url}/api/v1/statuses`, { method: 'POST', headers, body: JSON.stringify({ status: 'a' }) })).json()) as { id: string };
    expect(second.id).not.toBe(first.id);
  });
});
