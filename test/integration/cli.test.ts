/** The operator's CLI, run as a real child process on a temporary data folder. */
import { afterAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { join, resolve } from 'node:path';
import { createOAuthAPIClient, createRestAPIClient } from 'masto';
import Database from 'better-sqlite3';
import { childDatabaseEnv, onPostgres, startTestServer, tempDir } from '../helpers/server.js';

const run = promisify(execFile);
const BIN = resolve(import.meta.dirname, '../../bin/starling.js');
const dir = tempDir();
afterAll(() => dir.remove());

// On PostgreSQL (the postgres test project) an empty database, as a new data folder is on SQLite.
const dbEnv = childDatabaseEnv(dir.path, { migrated: false });

async function starling(...args: string[]) {
  return run(process.execPath, [BIN, ...args, ...(args[0] === 'help' ? [] : ['--data-dir', dir.path])], { env: { PATH: process.env.PATH, ...(await dbEnv) } }).then(
    (r) => ({ code: 0, ...r }),
    (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
  );
}

describe('starling CLI', () => {
  it('migrates, then reports the database up to date', async () => {
    expect((await starling('migrate')).stdout).toContain('applied migrations: 0001-core');
    expect((await starling('migrate')).stdout).toContain('database is up to date');
  });

  it('creates an admin whose generated password signs in', async () => {
    const created = await starling('admin', 'create', '--username', 'admin', '--email', 'ops@example.test');
    expect(created.code).toBe(0);
    const password = /password: (\S+)/.exec(created.stdout)?.[1];
    expect(password).toBeDefined();
    const again = await starling('admin', 'create', '--username', 'admin', '--email', 'other@example.test');
    expect(again.code).not.toBe(0);
    expect(again.stderr).toContain('already been taken');

    // No ops engine: its canary account would be one more feed in the rebuild below.
    const server = await startTestServer({ ops: { enabled: false } }, dir.path);
    try {
      const app = await createRestAPIClient({ url: server.url }).v1.apps.create({ clientName: 'cli-test', redirectUris: 'urn:ietf:wg:oauth:2.0:oob', scopes: 'read' });
      const token = await createOAuthAPIClient({ url: server.url }).token.create({
        grantType: 'password',
        clientId: app.clientId!,
        clientSecret: app.clientSecret!,
        redirectUri: 'urn:ietf:wg:oauth:2.0:oob',
        username: 'ops@example.test',
        password: password!,
        scope: 'read',
      });
      const me = await createRestAPIClient({ url: server.url, accessToken: token.accessToken }).v1.accounts.verifyCredentials();
      expect(me.username).toBe('admin');
      const instance = await createRestAPIClient({ url: server.url }).v2.instance.fetch();
      expect(instance.contact.account?.username).toBe('admin');
    } finally {
      await server.close();
    }
  });

  it('rebuilds feeds with progress output', async () => {
    const r = await starling('feeds', 'rebuild');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('rebuilt 1/1 feeds');
  });

  it.skipIf(onPostgres)('waits for a running node\'s write lock instead of failing with SQLITE_BUSY', async () => {
    // Another connection holds the write lock for longer than a server's short busy timeout (writes.busyTimeoutMs,
    // 250 ms), as a node's group commit can on a busy disk.
    const other = new Database(join(dir.path, 'starling.sqlite'));
    other.exec('BEGIN IMMEDIATE');
    const released = new Promise<void>((r) =>
      setTimeout(() => {
        other.exec('COMMIT');
        other.close();
        r();
      }, 1500),
    );
    try {
      const r = await starling('incident', 'create', '--title', 'Slow disk', '--body', 'Writes are slow.', '--components', 'posting');
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toMatch(/created incident \d+/);
    } finally {
      await released;
    }
    expect((await starling('incident', 'list')).stdout).toContain('Slow disk');
  });

  it('explains itself and refuses unknown commands and flags', async () => {
    expect((await starling('help')).stdout).toContain('admin create');
    expect((await starling('frobnicate')).code).toBe(2);
    const bad = await starling('migrate', '--frobnicate');
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/Unknown option/i);
  });
});
