/**
 * The streaming API through masto's own streaming client (unchanged), plus
 * SSE and the raw WebSocket protocol details clients depend on.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createStreamingAPIClient, type mastodon } from 'masto';
import WebSocket from 'ws';
import { startTestServer, createUser, eventually, type TestServer, type TestUser } from '../helpers/server.js';

let server: TestServer;
let author: TestUser;
let follower: TestUser;
let muter: TestUser;
let blocked: TestUser;
let wsUrl: string;
const clients: mastodon.streaming.Client[] = [];

beforeAll(async () => {
  // No ops engine: its streaming probe opens and closes streams of its own, and `settled` counts streams.
  server = await startTestServer({ ops: { enabled: false } });
  wsUrl = server.url.replace(/^http/, 'ws');
  [author, follower, muter, blocked] = await Promise.all(['author', 'follower', 'muter', 'blockee'].map((n) => createUser(server.url, n)));
  for (const u of [follower, muter, blocked]) await u.client.v1.accounts.$select(author.id).follow();
  await muter.client.v1.accounts.$select(author.id).mute();
  await author.client.v1.accounts.$select(blocked.id).block();
  await server.worker.drain();
});
afterAll(async () => {
  for (const c of clients) c.close();
  await server?.stop();
});

/** Collects a subscription's events in the background. */
function collect(sub: mastodon.streaming.Subscription) {
  const events: mastodon.streaming.Event[] = [];
  void (async () => {
    try {
      for await (const e of sub) events.push(e);
    } catch {
      /* closed */
    }
  })();
  return events;
}

function streaming(user: TestUser | null) {
  const c = createStreamingAPIClient({ streamingApiUrl: wsUrl, accessToken: user?.token, implementation: WebSocket, retry: false });
  clients.push(c);
  return c;
}

/** Waits until the server has registered the expected subscriptions, so no event is posted before anyone listens. */
async function settled(expected: number) {
  await eventually(async () => server.app.streaming.size >= expected);
  await new Promise((r) => setTimeout(r, 100));
}

describe('streaming with masto', () => {
  it('delivers a followed author’s post to the user stream, and not to muters or the blocked', async () => {
    const before = server.app.streaming.size;
    const got = collect(streaming(follower).user.subscribe());
    const mutedGot = collect(streaming(muter).user.subscribe());
    const blockedGot = collect(streaming(blocked).user.subscribe());
    await settled(before + 3);
    const post = await author.client.v1.statuses.create({ status: 'live!' });
    const update = await eventually(async () => got.find((e) => e.event === 'update' && e.payload.id === post.id));
    expect(update.event === 'update' && update.payload.account.id).toBe(author.id);
    expect(update.stream).toEqual(['user']);
    // Give the others time they would have needed, then check they got nothing.
    const marker = await follower.client.v1.statuses.create({ status: 'after' });
    await eventually(async () => got.some((e) => e.event === 'update' && e.payload.id === marker.id));
    expect(mutedGot.filter((e) => e.event === 'update' && e.payload.account.id === author.id)).toEqual([]);
    expect(blockedGot.filter((e) => e.event === 'update' && e.payload.account.id === author.id)).toEqual([]);

    await author.client.v1.statuses.$select(post.id).remove();
    await eventually(async () => got.some((e) => e.event === 'delete' && e.payload === post.id));
  });

  it('delivers a tagged public post to a hashtag stream, and not a private one', async () => {
    const before = server.app.streaming.size;
    const got = collect(streaming(null).hashtag.subscribe({ tag: 'Breaking' }));
    await settled(before + 1);
    const hidden = await author.client.v1.statuses.create({ status: 'secret #breaking', visibility: 'private' });
    const post = await author.client.v1.statuses.create({ status: 'news #breaking' });
    const e = await eventually(async () => got.find((x) => x.event === 'update' && x.payload.id === post.id));
    expect(e.stream).toEqual(['hashtag', 'Breaking']);
    expect(got.some((x) => x.event === 'update' && x.payload.id === hidden.id)).toBe(false);
  });

  it('delivers public posts to the public stream, and edits as status.update', async () => {
    const before = server.app.streaming.size;
    const got = collect(streaming(follower).public.local.subscribe());
    await settled(before + 1);
    const post = await author.client.v1.statuses.create({ status: 'for everyone' });
    await eventually(async () => got.some((x) => x.event === 'update' && x.payload.id === post.id));
    await author.client.v1.statuses.$select(post.id).update({ status: 'for everyone, edited' });
    const edit = await eventually(async () => got.find((x) => x.event === 'status.update' && x.payload.id === post.id));
    expect(edit.event === 'status.update' && edit.payload.content).toContain('edited');
  });

  it('pushes notifications with the right types to the user and notification streams', async () => {
    const before = server.app.streaming.size;
    const c = streaming(author);
    const user = collect(c.user.subscribe());
    const only = collect(c.user.notification.subscribe());
    await settled(before + 1);
    const post = await author.client.v1.statuses.create({ status: 'notify me' });
    await follower.client.v1.statuses.$select(post.id).favourite();
    await follower.client.v1.statuses.create({ status: `@${author.username} hi`, inReplyToId: post.id });
    const types = async (events: mastodon.streaming.Event[]) =>
      events.filter((e) => e.event === 'notification').map((e) => (e.event === 'notification' ? e.payload.type : ''));
    await eventually(async () => (await types(user)).includes('favourite') && (await types(user)).includes('mention'));
    await eventually(async () => (await types(only)).includes('favourite') && (await types(only)).includes('mention'));
    expect((await types(only)).sort()).toEqual(['favourite', 'mention']);
    // The same notifications are in the REST list.
    const listed = await author.client.v1.notifications.list({ types: ['favourite', 'mention'] });
    expect(listed.map((n) => n.type).sort()).toEqual(['favourite', 'mention']);
  });
});

describe('streaming protocol details', () => {
  it('answers the health check', async () => {
    const res = await fetch(`${server.url}/api/v1/streaming/health`);
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('OK');
  });

  it('accepts the token as access_token and a stream query parameter, and encodes payloads as strings', async () => {
    const ws = new WebSocket(`${wsUrl}/api/v1/streaming?stream=user&access_token=${follower.token}`);
    const messages: { stream: string[]; event: string; payload: string }[] = [];
    ws.on('message', (d) => messages.push(JSON.parse(String(d))));
    await new Promise((r) => ws.once('open', r));
    await new Promise((r) => setTimeout(r, 100));
    const post = await author.client.v1.statuses.create({ status: 'raw protocol' });
    const m = await eventually(async () => messages.find((x) => x.event === 'update'));
    expect(typeof m.payload).toBe('string');
    expect(JSON.parse(m.payload).id).toBe(post.id);
    ws.close();
  });

  it('refuses unknown channels and user streams without a token', async () => {
    const res = await fetch(`${server.url}/api/v1/streaming/nonsense`);
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({ error: 'Unknown channel requested' });
    expect((await fetch(`${server.url}/api/v1/streaming/user`)).status).toBe(401);
    expect((await fetch(`${server.url}/api/v1/streaming/user?access_token=wrong`)).status).toBe(401);

    const ws = new WebSocket(`${wsUrl}/api/v1/streaming`);
    const messages: { error?: string }[] = [];
    ws.on('message', (d) => messages.push(JSON.parse(String(d))));
    await new Promise((r) => ws.once('open', r));
    ws.send(JSON.stringify({ type: 'subscribe', stream: 'nonsense' }));
    ws.send(JSON.stringify({ type: 'subscribe', stream: 'user' }));
    ws.send('not json');
    await eventually(async () => messages.length >= 3);
    expect(messages.map((m) => m.error)).toEqual(['Unknown channel requested', 'Missing access token', 'Invalid JSON']);
    ws.close();
  });

  it('serves Server-Sent Events with raw JSON payloads', async () => {
    const controller = new AbortController();
    const res = await fetch(`${server.url}/api/v1/streaming/public`, { signal: controller.signal });
    expect(res.headers.get('content-type')).toContain('text/event-stream');
    const reader = res.body!.getReader();
    let text = '';
    const reading = (async () => {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        text += new TextDecoder().decode(value);
      }
    })().catch(() => {});
    await new Promise((r) => setTimeout(r, 100));
    const post = await author.client.v1.statuses.create({ status: 'over SSE' });
    await eventually(async () => text.includes(`"id":"${post.id}"`));
    const frame = text.split('\n\n').find((f) => f.includes(post.id))!;
    expect(frame.startsWith('event: update\ndata: {')).toBe(true);
    controller.abort();
    await reading;
  });

  it('drops a consumer that stops reading instead of buffering without bound', async () => {
    // A raw socket that never reads: the server's send buffer fills past its bound and the hub drops it.
    // Fifty channels that all match each post multiply every post into fifty messages.
    const tags = Array.from({ length: 48 }, (_, i) => `t${i}`);
    const ws = new WebSocket(`${wsUrl}/api/v1/streaming?access_token=${follower.token}`);
    await new Promise((r) => ws.once('open', r));
    for (const stream of ['public', 'public:local']) ws.send(JSON.stringify({ type: 'subscribe', stream }));
    for (const tag of tags) ws.send(JSON.stringify({ type: 'subscribe', stream: 'hashtag', tag }));
    await new Promise((r) => setTimeout(r, 200));
    (ws as unknown as { _socket: { pause(): void } })._socket.pause();
    const droppedBefore = server.app.streaming.dropped;
    const text = `${tags.map((t) => `#${t}`).join(' ')} ${'x'.repeat(250)}`;
    for (let i = 0; i < 300 && server.app.streaming.dropped === droppedBefore; i++) {
      await author.client.v1.statuses.create({ status: text });
    }
    await eventually(async () => server.app.streaming.dropped > droppedBefore, 10_000);
    ws.terminate();
  });
});
