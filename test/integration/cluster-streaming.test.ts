/**
 * Two Starling nodes, one data store, a real 3-member NATS cluster: a post
 * made through node A reaches a stream held on node B, a follow made on A
 * updates B's per-stream filters (the cross-node cache invalidation that
 * matters for streams), and readiness follows the bus: all of NATS gone →
 * /readyz 503; NATS back → ready again without a restart.
 *
 * The nodes share one SQLite file (WAL lets two connections in; this stands in
 * for the shared PostgreSQL of a real cluster, which the PostgreSQL dialect brings).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { needBinaries } from '../helpers/binaries.js';
import { startNatsCluster, type TestNatsCluster } from '../helpers/nats-cluster.js';
import { startTestServer, createUser, eventually, tempDir, type TestServer, type TestUser } from '../helpers/server.js';
import type { NatsBus } from '../../src/bus/nats.js';
import { busProbe } from '../../src/ops/probes.js';

const skip = needBinaries(['nats-server']);

interface Frame {
  stream: string[];
  event: string;
  payload: string;
}

function openStream(baseUrl: string, token: string, stream: string) {
  const frames: Frame[] = [];
  const ws = new WebSocket(`${baseUrl.replace(/^http/, 'ws')}/api/v1/streaming?stream=${stream}`, token);
  ws.on('message', (d) => frames.push(JSON.parse(String(d)) as Frame));
  const open = new Promise<void>((res, rej) => {
    ws.once('open', () => res());
    ws.once('error', rej);
  });
  return { ws, frames, open };
}

describe.skipIf(skip)('cluster: two nodes over NATS', () => {
  let nats: TestNatsCluster;
  let a: TestServer;
  let b: TestServer;
  let dir: ReturnType<typeof tempDir> | undefined;
  let author: TestUser;
  let reader: TestUser;
  const sockets: WebSocket[] = [];

  beforeAll(async () => {
    dir = tempDir('starling-shared-');
    nats = await startNatsCluster(3);
    const common = { ops: { enabled: false }, writes: { busyTimeoutMs: 2000 } };
    // Each node knows every member, listed in a different order, as cluster up configures them.
    a = await startTestServer({ ...common, nodeId: 1, natsUrl: nats.urls.join(',') }, dir!.path);
    b = await startTestServer({ ...common, nodeId: 2, natsUrl: [...nats.urls].reverse().join(',') }, dir!.path);
    await Promise.all([(a.ctx.bus as NatsBus).ready, (b.ctx.bus as NatsBus).ready]);
    author = await createUser(a.url, 'xauthor');
    reader = await createUser(b.url, 'xreader');
  });
  afterAll(async () => {
    for (const s of sockets) s.terminate();
    await a?.close();
    await b?.close();
    await nats?.stop();
    dir?.remove();
  });

  it('a post through node A reaches a public stream and a follower’s user stream held on node B', async () => {
    const pub = openStream(b.url, reader.token, 'public');
    sockets.push(pub.ws);
    await pub.open;
    await eventually(async () => b.app.streaming.size >= 1);
    // The subscription of B reaches every NATS member shortly after connecting: post until one arrives.
    let id = '';
    await eventually(async () => {
      id = (await author.client.v1.statuses.create({ status: `hello from A ${Date.now()}` })).id;
      await new Promise((r) => setTimeout(r, 200));
      return pub.frames.some((f) => f.event === 'update' && JSON.parse(f.payload).id === id);
    }, 15_000);
    const frame = pub.frames.find((f) => f.event === 'update' && JSON.parse(f.payload).id === id)!;
    expect(frame.stream).toEqual(['public']);
    expect(JSON.parse(frame.payload).account.username).toBe('xauthor');

    // The reader's user stream on B is open before the follow, which is made through A: B's filter must learn of it over the bus.
    const user = openStream(b.url, reader.token, 'user');
    sockets.push(user.ws);
    await user.open;
    await eventually(async () => b.app.streaming.size >= 2);
    const readerOnA = await createUserClient(a.url, reader.token);
    await readerOnA.follow(author.id);
    await eventually(async () => {
      const post = await author.client.v1.statuses.create({ status: 'for my followers', visibility: 'private' });
      await new Promise((r) => setTimeout(r, 200));
      return user.frames.some((f) => f.event === 'update' && JSON.parse(f.payload).id === post.id);
    }, 10_000);
  });

  it('a status deleted through node A leaves the trends node B had cached', async () => {
    const second = await createUser(a.url, 'xsecond');
    const tag = `crossnode${Date.now()}`;
    const p1 = await author.client.v1.statuses.create({ status: `#${tag} one` });
    await second.client.v1.statuses.create({ status: `#${tag} two` });
    const trending = async () => ((await (await fetch(`${b.url}/api/v1/trends/tags`)).json()) as { name: string }[]).map((t) => t.name);
    // Node B computes and caches the ranking (for a minute) with the tag in it.
    expect(await trending()).toContain(tag);
    await author.client.v1.statuses.$select(p1.id).remove();
    // One account left using the tag is below the trend threshold: B must drop its cached ranking when told over the bus.
    await eventually(async () => !(await trending()).includes(tag), 10_000);
  });

  it('a node is unready while no NATS member is reachable, and ready again when one comes back', async () => {
    expect((await fetch(`${a.url}/readyz`)).status).toBe(200);
    await nats.kill(0);
    await nats.kill(1);
    await nats.kill(2);
    const res = await eventually(async () => {
      const r = await fetch(`${a.url}/readyz`);
      return r.status === 503 ? r : null;
    }, 15_000);
    const body = (await res.json()) as { status: string; reason: string };
    expect(body.status).toBe('unavailable');
    expect(body.reason).toContain('bus');
    // The ops engine's bus probe reads the same connection state (the status page's "Event bus" component).
    const outcome = busProbe({ ctx: a.ctx, baseUrl: () => a.url, probeSecret: 'x', thresholds: {} as never });
    expect(outcome).toMatchObject({ probe: 'bus', ok: false, observations: [{ component: 'bus', obs: { level: 'fail' } }] });
    await nats.restart(1);
    await eventually(async () => (await fetch(`${a.url}/readyz`)).status === 200 && (await fetch(`${b.url}/readyz`)).status === 200, 20_000);
  });
});

/** Following through node A with the reader's token (the token lives in the shared store). */
async function createUserClient(baseUrl: string, token: string) {
  return {
    async follow(id: string) {
      const r = await fetch(`${baseUrl}/api/v1/accounts/${id}/follow`, { method: 'POST', headers: { authorization: `Bearer ${token}` } });
      expect(r.status).toBe(200);
    },
  };
}
