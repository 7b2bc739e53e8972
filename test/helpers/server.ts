/**
 * Test servers: a real Starling on an ephemeral 127.0.0.1 port with its own
 * temporary data folder, either in this process or as a child process (for
 * tests that kill it). Every server a test starts, the test stops.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { createRestAPIClient, createOAuthAPIClient, type mastodon } from 'masto';
import { loadConfig, type Config } from '../../src/config.js';
import { startServer, type RunningServer } from '../../src/server.js';
import { testDatabaseFor } from './postgres.js';
import { waitFor } from '../../src/cluster/processes.js';

/**
 * True in the `postgres` test project (vitest.config.ts): every test server
 * then runs on a fresh PostgreSQL database instead of SQLite.
 */
export const onPostgres = process.env.STARLING_TEST_DB === 'postgres';

/**
 * The database a test server on this data folder uses: on PostgreSQL a fresh
 * database per folder (the same one again when a test restarts a server on the
 * same folder); on SQLite nothing to add (the file lives in the folder).
 */
export async function testDatabaseEnv(dataDir: string, opts: { migrated?: boolean } = {}): Promise<{ databaseUrl?: string }> {
  if (!onPostgres) return {};
  const admin = process.env.STARLING_TEST_PG_URL;
  if (!admin) throw new Error('STARLING_TEST_DB=postgres but no test PostgreSQL: run through vitest (test/helpers/postgres-setup.ts)');
  return { databaseUrl: await testDatabaseFor(dataDir, admin, opts) };
}

export function tempDir(prefix = 'starling-test-'): { path: string; remove(): void } {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

export interface TestServer extends RunningServer {
  dataDir: string;
  stop(): Promise<void>;
}

export async function startTestServer(overrides: Record<string, unknown> = {}, dataDir?: string): Promise<TestServer> {
  const dir = dataDir ? { path: dataDir, remove() {} } : tempDir();
  const config: Config = loadConfig({
    env: {},
    file: undefined,
    // Load shedding off unless a test asks for it: many servers share one busy test process (and CPU), and
    // event-loop delay caused by another test must not shed this one's requests (test/integration/overload.test.ts turns it on).
    overrides: {
      host: '127.0.0.1',
      port: 0,
      dataDir: dir.path,
      logLevel: process.env.STARLING_TEST_LOG_LEVEL ?? 'silent',
      rateLimit: { max: 0, windowSeconds: 60 },
      pressure: { enabled: false },
      ...(await testDatabaseEnv(dir.path)),
      ...overrides,
    },
  });
  const server = await startServer(config);
  return Object.assign(server, {
    dataDir: dir.path,
    async stop() {
      await server.close();
      dir.remove();
    },
  });
}

const ROOT = resolve(import.meta.dirname, '../..');

export interface ChildServer {
  url: string;
  pid: number;
  proc: ChildProcess;
  /** What the process printed up to and including the line saying where it listens. */
  startupLog: string;
  /** Sends a signal and waits for the process to exit. */
  kill(signal?: NodeJS.Signals): Promise<void>;
}

/** Starts `starling serve` as a child process and resolves once it logs where it listens. */
export async function startChildServer(dataDir: string, env: Record<string, string> = {}): Promise<ChildServer> {
  return startChild(dataDir, { ...(await childDatabaseEnv(dataDir)), ...env });
}

/**
 * Environment for a `starling` child process on this data folder: on PostgreSQL, STARLING_DATABASE_URL.
 * `migrated: false` gives an empty database the first time (as a new SQLite file is), for tests of `starling migrate`.
 */
export async function childDatabaseEnv(dataDir: string, opts: { migrated?: boolean } = {}): Promise<Record<string, string>> {
  const { databaseUrl } = await testDatabaseEnv(dataDir, opts);
  return databaseUrl ? { STARLING_DATABASE_URL: databaseUrl } : {};
}

function startChild(dataDir: string, env: Record<string, string>): Promise<ChildServer> {
  const proc = spawn(process.execPath, [join(ROOT, 'bin/starling.js'), 'serve', '--port', '0', '--host', '127.0.0.1', '--data-dir', dataDir], {
    cwd: ROOT,
    env: { PATH: process.env.PATH, STARLING_LOG_LEVEL: 'info', STARLING_RATE_LIMIT_MAX: '0', STARLING_PRESSURE_ENABLED: '0', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise<void>((res) => proc.once('exit', () => res()));
  return new Promise((resolvePromise, reject) => {
    let out = '';
    let err = '';
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`server did not start in time:\n${out}\n${err}`));
    }, 20_000);
    proc.stderr!.on('data', (d) => (err += d));
    proc.stdout!.on('data', (d) => {
      out += d;
      for (const line of out.split('\n')) {
        if (!line.includes('Starling listening on')) continue;
        try {
          const { url } = JSON.parse(line) as { url: string };
          clearTimeout(timer);
          // Keep draining the child's output (a full pipe would block it) without keeping it.
          proc.stdout!.removeAllListeners('data');
          proc.stderr!.removeAllListeners('data');
          proc.stdout!.resume();
          proc.stderr!.resume();
          resolvePromise({
            url,
            pid: proc.pid!,
            proc,
            startupLog: out,
            async kill(signal: NodeJS.Signals = 'SIGTERM') {
              if (proc.exitCode === null && proc.signalCode === null) process.kill(proc.pid!, signal);
              await exited;
            },
          });
          return;
        } catch {
          /* a partial line; wait for more */
        }
      }
    });
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`server exited with ${code} before listening:\n${out}\n${err}`));
    });
  });
}

export interface TestUser {
  id: string;
  username: string;
  token: string;
  client: mastodon.rest.Client;
}

let seq = 0;

/** Registers an app (as a client would), then an account through the API, and returns a client signed in as it. */
export async function createUser(baseUrl: string, name?: string, opts: { scopes?: string } = {}): Promise<TestUser> {
  const username = name ?? `user${process.pid}_${++seq}`;
  const anon = createRestAPIClient({ url: baseUrl });
  const scopes = opts.scopes ?? 'read write follow push';
  const app = await anon.v1.apps.create({ clientName: 'starling-tests', redirectUris: 'urn:ietf:wg:oauth:2.0:oob', scopes });
  const oauth = createOAuthAPIClient({ url: baseUrl });
  const appToken = await oauth.token.create({ grantType: 'client_credentials', clientId: app.clientId!, clientSecret: app.clientSecret!, redirectUri: 'urn:ietf:wg:oauth:2.0:oob', scope: scopes });
  const appClient = createRestAPIClient({ url: baseUrl, accessToken: appToken.accessToken });
  const token = await appClient.v1.accounts.create({ username, email: `${username}@example.test`, password: 'correct horse battery', agreement: true, locale: 'en' });
  const client = createRestAPIClient({ url: baseUrl, accessToken: token.accessToken });
  const me = await client.v1.accounts.verifyCredentials();
  return { id: me.id, username, token: token.accessToken, client };
}

/** Polls until `check` returns a truthy value (background jobs run asynchronously), or fails after `timeoutMs`. */
export function eventually<T>(check: () => Promise<T | null | undefined | false>, timeoutMs = 5000): Promise<T> {
  return waitFor('a condition', check, timeoutMs, 25);
}
