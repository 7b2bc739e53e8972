/**
 * WAL checkpoints on their own thread (src/store/checkpointer.ts): what the
 * serving connection commits reaches the database file without that
 * connection ever checkpointing, the thread's connection is closed with the
 * database, and a failing round is reported instead of thrown.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { copyFileSync, mkdtempSync, readdirSync, readlinkSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import SQLite from 'better-sqlite3';
import { openSqlite } from '../../src/store/db.js';
import { BACKSTOP_PAGES, startCheckpointer } from '../../src/store/checkpointer.js';
import { waitFor } from '../../src/cluster/processes.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'starling-test-checkpointer-'));
  dirs.push(d);
  return d;
}

/** This process's open files under `dir` (Linux). */
const openFilesUnder = (dir: string) =>
  readdirSync('/proc/self/fd')
    .map((fd) => {
      try {
        return readlinkSync(`/proc/self/fd/${fd}`);
      } catch {
        return '';
      }
    })
    .filter((f) => f.startsWith(dir));

/** Rows of `t` in the database file alone, as a copy of it without its WAL sees them. */
function rowsInMainFile(file: string, dir: string): number {
  const copy = join(dir, 'copy.sqlite');
  copyFileSync(file, copy);
  const db = new SQLite(copy, { readonly: true });
  try {
    return (db.prepare('SELECT count(*) AS n FROM t').get() as { n: number }).n;
  } finally {
    db.close();
  }
}

describe('background WAL checkpoints', () => {
  it('copies committed pages into the database file while the serving connection only appends to the WAL', async () => {
    const dir = tempDir();
    const file = join(dir, 'starling.sqlite');
    const errors: unknown[] = [];
    const database = openSqlite(file, undefined, { backgroundCheckpoints: { intervalMs: 20, onError: (e) => errors.push(e) } });
    try {
      const sqlite = database.sqlite;
      // The serving connection checkpoints only as a backstop, far above SQLite's default 1,000 pages.
      expect(Number(sqlite.pragma('wal_autocheckpoint', { simple: true }))).toBe(BACKSTOP_PAGES);
      sqlite.exec('CREATE TABLE t (x TEXT)');
      const insert = sqlite.prepare('INSERT INTO t VALUES (?)');
      for (let i = 0; i < 50; i++) insert.run('x'.repeat(1000));
      // 50 small commits stay far below any automatic checkpoint: only the thread can have put them in the file.
      await waitFor('the rows to reach the database file', () => rowsInMainFile(file, dir) === 50, 10_000, 20);
      // The round is counted when its checkpoint returns, a moment after its pages are in the file (CI once read
      // the file in between).
      await waitFor('the round that copied them to be counted', () => database.checkpoints!().rounds > 0, 10_000, 20);
      const stats = database.checkpoints!();
      expect(stats.failed).toBe(0);
      expect(errors).toEqual([]);
      // A fully checkpointed WAL lets the next write start it over instead of growing it: 3,000 commits of two
      // pages each (24 MB of frames), with a pause now and then as a server's writer has, leave a WAL file a
      // fraction of that, and smaller than the backstop's threshold: the thread's rounds did it.
      for (let i = 0; i < 3000; i++) {
        insert.run('z'.repeat(3000));
        if (i % 200 === 199) await new Promise((r) => setTimeout(r, 50));
      }
      expect(statSync(`${file}-wal`).size).toBeLessThan(4 * 1024 * 1024);
    } finally {
      await database.close();
    }
    // Both connections are closed: nothing in this process still has the files open.
    expect(openFilesUnder(dir)).toEqual([]);
  });

  it('reports a round that fails instead of throwing, and keeps trying', async () => {
    const dir = tempDir();
    const errors: { message: string }[] = [];
    const checkpointer = startCheckpointer(join(dir, 'missing.sqlite'), { intervalMs: 10, onError: (e) => errors.push(e) });
    try {
      await waitFor('two failed rounds', () => checkpointer.stats().failed >= 2, 10_000, 20);
      expect(errors[0].message).toMatch(/unable to open database file|does not exist/);
    } finally {
      await checkpointer.stop();
    }
  });
});
