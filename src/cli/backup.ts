/**
 * `starling backup`, `verify-backup`, `restore` and `drill`: the embedded
 * database's disaster-recovery commands (logic in src/dr). Each prints one
 * line per result, or the result as JSON with --json; a failure is a one-line
 * reason and a non-zero exit (with --json also `{"ok":false,"error":...}` on stdout).
 */
import { parseArgs } from 'node:util';
import { resolve } from 'node:path';
import { loadConfig, type Config } from '../config.js';
import { openContext, createLogger } from '../server.js';
import { registerAccount } from '../services/accounts.js';
import { takeBackup } from '../dr/backup.js';
import { verifyBackup } from '../dr/verify.js';
import { restoreBackup } from '../dr/restore.js';
import { FolderStorage, copyOffsite } from '../dr/storage.js';
import { backupDirOf } from '../dr/schedule.js';
import { drillRestore, readDrillLog, type DrillEntry } from '../dr/drill.js';
import { drillFailover, type FailoverDrillEntry } from '../dr/failover-drill.js';
import { reported, secs } from './report.js';

export const BACKUP_USAGE = `  backup                Take an online, consistent, compressed copy of the database (safe while serving)
      [--to DIR] [--keep N] [--offsite-dir DIR] [--json]
                        DIR: default backup.dir or <data-dir>/backups; --keep N removes all but the newest N;
                        --offsite-dir (default backup.offsiteDir) copies it there too and checks the copy
  verify-backup PATH    Restore a backup into a temporary folder and check it (SHA-256, integrity_check, row counts) [--quick] [--json]
                        --quick: quick_check instead of integrity_check (much faster on a large database; also for restore and drill)
  restore PATH          Verify a backup, then put it in place of the data folder's database [--quick] [--json]
                        Refuses while a server uses the data folder; the replaced files go to <data-dir>/replaced-<time>/
  drill restore         Rehearse a restore: newest backup into a scratch folder, a real Starling on it, smoke checks
      [--from PATH] [--quick] [--keep-scratch] [--json]   through the API; reports RTO and RPO and appends to <data-dir>/drill-log.jsonl
  drill failover        Rehearse losing the PostgreSQL primary: a throwaway cluster (or --dir's running one), a posting
      [--dir DIR] [--nodes N] [--writers W] [--max-rto-seconds S] [--keep-cluster] [--json]
                        load through HAProxy, the primary's node SIGKILLed; reports RTO (write gap) and RPO (lost
                        acknowledged posts, must be none; duplicates must be none) and appends to the drill log
  drill history         Show the drill log (restore and failover drills) [--json]
`;

const OPTIONS = {
  'data-dir': { type: 'string' },
  config: { type: 'string' },
  json: { type: 'boolean' },
} as const;

function configOf(values: { config?: string; 'data-dir'?: string }): Config {
  const config = loadConfig({ file: values.config, overrides: { dataDir: values['data-dir'] } });
  // These commands copy the embedded SQLite file; a PostgreSQL database is backed up by PostgreSQL's own tools.
  if (config.databaseUrl) throw new Error('this node stores on PostgreSQL (databaseUrl is set): starling backup copies the embedded SQLite database only; back PostgreSQL up with its own tools (pg_basebackup, WAL archiving)');
  return config;
}


const mb = (n: number) => `${(n / 1048576).toFixed(1)} MB`;

export async function backupCommand(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: { ...OPTIONS, to: { type: 'string' }, keep: { type: 'string' }, 'offsite-dir': { type: 'string' } },
    strict: true,
    allowPositionals: false,
  });
  return reported(values.json, async () => {
    const config = configOf(values);
    const keep = values.keep === undefined ? 0 : Number(values.keep);
    if (!Number.isInteger(keep) || keep < 0) throw new Error(`--keep must be a whole number, got ${values.keep}`);
    const to = values.to ? resolve(values.to) : backupDirOf(config);
    const result = await takeBackup({ databaseFile: config.databaseFile, to, keep });
    const offsiteDir = values['offsite-dir'] ?? config.backup.offsiteDir;
    const offsite = offsiteDir ? await copyOffsite(new FolderStorage(resolve(offsiteDir)), result.path, result.manifest, keep) : null;
    if (values.json) console.log(JSON.stringify({ ok: true, ...result, offsite }));
    else {
      const m = result.manifest;
      console.log(
        `backup written to ${result.path}: ${mb(m.file.bytes)} compressed (${mb(m.raw.bytes)} raw), ${m.tables.statuses ?? 0} statuses, schema ${m.schema.latest}, sha256 ${m.file.sha256}` +
          ` (copy ${secs(result.phases.copy_ms)}, counts ${secs(result.phases.count_ms)}, compress ${secs(result.phases.compress_ms)})`,
      );
      if (offsite) console.log(`copied to ${offsite.target} and checked${offsite.pruned.length ? `; removed ${offsite.pruned.length} old copies there` : ''}`);
      if (result.pruned.length) console.log(`removed ${result.pruned.length} old backups (keeping ${keep})`);
    }
    return 0;
  });
}

export async function verifyBackupCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args, options: { ...OPTIONS, quick: { type: 'boolean' } }, strict: true, allowPositionals: true });
  return reported(values.json, async () => {
    if (positionals.length !== 1) throw new Error('usage: starling verify-backup PATH [--json]');
    const r = await verifyBackup(resolve(positionals[0]!), { quick: values.quick });
    if (values.json) console.log(JSON.stringify({ ok: true, path: r.path, checks: r.checks, phases: r.phases, manifest: r.manifest }));
    else
      console.log(
        `backup ${r.path} is good (taken ${r.manifest.created_at}): ${r.checks.join(', ')} (hash ${secs(r.phases.hash_ms)}, decompress ${secs(r.phases.decompress_ms)}, checks ${secs(r.phases.check_ms)})`,
      );
    return 0;
  });
}

export async function restoreCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args, options: { ...OPTIONS, quick: { type: 'boolean' } }, strict: true, allowPositionals: true });
  return reported(values.json, async () => {
    if (positionals.length !== 1) throw new Error('usage: starling restore PATH [--data-dir DIR] [--json]');
    const config = configOf(values);
    const r = await restoreBackup(resolve(positionals[0]!), { dataDir: config.dataDir, databaseFile: config.databaseFile, quick: values.quick });
    if (values.json) console.log(JSON.stringify({ ok: true, ...r }));
    else {
      console.log(`restored ${r.restored_from} (taken ${r.manifest.created_at}, ${r.manifest.tables.statuses ?? 0} statuses) to ${r.database_file}`);
      console.log(r.moved_aside_to ? `the database it replaced is in ${r.moved_aside_to}` : 'there was no database to replace');
      console.log('start the server to serve it: starling serve');
    }
    return 0;
  });
}

export async function drillCommand(args: string[]): Promise<number> {
  const sub = args[0];
  if (sub === 'history') {
    const { values } = parseArgs({ args: args.slice(1), options: OPTIONS, strict: true });
    // The log is a file in the data folder on either database: no refusal for PostgreSQL here.
    const config = loadConfig({ file: values.config, overrides: { dataDir: values['data-dir'] } });
    const log = await readDrillLog(config.dataDir);
    if (values.json) console.log(JSON.stringify(log));
    else if (!log.length) console.log(`no drills yet in ${config.dataDir} (run: starling drill restore, or starling drill failover)`);
    else
      for (const d of log) {
        const failover = d.kind === 'failover' ? (d as FailoverDrillEntry).failover : null;
        const extra = failover
          ? `  (${failover.posts_missing} lost, ${failover.posts_duplicated} duplicated of ${failover.posts_acknowledged} acknowledged; killed ${failover.killed?.name ?? '-'})`
          : (d as DrillEntry).quick
            ? '  (quick_check)'
            : '';
        console.log(
          `${d.started_at}  ${d.kind}  ${d.ok ? 'ok    ' : 'FAILED'}  RTO ${d.rto_seconds === null ? '-' : `${d.rto_seconds.toFixed(1)} s`}  RPO ${d.rpo_seconds === null ? '-' : `${d.rpo_seconds.toFixed(0)} s`}${extra}${d.error ? `  ${d.error}` : ''}`,
        );
      }
    return 0;
  }
  if (sub === 'failover') return drillFailoverCommand(args.slice(1));
  if (sub !== 'restore') throw new Error('usage: starling drill restore|failover|history [--data-dir DIR] [--json]');
  const { values } = parseArgs({ args: args.slice(1), options: { ...OPTIONS, from: { type: 'string' }, quick: { type: 'boolean' }, 'keep-scratch': { type: 'boolean' } }, strict: true });
  return reported(values.json, async () => {
    const config = configOf(values);
    const entry = await drillRestore({
      dataDir: config.dataDir,
      backupDir: backupDirOf(config),
      from: values.from ? resolve(values.from) : undefined,
      keep: values['keep-scratch'],
      quick: values.quick,
      log: values.json ? undefined : (line) => console.error(line),
      prepare: (dataDir, account) => prepareDrillCopy(dataDir, account),
    });
    if (values.json) console.log(JSON.stringify(entry));
    else if (entry.ok) {
      console.log(
        `drill passed: RTO ${entry.rto_seconds!.toFixed(1)} s (restore to a working service), RPO ${entry.rpo_seconds === null ? 'n/a (no posts)' : `${entry.rpo_seconds.toFixed(0)} s (newest post in the backup)`}; checks: ${entry.checks.join(', ')}` +
          (entry.smoke_retries ? `; ${entry.smoke_retries} requests retried after a 503` : ''),
      );
    }
    if (!entry.ok) {
      // With --json the entry (ok: false, error) is the result; the reason also goes to stderr as one line.
      if (values.json) console.error(`drill failed: ${entry.error}`);
      else throw new Error(`drill failed: ${entry.error}`);
      return 1;
    }
    return 0;
  });
}

async function drillFailoverCommand(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: { ...OPTIONS, dir: { type: 'string' }, nodes: { type: 'string' }, writers: { type: 'string' }, 'max-rto-seconds': { type: 'string' }, 'keep-cluster': { type: 'boolean' } },
    strict: true,
  });
  return reported(values.json, async () => {
    const config = loadConfig({ file: values.config, overrides: { dataDir: values['data-dir'] } });
    const whole = (name: string, v: string | undefined, min: number, max: number) => {
      if (v === undefined) return undefined;
      const n = Number(v);
      if (!Number.isInteger(n) || n < min || n > max) throw new Error(`--${name} must be a whole number from ${min} to ${max}, got ${v}`);
      return n;
    };
    const maxRto = values['max-rto-seconds'] === undefined ? undefined : Number(values['max-rto-seconds']);
    if (maxRto !== undefined && !(maxRto > 0)) throw new Error(`--max-rto-seconds must be a positive number, got ${values['max-rto-seconds']}`);
    const entry = await drillFailover({
      dataDir: config.dataDir,
      dir: values.dir,
      nodes: whole('nodes', values.nodes, 1, 16),
      writers: whole('writers', values.writers, 1, 32),
      maxRtoSeconds: maxRto,
      keepCluster: values['keep-cluster'],
      // Progress goes to stderr, so that with --json stdout is the result alone.
      log: (line) => console.error(line),
    });
    const f = entry.failover;
    if (values.json) console.log(JSON.stringify(entry));
    else if (entry.ok)
      console.log(
        `failover drill passed: RTO ${entry.rto_seconds!.toFixed(1)} s (from the SIGKILL of ${f.killed?.name} to the next acknowledged write; new primary ${f.new_primary ?? '?'}), ` +
          `RPO ${entry.rpo_seconds} s: ${f.posts_acknowledged} acknowledged posts, ${f.posts_missing} lost, ${f.posts_duplicated} duplicated; ${f.failed_attempts_after_kill} failed attempts retried after the kill`,
      );
    if (!entry.ok) {
      if (values.json) console.error(`failover drill failed: ${entry.error}`);
      else throw new Error(`failover drill failed: ${entry.error}`);
      return 1;
    }
    return 0;
  });
}

/** The drill account, made through the sign-up service in the restored copy, and the newest public post it must be able to read. */
async function prepareDrillCopy(dataDir: string, account: { username: string; email: string; password: string }): Promise<string | null> {
  const config = loadConfig({ env: {}, file: undefined, overrides: { dataDir, logLevel: 'warn', runJobs: false, ops: { enabled: false }, backup: { intervalMinutes: 0 } } });
  const { ctx, database, worker } = await openContext(config, createLogger(config));
  try {
    await registerAccount(ctx, { ...account, allowReserved: true });
    const row = await ctx.db
      .selectFrom('statuses')
      .select('id')
      .where('visibility', '=', 'public')
      .where('deleted_at', 'is', null)
      .orderBy('id', 'desc')
      .limit(1)
      .executeTakeFirst();
    return row?.id ?? null;
  } finally {
    await worker.stop();
    await database.close();
  }
}
