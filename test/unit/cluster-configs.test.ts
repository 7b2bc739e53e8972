/**
 * The local cluster's generated configuration: the settings the failover and
 * durability promises rest on are present, HAProxy accepts its file, and the
 * CLI refuses bad input with a one-line reason and a non-zero exit.
 */
import { describe, expect, it } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { appConfig, databaseUrl, haproxyConfig, haproxyReplicaUrl, patroniCommand, patroniConfig, type ClusterPlan } from '../../src/cluster/configs.js';
import { natsConfig } from '../../src/cluster/nats.js';
import { parseNatsServers } from '../../src/bus/nats.js';
import { eventually, tempDir } from '../helpers/server.js';
import { missingBinaries, needBinaries } from '../helpers/binaries.js';

const plan: ClusterPlan = {
  dir: '/srv/cluster',
  host: '127.0.0.1',
  etcd: [1, 2, 3].map((i) => ({ name: `etcd${i}`, clientPort: 2379 + i * 10, peerPort: 2380 + i * 10 })),
  patroni: [1, 2].map((i) => ({ name: `pg${i}`, pgPort: 5432 + i, restPort: 8008 + i })),
  nats: [1, 2, 3].map((i) => ({ name: `nats${i}`, clientPort: 4222 + i, clusterPort: 6222 + i, httpPort: 8222 + i })),
  apps: [1, 2].map((i) => ({ name: `app${i}`, nodeId: i, port: 3000 + i })),
  haproxy: { httpPort: 8080, pgPort: 5000, statsPort: 8404 },
  appDb: 'postgres',
  secrets: { superuser: 's', replication: 'r', app: 'a b' },
  token: 'abcd',
};

/** HAProxy's own check of a configuration file (`haproxy -c`): silent and exit 0. */
function expectHaproxyAccepts(cfg: string): void {
  const dir = tempDir();
  try {
    const file = join(dir.path, 'haproxy.cfg');
    writeFileSync(file, cfg);
    const r = spawnSync('haproxy', ['-c', '-q', '-f', file], { encoding: 'utf8' });
    expect(r.stderr + r.stdout).toBe('');
    expect(r.status).toBe(0);
  } finally {
    dir.remove();
  }
}

describe('cluster configuration', () => {
  it('Patroni: strict synchronous replication, fast failover, pg_rewind, every etcd member', () => {
    const y = patroniConfig(plan.patroni[0], plan);
    for (const line of ['ttl: 6', 'loop_wait: 1', 'retry_timeout: 2', 'primary_start_timeout: 0', 'wal_retrieve_retry_interval: 500ms', 'synchronous_mode: true', 'synchronous_mode_strict: true', 'use_pg_rewind: true', 'use_slots: false', 'wal_keep_size: 128MB', "wal_log_hints: 'on'", 'listen: 127.0.0.1:5433', 'listen: 127.0.0.1:8009']) {
      expect(y).toContain(line);
    }
    // Patroni's rule: a leader must be able to retry the DCS twice within one loop before its key expires.
    const num = (key: string) => Number(new RegExp(`^\\s+${key}: (\\d+)$`, 'm').exec(y)?.[1]);
    expect(num('loop_wait') + 2 * num('retry_timeout')).toBeLessThanOrEqual(num('ttl'));
    expect(y).toContain('hosts: 127.0.0.1:2389,127.0.0.1:2399,127.0.0.1:2409');
    // WAL archiving (point-in-time recovery): into the cluster's archive, never overwriting a segment.
    expect(y).toContain("archive_mode: 'on'");
    expect(y).toContain(`archive_command: "test ! -f '/srv/cluster/patroni/wal-archive/%f' && cp %p '/srv/cluster/patroni/wal-archive/%f'"`);
  });

  it('the app: a multi-host URL to every member that only accepts a primary, and every NATS member', () => {
    expect(databaseUrl(plan)).toBe('postgres://starling:a%20b@127.0.0.1:5433,127.0.0.1:5434/starling?target_session_attrs=primary');
    const c = appConfig(plan.apps[1], plan);
    expect(c).toMatchObject({ nodeId: 2, port: 3002, trustProxy: true, publicUrl: 'http://127.0.0.1:8080', natsUrl: 'nats://127.0.0.1:4223,nats://127.0.0.1:4224,nats://127.0.0.1:4225' });
    expect(parseNatsServers(' nats://a:1 ,, nats://b:2,')).toEqual(['nats://a:1', 'nats://b:2']);
  });

  it('NATS: routes to the other members only', () => {
    const conf = natsConfig(plan.nats[0], plan.nats);
    expect(conf).toContain('listen: 127.0.0.1:4223');
    expect(conf).toContain('nats://127.0.0.1:6224');
    expect(conf).toContain('nats://127.0.0.1:6225');
    expect(conf).not.toContain('nats://127.0.0.1:6223');
  });

  it.skipIf(missingBinaries(['haproxy']).length > 0 && process.env.CI !== 'true')('HAProxy accepts the generated file: /readyz checks on the app, /primary checks for PostgreSQL', () => {
    const cfg = haproxyConfig(plan);
    expect(cfg).toContain('option httpchk GET /readyz');
    expect(cfg).toContain('timeout check 3s');
    expect(cfg).toContain('server pg1 127.0.0.1:5433 check port 8009');
    expect(cfg).toContain('timeout tunnel 1h');
    expectHaproxyAccepts(cfg);
  });
});

describe('starling cluster: the replica listener', () => {
  it.skipIf(missingBinaries(['haproxy']).length > 0 && process.env.CI !== 'true')('balances over replicas Patroni calls healthy, and HAProxy accepts the file', () => {
    const withReplicas: ClusterPlan = { ...plan, haproxy: { ...plan.haproxy, replicaPort: 5001 } };
    expect(haproxyConfig(plan)).not.toContain('postgres_replicas');
    const cfg = haproxyConfig(withReplicas);
    const listener = cfg.slice(cfg.indexOf('listen postgres_replicas'), cfg.indexOf('listen stats'));
    expect(listener).toContain('bind 127.0.0.1:5001');
    expect(listener).toContain('option httpchk GET /replica?lag=16MB');
    expect(listener).toContain('balance first');
    expect(listener).toContain('server pg1 127.0.0.1:5433 check port 8009');
    expect(haproxyReplicaUrl(withReplicas)).toMatch(/^postgres:\/\/starling:[^@]+@127\.0\.0\.1:5001\/starling$/);
    expect(haproxyReplicaUrl(plan)).toBeNull();
    expectHaproxyAccepts(cfg);
  });
});

/** A process's parent, or null once it is gone (reaped: a zombie still has its /proc entry). */
function parentOf(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  } catch {
    return null;
  }
}

describe.skipIf(needBinaries(['/usr/bin/python3']))("Patroni's reaper (patroniCommand)", () => {
  // The reaper with another program in Patroni's place: everything but the program is what `cluster up` runs.
  const start = (script: string) => {
    const { cmd, args } = patroniCommand('unused');
    const child = spawn(cmd, [...args.slice(0, 2), '/bin/sh', '-c', script], { stdio: 'ignore' });
    return child;
  };

  it('adopts and reaps an orphan below it, and takes the program with it when killed', async () => {
    const dir = tempDir();
    // Ours until seen gone (then not signalled again: the PID could be reused).
    const pids = new Set<number>();
    try {
      // Like Patroni starting the postmaster: a helper starts a process and exits, leaving it orphaned.
      const reaper = start(`sh -c 'sleep 60 & echo $! > ${dir.path}/orphan'; echo $$ > ${dir.path}/program; exec sleep 60`);
      pids.add(reaper.pid!);
      const read = (f: string) => (existsSync(join(dir.path, f)) ? Number(readFileSync(join(dir.path, f), 'utf8')) || undefined : undefined);
      const orphan = await eventually(async () => read('orphan'), 10_000);
      const program = await eventually(async () => read('program'), 10_000);
      pids.add(orphan).add(program);
      // Re-parented to the reaper, not to PID 1: so only the reaper can (and does) reap it.
      await eventually(async () => parentOf(orphan) === reaper.pid, 10_000);
      process.kill(orphan, 'SIGKILL');
      await eventually(async () => parentOf(orphan) === null, 10_000);
      pids.delete(orphan);
      expect(parentOf(program)).toBe(reaper.pid);
      // SIGKILL on the reaper (the chaos suite's "whole node") must kill the program too.
      process.kill(reaper.pid!, 'SIGKILL');
      await eventually(async () => parentOf(program) === null || readFileSync(`/proc/${program}/stat`, 'utf8').includes(') Z'), 10_000);
      pids.delete(program);
    } finally {
      for (const pid of pids) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          /* gone */
        }
      }
      dir.remove();
    }
  });

  it('passes SIGTERM on to the program and exits with its status', async () => {
    const reaper = start('trap \'kill $!; exit 7\' TERM; sleep 60 & wait');
    try {
      const exited = new Promise<number | null>((resolve) => reaper.on('exit', (code) => resolve(code)));
      // The trap must be in place before the signal: wait until the shell has started its sleep.
      await eventually(async () => readFileSync(`/proc/${reaper.pid}/task/${reaper.pid}/children`, 'utf8').trim() !== '', 10_000);
      const shell = Number(readFileSync(`/proc/${reaper.pid}/task/${reaper.pid}/children`, 'utf8').trim().split(' ')[0]);
      await eventually(async () => existsSync(`/proc/${shell}/task/${shell}/children`) && readFileSync(`/proc/${shell}/task/${shell}/children`, 'utf8').trim() !== '', 10_000);
      process.kill(reaper.pid!, 'SIGTERM');
      expect(await exited).toBe(7);
    } finally {
      try {
        process.kill(reaper.pid!, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
  });
});

describe('starling cluster: bad input', () => {
  const bin = resolve(import.meta.dirname, '../../bin/starling.js');
  const starling = (...args: string[]) => spawnSync(process.execPath, [bin, 'cluster', ...args], { encoding: 'utf8' });

  it('exits non-zero with one line for a missing cluster, bad options and an unknown subcommand', () => {
    const dir = tempDir();
    try {
      const cases: [string[], string][] = [
        [['status', '--dir', dir.path], `no cluster in ${dir.path} (no cluster.json); start one with "starling cluster up --dir ${dir.path}"`],
        [['down', '--dir', dir.path], `no cluster in ${dir.path} (no cluster.json)`],
        [['up', '--dir', dir.path, '--app-db', 'mysql'], '--app-db must be postgres or sqlite'],
        [['up', '--dir', dir.path, '--nodes', 'x', '--app-db', 'sqlite'], '--nodes must be a whole number from 1 to 16'],
        [['up', '--dir', dir.path, '--pg-members', '1', '--app-db', 'sqlite'], '--pg-members must be a whole number from 2 to 5'],
        [['frob'], 'usage: starling cluster up|status|down [--dir DIR] [--nodes N] [--pg-members M] [--app-db postgres|sqlite] [--json]'],
      ];
      for (const [args, message] of cases) {
        const r = starling(...args);
        expect(r.status, args.join(' ')).toBe(1);
        expect(r.stderr.trim()).toBe(message);
      }
    } finally {
      dir.remove();
    }
  });
});
