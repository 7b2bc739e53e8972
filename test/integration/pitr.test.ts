/**
 * Point-in-time recovery on PostgreSQL, end to end: a real PostgreSQL with WAL
 * archiving on, a real Starling on it, posts through the API, a base backup
 * (`starling pg base-backup`), a noted time, more posts and a destructive
 * mistake (TRUNCATE statuses), then `starling pg restore` to the noted time
 * into a new cluster and a Starling on the restored cluster: exactly the posts
 * before the noted time, none after, the mistake undone, the old cluster
 * untouched.
 *
 * sqlite project only (vitest.config.ts): it brings its own PostgreSQL.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile, execFileSync } from 'node:child_process';
import { chownSync, mkdirSync, mkdtempSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import postgres from 'postgres';
import { postgresMissing, startTempPostgres, type TempPostgres } from '../helpers/postgres.js';
import { createUser, startTestServer, type TestServer, type TestUser } from '../helpers/server.js';

const run = promisify(execFile);
const BIN = resolve(import.meta.dirname, '../../bin/starling.js');
const missing = postgresMissing();
// On CI the binaries must be there: fail rather than skip.
const skip = missing !== null && process.env.CI !== 'true';
if (skip) console.warn(`[pitr.test] skipped: ${missing}`);

async function starling(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await run(process.execPath, [BIN, ...args], { env: { PATH: process.env.PATH }, timeout: 170_000 });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : 1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe.skipIf(skip)('point-in-time recovery on PostgreSQL', () => {
  let work: string;
  let pg: TempPostgres | undefined;
  let admin: postgres.Sql | undefined;
  let server: TestServer | undefined;
  let restoredServer: TestServer | undefined;
  let restoredPid: number | undefined;
  let user: TestUser;

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'starling-pitr-'));
    if (process.getuid?.() === 0) {
      const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
      const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
      chownSync(work, uid, gid);
      mkdirSync(join(work, 'wal'));
      chownSync(join(work, 'wal'), uid, gid);
    } else mkdirSync(join(work, 'wal'));
    const wal = join(work, 'wal');
    pg = await startTempPostgres({
      settings: {
        wal_level: 'replica',
        archive_mode: 'on',
        // The documented archive command (docs/OPERATIONS.md): never overwrite a segment already archived.
        archive_command: `test ! -f ${wal}/%f && cp %p ${wal}/%f`,
        // pg_basebackup refuses to copy a server without full-page writes; durability is still off (fsync) for speed.
        full_page_writes: 'on',
      },
    });
    admin = postgres(pg.url, { max: 1, onnotice: () => {} });
    await admin.unsafe('CREATE DATABASE starling_pitr');
    server = await startTestServer({ databaseUrl: pg.urlFor('starling_pitr'), ops: { enabled: false } });
    user = await createUser(server.url, 'pitr');
  });

  afterAll(async () => {
    await restoredServer?.stop().catch(() => {});
    if (restoredPid && alive(restoredPid)) {
      process.kill(restoredPid, 'SIGINT');
      for (let i = 0; i < 100 && alive(restoredPid); i++) await new Promise((r) => setTimeout(r, 100));
      if (alive(restoredPid)) process.kill(restoredPid, 'SIGKILL');
    }
    await server?.stop().catch(() => {});
    await admin?.end({ timeout: 1 }).catch(() => {});
    await pg?.stop();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  async function post(text: string): Promise<string> {
    const s = await user.client.v1.statuses.create({ status: text, visibility: 'public' });
    return s.id;
  }

  /** Ends the current WAL segment and waits until the archiver has copied it (and every one before it). */
  async function archiveNow(): Promise<void> {
    const [{ name }] = await admin!<{ name: string }[]>`SELECT pg_walfile_name(pg_switch_wal()) AS name`;
    const deadline = Date.now() + 60_000;
    for (;;) {
      const [row] = await admin!<{ last: string | null; failed: string | null }[]>`SELECT last_archived_wal AS last, last_failed_wal AS failed FROM pg_stat_archiver`;
      if (row!.last && row!.last >= name!) return;
      if (Date.now() > deadline) throw new Error(`WAL ${name} not archived (last archived ${row!.last}, last failed ${row!.failed})`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  it('restores to a noted time: the posts before it, none after, a TRUNCATE undone', { timeout: 240_000 }, async () => {
    const early = [await post('pitr before backup 1'), await post('pitr before backup 2')];

    const backup = await starling('pg', 'base-backup', '--database-url', pg!.urlFor('starling_pitr'), '--to', join(work, 'base'), '--json');
    expect(backup.stderr).toBe('');
    expect(backup.code).toBe(0);
    const base = JSON.parse(backup.stdout) as { ok: boolean; path: string; manifest: { end_time: string; start_lsn: string; verified: boolean; bytes: number } };
    expect(base.ok).toBe(true);
    expect(base.manifest.verified).toBe(true);
    expect(base.manifest.bytes).toBeGreaterThan(1_000_000);
    expect(existsSync(join(base.path, 'data', 'PG_VERSION'))).toBe(true);

    const late = [await post('pitr after backup 1'), await post('pitr after backup 2')];
    // The noted time, on the server's clock (which stamps the commits): after every post above was acknowledged.
    const [{ noted }] = await admin!<{ noted: Date }[]>`SELECT clock_timestamp() AS noted`;
    // Commit timestamps have microseconds; a clean second between the boundary and the next commit.
    await new Promise((r) => setTimeout(r, 1100));
    const after = [await post('pitr after the noted time 1'), await post('pitr after the noted time 2')];
    // Stopped first: TRUNCATE's locks would deadlock with the server's background jobs (fan-out) finishing the posts above.
    await server!.stop();
    server = undefined;
    const db = postgres(pg!.urlFor('starling_pitr'), { max: 1, onnotice: () => {} });
    try {
      // The mistake to undo.
      await db.unsafe('TRUNCATE statuses CASCADE');
      expect((await db`SELECT count(*)::int AS n FROM statuses`)[0]!.n).toBe(0);
    } finally {
      await db.end({ timeout: 1 });
    }
    await archiveNow();

    // A time before the base backup ended: refused with one line, nothing created.
    const tooEarly = new Date(Date.parse(base.manifest.end_time) - 60_000).toISOString();
    const refused = await starling('pg', 'restore', '--to-time', tooEarly, '--base', base.path, '--wal', join(work, 'wal'), '--into', join(work, 'refused'));
    expect(refused.code).not.toBe(0);
    expect(refused.stderr.trim().split('\n')).toHaveLength(1);
    expect(refused.stderr).toMatch(/is before the end of base backup/);
    expect(existsSync(join(work, 'refused'))).toBe(false);

    const into = join(work, 'restored');
    const restore = await starling('pg', 'restore', '--to-time', noted!.toISOString(), '--base', base.path, '--wal', join(work, 'wal'), '--into', into, '--json');
    expect(restore.stderr).toBe('');
    expect(restore.code).toBe(0);
    const r = JSON.parse(restore.stdout) as { ok: boolean; url: string; pid: number; port: number; wal_segments_restored: number; phases: { total_ms: number; recovery_ms: number } };
    restoredPid = r.pid;
    expect(r.ok).toBe(true);
    expect(r.port).not.toBe(pg!.port);
    expect(r.wal_segments_restored).toBeGreaterThan(0);
    console.log(`[pitr] restore to ${noted!.toISOString()}: total ${r.phases.total_ms} ms (recovery ${r.phases.recovery_ms} ms), ${r.wal_segments_restored} WAL segments`);

    // Directly: promoted, and exactly the posts before the noted time.
    const restored = postgres(r.url, { max: 1, onnotice: () => {} });
    try {
      expect((await restored`SELECT pg_is_in_recovery() AS r`)[0]!.r).toBe(false);
      const rows = await restored<{ id: string; text: string }[]>`SELECT id::text AS id, text FROM statuses ORDER BY id`;
      expect(rows.map((x) => x.id).sort()).toEqual([...early, ...late].sort());
      expect(rows.map((x) => x.text)).not.toContain('pitr after the noted time 1');
    } finally {
      await restored.end({ timeout: 1 });
    }

    // Through a Starling on the restored cluster: the same account and token work, the timeline is the one before the noted time.
    restoredServer = await startTestServer({ databaseUrl: r.url, ops: { enabled: false } });
    const res = await fetch(`${restoredServer.url}/api/v1/accounts/${user.id}/statuses?limit=40`, { headers: { authorization: `Bearer ${user.token}` } });
    expect(res.status).toBe(200);
    const statuses = (await res.json()) as { id: string; content: string }[];
    expect(statuses.map((s) => s.id).sort()).toEqual([...early, ...late].sort());
    for (const id of after) expect(statuses.map((s) => s.id)).not.toContain(id);

    // A time the archive does not reach: PostgreSQL's reason on one line, and no server left running.
    const future = await starling('pg', 'restore', '--to-time', '2099-01-01T00:00:00Z', '--base', base.path, '--wal', join(work, 'wal'), '--into', join(work, 'future'));
    expect(future.code).not.toBe(0);
    expect(future.stderr.trim().split('\n')).toHaveLength(1);
    expect(future.stderr).toMatch(/recovery ended before configured recovery target was reached/);
    expect(existsSync(join(work, 'future', 'data', 'postmaster.pid'))).toBe(false);

    // The old cluster was not touched: still truncated, still on its own port.
    const old = postgres(pg!.urlFor('starling_pitr'), { max: 1, onnotice: () => {} });
    try {
      expect((await old`SELECT count(*)::int AS n FROM statuses`)[0]!.n).toBe(0);
    } finally {
      await old.end({ timeout: 1 });
    }
  });
});
