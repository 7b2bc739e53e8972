/**
 * People's own copies (services/archive.ts). Mastodon offers these through its
 * settings pages, not its API; Starling adds API routes so any client, and the
 * web app, can offer them:
 *
 *   GET  /api/v1/starling/archive            read            the whole archive: {"actor.json": ..., "outbox.json": ..., "likes.json": ..., "bookmarks.json": ...}
 *   GET  /api/v1/starling/archive/:file      read            one of those files, as Mastodon's archive holds it
 *   GET  /api/v1/starling/exports/:file      read:<kind>     following_accounts.csv, blocked_accounts.csv, muted_accounts.csv, bookmarks.csv
 *   POST /api/v1/starling/imports            write:<kind>    {type: following|blocks|mutes|bookmarks, data: CSV text or an uploaded file}
 */
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { notFound } from '../../domain/errors.js';
import type { AppContext } from '../../services/context.js';
import { CSV_FILES, CSV_KINDS, exportArchive, exportCsv, importCsv, type CsvKind } from '../../services/archive.js';
import { requireAccount } from '../../services/accounts.js';
import { requireUser } from '../auth.js';
import { parse } from '../validation.js';

const ARCHIVE_FILES = ['actor.json', 'outbox.json', 'likes.json', 'bookmarks.json'] as const;
/** The scope each kind needs, as for the matching Mastodon API routes. */
const SCOPE: Record<CsvKind, string> = { following: 'follows', blocks: 'blocks', mutes: 'mutes', bookmarks: 'bookmarks' };
/** Mastodon's import form calls them following, blocking, muting, bookmarks. */
const ALIASES: Record<string, CsvKind> = { blocking: 'blocks', muting: 'mutes', follows: 'following' };

const ImportType = z.preprocess((v) => (typeof v === 'string' && v in ALIASES ? ALIASES[v] : v), z.enum(CSV_KINDS));
const ImportBody = z.object({
  type: ImportType,
  data: z.preprocess((v) => (Buffer.isBuffer(v) ? v.toString('utf8') : v), z.string().min(1, 'is empty')),
});

export async function archiveRoutes(app: FastifyInstance, { ctx }: { ctx: AppContext }): Promise<void> {
  const filename = async (accountId: string, name: string) => {
    const a = await requireAccount(ctx, accountId);
    return `attachment; filename="${a.username}-${new Date().toISOString().slice(0, 10)}-${name}"`;
  };

  app.get('/api/v1/starling/archive', async (req, reply) => {
    const me = requireUser(req, 'read');
    const archive = await exportArchive(ctx, me.accountId);
    return reply.header('content-disposition', await filename(me.accountId, 'archive.json')).send(archive);
  });

  app.get('/api/v1/starling/archive/:file', async (req, reply) => {
    const me = requireUser(req, 'read');
    const file = (req.params as { file: string }).file;
    if (!(ARCHIVE_FILES as readonly string[]).includes(file)) throw notFound();
    const archive = await exportArchive(ctx, me.accountId);
    return reply.header('content-disposition', await filename(me.accountId, file)).send(archive[file as (typeof ARCHIVE_FILES)[number]]);
  });

  app.get('/api/v1/starling/exports/:file', async (req, reply) => {
    const file = (req.params as { file: string }).file;
    const kind = CSV_KINDS.find((k) => CSV_FILES[k] === file);
    if (!kind) throw notFound();
    const me = requireUser(req, `read:${SCOPE[kind]}`);
    const csv = await exportCsv(ctx, me.accountId, kind);
    return reply.type('text/csv; charset=utf-8').header('content-disposition', await filename(me.accountId, file)).send(csv);
  });

  app.post('/api/v1/starling/imports', async (req) => {
    // Authentication first (401/403 before 422); the scope depends on what is imported.
    const kind = ImportType.safeParse((req.body as { type?: unknown } | undefined)?.type);
    const me = requireUser(req, kind.success ? `write:${SCOPE[kind.data]}` : 'write');
    const body = parse(ImportBody, req.body);
    return importCsv(ctx, me.accountId, body.type, body.data);
  });
}
