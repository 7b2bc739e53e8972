/**
 * `starling drill failover`: losing the PostgreSQL primary, rehearsed and timed.
 *
 * Starts a throwaway cluster with `starling cluster up` (etcd ×3, Patroni ×3 in
 * strict synchronous mode, NATS ×3, Starling ×N, HAProxy), or uses a running
 * one (`--dir`). Signs up a few drill accounts and runs a steady posting load
 * through HAProxy, each post retried under its Idempotency-Key until
 * acknowledged (src/cluster/chaos.ts, the chaos suite's harness). Once the
 * load is steady and the primary has a synchronous standby, it SIGKILLs the
 * primary's whole node (Patroni and the postmaster, by PID), waits until a
 * write is acknowledged again, lets the load run a little longer, stops it and
 * reads every drill account's posts back through HAProxy.
 *
 * RTO: seconds from the kill to the acknowledgement of the first write sent
 * after it (the write gap clients saw; a write already in flight at the kill
 * may have committed on the old primary, so it does not count). RPO: 0 when every acknowledged post is there;
 * otherwise the seconds between the oldest lost acknowledged post and the kill
 * (the window of lost writes). Missing and duplicated posts are counted apart:
 * either one fails the drill, as does an RTO above the bound. The result is
 * appended to `<dataDir>/drill-log.jsonl` like the restore drill's.
 *
 * A running cluster given with --dir gets its killed member started again
 * afterwards (as a service manager would), so it is whole when the drill ends.
 */
import { execFile } from 'node:child_process';
import { chmodSync, mkdtempSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { hostname, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { STARLING_VERSION } from '../version.js';
import { clusterStatus, readState, restartPatroniMember, type ClusterStatus } from '../cluster/cluster.js';
import { PostingLoad, healthyPrimary, killPatroniNode, readBack, registerUser, tearDownCluster, type LoadUser } from '../cluster/chaos.js';
import { isAlive, waitFor } from '../cluster/processes.js';
import { BackupError, STARLING_BIN } from './files.js';
import { appendDrillLog, phaseTimer, type DrillCommon } from './drill.js';

const run = promisify(execFile);

export interface FailoverDrillEntry extends DrillCommon {
  kind: 'failover';
  failover: {
    cluster_dir: string;
    /** Started by the drill and torn down after it (false: a running cluster given with --dir). */
    throwaway: boolean;
    app_nodes: number;
    pg_members: number;
    killed: { name: string; patroni_pid: number; postgres_pid: number | null } | null;
    /** The primary after the failover, from Patroni. */
    new_primary: string | null;
    writers: number;
    posts_acknowledged: number;
    posts_read_back: number;
    /** Acknowledged posts not found afterwards: must be 0. */
    posts_missing: number;
    /** Posts found more than once: must be 0. */
    posts_duplicated: number;
    /** Requests that failed and were retried (under the same key) before their post was acknowledged. */
    failed_attempts: number;
    failed_attempts_after_kill: number;
    max_rto_seconds: number;
    missing_keys: string[];
    duplicate_keys: string[];
  };
}

export interface FailoverDrillOptions {
  dataDir: string;
  /** A running cluster's folder; without it a throwaway cluster is started in a temporary folder. */
  dir?: string;
  /** App nodes of the throwaway cluster (default 2). */
  nodes?: number;
  writers?: number;
  /** Fail the drill when the write gap exceeds this (default 120 s). */
  maxRtoSeconds?: number;
  /** Leave the throwaway cluster running (its folder is printed) for looking around. */
  keepCluster?: boolean;
  log?: (line: string) => void;
}

/** Acknowledged posts wanted before the kill (a steady load) and after the first write that follows it. */
const STEADY_POSTS = 20;
const AFTER_POSTS = 20;

export async function drillFailover(opts: FailoverDrillOptions): Promise<FailoverDrillEntry> {
  const t0 = Date.now();
  const say = opts.log ?? (() => {});
  const writers = opts.writers ?? 4;
  const maxRto = opts.maxRtoSeconds ?? 120;
  const { phases, phase } = phaseTimer(t0);
  const checks: string[] = [];
  const given = opts.dir ? resolve(opts.dir) : null;
  const tmp = given ? null : mkdtempSync(join(tmpdir(), 'starling-failover-drill-'));
  const dir = given ?? join(tmp!, 'cluster');
  const entry: FailoverDrillEntry = {
    kind: 'failover',
    ok: false,
    started_at: new Date(t0).toISOString(),
    finished_at: '',
    rto_seconds: null,
    rpo_seconds: null,
    phases,
    checks,
    host: hostname(),
    starling_version: STARLING_VERSION,
    failover: {
      cluster_dir: dir,
      throwaway: !given,
      app_nodes: 0,
      pg_members: 0,
      killed: null,
      new_primary: null,
      writers,
      posts_acknowledged: 0,
      posts_read_back: 0,
      posts_missing: 0,
      posts_duplicated: 0,
      failed_attempts: 0,
      failed_attempts_after_kill: 0,
      max_rto_seconds: maxRto,
      missing_keys: [],
      duplicate_keys: [],
    },
  };
  const f = entry.failover;
  let started = false;
  let load: PostingLoad | null = null;
  let killedName: string | null = null;
  // Interrupted (Ctrl-C, a scheduler's timeout): a throwaway cluster must not outlive the drill.
  const onSignal = (sig: NodeJS.Signals) => {
    void (async () => {
      if (!given) await tearDownCluster(dir, started);
      if (tmp && !opts.keepCluster) await rm(tmp, { recursive: true, force: true });
      process.exit(sig === 'SIGINT' ? 130 : 143);
    })();
  };
  if (!given) {
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
  }
  try {
    let status: ClusterStatus;
    if (given) {
      const state = readState(given);
      if (!state || state.stoppedAt || !state.members.some((m) => isAlive(m.pid))) throw new BackupError(`no running cluster in ${given}: start one with "starling cluster up --dir ${opts.dir}", or leave --dir out for a throwaway cluster`);
      if (state.appDb !== 'postgres') throw new BackupError(`the cluster in ${given} keeps the app's data in SQLite (--app-db sqlite): a PostgreSQL failover would not touch it; use a cluster started with --app-db postgres`);
      status = await clusterStatus(given);
    } else {
      // When root, PostgreSQL runs as the postgres user: it must be able to traverse the temporary folder.
      chmodSync(tmp!, 0o755);
      say(`starting a throwaway cluster in ${dir} (starling cluster up)`);
      started = true;
      const args = [STARLING_BIN, 'cluster', 'up', '--dir', dir, '--nodes', String(opts.nodes ?? 2), '--pg-members', '3', '--app-db', 'postgres', '--json'];
      // No rate limit or load shedding on the drill's own nodes: the drill measures the failover, not the limits
      // (the chaos suite runs them the same way: thirteen processes share the machine's cores).
      const env = { ...process.env, STARLING_RATE_LIMIT_MAX: '0', STARLING_PRESSURE_ENABLED: '0' };
      try {
        status = JSON.parse((await run(process.execPath, args, { env, maxBuffer: 10 * 1024 * 1024 })).stdout) as ClusterStatus;
      } catch (err) {
        const e = err as { stderr?: string; message: string };
        throw new BackupError(`starling cluster up failed: ${(e.stderr || e.message).trim().split('\n').at(-1)}`);
      }
    }
    f.app_nodes = status.members.filter((m) => m.kind === 'starling').length;
    f.pg_members = status.members.filter((m) => m.kind === 'patroni').length;
    if (f.pg_members < 3) throw new BackupError(`the cluster has ${f.pg_members} PostgreSQL members: strict synchronous replication needs 3 for writes to go on after losing the primary`);
    phase('cluster_ms');
    const base = status.endpoints.http;
    const st = () => clusterStatus(dir);

    const tag = randomBytes(3).toString('hex');
    const users: LoadUser[] = [];
    for (let i = 0; i < writers; i++) users.push(await registerUser(base, `drill_${tag}_${i}`));
    phase('accounts_ms');
    checks.push(`${writers} drill accounts signed up through HAProxy`);

    load = new PostingLoad(base, users, `failover-${tag}`);
    load.start();
    await waitFor(`${STEADY_POSTS} acknowledged posts before the fault`, () => load!.acked.length >= STEADY_POSTS, 120_000, 50);
    const primary = await healthyPrimary(st, 120_000);
    phase('steady_ms');
    checks.push(`steady posting load (${load.acked.length} posts acknowledged)`);

    say(`killing the PostgreSQL primary's node ${primary.name} (Patroni PID ${primary.pid}, postmaster PID ${primary.postgresPid ?? '-'}) with SIGKILL`);
    const before = load.mark();
    const killedAt = Date.now();
    killPatroniNode(primary);
    killedName = primary.name;
    f.killed = { name: primary.name, patroni_pid: primary.pid, postgres_pid: primary.postgresPid ?? null };
    // The first write after the kill that a client saw acknowledged: through the new primary (or, had Patroni
    // kept the dead one, not at all: the bound fails the drill).
    const firstWrite = await waitFor(
      `a write acknowledged after the kill`,
      () => load!.firstAckSentAfter(killedAt),
      (maxRto + 30) * 1000,
      20,
    ).catch(() => null);
    if (firstWrite === null) throw new BackupError(`no write was acknowledged within ${maxRto + 30} s of killing the primary ${primary.name}`);
    entry.rto_seconds = (firstWrite - killedAt) / 1000;
    phase('failover_ms');
    say(`writes acknowledged again after ${entry.rto_seconds.toFixed(1)} s`);
    const n = load.acked.length;
    await waitFor(`${AFTER_POSTS} more acknowledged posts after the failover`, () => load!.acked.length >= n + AFTER_POSTS, 120_000, 50);
    f.failed_attempts_after_kill = load.failedAttempts - before.failed;
    await load.stop();
    phase('after_ms');
    const after = await st();
    f.new_primary = after.members.find((m) => m.kind === 'patroni' && m.role === 'leader')?.name ?? null;

    const back = await readBack(base, users, load.acked, load.keyPrefix);
    f.posts_acknowledged = load.acked.length;
    f.posts_read_back = back.read;
    f.posts_missing = back.missing.length;
    f.posts_duplicated = back.duplicates.reduce((a, [, c]) => a + c - 1, 0);
    f.failed_attempts = load.failedAttempts;
    f.missing_keys = back.missing.slice(0, 20);
    f.duplicate_keys = back.duplicates.slice(0, 20).map(([k]) => k);
    const lostAt = load.acked.filter((a) => back.missing.includes(a.key)).map((a) => a.at);
    entry.rpo_seconds = lostAt.length ? Math.max(0, (killedAt - Math.min(...lostAt)) / 1000) : 0;
    phase('read_back_ms');

    const problems: string[] = [];
    if (f.posts_missing) problems.push(`${f.posts_missing} acknowledged posts missing (${f.missing_keys.slice(0, 3).join(', ')}…)`);
    if (f.posts_duplicated) problems.push(`${f.posts_duplicated} duplicated posts (${f.duplicate_keys.slice(0, 3).join(', ')}…)`);
    if (entry.rto_seconds > maxRto) problems.push(`writes stopped for ${entry.rto_seconds.toFixed(1)} s, above the bound of ${maxRto} s`);
    if (problems.length) throw new BackupError(problems.join('; '));
    checks.push(`writes acknowledged again ${entry.rto_seconds.toFixed(1)} s after the kill (bound ${maxRto} s)`, `all ${f.posts_acknowledged} acknowledged posts read back through HAProxy`, 'no post duplicated');
    entry.ok = true;
  } catch (err) {
    entry.error = err instanceof Error ? err.message : String(err);
  } finally {
    await load?.stop().catch(() => {});
    if (load) f.failed_attempts = load.failedAttempts;
    if (given && killedName) {
      // The operator's cluster gets its member back, as a service manager would bring it, and rejoins as a replica.
      try {
        restartPatroniMember(given, killedName);
        say(`started ${killedName} again; it rejoins as a replica`);
      } catch (err) {
        say(`could not start ${killedName} again: ${(err as Error).message}`);
      }
    }
    if (!given) {
      if (opts.keepCluster && started) say(`throwaway cluster left running in ${dir}: stop it with "starling cluster down --dir ${dir}"`);
      else {
        say('stopping the throwaway cluster');
        await tearDownCluster(dir, started);
        if (tmp) await rm(tmp, { recursive: true, force: true });
      }
      process.removeListener('SIGINT', onSignal);
      process.removeListener('SIGTERM', onSignal);
    }
    phase('teardown_ms');
    entry.finished_at = new Date().toISOString();
  }
  await appendDrillLog(opts.dataDir, entry);
  return entry;
}
