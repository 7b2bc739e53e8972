/**
 * The static copy of the status page: index.html (relative links), feed.atom
 * and the JSON documents under api/ (and api/v2/), laid out like the served
 * `/status/…` paths so the folder can be hosted at any address by any web
 * server or bucket. Each file is written atomically; the copy is rewritten
 * only when its content changes.
 *
 * - `publishStatus(source, dir)`: one copy from a StatusSource (the ops engine
 *   calls it, or `starling status publish`). Idempotent and cheap when nothing changed.
 * - `StatusPublisher`: continuous publishing for a running node — the on-disk
 *   snapshot in the data folder and, when `ops.statusPublishDir` is set, the
 *   static copy, written when the summary changes (and refreshed now and then).
 * - `loadDatabaseData`: the page's data read from the ops tables, for the CLI
 *   when no node is running.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { openDatabase, type Db } from '../store/db.js';
import type { Config } from '../config.js';
import {
  COMPONENT_NAMES,
  COMPONENT_STATES,
  type ComponentId,
  type ComponentState,
  type ComponentView,
  type DailyUptime,
  type IncidentView,
  type MaintenanceView,
  type StatusSource,
  type StatusSummary,
} from './model.js';
import {
  PAST_INCIDENT_LIMIT,
  UPTIME_DAYS,
  collectPageData,
  orderedComponents,
  unknownPageData,
  renderAtom,
  renderStatusHtml,
  statusDocuments,
  withFreshness,
  type StatusPageData,
} from './status-render.js';
import { readSnapshot, snapshotPath, writeFileAtomic, writeSnapshot } from './snapshot.js';

export const DEFAULT_STALE_AFTER_MS = 60_000;
const KEY_FILE = '.starling-status-key';

/** The HTML page's absolute URL: the summary's page URL, with `/status` added when it names the site rather than the page. */
export function statusPageUrl(summary: StatusSummary): string {
  const url = summary.page.url.replace(/\/+$/, '');
  return /\/status$/.test(url) ? url : `${url}/status`;
}

/** Every file of the static copy, by path relative to the folder. index.html comes last so it never links to files not yet written. */
export function renderStaticCopy(data: StatusPageData, now: Date): [string, string][] {
  const files: [string, string][] = [];
  const docs = statusDocuments(data);
  for (const [name, doc] of Object.entries(docs)) {
    const json = JSON.stringify(doc, null, 2) + '\n';
    files.push([`api/${name}`, json], [`api/v2/${name}`, json]);
  }
  files.push(['feed.atom', renderAtom(data, { pageUrl: statusPageUrl(data.summary) })]);
  files.push(['index.html', renderStatusHtml(data, { now, base: '', mode: 'static' })]);
  return files;
}

/** What the copy shows, minus the time it was made: equal keys mean an identical copy. */
function contentKey(data: StatusPageData): string {
  return createHash('sha256')
    .update(JSON.stringify({ ...data, collectedAt: undefined }))
    .digest('hex');
}

/** Writes the static copy of `data` to `dir` unless the copy there already shows the same. Returns whether it wrote. */
export async function publishData(data: StatusPageData, dir: string, opts: { now?: Date; force?: boolean } = {}): Promise<boolean> {
  const key = contentKey(data);
  if (!opts.force) {
    const previous = await readFile(join(dir, KEY_FILE), 'utf8').catch(() => null);
    if (previous === key) return false;
  }
  for (const [path, content] of renderStaticCopy(data, opts.now ?? new Date(data.collectedAt))) {
    await writeFileAtomic(join(dir, path), content);
  }
  await writeFileAtomic(join(dir, KEY_FILE), key);
  return true;
}

/**
 * One complete static copy from a source, e.g. the ops engine when its
 * summary changes. Idempotent: unchanged data writes nothing.
 */
export async function publishStatus(source: StatusSource, dir: string, opts: { now?: Date; staleAfterMs?: number } = {}): Promise<void> {
  const now = opts.now ?? new Date();
  const data = withFreshness(collectPageData(source, now), now, opts.staleAfterMs ?? DEFAULT_STALE_AFTER_MS);
  await publishData(data, dir, { now });
}

// ---------------------------------------------------------------- continuous publishing

export interface PublisherOptions {
  dataDir: string;
  /** Where the static copy goes; none when unset. */
  publishDir?: string;
  /** Rewrite at least this often while data keeps moving (latency, last probe time) even if the summary did not change. */
  refreshMs?: number;
  log: Pick<Logger, 'warn' | 'debug'>;
  now?: () => Date;
}

/** The summary without the fields that move on every probe: a change here is a change people should see now. */
export function summaryKey(data: StatusPageData): string {
  const s = data.summary;
  return createHash('sha256')
    .update(JSON.stringify([data.origin, { ...s, page: { ...s.page, updated_at: null }, freshness: { ...s.freshness, last_probe_at: null } }]))
    .digest('hex');
}

export class StatusPublisher {
  private lastKey: string | null = null;
  private lastWriteAt = 0;
  private running: Promise<void> | null = null;
  private next: StatusPageData | null = null;
  private readonly refreshMs: number;
  private readonly now: () => Date;

  constructor(private readonly opts: PublisherOptions) {
    this.refreshMs = opts.refreshMs ?? 30_000;
    this.now = opts.now ?? (() => new Date());
  }

  /** Whether `data` would be written now (the summary changed, or it is time to refresh). */
  due(data: StatusPageData): boolean {
    return summaryKey(data) !== this.lastKey || this.now().getTime() - this.lastWriteAt >= this.refreshMs;
  }

  /**
   * Offers the current data. Writes the snapshot (live data only: a snapshot
   * is never rewritten from itself) and the static copy when due. Offers that
   * arrive during a write coalesce into one more write with the newest data.
   * Never throws; failures are logged and retried on the next offer.
   */
  offer(data: StatusPageData, force = false): Promise<void> {
    if (!force && !this.due(data)) return this.running ?? Promise.resolve();
    this.next = data;
    this.running ??= this.drain();
    return this.running;
  }

  private async drain(): Promise<void> {
    try {
      while (this.next) {
        const d = this.next;
        this.next = null;
        await this.write(d);
      }
    } finally {
      // Cleared in the same step the loop ends, so an offer arriving after it starts a new drain rather than being lost.
      this.running = null;
    }
  }

  /** Resolves when no write is in progress. */
  async idle(): Promise<void> {
    while (this.running) await this.running;
  }

  private async write(data: StatusPageData): Promise<void> {
    const key = summaryKey(data);
    let ok = true;
    // Only live data that has heard from a probe is worth keeping: a snapshot of "nothing yet" would replace a better one.
    if (data.origin === 'live' && data.summary.freshness.last_probe_at !== null) {
      try {
        await writeSnapshot(this.opts.dataDir, data, this.now());
      } catch (err) {
        ok = false;
        this.opts.log.warn({ err }, 'status snapshot not written');
      }
    }
    if (this.opts.publishDir) {
      try {
        await publishData(data, this.opts.publishDir, { now: this.now() });
      } catch (err) {
        ok = false;
        this.opts.log.warn({ err, dir: this.opts.publishDir }, 'static status page not published');
      }
    }
    if (ok) {
      this.lastKey = key;
      this.lastWriteAt = this.now().getTime();
    }
  }
}

// ---------------------------------------------------------------- from the database (CLI)

const WORST_FIRST: ComponentState[] = ['major_outage', 'partial_outage', 'degraded_performance', 'under_maintenance', 'operational'];

/** Statuspage's overall indicator from component states. */
export function indicatorFor(components: ComponentView[], inMaintenance: boolean): StatusSummary['status'] {
  const worst = WORST_FIRST.find((st) => components.some((c) => c.status === st)) ?? 'operational';
  switch (worst) {
    case 'major_outage':
      return { indicator: 'critical', description: 'Major system outage' };
    case 'partial_outage':
      return { indicator: 'major', description: 'Partial system outage' };
    case 'degraded_performance':
      return { indicator: 'minor', description: 'Minor service disruption' };
    case 'under_maintenance':
      return { indicator: 'maintenance', description: 'Service under maintenance' };
    default:
      return inMaintenance ? { indicator: 'maintenance', description: 'Service under maintenance' } : { indicator: 'none', description: 'All systems operational' };
  }
}

function parseComponents(json: string): ComponentId[] {
  try {
    const v = JSON.parse(json);
    return Array.isArray(v) ? v.filter((x): x is ComponentId => typeof x === 'string' && x in COMPONENT_NAMES) : [];
  } catch {
    return [];
  }
}

/**
 * The page's data from the ops tables the engine keeps (component_status,
 * component_daily, incidents, incident_updates, maintenances, probe_results).
 * Used by `starling status publish` when no node is running; a node serves
 * from memory instead.
 */
export async function loadDatabaseData(
  db: Db,
  opts: { now: Date; staleAfterMs: number; page: { name: string; url: string }; probe?: string },
): Promise<StatusPageData> {
  const now = opts.now;
  const at = now.toISOString();
  const statuses = await db.selectFrom('component_status').selectAll().execute();
  const components = orderedComponents(
    statuses
      .filter((r) => r.component in COMPONENT_NAMES)
      .map((r) => ({
        id: r.component as ComponentId,
        name: COMPONENT_NAMES[r.component as ComponentId],
        status: ((COMPONENT_STATES as readonly string[]).includes(r.status) ? r.status : 'major_outage') as ComponentState,
        since: r.since,
        updated_at: r.updated_at,
        reason: r.reason,
      })),
  );

  const incidentRows = await db.selectFrom('incidents').selectAll().where('resolved_at', 'is', null).orderBy('id', 'desc').execute();
  const pastRows = await db.selectFrom('incidents').selectAll().where('resolved_at', 'is not', null).orderBy('resolved_at', 'desc').limit(PAST_INCIDENT_LIMIT).execute();
  const ids = [...incidentRows, ...pastRows].map((r) => r.id);
  const updates = ids.length ? await db.selectFrom('incident_updates').selectAll().where('incident_id', 'in', ids).orderBy('id', 'desc').execute() : [];
  const toView = (r: (typeof incidentRows)[number]): IncidentView => ({
    id: r.id,
    name: r.title,
    status: r.status as IncidentView['status'],
    impact: r.impact as IncidentView['impact'],
    source: r.source as IncidentView['source'],
    components: parseComponents(r.components),
    created_at: r.created_at,
    updated_at: r.updated_at,
    resolved_at: r.resolved_at,
    incident_updates: updates
      .filter((u) => u.incident_id === r.id)
      .map((u) => ({ id: u.id, status: u.status as IncidentView['status'], body: u.body, created_at: u.created_at, author: u.author })),
  });

  const maintRows = await db.selectFrom('maintenances').selectAll().where('cancelled_at', 'is', null).where('ends_at', '>', at).orderBy('starts_at').execute();
  const maintenances: MaintenanceView[] = maintRows.map((m) => ({
    id: m.id,
    name: m.title,
    body: m.body,
    components: parseComponents(m.components),
    scheduled_for: m.starts_at,
    scheduled_until: m.ends_at,
    status: m.starts_at <= at ? 'in_progress' : 'scheduled',
  }));

  const firstDay = new Date(now.getTime() - (UPTIME_DAYS - 1) * 86_400_000).toISOString().slice(0, 10);
  const daily = await db.selectFrom('component_daily').selectAll().where('day', '>=', firstDay).orderBy('day').execute();
  const uptime: StatusPageData['uptime'] = {};
  for (const c of components) {
    uptime[c.id] = daily
      .filter((d) => d.component === c.id)
      .map((d): DailyUptime => ({
        day: d.day,
        uptime: d.samples > 0 ? d.ok_samples / d.samples : null,
        worst: (COMPONENT_STATES as readonly string[]).includes(d.worst_status) ? (d.worst_status as ComponentState) : null,
      }));
  }

  const probe = opts.probe ?? 'posting';
  const latencyRows = await db
    .selectFrom('probe_results')
    .select(['created_at', 'latency_ms'])
    .where('probe', '=', probe)
    .where('latency_ms', 'is not', null)
    .orderBy('id', 'desc')
    .limit(360)
    .execute();
  // The newest row by its time-ordered id (the primary key), not max(created_at) (a full scan): followers of the ops
  // leader run this every few seconds.
  const last = await db.selectFrom('probe_results').select('created_at').orderBy('id', 'desc').limit(1).executeTakeFirst();
  const lastProbe = last?.created_at ?? null;

  const inMaintenance = maintenances.some((m) => m.status === 'in_progress');
  const updatedAt = [...statuses.map((s) => s.updated_at), ...incidentRows.map((i) => i.updated_at)].sort().pop() ?? at;
  const data: StatusPageData = {
    summary: {
      page: { id: 'starling', name: opts.page.name, url: opts.page.url, updated_at: updatedAt },
      status: components.length ? indicatorFor(components, inMaintenance) : { indicator: 'unknown', description: 'Status unknown' },
      components,
      incidents: incidentRows.map(toView),
      scheduled_maintenances: maintenances,
      freshness: { last_probe_at: lastProbe, stale: false, stale_since: null },
    },
    uptime,
    latency: latencyRows.reverse().map((r) => ({ t: r.created_at, ms: Number(r.latency_ms) })),
    pastIncidents: pastRows.map(toView),
    // Read from storage, not from a live engine: judged by its own probe time.
    origin: 'snapshot',
    collectedAt: at,
  };
  if (!lastProbe) data.summary.freshness = { last_probe_at: null, stale: true, stale_since: null };
  return withFreshness(data, now, opts.staleAfterMs);
}

// ---------------------------------------------------------------- the CLI: from the snapshot file or the database

export interface PublishFromStorageResult {
  dir: string;
  /** Where the data came from. */
  from: 'snapshot' | 'database' | 'none';
  data: StatusPageData;
  /** Why another source was not used, when one was tried and failed. */
  notes: string[];
}

/**
 * `starling status publish --to DIR`: a complete static copy without a running
 * node. `auto` uses the snapshot file when a running node keeps it fresh, else
 * the database, else the snapshot however old (so it works with the database
 * down), else an honest "unknown" page.
 */
export async function publishFromStorage(
  config: Pick<Config, 'dataDir' | 'databaseFile' | 'publicUrl' | 'instanceTitle' | 'ops'> & { databaseUrl?: string },
  opts: { to: string; from?: 'auto' | 'snapshot' | 'database'; now?: Date },
): Promise<PublishFromStorageResult> {
  const now = opts.now ?? new Date();
  const from = opts.from ?? 'auto';
  const staleAfterMs = config.ops.staleAfterSeconds * 1000;
  const page = { name: config.instanceTitle, url: `${config.publicUrl}/status` };
  const notes: string[] = [];
  const snapshot = from === 'database' ? null : readSnapshot(config.dataDir);
  if (from !== 'database' && !snapshot) notes.push(`no readable snapshot at ${snapshotPath(config.dataDir)}`);
  const fresh = snapshot && now.getTime() - Date.parse(snapshot.summary.freshness.last_probe_at ?? snapshot.collectedAt) <= staleAfterMs;

  let chosen: { from: PublishFromStorageResult['from']; data: StatusPageData } | null = null;
  if (snapshot && (fresh || from === 'snapshot')) chosen = { from: 'snapshot', data: snapshot };
  if (!chosen && from !== 'snapshot') {
    try {
      if (!config.databaseUrl && !existsSync(config.databaseFile)) throw new Error(`no database at ${config.databaseFile}`);
      const database = openDatabase(config);
      try {
        chosen = { from: 'database', data: await loadDatabaseData(database.db, { now, staleAfterMs, page }) };
      } finally {
        await database.close().catch(() => {});
      }
    } catch (err) {
      if (from === 'database') throw new Error(`cannot read the status from the database: ${(err as Error).message}`);
      notes.push(`database not used: ${(err as Error).message}`);
    }
  }
  if (!chosen && snapshot) chosen = { from: 'snapshot', data: snapshot };
  chosen ??= { from: 'none', data: unknownPageData(now, page) };
  const data = withFreshness(chosen.data, now, staleAfterMs);
  await publishData(data, opts.to, { now, force: true });
  return { dir: opts.to, from: chosen.from, data, notes };
}
