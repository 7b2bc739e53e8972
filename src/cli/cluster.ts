/** `starling cluster up|status|down`: the local cluster (src/cluster/cluster.ts) from the command line. */
import { parseArgs } from 'node:util';
import { clusterDown, clusterStatus, clusterUp, DEFAULT_CLUSTER_DIR, type ClusterStatus } from '../cluster/cluster.js';

export const CLUSTER_USAGE = `  cluster up            Start a cluster on loopback: etcd ×3, PostgreSQL + Patroni (synchronous), NATS ×3,
                        Starling ×N and HAProxy, as background processes; prints the endpoints
      [--dir DIR] [--nodes N] [--pg-members M] [--app-db postgres|sqlite] [--json]
                        DIR: configuration, data, logs and the PID file (default ${DEFAULT_CLUSTER_DIR});
                        N app nodes (default 2); M PostgreSQL members (default 3, at least 2);
                        --app-db sqlite: the app nodes share one SQLite file instead of PostgreSQL;
                        STARLING_* variables set when running up reach every app node
  cluster status        Each member: role (Patroni leader/sync_standby/replica, etcd leader), ports, PID, alive
      [--dir DIR] [--json]
  cluster down          Stop everything cluster up started (SIGTERM, then SIGKILL) [--dir DIR] [--json]
`;

const OPTIONS = {
  dir: { type: 'string' },
  nodes: { type: 'string' },
  'pg-members': { type: 'string' },
  'app-db': { type: 'string' },
  json: { type: 'boolean' },
} as const;

function printStatus(s: ClusterStatus): void {
  const rows = s.members.map((m) => [
    m.name,
    m.kind,
    m.role,
    Object.entries(m.ports)
      .map(([k, v]) => `${k}=${v}`)
      .join(' '),
    m.kind === 'patroni' ? `${m.pid} (postgres ${m.postgresPid ?? '-'}${m.postgresAlive ? '' : m.postgresPid ? ', down' : ''})` : String(m.pid),
    m.alive ? 'yes' : 'NO',
    m.detail ?? '',
  ]);
  const head = ['MEMBER', 'KIND', 'ROLE', 'PORTS', 'PID', 'ALIVE', 'DETAIL'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  for (const r of [head, ...rows]) console.log(r.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd());
}

function printEndpoints(s: ClusterStatus): void {
  const e = s.endpoints;
  console.log(`
Starling (through HAProxy):  ${e.http}
Streaming (WebSocket):       ${e.websocket}
HAProxy statistics:          ${e.haproxyStats}
App nodes:                   ${e.nodes.join(' ')}
PostgreSQL (multi-host):     ${e.databaseUrl}
PostgreSQL (via HAProxy):    ${e.databaseViaHaproxy}
Patroni REST:                ${e.patroniRest.join(' ')}
NATS:                        ${e.natsUrl}
etcd:                        ${e.etcd}
App database:                ${s.appDb}${s.appDb === 'sqlite' ? ' (one SQLite file shared by the app nodes: this machine only)' : ''}
Configuration and logs in ${s.dir}; stop with: starling cluster down --dir ${s.dir}`);
}

export async function clusterCommand(args: string[]): Promise<number> {
  const sub = args[0];
  const { values } = parseArgs({ args: args.slice(1), options: OPTIONS, strict: true });
  const dir = values.dir ?? DEFAULT_CLUSTER_DIR;
  const json = values.json === true;
  switch (sub) {
    case 'up': {
      const appDb = values['app-db'] ?? 'postgres';
      if (appDb !== 'postgres' && appDb !== 'sqlite') throw new Error('--app-db must be postgres or sqlite');
      const nodes = Number(values.nodes ?? 2);
      const pgMembers = Number(values['pg-members'] ?? 3);
      // With --json, progress goes to stderr so stdout stays one JSON document.
      const status = await clusterUp({ dir, nodes, pgMembers, appDb, progress: (line) => (json ? console.error(line) : console.log(line)) });
      if (json) console.log(JSON.stringify(status, null, 2));
      else {
        console.log('');
        printStatus(status);
        printEndpoints(status);
      }
      return 0;
    }
    case 'status': {
      const status = await clusterStatus(dir);
      if (json) console.log(JSON.stringify(status, null, 2));
      else {
        printStatus(status);
        printEndpoints(status);
      }
      return 0;
    }
    case 'down': {
      const result = await clusterDown(dir, (line) => (json ? console.error(line) : console.log(line)));
      if (json) console.log(JSON.stringify(result, null, 2));
      return 0;
    }
    default:
      throw new Error('usage: starling cluster up|status|down [--dir DIR] [--nodes N] [--pg-members M] [--app-db postgres|sqlite] [--json]');
  }
}
