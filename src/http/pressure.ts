/**
 * Overload protection at the door, before any work is done for a request
 * (these hooks run before authentication, body parsing and rate limiting):
 *
 * - **Read-only mode** (ops/read-only.ts): write methods on the API and OAuth
 *   answer 503 + Retry-After with Mastodon's error JSON while reads go on.
 * - **Load shedding by priority**, measured by @fastify/under-pressure:
 *   - hard limits: above the deferrable thresholds (event-loop delay, heap,
 *     writes waiting for a group commit, queries waiting for a database
 *     connection, background jobs falling behind) every deferrable request
 *     gets a fast 503 + Retry-After; essential ones only above the higher
 *     essential ones (event-loop delay, heap);
 *   - admission (http/admission.ts): deferrable requests are let in by a
 *     fraction that follows event-loop utilisation, and not at all while
 *     essential ones are being turned away or wait in a standing queue;
 *   - waiting (http/request-queue.ts): what is let in runs at once on a quiet
 *     node and otherwise waits in a queue that serves essential requests
 *     first and refuses whoever waited past a short bound, so the requests
 *     served are served about as fast as on a quiet day.
 *   Health, metrics, the status page and the ops engine's probes are never shed.
 *
 * Fairness per token and per IP is @fastify/rate-limit's job (http/app.ts).
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import underPressure from '@fastify/under-pressure';
import { getHeapStatistics } from 'node:v8';
import { performance } from 'node:perf_hooks';
import { Admission } from './admission.js';
import { RequestQueue } from './request-queue.js';
import { ERRORS } from '../domain/errors.js';
import type { AppContext } from '../services/context.js';
import type { OpsEngine } from '../ops/engine.js';
import { PROBE_HEADER } from '../ops/probes.js';
import { sha256 } from '../services/auth.js';
import { errorBody } from './error-page.js';

export type Priority = 'exempt' | 'essential' | 'deferrable';

/**
 * Loop utilisation (averaged over ~0.3 s) from which the node counts as overloaded. On the bench's 2-core machine a
 * node at 3× its capacity averaged 0.68–0.95 (its loop still idles between the group commits and the refusals),
 * and one a third loaded beside app bursts 0.3–0.79, mostly below 0.7 (docs/RELIABILITY.md item 30).
 */
const OVERLOADED_UTILISATION = 0.75;

const WRITE_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

const DEFERRABLE: RegExp[] = [
  /^\/api\/v2\/search/,
  /^\/api\/v1\/accounts\/search/,
  /^\/api\/v1\/trends/,
  /^\/api\/v1\/timelines\/(public|tag\/)/,
  // New stream connections (an open stream is not affected); the streaming health check is exempt below.
  /^\/api\/v1\/streaming(?!\/health)/,
  // Account lists and exports: nice to have, heavy to page.
  /^\/api\/v1\/accounts\/[^/]+\/(followers|following)/,
  /^\/api\/v1\/(blocks|mutes|followed_tags|follow_requests)$/,
  /^\/api\/v1\/instance\/peers/,
  /^\/api\/v1\/directory/,
  /^\/api\/v1\/(favourites|bookmarks)$/,
  /\/export/,
];

const EXEMPT: RegExp[] = [/^\/(health|healthz|readyz|metrics)$/, /^\/api\/v1\/streaming\/health$/, /^\/status(\/|$)/, /^\/api\/v1\/admin\/starling\//];

const pathOf = (url: string) => url.split('?', 1)[0].replace(/\/+$/, '') || '/';

/** The class of a request; essential by default (posting, home, notifications, sign-in, the web app, the rest). */
export function priorityOf(method: string, url: string): Priority {
  const path = pathOf(url);
  if (EXEMPT.some((r) => r.test(path))) return 'exempt';
  if (method === 'GET' && DEFERRABLE.some((r) => r.test(path))) return 'deferrable';
  return 'essential';
}

/**
 * Writes refused in read-only mode: every write method on the API and OAuth (signing in issues a token, a row:
 * it cannot work without writes either; a client already signed in keeps reading, as checking a token is a
 * read). The operators' ops API stays open: the ops engine keeps incidents in memory when the database cannot
 * take them.
 */
export function isReadOnlyRefused(method: string, url: string): boolean {
  if (!WRITE_METHODS.has(method)) return false;
  const path = pathOf(url);
  if (path.startsWith('/api/v1/admin/starling/')) return false;
  return path.startsWith('/api/') || path.startsWith('/oauth/');
}

/** What a refused write is told: posting (and editing a post), signing in or up, or any other change. */
export function readOnlyMessage(method: string, url: string): string {
  const path = pathOf(url);
  if (/^\/api\/v1\/statuses(\/[^/]+)?$/.test(path) && method !== 'DELETE') return ERRORS.read_only.message;
  if (path.startsWith('/oauth/') || (method === 'POST' && (path === '/api/v1/accounts' || path === '/api/v1/apps'))) return ERRORS.read_only_sign_in.message;
  return ERRORS.read_only_change.message;
}

const clients = new WeakMap<FastifyRequest, string>();

/**
 * Who a request is from, for fairness (the request queue's share per client, the rate limiter): its token when it
 * has one (a person on many addresses is one client), else its address (behind a load balancer, `trustProxy`
 * makes that the client's, not the balancer's). Hashed: the rate limiter keeps its keys for a whole window. Once
 * per request: both ask.
 */
export function clientOf(req: FastifyRequest): string {
  let client = clients.get(req);
  if (client === undefined) {
    client = req.headers.authorization ? `t:${sha256(req.headers.authorization).slice(0, 24)}` : `ip:${req.ip}`;
    clients.set(req, client);
  }
  return client;
}

/** 503 + Retry-After with Mastodon's error JSON (a page to a browser: the sign-in form, http/error-page.ts). */
function refuse(req: FastifyRequest, reply: FastifyReply, message: string, retryAfter: number) {
  reply.code(503).header('Retry-After', String(retryAfter)).header('Cache-Control', 'no-store');
  return errorBody(req, reply, { error: message });
}

export async function installPressure(app: FastifyInstance, ctx: AppContext, ops: OpsEngine): Promise<void> {
  app.addHook('onRequest', async (req, reply) => {
    if (!ctx.writeGuard.readOnly || !isReadOnlyRefused(req.method, req.url)) return;
    return reply.send(refuse(req, reply, readOnlyMessage(req.method, req.url), ctx.config.readOnly.retryAfterSeconds));
  });

  const p = ctx.config.pressure;
  if (!p.enabled) return;
  const heapLimit = getHeapStatistics().heap_size_limit;
  const deferrableHeap = p.deferrable.maxHeapUsedBytes || Math.floor(heapLimit * 0.85);
  const essentialHeap = p.essential.maxHeapUsedBytes || Math.floor(heapLimit * 0.95);
  const maxQueue = p.deferrable.maxWriteQueue;
  const maxPoolWaitMs = p.deferrable.maxDbPoolWaitMs;
  const maxJobLagMs = p.deferrable.maxJobLagSeconds * 1000;
  let shed = 0;
  // under-pressure's event-loop delay is the mean over the interval it last measured, and its histogram runs from
  // registration: just after `listen` the figure describes the node's start (warm-up holds the loop for up to its
  // budget), which is not load. Shedding on it turned a node's first deferrable requests away just after /readyz
  // said ready (test/integration/pressure-start.test.ts). Three intervals: the one that held the start, the next
  // (the histogram's own timer may record the start's long tick only after under-pressure reset it), and a margin
  // for a timer that fires late.
  let startingUntil = Infinity;
  const starting = () => performance.now() < startingUntil;
  app.addHook('onListen', async () => {
    startingUntil = performance.now() + 3 * p.sampleIntervalMs;
  });
  const refused = (req: FastifyRequest, reply: FastifyReply, type: string, value: number | undefined, priority: Priority) => {
    shed++;
    ctx.metrics.shed.inc({ priority, reason: type });
    if (shed % 1000 === 1) req.log.warn({ type, value, priority, shed }, 'shedding load');
    return refuse(req, reply, ERRORS.overloaded.message, p.retryAfterSeconds);
  };
  await app.register(underPressure, {
    sampleInterval: p.sampleIntervalMs,
    eventLoopUtilizationMode: 'interval',
    maxEventLoopDelay: p.deferrable.maxEventLoopDelayMs,
    maxHeapUsedBytes: deferrableHeap,
    retryAfter: p.retryAfterSeconds,
    // Work piling up behind the request queue, as the custom check: writes waiting for a group commit or queries
    // for a pool connection (the database is the bottleneck), or background jobs falling behind (fan-out: home
    // timelines go stale). Each sheds deferrable requests only: essential ones need the same database.
    healthCheck: async () =>
      (maxQueue === 0 || ctx.writeGuard.queued <= maxQueue) &&
      (maxPoolWaitMs === 0 || ctx.waiting.dbPoolWaitMs() <= maxPoolWaitMs) &&
      (maxJobLagMs === 0 || ctx.waiting.jobLagMs <= maxJobLagMs),
    healthCheckInterval: Math.max(50, p.sampleIntervalMs),
    // A value returned is sent by under-pressure (its types say void; its code sends what is returned).
    pressureHandler: ((req: FastifyRequest, reply: FastifyReply, type: string, value: number | undefined) => {
      const priority = priorityOf(req.method, req.url);
      if (priority === 'exempt' || ops.isProbe(req.headers[PROBE_HEADER])) return undefined;
      if (type === 'eventLoopDelay' && starting()) return undefined;
      if (priority === 'essential') {
        // Shed last: only above the essential limits, whichever of under-pressure's checks fired first (the
        // writer's own bound covers a write backlog). An unknown delay (Infinity: no timer fired in the interval)
        // is not counted against essential requests; its size is unknown.
        const { heapUsed, eventLoopDelay } = app.memoryUsage();
        const over =
          (p.essential.maxEventLoopDelayMs > 0 && Number.isFinite(eventLoopDelay) && eventLoopDelay > p.essential.maxEventLoopDelayMs) ||
          heapUsed > essentialHeap;
        if (!over) return undefined;
      }
      // Deferrable: any pressure under-pressure reports, Infinity included (the loop was blocked throughout).
      return refused(req, reply, type, value, priority);
    }) as unknown as (req: FastifyRequest, reply: FastifyReply, type: string, value: number | undefined) => void,
  });

  const onSqlite = ctx.config.databaseUrl === undefined;
  const queue = new RequestQueue({
    maxWaitMs: { essential: p.essential.maxWaitMs, deferrable: p.deferrable.maxWaitMs },
    congestedWaitMs: p.congestedWaitMs,
    concurrency: p.concurrency,
    // PostgreSQL: the requests running wait for the database together; SQLite runs a read to its end in one turn.
    adaptive: !onSqlite,
    // A bound so memory is bounded; at any rate it sheds, this many waiters are never reached before the wait bound.
    maxQueued: 1000,
    maxPerClient: p.maxPerClient,
    // One SQLite handler or a handful of PostgreSQL ones per turn before the rest queue (ms).
    turnBudgetMs: 2,
    burstWaitMs: p.burstWaitMs,
    // Calm as of the last sample, and the sampler's timer is not overdue: a loop held up (a flood being read, a
    // process stopped and resumed) is not calm, whatever the last sample said.
    calm: () => calm && performance.now() - sampledAt < 2 * p.sampleIntervalMs,
    overloaded: () => overloaded,
  });
  // Essential requests refused for waiting since the last sample, and whether the queue is standing: either means
  // essential work is turned away, so deferrable work and background jobs give way.
  let essentialWaitRefusals = 0;
  let pressed = false;
  // Calm: of late the loop was below the utilisation at which deferrable requests start to be turned away, it kept
  // time, and no essential request was turned away. A burst on such a node is served, not shed (http/request-queue.ts).
  let calm = false;
  let recentUtilisation = 0;
  // Overloaded: the loop was busy most of the last few samples. Every request then waits at most the congested
  // bound, newest first, even just after the queue emptied. Without it, at 3× capacity on SQLite (bench overload),
  // the queue emptied often enough that the essential bound (15 ms) kept coming back, and the served p99 inside the
  // node sat at that bound, 1.5–2.8× the unloaded p99 (docs/RELIABILITY.md item 30). SQLite only: there the loop is
  // what requests wait for, and a busy loop is the node at its limit. On PostgreSQL they wait for the database (the
  // adaptive limit's job), a 5 ms bound refuses requests whose service alone takes 50–100 ms, and the overload bench
  // served 72–73 % of the home timelines offered with it against 79–84 % without.
  let overloaded = false;
  let sampledAt = 0;
  const deferrable = new Admission({ targetUtilisation: p.deferrable.targetUtilisation, targetDelayMs: p.deferrable.targetDelayMs, floor: 0 });
  let elu = performance.eventLoopUtilization();
  let sampler: NodeJS.Timeout | undefined;
  // From when the app is ready: the busy seconds of starting (migrations, compiling) are not load to shed.
  app.addHook('onReady', async () => {
    elu = performance.eventLoopUtilization();
    sampledAt = performance.now();
    // A node that has just started (warmed up, nothing queued) is calm until its first sample says otherwise.
    calm = true;
    sampler = setInterval(sample, p.sampleIntervalMs);
    sampler.unref();
  });
  app.addHook('onClose', async () => clearInterval(sampler));
  const sample = () => {
    const now = performance.eventLoopUtilization();
    const utilisation = performance.eventLoopUtilization(now, elu).utilization;
    elu = now;
    // under-pressure's delay (NaN → Infinity when no timer fired in the interval: the loop was blocked throughout).
    const delayMs = starting() ? 0 : app.memoryUsage().eventLoopDelay;
    deferrable.update({ utilisation, delayMs: Number.isFinite(delayMs) ? delayMs : Number.MAX_VALUE });
    // A calm node's queue may stand a little while it serves a burst: that is not pressure.
    pressed = essentialWaitRefusals > 0 || (queue.congested() && !calm);
    // Utilisation averaged over ~0.3 s: a burst is a spike, load is not (the queue sees a load that starts at
    // once: more waiting than may run is not a burst). A timer this late means the loop was held (a frozen
    // process counts its stop as idle time).
    recentUtilisation = 0.7 * recentUtilisation + 0.3 * utilisation;
    const t = performance.now();
    const held = t - sampledAt > 2 * p.sampleIntervalMs;
    sampledAt = t;
    calm = !pressed && !held && recentUtilisation < p.deferrable.targetUtilisation;
    overloaded = onSqlite && recentUtilisation >= OVERLOADED_UTILISATION;
    essentialWaitRefusals = 0;
    ctx.lifecycle.busy = pressed;
    ctx.metrics.queueLength.set(queue.length);
    ctx.metrics.queueOverloaded.set(overloaded ? 1 : 0);
    ctx.metrics.concurrencyLimit.set(queue.concurrency);
    ctx.metrics.admitted.set({ priority: 'deferrable' }, pressed ? 0 : deferrable.fraction);
  };

  app.addHook('onRequest', async (req, reply) => {
    const priority = priorityOf(req.method, req.url);
    if (priority === 'exempt' || ops.isProbe(req.headers[PROBE_HEADER])) return;
    if (priority === 'deferrable' && (pressed || !deferrable.admit())) return reply.send(refused(req, reply, 'admission', deferrable.fraction, priority));
    const client = clientOf(req);
    // Gone: no socket, or a closed one. Injected requests (tests, benches) have a socket without `destroyed`: not gone.
    const entered = queue.enter(priority, client, () => !req.raw.socket || req.raw.socket.destroyed === true);
    const ticket = entered instanceof Promise ? await entered : entered;
    if (ticket.queued) ctx.metrics.queueWait.observe({ priority, outcome: ticket.run ? 'run' : 'refused' }, ticket.waitedMs / 1000);
    // One client over its share says nothing of the node's load: not counted as pressure.
    if (ticket.overShare) return reply.send(refused(req, reply, 'client_share', undefined, priority));
    if (!ticket.run) {
      if (priority === 'essential') essentialWaitRefusals++;
      return reply.send(refused(req, reply, 'queue', ticket.waitedMs, priority));
    }
    // 'close' comes once the answer is sent or the connection is gone, whichever way the request ends.
    const started = performance.now();
    const alone = queue.running === 1;
    reply.raw.once('close', () => queue.done(client, { ms: performance.now() - started, alone }));
  });
}
