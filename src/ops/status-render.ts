/**
 * The public status page, rendered from the status-page model (ops/model.ts)
 * with no I/O: HTML that needs no JavaScript (inline SVG for the uptime bars
 * and the response-time chart), the Statuspage-shaped JSON documents, and an
 * Atom 1.0 feed. The same functions serve `/status` and write the static copy
 * (`starling status publish`), so the two never disagree.
 *
 * Everything that comes from the model is escaped here, including incident
 * text written by operators. The page never claims more than it knows:
 * `withFreshness` turns old data into "unknown since …" before anything renders.
 */
import { escapeHtml } from '../domain/text.js';
import {
  COMPONENTS,
  COMPONENT_NAMES,
  type ComponentId,
  type ComponentState,
  type ComponentView,
  type DailyUptime,
  type IncidentImpact,
  type IncidentStatus,
  type IncidentView,
  type LatencyPoint,
  type MaintenanceView,
  type StatusSource,
  type StatusSummary,
} from './model.js';

/** Everything one rendering of the page needs; also what the on-disk snapshot holds. */
export interface StatusPageData {
  summary: StatusSummary;
  /** 90 days per component, oldest first (missing days render as "no data"). */
  uptime: Partial<Record<ComponentId, DailyUptime[]>>;
  /** Recent end-to-end latency of the posting probe, oldest first. */
  latency: LatencyPoint[];
  /** Resolved incidents, newest first. */
  pastIncidents: IncidentView[];
  /** Where the data came from: the live ops engine, the on-disk snapshot, or nothing at all. */
  origin: 'live' | 'snapshot' | 'none';
  /** When the data was read from its source (ISO-8601). */
  collectedAt: string;
}

export const UPTIME_DAYS = 90;
export const PAST_INCIDENT_DAYS = 14;
/** How many resolved incidents are read for the page, the feed and incidents.json. */
export const PAST_INCIDENT_LIMIT = 50;

/** Reads everything the page shows from a source. Throws what the source throws. */
export function collectPageData(source: StatusSource, now: Date, origin: StatusPageData['origin'] = 'live'): StatusPageData {
  const summary = source.summary();
  const uptime: StatusPageData['uptime'] = {};
  const ids = new Set<ComponentId>([...summary.components.map((c) => c.id)]);
  for (const id of ids) uptime[id] = source.uptime(id, UPTIME_DAYS);
  return { summary, uptime, latency: source.latency(), pastIncidents: source.pastIncidents(PAST_INCIDENT_LIMIT), origin, collectedAt: now.toISOString() };
}

/** A read-only StatusSource over data already collected (the snapshot, the static copy). */
export function dataSource(data: StatusPageData): StatusSource {
  return {
    summary: () => data.summary,
    uptime: (component, days) => (data.uptime[component] ?? []).slice(-days),
    latency: () => data.latency,
    pastIncidents: (limit) => data.pastIncidents.slice(0, limit),
  };
}

/** What the page says when it has nothing at all to go on: unknown, honestly, never "operational". */
export function unknownPageData(now: Date, page: { id?: string; name: string; url: string }): StatusPageData {
  const at = now.toISOString();
  return {
    summary: {
      page: { id: page.id ?? 'starling', name: page.name, url: page.url, updated_at: at },
      status: { indicator: 'unknown', description: 'Status unknown' },
      components: [],
      incidents: [],
      scheduled_maintenances: [],
      freshness: { last_probe_at: null, stale: true, stale_since: null },
    },
    uptime: {},
    latency: [],
    pastIncidents: [],
    origin: 'none',
    collectedAt: at,
  };
}

/**
 * Applies the staleness rule: data whose last probe is older than
 * `staleAfterMs` is "unknown since" that probe, whatever it says. A snapshot
 * read back from disk (not the live engine) is judged by its own probe time,
 * so an old snapshot can never pass for the present.
 */
export function withFreshness(data: StatusPageData, now: Date, staleAfterMs: number): StatusPageData {
  const s = data.summary;
  const f = s.freshness;
  const lastKnown = f.last_probe_at ?? (data.origin === 'live' ? null : data.collectedAt);
  const tooOld = lastKnown !== null && now.getTime() - Date.parse(lastKnown) > staleAfterMs;
  const stale = f.stale || tooOld || data.origin === 'none';
  if (!stale) return data;
  if (f.stale && s.status.indicator === 'unknown') return data;
  return {
    ...data,
    summary: {
      ...s,
      status: { indicator: 'unknown', description: 'Status unknown' },
      // As the engine says it: unknown from the moment the last probe became too old.
      freshness: { last_probe_at: f.last_probe_at, stale: true, stale_since: f.stale_since ?? (lastKnown ? new Date(Date.parse(lastKnown) + staleAfterMs).toISOString() : null) },
    },
  };
}

// ---------------------------------------------------------------- words

export const STATE_LABEL: Record<ComponentState, string> = {
  operational: 'Operational',
  degraded_performance: 'Degraded performance',
  partial_outage: 'Partial outage',
  major_outage: 'Major outage',
  under_maintenance: 'Under maintenance',
};

const STATE_CLASS: Record<ComponentState, string> = {
  operational: 'ok',
  degraded_performance: 'minor',
  partial_outage: 'major',
  major_outage: 'critical',
  under_maintenance: 'maint',
};

const INDICATOR_CLASS: Record<StatusSummary['status']['indicator'], string> = {
  none: 'ok',
  minor: 'minor',
  major: 'major',
  critical: 'critical',
  maintenance: 'maint',
  unknown: 'unknown',
};

const INDICATOR_WORDS: Record<StatusSummary['status']['indicator'], string> = {
  none: 'All systems operational',
  minor: 'Minor service disruption',
  major: 'Partial system outage',
  critical: 'Major system outage',
  maintenance: 'Service under maintenance',
  unknown: 'Status unknown',
};

const INCIDENT_STATUS_LABEL: Record<IncidentStatus, string> = {
  investigating: 'Investigating',
  identified: 'Identified',
  monitoring: 'Monitoring',
  resolved: 'Resolved',
};

const IMPACT_LABEL: Record<IncidentImpact, string> = {
  none: 'No impact',
  minor: 'Minor impact',
  major: 'Major impact',
  critical: 'Critical impact',
  maintenance: 'Maintenance',
};

const IMPACT_CLASS: Record<IncidentImpact, string> = { none: 'unknown', minor: 'minor', major: 'major', critical: 'critical', maintenance: 'maint' };

const SOURCE_LABEL: Record<IncidentView['source'], string> = {
  auto: 'Opened automatically by monitoring',
  operator: 'Opened by an operator',
  maintenance: 'Scheduled maintenance',
};

// ---------------------------------------------------------------- escaping

/** Characters XML 1.0 forbids (and HTML has no use for): C0 controls except tab/newline/return, lone surrogates, U+FFFE/U+FFFF. */
const FORBIDDEN = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/** Escapes text for HTML or XML (content and attribute values alike). */
export function esc(value: unknown): string {
  return escapeHtml(String(value ?? '').replace(FORBIDDEN, '\uFFFD'));
}

function label<K extends string>(map: Record<K, string>, key: string): string {
  return (map as Record<string, string>)[key] ?? key;
}

function klass<K extends string>(map: Record<K, string>, key: string, fallback = 'unknown'): string {
  return (map as Record<string, string>)[key] ?? fallback;
}

// ---------------------------------------------------------------- times

function validDate(iso: string | null | undefined): Date | null {
  if (!iso) return null;
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? null : d;
}

/** "2024-05-01 14:03 UTC", inside a <time> element. */
export function timeTag(iso: string | null | undefined): string {
  const d = validDate(iso);
  if (!d) return `<time>${esc(iso ?? 'unknown time')}</time>`;
  return `<time datetime="${esc(d.toISOString())}">${esc(formatTime(d))}</time>`;
}

function formatTime(d: Date): string {
  return `${d.toISOString().slice(0, 10)} ${d.toISOString().slice(11, 16)} UTC`;
}

function formatDay(day: string): string {
  const d = validDate(`${day}T00:00:00Z`);
  if (!d) return day;
  return d.toLocaleDateString('en-GB', { weekday: 'short', day: 'numeric', month: 'long', year: 'numeric', timeZone: 'UTC' });
}

function utcDay(d: Date): string {
  return d.toISOString().slice(0, 10);
}

function addDays(day: string, n: number): string {
  const d = new Date(`${day}T00:00:00Z`);
  d.setUTCDate(d.getUTCDate() + n);
  return utcDay(d);
}

function rfc3339(iso: string | null | undefined, fallback: string): string {
  return (validDate(iso) ?? validDate(fallback) ?? new Date(0)).toISOString();
}

// ---------------------------------------------------------------- uptime bars

/** Exactly `days` days ending today (UTC), oldest first; days the source has no entry for have no data. */
export function uptimeDays(entries: DailyUptime[], now: Date, days = UPTIME_DAYS): DailyUptime[] {
  const byDay = new Map(entries.map((e) => [e.day, e]));
  const today = utcDay(now);
  const out: DailyUptime[] = [];
  for (let i = days - 1; i >= 0; i--) {
    const day = addDays(today, -i);
    out.push(byDay.get(day) ?? { day, uptime: null, worst: null });
  }
  return out;
}

/** Mean daily uptime over the days that have data, 0..1, or null with no data at all. */
export function uptimeRatio(days: DailyUptime[]): number | null {
  const known = days.filter((d) => d.uptime !== null && Number.isFinite(d.uptime));
  if (!known.length) return null;
  return known.reduce((sum, d) => sum + (d.uptime as number), 0) / known.length;
}

export function formatPercent(ratio: number | null): string {
  if (ratio === null) return 'no data';
  const pct = Math.max(0, Math.min(1, ratio)) * 100;
  // Never round a bad day up to "100 %".
  const text = pct === 100 ? '100' : (Math.floor(pct * 100) / 100).toFixed(2);
  return `${text} %`;
}

const BAR_STEP = 4;
const BAR_WIDTH = 3;
const BAR_HEIGHT = 30;

/** One bar per day, coloured by the day's worst state, each with a <title> naming the day, its uptime and its worst state. */
export function renderUptimeSvg(componentName: string, days: DailyUptime[]): string {
  const ratio = uptimeRatio(days);
  const labelText = `${componentName}: ${formatPercent(ratio)} uptime over the last ${days.length} days`;
  const bars = days
    .map((d, i) => {
      const cls = d.worst ? klass(STATE_CLASS, d.worst) : d.uptime === null ? 'nodata' : 'ok';
      const title =
        d.uptime === null && d.worst === null
          ? `${d.day}: no data`
          : `${d.day}: ${formatPercent(d.uptime)} uptime${d.worst ? `, worst state ${label(STATE_LABEL, d.worst).toLowerCase()}` : ''}`;
      return `<rect class="bar b-${cls}" x="${i * BAR_STEP}" y="0" width="${BAR_WIDTH}" height="${BAR_HEIGHT}"><title>${esc(title)}</title></rect>`;
    })
    .join('');
  return (
    `<svg class="uptime-bars" role="img" aria-label="${esc(labelText)}" viewBox="0 0 ${days.length * BAR_STEP - (BAR_STEP - BAR_WIDTH)} ${BAR_HEIGHT}" ` +
    `preserveAspectRatio="none" xmlns="http://www.w3.org/2000/svg">${bars}</svg>`
  );
}

// ---------------------------------------------------------------- latency chart

export interface LatencyStats {
  count: number;
  latest: number;
  median: number;
  p95: number;
  max: number;
}

export function latencyStats(points: LatencyPoint[]): LatencyStats | null {
  const ms = points.map((p) => p.ms).filter((v) => Number.isFinite(v) && v >= 0);
  if (!ms.length) return null;
  const sorted = [...ms].sort((a, b) => a - b);
  const q = (p: number) => sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)];
  return { count: ms.length, latest: ms[ms.length - 1], median: q(0.5), p95: q(0.95), max: sorted[sorted.length - 1] };
}

function niceCeil(v: number): number {
  if (v <= 10) return 10;
  const pow = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * pow >= v) return m * pow;
  return 10 * pow;
}

function fmtMs(v: number): string {
  return v >= 100 ? String(Math.round(v)) : String(Math.round(v * 10) / 10);
}

/** Two shapes of the same chart: SVG text scales with the drawing, so a phone gets a narrower drawing instead of tiny labels. */
const CHARTS = {
  wide: { w: 640, h: 220, left: 64, right: 12, top: 12, bottom: 30 },
  narrow: { w: 360, h: 200, left: 60, right: 10, top: 12, bottom: 30 },
};

/** An area-and-line chart of the probe's end-to-end latency, with a y axis in ms and a time axis in UTC. */
export function renderLatencySvg(points: LatencyPoint[], shape: keyof typeof CHARTS = 'wide', what = 'posting probe'): string {
  const valid = points.filter((p) => Number.isFinite(p.ms) && p.ms >= 0 && validDate(p.t));
  const stats = latencyStats(valid);
  if (!stats) return '';
  const { w, h, left, right, top, bottom } = CHARTS[shape];
  const pw = w - left - right;
  const ph = h - top - bottom;
  const times = valid.map((p) => Date.parse(p.t));
  const t0 = Math.min(...times);
  const t1 = Math.max(...times);
  const yMax = niceCeil(stats.max);
  const x = (i: number) => left + (t1 > t0 ? ((times[i] - t0) / (t1 - t0)) * pw : valid.length > 1 ? (i / (valid.length - 1)) * pw : pw / 2);
  const y = (ms: number) => top + ph - (ms / yMax) * ph;
  const r = (n: number) => Math.round(n * 10) / 10;
  const line = valid.map((p, i) => `${i ? 'L' : 'M'}${r(x(i))},${r(y(p.ms))}`).join(' ');
  const area = `${line} L${r(x(valid.length - 1))},${top + ph} L${r(x(0))},${top + ph} Z`;
  const grid = [0, yMax / 2, yMax]
    .map(
      (v) =>
        `<line class="grid" x1="${left}" x2="${w - right}" y1="${r(y(v))}" y2="${r(y(v))}"/>` +
        `<text class="axis" x="${left - 6}" y="${r(y(v)) + 4}" text-anchor="end">${esc(fmtMs(v))} ms</text>`,
    )
    .join('');
  const hhmm = (t: number) => new Date(t).toISOString().slice(11, 16);
  const xLabels =
    `<text class="axis" x="${left}" y="${h - 8}" text-anchor="start">${esc(hhmm(t0))}</text>` +
    (t1 > t0 ? `<text class="axis" x="${r(left + pw / 2)}" y="${h - 8}" text-anchor="middle">${esc(hhmm((t0 + t1) / 2))}</text>` : '') +
    `<text class="axis" x="${w - right}" y="${h - 8}" text-anchor="end">${esc(hhmm(t1))} UTC</text>`;
  const title = `Response time of the ${what}, ${stats.count} samples: latest ${fmtMs(stats.latest)} ms, median ${fmtMs(stats.median)} ms, maximum ${fmtMs(stats.max)} ms`;
  return (
    `<svg class="latency-chart chart-${shape}" role="img" aria-labelledby="latency-title-${shape}" viewBox="0 0 ${w} ${h}" xmlns="http://www.w3.org/2000/svg">` +
    `<title id="latency-title-${shape}">${esc(title)}</title>` +
    grid +
    `<path class="area" d="${area}"/><path class="line" d="${line}"/>` +
    `<line class="axis-line" x1="${left}" x2="${left}" y1="${top}" y2="${top + ph}"/>` +
    `<line class="axis-line" x1="${left}" x2="${w - right}" y1="${top + ph}" y2="${top + ph}"/>` +
    xLabels +
    `</svg>`
  );
}

// ---------------------------------------------------------------- HTML

export interface RenderOptions {
  now: Date;
  /** Prefix for the page's own links: '/status/' when served, '' for the static copy (relative links). */
  base: string;
  /** 'served' by a node, or a 'static' copy written to disk. */
  mode: 'served' | 'static';
}

const CSS = `
:root{color-scheme:light dark;--bg:#fff;--fg:#1f2328;--muted:#59636e;--line:#d1d9e0;--card:#f6f8fa;
--ok:#1a7f37;--minor:#9a6700;--major:#bc4c00;--critical:#cf222e;--maint:#0969da;--unknown:#59636e;--nodata:#d1d9e0;--chart:#0969da}
@media (prefers-color-scheme:dark){:root{--bg:#0d1117;--fg:#e6edf3;--muted:#9198a1;--line:#3d444d;--card:#151b23;
--ok:#3fb950;--minor:#d29922;--major:#db6d28;--critical:#f85149;--maint:#4493f8;--unknown:#9198a1;--nodata:#3d444d;--chart:#4493f8}}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--fg);font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Noto Sans",sans-serif}
a{color:var(--maint)}
.vh{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}
.skip{position:absolute;left:-999px}.skip:focus{left:1rem;top:1rem;background:var(--bg);padding:.5rem}
header,main,footer{max-width:52rem;margin:0 auto;padding:0 1rem}
header{padding-top:1.5rem}
h1{font-size:1.6rem;margin:0 0 1rem}
h2{font-size:1.25rem;margin:2rem 0 .75rem;border-bottom:1px solid var(--line);padding-bottom:.25rem}
h3{font-size:1.05rem;margin:0}h4{font-size:1rem;margin:0}
.banner{border-radius:8px;padding:1rem 1.25rem;color:#fff;background:var(--unknown);margin:0 0 .5rem}
.banner.ok{background:#1a7f37}.banner.minor{background:#9a6700}.banner.major{background:#bc4c00}
.banner.critical{background:#cf222e}.banner.maint{background:#0969da}.banner.unknown{background:#59636e}
.banner p{margin:0}.banner .headline{font-size:1.25rem;font-weight:700}
.note{color:var(--muted);font-size:.9rem;margin:.25rem 0}
.stale{border:2px solid var(--minor);border-radius:8px;padding:.75rem 1rem;margin:.5rem 0;background:var(--card)}.stale p{margin:0}
ul.components,ul.plain{list-style:none;margin:0;padding:0}
.component{padding:.9rem 0;border-bottom:1px solid var(--line)}
.component-head{display:flex;flex-wrap:wrap;justify-content:space-between;gap:.25rem 1rem;align-items:baseline}
.state{font-weight:600;white-space:nowrap}
.dot{display:inline-block;width:.7em;height:.7em;border-radius:50%;margin-right:.4em;background:var(--unknown);vertical-align:baseline}
.s-ok{color:var(--ok)}.s-minor{color:var(--minor)}.s-major{color:var(--major)}.s-critical{color:var(--critical)}.s-maint{color:var(--maint)}.s-unknown{color:var(--unknown)}
.s-ok .dot{background:var(--ok)}.s-minor .dot{background:var(--minor)}.s-major .dot{background:var(--major)}
.s-critical .dot{background:var(--critical)}.s-maint .dot{background:var(--maint)}.s-unknown .dot{background:var(--unknown)}
.reason{margin:.25rem 0 0}
figure{margin:.5rem 0 0}
.uptime-bars{display:block;width:100%;height:34px}
.bar{fill:var(--nodata)}.b-ok{fill:var(--ok)}.b-minor{fill:var(--minor)}.b-major{fill:var(--major)}.b-critical{fill:var(--critical)}.b-maint{fill:var(--maint)}
figcaption.scale{display:flex;justify-content:space-between;gap:.5rem;color:var(--muted);font-size:.8rem}
.latency-chart{display:block;width:100%;height:auto}.chart-narrow{display:none}
@media (max-width:560px){.chart-wide{display:none}.chart-narrow{display:block}}
.latency-chart .grid{stroke:var(--line);stroke-width:1}
.latency-chart .axis-line{stroke:var(--muted);stroke-width:1}
.latency-chart .axis{fill:var(--muted);font-size:13px;font-family:inherit}
.latency-chart .area{fill:var(--chart);fill-opacity:.18;stroke:none}
.latency-chart .line{fill:none;stroke:var(--chart);stroke-width:2;stroke-linejoin:round}
.incident{border:1px solid var(--line);border-left:6px solid var(--unknown);border-radius:6px;padding:.75rem 1rem;margin:0 0 1rem;background:var(--card)}
.incident.i-minor{border-left-color:var(--minor)}.incident.i-major{border-left-color:var(--major)}
.incident.i-critical{border-left-color:var(--critical)}.incident.i-maint{border-left-color:var(--maint)}
.meta{color:var(--muted);font-size:.9rem;margin:.25rem 0 .5rem}
ol.timeline{list-style:none;margin:0;padding:0}
ol.timeline li{padding:.5rem 0;border-top:1px solid var(--line)}
ol.timeline p{margin:0 0 .15rem}
.body{white-space:pre-line;overflow-wrap:anywhere}
.day{margin:1rem 0}.day h3{font-size:1rem;border-bottom:1px solid var(--line);padding-bottom:.2rem;margin-bottom:.4rem}
details summary{cursor:pointer;color:var(--maint)}
dl.stats{display:flex;flex-wrap:wrap;gap:.25rem 1.5rem;margin:.5rem 0}dl.stats div{display:flex;gap:.4rem}dl.stats dt{color:var(--muted)}dl.stats dd{margin:0;font-weight:600}
footer{margin-top:2.5rem;padding-bottom:2rem;color:var(--muted);font-size:.9rem;border-top:1px solid var(--line)}
footer nav ul{display:flex;flex-wrap:wrap;gap:.5rem 1.25rem;list-style:none;padding:0}
@media (max-width:480px){body{font-size:15px}h1{font-size:1.35rem}.banner{padding:.75rem 1rem}.banner .headline{font-size:1.1rem}}
`;

function stateBadge(state: ComponentState, stale: boolean): string {
  if (stale) {
    return `<span class="state s-unknown"><span class="dot" aria-hidden="true"></span>Unknown (last known: ${esc(label(STATE_LABEL, state).toLowerCase())})</span>`;
  }
  return `<span class="state s-${klass(STATE_CLASS, state)}"><span class="dot" aria-hidden="true"></span>${esc(label(STATE_LABEL, state))}</span>`;
}

function componentNames(ids: string[], known: Map<string, string>): string {
  return ids.map((id) => known.get(id) ?? (COMPONENT_NAMES as Record<string, string>)[id] ?? id).join(', ');
}

function renderComponent(c: ComponentView, days: DailyUptime[], stale: boolean): string {
  const ratio = uptimeRatio(days);
  return (
    `<li class="component" id="component-${esc(c.id)}">` +
    `<div class="component-head"><h3>${esc(c.name)}</h3>${stateBadge(c.status, stale)}</div>` +
    (c.reason && c.status !== 'operational' ? `<p class="reason">${esc(c.reason)}</p>` : '') +
    (c.status !== 'operational' ? `<p class="note">${esc(label(STATE_LABEL, c.status))} since ${timeTag(c.since)}</p>` : '') +
    `<figure>${renderUptimeSvg(c.name, days)}` +
    `<figcaption class="scale"><span>${days.length} days ago</span><span>${esc(formatPercent(ratio))} uptime</span><span>Today</span></figcaption></figure>` +
    `</li>`
  );
}

function renderUpdates(updates: IncidentView['incident_updates']): string {
  if (!updates.length) return '<p class="note">No updates yet.</p>';
  return (
    `<ol class="timeline">` +
    updates
      .map(
        (u) =>
          `<li><p><strong>${esc(label(INCIDENT_STATUS_LABEL, u.status))}</strong> — ${timeTag(u.created_at)}` +
          `<span class="note"> (${u.author === 'system' ? 'automatic update' : `by ${esc(u.author)}`})</span></p>` +
          `<p class="body">${esc(u.body)}</p></li>`,
      )
      .join('') +
    `</ol>`
  );
}

function renderIncident(i: IncidentView, names: Map<string, string>, heading: 'h3' | 'h4', expanded: boolean): string {
  const titleId = `incident-${esc(i.id)}-title`;
  const meta =
    `${esc(label(IMPACT_LABEL, i.impact))} · ${esc(label(INCIDENT_STATUS_LABEL, i.status))}` +
    (i.components.length ? ` · Affects ${esc(componentNames(i.components, names))}` : '') +
    ` · ${esc(label(SOURCE_LABEL, i.source))} · Opened ${timeTag(i.created_at)}` +
    (i.resolved_at ? ` · Resolved ${timeTag(i.resolved_at)}` : '');
  const updates = renderUpdates(i.incident_updates);
  return (
    `<article class="incident i-${klass(IMPACT_CLASS, i.impact)}" id="incident-${esc(i.id)}" aria-labelledby="${titleId}">` +
    `<${heading} id="${titleId}">${esc(i.name)}</${heading}>` +
    `<p class="meta">${meta}</p>` +
    (expanded ? updates : `<details><summary>Timeline (${i.incident_updates.length} update${i.incident_updates.length === 1 ? '' : 's'})</summary>${updates}</details>`) +
    `</article>`
  );
}

function renderMaintenance(m: MaintenanceView, names: Map<string, string>): string {
  const state = m.status === 'in_progress' ? 'In progress' : m.status === 'completed' ? 'Completed' : 'Scheduled';
  return (
    `<article class="incident i-maint" id="maintenance-${esc(m.id)}" aria-labelledby="maintenance-${esc(m.id)}-title">` +
    `<h3 id="maintenance-${esc(m.id)}-title">${esc(m.name)}</h3>` +
    `<p class="meta"><span class="state s-maint"><span class="dot" aria-hidden="true"></span>${state}</span> · From ${timeTag(m.scheduled_for)} until ${timeTag(m.scheduled_until)}` +
    (m.components.length ? ` · Affects ${esc(componentNames(m.components, names))}` : '') +
    `</p>` +
    (m.body ? `<p class="body">${esc(m.body)}</p>` : '') +
    `</article>`
  );
}

/** Current (unresolved) incidents, and resolved ones (past list plus any the summary still carries), deduplicated. */
export function splitIncidents(data: StatusPageData): { current: IncidentView[]; past: IncidentView[] } {
  const current = data.summary.incidents.filter((i) => i.status !== 'resolved');
  const seen = new Set(current.map((i) => i.id));
  const past: IncidentView[] = [];
  for (const i of [...data.summary.incidents.filter((i) => i.status === 'resolved'), ...data.pastIncidents]) {
    if (seen.has(i.id)) continue;
    seen.add(i.id);
    past.push(i);
  }
  past.sort((a, b) => (b.created_at < a.created_at ? -1 : b.created_at > a.created_at ? 1 : 0));
  return { current, past };
}

function renderPast(past: IncidentView[], names: Map<string, string>, now: Date): string {
  const today = utcDay(now);
  const byDay = new Map<string, IncidentView[]>();
  for (const i of past) {
    const d = validDate(i.created_at);
    if (!d) continue;
    const day = utcDay(d);
    if (!byDay.has(day)) byDay.set(day, []);
    byDay.get(day)!.push(i);
  }
  let html = '';
  for (let n = 0; n < PAST_INCIDENT_DAYS; n++) {
    const day = addDays(today, -n);
    const list = byDay.get(day) ?? [];
    html +=
      `<div class="day"><h3><time datetime="${day}">${esc(formatDay(day))}</time></h3>` +
      (list.length ? list.map((i) => renderIncident(i, names, 'h4', false)).join('') : `<p class="note">No incidents reported.</p>`) +
      `</div>`;
  }
  return html;
}

/** The whole page. Needs no JavaScript and contains no script. */
export function renderStatusHtml(input: StatusPageData, opts: RenderOptions): string {
  const data = input;
  const s = data.summary;
  const stale = s.freshness.stale;
  const names = new Map(s.components.map((c) => [c.id as string, c.name]));
  const { current, past } = splitIncidents(data);
  const maint = s.scheduled_maintenances.filter((m) => m.status !== 'completed');
  const base = opts.base;
  const indicator = s.status.indicator;

  let headline: string;
  let detail = '';
  if (stale) {
    headline = s.freshness.stale_since ? `Status unknown since ${timeTag(s.freshness.stale_since)}: this page's data is stale` : `Status unknown: this page has no current data`;
    detail =
      `<p>Monitoring on this node has stopped reporting, so this page cannot tell whether the service is working. ` +
      (s.components.length ? `The states below are the last ones known and may no longer be true.` : `No component states are known.`) +
      `</p>`;
  } else {
    headline = esc(s.status.description || label(INDICATOR_WORDS, indicator));
  }

  const origin =
    opts.mode === 'static'
      ? `<p class="note">This is a static copy of the status page, published ${timeTag(data.collectedAt)}. If that is long ago, the node that publishes it may be down.</p>`
      : data.origin === 'snapshot'
        ? `<p class="note">Live monitoring data is not available on this node; this page is served from the last snapshot it saved (${timeTag(data.collectedAt)}).</p>`
        : data.origin === 'none'
          ? `<p class="note">This node has no monitoring data and no saved snapshot to show.</p>`
          : '';

  const sections: string[] = [];

  sections.push(
    `<section aria-labelledby="overall-title">` +
      `<h2 id="overall-title" class="vh">Overall status</h2>` +
      `<div class="banner ${stale ? 'unknown' : klass(INDICATOR_CLASS, indicator)}" role="status"><p class="headline">${headline}</p></div>` +
      (stale ? `<div class="stale">${detail}</div>` : '') +
      `<p class="note">Last checked ${s.freshness.last_probe_at ? timeTag(s.freshness.last_probe_at) : 'never'} · Page updated ${timeTag(s.page.updated_at)}</p>` +
      origin +
      `</section>`,
  );

  if (current.length) {
    sections.push(
      `<section aria-labelledby="incidents-title"><h2 id="incidents-title">Current incidents</h2>` +
        current.map((i) => renderIncident(i, names, 'h3', true)).join('') +
        `</section>`,
    );
  }

  if (maint.length) {
    sections.push(
      `<section aria-labelledby="maintenance-title"><h2 id="maintenance-title">Scheduled maintenance</h2>` +
        maint.map((m) => renderMaintenance(m, names)).join('') +
        `</section>`,
    );
  }

  const comps = s.components.length
    ? `<ul class="components">` + s.components.map((c) => renderComponent(c, uptimeDays(data.uptime[c.id] ?? [], opts.now), stale)).join('') + `</ul>`
    : `<p>No component states are known.</p>`;
  sections.push(
    `<section aria-labelledby="components-title"><h2 id="components-title">Components</h2>` +
      `<p class="note">Bars show the last ${UPTIME_DAYS} days, one per day (UTC), coloured by the worst state of the day; grey means no data.</p>` +
      comps +
      `</section>`,
  );

  const stats = latencyStats(data.latency);
  sections.push(
    `<section aria-labelledby="latency-section-title"><h2 id="latency-section-title">Response time</h2>` +
      (stats
        ? `<p class="note">End-to-end time for a test account to post and read its post back, in milliseconds.</p>` +
          `<figure>${renderLatencySvg(data.latency, 'wide')}${renderLatencySvg(data.latency, 'narrow')}</figure>` +
          `<dl class="stats"><div><dt>Latest</dt><dd>${esc(fmtMs(stats.latest))} ms</dd></div><div><dt>Median</dt><dd>${esc(fmtMs(stats.median))} ms</dd></div>` +
          `<div><dt>95th percentile</dt><dd>${esc(fmtMs(stats.p95))} ms</dd></div><div><dt>Samples</dt><dd>${stats.count}</dd></div></dl>`
        : `<p>No response-time data yet.</p>`) +
      `</section>`,
  );

  sections.push(
    `<section aria-labelledby="past-title"><h2 id="past-title">Past incidents</h2>` + renderPast(past, names, opts.now) + `</section>`,
  );

  const title = `${s.page.name} status`;
  return (
    `<!doctype html>\n<html lang="en"><head><meta charset="utf-8">` +
    `<meta name="viewport" content="width=device-width, initial-scale=1">` +
    `<meta name="color-scheme" content="light dark">` +
    // No favicon request (a 404 in every log), and nothing the CSP would refuse.
    `<link rel="icon" href="data:,">` +
    `<title>${esc(stale ? `Status unknown · ${title}` : `${label(INDICATOR_WORDS, indicator)} · ${title}`)}</title>` +
    `<link rel="alternate" type="application/atom+xml" title="${esc(title)}" href="${esc(base)}feed.atom">` +
    `<link rel="alternate" type="application/json" href="${esc(base)}api/summary.json">` +
    `<style>${CSS}</style></head><body>` +
    `<a class="skip" href="#main">Skip to content</a>` +
    `<header><h1>${esc(title)}</h1></header>` +
    `<main id="main">${sections.join('')}</main>` +
    `<footer><nav aria-label="Machine-readable status"><ul>` +
    `<li><a href="${esc(base)}api/summary.json">summary.json</a></li>` +
    `<li><a href="${esc(base)}feed.atom">Atom feed</a></li>` +
    `<li><a href="${esc(base)}api/incidents.json">incidents.json</a></li>` +
    `<li><a href="${esc(base)}api/scheduled-maintenances.json">scheduled-maintenances.json</a></li>` +
    `</ul></nav><p>Times are in UTC. Webhook subscriptions: <code>POST ${esc(opts.mode === 'static' ? s.page.url.replace(/\/+$/, '') + '/' : base)}api/subscriptions</code> with <code>{"url": "…"}</code>.</p></footer>` +
    `</body></html>\n`
  );
}

// ---------------------------------------------------------------- JSON (Statuspage shapes)

export interface StatusDocuments {
  'summary.json': StatusSummary;
  'status.json': Pick<StatusSummary, 'page' | 'status'>;
  'components.json': Pick<StatusSummary, 'page' | 'components'>;
  'incidents.json': { page: StatusSummary['page']; incidents: IncidentView[] };
  'incidents/unresolved.json': { page: StatusSummary['page']; incidents: IncidentView[] };
  'scheduled-maintenances.json': Pick<StatusSummary, 'page' | 'scheduled_maintenances'>;
  'scheduled-maintenances/upcoming.json': Pick<StatusSummary, 'page' | 'scheduled_maintenances'>;
  'scheduled-maintenances/active.json': Pick<StatusSummary, 'page' | 'scheduled_maintenances'>;
}

/** Every JSON document the API serves, by file name under api/. */
export function statusDocuments(data: StatusPageData): StatusDocuments {
  const s = data.summary;
  const { current, past } = splitIncidents(data);
  return {
    'summary.json': s,
    'status.json': { page: s.page, status: s.status },
    'components.json': { page: s.page, components: s.components },
    // Statuspage: the 50 most recent incidents, unresolved and resolved.
    'incidents.json': { page: s.page, incidents: [...current, ...past].slice(0, PAST_INCIDENT_LIMIT) },
    'incidents/unresolved.json': { page: s.page, incidents: current },
    'scheduled-maintenances.json': { page: s.page, scheduled_maintenances: s.scheduled_maintenances },
    'scheduled-maintenances/upcoming.json': { page: s.page, scheduled_maintenances: s.scheduled_maintenances.filter((m) => m.status === 'scheduled') },
    'scheduled-maintenances/active.json': { page: s.page, scheduled_maintenances: s.scheduled_maintenances.filter((m) => m.status === 'in_progress') },
  };
}

// ---------------------------------------------------------------- Atom

export interface AtomOptions {
  /** Absolute URL of the HTML page (entries link to anchors in it). */
  pageUrl: string;
  /** Absolute URL of the feed itself, when known. */
  feedUrl?: string;
}

/** Atom 1.0: one entry per incident (its whole timeline in the content) and per scheduled maintenance. */
export function renderAtom(data: StatusPageData, opts: AtomOptions): string {
  const s = data.summary;
  const { current, past } = splitIncidents(data);
  const names = new Map(s.components.map((c) => [c.id as string, c.name]));
  const page = opts.pageUrl.replace(/#.*$/, '');
  const entries: { updated: string; xml: string }[] = [];
  for (const i of [...current, ...past].slice(0, PAST_INCIDENT_LIMIT)) {
    const updated = rfc3339(i.updated_at, data.collectedAt);
    const content =
      `<p><strong>${esc(label(IMPACT_LABEL, i.impact))}</strong> · ${esc(label(INCIDENT_STATUS_LABEL, i.status))}` +
      (i.components.length ? ` · Affects ${esc(componentNames(i.components, names))}` : '') +
      `</p>` +
      i.incident_updates
        .map((u) => `<p><strong>${esc(label(INCIDENT_STATUS_LABEL, u.status))}</strong> (${esc(formatTime(validDate(u.created_at) ?? new Date(0)))}) — ${esc(u.body)}</p>`)
        .join('');
    const summaryText = i.incident_updates[0] ? `${label(INCIDENT_STATUS_LABEL, i.incident_updates[0].status)}: ${i.incident_updates[0].body}` : label(INCIDENT_STATUS_LABEL, i.status);
    entries.push({
      updated,
      xml:
        `<entry><id>${esc(`${page}#incident-${i.id}`)}</id>` +
        `<title>${esc(`${i.status === 'resolved' ? '[Resolved] ' : ''}${i.name}`)}</title>` +
        `<published>${rfc3339(i.created_at, data.collectedAt)}</published><updated>${updated}</updated>` +
        `<link rel="alternate" type="text/html" href="${esc(`${page}#incident-${i.id}`)}"/>` +
        `<summary type="text">${esc(summaryText)}</summary>` +
        `<content type="html">${esc(content)}</content></entry>`,
    });
  }
  for (const m of s.scheduled_maintenances) {
    const updated = rfc3339(m.scheduled_for, data.collectedAt);
    const content =
      `<p>From ${esc(formatTime(validDate(m.scheduled_for) ?? new Date(0)))} until ${esc(formatTime(validDate(m.scheduled_until) ?? new Date(0)))}` +
      (m.components.length ? ` · Affects ${esc(componentNames(m.components, names))}` : '') +
      `</p><p>${esc(m.body)}</p>`;
    entries.push({
      updated,
      xml:
        `<entry><id>${esc(`${page}#maintenance-${m.id}`)}</id>` +
        `<title>${esc(`[Maintenance${m.status === 'in_progress' ? ', in progress' : m.status === 'completed' ? ', completed' : ''}] ${m.name}`)}</title>` +
        `<updated>${updated}</updated>` +
        `<link rel="alternate" type="text/html" href="${esc(`${page}#maintenance-${m.id}`)}"/>` +
        `<content type="html">${esc(content)}</content></entry>`,
    });
  }
  entries.sort((a, b) => (a.updated < b.updated ? 1 : a.updated > b.updated ? -1 : 0));
  const feedUpdated = entries.reduce((max, e) => (e.updated > max ? e.updated : max), rfc3339(s.page.updated_at, data.collectedAt));
  return (
    `<?xml version="1.0" encoding="utf-8"?>\n` +
    `<feed xmlns="http://www.w3.org/2005/Atom">` +
    `<id>${esc(page)}</id>` +
    `<title>${esc(`${s.page.name} status`)}</title>` +
    `<subtitle>${esc(s.freshness.stale ? 'Status unknown' : s.status.description || label(INDICATOR_WORDS, s.status.indicator))}</subtitle>` +
    `<updated>${feedUpdated}</updated>` +
    `<author><name>${esc(s.page.name)}</name></author>` +
    `<link rel="alternate" type="text/html" href="${esc(page)}"/>` +
    (opts.feedUrl ? `<link rel="self" type="application/atom+xml" href="${esc(opts.feedUrl)}"/>` : '') +
    `<generator>Starling</generator>` +
    entries.map((e) => e.xml).join('') +
    `</feed>\n`
  );
}

/** The component list in a stable order (the model's), for sources that list only some. */
export function orderedComponents(list: ComponentView[]): ComponentView[] {
  const rank = new Map<string, number>(COMPONENTS.map((c, i) => [c, i]));
  return [...list].sort((a, b) => (rank.get(a.id) ?? 99) - (rank.get(b.id) ?? 99));
}
