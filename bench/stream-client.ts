/**
 * The client side of the stream benchmark, run as a child process by
 * `bench/run.ts stream`: opens one WebSocket user stream per follower token
 * (`/api/v1/streaming?stream=user&access_token=...`), then posts as the author
 * and records, for every stream, when the `update` event for each post
 * arrives. Poster and streams share this process's clock.
 *
 * To disturb the measurement as little as possible, a message handler only
 * stores the arrival time and the raw frame; frames are parsed at the end.
 */
import WebSocket from 'ws';

export interface StreamInput {
  url: string;
  tokens: string[];
  authorToken: string;
  posts: number;
  intervalMs: number;
}

export interface StreamOutput {
  opened: number;
  connectSeconds: number;
  /** One sample per (stream, post) event received, in milliseconds. */
  latencies: number[];
  /** Per post, in posting order: when the first and the last stream got it, in milliseconds. */
  perPost: { ack: number; first: number; last: number; received: number }[];
  /** (stream, post) events that never arrived. */
  missing: number;
  error?: string;
}

async function readStdin(): Promise<string> {
  let s = '';
  for await (const chunk of process.stdin) s += chunk;
  return s;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function main(input: StreamInput): Promise<StreamOutput> {
  const base = new URL(input.url);
  if (base.hostname !== '127.0.0.1') throw new Error('loopback only');
  const wsBase = `ws://${base.host}/api/v1/streaming?stream=user&access_token=`;
  const arrivals: { at: number; data: Buffer }[][] = input.tokens.map(() => []);
  let received = 0;
  const sockets: WebSocket[] = [];
  let firstError: string | null = null;

  const started = performance.now();
  const open = (i: number) =>
    new Promise<void>((resolve) => {
      const ws = new WebSocket(wsBase + encodeURIComponent(input.tokens[i]), { perMessageDeflate: false });
      const list = arrivals[i];
      ws.on('message', (data: Buffer) => {
        list.push({ at: performance.now(), data });
        received++;
      });
      ws.once('open', () => {
        sockets.push(ws);
        resolve();
      });
      ws.once('unexpected-response', (_req, res) => {
        firstError ??= `streaming endpoint answered HTTP ${res.statusCode} to the WebSocket upgrade (not available yet?)`;
        resolve();
      });
      ws.once('error', (err) => {
        firstError ??= `WebSocket error: ${err.message}`;
        resolve();
      });
    });
  // Open in waves, as many clients reconnecting would, without a 10,000-wide burst.
  const WAVE = 250;
  for (let i = 0; i < input.tokens.length && !firstError; i += WAVE) {
    await Promise.all(input.tokens.slice(i, i + WAVE).map((_, k) => open(i + k)));
  }
  const connectSeconds = (performance.now() - started) / 1000;
  if (firstError) {
    for (const ws of sockets) ws.terminate();
    return { opened: sockets.length, connectSeconds, latencies: [], perPost: [], missing: 0, error: firstError };
  }
  const post = async (k: number) => {
    const res = await fetch(`${input.url}/api/v1/statuses`, {
      method: 'POST',
      headers: { authorization: `Bearer ${input.authorToken}`, 'content-type': 'application/json', 'idempotency-key': `stream-bench-${Date.now()}-${k}` },
      body: JSON.stringify({ status: `Stream bench post ${k} #streambench` }),
    });
    const body = (await res.json()) as { id?: string; error?: string };
    if (!res.ok || !body.id) throw new Error(`posting failed: ${res.status} ${body.error ?? ''}`);
    return body.id;
  };
  // One unmeasured post first: it warms up both sides' code paths.
  await sleep(500);
  await post(-1);
  await sleep(1500);
  received = 0;
  for (const list of arrivals) list.length = 0;

  const sentAt = new Map<string, number>();
  const ackMs = new Map<string, number>();
  for (let k = 0; k < input.posts; k++) {
    const t0 = performance.now();
    const id = await post(k);
    sentAt.set(id, t0);
    ackMs.set(id, performance.now() - t0);
    await sleep(input.intervalMs);
  }
  // Wait for stragglers: until every stream has every post, or 5 s.
  const expected = input.tokens.length * input.posts;
  const waitUntil = performance.now() + 5000;
  while (received < expected && performance.now() < waitUntil) await sleep(50);
  for (const ws of sockets) ws.terminate();

  const latencies: number[] = [];
  const byPost = new Map([...sentAt.keys()].map((id) => [id, { ack: ackMs.get(id)!, first: Infinity, last: 0, received: 0 }]));
  let got = 0;
  for (const list of arrivals) {
    const seen = new Set<string>();
    for (const { at, data } of list) {
      let msg: { event?: string; payload?: string };
      try {
        msg = JSON.parse(data.toString('utf8'));
      } catch {
        continue;
      }
      if (msg.event !== 'update' || typeof msg.payload !== 'string') continue;
      const id = (JSON.parse(msg.payload) as { id: string }).id;
      const t0 = sentAt.get(id);
      if (t0 === undefined || seen.has(id)) continue;
      seen.add(id);
      latencies.push(at - t0);
      const p = byPost.get(id)!;
      p.first = Math.min(p.first, at - t0);
      p.last = Math.max(p.last, at - t0);
      p.received++;
      got++;
    }
  }
  return { opened: sockets.length, connectSeconds, latencies, perPost: [...byPost.values()], missing: expected - got };
}

const input = JSON.parse(await readStdin()) as StreamInput;
main(input).then(
  (out) => {
    // Exit only once the (large) line is flushed into the pipe.
    process.stdout.write(`${JSON.stringify(out)}\n`, () => process.exit(0));
  },
  (err) => {
    const out = { opened: 0, connectSeconds: 0, latencies: [], perPost: [], missing: 0, error: String(err instanceof Error ? err.message : err) };
    process.stdout.write(`${JSON.stringify(out)}\n`, () => process.exit(0));
  },
);
