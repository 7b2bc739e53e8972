/**
 * Graceful start: a node runs its hot reads once before it listens, so neither
 * /readyz nor a first user reaches a cold node.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { createUser, startChildServer, startTestServer, tempDir, type TestServer } from '../helpers/server.js';
import { warmUp } from '../../src/services/warmup.js';

describe('warm-up', () => {
  const servers: TestServer[] = [];
  afterAll(async () => {
    for (const s of servers) await s.stop();
  });

  it('runs the hot read paths within its budget, and skips what the budget leaves no time for', async () => {
    const server = await startTestServer({ ops: { enabled: false } });
    servers.push(server);
    const alice = await createUser(server.url, 'alice');
    await alice.client.v1.statuses.create({ status: 'something to read back' });

    const report = await warmUp(server.ctx);
    expect(report.done).toEqual(['public timeline', 'home timeline', 'search']);
    expect(report.skipped).toEqual([]);

    const none = await warmUp(server.ctx, -1);
    expect(none.done).toEqual([]);
    expect(none.skipped).toEqual(['public timeline', 'home timeline', 'search']);
  });

  it('happens before the node listens', async () => {
    const dir = tempDir('starling-warm-');
    const child = await startChildServer(dir.path);
    try {
      const lines = child.startupLog.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { msg: string; done?: string[] });
      const warmed = lines.findIndex((l) => l.msg === 'warmed up');
      const listening = lines.findIndex((l) => l.msg.startsWith('Starling listening on'));
      expect(warmed).toBeGreaterThanOrEqual(0);
      expect(warmed).toBeLessThan(listening);
      expect(lines[warmed].done).toContain('public timeline');
    } finally {
      await child.kill();
      dir.remove();
    }
  });
});
