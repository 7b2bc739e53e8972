/**
 * Starting and stopping one Starling node: open and migrate the database,
 * build the context, start the job worker, listen. Used by the CLI and by
 * tests (which start real servers on ephemeral ports).
 */
import pino, { type Logger } from 'pino';
import type { FastifyInstance } from 'fastify';
import type { Config } from './config.js';
import { openDatabase, openReplicaPool, migrateToLatest, type OpenedDatabase } from './store/db.js';
import { createReplicaReads, recordFences } from './store/replica.js';
import { currentAccountId, requestScope } from './services/request-scope.js';
import { createIdGenerator } from './domain/ids.js';
import type { AppContext } from './services/context.js';
import type { Urls } from './domain/entities.js';
import { startJobWorker, type JobWorker } from './services/jobs.js';
import { jobHandlers } from './services/job-handlers.js';
import { buildApp } from './http/app.js';
import { warmUp } from './services/warmup.js';
import { startHousekeeping } from './services/housekeeping.js';
import { createLocalBus, type EventBus } from './bus/bus.js';
import { createNatsBus, parseNatsServers } from './bus/nats.js';
import { createWriter } from './store/writer.js';
import { createMetrics, statementKind } from './ops/metrics.js';
import { OpsEngine } from './ops/engine.js';
import { WriteGuard } from './ops/read-only.js';
import { heartbeatWrite } from './ops/readiness.js';
import { createLeaderElection } from './ops/leader.js';
import { writePidFile } from './dr/in-use.js';
import { startBackupSchedule, type BackupSchedule } from './dr/schedule.js';

export interface RunningServer {
  readonly app: FastifyInstance;
  readonly ctx: AppContext;
  readonly worker: JobWorker;
  /** The ops engine (also `app.ops`): probes, component states, incidents, alerts. Started after listen when config.ops.enabled. */
  readonly ops: OpsEngine;
  /** The opened database, for operations on the connection itself (backup, fault tests). */
  readonly database: OpenedDatabase;
  readonly url: string;
  /** Scheduled backups (config backup.intervalMinutes); `runOnce` takes one now. */
  readonly backups: BackupSchedule;
  close(): Promise<void>;
  /**
   * Graceful stop: /readyz turns 503 at once, the node keeps serving for
   * config.shutdown.drainDelaySeconds (so a load balancer's checks move traffic
   * away), then hangs up streams with a reconnect hint (WebSocket 1012, SSE
   * `retry`), stops accepting, lets in-flight requests and their writes finish, and closes.
   */
  shutdown(): Promise<void>;
}

export function createLogger(config: Config): Logger {
  return pino({ level: config.logLevel, base: { node: config.nodeId } });
}

/**
 * The bus a node uses: NATS when config.natsUrl is set and the caller serves
 * (`networked`), else in-process. One-shot CLI commands stay local: they must
 * not wait on, or be kept alive by, a network connection.
 */
function createBus(config: Config, log: Logger, networked: boolean): EventBus {
  const onError = (err: unknown) => log.error({ err }, 'event subscriber failed');
  if (!networked || !config.natsUrl) return createLocalBus(onError);
  const servers = parseNatsServers(config.natsUrl);
  const bus = createNatsBus({
    servers,
    nodeId: config.nodeId,
    onError: (err) => log.warn({ err }, 'event bus (NATS) error'),
    onStatus: (s) => log.info({ bus: s.type, data: typeof s.data === 'string' ? s.data : undefined }, 'event bus (NATS) status'),
  });
  void bus.ready.then(() => log.info({ servers }, 'event bus connected to NATS'));
  return bus;
}

export async function openContext(
  config: Config,
  log: Logger = createLogger(config),
  opts: { networkBus?: boolean } = {},
): Promise<{ ctx: AppContext; database: OpenedDatabase; worker: JobWorker }> {
  const metrics = createMetrics({ node: String(config.nodeId) });
  let lastCheckpointError = 0;
  const database = openDatabase(
    config,
    ({ ok, ms, sql }) => {
      const kind = statementKind(sql);
      metrics.dbQueryDuration.observe({ kind }, ms / 1000);
      if (!ok) metrics.dbErrors.inc({ kind });
    },
    {
      backgroundCheckpoints: {
        // A failing checkpoint (a full disk) fails every round: one line a minute says so.
        onError: (err) => {
          if (Date.now() - lastCheckpointError < 60_000) return;
          lastCheckpointError = Date.now();
          log.warn({ err }, 'WAL checkpoint failed: the WAL keeps the pages until a later round succeeds');
        },
      },
    },
  );
  const { applied } = await migrateToLatest(database.db);
  if (applied.length) log.info({ migrations: applied }, 'database migrated');
  const urls: Urls = { base: config.publicUrl, domain: config.domain };
  let worker: JobWorker | null = null;
  const onPostgres = database.dialect === 'postgres';
  const writer = createWriter(database.db, {
    maxQueue: config.writes.maxQueue,
    queueTimeoutMs: config.writes.queueTimeoutMs,
    onBatch: (n, ms) => {
      metrics.writeBatchSize.observe(n);
      metrics.writeBatchDuration.observe(ms / 1000);
    },
    // SQLite runs a batch synchronously, holding every request meanwhile: a short bound. PostgreSQL waits on the
    // network, and the event loop serves requests in between.
    ...(onPostgres ? { lanes: config.writes.lanes } : { maxBatchMs: config.writes.maxBatchMs }),
    // A request's writes go ahead of the job worker's (fan-out and the rest can wait a little; a person cannot).
    isForeground: () => requestScope.getStore() !== undefined,
    // Read fences (store/replica.ts) on every PostgreSQL node, replica or not: a node reading from a replica
    // must see the fences of writes made through any other node.
    ...(onPostgres ? { tagOf: currentAccountId, beforeCommit: recordFences } : {}),
  });
  const replicaPool = onPostgres ? openReplicaPool(config) : null;
  const replica = replicaPool ? createReplicaReads(replicaPool.db, { onFailure: (err) => log.warn({ err }, 'replica read failed: reading from the primary for a while') }) : undefined;
  if (replicaPool) {
    const closePrimary = database.close.bind(database);
    database.close = async () => {
      await Promise.all([closePrimary(), replicaPool.close()]);
    };
  }
  const now = () => new Date();
  const writeGuard = new WriteGuard({ config, writer, metrics, log, probeWrite: (write) => heartbeatWrite(write, config.nodeId, now) });
  const ctx: AppContext = {
    config,
    db: database.db,
    replica,
    write: (fn) => writeGuard.write(fn),
    writeGuard,
    metrics,
    ids: createIdGenerator(config.nodeId),
    log,
    urls,
    bus: createBus(config, log, opts.networkBus ?? false),
    kickJobs: () => worker?.kick(),
    now,
    lifecycle: { draining: false },
    waiting: { jobLagMs: 0, dbPoolWaitMs: database.poolWaitMs ?? (() => 0) },
  };
  worker = startJobWorker(ctx, jobHandlers, { enabled: config.runJobs });
  return { ctx, database, worker };
}

export async function startServer(config: Config, log?: Logger): Promise<RunningServer> {
  const { ctx, database, worker } = await openContext(config, log, { networkBus: true });
  await ctx.writeGuard.start();
  // The probes call this node on the address it listens on (known after listen), not the public URL.
  let listenUrl = ctx.urls.base;
  // One ops engine per cluster: on PostgreSQL the nodes elect one through an advisory lock (ops/leader.ts).
  const leader = config.ops.enabled ? createLeaderElection(config, { log: ctx.log, gauge: ctx.metrics.opsLeader }) : undefined;
  const ops = new OpsEngine(ctx, { backlog: () => worker.backlog(), baseUrl: () => listenUrl, readOnly: () => ctx.writeGuard.state(), leader });
  const app = await buildApp(ctx, { ops });
  if (app.hasDecorator('slo')) ops.attachSlo(app.slo);
  if (app.hasDecorator('statusPage')) ops.onChange(() => void app.statusPage.refresh());
  const stopHousekeeping = startHousekeeping(ctx);
  const stopSampling = sampleGauges(ctx, worker, () => app.streaming.size);
  // Warm before listening, so nothing (a load balancer's /readyz included) reaches a cold node.
  const warm = await warmUp(ctx);
  ctx.log.info(warm, 'warmed up');
  const address = await app.listen({ host: config.host, port: config.port });
  const bound = app.server.address() as { port: number; address: string; family: string };
  const port = bound.port;
  const probeHost = ['0.0.0.0', '::'].includes(bound.address) ? '127.0.0.1' : bound.family === 'IPv6' ? `[${bound.address}]` : bound.address;
  listenUrl = `http://${probeHost}:${port}`;
  // With an ephemeral port and no configured public URL, the URL is known only now.
  if (config.publicUrl.endsWith(':0')) {
    const base = config.publicUrl.replace(/:0$/, `:${port}`);
    Object.assign(ctx.urls, { base, domain: new URL(base).host });
  }
  ctx.log.info(
    { address, url: ctx.urls.base, dataDir: config.dataDir },
    `Starling listening on ${ctx.urls.base} — create the first admin with: npx starling admin create --username NAME --email ADDRESS`,
  );
  if (config.ops.enabled) {
    await leader?.start();
    await ops.start();
  }
  // `starling restore` refuses while this file names a live process (src/dr/in-use.ts).
  const removePidFile = writePidFile(config.dataDir);
  const backups = startBackupSchedule(config, ctx.log);
  let closing: Promise<void> | null = null;
  let shuttingDown: Promise<void> | null = null;
  const close = () => {
    closing ??= (async () => {
      await backups.stop();
      await ops.stop();
      // Gives the lock up at once: another node takes over within its next round.
      await leader?.stop();
      ctx.writeGuard.stop();
      stopHousekeeping();
      stopSampling();
      await app.close();
      await worker.stop();
      await ctx.bus.close();
      await database.close();
      removePidFile();
    })();
    return closing;
  };
  return {
    app,
    ctx,
    worker,
    ops,
    database,
    url: ctx.urls.base,
    backups,
    close,
    shutdown() {
      shuttingDown ??= (async () => {
        ctx.lifecycle.draining = true;
        const delayMs = config.shutdown.drainDelaySeconds * 1000;
        ctx.log.info({ delayMs, streams: app.streaming.size }, 'draining: readiness is now 503');
        if (delayMs > 0) await new Promise((r) => setTimeout(r, delayMs));
        // Streams first: they never end by themselves, and the hint sends their clients to another node now.
        const streams = app.streaming.size;
        app.streaming.close('service restart');
        ctx.log.info({ streams }, 'streams told to reconnect elsewhere; finishing in-flight requests');
        // app.close() (inside close) stops accepting and waits for in-flight requests, and so for their writes.
        await close();
      })();
      return shuttingDown;
    },
  };
}

/** State gauges are sampled every few seconds rather than at scrape time, so a scrape never waits on the database. */
function sampleGauges(ctx: AppContext, worker: JobWorker, openStreams: () => number, everyMs = 5000): () => void {
  const sample = async () => {
    ctx.metrics.openStreams.set(openStreams());
    const { pending, oldestAgeMs } = await worker.backlog();
    ctx.waiting.jobLagMs = oldestAgeMs ?? 0;
    ctx.metrics.jobBacklog.set(pending);
    ctx.metrics.jobOldestAge.set(oldestAgeMs === null ? 0 : oldestAgeMs / 1000);
  };
  const timer = setInterval(() => void sample().catch(() => {}), everyMs);
  timer.unref();
  void sample().catch(() => {});
  return () => clearInterval(timer);
}
