/**
 * An app opening: `--rounds` times, one seeded user's dozen requests at once (home, notifications,
 * verify_credentials, instance, emojis, filters, lists, markers, follow requests, announcements, a longer home
 * page, conversations), 300 ms apart, with load shedding on as configured. Prints how they were answered, how long
 * a whole burst took, and the node's shed counters by reason.
 *
 * On an idle node none should be refused (http/request-queue.ts, "calm"). With `--load F` the node is busy but not
 * overloaded: the overload bench's mix runs beside the bursts as an open loop at F × what the node can serve
 * (measured first, as the overload bench does), so a change to the queue's bounds can be judged where a node
 * spends most of its life, between idle and overloaded. The mix's own p99s and refusals are printed too.
 *
 * The bursts' client is fetch in this process, so the node's loop also reads the answers: a little more work per
 * burst than a separate client would cause, never less.
 */
import { log, ms, num, percentiles, pinFromFlag, randomViewers, runLoads, startNode, type LoadResult } from './lib.js';
import { mix, mixSpec } from './overload.js';

export interface BurstOptions {
  dataDir: string;
  rounds: number;
  /** Background load as a fraction of what the node can serve (0: an idle node). */
  load?: number;
  /** …or as so many requests a second (the capacity is not measured): runs compared at one rate. */
  rate?: number;
  /** "NODE_CPUS:LOAD_CPUS" for taskset, e.g. "0:1". */
  pin?: string;
  logLevel?: string;
  configFile?: string;
}

const PATHS = [
  '/api/v1/timelines/home',
  '/api/v1/notifications',
  '/api/v1/accounts/verify_credentials',
  '/api/v2/instance',
  '/api/v1/custom_emojis',
  '/api/v1/filters',
  '/api/v1/lists',
  '/api/v1/markers?timeline[]=home',
  '/api/v1/follow_requests',
  '/api/v1/announcements',
  '/api/v1/timelines/home?limit=40',
  '/api/v1/conversations',
];

/** Seconds of background load before the first burst (the generator's start and the queue's averages settle). */
const SETTLE_S = 3;

export async function burst(o: BurstOptions): Promise<void> {
  const node = await startNode(o.dataDir, { logLevel: o.logLevel, configFile: o.configFile });
  try {
    if (o.pin) pinFromFlag(o.pin);
    const [auth] = await randomViewers(node, 1);
    if (!auth) throw new Error('the dataset has no account that follows anyone: seed it first');
    const load = o.rate ? 1 : (o.load ?? 0);
    let background: Promise<LoadResult[]> | null = null;
    const kinds = load > 0 ? await mix(node) : [];
    const spec = (k: (typeof kinds)[number], duration: number, connections: number, overallRate?: number) =>
      mixSpec(node.url, k, duration, connections, overallRate);
    if (load > 0) {
      let rate = o.rate ?? 0;
      if (!rate) {
        // What the node can serve: the overload bench's capacity run (closed loop, refused connections back off).
        const cap = await runLoads(kinds.map((k) => ({ ...spec(k, 10, Math.max(1, Math.round(64 * k.share))), backoffMs: 100 })));
        const capacity = cap.reduce((a, r) => a + r.ok / r.seconds, 0);
        await node.idle();
        rate = capacity * load;
        log(`capacity ${num(capacity)} req/s`);
      }
      const seconds = Math.ceil(SETTLE_S + o.rounds * 0.5 + 5);
      log(`background: the mix at ${num(rate)} req/s for ${seconds} s`);
      background = runLoads(kinds.map((k) => spec(k, seconds, Math.max(2, Math.round(128 * k.share)), Math.max(1, Math.round(rate * k.share)))));
      await new Promise((r) => setTimeout(r, SETTLE_S * 1000 + 2000));
    }
    const shedBefore = await shedCounts(node.url);
    const statuses = new Map<number, number>();
    const took: number[] = [];
    // Which of a burst's requests were refused: the last ones of a burst, or any.
    const refusedAt = new Map<string, number>();
    for (let round = 0; round < o.rounds; round++) {
      const t = performance.now();
      const answered = await Promise.all(
        PATHS.map(async (p) => {
          const r = await fetch(node.url + p, { headers: { authorization: auth } });
          await r.arrayBuffer();
          if (r.status === 503) refusedAt.set(p, (refusedAt.get(p) ?? 0) + 1);
          return r.status;
        }),
      );
      took.push(performance.now() - t);
      for (const s of answered) statuses.set(s, (statuses.get(s) ?? 0) + 1);
      await new Promise((r) => setTimeout(r, 300));
    }
    const shedAfter = await shedCounts(node.url);
    const bg = await background;
    log(`dataset: ${o.dataDir}; ${o.rounds} bursts of ${PATHS.length} requests by one user, 300 ms apart${o.rate ? `, beside the mix at ${o.rate} req/s` : load > 0 ? `, beside the mix at ${load}× capacity` : ', idle node'}`);
    const t = percentiles(took);
    console.log(`answers: ${[...statuses].sort().map(([s, n]) => `${n} × ${s}`).join(', ')}`);
    if (refusedAt.size) console.log(`refused, by the request's place in the burst: ${PATHS.map((p, i) => `${i + 1}: ${refusedAt.get(p) ?? 0}`).join(', ')}`);
    console.log(`a whole burst took: p50 ${ms(t.p50)}, p99 ${ms(t.p99)}, max ${ms(t.max)}`);
    const shed = [...shedAfter].map(([k, v]) => [k, v - (shedBefore.get(k) ?? 0)] as const).filter(([, v]) => v > 0);
    console.log(shed.length ? `shed meanwhile (all clients):\n  ${shed.map(([k, v]) => `${k} ${v}`).join('\n  ')}` : 'shed meanwhile: none');
    if (bg) {
      console.log('the background mix:');
      bg.forEach((r, i) => {
        const refused = r.statusCodes['503'] ?? 0;
        console.log(`  ${kinds[i].name.padEnd(16)} ${num(r.ok)} answered 2xx (p99 ${ms(r.latency.p99)}), ${num(refused)} × 503, ${r.timeouts} timeouts, ${r.errors} errors`);
      });
    }
  } finally {
    await node.close();
  }
}

/** The node's shed counters (starling_requests_shed_total), by their labels. */
async function shedCounts(url: string): Promise<Map<string, number>> {
  const metrics = await (await fetch(`${url}/metrics`)).text();
  const m = new Map<string, number>();
  for (const line of metrics.split('\n')) {
    if (!line.startsWith('starling_requests_shed_total{')) continue;
    const [labels, value] = line.split(' ');
    m.set(labels.replace('starling_requests_shed_total', ''), Number(value));
  }
  return m;
}
