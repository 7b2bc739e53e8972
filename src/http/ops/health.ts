/** Liveness, readiness and Prometheus metrics: what load balancers and scrapers call. */
import type { FastifyInstance } from 'fastify';
import type { AppContext } from '../../services/context.js';
import { checkReadiness } from '../../ops/readiness.js';

export async function healthRoutes(app: FastifyInstance, { ctx }: { ctx: AppContext }): Promise<void> {
  // Alive: the process answers. Nothing else is checked, so a dependency outage never gets the process restarted.
  app.get('/healthz', async (_req, reply) => {
    reply.type('text/plain').header('Cache-Control', 'no-store');
    return 'ok';
  });

  // Ready: able to serve. A load balancer takes the node out of rotation on a 503.
  app.get('/readyz', async (_req, reply) => {
    const r = await checkReadiness(ctx);
    const failed = Object.entries(r.checks).filter(([, c]) => !c.ok);
    reply.header('Cache-Control', 'no-store');
    if (r.draining) return reply.code(503).send({ status: 'draining', reason: 'this node is shutting down; use another node', read_only: r.readOnly });
    if (failed.length) {
      return reply.code(503).send({ status: 'unavailable', reason: failed.map(([name, c]) => `${name}: ${c.error}`).join('; '), checks: r.checks, read_only: r.readOnly });
    }
    // Read-only is still ready: reads are served; writes answer 503 with Retry-After until writes work again.
    if (r.readOnly.active) return { status: 'ready', mode: 'read-only', serves: 'reads only: writes get 503 until writes work again', read_only: r.readOnly, checks: r.checks };
    return { status: 'ready', mode: 'read-write', read_only: r.readOnly, checks: r.checks };
  });

  app.get('/metrics', async (_req, reply) => {
    reply.type(ctx.metrics.registry.contentType).header('Cache-Control', 'no-store');
    return ctx.metrics.registry.metrics();
  });
}
