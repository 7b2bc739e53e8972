/**
 * Two builds of Starling side by side: `--a` and `--b` are checkouts (worktrees), each started as a node
 * (`starling serve`, its own process) on a copy of the dataset, or both on one PostgreSQL clone of it
 * (`--postgres`). Requests go one at a time, to A then B with the same viewer, `--requests` times: each pair
 * meets the same machine at the same moment, so the ratio of B to A holds where the machine's noise
 * (docs/RELIABILITY.md, "The machine stops now and then") swamps the difference between two separate runs.
 * What it measures is a request alone (round trips, statements, rendering), not behaviour under load.
 *
 * Two nodes are not alike even with one tree on both sides: with /work/main as A and as B on PostgreSQL, B ÷ A
 * at p50 was 1.105, 1.001, 0.901 and 1.002 in four rounds of 1,000 pairs, each round with both nodes started
 * afresh, and 0.997 over all four (2026-12-06). Whatever sets it (which processes end up sharing a core, where
 * the heap lands) is settled at start. So each of `--rounds` starts both nodes afresh, the other one first each
 * time, and the ratio is given per round and over all of them: trust a difference only well outside that spread.
 *
 *   npx tsx bench/ab.ts --a /work/main --b /tmp/wt-x --data-dir /tmp/starling-small [--postgres]
 *       [--path /api/v1/timelines/home?limit=20] [--requests 1000] [--rounds 4] [--viewers 200]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import SQLite from 'better-sqlite3';
import { postgresFromDataset, type BenchPostgres } from './postgres-dataset.js';
import { percentiles, tokenFor } from './lib.js';

const { values: flags } = parseArgs({
  options: {
    a: { type: 'string' },
    b: { type: 'string' },
    'data-dir': { type: 'string' },
    postgres: { type: 'boolean', default: false },
    path: { type: 'string', default: '/api/v1/timelines/home?limit=20' },
    requests: { type: 'string', default: '1000' },
    rounds: { type: 'string', default: '4' },
    viewers: { type: 'string', default: '200' },
    warmup: { type: 'string', default: '200' },
  },
});
if (!flags.a || !flags.b || !flags['data-dir']) {
  console.error('usage: npx tsx bench/ab.ts --a TREE --b TREE --data-dir DIR [--postgres] [--path P] [--requests N] [--rounds N] [--viewers N] [--warmup N]');
  process.exit(2);
}
const dataDir = flags['data-dir'];
const requests = Number(flags.requests);
const warmup = Number(flags.warmup);

interface Node {
  name: string;
  url: string;
  child: ChildProcess;
  dir: string;
}

async function startNode(name: string, tree: string, port: number, databaseUrl: string | null): Promise<Node> {
  // Each node its own copy of the data directory: two processes must not share one SQLite file's writer.
  const dir = mkdtempSync(join(tmpdir(), `starling-ab-${name}-`));
  cpSync(dataDir, dir, { recursive: true });
  const env = {
    ...process.env,
    STARLING_LOG_LEVEL: 'warn',
    STARLING_OPS_ENABLED: 'false',
    STARLING_BACKUP_INTERVAL: '0',
    ...(databaseUrl ? { STARLING_DATABASE_URL: databaseUrl } : {}),
  };
  const main = `import('./src/cli/main.ts').then((m) => m.main(['serve', '--data-dir', ${JSON.stringify(dir)}, '--port', '${port}', '--host', '127.0.0.1']))`;
  const child = spawn(process.execPath, ['--import', 'tsx', '-e', main], { cwd: tree, env, stdio: ['ignore', 'inherit', 'inherit'] });
  const url = `http://127.0.0.1:${port}`;
  const until = performance.now() + 120_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`node ${name} (${tree}) exited with ${child.exitCode}`);
    try {
      if ((await fetch(`${url}/readyz`)).status === 200) break;
    } catch {
      // Not listening yet.
    }
    if (performance.now() > until) throw new Error(`node ${name} not ready after 120 s`);
    await new Promise((r) => setTimeout(r, 200));
  }
  return { name, url, child, dir };
}

async function stopNode(node: Node): Promise<void> {
  if (node.child.exitCode === null) {
    const exited = new Promise((r) => node.child.once('exit', r));
    node.child.kill('SIGTERM');
    await Promise.race([exited, new Promise((r) => setTimeout(r, 15_000))]);
    if (node.child.exitCode === null) node.child.kill('SIGKILL');
  }
  rmSync(node.dir, { recursive: true, force: true });
}

/** The request's time, or null when the node shed it (503: a deferrable path on a node it finds busy). */
async function timed(url: string, token: string): Promise<number | null> {
  const t = performance.now();
  const r = await fetch(url, { headers: { authorization: `Bearer ${token}` } });
  const body = await r.text();
  const ms = performance.now() - t;
  if (r.status === 503) return null;
  if (r.status !== 200) throw new Error(`${url}: ${r.status} ${body.slice(0, 300)}`);
  return ms;
}

function viewers(n: number): string[] {
  const db = new SQLite(join(dataDir, 'starling.sqlite'), { readonly: true });
  try {
    // Accounts that follow someone: their home timelines have statuses.
    // Ids as BigInts: 19 digits do not fit a double.
    const rows = db.prepare('SELECT id FROM accounts WHERE following_count > 0 ORDER BY random() LIMIT ?').safeIntegers(true).all(n) as { id: bigint }[];
    return rows.map((r) => tokenFor(String(r.id)));
  } finally {
    db.close();
  }
}

/** One round: both nodes started (`first` first), `requests` pairs after the warm-up; the nodes stopped after. */
async function round(first: 'a' | 'b', databaseUrl: string | null, tokens: string[], port: number) {
  const nodes: Node[] = [];
  try {
    const trees = { a: flags.a!, b: flags.b! };
    const second = first === 'a' ? 'b' : 'a';
    nodes.push(await startNode(first, trees[first], port, databaseUrl));
    nodes.push(await startNode(second, trees[second], port + 1, databaseUrl));
    const byName = Object.fromEntries(nodes.map((n) => [n.name, n]));
    const samples = { a: [] as number[], b: [] as number[], shed: { a: 0, b: 0 } };
    for (let i = 0; i < warmup + requests; i++) {
      const token = tokens[i % tokens.length];
      // Alternating which is asked first, so neither always meets the other's leftovers.
      const order = i % 2 === 0 ? [byName.a, byName.b] : [byName.b, byName.a];
      const ms: Record<string, number | null> = {};
      for (const node of order) ms[node.name] = await timed(`${node.url}${flags.path}`, token);
      if (i < warmup) continue;
      // A pair with a shed request is left out of the comparison, and counted: a 503 takes no time worth comparing.
      if (ms.a === null || ms.b === null) {
        if (ms.a === null) samples.shed.a++;
        if (ms.b === null) samples.shed.b++;
        continue;
      }
      samples.a.push(ms.a);
      samples.b.push(ms.b);
    }
    return samples;
  } finally {
    for (const node of nodes) await stopNode(node);
  }
}

const fmt = (x: number) => `${x.toFixed(2)} ms`;
function report(label: string, a: number[], b: number[]): void {
  const pa = percentiles(a);
  const pb = percentiles(b);
  const wins = a.filter((x, i) => b[i] < x).length;
  console.log(
    `${label}: A p50 ${fmt(pa.p50)} p90 ${fmt(pa.p90)} p99 ${fmt(pa.p99)} | B p50 ${fmt(pb.p50)} p90 ${fmt(pb.p90)} p99 ${fmt(pb.p99)} | ` +
      `B ÷ A p50 ${(pb.p50 / pa.p50).toFixed(3)} p90 ${(pb.p90 / pa.p90).toFixed(3)}; B faster in ${wins} of ${a.length} pairs`,
  );
}

let pg: BenchPostgres | null = null;
try {
  let databaseUrl: string | null = null;
  if (flags.postgres) {
    pg = await postgresFromDataset(dataDir, null);
    databaseUrl = await pg.fresh();
  }
  const tokens = viewers(Number(flags.viewers));
  const port = 39_000 + Math.floor(Math.random() * 1000);
  console.log(`${flags.path} on ${flags.postgres ? 'PostgreSQL' : 'SQLite'}, one request at a time, A and B alternating, ${requests} pairs a round after ${warmup} to warm up`);
  console.log(`A ${flags.a}\nB ${flags.b}`);
  const all = { a: [] as number[], b: [] as number[] };
  const rounds = Number(flags.rounds);
  for (let r = 0; r < rounds; r++) {
    const first = r % 2 === 0 ? 'a' : 'b';
    const samples = await round(first, databaseUrl, tokens, port + 2 * r);
    report(`round ${r + 1} (${first.toUpperCase()} started first)`, samples.a, samples.b);
    if (samples.shed.a + samples.shed.b > 0) console.log(`  pairs left out, a node having shed its request (503): A ${samples.shed.a}, B ${samples.shed.b}`);
    all.a.push(...samples.a);
    all.b.push(...samples.b);
  }
  report('all rounds', all.a, all.b);
} finally {
  await pg?.stop();
}
