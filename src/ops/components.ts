/**
 * Component states from observations, with hysteresis. Pure: no I/O, no
 * clock of its own (every call takes `now`), so it is unit-tested with a
 * fake clock.
 *
 * An observation is what one probe round saw of one component: fine, slow,
 * or failing (with the worst state that kind of failure can justify). The
 * rules, in plain words:
 *
 * - One bad observation changes nothing: the component is only "suspect"
 *   (a single lost packet must not put an outage on the public page).
 * - Two bad observations in a row: degraded_performance.
 * - A failure that lasts three observations, or 30 seconds: major_outage
 *   (or the failure's own cap, e.g. partial_outage for a job backlog).
 * - Slow but successful: degraded_performance after two in a row.
 * - Within a bad streak the state only gets worse, never better, and going
 *   back to operational takes three good observations in a row. So a
 *   component that alternates between passing and failing stays down rather
 *   than flapping.
 *
 * On top of that, views are derived for the page: a scheduled maintenance in
 * progress shows `under_maintenance`, and a failing dependency (the database,
 * the bus) drags the components that need it to at least partial_outage,
 * with the reason in words.
 */
import { COMPONENTS, COMPONENT_NAMES, type ComponentId, type ComponentState, type ComponentView, type StatusSummary } from './model.js';

export type ObservationLevel = 'ok' | 'slow' | 'fail';

export interface Observation {
  level: ObservationLevel;
  /** For a failure: the worst state it may lead to (default major_outage). Ignored for ok and slow. */
  cap?: Exclude<ComponentState, 'operational' | 'under_maintenance'>;
  /** Plain words: what was seen ("posting a test status failed: HTTP 500"). */
  reason: string;
}

export interface HysteresisRules {
  /** Bad observations in a row before the state changes at all. */
  badToDegrade: number;
  /** Failures in a row before a failure becomes an outage... */
  failsToOutage: number;
  /** ...or failing for this long, whichever comes first. */
  outageAfterMs: number;
  /** Good observations in a row before going back to operational. */
  oksToRecover: number;
}

export const DEFAULT_RULES: HysteresisRules = { badToDegrade: 2, failsToOutage: 3, outageAfterMs: 30_000, oksToRecover: 3 };

/** Severity order for the four probe-derived states (maintenance is an overlay, not a severity). */
const SEVERITY: Record<ComponentState, number> = { operational: 0, under_maintenance: 0, degraded_performance: 1, partial_outage: 2, major_outage: 3 };

export const worse = (a: ComponentState, b: ComponentState): ComponentState => (SEVERITY[b] > SEVERITY[a] ? b : a);
export const severity = (s: ComponentState): number => SEVERITY[s];

/** What kind of trouble a non-operational component has, for titles ("is failing" / "is slow"). */
export type TroubleCause = 'failing' | 'slow';

export interface TrackerState {
  state: ComponentState;
  since: number;
  reason: string | null;
  cause: TroubleCause | null;
  /** One bad observation seen, state not (yet) changed. */
  suspect: boolean;
  badStreak: number;
  failStreak: number;
  badSince: number | null;
  okStreak: number;
  lastObservedAt: number | null;
}

export function initialTracker(now: number, restored?: { state: ComponentState; since: number; reason: string | null }): TrackerState {
  const state = restored && restored.state !== 'under_maintenance' ? restored.state : 'operational';
  return {
    state,
    since: restored?.since ?? now,
    reason: state === 'operational' ? null : (restored?.reason ?? null),
    cause: state === 'operational' ? null : state === 'degraded_performance' ? 'slow' : 'failing',
    suspect: false,
    badStreak: 0,
    failStreak: 0,
    badSince: null,
    okStreak: 0,
    lastObservedAt: null,
  };
}

/** The next tracker state after one observation. Never mutates its input. */
export function observe(prev: TrackerState, obs: Observation, now: number, rules: HysteresisRules = DEFAULT_RULES): TrackerState {
  const t: TrackerState = { ...prev, lastObservedAt: now };
  let target: ComponentState = 'operational';
  if (obs.level === 'ok') {
    t.badStreak = 0;
    t.failStreak = 0;
    t.badSince = null;
  } else {
    t.badStreak = prev.badStreak + 1;
    t.badSince = prev.badSince ?? now;
    t.failStreak = obs.level === 'fail' ? prev.failStreak + 1 : 0;
    if (t.badStreak >= rules.badToDegrade) target = 'degraded_performance';
    if (obs.level === 'fail') {
      const cap = obs.cap ?? 'major_outage';
      const lasting = t.failStreak >= rules.failsToOutage || (t.failStreak >= rules.badToDegrade && now - t.badSince >= rules.outageAfterMs);
      if (lasting) target = cap === 'degraded_performance' ? 'degraded_performance' : cap;
    }
  }
  t.suspect = obs.level !== 'ok' && target === 'operational' && prev.state === 'operational';

  // A bad observation is never evidence of recovery, even the first of a streak (whose target is still "operational").
  if (severity(target) >= severity(prev.state) || (obs.level !== 'ok' && target === 'operational')) {
    // Getting worse, or holding: at once (the ladder above is the hysteresis on the way down).
    t.okStreak = 0;
    if (severity(target) > severity(prev.state)) {
      t.state = target;
      t.since = now;
    }
  } else {
    // Better than the present state (fully, or a milder problem): only after enough such observations in a row.
    t.okStreak = prev.okStreak + 1;
    if (t.okStreak >= rules.oksToRecover) {
      t.state = target;
      t.since = now;
      t.okStreak = 0;
    }
  }
  if (t.state === 'operational') {
    t.reason = null;
    t.cause = null;
  } else if (obs.level !== 'ok') {
    // The reason follows what is seen now, so the page says what is wrong at present.
    t.reason = obs.reason;
    const seen: TroubleCause = obs.level === 'fail' ? 'failing' : 'slow';
    t.cause = t.state !== prev.state || prev.cause === null ? seen : prev.cause === 'failing' || seen === 'failing' ? 'failing' : 'slow';
  }
  return t;
}

/** Components that cannot work without a dependency, and the words the page uses for it. */
export const DEPENDENTS: Partial<Record<ComponentId, { dependents: ComponentId[]; words: string }>> = {
  database: { dependents: ['posting', 'timelines', 'search', 'notifications'], words: 'database unavailable' },
  bus: { dependents: ['streaming'], words: 'event bus unavailable' },
};

export interface MaintenanceWindow {
  components: readonly ComponentId[];
  startsAt: number;
  endsAt: number;
}

/** A component as the page shows it, plus what incidents need (the cause); `cause` is not part of the public view. */
export interface ComponentHealth extends ComponentView {
  cause: TroubleCause | null;
}

const iso = (ms: number) => new Date(ms).toISOString();

/**
 * The page's view of every component: tracked state, then dependencies, then
 * maintenance. `updatedAt` is when each component was last observed.
 */
export function deriveViews(trackers: ReadonlyMap<ComponentId, TrackerState>, maintenances: readonly MaintenanceWindow[], now: number): ComponentHealth[] {
  const base = new Map<ComponentId, ComponentHealth>();
  for (const id of COMPONENTS) {
    const t = trackers.get(id) ?? initialTracker(now);
    base.set(id, {
      id,
      name: COMPONENT_NAMES[id],
      status: t.state,
      since: iso(t.since),
      updated_at: iso(t.lastObservedAt ?? t.since),
      reason: t.reason,
      cause: t.cause,
    });
  }
  for (const [dep, rule] of Object.entries(DEPENDENTS) as [ComponentId, { dependents: ComponentId[]; words: string }][]) {
    const d = base.get(dep)!;
    if (severity(d.status) < severity('partial_outage')) continue;
    for (const id of rule.dependents) {
      const c = base.get(id)!;
      if (severity(c.status) < severity('partial_outage')) {
        c.status = 'partial_outage';
        c.since = d.since;
        c.reason = rule.words;
        c.cause = 'failing';
      } else if (!c.reason?.includes(rule.words)) {
        c.reason = c.reason ? `${rule.words}; ${c.reason}` : rule.words;
      }
    }
  }
  for (const m of maintenances) {
    if (now < m.startsAt || now >= m.endsAt) continue;
    for (const id of m.components) {
      const c = base.get(id);
      if (!c || c.status === 'under_maintenance') continue;
      c.status = 'under_maintenance';
      c.since = iso(m.startsAt);
      c.reason = 'scheduled maintenance';
      c.cause = null;
    }
  }
  return COMPONENTS.map((id) => base.get(id)!);
}

export type Indicator = StatusSummary['status']['indicator'];

const IMPACT_OF_STATE: Record<ComponentState, Indicator> = {
  operational: 'none',
  under_maintenance: 'maintenance',
  degraded_performance: 'minor',
  partial_outage: 'major',
  major_outage: 'critical',
};
const INDICATOR_RANK: Record<Indicator, number> = { none: 0, maintenance: 1, minor: 2, major: 3, critical: 4, unknown: 5 };

export interface Freshness {
  lastProbeAt: number | null;
  /** When the engine started; with no probe at all, the data has been stale since then. */
  startedAt: number;
  staleAfterMs: number;
}

export function freshness(f: Freshness, now: number): StatusSummary['freshness'] {
  const reference = f.lastProbeAt ?? f.startedAt;
  const staleSince = f.lastProbeAt === null ? f.startedAt : f.lastProbeAt + f.staleAfterMs;
  const stale = f.lastProbeAt === null || now - reference > f.staleAfterMs;
  return { last_probe_at: f.lastProbeAt === null ? null : iso(f.lastProbeAt), stale, stale_since: stale ? iso(staleSince) : null };
}

/**
 * The overall indicator, Statuspage style, from component states and the
 * impacts of unresolved incidents; 'unknown' when the data is stale, because
 * a page that has stopped hearing from its probes cannot say "operational".
 */
export function overallStatus(
  views: readonly ComponentView[],
  openIncidentImpacts: readonly string[],
  fresh: StatusSummary['freshness'],
): StatusSummary['status'] {
  if (fresh.stale) {
    return {
      indicator: 'unknown',
      description: fresh.last_probe_at ? `Status unknown: no check has reported since ${fresh.last_probe_at}` : 'Status unknown: no check has reported yet',
    };
  }
  let indicator: Indicator = 'none';
  const raise = (i: Indicator) => {
    if (INDICATOR_RANK[i] > INDICATOR_RANK[indicator]) indicator = i;
  };
  for (const v of views) raise(IMPACT_OF_STATE[v.status]);
  for (const impact of openIncidentImpacts) if (impact === 'minor' || impact === 'major' || impact === 'critical') raise(impact);
  const description: Record<Indicator, string> = {
    none: 'All Systems Operational',
    maintenance: 'Service Under Maintenance',
    minor: 'Minor Service Outage',
    major: 'Partial System Outage',
    critical: 'Major Service Outage',
    unknown: 'Status unknown',
  };
  return { indicator, description: description[indicator] };
}

/** Merges several observations of one component in one round: the worst wins. */
export function mergeObservations(list: readonly Observation[]): Observation | null {
  if (list.length === 0) return null;
  const rank = (o: Observation) => (o.level === 'ok' ? 0 : o.level === 'slow' ? 1 : 2 + severity(o.cap ?? 'major_outage'));
  return list.reduce((a, b) => (rank(b) > rank(a) ? b : a));
}
