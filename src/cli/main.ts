/**
 * The `starling` command. Each subcommand is a small function; options are
 * parsed with node:util's parseArgs, so unknown flags are errors, not silently ignored.
 */
import { parseArgs } from 'node:util';
import { randomBytes } from 'node:crypto';
import { loadConfig, type Config } from '../config.js';
import { startServer, openContext, createLogger } from '../server.js';
import { registerAccount } from '../services/accounts.js';
import { rebuildFeed } from '../services/feeds.js';
import { openSqlite, migrateToLatest } from '../store/db.js';

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
  help                  Show this text
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

export async function main(argv: string[]): Promise<number | void> {
  const [command = 'help', ...rest] = argv;
  switch (command) {
    case 'serve':
      return serve(rest);
    case 'migrate': {
      const { values } = parseArgs({ args: rest, options: COMMON, strict: true });
      const config = configFrom(values);
      const database = openSqlite(config.databaseFile);
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
      const config = configFrom(values);
      const { worker, database } = await openContext(config, createLogger({ ...config, logLevel: 'warn' }));
      const n = await worker.drain();
      await worker.stop();
      await database.close();
      console.log(`ran ${n} jobs`);
      return 0;
    }
    case 'feeds':
      return feeds(rest);
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
    // A bounded drain: in-flight requests finish, then the process exits even if something hangs.
    const timer = setTimeout(() => process.exit(1), 10_000);
    timer.unref();
    server.close().then(
      () => process.exit(0),
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
  const config = configFrom(values);
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
  const config = configFrom(values);
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
