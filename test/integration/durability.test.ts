/**
 * Acknowledged writes are durable: a server killed with SIGKILL right after
 * acknowledging N posts comes back with all N, and the background work those
 * posts queued (fan-out to a follower's home timeline) is not lost either.
 */
import { afterAll, describe, expect, it } from 'vitest';
import Database from 'better-sqlite3';
import { join } from 'node:path';
import { startChildServer, createUser, eventually, tempDir, type ChildServer } from '../helpers/server.js';

const N = 60;
const dir = tempDir();
const started: ChildServer[] = [];

afterAll(async () => {
  for (const s of started) await s.kill('SIGKILL');
  dir.remove();
});

describe('durability', () => {
  it('keeps every acknowledged post and every queued job across SIGKILL', async () => {
    // The first node runs no jobs, so every fan-out job is still queued when it dies.
    const first = await startChildServer(dir.path, { STARLING_RUN_JOBS: 'false' });
    started.push(first);
    const author = await createUser(first.url, 'author');
    const follower = await createUser(first.url, 'follower');
    await follower.client.v1.accounts.$select(author.id).follow();

    // Post concurrently in small waves, as many clients would.
    const acknowledged: string[] = [];
    for (let wave = 0; wave < N / 10; wave++) {
      const ids = await Promise.all(
        Array.from({ length: 10 }, (_, i) => author.client.v1.statuses.create({ status: `durable post ${wave * 10 + i}` }).then((s) => s.id)),
      );
      acknowledged.push(...ids);
    }
    expect(acknowledged).toHaveLength(N);
    await first.kill('SIGKILL');
    expect(first.proc.signalCode).toBe('SIGKILL');
    const file = new Database(join(dir.path, 'starling.sqlite'), { readonly: true });
    const queued = file.prepare("SELECT count(*) AS n FROM jobs WHERE type = 'fanout'").get() as { n: number };
    file.close();
    expect(queued.n).toBeGreaterThanOrEqual(N);

    const second = await startChildServer(dir.path);
    started.push(second);
    const headers = { authorization: `Bearer ${author.token}` };
    for (const id of acknowledged) {
      const res = await fetch(`${second.url}/api/v1/statuses/${id}`, { headers });
      expect(res.status, `status ${id} after restart`).toBe(200);
    }
    // Jobs queued before the kill run after the restart: the follower's feed gets every post.
    const followerHeaders = { authorization: `Bearer ${follower.token}` };
    await eventually(async () => {
      const seen = new Set<string>();
      let url: string | null = `${second.url}/api/v1/timelines/home?limit=40`;
      while (url) {
        const res: Response = await fetch(url, { headers: followerHeaders });
        const page = (await res.json()) as { id: string }[];
        if (page.length === 0) break;
        for (const s of page) seen.add(s.id);
        url = /<([^>]+)>; rel="next"/.exec(res.headers.get('link') ?? '')?.[1] ?? null;
      }
      return acknowledged.every((id) => seen.has(id));
    }, 10_000);
    await second.kill('SIGTERM');
    expect(second.proc.exitCode).toBe(0);
  });
});
