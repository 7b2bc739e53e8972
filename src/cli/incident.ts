/**
 * `starling incident …`: operators annotate the status page from a shell.
 * Works directly on the database (a running node picks the change up within
 * a probe round or two) and sends the alerts itself, waiting for them to be
 * delivered before it exits.
 *
 *   incident list
 *   incident create --title T --body B [--status S] [--impact I] [--components a,b] [--author NAME]
 *   incident update ID --body B [--status S] [--impact I] [--author NAME]
 *   incident resolve ID [--body B] [--author NAME]
 *   incident maintenance --title T --starts ISO --ends ISO --components a,b [--body B]
 *   incident cancel-maintenance ID
 */
import { parseArgs } from 'node:util';
import { userInfo } from 'node:os';
import type { Config } from '../config.js';
import { openContext, createLogger } from '../server.js';
import { COMPONENTS, COMPONENT_NAMES, type ComponentId, type ComponentState, type ComponentView, type IncidentImpact, type IncidentStatus } from '../ops/model.js';
import {
  INCIDENT_IMPACTS,
  INCIDENT_STATUSES,
  IncidentBook,
  OpsInputError,
  loadIncidents,
  loadMaintenances,
  saveIncident,
  saveMaintenance,
  type IncidentEvent,
} from '../ops/incidents.js';
import { AlertSender, incidentAlert } from '../ops/alerts.js';

export const INCIDENT_USAGE = `  incident list         Unresolved and recent incidents, and upcoming maintenance
  incident create       Open an incident on the status page (alerts are sent)
      --title T --body B [--status investigating|identified|monitoring|resolved]
      [--impact none|minor|major|critical|maintenance] [--components api,posting,…] [--author NAME]
  incident update ID    Add an update: --body B [--status S] [--impact I] [--author NAME]
  incident resolve ID   Resolve it [--body B] [--author NAME]
  incident maintenance  Schedule maintenance: --title T --starts ISO --ends ISO --components a,b [--body B]
  incident cancel-maintenance ID
                        Components: ${COMPONENTS.join(', ')}
`;

const OPTIONS = {
  port: { type: 'string' },
  host: { type: 'string' },
  'data-dir': { type: 'string' },
  config: { type: 'string' },
  'node-id': { type: 'string' },
  title: { type: 'string' },
  body: { type: 'string' },
  status: { type: 'string' },
  impact: { type: 'string' },
  components: { type: 'string' },
  author: { type: 'string' },
  starts: { type: 'string' },
  ends: { type: 'string' },
} as const;

function oneOf<T extends string>(value: string | undefined, allowed: readonly T[], flag: string): T | undefined {
  if (value === undefined) return undefined;
  if (!(allowed as readonly string[]).includes(value)) throw new Error(`--${flag} must be one of: ${allowed.join(', ')}`);
  return value as T;
}

function components(value: string | undefined): ComponentId[] | undefined {
  if (value === undefined) return undefined;
  const list = value
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const bad = list.filter((c) => !(COMPONENTS as readonly string[]).includes(c));
  if (bad.length) throw new Error(`unknown component${bad.length > 1 ? 's' : ''}: ${bad.join(', ')} (known: ${COMPONENTS.join(', ')})`);
  return list as ComponentId[];
}

export async function incidentCommand(args: string[], configFrom: (values: Record<string, string | boolean | undefined>) => Config): Promise<number> {
  const [sub, ...rest] = args;
  const { values, positionals } = parseArgs({ args: rest, options: OPTIONS, strict: true, allowPositionals: true });
  const config = configFrom(values);
  // No job worker here: this process only writes incidents; a node runs the jobs.
  const { ctx, database, worker } = await openContext({ ...config, runJobs: false }, createLogger({ ...config, logLevel: 'warn' }));
  const author = values.author ?? userInfo().username ?? 'operator';
  const now = Date.now();
  const book = new IncidentBook({ newId: () => ctx.ids.next(), resolveAfterMs: 0 });
  const alerts = new AlertSender(config.ops.alertWebhooks, { log: ctx.log, maxAttempts: 4 });
  const idArg = () => {
    const id = positionals[0];
    if (!id) throw new Error(`usage: starling incident ${sub} ID …`);
    return id;
  };
  const loadOne = async (id: string) => {
    const [i] = await loadIncidents(ctx.db, { ids: [id] });
    if (!i || i.id !== id) throw new Error(`no incident ${id}`);
    book.mergeIncident(i);
  };
  const alert = async (e: IncidentEvent) => {
    const maintenances = await loadMaintenances(ctx.db, new Date(now).toISOString());
    for (const m of maintenances) book.mergeMaintenance(m);
    if (book.coveredByMaintenance(e.incident.components, now)) {
      console.log('alerts silenced: a maintenance in progress covers every affected component');
      return;
    }
    const rows = await ctx.db.selectFrom('component_status').selectAll().execute();
    const views: ComponentView[] = COMPONENTS.map((id) => {
      const r = rows.find((x) => x.component === id);
      return { id, name: COMPONENT_NAMES[id], status: (r?.status ?? 'operational') as ComponentState, since: r?.since ?? new Date(now).toISOString(), updated_at: r?.updated_at ?? new Date(now).toISOString(), reason: r?.reason ?? null };
    });
    alerts.send(incidentAlert(e, views, `${config.publicUrl}/status`, new Date(now).toISOString()));
    if (alerts.webhookCount > 0) {
      const delivered = await alerts.flush(30_000);
      console.log(delivered && alerts.stats.failed === 0 ? `alerted ${alerts.webhookCount} webhook(s)` : `warning: alerts not delivered to every webhook (${alerts.stats.failed} failed)`);
    }
  };

  try {
    switch (sub) {
      case 'list': {
        const incidents = await loadIncidents(ctx.db, { resolvedLimit: 10 });
        for (const i of incidents) console.log(`${i.id}  ${i.status.padEnd(13)} ${i.impact.padEnd(9)} ${i.createdAt}  ${i.title}${i.components.length ? ` [${i.components.join(', ')}]` : ''}`);
        const maintenances = (await loadMaintenances(ctx.db, new Date(now).toISOString())).filter((m) => m.cancelledAt === null);
        for (const m of maintenances) console.log(`${m.id}  maintenance   ${m.startsAt} → ${m.endsAt}  ${m.title} [${m.components.join(', ')}]`);
        if (incidents.length === 0 && maintenances.length === 0) console.log('no incidents and no upcoming maintenance');
        return 0;
      }
      case 'create': {
        if (!values.title) throw new Error('--title is required');
        const e = book.create(
          {
            title: values.title,
            body: values.body ?? values.title,
            status: oneOf<IncidentStatus>(values.status, INCIDENT_STATUSES, 'status'),
            impact: oneOf<IncidentImpact>(values.impact, INCIDENT_IMPACTS, 'impact'),
            components: components(values.components),
            author,
          },
          now,
        );
        await ctx.write((trx) => saveIncident(trx, book.get(e.incident.id)!));
        console.log(`created incident ${e.incident.id}: ${e.incident.name} (${e.incident.status}, ${e.incident.impact})`);
        await alert(e);
        return 0;
      }
      case 'update':
      case 'resolve': {
        const id = idArg();
        await loadOne(id);
        const e =
          sub === 'resolve'
            ? book.resolve(id, { body: values.body, author }, now)
            : book.update(
                id,
                {
                  body: values.body ?? '',
                  status: oneOf<IncidentStatus>(values.status, INCIDENT_STATUSES, 'status'),
                  impact: oneOf<IncidentImpact>(values.impact, INCIDENT_IMPACTS, 'impact'),
                  author,
                },
                now,
              );
        await ctx.write((trx) => saveIncident(trx, book.get(id)!));
        console.log(`${sub === 'resolve' ? 'resolved' : 'updated'} incident ${id}: ${e.incident.name} (${e.incident.status})`);
        await alert(e);
        return 0;
      }
      case 'maintenance': {
        if (!values.title || !values.starts || !values.ends || !values.components) throw new Error('--title, --starts, --ends and --components are required');
        const m = book.scheduleMaintenance({ title: values.title, body: values.body, components: components(values.components)!, startsAt: values.starts, endsAt: values.ends }, now);
        await ctx.write((trx) => saveMaintenance(trx, m));
        console.log(`scheduled maintenance ${m.id}: ${m.title}, ${m.startsAt} → ${m.endsAt} [${m.components.join(', ')}]`);
        return 0;
      }
      case 'cancel-maintenance': {
        const id = idArg();
        for (const m of await loadMaintenances(ctx.db, '0000')) book.mergeMaintenance(m);
        const m = book.cancelMaintenance(id, now);
        await ctx.write((trx) => saveMaintenance(trx, m));
        console.log(`cancelled maintenance ${id}: ${m.title}`);
        return 0;
      }
      default:
        throw new Error(`usage: starling incident list|create|update|resolve|maintenance|cancel-maintenance …\n\n${INCIDENT_USAGE}`);
    }
  } catch (err) {
    if (err instanceof OpsInputError) throw new Error(err.kind === 'not_found' ? `not found: ${positionals[0] ?? ''}` : err.message);
    throw err;
  } finally {
    alerts.stop();
    await worker.stop();
    await database.close();
  }
}
