/** File helpers for backups: streaming SHA-256, fsync of files and folders, and a one-line error for operators. */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The `starling` entry point (run as a child for scheduled backups and drills), from src/dr or dist/dr alike. */
export const STARLING_BIN = resolve(dirname(fileURLToPath(import.meta.url)), '../../bin/starling.js');

export async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

export async function fsyncFile(path: string): Promise<void> {
  const fh = await open(path, 'r+');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** A rename is durable only once the folder holding the new name is synced. */
export async function fsyncDir(path: string): Promise<void> {
  const fh = await open(path, 'r');
  try {
    await fh.sync();
  } catch {
    /* some filesystems refuse fsync on a folder; the rename is then as durable as they make it */
  } finally {
    await fh.close();
  }
}

/** `2026-11-24T22:30:05.123Z` → `20261124T223005123Z`: sortable, safe in file names on every OS. */
export function stamp(d: Date): string {
  return d.toISOString().replace(/[-:.]/g, '');
}

/** Errors the operator can act on: the message is the one line the CLI prints. */
export class BackupError extends Error {
  override name = 'BackupError';
}
