import { describe, expect, it } from 'vitest';
import { RequestQueue, type RequestQueueOptions, type Ticket } from '../../src/http/request-queue.js';

/** A queue on a clock the test moves; its turns and releases are real setImmediate turns. */
function queue(opts: Partial<RequestQueueOptions> = {}) {
  const clock = { t: 1000 };
  const q = new RequestQueue({
    maxWaitMs: { essential: 30, deferrable: 10 },
    congestedWaitMs: 5,
    concurrency: 100,
    maxQueued: 100,
    maxPerClient: 100,
    turnBudgetMs: 2,
    now: () => clock.t,
    ...opts,
  });
  return { q, clock };
}

/** Lets the queue's pending setImmediate callbacks (turn end, one release) run. */
const turn = () => new Promise<void>((r) => setImmediate(r));

/** Enters and records, in order, which requests ran and which were refused. Each request is its own client unless told. */
function recorder(q: RequestQueue) {
  const ran: string[] = [];
  const refused: string[] = [];
  const tickets = new Map<string, Ticket>();
  const enter = (name: string, priority: 'essential' | 'deferrable' = 'essential', gone = () => false, client = name) => {
    const t = q.enter(priority, client, gone);
    const settle = (ticket: Ticket) => {
      tickets.set(name, ticket);
      (ticket.run ? ran : refused).push(name);
    };
    if (t instanceof Promise) void t.then(settle);
    else settle(t);
    return t;
  };
  return { ran, refused, tickets, enter };
}

describe('the request queue', () => {
  it('runs a request at once on a quiet node, without a promise', () => {
    const { q } = queue();
    const t = q.enter('essential', 'me', () => false);
    expect(t).toEqual({ run: true, waitedMs: 0, queued: false });
    expect(q.running).toBe(1);
    q.done('me');
    expect(q.running).toBe(0);
  });

  it('queues the requests of a turn once the turn has used its budget, and releases them one per turn, oldest first', async () => {
    const { q, clock } = queue();
    const r = recorder(q);
    r.enter('a');
    clock.t += 3; // a ran for 3 ms: the rest of this turn waits
    expect(r.enter('b')).toBeInstanceOf(Promise);
    r.enter('c');
    expect(q.length).toBe(2);
    expect(r.ran).toEqual(['a']);
    await turn();
    expect(r.ran).toEqual(['a', 'b']);
    await turn();
    expect(r.ran).toEqual(['a', 'b', 'c']);
    expect(r.tickets.get('c')).toMatchObject({ run: true, queued: true });
    expect(q.counts).toMatchObject({ immediate: 1, queued: 2, released: 2, expired: 0 });
  });

  it('refuses whoever waited past its class bound, and says how long it waited', async () => {
    const { q, clock } = queue();
    const r = recorder(q);
    r.enter('a');
    clock.t += 3;
    r.enter('late essential');
    r.enter('late deferrable', 'deferrable');
    clock.t += 11; // past the deferrable bound (10 ms), not the essential one (30 ms)
    await turn();
    expect(r.refused).toEqual(['late deferrable']);
    expect(r.tickets.get('late deferrable')).toEqual({ run: false, waitedMs: 11, queued: true });
    expect(r.ran).toEqual(['a', 'late essential']);
  });

  it('serves essential requests before deferrable ones', async () => {
    const { q, clock } = queue();
    const r = recorder(q);
    r.enter('a');
    clock.t += 3;
    r.enter('search', 'deferrable');
    r.enter('home');
    await turn();
    await turn();
    expect(r.ran).toEqual(['a', 'home', 'search']);
  });

  it('serves the newest first and cuts the wait to the congested bound once the queue has not emptied for the essential bound', async () => {
    const { q, clock } = queue({ concurrency: 1 });
    const r = recorder(q);
    r.enter('running'); // holds the only slot: everything after waits
    for (const name of ['e1', 'e2', 'e3']) {
      clock.t += 1;
      r.enter(name);
    }
    await turn();
    expect(r.ran).toEqual(['running']);
    // 32 ms after it last emptied (when e1 came), the queue has not been empty for longer than the essential bound
    // (30 ms): congested. Its three waited 30–32 ms, past the congested bound (5 ms): refused, though e2 and e3 are
    // within the essential bound.
    clock.t += 30;
    r.enter('fresh');
    expect(q.congested()).toBe(true);
    q.done('running');
    await turn();
    expect(r.refused).toEqual(['e1', 'e2', 'e3']);
    expect(r.ran).toEqual(['running', 'fresh']);
  });

  it('serves the newest first under congestion when several are still within the bound', async () => {
    const { q, clock } = queue({ concurrency: 1, congestedWaitMs: 30 });
    const r = recorder(q);
    r.enter('running');
    clock.t += 1;
    r.enter('old'); // the queue is not empty from here on
    clock.t += 31;
    for (const name of ['a', 'b', 'c']) {
      r.enter(name);
      clock.t += 0.5;
    }
    expect(q.congested()).toBe(true);
    q.done('running');
    await turn();
    expect(r.refused).toEqual(['old']); // 32.5 ms > 30 ms
    expect(r.ran).toEqual(['running', 'c']);
    q.done('c');
    await turn();
    q.done('b');
    await turn();
    expect(r.ran).toEqual(['running', 'c', 'b', 'a']);
  });

  it('serves the oldest first while the queue empties now and then', async () => {
    const { q, clock } = queue({ concurrency: 1 });
    const r = recorder(q);
    r.enter('running');
    for (const name of ['a', 'b', 'c']) {
      clock.t += 1;
      r.enter(name);
    }
    expect(q.congested()).toBe(false);
    for (const name of ['running', 'a', 'b']) {
      q.done(name);
      await turn();
    }
    expect(r.ran).toEqual(['running', 'a', 'b', 'c']);
  });

  it('under overload, cuts the wait to the congested bound and serves the newest first, even just after the queue emptied', async () => {
    const run = async (overloaded: boolean) => {
      const { q, clock } = queue({ concurrency: 1, overloaded: () => overloaded });
      const r = recorder(q);
      r.enter('running');
      for (const name of ['a', 'b', 'c']) {
        clock.t += 1;
        r.enter(name);
      }
      clock.t += 4; // a waited 6 ms, b 5, c 4: past the congested bound (5 ms) only a; the queue is 6 ms old
      expect(q.congested()).toBe(false);
      q.done('running');
      await turn();
      return r;
    };
    const calmer = await run(false);
    expect(calmer.refused).toEqual([]);
    expect(calmer.ran).toEqual(['running', 'a']);
    const overloaded = await run(true);
    expect(overloaded.refused).toEqual(['a']);
    expect(overloaded.ran).toEqual(['running', 'c']);
  });

  it('counts a wait from the release of the client’s own previous request: a burst on a busy node is served whole, and is not congestion', async () => {
    const { q, clock } = queue({ concurrency: 1 }); // never calm: the busy rules (30 ms, congested 5 ms)
    const r = recorder(q);
    r.enter('running', 'essential', () => false, 'other');
    clock.t += 3;
    for (let i = 1; i <= 6; i++) r.enter(`app ${i}`, 'essential', () => false, 'app');
    // Each takes 10 ms to answer: the sixth is released 60 ms after it came, all but 10 ms of it behind its own.
    let answering = 'other';
    for (let i = 1; i <= 6; i++) {
      clock.t += 10;
      q.done(answering);
      await turn();
      expect(q.congested()).toBe(false);
      answering = 'app';
    }
    expect(r.refused).toEqual([]);
    expect(r.ran).toEqual(['running', 'app 1', 'app 2', 'app 3', 'app 4', 'app 5', 'app 6']);
    expect(r.tickets.get('app 6')).toMatchObject({ run: true, waitedMs: 60 });
  });

  it('still refuses a burst that waits for others: its clock restarts only when one of its own is released', async () => {
    const { q, clock } = queue({ concurrency: 1 });
    const r = recorder(q);
    r.enter('running', 'essential', () => false, 'other');
    clock.t += 3;
    for (let i = 1; i <= 3; i++) r.enter(`app ${i}`, 'essential', () => false, 'app');
    clock.t += 31; // 'running' holds the only slot past the bound: nothing of the burst was served
    await new Promise((res) => setTimeout(res, 50)); // the queue's timer, set for 30 ms when they came
    expect(r.refused).toEqual(['app 1', 'app 2', 'app 3']);
  });

  it('under congestion, serving the newest of a burst first does not restart the clocks of the ones before it', async () => {
    const { q, clock } = queue({ concurrency: 1 });
    const r = recorder(q);
    r.enter('running', 'essential', () => false, 'other');
    clock.t += 1;
    r.enter('old', 'essential', () => false, 'old'); // waits from here: the queue is not empty of load again
    clock.t += 31;
    for (let i = 1; i <= 3; i++) r.enter(`app ${i}`, 'essential', () => false, 'app');
    expect(q.congested()).toBe(true);
    clock.t += 3;
    q.done('other');
    await turn();
    // Congested: 'old' waited past 5 ms, and the newest is served first.
    expect(r.refused).toEqual(['old']);
    expect(r.ran).toEqual(['running', 'app 3']);
    // app 1 and 2 came before app 3: they did not wait behind it, and their 6 ms are past the congested bound.
    clock.t += 3;
    q.done('app');
    await turn();
    expect(r.refused).toEqual(['old', 'app 1', 'app 2']);
  });

  it('serves the earliest clock first: a request that came during another client’s burst goes before the burst’s rest', async () => {
    const { q, clock } = queue({ concurrency: 1 });
    const r = recorder(q);
    r.enter('running', 'essential', () => false, 'other');
    clock.t += 3;
    for (let i = 1; i <= 4; i++) r.enter(`app ${i}`, 'essential', () => false, 'app');
    clock.t += 10;
    q.done('other');
    await turn(); // app 1 released: app 2–4 now wait behind their own, their clocks from here
    clock.t += 2;
    r.enter('bob', 'essential', () => false, 'bob');
    const answered = ['app', 'app', 'bob', 'app', 'app'];
    for (const client of answered) {
      clock.t += 8;
      q.done(client);
      await turn();
    }
    expect(r.refused).toEqual([]);
    expect(r.ran).toEqual(['running', 'app 1', 'app 2', 'bob', 'app 3', 'app 4']);
  });

  it('refuses at once when the queue is full', () => {
    const { q, clock } = queue({ maxQueued: 2 });
    const r = recorder(q);
    r.enter('a');
    clock.t += 3;
    r.enter('b');
    r.enter('c');
    const t = r.enter('d');
    expect(t).toEqual({ run: false, waitedMs: 0, queued: false });
    expect(q.counts.full).toBe(1);
  });

  it('keeps at most `concurrency` running, releases the next when one is answered, and refuses on time meanwhile', async () => {
    const { q, clock } = queue({ concurrency: 1 });
    const r = recorder(q);
    r.enter('a');
    r.enter('b');
    r.enter('c', 'deferrable');
    await turn();
    expect(r.ran).toEqual(['a']);
    expect(q.running).toBe(1);
    // Nobody answers: the deferrable one is refused on a timer when its bound passes.
    clock.t += 11;
    await new Promise((res) => setTimeout(res, 20));
    expect(r.refused).toEqual(['c']);
    q.done('a');
    await turn();
    expect(r.ran).toEqual(['a', 'b']);
  });

  it('does not run a request whose client went away while it waited', async () => {
    const { q, clock } = queue();
    const r = recorder(q);
    let gone = false;
    r.enter('a');
    clock.t += 3;
    r.enter('left', 'essential', () => gone);
    r.enter('stays');
    gone = true;
    await turn();
    await turn();
    expect(r.refused).toEqual(['left']);
    expect(r.ran).toEqual(['a', 'stays']);
  });

  it('gives one client at most `maxPerClient` of its requests waiting or running, refusing the rest at once, while others still wait their turn', async () => {
    const { q, clock } = queue({ maxPerClient: 3 });
    const r = recorder(q);
    r.enter('first');
    clock.t += 3; // the turn's budget is used: everything after waits
    for (let i = 1; i <= 10; i++) r.enter(`flood ${i}`, 'essential', () => false, 'flooder');
    r.enter('alice');
    r.enter('bob');
    // Three of the flood wait; the other seven are refused at once, said to be over the client's share.
    expect(r.refused).toEqual(['flood 4', 'flood 5', 'flood 6', 'flood 7', 'flood 8', 'flood 9', 'flood 10']);
    expect(r.tickets.get('flood 4')).toEqual({ run: false, waitedMs: 0, queued: false, overShare: true });
    expect(q.counts.overShare).toBe(7);
    expect(q.length).toBe(5);
    for (let i = 0; i < 5; i++) await turn();
    expect(r.ran).toEqual(['first', 'flood 1', 'flood 2', 'flood 3', 'alice', 'bob']);
    // Running counts too: the flooder's three are still being answered, so a fourth that has to wait is refused...
    r.enter('carol');
    clock.t += 3;
    r.enter('flood 11', 'essential', () => false, 'flooder');
    expect(r.refused.at(-1)).toBe('flood 11');
    // ...and once one of them is answered, the next may wait again.
    q.done('flooder');
    r.enter('flood 12', 'essential', () => false, 'flooder');
    expect(r.refused.at(-1)).toBe('flood 11');
    await turn();
    expect(r.ran.at(-1)).toBe('flood 12');
  });

  it('frees a client’s share when its request is refused for waiting', async () => {
    const { q, clock } = queue({ maxPerClient: 1, concurrency: 1 });
    const r = recorder(q);
    r.enter('running');
    r.enter('late', 'deferrable', () => false, 'c');
    clock.t += 11; // past the deferrable bound
    await new Promise((res) => setTimeout(res, 20));
    expect(r.refused).toEqual(['late']);
    r.enter('again', 'essential', () => false, 'c');
    expect(r.tickets.has('again')).toBe(false); // waiting, not refused
    q.done('running');
    await turn();
    expect(r.ran).toEqual(['running', 'again']);
  });

  it('runs whatever can run at once on a quiet node, however many one client sends', () => {
    const { q } = queue({ maxPerClient: 2 });
    const tickets = Array.from({ length: 10 }, () => q.enter('essential', 'batch', () => false));
    expect(tickets.every((t) => !(t instanceof Promise) && t.run)).toBe(true);
    expect(q.counts.overShare).toBe(0);
  });

  it('holds a burst on a calm node: one client over its share waits in order, up to the burst bound, and is not refused', async () => {
    let calm = true;
    const { q, clock } = queue({ maxPerClient: 3, burstWaitMs: 100, calm: () => calm });
    const r = recorder(q);
    // An app opening: twelve requests of one client in one turn, the first using the turn's budget.
    r.enter('app 0', 'essential', () => false, 'app');
    clock.t += 3;
    for (let i = 1; i < 12; i++) r.enter(`app ${i}`, i % 4 === 0 ? 'deferrable' : 'essential', () => false, 'app');
    expect(q.counts.overShare).toBe(0);
    // Past every class bound (30 / 10 / 5 ms) but within the burst's: all still run, essential ones first.
    clock.t += 50;
    for (let i = 0; i < 12; i++) await turn();
    expect(r.refused).toEqual([]);
    expect(r.ran).toEqual(['app 0', 'app 1', 'app 2', 'app 3', 'app 5', 'app 6', 'app 7', 'app 9', 'app 10', 'app 11', 'app 4', 'app 8']);

    // Busy again: the share and the class bounds apply as before.
    calm = false;
    r.enter('flood 0', 'essential', () => false, 'flood');
    clock.t += 3;
    for (let i = 1; i < 6; i++) r.enter(`flood ${i}`, 'essential', () => false, 'flood');
    expect(q.counts.overShare).toBe(3);
    clock.t += 31;
    await turn();
    expect(r.refused).toEqual(['flood 3', 'flood 4', 'flood 5', 'flood 1', 'flood 2']);
  });

  it('takes more waiting than may run at once for load, not a burst, however calm the node says it is', async () => {
    const { q, clock } = queue({ concurrency: 4, maxPerClient: 3, burstWaitMs: 100, calm: () => true });
    const r = recorder(q);
    r.enter('a');
    clock.t += 3;
    // Five of one client wait, over its share of three: a burst while no more than four wait.
    for (let i = 0; i < 5; i++) r.enter(`burst ${i}`, 'essential', () => false, 'app');
    expect(q.counts.overShare).toBe(0);
    // Five waiting is more than may run at once (4): load. The client's share applies to the next one.
    r.enter('burst 5', 'essential', () => false, 'app');
    expect(q.counts.overShare).toBe(1);
    expect(r.refused).toEqual(['burst 5']);
    // And the busy bounds: past the essential 30 ms, the waiters are refused.
    clock.t += 31;
    await turn();
    expect(r.refused).toHaveLength(6);
  });

  it('refuses on a calm node too what waited past the burst bound', async () => {
    const { q, clock } = queue({ burstWaitMs: 100, calm: () => true });
    const r = recorder(q);
    r.enter('a');
    clock.t += 3;
    r.enter('b');
    clock.t += 101;
    await turn();
    expect(r.refused).toEqual(['b']);
  });
});
