/**
 * Disaster recovery in the operators' API, for the operations page:
 *
 *   GET /api/v1/admin/starling/backups   admin:read   backups in the backup folder, newest first (?limit=, default 50, max 500)
 *   GET /api/v1/admin/starling/drills    admin:read   the drill log, newest first (?limit=, default 50, max 500)
 *
 * Both read files (manifests, `drill-log.jsonl`), not the database, so they
 * answer while the database is in trouble, which is when they are wanted.
 */
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { AppContext } from '../../services/context.js';
import { listBackups } from '../../dr/backup.js';
import { readDrillLog } from '../../dr/drill.js';
import { backupDirOf } from '../../dr/schedule.js';
import { parse, zLimit } from '../validation.js';
import { requireAdmin } from '../auth.js';

const PREFIX = '/api/v1/admin/starling';
const ListQuery = z.object({ limit: zLimit(50, 500) });

export async function adminDrRoutes(app: FastifyInstance, { ctx }: { ctx: AppContext }): Promise<void> {
  app.get(`${PREFIX}/backups`, async (req) => {
    await requireAdmin(ctx, req, 'admin:read');
    const { limit } = parse(ListQuery, req.query);
    const dir = backupDirOf(ctx.config);
    const backups = (await listBackups(dir)).slice(0, limit).map(({ path, manifest: m }) => ({
      path,
      created_at: m.created_at,
      bytes: m.file.bytes,
      raw_bytes: m.raw.bytes,
      sha256: m.file.sha256,
      schema: m.schema.latest,
      statuses: m.tables.statuses ?? 0,
      newest_status: m.newest_status,
    }));
    return { dir, interval_minutes: ctx.config.backup.intervalMinutes, keep: ctx.config.backup.keep, offsite_dir: ctx.config.backup.offsiteDir ?? null, backups };
  });

  app.get(`${PREFIX}/drills`, async (req) => {
    await requireAdmin(ctx, req, 'admin:read');
    const { limit } = parse(ListQuery, req.query);
    return (await readDrillLog(ctx.config.dataDir)).reverse().slice(0, limit);
  });
}
