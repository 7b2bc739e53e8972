/**
 * Scheduled backups inside `starling serve`. Each one runs as a child process
 * (`starling backup`), so compressing, hashing and counting a large database
 * cost the server's event loop nothing and run on another core, at a lower
 * CPU priority. The copy itself does not block the server's writes either
 * (see backup.ts). A backup is skipped, with a warning, when the disk could
 * not hold it without running low, because a full disk would put the node in
 * read-only mode: a backup must never cause the outage it insures against.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { setPriority } from 'node:os';
import { statfs, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { Logger } from 'pino';
import type { Config } from '../config.js';
import { STARLING_BIN } from './files.js';

export function backupDirOf(config: Pick<Config, 'dataDir' | 'backup'>): string {
  return config.backup.dir ? resolve(config.backup.dir) : join(config.dataDir, 'backups');
}

export interface LastBackup {
  at: string;
  ok: boolean;
  path?: string;
  bytes?: number;
  error?: string;
}

export interface BackupSchedule {
  last(): LastBackup | null;
  /** Runs one backup now (also what the timer calls); resolves when it ended. */
  runOnce(): Promise<LastBackup | null>;
  stop(): Promise<void>;
}

export function startBackupSchedule(config: Config, log: Logger): BackupSchedule {
  let last: LastBackup | null = null;
  let running: { proc: ChildProcess; done: Promise<LastBackup | null> } | null = null;
  let stopped = false;
  const dir = backupDirOf(config);

  const runOnce = async (): Promise<LastBackup | null> => {
    if (stopped) return null;
    if (running) return running.done;
    const size = (await stat(config.databaseFile).catch(() => null))?.size ?? 0;
    const fs = await statfs(config.dataDir).catch(() => null);
    // The raw copy plus its compressed form, at worst about twice the database, must fit above the read-only threshold.
    if (fs && fs.bavail * fs.bsize < 2 * size + config.readOnly.minFreeBytes) {
      last = { at: new Date().toISOString(), ok: false, error: `skipped: ${fs.bavail * fs.bsize} bytes free, a backup needs about ${2 * size}` };
      log.warn({ backup: last }, 'scheduled backup skipped: not enough free disk space');
      return last;
    }
    const args = [STARLING_BIN, 'backup', '--data-dir', config.dataDir, '--to', dir, '--keep', String(config.backup.keep), '--json'];
    if (config.backup.offsiteDir) args.push('--offsite-dir', config.backup.offsiteDir);
    const proc = spawn(process.execPath, args, { env: { ...process.env, STARLING_LOG_LEVEL: 'warn' }, stdio: ['ignore', 'pipe', 'pipe'] });
    try {
      if (proc.pid) setPriority(proc.pid, 10);
    } catch {
      /* not permitted: it runs at normal priority */
    }
    let out = '';
    let err = '';
    proc.stdout!.on('data', (d) => (out += d));
    proc.stderr!.on('data', (d) => (err += d));
    const done = new Promise<LastBackup | null>((res) => {
      proc.once('close', (code) => {
        running = null;
        if (code === 0) {
          try {
            const r = JSON.parse(out) as { path: string; manifest: { file: { bytes: number } } };
            last = { at: new Date().toISOString(), ok: true, path: r.path, bytes: r.manifest.file.bytes };
            log.info({ backup: last }, 'scheduled backup done');
          } catch {
            last = { at: new Date().toISOString(), ok: false, error: 'backup printed no result' };
            log.error({ backup: last }, 'scheduled backup failed');
          }
        } else {
          last = { at: new Date().toISOString(), ok: false, error: (err.trim().split('\n').at(-1) ?? '') || `exit ${code}` };
          log.error({ backup: last }, 'scheduled backup failed');
        }
        res(last);
      });
      proc.once('error', (e) => {
        running = null;
        last = { at: new Date().toISOString(), ok: false, error: e.message };
        log.error({ backup: last }, 'scheduled backup failed to start');
        res(last);
      });
    });
    running = { proc, done };
    return done;
  };

  // On PostgreSQL the database is not a file here to copy: PostgreSQL's own tools back it up.
  const timer = config.backup.intervalMinutes > 0 && !config.databaseUrl ? setInterval(() => void runOnce(), config.backup.intervalMinutes * 60_000) : null;
  timer?.unref();
  return {
    last: () => last,
    runOnce,
    async stop() {
      stopped = true;
      if (timer) clearInterval(timer);
      const r = running as { proc: ChildProcess; done: Promise<LastBackup | null> } | null;
      if (r) {
        // A backup cut short leaves only a temporary folder, removed by the next one's retention pass.
        if (r.proc.exitCode === null && r.proc.signalCode === null && r.proc.pid) process.kill(r.proc.pid, 'SIGTERM');
        await r.done;
      }
    },
  };
}
