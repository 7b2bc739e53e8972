/**
 * The load generator, run as a child process by the benchmarks (bench/lib.ts
 * runLoad): reads a LoadSpec as JSON on stdin, runs autocannon against
 * 127.0.0.1, prints a LoadResult as one JSON line on stdout.
 *
 * Latencies are recorded here from every 2xx response's exact duration
 * (autocannon's own histogram rounds to whole milliseconds).
 */
import autocannon from 'autocannon';
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

let latencies = new Float64Array(1 << 20);
// When each 2xx answer came (ms since the load began): the overload bench separates its first second, when all
// connections open and send at once, from the steady state after it.
let answeredAt = new Float64Array(1 << 20);
let n = 0;
const began = performance.now();
const ids: string[] = [];
const ID_RE = /^\{"id":"(\d+)"/;

const r = spec.requests;
let requests: autocannon.Request[];
let headers: Record<string, string> | undefined;
if (r.kind === 'get') {
  if (r.auth.length <= 1) {
    headers = r.auth.length ? { authorization: r.auth[0] } : {};
    requests = [{ method: 'GET', path: r.path }];
  } else {
    let i = 0;
    requests = [
      {
        method: 'GET',
        path: r.path,
        setupRequest: (req) => ({ ...req, headers: { ...req.headers, authorization: r.auth[i++ % r.auth.length] } }),
      },
    ];
  }
} else {
  let i = 0;
  const words = ['river', 'coffee', 'mountain', 'station', 'garden', 'planet', 'music', 'bridge'];
  requests = [
    {
      method: 'POST',
      path: '/api/v1/statuses',
      setupRequest: (req) => {
        const k = i++;
        return {
          ...req,
          headers: {
            'content-type': 'application/json',
            authorization: `Bearer bench-token-${r.tokens[k % r.tokens.length]}`,
            'idempotency-key': `${r.keyPrefix}-${k}`,
          },
          body: JSON.stringify({ status: `Bench post ${k}: the ${words[k % words.length]} at dawn #bench${k % 50}` }),
        };
      },
      onResponse: (status, body) => {
        if (status >= 200 && status < 300) {
          const m = ID_RE.exec(body);
          if (m) ids.push(m[1]);
        }
      },
    },
  ];
}

const result = await new Promise<autocannon.Result>((resolve, reject) => {
  const instance = autocannon(
    {
      url: spec.url,
      connections: spec.connections,
      duration: spec.duration,
      maxOverallRequests: spec.maxRequests,
      headers,
      requests,
      overallRate: spec.overallRate,
      timeout: spec.timeout ?? 10,
    },
    (err, res) => (err ? reject(err) : resolve(res)),
  );
  instance.on('response', (_client, status: number, _bytes: number, duration: number) => {
    if (status < 200 || status >= 300) return;
    if (n === latencies.length) {
      const bigger = new Float64Array(latencies.length * 2);
      bigger.set(latencies);
      latencies = bigger;
      const later = new Float64Array(answeredAt.length * 2);
      later.set(answeredAt);
      answeredAt = later;
    }
    answeredAt[n] = performance.now() - began;
    latencies[n++] = duration;
  });
});
const seconds = result.duration;

const codes: Record<string, number> = {};
for (const [code, v] of Object.entries(result.statusCodeStats ?? {})) codes[code] = (v as { count: number }).count;
const ok = result['2xx'];
const out: LoadResult = {
  requests: result.requests.total,
  ok,
  non2xx: result.non2xx,
  errors: result.errors,
  timeouts: result.timeouts,
  seconds,
  rps: ok / seconds,
  latency: percentiles(latencies.subarray(0, n)),
  afterFirstSecond: percentiles(latencies.subarray(0, n).filter((_, i) => answeredAt[i] - latencies[i] >= 1000)),
  statusCodes: codes,
  ids: r.kind === 'post-status' ? ids : undefined,
};
process.stdout.write(`${JSON.stringify(out)}\n`);
