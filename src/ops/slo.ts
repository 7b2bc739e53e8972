/**
 * Service-level objectives measured in process, with the multiwindow,
 * multi-burn-rate alerts of the SRE workbook ("Alerting on SLOs").
 *
 * Two SLOs over the API requests this node answers:
 * - availability: the share of requests that are not 5xx;
 * - latency: the share of requests that finish within latencyThresholdMs
 *   (at most the threshold counts as fast, as a Prometheus `le` bucket does).
 * Health checks, scrapes, the status page, streaming long-polls and requests
 * that matched no route are not API requests and are not counted
 * (`isSloRoute`, mirrored by the PromQL selector in rules.ts).
 *
 * Counts live in two bounded rings: one bucket a minute for the last 6 hours
 * (360 buckets: the 5m, 30m, 1h and 6h windows) and one bucket an hour for
 * max(3 days, the SLO period) (the 3d ticket window and the error budget),
 * capped at 366 days. Memory is fixed at construction; nothing grows with traffic.
 *
 * burn rate over W = (error ratio over W) / (1 − objective). A window with fewer
 * than `minRequests` (10) requests is not evidence and burns 0. Alerts:
 *   page   — burn(1h) > 14.4 and burn(5m) > 14.4, or burn(6h) > 6 and burn(30m) > 6
 *   ticket — burn(3d) > 1 and burn(6h) > 1 (when not paging)
 * and, for either, at least `minBadRequests` (10) bad requests in the short
 * window: on little traffic a ratio is loud but not evidence (two slow sign-ins
 * among a fresh node's first ten requests are a 20× latency burn), and a page
 * reaches the public status page. The SRE workbook's advice for low traffic;
 * total outages of a quiet node are the synthetic probes' to find.
 * A window is the last N buckets including the current, partly filled one, so
 * "5m" covers between 4 and 5 minutes of traffic.
 *
 * A node only knows what it has seen since it started: the windows and the
 * budget cover min(window, uptime). Prometheus holds the history across
 * restarts and nodes (`starling ops rules`).
 */
import type { Config } from '../config.js';
import type { Metrics } from './metrics.js';

export interface SloStatus {
  name: string;
  objective: number;
  burnRates: Record<string, number>;
  errorBudgetRemaining: number;
  alert: null | 'page' | 'ticket';
}

export type SloConfig = Config['ops']['slo'];

/** Windows with fewer requests than this are ignored (burn 0, budget untouched). */
export const MIN_REQUESTS = 10;
/** An alert needs at least this many bad requests in its short window (which the long one contains). */
export const MIN_BAD_REQUESTS = 10;

const MINUTE = 60_000;
const HOUR = 3_600_000;

/** The windows, longest first within each ring. `ms` is the window length. */
export const WINDOWS = [
  { name: '5m', ms: 5 * MINUTE },
  { name: '30m', ms: 30 * MINUTE },
  { name: '1h', ms: HOUR },
  { name: '6h', ms: 6 * HOUR },
  { name: '3d', ms: 72 * HOUR },
] as const;
export type WindowName = (typeof WINDOWS)[number]['name'];

/** The alert policy: each pair of windows must both burn faster than `burn`. */
export const ALERT_POLICY = [
  { severity: 'page', speed: 'Fast', long: '1h', short: '5m', burn: 14.4 },
  { severity: 'page', speed: 'Slow', long: '6h', short: '30m', burn: 6 },
  { severity: 'ticket', speed: 'Ticket', long: '3d', short: '6h', burn: 1 },
] as const satisfies readonly { severity: 'page' | 'ticket'; speed: string; long: WindowName; short: WindowName; burn: number }[];

/** Exact route patterns that are not API requests. */
export const EXCLUDED_ROUTES = ['/healthz', '/readyz', '/health', '/metrics', 'unmatched'] as const;
/** Route pattern prefixes that are not API requests: the status page and its API, streaming (long-lived by design). */
export const EXCLUDED_ROUTE_PREFIXES = ['/status', '/api/v1/streaming'] as const;

/** Whether a request on this route pattern (Fastify's `routeOptions.url`, or 'unmatched') counts towards the SLOs. */
export function isSloRoute(route: string): boolean {
  if ((EXCLUDED_ROUTES as readonly string[]).includes(route)) return false;
  return !EXCLUDED_ROUTE_PREFIXES.some((p) => route === p || route.startsWith(`${p}/`));
}

/** The two SLOs and what makes a request bad for each. */
const SLOS = [
  { name: 'availability', objective: (c: SloConfig) => c.availability, bad: (status: number, _s: number, _c: SloConfig) => status >= 500 },
  { name: 'latency', objective: (c: SloConfig) => c.latency, bad: (_status: number, s: number, c: SloConfig) => s * 1000 > c.latencyThresholdMs },
] as const;

/**
 * Fixed-size ring of time buckets. Each slot remembers which bucket number it
 * holds, so slots left over from an earlier lap are never read as current and
 * no sweep is needed when traffic stops for a while.
 */
class Ring {
  private readonly ids: Float64Array;
  private readonly total: Float64Array;
  private readonly bad: Float64Array[];

  constructor(
    readonly widthMs: number,
    readonly size: number,
    kinds: number,
  ) {
    this.ids = new Float64Array(size).fill(-1);
    this.total = new Float64Array(size);
    this.bad = Array.from({ length: kinds }, () => new Float64Array(size));
  }

  add(nowMs: number, badFlags: readonly boolean[]): void {
    const id = Math.floor(nowMs / this.widthMs);
    const slot = id % this.size;
    const held = this.ids[slot];
    if (held > id) return; // older than the ring reaches (a clock that went back a lap)
    if (held !== id) {
      this.ids[slot] = id;
      this.total[slot] = 0;
      for (const b of this.bad) b[slot] = 0;
    }
    this.total[slot]++;
    badFlags.forEach((isBad, k) => {
      if (isBad) this.bad[k][slot]++;
    });
  }

  /** Sums of the last `n` buckets up to and including the one `nowMs` falls in. */
  sum(nowMs: number, n: number): { total: number; bad: number[] } {
    const cur = Math.floor(nowMs / this.widthMs);
    const first = cur - Math.min(n, this.size) + 1;
    let total = 0;
    const bad = this.bad.map(() => 0);
    for (let slot = 0; slot < this.size; slot++) {
      const id = this.ids[slot];
      if (id < first || id > cur) continue;
      total += this.total[slot];
      this.bad.forEach((b, k) => (bad[k] += b[slot]));
    }
    return { total, bad };
  }
}

export interface SloTrackerOptions {
  /** Windows (and budgets) with fewer requests are ignored. Default MIN_REQUESTS (10). */
  minRequests?: number;
  /** An alert's short window needs at least this many bad requests. Default MIN_BAD_REQUESTS (10). */
  minBadRequests?: number;
  /** When given, every evaluate() sets starling_slo_burn_rate and starling_slo_error_budget_remaining. */
  metrics?: Pick<Metrics, 'sloBurnRate' | 'sloErrorBudgetRemaining'>;
}

/** Counts behind one SLO's figures, for operators' pages and tests. */
export interface SloWindowCounts {
  requests: number;
  errors: number;
}

export class SloTracker {
  private readonly minutes = new Ring(MINUTE, 360, SLOS.length);
  private readonly hours: Ring;
  private readonly periodHours: number;
  private readonly minRequests: number;
  private readonly minBadRequests: number;
  private readonly metrics: SloTrackerOptions['metrics'];
  /** When this tracker started counting: the budget covers at most the time since. */
  readonly startedAt: number;

  constructor(
    private readonly cfg: SloConfig,
    private readonly now: () => number = Date.now,
    opts: SloTrackerOptions = {},
  ) {
    this.periodHours = Math.min(Math.ceil(cfg.periodDays * 24), 366 * 24);
    // +1: the current hour is partly filled, so a full period needs one more slot.
    this.hours = new Ring(HOUR, Math.max(72, this.periodHours) + 1, SLOS.length);
    this.minRequests = opts.minRequests ?? MIN_REQUESTS;
    this.minBadRequests = opts.minBadRequests ?? MIN_BAD_REQUESTS;
    this.metrics = opts.metrics;
    this.startedAt = now();
  }

  /** One finished request. `route` is the route pattern; requests outside the SLOs' scope are ignored. */
  record(route: string, status: number, seconds: number): void {
    if (!isSloRoute(route)) return;
    const t = this.now();
    const flags = SLOS.map((s) => s.bad(status, seconds, this.cfg));
    this.minutes.add(t, flags);
    this.hours.add(t, flags);
  }

  /** Requests and errors per SLO for each window and the budget period. */
  counts(nowMs: number = this.now()): Record<string, Record<WindowName | 'period', SloWindowCounts>> {
    const sums = {} as Record<WindowName | 'period', { total: number; bad: number[] }>;
    for (const w of WINDOWS) {
      sums[w.name] = w.ms <= 6 * HOUR ? this.minutes.sum(nowMs, w.ms / MINUTE) : this.hours.sum(nowMs, w.ms / HOUR);
    }
    sums.period = this.hours.sum(nowMs, this.periodHours);
    const out: Record<string, Record<WindowName | 'period', SloWindowCounts>> = {};
    SLOS.forEach((slo, k) => {
      out[slo.name] = Object.fromEntries(
        Object.entries(sums).map(([w, s]) => [w, { requests: s.total, errors: s.bad[k] }]),
      ) as Record<WindowName | 'period', SloWindowCounts>;
    });
    return out;
  }

  /** Burn rates, budget and alert state of each SLO at `nowMs`; updates the SLO gauges when metrics were given. */
  evaluate(nowMs: number = this.now()): SloStatus[] {
    const counts = this.counts(nowMs);
    const result = SLOS.map((slo): SloStatus => {
      const objective = slo.objective(this.cfg);
      const allowedRatio = 1 - objective;
      const c = counts[slo.name];
      const burnRates: Record<string, number> = {};
      for (const w of WINDOWS) {
        const { requests, errors } = c[w.name];
        burnRates[w.name] = requests < this.minRequests ? 0 : errors / requests / allowedRatio;
      }
      const p = c.period;
      // Request-based budget: errors so far against the errors the objective allows for the requests so far.
      const errorBudgetRemaining = p.requests < this.minRequests ? 1 : 1 - p.errors / (allowedRatio * p.requests);
      const firing = ALERT_POLICY.filter(
        (a) => burnRates[a.long] > a.burn && burnRates[a.short] > a.burn && c[a.short].errors >= this.minBadRequests,
      );
      const alert = firing.some((a) => a.severity === 'page') ? 'page' : firing.length ? 'ticket' : null;
      return { name: slo.name, objective, burnRates, errorBudgetRemaining, alert };
    });
    if (this.metrics) {
      for (const s of result) {
        for (const [window, burn] of Object.entries(s.burnRates)) this.metrics.sloBurnRate.set({ slo: s.name, window }, burn);
        this.metrics.sloErrorBudgetRemaining.set({ slo: s.name }, s.errorBudgetRemaining);
      }
    }
    return result;
  }
}
