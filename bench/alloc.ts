/**
 * Where a request's allocations go. Garbage collection holds the event loop (scavenges of 3–9 ms, incremental
 * marking of 10–43 ms under the overload bench, docs/RELIABILITY.md), and what a request allocates sets how
 * often it runs; this shows what to allocate less of.
 *
 * It serves `--requests` GETs of `--path` as random seeded users in this process (`app.inject`, one after
 * another, after as many to warm up) under V8's sampling heap profiler (every object sampled with a probability
 * by size, including those the next scavenge frees), and prints the bytes allocated per request: by the function
 * that allocated them, and by Starling's own functions including what they called. The stacks are synchronous
 * ones: what runs after an `await` is counted from where it resumed, not under the function that awaited.
 * light-my-request's share (the in-process client) is not a real server's.
 */
import { Session } from 'node:inspector/promises';
import { log, randomViewers, startNode } from './lib.js';
import { postgresFromDataset } from './postgres-dataset.js';

export interface AllocOptions {
  dataDir: string;
  path: string;
  requests: number;
  logLevel?: string;
  configFile?: string;
  /** The node on a PostgreSQL copy of the dataset (bench/postgres-dataset.ts) instead of the SQLite file. */
  postgres?: boolean;
}

interface ProfileNode {
  callFrame: { functionName: string; url: string; lineNumber: number };
  selfSize: number;
  children: ProfileNode[];
}

export async function alloc(o: AllocOptions): Promise<void> {
  const pg = o.postgres ? await postgresFromDataset(o.dataDir, null) : null;
  try {
    await profileRequests(o, pg ? await pg.fresh() : undefined);
  } finally {
    await pg?.stop();
  }
}

async function profileRequests(o: AllocOptions, databaseUrl: string | undefined): Promise<void> {
  const node = await startNode(o.dataDir, { logLevel: o.logLevel, configFile: o.configFile, overrides: { pressure: { enabled: false }, ...(databaseUrl ? { databaseUrl } : {}) } });
  const session = new Session();
  try {
    const auth = await randomViewers(node, 200);
    if (auth.length === 0) throw new Error('the dataset has no account that follows anyone: seed it first');
    const serve = async (n: number) => {
      for (let i = 0; i < n; i++) {
        const res = await node.app.inject({ url: o.path, headers: { authorization: auth[i % auth.length] } });
        if (res.statusCode !== 200) throw new Error(`GET ${o.path} answered ${res.statusCode}: ${res.body.slice(0, 200)}`);
        // A turn of the event loop between requests, as a server's loop turns between reads. An injected request
        // is answered through promises alone, so back-to-back injects never reach the loop's check phase: the
        // immediates each response schedules (holding its socket and body) would pile up, ~47 KB a request,
        // and the heap would grow as no server's does.
        await new Promise((resolve) => setImmediate(resolve));
      }
    };
    await serve(o.requests);
    session.connect();
    await session.post('HeapProfiler.startSampling', { samplingInterval: 4096, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true });
    await serve(o.requests);
    const { profile } = await session.post('HeapProfiler.stopSampling');
    const head = profile.head as unknown as ProfileNode;

    const name = (n: ProfileNode) => {
      const f = n.callFrame;
      const where = f.url.replace(/^.*\/(node_modules\/(?:@[^/]+\/)?[^/]+|src)\//, '$1/').replace(/^file:\/\//, '');
      return `${f.functionName || '(anonymous)'} ${where || '(native)'}${f.url ? `:${f.lineNumber + 1}` : ''}`;
    };
    const self = new Map<string, number>();
    // Inclusive: a Starling function and everything it called (counted once per function, however deep the recursion).
    const inclusive = new Map<string, number>();
    const walk = (n: ProfileNode, open: Set<string>): number => {
      const key = name(n);
      self.set(key, (self.get(key) ?? 0) + n.selfSize);
      const own = /\/src\//.test(n.callFrame.url) && !open.has(key);
      if (own) open.add(key);
      let total = n.selfSize;
      for (const c of n.children) total += walk(c, open);
      if (own) {
        open.delete(key);
        inclusive.set(key, (inclusive.get(key) ?? 0) + total);
      }
      return total;
    };
    const total = walk(head, new Set());
    const kb = (b: number) => `${(b / o.requests / 1024).toFixed(1)} KB`;
    log(`dataset: ${o.dataDir}${databaseUrl ? ' (a PostgreSQL copy)' : ''}; GET ${o.path} × ${o.requests} as ${auth.length} users, after as many to warm up`);
    console.log(`allocated per request (sampled): ${kb(total)}\n\nby the function that allocated (top 25):`);
    for (const [k, v] of [...self].sort((a, b) => b[1] - a[1]).slice(0, 25)) console.log(`  ${kb(v).padStart(9)}  ${k}`);
    console.log(`\nby Starling's functions, with what they called (top 20):`);
    for (const [k, v] of [...inclusive].sort((a, b) => b[1] - a[1]).slice(0, 20)) console.log(`  ${kb(v).padStart(9)}  ${k}`);
  } finally {
    session.disconnect();
    await node.close();
  }
}
