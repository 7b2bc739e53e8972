/**
 * Background work from a durable job table. A job is inserted in the same
 * transaction as the change that needs it, so a crash loses none; a worker
 * claims jobs with a lease, so a crash mid-job means the job runs again
 * after the lease expires. Every handler is written to be harmless when run
 * twice (inserts ignore duplicates, deletes of missing rows do nothing).
 */
import { sql, type Transaction } from 'kysely';
import type { Database, Job } from '../store/schema.js';
import type { AppContext } from './context.js';
import { requestScope } from './request-scope.js';

export type JobType = 'fanout' | 'unfanout' | 'notify' | 'feed.merge' | 'feed.unmerge';

export interface JobPayloads {
  /** Deliver a new status into followers' home feeds (and mentioned accounts'). */
  fanout: { statusId: string };
  /** Remove a deleted status from every home feed. */
  unfanout: { statusId: string };
  /** Create a notification. */
  notify: { accountId: string; fromAccountId: string; type: 'mention' | 'status' | 'reblog' | 'follow' | 'follow_request' | 'favourite' | 'update'; statusId: string | null };
  /** After a follow: bring the followee's recent statuses into the follower's feed. */
  'feed.merge': { accountId: string; targetAccountId: string };
  /** After an unfollow or block: take the target's statuses out of the feed. */
  'feed.unmerge': { accountId: string; targetAccountId: string };
}

export type JobHandler<T extends JobType> = (ctx: AppContext, payload: JobPayloads[T]) => Promise<void>;
export type JobHandlers = { [T in JobType]: JobHandler<T> };

const LEASE_MS = 60_000;
const MAX_ATTEMPTS = 10;

export async function enqueue<T extends JobType>(
  ctx: Pick<AppContext, 'ids' | 'now'>,
  trx: Transaction<Database>,
  type: T,
  payload: JobPayloads[T],
  delayMs = 0,
): Promise<void> {
  const now = ctx.now();
  await trx
    .insertInto('jobs')
    .values({
      id: ctx.ids.next(),
      type,
      payload: JSON.stringify(payload),
      run_at: new Date(now.getTime() + delayMs).toISOString(),
      created_at: now.toISOString(),
      locked_until: null,
      last_error: null,
    })
    .execute();
}

/** Claims up to `limit` due jobs under a lease. One statement, so two workers never claim the same job. */
async function claim(ctx: AppContext, limit: number) {
  const now = ctx.now();
  const nowIso = now.toISOString();
  const lease = new Date(now.getTime() + LEASE_MS).toISOString();
  const due = ctx.db
    .selectFrom('jobs')
    .select('id')
    .where('run_at', '<=', nowIso)
    .where((eb) => eb.or([eb('locked_until', 'is', null), eb('locked_until', '<', nowIso)]))
    .orderBy('run_at')
    .orderBy('id')
    .limit(limit);
  return ctx.write((trx) =>
    trx
      .updateTable('jobs')
      .set({ locked_until: lease, attempts: sql`attempts + 1` })
      .where('id', 'in', due)
      .returningAll()
      .execute(),
  );
}

export interface JobWorker {
  kick(): void;
  /** Runs until no job is due; for tests and the CLI. */
  drain(): Promise<number>;
  stop(): Promise<void>;
  backlog(): Promise<{ pending: number; oldestAgeMs: number | null }>;
}

/**
 * A worker polls for due jobs and is kicked after commits that queue some.
 * With `enabled: false` it never runs by itself (an API-only node), but
 * `drain()` still works, for the CLI.
 */
/** Under pressure (ctx.lifecycle.busy): jobs claimed per round, and the pause before each round. */
const BUSY_BATCH = 5;
const BUSY_PAUSE_MS = 100;

export function startJobWorker(ctx: AppContext, handlers: JobHandlers, opts: { pollMs?: number; batch?: number; enabled?: boolean } = {}): JobWorker {
  const pollMs = opts.pollMs ?? 1000;
  const batch = opts.batch ?? 50;
  let stopped = false;
  let running: Promise<number> | null = null;
  let again = false;
  let timer: NodeJS.Timeout | null = null;

  async function runOnce(): Promise<number> {
    let done = 0;
    for (;;) {
      // While the node turns people's requests away, background work yields: a short pause and a small batch
      // each time. It never stops (fan-out late is better than never, and the ops engine reports its age).
      const busy = ctx.lifecycle.busy === true;
      if (busy) await new Promise((r) => setTimeout(r, BUSY_PAUSE_MS));
      const jobs = await claim(ctx, busy ? BUSY_BATCH : batch);
      if (jobs.length === 0) return done;
      // The claimed jobs run side by side, so their writes share group commits;
      // they are independent and each is safe to run twice, so order does not matter.
      const results = await Promise.all(jobs.map((job) => runJob(job)));
      done += results.filter(Boolean).length;
      if (stopped) return done;
    }
  }

  async function runJob(job: Job): Promise<boolean> {
    try {
      const handler = handlers[job.type as JobType] as JobHandler<JobType> | undefined;
      if (!handler) throw new Error(`unknown job type ${job.type}`);
      await handler(ctx, JSON.parse(job.payload));
      await ctx.write((trx) => trx.deleteFrom('jobs').where('id', '=', job.id).execute());
      return true;
    } catch (err) {
      const attempts = job.attempts;
      ctx.log.error({ err, job: { id: job.id, type: job.type, attempts } }, 'job failed');
      // Kept, not deleted, after the last attempt: a dead job is evidence. It is parked far in the future.
      const runAt = attempts >= MAX_ATTEMPTS ? '9999-12-31T00:00:00.000Z' : new Date(ctx.now().getTime() + Math.min(60_000, 500 * 2 ** attempts)).toISOString();
      await ctx
        .write((trx) => trx.updateTable('jobs').set({ last_error: String(err), run_at: runAt, locked_until: null }).where('id', '=', job.id).execute())
        .catch((e) => ctx.log.error({ err: e }, 'could not reschedule job'));
      return false;
    }
  }

  function run(): Promise<number> {
    if (running) {
      again = true;
      return running;
    }
    // Outside any request's scope (a kick after a request's commit would carry it along): a job's writes are
    // background ones, which the writer puts after writes someone is waiting for (store/writer.ts).
    running = requestScope
      .exit(runOnce)
      .catch((err) => {
        ctx.log.error({ err }, 'job worker error');
        return 0;
      })
      .finally(() => {
        running = null;
        if (again && !stopped) {
          again = false;
          void run();
        }
      });
    return running;
  }

  const tick = () => {
    if (stopped) return;
    void run().finally(() => {
      if (!stopped) timer = setTimeout(tick, pollMs);
    });
  };
  const enabled = opts.enabled ?? true;
  if (enabled) timer = setTimeout(tick, 0);

  return {
    kick() {
      if (enabled && !stopped) setImmediate(() => void run());
    },
    async drain() {
      let total = 0;
      for (;;) {
        while (running) await running;
        const n = await run();
        total += n;
        if (n === 0 && !running) return total;
      }
    },
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      while (running) await running;
    },
    async backlog() {
      const row = await ctx.db
        .selectFrom('jobs')
        .select((eb) => [eb.fn.countAll<number>().as('pending'), eb.fn.min('created_at').as('oldest')])
        .where('run_at', '<', '9999')
        .executeTakeFirstOrThrow();
      return { pending: Number(row.pending), oldestAgeMs: row.oldest ? ctx.now().getTime() - Date.parse(String(row.oldest)) : null };
    },
  };
}
