/**
 * Opening the database. Embedded mode is SQLite through better-sqlite3;
 * cluster mode is PostgreSQL 15 through postgres.js (kysely-postgres-js).
 * The dialect-specific parts live in src/store (here, errors.ts, search.ts,
 * migrations) so that services never ask which database they are on.
 */
import SQLite from 'better-sqlite3';
import postgres from 'postgres';
import { PostgresJSDialect, PostgresJSDriver, type PostgresJSDialectConfig } from 'kysely-postgres-js';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import {
  Kysely,
  Migrator,
  SqliteDialect,
  type SqliteDatabase,
  type KyselyPlugin,
  type PluginTransformQueryArgs,
  type PluginTransformResultArgs,
  type QueryResult,
  type RootOperationNode,
  type UnknownRow,
  SqliteQueryCompiler,
  ValueNode,
  type LimitNode,
  type OffsetNode,
  type OperationNode,
  type QueryCompiler,
  CompiledQuery,
  type DatabaseConnection,
} from 'kysely';
import type { Database } from './schema.js';
import { migrations } from './migrations/index.js';
import { isConnectionLost } from './errors.js';
import { BACKSTOP_PAGES, startCheckpointer, type CheckpointStats } from './checkpointer.js';

export type Db = Kysely<Database>;
export type DialectName = 'sqlite' | 'postgres';

/**
 * SQLite hands back 64-bit integers as BigInt (safe integers are on, or ids
 * above 2^53 would silently lose digits). Ids become decimal strings, as the
 * API wants them; every other integer (counts, flags) becomes a number.
 */
class IntegerResultsPlugin implements KyselyPlugin {
  transformQuery(args: PluginTransformQueryArgs): RootOperationNode {
    return args.node;
  }
  async transformResult(args: PluginTransformResultArgs): Promise<QueryResult<UnknownRow>> {
    for (const row of args.result.rows) {
      for (const key in row) {
        const v = row[key];
        if (typeof v === 'bigint') row[key] = key === 'id' || key.endsWith('_id') ? v.toString() : Number(v);
      }
    }
    return args.result;
  }
}

/** Our ids: 19 digits, never a leading zero (domain/ids.ts). */
const ID_TEXT = /^[1-9][0-9]{18}$/;
const asParam = (v: unknown) => (typeof v === 'string' && ID_TEXT.test(v) ? BigInt(v) : v);

/**
 * How Starling's parameters reach SQLite: written so by the query compiler,
 * rather than by a plugin that copied every query's operation tree to change
 * a few values (the copy was ~6 % of a home timeline's CPU in a profile; an
 * A/B of the two, 7 pairs in process, was within the machine's noise).
 *
 * Ids are bound as 64-bit integers rather than text. SQLite would convert a
 * text id for an INTEGER column anyway, but only after planning: with text
 * parameters the home-timeline query ran ~5× slower on 1M posts. Text columns
 * that receive such a value convert it back to the same digits (affinity).
 *
 * LIMIT and OFFSET are written into the SQL as numbers. SQLite's planner reads
 * a bound LIMIT's value, so binding it again makes the statement be planned
 * again at its next run, and better-sqlite3 binds every parameter on every
 * run: the home timeline's feed query took 99–111 µs a run with `LIMIT ?`
 * against 43–46 µs with `LIMIT 21` or with its parameters bound once
 * (docs/PERFORMANCE.md). A statement per limit used is cached instead (a few
 * dozen: limits are validated small numbers).
 */
class StarlingSqliteCompiler extends SqliteQueryCompiler {
  protected override addParameter(parameter: unknown): void {
    super.addParameter(asParam(parameter));
  }
  protected override visitLimit(node: LimitNode): void {
    this.countOrParameter('limit ', node.limit);
  }
  protected override visitOffset(node: OffsetNode): void {
    this.countOrParameter('offset ', node.offset);
  }
  private countOrParameter(keyword: string, node: OperationNode): void {
    this.append(keyword);
    const v = ValueNode.is(node) ? node.value : undefined;
    if ((typeof v === 'number' && Number.isSafeInteger(v)) || typeof v === 'bigint') this.append(String(v));
    else this.visitNode(node);
  }
}

class StarlingSqliteDialect extends SqliteDialect {
  override createQueryCompiler(): QueryCompiler {
    return new StarlingSqliteCompiler();
  }
}

/** Prepared statements kept per SQL text: Kysely asks for a new one on every query, and preparing was ~15% of a timeline read. */
const STATEMENT_CACHE_SIZE = 1000;

export interface OpenedDatabase {
  db: Db;
  readonly dialect: DialectName;
  /**
   * The raw SQLite handle, for what Kysely does not cover (online backup, pragmas). The current one: `reopen`
   * replaces it. Throws on PostgreSQL: whatever needs it is SQLite-only.
   */
  readonly sqlite: SQLite.Database;
  /**
   * Opens a fresh connection to the same file and routes every later query to
   * it (the old one is closed if it was still open). Recovery after the
   * connection was lost; fault tests use it to end a database outage they
   * caused by closing the connection.
   */
  reopen(): void;
  close(): Promise<void>;
  /** SQLite with background checkpoints (store/checkpointer.ts): what the checkpoint thread has done. */
  checkpoints?: () => CheckpointStats;
  /** PostgreSQL: how long the longest-waiting query has waited for a pool connection now (ms). */
  poolWaitMs?: () => number;
}

export interface QueryObserver {
  (event: { ok: boolean; ms: number; sql: string }): void;
}

function openHandle(file: string, busyTimeoutMs = 5000, autocheckpointPages?: number): SQLite.Database {
  const sqlite = new SQLite(file);
  // WAL lets readers run beside the writer; FULL fsyncs the WAL at every
  // commit, so an acknowledged post survives a power cut, not only a crash.
  sqlite.pragma('journal_mode = WAL');
  sqlite.pragma('synchronous = FULL');
  if (autocheckpointPages !== undefined) sqlite.pragma(`wal_autocheckpoint = ${autocheckpointPages}`);
  sqlite.pragma('foreign_keys = ON');
  // better-sqlite3 waits for another connection's lock synchronously: the event loop stops meanwhile, so a
  // server keeps this short (config writes.busyTimeoutMs) and lets the writer and breaker deal with SQLITE_BUSY.
  sqlite.pragma(`busy_timeout = ${Math.max(0, Math.floor(busyTimeoutMs))}`);
  sqlite.defaultSafeIntegers(true);
  // Planner statistics: without them a grown database picks plans that scan every status.
  sqlite.pragma('optimize = 0x10002');
  return sqlite;
}

export interface SqliteOptions {
  busyTimeoutMs?: number;
  /**
   * Checkpoint the WAL on a thread of its own (store/checkpointer.ts) instead of inside commits on the event loop:
   * for a server, whose requests would wait for every checkpoint. Errors go to `onError` (nothing is lost by one).
   */
  backgroundCheckpoints?: { intervalMs?: number; onError?: (err: { message: string; code?: string }) => void };
}

export function openSqlite(file: string, observe?: QueryObserver, opts: SqliteOptions = {}): OpenedDatabase {
  if (file !== ':memory:') mkdirSync(dirname(file), { recursive: true });
  const background = file !== ':memory:' && opts.backgroundCheckpoints ? opts.backgroundCheckpoints : null;
  const backstop = background ? BACKSTOP_PAGES : undefined;
  let sqlite = openHandle(file, opts.busyTimeoutMs, backstop);
  // After the first connection: it has put the file in WAL mode, which the thread's connection then finds.
  const checkpointer = background ? startCheckpointer(file, background) : null;
  // Kysely holds one connection for its life; it talks to whichever handle is current, so `reopen` needs no new Kysely.
  let statements = new Map<string, SQLite.Statement>();
  const current: SqliteDatabase = {
    prepare: (text) => {
      let stmt = statements.get(text);
      if (!stmt) {
        stmt = sqlite.prepare(text);
        if (statements.size >= STATEMENT_CACHE_SIZE) statements.delete(statements.keys().next().value!);
        statements.set(text, stmt);
      }
      return stmt;
    },
    close: () => sqlite.close(),
  };
  const db = new Kysely<Database>({
    dialect: new StarlingSqliteDialect({ database: current }),
    plugins: [new IntegerResultsPlugin()],
    log: observe ? (e) => observe({ ok: e.level === 'query', ms: e.queryDurationMillis, sql: e.query.sql }) : undefined,
  });
  return {
    db,
    dialect: 'sqlite',
    get sqlite() {
      return sqlite;
    },
    reopen() {
      if (file === ':memory:') throw new Error('an in-memory database cannot be reopened');
      const old = sqlite;
      sqlite = openHandle(file, opts.busyTimeoutMs, backstop);
      statements = new Map();
      if (old.open) old.close();
    },
    async close() {
      await checkpointer?.stop();
      await db.destroy();
      // Kysely closes the handle only if it ever used it: one used through `sqlite` alone is closed here.
      if (sqlite.open) sqlite.close();
    },
    checkpoints: checkpointer ? () => checkpointer.stats() : undefined,
  };
}

export interface PostgresOptions {
  /** A statement running longer than this fails (57014) instead of hanging while a primary is lost. */
  statementTimeoutMs?: number;
  /** Connecting to a host gives up after this long and tries the next one in the URL. */
  connectTimeoutSeconds?: number;
  /** Pool size. */
  max?: number;
  /**
   * Client-side bound on one query (0: none). statement_timeout is enforced by the server, so a server that is
   * frozen (SIGSTOP, a hung VM, a partition that drops packets) never answers it: past this bound the query fails
   * as 'unavailable' (store/errors.ts QUERY_DEADLINE) and its connection is abandoned, so the next query connects
   * afresh, to whichever server is primary by then. DDL (migrations) is exempt: statement_timeout still bounds it.
   */
  queryDeadlineMs?: number;
  /**
   * libpq's target_session_attrs: 'primary' (default) for the main pool; the replica pool uses 'prefer-standby'
   * so that a multi-host URL of every cluster member reads from a standby and still works with only the primary up.
   */
  targetSessionAttrs?: 'primary' | 'prefer-standby';
  /** application_name, to tell the pools apart in pg_stat_activity. */
  applicationName?: string;
}

/**
 * PostgreSQL through postgres.js. A multi-host URL
 * (`postgres://u:p@h1:5432,h2:5433/db`) finds the primary with
 * `target_session_attrs=primary`: 'read-write' was seen to settle on a
 * PostgreSQL 15 hot standby and fail with 25006 (STACK-NOTES). During a
 * failover postgres.js would wait on a dead connection without error, so
 * statements and connects time out and surface as errors the writer retries
 * and the breaker counts.
 *
 * int8 comes back as BigInt and goes through the same plugin as on SQLite,
 * so services see ids as decimal strings and counts as numbers on both.
 * Strings go to the server untyped (PostgreSQL infers the column's type), so
 * a digit-only string compared with a text column stays text.
 */
export function openPostgres(url: string, observe?: QueryObserver, opts: PostgresOptions = {}): OpenedDatabase {
  ignoreLostTypeFetches();
  const connectTimeout = opts.connectTimeoutSeconds ?? 5;
  const attrs = opts.targetSessionAttrs ?? 'primary';
  // Each new client starts at the next host. postgres.js moves past a host that refuses or is not primary, but a
  // connect timeout fails the query instead: a frozen host first in the URL (its kernel still accepts TCP) made
  // every fresh client wait out the timeout on it, again and again — a minute without writes in the chaos suite
  // after the new primary was ready. The replica pool keeps its order: its reads and read fences must reach the
  // same standby, the first one.
  let made = 0;
  const pool = createSlotPool(
    () =>
      postgres(attrs === 'primary' ? rotateHosts(url, made++) : url, {
        target_session_attrs: attrs,
        connect_timeout: connectTimeout,
        // One connection per client: see createSlotPool.
        max: 1,
        // Idle connections to a primary that has since become a standby are not kept for ever.
        idle_timeout: 60,
        types: { bigint: postgres.BigInt },
        connection: { statement_timeout: opts.statementTimeoutMs ?? 15_000, application_name: opts.applicationName ?? 'starling' },
        onnotice: () => {},
      }),
    { size: opts.max ?? 10, acquireTimeoutMs: connectTimeout * 2000, queryDeadlineMs: opts.queryDeadlineMs ?? 0 },
  );
  const db = new Kysely<Database>({
    // A factory: the dialect takes a plain object only from one (it checks instances for being postgres.js's function).
    dialect: new Dialect({ postgres: () => pool as unknown as postgres.Sql }),
    plugins: [new IntegerResultsPlugin()],
    log: observe ? (e) => observe({ ok: e.level === 'query', ms: e.queryDurationMillis, sql: e.query.sql }) : undefined,
  });
  return {
    db,
    dialect: 'postgres',
    get sqlite(): SQLite.Database {
      throw new Error('this database is PostgreSQL: the SQLite handle does not exist');
    },
    reopen() {
      // postgres.js reconnects by itself; nothing is pinned to one connection.
    },
    async close() {
      await db.destroy();
    },
    poolWaitMs: () => pool.waitMs(),
  };
}

/** A multi-host URL with its hosts rotated by `by` (`h1,h2,h3` by 1: `h2,h3,h1`); other URLs as they are. */
export function rotateHosts(url: string, by: number): string {
  const m = /^(postgres(?:ql)?:\/\/(?:[^@/]*@)?)([^/?#]*)(.*)$/.exec(url);
  if (!m || !m[2].includes(',')) return url;
  const hosts = m[2].split(',');
  const k = by % hosts.length;
  return m[1] + [...hosts.slice(k), ...hosts.slice(0, k)].join(',') + m[3];
}

/**
 * kysely-postgres-js's dialect with one repair: Kysely 0.28's rollbackTransaction, when the ROLLBACK itself
 * fails (the connection was lost: the usual reason a transaction is rolled back during a failover), calls a
 * private method that only its own pg connection class has, and throws a TypeError instead of the lost
 * connection's error — a 500 instead of a 503, and the writer would not retry. The connection needs no marking
 * here: a lost one is never released (createSlotPool).
 */
class Driver extends PostgresJSDriver {
  override async rollbackTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw('rollback'));
  }
}

class Dialect extends PostgresJSDialect {
  constructor(private readonly settings: PostgresJSDialectConfig) {
    super(settings);
  }
  override createDriver(): Driver {
    return new Driver(this.settings);
  }
}

/** Statements the query deadline does not cut short: schema changes (migrations) may rightly run long; statement_timeout bounds them. */
const DDL = /^\s*(create|alter|drop|lock|vacuum|analyze|reindex|cluster|refresh|comment)\b/i;

/**
 * Statements with parameters are prepared (named) on their connection and run again by name. Unnamed, as
 * kysely-postgres-js sends them (postgres.js's `unsafe` defaults to `prepare: false`), every statement took two
 * round trips (Parse + Describe, wait for the parameters' types, then Bind + Execute) and was planned afresh on
 * every run: on the seeded dataset the home timeline's pulled half spent 0.70 ms planning against 0.012 ms
 * running (pg_stat_statements, docs/PERFORMANCE.md). Prepared, a statement seen before is one round trip, and
 * after five runs PostgreSQL may keep a generic plan (its `plan_cache_mode = auto` keeps planning afresh where
 * the generic plan would cost more). A schema change under a prepared statement is handled by postgres.js: it
 * drops the statement and runs the query again (RevalidateCachedQuery).
 *
 * What bounds them: a connection keeps the statements it prepared until it closes, and postgres.js closes each
 * after 30–60 minutes (`max_lifetime`) or 60 s idle. The texts are Kysely's, from Starling's code, varying only
 * in the length of their IN lists; statements with more than `PREPARE_MAX_PARAMETERS` (bulk writes, whose shapes
 * rarely repeat) and schema changes are sent unnamed.
 */
const PREPARE_MAX_PARAMETERS = 256;

/** The error a query past its deadline fails with: 'unavailable' (store/errors.ts), so a 503 and a writer retry. */
export function queryDeadlineError(ms: number): Error {
  return Object.assign(new Error(`the database did not answer within ${ms} ms`), { code: 'QUERY_DEADLINE' });
}

/** What postgres.js passes to a query's `onexecute`: its connection, whose `onclose` it calls once when the connection closes. */
interface ConnectionHandle {
  onclose: ((err: unknown) => void) | null;
}

interface Slot {
  client: postgres.Sql;
  free: boolean;
}

/**
 * The pool Kysely sees: `size` postgres.js clients of one connection each, rather than one client of `size`
 * connections, because postgres.js 3.4 gives no way to drop one connection of a pool: its connections are
 * private, `query.cancel()` needs the server to answer (a frozen one never does), and `sql.end()` ends them
 * all. With one connection per client, abandoning a stuck connection is ending its client
 * (`end({ timeout: 0 })`: pending queries fail with CONNECTION_DESTROYED, the socket is sent Terminate and
 * half-closed) and putting a new client in its slot; the other connections carry on.
 *
 * The repairs for postgres.js 3.4 still apply:
 *
 * - A connection that died while reserved (the primary crashed, was shut
 *   down, a failover) must not be released: postgres.js 3.4 then puts the
 *   closed connection back among the open ones, and the next query on it
 *   throws inside a timer (`socket.write` of null), which ends the process.
 *   Here such a slot gets a fresh client instead. Nothing more is sent on
 *   such a connection either (Kysely's ROLLBACK after the error): it fails at
 *   once, as it would.
 * - PostgreSQL text cannot hold U+0000 (SQLite's can): a parameter holding it
 *   fails the whole statement with 22021, a 500 for what is only odd input (a
 *   search for "\u0000"). Such characters become U+FFFD, the replacement
 *   character, as a decoder does with what it cannot represent. Only strings
 *   that contain one are copied.
 */
function createSlotPool(make: () => postgres.Sql, opts: { size: number; acquireTimeoutMs: number; queryDeadlineMs: number }) {
  const slots: Slot[] = Array.from({ length: Math.max(1, opts.size) }, () => ({ client: make(), free: true }));
  // Queries waiting for a slot, oldest first; how long the first has waited is the pool's wait (load shedding).
  const waiting: { since: number; wake: (slot: Slot) => void }[] = [];
  let ended = false;
  const clean = (params: unknown[] | undefined) =>
    params?.some((p) => typeof p === 'string' && p.includes('\0')) ? params.map((p) => (typeof p === 'string' ? p.replaceAll('\0', '\uFFFD') : p)) : params;

  function giveBack(slot: Slot): void {
    const next = waiting.shift();
    if (next) next.wake(slot);
    else slot.free = true;
  }
  /** Ends a slot's client without waiting for its server (which may never answer) and gives the slot a new one. */
  function renew(slot: Slot): void {
    const old = slot.client;
    slot.client = make();
    void old.end({ timeout: 0 }).catch(() => {});
  }
  function takeSlot(deadline: number): Promise<Slot> {
    const free = slots.find((s) => s.free);
    if (free) {
      free.free = false;
      return Promise.resolve(free);
    }
    return new Promise((resolve, reject) => {
      const waiter = {
        since: performance.now(),
        wake: (slot: Slot) => {
          clearTimeout(timer);
          resolve(slot);
        },
      };
      const timer = setTimeout(() => {
        waiting.splice(waiting.indexOf(waiter), 1);
        reject(Object.assign(new Error(`no database connection within ${opts.acquireTimeoutMs} ms`), { code: 'CONNECT_TIMEOUT' }));
      }, Math.max(0, deadline - Date.now()));
      waiting.push(waiter);
    });
  }

  return {
    /** How long the longest-waiting query has waited for a connection (ms; 0: none waits). */
    waitMs: () => (waiting.length ? performance.now() - waiting[0].since : 0),
    end: async () => {
      ended = true;
      await Promise.all(slots.map((s) => s.client.end({ timeout: 5 })));
    },
    reserve: async () => {
      if (ended) throw Object.assign(new Error('the database pool is closed'), { code: 'CONNECTION_ENDED' });
      const deadline = Date.now() + opts.acquireTimeoutMs;
      const slot = await takeSlot(deadline);
      let reserved: postgres.ReservedSql;
      try {
        reserved = await reserveWithin(slot.client, Math.max(1, deadline - Date.now()));
      } catch (err) {
        // A connect that failed or never came: the client may hold a half-made connection; start this slot afresh.
        renew(slot);
        giveBack(slot);
        throw err;
      }
      const client = slot.client;
      let lost: unknown = null;
      let released = false;
      const abandon = (err: unknown) => {
        lost ??= err;
        // Once per client: the slot may have been renewed already.
        if (slot.client === client) renew(slot);
      };
      // The connection closing while reserved and idle (between a transaction's statements) fails no query, so
      // nothing above would notice, and the next statement would be written to a closed socket (a throw inside
      // postgres.js's write timer, which ends the process) or into a new connection's start-up (resolving empty).
      // postgres.js hands its connection to `onexecute` and calls that connection's `onclose` when it closes, as
      // its own begin() relies on: the reservation is lost at that moment. BEGIN has no parameters, so it always
      // reaches onexecute.
      let watched: ConnectionHandle | null = null;
      const watch = (handle: ConnectionHandle): boolean => {
        if (watched !== handle) {
          watched = handle;
          handle.onclose = (err) => abandon(err ?? Object.assign(new Error('the database connection closed'), { code: 'CONNECTION_CLOSED' }));
        }
        return true;
      };
      return {
        release: () => {
          if (released) return;
          released = true;
          if (watched) watched.onclose = null;
          // A lost connection's client was ended and replaced already (abandon).
          if (!lost) reserved.release();
          giveBack(slot);
        },
        unsafe: (query: string, params?: unknown[], options?: unknown) => {
          if (lost) return Object.assign(Promise.reject(lost), { cursor: undefined });
          const ddl = DDL.test(query);
          // (Without parameters postgres.js sends a simple query, never prepared, whatever `prepare` says.)
          const prepare = !ddl && (params?.length ?? 0) <= PREPARE_MAX_PARAMETERS;
          const pending = reserved.unsafe(query, clean(params) as postgres.ParameterOrJSON<never>[], { prepare, ...(options as object), onexecute: watch } as postgres.UnsafeQueryOptions);
          const noteLoss = (err: unknown) => {
            if (isConnectionLost(err)) abandon(err);
            throw err;
          };
          const bounded = (): Promise<unknown> => {
            const answer = pending.then(undefined, noteLoss);
            const ms = opts.queryDeadlineMs;
            if (ms <= 0 || ddl) return answer;
            let timer: NodeJS.Timeout;
            const late = new Promise<never>((_, reject) => {
              timer = setTimeout(() => {
                const err = queryDeadlineError(ms);
                // Abandon now, not at release: the stuck connection must not take more queries, and ending its
                // client fails the pending query (its rejection is handled by the race below).
                abandon(err);
                reject(err);
              }, ms);
            });
            return Promise.race([answer, late]).finally(() => clearTimeout(timer));
          };
          // A thenable rather than `pending.catch(…)`: postgres.js runs a query when it is first awaited, and a
          // cursor (Kysely's stream()) must be asked for before that.
          return {
            then: (ok?: (v: unknown) => unknown, ko?: (e: unknown) => unknown) => bounded().then(ok, ko),
            cursor: (rows?: number) => pending.cursor(rows ?? 1),
          } as unknown as typeof pending;
        },
      };
    },
  };
}

/**
 * `reserve()`, bounded. In postgres.js 3.4 a reserve waiting for a new
 * connection is forgotten when that connection dies while it starts up (during
 * its array-type query): the promise never settles, and the request or write
 * waiting on it would hang for ever. After the timeout it fails as a connect
 * timeout (the writer retries it); a connection that arrives later is released.
 */
function reserveWithin(client: postgres.Sql, ms: number): Promise<postgres.ReservedSql> {
  return new Promise((resolve, reject) => {
    let late = false;
    const timer = setTimeout(() => {
      late = true;
      reject(Object.assign(new Error(`no database connection within ${ms} ms`), { code: 'CONNECT_TIMEOUT' }));
    }, ms);
    client.reserve().then(
      (r) => {
        clearTimeout(timer);
        if (late) r.release();
        else resolve(r);
      },
      (err: unknown) => {
        clearTimeout(timer);
        reject(err);
      },
    );
  });
}

/**
 * postgres.js 3.4 reads the array types on every new connection, and does not
 * await that query: when the connection dies during it (a failover), its
 * rejection is unhandled, which ends a Node process. (`fetch_types: false`
 * avoids the query but makes `reserve()`, all Kysely uses, hang for ever.)
 * That one rejection is harmless (the connection is closed and replaced), so
 * it is dropped here; any other unhandled rejection is thrown again, and ends
 * the process as before.
 */
let typeFetchGuard = false;
function ignoreLostTypeFetches(): void {
  if (typeFetchGuard) return;
  typeFetchGuard = true;
  process.on('unhandledRejection', (reason) => {
    const query = (reason as { query?: unknown } | null)?.query;
    if (isConnectionLost(reason) && typeof query === 'string' && query.includes('pg_catalog.pg_type')) return;
    throw reason;
  });
}

/** The database a configuration names: PostgreSQL when `databaseUrl` is set, else the SQLite file in the data folder. */
export function openDatabase(
  config: { databaseUrl?: string; databaseFile: string; writes?: { busyTimeoutMs?: number; statementTimeoutMs?: number; queryDeadlineMs?: number } },
  observe?: QueryObserver,
  sqliteOpts: Pick<SqliteOptions, 'backgroundCheckpoints'> = {},
): OpenedDatabase {
  if (config.databaseUrl) {
    return openPostgres(config.databaseUrl, observe, { statementTimeoutMs: config.writes?.statementTimeoutMs, queryDeadlineMs: config.writes?.queryDeadlineMs });
  }
  return openSqlite(config.databaseFile, observe, { ...sqliteOpts, busyTimeoutMs: config.writes?.busyTimeoutMs });
}

/**
 * The pool for reads where staleness is harmless (config databaseReplicaUrl; store/replica.ts decides when it
 * may be used). Short connect timeout: a replica that is down must cost a read little before it falls back to
 * the primary.
 */
export function openReplicaPool(
  config: { databaseReplicaUrl?: string; writes?: { statementTimeoutMs?: number; queryDeadlineMs?: number } },
  observe?: QueryObserver,
): OpenedDatabase | null {
  if (!config.databaseReplicaUrl) return null;
  return openPostgres(config.databaseReplicaUrl, observe, {
    statementTimeoutMs: config.writes?.statementTimeoutMs,
    queryDeadlineMs: config.writes?.queryDeadlineMs,
    connectTimeoutSeconds: 2,
    targetSessionAttrs: 'prefer-standby',
    applicationName: 'starling-replica',
  });
}

export async function migrateToLatest(db: Kysely<any>): Promise<{ applied: string[] }> {
  const migrator = new Migrator({ db, provider: { getMigrations: async () => migrations } });
  const { error, results } = await migrator.migrateToLatest();
  if (error) throw error instanceof Error ? error : new Error(String(error));
  return { applied: (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName) };
}
