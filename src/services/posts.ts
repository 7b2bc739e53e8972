/**
 * Statuses: create, edit, delete, favourite, reblog, bookmark. Every write
 * is one transaction; work that can wait (fan-out, notifications) is queued
 * in the same transaction, so it happens exactly when the write commits.
 */
import type { Kysely, Transaction } from 'kysely';
import type { StatusFacts } from '../bus/events.js';
import { decrement, increment } from '../store/sql.js';
import { StarlingError, notFound, validation } from '../domain/errors.js';
import { countLength, extract, renderHtml, MAX_STATUS_CHARS, localMentionName, tokenize } from '../domain/text.js';
import { canReblog, type Visibility } from '../domain/visibility.js';
import { accountUrl } from '../domain/entities.js';
import type { Database, Status } from '../store/schema.js';
import type { AppContext } from './context.js';
import { enqueue } from './jobs.js';
import { findVisibleStatus } from './views.js';

type Trx = Transaction<Database>;

/** The facts subscribers need to decide who sees a status, read inside the writing transaction. */
export async function statusFacts(trx: Kysely<Database>, s: Status): Promise<StatusFacts> {
  const [mentions, tags, original] = await Promise.all([
    trx.selectFrom('mentions').select('account_id').where('status_id', '=', s.id).execute(),
    trx.selectFrom('status_tags').innerJoin('tags', 'tags.id', 'status_tags.tag_id').select('tags.name').where('status_tags.status_id', '=', s.id).execute(),
    s.reblog_of_id ? trx.selectFrom('statuses').select('account_id').where('id', '=', s.reblog_of_id).executeTakeFirst() : Promise.resolve(undefined),
  ]);
  return {
    id: s.id,
    accountId: s.account_id,
    visibility: s.visibility,
    inReplyToAccountId: s.in_reply_to_account_id,
    reblogOfId: s.reblog_of_id,
    reblogOfAccountId: original?.account_id ?? null,
    mentionIds: mentions.map((m) => m.account_id),
    tags: tags.map((t) => t.name),
  };
}

/** Authors with very many followers are merged into home timelines on read; everyone else is fanned out on write. */
function distributionFor(ctx: AppContext, followersCount: number): Status['distribution'] {
  return followersCount >= ctx.config.fanoutThreshold ? 'pull' : 'push';
}

/** How long an Idempotency-Key keeps returning the status it first made. Mastodon keeps them an hour. */
export const IDEMPOTENCY_TTL_MS = 24 * 3600_000;

export interface StatusInput {
  text: string;
  spoilerText?: string;
  sensitive?: boolean;
  visibility?: Visibility;
  language?: string | null;
  inReplyToId?: string | null;
}

export interface CreateStatusRequest extends StatusInput {
  accountId: string;
  applicationId: string | null;
  idempotencyKey?: string | null;
  /**
   * The id is made by the caller, so a status accepted elsewhere (a replicated
   * log while the database fails over) can later be applied under the same id.
   */
  id?: string;
}

const LANGUAGE_RE = /^[a-z]{2,3}(-[A-Za-z0-9]{2,8})?$/;

function checkInput(input: StatusInput): void {
  if (input.text.trim() === '') throw validation("Text can't be blank");
  if (countLength(input.text, input.spoilerText ?? '') > MAX_STATUS_CHARS) throw validation(`Text character limit of ${MAX_STATUS_CHARS} exceeded`);
  if (input.language != null && !LANGUAGE_RE.test(input.language)) throw validation('Language is not a valid ISO 639 code');
}

/** Resolves local mentions in the text to accounts, returns (lower-cased username → account). */
async function resolveMentions(ctx: AppContext, trx: Trx, text: string) {
  const names = new Set<string>();
  for (const t of tokenize(text)) if (t.kind === 'mention') {
    const n = localMentionName(t, ctx.urls.domain);
    if (n) names.add(n);
  }
  if (names.size === 0) return new Map<string, { id: string; username: string; url: string }>();
  const rows = await trx.selectFrom('accounts').select(['id', 'username', 'username_lower']).where('username_lower', 'in', [...names]).execute();
  return new Map(rows.map((r) => [r.username_lower, { id: r.id, username: r.username, url: accountUrl(ctx.urls, r.username) }]));
}

async function upsertTags(ctx: AppContext, trx: Trx, names: string[]): Promise<string[]> {
  if (names.length === 0) return [];
  const now = ctx.now().toISOString();
  await trx
    .insertInto('tags')
    .values(names.map((name) => ({ id: ctx.ids.next(), name, created_at: now })))
    .onConflict((oc) => oc.column('name').doNothing())
    .execute();
  const rows = await trx.selectFrom('tags').select('id').where('name', 'in', names).execute();
  return rows.map((r) => r.id);
}

export async function createStatus(ctx: AppContext, req: CreateStatusRequest): Promise<{ status: Status; created: boolean }> {
  checkInput(req);
  const result = await ctx.write(async (trx) => {
    const now = ctx.now().toISOString();
    const id = req.id ?? ctx.ids.next();
    if (req.idempotencyKey) {
      // Claim the key first. The primary key makes this atomic: of two
      // concurrent first requests, one inserts and the other finds its row.
      const claimed = await trx
        .insertInto('idempotency_keys')
        .values({ account_id: req.accountId, key: req.idempotencyKey, status_id: id, created_at: now })
        .onConflict((oc) => oc.columns(['account_id', 'key']).doNothing())
        .executeTakeFirst();
      if (Number(claimed.numInsertedOrUpdatedRows ?? 0n) === 0) {
        const existing = await trx
          .selectFrom('idempotency_keys')
          .innerJoin('statuses', 'statuses.id', 'idempotency_keys.status_id')
          .selectAll('statuses')
          .select('idempotency_keys.created_at as key_created_at')
          .where('idempotency_keys.account_id', '=', req.accountId)
          .where('idempotency_keys.key', '=', req.idempotencyKey)
          .executeTakeFirst();
        if (existing && Date.parse(existing.key_created_at) > ctx.now().getTime() - IDEMPOTENCY_TTL_MS) {
          const { key_created_at: _, ...status } = existing;
          return { status: status as Status, created: false, facts: null };
        }
        // An expired key (or one whose status is gone) is reused for this new status.
        await trx.updateTable('idempotency_keys').set({ status_id: id, created_at: now }).where('account_id', '=', req.accountId).where('key', '=', req.idempotencyKey).execute();
      }
    }

    const author = await trx.selectFrom('accounts').select(['id', 'followers_count']).where('id', '=', req.accountId).executeTakeFirstOrThrow();
    let parent: Status | null = null;
    if (req.inReplyToId) {
      parent = await findVisibleStatus({ ...ctx, db: trx }, req.inReplyToId, req.accountId);
      if (!parent || parent.reblog_of_id) throw notFound();
    }
    const mentions = await resolveMentions(ctx, trx, req.text);
    const { tags } = extract(req.text);
    const tagIds = await upsertTags(ctx, trx, tags);
    const visibility = req.visibility ?? 'public';
    const status = await trx
      .insertInto('statuses')
      .values({
        id,
        account_id: req.accountId,
        text: req.text,
        content: renderHtml(req.text, { baseUrl: ctx.urls.base, domain: ctx.urls.domain, mentions }),
        spoiler_text: req.spoilerText ?? '',
        sensitive: req.sensitive || (req.spoilerText ?? '') !== '' ? 1 : 0,
        visibility,
        language: req.language ?? null,
        in_reply_to_id: parent?.id ?? null,
        in_reply_to_account_id: parent?.account_id ?? null,
        reblog_of_id: null,
        application_id: req.applicationId,
        distribution: distributionFor(ctx, author.followers_count),
        created_at: now,
        edited_at: null,
        deleted_at: null,
      })
      .returningAll()
      .executeTakeFirstOrThrow();
    const mentionIds = [...new Set([...mentions.values()].map((m) => m.id))];
    if (mentionIds.length) await trx.insertInto('mentions').values(mentionIds.map((account_id) => ({ status_id: id, account_id }))).execute();
    if (tagIds.length) await trx.insertInto('status_tags').values(tagIds.map((tag_id) => ({ status_id: id, tag_id }))).execute();
    // The author sees their own post at once; followers get it from the fan-out job.
    await trx.insertInto('home_feed').values({ account_id: req.accountId, status_id: id, author_id: req.accountId, reblog_of_author_id: null }).execute();
    await trx.updateTable('accounts').set({ statuses_count: increment('statuses_count'), last_status_at: now }).where('id', '=', req.accountId).execute();
    if (parent) await trx.updateTable('statuses').set({ replies_count: increment('replies_count') }).where('id', '=', parent.id).execute();
    await enqueue(ctx, trx, 'fanout', { statusId: id });
    for (const accountId of mentionIds) {
      if (accountId !== req.accountId) await enqueue(ctx, trx, 'notify', { accountId, fromAccountId: req.accountId, type: 'mention', statusId: id });
    }
    return { status, created: true, facts: await statusFacts(trx, status) };
  });
  if (result.facts) {
    ctx.kickJobs();
    ctx.bus.publish({ type: 'status.created', status: result.facts });
  }
  return { status: result.status, created: result.created };
}

async function ownStatus(trx: Trx, id: string, accountId: string): Promise<Status> {
  const s = await trx.selectFrom('statuses').selectAll().where('id', '=', id).where('deleted_at', 'is', null).executeTakeFirst();
  // Someone else's status is a 404, as in Mastodon: a 403 would tell a stranger that a private status exists.
  if (!s || s.reblog_of_id || s.account_id !== accountId) throw notFound();
  return s;
}

export async function editStatus(ctx: AppContext, accountId: string, id: string, input: Omit<StatusInput, 'visibility' | 'inReplyToId'>): Promise<Status> {
  checkInput(input);
  const status = await ctx.write(async (trx) => {
    const old = await ownStatus(trx, id, accountId);
    const now = ctx.now().toISOString();
    // The first edit also records the original, so history shows every version.
    const hasHistory = await trx.selectFrom('status_edits').select('id').where('status_id', '=', id).limit(1).executeTakeFirst();
    if (!hasHistory) {
      await trx
        .insertInto('status_edits')
        .values({ id: ctx.ids.next(), status_id: id, text: old.text, content: old.content, spoiler_text: old.spoiler_text, sensitive: old.sensitive, created_at: old.created_at })
        .execute();
    }
    const mentions = await resolveMentions(ctx, trx, input.text);
    const content = renderHtml(input.text, { baseUrl: ctx.urls.base, domain: ctx.urls.domain, mentions });
    const spoiler = input.spoilerText ?? '';
    const sensitive = input.sensitive || spoiler !== '' ? 1 : 0;
    const updated = await trx
      .updateTable('statuses')
      .set({ text: input.text, content, spoiler_text: spoiler, sensitive, language: input.language === undefined ? old.language : input.language, edited_at: now })
      .where('id', '=', id)
      .returningAll()
      .executeTakeFirstOrThrow();
    await trx.insertInto('status_edits').values({ id: ctx.ids.next(), status_id: id, text: input.text, content, spoiler_text: spoiler, sensitive, created_at: now }).execute();
    // Mentions and tags follow the new text; people newly mentioned are notified.
    const before = new Set((await trx.selectFrom('mentions').select('account_id').where('status_id', '=', id).execute()).map((r) => r.account_id));
    const after = [...new Set([...mentions.values()].map((m) => m.id))];
    await trx.deleteFrom('mentions').where('status_id', '=', id).execute();
    if (after.length) await trx.insertInto('mentions').values(after.map((account_id) => ({ status_id: id, account_id }))).execute();
    await trx.deleteFrom('status_tags').where('status_id', '=', id).execute();
    const tagIds = await upsertTags(ctx, trx, extract(input.text).tags);
    if (tagIds.length) await trx.insertInto('status_tags').values(tagIds.map((tag_id) => ({ status_id: id, tag_id }))).execute();
    for (const a of after) if (!before.has(a) && a !== accountId) await enqueue(ctx, trx, 'notify', { accountId: a, fromAccountId: accountId, type: 'mention', statusId: id });
    // Those who reblogged it are told it changed, as Mastodon does.
    const rebloggers = await trx.selectFrom('statuses').select('account_id').where('reblog_of_id', '=', id).where('deleted_at', 'is', null).execute();
    for (const r of rebloggers) if (r.account_id !== accountId) await enqueue(ctx, trx, 'notify', { accountId: r.account_id, fromAccountId: accountId, type: 'update', statusId: id });
    return { updated, facts: await statusFacts(trx, updated) };
  });
  ctx.kickJobs();
  ctx.bus.publish({ type: 'status.updated', status: status.facts });
  return status.updated;
}

export async function statusHistory(ctx: AppContext, id: string) {
  return ctx.db.selectFrom('status_edits').selectAll().where('status_id', '=', id).orderBy('id', 'asc').execute();
}

/** Soft-deletes a status (and the reblogs of it); returns it with its source text, for delete-and-redraft. */
export async function deleteStatus(ctx: AppContext, accountId: string, id: string): Promise<Status> {
  const { status, deleted } = await ctx.write(async (trx) => {
    const s = await ownStatus(trx, id, accountId);
    const deleted = [await softDelete(ctx, trx, s)];
    const reblogs = await trx.selectFrom('statuses').selectAll().where('reblog_of_id', '=', id).where('deleted_at', 'is', null).execute();
    for (const r of reblogs) deleted.push(await softDelete(ctx, trx, r));
    return { status: s, deleted };
  });
  ctx.kickJobs();
  for (const facts of deleted) ctx.bus.publish({ type: 'status.deleted', status: facts });
  return status;
}

async function softDelete(ctx: AppContext, trx: Trx, s: Status): Promise<StatusFacts> {
  const facts = await statusFacts(trx, s);
  const now = ctx.now().toISOString();
  await trx.updateTable('statuses').set({ deleted_at: now }).where('id', '=', s.id).execute();
  await trx.updateTable('accounts').set({ statuses_count: decrement('statuses_count') }).where('id', '=', s.account_id).execute();
  if (s.in_reply_to_id) await trx.updateTable('statuses').set({ replies_count: decrement('replies_count') }).where('id', '=', s.in_reply_to_id).execute();
  if (s.reblog_of_id) await trx.updateTable('statuses').set({ reblogs_count: decrement('reblogs_count') }).where('id', '=', s.reblog_of_id).execute();
  await trx.deleteFrom('idempotency_keys').where('status_id', '=', s.id).execute();
  await enqueue(ctx, trx, 'unfanout', { statusId: s.id });
  return facts;
}

/** The row as it is after this transaction's own updates (counters), for the response. */
function reread(trx: Trx, id: string): Promise<Status> {
  return trx.selectFrom('statuses').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
}

/** A status the viewer may act on, or 404. */
async function visibleTarget(ctx: AppContext, trx: Trx, viewerId: string, id: string): Promise<Status> {
  const s = await findVisibleStatus({ ...ctx, db: trx }, id, viewerId);
  if (!s) throw notFound();
  // Acting on a reblog acts on the status it reblogs, as Mastodon does.
  if (s.reblog_of_id) {
    const original = await findVisibleStatus({ ...ctx, db: trx }, s.reblog_of_id, viewerId);
    if (!original) throw notFound();
    return original;
  }
  return s;
}

export async function favourite(ctx: AppContext, accountId: string, id: string): Promise<Status> {
  const s = await ctx.write(async (trx) => {
    const target = await visibleTarget(ctx, trx, accountId, id);
    const inserted = await trx
      .insertInto('favourites')
      .values({ id: ctx.ids.next(), account_id: accountId, status_id: target.id, created_at: ctx.now().toISOString() })
      .onConflict((oc) => oc.columns(['account_id', 'status_id']).doNothing())
      .executeTakeFirst();
    if (Number(inserted.numInsertedOrUpdatedRows ?? 0n) > 0) {
      await trx.updateTable('statuses').set({ favourites_count: increment('favourites_count') }).where('id', '=', target.id).execute();
      if (target.account_id !== accountId) await enqueue(ctx, trx, 'notify', { accountId: target.account_id, fromAccountId: accountId, type: 'favourite', statusId: target.id });
    }
    return reread(trx, target.id);
  });
  ctx.kickJobs();
  return s;
}

export async function unfavourite(ctx: AppContext, accountId: string, id: string): Promise<Status> {
  return ctx.write(async (trx) => {
    const target = await visibleTarget(ctx, trx, accountId, id);
    const del = await trx.deleteFrom('favourites').where('account_id', '=', accountId).where('status_id', '=', target.id).executeTakeFirst();
    if (Number(del.numDeletedRows) > 0) {
      await trx.updateTable('statuses').set({ favourites_count: decrement('favourites_count') }).where('id', '=', target.id).execute();
    }
    return reread(trx, target.id);
  });
}

export async function bookmark(ctx: AppContext, accountId: string, id: string, on: boolean): Promise<Status> {
  return ctx.write(async (trx) => {
    const target = await visibleTarget(ctx, trx, accountId, id);
    if (on) {
      await trx
        .insertInto('bookmarks')
        .values({ id: ctx.ids.next(), account_id: accountId, status_id: target.id, created_at: ctx.now().toISOString() })
        .onConflict((oc) => oc.columns(['account_id', 'status_id']).doNothing())
        .execute();
    } else {
      await trx.deleteFrom('bookmarks').where('account_id', '=', accountId).where('status_id', '=', target.id).execute();
    }
    return target;
  });
}

/** Reblogs a status; reblogging twice returns the existing reblog. Returns the reblog (the wrapper status). */
export async function reblog(ctx: AppContext, accountId: string, id: string, visibility: Visibility = 'public'): Promise<Status> {
  const s = await ctx.write(async (trx) => {
    const target = await visibleTarget(ctx, trx, accountId, id);
    if (!canReblog(target.visibility) && !(target.visibility === 'private' && target.account_id === accountId)) {
      throw new StarlingError('forbidden', 'This action is not allowed');
    }
    const existing = await trx.selectFrom('statuses').selectAll().where('account_id', '=', accountId).where('reblog_of_id', '=', target.id).where('deleted_at', 'is', null).executeTakeFirst();
    if (existing) return { row: existing, facts: null };
    const now = ctx.now().toISOString();
    const author = await trx.selectFrom('accounts').select('followers_count').where('id', '=', accountId).executeTakeFirstOrThrow();
    const reblogVisibility: Visibility = target.visibility === 'private' ? 'private' : visibility === 'direct' ? 'public' : visibility;
    const row = await trx
      .insertInto('statuses')
      .values({
        id: ctx.ids.next(),
        account_id: accountId,
        text: '',
        content: '',
        spoiler_text: '',
        sensitive: 0,
        visibility: reblogVisibility,
        language: null,
        in_reply_to_id: null,
        in_reply_to_account_id: null,
        reblog_of_id: target.id,
        application_id: null,
        distribution: distributionFor(ctx, author.followers_count),
        created_at: now,
        edited_at: null,
        deleted_at: null,
      })
      .returningAll()
      .executeTakeFirstOrThrow();
    await trx.insertInto('home_feed').values({ account_id: accountId, status_id: row.id, author_id: accountId, reblog_of_author_id: target.account_id }).execute();
    await trx.updateTable('statuses').set({ reblogs_count: increment('reblogs_count') }).where('id', '=', target.id).execute();
    await trx.updateTable('accounts').set({ statuses_count: increment('statuses_count'), last_status_at: now }).where('id', '=', accountId).execute();
    await enqueue(ctx, trx, 'fanout', { statusId: row.id });
    if (target.account_id !== accountId) await enqueue(ctx, trx, 'notify', { accountId: target.account_id, fromAccountId: accountId, type: 'reblog', statusId: row.id });
    return { row, facts: await statusFacts(trx, row) };
  });
  if (s.facts) {
    ctx.kickJobs();
    ctx.bus.publish({ type: 'status.created', status: s.facts });
  }
  return s.row;
}

/** Undoes a reblog; returns the original status. */
export async function unreblog(ctx: AppContext, accountId: string, id: string): Promise<Status> {
  const s = await ctx.write(async (trx) => {
    const target = await visibleTarget(ctx, trx, accountId, id);
    const existing = await trx.selectFrom('statuses').selectAll().where('account_id', '=', accountId).where('reblog_of_id', '=', target.id).where('deleted_at', 'is', null).executeTakeFirst();
    const facts = existing ? await softDelete(ctx, trx, existing) : null;
    return { original: await reread(trx, target.id), facts };
  });
  if (s.facts) {
    ctx.kickJobs();
    ctx.bus.publish({ type: 'status.deleted', status: s.facts });
  }
  return s.original;
}
