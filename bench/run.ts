/**
 * Starling benchmarks. Each subcommand starts a Starling node in this process
 * on 127.0.0.1 over a seeded data folder (`starling seed`), drives it with
 * autocannon (or WebSocket clients) from a child process, and prints what it
 * measured. Usage: `npm run bench -- <command> --data-dir DIR [options]`;
 * see bench/README.md. Numbers go to docs/PERFORMANCE.md with the command
 * that produced them.
 */
import { parseArgs } from 'node:util';
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { cpus, totalmem } from 'node:os';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { sql } from 'kysely';
import { ROOT, log, ms, num, percentiles, randomViewers, runChild, runLoad, startNode, table, tokenFor, type LoadResult, type BenchNode } from './lib.js';
import type { StreamInput, StreamOutput } from './stream-client.js';
import { overload } from './overload.js';
import { replans } from './replans.js';
import { alloc } from './alloc.js';
import { burst } from './burst.js';
import { onset } from './onset.js';

const USAGE = `Usage: npm run bench -- <command> --data-dir DIR [options]

Commands:
  timeline        GET /api/v1/timelines/home against a route returning the same bytes
                  precomputed (the ceiling), alternately, in the same process and run
      [--rounds 3] [--duration 10] [--warmup 3] [--connections 32] [--viewers 1000]
                  --viewers N adds a third series rotating over N random viewers
  ceiling-ratio   The same comparison with one viewer only (quicker: --rounds 3 --duration 5)
  post            POST /api/v1/statuses as many seeded users with distinct Idempotency-Keys,
                  then checks every acknowledged post exists and waits for fan-out
      [--duration 20] [--connections 32] [--posters 2000]
  stream          N open user streams (WebSocket) of one author's followers; post as the
                  author and measure post → event latency
      [--streams 1000,10000] [--posts 20] [--interval 300]
  overload        The node at ~3× the load it can serve: a mix of essential (home timeline, posting)
                  and deferrable (search, public timeline) requests; unloaded vs loaded p99, 503 share
                  with Retry-After vs timeouts, RSS over time, recovery time (docs/RELIABILITY.md)
      [--duration 20] [--factor 3] [--connections 256] [--shed-delay-ms N] [--pin NODE_CPUS:LOAD_CPUS]
                  --pin 0:1 runs the node on CPU 0 and the load generators on CPU 1 (taskset)
      [--cpu-prof FILE] profiles the node during the overload and reports what held its event loop
      [--repeat N] N runs, each on a fresh node, and a summary against the bar with the medians
      [--rate R]   offer R req/s under the overload whatever the capacity run measured (A/B at one load)
      [--postgres]  the node on PostgreSQL: a throwaway server (durable settings) holding a copy of the
                    dataset, a fresh clone for each run, on the load generators' CPUs with --pin
  replans         Drives the API as a few seeded users, then times every SQLite statement it saw re-bound
                  on every run against bound once: finds statements SQLite plans again on every run
                  (a bound LIMIT, a bound value a partial index is defined by). Exits 1 if it finds one.
      [--users 20]    Writes a few posts, favourites and follows into the dataset.
  alloc           GET --path as seeded users in process under V8's sampling heap profiler: bytes allocated per
                  request, by the function that allocated them and by Starling's functions with their callees
      [--path /api/v1/timelines/home] [--requests 2000] [--postgres] (a PostgreSQL copy of the dataset)
  burst           An app opening: one user's dozen requests at once, repeated, with load shedding on; how
                  they were answered, how long a burst took and what was shed, by reason
      [--bursts 40] [--load F]  F > 0: beside the overload bench's mix at F × what the node can serve
      [--rate R]      …or at R req/s (no capacity run: runs to compare at one rate)
      [--pin NODE_CPUS:LOAD_CPUS]
  onset           An overload that begins at once: the overload bench's mix at --rate for --seconds, on a node left
                  idle before each, --cycles times; the essential requests' latency in the first 250 ms of each
                  onset against the rest, the 503s and what was shed, by reason
      [--cycles 20] [--rate 1000] [--seconds 1] [--pin NODE_CPUS:LOAD_CPUS]
  coldstart       node bin/starling.js serve → first 200 on /health, repeated
      [--runs 10] [--env KEY=VALUE ...]   (needs a current build: npm run build)

Common: --data-dir DIR (a seeded folder; required), --log-level warn, --config FILE,
        --sqlite-cache-mb N (experiment: SQLite page cache of the node's connection; default SQLite's 2 MB)
Loopback only. Posting changes the dataset (adds statuses): run it after the read benchmarks,
or seed again.
`;

const { positionals, values: flags } = parseArgs({
  args: process.argv.slice(2),
  allowPositionals: true,
  strict: true,
  options: {
    'data-dir': { type: 'string' },
    config: { type: 'string' },
    'log-level': { type: 'string', default: 'warn' },
    duration: { type: 'string' },
    warmup: { type: 'string', default: '3' },
    rounds: { type: 'string', default: '3' },
    bursts: { type: 'string', default: '40' },
    cycles: { type: 'string', default: '20' },
    seconds: { type: 'string' },
    load: { type: 'string' },
    rate: { type: 'string' },
    connections: { type: 'string', default: '32' },
    viewers: { type: 'string', default: '1' },
    posters: { type: 'string', default: '2000' },
    streams: { type: 'string', default: '1000,10000' },
    posts: { type: 'string', default: '20' },
    interval: { type: 'string', default: '300' },
    runs: { type: 'string', default: '10' },
    env: { type: 'string', multiple: true },
    'sqlite-cache-mb': { type: 'string' },
    factor: { type: 'string', default: '3' },
    'shed-delay-ms': { type: 'string' },
    pin: { type: 'string' },
    'cpu-prof': { type: 'string' },
    users: { type: 'string', default: '20' },
    repeat: { type: 'string', default: '1' },
    postgres: { type: 'boolean', default: false },
    path: { type: 'string', default: '/api/v1/timelines/home' },
    requests: { type: 'string', default: '2000' },
    help: { type: 'boolean', short: 'h' },
  },
});

const int = (name: keyof typeof flags, fallback?: number): number => {
  const v = flags[name];
  if (v === undefined) {
    if (fallback === undefined) throw new Error(`--${name} is required`);
    return fallback;
  }
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new Error(`--${name} must be a non-negative number`);
  return n;
};

function machine(): string {
  const cpu = cpus()[0]?.model ?? 'unknown CPU';
  return `${cpus().length} CPUs (${cpu}), ${(totalmem() / 1024 ** 3).toFixed(0)} GiB, Node ${process.version}`;
}

function dataDir(): string {
  const d = flags['data-dir'];
  if (!d) throw new Error('--data-dir is required (a folder seeded with `starling seed`)');
  const dir = resolve(d);
  if (!existsSync(join(dir, 'starling.sqlite'))) throw new Error(`${dir} holds no starling.sqlite: seed it first (starling seed --data-dir ${d} ...)`);
  return dir;
}

const roundRow = (label: string, r: LoadResult) => [
  label,
  num(r.rps),
  ms(r.latency.p50),
  ms(r.latency.p99),
  ms(r.latency.p999),
  num(r.non2xx),
  num(r.errors + r.timeouts),
];
const HEADER = ['', 'req/s', 'p50', 'p99', 'p99.9', 'non-2xx', 'errors'];

async function count(node: BenchNode, query: ReturnType<typeof sql<{ n: number }>>): Promise<number> {
  const { rows } = await query.execute(node.ctx.db);
  return Number(rows[0].n);
}

// ---------------------------------------------------------------------------

async function timeline(quick: boolean): Promise<void> {
  const dir = dataDir();
  const rounds = int('rounds');
  const duration = int('duration', quick ? 5 : 10);
  const warmup = int('warmup');
  const connections = int('connections');
  const viewerCount = quick ? 1 : int('viewers');
  let pre: { body: Buffer; contentType: string; link: string } | null = null;
  const node = await startNode(dir, {
    logLevel: flags['log-level'],
    configFile: flags.config,
    sqliteCacheMb: int('sqlite-cache-mb', 0),
    addRoutes: (app) => {
      // The ceiling: the same bytes and headers as the viewer's real home timeline, precomputed.
      // Not part of Starling: it exists only in this process.
      app.get('/bench/ceiling', async (_req, reply) => {
        if (!pre) return reply.code(503).send();
        return reply.header('content-type', pre.contentType).header('link', pre.link).send(pre.body);
      });
    },
  });
  try {
    const db = node.ctx.db;
    const threshold = node.config.fanoutThreshold;
    // A typical viewer: the median number of followees, a full first page, and (if the dataset has
    // any) at least one followed 'pull' author, so the read merges both halves of the home feed.
    const median = await count(node, sql<{ n: number }>`SELECT following_count AS n FROM accounts ORDER BY following_count LIMIT 1 OFFSET (SELECT count(*) / 2 FROM accounts)`);
    const pulls = await count(node, sql<{ n: number }>`SELECT count(*) AS n FROM accounts WHERE followers_count >= ${threshold}`);
    const { rows: cand } = await sql<{ id: string; following_count: number }>`
      SELECT a.id, a.following_count FROM accounts a
      WHERE a.following_count BETWEEN ${median - 3} AND ${median + 3}
        AND (SELECT count(*) FROM (SELECT 1 FROM home_feed h WHERE h.account_id = a.id LIMIT 20)) = 20
        AND (${pulls} = 0 OR EXISTS (SELECT 1 FROM follows f JOIN accounts t ON t.id = f.target_account_id
             WHERE f.account_id = a.id AND t.followers_count >= ${threshold}))
      ORDER BY a.id LIMIT 1`.execute(db);
    if (!cand.length) throw new Error('no typical viewer found in this dataset');
    const viewer = String(cand[0].id);
    const auth = `Bearer ${tokenFor(viewer)}`;

    const real = await fetch(`${node.url}/api/v1/timelines/home`, { headers: { authorization: auth } });
    const body = Buffer.from(await real.arrayBuffer());
    if (real.status !== 200) throw new Error(`home timeline answered ${real.status}: ${body.toString().slice(0, 200)}`);
    const statuses = JSON.parse(body.toString()) as unknown[];
    pre = { body, contentType: real.headers.get('content-type') ?? 'application/json; charset=utf-8', link: real.headers.get('link') ?? '' };
    const ceil = await fetch(`${node.url}/bench/ceiling`);
    const ceilBody = Buffer.from(await ceil.arrayBuffer());
    if (!ceilBody.equals(body)) throw new Error('the ceiling route does not return the same bytes');

    const viewers = viewerCount > 1 ? await randomViewers(node, viewerCount) : [];

    log(`machine: ${machine()}`);
    log(`dataset: ${dir}; viewer ${viewer} follows ${cand[0].following_count} accounts (median ${median}); ${pulls} 'pull' authors in the dataset`);
    log(`response: ${statuses.length} statuses, ${num(body.length)} bytes, Link: ${pre.link ? 'yes' : 'no'}`);
    log(`load: autocannon, ${connections} connections, ${rounds} rounds × ${duration} s per series (after ${warmup} s warm-up each), child process`);

    const series: { label: string; auth: string[]; path: string }[] = [
      { label: 'home timeline', auth: [auth], path: '/api/v1/timelines/home' },
      ...(viewers.length ? [{ label: `home, ${viewers.length} viewers`, auth: viewers, path: '/api/v1/timelines/home' }] : []),
      { label: 'ceiling (same bytes)', auth: [], path: '/bench/ceiling' },
    ];
    const run = async (s: (typeof series)[number], seconds: number) => {
      const res = await runLoad({ url: node.url, connections, duration: seconds, maxRequests: seconds * 200_000, requests: { kind: 'get', path: s.path, auth: s.auth } });
      const waited = performance.now();
      await node.idle();
      const drain = performance.now() - waited;
      if (drain > 1000) log(`  (${s.label}: the node needed ${(drain / 1000).toFixed(1)} s after the load stopped to answer requests still queued)`);
      return res;
    };
    if (warmup > 0) for (const s of series) await run(s, warmup);
    const results = new Map<string, LoadResult[]>(series.map((s) => [s.label, []]));
    const rows: (string | number)[][] = [['round', ...HEADER]];
    for (let r = 1; r <= rounds; r++) {
      for (const s of series) {
        const res = await run(s, duration);
        results.get(s.label)!.push(res);
        rows.push([String(r), ...roundRow(s.label, res)]);
        log(`round ${r} ${s.label}: ${num(res.rps)} req/s, p99 ${ms(res.latency.p99)}`);
      }
    }
    const rate = (list: LoadResult[]) => list.reduce((n, x) => n + x.ok, 0) / list.reduce((n, x) => n + x.seconds, 0);
    const worst = (list: LoadResult[]) => Math.max(...list.map((x) => x.latency.p99));
    const realRate = rate(results.get('home timeline')!);
    const ceilRate = rate(results.get('ceiling (same bytes)')!);
    console.log(table(rows));
    console.log('');
    for (const s of series) {
      const list = results.get(s.label)!;
      console.log(`${s.label}: ${num(rate(list))} req/s over ${list.length} rounds, worst-round p99 ${ms(worst(list))}`);
    }
    const ratio = realRate / ceilRate;
    const p99 = worst(results.get('home timeline')!);
    console.log(`ratio home/ceiling: ${(ratio * 100).toFixed(1)} % (target ≥ 50 %: ${ratio >= 0.5 ? 'met' : 'NOT met'}); home p99 ${ms(p99)} (target ≤ 25 ms: ${p99 <= 25 ? 'met' : 'NOT met'})`);
  } finally {
    await node.close();
  }
}

// ---------------------------------------------------------------------------

async function post(): Promise<void> {
  const dir = dataDir();
  const duration = int('duration', 20);
  const connections = int('connections');
  const posterCount = int('posters');
  const node = await startNode(dir, { logLevel: flags['log-level'], configFile: flags.config, sqliteCacheMb: int('sqlite-cache-mb', 0) });
  try {
    const db = node.ctx.db;
    const { rows } = await sql<{ id: string }>`SELECT id FROM accounts ORDER BY random() LIMIT ${posterCount}`.execute(db);
    const posters = rows.map((r) => String(r.id));
    const followers = await count(
      node,
      sql<{ n: number }>`SELECT coalesce(avg(followers_count), 0) AS n FROM accounts WHERE id IN (${sql.join(posters.slice(0, 1000))})`,
    );
    const before = await count(node, sql<{ n: number }>`SELECT count(*) AS n FROM statuses`);
    const prefix = `bench-${Date.now().toString(36)}`;
    log(`machine: ${machine()}`);
    log(`dataset: ${dir}; ${posters.length} posters (mean ${followers.toFixed(0)} followers each: the fan-out per post)`);
    log(`load: autocannon, ${connections} connections, ${duration} s, one Idempotency-Key per request, child process`);
    const res = await runLoad({ url: node.url, connections, duration, maxRequests: duration * 50_000, requests: { kind: 'post-status', tokens: posters, keyPrefix: prefix } });
    const ended = performance.now();
    const backlog = await count(node, sql<{ n: number }>`SELECT count(*) AS n FROM jobs WHERE type = 'fanout'`);
    let remaining = backlog;
    while (remaining > 0 && performance.now() - ended < 300_000) {
      await new Promise((r) => setTimeout(r, 200));
      remaining = await count(node, sql<{ n: number }>`SELECT count(*) AS n FROM jobs WHERE type = 'fanout'`);
    }
    const drainSeconds = (performance.now() - ended) / 1000;
    const after = await count(node, sql<{ n: number }>`SELECT count(*) AS n FROM statuses`);
    // Every acknowledged post must exist.
    const ids = [...new Set(res.ids ?? [])];
    let found = 0;
    for (let i = 0; i < ids.length; i += 500) {
      found += await count(node, sql<{ n: number }>`SELECT count(*) AS n FROM statuses WHERE id IN (${sql.join(ids.slice(i, i + 500))})`);
    }
    console.log(table([HEADER, roundRow('create status', res)]));
    console.log('');
    console.log(`acknowledged ${num(res.ok)} posts (${num(ids.length)} distinct ids); found in the database: ${num(found)}; statuses before ${num(before)}, after ${num(after)} (+${num(after - before)})`);
    console.log(`${found === ids.length && ids.length === res.ok ? 'OK: every acknowledged post exists' : 'FAILED: acknowledged posts are missing'}`);
    const unacked = after - before - ids.length;
    if (unacked > 0) {
      console.log(`${num(unacked)} posts were committed without their client hearing back (requests in flight when the run ended, or after a client timeout: at most ${num(connections + res.errors + res.timeouts)} here); a retry with the same Idempotency-Key returns them`);
    }
    console.log(`fan-out backlog when the load stopped: ${num(backlog)} jobs; ${remaining === 0 ? `drained ${drainSeconds.toFixed(1)} s later` : `${num(remaining)} still queued after ${drainSeconds.toFixed(0)} s`}`);
    const sustained = res.ok / (res.seconds + (remaining === 0 ? drainSeconds : Infinity));
    console.log(`posts/s acknowledged: ${num(res.rps)}; including fan-out completion: ${num(sustained)} (target ≥ 3,000/s, p99 ≤ 50 ms: ${res.rps >= 3000 && res.latency.p99 <= 50 ? 'met' : 'NOT met'})`);
  } finally {
    await node.close();
  }
}

// ---------------------------------------------------------------------------

async function stream(): Promise<void> {
  const dir = dataDir();
  const sizes = flags.streams!.split(',').map((s) => Number(s.trim()));
  const posts = int('posts');
  const interval = int('interval');
  const node = await startNode(dir, { logLevel: flags['log-level'], configFile: flags.config, sqliteCacheMb: int('sqlite-cache-mb', 0) });
  try {
    log(`machine: ${machine()}`);
    const rows: (string | number)[][] = [['open streams', 'author followers', 'opened', 'connect s', 'events', 'missing', 'p50', 'p99', 'max']];
    for (const n of sizes) {
      // The author with the fewest followers that still has n of them: n streams, all followers.
      const { rows: authors } = await sql<{ id: string; followers_count: number }>`
        SELECT id, followers_count FROM accounts WHERE followers_count >= ${n} ORDER BY followers_count, id LIMIT 1`.execute(node.ctx.db);
      if (!authors.length) {
        log(`no account has ${n} followers in this dataset; skipping`);
        continue;
      }
      const author = String(authors[0].id);
      const { rows: fs } = await sql<{ account_id: string }>`SELECT account_id FROM follows WHERE target_account_id = ${author} ORDER BY id LIMIT ${n}`.execute(node.ctx.db);
      log(`${n} streams: author ${author} (${authors[0].followers_count} followers), ${posts} posts ${interval} ms apart`);
      const input: StreamInput = {
        url: node.url,
        tokens: fs.map((f) => tokenFor(String(f.account_id))),
        authorToken: tokenFor(author),
        posts,
        intervalMs: interval,
      };
      const out = await runChild<StreamOutput>('stream-client.ts', input, 600_000);
      if (out.error) {
        console.log(`${n} streams: ${out.error}`);
        continue;
      }
      const l = percentiles(out.latencies);
      rows.push([num(n), num(authors[0].followers_count), num(out.opened), out.connectSeconds.toFixed(1), num(out.latencies.length), num(out.missing), ms(l.p50), ms(l.p99), ms(l.max)]);
      log(`${n} streams: p50 ${ms(l.p50)}, p99 ${ms(l.p99)}, missing ${out.missing}`);
      log(`  per post, ms (POST answered / first stream / last stream): ${out.perPost.map((p) => `${p.ack.toFixed(0)}/${p.first.toFixed(0)}/${p.last.toFixed(0)}`).join(' ')}`);
    }
    console.log(table(rows));
    console.log('latency: from just before the POST is sent to the arrival of the update event on each stream (same process, same clock)');
  } finally {
    await node.close();
  }
}

// ---------------------------------------------------------------------------

function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => res(port));
    });
  });
}

async function coldstart(): Promise<void> {
  const dir = dataDir();
  const runs = int('runs');
  if (!existsSync(join(ROOT, 'dist/cli/main.js'))) throw new Error('no build: run npm run build first');
  const extraEnv = Object.fromEntries((flags.env ?? []).map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));
  log(`machine: ${machine()}${flags.env?.length ? `; env ${flags.env.join(' ')}` : ''}`);
  // A reference for how busy the machine is: starting node itself, doing nothing.
  const bare: number[] = [];
  for (let i = 0; i < Math.min(runs, 5); i++) {
    const t = performance.now();
    await new Promise<void>((r) => spawn(process.execPath, ['-e', '0'], { stdio: 'ignore' }).once('exit', () => r()));
    bare.push(performance.now() - t);
  }
  log(`reference: node -e 0 takes ${ms(percentiles(bare).p50)} (median of ${bare.length})`);
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const port = await freePort();
    const started = performance.now();
    const child = spawn(process.execPath, [join(ROOT, 'bin/starling.js'), 'serve', '--port', String(port), '--host', '127.0.0.1', '--data-dir', dir], {
      cwd: ROOT,
      env: { PATH: process.env.PATH, STARLING_LOG_LEVEL: flags['log-level'], ...extraEnv },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    const keep = (d: Buffer) => (output = (output + d.toString()).slice(-2000));
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    let ready = 0;
    while (performance.now() - started < 30_000 && child.exitCode === null) {
      try {
        const r = await fetch(`http://127.0.0.1:${port}/health`);
        if (r.status === 200) {
          ready = performance.now() - started;
          break;
        }
      } catch {
        /* not listening yet */
      }
      await new Promise((r) => setTimeout(r, 5));
    }
    if (child.exitCode === null) child.kill('SIGTERM');
    await exited;
    if (!ready) throw new Error(`run ${i + 1}: no 200 on /health within 30 s (exit code ${child.exitCode}); output:\n${output}`);
    times.push(ready);
    log(`run ${i + 1}: ${ms(ready)}`);
  }
  const l = percentiles(times);
  console.log(`cold start (spawn → first 200 on /health), ${runs} runs: min ${ms(Math.min(...times))}, median ${ms(l.p50)}, max ${ms(l.max)} (target ≤ 2 s: ${l.max <= 2000 ? 'met' : 'NOT met'}); node -e 0: ${ms(percentiles(bare).p50)}`);
}

// ---------------------------------------------------------------------------

const command = positionals[0];
if (!command || flags.help) {
  console.log(USAGE);
} else {
  const commands: Record<string, () => Promise<void>> = {
    timeline: () => timeline(false),
    'ceiling-ratio': () => timeline(true),
    post,
    stream,
    coldstart,
    onset: () =>
      onset({ dataDir: dataDir(), cycles: int('cycles'), rate: Number(flags.rate ?? 1000), seconds: Number(flags.seconds ?? 1), pin: flags.pin, logLevel: flags['log-level'], configFile: flags.config }),
    burst: () =>
      burst({ dataDir: dataDir(), rounds: int('bursts'), load: Number(flags.load ?? 0), rate: Number(flags.rate ?? 0), pin: flags.pin, logLevel: flags['log-level'], configFile: flags.config }),
    alloc: () => alloc({ dataDir: dataDir(), path: flags.path!, requests: int('requests'), logLevel: flags['log-level'], configFile: flags.config, postgres: flags.postgres }),
    replans: async () => {
      const clean = await replans({ dataDir: dataDir(), users: int('users'), logLevel: flags['log-level'], configFile: flags.config });
      if (!clean) process.exitCode = 1;
    },
    overload: () =>
      overload({
        dataDir: dataDir(),
        duration: int('duration', 20),
        factor: int('factor'),
        // The shared --connections default (32) is for closed-loop runs; an open-loop overload needs more.
        connections: flags.connections === '32' ? 256 : int('connections'),
        logLevel: flags['log-level'],
        configFile: flags.config,
        overrides: flags['shed-delay-ms'] ? { pressure: { deferrable: { maxEventLoopDelayMs: int('shed-delay-ms') } } } : undefined,
        pin: flags.pin,
        cpuProfile: flags['cpu-prof'],
        repeat: int('repeat'),
        postgres: flags.postgres,
        rate: Number(flags.rate ?? 0),
      }),
  };
  const fn = commands[command];
  if (!fn) {
    console.error(`unknown benchmark: ${command}\n\n${USAGE}`);
    process.exitCode = 2;
  } else {
    try {
      await fn();
    } catch (err) {
      console.error(err instanceof Error ? err.message : err);
      process.exitCode = 1;
    }
  }
}
