/**
 * Admission control: how much of the deferrable traffic a busy node lets in
 * (essential requests are paced by the request queue, http/request-queue.ts,
 * which bounds their wait directly).
 *
 * Thresholds alone (shed everything above X, nothing below) make a node
 * oscillate under sustained overload: it sheds for a sample interval, the
 * loop drains, it admits everything, the loop floods again, and the requests
 * admitted at the top of each wave wait behind the whole wave. Their p99 is
 * the wave's length, not the service time.
 *
 * So admission is a fraction, adjusted after every sample by additive
 * increase / multiplicative decrease (as TCP does): while the event loop is
 * busier than the target (utilisation or delay, both measured by
 * @fastify/under-pressure), the admitted fraction shrinks by a quarter; while
 * it is comfortably below, it grows by a step. A request is admitted with
 * that probability, so no client is singled out, and the loop stays near the
 * target utilisation, where the wait before a request runs stays short. The
 * work saved is real: a refused request costs a header parse and a short 503.
 */

export interface LoadSample {
  /** Event-loop utilisation over the last sample interval, 0–1. */
  utilisation: number;
  /** Mean event-loop delay over the last sample interval, ms. */
  delayMs: number;
}

export interface AdmissionOptions {
  /** Above this utilisation the admitted fraction shrinks. */
  targetUtilisation: number;
  /** …or above this event-loop delay. */
  targetDelayMs: number;
  /** Never admit less than this (some work must get through, or nothing would show that the load has gone). */
  floor?: number;
  /** Growth per calm sample. */
  step?: number;
  /** Shrink factor per busy sample. */
  backoff?: number;
  random?: () => number;
}

export class Admission {
  private current = 1;
  private busyStreak = 0;
  private readonly floor: number;
  private readonly step: number;
  private readonly backoff: number;
  private readonly random: () => number;
  /** Admitted and refused since start, for metrics. */
  readonly counts = { admitted: 0, refused: 0 };

  constructor(private readonly opts: AdmissionOptions) {
    this.floor = opts.floor ?? 0.05;
    this.step = opts.step ?? 0.05;
    this.backoff = opts.backoff ?? 0.75;
    this.random = opts.random ?? Math.random;
  }

  /** The fraction of essential requests admitted now. */
  get fraction(): number {
    return this.current;
  }

  /** True while the node is turning essential work away: deferrable work has no place then. */
  get throttling(): boolean {
    return this.current < 1;
  }

  update(s: LoadSample): void {
    const busy = s.utilisation > this.opts.targetUtilisation || s.delayMs > this.opts.targetDelayMs;
    this.busyStreak = busy ? this.busyStreak + 1 : 0;
    // One busy sample alone (a garbage collection, a burst of JIT at start) turns nobody away: two in a row do.
    if (this.busyStreak >= 2) this.current = Math.max(this.floor, this.current * this.backoff);
    else if (!busy) this.current = Math.min(1, this.current + this.step);
  }

  admit(): boolean {
    const ok = this.current >= 1 || this.random() < this.current;
    if (ok) this.counts.admitted++;
    else this.counts.refused++;
    return ok;
  }
}
