/**
 * `starling pg base-backup` and `starling pg restore`: point-in-time recovery
 * of a PostgreSQL-backed Starling with PostgreSQL's own tools (logic in
 * src/dr/pitr.ts). One line per result, or JSON with --json; a failure is a
 * one-line reason and a non-zero exit (with --json also `{"ok":false,"error":...}`).
 */
import { parseArgs } from 'node:util';
import { baseBackup, pitrRestore } from '../dr/pitr.js';
import { pruneBaseBackups, type PruneResult } from '../dr/pg-retention.js';
import { reported, secs } from './report.js';

export const PG_USAGE = `  pg base-backup        Base backup of a PostgreSQL server (pg_basebackup, WAL streamed in) into DIR/pgbase-<UTC time>/
      --database-url URL --to DIR [--keep N [--wal DIR]] [--json]   (default URL: STARLING_DATABASE_URL); with WAL archiving on, the start of a point-in-time recovery
                        --keep N: then keep the newest N base backups in DIR; --wal: and remove archived WAL older than the oldest kept
                        (pg_archivecleanup). For cron or a systemd timer (docs/OPERATIONS.md)
  pg prune              The same retention alone: --base-dir DIR --keep N [--wal DIR] [--json]
  pg restore            Point-in-time recovery into a NEW cluster: base backup + archived WAL replayed up to a time,
      --to-time ISO --base DIR --wal DIR --into NEWDIR [--port P] [--timeout-seconds S] [--json]
                        then a promoted PostgreSQL left running on 127.0.0.1 (prints its URL and PID). Never touches the old cluster.
`;



function keepOf(v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--keep must be a whole number of at least 1, got ${v}`);
  return n;
}

function printPrune(p: PruneResult): void {
  console.log(`kept ${p.kept.length} base backups in ${p.dir}${p.removed.length ? `, removed ${p.removed.length}: ${p.removed.join(' ')}` : ', removed none'}`);
  if (p.wal) console.log(`WAL archive ${p.wal.dir}: removed ${p.wal.removed.length} segments older than ${p.wal.oldest_needed} (the oldest kept backup's first), ${p.wal.left} left`);
}

export async function pgCommand(args: string[]): Promise<number> {
  const sub = args[0];
  if (sub === 'base-backup') {
    const { values } = parseArgs({
      args: args.slice(1),
      options: { 'database-url': { type: 'string' }, to: { type: 'string' }, keep: { type: 'string' }, wal: { type: 'string' }, json: { type: 'boolean' } },
      strict: true,
    });
    return reported(values.json, async () => {
      const databaseUrl = values['database-url'] ?? process.env.STARLING_DATABASE_URL;
      if (!databaseUrl) throw new Error('--database-url URL is required (or set STARLING_DATABASE_URL)');
      if (!values.to) throw new Error('--to DIR is required');
      const keep = keepOf(values.keep);
      if (values.wal && keep === undefined) throw new Error('--wal needs --keep N: WAL is removed only up to the oldest base backup kept');
      const r = await baseBackup({ databaseUrl, to: values.to });
      // Retention only after a backup succeeded: a failing backup never removes the ones before it.
      const pruned = keep === undefined ? null : await pruneBaseBackups({ dir: values.to, keep, wal: values.wal });
      if (values.json) console.log(JSON.stringify({ ok: true, ...r, pruned }));
      else {
        const m = r.manifest;
        console.log(
          `base backup written to ${r.path}: ${(m.bytes / 1048576).toFixed(1)} MB, PostgreSQL ${m.server_version}, LSN ${m.start_lsn}..${m.end_lsn ?? '?'}, ` +
            `server time ${m.start_time}..${m.end_time} (${secs(m.duration_ms)})${m.verified ? ', pg_verifybackup ok' : ''}`,
        );
        console.log(`restorable to any time after ${m.end_time} that the WAL archive covers`);
        for (const w of r.warnings) console.error(`warning: ${w}`);
        if (pruned) printPrune(pruned);
      }
      return 0;
    });
  }
  if (sub === 'prune') {
    const { values } = parseArgs({ args: args.slice(1), options: { 'base-dir': { type: 'string' }, keep: { type: 'string' }, wal: { type: 'string' }, json: { type: 'boolean' } }, strict: true });
    return reported(values.json, async () => {
      if (!values['base-dir']) throw new Error('--base-dir DIR is required; usage: starling pg prune --base-dir DIR --keep N [--wal DIR]');
      const keep = keepOf(values.keep);
      if (keep === undefined) throw new Error('--keep N is required');
      const p = await pruneBaseBackups({ dir: values['base-dir'], keep, wal: values.wal });
      if (values.json) console.log(JSON.stringify({ ok: true, ...p }));
      else printPrune(p);
      return 0;
    });
  }
  if (sub === 'restore') {
    const { values } = parseArgs({
      args: args.slice(1),
      options: {
        'to-time': { type: 'string' },
        base: { type: 'string' },
        wal: { type: 'string' },
        into: { type: 'string' },
        port: { type: 'string' },
        'timeout-seconds': { type: 'string' },
        json: { type: 'boolean' },
      },
      strict: true,
    });
    return reported(values.json, async () => {
      for (const k of ['to-time', 'base', 'wal', 'into'] as const) if (!values[k]) throw new Error(`--${k} is required; usage: starling pg restore --to-time ISO --base DIR --wal DIR --into NEWDIR [--port P]`);
      // A time without a zone would be read in this machine's zone, and the server compares in UTC: ask for one.
      if (!/(Z|[+-]\d\d:?\d\d)$/i.test(values['to-time']!)) throw new Error(`--to-time needs a time zone (…Z or …+01:00), got ${values['to-time']}`);
      const port = values.port === undefined ? undefined : Number(values.port);
      if (port !== undefined && !(Number.isInteger(port) && port > 0 && port < 65536)) throw new Error(`--port must be a port number, got ${values.port}`);
      const timeout = values['timeout-seconds'] === undefined ? undefined : Number(values['timeout-seconds']);
      if (timeout !== undefined && !(timeout > 0)) throw new Error(`--timeout-seconds must be a positive number, got ${values['timeout-seconds']}`);
      const r = await pitrRestore({ toTime: new Date(values['to-time']!), base: values.base!, wal: values.wal!, into: values.into!, port, timeoutSeconds: timeout });
      if (values.json) console.log(JSON.stringify({ ok: true, ...r }));
      else {
        console.log(
          `restored ${r.base} + ${r.wal_segments_restored} archived WAL segments from ${r.wal} up to ${r.target_time} into ${r.data_dir} ` +
            `(copy ${secs(r.phases.copy_ms)}, recovery ${secs(r.phases.recovery_ms)}); recovery ended and the server was promoted`,
        );
        console.log(`running: PID ${r.pid}, ${r.url} (log ${r.log_file})`);
        console.log(`serve it: STARLING_DATABASE_URL=${r.url} starling serve; stop it: kill -INT ${r.pid}`);
      }
      return 0;
    });
  }
  throw new Error('usage: starling pg base-backup|prune|restore … (starling help)');
}
