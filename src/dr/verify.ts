/**
 * `starling verify-backup`: a backup is only as good as a restore from it. This
 * restores the copy into a temporary folder and checks it end to end: the
 * compressed file's SHA-256, that it decompresses, the raw database's SHA-256,
 * SQLite's `integrity_check` and `foreign_key_check`, and the row count of
 * every table against the manifest. The first failure is the one-line reason.
 */
import SQLite from 'better-sqlite3';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BackupError, fsyncFile, sha256File } from './files.js';
import { locateBackup, readManifest, type Manifest } from './manifest.js';
import { describeCopy } from './backup.js';

export interface VerifyOptions {
  /** Restore into this folder and leave the database there (`restore` uses it); default: a temporary folder, removed afterwards. */
  into?: string;
  /**
   * `PRAGMA quick_check` instead of `integrity_check`: the same page, b-tree and
   * record checks without comparing every index with its table, which is most
   * of the time on a large database. For a restore under time pressure; the full
   * check remains the default.
   */
  quick?: boolean;
}

export interface VerifyResult {
  path: string;
  manifest: Manifest;
  checks: string[];
  /** The restored database file, when `into` was given. */
  restoredFile?: string;
  /** Milliseconds per step. */
  phases: { hash_ms: number; decompress_ms: number; check_ms: number };
}

export async function verifyBackup(path: string, opts: VerifyOptions = {}): Promise<VerifyResult> {
  const loc = await locateBackup(path);
  const manifest = await readManifest(loc.manifestFile);
  const checks: string[] = [];
  let t = Date.now();
  const lap = () => -t + (t = Date.now());
  const st = await stat(loc.dataFile).catch(() => null);
  if (!st) throw new BackupError(`backup is incomplete: ${loc.dataFile} is missing`);
  if (st.size !== manifest.file.bytes) {
    throw new BackupError(`backup is corrupted: ${loc.dataFile} has ${st.size} bytes, the manifest says ${manifest.file.bytes}`);
  }
  const fileHash = await sha256File(loc.dataFile);
  if (fileHash !== manifest.file.sha256) {
    throw new BackupError(`backup is corrupted: SHA-256 of ${loc.dataFile} is ${fileHash.slice(0, 16)}…, the manifest says ${manifest.file.sha256.slice(0, 16)}…`);
  }
  checks.push('sha256 of the compressed file');
  const hashMs = lap();

  const dir = opts.into ?? (await mkdtemp(join(tmpdir(), 'starling-verify-')));
  const restored = join(dir, 'starling.sqlite');
  let keep = false;
  try {
    const hash = createHash('sha256');
    try {
      await pipeline(
        createReadStream(loc.dataFile),
        createGunzip(),
        new Transform({
          transform(chunk: Buffer, _e, cb) {
            hash.update(chunk);
            cb(null, chunk);
          },
        }),
        createWriteStream(restored),
      );
    } catch (err) {
      throw new BackupError(`backup is corrupted: cannot decompress ${loc.dataFile}: ${(err as Error).message}`);
    }
    await fsyncFile(restored);
    const rawHash = hash.digest('hex');
    if (rawHash !== manifest.raw.sha256) {
      throw new BackupError(`backup is corrupted: SHA-256 of the decompressed database is ${rawHash.slice(0, 16)}…, the manifest says ${manifest.raw.sha256.slice(0, 16)}…`);
    }
    checks.push('decompresses', 'sha256 of the database');
    const decompressMs = lap();

    try {
      checkDatabase(restored, manifest, checks, opts.quick ?? false);
    } catch (err) {
      if (err instanceof BackupError) throw err;
      // SQLite refusing the file at all ("database disk image is malformed") is as much a failed check as integrity_check saying so.
      throw new BackupError(`restored database is damaged: ${(err as Error).message}`);
    }
    checks.push(`row counts of ${Object.keys(manifest.tables).length} tables`);
    keep = opts.into !== undefined;
    return { path: loc.dir, manifest, checks, restoredFile: keep ? restored : undefined, phases: { hash_ms: hashMs, decompress_ms: decompressMs, check_ms: lap() } };
  } finally {
    if (!opts.into) await rm(dir, { recursive: true, force: true });
    else if (!keep) await rm(restored, { force: true });
  }
}

/** SQLite's own checks, then the row counts against the manifest. Throws a BackupError with the first problem. */
function checkDatabase(restored: string, manifest: Manifest, checks: string[], quick: boolean): void {
  const db = new SQLite(restored, { fileMustExist: true, readonly: true });
  try {
    const pragma = quick ? 'quick_check' : 'integrity_check';
    const problems = (db.pragma(pragma) as Record<string, string>[]).map((r) => Object.values(r)[0]!);
    if (problems.length !== 1 || problems[0] !== 'ok') {
      throw new BackupError(`restored database fails ${pragma}: ${problems[0] ?? 'no answer'}${problems.length > 1 ? ` (and ${problems.length - 1} more)` : ''}`);
    }
    checks.push(pragma);
    const orphans = db.pragma('foreign_key_check') as { table: string; parent: string }[];
    if (orphans.length) {
      throw new BackupError(`restored database fails foreign_key_check: ${orphans.length} rows of ${orphans[0]!.table} point at missing ${orphans[0]!.parent} rows`);
    }
    checks.push('foreign_key_check');
  } finally {
    db.close();
  }

  const facts = describeCopy(restored, { readonly: true });
  for (const [table, n] of Object.entries(manifest.tables)) {
    const got = facts.tables[table];
    if (got === undefined) throw new BackupError(`restored database has no table ${table}, the manifest lists it with ${n} rows`);
    if (got !== n) throw new BackupError(`restored database has ${got} rows in ${table}, the manifest says ${n}`);
  }
  for (const table of Object.keys(facts.tables)) {
    if (!(table in manifest.tables)) throw new BackupError(`restored database has a table ${table} the manifest does not list`);
  }
}
