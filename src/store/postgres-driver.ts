/**
 * Kysely's driver for postgres.js, written to survive lost connections.
 *
 * kysely-postgres-js reserves a postgres.js connection for every query and
 * runs the query on it. In postgres.js 3.4 a reserved connection that closes
 * while nothing runs on it (its backend terminated, the primary crashed or
 * failed over) is put back in the pool's closed list and may be reconnected
 * for someone else — but the reserved handle still points at it. The next
 * query on the handle is then written into that new connection's start-up:
 * it resolves with an empty result on the start-up's ReadyForQuery (a valid
 * token found nowhere: a 401 while the database blinked), and the server's
 * real answer to it is taken for the next query's, so the connection's
 * answers shift by one. Seen in test/integration/postgres-connections.test.ts.
 *
 * So a connection is only pinned when it must be: a single query goes to the
 * pool (`sql.unsafe`), which never hands a closed connection a query, and a
 * transaction reserves one at BEGIN. postgres.js tells its `onexecute`
 * option which connection runs a query, and calls that connection's
 * `onclose` when it closes (postgres.js's own `begin()` uses both): the
 * pinned connection is marked lost at that moment, synchronously, before
 * anything can reuse it, and every later statement of the transaction fails
 * as a lost connection (the writer retries the whole batch). A lost
 * connection is never released either: postgres.js would put it among the
 * open ones, and the next query on it would throw inside a timer
 * (`socket.write` of null), which ends the process.
 */
import postgres from 'postgres';
import { PostgresJSDialect } from 'kysely-postgres-js';
import { CompiledQuery, PostgresDriver, type DatabaseConnection, type QueryResult, type TransactionSettings } from 'kysely';
import { isConnectionLost } from './errors.js';

/** What postgres.js passes to `onexecute`: its connection object, whose `onclose` it calls once when the connection closes. */
interface PgConnectionHandle {
  onclose: ((err: unknown) => void) | null;
}

type Params = postgres.ParameterOrJSON<never>[];

/**
 * PostgreSQL text cannot hold U+0000 (SQLite's can): a parameter holding it
 * fails the whole statement with 22021, a 500 for what is only odd input (a
 * search for "\u0000"). Such characters become U+FFFD, the replacement
 * character, as a decoder does with what it cannot represent. Only strings
 * that contain one are copied.
 */
function clean(params: readonly unknown[]): Params {
  const copy = params.some((p) => typeof p === 'string' && p.includes('\0'));
  return (copy ? params.map((p) => (typeof p === 'string' ? p.replaceAll('\0', '\uFFFD') : p)) : [...params]) as Params;
}

function toResult<R>(result: postgres.RowList<postgres.Row[]>): QueryResult<R> {
  const { command, count } = result;
  return {
    numAffectedRows: command === 'INSERT' || command === 'UPDATE' || command === 'DELETE' || command === 'MERGE' ? BigInt(count) : undefined,
    rows: Array.from(result.values()) as R[],
  };
}

const lostError = (cause: unknown) =>
  Object.assign(new Error('the database connection of this transaction was lost'), { code: 'CONNECTION_CLOSED', cause });

/** One Kysely connection: the pool, or a connection pinned for a transaction. */
class Connection implements DatabaseConnection {
  #pinned: postgres.ReservedSql | null = null;
  #handle: PgConnectionHandle | null = null;
  #lost: unknown = null;

  constructor(
    private readonly client: postgres.Sql,
    private readonly acquireTimeoutMs: number,
  ) {}

  async pin(): Promise<void> {
    this.#pinned = await reserveWithin(this.client, this.acquireTimeoutMs);
    this.#lost = null;
  }

  /** Back to the pool, unless the connection was lost (see the top of this file). */
  unpin(): void {
    const pinned = this.#pinned;
    if (!pinned) return;
    if (this.#handle) this.#handle.onclose = null;
    this.#pinned = this.#handle = null;
    if (!this.#lost) pinned.release();
  }

  async executeQuery<R>(query: CompiledQuery): Promise<QueryResult<R>> {
    if (!this.#pinned) return toResult(await this.client.unsafe(query.sql, clean(query.parameters)));
    if (this.#lost) throw lostError(this.#lost);
    try {
      return toResult(await this.#pinned.unsafe(query.sql, clean(query.parameters), { onexecute: this.#watch } as postgres.UnsafeQueryOptions));
    } catch (err) {
      if (isConnectionLost(err)) this.#lost ??= err;
      throw err;
    }
  }

  async *streamQuery<R>(query: CompiledQuery, chunkSize = 100): AsyncIterableIterator<QueryResult<R>> {
    if (this.#lost) throw lostError(this.#lost);
    const sql = this.#pinned ?? this.client;
    for await (const rows of sql.unsafe(query.sql, clean(query.parameters)).cursor(chunkSize)) yield { rows: rows as R[] };
  }

  /** Learns which connection is pinned, and hears at once when it closes. Returns true: postgres.js goes on as without the option. */
  readonly #watch = (handle: PgConnectionHandle): boolean => {
    if (this.#handle !== handle) {
      this.#handle = handle;
      handle.onclose = (err) => {
        this.#lost ??= err ?? new Error('connection closed');
      };
    }
    return true;
  };
}

class Driver extends PostgresDriver {
  constructor(
    private readonly client: postgres.Sql,
    private readonly acquireTimeoutMs: number,
  ) {
    super({ pool: undefined as never });
  }
  override async init(): Promise<void> {}
  override async acquireConnection(): Promise<DatabaseConnection> {
    return new Connection(this.client, this.acquireTimeoutMs);
  }
  // BEGIN has no parameters, so postgres.js calls `onexecute` for it (it skips the call only for a statement
  // described first or a write that met back-pressure): from BEGIN on, the pinned connection is watched.
  override async beginTransaction(conn: DatabaseConnection, settings: TransactionSettings): Promise<void> {
    const c = conn as Connection;
    await c.pin();
    try {
      await super.beginTransaction(c, settings);
    } catch (err) {
      c.unpin();
      throw err;
    }
  }
  override async commitTransaction(conn: DatabaseConnection): Promise<void> {
    try {
      await super.commitTransaction(conn);
    } finally {
      (conn as Connection).unpin();
    }
  }
  // Not super's: it marks its own connection class for discarding on failure. Ours is never released when lost.
  override async rollbackTransaction(conn: DatabaseConnection): Promise<void> {
    try {
      await conn.executeQuery(CompiledQuery.raw('rollback'));
    } finally {
      (conn as Connection).unpin();
    }
  }
  override async releaseConnection(conn: DatabaseConnection): Promise<void> {
    (conn as Connection).unpin();
  }
  override async destroy(): Promise<void> {
    await this.client.end({ timeout: 5 });
  }
}

/** kysely-postgres-js's dialect (adapter, compiler, introspector) with the driver above. */
export class StarlingPostgresDialect extends PostgresJSDialect {
  constructor(
    private readonly client: postgres.Sql,
    private readonly acquireTimeoutMs: number,
  ) {
    super({ postgres: client });
  }
  override createDriver(): Driver {
    return new Driver(this.client, this.acquireTimeoutMs);
  }
}

/**
 * `reserve()`, bounded. In postgres.js 3.4 a reserve waiting for a connection
 * can be forgotten: when a connection closes, the pool reconnects it for the
 * first waiting request, and a reserve that is a connection's first request is
 * dropped once it has connected (also when it dies while starting up). The
 * promise never settles, and the write waiting on it would hang for ever. After the timeout it fails as a connect
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
