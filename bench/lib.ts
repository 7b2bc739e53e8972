/**
 * Shared pieces of the benchmarks: starting a Starling node in this process
 * (so a benchmark can add its own routes beside the real ones), running a
 * load generator in a child process (so it does not share the node's event
 * loop), and formatting results.
 */
import { execFileSync, spawn } from 'node:child_process';
import { resolve } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { sql } from 'kysely';
import { loadConfig, type Config } from '../src/config.js';
import { createLogger, openContext } from '../src/server.js';
import type { OpenedDatabase } from '../src/store/db.js';
import { buildApp } from '../src/http/app.js';
import type { AppContext } from '../src/services/context.js';

export const ROOT = resolve(import.meta.dirname, '..');

export interface BenchNode {
  app: FastifyInstance;
  ctx: AppContext;
  config: Config;
  url: string;
  /** The node's database (its checkpoint thread's stats, among others). */
  database: OpenedDatabase;
  /** Waits until the node has answered every request it received (a series must not inherit the last one's queue). */
  idle(timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

/**
 * A Starling node on 127.0.0.1 and an ephemeral port, built like startServer
 * does (openContext + buildApp) but with a hook to add routes before it listens.
 * Rate limiting is off (the benchmark is one client hammering the node).
 */
export async function startNode(
  dataDir: string,
  opts: {
    logLevel?: string;
    configFile?: string;
    addRoutes?: (app: FastifyInstance, ctx: AppContext) => void;
    /** An experiment knob, not Starling's configuration: SQLite's page cache for this node's connection, in MiB. */
    sqliteCacheMb?: number;
    /** Configuration overrides (e.g. overload thresholds), on top of the file. */
    overrides?: Record<string, unknown>;
  } = {},
): Promise<BenchNode> {
  const config = loadConfig({
    file: opts.configFile,
    overrides: { dataDir, host: '127.0.0.1', port: 0, logLevel: opts.logLevel ?? 'warn', rateLimit: { max: 0, windowSeconds: 60 }, ...opts.overrides },
  });
  const { ctx, database, worker } = await openContext(config, createLogger(config));
  if (opts.sqliteCacheMb) database.sqlite.pragma(`cache_size = -${Math.round(opts.sqliteCacheMb * 1024)}`);
  const app = await buildApp(ctx);
  opts.addRoutes?.(app, ctx);
  await app.listen({ host: '127.0.0.1', port: 0 });
  const port = (app.server.address() as { port: number }).port;
  const base = `http://127.0.0.1:${port}`;
  Object.assign(ctx.urls, { base, domain: new URL(base).host });
  return {
    app,
    ctx,
    config,
    url: base,
    database,
    async idle(timeoutMs = 300_000) {
      // Requests whose clients went away are still being answered (a blocked event loop does not
      // notice the disconnects); a probe that answers quickly three times in a row means the queue is empty.
      const until = performance.now() + timeoutMs;
      let quick = 0;
      while (quick < 3) {
        if (performance.now() > until) throw new Error(`the node is still busy ${timeoutMs / 1000} s after the load stopped`);
        const t = performance.now();
        const r = await fetch(`${base}/health`);
        await r.arrayBuffer();
        quick = performance.now() - t < 20 ? quick + 1 : 0;
        await new Promise((res) => setTimeout(res, 100));
      }
    },
    async close() {
      await app.close();
      await worker.stop();
      await ctx.bus.close();
      await database.close();
    },
  };
}

/** The access token the seeder made for an account. */
export const tokenFor = (accountId: string) => `bench-token-${accountId}`;

/** The Authorization headers of up to `n` random seeded accounts that follow someone (their home timelines have statuses). */
export async function randomViewers(node: BenchNode, n: number): Promise<string[]> {
  const { rows } = await sql<{ id: string }>`SELECT id FROM accounts WHERE following_count > 0 ORDER BY random() LIMIT ${sql.lit(n)}`.execute(node.ctx.db);
  return rows.map((r) => `Bearer ${tokenFor(String(r.id))}`);
}

// ---------------------------------------------------------------------------
// The load generator runs in a child process (bench/load.ts); these are its input and output.

export type LoadRequests =
  | { kind: 'get'; path: string; /** Authorization header values, used in turn (none: no header). */ auth: string[] }
  | { kind: 'post-status'; tokens: string[]; keyPrefix: string };

export interface LoadSpec {
  url: string;
  connections: number;
  /** Seconds. */
  duration: number;
  /** Hard cap on requests (the loop is bounded in count as well as time). */
  maxRequests: number;
  /** Start at this wall-clock time (ms since the epoch) rather than at once: generators run together start together. */
  startAt?: number;
  /** Open loop: this many requests per second in all (autocannon overallRate); without it, closed loop. */
  overallRate?: number;
  /**
   * Closed loop through an undici pool (not autocannon): a connection whose request was refused (503) waits this
   * long (ms) before its next one, as a client backing off would. Without it, a refused connection asks again at
   * once, the node spends its time refusing, and what it served measures its refusals, not what it can serve.
   */
  backoffMs?: number;
  /** Seconds before a request counts as timed out (default 10). */
  timeout?: number;
  /**
   * Open loop: send each request with an `x-bench-seq` header and report, of each answered one, when it was due,
   * sent and answered (ms of the system's monotonic clock, which the node under test reads too), so the bench can
   * split its latency into the generator's part, the wait before the node read it and the node's own time.
   */
  trace?: boolean;
  requests: LoadRequests;
}

export interface Latency {
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
  mean: number;
}

export interface LoadResult {
  requests: number;
  ok: number;
  non2xx: number;
  errors: number;
  timeouts: number;
  seconds: number;
  rps: number;
  latency: Latency;
  /** The same, of requests sent after the load's first second. */
  afterFirstSecond?: Latency;
  /** The same, of the requests due in the first second: how the node takes an overload that begins at once. */
  firstSecond?: Latency;
  /** Open loop: how late the generator sent its requests (ms after they were due), a part of every latency above. */
  lateness?: Latency;
  /** The generator process's own event-loop delay and garbage collection while it ran (shared by its loads). */
  generator?: { loopDelayP99Ms: number; loopDelayMaxMs: number; gcMs: number; gcLongestMs: number };
  statusCodes: Record<string, number>;
  /** post-status: ids of the statuses acknowledged with a 2xx. */
  ids?: string[];
  /** `trace`: of each 2xx answer, [x-bench-seq, due, sent, answered] (monotonicMs). */
  trace?: [number, number, number, number][];
}

/** The system's monotonic clock in ms (CLOCK_MONOTONIC: the same in every process on the machine). */
export const monotonicMs = (): number => Number(process.hrtime.bigint()) / 1e6;

/** Runs bench/load.ts in a child process and returns its result. */
export function runLoad(spec: LoadSpec): Promise<LoadResult> {
  return runChild<LoadResult>('load.ts', spec, (spec.duration + 60) * 1000);
}

/**
 * Runs several open loops in one bench/load.ts child: one event loop sends them all, so their timers are not late
 * by the time the OS gives the other generators' processes on a shared CPU (four processes on one CPU sent the
 * overload's requests 8 ms late at p99).
 */
export function runLoads(specs: LoadSpec[]): Promise<LoadResult[]> {
  return runChild<LoadResult[]>('load.ts', specs, (Math.max(...specs.map((s) => s.duration)) + 60) * 1000);
}

let loadCpus: string | null = null;

/**
 * Pins this process (the node under test, all its threads) to `nodeCpus` and every load generator started
 * afterwards to `childCpus` (taskset), so the load generators cannot take the node's CPU: on a 2-core machine they
 * otherwise compete for it, and the node's latency measures the competition, not the node. The node's own threads
 * (V8's garbage-collection helpers, libuv's pool, the WAL checkpoint thread) share its CPU: pessimistic for the
 * node (its checkpoint thread preempts its event loop), but pinning the event loop alone left them to the load
 * generator's CPU, and the generator then sent its requests late (6 ms at p99) — the bench measured itself.
 */
export function pinCpus(nodeCpus: string, childCpus: string): void {
  execFileSync('taskset', ['-a', '-cp', nodeCpus, String(process.pid)], { stdio: 'ignore' });
  loadCpus = childCpus;
}

/** `--pin NODE_CPUS:LOAD_CPUS` (e.g. "0:1"): pins as pinCpus does and returns the two. */
export function pinFromFlag(pin: string): [nodeCpus: string, loadCpus: string] {
  const [nodeCpus, loadCpus] = pin.split(':');
  if (!nodeCpus || !loadCpus) throw new Error('--pin wants NODE_CPUS:LOAD_CPUS, e.g. 0:1');
  pinCpus(nodeCpus, loadCpus);
  return [nodeCpus, loadCpus];
}

/** The node's refusals (starling_requests_shed_total) by class and reason ("essential queue" → count). */
export async function shedCounts(node: BenchNode): Promise<Map<string, number>> {
  const { values } = await node.ctx.metrics.shed.get();
  return new Map(values.map((v) => [`${v.labels.priority} ${v.labels.reason}`, v.value]));
}

/** What was refused between two shedCounts, most first. */
export function describeShed(before: Map<string, number>, after: Map<string, number>): string {
  const diff = [...after].map(([k, v]) => [k, v - (before.get(k) ?? 0)] as const).filter(([, v]) => v > 0);
  return diff.length ? diff.sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${num(v)}`).join(', ') : 'none';
}

/**
 * Runs a bench helper script (TypeScript, through tsx) with a JSON input on stdin and a JSON result on stdout, on
 * `cpus` (taskset; by default the load generators' CPUs once pinCpus has run).
 */
export function runChild<T>(script: string, input: unknown, timeoutMs: number, cpus: string | null = loadCpus): Promise<T> {
  return new Promise((resolvePromise, reject) => {
    const args = ['--import', 'tsx', resolve(ROOT, 'bench', script)];
    const child = spawn(cpus ? 'taskset' : process.execPath, cpus ? ['-c', cpus, process.execPath, ...args] : args, {
      cwd: ROOT,
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${script} did not finish within ${timeoutMs / 1000} s`));
    }, timeoutMs);
    // 'close', not 'exit': stdout may still hold the result line when the process has exited.
    child.on('close', (code) => {
      clearTimeout(timer);
      if (code !== 0) return reject(new Error(`${script} exited with ${code}`));
      const line = out.trim().split('\n').pop() ?? '';
      try {
        resolvePromise(JSON.parse(line) as T);
      } catch {
        reject(new Error(`${script} printed no result: ${out.slice(-500)}`));
      }
    });
    child.stdin.end(JSON.stringify(input));
  });
}

// ---------------------------------------------------------------------------
// Numbers.

export function percentiles(samples: Float64Array | number[]): Latency {
  const a = Float64Array.from(samples).sort();
  const n = a.length;
  const at = (q: number) => (n === 0 ? 0 : a[Math.min(n - 1, Math.max(0, Math.ceil(q * n) - 1))]);
  let sum = 0;
  for (let i = 0; i < n; i++) sum += a[i];
  return { p50: at(0.5), p90: at(0.9), p99: at(0.99), p999: at(0.999), max: n ? a[n - 1] : 0, mean: n ? sum / n : 0 };
}

export const ms = (x: number) => `${x.toFixed(x < 10 ? 2 : 1)} ms`;
export const num = (x: number) => Math.round(x).toLocaleString('en-US');

export function table(rows: (string | number)[][]): string {
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => String(r[c]).length)));
  return rows.map((r) => r.map((v, c) => (c === 0 ? String(v).padEnd(widths[c]) : String(v).padStart(widths[c]))).join('  ')).join('\n');
}

export function log(line: string): void {
  process.stderr.write(`${line}\n`);
}
