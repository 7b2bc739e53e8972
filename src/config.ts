/**
 * Configuration in two steps: read raw values from the environment and an
 * optional JSON file, then build one typed, frozen object. Environment wins
 * over the file; command-line flags win over both.
 */
import { readFileSync, existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { z } from 'zod';

const Schema = z.object({
  host: z.string().default('127.0.0.1'),
  port: z.coerce.number().int().min(0).max(65535).default(3000),
  /** The public URL clients reach Starling at; defaults to http://host:port. */
  publicUrl: z.string().url().optional(),
  dataDir: z.string().default('./data'),
  /**
   * PostgreSQL instead of the SQLite file in dataDir (cluster mode). Several hosts find the primary:
   * postgres://user:pw@10.0.0.1:5432,10.0.0.2:5432/starling. Unset: embedded SQLite.
   */
  databaseUrl: z
    .string()
    .regex(/^postgres(ql)?:\/\/\S+$/, 'must be a postgres:// or postgresql:// URL')
    .optional(),
  /**
   * PostgreSQL only: a second pool for reads where staleness is harmless (public and tag timelines, search,
   * profiles, account lists), e.g. every cluster member (postgres://u@h1:5432,h2:5432,h3:5432/starling, a standby
   * preferred) or HAProxy's replica listener. Authors still read their own writes (store/replica.ts); a replica
   * that fails sends reads to the primary. Unset: every read goes to databaseUrl.
   */
  databaseReplicaUrl: z
    .string()
    .regex(/^postgres(ql)?:\/\/\S+$/, 'must be a postgres:// or postgresql:// URL')
    .optional(),
  nodeId: z.coerce.number().int().min(0).max(1023).default(0),
  instanceTitle: z.string().default('Starling'),
  instanceDescription: z.string().default('A microblogging server that does not go down.'),
  contactEmail: z.string().default(''),
  registrationsOpen: z.boolean().default(true),
  /** Authors with at least this many followers are merged into home timelines on read instead of fanned out on write. */
  fanoutThreshold: z.coerce.number().int().min(1).default(10_000),
  rateLimit: z
    .object({
      /** Requests per window per token (or per IP for anonymous requests). 0 turns rate limiting off. */
      max: z.coerce.number().int().min(0).default(300),
      windowSeconds: z.coerce.number().int().min(1).default(300),
    })
    .default({ max: 300, windowSeconds: 300 }),
  /** Monitoring, status page and alerting (src/ops). */
  ops: z
    .object({
      /** Run the synthetic probes and the ops engine on this node. */
      enabled: z.boolean().default(true),
      /** How often the synthetic probes run. */
      probeIntervalSeconds: z.coerce.number().min(0.05).default(10),
      /** With no probe result for this long, the status page says "unknown" instead of claiming a state. */
      staleAfterSeconds: z.coerce.number().min(1).default(60),
      /** Where alerts go: generic JSON, Slack-compatible or Discord-compatible webhooks, signed with HMAC-SHA256 when a secret is set. */
      alertWebhooks: z
        .array(z.object({ url: z.string().url(), kind: z.enum(['json', 'slack', 'discord']).default('json'), secret: z.string().optional() }))
        .default([]),
      slo: z
        .object({
          /** Share of API requests that must not fail (5xx). */
          availability: z.coerce.number().gt(0).lt(1).default(0.999),
          /** Share of API requests that must finish within latencyThresholdMs. */
          latency: z.coerce.number().gt(0).lt(1).default(0.99),
          latencyThresholdMs: z.coerce.number().positive().default(500),
          /** The SLO period the error budget is counted over. */
          periodDays: z.coerce.number().positive().default(30),
        })
        .default({ availability: 0.999, latency: 0.99, latencyThresholdMs: 500, periodDays: 30 }),
      /** When set, a complete static copy of the status page is written here whenever it changes. */
      statusPublishDir: z.string().optional(),
      /** How often the ops leader election (ops/leader.ts) tries or checks its lock (PostgreSQL advisory lock, or SQLite file lock). */
      leaderCheckSeconds: z.coerce.number().min(0.05).default(2),
    })
    .default({
      enabled: true,
      probeIntervalSeconds: 10,
      staleAfterSeconds: 60,
      leaderCheckSeconds: 2,
      alertWebhooks: [],
      slo: { availability: 0.999, latency: 0.99, latencyThresholdMs: 500, periodDays: 30 },
    }),
  logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /** Run background jobs on this node. Off lets a cluster keep API-only nodes; the jobs wait in the database for a node that runs them. */
  runJobs: z.boolean().default(true),
  /** Trust X-Forwarded-For from a load balancer in front (cluster mode behind HAProxy). */
  trustProxy: z.boolean().default(false),
  /** Body size limit in bytes. */
  bodyLimit: z.coerce.number().int().min(1024).default(1_048_576),
  /** The database write path (store/writer.ts, ops/read-only.ts): bounds, timeouts and the circuit breaker. */
  writes: z
    .object({
      /** Writes allowed to wait for a group commit; one more fails at once with 503. */
      maxQueue: z.coerce.number().int().min(1).default(5000),
      /** A write that waited this long before its batch began fails with 503 without running. */
      queueTimeoutMs: z.coerce.number().int().min(10).default(5000),
      /**
       * SQLite: a group commit takes no further write once it has run this long (ms), so one batch never holds the
       * event loop much longer; the rest go in the next batch. Under the request queue's 30 ms wait bound.
       */
      maxBatchMs: z.coerce.number().min(1).default(10),
      /**
       * PostgreSQL: group commits that may run at once, each in its own transaction on its own pool connection (of
       * 10). One at a time, every statement a round trip, capped posting well below what the database serves.
       * SQLite has one writer whatever this says.
       */
      lanes: z.coerce.number().int().min(1).max(8).default(4),
      /** SQLite's busy timeout: how long one statement waits (blocking the event loop) for another connection's write lock. */
      busyTimeoutMs: z.coerce.number().int().min(0).default(250),
      /** PostgreSQL: a statement running longer fails (and is retried or counted by the breaker) instead of hanging through a failover. */
      statementTimeoutMs: z.coerce.number().int().min(100).default(15_000),
      /**
       * PostgreSQL: a query with no answer after this long fails with 503 and its connection is dropped (a frozen
       * server never enforces statement_timeout). 0 turns it off. Schema changes (migrations) are exempt.
       */
      queryDeadlineMs: z.coerce.number().int().min(0).default(5000),
      breaker: z
        .object({
          /** Dependency failures in a row (busy, timed out, I/O) that open the breaker. */
          failures: z.coerce.number().int().min(1).default(5),
          /** Open this long before one trial write is let through. */
          coolDownSeconds: z.coerce.number().min(0.05).default(5),
        })
        .prefault({}),
    })
    .prefault({}),
  /** Read-only mode (ops/read-only.ts). */
  readOnly: z
    .object({
      /** Writes failing (breaker trials included) for this long switch the node to read-only. Disk full / read-only database switch at once. */
      afterFailingSeconds: z.coerce.number().min(0).default(30),
      /** While read-only by itself, one trial write this often; success switches back. */
      probeIntervalSeconds: z.coerce.number().min(0.05).default(5),
      /** How often the `starling maintenance` flag file in the data folder is read. */
      flagPollSeconds: z.coerce.number().min(0.05).default(2),
      /** Leaving read-only mode also needs this much free space on the data folder's filesystem. */
      minFreeBytes: z.coerce.number().int().min(0).default(16 * 1024 * 1024),
      /** Retry-After on read-only 503s. */
      retryAfterSeconds: z.coerce.number().int().min(1).default(30),
    })
    .prefault({}),
  /** Load shedding by priority (http/pressure.ts, @fastify/under-pressure). 0 turns a threshold off. */
  pressure: z
    .object({
      enabled: z.boolean().default(true),
      /** Retry-After on shed requests. */
      retryAfterSeconds: z.coerce.number().int().min(1).default(10),
      /**
       * Requests let run at once (http/request-queue.ts); more wait in the queue, where the wait is bounded. On
       * PostgreSQL this is the ceiling: the limit comes down by itself while requests running together take longer
       * than one alone (http/concurrency-limit.ts), and a few times the pool's 10 connections is already more
       * than wait for the database without waiting for a connection.
       */
      concurrency: z.coerce.number().int().min(1).default(32),
      /**
       * How long a request may wait in the queue once it has not been empty for `essential.maxWaitMs`, or (on
       * SQLite) while the node's loop has been busy most of the time: standing load, where waiting only makes every
       * answer later (ms; at most the class's own bound).
       */
      congestedWaitMs: z.coerce.number().min(1).default(5),
      /**
       * How long a request may wait in the queue while the node is calm (its loop below the deferrable
       * thresholds a moment ago, nothing turned away): a burst, such as the dozen requests an app sends as it
       * opens, is served in order, whoever sent it (ms; the class bounds and one client's share apply once the
       * node is busy).
       */
      burstWaitMs: z.coerce.number().min(1).default(250),
      /**
       * Requests of one client (token, else address) waiting or running at most, once requests have to wait: one
       * more is refused at once (503), so one client cannot fill the queue and starve the others. A quiet node runs
       * whatever can run at once. An app opening sends a dozen at once (8 refused a third of such a burst on a
       * busy node, docs/RELIABILITY.md); more than that is a script, not a person.
       */
      maxPerClient: z.coerce.number().int().min(1).default(16),
      /** How often event-loop delay and heap are sampled. */
      sampleIntervalMs: z.coerce.number().int().min(20).default(100),
      /** Deferrable requests (search, trends, public and tag timelines, new streams, lists) are shed above these. */
      deferrable: z
        .object({
          maxEventLoopDelayMs: z.coerce.number().min(0).default(150),
          /** Admission (http/admission.ts): above this event-loop utilisation (0–1) or delay, fewer deferrable requests are let in. */
          targetUtilisation: z.coerce.number().min(0.05).max(1).default(0.6),
          targetDelayMs: z.coerce.number().min(0).default(40),
          /** A deferrable request waits in the request queue at most this long, and only while no essential one waits (ms). */
          maxWaitMs: z.coerce.number().min(1).default(10),
          /** 0: 85% of the heap limit. */
          maxHeapUsedBytes: z.coerce.number().min(0).default(0),
          /** Writes waiting for a group commit. */
          maxWriteQueue: z.coerce.number().int().min(0).default(500),
          /**
           * The oldest due background job (fan-out, notifications) waiting longer than this: home timelines are
           * falling behind, and the work deferrable requests would take is better spent catching up (seconds).
           */
          maxJobLagSeconds: z.coerce.number().min(0).default(30),
          /** PostgreSQL: a query waiting this long for a pool connection (ms). */
          maxDbPoolWaitMs: z.coerce.number().min(0).default(100),
        })
        .prefault({}),
      /** Essential requests (posting, home, notifications, sign-in) are shed only above these. */
      essential: z
        .object({
          maxEventLoopDelayMs: z.coerce.number().min(0).default(1000),
          /**
           * An essential request waits in the request queue at most this long while the queue empties now and then
           * (a burst); `congestedWaitMs` once it does not (ms). Short, so what is served is served fast: the overload
           * bench's served p99 followed this bound (docs/RELIABILITY.md).
           */
          maxWaitMs: z.coerce.number().min(1).default(15),
          /** 0: 95% of the heap limit. */
          maxHeapUsedBytes: z.coerce.number().min(0).default(0),
        })
        .prefault({}),
    })
    .prefault({}),
  /** /readyz (ops/readiness.ts). */
  readiness: z
    .object({
      /**
       * Database reads failing for longer than this make the node unready (503 on /readyz). Unset: 0 on SQLite (the
       * file is this node's own: a failing read means this node is broken), 20 s on PostgreSQL (every node shares the
       * database: a failover of 5–12 s fails them all alike, and taking them all out of the load balancer would turn
       * the app's own fast 503s, cached reads and open streams into the load balancer's 503 for everyone).
       */
      databaseGraceSeconds: z.coerce.number().min(0).optional(),
    })
    .prefault({}),
  /** Cluster mode's event bus: NATS server URLs, comma-separated (nats://127.0.0.1:4222,nats://...). Unset: the in-process bus. */
  natsUrl: z.string().optional(),
  /** Graceful shutdown on SIGTERM/SIGINT (cli serve). */
  shutdown: z
    .object({
      /** After /readyz turns 503, keep serving this long so a load balancer's health checks move traffic away first. */
      drainDelaySeconds: z.coerce.number().min(0).default(0),
      /** The whole shutdown (delay, closing streams, finishing in-flight requests) is cut off after this; the process then exits 1. */
      timeoutSeconds: z.coerce.number().min(1).default(10),
    })
    .prefault({}),
  /** Backups of the embedded database (src/dr): `starling backup`, and on a schedule inside `starling serve`. */
  backup: z
    .object({
      /**
       * Minutes between scheduled backups in `starling serve`; 0 turns them off. On by default (hourly): an
       * embedded install with no copy loses everything to one corrupted file or mistaken delete.
       */
      intervalMinutes: z.coerce.number().min(0).default(60),
      /** Scheduled backups kept (older ones are removed after each new one), here and off-site. */
      keep: z.coerce.number().int().min(1).default(24),
      /** Where backups are written; default `<dataDir>/backups`. */
      dir: z.string().optional(),
      /** A second place (another disk, site, or mounted bucket) every backup is copied to and checked in. */
      offsiteDir: z.string().optional(),
    })
    .prefault({}),
});

export type Config = Readonly<z.infer<typeof Schema>> & { readonly publicUrl: string; readonly domain: string; readonly databaseFile: string };

/** Environment variable → config key. Documented in the README. */
const ENV: Record<string, string> = {
  HOST: 'host',
  PORT: 'port',
  STARLING_PUBLIC_URL: 'publicUrl',
  STARLING_DATA_DIR: 'dataDir',
  STARLING_DATABASE_URL: 'databaseUrl',
  STARLING_DATABASE_REPLICA_URL: 'databaseReplicaUrl',
  STARLING_NODE_ID: 'nodeId',
  STARLING_INSTANCE_TITLE: 'instanceTitle',
  STARLING_CONTACT_EMAIL: 'contactEmail',
  STARLING_REGISTRATIONS_OPEN: 'registrationsOpen',
  STARLING_FANOUT_THRESHOLD: 'fanoutThreshold',
  STARLING_LOG_LEVEL: 'logLevel',
  STARLING_BODY_LIMIT: 'bodyLimit',
  STARLING_TRUST_PROXY: 'trustProxy',
  STARLING_RUN_JOBS: 'runJobs',
  STARLING_NATS_URL: 'natsUrl',
};

const BOOLEAN_KEYS = ['registrationsOpen', 'trustProxy', 'runJobs'];

export function readEnv(env: NodeJS.ProcessEnv = process.env): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, key] of Object.entries(ENV)) if (env[name] !== undefined && env[name] !== '') out[key] = env[name];
  const ops: Record<string, unknown> = {};
  if (env.STARLING_OPS_ENABLED) ops.enabled = !['0', 'false', 'no', 'off'].includes(env.STARLING_OPS_ENABLED.toLowerCase());
  if (env.STARLING_PROBE_INTERVAL) ops.probeIntervalSeconds = env.STARLING_PROBE_INTERVAL;
  if (env.STARLING_STATUS_PUBLISH_DIR) ops.statusPublishDir = env.STARLING_STATUS_PUBLISH_DIR;
  if (env.STARLING_ALERT_WEBHOOK) ops.alertWebhooks = [{ url: env.STARLING_ALERT_WEBHOOK, kind: env.STARLING_ALERT_WEBHOOK_KIND ?? 'json', secret: env.STARLING_ALERT_WEBHOOK_SECRET }];
  if (Object.keys(ops).length) out.ops = ops;
  if (env.STARLING_SHED_EVENT_LOOP_DELAY_MS) out.pressure = { deferrable: { maxEventLoopDelayMs: env.STARLING_SHED_EVENT_LOOP_DELAY_MS } };
  if (env.STARLING_PRESSURE_ENABLED) out.pressure = { ...(out.pressure as object), enabled: !['0', 'false', 'no', 'off'].includes(env.STARLING_PRESSURE_ENABLED.toLowerCase()) };
  if (env.STARLING_READ_ONLY_AFTER) out.readOnly = { afterFailingSeconds: env.STARLING_READ_ONLY_AFTER };
  if (env.STARLING_WRITE_QUEUE_MAX) out.writes = { maxQueue: env.STARLING_WRITE_QUEUE_MAX };
  if (env.STARLING_QUERY_DEADLINE_MS) out.writes = { ...(out.writes as object), queryDeadlineMs: env.STARLING_QUERY_DEADLINE_MS };
  const backup: Record<string, unknown> = {};
  if (env.STARLING_BACKUP_INTERVAL) backup.intervalMinutes = env.STARLING_BACKUP_INTERVAL;
  if (env.STARLING_BACKUP_KEEP) backup.keep = env.STARLING_BACKUP_KEEP;
  if (env.STARLING_BACKUP_DIR) backup.dir = env.STARLING_BACKUP_DIR;
  if (env.STARLING_BACKUP_OFFSITE_DIR) backup.offsiteDir = env.STARLING_BACKUP_OFFSITE_DIR;
  if (Object.keys(backup).length) out.backup = backup;
  if (env.STARLING_RATE_LIMIT_MAX || env.STARLING_RATE_LIMIT_WINDOW) {
    out.rateLimit = { max: env.STARLING_RATE_LIMIT_MAX ?? 300, windowSeconds: env.STARLING_RATE_LIMIT_WINDOW ?? 300 };
  }
  if (env.STARLING_SHUTDOWN_DRAIN_DELAY || env.STARLING_SHUTDOWN_TIMEOUT) {
    out.shutdown = { drainDelaySeconds: env.STARLING_SHUTDOWN_DRAIN_DELAY || undefined, timeoutSeconds: env.STARLING_SHUTDOWN_TIMEOUT || undefined };
  }
  for (const key of BOOLEAN_KEYS) {
    if (out[key] !== undefined) out[key] = !['0', 'false', 'no', 'off'].includes(String(out[key]).toLowerCase());
  }
  return out;
}

const isPlainObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function deepMerge(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const out = { ...base };
  for (const [key, value] of Object.entries(over)) {
    const old = out[key];
    out[key] = isPlainObject(old) && isPlainObject(value) ? deepMerge(old, value) : value;
  }
  return out;
}

export function loadConfig(opts: { file?: string; env?: NodeJS.ProcessEnv; overrides?: Record<string, unknown> } = {}): Config {
  const env = opts.env ?? process.env;
  const file = opts.file ?? env.STARLING_CONFIG ?? (existsSync('starling.json') ? 'starling.json' : undefined);
  let fromFile: Record<string, unknown> = {};
  if (file) {
    try {
      fromFile = JSON.parse(readFileSync(file, 'utf8'));
    } catch (err) {
      throw new Error(`cannot read config file ${file}: ${(err as Error).message}`);
    }
  }
  // Deep: an environment variable sets one key of a section (STARLING_PRESSURE_ENABLED) without dropping the file's others.
  const merged = deepMerge(deepMerge(fromFile, readEnv(env)), stripUndefined(opts.overrides ?? {}));
  const parsed = Schema.safeParse(merged);
  if (!parsed.success) {
    throw new Error(`invalid configuration: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  }
  const c = parsed.data;
  const publicUrl = (c.publicUrl ?? `http://${c.host.includes(':') ? `[${c.host}]` : c.host}:${c.port}`).replace(/\/+$/, '');
  return Object.freeze({
    ...c,
    dataDir: resolve(c.dataDir),
    publicUrl,
    domain: new URL(publicUrl).host,
    databaseFile: join(resolve(c.dataDir), 'starling.sqlite'),
  });
}

function stripUndefined(o: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));
}
