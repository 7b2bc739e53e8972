/**
 * The operations page (/ops), for administrators: this node's figures minute
 * by minute for the last 6 hours (GET /api/v1/admin/starling/ops), refreshed
 * every 30 s, as SVG charts with a text summary each, plus the SLOs and the
 * components as the status page shows them, and the last disaster-recovery
 * drills (restore, failover) from the drill log (GET /api/v1/admin/starling/drills).
 */
import { useEffect, useId, useState } from 'react';
import { ErrorBox, PageHeading, Spinner } from '../components/common';
import { beginSignIn, session } from '../lib/auth';
import { api, ApiError, describeError } from '../lib/http';
import { useStore } from '../lib/store';
import { isAdmin } from '../lib/roles';

const REFRESH_MS = 30_000;

interface Minute {
  t: string;
  requests: number;
  errors: number;
  p50_ms: number | null;
  p95_ms: number | null;
  p99_ms: number | null;
  burn: Record<string, number> | null;
  probe_ms: number | null;
}

interface Slo {
  name: string;
  objective: number;
  burnRates: Record<string, number>;
  errorBudgetRemaining: number;
  alert: null | 'page' | 'ticket';
}

interface Component {
  id: string;
  name: string;
  status: string;
  since: string;
  reason: string | null;
}

interface OpsData {
  generated_at: string;
  minutes: Minute[];
  slo: Slo[];
  alert_policy: { severity: string; long: string; short: string; burn: number }[];
  latency_threshold_ms: number;
  components: Component[];
  freshness: { last_probe_at: string | null; stale: boolean; stale_since: string | null };
}

/** One line of `<data-dir>/drill-log.jsonl` (src/dr/drill.ts, src/dr/failover-drill.ts): what the table shows. */
interface Drill {
  kind: string;
  ok: boolean;
  started_at: string;
  rto_seconds: number | null;
  rpo_seconds: number | null;
  error?: string;
  failover?: { killed: { name: string } | null; posts_acknowledged: number; posts_missing: number; posts_duplicated: number };
  backup?: { path: string } | null;
}

/** How many drills the table shows, newest first. */
const DRILLS_SHOWN = 10;

const STATE_WORDS: Record<string, string> = {
  operational: 'Operational',
  degraded_performance: 'Degraded performance',
  partial_outage: 'Partial outage',
  major_outage: 'Major outage',
  under_maintenance: 'Under maintenance',
};

const hhmm = (iso: string) => new Date(iso).toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit' });
const pct = (v: number, digits = 2) => `${(v * 100).toFixed(digits)}%`;
const num = (v: number | null | undefined, unit = '', digits = 1) => (v === null || v === undefined || !Number.isFinite(v) ? 'no data' : `${Number(v.toFixed(digits))}${unit}`);

export default function Ops() {
  const me = useStore(session)?.account;
  const [data, setData] = useState<OpsData | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [loading, setLoading] = useState(true);
  const [drills, setDrills] = useState<Drill[] | null>(null);
  const [drillsError, setDrillsError] = useState<unknown>(null);

  useEffect(() => {
    let live = true;
    let ctl: AbortController | null = null;
    const load = async () => {
      ctl?.abort();
      ctl = new AbortController();
      try {
        const { data: d } = await api<OpsData>('/api/v1/admin/starling/ops', { signal: ctl.signal });
        if (!live) return;
        setData(d);
        setError(null);
        // The drill log is a file on this node, read apart: its failure must not hide the figures above.
        try {
          const { data: log } = await api<Drill[]>('/api/v1/admin/starling/drills', { signal: ctl.signal, query: { limit: String(DRILLS_SHOWN) } });
          if (!live) return;
          setDrills(log);
          setDrillsError(null);
        } catch (err) {
          if (!live || (err as Error).name === 'AbortError') return;
          setDrillsError(err);
        }
      } catch (err) {
        if (!live || (err as Error).name === 'AbortError') return;
        setError(err);
      } finally {
        if (live) setLoading(false);
      }
    };
    void load();
    const timer = setInterval(() => void load(), REFRESH_MS);
    return () => {
      live = false;
      clearInterval(timer);
      ctl?.abort();
    };
  }, [me?.id]);

  const forbidden = error instanceof ApiError && error.status === 403;
  if (forbidden && !data) {
    // An administrator whose token here was issued without admin:read can grant it; anybody else cannot.
    const needsScope = isAdmin(me) && /scope/i.test(error.message);
    return (
      <section>
        <PageHeading>Operations</PageHeading>
        {needsScope ? (
          <div className="ops-notice">
            <p>This browser's session can't read operations data yet. Sign in again to allow it.</p>
            <button type="button" className="btn btn-primary" onClick={() => void beginSignIn('/ops', { admin: true })}>
              Allow access to operations data
            </button>
          </div>
        ) : (
          <p className="ops-notice">Only administrators can see this page.</p>
        )}
      </section>
    );
  }

  return (
    <section className="ops" aria-busy={loading}>
      <PageHeading>Operations</PageHeading>
      <p className="page-intro">
        This node, minute by minute, for the last 6 hours (as long as it has been running). Refreshed every 30 seconds.
        {data && <> Updated at {hhmm(data.generated_at)}.</>}
      </p>
      {loading && !data && <Spinner label="Loading operations data" />}
      {error !== null && <ErrorBox>{data ? `Couldn't refresh: ${describeError(error)} Showing the figures from ${hhmm(data.generated_at)}.` : `Couldn't load the operations data. ${describeError(error)}`}</ErrorBox>}
      {data && <OpsBody data={data} />}
      {data && <Drills drills={drills} error={drillsError} />}
    </section>
  );
}

function OpsBody({ data }: { data: OpsData }) {
  const m = data.minutes;
  const times = m.map((x) => x.t);
  const burn = (key: string) => m.map((x) => (x.burn ? (x.burn[key] ?? null) : null));
  const fast = data.alert_policy.find((a) => a.severity === 'page' && a.long === '1h')?.burn ?? 14.4;
  const slow = data.alert_policy.find((a) => a.severity === 'page' && a.long === '6h')?.burn ?? 6;
  return (
    <>
      <h2 className="section-title">Service-level objectives</h2>
      <div className="ops-table-wrap">
        <table className="ops-table" aria-label="Service-level objectives">
          <thead>
            <tr>
              <th scope="col">Objective</th>
              <th scope="col">Target</th>
              <th scope="col">Error budget left</th>
              <th scope="col">Burn 1 h / 6 h</th>
              <th scope="col">Alert</th>
            </tr>
          </thead>
          <tbody>
            {data.slo.map((s) => (
              <tr key={s.name}>
                <th scope="row">{s.name === 'latency' ? `Latency (≤ ${data.latency_threshold_ms} ms)` : 'Availability'}</th>
                <td>{pct(s.objective)}</td>
                <td>{pct(Math.max(0, s.errorBudgetRemaining), 1)}</td>
                <td>
                  {num(s.burnRates['1h'], '×', 2)} / {num(s.burnRates['6h'], '×', 2)}
                </td>
                <td>
                  <span className={`ops-alert ops-alert-${s.alert ?? 'none'}`}>{s.alert === 'page' ? 'Paging' : s.alert === 'ticket' ? 'Ticket' : 'None'}</span>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>

      <h2 className="section-title">Components</h2>
      {data.freshness.stale && (
        <p className="ops-stale">Probes have not reported since {data.freshness.stale_since ? hhmm(data.freshness.stale_since) : 'this node started'}: these states may be out of date.</p>
      )}
      <ul className="ops-components">
        {data.components.map((c) => (
          <li key={c.id}>
            <span className={`ops-dot ops-${c.status}`} aria-hidden="true" />
            <span className="ops-comp-name">{c.name}</span>
            <span className="ops-comp-state">{STATE_WORDS[c.status] ?? c.status}</span>
            {c.reason && <span className="ops-comp-reason">{c.reason}</span>}
          </li>
        ))}
      </ul>

      <h2 className="section-title">Last 6 hours</h2>
      <div className="ops-charts">
        <Chart title="Request rate" unit=" req/min" digits={0} times={times} series={[{ name: 'Requests', values: m.map((x) => x.requests), color: 'var(--accent)' }]} />
        <Chart
          title="Error rate"
          unit="%"
          digits={2}
          times={times}
          series={[{ name: '5xx share of requests', values: m.map((x) => (x.requests > 0 ? (x.errors / x.requests) * 100 : null)), color: 'var(--danger)' }]}
        />
        <Chart
          title="Latency"
          unit=" ms"
          times={times}
          series={[
            { name: 'p50', values: m.map((x) => x.p50_ms), color: 'var(--repost)' },
            { name: 'p95', values: m.map((x) => x.p95_ms), color: 'var(--accent)', dash: '6 3' },
            { name: 'p99', values: m.map((x) => x.p99_ms), color: 'var(--like)', dash: '2 3' },
          ]}
        />
        <Chart
          title="Error-budget burn rate"
          unit="×"
          digits={2}
          times={times}
          series={[
            { name: 'Availability, 1 h', values: burn('availability_1h'), color: 'var(--accent)' },
            { name: 'Availability, 6 h', values: burn('availability_6h'), color: 'var(--accent)', dash: '6 3' },
            { name: 'Latency, 1 h', values: burn('latency_1h'), color: 'var(--like)' },
            { name: 'Latency, 6 h', values: burn('latency_6h'), color: 'var(--like)', dash: '6 3' },
          ]}
          thresholds={[
            { value: fast, label: `${fast}× pages (1 h and 5 min)` },
            { value: slow, label: `${slow}× pages (6 h and 30 min)` },
          ]}
        />
        <Chart title="Posting probe latency" unit=" ms" digits={0} times={times} series={[{ name: 'Post to home timeline and stream', values: m.map((x) => x.probe_ms), color: 'var(--repost)' }]} />
      </div>
    </>
  );
}

const secs = (v: number | null, digits: number) => (v === null ? '–' : `${v.toFixed(digits)} s`);
const when = (iso: string) => new Date(iso).toLocaleString(undefined, { year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' });

/** What a drill found, in words: lost and duplicated posts for a failover, the error for a failed drill. */
function drillDetail(d: Drill): string {
  const parts: string[] = [];
  if (d.failover) {
    const f = d.failover;
    parts.push(`${f.killed ? `primary ${f.killed.name} killed; ` : ''}${f.posts_missing} lost, ${f.posts_duplicated} duplicated of ${f.posts_acknowledged} acknowledged posts`);
  }
  if (d.error) parts.push(d.error);
  return parts.join('. ');
}

/** The last drills from the drill log: operators see at a glance whether recovery was rehearsed lately, and how it went. */
function Drills({ drills, error }: { drills: Drill[] | null; error: unknown }) {
  return (
    <>
      <h2 className="section-title">Disaster-recovery drills</h2>
      {error !== null && <ErrorBox>{`Couldn't load the drill log. ${describeError(error)}`}</ErrorBox>}
      {drills !== null && drills.length === 0 && (
        <p className="ops-notice">
          No drills on this node yet. Run <code>starling drill restore</code> or <code>starling drill failover</code> (docs/OPERATIONS.md).
        </p>
      )}
      {drills !== null && drills.length > 0 && (
        <div className="ops-table-wrap">
          <table className="ops-table ops-drills" aria-label="Disaster-recovery drills">
            <thead>
              <tr>
                <th scope="col">When</th>
                <th scope="col">Drill</th>
                <th scope="col">Result</th>
                <th scope="col">RTO</th>
                <th scope="col">RPO</th>
                <th scope="col">Details</th>
              </tr>
            </thead>
            <tbody>
              {drills.map((d) => (
                <tr key={`${d.started_at}-${d.kind}`}>
                  <th scope="row">
                    <time dateTime={d.started_at}>{when(d.started_at)}</time>
                  </th>
                  <td>{d.kind === 'failover' ? 'Failover' : d.kind === 'restore' ? 'Restore' : d.kind}</td>
                  <td>
                    <span className={`ops-alert ops-drill-${d.ok ? 'ok' : 'failed'}`}>{d.ok ? 'Passed' : 'Failed'}</span>
                  </td>
                  <td>{secs(d.rto_seconds, 1)}</td>
                  <td>{secs(d.rpo_seconds, 0)}</td>
                  <td className="ops-drill-detail">{drillDetail(d)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </>
  );
}

interface Series {
  name: string;
  values: (number | null)[];
  color: string;
  dash?: string;
}

const W = 560;
const H = 170;
const PAD = { left: 48, right: 12, top: 10, bottom: 22 };
/** The shortest time axis, in minutes. */
const MIN_SPAN = 30;

/** A nice round top for the y axis. */
function niceMax(v: number): number {
  if (!(v > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const f of [1, 2, 2.5, 5, 10]) if (f * p >= v) return f * p;
  return 10 * p;
}

function lastValue(values: (number | null)[]): number | null {
  for (let i = values.length - 1; i >= 0; i--) if (values[i] !== null) return values[i];
  return null;
}

/** A line chart: a title, the latest values in words, and the SVG (role img, its own title and description). */
export function Chart({ title, unit, times, series, thresholds = [], digits = 1 }: { title: string; unit: string; times: string[]; series: Series[]; thresholds?: { value: number; label: string }[]; digits?: number }) {
  const id = useId();
  const svgTitle = `${id}-t`;
  const svgDesc = `${id}-d`;
  const n = times.length;
  const max = niceMax(Math.max(0, ...series.flatMap((s) => s.values.filter((v): v is number => v !== null)), ...thresholds.map((t) => t.value * 1.08)));
  // The axis spans at least MIN_SPAN minutes, ending now: a node that just started shows a short line at the right, not a stretched one.
  const span = Math.max(n, MIN_SPAN);
  const x = (i: number) => PAD.left + ((W - PAD.left - PAD.right) * (span - n + i)) / (span - 1);
  const endMs = n ? Date.parse(times[n - 1]) : 0;
  const axis = n ? [0, 0.5, 1].map((f) => ({ f, label: hhmm(new Date(endMs - (1 - f) * (span - 1) * 60_000).toISOString()) })) : [];
  const y = (v: number) => PAD.top + (H - PAD.top - PAD.bottom) * (1 - Math.min(v, max) / max);
  const summary =
    n === 0
      ? 'No data yet.'
      : `Latest (${hhmm(times[n - 1])}): ${series.map((s) => `${s.name} ${num(lastValue(s.values), unit, digits)}`).join('; ')}.` +
        (thresholds.length ? ` Alert thresholds: ${thresholds.map((t) => t.label).join('; ')}.` : '');
  const ticks = [0, max / 2, max];
  const fmtTick = (v: number) => `${Number(v.toPrecision(3))}${unit.trim() === '%' || unit === '×' ? unit.trim() : ''}`;
  return (
    <figure className="ops-chart">
      <figcaption>
        <h3 className="ops-chart-title">{title}</h3>
        <p className="ops-chart-summary">{summary}</p>
      </figcaption>
      <svg viewBox={`0 0 ${W} ${H}`} role="img" aria-labelledby={`${svgTitle} ${svgDesc}`} className="ops-svg">
        <title id={svgTitle}>{title}</title>
        <desc id={svgDesc}>
          {`${title}, ${n} minutes${n ? ` from ${hhmm(times[0])} to ${hhmm(times[n - 1])}` : ''}. ${summary}`}
        </desc>
        {ticks.map((v) => (
          <g key={v} className="ops-grid">
            <line x1={PAD.left} x2={W - PAD.right} y1={y(v)} y2={y(v)} />
            <text x={PAD.left - 6} y={y(v) + 4} textAnchor="end">
              {fmtTick(v)}
            </text>
          </g>
        ))}
        <g className="ops-axis">
          {axis.map((a) => (
            <text key={a.f} x={PAD.left + (W - PAD.left - PAD.right) * a.f} y={H - 5} textAnchor={a.f === 0 ? 'start' : a.f === 1 ? 'end' : 'middle'}>
              {a.label}
            </text>
          ))}
        </g>
        {thresholds.map((t) => (
          <g key={t.label} className="ops-threshold">
            <line x1={PAD.left} x2={W - PAD.right} y1={y(t.value)} y2={y(t.value)} />
            <text x={W - PAD.right - 4} y={y(t.value) - 4} textAnchor="end">
              {t.value}×
            </text>
          </g>
        ))}
        {series.map((s) => (
          <Line key={s.name} s={s} x={x} y={y} />
        ))}
      </svg>
      <ul className="ops-legend" aria-hidden="true">
        {series.map((s) => (
          <li key={s.name}>
            <svg width="22" height="8" viewBox="0 0 22 8">
              <line x1="1" x2="21" y1="4" y2="4" style={{ stroke: s.color }} strokeWidth="2.5" strokeDasharray={s.dash} />
            </svg>
            {s.name}
          </li>
        ))}
        {thresholds.length > 0 && (
          <li>
            <svg width="22" height="8" viewBox="0 0 22 8">
              <line x1="1" x2="21" y1="4" y2="4" className="ops-threshold-key" />
            </svg>
            Alert threshold
          </li>
        )}
      </ul>
    </figure>
  );
}

/** A line with gaps where there is no data; a lone point between gaps is a dot. */
function Line({ s, x, y }: { s: Series; x: (i: number) => number; y: (v: number) => number }) {
  let d = '';
  const dots: [number, number][] = [];
  s.values.forEach((v, i) => {
    if (v === null) return;
    const prev = i > 0 ? s.values[i - 1] : null;
    const next = i + 1 < s.values.length ? s.values[i + 1] : null;
    if (prev === null && next === null) dots.push([x(i), y(v)]);
    d += `${prev === null ? 'M' : 'L'}${x(i).toFixed(1)},${y(v).toFixed(1)}`;
  });
  return (
    <g>
      {d && <path d={d} fill="none" style={{ stroke: s.color }} strokeWidth="2" strokeDasharray={s.dash} vectorEffect="non-scaling-stroke" strokeLinejoin="round" />}
      {dots.map(([cx, cy], i) => (
        <circle key={i} cx={cx} cy={cy} r="3.5" style={{ fill: s.color }} />
      ))}
    </g>
  );
}
