/**
 * The backup commands as an operator runs them (the real CLI, child processes):
 * damaged backups are refused with a one-line reason, a restore never swaps the
 * database under a running server, off-site copies are checked, retention keeps N,
 * and `starling serve` takes scheduled backups.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile, spawn } from 'node:child_process';
import { hostname } from 'node:os';
import { promisify } from 'node:util';
import { cpSync, existsSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { createHash } from 'node:crypto';
import { createUser, startChildServer, startTestServer, tempDir, type ChildServer } from '../helpers/server.js';

const run = promisify(execFile);
const BIN = resolve(import.meta.dirname, '../../bin/starling.js');
const dir = tempDir('starling-backup-cli-');
const data = join(dir.path, 'data');
const children: ChildServer[] = [];
afterAll(async () => {
  for (const c of children) await c.kill();
  dir.remove();
});

function starling(...args: string[]) {
  return run(process.execPath, [BIN, ...args], { env: { PATH: process.env.PATH } }).then(
    (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
    (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
  );
}

const sha = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');
let backupPath = '';

beforeAll(async () => {
  const server = await startTestServer({ ops: { enabled: false }, backup: { intervalMinutes: 0 } }, data);
  try {
    const u = await createUser(server.url);
    for (let i = 0; i < 5; i++) await u.client.v1.statuses.create({ status: `before the backup ${i}` });
  } finally {
    await server.close();
  }
  const r = await starling('backup', '--data-dir', data, '--json');
  expect(r.code).toBe(0);
  backupPath = (JSON.parse(r.stdout) as { path: string }).path;
});

/** A copy of the good backup to damage. */
function copyBackup(name: string): string {
  const path = join(dir.path, name);
  cpSync(backupPath, path, { recursive: true });
  return path;
}

describe('starling backup / verify-backup / restore', () => {
  it('writes a compressed backup with a manifest that verify-backup accepts', async () => {
    const manifest = JSON.parse(readFileSync(join(backupPath, 'manifest.json'), 'utf8'));
    expect(manifest.format).toBe('starling-backup');
    expect(manifest.schema.latest).toMatch(/^\d{4}-/);
    expect(manifest.tables.statuses).toBe(5);
    expect(manifest.tables.accounts).toBe(1);
    expect(manifest.newest_status.created_at).toMatch(/^\d{4}-\d\d-\d\dT/);
    expect(manifest.file.sha256).toBe(sha(join(backupPath, 'starling.sqlite.gz')));
    expect(createHash('sha256').update(gunzipSync(readFileSync(join(backupPath, 'starling.sqlite.gz')))).digest('hex')).toBe(manifest.raw.sha256);
    const v = await starling('verify-backup', backupPath, '--json');
    expect(v.code).toBe(0);
    expect(JSON.parse(v.stdout)).toMatchObject({ ok: true, path: backupPath, checks: expect.arrayContaining(['integrity_check', 'sha256 of the database']) });
    const quick = await starling('verify-backup', backupPath, '--quick', '--json');
    expect(quick.code).toBe(0);
    expect(JSON.parse(quick.stdout).checks).toEqual(expect.arrayContaining(['quick_check', `row counts of ${Object.keys(manifest.tables).length} tables`]));
    // The manifest or the data file may be named instead of the folder.
    expect((await starling('verify-backup', join(backupPath, 'manifest.json'))).code).toBe(0);
  });

  it('refuses a backup with flipped bytes, in verify-backup and in restore, leaving the data alone', async () => {
    const bad = copyBackup('flipped');
    const file = join(bad, 'starling.sqlite.gz');
    const bytes = readFileSync(file);
    for (const at of [Math.floor(bytes.length / 2), Math.floor(bytes.length / 3)]) bytes[at]! ^= 0xff;
    writeFileSync(file, bytes);

    const v = await starling('verify-backup', bad);
    expect(v.code).not.toBe(0);
    expect(v.stderr.trim().split('\n')).toHaveLength(1);
    expect(v.stderr).toMatch(/^backup is corrupted: SHA-256 of .*starling\.sqlite\.gz is [0-9a-f]{16}…, the manifest says [0-9a-f]{16}…/);
    const vj = await starling('verify-backup', bad, '--json');
    expect(vj.code).not.toBe(0);
    expect(JSON.parse(vj.stdout)).toEqual({ ok: false, error: expect.stringMatching(/^backup is corrupted: SHA-256/) });

    const before = sha(join(data, 'starling.sqlite'));
    const r = await starling('restore', bad, '--data-dir', data);
    expect(r.code).not.toBe(0);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/^backup is corrupted: SHA-256/);
    expect(sha(join(data, 'starling.sqlite'))).toBe(before);
    expect(readdirSync(data).filter((f) => f.startsWith('replaced-') || f.startsWith('.restore-'))).toEqual([]);
  });

  it('refuses a backup whose database is damaged inside, or whose rows differ from its manifest', async () => {
    // Damaged inside with consistent checksums (as if the copy had been made from a bad disk): integrity_check must catch it.
    const inner = copyBackup('damaged-inside');
    const m = JSON.parse(readFileSync(join(inner, 'manifest.json'), 'utf8'));
    const raw = gunzipSync(readFileSync(join(inner, 'starling.sqlite.gz')));
    // The second page is a b-tree page: an impossible page type in its header.
    raw[m.raw.page_size] = 0x07;
    const gz = gzipSync(raw);
    writeFileSync(join(inner, 'starling.sqlite.gz'), gz);
    m.raw.sha256 = createHash('sha256').update(raw).digest('hex');
    m.file.sha256 = createHash('sha256').update(gz).digest('hex');
    m.file.bytes = gz.length;
    writeFileSync(join(inner, 'manifest.json'), JSON.stringify(m));
    const v = await starling('verify-backup', inner);
    expect(v.code).not.toBe(0);
    expect(v.stderr.trim().split('\n')).toHaveLength(1);
    expect(v.stderr).toMatch(/^restored database (fails integrity_check|is damaged)/);
    const q = await starling('verify-backup', inner, '--quick');
    expect(q.code).not.toBe(0);
    expect(q.stderr).toMatch(/^restored database (fails quick_check|is damaged)/);

    const counts = copyBackup('wrong-counts');
    const m2 = JSON.parse(readFileSync(join(counts, 'manifest.json'), 'utf8'));
    m2.tables.statuses += 1;
    writeFileSync(join(counts, 'manifest.json'), JSON.stringify(m2));
    const c = await starling('verify-backup', counts);
    expect(c.code).not.toBe(0);
    expect(c.stderr.trim()).toBe('restored database has 5 rows in statuses, the manifest says 6');

    const missing = copyBackup('no-manifest');
    rmSync(join(missing, 'manifest.json'));
    const n = await starling('restore', missing, '--data-dir', data);
    expect(n.code).not.toBe(0);
    expect(n.stderr).toMatch(/^backup is incomplete: .*manifest\.json is missing/);
    // Four CLI processes, each starting tsx: 25–27 s in CI runs beside the chaos cluster, once past the 30 s default.
  }, 120_000);

  it('refuses to restore while a server runs on the data folder', async () => {
    const server = await startChildServer(data, { STARLING_BACKUP_INTERVAL: '0' });
    children.push(server);
    expect(existsSync(join(data, 'starling.pid'))).toBe(true);
    // The running server's checkpoints write into the file, so its bytes change by themselves; a restore would
    // have moved it aside and renamed another file into its place.
    const before = statSync(join(data, 'starling.sqlite')).ino;
    const r = await starling('restore', backupPath, '--data-dir', data);
    expect(r.code).not.toBe(0);
    expect(r.stderr.trim()).toMatch(new RegExp(`^a Starling server \\(pid ${server.pid}, started .*\\) is running on ${data}: stop it first`));
    // Without its pid file, SQLite's own lock still gives the running server away.
    rmSync(join(data, 'starling.pid'));
    const r2 = await starling('restore', backupPath, '--data-dir', data, '--json');
    expect(r2.code).not.toBe(0);
    expect(JSON.parse(r2.stdout).error).toMatch(/starling\.sqlite is open in another process/);
    expect(statSync(join(data, 'starling.sqlite')).ino).toBe(before);
    expect(readdirSync(data).filter((f) => f.startsWith('replaced-'))).toEqual([]);
    await server.kill();
    expect(existsSync(join(data, 'starling.pid'))).toBe(false);
  });

  it('restores once the server is stopped, keeping the replaced database aside', async () => {
    const server = await startTestServer({ ops: { enabled: false }, backup: { intervalMinutes: 0 } }, data);
    try {
      const u = await createUser(server.url);
      await u.client.v1.statuses.create({ status: 'after the backup' });
    } finally {
      await server.close();
    }
    const replacedSha = sha(join(data, 'starling.sqlite'));
    // A pid file left by a server that crashed (its process is gone) does not block the restore.
    const dead = spawn(process.execPath, ['-e', '0']);
    await new Promise((r) => dead.once('exit', r));
    writeFileSync(join(data, 'starling.pid'), JSON.stringify({ pid: dead.pid, hostname: hostname(), started_at: new Date().toISOString() }));
    const r = await starling('restore', backupPath, '--data-dir', data, '--json');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out).toMatchObject({ ok: true, restored_from: backupPath, database_file: join(data, 'starling.sqlite') });
    expect(out.moved_aside_to).toMatch(/replaced-\d{8}T\d{9}Z$/);
    expect(sha(join(out.moved_aside_to, 'starling.sqlite'))).toBe(replacedSha);
    const restoredServer = await startTestServer({ ops: { enabled: false }, backup: { intervalMinutes: 0 } }, data);
    try {
      const statuses = (await (await fetch(`${restoredServer.url}/api/v1/timelines/public?limit=40`)).json()) as { content: string }[];
      expect(statuses.map((s) => s.content).filter((c) => c.includes('before the backup'))).toHaveLength(5);
      expect(statuses.some((s) => s.content.includes('after the backup'))).toBe(false);
    } finally {
      await restoredServer.close();
    }
  });

  it('copies backups off-site, checks the copies, and keeps the newest N in both places', async () => {
    const to = join(dir.path, 'kept');
    const offsite = join(dir.path, 'offsite');
    const paths: string[] = [];
    for (let i = 0; i < 3; i++) {
      const r = await starling('backup', '--data-dir', data, '--to', to, '--keep', '2', '--offsite-dir', offsite, '--json');
      expect(r.code).toBe(0);
      const out = JSON.parse(r.stdout);
      expect(out.offsite).toMatchObject({ verified: true, target: `folder ${offsite}` });
      paths.push(out.path);
    }
    const names = paths.map((p) => p.split('/').at(-1)!);
    expect(readdirSync(to).sort()).toEqual(names.slice(1).sort());
    expect(readdirSync(offsite).sort()).toEqual(names.slice(1).sort());
    // The off-site copy is a complete backup in its own right.
    const v = await starling('verify-backup', join(offsite, names[2]!));
    expect(v.code).toBe(0);
    // Four child processes, each starting Node: 3.6 s alone, over 30 s once in CI beside the chaos suite (a43baed).
  }, 120_000);

  it('takes scheduled backups inside serve', async () => {
    const server = await startTestServer({ ops: { enabled: false }, backup: { intervalMinutes: 0, dir: join(dir.path, 'scheduled'), keep: 1 } }, data);
    try {
      const first = await server.backups.runOnce();
      expect(first).toMatchObject({ ok: true });
      const second = await server.backups.runOnce();
      expect(second).toMatchObject({ ok: true });
      expect(readdirSync(join(dir.path, 'scheduled'))).toEqual([second!.path!.split('/').at(-1)]);
      expect((await starling('verify-backup', second!.path!)).code).toBe(0);
    } finally {
      await server.close();
    }
    // Three child processes, each starting Node: slow on a busy 2-core machine.
  }, 120_000);
});
