/**
 * Background work under pressure: while admission control turns requests away
 * (ctx.lifecycle.busy), the job worker yields — small batches with a pause —
 * but never stops: a post still reaches every follower's home feed. And a
 * job's writes are background ones even when a request's commit kicked the
 * worker: the writer puts a request's writes first (store/writer.ts).
 */
import { afterAll, describe, expect, it } from 'vitest';
import { createUser, eventually, startTestServer, type TestServer } from '../helpers/server.js';
import { requestScope } from '../../src/services/request-scope.js';

describe('job worker while the node is busy', () => {
  let server: TestServer | undefined;
  afterAll(async () => {
    await server?.stop();
  });

  it('keeps fanning out, a small batch at a time', async () => {
    server = await startTestServer({ ops: { enabled: false } });
    const author = await createUser(server.url, 'author');
    const followers = await Promise.all(Array.from({ length: 12 }, (_, i) => createUser(server!.url, `reader${i}`)));
    for (const f of followers) await f.client.v1.accounts.$select(author.id).follow();
    await server.worker.drain();

    server.ctx.lifecycle.busy = true;
    try {
      const posts: { id: string }[] = [];
      for (let i = 0; i < 8; i++) posts.push(await author.client.v1.statuses.create({ status: `while busy ${i}` }));
      // Every follower gets every post, with the worker yielding all along.
      await eventually(async () => {
        const rows = await server!.ctx.db
          .selectFrom('home_feed')
          .select('status_id')
          .where('status_id', 'in', posts.map((p) => p.id))
          .where('account_id', 'in', followers.map((f) => f.id))
          .execute();
        // …and the jobs are done (a job's row goes in its own write, just after its work).
        const pending = await server!.ctx.db.selectFrom('jobs').select('id').execute();
        return rows.length === posts.length * followers.length && pending.length === 0;
      }, 20_000);
    } finally {
      server.ctx.lifecycle.busy = false;
    }
  });

  it('runs a job outside the scope of the request that kicked it, so its writes wait behind requests\' writes', async () => {
    const server2 = await startTestServer({ ops: { enabled: false } });
    try {
      const author = await createUser(server2.url, 'kicker');
      const reader = await createUser(server2.url, 'reader');
      await reader.client.v1.accounts.$select(author.id).follow();
      await server2.worker.drain();
      // Every write the fan-out makes, with the request scope it was queued in (what the writer's isForeground reads).
      const fanOutWrites: (object | undefined)[] = [];
      const write = server2.ctx.write;
      Object.defineProperty(server2.ctx, 'write', {
        value: (fn: Parameters<typeof write>[0]) => {
          if (/\bat (async )?fanOut\b/.test(new Error().stack ?? '')) fanOutWrites.push(requestScope.getStore());
          return write(fn);
        },
      });
      // Posting commits a fanout job and kicks the worker from inside the request.
      const status = await author.client.v1.statuses.create({ status: 'kick' });
      await eventually(async () => (await server2.ctx.db.selectFrom('jobs').select('id').execute()).length === 0, 10_000);
      expect(await server2.ctx.db.selectFrom('home_feed').select('account_id').where('status_id', '=', status.id).where('account_id', '=', reader.id).execute()).toHaveLength(1);
      expect(fanOutWrites.length).toBeGreaterThan(0);
      expect(fanOutWrites.every((scope) => scope === undefined)).toBe(true);
    } finally {
      await server2.stop();
    }
  });
});
