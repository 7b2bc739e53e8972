/**
 * How many requests may run at once, adapted to what the database behind them
 * serves fast: additive increase while requests take at most `TOLERANCE` times
 * as long as they take alone, multiplicative decrease once they take longer (the latency
 * gradient of Netflix's concurrency-limits, "Performance Under Load", 2018;
 * TCP Vegas before it). No maintained Node library does this.
 *
 * Why: the request queue bounds how long a request *waits* to run, but not
 * how long it then takes. On PostgreSQL the requests released run at once
 * and wait for the database together: with 32 running on a database that
 * serves a handful fast, every one of them is slow (the overload bench on
 * PostgreSQL: the home timeline's p99 inside the node 364 ms against 39 ms
 * alone, docs/RELIABILITY.md), and the queue, seeing them run, sheds nothing.
 * Fewer at once, each is fast again, and the rest wait in the queue, where
 * the wait is bounded and the refusals go by priority. On SQLite a read runs
 * to its end in one turn and does not slow the next: the limit stays at its
 * maximum unless commits get slow.
 *
 * The reference is what a request takes alone (nothing else running when it
 * started): a moving average of those, so it does not creep up with the load,
 * as an average of all requests would. Under sustained load few requests run
 * alone and the reference keeps its value from before; once the limit is down
 * to its minimum, what requests take there is the reference, so a database
 * that got slower for everyone does not keep the limit at its minimum. Requests are compared in windows (at least
 * `WINDOW_SAMPLES` answers and `WINDOW_MS`), as the average of the window's requests that ran beside another
 * (at least `MIN_SAMPLES` of them).
 */

export interface ConcurrencyLimitOptions {
  /** The most requests that may run at once (the configured concurrency), and where the limit starts. */
  max: number;
  now?: () => number;
}

/** The fewest: one request's database round trips overlap another's work. */
const MIN_LIMIT = 2;
/**
 * Requests taking this many times longer than alone, on average over a window, is contention. On the overload
 * bench on PostgreSQL, with one writer, 1.5 served a quarter fewer requests than a fixed 32 and 2 more, with the
 * same tail. Once posts no longer queued behind one writer (store/writer.ts, lanes), 1.5 served as much as 2 and
 * kept the home timeline's p99 within 2× its unloaded p99 where 2 did not (docs/RELIABILITY.md, items 33 and 34):
 * the bar is on the p99, this on the average, and PostgreSQL's tail is wide. At 1.5 one slow request among
 * requests that each ran alone could shrink the limit for good; contention is now measured only on requests that
 * ran beside another (`sample`).
 */
export const TOLERANCE = 1.5;
const WINDOW_SAMPLES = 20;
const WINDOW_MS = 100;
/** A window of few answers still closes after this long, if it has `MIN_SAMPLES`. */
const WINDOW_MAX_MS = 1000;
const MIN_SAMPLES = 5;
/** The weight of one request run alone in the reference. */
const ALONE_WEIGHT = 0.05;
/** The most the limit shrinks in one window (to this fraction). */
const MIN_GRADIENT = 0.5;

export class ConcurrencyLimit {
  private value: number;
  private readonly min: number;
  private readonly now: () => number;
  /** What a request takes alone (ms), once one has been seen. */
  private aloneMs: number | null = null;
  private windowStart: number;
  private windowCount = 0;
  /** The window's requests that ran beside another (did not start alone, or had company when they finished). */
  private sharedSum = 0;
  private sharedCount = 0;
  /** Whether the window's requests ever filled the limit: only then is more room worth trying. */
  private windowFull = false;

  constructor(private readonly opts: ConcurrencyLimitOptions) {
    this.min = Math.min(opts.max, MIN_LIMIT);
    this.value = opts.max;
    this.now = opts.now ?? (() => performance.now());
    this.windowStart = this.now();
  }

  /** Requests that may run at once now. */
  get current(): number {
    return Math.floor(this.value);
  }

  /** What a request takes alone, as far as known (ms). */
  get reference(): number | null {
    return this.aloneMs;
  }

  /**
   * A request that ran was answered after `ms`. `alone`: nothing else was running when it started. `running`:
   * the requests running as it finished, itself included.
   */
  sample(ms: number, alone: boolean, running: number): void {
    // At the minimum nothing runs with fewer: what a request takes there is the best reference there is. (With two
    // running, a request released as the other finishes starts beside the next one: none would ever start alone.)
    if (alone || this.value <= this.min) this.aloneMs = this.aloneMs === null ? ms : this.aloneMs + ALONE_WEIGHT * (ms - this.aloneMs);
    this.windowCount++;
    if (!alone || running > 1) {
      this.sharedSum += ms;
      this.sharedCount++;
    }
    if (running >= this.current) this.windowFull = true;
    const t = this.now();
    const elapsed = t - this.windowStart;
    if (!((this.windowCount >= WINDOW_SAMPLES && elapsed >= WINDOW_MS) || (this.windowCount >= MIN_SAMPLES && elapsed >= WINDOW_MAX_MS))) return;
    // Contention is measured on requests that ran beside another. However slow a request alone was (a garbage
    // collection, a cold cache, a slow statement), that is not contention: counted, one-at-a-time traffic could
    // shrink the limit, and, never filling it, never grow it back (item 33 in docs/RELIABILITY.md).
    const average = this.sharedSum / this.sharedCount;
    if (this.sharedCount >= MIN_SAMPLES && this.aloneMs !== null && average > TOLERANCE * this.aloneMs) {
      this.value = Math.max(this.min, this.value * Math.max(MIN_GRADIENT, (TOLERANCE * this.aloneMs) / average));
    } else if (this.windowFull) {
      this.value = Math.min(this.opts.max, this.value + 1);
    }
    this.windowStart = t;
    this.windowCount = 0;
    this.sharedSum = 0;
    this.sharedCount = 0;
    this.windowFull = false;
  }
}
