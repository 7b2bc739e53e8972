import { defineConfig } from 'vitest/config';
import { postgresMissing } from './test/helpers/postgres.js';

/**
 * Two projects: `sqlite` runs every test; `postgres` runs the storage and API
 * tests again against a throwaway PostgreSQL (test/helpers/postgres-setup.ts),
 * with STARLING_TEST_DB=postgres, which test/helpers/server.ts honours.
 * `npx vitest run --project sqlite` (or postgres) runs one.
 *
 * Left out of the postgres project, because what they test is SQLite itself:
 * durability.test.ts (reads the SQLite file after a kill), overload.test.ts
 * (SQLITE_BUSY from a second connection, integrity_check), ops-faults.test.ts
 * and status-page.test.ts (close the SQLite handle to fake an outage; a full
 * disk on tmpfs), seed.test.ts (the seeder writes SQLite files directly).
 * Single tests that need the SQLite handle skip on PostgreSQL in place, saying so.
 */
const SQLITE_ONLY = [
  'test/integration/durability.test.ts',
  'test/integration/overload.test.ts',
  'test/integration/ops-faults.test.ts',
  'test/integration/status-page.test.ts',
  'test/integration/seed.test.ts',
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
