/** What the cluster tests (test/integration/cluster-up, test/chaos) share: the CLI, the programs, the teardown. */
import { execFile } from 'node:child_process';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const ROOT = resolve(import.meta.dirname, '../..');

/** The programs `starling cluster up` starts. */
export const CLUSTER_BINARIES = ['etcd', 'patroni', 'nats-server', 'haproxy', '/usr/lib/postgresql/15/bin/postgres', 'setpriv'];

/** Runs `starling cluster ARGS` and returns what it printed; `env` is added to this process's environment (STARLING_* reach the app nodes). */
export async function clusterCli(args: string[], env: Record<string, string> = {}): Promise<string> {
  const { stdout } = await run(process.execPath, [join(ROOT, 'bin/starling.js'), 'cluster', ...args], { cwd: ROOT, env: { ...process.env, ...env }, maxBuffer: 10 * 1024 * 1024 });
  return stdout;
}

/** Shared with `starling drill failover`, which tears its throwaway cluster down the same way. */
export { tearDownCluster } from '../../src/cluster/chaos.js';
