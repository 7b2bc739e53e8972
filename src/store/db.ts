/**
 * Opening the database. Embedded mode is SQLite through better-sqlite3;
 * the dialect-specific parts live here and in `dialect.ts` so that services
 * never ask which database they are on.
 */
import SQLite from 'better-sqlite3';
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

export type Db = Kysely<Database>;

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
  /** The raw handle, for what Kysely does not cover (online backup, pragmas). The current one: `reopen` replaces it. */
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

export async function migrateToLatest(db: Kysely<any>): Promise<{ applied: string[] }> {
  const migrator = new Migrator({ db, provider: { getMigrations: async () => migrations } });
  const { error, results } = await migrator.migrateToLatest();
  if (error) throw error instanceof Error ? error : new Error(String(error));
  return { applied: (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName) };
}
