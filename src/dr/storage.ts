/**
 * Off-site copies. A backup is worth little on the disk that fails with the
 * database, so each one can be copied to a second place through this small
 * interface. `FolderStorage` stands for another site or a mounted bucket; an
 * S3-compatible target implements the same five calls (PutObject, GetObject,
 * ListObjectsV2, DeleteObject, and HeadObject with ChecksumMode=ENABLED for
 * the SHA-256 the copy is checked against).
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, readdir, rename, rm, rmdir, stat } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import { randomBytes } from 'node:crypto';
import { dirname, join, relative, sep } from 'node:path';
import { BackupError, fsyncDir, fsyncFile, sha256File } from './files.js';
import { DATA_FILE, MANIFEST_FILE, type Manifest } from './manifest.js';

export interface BackupStorage {
  /** For messages: where the copies go. */
  readonly description: string;
  put(key: string, localFile: string): Promise<void>;
  get(key: string, localFile: string): Promise<void>;
  /** Keys under a prefix, sorted. */
  list(prefix?: string): Promise<string[]>;
  delete(key: string): Promise<void>;
  /** SHA-256 (hex) of the stored object as the storage holds it, or null if there is no such key. */
  sha256(key: string): Promise<string | null>;
}

function checkKey(key: string): void {
  if (!key || key.startsWith('/') || key.split('/').some((p) => p === '' || p === '.' || p === '..')) throw new Error(`invalid storage key: ${key}`);
}

export class FolderStorage implements BackupStorage {
  readonly description: string;
  constructor(private readonly root: string) {
    this.description = `folder ${root}`;
  }

  private path(key: string): string {
    checkKey(key);
    return join(this.root, ...key.split('/'));
  }

  async put(key: string, localFile: string): Promise<void> {
    const dest = this.path(key);
    await mkdir(dirname(dest), { recursive: true });
    const tmp = `${dest}.${process.pid}.${randomBytes(3).toString('hex')}.tmp`;
    try {
      await pipeline(createReadStream(localFile), createWriteStream(tmp));
      await fsyncFile(tmp);
      await rename(tmp, dest);
    } catch (err) {
      await rm(tmp, { force: true });
      throw err;
    }
    await fsyncDir(dirname(dest));
  }

  async get(key: string, localFile: string): Promise<void> {
    await pipeline(createReadStream(this.path(key)), createWriteStream(localFile));
  }

  async list(prefix = ''): Promise<string[]> {
    const out: string[] = [];
    const walk = async (dir: string): Promise<void> => {
      for (const e of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
        const p = join(dir, e.name);
        if (e.isDirectory()) await walk(p);
        else if (!e.name.endsWith('.tmp')) out.push(relative(this.root, p).split(sep).join('/'));
      }
    };
    await walk(this.root);
    return out.filter((k) => k.startsWith(prefix)).sort();
  }

  async delete(key: string): Promise<void> {
    const p = this.path(key);
    await rm(p, { force: true });
    // Drop the backup's folder once it is empty, as a bucket has no folders to leave behind.
    if (dirname(p) !== this.root) await rmdir(dirname(p)).catch(() => {});
  }

  async sha256(key: string): Promise<string | null> {
    const p = this.path(key);
    if (!(await stat(p).catch(() => null))) return null;
    return sha256File(p);
  }
}

export interface OffsiteResult {
  target: string;
  keys: string[];
  verified: boolean;
  pruned: string[];
}

/**
 * Copies one backup folder (data first, manifest last: a copy with a manifest
 * is complete), reads the stored copy's checksum back, and applies retention.
 */
export async function copyOffsite(storage: BackupStorage, backupDir: string, manifest: Manifest, keep = 0): Promise<OffsiteResult> {
  const name = backupDir.split(sep).filter(Boolean).at(-1)!;
  const dataKey = `${name}/${DATA_FILE}`;
  const manifestKey = `${name}/${MANIFEST_FILE}`;
  await storage.put(dataKey, join(backupDir, DATA_FILE));
  const stored = await storage.sha256(dataKey);
  if (stored !== manifest.file.sha256) {
    throw new BackupError(`off-site copy to ${storage.description} is corrupted: SHA-256 of ${dataKey} is ${stored ?? 'missing'}, expected ${manifest.file.sha256}`);
  }
  await storage.put(manifestKey, join(backupDir, MANIFEST_FILE));
  const localManifest = await sha256File(join(backupDir, MANIFEST_FILE));
  if ((await storage.sha256(manifestKey)) !== localManifest) throw new BackupError(`off-site copy to ${storage.description} is corrupted: ${manifestKey} differs from the local manifest`);
  const pruned: string[] = [];
  if (keep > 0) {
    // Backup names sort by time; only complete copies (with a manifest) count towards `keep`.
    const names = [...new Set((await storage.list()).filter((k) => k.endsWith(`/${MANIFEST_FILE}`)).map((k) => k.split('/')[0]!))].sort().reverse();
    for (const old of names.slice(keep)) {
      for (const k of await storage.list(`${old}/`)) await storage.delete(k);
      pruned.push(old);
    }
  }
  return { target: storage.description, keys: [dataKey, manifestKey], verified: true, pruned };
}
