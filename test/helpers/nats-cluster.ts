/** A real 3-member NATS cluster on free loopback ports, as child processes the test stops by PID. */
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { natsConfig, natsClientUrl, type NatsMember } from '../../src/cluster/nats.js';
import { freePorts, portOpen, waitFor } from '../../src/cluster/processes.js';
import { tempDir } from './server.js';

export interface TestNatsCluster {
  urls: string[];
  members: NatsMember[];
  pids(): number[];
  /** SIGKILL one member and wait for it to exit. */
  kill(index: number): Promise<void>;
  /** Starts a killed member again with its configuration (same ports). */
  restart(index: number): Promise<void>;
  stop(): Promise<void>;
}

export async function startNatsCluster(size = 3): Promise<TestNatsCluster> {
  const dir = tempDir('starling-nats-');
  const ports = await freePorts(size * 3);
  const members: NatsMember[] = Array.from({ length: size }, (_, i) => ({ name: `n${i + 1}`, clientPort: ports[i * 3], clusterPort: ports[i * 3 + 1], httpPort: ports[i * 3 + 2] }));
  const procs: (ChildProcess | null)[] = [];
  const launch = (m: NatsMember) => spawn('nats-server', ['-c', join(dir.path, `${m.name}.conf`)], { stdio: 'ignore' });
  const stop = async () => {
    await Promise.all(
      procs.map(async (p) => {
        if (!p || p.exitCode !== null || p.signalCode !== null) return;
        const exited = new Promise((r) => p.once('exit', r));
        process.kill(p.pid!, 'SIGKILL');
        await exited;
      }),
    );
    dir.remove();
  };
  try {
    for (const m of members) {
      writeFileSync(join(dir.path, `${m.name}.conf`), natsConfig(m, members));
      procs.push(launch(m));
    }
    for (const m of members) await waitFor(`nats ${m.name}`, () => portOpen(m.clientPort), 15_000);
    // Routes formed: each member's monitoring endpoint lists the others.
    await waitFor(
      'NATS routes',
      async () => {
        for (const m of members) {
          const r = (await (await fetch(`http://127.0.0.1:${m.httpPort}/routez`)).json()) as { num_routes: number };
          if (r.num_routes < size - 1) return false;
        }
        return true;
      },
      15_000,
    );
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    urls: members.map((m) => natsClientUrl(m)),
    members,
    pids: () => procs.map((p) => p!.pid!),
    async kill(index) {
      const p = procs[index]!;
      if (p.exitCode !== null || p.signalCode !== null) return;
      const exited = new Promise((r) => p.once('exit', r));
      process.kill(p.pid!, 'SIGKILL');
      await exited;
    },
    async restart(index) {
      const m = members[index];
      procs[index] = launch(m);
      await waitFor(`nats ${m.name}`, () => portOpen(m.clientPort), 15_000);
    },
    stop,
  };
}
