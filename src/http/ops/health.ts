/** Liveness, readiness and Prometheus metrics: what load balancers and scrapers call. */
import type { FastifyInstance } from 'fastify';
import type { AppContext } from '../../services/context.js';
import { checkReadiness } from '../../ops/readiness.js';
import type { OpsEngine } from '../../ops/engine.js';

/** Which node runs the ops engine (ops/leader.ts), as /readyz reports it. */
function opsLeadership(app: FastifyInstance, ctx: AppContext) {
  const engine = app.hasDecorator('ops') ? (app as unknown as { ops: OpsEngine }).ops : null;
  if (!ctx.config.ops.enabled || !engine) return { enabled: false, leader: false, leader_node: null };
  const l = engine.leadership();
  // No election (not started yet, or an engine built without one): this node's engine runs alone.
  if (!l) return { enabled: true, leader: true, leader_node: ctx.config.nodeId, election: 'none' };
  return { enabled: true, leader: l.leading, leader_node: l.leaderNode, election: l.election, since: l.since, losses: l.losses, error: l.error };
}

export async function healthRoutes(app: FastifyInstance, { ctx }: { ctx: AppContext }): Promise<void> {
  // Alive: the process answers. Nothing else is checked, so a dependency outage never gets the process restarted.
  app.get('/healthz', async (_req, reply) => {
    reply.type('text/plain').header('Cache-Control', 'no-store');
    return 'ok';
  });

  // Ready: able to serve (ops/readiness.ts has the rules). A load balancer takes the node out of rotation on a 503.
  // `?require=write` asks the second question too: 503 also while writes cannot be made (for monitoring, or a
  // balancer that routes writes separately). The JSON is the same either way.
  app.get('/readyz', async (req, reply) => {
    const require = (req.query as { require?: unknown }).require;
    if (require !== undefined && require !== 'write') {
      return reply.code(400).send({ error: 'require must be "write" (or left out)' });
    }
    const r = await checkReadiness(ctx);
    reply.header('Cache-Control', 'no-store');
    const ops = opsLeadership(app, ctx);
    if (r.draining) {
      return reply.code(503).send({ status: 'draining', reason: 'this node is shutting down; use another node', writable: false, read_only: r.readOnly, ops });
    }
    const body = {
      checks: r.checks,
      writable: r.writable,
      read_only: r.readOnly,
      database_failing_since: r.databaseFailingSince,
      database_grace_seconds: r.databaseGraceSeconds,
      ops,
    };
    if (!r.ready) {
      const failed = Object.entries({ database: r.checks.database, bus: r.checks.bus }).filter(([, c]) => !c.ok);
      return reply.code(503).send({ status: 'unavailable', reason: failed.map(([name, c]) => `${name}: ${c.error}`).join('; '), ...body });
    }
    // Ready and able to write: read-write. Ready but not writable: reads, caches, streams and the status page are
    // served; writes answer 503 + Retry-After (read-only mode, or the write breaker) until writes work again.
    const mode = r.writable ? 'read-write' : !r.checks.database.ok ? 'database-unreachable' : r.readOnly.active ? 'read-only' : 'writes-failing';
    const serves = r.writable ? 'reads and writes' : 'reads only: writes get 503 until writes work again';
    if (require === 'write' && !r.writable) {
      return reply.code(503).send({ status: 'not_writable', mode, serves, reason: `database writes: ${r.checks.database_write.error}`, ...body });
    }
    return { status: 'ready', mode, serves, ...body };
  });

  app.get('/metrics', async (_req, reply) => {
    reply.type(ctx.metrics.registry.contentType).header('Cache-Control', 'no-store');
    return ctx.metrics.registry.metrics();
  });
}
