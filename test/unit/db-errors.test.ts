/** The one table of database error meanings (store/errors.ts), for both dialects' codes. */
import { describe, expect, it } from 'vitest';
import { classifyDbError, isConnectionLost, isDependencyFailure, storageWords } from '../../src/store/errors.js';

const pg = (code: string) => Object.assign(new Error(code), { name: 'PostgresError', code });
const sqlite = (code: string) => Object.assign(new Error(code), { code });

describe('classifyDbError', () => {
  it.each([
    [sqlite('SQLITE_CONSTRAINT_UNIQUE'), 'constraint'],
    [sqlite('SQLITE_BUSY'), 'busy'],
    [sqlite('SQLITE_FULL'), 'storage'],
    [sqlite('SQLITE_IOERR_WRITE'), 'storage'],
    [sqlite('SQLITE_READONLY'), 'storage'],
    [sqlite('SQLITE_ERROR'), 'database'],
    [pg('23505'), 'constraint'],
    [pg('23503'), 'constraint'],
    [pg('40001'), 'busy'],
    [pg('40P01'), 'busy'],
    [pg('53100'), 'storage'],
    [pg('58030'), 'storage'],
    [pg('25006'), 'unavailable'],
    [pg('57P01'), 'unavailable'],
    [pg('57014'), 'unavailable'],
    [pg('08006'), 'unavailable'],
    [pg('42P01'), 'database'],
    [Object.assign(new Error('gone'), { code: 'CONNECTION_CLOSED' }), 'unavailable'],
    [Object.assign(new Error('refused'), { code: 'ECONNREFUSED' }), 'unavailable'],
    // A five-character code that is not from PostgreSQL is not read as a SQLSTATE.
    [Object.assign(new Error('x'), { code: '23505' }), 'other'],
    [new Error('plain'), 'other'],
    [null, 'other'],
  ] as const)('%s → %s', (err, kind) => {
    expect(classifyDbError(err)).toBe(kind);
  });

  it('counts everything but the write’s own mistakes as a failing dependency', () => {
    expect(isDependencyFailure(pg('23505'))).toBe(false);
    expect(isDependencyFailure(new Error('plain'))).toBe(false);
    expect(isDependencyFailure(pg('57P01'))).toBe(true);
    expect(isDependencyFailure(sqlite('SQLITE_BUSY'))).toBe(true);
  });

  it('tells a lost connection from a statement refused on a live one', () => {
    expect(isConnectionLost(pg('57P01'))).toBe(true);
    expect(isConnectionLost(Object.assign(new Error('x'), { code: 'CONNECTION_DESTROYED' }))).toBe(true);
    expect(isConnectionLost(pg('25006'))).toBe(false);
    expect(isConnectionLost(pg('57014'))).toBe(false);
  });

  it('says what a storage error means', () => {
    expect(storageWords(pg('53100'))).toBe('the disk is full');
    expect(storageWords(sqlite('SQLITE_FULL'))).toBe('the disk is full');
    expect(storageWords(sqlite('SQLITE_READONLY'))).toBe('the database is read-only');
  });
});
