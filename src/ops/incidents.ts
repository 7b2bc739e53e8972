/**
 * Incidents and scheduled maintenances, kept in memory (so the status page
 * answers while the database does not) and written to the database when it
 * can be (`dirty` marks what is not yet written).
 *
 * Detection drives one automatic incident per episode: it opens when a
 * component leaves operational ("investigating", with what the checks saw),
 * grows as more components are affected, goes to "monitoring" when every
 * affected component has recovered, and to "resolved" after a quiet period.
 * Operators add updates and open their own incidents; every update is kept
 * with its time and author. The logic here takes the clock as an argument,
 * so it is tested with a fake one.
 */
import type { Kysely, Transaction } from 'kysely';
import type { Database } from '../store/schema.js';
import {
  COMPONENTS,
  COMPONENT_NAMES,
  type ComponentId,
  type ComponentState,
  type IncidentImpact,
  type IncidentStatus,
  type IncidentUpdateView,
  type IncidentView,
  type MaintenanceView,
} from './model.js';
import { severity, worse, type ComponentHealth } from './components.js';

export const INCIDENT_STATUSES: readonly IncidentStatus[] = ['investigating', 'identified', 'monitoring', 'resolved'];
export const INCIDENT_IMPACTS: readonly IncidentImpact[] = ['none', 'minor', 'major', 'critical', 'maintenance'];
export const SYSTEM_AUTHOR = 'system';

export interface Incident {
  id: string;
  title: string;
  status: IncidentStatus;
  impact: IncidentImpact;
  source: IncidentView['source'];
  components: ComponentId[];
  createdAt: string;
  updatedAt: string;
  resolvedAt: string | null;
  /** Oldest first. */
  updates: IncidentUpdateView[];
  /** In memory only: the state each affected component was last reported in, so an update is posted when it gets worse. */
  reported: Partial<Record<ComponentId, ComponentState>>;
}

export interface Maintenance {
  id: string;
  title: string;
  body: string;
  components: ComponentId[];
  startsAt: string;
  endsAt: string;
  createdAt: string;
  cancelledAt: string | null;
}

export type IncidentEventType = 'incident.opened' | 'incident.updated' | 'incident.resolved';

export interface IncidentEvent {
  type: IncidentEventType;
  incident: IncidentView;
  update: IncidentUpdateView;
}

export class OpsInputError extends Error {
  constructor(
    message: string,
    readonly kind: 'not_found' | 'validation' = 'validation',
  ) {
    super(message);
  }
}

const iso = (ms: number) => new Date(ms).toISOString();

export function incidentView(i: Incident): IncidentView {
  return {
    id: i.id,
    name: i.title,
    status: i.status,
    impact: i.impact,
    source: i.source,
    components: [...i.components],
    created_at: i.createdAt,
    updated_at: i.updatedAt,
    resolved_at: i.resolvedAt,
    incident_updates: [...i.updates].reverse(),
  };
}

export function maintenanceStatus(m: Maintenance, now: number): MaintenanceView['status'] {
  if (now < Date.parse(m.startsAt)) return 'scheduled';
  if (now < Date.parse(m.endsAt)) return 'in_progress';
  return 'completed';
}

export function maintenanceView(m: Maintenance, now: number): MaintenanceView {
  return {
    id: m.id,
    name: m.title,
    body: m.body,
    components: [...m.components],
    scheduled_for: m.startsAt,
    scheduled_until: m.endsAt,
    status: maintenanceStatus(m, now),
  };
}

/** Statuspage's impact for the worst component state. */
export function impactOf(state: ComponentState): IncidentImpact {
  switch (state) {
    case 'major_outage':
      return 'critical';
    case 'partial_outage':
      return 'major';
    case 'degraded_performance':
      return 'minor';
    case 'under_maintenance':
      return 'maintenance';
    default:
      return 'none';
  }
}

const IMPACT_RANK: Record<IncidentImpact, number> = { none: 0, maintenance: 0, minor: 1, major: 2, critical: 3 };

function listNames(ids: readonly ComponentId[]): string {
  const names = ids.map((id) => COMPONENT_NAMES[id]);
  if (names.length <= 1) return names[0] ?? 'A component';
  if (names.length <= 3) return `${names.slice(0, -1).join(', ')} and ${names[names.length - 1]}`;
  return `${names.slice(0, 2).join(', ')} and ${names.length - 2} other components`;
}

/** "Posting is failing", "Posting and Timelines are slow". */
export function incidentTitle(affected: readonly Pick<ComponentHealth, 'id' | 'cause'>[]): string {
  const failing = affected.some((c) => c.cause !== 'slow');
  const verb = affected.length === 1 ? 'is' : 'are';
  // Lead with the components users notice: posting first, the database last.
  const order = (id: ComponentId) => COMPONENTS.indexOf(id);
  const ids = [...affected].map((c) => c.id).sort((a, b) => order(a) - order(b));
  return `${listNames(ids)} ${verb} ${failing ? 'failing' : 'slow'}`;
}

const STATE_WORDS: Record<ComponentState, string> = {
  operational: 'working normally',
  degraded_performance: 'slow or degraded',
  partial_outage: 'partly unavailable',
  major_outage: 'unavailable',
  under_maintenance: 'under maintenance',
};

function describe(c: ComponentHealth): string {
  return `${c.name} is ${STATE_WORDS[c.status]}${c.reason ? ` (${c.reason})` : ''}.`;
}

export interface BookOptions {
  /** Makes ids for incidents, updates and maintenances (time-ordered, as every Starling id). */
  newId: () => string;
  /** How long every affected component must stay operational in "monitoring" before the incident resolves. */
  resolveAfterMs: number;
  /** Checks in a row a component must pass to count as recovered (for the words of the update). */
  oksToRecover?: number;
  /** How many resolved incidents to keep in memory for the history section. */
  keepResolved?: number;
}

export interface OperatorIncidentInput {
  title: string;
  status?: IncidentStatus;
  impact?: IncidentImpact;
  components?: ComponentId[];
  body: string;
  author: string;
}

export interface OperatorUpdateInput {
  status?: IncidentStatus;
  body: string;
  author: string;
  impact?: IncidentImpact;
}

export interface MaintenanceInput {
  title: string;
  body?: string;
  components: ComponentId[];
  startsAt: string;
  endsAt: string;
}

/** Appends an update to an incident and moves it to the update's status. Pure apart from mutating `i`. */
export function applyUpdate(i: Incident, u: { id: string; status: IncidentStatus; body: string; author: string }, now: number): IncidentUpdateView {
  const update: IncidentUpdateView = { id: u.id, status: u.status, body: u.body, created_at: iso(now), author: u.author };
  i.updates.push(update);
  i.status = u.status;
  i.updatedAt = update.created_at;
  i.resolvedAt = u.status === 'resolved' ? update.created_at : null;
  return update;
}

export function newOperatorIncident(input: OperatorIncidentInput, ids: { incident: string; update: string }, now: number): Incident {
  const title = input.title.trim();
  if (title === '' || title.length > 200) throw new OpsInputError('title must be 1 to 200 characters');
  if (input.body.length > 10_000) throw new OpsInputError('body is too long (maximum is 10,000 characters)');
  const components = [...new Set(input.components ?? [])];
  const i: Incident = {
    id: ids.incident,
    title,
    status: input.status ?? 'investigating',
    impact: input.impact ?? 'minor',
    source: 'operator',
    components,
    createdAt: iso(now),
    updatedAt: iso(now),
    resolvedAt: null,
    updates: [],
    reported: {},
  };
  applyUpdate(i, { id: ids.update, status: i.status, body: input.body.trim() || title, author: input.author }, now);
  return i;
}

export function validateMaintenance(input: MaintenanceInput): void {
  const title = input.title.trim();
  if (title === '' || title.length > 200) throw new OpsInputError('title must be 1 to 200 characters');
  const s = Date.parse(input.startsAt);
  const e = Date.parse(input.endsAt);
  if (!Number.isFinite(s) || !Number.isFinite(e)) throw new OpsInputError('starts and ends must be ISO-8601 times');
  if (e <= s) throw new OpsInputError('a maintenance must end after it starts');
  if (input.components.length === 0) throw new OpsInputError('a maintenance must name at least one component');
  if ((input.body ?? '').length > 10_000) throw new OpsInputError('body is too long (maximum is 10,000 characters)');
}

export function newMaintenance(input: MaintenanceInput, id: string, now: number): Maintenance {
  validateMaintenance(input);
  return {
    id,
    title: input.title.trim(),
    body: (input.body ?? '').trim(),
    components: [...new Set(input.components)],
    startsAt: new Date(input.startsAt).toISOString(),
    endsAt: new Date(input.endsAt).toISOString(),
    createdAt: iso(now),
    cancelledAt: null,
  };
}

export class IncidentBook {
  readonly incidents = new Map<string, Incident>();
  readonly maintenances = new Map<string, Maintenance>();
  /** Incidents and maintenances changed in memory and not yet written. */
  readonly dirtyIncidents = new Set<string>();
  readonly dirtyMaintenances = new Set<string>();
  private readonly keepResolved: number;

  constructor(private readonly opts: BookOptions) {
    this.keepResolved = opts.keepResolved ?? 100;
  }

  /** Unresolved incidents, newest first. */
  unresolved(): Incident[] {
    return [...this.incidents.values()].filter((i) => i.status !== 'resolved').sort(byNewest);
  }

  resolved(limit: number): Incident[] {
    return [...this.incidents.values()]
      .filter((i) => i.status === 'resolved')
      .sort(byNewest)
      .slice(0, limit);
  }

  /** The open automatic incident of the current episode, if any. */
  openAuto(): Incident | undefined {
    return this.unresolved().find((i) => i.source === 'auto');
  }

  get(id: string): Incident | undefined {
    return this.incidents.get(id);
  }

  /** Maintenances not cancelled and not yet over, soonest first. */
  upcomingMaintenances(now: number): Maintenance[] {
    return [...this.maintenances.values()]
      .filter((m) => m.cancelledAt === null && Date.parse(m.endsAt) > now)
      .sort((a, b) => Date.parse(a.startsAt) - Date.parse(b.startsAt));
  }

  activeMaintenances(now: number): Maintenance[] {
    return this.upcomingMaintenances(now).filter((m) => Date.parse(m.startsAt) <= now);
  }

  /** Is every component of this list covered by a maintenance in progress? (Alerts are silenced then.) */
  coveredByMaintenance(components: readonly ComponentId[], now: number): boolean {
    if (components.length === 0) return false;
    const covered = new Set(this.activeMaintenances(now).flatMap((m) => m.components));
    return components.every((c) => covered.has(c));
  }

  // ---- detection ----------------------------------------------------------------------------

  /**
   * Brings the automatic incident in line with the components' states. Components
   * under maintenance do not open incidents: their trouble is announced already.
   */
  reconcile(health: readonly ComponentHealth[], now: number): IncidentEvent[] {
    const affected = health.filter((c) => c.status !== 'operational' && c.status !== 'under_maintenance');
    const events: IncidentEvent[] = [];
    let auto = this.openAuto();

    if (affected.length > 0) {
      const worst = affected.reduce<ComponentState>((w, c) => worse(w, c.status), 'operational');
      if (!auto) {
        auto = {
          id: this.opts.newId(),
          title: incidentTitle(affected),
          status: 'investigating',
          impact: impactOf(worst),
          source: 'auto',
          components: affected.map((c) => c.id),
          createdAt: iso(now),
          updatedAt: iso(now),
          resolvedAt: null,
          updates: [],
          reported: Object.fromEntries(affected.map((c) => [c.id, c.status])),
        };
        this.incidents.set(auto.id, auto);
        const body = `Our automatic checks found a problem. ${affected.map(describe).join(' ')} We are investigating.`;
        const update = applyUpdate(auto, { id: this.opts.newId(), status: 'investigating', body, author: SYSTEM_AUTHOR }, now);
        this.touch(auto);
        events.push({ type: 'incident.opened', incident: incidentView(auto), update });
        return events;
      }
      const i = auto;
      const returning = i.status === 'monitoring';
      const changed = affected.filter((c) => i.reported[c.id] === undefined || severity(c.status) > severity(i.reported[c.id]!));
      if (returning || changed.length > 0) {
        for (const c of affected) {
          if (!i.components.includes(c.id)) i.components.push(c.id);
          i.reported[c.id] = worse(i.reported[c.id] ?? 'operational', c.status);
        }
        if (IMPACT_RANK[impactOf(worst)] > IMPACT_RANK[i.impact]) i.impact = impactOf(worst);
        // The title follows the incident while nobody has written over it.
        // Once failing, an incident stays "failing" in its title even if what is left is only slow.
        const wasFailing = i.title.endsWith(' failing');
        i.title = incidentTitle(
          i.components.map((id) => {
            const cur = affected.find((c) => c.id === id);
            return { id, cause: wasFailing || cur?.cause === 'failing' ? ('failing' as const) : ('slow' as const) };
          }),
        );
        const body = returning
          ? `The problem has come back. ${affected.map(describe).join(' ')} We are investigating again.`
          : `Update from our automatic checks: ${changed.map(describe).join(' ')}`;
        // An operator's "identified" stands; detection only moves monitoring back to investigating.
        const status: IncidentStatus = returning ? 'investigating' : i.status;
        const update = applyUpdate(i, { id: this.opts.newId(), status, body, author: SYSTEM_AUTHOR }, now);
        this.touch(i);
        events.push({ type: 'incident.updated', incident: incidentView(i), update });
      }
      return events;
    }

    if (!auto) return events;
    if (auto.status === 'investigating' || auto.status === 'identified') {
      const n = this.opts.oksToRecover ?? 3;
      const body =
        `${listNames(auto.components)} ${auto.components.length === 1 ? 'has' : 'have'} recovered: ` +
        `every affected component passed ${n} checks in a row. A fix is in place or the problem has cleared; we are monitoring.`;
      const update = applyUpdate(auto, { id: this.opts.newId(), status: 'monitoring', body, author: SYSTEM_AUTHOR }, now);
      this.touch(auto);
      events.push({ type: 'incident.updated', incident: incidentView(auto), update });
      return events;
    }
    if (auto.status === 'monitoring') {
      const since = Date.parse(auto.updatedAt);
      if (now - since >= this.opts.resolveAfterMs) {
        const body = `Resolved: every affected component has worked normally for ${duration(now - since)} since it recovered.`;
        const update = applyUpdate(auto, { id: this.opts.newId(), status: 'resolved', body, author: SYSTEM_AUTHOR }, now);
        this.touch(auto);
        this.trim();
        events.push({ type: 'incident.resolved', incident: incidentView(auto), update });
      }
    }
    return events;
  }

  // ---- operators ----------------------------------------------------------------------------

  create(input: OperatorIncidentInput, now: number): IncidentEvent {
    const i = newOperatorIncident(input, { incident: this.opts.newId(), update: this.opts.newId() }, now);
    this.incidents.set(i.id, i);
    this.touch(i);
    return { type: i.status === 'resolved' ? 'incident.resolved' : 'incident.opened', incident: incidentView(i), update: i.updates[0] };
  }

  update(id: string, input: OperatorUpdateInput, now: number): IncidentEvent {
    const i = this.incidents.get(id);
    if (!i) throw new OpsInputError('Record not found', 'not_found');
    if (input.body.length > 10_000) throw new OpsInputError('body is too long (maximum is 10,000 characters)');
    if (input.body.trim() === '') throw new OpsInputError('body must not be empty');
    if (input.impact) i.impact = input.impact;
    const update = applyUpdate(i, { id: this.opts.newId(), status: input.status ?? i.status, body: input.body.trim(), author: input.author }, now);
    this.touch(i);
    this.trim();
    return { type: update.status === 'resolved' ? 'incident.resolved' : 'incident.updated', incident: incidentView(i), update };
  }

  resolve(id: string, input: { body?: string; author: string }, now: number): IncidentEvent {
    const i = this.incidents.get(id);
    if (!i) throw new OpsInputError('Record not found', 'not_found');
    if (i.status === 'resolved') throw new OpsInputError('the incident is already resolved');
    return this.update(id, { status: 'resolved', body: input.body?.trim() || 'This incident has been resolved.', author: input.author }, now);
  }

  scheduleMaintenance(input: MaintenanceInput, now: number): Maintenance {
    const m = newMaintenance(input, this.opts.newId(), now);
    this.maintenances.set(m.id, m);
    this.dirtyMaintenances.add(m.id);
    return m;
  }

  cancelMaintenance(id: string, now: number): Maintenance {
    const m = this.maintenances.get(id);
    if (!m || m.cancelledAt !== null) throw new OpsInputError('Record not found', 'not_found');
    m.cancelledAt = iso(now);
    this.dirtyMaintenances.add(m.id);
    return m;
  }

  // ---- persistence ---------------------------------------------------------------------------

  /**
   * Takes in what the database holds (written by the CLI or another node). The
   * union of updates is kept; the incident's status is its latest update's.
   */
  mergeIncident(incoming: Incident): void {
    const mine = this.incidents.get(incoming.id);
    if (!mine) {
      this.incidents.set(incoming.id, incoming);
      return;
    }
    const known = new Set(mine.updates.map((u) => u.id));
    const added = incoming.updates.filter((u) => !known.has(u.id));
    const newer = incoming.updatedAt > mine.updatedAt;
    if (added.length === 0 && !newer) return;
    mine.updates.push(...added);
    mine.updates.sort((a, b) => (a.created_at === b.created_at ? cmpId(a.id, b.id) : a.created_at < b.created_at ? -1 : 1));
    if (newer) {
      mine.title = incoming.title;
      mine.impact = incoming.impact;
      for (const c of incoming.components) if (!mine.components.includes(c)) mine.components.push(c);
      mine.updatedAt = incoming.updatedAt;
    }
    const last = mine.updates[mine.updates.length - 1];
    if (last) {
      mine.status = last.status;
      mine.resolvedAt = last.status === 'resolved' ? (incoming.resolvedAt ?? last.created_at) : null;
      if (last.created_at > mine.updatedAt) mine.updatedAt = last.created_at;
    }
  }

  mergeMaintenance(incoming: Maintenance): void {
    if (this.dirtyMaintenances.has(incoming.id)) return;
    this.maintenances.set(incoming.id, incoming);
  }

  private touch(i: Incident): void {
    this.dirtyIncidents.add(i.id);
  }

  /** Keeps memory bounded: every unresolved incident, the newest resolved ones, and anything not yet written. */
  trim(): void {
    const resolved = [...this.incidents.values()].filter((i) => i.status === 'resolved').sort(byNewest);
    for (const i of resolved.slice(this.keepResolved)) if (!this.dirtyIncidents.has(i.id)) this.incidents.delete(i.id);
  }
}

function cmpId(a: string, b: string): number {
  return a.length === b.length ? (a < b ? -1 : a > b ? 1 : 0) : a.length - b.length;
}

const byNewest = (a: Incident, b: Incident) => (a.createdAt === b.createdAt ? cmpId(b.id, a.id) : a.createdAt < b.createdAt ? 1 : -1);

export function duration(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s < 120) return `${s} second${s === 1 ? '' : 's'}`;
  const m = Math.round(s / 60);
  if (m < 120) return `${m} minutes`;
  return `${Math.round(m / 60)} hours`;
}

// ---- database rows ---------------------------------------------------------------------------

type Exec = Kysely<Database> | Transaction<Database>;

function parseComponents(json: string): ComponentId[] {
  try {
    const v = JSON.parse(json) as unknown;
    return Array.isArray(v) ? v.filter((c): c is ComponentId => (COMPONENTS as readonly string[]).includes(String(c))) : [];
  } catch {
    return [];
  }
}

/** Writes an incident and its updates (upsert; updates are immutable, so existing ones are left alone). */
export async function saveIncident(trx: Exec, i: Incident): Promise<void> {
  const row = {
    id: i.id,
    title: i.title,
    status: i.status,
    impact: i.impact,
    source: i.source,
    components: JSON.stringify(i.components),
    created_at: i.createdAt,
    updated_at: i.updatedAt,
    resolved_at: i.resolvedAt,
  };
  await trx
    .insertInto('incidents')
    .values(row)
    .onConflict((oc) =>
      oc.column('id').doUpdateSet({ title: row.title, status: row.status, impact: row.impact, components: row.components, updated_at: row.updated_at, resolved_at: row.resolved_at }),
    )
    .execute();
  if (i.updates.length) {
    await trx
      .insertInto('incident_updates')
      .values(i.updates.map((u) => ({ id: u.id, incident_id: i.id, status: u.status, body: u.body, author: u.author, created_at: u.created_at })))
      .onConflict((oc) => oc.column('id').doNothing())
      .execute();
  }
}

export async function saveMaintenance(trx: Exec, m: Maintenance): Promise<void> {
  const row = {
    id: m.id,
    title: m.title,
    body: m.body,
    components: JSON.stringify(m.components),
    starts_at: m.startsAt,
    ends_at: m.endsAt,
    created_at: m.createdAt,
    cancelled_at: m.cancelledAt,
  };
  await trx
    .insertInto('maintenances')
    .values(row)
    .onConflict((oc) => oc.column('id').doUpdateSet({ title: row.title, body: row.body, components: row.components, starts_at: row.starts_at, ends_at: row.ends_at, cancelled_at: row.cancelled_at }))
    .execute();
}

/** Incidents with their updates: every unresolved one, those changed since `changedSince`, or those with the given ids. */
export async function loadIncidents(db: Exec, q: { changedSince?: string; ids?: string[]; resolvedLimit?: number }): Promise<Incident[]> {
  let rows = await db
    .selectFrom('incidents')
    .selectAll()
    .where((eb) => {
      const ors = [eb('resolved_at', 'is', null)];
      if (q.changedSince) ors.push(eb('updated_at', '>=', q.changedSince));
      if (q.ids?.length) ors.push(eb('id', 'in', q.ids));
      return eb.or(ors);
    })
    .orderBy('id', 'desc')
    .limit(1000)
    .execute();
  if (q.resolvedLimit) {
    const resolved = await db.selectFrom('incidents').selectAll().where('resolved_at', 'is not', null).orderBy('id', 'desc').limit(q.resolvedLimit).execute();
    const seen = new Set(rows.map((r) => r.id));
    rows = rows.concat(resolved.filter((r) => !seen.has(r.id)));
  }
  if (rows.length === 0) return [];
  const updates = await db
    .selectFrom('incident_updates')
    .selectAll()
    .where(
      'incident_id',
      'in',
      rows.map((r) => r.id),
    )
    .orderBy('id', 'asc')
    .execute();
  const byIncident = new Map<string, IncidentUpdateView[]>();
  for (const u of updates) {
    const list = byIncident.get(u.incident_id) ?? [];
    list.push({ id: u.id, status: u.status as IncidentStatus, body: u.body, author: u.author, created_at: u.created_at });
    byIncident.set(u.incident_id, list);
  }
  return rows.map((r) => ({
    id: r.id,
    title: r.title,
    status: r.status as IncidentStatus,
    impact: r.impact as IncidentImpact,
    source: r.source as Incident['source'],
    components: parseComponents(r.components),
    createdAt: r.created_at,
    updatedAt: r.updated_at,
    resolvedAt: r.resolved_at,
    updates: byIncident.get(r.id) ?? [],
    reported: {},
  }));
}

export async function loadMaintenances(db: Exec, endedAfter: string): Promise<Maintenance[]> {
  const rows = await db.selectFrom('maintenances').selectAll().where('ends_at', '>', endedAfter).orderBy('id', 'desc').limit(1000).execute();
  return rows.map((r) => ({
    id: r.id,
    title: r.title,
    body: r.body,
    components: parseComponents(r.components),
    startsAt: r.starts_at,
    endsAt: r.ends_at,
    createdAt: r.created_at,
    cancelledAt: r.cancelled_at,
  }));
}
