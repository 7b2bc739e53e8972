/**
 * Operations: probe results, component states and daily uptime, incidents
 * with their updates, scheduled maintenances, status-page subscribers, and
 * the readiness heartbeat. Frozen once released.
 */
import { SqliteAdapter, type Kysely } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  const s = db.schema;
  await s
    .createTable('ops_heartbeat')
    .addColumn('node_id', 'integer', (c) => c.primaryKey())
    .addColumn('beat_at', 'text', (c) => c.notNull())
    .execute();

  await s
    .createTable('probe_results')
    .addColumn('id', 'bigint', (c) => c.primaryKey())
    .addColumn('probe', 'text', (c) => c.notNull())
    .addColumn('ok', 'smallint', (c) => c.notNull())
    // PostgreSQL's `real` is 4 bytes; SQLite's REAL is a double, and so is what the code stores.
    .addColumn('latency_ms', db.getExecutor().adapter instanceof SqliteAdapter ? 'real' : 'double precision')
    .addColumn('detail', 'text', (c) => c.notNull().defaultTo(''))
    .addColumn('node_id', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('created_at', 'text', (c) => c.notNull())
    .execute();
  await s.createIndex('probe_results_probe_id').on('probe_results').columns(['probe', 'id']).execute();

  await s
    .createTable('component_status')
    .addColumn('component', 'text', (c) => c.primaryKey())
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('since', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .addColumn('reason', 'text')
    .execute();

  await s
    .createTable('component_daily')
    .addColumn('component', 'text', (c) => c.notNull())
    .addColumn('day', 'text', (c) => c.notNull())
    .addColumn('samples', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('ok_samples', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('worst_status', 'text', (c) => c.notNull().defaultTo('operational'))
    .addPrimaryKeyConstraint('component_daily_pk', ['component', 'day'])
    .execute();

  await s
    .createTable('incidents')
    .addColumn('id', 'bigint', (c) => c.primaryKey())
    .addColumn('title', 'text', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('impact', 'text', (c) => c.notNull())
    .addColumn('source', 'text', (c) => c.notNull())
    .addColumn('components', 'text', (c) => c.notNull().defaultTo('[]'))
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .addColumn('resolved_at', 'text')
    .execute();
  await s.createIndex('incidents_resolved').on('incidents').columns(['resolved_at', 'id']).execute();

  await s
    .createTable('incident_updates')
    .addColumn('id', 'bigint', (c) => c.primaryKey())
    .addColumn('incident_id', 'bigint', (c) => c.notNull().references('incidents.id').onDelete('cascade'))
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('body', 'text', (c) => c.notNull())
    .addColumn('author', 'text', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .execute();
  await s.createIndex('incident_updates_incident').on('incident_updates').columns(['incident_id', 'id']).execute();

  await s
    .createTable('maintenances')
    .addColumn('id', 'bigint', (c) => c.primaryKey())
    .addColumn('title', 'text', (c) => c.notNull())
    .addColumn('body', 'text', (c) => c.notNull().defaultTo(''))
    .addColumn('components', 'text', (c) => c.notNull().defaultTo('[]'))
    .addColumn('starts_at', 'text', (c) => c.notNull())
    .addColumn('ends_at', 'text', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('cancelled_at', 'text')
    .execute();

  await s
    .createTable('status_subscribers')
    .addColumn('id', 'bigint', (c) => c.primaryKey())
    .addColumn('url', 'text', (c) => c.notNull().unique())
    .addColumn('secret', 'text', (c) => c.notNull())
    .addColumn('confirm_token_hash', 'text', (c) => c.notNull())
    .addColumn('confirmed_at', 'text')
    .addColumn('created_at', 'text', (c) => c.notNull())
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  for (const t of ['status_subscribers', 'maintenances', 'incident_updates', 'incidents', 'component_daily', 'component_status', 'probe_results', 'ops_heartbeat']) {
    await db.schema.dropTable(t).ifExists().execute();
  }
}
