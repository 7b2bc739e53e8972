/**
 * A small circuit breaker for the database write path. Closed: calls go
 * through. After `failures` dependency failures in a row (a busy database, a
 * write that waited too long, an I/O error) it opens: calls fail at once,
 * without touching the database, for `coolDownMs`. Then it half-opens: one
 * call goes through as a trial; success closes it, failure opens it again.
 *
 * Only dependency failures count. A write that ends in a client error (a
 * missing record, a duplicate) reached the database and came back: that is a
 * success for the breaker.
 */
export type BreakerState = 'closed' | 'open' | 'half_open';

export interface BreakerOptions {
  failures: number;
  coolDownMs: number;
  now?: () => number;
  onChange?: (from: BreakerState, to: BreakerState) => void;
}

export class CircuitBreaker {
  private consecutive = 0;
  private openedAt = 0;
  private trial = false;
  private current: BreakerState = 'closed';
  /** How often it opened, for metrics and tests. */
  opens = 0;
  /** Calls refused without being tried (open, or a trial already running). */
  refused = 0;

  constructor(private readonly opts: BreakerOptions) {}

  private get now(): number {
    return (this.opts.now ?? Date.now)();
  }

  get state(): BreakerState {
    if (this.current === 'open' && this.now - this.openedAt >= this.opts.coolDownMs) this.set('half_open');
    return this.current;
  }

  /** Seconds until a trial call is let through (for Retry-After). */
  retryAfterSeconds(): number {
    return Math.max(1, Math.ceil((this.opts.coolDownMs - (this.now - this.openedAt)) / 1000));
  }

  /** May a call go through now? In half-open, only one trial at a time. */
  allow(): boolean {
    const s = this.state;
    if (s === 'closed') return true;
    if (s === 'open' || this.trial) {
      this.refused++;
      return false;
    }
    this.trial = true;
    return true;
  }

  success(): void {
    this.consecutive = 0;
    this.trial = false;
    if (this.current !== 'closed') this.set('closed');
  }

  failure(): void {
    this.consecutive++;
    const wasTrial = this.trial;
    this.trial = false;
    if (wasTrial || this.current === 'half_open' || (this.current === 'closed' && this.consecutive >= this.opts.failures)) {
      this.openedAt = this.now;
      this.opens++;
      this.set('open');
    }
  }

  private set(to: BreakerState): void {
    const from = this.current;
    if (from === to) return;
    this.current = to;
    this.opts.onChange?.(from, to);
  }
}
