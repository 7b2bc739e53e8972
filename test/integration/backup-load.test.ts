/**
 * A backup taken in the middle of a write load, restored: the copy passes
 * SQLite's checks, holds every post acknowledged before the backup began, and
 * nothing in it is half-written (counters match rows, each post's fan-out is
 * either done or still queued as a job, every idempotency key names its post).
 */
import { afterAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { join, resolve } from 'node:path';
import { randomUUID } from 'node:crypto';
import SQLite from 'better-sqlite3';
import { createUser, eventually, startChildServer, startTestServer, tempDir, type ChildServer, type TestUser } from '../helpers/server.js';

const run = promisify(execFile);
const BIN = resolve(import.meta.dirname, '../../bin/starling.js');
const dir = tempDir('starling-backup-load-');
let server: ChildServer | null = null;
afterAll(async () => {
  await server?.kill();
  dir.remove();
});

function starling(...args: string[]) {
  return run(process.execPath, [BIN, ...args], { env: { PATH: process.env.PATH } }).then(
    (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
    (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
  );
}

async function post(base: string, user: TestUser, body: Record<string, unknown>): Promise<{ id: string }> {
  const res = await fetch(`${base}/api/v1/statuses`, {
    method: 'POST',
    headers: { authorization: `Bearer ${user.token}`, 'content-type': 'application/json', 'idempotency-key': randomUUID() },
    body: JSON.stringify(body),
  });
  if (res.status !== 200) throw new Error(`post failed: ${res.status} ${await res.text()}`);
  return (await res.json()) as { id: string };
}

describe('backup under a write load', () => {
  it('restores every post acknowledged before the backup began, consistently', async () => {
    server = await startChildServer(dir.path, { STARLING_BACKUP_INTERVAL: '0' });
    const base = server.url;
    const users: TestUser[] = [];
    for (let i = 0; i < 4; i++) users.push(await createUser(base));
    // Everyone follows everyone: each post fans out to three home feeds.
    for (const a of users) for (const b of users) if (a !== b) await a.client.v1.accounts.$select(b.id).follow();

    const acked: string[] = [];
    let stop = false;
    let failure: unknown = null;
    const loop = async (w: number) => {
      for (let n = 0; !stop; n++) {
        const user = users[(w + n) % users.length]!;
        const parent = n % 4 === 3 ? acked.at(-1) : undefined;
        const s = await post(base, user, { status: `load ${w}.${n} #backup`, ...(parent ? { in_reply_to_id: parent } : {}) });
        acked.push(s.id);
        if (n % 3 === 2) {
          const fan = users[(w + n + 1) % users.length]!;
          const r = await fetch(`${base}/api/v1/statuses/${s.id}/favourite`, { method: 'POST', headers: { authorization: `Bearer ${fan.token}` } });
          if (r.status !== 200) throw new Error(`favourite failed: ${r.status}`);
        }
      }
    };
    const workers = Array.from({ length: 6 }, (_, w) => loop(w).catch((err) => ((failure ??= err), (stop = true))));
    try {
      await eventually(async () => acked.length >= 60, 60_000);
      // Acknowledged strictly before the backup process was even started.
      const before = new Set(acked);
      const backup = await starling('backup', '--data-dir', dir.path, '--json');
      const duringBackup = acked.length - before.size;
      expect(backup.stderr).toBe('');
      expect(backup.code).toBe(0);
      const result = JSON.parse(backup.stdout) as { ok: boolean; path: string; manifest: { tables: Record<string, number> } };
      expect(result.ok).toBe(true);
      const afterBackup = acked.length;
      await eventually(async () => acked.length >= afterBackup + 20, 60_000);
      stop = true;
      await Promise.all(workers);
      expect(failure).toBeNull();
      // The load really overlapped the copy: posts were acknowledged while the backup process ran.
      expect(duringBackup).toBeGreaterThan(0);
      const late = acked.slice(afterBackup);

      await server.kill();
      server = null;
      const verified = await starling('verify-backup', result.path);
      expect(verified.code).toBe(0);
      const restored = await starling('restore', result.path, '--data-dir', dir.path, '--json');
      expect(restored.code).toBe(0);
      const r = JSON.parse(restored.stdout) as { ok: boolean; moved_aside_to: string; moved_files: string[]; database_file: string };
      expect(r.ok).toBe(true);
      expect(r.database_file).toBe(join(dir.path, 'starling.sqlite'));
      expect(r.moved_files).toContain(join(r.moved_aside_to, 'starling.sqlite'));

      const db = new SQLite(r.database_file, { readonly: true });
      db.defaultSafeIntegers(true);
      try {
        expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
        expect(db.pragma('foreign_key_check')).toEqual([]);
        const ids = new Set((db.prepare('SELECT id FROM statuses').pluck().all() as bigint[]).map(String));
        const missing = [...before].filter((id) => !ids.has(id));
        expect(missing).toEqual([]);
        // Made after the backup finished: not in it (the copy is the snapshot, not the live file).
        expect(late.filter((id) => ids.has(id))).toEqual([]);
        expect(ids.size).toBe(result.manifest.tables.statuses);

        // Counters agree with the rows they count.
        const badCounts = db
          .prepare(
            `SELECT a.id FROM accounts a WHERE a.statuses_count != (SELECT count(*) FROM statuses s WHERE s.account_id = a.id AND s.deleted_at IS NULL)
             UNION ALL SELECT s.id FROM statuses s WHERE s.replies_count != (SELECT count(*) FROM statuses r WHERE r.in_reply_to_id = s.id AND r.deleted_at IS NULL)
             UNION ALL SELECT s.id FROM statuses s WHERE s.favourites_count != (SELECT count(*) FROM favourites f WHERE f.status_id = s.id)`,
          )
          .all();
        expect(badCounts).toEqual([]);
        // The author's own home-feed row is written with the post. (Deleted posts, such as the ops canary's, are checked below.)
        const noOwnFeed = db
          .prepare('SELECT s.id FROM statuses s WHERE s.deleted_at IS NULL AND NOT EXISTS (SELECT 1 FROM home_feed h WHERE h.account_id = s.account_id AND h.status_id = s.id)')
          .all();
        expect(noOwnFeed).toEqual([]);
        // Fan-out to followers: done for every follower, or still queued (the job runs after restore). Never a part of it.
        const halfFanned = db
          .prepare(
            `SELECT s.id FROM statuses s
             WHERE s.deleted_at IS NULL
               AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.type = 'fanout' AND json_extract(j.payload, '$.statusId') = CAST(s.id AS TEXT))
               AND (SELECT count(*) FROM follows f WHERE f.target_account_id = s.account_id)
                 != (SELECT count(*) FROM home_feed h JOIN follows f ON f.account_id = h.account_id AND f.target_account_id = s.account_id WHERE h.status_id = s.id)`,
          )
          .all();
        expect(halfFanned).toEqual([]);
        // A deleted post is gone from every feed, or its removal is still queued.
        const deletedInFeeds = db
          .prepare(
            `SELECT s.id FROM statuses s WHERE s.deleted_at IS NOT NULL
               AND EXISTS (SELECT 1 FROM home_feed h WHERE h.status_id = s.id)
               AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.type = 'unfanout' AND json_extract(j.payload, '$.statusId') = CAST(s.id AS TEXT))`,
          )
          .all();
        expect(deletedInFeeds).toEqual([]);
        const keyless = db.prepare('SELECT k.key FROM idempotency_keys k LEFT JOIN statuses s ON s.id = k.status_id WHERE s.id IS NULL').all();
        expect(keyless).toEqual([]);
        const keyed = Number(db.prepare('SELECT count(*) FROM idempotency_keys').pluck().get());
        expect(keyed).toBe(Number(db.prepare('SELECT count(*) FROM statuses WHERE deleted_at IS NULL').pluck().get()));
      } finally {
        db.close();
      }

      // And the restored data serves: a post acknowledged before the backup reads back through the API.
      const restoredServer = await startTestServer({ ops: { enabled: false }, backup: { intervalMinutes: 0 } }, dir.path);
      try {
        const sample = [...before][Math.floor(before.size / 2)]!;
        const res = await fetch(`${restoredServer.url}/api/v1/statuses/${sample}`);
        expect(res.status).toBe(200);
        expect(((await res.json()) as { id: string }).id).toBe(sample);
      } finally {
        await restoredServer.close();
      }
    } finally {
      stop = true;
      await Promise.all(workers);
    }
  }, 180_000);
});
