/**
 * Retention of PostgreSQL base backups and the WAL archive, on a real
 * PostgreSQL with archiving on: three `starling pg base-backup` runs with WAL
 * switched and archived between them, the third with `--keep 2 --wal DIR`.
 * Afterwards the oldest backup is gone, the two newest stay, the archived
 * segments before the oldest kept backup's first segment are gone and the
 * rest stay; and the oldest kept backup still restores (`starling pg restore`
 * with the pruned archive) to a time after the last write, with that write in
 * it. Also: bad --keep and --wal without --keep are refused with one line.
 *
 * sqlite project only (vitest.config.ts): it brings its own PostgreSQL.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import postgres from 'postgres';
import { postgresMissing, startTempPostgres, type TempPostgres } from '../helpers/postgres.js';
import type { PruneResult } from '../../src/dr/pg-retention.js';
import { stopPid } from '../../src/cluster/processes.js';
import { runStarling } from '../helpers/cli.js';

const missing = postgresMissing();
// On CI the binaries must be there: fail rather than skip.
const skip = missing !== null && process.env.CI !== 'true';
if (skip) console.warn(`[pg-retention.test] skipped: ${missing}`);

const starling = (...args: string[]) => runStarling(args);

const segments = (dir: string) => readdirSync(dir).filter((n) => /^[0-9A-F]{24}$/.test(n)).sort();

describe.skipIf(skip)('base backup retention and WAL archive cleanup on PostgreSQL', () => {
  let work = '';
  let pg: (TempPostgres & { dir: string }) | undefined;
  let admin: postgres.Sql | undefined;
  let restoredPid: number | undefined;

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'starling-pg-retention-'));
    mkdirSync(join(work, 'wal'));
    if (process.getuid?.() === 0) {
      const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
      const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
      chownSync(work, uid, gid);
      chownSync(join(work, 'wal'), uid, gid);
    }
    const wal = join(work, 'wal');
    pg = await startTempPostgres({
      settings: { wal_level: 'replica', archive_mode: 'on', archive_command: `test ! -f ${wal}/%f && cp %p ${wal}/%f`, full_page_writes: 'on' },
    });
    admin = postgres(pg.url, { max: 1, onnotice: () => {} });
    await admin.unsafe('CREATE TABLE IF NOT EXISTS retention_probe (n int)');
  });

  afterAll(async () => {
    // The restored server `pg restore` left running, by its PID.
    if (restoredPid) await stopPid(restoredPid, 10_000);
    await admin?.end({ timeout: 1 }).catch(() => {});
    await pg?.stop();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  /** Writes a row, ends the WAL segment and waits until the archiver has copied it. */
  async function writeAndArchive(n: number): Promise<void> {
    await admin!`INSERT INTO retention_probe VALUES (${n})`;
    const [{ name }] = await admin!<{ name: string }[]>`SELECT pg_walfile_name(pg_switch_wal()) AS name`;
    const deadline = Date.now() + 60_000;
    for (;;) {
      const [row] = await admin!<{ last: string | null }[]>`SELECT last_archived_wal AS last FROM pg_stat_archiver`;
      if (row!.last && row!.last >= name!) return;
      if (Date.now() > deadline) throw new Error(`WAL ${name} not archived`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  it('refuses a bad --keep, and --wal without --keep, with one line', { timeout: 120_000 }, async () => {
    for (const args of [
      ['pg', 'prune', '--base-dir', join(work, 'base'), '--keep', '0'],
      ['pg', 'base-backup', '--database-url', pg!.url, '--to', join(work, 'base'), '--wal', join(work, 'wal')],
      ['pg', 'prune', '--base-dir', join(work, 'nothing'), '--keep', '1'],
    ]) {
      const r = await starling(...args);
      expect(r.code).not.toBe(0);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
    }
    expect(existsSync(join(work, 'base'))).toBe(false);
  });

  it('keeps the newest N base backups and the WAL the oldest kept one needs; it still restores', { timeout: 240_000 }, async () => {
    const base = join(work, 'base');
    const wal = join(work, 'wal');
    const paths: string[] = [];
    const starts: string[] = [];
    for (let i = 1; i <= 3; i++) {
      await writeAndArchive(i);
      const extra = i === 3 ? ['--keep', '2', '--wal', wal] : [];
      const r = await starling('pg', 'base-backup', '--database-url', pg!.url, '--to', base, ...extra, '--json');
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      const out = JSON.parse(r.stdout) as { path: string; manifest: { start_lsn: string }; pruned: PruneResult | null };
      paths.push(out.path);
      if (i < 3) expect(out.pruned).toBeNull();
      else {
        // The oldest of the three went; the two newest stay.
        expect(out.pruned!.removed).toEqual([paths[0]]);
        expect(out.pruned!.kept).toEqual([paths[2], paths[1]]);
        expect(out.pruned!.wal!.oldest_needed).toBe(starts[1]);
        expect(out.pruned!.wal!.removed.length).toBeGreaterThan(0);
      }
      // The first segment of each backup, from its label (what retention reads).
      const label = readFileSync(join(out.path, 'data', 'backup_label'), 'utf8');
      starts.push(/\(file ([0-9A-F]{24})\)/.exec(label)![1]!);
    }
    expect(readdirSync(base).filter((n) => n.startsWith('pgbase-')).sort()).toEqual([paths[1], paths[2]].map((p) => p.split('/').at(-1)).sort());
    const left = segments(wal);
    // Nothing before the oldest kept backup's first segment, and that one and later ones are still there.
    expect(left.filter((s) => s.slice(8) < starts[1]!.slice(8))).toEqual([]);
    expect(left).toContain(starts[1]);
    expect(left).toContain(starts[2]);

    // A write after the backups, archived; then the oldest kept backup restores with the pruned archive, write included.
    await writeAndArchive(4);
    const [{ noted }] = await admin!<{ noted: Date }[]>`SELECT clock_timestamp() AS noted`;
    await writeAndArchive(5);
    const into = join(work, 'restored');
    const restore = await starling('pg', 'restore', '--to-time', noted!.toISOString(), '--base', paths[1]!, '--wal', wal, '--into', into, '--json');
    expect(restore.stderr).toBe('');
    expect(restore.code).toBe(0);
    const r = JSON.parse(restore.stdout) as { url: string; pid: number };
    restoredPid = r.pid;
    // The source's trust authentication came along in the copy.
    const restored = postgres(r.url, { max: 1, onnotice: () => {} });
    try {
      const rows = await restored<{ n: number }[]>`SELECT n FROM retention_probe ORDER BY n`;
      expect(rows.map((x) => x.n)).toEqual([1, 2, 3, 4]);
    } finally {
      await restored.end({ timeout: 1 });
    }

    // pg prune alone, to one backup: the older kept one goes, and the WAL before the newest's first segment.
    const p = await starling('pg', 'prune', '--base-dir', base, '--keep', '1', '--wal', wal, '--json');
    expect(p.code).toBe(0);
    const pr = JSON.parse(p.stdout) as PruneResult;
    expect(pr.removed).toEqual([paths[1]]);
    expect(segments(wal).filter((s) => s.slice(8) < starts[2]!.slice(8))).toEqual([]);
  });
});
