/**
 * Background work under pressure: while admission control turns requests away
 * (ctx.lifecycle.busy), the job worker yields — small batches with a pause —
 * but never stops: a post still reaches every follower's home feed.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { createUser, eventually, startTestServer, type TestServer } from '../helpers/server.js';

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
});
