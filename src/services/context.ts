/**
 * The application context: built once from configuration, passed down to
 * every service and route, disposed on shutdown. No module-level singletons,
 * so tests can run several servers in one process.
 */
import type { Logger } from 'pino';
import type { Config } from '../config.js';
import type { Db } from '../store/db.js';
import type { IdGenerator } from '../domain/ids.js';
import type { Urls } from '../domain/entities.js';
import type { EventBus } from '../bus/bus.js';
import type { WriteFn } from '../store/writer.js';
import type { Metrics } from '../ops/metrics.js';
import type { WriteGuard } from '../ops/read-only.js';
import type { ReplicaReads } from '../store/replica.js';

export interface AppContext {
  readonly config: Config;
  /** For reads, and for single statements that need no transaction. */
  readonly db: Db;
  /** PostgreSQL with config databaseReplicaUrl: the replica pool and when it may be read (http/replica-reads.ts). */
  readonly replica?: ReplicaReads;
  /**
   * Every write transaction: group-committed with concurrent writes (store/writer.ts),
   * answered only once durable. Never call it from inside another write.
   */
  readonly write: <T>(fn: WriteFn<T>) => Promise<T>;
  /** What `write` goes through: read-only mode, the write breaker, the writer's queue length (ops/read-only.ts). */
  readonly writeGuard: WriteGuard;
  readonly ids: IdGenerator;
  readonly log: Logger;
  /** Public URLs; fixed once the server knows its port. */
  readonly urls: Urls;
  /** Domain events, published after commit (streaming and caches listen). */
  readonly bus: EventBus;
  readonly metrics: Metrics;
  /** Wakes the job worker after a commit that queued work, so fan-out starts at once. */
  readonly kickJobs: () => void;
  readonly now: () => Date;
  /**
   * Set once a graceful shutdown has begun: readiness turns 503 so load balancers move traffic elsewhere.
   * `busy` is set by admission control (http/pressure.ts) while essential requests are being turned away:
   * background work (the job worker) then yields to the requests people are waiting on.
   */
  readonly lifecycle: { draining: boolean; busy?: boolean };
  /**
   * Work waiting outside the request queue, which load shedding (http/pressure.ts) weighs: how long the oldest
   * due background job has waited (sampled every few seconds, with the metrics gauges), and how long queries wait
   * for a database connection now (PostgreSQL's pool; 0 on SQLite, which has none).
   */
  readonly waiting: { jobLagMs: number; dbPoolWaitMs: () => number };
}

export const nowIso = (ctx: Pick<AppContext, 'now'>) => ctx.now().toISOString();
