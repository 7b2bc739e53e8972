/**
 * Overload protection at the door, before any work is done for a request
 * (these hooks run before authentication, body parsing and rate limiting):
 *
 * - **Read-only mode** (ops/read-only.ts): write methods on the API and OAuth
 *   answer 503 + Retry-After with Mastodon's error JSON while reads go on.
 * - **Load shedding by priority**, measured by @fastify/under-pressure:
 *   - hard limits: above the deferrable thresholds (event-loop delay, heap,
 *     writes waiting for a group commit) every deferrable request gets a fast
 *     503 + Retry-After; essential ones only above the higher essential ones;
 *   - waiting (http/admission.ts TurnAge): a request read behind others in
 *     the same turn of the event loop is refused once that turn is older than
 *     its class's bound, so no admitted request waits long behind a crowd;
 *   - admission (http/admission.ts): below those limits, each class is let in
 *     by a fraction that follows event-loop utilisation, deferrable at a lower
 *     target than essential, and no deferrable request at all while essential
 *     ones are being turned away. This keeps the loop near its target, so the
 *     requests admitted are served about as fast as on a quiet day.
 *   Health, metrics, the status page and the ops engine's probes are never shed.
 *
 * Fairness per token and per IP is @fastify/rate-limit's job (http/app.ts).
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import underPressure from '@fastify/under-pressure';
import { getHeapStatistics } from 'node:v8';
import { performance } from 'node:perf_hooks';
import { Admission, TurnAge } from './admission.js';
import { ERRORS } from '../domain/errors.js';
import type { AppContext } from '../services/context.js';
import type { OpsEngine } from '../ops/engine.js';
import { PROBE_HEADER } from '../ops/probes.js';

export type Priority = 'exempt' | 'essential' | 'deferrable';

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

function refuse(reply: FastifyReply, message: string, retryAfter: number) {
  reply.code(503).header('Retry-After', String(retryAfter)).header('Cache-Control', 'no-store');
  return { error: message };
}

export async function installPressure(app: FastifyInstance, ctx: AppContext, ops: OpsEngine): Promise<void> {
  app.addHook('onRequest', async (req, reply) => {
    if (!ctx.writeGuard.readOnly || !isReadOnlyRefused(req.method, req.url)) return;
    return reply.send(refuse(reply, ERRORS.read_only.message, ctx.config.readOnly.retryAfterSeconds));
  });

  const p = ctx.config.pressure;
  if (!p.enabled) return;
  const heapLimit = getHeapStatistics().heap_size_limit;
  const deferrableHeap = p.deferrable.maxHeapUsedBytes || Math.floor(heapLimit * 0.85);
  const essentialHeap = p.essential.maxHeapUsedBytes || Math.floor(heapLimit * 0.95);
  const maxQueue = p.deferrable.maxWriteQueue;
  let shed = 0;
  const refused = (req: FastifyRequest, reply: FastifyReply, type: string, value: number | undefined, priority: Priority) => {
    shed++;
    ctx.metrics.shed.inc({ priority, reason: type });
    if (shed % 1000 === 1) req.log.warn({ type, value, priority, shed }, 'shedding load');
    return refuse(reply, ERRORS.overloaded.message, p.retryAfterSeconds);
  };
  await app.register(underPressure, {
    sampleInterval: p.sampleIntervalMs,
    eventLoopUtilizationMode: 'interval',
    maxEventLoopDelay: p.deferrable.maxEventLoopDelayMs,
    maxHeapUsedBytes: deferrableHeap,
    retryAfter: p.retryAfterSeconds,
    // The writer's queue as the custom check: writes piling up means the database is the bottleneck.
    healthCheck: async () => maxQueue === 0 || ctx.writeGuard.queued <= maxQueue,
    healthCheckInterval: Math.max(50, p.sampleIntervalMs),
    // A value returned is sent by under-pressure (its types say void; its code sends what is returned).
    pressureHandler: ((req: FastifyRequest, reply: FastifyReply, type: string, value: number | undefined) => {
      const priority = priorityOf(req.method, req.url);
      if (priority === 'exempt' || ops.isProbe(req.headers[PROBE_HEADER])) return undefined;
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

  const turn = new TurnAge();
  let essentialWaitRefusals = 0;
  const essential = new Admission({ targetUtilisation: p.essential.targetUtilisation, targetDelayMs: p.essential.targetDelayMs });
  const deferrable = new Admission({ targetUtilisation: p.deferrable.targetUtilisation, targetDelayMs: p.deferrable.targetDelayMs, floor: 0 });
  let elu = performance.eventLoopUtilization();
  let sampler: NodeJS.Timeout | undefined;
  // From when the app is ready: the busy seconds of starting (migrations, compiling) are not load to shed.
  app.addHook('onReady', async () => {
    elu = performance.eventLoopUtilization();
    sampler = setInterval(sample, p.sampleIntervalMs);
    sampler.unref();
  });
  app.addHook('onClose', async () => clearInterval(sampler));
  const sample = () => {
    const now = performance.eventLoopUtilization();
    const utilisation = performance.eventLoopUtilization(now, elu).utilization;
    elu = now;
    // under-pressure's delay (NaN → Infinity when no timer fired in the interval: the loop was blocked throughout).
    const delayMs = app.memoryUsage().eventLoopDelay;
    const sample = { utilisation, delayMs: Number.isFinite(delayMs) ? delayMs : Number.MAX_VALUE };
    essential.update(sample);
    deferrable.update(sample);
    // Busy while essential requests are turned away, by admission or for waiting: background jobs then yield.
    ctx.lifecycle.busy = essential.throttling || essentialWaitRefusals > 0;
    essentialWaitRefusals = 0;
    ctx.metrics.admitted.set({ priority: 'essential' }, essential.fraction);
    ctx.metrics.admitted.set({ priority: 'deferrable' }, essential.throttling ? 0 : deferrable.fraction);
  };

  app.addHook('onRequest', async (req, reply) => {
    const priority = priorityOf(req.method, req.url);
    if (priority === 'exempt' || ops.isProbe(req.headers[PROBE_HEADER])) return;
    const waited = turn.age();
    const maxWait = p[priority].maxWaitMs;
    if (maxWait > 0 && waited > maxWait) {
      if (priority === 'essential') essentialWaitRefusals++;
      return reply.send(refused(req, reply, 'queue', waited, priority));
    }
    if (priority === 'essential') {
      if (!essential.admit()) return reply.send(refused(req, reply, 'admission', essential.fraction, priority));
      return;
    }
    if (essential.throttling || !deferrable.admit()) return reply.send(refused(req, reply, 'admission', deferrable.fraction, priority));
  });
}
