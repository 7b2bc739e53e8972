/**
 * The status-page model, in the shape of the common status-page APIs
 * (Atlassian Statuspage's summary.json): components with states, incidents
 * with a timeline of updates, scheduled maintenances. The ops engine keeps
 * it in memory (so the page answers when the database does not) and in the
 * database (so it survives restarts); the status page only reads it.
 */

export const COMPONENTS = ['api', 'posting', 'timelines', 'streaming', 'search', 'notifications', 'web', 'database', 'bus'] as const;
export type ComponentId = (typeof COMPONENTS)[number];

export const COMPONENT_NAMES: Record<ComponentId, string> = {
  api: 'API',
  posting: 'Posting',
  timelines: 'Timelines',
  streaming: 'Streaming',
  search: 'Search',
  notifications: 'Notifications',
  web: 'Web app',
  database: 'Database',
  bus: 'Event bus',
};

/** Statuspage's component states, best first. */
export const COMPONENT_STATES = ['operational', 'degraded_performance', 'partial_outage', 'major_outage', 'under_maintenance'] as const;
export type ComponentState = (typeof COMPONENT_STATES)[number];

export type IncidentStatus = 'investigating' | 'identified' | 'monitoring' | 'resolved';
export type IncidentImpact = 'none' | 'minor' | 'major' | 'critical' | 'maintenance';

export interface ComponentView {
  id: ComponentId;
  name: string;
  status: ComponentState;
  /** When the component entered this state (ISO-8601). */
  since: string;
  updated_at: string;
  /** A short, plain reason for a non-operational state. */
  reason: string | null;
}

export interface IncidentUpdateView {
  id: string;
  status: IncidentStatus;
  body: string;
  created_at: string;
  /** 'system' for automatic updates, else the operator's username. */
  author: string;
}

export interface IncidentView {
  id: string;
  name: string;
  status: IncidentStatus;
  impact: IncidentImpact;
  /** 'auto' (opened by detection), 'operator', or 'maintenance'. */
  source: 'auto' | 'operator' | 'maintenance';
  components: ComponentId[];
  created_at: string;
  updated_at: string;
  resolved_at: string | null;
  /** Newest first, as Statuspage lists them. */
  incident_updates: IncidentUpdateView[];
}

export interface MaintenanceView {
  id: string;
  name: string;
  body: string;
  components: ComponentId[];
  scheduled_for: string;
  scheduled_until: string;
  status: 'scheduled' | 'in_progress' | 'completed';
}

/** The page as a whole: what summary.json serves and the HTML renders. */
export interface StatusSummary {
  page: { id: string; name: string; url: string; updated_at: string };
  /** The overall indicator, Statuspage style. 'unknown' when this node's own data is stale. */
  status: { indicator: 'none' | 'minor' | 'major' | 'critical' | 'maintenance' | 'unknown'; description: string };
  components: ComponentView[];
  incidents: IncidentView[];
  scheduled_maintenances: MaintenanceView[];
  /**
   * Starling's own addition: how fresh the data behind this page is. When the
   * probes stop reporting, the page says "unknown since …" instead of "operational".
   */
  freshness: { last_probe_at: string | null; stale: boolean; stale_since: string | null };
}

export interface DailyUptime {
  /** YYYY-MM-DD (UTC). */
  day: string;
  /** Share of probe samples that were operational, 0..1; null when there is no data for the day. */
  uptime: number | null;
  /** The worst state seen that day. */
  worst: ComponentState | null;
}

export interface LatencyPoint {
  /** ISO-8601 time of the sample. */
  t: string;
  ms: number;
}

/** What the status page reads. The ops engine implements it from memory, never blocking on the database. */
export interface StatusSource {
  summary(): StatusSummary;
  /** The last `days` days of uptime for a component, oldest first (90 for the page). */
  uptime(component: ComponentId, days: number): DailyUptime[];
  /** Recent end-to-end latency of a probe (posting by default), oldest first. */
  latency(probe?: string): LatencyPoint[];
  /** Past incidents (resolved), newest first, for the history section. */
  pastIncidents(limit: number): IncidentView[];
}
