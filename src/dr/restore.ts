/**
 * `starling restore`: puts a backup in place of the data folder's database.
 * Verifies first (into a staging folder inside the data folder, so the final
 * move is a rename on one filesystem), refuses while anything has the database
 * open, moves the current database files aside into `replaced-<time>/` (never
 * deletes them), then renames the restored file into place.
 */
import { existsSync } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { basename, join } from 'node:path';
import { migrations } from '../store/migrations/index.js';
import { BackupError, fsyncDir, stamp } from './files.js';
import { assertNotInUse } from './in-use.js';
import { verifyBackup } from './verify.js';
import type { Manifest } from './manifest.js';

export interface RestoreOptions {
  dataDir: string;
  databaseFile: string;
  /** quick_check instead of integrity_check (verify.ts). */
  quick?: boolean;
  now?: () => Date;
}

export interface RestoreResult {
  restored_from: string;
  database_file: string;
  /** Where the database that was replaced now is (null: there was none). */
  moved_aside_to: string | null;
  moved_files: string[];
  checks: string[];
  manifest: Manifest;
}

export async function restoreBackup(path: string, opts: RestoreOptions): Promise<RestoreResult> {
  const now = opts.now ?? (() => new Date());
  // Fail fast, before minutes of decompressing; checked again right before the swap.
  assertNotInUse(opts.dataDir, opts.databaseFile);
  await mkdir(opts.dataDir, { recursive: true });
  const staging = join(opts.dataDir, `.restore-${stamp(now())}-${randomBytes(3).toString('hex')}`);
  await mkdir(staging);
  try {
    const verified = await verifyBackup(path, { into: staging, quick: opts.quick });
    const known = new Set(Object.keys(migrations));
    const unknown = verified.manifest.schema.migrations.filter((m) => !known.has(m));
    if (unknown.length) {
      throw new BackupError(`backup has schema ${verified.manifest.schema.latest}, newer than this Starling knows (${Object.keys(migrations).at(-1)}): upgrade Starling before restoring it`);
    }
    assertNotInUse(opts.dataDir, opts.databaseFile);
    const aside = join(opts.dataDir, `replaced-${stamp(now())}`);
    const moved: string[] = [];
    // The WAL of a server that crashed holds committed writes: it goes aside with its database, never alone.
    for (const f of [opts.databaseFile, `${opts.databaseFile}-wal`, `${opts.databaseFile}-shm`, `${opts.databaseFile}-journal`]) {
      if (!existsSync(f)) continue;
      await mkdir(aside, { recursive: true });
      await rename(f, join(aside, basename(f)));
      moved.push(join(aside, basename(f)));
    }
    if (moved.length) await fsyncDir(aside);
    await rename(verified.restoredFile!, opts.databaseFile);
    await fsyncDir(opts.dataDir);
    return {
      restored_from: verified.path,
      database_file: opts.databaseFile,
      moved_aside_to: moved.length ? aside : null,
      moved_files: moved,
      checks: verified.checks,
      manifest: verified.manifest,
    };
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}
