/**
 * The Fastify application: body parsers that accept what Mastodon clients
 * send, authentication, rate limits, the error format, and the routes.
 */
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import formbody from '@fastify/formbody';
import multipart from '@fastify/multipart';
import rateLimit from '@fastify/rate-limit';
import { parse as parseQuery } from 'node:querystring';
import { StarlingError } from '../domain/errors.js';
import type { AppContext } from '../services/context.js';
import { authPlugin } from './auth.js';
import { requestScope } from '../services/request-scope.js';
import { clientOf, installPressure } from './pressure.js';
import { installErrorHandler } from './error-handler.js';
import { normaliseFormBody } from './validation.js';
import { mastodonRoutes } from './mastodon/index.js';
import { oauthRoutes } from './oauth/index.js';
import { healthRoutes } from './ops/health.js';
import { adminOpsRoutes } from './ops/admin.js';
import { adminDrRoutes } from './ops/admin-dr.js';
import { OpsEngine, PROBE_HEADER } from '../ops/engine.js';
import { statusRoutes } from './status/index.js';
import { streamingRoutes } from './streaming/index.js';
import { webRoutes } from './web/index.js';
import { StreamingHub } from '../services/streaming.js';
import { SloTracker } from '../ops/slo.js';
import { OpsSeries } from '../ops/ops-series.js';

declare module 'fastify' {
  interface FastifyInstance {
    streaming: StreamingHub;
    /** This node's ops engine: probes, component states, incidents, alerts; the status page's StatusSource. */
    ops: OpsEngine;
    /** This node's SLO tracker: fed by every response, evaluated by the ops engine (which sets the SLO gauges). */
    slo: SloTracker;
    /** Per-minute figures of the last 6 hours for the operations page (GET /api/v1/admin/starling/ops). */
    opsSeries: OpsSeries;
  }
}

export async function buildApp(ctx: AppContext, opts: { ops?: OpsEngine } = {}): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: ctx.log as FastifyBaseLogger,
    bodyLimit: ctx.config.bodyLimit,
    trustProxy: ctx.config.trustProxy,
    genReqId: () => ctx.ids.next(),
    requestIdHeader: false,
    // Clients put arrays in the query as `types[]=a&types[]=b`.
    routerOptions: { querystringParser: (s: string) => normaliseFormBody(parseQuery(s) as Record<string, unknown>), ignoreTrailingSlash: true },
  });
  installErrorHandler(app);
  // Without an engine from startServer (benchmarks), one that never runs: the status page then says "unknown".
  const ops = opts.ops ?? new OpsEngine(ctx);
  app.decorate('ops', ops);

  // JSON: an empty body is an empty object (some clients send Content-Type without a body on POST actions).
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_req, body, done) => {
    const text = String(body).trim();
    if (text === '') return done(null, {});
    try {
      const value = JSON.parse(text);
      if (value === null || typeof value !== 'object' || Array.isArray(value)) {
        return done(new StarlingError('invalid_json', 'Request body must be a JSON object'), undefined);
      }
      done(null, value);
    } catch {
      done(new StarlingError('invalid_json'), undefined);
    }
  });
  // No API route reads plain text: a text/plain body is a 415, not a string handed to a JSON schema.
  app.removeContentTypeParser('text/plain');
  await app.register(formbody, { parser: (s) => normaliseFormBody(parseQuery(s) as Record<string, unknown>) });
  await app.register(multipart, { attachFieldsToBody: 'keyValues', limits: { fileSize: ctx.config.bodyLimit, fields: 200, files: 4 } });
  app.addHook('preValidation', async (req) => {
    if (req.isMultipart() && req.body && typeof req.body === 'object') {
      req.body = normaliseFormBody(req.body as Record<string, unknown>);
    }
  });

  app.addHook('onSend', async (_req, reply) => {
    reply.header('X-Content-Type-Options', 'nosniff');
    reply.header('Referrer-Policy', 'same-origin');
  });

  const slo = new SloTracker(ctx.config.ops.slo, () => ctx.now().getTime(), { metrics: ctx.metrics });
  app.decorate('slo', slo);
  const series = new OpsSeries({ now: () => ctx.now().getTime(), slo: () => slo.evaluate(), probeLatency: () => ops.latency('posting') });
  app.decorate('opsSeries', series);
  series.start();
  app.addHook('onClose', async () => series.stop());

  app.addHook('onResponse', async (req, reply) => {
    // The route pattern, not the URL, keeps the label set small.
    const labels = { method: req.method, route: req.routeOptions.url ?? 'unmatched', status: String(reply.statusCode) };
    const seconds = reply.elapsedTime / 1000;
    // The ops engine's own requests are probes, not users: they have their own series (starling_probe_*) and are
    // left out of the request series and the SLOs, so a canary cannot hide, or invent, what users see.
    if (ops.isProbe(req.headers[PROBE_HEADER])) return;
    ctx.metrics.httpRequests.inc(labels);
    ops.recordRequest(req.method, labels.route, reply.statusCode, req.headers[PROBE_HEADER]);
    ctx.metrics.httpDuration.observe(labels, seconds);
    slo.record(labels.route, reply.statusCode, seconds);
    series.record(labels.route, reply.statusCode, reply.elapsedTime);
  });

  // A WebSocket upgrade refused before its route ran (a bad token fails the auth hook first) is answered over the
  // raw socket, which nothing closes afterwards (@fastify/websocket only closes those it saw): close it here, or
  // every refused upgrade leaves a half-open socket behind for good.
  app.addHook('onResponse', async (req) => {
    if (!req.raw.headers.upgrade || req.raw.headers.upgrade.toLowerCase() !== 'websocket') return;
    const socket = req.raw.socket;
    if (socket && !socket.destroyed) socket.destroy();
  });

  // Read-only mode and load shedding decide before authentication, parsing and rate limiting do any work.
  await installPressure(app, ctx, ops);
  await app.register(authPlugin, { ctx });
  // The signed-in account, for the writer's read fences (store/replica.ts). Entered here rather than on request:
  // body parsing runs on the socket's events, outside a context entered earlier.
  app.addHook('preHandler', (req, _reply, done) => requestScope.run({ accountId: req.auth?.accountId ?? null }, done));

  if (ctx.config.rateLimit.max > 0) {
    await app.register(rateLimit, {
      global: true,
      max: ctx.config.rateLimit.max,
      timeWindow: ctx.config.rateLimit.windowSeconds * 1000,
      // Per token when there is one (a person on many IPs is one person), else per IP.
      keyGenerator: clientOf,
      // By path: a probe's query string or trailing slash reaches the same route and must not be limited either.
      allowList: (req) => {
        const path = req.url.split('?', 1)[0].replace(/\/+$/, '');
        // Health checks and scrapes must never be rate limited: monitoring that is shed sees nothing.
        // The ops engine's own probes neither: a canary that gets rate limited reports an outage that is not there.
        return ['/health', '/healthz', '/readyz', '/metrics'].includes(path) || path.startsWith('/api/v1/streaming/health') || ops.isProbe(req.headers[PROBE_HEADER]);
      },
      errorResponseBuilder: (_req, context) => {
        const err = new StarlingError('rate_limited');
        (err as unknown as { statusCode: number }).statusCode = context.statusCode;
        return err;
      },
      addHeaders: { 'x-ratelimit-limit': true, 'x-ratelimit-remaining': true, 'x-ratelimit-reset': true, 'retry-after': true },
    });
  }

  // The hub lives as long as the app: closing the app hangs up every stream.
  const hub = new StreamingHub(ctx);
  app.decorate('streaming', hub);
  app.addHook('onClose', async () => hub.close());
  await app.register(streamingRoutes, { ctx, hub });
  await app.register(healthRoutes, { ctx });
  await app.register(adminOpsRoutes, { ctx });
  await app.register(adminDrRoutes, { ctx });
  await app.register(statusRoutes, { ctx });
  await app.register(oauthRoutes, { ctx });
  await app.register(mastodonRoutes, { ctx });
  await app.register(webRoutes, { ctx });
  return app;
}
