/**
 * A StatusSource for tests of the status page, standing in for the ops
 * engine: plain data that a test sets, with the engine's rules for the
 * overall indicator and for staleness. `demoStatus()` fills it with a
 * realistic page (an open incident, maintenance, past incidents, 90 days of
 * uptime with a few bad days, a latency series) for the browser test and
 * the screenshots.
 */
import {
  COMPONENTS,
  COMPONENT_NAMES,
  type ComponentId,
  type ComponentState,
  type ComponentView,
  type DailyUptime,
  type IncidentView,
  type LatencyPoint,
  type MaintenanceView,
  type StatusSource,
  type StatusSummary,
} from '../../src/ops/model.js';

const RANK: Record<StatusSummary['status']['indicator'], number> = { none: 0, maintenance: 1, minor: 2, major: 3, critical: 4, unknown: 5 };
const OF_STATE: Record<ComponentState, StatusSummary['status']['indicator']> = {
  operational: 'none',
  under_maintenance: 'maintenance',
  degraded_performance: 'minor',
  partial_outage: 'major',
  major_outage: 'critical',
};
const WORDS: Record<StatusSummary['status']['indicator'], string> = {
  none: 'All Systems Operational',
  maintenance: 'Service Under Maintenance',
  minor: 'Minor Service Outage',
  major: 'Partial System Outage',
  critical: 'Major Service Outage',
  unknown: 'Status unknown',
};

export class FakeStatusSource implements StatusSource {
  components: ComponentView[];
  incidents: IncidentView[] = [];
  past: IncidentView[] = [];
  maintenances: MaintenanceView[] = [];
  days = new Map<ComponentId, DailyUptime[]>();
  points: LatencyPoint[] = [];
  lastProbeAt: string | null;
  staleAfterMs = 60_000;
  /** When set, summary() throws, as a crashed engine would. */
  failing = false;
  private seq = 0;

  constructor(
    public now: () => Date = () => new Date(),
    public page = { id: 'starling', name: 'Starling', url: 'http://127.0.0.1/status' },
  ) {
    const at = this.now().toISOString();
    this.lastProbeAt = at;
    this.components = COMPONENTS.map((id) => ({ id, name: COMPONENT_NAMES[id], status: 'operational' as ComponentState, since: at, updated_at: at, reason: null }));
  }

  /** Records a probe round at the current time. */
  probed(): void {
    this.lastProbeAt = this.now().toISOString();
  }

  setState(id: ComponentId, status: ComponentState, reason: string | null = null): void {
    const at = this.now().toISOString();
    this.components = this.components.map((c) => (c.id === id ? { ...c, status, reason, since: c.status === status ? c.since : at, updated_at: at } : c));
  }

  openIncident(name: string, components: ComponentId[], body: string, impact: IncidentView['impact'] = 'critical', source: IncidentView['source'] = 'auto'): IncidentView {
    const at = this.now().toISOString();
    const id = String(1000 + ++this.seq);
    const incident: IncidentView = {
      id,
      name,
      status: 'investigating',
      impact,
      source,
      components,
      created_at: at,
      updated_at: at,
      resolved_at: null,
      incident_updates: [{ id: `${id}-1`, status: 'investigating', body, created_at: at, author: 'system' }],
    };
    this.incidents.push(incident);
    return incident;
  }

  update(id: string, status: IncidentView['status'], body: string, author = 'system'): IncidentView {
    const at = this.now().toISOString();
    const i = [...this.incidents, ...this.past].find((x) => x.id === id)!;
    i.status = status;
    i.updated_at = at;
    i.incident_updates.unshift({ id: `${id}-${i.incident_updates.length + 1}`, status, body, created_at: at, author });
    if (status === 'resolved') {
      i.resolved_at = at;
      this.incidents = this.incidents.filter((x) => x.id !== id);
      this.past.unshift(i);
    }
    return i;
  }

  summary(): StatusSummary {
    if (this.failing) throw new Error('ops engine crashed');
    const now = this.now().getTime();
    const last = this.lastProbeAt ? Date.parse(this.lastProbeAt) : null;
    const stale = last === null || now - last > this.staleAfterMs;
    const freshness = { last_probe_at: this.lastProbeAt, stale, stale_since: stale && last !== null ? new Date(last + this.staleAfterMs).toISOString() : null };
    let indicator: StatusSummary['status']['indicator'] = 'none';
    for (const c of this.components) if (RANK[OF_STATE[c.status]] > RANK[indicator]) indicator = OF_STATE[c.status];
    for (const i of this.incidents) if ((i.impact === 'minor' || i.impact === 'major' || i.impact === 'critical') && RANK[i.impact] > RANK[indicator]) indicator = i.impact;
    if (stale) indicator = 'unknown';
    const updated = [...this.components.map((c) => c.updated_at), ...this.incidents.map((i) => i.updated_at)].sort().pop()!;
    return {
      page: { ...this.page, updated_at: updated },
      status: { indicator, description: WORDS[indicator] },
      components: this.components.map((c) => ({ ...c })),
      incidents: this.incidents.map((i) => structuredClone(i)),
      scheduled_maintenances: this.maintenances.map((m) => ({ ...m })),
      freshness,
    };
  }

  uptime(component: ComponentId, days: number): DailyUptime[] {
    return (this.days.get(component) ?? []).slice(-days);
  }

  latency(): LatencyPoint[] {
    return this.points;
  }

  pastIncidents(limit: number): IncidentView[] {
    return this.past.slice(0, limit).map((i) => structuredClone(i));
  }
}

function dayOf(now: Date, back: number): string {
  return new Date(now.getTime() - back * 86_400_000).toISOString().slice(0, 10);
}

/** A deterministic, realistic page: what the screenshots show. */
export function demoStatus(now: Date, page?: FakeStatusSource['page']): FakeStatusSource {
  const fake = new FakeStatusSource(() => now, page);
  const ago = (minutes: number) => new Date(now.getTime() - minutes * 60_000).toISOString();

  // 90 days of history: mostly clean, a few bad days per component, the first weeks of search without data.
  let r = 7;
  const rand = () => ((r = (r * 48271) % 2147483647) / 2147483647);
  for (const id of COMPONENTS) {
    const list: DailyUptime[] = [];
    for (let back = 89; back >= 0; back--) {
      if (id === 'search' && back > 75) continue;
      const x = rand();
      const worst: ComponentState = x > 0.985 ? 'major_outage' : x > 0.96 ? 'partial_outage' : x > 0.92 ? 'degraded_performance' : 'operational';
      const uptime = worst === 'operational' ? 1 : worst === 'degraded_performance' ? 0.995 : worst === 'partial_outage' ? 0.97 : 0.91;
      list.push({ day: dayOf(now, back), uptime, worst });
    }
    fake.days.set(id, list);
  }
  const database = fake.days.get('database')!;
  database[database.length - 1] = { day: dayOf(now, 0), uptime: 0.96, worst: 'major_outage' };
  const web = fake.days.get('web')!;
  web[web.length - 3] = { day: web[web.length - 3].day, uptime: 1, worst: 'under_maintenance' };

  // The last hour of posting-probe latency, with a spike during today's incident.
  for (let i = 0; i < 120; i++) {
    const minutes = 60 - i * 0.5;
    const base = 38 + 9 * Math.sin(i / 6) + rand() * 10;
    const spike = i > 84 && i < 100 ? 260 + rand() * 180 : 0;
    fake.points.push({ t: ago(minutes), ms: Math.round((base + spike) * 10) / 10 });
  }

  // Now: the posting path is slow because the database is failing over.
  const t0 = new Date(now.getTime() - 25 * 60_000);
  fake.now = () => t0;
  fake.setState('database', 'major_outage', 'Write probe failed 3 times in a row: database is locked');
  fake.setState('posting', 'degraded_performance', 'Posting takes 420 ms end to end (threshold 250 ms)');
  const incident = fake.openIncident(
    'Posting is slow: database writes failing',
    ['database', 'posting'],
    'Automatic detection: the database write probe has failed three times in a row and posting has slowed down. We are investigating.',
  );
  fake.now = () => new Date(now.getTime() - 12 * 60_000);
  fake.update(incident.id, 'identified', 'The primary database is failing over to a replica. New posts may take a few seconds to appear.', 'alice');
  fake.now = () => new Date(now.getTime() - 4 * 60_000);
  fake.update(incident.id, 'monitoring', 'The replica has taken over; posting latency is recovering. We are watching it.', 'system');
  fake.now = () => now;

  fake.maintenances.push({
    id: '77',
    name: 'Database upgrade to PostgreSQL 16',
    body: 'Writes pause for up to 30 seconds while the primary switches over. Reading keeps working.',
    components: ['database', 'posting'],
    scheduled_for: new Date(now.getTime() + 2 * 86_400_000).toISOString(),
    scheduled_until: new Date(now.getTime() + 2 * 86_400_000 + 3600_000).toISOString(),
    status: 'scheduled',
  });

  // Past incidents in the last two weeks.
  const past = (daysBack: number, name: string, components: ComponentId[], impact: IncidentView['impact'], updates: [IncidentView['status'], string, number][]): IncidentView => {
    const start = now.getTime() - daysBack * 86_400_000;
    const id = String(500 + daysBack);
    const incident_updates = updates
      .map(([status, body, minutes], n) => ({ id: `${id}-${n}`, status, body, created_at: new Date(start + minutes * 60_000).toISOString(), author: n === 1 ? 'bob' : 'system' }))
      .reverse();
    const resolved = incident_updates[0].created_at;
    return { id, name, status: 'resolved', impact, source: 'auto', components, created_at: new Date(start).toISOString(), updated_at: resolved, resolved_at: resolved, incident_updates };
  };
  fake.past = [
    past(2, 'Streaming connections dropped', ['streaming'], 'major', [
      ['investigating', 'Automatic detection: the streaming probe stopped receiving its own posts.', 0],
      ['identified', 'A NATS node restarted; clients reconnect on their own.', 6],
      ['resolved', 'Resolved automatically: the streaming probe has passed for 5 minutes.', 14],
    ]),
    past(9, 'Search results delayed', ['search'], 'minor', [
      ['investigating', 'Automatic detection: new posts took over 2 minutes to become searchable.', 0],
      ['resolved', 'The indexing backlog has cleared.', 35],
    ]),
  ];
  fake.probed();
  return fake;
}
