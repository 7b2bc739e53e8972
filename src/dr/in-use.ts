/**
 * Is a Starling using this data folder? Two independent answers, because a
 * restore that swaps the database under a running server would lose writes:
 *
 * 1. `starling.pid`, written by every server at start and removed at stop,
 *    names the process; it counts only while that process is alive (a crash
 *    leaves a stale file behind, which must not block a restore forever).
 * 2. SQLite itself: an exclusive lock cannot be had while any other connection
 *    (a server, a backup, a drill) has the database open, even an idle one in
 *    WAL mode. This catches a server whose pid file was deleted, or one on
 *    another mount of the same folder.
 */
import SQLite from 'better-sqlite3';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { BackupError } from './files.js';

export const PID_FILE = 'starling.pid';

interface PidInfo {
  pid: number;
  hostname: string;
  started_at: string;
}

/** Records this process as the data folder's server; the returned function removes the record if it is still ours. */
export function writePidFile(dataDir: string, now = new Date()): () => void {
  const file = join(dataDir, PID_FILE);
  const info: PidInfo = { pid: process.pid, hostname: hostname(), started_at: now.toISOString() };
  const text = JSON.stringify(info) + '\n';
  writeFileSync(file, text);
  return () => {
    try {
      if (readFileSync(file, 'utf8') === text) rmSync(file, { force: true });
    } catch {
      /* already gone */
    }
  };
}

function readPid(dataDir: string): PidInfo | null {
  try {
    const v = JSON.parse(readFileSync(join(dataDir, PID_FILE), 'utf8')) as Partial<PidInfo>;
    return typeof v.pid === 'number' ? { pid: v.pid, hostname: String(v.hostname ?? ''), started_at: String(v.started_at ?? '') } : null;
  } catch {
    return null;
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    // EPERM: it exists but belongs to someone else.
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  // A reused pid (a container restarted, the pid now someone else's) is not our server: on Linux, ask what it runs.
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('starling');
  } catch {
    return true;
  }
}

/** Throws a one-line reason if a server (or anything else) has this data folder's database open. */
export function assertNotInUse(dataDir: string, databaseFile: string): void {
  const info = readPid(dataDir);
  if (info && info.pid !== process.pid && info.hostname === hostname() && alive(info.pid)) {
    throw new BackupError(`a Starling server (pid ${info.pid}, started ${info.started_at}) is running on ${dataDir}: stop it first (kill -TERM ${info.pid})`);
  }
  if (!existsSync(databaseFile)) return;
  let db: SQLite.Database | null = null;
  try {
    db = new SQLite(databaseFile, { fileMustExist: true, timeout: 0 });
    db.pragma('locking_mode = EXCLUSIVE');
    db.exec('BEGIN EXCLUSIVE');
    db.exec('ROLLBACK');
  } catch (err) {
    if ((err as { code?: string }).code === 'SQLITE_BUSY') {
      throw new BackupError(`${databaseFile} is open in another process (a running server, backup or drill): stop it first`);
    }
    throw new BackupError(`cannot open ${databaseFile} to check it is not in use: ${(err as Error).message}`);
  } finally {
    db?.close();
  }
}
