/**
 * The `starling` command. Each subcommand is a small function; options are
 * parsed with node:util's parseArgs, so unknown flags are errors, not silently ignored.
 */
import { setFlag } from '../ops/read-only.js';
import { parseArgs } from 'node:util';
import { randomBytes } from 'node:crypto';
import { loadConfig, type Config } from '../config.js';
import { startServer, openContext, createLogger } from '../server.js';
import { registerAccount } from '../services/accounts.js';
import { rebuildFeed } from '../services/feeds.js';
import { openDatabase, migrateToLatest } from '../store/db.js';
import { publishFromStorage } from '../ops/publish.js';
import { seedCommand } from './seed.js';
import { incidentCommand, INCIDENT_USAGE } from './incident.js';
import { buildRules } from '../ops/rules.js';
import { clusterCommand, CLUSTER_USAGE } from './cluster.js';
import { BACKUP_USAGE, backupCommand, verifyBackupCommand, restoreCommand, drillCommand } from './backup.js';
import { PG_USAGE, pgCommand } from './pitr.js';

const USAGE = `Usage: starling <command> [options]

Commands:
  serve                 Run a Starling node (the default for npm start)
      --port N          Port to listen on (env PORT, default 3000)
      --host ADDR       Address to listen on (env HOST, default 127.0.0.1)
      --data-dir DIR    Where data lives (env STARLING_DATA_DIR, default ./data)
      --config FILE     JSON config file (env STARLING_CONFIG, default ./starling.json if present)
  migrate               Create or update the database schema, then exit
  admin create          Create an administrator account
      --username NAME --email ADDRESS [--password PW]  (a password is generated and printed if omitted)
  jobs drain            Run every due background job, then exit
  feeds rebuild         Rebuild home feeds from statuses and follows
      [--account ID]    Only this account's feed (default: every account)
  seed                  Fill an empty database with a realistic demo/benchmark dataset
      --accounts N --posts M [--feed-depth K] [--seed S] [--force] [--json] [--data-dir DIR]
                        Power-law follow graph, replies, reblogs, hashtags, favourites; every
                        user's password is "starling-seed-password" and each account has the
                        token "bench-token-<accountId>". --force replaces a non-empty database.
  ops rules             Print Prometheus recording and alerting rules for the configured SLOs (YAML)
      [--config FILE] [--job NAME] [--runbook-url URL]
                        NAME: the scrape job of the Starling nodes (default starling);
                        URL: where docs/OPERATIONS.md is published (alerts link to its sections)
  status publish        Write a complete static copy of the status page (index.html, feed.atom, api/*.json)
      --to DIR [--from auto|snapshot|database]
                        auto (default): the snapshot a running node keeps in the data folder when it is
                        fresh, else the database, else the snapshot however old (works with the database
                        down), else a page that says the status is unknown
  maintenance on|off    Force read-only mode (writes get 503, reads go on) or end it [--reason TEXT]
${INCIDENT_USAGE}${CLUSTER_USAGE}${BACKUP_USAGE}${PG_USAGE}  help                  Show this text
`;

const COMMON = {
  port: { type: 'string' },
  host: { type: 'string' },
  'data-dir': { type: 'string' },
  config: { type: 'string' },
  'node-id': { type: 'string' },
} as const;

function configFrom(values: Record<string, string | boolean | undefined>): Config {
  return loadConfig({
    file: values.config as string | undefined,
    overrides: { port: values.port, host: values.host, dataDir: values['data-dir'], nodeId: values['node-id'] },
  });
}

/**
 * A one-shot command's config. It writes to the database a running node writes to, and that node may hold the write
 * lock for a moment (a group commit whose fsync a busy disk slows): a server keeps its busy timeout short because its
 * requests wait while better-sqlite3 waits, but here nothing waits behind the command, so it waits for the lock
 * rather than failing an operator's `incident create` with SQLITE_BUSY.
 */
const TOOL_BUSY_TIMEOUT_MS = 10_000;
function toolConfigFrom(values: Record<string, string | boolean | undefined>): Config {
  const config = configFrom(values);
  return { ...config, writes: { ...config.writes, busyTimeoutMs: Math.max(config.writes.busyTimeoutMs, TOOL_BUSY_TIMEOUT_MS) } };
}

export async function main(argv: string[]): Promise<number | void> {
  const [command = 'help', ...rest] = argv;
  switch (command) {
    case 'serve':
      return serve(rest);
    case 'migrate': {
      const { values } = parseArgs({ args: rest, options: COMMON, strict: true });
      const config = toolConfigFrom(values);
      const database = openDatabase(config);
      const { applied } = await migrateToLatest(database.db);
      await database.close();
      console.log(applied.length ? `applied migrations: ${applied.join(', ')}` : 'database is up to date');
      return 0;
    }
    case 'admin':
      return admin(rest);
    case 'jobs': {
      if (rest[0] !== 'drain') throw new Error('usage: starling jobs drain');
      const { values } = parseArgs({ args: rest.slice(1), options: COMMON, strict: true });
      const config = toolConfigFrom(values);
      const { worker, database } = await openContext(config, createLogger({ ...config, logLevel: 'warn' }));
      const n = await worker.drain();
      await worker.stop();
      await database.close();
      console.log(`ran ${n} jobs`);
      return 0;
    }
    case 'feeds':
      return feeds(rest);
    case 'seed':
      return seedCommand(rest);
    case 'incident':
      return incidentCommand(rest, toolConfigFrom);
    case 'ops':
      return ops(rest);
    case 'cluster':
      return clusterCommand(rest);
    case 'status':
      return statusCommand(rest);
    case 'maintenance': {
      const mode = rest[0];
      if (mode !== 'on' && mode !== 'off') throw new Error('usage: starling maintenance on|off [--reason TEXT] [--data-dir DIR]');
      const { values } = parseArgs({ args: rest.slice(1), options: { ...COMMON, reason: { type: 'string' } }, strict: true });
      const config = configFrom(values);
      // Only a file in the data folder: works with the database full, locked or gone; a running node reads it within seconds.
      await setFlag(config.dataDir, mode === 'on', (values.reason as string | undefined) ?? 'maintenance');
      console.log(
        mode === 'on'
          ? `maintenance mode on: nodes using ${config.dataDir} refuse writes (503) and keep serving reads within ${config.readOnly.flagPollSeconds} s`
          : `maintenance mode off: writes resume within ${config.readOnly.flagPollSeconds} s`,
      );
      return 0;
    }
    case 'backup':
      return backupCommand(rest);
    case 'verify-backup':
      return verifyBackupCommand(rest);
    case 'restore':
      return restoreCommand(rest);
    case 'drill':
      return drillCommand(rest);
    case 'pg':
      return pgCommand(rest);
    case 'help':
    case '--help':
    case '-h':
      console.log(USAGE);
      return 0;
    default:
      console.error(`unknown command: ${command}\n\n${USAGE}`);
      return 2;
  }
}

async function serve(args: string[]): Promise<void> {
  const { values } = parseArgs({ args, options: COMMON, strict: true });
  const config = configFrom(values);
  const server = await startServer(config);
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    server.ctx.log.info({ signal }, 'shutting down');
    // A bounded drain (server.shutdown: unready, streams told to reconnect, in-flight requests finish),
    // then the process exits even if something hangs.
    const timer = setTimeout(() => {
      server.ctx.log.error({ timeoutSeconds: config.shutdown.timeoutSeconds }, 'shutdown timed out; exiting');
      process.exit(1);
    }, config.shutdown.timeoutSeconds * 1000);
    timer.unref();
    server.shutdown().then(
      () => {
        server.ctx.log.info('shut down cleanly');
        process.exit(0);
      },
      (err) => {
        server.ctx.log.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
}

async function admin(args: string[]): Promise<number> {
  if (args[0] !== 'create') throw new Error('usage: starling admin create --username NAME --email ADDRESS [--password PW]');
  const { values } = parseArgs({
    args: args.slice(1),
    options: { ...COMMON, username: { type: 'string' }, email: { type: 'string' }, password: { type: 'string' } },
    strict: true,
  });
  if (!values.username || !values.email) throw new Error('--username and --email are required');
  const config = toolConfigFrom(values);
  const { ctx, database, worker } = await openContext(config, createLogger({ ...config, logLevel: 'warn' }));
  try {
    const password = values.password ?? randomBytes(12).toString('base64url');
    const account = await registerAccount(ctx, { username: values.username, email: values.email, password, role: 'admin', allowReserved: true });
    console.log(`created admin @${account.username} (id ${account.id})`);
    if (!values.password) console.log(`password: ${password}`);
    return 0;
  } finally {
    await worker.stop();
    await database.close();
  }
}

async function feeds(args: string[]): Promise<number> {
  if (args[0] !== 'rebuild') throw new Error('usage: starling feeds rebuild [--account ID]');
  const { values } = parseArgs({ args: args.slice(1), options: { ...COMMON, account: { type: 'string' } }, strict: true });
  const config = toolConfigFrom(values);
  const { ctx, database, worker } = await openContext(config, createLogger({ ...config, logLevel: 'warn' }));
  try {
    const ids = values.account ? [values.account] : (await ctx.db.selectFrom('accounts').select('id').orderBy('id').execute()).map((r) => r.id);
    let done = 0;
    for (const id of ids) {
      await rebuildFeed(ctx, id);
      done++;
      // Progress for long runs: a line every 1,000 accounts and at the end.
      if (done % 1000 === 0 || done === ids.length) console.log(`rebuilt ${done}/${ids.length} feeds`);
    }
    return 0;
  } finally {
    await worker.stop();
    await database.close();
  }
}

function ops(args: string[]): number {
  if (args[0] !== 'rules') throw new Error('usage: starling ops rules [--config FILE] [--job NAME] [--runbook-url URL]');
  const { values } = parseArgs({ args: args.slice(1), options: { ...COMMON, job: { type: 'string' }, 'runbook-url': { type: 'string' } }, strict: true });
  const config = configFrom(values);
  const { yaml, warnings } = buildRules(config.ops.slo, { job: values.job, runbookUrl: values['runbook-url'] });
  for (const w of warnings) console.error(`warning: ${w}`);
  process.stdout.write(yaml);
  return 0;
}

async function statusCommand(args: string[]): Promise<number> {
  const usage = 'usage: starling status publish --to DIR [--from auto|snapshot|database]';
  if (args[0] !== 'publish') throw new Error(usage);
  const { values } = parseArgs({ args: args.slice(1), options: { ...COMMON, to: { type: 'string' }, from: { type: 'string' } }, strict: true });
  if (!values.to) throw new Error(`--to DIR is required; ${usage}`);
  const from = values.from ?? 'auto';
  if (from !== 'auto' && from !== 'snapshot' && from !== 'database') throw new Error(usage);
  const config = configFrom(values);
  const result = await publishFromStorage(config, { to: values.to, from });
  for (const note of result.notes) console.error(`note: ${note}`);
  const s = result.data.summary;
  const state = s.freshness.stale ? `unknown${s.freshness.stale_since ? ` since ${s.freshness.stale_since}` : ''} (stale data)` : s.status.description;
  console.log(`published the status page to ${result.dir} from ${result.from === 'none' ? 'nothing (no snapshot, no database)' : `the ${result.from}`}: ${state}`);
  return 0;
}
