/**
 * The load generator, run as a child process by the benchmarks (bench/lib.ts
 * runLoad): reads a LoadSpec as JSON on stdin, drives 127.0.0.1, prints a
 * LoadResult as one JSON line on stdout.
 *
 * - Closed loop (no `overallRate`): autocannon, each connection sending its
 *   next request when the last is answered — what a node can serve.
 * - Open loop (`overallRate`): requests are sent at their own times, Poisson
 *   arrivals at that rate, whether or not earlier ones were answered, through
 *   an undici pool, and each latency is counted from the time the request was
 *   due (no coordinated omission, as in wrk2). autocannon's `overallRate` is
 *   not an open loop: each connection sends its quota for the second as fast
 *   as answers come and then waits for the next second, so the load arrives in
 *   waves at each second's start — the overload bench saw bursts of 140
 *   requests in half a second and then 60, and the served requests' waits
 *   followed the waves, not the node.
 *
 * Latencies are those of 2xx answers, exact (autocannon's own histogram
 * rounds to whole milliseconds).
 */
import autocannon from 'autocannon';
import { Pool, errors } from 'undici';
import type { LoadResult, LoadSpec } from './lib.js';
import { percentiles } from './lib.js';

async function readStdin(): Promise<string> {
  let s = '';
  for await (const chunk of process.stdin) s += chunk;
  return s;
}

const spec = JSON.parse(await readStdin()) as LoadSpec;
const host = new URL(spec.url).hostname;
if (host !== '127.0.0.1' && host !== 'localhost' && host !== '::1') throw new Error(`benchmarks only run against loopback, not ${host}`);

interface OneRequest {
  method: 'GET' | 'POST';
  path: string;
  headers: Record<string, string>;
  body?: string;
}

/** The i-th request of the load. */
const requestAt: (i: number) => OneRequest = (() => {
  const r = spec.requests;
  if (r.kind === 'get') {
    return (i): OneRequest => ({ method: 'GET', path: r.path, headers: r.auth.length ? { authorization: r.auth[i % r.auth.length] } : {} });
  }
  const words = ['river', 'coffee', 'mountain', 'station', 'garden', 'planet', 'music', 'bridge'];
  return (k): OneRequest => ({
    method: 'POST',
    path: '/api/v1/statuses',
    headers: {
      'content-type': 'application/json',
      authorization: `Bearer bench-token-${r.tokens[k % r.tokens.length]}`,
      'idempotency-key': `${r.keyPrefix}-${k}`,
    },
    body: JSON.stringify({ status: `Bench post ${k}: the ${words[k % words.length]} at dawn #bench${k % 50}` }),
  });
})();

let latencies = new Float64Array(1 << 20);
// When each answered request was sent (ms since the load began): the overload bench separates its first second,
// when the node has not yet reacted, from the steady state after it.
let sentAt = new Float64Array(1 << 20);
let n = 0;
// The open loop's pool, warmed before the start: its first requests would otherwise pay for compiling undici's
// parser (WebAssembly) and its code paths, 100–250 ms with four generators starting on one CPU, and the node
// would be blamed for it.
const timeoutMs = (spec.timeout ?? 10) * 1000;
const pool = spec.overallRate ? new Pool(spec.url, { connections: spec.connections, pipelining: 1, headersTimeout: timeoutMs, bodyTimeout: timeoutMs }) : null;
if (pool) {
  await Promise.all(
    Array.from({ length: Math.min(spec.connections, 16) }, async () => {
      const res = await pool.request({ method: 'GET', path: '/health' });
      await res.body.text();
    }),
  );
}
// Several generators start together (one per request kind): each loads its code first and then waits for the
// agreed moment, so none measures while the others are still starting on the same CPU.
if (spec.startAt) await new Promise((res) => setTimeout(res, Math.max(0, spec.startAt! - Date.now())));
const began = performance.now();
const ids: string[] = [];
const ID_RE = /^\{"id":"(\d+)"/;
const collectIds = spec.requests.kind === 'post-status';

function record(latency: number, dueAt: number): void {
  if (n === latencies.length) {
    const bigger = new Float64Array(latencies.length * 2);
    bigger.set(latencies);
    latencies = bigger;
    const later = new Float64Array(sentAt.length * 2);
    later.set(sentAt);
    sentAt = later;
  }
  sentAt[n] = dueAt;
  latencies[n++] = latency;
}

const out = pool && spec.overallRate ? await openLoop(pool, spec.overallRate) : await closedLoop();
process.stdout.write(`${JSON.stringify(out)}\n`);

async function closedLoop(): Promise<LoadResult> {
  let i = 0;
  const requests: autocannon.Request[] = [
    {
      setupRequest: (req) => {
        const one = requestAt(i++);
        return { ...req, method: one.method, path: one.path, headers: { ...req.headers, ...one.headers }, body: one.body };
      },
      onResponse: (status, body) => {
        if (collectIds && status >= 200 && status < 300) {
          const m = ID_RE.exec(body);
          if (m) ids.push(m[1]);
        }
      },
    },
  ];
  const result = await new Promise<autocannon.Result>((resolve, reject) => {
    const instance = autocannon(
      {
        url: spec.url,
        connections: spec.connections,
        duration: spec.duration,
        maxOverallRequests: spec.maxRequests,
        requests,
        timeout: spec.timeout ?? 10,
      },
      (err, res) => (err ? reject(err) : resolve(res)),
    );
    instance.on('response', (_client, status: number, _bytes: number, duration: number) => {
      if (status >= 200 && status < 300) record(duration, performance.now() - began - duration);
    });
  });
  const codes: Record<string, number> = {};
  for (const [code, v] of Object.entries(result.statusCodeStats ?? {})) codes[code] = (v as { count: number }).count;
  return summary({ requests: result.requests.total, ok: result['2xx'], non2xx: result.non2xx, errors: result.errors, timeouts: result.timeouts, seconds: result.duration, codes });
}

/** Poisson arrivals at `rate` per second for the duration, each request sent when due on a free connection of the pool. */
async function openLoop(pool: Pool, rate: number): Promise<LoadResult> {
  const codes: Record<string, number> = {};
  const counts = { requests: 0, ok: 0, non2xx: 0, errors: 0, timeouts: 0 };
  const pending = new Set<Promise<void>>();
  const meanGapMs = 1000 / rate;
  const endAt = began + spec.duration * 1000;
  let due = began;
  const send = (i: number, dueAt: number) => {
    const one = requestAt(i);
    counts.requests++;
    const p = pool
      .request({ method: one.method, path: one.path, headers: one.headers, body: one.body })
      .then(async (res) => {
        const text = await res.body.text();
        const latency = performance.now() - dueAt;
        codes[res.statusCode] = (codes[res.statusCode] ?? 0) + 1;
        if (res.statusCode >= 200 && res.statusCode < 300) {
          counts.ok++;
          record(latency, dueAt - began);
          if (collectIds) {
            const m = ID_RE.exec(text);
            if (m) ids.push(m[1]);
          }
        } else counts.non2xx++;
      })
      .catch((err: unknown) => {
        if (err instanceof errors.HeadersTimeoutError || err instanceof errors.BodyTimeoutError) counts.timeouts++;
        else counts.errors++;
      })
      .finally(() => pending.delete(p));
    pending.add(p);
  };
  for (let i = 0; i < spec.maxRequests; ) {
    const now = performance.now();
    if (due >= endAt) break;
    while (due <= now && due < endAt && i < spec.maxRequests) {
      send(i++, due);
      due += -Math.log(1 - Math.random()) * meanGapMs;
    }
    await new Promise((res) => setTimeout(res, Math.max(0, due - performance.now())));
  }
  const seconds = (Math.min(performance.now(), endAt) - began) / 1000;
  await Promise.all(pending);
  await pool.close();
  return summary({ ...counts, seconds, codes });
}

function summary(r: { requests: number; ok: number; non2xx: number; errors: number; timeouts: number; seconds: number; codes: Record<string, number> }): LoadResult {
  const all = latencies.subarray(0, n);
  return {
    requests: r.requests,
    ok: r.ok,
    non2xx: r.non2xx,
    errors: r.errors,
    timeouts: r.timeouts,
    seconds: r.seconds,
    rps: r.ok / r.seconds,
    latency: percentiles(all),
    afterFirstSecond: percentiles(all.filter((_, i) => sentAt[i] >= 1000)),
    statusCodes: r.codes,
    ids: collectIds ? ids : undefined,
  };
}
