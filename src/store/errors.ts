/**
 * What a database error means, on either dialect: the one place that knows
 * SQLite's result codes and PostgreSQL's SQLSTATEs (and postgres.js's own
 * connection error codes). Upper layers (the writer, ops/read-only.ts, the
 * HTTP error handler) decide from the kind, never from a code.
 *
 * Classifying costs nothing on the happy path: it runs only on errors.
 */
export type DbErrorKind =
  /** The write itself broke a rule (unique, foreign key, not null, check): the caller's problem, not the database's. */
  | 'constraint'
  /** Someone else holds the lock, or the transaction lost a race (SQLITE_BUSY, 40001, 40P01): the same write may succeed on a retry. */
  | 'busy'
  /** Writes cannot be made durable here now (disk full, read-only file, I/O error, corruption): read-only mode at once. */
  | 'storage'
  /**
   * The database went away or is not the primary (connection lost, admin shutdown, failover in progress, a standby
   * reached, statement timeout): nothing of the transaction was kept unless the commit itself was cut off.
   */
  | 'unavailable'
  /** Anything else from the database engine (counted as a failing dependency). */
  | 'database'
  /** Not a database error. */
  | 'other';

/** postgres.js's own errors, raised without a server: the connection is gone or never came. */
const PG_CONNECTION_CODES = new Set([
  'CONNECTION_CLOSED',
  'CONNECTION_ENDED',
  'CONNECTION_DESTROYED',
  'CONNECT_TIMEOUT',
  // Ours (store/db.ts): no answer within the client-side query deadline; the connection was abandoned.
  'QUERY_DEADLINE',
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
]);

/** The connection itself is gone (as opposed to a statement refused on a live one): PostgreSQL only. */
export function isConnectionLost(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code !== 'string') return false;
  return PG_CONNECTION_CODES.has(code) || code.startsWith('08') || code === '57P01' || code === '57P02' || code === '57P03';
}

export function classifyDbError(err: unknown): DbErrorKind {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code !== 'string') return 'other';
  if (code.startsWith('SQLITE_')) {
    if (code.startsWith('SQLITE_CONSTRAINT')) return 'constraint';
    if (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED')) return 'busy';
    if (/^SQLITE_(FULL|READONLY|IOERR|CANTOPEN|CORRUPT|NOTADB)/.test(code)) return 'storage';
    return 'database';
  }
  if (PG_CONNECTION_CODES.has(code)) return 'unavailable';
  // A PostgreSQL SQLSTATE: five characters, the first two the class.
  if (!/^[0-9A-Z]{5}$/.test(code) || (err as { name?: unknown }).name !== 'PostgresError') return 'other';
  const cls = code.slice(0, 2);
  if (cls === '23') return 'constraint';
  if (code === '40001' || code === '40P01' || code === '55P03') return 'busy';
  // disk_full; io_error / data_corrupted / index_corrupted (class 58 system errors, XX001, XX002).
  if (code === '53100' || cls === '58' || code === 'XX001' || code === 'XX002') return 'storage';
  // 08: connection exceptions; 57P01-57P03: admin/crash shutdown, cannot connect now; 57014: statement timeout;
  // 25006: a read-only transaction (we reached a standby: a failover is under way); 53300: too many connections.
  if (cls === '08' || code === '57P01' || code === '57P02' || code === '57P03' || code === '57014' || code === '25006' || code === '53300') {
    return 'unavailable';
  }
  return 'database';
}

/** A failure of the database itself (the breaker counts it), as opposed to the write's own mistake. */
export const isDependencyFailure = (err: unknown) => {
  const kind = classifyDbError(err);
  return kind !== 'constraint' && kind !== 'other';
};

/** Words for an operator (logs, read-only reason) about a storage error. */
export function storageWords(err: unknown): string {
  const code = String((err as { code?: unknown }).code);
  if (code.startsWith('SQLITE_FULL') || code === '53100') return 'the disk is full';
  if (code.startsWith('SQLITE_READONLY')) return 'the database is read-only';
  return `the database cannot write (${code})`;
}
