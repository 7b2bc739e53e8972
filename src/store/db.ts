/**
 * Opening the database. Embedded mode is SQLite through better-sqlite3;
 * cluster mode is PostgreSQL 15 through postgres.js (kysely-postgres-js).
 * The dialect-specific parts live in src/store (here, errors.ts, search.ts,
 * migrations) so that services never ask which database they are on.
 */
import SQLite from 'better-sqlite3';
import postgres from 'postgres';
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
  OperationNodeTransformer,
  ValueNode,
  PrimitiveValueListNode,
} from 'kysely';
import type { Database } from './schema.js';
import { migrations } from './migrations/index.js';
import { isConnectionLost } from './errors.js';
import { StarlingPostgresDialect } from './postgres-driver.js';

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
 * Binds ids as 64-bit integers rather than text. SQLite would convert a text
 * id for an INTEGER column anyway, but only after planning: with text
 * parameters the home-timeline query ran ~5× slower on 1M posts. Text columns
 * that receive such a value convert it back to the same digits (affinity).
 */
class IdParamTransformer extends OperationNodeTransformer {
  protected override transformValue(node: ValueNode): ValueNode {
    const v = asParam(node.value);
    return v === node.value ? node : ValueNode.create(v);
  }
  protected override transformPrimitiveValueList(node: PrimitiveValueListNode): PrimitiveValueListNode {
    return PrimitiveValueListNode.create(node.values.map(asParam));
  }
}

class IdParamsPlugin implements KyselyPlugin {
  private readonly transformer = new IdParamTransformer();
  transformQuery(args: PluginTransformQueryArgs): RootOperationNode {
    return this.transformer.transformNode(args.node);
  }
  async transformResult(args: PluginTransformResultArgs): Promise<QueryResult<UnknownRow>> {
    return args.result;
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
}

export interface QueryObserver {
  (event: { ok: boolean; ms: number; sql: string }): void;
}

function openHandle(file: string, busyTimeoutMs = 5000): SQLite.Database {
  const sqlite = new SQLite(file);
  // WAL lets readers run beside the writer; FULL fsyncs the WAL at every
  // commit, so an acknowledged post survives a power cut, not only a crash.
  sqlite.pragma('journal_mode = WAL');
  sqlite.pragma('synchronous = FULL');
  sqlite.pragma('foreign_keys = ON');
  // better-sqlite3 waits for another connection's lock synchronously: the event loop stops meanwhile, so a
  // server keeps this short (config writes.busyTimeoutMs) and lets the writer and breaker deal with SQLITE_BUSY.
  sqlite.pragma(`busy_timeout = ${Math.max(0, Math.floor(busyTimeoutMs))}`);
  sqlite.defaultSafeIntegers(true);
  // Planner statistics: without them a grown database picks plans that scan every status.
  sqlite.pragma('optimize = 0x10002');
  return sqlite;
}

export function openSqlite(file: string, observe?: QueryObserver, opts: { busyTimeoutMs?: number } = {}): OpenedDatabase {
  if (file !== ':memory:') mkdirSync(dirname(file), { recursive: true });
  let sqlite = openHandle(file, opts.busyTimeoutMs);
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
    dialect: new SqliteDialect({ database: current }),
    plugins: [new IdParamsPlugin(), new IntegerResultsPlugin()],
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
      sqlite = openHandle(file, opts.busyTimeoutMs);
      statements = new Map();
      if (old.open) old.close();
    },
    async close() {
      await db.destroy();
    },
  };
}

export interface PostgresOptions {
  /** A statement running longer than this fails (57014) instead of hanging while a primary is lost. */
  statementTimeoutMs?: number;
  /** Connecting to a host gives up after this long and tries the next one in the URL. */
  connectTimeoutSeconds?: number;
  /** Pool size. */
  max?: number;
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
  const client = postgres(url, {
    target_session_attrs: 'primary',
    connect_timeout: opts.connectTimeoutSeconds ?? 5,
    max: opts.max ?? 10,
    // Idle connections to a primary that has since become a standby are not kept for ever.
    idle_timeout: 60,
    types: { bigint: postgres.BigInt },
    connection: { statement_timeout: opts.statementTimeoutMs ?? 15_000, application_name: 'starling' },
    onnotice: () => {},
  });
  const db = new Kysely<Database>({
    dialect: new StarlingPostgresDialect(client, (opts.connectTimeoutSeconds ?? 5) * 2000),
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
  };
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
  config: { databaseUrl?: string; databaseFile: string; writes?: { busyTimeoutMs?: number; statementTimeoutMs?: number } },
  observe?: QueryObserver,
): OpenedDatabase {
  if (config.databaseUrl) return openPostgres(config.databaseUrl, observe, { statementTimeoutMs: config.writes?.statementTimeoutMs });
  return openSqlite(config.databaseFile, observe, { busyTimeoutMs: config.writes?.busyTimeoutMs });
}

export async function migrateToLatest(db: Kysely<any>): Promise<{ applied: string[] }> {
  const migrator = new Migrator({ db, provider: { getMigrations: async () => migrations } });
  const { error, results } = await migrator.migrateToLatest();
  if (error) throw error instanceof Error ? error : new Error(String(error));
  return { applied: (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName) };
}
