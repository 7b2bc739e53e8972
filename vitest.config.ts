import { defineConfig } from 'vitest/config';
import { postgresMissing } from './test/helpers/postgres.js';

/**
 * Two projects: `sqlite` runs every test; `postgres` runs the storage and API
 * tests again against a throwaway PostgreSQL (test/helpers/postgres-setup.ts),
 * with STARLING_TEST_DB=postgres, which test/helpers/server.ts honours.
 * `npx vitest run --project sqlite` (or postgres) runs one.
 *
 * Left out of the postgres project, because what they test is SQLite itself:
 * durability.test.ts (reads the SQLite file after a kill), ops-faults.test.ts
 * (closes the SQLite handle to fake an outage), seed.test.ts (the seeder
 * writes SQLite files directly). In overload.test.ts (a full disk on tmpfs,
 * SQLITE_BUSY from a second connection) and status-page.test.ts (outages made
 * by closing the SQLite handle) those parts skip on PostgreSQL in place
 * (skipIf(onPostgres)), and the rest runs on both.
 */
const SQLITE_ONLY = [
  'test/integration/durability.test.ts',
  'test/integration/ops-faults.test.ts',
  'test/integration/seed.test.ts',
  // Cluster tests bring their own databases (Patroni's PostgreSQL, or one SQLite file shared by two nodes) and
  // NATS: running them twice would only double their minutes.
  'test/integration/cluster-up.test.ts',
  'test/integration/cluster-streaming.test.ts',
  'test/integration/nats-bus.test.ts',
  // Backups, restores and drills of the embedded SQLite file (PostgreSQL's are its own tools').
  'test/integration/backup-load.test.ts',
  'test/integration/backup-cli.test.ts',
  'test/integration/backup-drill.test.ts',
  // Point-in-time recovery brings its own PostgreSQL (WAL archiving on): once is enough.
  'test/integration/pitr.test.ts',
  'test/integration/pg-retention.test.ts',
  // The wait bound is the HTTP layer's, the same on either database.
  'test/integration/overload-wait.test.ts',
];

const missing = postgresMissing();
// On CI the PostgreSQL tests must run: without the binaries the postgres project starts, and its setup fails.
const withPostgres = missing === null || process.env.CI === 'true';
if (!withPostgres) console.warn(`[vitest] skipping the postgres project: ${missing}`);

export default defineConfig({
  test: {
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Integration tests start real servers and child processes; two cores, so keep the pool small.
    pool: 'forks',
    maxWorkers: 2,
    projects: [
      {
        extends: true,
        test: { name: 'sqlite', include: ['test/**/*.test.ts'], globalSetup: ['test/helpers/global-setup.ts'] },
      },
      ...(withPostgres
        ? [
            {
              extends: true as const,
              test: {
                name: 'postgres',
                include: ['test/integration/**/*.test.ts', 'test/unit/writer.test.ts'],
                exclude: SQLITE_ONLY,
                env: { STARLING_TEST_DB: 'postgres' },
                globalSetup: ['test/helpers/global-setup.ts', 'test/helpers/postgres-setup.ts'],
              },
            },
          ]
        : []),
    ],
  },
});
