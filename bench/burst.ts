/**
 * An app opening, on an idle node: `--rounds` times, one seeded user's dozen requests at once (home, notifications,
 * verify_credentials, instance, emojis, filters, lists, markers, follow requests, announcements, a longer home
 * page, conversations), 300 ms apart, with load shedding on as configured. Prints how they were answered and the
 * node's shed counters by reason: on an idle node none should be refused (http/request-queue.ts, "calm").
 *
 * The client is fetch in this process, so the node's loop also reads the answers: a little more work per burst
 * than a separate client would cause, never less.
 */
import { log, randomViewers, startNode } from './lib.js';

export interface BurstOptions {
  dataDir: string;
  rounds: number;
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

export async function burst(o: BurstOptions): Promise<void> {
  const node = await startNode(o.dataDir, { logLevel: o.logLevel, configFile: o.configFile });
  try {
    const [auth] = await randomViewers(node, 1);
    if (!auth) throw new Error('the dataset has no account that follows anyone: seed it first');
    const statuses = new Map<number, number>();
    for (let round = 0; round < o.rounds; round++) {
      const answered = await Promise.all(
        PATHS.map(async (p) => {
          const r = await fetch(node.url + p, { headers: { authorization: auth } });
          await r.arrayBuffer();
          return r.status;
        }),
      );
      for (const s of answered) statuses.set(s, (statuses.get(s) ?? 0) + 1);
      await new Promise((r) => setTimeout(r, 300));
    }
    log(`dataset: ${o.dataDir}; ${o.rounds} bursts of ${PATHS.length} requests by one user, 300 ms apart`);
    console.log(`answers: ${[...statuses].sort().map(([s, n]) => `${n} × ${s}`).join(', ')}`);
    const metrics = await (await fetch(`${node.url}/metrics`)).text();
    const shed = metrics.split('\n').filter((l) => l.startsWith('starling_requests_shed_total{'));
    console.log(shed.length ? `shed:\n  ${shed.join('\n  ')}` : 'shed: none');
  } finally {
    await node.close();
  }
}
