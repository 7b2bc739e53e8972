/**
 * Per-minute figures of this node for the last 6 hours, for the operators'
 * page in the web app (GET /api/v1/admin/starling/ops):
 *
 * - requests and 5xx responses, and p50/p95/p99 latency from a small
 *   fixed-bucket histogram per minute (fed by the onResponse hook in
 *   http/app.ts; the same requests the SLOs count, see `isSloRoute`);
 * - the SLO burn rates, sampled once a minute from the SLO tracker (a 60 s
 *   unref'd timer, and live for the current minute when read);
 * - the posting probe's end-to-end latency, averaged per minute from the ops
 *   engine's in-memory series when read.
 *
 * Memory is fixed at construction (360 slots of typed arrays); a slot
 * remembers which minute it holds, so old laps are never read as current.
 * Nothing here touches the database.
 */
import type { LatencyPoint } from './model.js';
import { WINDOWS, isSloRoute, type SloStatus } from './slo.js';

const MINUTE = 60_000;
/** 6 hours of minutes. */
export const SERIES_MINUTES = 360;
/** Upper bounds (ms) of the per-minute latency histogram; one more bucket holds the rest. */
export const LATENCY_BOUNDS_MS = [5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10_000] as const;
const NB = LATENCY_BOUNDS_MS.length + 1;
const SLO_NAMES = ['availability', 'latency'] as const;
/** `availability_5m`, `latency_1h`, …: every SLO × window the tracker reports. */
export const BURN_KEYS = SLO_NAMES.flatMap((s) => WINDOWS.map((w) => `${s}_${w.name}`));

export interface MinuteFigures {
  /** Start of the minute (ISO-8601). */
  t: string;
  requests: number;
  errors: number;
  /** Latency percentiles (ms) of the minute's requests; null without requests. */
  p50_ms: number | null;
  p95_ms: number | null;
  p99_ms: number | null;
  /** Burn rates sampled in this minute (`availability_1h`, …); null when not sampled (the node was not running). */
  burn: Record<string, number> | null;
  /** Mean end-to-end latency of the posting probe in this minute; null when no probe finished. */
  probe_ms: number | null;
}

export interface OpsSeriesOptions {
  now?: () => number;
  /** The SLO tracker's evaluate(); sampled every minute. */
  slo?: () => SloStatus[];
  /** The posting probe's recent latency (the ops engine's latency('posting')). */
  probeLatency?: () => LatencyPoint[];
}

export class OpsSeries {
  private readonly ids = new Float64Array(SERIES_MINUTES).fill(-1);
  private readonly requests = new Float64Array(SERIES_MINUTES);
  private readonly errors = new Float64Array(SERIES_MINUTES);
  private readonly maxMs = new Float64Array(SERIES_MINUTES);
  private readonly hist = new Uint32Array(SERIES_MINUTES * NB);
  private readonly burnIds = new Float64Array(SERIES_MINUTES).fill(-1);
  private readonly burn = new Float64Array(SERIES_MINUTES * BURN_KEYS.length);
  private readonly now: () => number;
  private timer: NodeJS.Timeout | null = null;
  /** The first minute this node counted. */
  readonly startedMinute: number;

  constructor(private readonly opts: OpsSeriesOptions = {}) {
    this.now = opts.now ?? Date.now;
    this.startedMinute = Math.floor(this.now() / MINUTE);
  }

  /** Samples the burn rates every minute (unref'd: never holds the process open). */
  start(): void {
    if (this.timer) return;
    this.sample();
    this.timer = setInterval(() => this.sample(), MINUTE);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** One answered request: its route pattern, status and duration in ms. Cheap: a few array writes. */
  record(route: string, status: number, ms: number): void {
    if (!isSloRoute(route)) return;
    const slot = this.slotFor(Math.floor(this.now() / MINUTE));
    if (slot < 0) return;
    this.requests[slot]++;
    if (status >= 500) this.errors[slot]++;
    if (ms > this.maxMs[slot]) this.maxMs[slot] = ms;
    let b = 0;
    while (b < LATENCY_BOUNDS_MS.length && ms > LATENCY_BOUNDS_MS[b]) b++;
    this.hist[slot * NB + b]++;
  }

  /** Stores the SLO burn rates in the current minute's slot. */
  sample(statuses?: SloStatus[]): void {
    const list = statuses ?? this.evaluate();
    if (!list) return;
    const minute = Math.floor(this.now() / MINUTE);
    const slot = minute % SERIES_MINUTES;
    this.burnIds[slot] = minute;
    this.burn.fill(0, slot * BURN_KEYS.length, (slot + 1) * BURN_KEYS.length);
    for (const s of list) {
      for (const [w, v] of Object.entries(s.burnRates)) {
        const k = BURN_KEYS.indexOf(`${s.name}_${w}`);
        if (k >= 0) this.burn[slot * BURN_KEYS.length + k] = Number.isFinite(v) ? v : 0;
      }
    }
  }

  /**
   * The minutes since this node started (at most the last 360), oldest first,
   * the current (partial) one last. `current` (the SLO statuses the caller
   * just evaluated) fills the current minute's burn rates if not sampled yet.
   */
  minutes(current?: SloStatus[]): MinuteFigures[] {
    const nowMinute = Math.floor(this.now() / MINUTE);
    if (current && this.burnIds[nowMinute % SERIES_MINUTES] !== nowMinute) this.sample(current);
    const first = Math.max(this.startedMinute, nowMinute - SERIES_MINUTES + 1);
    const probe = this.probeByMinute(first);
    const out: MinuteFigures[] = [];
    for (let m = first; m <= nowMinute; m++) {
      const slot = m % SERIES_MINUTES;
      const held = this.ids[slot] === m;
      const requests = held ? this.requests[slot] : 0;
      const pct = (q: number) => (held && requests > 0 ? this.percentile(slot, q) : null);
      let burn: Record<string, number> | null = null;
      if (this.burnIds[slot] === m) {
        burn = {};
        BURN_KEYS.forEach((key, k) => (burn![key] = round(this.burn[slot * BURN_KEYS.length + k], 3)));
      }
      const p = probe.get(m);
      out.push({
        t: new Date(m * MINUTE).toISOString(),
        requests,
        errors: held ? this.errors[slot] : 0,
        p50_ms: pct(0.5),
        p95_ms: pct(0.95),
        p99_ms: pct(0.99),
        burn,
        probe_ms: p ? round(p.sum / p.n, 1) : null,
      });
    }
    return out;
  }

  private evaluate(): SloStatus[] | null {
    if (!this.opts.slo) return null;
    try {
      return this.opts.slo();
    } catch {
      return null;
    }
  }

  /** The slot for `minute`, cleared if it held an older one; -1 for a minute the ring no longer reaches. */
  private slotFor(minute: number): number {
    const slot = minute % SERIES_MINUTES;
    const held = this.ids[slot];
    if (held > minute) return -1;
    if (held !== minute) {
      this.ids[slot] = minute;
      this.requests[slot] = 0;
      this.errors[slot] = 0;
      this.maxMs[slot] = 0;
      this.hist.fill(0, slot * NB, slot * NB + NB);
    }
    return slot;
  }

  /**
   * The q-quantile of a minute's histogram, interpolated linearly within the
   * bucket it falls in (as Prometheus's histogram_quantile does) and never
   * more than the slowest request seen in that minute.
   */
  private percentile(slot: number, q: number): number {
    const total = this.requests[slot];
    const rank = q * total;
    let seen = 0;
    for (let b = 0; b < NB; b++) {
      const n = this.hist[slot * NB + b];
      if (n > 0 && seen + n >= rank) {
        const lower = b === 0 ? 0 : LATENCY_BOUNDS_MS[b - 1];
        const upper = b < LATENCY_BOUNDS_MS.length ? LATENCY_BOUNDS_MS[b] : this.maxMs[slot];
        const v = lower + ((upper - lower) * (rank - seen)) / n;
        return round(Math.min(v, this.maxMs[slot]), 1);
      }
      seen += n;
    }
    return round(this.maxMs[slot], 1);
  }

  private probeByMinute(first: number): Map<number, { sum: number; n: number }> {
    const out = new Map<number, { sum: number; n: number }>();
    let points: LatencyPoint[] = [];
    try {
      points = this.opts.probeLatency?.() ?? [];
    } catch {
      return out;
    }
    for (const p of points) {
      const m = Math.floor(Date.parse(p.t) / MINUTE);
      if (!(m >= first) || !Number.isFinite(p.ms)) continue;
      const acc = out.get(m) ?? { sum: 0, n: 0 };
      acc.sum += p.ms;
      acc.n++;
      out.set(m, acc);
    }
    return out;
  }
}

function round(v: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(v * f) / f;
}
