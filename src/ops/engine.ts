/**
 * The ops engine: runs the synthetic probes on a schedule, turns what they
 * see into component states (with hysteresis), opens and updates incidents
 * by itself, sends alerts, and answers the status page from memory.
 *
 * Memory first, database second: every figure the status page shows lives in
 * this object, so the page keeps answering — and keeps telling the truth —
 * when the database is down. The database is written best-effort after each
 * round (what cannot be written waits in memory for the next round) and read
 * at start, so a restart keeps history, incidents and maintenances, and
 * periodically, so incidents made with the CLI (or on another node) appear.
 *
 * One round ("tick") at a time: the next is scheduled when the last has
 * finished, so rounds never overlap, and nothing a round throws escapes it.
 * After a first bad or good observation that could change a state, the next
 * round comes sooner (a fifth of the interval, at least a second), so a
 * failure is confirmed, and a recovery recognised, in seconds.
 */
import { randomBytes } from 'node:crypto';
import type { AppContext } from '../services/context.js';
import { idAtTime } from '../domain/ids.js';
import {
  COMPONENTS,
  COMPONENT_STATES,
  type ComponentId,
  type ComponentState,
  type ComponentView,
  type DailyUptime,
  type IncidentView,
  type LatencyPoint,
  type MaintenanceView,
  type StatusSource,
  type StatusSummary,
} from './model.js';
import {
  DEFAULT_RULES,
  deriveViews,
  freshness,
  initialTracker,
  mergeObservations,
  observe,
  overallStatus,
  severity,
  type ComponentHealth,
  type HysteresisRules,
  type Observation,
  type TrackerState,
} from './components.js';
import {
  IncidentBook,
  incidentView,
  loadIncidents,
  loadMaintenances,
  maintenanceView,
  saveIncident,
  saveMaintenance,
  type IncidentEvent,
  type MaintenanceInput,
  type OperatorIncidentInput,
  type OperatorUpdateInput,
} from './incidents.js';
import { AlertSender, incidentAlert, type Alert } from './alerts.js';
import type { LeaderElection, Leadership } from './leader.js';
import { loadDatabaseData } from './publish.js';
import { dataSource, type StatusPageData } from './status-render.js';
import { Canary, DEFAULT_THRESHOLDS, PROBE_HEADER, runAllProbes, withDeadline, type ProbeEnv, type ProbeOutcome, type ProbeThresholds } from './probes.js';

export { PROBE_HEADER };

/** What the engine needs of an SLO tracker (src/ops/slo.ts `SloTracker`). */
export interface SloSource {
  evaluate(nowMs?: number): SloStatusLike[];
}
export interface SloStatusLike {
  name: string;
  objective: number;
  burnRates: Record<string, number>;
  errorBudgetRemaining: number;
  alert: null | 'page' | 'ticket';
}

export interface OpsEngineOptions {
  /** The job queue's backlog (worker.backlog()); without it the jobs check is skipped. */
  backlog?: () => Promise<{ pending: number; oldestAgeMs: number | null }>;
  /** Where the probes reach this node; default ctx.urls.base (the listening URL, 127.0.0.1 in embedded mode). */
  baseUrl?: () => string;
  thresholds?: Partial<ProbeThresholds>;
  rules?: Partial<HysteresisRules>;
  /** Quiet time in "monitoring" before an automatic incident resolves; default 2 × 3 probe intervals. */
  resolveAfterMs?: number;
  /** Live traffic: at least this many requests to a component in a round before its error share counts. */
  minRequests?: number;
  slo?: SloSource;
  /** The clock (ms); default ctx.now(). */
  now?: () => number;
  alerts?: AlertSender;
  /** Read-only mode (ops/read-only.ts): while active, posting is a major outage with its reason. */
  readOnly?: () => { active: boolean; forced: boolean; reason: string | null };
  /**
   * One engine per cluster (ops/leader.ts): while this node does not lead, it runs no probes and detects nothing;
   * it follows what the leader wrote to the database (component states, incidents, uptime, latency) so its status
   * page says the same. Without it, this node always leads.
   */
  leader?: LeaderElection;
}

export interface Transition {
  component: ComponentId;
  from: ComponentState;
  to: ComponentState;
  at: string;
  reason: string | null;
}

interface DayCount {
  samples: number;
  ok: number;
  worst: ComponentState;
}

const DAY_MS = 86_400_000;
const LATENCY_KEEP_MS = DAY_MS;
const LATENCY_MAX_POINTS = 8640;
const LATENCY_MAX_RETURNED = 1440;
const PROBE_RESULTS_KEEP_MS = 7 * DAY_MS;
const MAX_BUFFERED_RESULTS = 5000;
const PERSIST_DEADLINE_MS = 3000;
const dayOf = (ms: number) => new Date(ms).toISOString().slice(0, 10);
const iso = (ms: number) => new Date(ms).toISOString();

/** The live-traffic bucket a route belongs to. */
export function componentOfRoute(method: string, route: string): ComponentId | null {
  if (route.startsWith('/api/v1/streaming')) return 'streaming';
  if (route.startsWith('/api/v1/timelines')) return 'timelines';
  if (route === '/api/v2/search' || route === '/api/v1/accounts/search') return 'search';
  if (route.startsWith('/api/v1/notifications')) return 'notifications';
  if (route === '/api/v1/statuses' && method === 'POST') return 'posting';
  if (route.startsWith('/api/') || route.startsWith('/oauth')) return 'api';
  return null;
}

export class OpsEngine implements StatusSource {
  /** Marks the engine's own requests (header `x-starling-probe`): exempt from rate limits, left out of live-traffic error rates. */
  readonly probeSecret = randomBytes(18).toString('base64url');
  readonly book: IncidentBook;
  readonly alerts: AlertSender;
  /** Recent state changes, oldest first (bounded): for tests and the operations page. */
  readonly transitions: Transition[] = [];
  tickCount = 0;

  private readonly ctx: AppContext;
  private readonly clock: () => number;
  private readonly intervalMs: number;
  private readonly rules: HysteresisRules;
  private readonly env: ProbeEnv;
  private readonly canary: Canary;
  private readonly minRequests: number;
  private slo: SloSource | undefined;
  private readonly readOnly: OpsEngineOptions['readOnly'];
  private readonly trackers = new Map<ComponentId, TrackerState>();
  private views: ComponentHealth[];
  private readonly startedAt: number;
  private lastProbeAt: number | null = null;
  private readonly latest = new Map<string, ProbeOutcome>();
  private readonly latencySeries = new Map<string, LatencyPoint[]>();
  private resultBuffer: { id: string; probe: string; ok: 0 | 1; latency_ms: number | null; detail: string; node_id: number; created_at: string }[] = [];
  private readonly daily = new Map<ComponentId, Map<string, DayCount>>();
  private dailyDelta = new Map<string, DayCount & { component: ComponentId; day: string }>();
  private lastSampleAt = 0;
  private readonly lastWritten = new Map<ComponentId, { status: string; reason: string | null; at: number }>();
  private traffic = new Map<ComponentId, { total: number; errors: number }>();
  private trafficSince: number;
  private readonly paging = new Set<string>();
  private restored = false;
  private lastSyncAt: number | null = null;
  private lastDailyRefresh = 0;
  private lastPrune = 0;
  private timer: NodeJS.Timeout | null = null;
  private ticking: Promise<void> | null = null;
  private persisting: Promise<boolean> = Promise.resolve(true);
  private started = false;
  private stopped = false;
  private readonly listeners = new Set<() => void>();
  private readonly leader: LeaderElection | undefined;
  /** What the leader last wrote, as read by this node while it follows. */
  private followed: StatusPageData | null = null;
  /** Set on becoming leader: the first round restores from the database before it probes. */
  private takingOver = false;

  constructor(ctx: AppContext, opts: OpsEngineOptions = {}) {
    this.ctx = ctx;
    this.clock = opts.now ?? (() => ctx.now().getTime());
    this.intervalMs = Math.max(50, ctx.config.ops.probeIntervalSeconds * 1000);
    this.rules = { ...DEFAULT_RULES, ...opts.rules };
    this.minRequests = opts.minRequests ?? 10;
    this.slo = opts.slo;
    this.readOnly = opts.readOnly;
    this.leader = opts.leader;
    this.startedAt = this.clock();
    this.trafficSince = this.startedAt;
    this.book = new IncidentBook({
      newId: () => ctx.ids.next(),
      resolveAfterMs: opts.resolveAfterMs ?? 2 * 3 * this.intervalMs,
      oksToRecover: this.rules.oksToRecover,
    });
    this.alerts = opts.alerts ?? new AlertSender(ctx.config.ops.alertWebhooks, { log: ctx.log, now: () => new Date(this.clock()) });
    this.env = {
      ctx,
      backlog: opts.backlog,
      baseUrl: opts.baseUrl ?? (() => ctx.urls.base),
      probeSecret: this.probeSecret,
      // A step slower than five rounds is failing anyway; between 2 s (fast test rounds) and 5 s (the default).
      thresholds: { ...DEFAULT_THRESHOLDS, stepTimeoutMs: Math.min(DEFAULT_THRESHOLDS.stepTimeoutMs, Math.max(2000, this.intervalMs * 5)), ...opts.thresholds },
    };
    this.canary = new Canary(ctx);
    for (const id of COMPONENTS) this.trackers.set(id, initialTracker(this.startedAt));
    this.views = deriveViews(this.trackers, [], this.startedAt);
  }

  // ---- lifecycle -----------------------------------------------------------------------------

  /** Reads what the database remembers (bounded wait), then runs the first round at once. */
  async start(): Promise<void> {
    if (this.started || this.stopped) return;
    this.started = true;
    await withDeadline(this.restore(), 2000, 'restoring ops state').catch((err) => this.ctx.log.warn({ err }, 'ops state not restored yet; will retry'));
    this.leader?.onChange((leading) => {
      if (leading) this.takeOver();
      // Either way the next round runs the new role's work, now.
      if (!this.stopped && !this.ticking) {
        if (this.timer) clearTimeout(this.timer);
        this.schedule(0);
      }
    });
    this.schedule(0);
  }

  /** Does this node run the probes and detection now? */
  get leading(): boolean {
    return !this.leader || this.leader.leading;
  }

  /** Who runs the ops engine, for /readyz and the operations page (null: no election, this node always leads). */
  leadership(): Leadership | null {
    return this.leader?.state() ?? null;
  }

  /**
   * Becoming leader after following: what the database says (the last leader's component states, incidents,
   * history) is read again before the first round, so detection carries on from there instead of from
   * "operational". The trackers were never observed by this node, so restore() takes the stored states.
   */
  private takeOver(): void {
    this.takingOver = true;
    this.followed = null;
    this.restored = false;
    this.latencySeries.clear();
    this.lastSyncAt = null;
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    // A round in flight ends by itself soon (the server is closing under it); do not hold shutdown for it.
    if (this.ticking) await Promise.race([this.ticking, sleep(1000)]);
    await withDeadline(this.persistNow(), 1500, 'writing ops state').catch(() => {});
    await this.alerts.flush(1000);
    this.alerts.stop();
  }

  /** Plugs in the SLO tracker (src/ops/slo.ts) after construction. */
  attachSlo(slo: SloSource): void {
    this.slo = slo;
  }

  /** Called after every round and every operator change; returns an unsubscribe function. For publishers of static copies. */
  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Runs one round now (waiting for a round in flight first). Rounds still never overlap. */
  async tickNow(): Promise<void> {
    while (this.ticking) await this.ticking;
    await this.runTick(false);
  }

  private schedule(delayMs: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => void this.runTick(true), delayMs);
    this.timer.unref();
  }

  private async runTick(reschedule: boolean): Promise<void> {
    if (this.ticking) return this.ticking;
    const begun = this.clock();
    const leading = this.leading;
    this.ticking = (leading ? this.tick() : this.follow()).catch((err) => this.ctx.log.error({ err }, leading ? 'ops round failed' : 'ops follower round failed'));
    try {
      await this.ticking;
    } finally {
      this.ticking = null;
      if (reschedule && !this.stopped) {
        // A follower reads the leader's state every interval, at least every 5 s and at most every second.
        const target = !this.leading
          ? Math.min(5000, Math.max(1000, this.intervalMs))
          : this.inTransition()
            ? Math.min(this.intervalMs, Math.max(1000, this.intervalMs / 5))
            : this.intervalMs;
        this.schedule(Math.max(10, target - (this.clock() - begun)));
      }
    }
  }

  /** A component between states (one bad observation, or recovering): confirm sooner. */
  private inTransition(): boolean {
    for (const t of this.trackers.values()) {
      if (t.suspect) return true;
      if (t.state !== 'operational' && t.okStreak > 0) return true;
      if (t.state !== 'operational' && t.badStreak > 0 && severity(t.state) < severity('major_outage')) return true;
    }
    return this.book.openAuto()?.status === 'monitoring';
  }

  // ---- one round -----------------------------------------------------------------------------

  private async tick(): Promise<void> {
    if (this.takingOver) {
      this.takingOver = false;
      // Before any probe observes a component, or restore() would keep "operational" over the stored state.
      await withDeadline(this.restore(), 2000, 'restoring ops state').catch((err) => this.ctx.log.warn({ err }, 'ops state not restored on takeover; will retry'));
    }
    const outcomes = await runAllProbes(this.env, this.canary);
    if (this.stopped) return;
    const now = this.clock();
    this.tickCount++;
    if (outcomes.length) this.lastProbeAt = now;

    const byComponent = new Map<ComponentId, Observation[]>();
    const add = (c: ComponentId, o: Observation) => byComponent.set(c, [...(byComponent.get(c) ?? []), o]);
    for (const o of outcomes) {
      this.recordOutcome(o, now);
      for (const { component, obs } of o.observations) add(component, obs);
    }
    for (const [c, o] of this.trafficObservations(now)) add(c, o);
    for (const o of this.sloObservations(now)) add('api', o);
    const ro = this.readOnly?.();
    if (ro?.active) {
      // The explanation of every failed posting probe while it lasts: it replaces them, so the page and the
      // incident say why posting is down, not only that a test post failed.
      byComponent.set('posting', [{ level: 'fail', cap: 'major_outage', reason: `Starling is in read-only mode (${ro.reason ?? 'writes cannot be made durable'}): new posts are refused, reading still works` }]);
    }

    for (const [c, list] of byComponent) {
      const merged = mergeObservations(list);
      if (merged) this.trackers.set(c, observe(this.trackers.get(c)!, merged, now, this.rules));
    }
    this.refreshViews(now);
    this.handle(this.book.reconcile(this.views, now), now);
    this.sample(now);
    this.notify();

    if (this.stopped) return;
    await withDeadline(this.persistNow(), PERSIST_DEADLINE_MS, 'writing ops state').catch((err) => this.ctx.log.warn({ err: (err as Error).message }, 'ops state not written; kept in memory'));
  }

  /** A follower's round: read what the leader wrote (bounded), keep it for the status page. No probes, no alerts. */
  private async follow(): Promise<void> {
    const now = this.clock();
    // The SLO gauges are this node's own traffic: keep them current here too (the tracker sets them as it evaluates).
    try {
      this.slo?.evaluate(now);
    } catch (err) {
      this.ctx.log.warn({ err }, 'SLO evaluation failed');
    }
    const read = async () => {
      if (!this.restored) await this.restore();
      // Incidents and maintenances (also for the operator API on this node), then the page's data.
      await this.sync(now);
      return loadDatabaseData(this.ctx.db, {
        now: new Date(now),
        staleAfterMs: this.ctx.config.ops.staleAfterSeconds * 1000,
        page: { name: this.ctx.config.instanceTitle, url: `${this.ctx.urls.base}/status` },
      });
    };
    const data = await withDeadline(read(), PERSIST_DEADLINE_MS, "reading the ops leader's state");
    if (this.stopped || this.leading) return;
    this.followed = data;
    this.notify();
  }

  private refreshViews(now: number): void {
    const windows = this.book.activeMaintenances(now).map((m) => ({ components: m.components, startsAt: Date.parse(m.startsAt), endsAt: Date.parse(m.endsAt) }));
    const next = deriveViews(this.trackers, windows, now);
    const before = new Map(this.views.map((v) => [v.id, v]));
    for (const v of next) {
      const prev = before.get(v.id);
      if (prev && prev.status !== v.status) {
        this.transitions.push({ component: v.id, from: prev.status, to: v.status, at: iso(now), reason: v.reason });
        this.ctx.log.info({ component: v.id, from: prev.status, to: v.status, reason: v.reason }, 'component state changed');
      }
    }
    if (this.transitions.length > 500) this.transitions.splice(0, this.transitions.length - 500);
    this.views = next;
    for (const v of next) for (const s of COMPONENT_STATES) this.ctx.metrics.componentState.set({ component: v.id, state: s }, v.status === s ? 1 : 0);
  }

  private recordOutcome(o: ProbeOutcome, now: number): void {
    this.latest.set(o.probe, o);
    const m = this.ctx.metrics;
    m.probeSuccess.set({ probe: o.probe }, o.ok ? 1 : 0);
    if (o.latencyMs !== null) m.probeLatency.set({ probe: o.probe }, o.latencyMs / 1000);
    m.probeRuns.inc({ probe: o.probe, result: o.ok ? 'ok' : 'failure' });
    if (o.latencyMs !== null && o.probe !== 'jobs') {
      const series = this.latencySeries.get(o.probe) ?? [];
      series.push({ t: iso(o.at), ms: Math.round(o.latencyMs * 10) / 10 });
      if (series.length > LATENCY_MAX_POINTS) series.splice(0, series.length - LATENCY_MAX_POINTS);
      this.latencySeries.set(o.probe, series);
    }
    this.resultBuffer.push({
      id: this.ctx.ids.next(),
      probe: o.probe,
      ok: o.ok ? 1 : 0,
      latency_ms: o.latencyMs,
      detail: o.detail.slice(0, 1000),
      node_id: this.ctx.config.nodeId,
      created_at: iso(o.at || now),
    });
    if (this.resultBuffer.length > MAX_BUFFERED_RESULTS) this.resultBuffer.splice(0, this.resultBuffer.length - MAX_BUFFERED_RESULTS);
  }

  /** One uptime sample per component per probe interval (faster confirmation rounds do not weigh more). */
  private sample(now: number): void {
    if (now - this.lastSampleAt < this.intervalMs * 0.9) return;
    this.lastSampleAt = now;
    const day = dayOf(now);
    for (const v of this.views) {
      // Degraded still works (slowly); maintenance is announced. Partial and major outages count as down.
      const up = severity(v.status) < severity('partial_outage') ? 1 : 0;
      const add = (c: DayCount) => {
        c.samples++;
        c.ok += up;
        c.worst = worseForDay(c.worst, v.status);
      };
      const days = this.daily.get(v.id) ?? new Map<string, DayCount>();
      this.daily.set(v.id, days);
      const d = days.get(day) ?? { samples: 0, ok: 0, worst: 'operational' };
      add(d);
      days.set(day, d);
      const key = `${v.id}|${day}`;
      const delta = this.dailyDelta.get(key) ?? { component: v.id, day, samples: 0, ok: 0, worst: 'operational' as ComponentState };
      add(delta);
      this.dailyDelta.set(key, delta);
    }
  }

  // ---- live traffic and SLOs -----------------------------------------------------------------

  /** Called for every answered request (an onResponse hook in http/app.ts). Cheap: two counters. */
  recordRequest(method: string, route: string, status: number, probeHeader?: string | string[]): void {
    if (probeHeader !== undefined && probeHeader === this.probeSecret) return;
    const c = componentOfRoute(method, route);
    if (!c) return;
    const t = this.traffic.get(c) ?? { total: 0, errors: 0 };
    t.total++;
    if (status >= 500) t.errors++;
    this.traffic.set(c, t);
  }

  /** True for a request carrying this engine's probe header (exempt from rate limiting). */
  isProbe(probeHeader: string | string[] | undefined): boolean {
    return probeHeader === this.probeSecret;
  }

  private trafficObservations(now: number): [ComponentId, Observation][] {
    const seconds = Math.max(1, Math.round((now - this.trafficSince) / 1000));
    const window = this.traffic;
    this.traffic = new Map();
    this.trafficSince = now;
    const out: [ComponentId, Observation][] = [];
    for (const [c, { total, errors }] of window) {
      if (total < this.minRequests) continue;
      const share = errors / total;
      const words = `${errors} of ${total} requests failed in the last ${seconds} s`;
      if (share >= 0.5) out.push([c, { level: 'fail', cap: 'partial_outage', reason: words }]);
      else if (share >= 0.05) out.push([c, { level: 'fail', cap: 'degraded_performance', reason: words }]);
      else out.push([c, { level: 'ok', reason: `${total - errors} of ${total} requests succeeded` }]);
    }
    return out;
  }

  private sloObservations(now: number): Observation[] {
    if (!this.slo) return [];
    let statuses: SloStatusLike[];
    try {
      statuses = this.slo.evaluate(now);
    } catch (err) {
      this.ctx.log.warn({ err }, 'SLO evaluation failed');
      return [];
    }
    const out: Observation[] = [];
    // (The tracker sets the burn-rate and budget gauges itself as it evaluates.)
    for (const s of statuses) {
      const fastest = Math.max(0, ...Object.values(s.burnRates));
      if (s.alert === 'page') {
        // Burning the latency objective is slowness: the page says "API is slow", not "failing" (a fail observation
        // titles the incident "is failing" whatever its cap). Only 5xx answers burn availability.
        if (s.name === 'latency') {
          const ms = this.ctx.config.ops.slo.latencyThresholdMs;
          out.push({ level: 'slow', reason: `more API requests than the latency objective allows took over ${ms} ms: its error budget is going ${fastest.toFixed(1)}× too fast` });
        } else {
          out.push({ level: 'fail', cap: 'degraded_performance', reason: `the API is using its error budget ${fastest.toFixed(1)}× faster than the ${s.name} objective allows` });
        }
        if (!this.paging.has(s.name)) {
          this.paging.add(s.name);
          this.sendAlert({
            event: 'slo.alert',
            summary: `SLO alert: ${s.name} is burning its error budget ${fastest.toFixed(1)}× too fast`,
            detail: `Objective ${(s.objective * 100).toFixed(2)}%; burn rates ${fmtRates(s.burnRates)}; ${(s.errorBudgetRemaining * 100).toFixed(1)}% of the error budget left.`,
            components: this.publicViews().filter((v) => v.id === 'api'),
            slo: s,
          });
        }
      } else if (this.paging.delete(s.name)) {
        this.sendAlert({
          event: 'slo.resolved',
          summary: `SLO recovered: ${s.name}`,
          detail: `Burn rates ${fmtRates(s.burnRates)}; ${(s.errorBudgetRemaining * 100).toFixed(1)}% of the error budget left.`,
          components: this.publicViews().filter((v) => v.id === 'api'),
          slo: s,
        });
      }
    }
    return out;
  }

  // ---- incidents and alerts ------------------------------------------------------------------

  private handle(events: IncidentEvent[], now: number): void {
    for (const e of events) {
      this.ctx.log.warn({ incident: e.incident.id, event: e.type, status: e.incident.status, title: e.incident.name }, 'incident');
      if (this.book.coveredByMaintenance(e.incident.components, now)) {
        this.ctx.log.info({ incident: e.incident.id }, 'alert silenced: scheduled maintenance covers every affected component');
        continue;
      }
      this.alerts.send(incidentAlert(e, this.publicViews(now), `${this.ctx.urls.base}/status`, iso(now)));
    }
  }

  private sendAlert(a: Omit<Alert, 'pageUrl' | 'at'>): void {
    this.alerts.send({ ...a, pageUrl: `${this.ctx.urls.base}/status`, at: iso(this.clock()) });
  }

  // ---- operators (admin API) -----------------------------------------------------------------

  async createIncident(input: OperatorIncidentInput): Promise<IncidentView> {
    const now = this.clock();
    const e = this.book.create(input, now);
    return this.afterOperatorChange(e, now);
  }

  async updateIncident(id: string, input: OperatorUpdateInput): Promise<IncidentView> {
    const now = this.clock();
    const e = this.book.update(id, input, now);
    return this.afterOperatorChange(e, now);
  }

  async resolveIncident(id: string, input: { body?: string; author: string }): Promise<IncidentView> {
    const now = this.clock();
    const e = this.book.resolve(id, input, now);
    return this.afterOperatorChange(e, now);
  }

  async scheduleMaintenance(input: MaintenanceInput): Promise<MaintenanceView> {
    const now = this.clock();
    const m = this.book.scheduleMaintenance(input, now);
    this.refreshViews(now);
    this.notify();
    await this.persistSoon();
    return maintenanceView(m, now);
  }

  async cancelMaintenance(id: string): Promise<MaintenanceView> {
    const now = this.clock();
    const m = this.book.cancelMaintenance(id, now);
    this.refreshViews(now);
    this.notify();
    await this.persistSoon();
    return maintenanceView(m, now);
  }

  /** Every incident in memory (unresolved and recent resolved), newest first. */
  listIncidents(limit = 50): IncidentView[] {
    return [...this.book.unresolved(), ...this.book.resolved(limit)].slice(0, limit).map(incidentView);
  }

  getIncident(id: string): IncidentView | null {
    const i = this.book.get(id);
    return i ? incidentView(i) : null;
  }

  listMaintenances(): MaintenanceView[] {
    const now = this.clock();
    return [...this.book.maintenances.values()]
      .filter((m) => m.cancelledAt === null)
      .sort((a, b) => Date.parse(b.startsAt) - Date.parse(a.startsAt))
      .map((m) => maintenanceView(m, now));
  }

  private async afterOperatorChange(e: IncidentEvent, now: number): Promise<IncidentView> {
    this.handle([e], now);
    this.notify();
    await this.persistSoon();
    return incidentView(this.book.get(e.incident.id)!);
  }

  /** Writes now, waiting a little: with a healthy database the change is durable before the answer; without, it waits in memory. */
  private async persistSoon(): Promise<void> {
    await withDeadline(this.persistNow(), 2000, 'writing ops state').catch(() => {});
  }

  // ---- StatusSource --------------------------------------------------------------------------

  /** While following: the leader's data as last read (null until the first read, or while leading). */
  private following(): StatusPageData | null {
    return this.leading ? null : this.followed;
  }

  summary(): StatusSummary {
    const f = this.following();
    if (f) return { ...f.summary, page: { ...f.summary.page, id: this.ctx.config.domain } };
    const now = this.clock();
    const fresh = freshness({ lastProbeAt: this.lastProbeAt, startedAt: this.startedAt, staleAfterMs: this.ctx.config.ops.staleAfterSeconds * 1000 }, now);
    const components = this.publicViews(now);
    const incidents = this.book.unresolved().map(incidentView);
    return {
      page: {
        id: this.ctx.config.domain,
        name: this.ctx.config.instanceTitle,
        url: `${this.ctx.urls.base}/status`,
        updated_at: iso(Math.max(this.lastProbeAt ?? this.startedAt, ...incidents.map((i) => Date.parse(i.updated_at)))),
      },
      status: overallStatus(
        components,
        incidents.map((i) => i.impact),
        fresh,
      ),
      components,
      incidents,
      scheduled_maintenances: this.book.upcomingMaintenances(now).map((m) => maintenanceView(m, now)),
      freshness: fresh,
    };
  }

  uptime(component: ComponentId, days: number): DailyUptime[] {
    const f = this.following();
    if (f) return dataSource(f).uptime(component, days);
    const now = this.clock();
    const counts = this.daily.get(component);
    const out: DailyUptime[] = [];
    for (let i = Math.max(1, Math.floor(days)) - 1; i >= 0; i--) {
      const day = dayOf(now - i * DAY_MS);
      const c = counts?.get(day);
      out.push({ day, uptime: c && c.samples > 0 ? c.ok / c.samples : null, worst: c && c.samples > 0 ? c.worst : null });
    }
    return out;
  }

  /** The last 24 hours of a probe's end-to-end latency, oldest first, averaged into at most 1,440 points. */
  latency(probe = 'posting'): LatencyPoint[] {
    const f = this.following();
    if (f && probe === 'posting') return dataSource(f).latency();
    const cutoff = iso(this.clock() - LATENCY_KEEP_MS);
    const series = (this.latencySeries.get(probe) ?? []).filter((p) => p.t >= cutoff);
    if (series.length <= LATENCY_MAX_RETURNED) return series.map((p) => ({ ...p }));
    const per = Math.ceil(series.length / LATENCY_MAX_RETURNED);
    const out: LatencyPoint[] = [];
    for (let i = 0; i < series.length; i += per) {
      const chunk = series.slice(i, i + per);
      out.push({ t: chunk[chunk.length - 1].t, ms: Math.round((chunk.reduce((s, p) => s + p.ms, 0) / chunk.length) * 10) / 10 });
    }
    return out;
  }

  pastIncidents(limit: number): IncidentView[] {
    const f = this.following();
    if (f) return dataSource(f).pastIncidents(limit);
    return this.book.resolved(limit).map(incidentView);
  }

  /** The last outcome of each probe, for the operations page. */
  probeResults(): ProbeOutcome[] {
    return [...this.latest.values()].map((o) => ({ ...o, observations: [...o.observations] }));
  }

  private publicViews(now = this.clock()): ComponentView[] {
    // Maintenance windows start and end between rounds: the page follows the clock, not the last round.
    const windows = this.book.activeMaintenances(now).map((m) => ({ components: m.components, startsAt: Date.parse(m.startsAt), endsAt: Date.parse(m.endsAt) }));
    return deriveViews(this.trackers, windows, now).map(({ cause: _cause, ...v }) => v);
  }

  private notify(): void {
    for (const l of this.listeners) {
      try {
        l();
      } catch (err) {
        this.ctx.log.warn({ err }, 'ops change listener failed');
      }
    }
  }

  // ---- the database (best-effort) ------------------------------------------------------------

  /** One write at a time; a write that cannot finish leaves its rows in memory for the next. */
  private persistNow(): Promise<boolean> {
    this.persisting = this.persisting.then(() => this.persist().catch(() => false));
    return this.persisting;
  }

  private async persist(): Promise<boolean> {
    const now = this.clock();
    if (!this.restored) {
      try {
        await this.restore();
      } catch (err) {
        this.ctx.log.debug({ err }, 'ops state not restored yet');
        return false;
      }
    }
    const results = this.resultBuffer;
    const deltas = [...this.dailyDelta.values()];
    const incidents = [...this.book.dirtyIncidents];
    const maintenances = [...this.book.dirtyMaintenances];
    // Component states are the leader's to write: a follower's views are not observations (an operator's change
    // on a follower still writes its incident or maintenance).
    const statusRows = (this.leading ? this.views : [])
      .filter((v) => {
        const w = this.lastWritten.get(v.id);
        return !w || w.status !== v.status || w.reason !== v.reason || now - w.at > 60_000;
      })
      .map((v) => ({ component: v.id, status: v.status, since: v.since, updated_at: v.updated_at, reason: v.reason }));
    this.resultBuffer = [];
    this.dailyDelta = new Map();
    this.book.dirtyIncidents.clear();
    this.book.dirtyMaintenances.clear();
    try {
      await this.ctx.write(async (trx) => {
        for (let i = 0; i < results.length; i += 100) await trx.insertInto('probe_results').values(results.slice(i, i + 100)).execute();
        for (const d of deltas) {
          await trx
            .insertInto('component_daily')
            .values({ component: d.component, day: d.day, samples: d.samples, ok_samples: d.ok, worst_status: d.worst })
            .onConflict((oc) =>
              oc.columns(['component', 'day']).doUpdateSet((eb) => ({
                samples: eb('component_daily.samples', '+', eb.ref('excluded.samples')),
                ok_samples: eb('component_daily.ok_samples', '+', eb.ref('excluded.ok_samples')),
                worst_status: eb
                  .case()
                  .when(worstRank(eb, 'excluded.worst_status'), '>', worstRank(eb, 'component_daily.worst_status'))
                  .then(eb.ref('excluded.worst_status'))
                  .else(eb.ref('component_daily.worst_status'))
                  .end(),
              })),
            )
            .execute();
        }
        for (const r of statusRows) {
          await trx
            .insertInto('component_status')
            .values(r)
            .onConflict((oc) => oc.column('component').doUpdateSet({ status: r.status, since: r.since, updated_at: r.updated_at, reason: r.reason }))
            .execute();
        }
        for (const id of incidents) {
          const i = this.book.get(id);
          if (i) await saveIncident(trx, i);
        }
        for (const id of maintenances) {
          const m = this.book.maintenances.get(id);
          if (m) await saveMaintenance(trx, m);
        }
      });
    } catch (err) {
      // Keep everything for the next attempt (probe results bounded, newest kept).
      this.resultBuffer = results.concat(this.resultBuffer).slice(-MAX_BUFFERED_RESULTS);
      for (const d of deltas) {
        const key = `${d.component}|${d.day}`;
        const cur = this.dailyDelta.get(key);
        if (cur) {
          cur.samples += d.samples;
          cur.ok += d.ok;
          cur.worst = worseForDay(cur.worst, d.worst);
        } else this.dailyDelta.set(key, d);
      }
      for (const id of incidents) this.book.dirtyIncidents.add(id);
      for (const id of maintenances) this.book.dirtyMaintenances.add(id);
      throw err;
    }
    for (const r of statusRows) this.lastWritten.set(r.component as ComponentId, { status: r.status, reason: r.reason, at: now });
    await this.sync(now);
    if (now - this.lastPrune > 3600_000) {
      this.lastPrune = now;
      await this.prune(now).catch((err) => this.ctx.log.warn({ err }, 'ops prune failed'));
    }
    return true;
  }

  /** Takes in incidents and maintenances written by others (the CLI, other nodes), and refreshes uptime counts. */
  private async sync(now: number): Promise<void> {
    if (this.lastSyncAt !== null && now - this.lastSyncAt < Math.min(2000, this.intervalMs)) return;
    const since = this.lastSyncAt === null ? iso(now - DAY_MS) : iso(this.lastSyncAt - 60_000);
    this.lastSyncAt = now;
    const [incidents, maintenances] = await Promise.all([loadIncidents(this.ctx.db, { changedSince: since }), loadMaintenances(this.ctx.db, iso(now - DAY_MS))]);
    let changed = false;
    for (const i of incidents) {
      const before = this.book.get(i.id);
      const sig = before ? `${before.updates.length}|${before.updatedAt}` : '';
      this.book.mergeIncident(i);
      const after = this.book.get(i.id)!;
      if (sig !== `${after.updates.length}|${after.updatedAt}`) changed = true;
    }
    for (const m of maintenances) {
      const before = this.book.maintenances.get(m.id);
      if (!before || before.cancelledAt !== m.cancelledAt || before.startsAt !== m.startsAt || before.endsAt !== m.endsAt) changed = true;
      this.book.mergeMaintenance(m);
    }
    this.book.trim();
    if (now - this.lastDailyRefresh > 10 * 60_000) {
      this.lastDailyRefresh = now;
      await this.loadDaily(now);
    }
    if (changed) {
      this.refreshViews(now);
      this.notify();
    }
  }

  private async loadDaily(now: number): Promise<void> {
    const rows = await this.ctx.db.selectFrom('component_daily').selectAll().where('day', '>=', dayOf(now - 91 * DAY_MS)).execute();
    this.daily.clear();
    for (const r of rows) {
      if (!(COMPONENTS as readonly string[]).includes(r.component)) continue;
      const days = this.daily.get(r.component as ComponentId) ?? new Map<string, DayCount>();
      days.set(r.day, { samples: r.samples, ok: r.ok_samples, worst: (r.worst_status as ComponentState) ?? 'operational' });
      this.daily.set(r.component as ComponentId, days);
    }
    // Samples taken but not yet written are not in the database: add them back.
    for (const d of this.dailyDelta.values()) {
      const days = this.daily.get(d.component) ?? new Map<string, DayCount>();
      const c = days.get(d.day) ?? { samples: 0, ok: 0, worst: 'operational' as ComponentState };
      c.samples += d.samples;
      c.ok += d.ok;
      c.worst = worseForDay(c.worst, d.worst);
      days.set(d.day, c);
      this.daily.set(d.component, days);
    }
  }

  /** What the database remembers: component states, uptime, latency history, incidents, maintenances. */
  private async restore(): Promise<void> {
    if (this.restored) return;
    const now = this.clock();
    const db = this.ctx.db;
    const [states, incidents, maintenances] = await Promise.all([
      db.selectFrom('component_status').selectAll().execute(),
      loadIncidents(db, { resolvedLimit: 100 }),
      loadMaintenances(db, iso(now - 7 * DAY_MS)),
    ]);
    for (const s of states) {
      const id = s.component as ComponentId;
      const t = this.trackers.get(id);
      // Only if this process has not seen the component itself yet.
      if (!t || t.lastObservedAt !== null || !(COMPONENT_STATES as readonly string[]).includes(s.status)) continue;
      this.trackers.set(id, initialTracker(now, { state: s.status as ComponentState, since: Date.parse(s.since) || now, reason: s.reason }));
      this.lastWritten.set(id, { status: s.status, reason: s.reason, at: now });
    }
    for (const i of incidents) {
      if (i.status !== 'resolved' && i.source === 'auto') i.reported = Object.fromEntries(i.components.map((c) => [c, this.trackers.get(c)?.state ?? 'operational']));
      this.book.mergeIncident(i);
    }
    for (const m of maintenances) this.book.mergeMaintenance(m);
    this.book.trim();
    const cutoff = idAtTime(now - LATENCY_KEEP_MS);
    const series = await Promise.all(
      ['posting', 'streaming', 'timelines', 'search', 'notifications', 'api', 'database'].map(async (probe) => {
        const rows = await db
          .selectFrom('probe_results')
          .select(['latency_ms', 'created_at'])
          .where('probe', '=', probe)
          .where('id', '>=', cutoff)
          .where('latency_ms', 'is not', null)
          .orderBy('id', 'desc')
          .limit(LATENCY_MAX_POINTS)
          .execute();
        return [probe, rows.reverse().map((r) => ({ t: r.created_at, ms: Number(r.latency_ms) }))] as const;
      }),
    );
    for (const [probe, points] of series) {
      const mine = this.latencySeries.get(probe) ?? [];
      this.latencySeries.set(probe, points.concat(mine).slice(-LATENCY_MAX_POINTS));
    }
    await this.loadDaily(now);
    this.lastDailyRefresh = now;
    this.lastSyncAt = now;
    this.restored = true;
    this.refreshViews(now);
  }

  private async prune(now: number): Promise<void> {
    await this.ctx.write((trx) => trx.deleteFrom('probe_results').where('id', '<', idAtTime(now - PROBE_RESULTS_KEEP_MS)).execute());
    // The canary's test statuses older than an hour (deleted ones, and any a failed round left behind): nobody
    // follows the canary, so nothing but its own rows refers to them.
    if (this.canary.accountId) {
      const accountId = this.canary.accountId;
      await this.ctx.write(async (trx) => {
        await trx.deleteFrom('statuses').where('account_id', '=', accountId).where('id', '<', idAtTime(now - 3600_000)).execute();
        await trx
          .updateTable('accounts')
          .set((eb) => ({
            statuses_count: eb.selectFrom('statuses').select((e) => e.fn.countAll<number>().as('n')).where('account_id', '=', accountId).where('deleted_at', 'is', null),
          }))
          .where('id', '=', accountId)
          .execute();
      });
    }
  }
}

const DAY_RANK: Record<ComponentState, number> = { operational: 0, under_maintenance: 1, degraded_performance: 2, partial_outage: 3, major_outage: 4 };
function worseForDay(a: ComponentState, b: ComponentState): ComponentState {
  return (DAY_RANK[b] ?? 0) > (DAY_RANK[a] ?? 0) ? b : a;
}

/** The day-rank of a stored state, as SQL (portable CASE). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
function worstRank(eb: any, column: string) {
  let c = eb.case();
  for (const [state, rank] of Object.entries(DAY_RANK)) c = c.when(eb.ref(column), '=', state).then(rank);
  return c.else(0).end();
}

function fmtRates(r: Record<string, number>): string {
  return Object.entries(r)
    .map(([w, v]) => `${w} ${v.toFixed(1)}×`)
    .join(', ');
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
