/**
 * Graceful shutdown of `starling serve` (a real child process, SIGTERM):
 * readiness turns 503 "draining" at once while requests are still served,
 * WebSocket streams are closed with 1012 (service restart: reconnect now),
 * SSE streams end with a short `retry`, writes in flight when the signal
 * arrived are all answered and durable, and the process exits 0.
 */
import { afterAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { request } from 'node:http';
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

    // Writes in flight when the signal arrives, deterministically: the server has each request
    // (headers and half the body) before SIGTERM, and gets the rest only once it is draining.
    const bodies = Array.from({ length: 5 }, (_, i) => JSON.stringify({ status: `in flight ${i}` }));
    const inFlight = bodies.map((body, i) => slowPost(child!.url, user.token, `drain-${i}`, body));
    await Promise.all(inFlight.map((p) => p.sentHead));
    // Another request answered after those were sent: the server has read the first halves by now.
    expect((await fetch(`${child.url}/healthz`)).status).toBe(200);
    await new Promise((r) => setTimeout(r, 300));
    const exited = new Promise<number | null>((res) => child!.proc.once('exit', (code) => res(code)));
    process.kill(child.pid, 'SIGTERM');

    // Draining: not ready (so a load balancer moves away), yet still serving.
    const ready = await eventually(async () => {
      const r = await fetch(`${child!.url}/readyz`);
      return r.status === 503 ? r : null;
    });
    expect(await ready.json()).toMatchObject({ status: 'draining' });
    expect((await fetch(`${child.url}/healthz`)).status).toBe(200);

    for (const p of inFlight) p.finish();
    const answers = await Promise.all(inFlight.map((p) => p.response));
    expect(answers.map((r) => r.status)).toEqual(Array(5).fill(200));
    const ids = answers.map((r) => (JSON.parse(r.body) as { id: string }).id);

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

/** A POST whose body is sent in two halves: the second only when finish() is called. */
function slowPost(baseUrl: string, token: string, key: string, body: string) {
  const url = new URL('/api/v1/statuses', baseUrl);
  const bytes = Buffer.from(body);
  const half = Math.floor(bytes.length / 2);
  const req = request(url, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', 'content-length': bytes.length, 'idempotency-key': key, connection: 'close' },
  });
  const response = new Promise<{ status: number; body: string }>((resolve, reject) => {
    req.once('response', (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (text += d));
      res.once('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
    });
    req.once('error', reject);
  });
  req.flushHeaders();
  const sentHead = new Promise<void>((resolve) => req.write(bytes.subarray(0, half), () => resolve()));
  return { sentHead, response, finish: () => req.end(bytes.subarray(half)) };
}
