/**
 * People's own copies of their data, in the shapes Mastodon uses, so they can
 * take them to another server (or back here after a disaster):
 *
 * - the account archive: `actor.json` (an ActivityPub Person), `outbox.json`
 *   (an OrderedCollection of Create and Announce activities with Note objects),
 *   `likes.json` and `bookmarks.json` (OrderedCollections of post URIs), as in
 *   Mastodon's "Request your archive" export;
 * - the CSV exports of Mastodon's "Data export" page: following_accounts.csv,
 *   blocked_accounts.csv, muted_accounts.csv, bookmarks.csv;
 * - import of those CSVs (follows, blocks, mutes, bookmarks), merging into what
 *   the account has. Without federation only this server's accounts and posts
 *   can be found; every other row is reported as skipped, with the reason.
 */
import { validation } from '../domain/errors.js';
import type { Account } from '../store/schema.js';
import type { AppContext } from './context.js';
import { requireAccount } from './accounts.js';
import { block, follow, mute } from './graph.js';
import { bookmark } from './posts.js';
import { findVisibleStatus } from './views.js';

const AS_PUBLIC = 'https://www.w3.org/ns/activitystreams#Public';
const CONTEXT = ['https://www.w3.org/ns/activitystreams', { sensitive: 'as:sensitive', Hashtag: 'as:Hashtag' }];

export const CSV_KINDS = ['following', 'blocks', 'mutes', 'bookmarks'] as const;
export type CsvKind = (typeof CSV_KINDS)[number];
/** Mastodon's file names for each export. */
export const CSV_FILES: Record<CsvKind, string> = {
  following: 'following_accounts.csv',
  blocks: 'blocked_accounts.csv',
  mutes: 'muted_accounts.csv',
  bookmarks: 'bookmarks.csv',
};
/** An import is one request; more rows than this is a 422 (Mastodon's own limit for follows is 1,000 per import on small servers). */
export const MAX_IMPORT_ROWS = 10_000;

const actorUri = (ctx: AppContext, username: string) => `${ctx.urls.base}/users/${username}`;
const statusUri = (ctx: AppContext, username: string, id: string) => `${actorUri(ctx, username)}/statuses/${id}`;

export interface AccountArchive {
  'actor.json': Record<string, unknown>;
  'outbox.json': Record<string, unknown>;
  'likes.json': Record<string, unknown>;
  'bookmarks.json': Record<string, unknown>;
}

export async function exportArchive(ctx: AppContext, accountId: string): Promise<AccountArchive> {
  const account = await requireAccount(ctx, accountId);
  const actor = actorUri(ctx, account.username);
  const statuses = await ctx.db.selectFrom('statuses').selectAll().where('account_id', '=', accountId).where('deleted_at', 'is', null).orderBy('id').execute();
  const ids = statuses.map((s) => s.id);
  const tags = ids.length
    ? await ctx.db.selectFrom('status_tags').innerJoin('tags', 'tags.id', 'status_tags.tag_id').select(['status_tags.status_id', 'tags.name']).where('status_tags.status_id', 'in', ids).execute()
    : [];
  const mentions = ids.length
    ? await ctx.db.selectFrom('mentions').innerJoin('accounts', 'accounts.id', 'mentions.account_id').select(['mentions.status_id', 'accounts.username']).where('mentions.status_id', 'in', ids).execute()
    : [];
  // Replies and reblogs point at other posts by URI, so their authors' usernames are needed.
  const related = [...new Set(statuses.flatMap((s) => [s.in_reply_to_id, s.reblog_of_id]).filter((x): x is string => x !== null))];
  const relatedRows = related.length
    ? await ctx.db.selectFrom('statuses').innerJoin('accounts', 'accounts.id', 'statuses.account_id').select(['statuses.id', 'accounts.username']).where('statuses.id', 'in', related).execute()
    : [];
  const authorOf = new Map(relatedRows.map((r) => [r.id, r.username]));
  const uriOf = (id: string | null) => (id && authorOf.has(id) ? statusUri(ctx, authorOf.get(id)!, id) : null);

  const items = statuses.map((s) => {
    const uri = statusUri(ctx, account.username, s.id);
    const mentioned = mentions.filter((m) => m.status_id === s.id).map((m) => actorUri(ctx, m.username));
    const followers = `${actor}/followers`;
    const [to, cc] =
      s.visibility === 'public' ? [[AS_PUBLIC], [followers, ...mentioned]]
      : s.visibility === 'unlisted' ? [[followers], [AS_PUBLIC, ...mentioned]]
      : s.visibility === 'private' ? [[followers], mentioned]
      : [mentioned, []];
    if (s.reblog_of_id) {
      return { id: `${uri}/activity`, type: 'Announce', actor, published: s.created_at, to, cc, object: uriOf(s.reblog_of_id) };
    }
    return {
      id: `${uri}/activity`,
      type: 'Create',
      actor,
      published: s.created_at,
      to,
      cc,
      object: {
        id: uri,
        type: 'Note',
        summary: s.spoiler_text || null,
        inReplyTo: uriOf(s.in_reply_to_id),
        published: s.created_at,
        updated: s.edited_at ?? undefined,
        url: `${ctx.urls.base}/@${account.username}/${s.id}`,
        attributedTo: actor,
        to,
        cc,
        sensitive: s.sensitive === 1,
        content: s.content,
        ...(s.language ? { contentMap: { [s.language]: s.content } } : {}),
        // Media attachments do not exist yet in Starling; the field is kept so importers find the shape they expect.
        attachment: [],
        tag: [
          ...tags.filter((t) => t.status_id === s.id).map((t) => ({ type: 'Hashtag', href: `${ctx.urls.base}/tags/${t.name}`, name: `#${t.name}` })),
          ...mentions.filter((m) => m.status_id === s.id).map((m) => ({ type: 'Mention', href: actorUri(ctx, m.username), name: `@${m.username}@${ctx.urls.domain}` })),
        ],
      },
    };
  });

  const collection = (id: string, uris: string[]) => ({ '@context': 'https://www.w3.org/ns/activitystreams', id, type: 'OrderedCollection', totalItems: uris.length, orderedItems: uris });
  return {
    'actor.json': {
      '@context': CONTEXT,
      id: actor,
      type: 'Person',
      following: `${actor}/following`,
      followers: `${actor}/followers`,
      inbox: `${actor}/inbox`,
      outbox: 'outbox.json',
      likes: 'likes.json',
      bookmarks: 'bookmarks.json',
      preferredUsername: account.username,
      name: account.display_name,
      summary: account.note,
      url: `${ctx.urls.base}/@${account.username}`,
      manuallyApprovesFollowers: account.locked === 1,
      discoverable: account.discoverable === 1,
      published: account.created_at,
    },
    'outbox.json': { '@context': CONTEXT, id: 'outbox.json', type: 'OrderedCollection', totalItems: items.length, orderedItems: items },
    'likes.json': collection('likes.json', await likedUris(ctx, accountId, 'favourites')),
    'bookmarks.json': collection('bookmarks.json', await likedUris(ctx, accountId, 'bookmarks')),
  };
}

async function likedUris(ctx: AppContext, accountId: string, table: 'favourites' | 'bookmarks'): Promise<string[]> {
  const rows = await ctx.db
    .selectFrom(table)
    .innerJoin('statuses', 'statuses.id', `${table}.status_id`)
    .innerJoin('accounts', 'accounts.id', 'statuses.account_id')
    .select(['statuses.id', 'accounts.username'])
    .where(`${table}.account_id`, '=', accountId)
    .orderBy(`${table}.id`)
    .execute();
  return rows.map((r) => statusUri(ctx, r.username, r.id));
}

const acct = (ctx: AppContext, a: Pick<Account, 'username'>) => `${a.username}@${ctx.urls.domain}`;

export async function exportCsv(ctx: AppContext, accountId: string, kind: CsvKind): Promise<string> {
  await requireAccount(ctx, accountId);
  const lines: string[] = [];
  if (kind === 'following') {
    lines.push('Account address,Show boosts,Notify on new posts,Languages');
    const rows = await ctx.db.selectFrom('follows').innerJoin('accounts', 'accounts.id', 'follows.target_account_id').select(['accounts.username', 'follows.show_reblogs', 'follows.notify']).where('follows.account_id', '=', accountId).orderBy('follows.id').execute();
    for (const r of rows) lines.push(`${acct(ctx, r)},${r.show_reblogs === 1},${r.notify === 1},`);
  } else if (kind === 'blocks') {
    // Mastodon's blocked_accounts.csv has no header: one address a line.
    const rows = await ctx.db.selectFrom('blocks').innerJoin('accounts', 'accounts.id', 'blocks.target_account_id').select('accounts.username').where('blocks.account_id', '=', accountId).orderBy('blocks.id').execute();
    for (const r of rows) lines.push(acct(ctx, r));
  } else if (kind === 'mutes') {
    lines.push('Account address,Hide notifications');
    const rows = await ctx.db.selectFrom('mutes').innerJoin('accounts', 'accounts.id', 'mutes.target_account_id').select(['accounts.username', 'mutes.hide_notifications']).where('mutes.account_id', '=', accountId).orderBy('mutes.id').execute();
    for (const r of rows) lines.push(`${acct(ctx, r)},${r.hide_notifications === 1}`);
  } else {
    const rows = await ctx.db
      .selectFrom('bookmarks')
      .innerJoin('statuses', 'statuses.id', 'bookmarks.status_id')
      .innerJoin('accounts', 'accounts.id', 'statuses.account_id')
      .select(['statuses.id', 'accounts.username'])
      .where('bookmarks.account_id', '=', accountId)
      .orderBy('bookmarks.id')
      .execute();
    for (const r of rows) lines.push(statusUri(ctx, r.username, r.id));
  }
  return lines.map((l) => `${l}\n`).join('');
}

export interface ImportResult {
  type: CsvKind;
  total: number;
  imported: number;
  skipped: { line: number; value: string; reason: string }[];
}

/** One CSV line's fields; quoted fields (with "" for a quote) as well as plain ones. */
function fields(line: string): string[] {
  const out: string[] = [];
  let cur = '';
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (quoted) {
      if (c === '"' && line[i + 1] === '"') (cur += '"'), i++;
      else if (c === '"') quoted = false;
      else cur += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') out.push(cur.trim()), (cur = '');
    else cur += c;
  }
  out.push(cur.trim());
  return out;
}

const bool = (v: string | undefined, def: boolean) => (v === undefined || v === '' ? def : !['false', '0', 'no'].includes(v.toLowerCase()));

export async function importCsv(ctx: AppContext, accountId: string, kind: CsvKind, text: string): Promise<ImportResult> {
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/);
  const rows: { line: number; cols: string[] }[] = [];
  lines.forEach((l, i) => {
    if (!l.trim()) return;
    const cols = fields(l);
    // A header row names its columns; Mastodon writes "Account address,..." (follows, mutes) and none for blocks and bookmarks.
    if (i === 0 && /^account address$/i.test(cols[0] ?? '')) return;
    rows.push({ line: i + 1, cols });
  });
  if (!rows.length) throw validation('the file has no rows to import');
  if (rows.length > MAX_IMPORT_ROWS) throw validation(`the file has ${rows.length} rows, at most ${MAX_IMPORT_ROWS} can be imported at once`);
  const result: ImportResult = { type: kind, total: rows.length, imported: 0, skipped: [] };
  const skip = (line: number, value: string, reason: string) => {
    if (result.skipped.length < 1000) result.skipped.push({ line, value, reason });
  };
  for (const { line, cols } of rows) {
    const value = cols[0] ?? '';
    try {
      if (kind === 'bookmarks') {
        const id = localStatusId(ctx, value);
        if (!id) {
          skip(line, value, 'not a post on this server');
          continue;
        }
        if (!(await findVisibleStatus(ctx, id, accountId))) {
          skip(line, value, 'post not found');
          continue;
        }
        await bookmark(ctx, accountId, id, true);
      } else {
        const target = await localAccount(ctx, value);
        if (typeof target === 'string') {
          skip(line, value, target);
          continue;
        }
        if (target.id === accountId) {
          skip(line, value, 'that is this account');
          continue;
        }
        if (kind === 'following') await follow(ctx, accountId, target.id, { reblogs: bool(cols[1], true), notify: bool(cols[2], false) });
        else if (kind === 'blocks') await block(ctx, accountId, target.id);
        else await mute(ctx, accountId, target.id, { notifications: bool(cols[1], true) });
      }
      result.imported++;
    } catch (err) {
      // A row the services refuse (e.g. following someone who blocks you) is reported, not fatal to the rest.
      skip(line, value, err instanceof Error ? err.message : String(err));
    }
  }
  return result;
}

async function localAccount(ctx: AppContext, address: string): Promise<{ id: string } | string> {
  const m = /^@?([a-z0-9_]{1,30})(?:@([^@\s]+))?$/i.exec(address);
  if (!m) return 'not an account address';
  if (m[2] && m[2].toLowerCase() !== ctx.urls.domain.toLowerCase()) return 'account on another server (federation is not supported yet)';
  const row = await ctx.db.selectFrom('accounts').select('id').where('username_lower', '=', m[1]!.toLowerCase()).executeTakeFirst();
  return row ?? 'account not found';
}

function localStatusId(ctx: AppContext, url: string): string | null {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return null;
  }
  if (u.host.toLowerCase() !== ctx.urls.domain.toLowerCase()) return null;
  // https://host/@user/ID, https://host/users/user/statuses/ID, https://host/statuses/ID
  const m = /^\/(?:@[a-z0-9_]+|users\/[a-z0-9_]+\/statuses|statuses)\/([1-9][0-9]{0,18})\/?$/i.exec(u.pathname);
  return m ? m[1]! : null;
}
