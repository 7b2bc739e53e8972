/**
 * A backup is a folder `starling-<time>/` with two files: `starling.sqlite.gz`
 * (the database, gzip-compressed) and `manifest.json` (what it holds and how to
 * check it). The manifest is written last, so a folder with a manifest is complete.
 */
import { readFile, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { z } from 'zod';
import { BackupError } from './files.js';

export const MANIFEST_FILE = 'manifest.json';
export const DATA_FILE = 'starling.sqlite.gz';
export const BACKUP_PREFIX = 'starling-';

export const ManifestSchema = z.object({
  format: z.literal('starling-backup'),
  version: z.literal(1),
  /** When the copy's snapshot was taken (the database state it holds is that of this moment). */
  created_at: z.string(),
  started_at: z.string(),
  finished_at: z.string(),
  source: z.object({ database_file: z.string(), hostname: z.string(), starling_version: z.string() }),
  /** Applied migrations, in order; `latest` is the schema version. */
  schema: z.object({ latest: z.string().nullable(), migrations: z.array(z.string()) }),
  /** Rows per table at the snapshot. */
  tables: z.record(z.string(), z.number().int().min(0)),
  /** The newest status in the copy: what a restore would bring back at most (RPO). */
  newest_status: z.object({ id: z.string(), created_at: z.string() }).nullable(),
  file: z.object({ name: z.string(), compression: z.literal('gzip'), bytes: z.number().int(), sha256: z.string().regex(/^[0-9a-f]{64}$/) }),
  raw: z.object({ bytes: z.number().int(), sha256: z.string().regex(/^[0-9a-f]{64}$/), page_size: z.number().int(), page_count: z.number().int() }),
});

export type Manifest = z.infer<typeof ManifestSchema>;

export interface BackupLocation {
  /** The backup's folder. */
  dir: string;
  manifestFile: string;
  dataFile: string;
}

/** PATH may name the backup folder, its manifest or its data file. */
export async function locateBackup(path: string): Promise<BackupLocation> {
  const st = await stat(path).catch(() => null);
  if (!st) throw new BackupError(`no backup at ${path}: it does not exist`);
  const dir = st.isDirectory() ? path : dirname(path);
  if (!st.isDirectory() && ![MANIFEST_FILE, DATA_FILE].includes(basename(path))) {
    throw new BackupError(`${path} is not a backup: give the backup folder (it holds ${MANIFEST_FILE} and ${DATA_FILE})`);
  }
  return { dir, manifestFile: join(dir, MANIFEST_FILE), dataFile: join(dir, DATA_FILE) };
}

export async function readManifest(file: string): Promise<Manifest> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    throw new BackupError(`backup is incomplete: ${file} is missing or unreadable`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new BackupError(`backup manifest ${file} is damaged: not valid JSON`);
  }
  const parsed = ManifestSchema.safeParse(json);
  if (!parsed.success) {
    const i = parsed.error.issues[0]!;
    throw new BackupError(`backup manifest ${file} is damaged: ${i.path.join('.') || '(root)'}: ${i.message}`);
  }
  return parsed.data;
}
