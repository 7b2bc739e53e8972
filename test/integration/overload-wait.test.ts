/**
 * Requests read together in one turn of the event loop are handled one after
 * another; the last ones wait for all before them. Load shedding refuses a
 * request once its turn is older than its class's bound (http/admission.ts
 * TurnAge), so no admitted request waits behind a crowd.
 *
 * A real `starling serve` process is stopped (SIGSTOP) while a hundred
 * requests arrive on a hundred open connections, then resumed: the node reads
 * them all in one turn, as it does under a flood. The first ones are served,
 * the ones behind are refused with 503 + Retry-After, counted as shed for
 * waiting, and a request that arrives alone afterwards is served.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Agent, request } from 'node:http';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createUser, startChildServer, tempDir, type ChildServer, type TestUser } from '../helpers/server.js';
import { ERRORS } from '../../src/domain/errors.js';

const CONNECTIONS = 100;

describe('a crowd read in one turn of the event loop', () => {
  const dir = tempDir('starling-wait-');
  let server: ChildServer;
  let user: TestUser;
  const agent = new Agent({ keepAlive: true, maxSockets: CONNECTIONS });

  beforeAll(async () => {
    // Only the wait bound sheds here: deferrable admission and the hard limits are set out of reach.
    const config = join(dir.path, 'starling.json');
    writeFileSync(
      config,
      JSON.stringify({
        pressure: {
          essential: { maxWaitMs: 3, maxEventLoopDelayMs: 0 },
          deferrable: { maxWaitMs: 1, targetUtilisation: 1, targetDelayMs: Number.MAX_VALUE, maxEventLoopDelayMs: 0 },
        },
      }),
    );
    server = await startChildServer(join(dir.path, 'data'), { STARLING_PRESSURE_ENABLED: '1', STARLING_CONFIG: config, STARLING_OPS_ENABLED: '0' });
    user = await createUser(server.url, 'crowd');
  });
  afterAll(async () => {
    agent.destroy();
    if (server) {
      process.kill(server.pid, 'SIGCONT');
      await server.kill('SIGTERM');
    }
    dir.remove();
  });

  function home(): Promise<{ status: number; retryAfter?: string; body: string }> {
    return new Promise((resolve, reject) => {
      const req = request(`${server.url}/api/v1/timelines/home`, { agent, headers: { authorization: `Bearer ${user.token}` } }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode!, retryAfter: res.headers['retry-after'], body }));
      });
      req.on('error', reject);
      req.end();
    });
  }

  const shedForWaiting = async () => {
    const text = await (await fetch(`${server.url}/metrics`)).text();
    const line = text.split('\n').find((l) => l.startsWith('starling_requests_shed_total{') && l.includes('priority="essential"') && l.includes('reason="queue"'));
    return line ? Number(line.split(' ').at(-1)) : 0;
  };

  it('serves the first requests of the turn and refuses the ones waiting behind them', async () => {
    // A hundred open connections (requests sent at once, so each gets its own; some may be refused already).
    const warm = await Promise.all(Array.from({ length: CONNECTIONS }, () => home()));
    expect(warm.every((r) => r.status === 200 || r.status === 503)).toBe(true);
    expect(Object.values(agent.freeSockets).flat()).toHaveLength(CONNECTIONS);
    const before = await shedForWaiting();

    process.kill(server.pid, 'SIGSTOP');
    let crowd: Array<{ status: number; retryAfter?: string; body: string }>;
    try {
      const pending = Array.from({ length: CONNECTIONS }, () => home());
      // Every request handed to the kernel before the node wakes up: it reads them all in its first turn.
      await new Promise((r) => setTimeout(r, 500));
      process.kill(server.pid, 'SIGCONT');
      crowd = await Promise.all(pending);
    } finally {
      process.kill(server.pid, 'SIGCONT');
    }

    // Still the same connections: the node read the crowd from open sockets, not from its accept queue.
    expect(Object.values(agent.freeSockets).flat()).toHaveLength(CONNECTIONS);
    const served = crowd.filter((r) => r.status === 200);
    const refused = crowd.filter((r) => r.status === 503);
    expect(served.length + refused.length).toBe(CONNECTIONS);
    expect(served.length).toBeGreaterThan(0);
    expect(refused.length).toBeGreaterThan(0);
    for (const r of refused) {
      expect(r.retryAfter).toBeTruthy();
      expect(JSON.parse(r.body)).toEqual({ error: ERRORS.overloaded.message });
    }
    expect((await shedForWaiting()) - before).toBe(refused.length);

    // Alone again: served.
    expect((await home()).status).toBe(200);
  });
});
