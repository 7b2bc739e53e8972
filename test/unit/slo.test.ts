/** SLO burn-rate math with a fake clock: which burns page, which don't, and the budget figures. */
import { describe, expect, it } from 'vitest';
import { SloTracker, isSloRoute, MIN_BAD_REQUESTS, MIN_REQUESTS, type SloConfig, type SloStatus } from '../../src/ops/slo.js';
import { latencyBucket, excludedRouteRegex, buildRules } from '../../src/ops/rules.js';
import { createMetrics } from '../../src/ops/metrics.js';

const CFG: SloConfig = { availability: 0.999, latency: 0.99, latencyThresholdMs: 500, periodDays: 30 };
const MIN = 60_000;
const HOUR = 60 * MIN;
const ROUTE = '/api/v1/statuses';

/** A tracker on a fake clock that starts on a whole hour. */
function fixture(cfg: SloConfig = CFG, opts: ConstructorParameters<typeof SloTracker>[2] = {}) {
  let t = Date.UTC(2025, 0, 1, 0, 0, 0);
  const tracker = new SloTracker(cfg, () => t, opts);
  return {
    tracker,
    advance(ms: number) {
      t += ms;
    },
    /**
     * `minutes` minutes of traffic from the next whole minute on: each minute `total` requests, of which
     * `errors` are 5xx and `slow` take 1 s. The clock is left in the last of those minutes, as on a live node.
     */
    traffic(minutes: number, total: number, errors = 0, slow = 0) {
      const start = Math.ceil(t / MIN) * MIN;
      for (let m = 0; m < minutes; m++) {
        t = start + m * MIN;
        for (let i = 0; i < total; i++) tracker.record(ROUTE, i < errors ? 503 : 200, i < slow ? 1 : 0.01);
      }
      t = start + minutes * MIN - 1;
    },
    get now() {
      return t;
    },
  };
}

const byName = (s: SloStatus[], name: string) => s.find((x) => x.name === name)!;

describe('SLO scope', () => {
  it('counts API routes and leaves out health, scrapes, the status page, streaming and unmatched requests', () => {
    for (const r of ['/api/v1/statuses', '/api/v1/timelines/home', '/oauth/token', '/api/v2/search', '/', '/api/v1/statuses/:id']) expect(isSloRoute(r), r).toBe(true);
    for (const r of ['/healthz', '/readyz', '/metrics', '/status', '/status/api/summary.json', '/status/feed.atom', '/api/v1/streaming', '/api/v1/streaming/*', '/api/v1/streaming/health', 'unmatched']) {
      expect(isSloRoute(r), r).toBe(false);
    }
    // The PromQL selector excludes the same routes (Prometheus anchors regexes).
    const re = new RegExp(`^(?:${excludedRouteRegex()})$`);
    expect(re.test('/status/feed.atom') && re.test('/healthz') && re.test('/api/v1/streaming/*') && re.test('unmatched')).toBe(true);
    expect(re.test('/api/v1/statuses') || re.test('/statuses')).toBe(false);
  });

  it('ignores excluded routes entirely', () => {
    const f = fixture();
    for (let i = 0; i < 100; i++) f.tracker.record('/readyz', 503, 3);
    for (let i = 0; i < 100; i++) f.tracker.record('/api/v1/streaming/*', 200, 600);
    const counts = f.tracker.counts();
    expect(counts.availability['5m']).toEqual({ requests: 0, errors: 0 });
    expect(f.tracker.evaluate().every((s) => s.alert === null && s.errorBudgetRemaining === 1)).toBe(true);
  });
});

describe('burn rates', () => {
  it('reports every window, burn = error ratio / (1 - objective)', () => {
    const f = fixture();
    f.traffic(10, 100, 1); // 1% errors against a 0.1% allowance: burn 10
    const s = byName(f.tracker.evaluate(), 'availability');
    expect(Object.keys(s.burnRates)).toEqual(['5m', '30m', '1h', '6h', '3d']);
    for (const w of Object.values(s.burnRates)) expect(w).toBeCloseTo(10, 6);
    expect(s.objective).toBe(0.999);
  });

  it('a fast burn pages: 14.4x over both 1 h and 5 min', () => {
    const f = fixture();
    f.traffic(55, 20); // a clean 55 minutes
    f.traffic(5, 20, 10); // then half the requests fail for 5 minutes
    const s = byName(f.tracker.evaluate(), 'availability');
    expect(s.burnRates['5m']).toBeCloseTo(500, 6); // 50% / 0.1%
    expect(s.burnRates['1h']).toBeCloseTo((50 / 1200) / 0.001, 6); // ≈ 41.7
    expect(s.alert).toBe('page');
    expect(byName(f.tracker.evaluate(), 'latency').alert).toBeNull();
  });

  it('a slow burn below 6x does not page, but opens a ticket (3 d and 6 h above 1x)', () => {
    const f = fixture();
    f.traffic(360, 250, 1); // 0.4% errors for 6 hours: burn 4
    const s = byName(f.tracker.evaluate(), 'availability');
    expect(s.burnRates['6h']).toBeCloseTo(4, 6);
    expect(s.burnRates['1h']).toBeCloseTo(4, 6);
    expect(s.alert).toBe('ticket');
  });

  it('a sustained 7x burn pages through the 6 h / 30 min pair', () => {
    const f = fixture();
    f.traffic(360, 1000, 7); // 0.7%: burn 7, under 14.4 but over 6
    const s = byName(f.tracker.evaluate(), 'availability');
    expect(s.burnRates['1h']).toBeLessThan(14.4);
    expect(s.burnRates['6h']).toBeGreaterThan(6);
    expect(s.alert).toBe('page');
  });

  it('both windows must agree: a burst that is over stops paging once the short windows are clean', () => {
    const f = fixture();
    f.traffic(24, 20);
    f.traffic(5, 20, 10); // a burst…
    f.traffic(10, 20); // …that ended 10 minutes ago
    let s = byName(f.tracker.evaluate(), 'availability');
    expect(s.burnRates['1h']).toBeGreaterThan(14.4); // the long window still remembers it
    expect(s.burnRates['5m']).toBe(0); // the short one says it is over: the fast pair is reset
    expect(s.burnRates['30m']).toBeGreaterThan(6); // the slow pair still sees it
    expect(s.alert).toBe('page');
    f.traffic(21, 20); // 31 minutes after the burst
    s = byName(f.tracker.evaluate(), 'availability');
    expect(s.burnRates['1h']).toBeGreaterThan(14.4);
    expect(s.burnRates['6h']).toBeGreaterThan(6);
    expect(s.burnRates['5m']).toBe(0);
    expect(s.burnRates['30m']).toBe(0);
    expect(s.alert).toBe('ticket'); // the budget was hurt (3 d and 6 h above 1x), but nobody is woken
  });

  it('both windows must agree: a blip too short to matter over the hour does not page', () => {
    const f = fixture();
    f.traffic(59, 100);
    f.traffic(1, 100, 30); // one bad minute: 30 errors
    const s = byName(f.tracker.evaluate(), 'availability');
    expect(s.burnRates['5m']).toBeGreaterThan(14.4); // 30/500 → 60x
    expect(s.burnRates['1h']).toBeLessThan(14.4); // 30/6000 → 5x
    expect(s.burnRates['30m']).toBeGreaterThan(6); // 30/3000 → 10x
    expect(s.burnRates['6h']).toBeLessThan(6); // only 1 h known → 5x
    expect(s.alert).not.toBe('page');
  });

  it('latency: at most the threshold is fast, above it is slow', () => {
    const f = fixture();
    for (let i = 0; i < 100; i++) f.tracker.record(ROUTE, 200, i < 50 ? 0.5 : 0.5001);
    const s = byName(f.tracker.evaluate(), 'latency');
    expect(s.burnRates['5m']).toBeCloseTo(0.5 / 0.01, 6);
    expect(s.alert).toBe('page');
    expect(byName(f.tracker.evaluate(), 'availability').alert).toBeNull();
  });

  it('ignores windows with fewer than 10 requests', () => {
    expect(MIN_REQUESTS).toBe(10);
    const f = fixture();
    for (let i = 0; i < MIN_REQUESTS - 1; i++) f.tracker.record(ROUTE, 500, 9);
    let statuses = f.tracker.evaluate();
    for (const s of statuses) {
      expect(Object.values(s.burnRates).every((b) => b === 0)).toBe(true);
      expect(s.alert).toBeNull();
      expect(s.errorBudgetRemaining).toBe(1);
    }
    f.tracker.record(ROUTE, 500, 9); // the tenth
    statuses = f.tracker.evaluate();
    expect(byName(statuses, 'availability').burnRates['5m']).toBeCloseTo(1000, 6);
    expect(byName(statuses, 'availability').alert).toBe('page');
  });

  it('the minimum sample size is configurable', () => {
    const f = fixture(CFG, { minRequests: 1, minBadRequests: 1 });
    f.tracker.record(ROUTE, 500, 0.01);
    expect(byName(f.tracker.evaluate(), 'availability').alert).toBe('page');
  });

  it('pages only on at least ten bad requests in the short window: two slow sign-ins on a fresh node do not', () => {
    expect(MIN_BAD_REQUESTS).toBe(10);
    const f = fixture();
    // A node just started: 10 requests, two of them over the threshold (argon2 on a busy machine). The ratio is a
    // 20x burn over every window, but two requests are not evidence enough to tell the public page the API is slow.
    for (let i = 0; i < 10; i++) f.tracker.record(ROUTE, 200, i < 2 ? 0.9 : 0.05);
    let s = byName(f.tracker.evaluate(), 'latency');
    expect(s.burnRates['5m']).toBeCloseTo(20, 6);
    expect(s.burnRates['1h']).toBeCloseTo(20, 6);
    expect(s.alert).toBeNull();
    // Seven more slow ones (9 of 17, still one short); the tenth pages.
    for (let i = 0; i < 7; i++) f.tracker.record(ROUTE, 200, 0.9);
    expect(byName(f.tracker.evaluate(), 'latency').alert).toBeNull();
    f.tracker.record(ROUTE, 200, 0.9);
    s = byName(f.tracker.evaluate(), 'latency');
    expect(f.tracker.counts().latency['5m']).toEqual({ requests: 18, errors: 10 });
    expect(s.alert).toBe('page');
    expect(byName(f.tracker.evaluate(), 'availability').alert).toBeNull();
  });

  it('a quiet node failing a third of its requests: 5 minutes hold too few errors to page, the 30-minute pair pages', () => {
    const f = fixture();
    f.traffic(60, 3, 1); // 3 requests a minute, one of them a 503: 5 errors in any 5 minutes, 60 in the hour
    const s = byName(f.tracker.evaluate(), 'availability');
    expect(s.burnRates['5m']).toBeGreaterThan(14.4);
    expect(s.burnRates['1h']).toBeGreaterThan(14.4);
    expect(s.burnRates['30m']).toBeGreaterThan(6);
    // The slow pair's short window (30 min) holds 30 errors: that pair pages; the fast pair alone would not.
    expect(f.tracker.counts().availability['5m'].errors).toBeLessThan(MIN_BAD_REQUESTS);
    expect(s.alert).toBe('page');
  });

  it('old traffic leaves the windows; the rings reuse their slots', () => {
    const f = fixture();
    f.traffic(5, 100, 100);
    expect(byName(f.tracker.evaluate(), 'availability').alert).toBe('page');
    f.advance(7 * HOUR); // a quiet night: the minute ring has gone round
    let s = byName(f.tracker.evaluate(), 'availability');
    expect(s.burnRates['6h']).toBe(0);
    expect(s.burnRates['3d']).toBeGreaterThan(1); // the hour ring still has it
    f.traffic(1, 100); // clean traffic lands in reused slots
    s = byName(f.tracker.evaluate(), 'availability');
    expect(s.burnRates['5m']).toBe(0);
    expect(f.tracker.counts().availability['6h']).toEqual({ requests: 100, errors: 0 });
    f.advance(4 * 24 * HOUR);
    expect(f.tracker.counts().availability['3d']).toEqual({ requests: 0, errors: 0 });
  });

  it('the 5 min window covers the current minute and the 4 before it', () => {
    const f = fixture();
    f.traffic(1, 100, 100);
    f.traffic(5, 100);
    expect(f.tracker.counts().availability['5m']).toEqual({ requests: 500, errors: 0 });
    expect(f.tracker.counts().availability['30m']).toEqual({ requests: 600, errors: 100 });
  });
});

describe('error budget', () => {
  it('is 1 - errors / allowed errors over the requests seen in the period', () => {
    const f = fixture({ ...CFG, availability: 0.99 });
    f.traffic(10, 100, 0);
    f.tracker.record(ROUTE, 500, 0.01);
    f.tracker.record(ROUTE, 500, 0.01);
    f.tracker.record(ROUTE, 500, 0.01);
    f.tracker.record(ROUTE, 500, 0.01);
    f.tracker.record(ROUTE, 500, 0.01); // 5 errors in 1005 requests; 1% of 1005 allowed
    expect(byName(f.tracker.evaluate(), 'availability').errorBudgetRemaining).toBeCloseTo(1 - 5 / 10.05, 9);
    expect(byName(f.tracker.evaluate(), 'latency').errorBudgetRemaining).toBe(1);
  });

  it('goes below zero when overspent', () => {
    const f = fixture({ ...CFG, availability: 0.99 });
    f.traffic(10, 100, 2); // 2% errors against 1%
    expect(byName(f.tracker.evaluate(), 'availability').errorBudgetRemaining).toBeCloseTo(-1, 9);
  });

  it('forgets errors older than the period', () => {
    const f = fixture({ ...CFG, availability: 0.99, periodDays: 1 });
    f.traffic(10, 100, 50);
    expect(byName(f.tracker.evaluate(), 'availability').errorBudgetRemaining).toBeLessThan(0);
    f.advance(25 * HOUR);
    f.traffic(10, 100);
    expect(byName(f.tracker.evaluate(), 'availability').errorBudgetRemaining).toBe(1);
  });

  it('sets the SLO gauges on evaluate', async () => {
    const metrics = createMetrics({ node: '0' });
    const f = fixture(CFG, { metrics });
    f.traffic(5, 100, 1);
    f.tracker.evaluate();
    const burn = (await metrics.sloBurnRate.get()).values;
    expect(burn.find((v) => v.labels.slo === 'availability' && v.labels.window === '1h')?.value).toBeCloseTo(10, 6);
    expect(burn.filter((v) => v.labels.slo === 'latency')).toHaveLength(5);
    const budget = (await metrics.sloErrorBudgetRemaining.get()).values;
    expect(budget.find((v) => v.labels.slo === 'availability')?.value).toBeCloseTo(1 - 5 / 0.5, 6);
    expect(budget.find((v) => v.labels.slo === 'latency')?.value).toBe(1);
  });
});

describe('exported rules', () => {
  it('reads latency from the bucket equal to the threshold, else the largest bound below it', () => {
    expect(latencyBucket(500)).toEqual({ le: '0.5', exact: true });
    expect(latencyBucket(1000)).toEqual({ le: '1', exact: true });
    expect(latencyBucket(300)).toEqual({ le: '0.25', exact: false });
    expect(latencyBucket(1)).toEqual({ le: '0.002', exact: false });
    expect(buildRules(CFG).warnings).toEqual([]);
    const r = buildRules({ ...CFG, latencyThresholdMs: 300 });
    expect(r.warnings[0]).toContain('le="0.25"');
    expect(r.yaml).toContain('le="0.25"');
  });

  it('has the alerts of the in-process policy with severities and runbook links', () => {
    const { yaml } = buildRules(CFG, { runbookUrl: 'https://docs.example/OPERATIONS.md' });
    for (const slo of ['Availability', 'Latency']) {
      for (const speed of ['Fast', 'Slow', 'Ticket']) expect(yaml).toContain(`- alert: Starling${slo}BurnRate${speed}\n`);
    }
    for (const a of ['StarlingProbeFailing', 'StarlingJobBacklog', 'StarlingNodeDown']) expect(yaml).toContain(`- alert: ${a}\n`);
    expect(yaml).toContain('job:starling_slo_availability_errors:ratio_rate1h > 14.4 * (1 - 0.999)');
    expect(yaml).toContain('job:starling_slo_latency_errors:ratio_rate30m > 6 * (1 - 0.99)');
    expect(yaml).toContain('runbook_url: "https://docs.example/OPERATIONS.md#starlingavailabilityburnratefast"');
    expect(yaml).toContain('up{job="starling"} == 0');
  });
});
