/**
 * `starling drill failover`, the real CLI on a real cluster: one throwaway
 * cluster (etcd ×3, Patroni ×3, NATS ×3, Starling ×2, HAProxy), one SIGKILL of
 * the primary's node. Checks the JSON result (nothing acknowledged lost or
 * duplicated, a new primary, the figures present), the drill log entry read
 * back through `drill history --json`, and that the drill left no process or
 * folder behind. Also: a `--dir` without a cluster is refused with a one-line
 * reason and a non-zero exit. No timing assertions (the RTO is only reported).
 *
 * Missing programs fail on CI (CI=true) and skip locally, as in the chaos suite.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chmodSync, existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { needBinaries } from '../helpers/binaries.js';
import { CLUSTER_BINARIES, tearDownCluster } from '../helpers/cluster.js';
import { tempDir } from '../helpers/server.js';
import { postgresDialectAvailable, processesUnder } from '../../src/cluster/cluster.js';
import type { FailoverDrillEntry } from '../../src/dr/failover-drill.js';
import { runStarling } from '../helpers/cli.js';

const gate = !postgresDialectAvailable() ? 'the PostgreSQL dialect is not in this build' : null;
const skip = gate ?? needBinaries(CLUSTER_BINARIES);

// The caller's environment (PATH, and TMPDIR where given) reaches the drill; a cluster takes a minute or two.
const starling = (args: string[], env: Record<string, string> = {}) => runStarling(args, { env: { ...process.env, ...env }, timeoutMs: 400_000 });

describe.skipIf(skip)('starling drill failover', () => {
  let tmp: ReturnType<typeof tempDir>;
  beforeAll(() => {
    tmp = tempDir('starling-drill-failover-');
    // The drill's throwaway cluster goes under TMPDIR (below): PostgreSQL, as the postgres user, must traverse it.
    chmodSync(tmp.path, 0o755);
  });
  afterAll(async () => {
    if (!tmp) return;
    try {
      // Whatever a failed or timed-out drill left running under our folder, by PID.
      await tearDownCluster(tmp.path, false);
    } finally {
      tmp.remove();
    }
  }, 60_000);

  it('refuses a --dir with no cluster, with a one-line reason', { timeout: 120_000 }, async () => {
    const r = await starling(['drill', 'failover', '--dir', join(tmp.path, 'nothing-here'), '--data-dir', join(tmp.path, 'data-refused'), '--json']);
    expect(r.code).not.toBe(0);
    const out = JSON.parse(r.stdout) as FailoverDrillEntry;
    expect(out.ok).toBe(false);
    expect(out.error).toMatch(/^no running cluster in .*nothing-here/);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
  });

  it('kills the primary under load and finds every acknowledged post once; the result goes to the drill log', { timeout: 420_000 }, async () => {
    const dataDir = join(tmp.path, 'data');
    const r = await starling(['drill', 'failover', '--data-dir', dataDir, '--json'], { TMPDIR: tmp.path });
    if (r.code !== 0) console.log(r.stderr);
    expect(r.code).toBe(0);
    const entry = JSON.parse(r.stdout) as FailoverDrillEntry;
    expect(entry).toMatchObject({ kind: 'failover', ok: true, rpo_seconds: 0 });
    expect(entry.error).toBeUndefined();
    const f = entry.failover;
    expect(f.throwaway).toBe(true);
    expect(f.pg_members).toBe(3);
    expect(f.killed?.name).toMatch(/^pg\d$/);
    expect(f.new_primary).toMatch(/^pg\d$/);
    expect(f.new_primary).not.toBe(f.killed!.name);
    expect(f.posts_missing).toBe(0);
    expect(f.posts_duplicated).toBe(0);
    // 20 before the kill and 20 after the first write that followed it, at least.
    expect(f.posts_acknowledged).toBeGreaterThanOrEqual(40);
    expect(f.posts_read_back).toBe(f.posts_acknowledged);
    expect(entry.rto_seconds).toEqual(expect.any(Number));
    expect(entry.rto_seconds!).toBeGreaterThan(0);
    expect(entry.rto_seconds!).toBeLessThanOrEqual(f.max_rto_seconds);
    expect(Object.keys(entry.phases)).toEqual(expect.arrayContaining(['cluster_ms', 'failover_ms', 'read_back_ms', 'teardown_ms']));

    // The drill log has it, as `drill history` (and the admin API, the operations page) read it.
    const h = await starling(['drill', 'history', '--data-dir', dataDir, '--json']);
    expect(h.code).toBe(0);
    const log = JSON.parse(h.stdout) as FailoverDrillEntry[];
    expect(log).toHaveLength(1);
    expect(log[0]).toEqual(entry);
    const text = await starling(['drill', 'history', '--data-dir', dataDir]);
    expect(text.stdout).toMatch(/failover\s+ok\s+RTO [\d.]+ s\s+RPO 0 s\s+\(0 lost, 0 duplicated/);

    // The throwaway cluster is gone: no process runs from its folder, and the folder is removed.
    expect(processesUnder(tmp.path)).toEqual([]);
    expect(existsSync(f.cluster_dir)).toBe(false);
    expect(readdirSync(tmp.path).filter((n) => n.startsWith('starling-failover-drill-'))).toEqual([]);
  });
});
