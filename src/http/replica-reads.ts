/**
 * Routes whose reads may come from the replica (config databaseReplicaUrl) wrap their reading in `readFrom`.
 * Only reads where staleness is harmless do: public and tag timelines, search, profiles and other accounts'
 * status and follower lists. Never: the home timeline, notifications, anything a write handler reads, and
 * every write (`ctx.write` always goes to the primary). The viewer's own writes are always seen
 * (store/replica.ts: read fences). `fn` must only read: after a replica failure it runs again on the primary.
 *
 * The response says where its reads went in `X-Starling-Read` (replica, primary, fallback), and
 * starling_replica_reads_total counts them.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { AppContext } from '../services/context.js';
import { isDependencyFailure } from '../store/errors.js';
import type { ReadTarget } from '../store/replica.js';

export const READ_HEADER = 'X-Starling-Read';

export async function readFrom<T>(ctx: AppContext, req: FastifyRequest, reply: FastifyReply, fn: (c: AppContext) => Promise<T>): Promise<T> {
  const replica = ctx.replica;
  if (!replica) return fn(ctx);
  const note = (target: ReadTarget) => {
    reply.header(READ_HEADER, target);
    ctx.metrics.replicaReads.inc({ target });
  };
  const target = await replica.choose(req.auth?.fence ?? null);
  if (target !== 'replica') {
    note(target);
    return fn(ctx);
  }
  // The same context but for `db`: services read through ctx.db; writes (ctx.write) still reach the primary.
  const onReplica: AppContext = Object.create(ctx, { db: { value: replica.db, enumerable: true } });
  try {
    const value = await fn(onReplica);
    note('replica');
    return value;
  } catch (err) {
    // A replica that is down, too slow (query deadline) or cancelled a query for a recovery conflict: the
    // primary answers instead, and the next reads go there for a while.
    if (!isDependencyFailure(err)) throw err;
    replica.failed(err);
    note('fallback');
    return fn(ctx);
  }
}
