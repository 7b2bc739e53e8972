/**
 * Capacity harness: one node holds 10,000 idle streaming connections without
 * errors, and a post still reaches every one of them. Not a timed assertion:
 * it reports the server's memory per connection (docs/PERFORMANCE.md).
 * The server runs as a child process so its memory is its own.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import WebSocket from 'ws';
import { startChildServer, createUser, tempDir, type ChildServer } from '../helpers/server.js';

const CONNECTIONS = Number(process.env.STARLING_CAPACITY_CONNECTIONS ?? 10_000);
const BATCH = 250;
const dir = tempDir();
let server: ChildServer | null = null;
const sockets: WebSocket[] = [];

afterAll(async () => {
  for (const s of sockets) s.terminate();
  await server?.kill('SIGKILL');
  dir.remove();
});

function rssKiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : NaN;
}

describe('streaming capacity', () => {
  it(`holds ${CONNECTIONS} idle connections and delivers a post to all of them`, async () => {
    server = await startChildServer(dir.path);
    const author = await createUser(server.url, 'author');
    const wsUrl = `${server.url.replace(/^http/, 'ws')}/api/v1/streaming?stream=public:local`;
    await new Promise((r) => setTimeout(r, 500));
    const rssBefore = rssKiB(server.pid);

    const received = new Set<number>();
    const errors: string[] = [];
    for (let i = 0; i < CONNECTIONS; i += BATCH) {
      await Promise.all(
        Array.from({ length: Math.min(BATCH, CONNECTIONS - i) }, (_, j) => {
          const n = i + j;
          const ws = new WebSocket(wsUrl);
          sockets.push(ws);
          ws.on('error', (e) => errors.push(String(e)));
          ws.on('message', () => received.add(n));
          return new Promise<void>((resolve) => {
            ws.once('open', () => resolve());
            ws.once('error', () => resolve());
          });
        }),
      );
    }
    expect(errors).toEqual([]);
    expect(sockets.filter((s) => s.readyState === WebSocket.OPEN)).toHaveLength(CONNECTIONS);
    // Let the subscriptions settle, then measure.
    await new Promise((r) => setTimeout(r, 1000));
    const rssAfter = rssKiB(server.pid);
    const perConnection = ((rssAfter - rssBefore) * 1024) / CONNECTIONS;
    console.log(`streaming capacity: ${CONNECTIONS} connections, server RSS ${Math.round(rssBefore / 1024)} MiB → ${Math.round(rssAfter / 1024)} MiB, ~${Math.round(perConnection / 1024)} KiB per connection`);

    await author.client.v1.statuses.create({ status: 'to ten thousand listeners' });
    const deadline = Date.now() + 60_000;
    while (received.size < CONNECTIONS && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect(received.size).toBe(CONNECTIONS);
    expect(errors).toEqual([]);
  }, 180_000);
});
