/**
 * Starting and stopping one Starling node: open and migrate the database,
 * build the context, start the job worker, listen. Used by the CLI and by
 * tests (which start real servers on ephemeral ports).
 */
import pino, { type Logger } from 'pino';
import type { FastifyInstance } from 'fastify';
import type { Config } from './config.js';
import { openSqlite, migrateToLatest, type OpenedDatabase } from './store/db.js';
import { createIdGenerator } from './domain/ids.js';
import type { AppContext } from './services/context.js';
import type { Urls } from './domain/entities.js';
import { startJobWorker, type JobWorker } from './services/jobs.js';
import { jobHandlers } from './services/job-handlers.js';
import { buildApp } from './http/app.js';
import { startHousekeeping } from './services/housekeeping.js';
import { createLocalBus } from './bus/bus.js';
import { createWriter } from './store/writer.js';
import { createMetrics, statementKind } from './ops/metrics.js';
import { OpsEngine } from './ops/engine.js';
import { WriteGuard } from './ops/read-only.js';
import { heartbeatWrite } from './ops/readiness.js';
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
}

export function createLogger(config: Config): Logger {
  return pino({ level: config.logLevel, base: { node: config.nodeId } });
}

export async function openContext(config: Config, log: Logger = createLogger(config)): Promise<{ ctx: AppContext; database: OpenedDatabase; worker: JobWorker }> {
  const metrics = createMetrics({ node: String(config.nodeId) });
  const database = openSqlite(
    config.databaseFile,
    ({ ok, ms, sql }) => {
      const kind = statementKind(sql);
      metrics.dbQueryDuration.observe({ kind }, ms / 1000);
      if (!ok) metrics.dbErrors.inc({ kind });
    },
    { busyTimeoutMs: config.writes.busyTimeoutMs },
  );
  const { applied } = await migrateToLatest(database.db);
  if (applied.length) log.info({ migrations: applied }, 'database migrated');
  const urls: Urls = { base: config.publicUrl, domain: config.domain };
  let worker: JobWorker | null = null;
  const writer = createWriter(database.db, {
    maxQueue: config.writes.maxQueue,
    queueTimeoutMs: config.writes.queueTimeoutMs,
    onBatch: (n) => metrics.writeBatchSize.observe(n),
  });
  const now = () => new Date();
  const writeGuard = new WriteGuard({ config, writer, metrics, log, probeWrite: (write) => heartbeatWrite(write, config.nodeId, now) });
  const ctx: AppContext = {
    config,
    db: database.db,
    write: (fn) => writeGuard.write(fn),
    writeGuard,
    metrics,
    ids: createIdGenerator(config.nodeId),
    log,
    urls,
    bus: createLocalBus((err) => log.error({ err }, 'event subscriber failed')),
    kickJobs: () => worker?.kick(),
    now,
  };
  worker = startJobWorker(ctx, jobHandlers, { enabled: config.runJobs });
  return { ctx, database, worker };
}

export async function startServer(config: Config, log?: Logger): Promise<RunningServer> {
  const { ctx, database, worker } = await openContext(config, log);
  await ctx.writeGuard.start();
  // The probes call this node on the address it listens on (known after listen), not the public URL.
  let listenUrl = ctx.urls.base;
  const ops = new OpsEngine(ctx, { backlog: () => worker.backlog(), baseUrl: () => listenUrl, readOnly: () => ctx.writeGuard.state() });
  const app = await buildApp(ctx, { ops });
  if (app.hasDecorator('slo')) ops.attachSlo(app.slo);
  if (app.hasDecorator('statusPage')) ops.onChange(() => void app.statusPage.refresh());
  const stopHousekeeping = startHousekeeping(ctx);
  const stopSampling = sampleGauges(ctx, worker, () => app.streaming.size);
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
  if (config.ops.enabled) await ops.start();
  // `starling restore` refuses while this file names a live process (src/dr/in-use.ts).
  const removePidFile = writePidFile(config.dataDir);
  const backups = startBackupSchedule(config, ctx.log);
  let closing: Promise<void> | null = null;
  return {
    app,
    ctx,
    worker,
    ops,
    database,
    url: ctx.urls.base,
    backups,
    close() {
      closing ??= (async () => {
        await backups.stop();
        await ops.stop();
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
    },
  };
}

/** State gauges are sampled every few seconds rather than at scrape time, so a scrape never waits on the database. */
function sampleGauges(ctx: AppContext, worker: JobWorker, openStreams: () => number, everyMs = 5000): () => void {
  const sample = async () => {
    ctx.metrics.openStreams.set(openStreams());
    const { pending, oldestAgeMs } = await worker.backlog();
    ctx.metrics.jobBacklog.set(pending);
    ctx.metrics.jobOldestAge.set(oldestAgeMs === null ? 0 : oldestAgeMs / 1000);
  };
  const timer = setInterval(() => void sample().catch(() => {}), everyMs);
  timer.unref();
  void sample().catch(() => {});
  return () => clearInterval(timer);
}
