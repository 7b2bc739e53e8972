/**
 * A seeded dataset on PostgreSQL, for the benchmarks that compare the two
 * databases: a throwaway server (test/helpers/postgres.ts) with durable
 * settings, the schema made by Starling's own migrations, and every row of a
 * `starling seed` SQLite file copied in table by table, so both databases hold
 * the same accounts, posts, follows, feeds and tokens.
 *
 * The schema is portable by design (0001-core: bigint ids, smallint booleans,
 * text times), so the copy is generic: PostgreSQL's tables and columns drive
 * it, and SQLite's FTS5 tables, which PostgreSQL replaces by an index
 * (0006-search-postgres), are not copied. Ids are read as BigInts (19 digits
 * do not fit a double). The copy becomes a template; each run gets a fresh
 * database cloned from it (`fresh()`), as the SQLite runs restore the file.
 */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import SQLite from 'better-sqlite3';
import postgres from 'postgres';
import { openPostgres, migrateToLatest } from '../src/store/db.js';
import { startTempPostgres } from '../test/helpers/postgres.js';
import { log } from './lib.js';

export interface BenchPostgres {
  /** A new database cloned from the copied dataset; its URL. */
  fresh(): Promise<string>;
  stop(): Promise<void>;
}

const TEMPLATE = 'starling_dataset';
/** Parameters per INSERT (PostgreSQL takes at most 65,535 in one statement). */
const PARAMS = 60_000;

/**
 * Starts PostgreSQL on `cpus` (taskset, with every process it forks; null: anywhere) and copies the SQLite
 * dataset in `dataDir` into it. Durable like a real primary: fsync and synchronous commit on; planned like the
 * cluster's (`random_page_cost`, src/cluster/configs.ts).
 */
export async function postgresFromDataset(dataDir: string, cpus: string | null): Promise<BenchPostgres> {
  const pg = await startTempPostgres({
    settings: { fsync: 'on', synchronous_commit: 'on', full_page_writes: 'on', shared_buffers: '256MB', max_connections: '200', random_page_cost: '1.1' },
  });
  try {
    // Backends are forked by the postmaster and inherit its CPUs; the processes it has already forked are pinned too.
    if (cpus) execFileSync('sh', ['-c', `taskset -a -cp ${cpus} ${pg.pid}; for c in $(pgrep -P ${pg.pid}); do taskset -a -cp ${cpus} $c; done`], { stdio: 'ignore' });
    const admin = postgres(pg.url, { max: 1, onnotice: () => {} });
    await admin.unsafe(`CREATE DATABASE ${TEMPLATE}`);
    await admin.end();
    const started = performance.now();
    const rows = await copy(join(dataDir, 'starling.sqlite'), pg.urlFor(TEMPLATE));
    log(`PostgreSQL (pid ${pg.pid}${cpus ? `, CPU ${cpus}` : ''}): dataset copied, ${rows.toLocaleString('en')} rows in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  } catch (err) {
    await pg.stop();
    throw err;
  }
  let n = 0;
  return {
    async fresh() {
      const name = `run_${++n}`;
      const admin = postgres(pg.url, { max: 1, onnotice: () => {} });
      try {
        // The last run's clone goes first: its autovacuum (a run writes thousands of posts and feed rows) would
        // otherwise share the database's CPU with this run's unloaded phase.
        if (n > 1) await admin.unsafe(`DROP DATABASE IF EXISTS run_${n - 1} WITH (FORCE)`);
        await admin.unsafe(`CREATE DATABASE ${name} TEMPLATE ${TEMPLATE} STRATEGY FILE_COPY`);
      } finally {
        await admin.end();
      }
      return pg.urlFor(name);
    },
    stop: () => pg.stop(),
  };
}

/** Migrates the database at `url` and copies every row of the SQLite file into it; returns the rows copied. */
async function copy(file: string, url: string): Promise<number> {
  const target = openPostgres(url);
  try {
    await migrateToLatest(target.db);
  } finally {
    await target.close();
  }
  const source = new SQLite(file, { readonly: true, fileMustExist: true });
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  let total = 0;
  try {
    const present = new Set((source.prepare(`SELECT name FROM sqlite_master WHERE type = 'table'`).all() as { name: string }[]).map((t) => t.name));
    const columns = await sql<{ table_name: string; column_name: string }[]>`
      SELECT table_name, column_name FROM information_schema.columns
      WHERE table_schema = 'public' AND is_generated = 'NEVER' AND table_name NOT LIKE 'kysely_%'
      ORDER BY table_name, ordinal_position`;
    const tables = new Map<string, string[]>();
    for (const c of columns) tables.set(c.table_name, [...(tables.get(c.table_name) ?? []), c.column_name]);
    // Foreign keys are not checked during the copy (the source's rows are consistent; copying in dependency
    // order would gain nothing): a superuser's session in replica mode fires no triggers, FK checks included.
    await sql`SET session_replication_role = replica`;
    for (const [table, cols] of tables) {
      if (!present.has(table)) continue;
      const read = source.prepare(`SELECT ${cols.map((c) => `"${c}"`).join(', ')} FROM "${table}"`).safeIntegers(true);
      const perInsert = Math.floor(PARAMS / cols.length);
      let batch: Record<string, unknown>[] = [];
      const flush = async () => {
        if (!batch.length) return;
        await sql`INSERT INTO ${sql(table)} ${sql(batch, ...cols)}`;
        total += batch.length;
        batch = [];
      };
      for (const row of read.iterate() as Iterable<Record<string, unknown>>) {
        for (const c of cols) if (typeof row[c] === 'bigint') row[c] = String(row[c]);
        batch.push(row);
        if (batch.length >= perInsert) await flush();
      }
      await flush();
    }
    // Statistics, as after any bulk load (the seeder ends with ANALYZE too), and the visibility map, so autovacuum
    // does not pick the fresh tables up during a run.
    await sql`VACUUM (ANALYZE)`;
    return total;
  } finally {
    source.close();
    await sql.end();
  }
}
