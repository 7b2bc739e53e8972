/**
 * Which node runs the ops engine (probes, incident detection, alerts): one per
 * cluster, so a cluster of N nodes opens one incident per outage, not N.
 *
 * - **SQLite**: usually one node per database file, but `starling cluster up
 *   --app-db sqlite` runs several on one shared file on one machine. SQLite's
 *   own file locking decides: the leader keeps a write transaction open
 *   (`BEGIN IMMEDIATE`, a RESERVED lock) on a small lock database next to the
 *   main file; the operating system drops the lock when the process exits.
 *   A lone node always gets it.
 * - **PostgreSQL**: a session-level advisory lock, taken with
 *   `pg_try_advisory_lock` on a connection of its own (not the pool's: a pooled
 *   connection is handed to other queries and may be closed at any time).
 *   PostgreSQL itself guarantees that one session at most holds it, and drops
 *   it when that session ends — a node that exits, crashes, or loses its
 *   connection (a failover: the new primary has no locks at all) lets another
 *   node take it. No consensus of our own.
 *
 * Every `intervalMs` the holder checks that it still holds the lock on the same
 * session (`pg_backend_pid()` unchanged: postgres.js reconnects by itself, and a
 * new session holds nothing). A failed check ends leadership at once and closes
 * the connection, so a lock still held by a session we can no longer talk to is
 * released by the server rather than kept while nobody leads; the next round
 * tries again. The server drops a session that hangs (TCP keepalives) or that
 * says nothing for a while (`idle_session_timeout`: a wedged process), so a
 * leader that stops answering does not keep the lock for ever.
 *
 * Followers try to take the lock each round, and read which node holds it
 * (pg_locks joined with pg_stat_activity's application_name, which names the
 * node) for /readyz and the metrics.
 */
import { writeFileSync, readFileSync } from 'node:fs';
import SQLite from 'better-sqlite3';
import postgres from 'postgres';
import type { Logger } from 'pino';
import type { Gauge } from 'prom-client';

/** The advisory lock key: "StOp" in ASCII. One database per Starling cluster, so one key is enough. */
export const OPS_LOCK_KEY = 0x53744f70;
const APP_NAME_PREFIX = 'starling-ops-leader-node-';

export interface Leadership {
  /** This node runs the ops engine now. */
  leading: boolean;
  /** The node that leads, as far as this node knows (null: nobody, or not known yet). */
  leaderNode: number | null;
  /** How the leader is chosen. */
  election: 'sqlite-file-lock' | 'postgres-advisory-lock';
  /** When this node last became leader or follower (ISO-8601). */
  since: string;
  /** Times this node lost leadership without asking to (its lock session died). */
  losses: number;
  /** The last error of the lock connection, if its last round failed. */
  error: string | null;
}

export interface LeaderElection {
  readonly leading: boolean;
  state(): Leadership;
  /** Called with the new value whenever this node starts or stops leading. */
  onChange(listener: (leading: boolean) => void): () => void;
  start(): Promise<void>;
  /** Gives the lock up (the connection is closed): another node takes over within its next round. */
  stop(): Promise<void>;
}

interface Common {
  nodeId: number;
  log: Logger;
  /** Set to 1 while this node leads. */
  gauge?: Gauge;
  now?: () => Date;
}

abstract class Base implements LeaderElection {
  protected current: Leadership;
  private readonly listeners = new Set<(leading: boolean) => void>();

  constructor(
    protected readonly opts: Common,
    election: Leadership['election'],
  ) {
    this.current = { leading: false, leaderNode: null, election, since: this.iso(), losses: 0, error: null };
    opts.gauge?.set(0);
  }

  protected iso(): string {
    return (this.opts.now ?? (() => new Date()))().toISOString();
  }

  get leading(): boolean {
    return this.current.leading;
  }

  state(): Leadership {
    return { ...this.current };
  }

  onChange(listener: (leading: boolean) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  protected set(leading: boolean, why: string): void {
    if (this.current.leading === leading) return;
    this.current = { ...this.current, leading, since: this.iso(), leaderNode: leading ? this.opts.nodeId : null };
    this.opts.gauge?.set(leading ? 1 : 0);
    this.opts.log.warn({ leading, why }, leading ? 'this node now runs the ops engine (leader)' : 'this node no longer runs the ops engine (follower)');
    for (const l of this.listeners) {
      try {
        l(leading);
      } catch (err) {
        this.opts.log.error({ err }, 'leadership listener failed');
      }
    }
  }

  abstract start(): Promise<void>;
  abstract stop(): Promise<void>;
}

export interface FileLockOptions extends Common {
  /** The lock database (created if missing); `<file>.holder` names the holder for the others. */
  file: string;
  intervalMs: number;
}

/**
 * SQLite mode: a RESERVED lock on a lock database, taken with `BEGIN IMMEDIATE` (busy timeout 0: try, never
 * wait) and kept by never ending the transaction. SQLite's locking works between processes (fcntl locks, which
 * the kernel releases when a process dies) and between connections of one process alike.
 */
export class FileLockLeader extends Base {
  private db: SQLite.Database | null = null;
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;

  constructor(private readonly o: FileLockOptions) {
    super(o, 'sqlite-file-lock');
  }

  tick(): void {
    if (this.stopped || this.current.leading) return;
    try {
      this.db ??= new SQLite(this.o.file, { timeout: 0 });
      this.db.exec('BEGIN IMMEDIATE');
      // A hint for the others' /readyz only: the lock is what decides.
      writeFileSync(`${this.o.file}.holder`, JSON.stringify({ nodeId: this.o.nodeId, pid: process.pid, since: this.iso() }) + '\n');
      this.current.error = null;
      this.set(true, 'took the SQLite lock');
    } catch (err) {
      const busy = (err as { code?: string }).code?.startsWith('SQLITE_BUSY');
      if (!busy) {
        // The lock file cannot even be opened (permissions, a full disk at start): a node that cannot tell leads,
        // rather than leave the site unmonitored; a shared-file cluster may then see one incident per node.
        this.current.error = err instanceof Error ? err.message : String(err);
        this.o.log.warn({ err }, 'ops leader lock could not be tried: running the ops engine anyway');
        this.set(true, 'lock file unusable');
        return;
      }
      this.current.error = null;
      try {
        this.current.leaderNode = (JSON.parse(readFileSync(`${this.o.file}.holder`, 'utf8')) as { nodeId: number }).nodeId;
      } catch {
        this.current.leaderNode = null;
      }
    }
  }

  async start(): Promise<void> {
    if (this.timer || this.stopped) return;
    this.tick();
    this.timer = setInterval(() => this.tick(), this.o.intervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.set(false, 'stopping');
    // Closing ends the transaction and so frees the lock for the next node.
    this.db?.close();
    this.db = null;
  }
}

export interface AdvisoryLockOptions extends Common {
  databaseUrl: string;
  /** How often the lock is taken or checked. */
  intervalMs: number;
}

/** PostgreSQL mode: a session-level advisory lock on a dedicated connection. */
export class AdvisoryLockLeader extends Base {
  private sql: postgres.Sql | null = null;
  private pid: number | null = null;
  private timer: NodeJS.Timeout | null = null;
  private round: Promise<void> | null = null;
  private stopped = false;

  constructor(private readonly o: AdvisoryLockOptions) {
    super(o, 'postgres-advisory-lock');
  }

  private connect(): postgres.Sql {
    const idleS = Math.max(10, Math.ceil((this.o.intervalMs * 5) / 1000));
    this.sql ??= postgres(this.o.databaseUrl, {
      max: 1,
      target_session_attrs: 'primary',
      connect_timeout: 5,
      // The lock lives as long as this session: no idle disconnects of our own.
      idle_timeout: 0,
      onnotice: () => {},
      connection: {
        application_name: `${APP_NAME_PREFIX}${this.o.nodeId}`,
        statement_timeout: Math.max(1000, this.o.intervalMs),
        // A node that stops talking (wedged, or its network gone) loses the lock after this, server-side.
        idle_session_timeout: idleS * 1000,
        tcp_keepalives_idle: 5,
        tcp_keepalives_interval: 2,
        tcp_keepalives_count: 3,
      } as Record<string, string | number>,
    });
    return this.sql;
  }

  /** Closes the session (which releases the lock, if held) and forgets it. */
  private async drop(): Promise<void> {
    const sql = this.sql;
    this.sql = null;
    this.pid = null;
    if (sql) await sql.end({ timeout: 1 }).catch(() => {});
  }

  private withDeadline<T>(p: Promise<T>): Promise<T> {
    const ms = Math.max(2000, this.o.intervalMs * 2);
    let timer: NodeJS.Timeout | undefined;
    return Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`lock connection did not answer within ${ms} ms`)), ms);
      }),
    ]).finally(() => clearTimeout(timer));
  }

  /** One round: take the lock, or check it is still ours; learn who leads. Never throws. */
  async tick(): Promise<void> {
    if (this.stopped) return;
    try {
      const sql = this.connect();
      if (!this.current.leading) {
        const [row] = await this.withDeadline(sql<{ got: boolean; pid: number }[]>`select pg_try_advisory_lock(${OPS_LOCK_KEY}::bigint) as got, pg_backend_pid() as pid`);
        if (this.stopped) return;
        if (row.got) {
          this.pid = row.pid;
          this.current.error = null;
          this.set(true, 'took the advisory lock');
          return;
        }
        this.current.leaderNode = await this.withDeadline(this.holder(sql));
      } else {
        const [row] = await this.withDeadline(sql<{ pid: number; held: boolean }[]>`
          select pg_backend_pid() as pid,
                 exists(select 1 from pg_locks where locktype = 'advisory' and pid = pg_backend_pid() and granted
                          and classid = 0 and objid = ${OPS_LOCK_KEY} and objsubid = 1) as held`);
        if (row.pid !== this.pid || !row.held) throw new Error(`the lock session ended (backend ${this.pid} → ${row.pid})`);
      }
      this.current.error = null;
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      this.current.error = message;
      this.current.leaderNode = this.current.leading ? null : this.current.leaderNode;
      if (this.current.leading) {
        this.current.losses++;
        this.set(false, `lost the advisory lock: ${message}`);
      } else this.o.log.debug({ err: message }, 'ops leader election round failed');
      // Whatever state that session is in, close it: a lock we may still hold there must not outlive our leadership.
      await this.drop();
    }
  }

  /** The node whose session holds the lock, from its application_name. */
  private async holder(sql: postgres.Sql): Promise<number | null> {
    const rows = await sql<{ name: string | null }[]>`
      select a.application_name as name from pg_locks l join pg_stat_activity a on a.pid = l.pid
       where l.locktype = 'advisory' and l.granted and l.classid = 0 and l.objid = ${OPS_LOCK_KEY} and l.objsubid = 1`;
    const name = rows[0]?.name ?? '';
    return name.startsWith(APP_NAME_PREFIX) ? Number(name.slice(APP_NAME_PREFIX.length)) : null;
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.round = this.tick().finally(() => {
        this.round = null;
        this.schedule();
      });
    }, this.o.intervalMs);
    this.timer.unref();
  }

  async start(): Promise<void> {
    if (this.timer || this.stopped) return;
    // The first round now, so a lone node leads before it serves its first status page.
    await this.tick();
    this.schedule();
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    if (this.round) await this.round.catch(() => {});
    this.set(false, 'stopping');
    await this.drop();
  }
}

export function createLeaderElection(
  config: { databaseUrl?: string; databaseFile: string; nodeId: number; ops: { leaderCheckSeconds: number } },
  common: Omit<Common, 'nodeId'>,
): LeaderElection {
  const intervalMs = config.ops.leaderCheckSeconds * 1000;
  if (!config.databaseUrl) return new FileLockLeader({ ...common, nodeId: config.nodeId, file: `${config.databaseFile}.ops-leader`, intervalMs });
  return new AdvisoryLockLeader({ ...common, nodeId: config.nodeId, databaseUrl: config.databaseUrl, intervalMs: config.ops.leaderCheckSeconds * 1000 });
}
