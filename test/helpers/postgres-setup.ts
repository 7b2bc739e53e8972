/**
 * vitest globalSetup of the `postgres` project: one throwaway PostgreSQL for
 * the whole run, with a migrated template database that every test server
 * clones (test/helpers/postgres.ts). Stopped by PID and its folder removed at
 * the end, also when tests failed.
 */
import type { TestProject } from 'vitest/node';
import postgres from 'postgres';
import { Kysely } from 'kysely';
import { PostgresJSDialect } from 'kysely-postgres-js';
import { startTempPostgres, TEMPLATE_DATABASE, type TempPostgres } from './postgres.js';
import { migrateToLatest } from '../../src/store/db.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Superuser URL of the run's PostgreSQL (the `postgres` database). */
    starlingPostgresUrl: string;
  }
}

let server: TempPostgres | null = null;

export async function setup(project: TestProject): Promise<void> {
  server = await startTempPostgres();
  const admin = postgres(server.url, { max: 1, onnotice: () => {} });
  try {
    await admin.unsafe(`CREATE DATABASE ${TEMPLATE_DATABASE}`);
  } finally {
    await admin.end();
  }
  const db = new Kysely<any>({ dialect: new PostgresJSDialect({ postgres: postgres(server.urlFor(TEMPLATE_DATABASE), { max: 1, onnotice: () => {} }) }) });
  try {
    await migrateToLatest(db);
  } finally {
    // No connection may stay on a template that is cloned.
    await db.destroy();
  }
  project.provide('starlingPostgresUrl', server.url);
  process.env.STARLING_TEST_PG_URL = server.url;
}

export async function teardown(): Promise<void> {
  await server?.stop();
  server = null;
}
