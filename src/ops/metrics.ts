/**
 * Prometheus metrics, one registry per node context (no global registry, so
 * tests can run several nodes in one process). HTTP and database timings are
 * fed by hooks; gauges about state (streams, job backlog) are read at scrape
 * time; the ops engine sets probe, component and burn-rate series.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export interface Metrics {
  readonly registry: Registry;
  readonly httpRequests: Counter<'method' | 'route' | 'status'>;
  readonly httpDuration: Histogram<'method' | 'route' | 'status'>;
  readonly dbQueryDuration: Histogram<'kind'>;
  readonly dbErrors: Counter<'kind'>;
  readonly postsCreated: Counter;
  readonly openStreams: Gauge;
  readonly jobBacklog: Gauge;
  readonly jobOldestAge: Gauge;
  readonly writeBatchSize: Histogram;
  readonly writeBatchDuration: Histogram;
  readonly probeSuccess: Gauge<'probe'>;
  readonly probeLatency: Gauge<'probe'>;
  readonly probeRuns: Counter<'probe' | 'result'>;
  readonly componentState: Gauge<'component' | 'state'>;
  readonly sloBurnRate: Gauge<'slo' | 'window'>;
  readonly sloErrorBudgetRemaining: Gauge<'slo'>;
  readonly readOnly: Gauge;
  /** 1 while this node runs the ops engine (ops/leader.ts). */
  readonly opsLeader: Gauge;
  readonly shed: Counter<'priority' | 'reason'>;
  readonly admitted: Gauge<'priority'>;
  readonly queueWait: Histogram<'priority' | 'outcome'>;
  readonly queueLength: Gauge;
  /** 1 while the node counts as overloaded and the request queue keeps its short bound (http/pressure.ts). */
  readonly queueOverloaded: Gauge;
  readonly concurrencyLimit: Gauge;
  /** Reads that could use the replica (http/replica-reads.ts), by where they went: replica, primary (fence), fallback. */
  readonly replicaReads: Counter<'target'>;
}

/**
 * Upper bounds of the HTTP duration histogram. `starling ops rules` reads the
 * latency SLO from the `le` bucket equal to latencyThresholdMs (or the largest
 * bound below it), so keep the default threshold (500 ms) a bound.
 */
export const HTTP_DURATION_BUCKETS = [0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5] as const;

export function createMetrics(labels: { node: string }): Metrics {
  const registry = new Registry();
  registry.setDefaultLabels(labels);
  // Node's own: heap, GC, event-loop lag (starling_nodejs_eventloop_lag_*), handles.
  collectDefaultMetrics({ register: registry, prefix: 'starling_', eventLoopMonitoringPrecision: 20 });
  const r = [registry];
  return {
    registry,
    httpRequests: new Counter({ name: 'starling_http_requests_total', help: 'HTTP requests by route and status', labelNames: ['method', 'route', 'status'], registers: r }),
    httpDuration: new Histogram({
      name: 'starling_http_request_duration_seconds',
      help: 'HTTP request duration by route and status',
      labelNames: ['method', 'route', 'status'],
      buckets: [...HTTP_DURATION_BUCKETS],
      registers: r,
    }),
    dbQueryDuration: new Histogram({
      name: 'starling_db_query_duration_seconds',
      help: 'Database query duration by statement kind',
      labelNames: ['kind'],
      buckets: [0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1],
      registers: r,
    }),
    replicaReads: new Counter({ name: 'starling_replica_reads_total', help: 'Reads that may use the replica, by where they went (replica, primary for read-your-writes, fallback after a replica failure)', labelNames: ['target'], registers: r }),
    dbErrors: new Counter({ name: 'starling_db_errors_total', help: 'Failed database queries by statement kind', labelNames: ['kind'], registers: r }),
    postsCreated: new Counter({ name: 'starling_posts_created_total', help: 'Statuses created (reblogs included)', registers: r }),
    openStreams: new Gauge({ name: 'starling_streaming_connections', help: 'Open streaming connections on this node', registers: r }),
    jobBacklog: new Gauge({ name: 'starling_jobs_pending', help: 'Background jobs waiting (fan-out, notifications)', registers: r }),
    jobOldestAge: new Gauge({ name: 'starling_jobs_oldest_age_seconds', help: 'Age of the oldest pending background job', registers: r }),
    writeBatchSize: new Histogram({ name: 'starling_write_batch_size', help: 'Writes per group commit', buckets: [1, 2, 4, 8, 16, 32, 64, 128], registers: r }),
    writeBatchDuration: new Histogram({
      name: 'starling_write_batch_duration_seconds',
      help: 'Time one group commit took, BEGIN to COMMIT (on SQLite the event loop waits for all of it)',
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25],
      registers: r,
    }),
    probeSuccess: new Gauge({ name: 'starling_probe_success', help: 'Last result of each synthetic probe (1 ok, 0 failed)', labelNames: ['probe'], registers: r }),
    probeLatency: new Gauge({ name: 'starling_probe_latency_seconds', help: 'Last end-to-end latency of each synthetic probe', labelNames: ['probe'], registers: r }),
    probeRuns: new Counter({ name: 'starling_probe_runs_total', help: 'Synthetic probe runs by result', labelNames: ['probe', 'result'], registers: r }),
    componentState: new Gauge({ name: 'starling_component_state', help: 'Component state (1 for the current state)', labelNames: ['component', 'state'], registers: r }),
    sloBurnRate: new Gauge({ name: 'starling_slo_burn_rate', help: 'Error-budget burn rate by SLO and window', labelNames: ['slo', 'window'], registers: r }),
    sloErrorBudgetRemaining: new Gauge({ name: 'starling_slo_error_budget_remaining', help: 'Share of the error budget left in the SLO period', labelNames: ['slo'], registers: r }),
    readOnly: new Gauge({ name: 'starling_read_only', help: '1 while this node is in read-only mode', registers: r }),
    opsLeader: new Gauge({ name: 'starling_ops_leader', help: '1 while this node runs the ops engine (probes, incidents, alerts); one node per cluster', registers: r }),
    shed: new Counter({ name: 'starling_requests_shed_total', help: 'Requests refused with 503 under pressure, by class and what tripped it', labelNames: ['priority', 'reason'], registers: r }),
    queueWait: new Histogram({
      name: 'starling_request_queue_wait_seconds',
      help: 'Time requests waited in the request queue (http/request-queue.ts), by class and whether they then ran or were refused',
      labelNames: ['priority', 'outcome'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25],
      registers: r,
    }),
    queueLength: new Gauge({ name: 'starling_request_queue_length', help: 'Requests waiting in the request queue now (http/request-queue.ts)', registers: r }),
    queueOverloaded: new Gauge({
      name: 'starling_request_queue_overloaded',
      help: '1 while the event loop has been busy most of the time (overloaded): every request waits at most pressure.congestedWaitMs, newest first (http/request-queue.ts)',
      registers: r,
    }),
    concurrencyLimit: new Gauge({
      name: 'starling_request_concurrency_limit',
      help: 'Requests the request queue lets run at once now: pressure.concurrency, lowered on PostgreSQL while requests running together are slower than alone (http/concurrency-limit.ts)',
      registers: r,
    }),
    admitted: new Gauge({ name: 'starling_admission_fraction', help: 'Share of requests of a class admitted now (1: all; http/admission.ts)', labelNames: ['priority'], registers: r }),
  };
}

/** The statement kind of a SQL string, for a low-cardinality label. */
export function statementKind(sqlText: string): string {
  const m = /^\s*(select|insert|update|delete|with|begin|commit|rollback|savepoint|release|pragma)/i.exec(sqlText);
  return m ? m[1].toLowerCase() : 'other';
}
