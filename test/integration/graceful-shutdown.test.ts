/**
 * Graceful shutdown of `starling serve` (a real child process, SIGTERM):
 * readiness turns 503 "draining" at once while requests are still served,
 * WebSocket streams are closed with 1012 (service restart: reconnect now),
 * SSE streams end with a short `retry`, writes in flight when the signal
 * arrived are all answered and durable, and the process exits 0.
 */
import { afterAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { startChildServer, createUser, eventually, tempDir, type ChildServer } from '../helpers/server.js';

describe('graceful shutdown', () => {
  const dir = tempDir();
  let child: ChildServer | null = null;
  afterAll(async () => {
    await child?.kill('SIGKILL');
    dir.remove();
  });

  it('drains on SIGTERM: unready, streams told to reconnect, in-flight writes finished, exit 0', async () => {
    child = await startChildServer(dir.path, { STARLING_SHUTDOWN_DRAIN_DELAY: '1', STARLING_OPS_ENABLED: '0' });
    const user = await createUser(child.url, 'drainer');
    const ws = new WebSocket(`${child.url.replace(/^http/, 'ws')}/api/v1/streaming?stream=public`, user.token);
    const wsClosed = new Promise<{ code: number; reason: string }>((res) => ws.once('close', (code, reason) => res({ code, reason: String(reason) })));
    await new Promise<void>((res, rej) => {
      ws.once('open', () => res());
      ws.once('error', rej);
    });
    const sse = await fetch(`${child.url}/api/v1/streaming/public`, { headers: { authorization: `Bearer ${user.token}` } });
    expect(sse.status).toBe(200);
    const sseText = sse.text();
    expect((await fetch(`${child.url}/readyz`)).status).toBe(200);

    // Writes in flight when the signal arrives.
    const posts = Array.from({ length: 20 }, (_, i) =>
      fetch(`${child!.url}/api/v1/statuses`, {
        method: 'POST',
        headers: { authorization: `Bearer ${user.token}`, 'content-type': 'application/json', 'idempotency-key': `drain-${i}` },
        body: JSON.stringify({ status: `in flight ${i}` }),
      }),
    );
    const exited = new Promise<number | null>((res) => child!.proc.once('exit', (code) => res(code)));
    process.kill(child.pid, 'SIGTERM');

    // Draining: not ready (so a load balancer moves away), yet still serving.
    const ready = await eventually(async () => {
      const r = await fetch(`${child!.url}/readyz`);
      return r.status === 503 ? r : null;
    });
    expect(await ready.json()).toMatchObject({ status: 'draining' });
    expect((await fetch(`${child.url}/healthz`)).status).toBe(200);

    const answers = await Promise.all(posts);
    expect(answers.map((r) => r.status)).toEqual(Array(20).fill(200));
    const ids = await Promise.all(answers.map(async (r) => ((await r.json()) as { id: string }).id));

    expect(await wsClosed).toEqual({ code: 1012, reason: 'service restart' });
    expect(await sseText).toContain('retry: 250');
    expect(await exited).toBe(0);
    child = null;

    // Every acknowledged post is there after a restart on the same data.
    const again = await startChildServer(dir.path, { STARLING_OPS_ENABLED: '0' });
    child = again;
    for (const id of ids) {
      const r = await fetch(`${again.url}/api/v1/statuses/${id}`, { headers: { authorization: `Bearer ${user.token}` } });
      expect(r.status).toBe(200);
    }
  });
});
