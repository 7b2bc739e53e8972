import { describe, expect, it } from 'vitest';
import { ConcurrencyLimit, TOLERANCE } from '../../src/http/concurrency-limit.js';
import { RequestQueue } from '../../src/http/request-queue.js';

/**
 * A model of a database that serves `capacity` requests at once at full speed: with more running, each takes
 * proportionally longer (`baseMs × running / capacity`), as queries sharing a CPU do.
 */
function database(capacity: number, baseMs: number) {
  return (running: number) => baseMs * Math.max(1, running / capacity);
}

/** Drives the limit with a closed loop that always has requests waiting: each window, `current` requests finish. */
function drive(limit: ConcurrencyLimit, clock: { t: number }, serve: (running: number) => number, windows: number): number[] {
  const seen: number[] = [];
  for (let w = 0; w < windows; w++) {
    const running = limit.current;
    const ms = serve(running);
    // A window's worth of answers: enough of them, and at least its minimum length.
    for (let i = 0; i < 25; i++) {
      clock.t += 5;
      limit.sample(ms, false, running);
    }
    seen.push(limit.current);
  }
  return seen;
}

describe('the adaptive concurrency limit', () => {
  it('starts at its maximum and stays there while requests run as fast together as alone', () => {
    const clock = { t: 0 };
    const limit = new ConcurrencyLimit({ max: 32, now: () => clock.t });
    limit.sample(10, true, 1);
    const seen = drive(limit, clock, () => 10, 20);
    expect(seen.every((n) => n === 32)).toBe(true);
  });

  it('comes down to about what the database serves fast, and keeps requests within the tolerance of alone', () => {
    const clock = { t: 0 };
    const limit = new ConcurrencyLimit({ max: 32, now: () => clock.t });
    limit.sample(10, true, 1);
    const serve = database(4, 10);
    const seen = drive(limit, clock, serve, 60);
    const settled = seen.slice(-20);
    // Additive increase, multiplicative decrease: it oscillates around capacity × tolerance (4 × 1.5 = 6).
    const target = 4 * TOLERANCE;
    expect(Math.max(...settled)).toBeLessThanOrEqual(target + 1);
    expect(Math.min(...settled)).toBeGreaterThanOrEqual(target * 0.75);
    // What the requests then take: within a quarter past the tolerance of what they take alone (10 ms), where 32 at
    // once took 8 times as long.
    expect(Math.max(...settled.map(serve))).toBeLessThanOrEqual(10 * (TOLERANCE + 0.25));
    expect(serve(32)).toBe(80);
  });

  it('grows again when the database gets faster, but only while the limit is in use', () => {
    const clock = { t: 0 };
    const limit = new ConcurrencyLimit({ max: 32, now: () => clock.t });
    limit.sample(10, true, 1);
    drive(limit, clock, database(4, 10), 40);
    const low = limit.current;
    expect(low).toBeLessThanOrEqual(9);
    // Few requests: never more running than half the limit. No evidence that more would be fast: no growth.
    for (let i = 0; i < 200; i++) {
      clock.t += 5;
      limit.sample(10, false, 1);
    }
    expect(limit.current).toBe(low);
    // A faster database (16 at once at full speed) and requests filling the limit: it climbs back.
    drive(limit, clock, database(16, 10), 40);
    expect(limit.current).toBeGreaterThanOrEqual(16);
  });

  it('is not shrunk by requests that each ran alone, however much slower than the reference some are', () => {
    const clock = { t: 0 };
    const limit = new ConcurrencyLimit({ max: 32, now: () => clock.t });
    // The reference is learned from fast requests (2 ms, alone, a window of them)...
    for (let i = 0; i < 20; i++) {
      clock.t += 5;
      limit.sample(2, true, 1);
    }
    // ...then one client goes on one request at a time, and in each window one of them is slow (a cold cache, a
    // garbage collection): 200 ms. The window's average is then many times the reference, but nothing ran beside
    // anything: no contention, and the limit keeps its maximum.
    for (let w = 0; w < 10; w++) {
      for (let i = 0; i < 20; i++) {
        clock.t += 6;
        limit.sample(i === 0 ? 200 : 2, true, 1);
      }
    }
    expect(limit.current).toBe(32);
    // The same with a few requests that had company (fewer than a window's minimum of them): still no evidence.
    for (let w = 0; w < 10; w++) {
      for (let i = 0; i < 20; i++) {
        clock.t += 6;
        limit.sample(i < 2 ? 200 : 2, i >= 2, i < 2 ? 2 : 1);
      }
    }
    expect(limit.current).toBe(32);
    // Requests side by side that take many times the reference are contention: it comes down.
    for (let i = 0; i < 40; i++) {
      clock.t += 5;
      limit.sample(200, false, 32);
    }
    expect(limit.current).toBeLessThan(32);
  });

  it('never goes below its minimum, and there learns a database that got slower for everyone', () => {
    const clock = { t: 0 };
    const limit = new ConcurrencyLimit({ max: 32, now: () => clock.t });
    limit.sample(10, true, 1);
    // The database becomes five times slower for everything: at first that looks like contention. The queue stays
    // full, so no request ever starts alone.
    let lowest = 32;
    for (let w = 0; w < 20; w++) {
      for (let i = 0; i < 25; i++) {
        clock.t += 5;
        limit.sample(50, false, limit.current);
        lowest = Math.min(lowest, limit.current);
      }
    }
    expect(lowest).toBe(2);
    // At its minimum, what requests took became the reference: 50 ms is no longer contention, and it grows.
    expect(limit.reference!).toBeGreaterThan(30);
    expect(limit.current).toBeGreaterThan(2);
  });

  it('lets the request queue run only that many at once (on PostgreSQL); a fixed queue keeps its concurrency', async () => {
    const clock = { t: 1000 };
    const opts = { maxWaitMs: { essential: 30, deferrable: 10 }, congestedWaitMs: 5, concurrency: 32, maxQueued: 100, maxPerClient: 100, turnBudgetMs: 1000, now: () => clock.t };
    const adaptive = new RequestQueue({ ...opts, adaptive: true });
    const fixed = new RequestQueue(opts);
    for (const q of [adaptive, fixed]) {
      q.enter('essential', 'alone', () => false);
      q.done('alone', { ms: 10, alone: true });
      // Requests that take eight times as long together, window after window.
      for (let i = 0; i < 200; i++) {
        clock.t += 5;
        q.enter('essential', `c${i}`, () => false);
        q.done(`c${i}`, { ms: 80, alone: false });
      }
    }
    expect(fixed.concurrency).toBe(32);
    expect(adaptive.concurrency).toBe(2);
    // A new turn of the loop; with two running, a third waits.
    await new Promise<void>((r) => setImmediate(r));
    expect(adaptive.enter('essential', 'x', () => false)).toEqual({ run: true, waitedMs: 0, queued: false });
    expect(adaptive.enter('essential', 'y', () => false)).toEqual({ run: true, waitedMs: 0, queued: false });
    const third = adaptive.enter('essential', 'z', () => false);
    expect(third).toBeInstanceOf(Promise);
    adaptive.done('x');
    adaptive.done('y');
    await expect(third).resolves.toMatchObject({ run: true, queued: true });
  });
});
