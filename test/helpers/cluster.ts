/** What the cluster tests (test/integration/cluster-up, test/chaos) share: the CLI, the programs, the teardown. */
import { execFile } from 'node:child_process';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { clusterDown, processesUnder } from '../../src/cluster/cluster.js';

const run = promisify(execFile);
const ROOT = resolve(import.meta.dirname, '../..');

/** The programs `starling cluster up` starts. */
export const CLUSTER_BINARIES = ['etcd', 'patroni', 'nats-server', 'haproxy', '/usr/lib/postgresql/15/bin/postgres', 'setpriv'];

/** Runs `starling cluster ARGS` and returns what it printed; `env` is added to this process's environment (STARLING_* reach the app nodes). */
export async function clusterCli(args: string[], env: Record<string, string> = {}): Promise<string> {
  const { stdout } = await run(process.execPath, [join(ROOT, 'bin/starling.js'), 'cluster', ...args], { cwd: ROOT, env: { ...process.env, ...env }, maxBuffer: 10 * 1024 * 1024 });
  return stdout;
}

/** `cluster down` if it was started, then, whatever happened, SIGKILL by PID anything still running from `dir`. */
export async function tearDownCluster(dir: string, started: boolean): Promise<void> {
  try {
    if (started) await clusterDown(dir, () => {}).catch(() => {});
  } finally {
    for (const p of processesUnder(dir)) {
      try {
        process.kill(p.pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
  }
}
