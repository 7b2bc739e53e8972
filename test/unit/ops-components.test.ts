/** Component states from observations: hysteresis, dependencies, maintenance, staleness — with a fake clock. */
import { describe, expect, it } from 'vitest';
import {
  deriveViews,
  freshness,
  initialTracker,
  mergeObservations,
  observe,
  overallStatus,
  type Observation,
  type TrackerState,
} from '../../src/ops/components.js';
import type { ComponentId } from '../../src/ops/model.js';

const OK: Observation = { level: 'ok', reason: 'ok' };
const FAIL: Observation = { level: 'fail', reason: 'posting a test status failed: HTTP 500' };
const SLOW: Observation = { level: 'slow', reason: 'a test status took 3.0 s to reach the home timeline' };

/** Feeds observations 10 s apart (the default probe interval) and returns the state after each. */
function run(seq: Observation[], start = initialTracker(0), stepMs = 10_000): { states: string[]; last: TrackerState } {
  let t = start;
  const states: string[] = [];
  seq.forEach((o, i) => {
    t = observe(t, o, (i + 1) * stepMs);
    states.push(t.state);
  });
  return { states, last: t };
}

describe('hysteresis', () => {
  it('keeps one failure as "suspect" only, then degraded, then a major outage', () => {
    const { states } = run([FAIL, FAIL, FAIL, FAIL]);
    expect(states).toEqual(['operational', 'degraded_performance', 'major_outage', 'major_outage']);
    const one = observe(initialTracker(0), FAIL, 1000);
    expect(one.state).toBe('operational');
    expect(one.suspect).toBe(true);
    expect(observe(one, OK, 2000).suspect).toBe(false);
  });

  it('reaches a major outage after 30 s of failure even with slow probe rounds', () => {
    let t = observe(initialTracker(0), FAIL, 0);
    t = observe(t, FAIL, 31_000);
    expect(t.state).toBe('major_outage');
  });

  it('does not flap: a component that alternates between passing and failing stays down', () => {
    const flapping = [FAIL, FAIL, FAIL, OK, FAIL, OK, OK, FAIL, OK, FAIL, OK, OK];
    const { states } = run(flapping);
    // Once down, it never shows operational while the failures keep coming back.
    expect(states.slice(2)).not.toContain('operational');
    const transitions = states.filter((s, i) => i === 0 || s !== states[i - 1]);
    expect(transitions).toEqual(['operational', 'degraded_performance', 'major_outage']);
  });

  it('recovers only after three good observations in a row', () => {
    const down = run([FAIL, FAIL, FAIL]).last;
    const { states, last } = run([OK, OK, OK, OK], down);
    expect(states).toEqual(['major_outage', 'major_outage', 'operational', 'operational']);
    expect(last.reason).toBeNull();
    expect(last.since).toBe(30_000);
  });

  it('treats slow but successful probes as degraded performance, not an outage', () => {
    const { states, last } = run([SLOW, SLOW, SLOW, SLOW, SLOW]);
    expect(states).toEqual(['operational', 'degraded_performance', 'degraded_performance', 'degraded_performance', 'degraded_performance']);
    expect(last.cause).toBe('slow');
    expect(last.reason).toMatch(/took 3.0 s/);
  });

  it('respects a failure cap (a job backlog is at worst a partial outage)', () => {
    const backlog: Observation = { level: 'fail', cap: 'partial_outage', reason: 'posts are late' };
    expect(run([backlog, backlog, backlog, backlog]).states).toEqual(['operational', 'degraded_performance', 'partial_outage', 'partial_outage']);
  });

  it('steps down to a milder problem only after three milder observations in a row', () => {
    const down = run([FAIL, FAIL, FAIL]).last;
    const mild: Observation = { level: 'fail', cap: 'degraded_performance', reason: 'burning error budget' };
    const { states } = run([mild, mild, mild, OK, OK, OK], down);
    expect(states).toEqual(['major_outage', 'major_outage', 'degraded_performance', 'degraded_performance', 'degraded_performance', 'operational']);
  });

  it('never mutates the previous state', () => {
    const t = initialTracker(0);
    const copy = structuredClone(t);
    observe(t, FAIL, 1);
    expect(t).toEqual(copy);
  });

  it('merges several observations of one round: the worst wins', () => {
    expect(mergeObservations([OK, SLOW])!.level).toBe('slow');
    expect(mergeObservations([SLOW, FAIL, OK])!.level).toBe('fail');
    expect(mergeObservations([{ level: 'fail', cap: 'degraded_performance', reason: 'a' }, { level: 'fail', reason: 'b' }])!.reason).toBe('b');
    expect(mergeObservations([])).toBeNull();
  });
});

describe('views', () => {
  const trackers = (states: Partial<Record<ComponentId, TrackerState>>) => new Map(Object.entries(states) as [ComponentId, TrackerState][]);
  const down = run([FAIL, FAIL, FAIL]).last;

  it('drags the components that need a failing database to at least a partial outage, with the reason', () => {
    const views = deriveViews(trackers({ database: down }), [], 40_000);
    const by = Object.fromEntries(views.map((v) => [v.id, v]));
    expect(by.database.status).toBe('major_outage');
    for (const id of ['posting', 'timelines', 'search', 'notifications'] as const) {
      expect(by[id].status).toBe('partial_outage');
      expect(by[id].reason).toBe('database unavailable');
    }
    expect(by.web.status).toBe('operational');
    expect(by.bus.status).toBe('operational');
  });

  it('keeps a dependent that is worse on its own, adding the dependency to its reason', () => {
    const views = deriveViews(trackers({ database: down, posting: down }), [], 40_000);
    const posting = views.find((v) => v.id === 'posting')!;
    expect(posting.status).toBe('major_outage');
    expect(posting.reason).toMatch(/^database unavailable; posting a test status failed/);
  });

  it('shows under_maintenance during a maintenance window only', () => {
    const windows = [{ components: ['search'] as ComponentId[], startsAt: 1000, endsAt: 2000 }];
    expect(deriveViews(trackers({}), windows, 500).find((v) => v.id === 'search')!.status).toBe('operational');
    expect(deriveViews(trackers({}), windows, 1500).find((v) => v.id === 'search')!.status).toBe('under_maintenance');
    expect(deriveViews(trackers({}), windows, 2000).find((v) => v.id === 'search')!.status).toBe('operational');
  });
});

describe('never claims more than it knows', () => {
  const views = deriveViews(new Map(), [], 0);

  it('is unknown before any probe has reported', () => {
    const f = freshness({ lastProbeAt: null, startedAt: 5000, staleAfterMs: 60_000 }, 5001);
    expect(f).toEqual({ last_probe_at: null, stale: true, stale_since: new Date(5000).toISOString() });
    expect(overallStatus(views, [], f).indicator).toBe('unknown');
  });

  it('is unknown once the probes stop reporting for staleAfter, and says since when', () => {
    const fresh = freshness({ lastProbeAt: 10_000, startedAt: 0, staleAfterMs: 60_000 }, 69_000);
    expect(fresh.stale).toBe(false);
    expect(overallStatus(views, [], fresh)).toEqual({ indicator: 'none', description: 'All Systems Operational' });
    const stale = freshness({ lastProbeAt: 10_000, startedAt: 0, staleAfterMs: 60_000 }, 71_000);
    expect(stale).toEqual({ last_probe_at: new Date(10_000).toISOString(), stale: true, stale_since: new Date(70_000).toISOString() });
    const s = overallStatus(views, [], stale);
    expect(s.indicator).toBe('unknown');
    expect(s.description).toContain(new Date(10_000).toISOString());
  });

  it('takes the worst of component states and open incidents otherwise', () => {
    const fresh = freshness({ lastProbeAt: 0, startedAt: 0, staleAfterMs: 60_000 }, 1);
    const degraded = views.map((v) => (v.id === 'search' ? { ...v, status: 'degraded_performance' as const } : v));
    expect(overallStatus(degraded, [], fresh).indicator).toBe('minor');
    expect(overallStatus(degraded, ['critical'], fresh).indicator).toBe('critical');
    const maint = views.map((v) => (v.id === 'search' ? { ...v, status: 'under_maintenance' as const } : v));
    expect(overallStatus(maint, [], fresh).indicator).toBe('maintenance');
  });
});
