/**
 * The operators' API for incidents and scheduled maintenance:
 *
 *   GET    /api/v1/admin/starling/incidents            admin:read   newest first (?limit=, default 50, max 200)
 *   GET    /api/v1/admin/starling/incidents/:id        admin:read
 *   POST   /api/v1/admin/starling/incidents            admin:write  {title, body, status?, impact?, components?}
 *   POST   /api/v1/admin/starling/incidents/:id/updates admin:write {body, status?, impact?}
 *   POST   /api/v1/admin/starling/incidents/:id/resolve admin:write {body?}
 *   GET    /api/v1/admin/starling/maintenances         admin:read   not cancelled, latest first
 *   POST   /api/v1/admin/starling/maintenances         admin:write  {title, body?, components, starts_at, ends_at}
 *   DELETE /api/v1/admin/starling/maintenances/:id     admin:write  cancels it
 *   GET    /api/v1/admin/starling/ops                  admin:read   per-minute figures of the last 6 h, SLOs, components
 *
 * Every change goes to the ops engine's memory first (so it shows on the
 * status page even while the database is down) and is written to the
 * database as soon as it can be. Updates are signed with the admin's username.
 */
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { AppContext } from '../../services/context.js';
import { StarlingError, notFound } from '../../domain/errors.js';
import { isId } from '../../domain/ids.js';
import { COMPONENTS, type ComponentId } from '../../ops/model.js';
import { ALERT_POLICY } from '../../ops/slo.js';
import { INCIDENT_IMPACTS, INCIDENT_STATUSES, OpsInputError } from '../../ops/incidents.js';
import { parse, zLimit } from '../validation.js';
import { requireAdmin } from '../auth.js';

const PREFIX = '/api/v1/admin/starling';

/** `components[]=a&components[]=b`, `["a","b"]`, or "a,b". */
const zComponents = z.preprocess(
  (v) => (v === undefined ? undefined : typeof v === 'string' ? v.split(',').map((s) => s.trim()).filter(Boolean) : v),
  z.array(z.enum(COMPONENTS as unknown as [ComponentId, ...ComponentId[]])),
);
const zStatus = z.enum(INCIDENT_STATUSES as unknown as ['investigating', 'identified', 'monitoring', 'resolved']);
const zImpact = z.enum(INCIDENT_IMPACTS as unknown as ['none', 'minor', 'major', 'critical', 'maintenance']);
const zTime = z.string().refine((s) => Number.isFinite(Date.parse(s)), { message: 'is not a valid time' });

const CreateIncident = z.object({
  title: z.string().trim().min(1).max(200),
  body: z.string().max(10_000).default(''),
  status: zStatus.optional(),
  impact: zImpact.optional(),
  components: zComponents.optional(),
});
const UpdateIncident = z.object({
  body: z.string().trim().min(1).max(10_000),
  status: zStatus.optional(),
  impact: zImpact.optional(),
});
const ResolveIncident = z.object({ body: z.string().max(10_000).optional() });
const CreateMaintenance = z.object({
  title: z.string().trim().min(1).max(200),
  body: z.string().max(10_000).optional(),
  components: zComponents.refine((c) => c.length > 0, { message: 'must name at least one component' }),
  starts_at: zTime,
  ends_at: zTime,
});
const ListQuery = z.object({ limit: zLimit(50, 200) });

function idParam(params: unknown): string {
  const id = (params as { id?: unknown }).id;
  // A malformed id names nothing: 404, as everywhere in the Mastodon API.
  if (!isId(id)) throw notFound();
  return id;
}

function asHttpError(err: unknown): never {
  if (err instanceof OpsInputError) {
    if (err.kind === 'not_found') throw notFound();
    throw new StarlingError('validation', `Validation failed: ${err.message}`);
  }
  throw err;
}

export async function adminOpsRoutes(app: FastifyInstance, { ctx }: { ctx: AppContext }): Promise<void> {
  const ops = () => app.ops;

  app.get(`${PREFIX}/incidents`, async (req) => {
    await requireAdmin(ctx, req, 'admin:read');
    const { limit } = parse(ListQuery, req.query);
    return ops().listIncidents(limit);
  });

  app.get(`${PREFIX}/incidents/:id`, async (req) => {
    await requireAdmin(ctx, req, 'admin:read');
    const incident = ops().getIncident(idParam(req.params));
    if (!incident) throw notFound();
    return incident;
  });

  app.post(`${PREFIX}/incidents`, async (req) => {
    const admin = await requireAdmin(ctx, req, 'admin:write');
    const input = parse(CreateIncident, req.body);
    try {
      return await ops().createIncident({ ...input, body: input.body || input.title, author: admin.account.username });
    } catch (err) {
      asHttpError(err);
    }
  });

  app.post(`${PREFIX}/incidents/:id/updates`, async (req) => {
    const admin = await requireAdmin(ctx, req, 'admin:write');
    const id = idParam(req.params);
    const input = parse(UpdateIncident, req.body);
    try {
      return await ops().updateIncident(id, { ...input, author: admin.account.username });
    } catch (err) {
      asHttpError(err);
    }
  });

  app.post(`${PREFIX}/incidents/:id/resolve`, async (req) => {
    const admin = await requireAdmin(ctx, req, 'admin:write');
    const id = idParam(req.params);
    const input = parse(ResolveIncident, req.body);
    try {
      return await ops().resolveIncident(id, { body: input.body, author: admin.account.username });
    } catch (err) {
      asHttpError(err);
    }
  });

  app.get(`${PREFIX}/maintenances`, async (req) => {
    await requireAdmin(ctx, req, 'admin:read');
    return ops().listMaintenances();
  });

  app.post(`${PREFIX}/maintenances`, async (req) => {
    await requireAdmin(ctx, req, 'admin:write');
    const input = parse(CreateMaintenance, req.body);
    try {
      return await ops().scheduleMaintenance({ title: input.title, body: input.body, components: input.components, startsAt: input.starts_at, endsAt: input.ends_at });
    } catch (err) {
      asHttpError(err);
    }
  });

  app.delete(`${PREFIX}/maintenances/:id`, async (req) => {
    await requireAdmin(ctx, req, 'admin:write');
    const id = idParam(req.params);
    try {
      return await ops().cancelMaintenance(id);
    } catch (err) {
      asHttpError(err);
    }
  });

  /**
   * The operations page's figures, all from this node's memory (no database
   * read beyond the admin check): the last 6 hours minute by minute, the SLOs
   * now, and the components as the status page shows them.
   */
  app.get(`${PREFIX}/ops`, async (req, reply) => {
    await requireAdmin(ctx, req, 'admin:read');
    const slo = app.slo.evaluate();
    const summary = ops().summary();
    reply.header('Cache-Control', 'no-store');
    return {
      generated_at: ctx.now().toISOString(),
      node_id: ctx.config.nodeId,
      minutes: app.opsSeries.minutes(slo),
      slo,
      alert_policy: ALERT_POLICY.map((a) => ({ severity: a.severity, long: a.long, short: a.short, burn: a.burn })),
      latency_threshold_ms: ctx.config.ops.slo.latencyThresholdMs,
      components: summary.components,
      status: summary.status,
      freshness: summary.freshness,
    };
  });
}
