/**
 * `starling cluster up|status|down`: a whole Starling cluster on loopback,
 * made of the same trusted engines a production cluster uses — etcd ×3,
 * PostgreSQL under Patroni (synchronous replication, fast failover), NATS ×3,
 * Starling ×N, HAProxy in front — as detached child processes with generated
 * configuration under one folder. A state file there records every PID, so
 * `status` and `down` work from any later shell.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync, chmodSync, readdirSync, renameSync } from 'node:fs';
import { execFileSync, spawnSync } from 'node:child_process';
import { join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import postgres from 'postgres';
import { loadConfig } from '../config.js';
import { natsConfig, type NatsMember } from './nats.js';
import {
  PG_BIN_DIR,
  appConfig,
  appDataDir,
  databaseUrl,
  etcdArgs,
  haproxyConfig,
  haproxyDatabaseUrl,
  haproxyReplicaUrl,
  natsUrl,
  patroniCommand,
  patroniConfig,
  patroniDataDir,
  type ClusterPlan,
  walArchiveDir,
} from './configs.js';
import { freePorts, isAlive, portOpen, sleep, spawnLogged, stopPid, waitFor } from './processes.js';

export type MemberKind = 'etcd' | 'patroni' | 'nats' | 'starling' | 'haproxy';

export interface MemberState {
  name: string;
  kind: MemberKind;
  pid: number;
  ports: Record<string, number>;
  log: string;
  config?: string;
}

export interface ClusterState {
  version: 1;
  dir: string;
  startedAt: string;
  appDb: 'sqlite' | 'postgres';
  plan: ClusterPlan;
  members: MemberState[];
  /** Set by `down`: the PIDs are history (and may since belong to other processes). */
  stoppedAt?: string;
}

export interface MemberStatus {
  name: string;
  kind: MemberKind;
  pid: number;
  alive: boolean;
  /** etcd: leader|follower; patroni: leader|sync_standby|replica (Patroni's words); starling: ready|unready|draining; else member. unknown when not answering. */
  role: string;
  ports: Record<string, number>;
  /** Patroni members: the PostgreSQL postmaster's PID, from its data folder. */
  postgresPid?: number | null;
  postgresAlive?: boolean;
  detail?: string;
}

export interface ClusterStatus {
  dir: string;
  appDb: 'sqlite' | 'postgres';
  startedAt: string;
  endpoints: Endpoints;
  members: MemberStatus[];
}

export interface Endpoints {
  http: string;
  websocket: string;
  haproxyStats: string;
  databaseUrl: string;
  databaseViaHaproxy: string;
  /** Superuser URL through HAProxy, for operators and tests (contains the generated password; the folder is private). */
  superuserViaHaproxy: string;
  natsUrl: string;
  etcd: string;
  patroniRest: string[];
  nodes: string[];
}

const STATE_FILE = 'cluster.json';
const REPO_ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)));

export const DEFAULT_CLUSTER_DIR = './starling-cluster';

/** True once the PostgreSQL dialect is built in: the configuration then knows `databaseUrl` (env STARLING_DATABASE_URL). */
export function postgresDialectAvailable(): boolean {
  try {
    const c = loadConfig({ env: { STARLING_DATABASE_URL: 'postgres://probe@127.0.0.1:1/probe' } });
    return typeof (c as unknown as Record<string, unknown>).databaseUrl === 'string';
  } catch {
    return false;
  }
}

export function readState(dir: string): ClusterState | null {
  const file = join(resolve(dir), STATE_FILE);
  if (!existsSync(file)) return null;
  return JSON.parse(readFileSync(file, 'utf8')) as ClusterState;
}

function writeState(state: ClusterState): void {
  const file = join(state.dir, STATE_FILE);
  writeFileSync(`${file}.tmp`, JSON.stringify(state, null, 2), { mode: 0o600 });
  renameSync(`${file}.tmp`, file);
}

export function endpointsOf(plan: ClusterPlan): Endpoints {
  const h = plan.host;
  return {
    http: `http://${h}:${plan.haproxy.httpPort}`,
    websocket: `ws://${h}:${plan.haproxy.httpPort}/api/v1/streaming`,
    haproxyStats: `http://${h}:${plan.haproxy.statsPort}/`,
    databaseUrl: databaseUrl(plan),
    databaseViaHaproxy: haproxyDatabaseUrl(plan),
    superuserViaHaproxy: `postgres://postgres:${encodeURIComponent(plan.secrets.superuser)}@${h}:${plan.haproxy.pgPort}/postgres`,
    natsUrl: natsUrl(plan),
    etcd: plan.etcd.map((e) => `http://${h}:${e.clientPort}`).join(','),
    patroniRest: plan.patroni.map((p) => `http://${h}:${p.restPort}`),
    nodes: plan.apps.map((a) => `http://${h}:${a.port}`),
  };
}

const REQUIRED: { bin: string; pkg: string }[] = [
  { bin: 'etcd', pkg: 'etcd-server' },
  { bin: 'patroni', pkg: 'patroni' },
  { bin: 'nats-server', pkg: 'nats-server' },
  { bin: 'haproxy', pkg: 'haproxy' },
  { bin: join(PG_BIN_DIR, 'postgres'), pkg: 'postgresql (15)' },
];

function missingPrograms(): string[] {
  return REQUIRED.filter(({ bin }) => (bin.startsWith('/') ? !existsSync(bin) : spawnSync('sh', ['-c', `command -v ${bin}`]).status !== 0)).map(
    ({ bin, pkg }) => `${bin} (Debian package ${pkg})`,
  );
}

export interface UpOptions {
  dir: string;
  nodes: number;
  pgMembers: number;
  appDb: 'sqlite' | 'postgres';
  progress: (line: string) => void;
}

async function fetchJson(url: string, timeoutMs = 1500): Promise<{ status: number; body: unknown }> {
  const r = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  const text = await r.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    /* not JSON */
  }
  return { status: r.status, body };
}

interface PatroniClusterView {
  members: { name: string; role: string; state: string; lag?: number | string }[];
}

/** Patroni's view of the cluster, from the first member that answers. */
export async function patroniView(plan: ClusterPlan): Promise<PatroniClusterView | null> {
  for (const p of plan.patroni) {
    try {
      const { status, body } = await fetchJson(`http://${plan.host}:${p.restPort}/cluster`);
      if (status === 200) return body as PatroniClusterView;
    } catch {
      /* next member */
    }
  }
  return null;
}

/** The postmaster PID from a data folder (first line of postmaster.pid), or null. */
export function postmasterPid(dataDir: string): number | null {
  try {
    const pid = Number(readFileSync(join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
    return Number.isInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
}

export async function clusterUp(opts: UpOptions): Promise<ClusterStatus> {
  const dir = resolve(opts.dir);
  const say = opts.progress;
  if (!Number.isInteger(opts.nodes) || opts.nodes < 1 || opts.nodes > 16) throw new Error('--nodes must be a whole number from 1 to 16');
  if (!Number.isInteger(opts.pgMembers) || opts.pgMembers < 2 || opts.pgMembers > 5) throw new Error('--pg-members must be a whole number from 2 to 5');
  const existing = readState(dir);
  if (existing && !existing.stoppedAt && existing.members.some((m) => isAlive(m.pid) && ours(m.pid, existing.dir))) throw new Error(`a cluster is already running in ${dir}: run "starling cluster down --dir ${opts.dir}" first`);
  const missing = missingPrograms();
  if (missing.length) throw new Error(`missing programs: ${missing.join(', ')}; install them (apt-get install patroni etcd-server nats-server haproxy postgresql)`);
  if (opts.appDb === 'postgres' && !postgresDialectAvailable()) {
    throw new Error('this build of Starling has no PostgreSQL dialect yet (config databaseUrl / STARLING_DATABASE_URL); start with --app-db sqlite');
  }
  const root = process.getuid?.() === 0;
  const pgUser = root ? 'postgres' : undefined;

  mkdirSync(join(dir, 'logs'), { recursive: true });
  // PostgreSQL runs as the postgres user when we are root: it must be able to reach its folders.
  if (root) chmodSync(dir, 0o755);

  const [etcdN, natsN] = [3, 3];
  const ports = await freePorts(etcdN * 2 + opts.pgMembers * 2 + natsN * 3 + opts.nodes + 4);
  let i = 0;
  const next = () => ports[i++];
  const plan: ClusterPlan = {
    dir,
    host: '127.0.0.1',
    etcd: Array.from({ length: etcdN }, (_, k) => ({ name: `etcd${k + 1}`, clientPort: next(), peerPort: next() })),
    patroni: Array.from({ length: opts.pgMembers }, (_, k) => ({ name: `pg${k + 1}`, pgPort: next(), restPort: next() })),
    nats: Array.from({ length: natsN }, (_, k): NatsMember => ({ name: `nats${k + 1}`, clientPort: next(), clusterPort: next(), httpPort: next() })),
    apps: Array.from({ length: opts.nodes }, (_, k) => ({ name: `app${k + 1}`, nodeId: k + 1, port: next() })),
    haproxy: { httpPort: next(), pgPort: next(), statsPort: next(), replicaPort: next() },
    appDb: opts.appDb,
    secrets: { superuser: randomBytes(12).toString('hex'), replication: randomBytes(12).toString('hex'), app: randomBytes(12).toString('hex') },
    token: randomBytes(4).toString('hex'),
  };
  const state: ClusterState = { version: 1, dir, startedAt: new Date().toISOString(), appDb: opts.appDb, plan, members: [] };
  writeState(state);
  const record = (m: MemberState) => {
    state.members.push(m);
    writeState(state);
  };
  const logOf = (name: string) => join(dir, 'logs', `${name}.log`);
  const tail = (name: string) => {
    try {
      return readFileSync(logOf(name), 'utf8').trim().split('\n').slice(-5).join('\n');
    } catch {
      return '';
    }
  };
  const step = async <T>(n: number, label: string, run: () => Promise<T>): Promise<T> => {
    const t0 = Date.now();
    say(`[${n}/6] ${label} …`);
    const v = await run();
    say(`[${n}/6] ${label}: ok (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
    return v;
  };

  try {
    await step(1, 'etcd ×3', async () => {
      for (const e of plan.etcd) {
        mkdirSync(join(dir, 'etcd'), { recursive: true });
        const pid = spawnLogged({ cmd: 'etcd', args: etcdArgs(e, plan), logFile: logOf(e.name) });
        record({ name: e.name, kind: 'etcd', pid, ports: { client: e.clientPort, peer: e.peerPort }, log: logOf(e.name) });
      }
      for (const e of plan.etcd) {
        await waitFor(
          `${e.name} to be healthy\n${tail(e.name)}`,
          async () => {
            const { body } = await fetchJson(`http://${plan.host}:${e.clientPort}/health`);
            return (body as { health?: string }).health === 'true';
          },
          30_000,
          200,
        );
      }
    });

    await step(2, `PostgreSQL + Patroni ×${plan.patroni.length} (synchronous replication)`, async () => {
      mkdirSync(walArchiveDir(plan), { recursive: true, mode: 0o700 });
      for (const p of plan.patroni) {
        const home = join(dir, 'patroni', p.name);
        mkdirSync(home, { recursive: true, mode: 0o700 });
        const config = join(home, 'patroni.yml');
        writeFileSync(config, patroniConfig(p, plan), { mode: 0o600 });
        if (root) {
          execFileSync('chown', ['-R', 'postgres:postgres', join(dir, 'patroni')]);
          const probe = spawnSync('setpriv', ['--reuid=postgres', '--regid=postgres', '--init-groups', '--', 'test', '-w', home]);
          if (probe.status !== 0) throw new Error(`the postgres user cannot write to ${home}: make every parent folder of --dir traversable (chmod o+x)`);
        }
        const pid = spawnLogged({ ...patroniCommand(config), logFile: logOf(p.name), asUser: pgUser, env: { PATH: process.env.PATH, HOME: root ? '/var/lib/postgresql' : process.env.HOME, LANG: 'C.UTF-8' } });
        record({ name: p.name, kind: 'patroni', pid, ports: { postgres: p.pgPort, rest: p.restPort }, log: logOf(p.name), config });
      }
      await waitFor(
        `a Patroni leader and a synchronous standby with every member streaming\n${plan.patroni.map((p) => tail(p.name)).join('\n')}`,
        async () => {
          const view = await patroniView(plan);
          if (!view) return false;
          const leader = view.members.filter((m) => m.role === 'leader' && m.state === 'running');
          // Patroni 3.0 says 'running' for a replica that replicates; later versions say 'streaming'.
          const replicating = (m: { state: string }) => m.state === 'running' || m.state === 'streaming';
          const sync = view.members.filter((m) => m.role === 'sync_standby' && replicating(m));
          const replicas = view.members.filter((m) => m.role !== 'leader' && replicating(m));
          return leader.length === 1 && sync.length >= 1 && replicas.length === plan.patroni.length - 1;
        },
        120_000,
        500,
      );
      // The application's role and database, created on the primary (and so, synchronously, on the standby).
      const view = (await patroniView(plan))!;
      const leader = plan.patroni.find((p) => p.name === view.members.find((m) => m.role === 'leader')!.name)!;
      const sql = postgres({ host: plan.host, port: leader.pgPort, user: 'postgres', password: plan.secrets.superuser, database: 'postgres', onnotice: () => {}, max: 1 });
      try {
        await sql.unsafe(`CREATE ROLE starling LOGIN PASSWORD '${plan.secrets.app}'`);
        await sql.unsafe('CREATE DATABASE starling OWNER starling');
      } finally {
        await sql.end({ timeout: 5 });
      }
    });

    await step(3, 'NATS ×3 (clustered)', async () => {
      mkdirSync(join(dir, 'nats'), { recursive: true });
      for (const n of plan.nats) {
        const config = join(dir, 'nats', `${n.name}.conf`);
        writeFileSync(config, natsConfig(n, plan.nats, plan.host));
        const pid = spawnLogged({ cmd: 'nats-server', args: ['-c', config], logFile: logOf(n.name) });
        record({ name: n.name, kind: 'nats', pid, ports: { client: n.clientPort, cluster: n.clusterPort, monitor: n.httpPort }, log: logOf(n.name), config });
      }
      await waitFor(
        'NATS routes between all members',
        async () => {
          for (const n of plan.nats) {
            const { body } = await fetchJson(`http://${plan.host}:${n.httpPort}/routez`);
            if (((body as { num_routes?: number }).num_routes ?? 0) < plan.nats.length - 1) return false;
          }
          return true;
        },
        30_000,
        200,
      );
    });

    await step(4, `Starling ×${plan.apps.length} (app database: ${plan.appDb})`, async () => {
      mkdirSync(join(dir, 'app'), { recursive: true });
      // One after another: the first node migrates the database; the others find it current.
      for (const a of plan.apps) {
        mkdirSync(appDataDir(plan, a), { recursive: true });
        const config = join(dir, 'app', `${a.name}.json`);
        writeFileSync(config, JSON.stringify(appConfig(a, plan), null, 2), { mode: 0o600 });
        // STARLING_* settings in the caller's environment reach every node (e.g. STARLING_LOG_LEVEL=debug); the
        // cluster's own (node id, database, config file, data folder) win over them.
        const passed = Object.fromEntries(Object.entries(process.env).filter(([k]) => k.startsWith('STARLING_') && !['STARLING_CONFIG', 'STARLING_DATA_DIR', 'STARLING_DATABASE_URL', 'STARLING_DATABASE_REPLICA_URL'].includes(k)));
        const env: Record<string, string | undefined> = { ...passed, PATH: process.env.PATH, HOME: process.env.HOME, STARLING_NODE_ID: String(a.nodeId), NODE_ENV: 'production' };
        if (plan.appDb === 'postgres') env.STARLING_DATABASE_URL = databaseUrl(plan);
        // Deferrable reads from the replicas, through HAProxy (store/replica.ts keeps authors on their own writes).
        if (plan.appDb === 'postgres' && haproxyReplicaUrl(plan)) env.STARLING_DATABASE_REPLICA_URL = haproxyReplicaUrl(plan)!;
        const pid = spawnLogged({ cmd: process.execPath, args: [join(REPO_ROOT, 'bin', 'starling.js'), 'serve', '--config', config], cwd: REPO_ROOT, env, logFile: logOf(a.name) });
        record({ name: a.name, kind: 'starling', pid, ports: { http: a.port }, log: logOf(a.name), config });
        await waitFor(
          `${a.name} to be ready\n${tail(a.name)}`,
          async () => {
            if (!isAlive(pid)) throw new Error(`${a.name} exited: ${tail(a.name)}`);
            return (await fetchJson(`http://${plan.host}:${a.port}/readyz`)).status === 200;
          },
          60_000,
          200,
        );
      }
    });

    await step(5, 'HAProxy', async () => {
      mkdirSync(join(dir, 'haproxy'), { recursive: true });
      const config = join(dir, 'haproxy', 'haproxy.cfg');
      writeFileSync(config, haproxyConfig(plan));
      const check = spawnSync('haproxy', ['-c', '-q', '-f', config], { encoding: 'utf8' });
      if (check.status !== 0) throw new Error(`haproxy rejected ${config}: ${(check.stderr || check.stdout).trim()}`);
      const pid = spawnLogged({ cmd: 'haproxy', args: ['-db', '-f', config], logFile: logOf('haproxy') });
      record({ name: 'haproxy', kind: 'haproxy', pid, ports: { http: plan.haproxy.httpPort, postgres: plan.haproxy.pgPort, stats: plan.haproxy.statsPort }, log: logOf('haproxy'), config });
      await waitFor(`HAProxy to route to a ready node\n${tail('haproxy')}`, async () => (await fetchJson(`http://${plan.host}:${plan.haproxy.httpPort}/readyz`)).status === 200, 30_000, 200);
    });

    return await step(6, 'checking every member', async () => {
      const status = await clusterStatus(dir);
      const down = status.members.filter((m) => !m.alive);
      if (down.length) throw new Error(`not running: ${down.map((m) => m.name).join(', ')}`);
      return status;
    });
  } catch (err) {
    say(`cluster up failed: ${(err as Error).message.split('\n')[0]}; stopping what was started (logs in ${join(dir, 'logs')})`);
    await clusterDown(dir, () => {});
    throw err;
  }
}

async function roleOf(m: MemberState, plan: ClusterPlan, view: PatroniClusterView | null): Promise<{ role: string; detail?: string }> {
  const h = plan.host;
  try {
    switch (m.kind) {
      case 'etcd': {
        const r = await fetch(`http://${h}:${m.ports.client}/v3/maintenance/status`, { method: 'POST', body: '{}', signal: AbortSignal.timeout(1500) });
        const s = (await r.json()) as { header?: { member_id?: string }; leader?: string };
        return { role: s.leader && s.leader === s.header?.member_id ? 'leader' : 'follower' };
      }
      case 'patroni': {
        const v = view?.members.find((x) => x.name === m.name);
        return v ? { role: v.role, detail: `${v.state}${v.lag !== undefined && v.lag !== '' ? `, lag ${v.lag}` : ''}` } : { role: 'unknown' };
      }
      case 'nats': {
        const r = await fetchJson(`http://${h}:${m.ports.monitor}/healthz`);
        return { role: 'member', detail: r.status === 200 ? 'healthy' : `healthz ${r.status}` };
      }
      case 'starling': {
        const r = await fetchJson(`http://${h}:${m.ports.http}/readyz`);
        const body = r.body as { status?: string; reason?: string; mode?: string; ops?: { leader?: boolean } };
        // Ready nodes: how (read-write, or serving reads while writes fail) and which one runs the ops engine.
        const detail = r.status === 200 ? [body.mode, body.ops?.leader ? 'ops leader' : null].filter(Boolean).join(', ') || undefined : body.reason;
        return { role: r.status === 200 ? 'ready' : body.status === 'draining' ? 'draining' : 'unready', detail };
      }
      case 'haproxy':
        return { role: (await portOpen(m.ports.http, h)) ? 'listening' : 'unknown' };
    }
  } catch (err) {
    return { role: 'unknown', detail: (err as Error).message };
  }
}

/**
 * Starts a Patroni member of a running cluster again after its process died (what a service manager does on a
 * real machine): same configuration and log, new PID recorded in the state file. PostgreSQL left running by a
 * killed Patroni is adopted by the new one; a stopped one is started and rejoins (pg_rewind) as a replica.
 */
export function restartPatroniMember(dir: string, name: string): MemberState {
  const state = readState(dir);
  if (!state || state.stoppedAt) throw new Error(`no running cluster in ${resolve(dir)}`);
  const member = state.members.find((m) => m.kind === 'patroni' && m.name === name);
  if (!member?.config) throw new Error(`no Patroni member ${name} in ${resolve(dir)}`);
  if (isAlive(member.pid) && ours(member.pid, state.dir)) throw new Error(`Patroni member ${name} is running (PID ${member.pid})`);
  const root = process.getuid?.() === 0;
  member.pid = spawnLogged({
    ...patroniCommand(member.config),
    logFile: member.log,
    asUser: root ? 'postgres' : undefined,
    env: { PATH: process.env.PATH, HOME: root ? '/var/lib/postgresql' : process.env.HOME, LANG: 'C.UTF-8' },
  });
  writeState(state);
  return member;
}

export async function clusterStatus(dir: string): Promise<ClusterStatus> {
  const state = readState(dir);
  if (!state) throw new Error(`no cluster in ${resolve(dir)} (no ${STATE_FILE}); start one with "starling cluster up --dir ${dir}"`);
  const view = await patroniView(state.plan);
  const members = await Promise.all(
    state.members.map(async (m): Promise<MemberStatus> => {
      const alive = !state.stoppedAt && isAlive(m.pid) && ours(m.pid, state.dir);
      const { role, detail } = alive || m.kind === 'patroni' ? await roleOf(m, state.plan, view) : { role: 'down', detail: undefined };
      const out: MemberStatus = { name: m.name, kind: m.kind, pid: m.pid, alive, role: alive ? role : 'down', ports: m.ports, ...(detail ? { detail } : {}) };
      if (m.kind === 'patroni') {
        const p = state.plan.patroni.find((x) => x.name === m.name)!;
        out.postgresPid = postmasterPid(patroniDataDir(state.plan, p));
        out.postgresAlive = out.postgresPid !== null && isAlive(out.postgresPid) && ours(out.postgresPid, state.dir);
      }
      return out;
    }),
  );
  return { dir: state.dir, appDb: state.appDb, startedAt: state.startedAt, endpoints: endpointsOf(state.plan), members };
}

/**
 * Whether a PID still belongs to this cluster: every member's command line
 * names a file or folder under the cluster's folder. A PID from the state
 * file that the system has since given to another program is not ours to signal.
 */
function ours(pid: number, dir: string): boolean {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ').includes(dir);
  } catch {
    return false;
  }
}

/** Processes whose command line names this folder: what `down` must leave none of (postgres children included). */
export function processesUnder(dir: string): { pid: number; cmd: string }[] {
  // An empty or root path would match everything (this process's own parents included).
  if (!dir.trim() || resolve(dir) === '/') throw new Error(`refusing to look for processes under "${dir}"`);
  const abs = resolve(dir);
  const out: { pid: number; cmd: string }[] = [];
  for (const entry of readdirSync('/proc')) {
    const pid = Number(entry);
    if (!Number.isInteger(pid) || pid === process.pid) continue;
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ').trim();
      if (cmd.includes(abs) && isAlive(pid)) out.push({ pid, cmd });
    } catch {
      /* gone */
    }
  }
  return out;
}

export interface DownResult {
  stopped: { name: string; pid: number; how: string }[];
  leftovers: number[];
}

/** Stops everything the state file records, front to back (HAProxy, app nodes, NATS, Patroni and PostgreSQL, etcd). */
export async function clusterDown(dir: string, progress: (line: string) => void): Promise<DownResult> {
  const state = readState(dir);
  if (!state) throw new Error(`no cluster in ${resolve(dir)} (no ${STATE_FILE})`);
  const order: MemberKind[] = ['haproxy', 'starling', 'nats', 'patroni', 'etcd'];
  const stopped: DownResult['stopped'] = [];
  for (const kind of order) {
    const members = state.members.filter((m) => m.kind === kind);
    if (!members.length) continue;
    progress(`stopping ${kind} (${members.map((m) => m.name).join(', ')}) …`);
    await Promise.all(
      members.map(async (m) => {
        // Patroni stops its PostgreSQL on SIGTERM (a fast shutdown); app nodes drain for a few seconds first.
        const graceMs = kind === 'patroni' ? 30_000 : kind === 'starling' ? 20_000 : 10_000;
        const pgPid = kind === 'patroni' ? postmasterPid(patroniDataDir(state.plan, state.plan.patroni.find((p) => p.name === m.name)!)) : null;
        stopped.push({ name: m.name, pid: m.pid, how: !state.stoppedAt && ours(m.pid, state.dir) ? await stopPid(m.pid, graceMs) : 'not running' });
        // A postmaster whose Patroni was killed outlives it: stop it too, by the PID in its data folder.
        if (pgPid !== null && isAlive(pgPid) && ours(pgPid, state.dir)) stopped.push({ name: `${m.name}/postgres`, pid: pgPid, how: await stopPid(pgPid, 15_000) });
      }),
    );
  }
  // Anything still running from this folder (a postgres backend orphaned by a SIGKILL): by PID, after the polite round.
  const leftovers = processesUnder(state.dir).map((p) => p.pid);
  for (const pid of leftovers) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
  if (leftovers.length) await sleep(200);
  writeState({ ...state, stoppedAt: new Date().toISOString() });
  progress(`cluster in ${state.dir} stopped${leftovers.length ? ` (${leftovers.length} leftover processes killed)` : ''}; data and logs kept there`);
  return { stopped, leftovers };
}
