/**
 * The load generator, run as a child process by the benchmarks (bench/lib.ts
 * runLoad, runLoads): reads a LoadSpec as JSON on stdin, or an array of
 * open-loop ones that one event loop then sends together, drives 127.0.0.1,
 * prints a LoadResult (or an array of them) as one JSON line on stdout.
 *
 * - Closed loop (no `overallRate`): autocannon, each connection sending its
 *   next request when the last is answered — what a node can serve; with
 *   `backoffMs`, an undici pool instead, and a refused connection waits before
 *   it asks again (a node that sheds load).
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
import { PerformanceObserver, monitorEventLoopDelay } from 'node:perf_hooks';
import { Pool, errors } from 'undici';
import type { LoadResult, LoadSpec } from './lib.js';
import { monotonicMs, percentiles } from './lib.js';

async function readStdin(): Promise<string> {
  let s = '';
  for await (const chunk of process.stdin) s += chunk;
  return s;
}


interface OneRequest {
  method: 'GET' | 'POST';
  path: string;
  headers: Record<string, string>;
  body?: string;
}

/** The i-th request of a load. */
function requestsOf(r: LoadSpec['requests']): (i: number) => OneRequest {
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
}

const ID_RE = /^\{"id":"(\d+)"/;

/** What one load saw: each answered request's latency and when it was due, and how late the generator sent it. */
class Recorder {
  private latencies = new Float64Array(1 << 16);
  // When each answered request was due (ms since the load began): the overload bench separates its first second,
  // when the node has not yet reacted, from the steady state after it.
  private dueAt = new Float64Array(1 << 16);
  private n = 0;
  // How late the generator itself sent each open-loop request (ms after it was due): its own event loop's delay,
  // part of every latency it reports, and not the node's doing.
  readonly lateness: number[] = [];
  readonly ids: string[] = [];
  readonly trace: [number, number, number, number][] = [];

  constructor(readonly collectIds: boolean) {}

  record(latency: number, dueAt: number): void {
    if (this.n === this.latencies.length) {
      const grow = (a: Float64Array) => {
        const bigger = new Float64Array(a.length * 2);
        bigger.set(a);
        return bigger;
      };
      this.latencies = grow(this.latencies);
      this.dueAt = grow(this.dueAt);
    }
    this.dueAt[this.n] = dueAt;
    this.latencies[this.n++] = latency;
  }

  /** A posting load keeps the ids of the statuses acknowledged. */
  answered(body: string): void {
    if (!this.collectIds) return;
    const m = ID_RE.exec(body);
    if (m) this.ids.push(m[1]);
  }

  summary(r: { requests: number; ok: number; non2xx: number; errors: number; timeouts: number; seconds: number; codes: Record<string, number> }): LoadResult {
    const all = this.latencies.subarray(0, this.n);
    return {
      requests: r.requests,
      ok: r.ok,
      non2xx: r.non2xx,
      errors: r.errors,
      timeouts: r.timeouts,
      seconds: r.seconds,
      rps: r.ok / r.seconds,
      latency: percentiles(all),
      afterFirstSecond: percentiles(all.filter((_, i) => this.dueAt[i] >= 1000)),
      firstSecond: percentiles(all.filter((_, i) => this.dueAt[i] < 1000)),
      lateness: this.lateness.length ? percentiles(this.lateness) : undefined,
      statusCodes: r.codes,
      ids: this.collectIds ? this.ids : undefined,
      trace: this.trace.length ? this.trace : undefined,
    };
  }
}

/** Open loops and backing-off closed loops go through an undici pool; plain closed loops through autocannon. */
const pooled = (spec: LoadSpec) => Boolean(spec.overallRate) || spec.backoffMs !== undefined;

const input = JSON.parse(await readStdin()) as LoadSpec | LoadSpec[];
const specs = Array.isArray(input) ? input : [input];
for (const spec of specs) {
  const host = new URL(spec.url).hostname;
  if (host !== '127.0.0.1' && host !== 'localhost' && host !== '::1') throw new Error(`benchmarks only run against loopback, not ${host}`);
  if (specs.length > 1 && !pooled(spec)) throw new Error('several loads in one generator must all be open loops or closed ones with backoffMs');
}
// The open loops' pools, warmed before the start: their first requests would otherwise pay for compiling undici's
// parser (WebAssembly) and its code paths, 100–250 ms with generators starting on one CPU, and the node would be
// blamed for it.
const pools = specs.map((spec) => {
  if (!pooled(spec)) return null;
  const timeoutMs = (spec.timeout ?? 10) * 1000;
  return new Pool(spec.url, { connections: spec.connections, pipelining: 1, headersTimeout: timeoutMs, bodyTimeout: timeoutMs });
});
await Promise.all(
  pools.map((pool, i) =>
    pool
      ? Promise.all(
          Array.from({ length: Math.min(specs[i].connections, 16) }, async () => {
            const res = await pool.request({ method: 'GET', path: '/health' });
            await res.body.text();
          }),
        )
      : null,
  ),
);
// Several generators start together: each loads its code first and then waits for the agreed moment, so none
// measures while the others are still starting on the same CPU.
const startAt = specs[0].startAt;
if (startAt) await new Promise((res) => setTimeout(res, Math.max(0, startAt - Date.now())));
const began = performance.now();
// The generator's own stalls: a request due during one is sent late, and its latency counts the wait.
const loopDelay = monitorEventLoopDelay({ resolution: 1 });
loopDelay.enable();
const gcs: number[] = [];
const gcObs = new PerformanceObserver((l) => l.getEntries().forEach((e) => gcs.push(e.duration)));
gcObs.observe({ entryTypes: ['gc'] });
const out = await Promise.all(specs.map((spec, i) => (!pools[i] ? closedLoop(spec) : spec.overallRate ? openLoop(spec, pools[i]) : backingOffLoop(spec, pools[i]))));
loopDelay.disable();
gcObs.disconnect();
const generator = { loopDelayP99Ms: loopDelay.percentile(99) / 1e6, loopDelayMaxMs: loopDelay.max / 1e6, gcMs: gcs.reduce((a, b) => a + b, 0), gcLongestMs: Math.max(0, ...gcs) };
for (const r of out) r.generator = generator;
process.stdout.write(`${JSON.stringify(Array.isArray(input) ? out : out[0])}\n`);

async function closedLoop(spec: LoadSpec): Promise<LoadResult> {
  const rec = new Recorder(spec.requests.kind === 'post-status');
  const requestAt = requestsOf(spec.requests);
  let i = 0;
  const requests: autocannon.Request[] = [
    {
      setupRequest: (req) => {
        const one = requestAt(i++);
        return { ...req, method: one.method, path: one.path, headers: { ...req.headers, ...one.headers }, body: one.body };
      },
      onResponse: (status, body) => {
        if (status >= 200 && status < 300) rec.answered(body);
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
      if (status >= 200 && status < 300) rec.record(duration, performance.now() - began - duration);
    });
  });
  const codes: Record<string, number> = {};
  for (const [code, v] of Object.entries(result.statusCodeStats ?? {})) codes[code] = (v as { count: number }).count;
  return rec.summary({ requests: result.requests.total, ok: result['2xx'], non2xx: result.non2xx, errors: result.errors, timeouts: result.timeouts, seconds: result.duration, codes });
}

/** Each connection sends its next request when the last is answered, and waits `backoffMs` first if it was refused (503). */
async function backingOffLoop(spec: LoadSpec, pool: Pool): Promise<LoadResult> {
  const rec = new Recorder(spec.requests.kind === 'post-status');
  const requestAt = requestsOf(spec.requests);
  const codes: Record<string, number> = {};
  const counts = { requests: 0, ok: 0, non2xx: 0, errors: 0, timeouts: 0 };
  const endAt = began + spec.duration * 1000;
  let i = 0;
  const connection = async () => {
    while (performance.now() < endAt && i < spec.maxRequests) {
      const one = requestAt(i++);
      const sentAt = performance.now();
      counts.requests++;
      try {
        const res = await pool.request({ method: one.method, path: one.path, headers: one.headers, body: one.body });
        const text = await res.body.text();
        codes[res.statusCode] = (codes[res.statusCode] ?? 0) + 1;
        if (res.statusCode >= 200 && res.statusCode < 300) {
          // Only what was answered within the duration counts: the rate is of the duration.
          if (performance.now() > endAt) break;
          counts.ok++;
          rec.record(performance.now() - sentAt, sentAt - began);
          rec.answered(text);
        } else {
          counts.non2xx++;
          if (res.statusCode === 503) await new Promise((r) => setTimeout(r, spec.backoffMs));
        }
      } catch (err) {
        if (err instanceof errors.HeadersTimeoutError || err instanceof errors.BodyTimeoutError) counts.timeouts++;
        else counts.errors++;
      }
    }
  };
  await Promise.all(Array.from({ length: spec.connections }, connection));
  await pool.close();
  return rec.summary({ ...counts, seconds: spec.duration, codes });
}

/** Poisson arrivals at the spec's rate for its duration, each request sent when due on a free connection of the pool. */
async function openLoop(spec: LoadSpec, pool: Pool): Promise<LoadResult> {
  const rec = new Recorder(spec.requests.kind === 'post-status');
  const requestAt = requestsOf(spec.requests);
  const codes: Record<string, number> = {};
  const counts = { requests: 0, ok: 0, non2xx: 0, errors: 0, timeouts: 0 };
  const pending = new Set<Promise<void>>();
  const meanGapMs = 1000 / spec.overallRate!;
  const endAt = began + spec.duration * 1000;
  let due = began;
  // performance.now() and the monotonic clock differ by a constant: a trace converts with it.
  const toMonotonic = monotonicMs() - performance.now();
  const send = (i: number, dueAt: number) => {
    const one = requestAt(i);
    const sentAt = performance.now();
    rec.lateness.push(sentAt - dueAt);
    counts.requests++;
    const headers = spec.trace ? { ...one.headers, 'x-bench-seq': String(i) } : one.headers;
    const p = pool
      .request({ method: one.method, path: one.path, headers, body: one.body })
      .then(async (res) => {
        const text = await res.body.text();
        const doneAt = performance.now();
        const latency = doneAt - dueAt;
        codes[res.statusCode] = (codes[res.statusCode] ?? 0) + 1;
        if (res.statusCode >= 200 && res.statusCode < 300) {
          counts.ok++;
          rec.record(latency, dueAt - began);
          rec.answered(text);
          if (spec.trace) rec.trace.push([i, dueAt + toMonotonic, sentAt + toMonotonic, doneAt + toMonotonic]);
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
  return rec.summary({ ...counts, seconds, codes });
}
