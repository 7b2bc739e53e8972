/**
 * The status page's on-disk snapshot: everything the page shows, written
 * atomically (temporary file, fsync, rename) to `<dataDir>/status-snapshot.json`
 * whenever the live data changes, and read back at startup. When the ops
 * engine is missing or failing — or the database was unreachable from the
 * start — `/status` answers from this file instead of erroring, marked as a
 * snapshot and judged stale by its own probe time.
 */
import { readFileSync } from 'node:fs';
import { mkdir, open, rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { StatusPageData } from './status-render.js';

export const SNAPSHOT_FILE = 'status-snapshot.json';
const VERSION = 1;

export interface SnapshotFile {
  version: typeof VERSION;
  written_at: string;
  data: StatusPageData;
}

export function snapshotPath(dataDir: string): string {
  return join(dataDir, SNAPSHOT_FILE);
}

/**
 * Writes a file so that readers see the old content or the new, never a
 * torn one, and a crash right after leaves the new content on disk.
 */
export async function writeFileAtomic(path: string, content: string | Uint8Array): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const tmp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  const fh = await open(tmp, 'w', 0o644);
  try {
    await fh.writeFile(content);
    await fh.sync();
  } catch (err) {
    await fh.close().catch(() => {});
    await rm(tmp, { force: true });
    throw err;
  }
  await fh.close();
  try {
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}

export async function writeSnapshot(dataDir: string, data: StatusPageData, now: Date = new Date()): Promise<void> {
  const file: SnapshotFile = { version: VERSION, written_at: now.toISOString(), data: { ...data, origin: 'live' } };
  await writeFileAtomic(snapshotPath(dataDir), JSON.stringify(file));
}

/**
 * Reads the snapshot back (synchronously: it is read once at startup, before
 * the first request). A missing, unreadable or malformed file is `null`,
 * never an exception: the page then says "unknown".
 */
export function readSnapshot(dataDir: string): StatusPageData | null {
  let text: string;
  try {
    text = readFileSync(snapshotPath(dataDir), 'utf8');
  } catch {
    return null;
  }
  return parseSnapshot(text);
}

export function parseSnapshot(text: string): StatusPageData | null {
  try {
    const file = JSON.parse(text) as Partial<SnapshotFile>;
    const d = file?.data;
    if (file?.version !== VERSION || !d || typeof d !== 'object') return null;
    const s = d.summary;
    const ok =
      s &&
      typeof s === 'object' &&
      s.page &&
      typeof s.page.name === 'string' &&
      s.status &&
      typeof s.status.indicator === 'string' &&
      Array.isArray(s.components) &&
      Array.isArray(s.incidents) &&
      Array.isArray(s.scheduled_maintenances) &&
      s.freshness &&
      typeof s.freshness.stale === 'boolean' &&
      Array.isArray(d.latency) &&
      Array.isArray(d.pastIncidents) &&
      d.uptime &&
      typeof d.uptime === 'object' &&
      typeof d.collectedAt === 'string';
    if (!ok) return null;
    return { ...d, origin: 'snapshot' };
  } catch {
    return null;
  }
}
