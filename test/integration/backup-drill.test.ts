/**
 * `starling drill restore` as an operator (or a scheduler) runs it: a real
 * child process that restores the newest backup, starts another real Starling
 * on it, drives it through the API, stops it, and logs RTO and RPO.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createUser, startTestServer, tempDir } from '../helpers/server.js';
import type { DrillEntry } from '../../src/dr/drill.js';

const run = promisify(execFile);
const BIN = resolve(import.meta.dirname, '../../bin/starling.js');
const dir = tempDir('starling-drill-test-');
afterAll(() => dir.remove());

function starling(...args: string[]) {
  return run(process.execPath, [BIN, ...args], { env: { PATH: process.env.PATH } }).then(
    (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
    (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
  );
}

let newestPostAt = 0;
let backupPath = '';

beforeAll(async () => {
  const server = await startTestServer({ ops: { enabled: false }, backup: { intervalMinutes: 0 } }, dir.path);
  try {
    const u = await createUser(server.url);
    for (let i = 0; i < 3; i++) {
      const s = await u.client.v1.statuses.create({ status: `drill me ${i}` });
      newestPostAt = Date.parse(s.createdAt);
    }
  } finally {
    await server.close();
  }
  const b = await starling('backup', '--data-dir', dir.path, '--json');
  expect(b.code).toBe(0);
  backupPath = JSON.parse(b.stdout).path;
});

describe('starling drill', () => {
  it('fails with a one-line reason when there is no backup, and logs the failure', async () => {
    const empty = join(dir.path, 'empty');
    const r = await starling('drill', 'restore', '--data-dir', empty, '--json');
    expect(r.code).not.toBe(0);
    const entry = JSON.parse(r.stdout) as DrillEntry;
    expect(entry).toMatchObject({ kind: 'restore', ok: false, rto_seconds: null, error: expect.stringMatching(/^no backup in .*: take one with starling backup first$/) });
    expect(r.stderr.trim()).toBe(`drill failed: ${entry.error}`);
    const log = readFileSync(join(empty, 'drill-log.jsonl'), 'utf8').trim().split('\n');
    expect(log).toHaveLength(1);
  });

  it('restores the newest backup into a real Starling, checks it through the API, and reports RTO and RPO', async () => {
    const startedAt = Date.now();
    const r = await starling('drill', 'restore', '--data-dir', dir.path, '--json');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const entry = JSON.parse(r.stdout) as DrillEntry;
    expect(entry).toMatchObject({ kind: 'restore', ok: true, backup: { path: backupPath, statuses: 3 } });
    expect(entry.error).toBeUndefined();
    expect(entry.checks).toEqual(
      expect.arrayContaining([
        'integrity_check',
        'sign in (OAuth password grant)',
        'read a restored post',
        'read the public timeline',
        'post',
        'read the home timeline with the new post',
      ]),
    );
    // RTO: from the start of the drill to a working service, so at least the sum of its phases up to the smoke checks.
    const p = entry.phases;
    expect(entry.rto_seconds).toBeGreaterThan(0);
    expect(entry.rto_seconds! * 1000).toBeGreaterThanOrEqual(p.verify_and_restore_ms! + p.drill_account_ms! + p.start_ms! + p.smoke_ms! - 1);
    // RPO: the age of the newest post in the backup when the drill started.
    const drillStart = Date.parse(entry.started_at);
    expect(drillStart).toBeGreaterThanOrEqual(startedAt - 1000);
    expect(entry.rpo_seconds).toBeCloseTo((drillStart - newestPostAt) / 1000, 2);
    expect(entry.backup_age_seconds).toBeGreaterThanOrEqual(0);
    // The drill account and post went into the scratch copy only; the scratch copy is gone.
    const v = await starling('verify-backup', backupPath);
    expect(v.code).toBe(0);
    expect(entry.scratch_dir).toMatch(/starling-drill-/);
    expect(existsSync(entry.scratch_dir)).toBe(false);

    const history = await starling('drill', 'history', '--data-dir', dir.path, '--json');
    expect(history.code).toBe(0);
    const log = JSON.parse(history.stdout) as DrillEntry[];
    expect(log).toHaveLength(1);
    expect(log[0]).toEqual(entry);
    const text = await starling('drill', 'history', '--data-dir', dir.path);
    expect(text.stdout).toMatch(new RegExp(`^${entry.started_at}  restore  ok +RTO \\d+\\.\\d s  RPO \\d+ s$`, 'm'));
  }, 120_000);

  it('shows backups and drills to admins through the admin API', async () => {
    const server = await startTestServer({ ops: { enabled: false }, backup: { intervalMinutes: 0 } }, dir.path);
    try {
      const admin = await createUser(server.url, 'drill_admin', { scopes: 'read write admin:read' });
      const user = await createUser(server.url, 'drill_user', { scopes: 'read write admin:read' });
      await server.ctx.db.updateTable('users').set({ role: 'admin' }).where('account_id', '=', admin.id).execute();
      const get = async (path: string, token?: string) => {
        const res = await fetch(`${server.url}/api/v1/admin/starling${path}`, { headers: token ? { authorization: `Bearer ${token}` } : {} });
        return { status: res.status, json: (await res.json()) as any };
      };
      expect((await get('/drills')).status).toBe(401);
      expect(await get('/drills', user.token)).toEqual({ status: 403, json: { error: expect.any(String) } });
      expect((await get('/drills?limit=abc', admin.token)).status).toBe(422);
      const drills = await get('/drills', admin.token);
      expect(drills.status).toBe(200);
      expect(drills.json).toHaveLength(1);
      expect(drills.json[0]).toMatchObject({ kind: 'restore', ok: true, backup: { path: backupPath } });
      const backups = await get('/backups', admin.token);
      expect(backups.status).toBe(200);
      expect(backups.json).toMatchObject({ dir: join(dir.path, 'backups'), backups: [{ path: backupPath, statuses: 3 }] });
    } finally {
      await server.close();
    }
  });
});
