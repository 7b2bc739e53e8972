/**
 * `starling ops rules`: a Prometheus rules file (recording and alerting rules)
 * equivalent to the in-process SLO tracker (slo.ts), for those who run
 * Prometheus and Alertmanager. The YAML is written by hand (it is small and
 * regular); `promtool check rules` accepts it (test/integration/prometheus.test.ts).
 *
 * Differences from the in-process tracker, on purpose:
 * - Prometheus sums over every scraped node of a job (`sum by (job)`), so it
 *   sees the whole fleet and keeps history across restarts; a node sees itself
 *   since it started. In embedded mode (one node) they agree.
 * - Latency is read from the histogram bucket `le` = latencyThresholdMs, or
 *   the largest bucket bound below it when the threshold is not a bound
 *   (stricter: requests between the two count as slow). `buildRules` says so.
 * - Prometheus windows slide continuously; the tracker's are whole minutes/hours.
 */
import type { SloConfig } from './slo.js';
import { ALERT_POLICY, EXCLUDED_ROUTES, EXCLUDED_ROUTE_PREFIXES, MIN_BAD_REQUESTS, MIN_REQUESTS, WINDOWS } from './slo.js';
import { HTTP_DURATION_BUCKETS } from './metrics.js';

export interface RulesOptions {
  /** The Prometheus scrape job of the Starling nodes (for StarlingNodeDown). Default 'starling'. */
  job?: string;
  /** Where the runbook lives; alert annotations link to its sections. Default 'docs/OPERATIONS.md'. */
  runbookUrl?: string;
}

export interface LatencyBucket {
  /** The `le` label value, formatted as prom-client writes it. */
  le: string;
  /** True when the bucket bound equals the configured threshold. */
  exact: boolean;
}

/** The histogram bucket that stands for latencyThresholdMs: the bound equal to it, else the largest below it, else the smallest. */
export function latencyBucket(thresholdMs: number, bounds: readonly number[] = HTTP_DURATION_BUCKETS): LatencyBucket {
  const s = thresholdMs / 1000;
  const exact = bounds.find((b) => Math.abs(b - s) < 1e-9);
  if (exact !== undefined) return { le: String(exact), exact: true };
  const below = bounds.filter((b) => b < s);
  return { le: String(below.length ? below[below.length - 1] : bounds[0]), exact: false };
}

/** The PromQL regex of route patterns outside the SLOs (same list as isSloRoute). */
export function excludedRouteRegex(): string {
  const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return [...EXCLUDED_ROUTES.map(esc), ...EXCLUDED_ROUTE_PREFIXES.flatMap((p) => [esc(p), `${esc(p)}/.*`])].join('|');
}

/** A PromQL (and YAML double-quoted) string literal. */
function q(s: string): string {
  return `"${s.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

function anchor(heading: string): string {
  // GitHub's heading anchors: lower case, spaces to dashes, punctuation dropped.
  return heading.toLowerCase().replace(/[^a-z0-9 -]/g, '').replace(/ /g, '-');
}

function block(indent: string, text: string): string {
  return text
    .trim()
    .split('\n')
    .map((l) => `${indent}${l}`)
    .join('\n');
}

interface Rule {
  record?: string;
  alert?: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

function renderRule(r: Rule): string {
  const lines: string[] = [];
  lines.push(r.record ? `      - record: ${r.record}` : `      - alert: ${r.alert}`);
  lines.push('        expr: |', block('          ', r.expr));
  if (r.for) lines.push(`        for: ${r.for}`);
  for (const key of ['labels', 'annotations'] as const) {
    const map = r[key];
    if (!map) continue;
    lines.push(`        ${key}:`);
    for (const [k, v] of Object.entries(map)) lines.push(`          ${k}: ${q(v)}`);
  }
  return lines.join('\n');
}

function pct(x: number): string {
  return `${+(x * 100).toPrecision(6)}%`;
}

/** Recording rule names, exported for tests and dashboards. */
export const recordName = {
  requests: (w: string) => `job:starling_slo_requests:increase${w}`,
  errorRatio: (slo: string, w: string) => `job:starling_slo_${slo}_errors:ratio_rate${w}`,
};

export function buildRules(cfg: SloConfig, opts: RulesOptions = {}): { yaml: string; warnings: string[] } {
  const job = opts.job ?? 'starling';
  const runbook = opts.runbookUrl ?? 'docs/OPERATIONS.md';
  const bucket = latencyBucket(cfg.latencyThresholdMs);
  const warnings: string[] = [];
  if (!bucket.exact) {
    warnings.push(
      `latencyThresholdMs ${cfg.latencyThresholdMs} is not a bucket bound of starling_http_request_duration_seconds ` +
        `(${HTTP_DURATION_BUCKETS.join(', ')} s); the rules use le="${bucket.le}"` +
        (Number(bucket.le) * 1000 < cfg.latencyThresholdMs ? ' (stricter than the SLO)' : ' (the smallest bound: more lenient than the SLO)'),
    );
  }
  const scope = `route!~${q(excludedRouteRegex())}`;
  const total = (w: string) => `sum by (job) (rate(starling_http_requests_total{${scope}}[${w}]))`;

  const recording: Rule[] = [];
  for (const { name: w } of WINDOWS) {
    recording.push({ record: recordName.requests(w), expr: `sum by (job) (increase(starling_http_requests_total{${scope}}[${w}]))` });
    const enough = `and on (job)\n${recordName.requests(w)} >= ${MIN_REQUESTS}`;
    recording.push({
      record: recordName.errorRatio('availability', w),
      expr: [
        '(',
        `  sum by (job) (rate(starling_http_requests_total{${scope},status=~"5.."}[${w}]))`,
        '  or',
        `  0 * ${total(w)}`,
        ')',
        '/',
        total(w),
        enough,
      ].join('\n'),
    });
    recording.push({
      record: recordName.errorRatio('latency', w),
      expr: [
        '1 - (',
        `  sum by (job) (rate(starling_http_request_duration_seconds_bucket{${scope},le=${q(bucket.le)}}[${w}]))`,
        '  /',
        `  sum by (job) (rate(starling_http_request_duration_seconds_count{${scope}}[${w}]))`,
        ')',
        enough,
      ].join('\n'),
    });
  }

  const periodDays = cfg.periodDays;
  const slos = [
    {
      id: 'availability',
      title: 'Availability',
      objective: cfg.availability,
      what: 'API requests failed (5xx)',
    },
    {
      id: 'latency',
      title: 'Latency',
      objective: cfg.latency,
      what: `API requests took longer than ${+(Number(bucket.le) * 1000).toPrecision(6)} ms`,
    },
  ];
  const alerts: Rule[] = [];
  for (const slo of slos) {
    for (const p of ALERT_POLICY) {
      const name = `Starling${slo.title}BurnRate${p.speed}`;
      const threshold = `${p.burn} * (1 - ${slo.objective})`;
      const lasts = periodDays / p.burn;
      alerts.push({
        alert: name,
        // The last clause is the node's minimum of bad requests in the short window: ratio × requests.
        expr: [
          `${recordName.errorRatio(slo.id, p.long)} > ${threshold}`,
          'and',
          `${recordName.errorRatio(slo.id, p.short)} > ${threshold}`,
          'and on (job)',
          `${recordName.errorRatio(slo.id, p.short)} * on (job) ${recordName.requests(p.short)} >= ${MIN_BAD_REQUESTS}`,
        ].join('\n'),
        labels: { severity: p.severity, slo: slo.id, long_window: p.long, short_window: p.short },
        annotations: {
          summary: `${slo.title} SLO: error budget burning more than ${p.burn}x the sustainable rate over ${p.long} and ${p.short}`,
          description:
            `{{ $labels.job }}: {{ $value | humanizePercentage }} of ${slo.what} over the last ${p.long} ` +
            `(objective ${pct(slo.objective)}, so ${pct(1 - slo.objective)} may fail). ` +
            `At ${p.burn}x, the ${periodDays}-day error budget lasts ${lasts >= 1 ? `${+lasts.toFixed(1)} days` : `${+(lasts * 24).toFixed(1)} hours`}.`,
          runbook_url: `${runbook}#${anchor(name)}`,
        },
      });
    }
  }

  const nodeAlerts: Rule[] = [
    {
      alert: 'StarlingProbeFailing',
      expr: 'starling_probe_success == 0',
      for: '1m',
      labels: { severity: 'page' },
      annotations: {
        summary: 'Synthetic probe {{ $labels.probe }} failing on node {{ $labels.node }}',
        description: 'The probe {{ $labels.probe }} has failed for at least 1 minute on {{ $labels.instance }}: what it checks is broken for users too.',
        runbook_url: `${runbook}#${anchor('StarlingProbeFailing')}`,
      },
    },
    {
      alert: 'StarlingJobBacklog',
      expr: 'starling_jobs_oldest_age_seconds > 60',
      for: '2m',
      labels: { severity: 'page' },
      annotations: {
        summary: 'Background jobs late on {{ $labels.instance }}',
        description: 'The oldest pending job (fan-out, notifications) is {{ $value | humanizeDuration }} old: posts reach timelines late.',
        runbook_url: `${runbook}#${anchor('StarlingJobBacklog')}`,
      },
    },
    {
      alert: 'StarlingNodeDown',
      expr: `up{job=${q(job)}} == 0`,
      for: '1m',
      labels: { severity: 'page' },
      annotations: {
        summary: 'Starling node {{ $labels.instance }} is down',
        description: 'Prometheus has not been able to scrape {{ $labels.instance }} (job {{ $labels.job }}) for 1 minute.',
        runbook_url: `${runbook}#${anchor('StarlingNodeDown')}`,
      },
    },
  ];

  const header = [
    '# Prometheus rules for Starling, written by `starling ops rules`.',
    `# SLOs: availability ${pct(cfg.availability)} of API requests not 5xx; latency ${pct(cfg.latency)} within ${cfg.latencyThresholdMs} ms` +
      ` (histogram bucket le="${bucket.le}"${bucket.exact ? '' : ', the nearest bound not above it'}); period ${periodDays} days.`,
    `# Not API requests (excluded): routes matching ${excludedRouteRegex()}.`,
    `# Windows with fewer than ${MIN_REQUESTS} requests have no error ratio (no alert), and an alert needs at least ${MIN_BAD_REQUESTS} bad requests`,
    "# in its short window, as in the node's own tracker.",
    '# Multiwindow, multi-burn-rate alerts (SRE workbook, "Alerting on SLOs"): page at 14.4x over 1h and 5m or 6x over 6h and 30m;',
    '# ticket at 1x over 3d and 6h. Runbook: docs/OPERATIONS.md.',
  ];
  const group = (name: string, rules: Rule[]) => [`  - name: ${name}`, '    rules:', ...rules.map(renderRule)].join('\n');
  const yaml = [
    ...header,
    'groups:',
    group('starling-slo-recording', recording),
    group('starling-slo-alerts', alerts),
    group('starling-node-alerts', nodeAlerts),
    '',
  ].join('\n');
  return { yaml, warnings };
}
