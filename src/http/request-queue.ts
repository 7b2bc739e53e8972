/**
 * The queue a request waits in before it runs, so a busy node knows how long
 * each request has waited and serves the ones that can still be served fast.
 *
 * Without it, Node is the queue: every connection that became readable is
 * read in one turn of the event loop (libuv's poll phase) and its request
 * handled to its end, one after another (on SQLite the handlers hardly ever
 * yield). With hundreds of connections the last request of a turn waits for
 * all the others, nobody knows how long, and the newest arrivals wait behind
 * the oldest: under overload every admitted request pays the whole backlog.
 *
 * Here a turn runs only what fits in a small budget at once; the rest is
 * queued with the time it arrived and released one per turn of the loop (a
 * `setImmediate` each, so new connections are read between two releases).
 * Releasing one, the queue, as Facebook's servers do ("Fail at Scale", ACM
 * Queue 13(8), 2015: controlled delay and adaptive LIFO):
 * - refuses whoever has waited longer than its bound (a short 503 costs a
 *   header parse and a write; the client may retry elsewhere). The bound is
 *   the class's `maxWaitMs` while the queue has been empty at some moment of
 *   the last `maxWaitMs` of essential requests — a burst may wait that long —
 *   and `congestedWaitMs` once it has not, or once the node says it is
 *   overloaded (its loop busy most of the time, http/pressure.ts): that is
 *   standing load, and waiting in it only makes every answer later;
 * - serves essential requests before deferrable ones;
 * - serves the oldest first while the queue empties now and then, and the
 *   newest first under standing load: under overload the requests served
 *   are those that can still be served fast, and the ones refused are those
 *   that already waited, instead of every request waiting nearly the bound.
 * At most `concurrency` released requests are in flight (on PostgreSQL they
 * wait for the database concurrently; more would only queue in the pool).
 *
 * Waiting behind your own requests is not load. A request's wait counts
 * against its bound from when it arrived, or from the last release of one of
 * its own client's earlier requests, and requests waiting only behind their
 * own do not keep the queue from counting as empty. An app opening sends a
 * dozen requests at once; on a busy node its last ones waited 30 ms or more
 * behind its first ones, the queue counted as congested for it, and they were
 * refused, on a node with room to serve them all (bench burst --rate,
 * docs/RELIABILITY.md). A client's wait stays bounded: it has at most
 * `maxPerClient` requests in the queue. Oldest first means the earliest clock
 * first, so two clients' bursts take turns rather than one waiting for all of
 * the other's.
 *
 * One client (a token, else an address) has at most `maxPerClient` requests
 * waiting or running once requests have to wait; one more is refused at once.
 * Without that, a client sending requests as fast as it can fills the queue,
 * its requests are released turn after turn (the rate limiter, which would
 * refuse them, runs only after the queue), and everyone else waits past
 * their bound: one client starves all. With it, a client's share of the
 * queue is at most `maxPerClient` of what waits.
 *
 * All of that is for a busy node. A calm one (`calm()`: its loop was mostly
 * idle a moment ago, http/pressure.ts; and no more wait than may run at once)
 * still queues what a single turn cannot run, but lets it wait up to
 * `burstWaitMs`, in order, whoever sent it: an app opening sends a dozen
 * requests at once, and with the busy rules over a third of them were refused
 * on an idle node (most for being over the client's share, the rest for
 * waiting past 10–15 ms behind the others; docs/RELIABILITY.md).
 */

import { ConcurrencyLimit } from './concurrency-limit.js';

export type QueuedPriority = 'essential' | 'deferrable';

export interface RequestQueueOptions {
  /** How long a request of each class may wait before it is refused (ms), while the queue empties now and then. */
  maxWaitMs: Record<QueuedPriority, number>;
  /** …and once it has not been empty for the essential `maxWaitMs` (ms; never more than the class's own bound). */
  congestedWaitMs: number;
  /** Requests released and not yet answered, at most. */
  concurrency: number;
  /**
   * Lower the limit while requests running together take longer than one alone (http/concurrency-limit.ts): for a
   * database the requests wait for together, PostgreSQL. Off, `concurrency` is the limit.
   */
  adaptive?: boolean;
  /** Requests waiting, at most: one more is refused at once. */
  maxQueued: number;
  /** Requests of one client waiting or running, at most, once a request has to wait: one more is refused at once. */
  maxPerClient: number;
  /** Work a turn of the loop may do before later requests of that turn are queued (ms). */
  turnBudgetMs: number;
  /** How long a request may wait while the node is calm: a burst on an idle node, not load (ms). */
  burstWaitMs?: number;
  /** Whether the node is calm now; without it, never (every bound and share applies). */
  calm?: () => boolean;
  /**
   * Whether the node is overloaded now (its loop saturated for a while): every request is bounded and served as in
   * a standing queue, even in a moment the queue emptied. Without it, only the queue's own congestion counts.
   */
  overloaded?: () => boolean;
  now?: () => number;
}

interface Waiter {
  at: number;
  /** From when its wait counts against the bound: its arrival, or the last release of one of its client's earlier requests. */
  clockAt: number;
  /** One of its client's earlier requests was released while it waited: it waits behind its own, not load. */
  behindOwn: boolean;
  client: string;
  /** The client went away while waiting: no point in running it. */
  gone: () => boolean;
  settle: (run: boolean) => void;
}

/** What became of a request: run it (after waiting, or at once), or refuse it (it waited past its bound, or the queue was full). */
export interface Ticket {
  run: boolean;
  /** Time spent in the queue (ms); 0 for a request run at once. */
  waitedMs: number;
  /** It waited in the queue (else it was run or refused at once). */
  queued: boolean;
  /** Refused at once because its client already had `maxPerClient` waiting or running. */
  overShare?: boolean;
}

const AT_ONCE: Ticket = Object.freeze({ run: true, waitedMs: 0, queued: false });
const FULL: Ticket = Object.freeze({ run: false, waitedMs: 0, queued: false });
const OVER_SHARE: Ticket = Object.freeze({ run: false, waitedMs: 0, queued: false, overShare: true });

export class RequestQueue {
  private readonly lanes: Record<QueuedPriority, Waiter[]> = { essential: [], deferrable: [] };
  private inFlight = 0;
  private turnStarted = 0;
  /** When the queue last held no request waiting for load (none, or only ones behind their own client's). */
  private emptyAt = 0;
  /** Waiting requests that are not behind their own client's. */
  private waitingOnLoad = 0;
  private turnOpen = false;
  private pumping = false;
  private timer: NodeJS.Timeout | undefined;
  /** Each client's requests waiting or running (only clients with any: at most maxQueued + concurrency entries). */
  private readonly perClient = new Map<string, number>();
  /** Each client's requests waiting, in arrival order (only clients with any). */
  private readonly waitingOf = new Map<string, Waiter[]>();
  private readonly now: () => number;
  /** Counts since start, for metrics and tests. */
  readonly counts = { immediate: 0, queued: 0, released: 0, expired: 0, full: 0, overShare: 0 };

  private readonly limit: ConcurrencyLimit | null;

  constructor(private readonly opts: RequestQueueOptions) {
    this.now = opts.now ?? (() => performance.now());
    this.limit = opts.adaptive ? new ConcurrencyLimit({ max: opts.concurrency, now: this.now }) : null;
  }

  /** Requests that may run at once now. */
  get concurrency(): number {
    return this.limit?.current ?? this.opts.concurrency;
  }

  /** Requests waiting now. */
  get length(): number {
    return this.lanes.essential.length + this.lanes.deferrable.length;
  }

  /** Requests released and not yet answered. */
  get running(): number {
    return this.inFlight;
  }

  /**
   * Whether the request may run (then call `done` once it is answered) or must be refused. Synchronous (not a
   * promise) when that is known at once, so a quiet node adds no turn of the loop.
   */
  enter(priority: QueuedPriority, client: string, gone: () => boolean): Ticket | Promise<Ticket> {
    const t = this.now();
    if (!this.turnOpen) {
      this.turnOpen = true;
      this.turnStarted = t;
      setImmediate(this.endTurn);
    }
    if (this.waitingOnLoad === 0) this.emptyAt = t;
    if (this.length === 0 && this.inFlight < this.concurrency && t - this.turnStarted <= this.opts.turnBudgetMs) {
      this.inFlight++;
      this.share(client, 1);
      this.counts.immediate++;
      return AT_ONCE;
    }
    if (this.length >= this.opts.maxQueued) {
      this.counts.full++;
      return FULL;
    }
    if ((this.perClient.get(client) ?? 0) >= this.opts.maxPerClient && !this.calm()) {
      this.counts.overShare++;
      return OVER_SHARE;
    }
    this.counts.queued++;
    this.share(client, 1);
    return new Promise((resolve) => {
      const w: Waiter = {
        at: t,
        clockAt: t,
        behindOwn: false,
        client,
        gone,
        settle: (run) => {
          this.leave(w, run);
          resolve({ run, waitedMs: this.now() - t, queued: true });
        },
      };
      this.lanes[priority].push(w);
      this.waitingOnLoad++;
      const mine = this.waitingOf.get(client);
      if (mine) mine.push(w);
      else this.waitingOf.set(client, [w]);
      this.schedule();
    });
  }

  /**
   * A request that ran (at once or released) was answered, or its connection closed: after `ran.ms`, and `ran.alone`
   * if nothing else was running when it started (what adapts the limit).
   */
  done(client: string, ran?: { ms: number; alone: boolean }): void {
    if (ran) this.limit?.sample(ran.ms, ran.alone, this.inFlight);
    this.inFlight--;
    this.share(client, -1);
    if (this.length > 0) this.schedule();
  }

  /**
   * A waiter leaves the queue: released (`run`) or refused. Released, it restarts the clocks of its client's
   * requests that came after it: they were waiting behind it, their own client's work, not behind load.
   */
  private leave(w: Waiter, run: boolean): void {
    if (!run) this.share(w.client, -1);
    if (!w.behindOwn) this.waitingOnLoad--;
    // In arrival order: the ones after it in its client's list came after it.
    const mine = this.waitingOf.get(w.client)!;
    const at = mine.indexOf(w);
    mine.splice(at, 1);
    if (mine.length === 0) this.waitingOf.delete(w.client);
    else if (run) {
      const now = this.now();
      for (const later of mine.slice(at)) {
        later.clockAt = now;
        if (!later.behindOwn) this.waitingOnLoad--;
        later.behindOwn = true;
      }
    }
  }

  /** One more (+1) or one fewer (-1) of the client's requests waiting or running. */
  private share(client: string, delta: 1 | -1): void {
    const n = (this.perClient.get(client) ?? 0) + delta;
    if (n > 0) this.perClient.set(client, n);
    else this.perClient.delete(client);
  }

  private readonly endTurn = () => {
    this.turnOpen = false;
  };

  private schedule(): void {
    if (this.pumping) return;
    this.pumping = true;
    setImmediate(this.pump);
  }

  /** Refuses what waited too long, then releases one request; again at the next turn while any waits. */
  private readonly pump = () => {
    this.pumping = false;
    clearTimeout(this.timer);
    this.timer = undefined;
    const now = this.now();
    this.expire(now);
    if (this.waitingOnLoad === 0) this.emptyAt = now;
    if (this.length === 0) return;
    if (this.inFlight >= this.concurrency) {
      // Nothing can run until an answer comes (done() schedules again); refuse the oldest on time meanwhile.
      this.timer = setTimeout(this.pump, Math.max(1, this.nextExpiry(now) - now));
      return;
    }
    const w = this.pick(now);
    if (w) {
      this.inFlight++;
      this.counts.released++;
      w.settle(true);
    }
    if (this.length > 0) this.schedule();
    if (this.waitingOnLoad === 0) this.emptyAt = now;
  };

  /**
   * True when requests have waited for load, without a moment's break, for longer than the essential bound:
   * standing load, not a burst. One client's burst waiting behind its own requests is not that.
   */
  congested(now = this.now()): boolean {
    return this.waitingOnLoad > 0 && now - this.emptyAt > this.opts.maxWaitMs.essential;
  }

  /** The node says it is calm, and what waits is a burst: no more than may run at once (more is load). */
  private calm(): boolean {
    return this.length <= this.opts.concurrency && (this.opts.calm?.() ?? false);
  }

  /** Standing load: the queue has not emptied for a while, or the node says it is overloaded. */
  private standing(now: number): boolean {
    return this.congested(now) || (this.opts.overloaded?.() ?? false);
  }

  private bound(priority: QueuedPriority, now: number): number {
    const max = this.opts.maxWaitMs[priority];
    if (this.calm()) return Math.max(max, this.opts.burstWaitMs ?? 0);
    return this.standing(now) ? Math.min(max, this.opts.congestedWaitMs) : max;
  }

  private expire(now: number): void {
    for (const priority of ['essential', 'deferrable'] as const) {
      const lane = this.lanes[priority];
      const bound = this.bound(priority, now);
      // Clocks restart (leave()), so the late ones may be anywhere in the lane: all of it is looked at. It is short
      // at any rate that sheds (the bound × the arrival rate).
      const isLate = (w: Waiter) => now - w.clockAt > bound || w.gone();
      if (!lane.some(isLate)) continue;
      const late = new Set(lane.filter(isLate));
      this.lanes[priority] = lane.filter((w) => !late.has(w));
      for (const w of late) {
        this.counts.expired++;
        w.settle(false);
      }
    }
  }

  private nextExpiry(now: number): number {
    let next = Infinity;
    for (const priority of ['essential', 'deferrable'] as const) {
      const bound = this.bound(priority, now);
      for (const w of this.lanes[priority]) next = Math.min(next, w.clockAt + bound);
    }
    return next;
  }

  private pick(now: number): Waiter | undefined {
    const newestFirst = this.standing(now) && !this.calm();
    for (const priority of ['essential', 'deferrable'] as const) {
      const lane = this.lanes[priority];
      while (lane.length > 0) {
        const w = newestFirst ? lane.pop()! : lane.splice(earliestClock(lane), 1)[0];
        if (!w.gone()) return w;
        this.counts.expired++;
        w.settle(false);
      }
    }
    return undefined;
  }
}

/**
 * The waiter whose wait counts from the earliest moment (the first such on a tie): the longest waited against
 * its bound. In arrival order, but a client's request that came after one of its own just released goes behind
 * the others that were waiting then: two clients' bursts take turns, and nobody waits for all of another's.
 */
function earliestClock(lane: Waiter[]): number {
  let best = 0;
  for (let i = 1; i < lane.length; i++) if (lane[i].clockAt < lane[best].clockAt) best = i;
  return best;
}
