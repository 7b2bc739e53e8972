/**
 * The public status page and its API:
 *
 *   GET  /status                         HTML, no JavaScript, strict CSP
 *   GET  /status/feed.atom               Atom 1.0
 *   GET  /status/api/summary.json        the StatusSummary (Statuspage shape); also /status/api/v2/…
 *   GET  /status/api/{status,components,incidents,incidents/unresolved,
 *        scheduled-maintenances,scheduled-maintenances/upcoming,scheduled-maintenances/active}.json
 *   POST /status/api/subscriptions       {url} → a confirmation request is POSTed to url
 *   GET|POST /status/api/subscriptions/confirm?token=…
 *   DELETE /status/api/subscriptions     {url, secret} or {url, timestamp, signature}
 *
 * The read routes never touch the database: they read the ops engine's
 * in-memory StatusSource, else the last data it gave (or the on-disk snapshot
 * read at startup), else they say "status unknown" — always a 200, never an
 * error. The plugin also keeps the snapshot file and, when configured, the
 * static copy current (`app.statusPage.refresh()` writes at once; a timer
 * catches anything else within a second).
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import type { AppContext } from '../../services/context.js';
import type { StatusSource } from '../../ops/model.js';
import {
  collectPageData,
  renderAtom,
  renderStatusHtml,
  statusDocuments,
  unknownPageData,
  withFreshness,
  type StatusDocuments,
  type StatusPageData,
} from '../../ops/status-render.js';
import { readSnapshot } from '../../ops/snapshot.js';
import { StatusPublisher } from '../../ops/publish.js';
import { confirmSubscription, loadSubscribers, stopSubscriptions, subscribe, unsubscribe } from '../../ops/subscriptions.js';
import { StarlingError } from '../../domain/errors.js';

export interface StatusPageHandle {
  /** What the page shows right now (live, else the last known data marked as a snapshot, else unknown), staleness applied. */
  data(): StatusPageData;
  /** Replaces where live data comes from (the default reads `app.ops`). */
  setSource(source: () => StatusSource | null): void;
  /** Writes the snapshot and the static copy now if the data changed: the ops engine's change hook. Never throws. */
  refresh(): Promise<void>;
  readonly publisher: StatusPublisher;
}

declare module 'fastify' {
  interface FastifyInstance {
    statusPage: StatusPageHandle;
  }
}

export interface StatusRoutesOptions {
  ctx: AppContext;
  /** Where live data comes from; defaults to the `ops` decoration (the ops engine) when there is one. */
  source?: () => StatusSource | null;
  /** How often the plugin checks for changes to write (ms); 0 turns the timer off. */
  publishIntervalMs?: number;
  /** Subscription sign-ups allowed per client address per hour. */
  subscribeLimitPerHour?: number;
}

const CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:";
const CACHE = 'public, max-age=10';

const DOCS: (keyof StatusDocuments)[] = [
  'summary.json',
  'status.json',
  'components.json',
  'incidents.json',
  'incidents/unresolved.json',
  'scheduled-maintenances.json',
  'scheduled-maintenances/upcoming.json',
  'scheduled-maintenances/active.json',
];

async function plugin(app: FastifyInstance, opts: StatusRoutesOptions): Promise<void> {
  const { ctx } = opts;
  const staleAfterMs = ctx.config.ops.staleAfterSeconds * 1000;
  const fromApp = () => (app.hasDecorator('ops') ? ((app as unknown as { ops: StatusSource | null }).ops ?? null) : null);
  let getSource = opts.source ?? fromApp;

  // The last data known, for when the live source is missing or failing: first the snapshot on disk, then whatever the engine last gave.
  let fallback: StatusPageData | null = readSnapshot(ctx.config.dataDir);
  if (fallback) ctx.log.info({ collectedAt: fallback.collectedAt }, 'status page snapshot loaded');
  let lastFailureLog = 0;

  const pageUrl = () => `${ctx.urls.base}/status`;
  const basePath = () => `${new URL(ctx.urls.base).pathname.replace(/\/+$/, '')}/status/`;

  function data(): StatusPageData {
    const now = ctx.now();
    let d: StatusPageData | null = null;
    let source: StatusSource | null = null;
    try {
      source = getSource();
      if (source) {
        const live = collectPageData(source, now, 'live');
        // An engine that has not reported anything yet (just started, or its database failed from the start)
        // knows less than the snapshot saved before: show that, judged by its own age.
        if (live.summary.freshness.last_probe_at === null && fallback) d = null;
        else {
          d = live;
          fallback = { ...live, origin: 'snapshot' };
        }
      }
    } catch (err) {
      if (now.getTime() - lastFailureLog > 60_000) {
        lastFailureLog = now.getTime();
        ctx.log.error({ err }, 'status source failed; serving the last known status');
      }
    }
    d ??= fallback ?? unknownPageData(now, { name: ctx.config.instanceTitle, url: pageUrl() });
    return withFreshness(d, now, staleAfterMs);
  }

  const publisher = new StatusPublisher({ dataDir: ctx.config.dataDir, publishDir: ctx.config.ops.statusPublishDir, log: ctx.log, now: ctx.now });
  const publishing = () => Boolean(ctx.config.ops.statusPublishDir);
  const refresh = async () => {
    try {
      const d = data();
      if (d.origin === 'live' || publishing()) await publisher.offer(d);
    } catch (err) {
      ctx.log.warn({ err }, 'status page not refreshed');
    }
  };

  const handle: StatusPageHandle = {
    data,
    setSource(source) {
      getSource = source;
    },
    refresh,
    publisher,
  };
  app.decorate('statusPage', handle);

  const every = opts.publishIntervalMs ?? 1000;
  const timer = every > 0 ? setInterval(() => void refresh(), every) : null;
  timer?.unref();
  app.addHook('onClose', async () => {
    if (timer) clearInterval(timer);
    await publisher.idle();
    await stopSubscriptions(ctx);
  });
  // Deliveries must reach subscribers even when the incident is the database itself: read them while it answers.
  app.addHook('onReady', async () => {
    void loadSubscribers(ctx);
  });

  const html = (reply: FastifyReply, d: StatusPageData) =>
    reply
      .type('text/html; charset=utf-8')
      .header('Content-Security-Policy', CSP)
      .header('X-Frame-Options', 'DENY')
      .header('Cache-Control', CACHE)
      .send(renderStatusHtml(d, { now: ctx.now(), base: basePath(), mode: 'served' }));

  app.get('/status', async (_req, reply) => html(reply, data()));
  app.get('/status/index.html', async (_req, reply) => html(reply, data()));

  app.get('/status/feed.atom', async (_req, reply) =>
    reply
      .type('application/atom+xml; charset=utf-8')
      .header('Cache-Control', CACHE)
      .header('Access-Control-Allow-Origin', '*')
      .send(renderAtom(data(), { pageUrl: pageUrl(), feedUrl: `${pageUrl()}/feed.atom` })),
  );

  for (const name of DOCS) {
    const handler = async (_req: FastifyRequest, reply: FastifyReply) =>
      reply
        .type('application/json; charset=utf-8')
        .header('Cache-Control', CACHE)
        .header('Access-Control-Allow-Origin', '*')
        .send(JSON.stringify(statusDocuments(data())[name]));
    app.get(`/status/api/${name}`, handler);
    app.get(`/status/api/v2/${name}`, handler);
  }

  // ---- subscriptions (these do use the database: signing up is not part of "stays up")
  const perHour = opts.subscribeLimitPerHour ?? 20;
  const signups = new Map<string, { n: number; resetAt: number }>();
  const limit = (ip: string) => {
    const now = Date.now();
    if (signups.size > 10_000) for (const [k, v] of signups) if (v.resetAt <= now) signups.delete(k);
    const entry = signups.get(ip);
    if (!entry || entry.resetAt <= now) {
      signups.set(ip, { n: 1, resetAt: now + 3600_000 });
      return;
    }
    if (++entry.n > perHour) throw new StarlingError('rate_limited', 'Too many subscription requests; try again later');
  };
  const fields = (req: FastifyRequest): Record<string, unknown> => ({
    ...((req.query as Record<string, unknown> | undefined) ?? {}),
    ...(req.body && typeof req.body === 'object' ? (req.body as Record<string, unknown>) : {}),
  });

  app.post('/status/api/subscriptions', async (req, reply) => {
    limit(req.ip);
    const view = await subscribe(ctx, fields(req).url);
    return reply.code(202).header('Cache-Control', 'no-store').send({ ...view, message: 'A confirmation request was sent to the URL; fetch its confirm_url to start deliveries.' });
  });

  const confirm = async (req: FastifyRequest, reply: FastifyReply) => {
    const view = await confirmSubscription(ctx, fields(req).token);
    return reply.header('Cache-Control', 'no-store').send(view);
  };
  app.get('/status/api/subscriptions/confirm', confirm);
  app.post('/status/api/subscriptions/confirm', confirm);

  app.delete('/status/api/subscriptions', async (req, reply) => {
    const f = fields(req);
    await unsubscribe(ctx, { url: f.url, secret: f.secret, timestamp: f.timestamp === undefined ? undefined : String(f.timestamp), signature: f.signature });
    return reply.header('Cache-Control', 'no-store').send({});
  });
}

export const statusRoutes = fp(plugin, { name: 'starling-status' });
