/**
 * Retention for PostgreSQL's backups (cluster mode): keep the newest N base
 * backups that `starling pg base-backup` wrote into a folder, remove the older
 * ones, and remove the archived WAL segments older than the oldest base backup
 * kept (PostgreSQL's own `pg_archivecleanup`). Nothing kept then loses what it
 * needs: a point-in-time recovery starts from a kept base backup and replays
 * WAL from that backup's first segment on, which stays.
 *
 * The first segment comes from the backup's `backup_label` (written by the
 * server: `START WAL LOCATION: 0/2000028 (file 000000010000000000000002)`).
 * pg_archivecleanup compares segment numbers, not timelines, so segments of a
 * newer timeline (after a failover) that precede it go too, and `.history`
 * files (which recovery needs to follow timelines) always stay.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile, readdir, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { BackupError } from './files.js';
import { PG_BIN, readBaseBackup, type PgBaseManifest } from './pitr.js';

const run = promisify(execFile);

export interface BaseBackupEntry {
  path: string;
  manifest: PgBaseManifest;
  /** The WAL segment the backup starts in: recovery from it needs this one and every later one. */
  start_wal_file: string | null;
}

export interface PruneResult {
  dir: string;
  keep: number;
  kept: string[];
  removed: string[];
  /** Null when no WAL archive was given. */
  wal: { dir: string; oldest_needed: string; removed: string[]; left: number } | null;
}

const SEGMENT = /^[0-9A-F]{24}$/;

/** The first WAL segment of a base backup, from its backup_label. */
export async function startWalFile(backupPath: string): Promise<string | null> {
  const label = await readFile(join(backupPath, 'data', 'backup_label'), 'utf8').catch(() => null);
  return label ? (/START WAL LOCATION: \S+ \(file ([0-9A-F]{24})\)/.exec(label)?.[1] ?? null) : null;
}

/** The base backups in `dir` (pgbase-<UTC time> folders with a manifest), newest first. Unfinished `.tmp-…` folders are not listed. */
export async function listBaseBackups(dir: string): Promise<BaseBackupEntry[]> {
  const abs = resolve(dir);
  if (!existsSync(abs)) return [];
  const names = (await readdir(abs, { withFileTypes: true })).filter((e) => e.isDirectory() && e.name.startsWith('pgbase-')).map((e) => e.name);
  const out: BaseBackupEntry[] = [];
  for (const name of names.sort().reverse()) {
    try {
      const b = await readBaseBackup(join(abs, name));
      out.push({ ...b, start_wal_file: await startWalFile(b.path) });
    } catch {
      /* not a finished base backup: left alone */
    }
  }
  return out;
}

async function walSegments(dir: string): Promise<string[]> {
  return (await readdir(dir)).filter((n) => SEGMENT.test(n) || /^[0-9A-F]{24}\.partial$/.test(n));
}

/**
 * Keeps the newest `keep` base backups in `dir`, removes the others, then (with `wal`) removes archived WAL
 * segments older than the oldest kept backup's first segment. Refuses to touch the archive when a kept backup's
 * first segment is unknown: deleting WAL on a guess could make a backup unrestorable.
 */
export async function pruneBaseBackups(opts: { dir: string; keep: number; wal?: string }): Promise<PruneResult> {
  if (!Number.isInteger(opts.keep) || opts.keep < 1) throw new BackupError(`--keep must be a whole number of at least 1 (a base backup must remain for the WAL to be of use), got ${opts.keep}`);
  const dir = resolve(opts.dir);
  const all = await listBaseBackups(dir);
  if (all.length === 0) throw new BackupError(`no base backup in ${dir}: take one with starling pg base-backup first (nothing removed)`);
  const kept = all.slice(0, opts.keep);
  const old = all.slice(opts.keep);
  let wal: PruneResult['wal'] = null;
  let oldestNeeded: string | null = null;
  if (opts.wal) {
    const walDir = resolve(opts.wal);
    if (!existsSync(walDir)) throw new BackupError(`WAL archive ${walDir} does not exist`);
    const oldest = kept.at(-1)!;
    oldestNeeded = oldest.start_wal_file;
    if (!oldestNeeded) throw new BackupError(`the base backup ${oldest.path} has no readable backup_label: cannot tell which WAL it needs, so the archive was left alone (nothing removed)`);
    wal = { dir: walDir, oldest_needed: oldestNeeded, removed: [], left: 0 };
  }
  for (const b of old) await rm(b.path, { recursive: true, force: true });
  if (wal && oldestNeeded) {
    const before = new Set(await walSegments(wal.dir));
    const cleanup = join(PG_BIN, 'pg_archivecleanup');
    if (!existsSync(cleanup)) throw new BackupError(`${cleanup} not found: install PostgreSQL's programs (apt-get install postgresql) or set STARLING_PG_BIN`);
    try {
      await run(cleanup, [wal.dir, oldestNeeded], { maxBuffer: 16 * 1024 * 1024 });
    } catch (err) {
      throw new BackupError(`pg_archivecleanup failed: ${((err as { stderr?: string }).stderr || (err as Error).message).trim().split('\n').at(-1)}`);
    }
    const after = new Set(await walSegments(wal.dir));
    wal.removed = [...before].filter((n) => !after.has(n)).sort();
    wal.left = after.size;
  }
  return { dir, keep: opts.keep, kept: kept.map((b) => b.path), removed: old.map((b) => b.path), wal };
}
