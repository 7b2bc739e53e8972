/**
 * `starling backup`: an online, consistent copy of the SQLite database while
 * a server keeps writing to it.
 *
 * SQLite's online backup API (better-sqlite3 `db.backup()`) copies pages. Done
 * in small steps from a second connection it would restart each time the
 * server commits, and might never finish under load; so the copy is made in
 * one step, which holds one read transaction for its length. In WAL mode a
 * reader does not block the writer: the server keeps committing (into the WAL)
 * while the copy sees one snapshot. Run from its own process (the CLI, or a
 * child the server spawns on schedule), the copy costs the server's event loop nothing.
 *
 * The copy is then switched out of WAL mode (one self-contained file), counted,
 * and gzip-compressed while streaming, with SHA-256 of both the raw and the
 * compressed bytes. Everything is written into a temporary folder, fsynced and
 * renamed into place, so a backup folder either is complete or does not exist.
 */
import SQLite from 'better-sqlite3';
import { createReadStream, createWriteStream, existsSync } from 'node:fs';
import { mkdir, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import { createHash, randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { STARLING_VERSION } from '../version.js';
import { BackupError, fsyncDir, fsyncFile, stamp } from './files.js';
import { BACKUP_PREFIX, DATA_FILE, MANIFEST_FILE, readManifest, type Manifest } from './manifest.js';

export interface BackupOptions {
  databaseFile: string;
  /** The folder backups are kept in. */
  to: string;
  /** Keep only the newest `keep` backups in `to` afterwards (0 or absent: keep all). */
  keep?: number;
  now?: () => Date;
}

export interface BackupResult {
  path: string;
  manifest: Manifest;
  /** Older backups removed by retention. */
  pruned: string[];
  /** Milliseconds per step: the page copy, reading counts, compressing and hashing. */
  phases: { copy_ms: number; count_ms: number; compress_ms: number };
}

/** Copies every remaining page in one step, so the copy is one snapshot (see the module comment). */
const ALL_PAGES = 0x7fffffff;

export async function takeBackup(opts: BackupOptions): Promise<BackupResult> {
  const now = opts.now ?? (() => new Date());
  if (!existsSync(opts.databaseFile)) throw new BackupError(`no database at ${opts.databaseFile}: nothing to back up`);
  await mkdir(opts.to, { recursive: true });
  const started = now();
  const name = `${BACKUP_PREFIX}${stamp(started)}`;
  const tmp = join(opts.to, `.tmp-${name}-${process.pid}-${randomBytes(3).toString('hex')}`);
  await mkdir(tmp);
  try {
    const raw = join(tmp, 'starling.sqlite');
    let t = Date.now();
    const lap = () => -t + (t = Date.now());
    const source = new SQLite(opts.databaseFile, { fileMustExist: true, timeout: 5000 });
    try {
      await source.backup(raw, { progress: () => ALL_PAGES });
    } finally {
      source.close();
    }
    const copyMs = lap();
    const facts = describeCopy(raw);
    const countMs = lap();
    const gz = join(tmp, DATA_FILE);
    const rawHash = createHash('sha256');
    const gzHash = createHash('sha256');
    let rawBytes = 0;
    let gzBytes = 0;
    await pipeline(
      createReadStream(raw),
      tap((c) => (rawHash.update(c), (rawBytes += c.length))),
      createGzip({ level: 6 }),
      tap((c) => (gzHash.update(c), (gzBytes += c.length))),
      createWriteStream(gz),
    );
    await fsyncFile(gz);
    await rm(raw);
    const compressMs = lap();
    const manifest: Manifest = {
      format: 'starling-backup',
      version: 1,
      // Every write acknowledged before this moment is in the copy (some later ones may be too).
      created_at: started.toISOString(),
      started_at: started.toISOString(),
      finished_at: now().toISOString(),
      source: { database_file: opts.databaseFile, hostname: hostname(), starling_version: STARLING_VERSION },
      schema: facts.schema,
      tables: facts.tables,
      newest_status: facts.newestStatus,
      file: { name: DATA_FILE, compression: 'gzip', bytes: gzBytes, sha256: gzHash.digest('hex') },
      raw: { bytes: rawBytes, sha256: rawHash.digest('hex'), page_size: facts.pageSize, page_count: facts.pageCount },
    };
    await writeFile(join(tmp, MANIFEST_FILE), JSON.stringify(manifest, null, 2) + '\n');
    await fsyncFile(join(tmp, MANIFEST_FILE));
    await fsyncDir(tmp);
    let final = join(opts.to, name);
    // Two backups in the same millisecond (a scheduled one and a manual one) must not collide.
    if (existsSync(final)) final = `${final}-${randomBytes(2).toString('hex')}`;
    await rename(tmp, final);
    await fsyncDir(opts.to);
    const pruned = opts.keep ? await pruneBackups(opts.to, opts.keep) : [];
    return { path: final, manifest, pruned, phases: { copy_ms: copyMs, count_ms: countMs, compress_ms: compressMs } };
  } catch (err) {
    await rm(tmp, { recursive: true, force: true });
    throw err;
  }
}

function tap(fn: (chunk: Buffer) => void): Transform {
  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      fn(chunk);
      cb(null, chunk);
    },
  });
}

export interface CopyFacts {
  schema: Manifest['schema'];
  tables: Record<string, number>;
  newestStatus: Manifest['newest_status'];
  pageSize: number;
  pageCount: number;
}

/**
 * Reads what a database file holds: applied migrations, rows per table, newest
 * status. On a fresh backup copy it also takes the copy out of WAL mode, so the
 * one file is the whole database.
 */
export function describeCopy(file: string, opts: { readonly?: boolean } = {}): CopyFacts {
  const db = new SQLite(file, { fileMustExist: true, readonly: opts.readonly ?? false });
  try {
    db.defaultSafeIntegers(true);
    if (!opts.readonly) db.pragma('journal_mode = DELETE');
    const names = (db.prepare(`SELECT name, sql FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name`).all() as { name: string; sql: string | null }[])
      // A virtual table's rows live in its shadow tables, which are counted themselves.
      .filter((t) => !/^\s*CREATE\s+VIRTUAL\s+TABLE/i.test(t.sql ?? ''))
      .map((t) => t.name);
    const tables: Record<string, number> = {};
    for (const t of names) tables[t] = Number(db.prepare(`SELECT count(*) AS n FROM "${t.replace(/"/g, '""')}"`).pluck().get() as bigint);
    const migrations = names.includes('kysely_migration')
      ? (db.prepare('SELECT name FROM kysely_migration ORDER BY name').pluck().all() as string[])
      : [];
    const newest = names.includes('statuses')
      ? (db.prepare('SELECT id, created_at FROM statuses ORDER BY id DESC LIMIT 1').get() as { id: bigint; created_at: string } | undefined)
      : undefined;
    return {
      schema: { latest: migrations.at(-1) ?? null, migrations },
      tables,
      newestStatus: newest ? { id: newest.id.toString(), created_at: newest.created_at } : null,
      pageSize: Number(db.pragma('page_size', { simple: true }) as bigint),
      pageCount: Number(db.pragma('page_count', { simple: true }) as bigint),
    };
  } finally {
    db.close();
  }
}

export interface ListedBackup {
  path: string;
  manifest: Manifest;
}

/** Complete backups in a folder (those with a readable manifest), newest first. */
export async function listBackups(dir: string): Promise<ListedBackup[]> {
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
  const out: ListedBackup[] = [];
  for (const e of entries) {
    if (!e.isDirectory() || !e.name.startsWith(BACKUP_PREFIX)) continue;
    const path = join(dir, e.name);
    try {
      out.push({ path, manifest: await readManifest(join(path, MANIFEST_FILE)) });
    } catch {
      /* incomplete or damaged: not a candidate (verify-backup names the problem when asked) */
    }
  }
  return out.sort((a, b) => b.manifest.created_at.localeCompare(a.manifest.created_at) || b.path.localeCompare(a.path));
}

/** Keeps the newest `keep` backups; also removes temporary folders left by a backup that crashed more than an hour ago. */
export async function pruneBackups(dir: string, keep: number): Promise<string[]> {
  const removed: string[] = [];
  for (const old of (await listBackups(dir)).slice(keep)) {
    await rm(old.path, { recursive: true, force: true });
    removed.push(old.path);
  }
  for (const e of await readdir(dir, { withFileTypes: true })) {
    if (!e.isDirectory() || !e.name.startsWith('.tmp-')) continue;
    const st = await stat(join(dir, e.name)).catch(() => null);
    if (st && Date.now() - st.mtimeMs > 3_600_000) await rm(join(dir, e.name), { recursive: true, force: true });
  }
  return removed;
}
