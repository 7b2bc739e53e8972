/**
 * Mastodon entity shapes, rendered from rows. Pure: the loaders in
 * services/views.ts gather the rows and viewer facts; this only shapes them.
 */
import { renderNote } from './text.js';
import type { Visibility } from './visibility.js';

/** The account fields rendering needs; the store's rows have these shapes. */
export interface AccountRecord {
  id: string;
  username: string;
  display_name: string;
  note: string;
  locked: 0 | 1;
  bot: 0 | 1;
  discoverable: 0 | 1;
  followers_count: number;
  following_count: number;
  statuses_count: number;
  last_status_at: string | null;
  created_at: string;
}

export interface StatusRecord {
  id: string;
  content: string;
  spoiler_text: string;
  sensitive: 0 | 1;
  visibility: Visibility;
  language: string | null;
  in_reply_to_id: string | null;
  in_reply_to_account_id: string | null;
  reblog_of_id: string | null;
  replies_count: number;
  reblogs_count: number;
  favourites_count: number;
  created_at: string;
  edited_at: string | null;
}

export interface Urls {
  /** e.g. https://starling.example (no trailing slash) */
  base: string;
  domain: string;
}

export interface MastoAccount {
  id: string;
  username: string;
  acct: string;
  display_name: string;
  locked: boolean;
  bot: boolean;
  discoverable: boolean;
  indexable: boolean;
  group: boolean;
  hide_collections: boolean;
  noindex: boolean;
  created_at: string;
  note: string;
  url: string;
  uri: string;
  avatar: string;
  avatar_static: string;
  header: string;
  header_static: string;
  followers_count: number;
  following_count: number;
  statuses_count: number;
  last_status_at: string | null;
  emojis: [];
  fields: [];
  roles: [];
}

export function accountUrl(urls: Urls, username: string): string {
  return `${urls.base}/@${username}`;
}

export function renderAccount(a: AccountRecord, urls: Urls): MastoAccount {
  return {
    id: a.id,
    username: a.username,
    acct: a.username,
    display_name: a.display_name,
    locked: a.locked === 1,
    bot: a.bot === 1,
    discoverable: a.discoverable === 1,
    indexable: a.discoverable === 1,
    group: false,
    hide_collections: false,
    noindex: false,
    // Mastodon rounds account creation to the day, to not leak activity patterns.
    created_at: `${a.created_at.slice(0, 10)}T00:00:00.000Z`,
    note: renderNote(a.note, { baseUrl: urls.base, domain: urls.domain, mentions: new Map() }),
    url: accountUrl(urls, a.username),
    uri: `${urls.base}/users/${a.username}`,
    avatar: `${urls.base}/avatars/original/missing.png`,
    avatar_static: `${urls.base}/avatars/original/missing.png`,
    header: `${urls.base}/headers/original/missing.png`,
    header_static: `${urls.base}/headers/original/missing.png`,
    followers_count: a.followers_count,
    following_count: a.following_count,
    statuses_count: a.statuses_count,
    last_status_at: a.last_status_at ? a.last_status_at.slice(0, 10) : null,
    emojis: [],
    fields: [],
    roles: [],
  };
}

export interface MastoMention {
  id: string;
  username: string;
  acct: string;
  url: string;
}

export interface MastoTag {
  name: string;
  url: string;
}

export interface MastoStatus {
  id: string;
  uri: string;
  url: string | null;
  created_at: string;
  edited_at: string | null;
  account: MastoAccount;
  content: string;
  visibility: Visibility;
  sensitive: boolean;
  spoiler_text: string;
  media_attachments: [];
  application: { name: string; website: string | null } | null;
  mentions: MastoMention[];
  tags: MastoTag[];
  emojis: [];
  reblogs_count: number;
  favourites_count: number;
  replies_count: number;
  in_reply_to_id: string | null;
  in_reply_to_account_id: string | null;
  reblog: MastoStatus | null;
  poll: null;
  card: null;
  language: string | null;
  text?: string;
  filtered: [];
  favourited?: boolean;
  reblogged?: boolean;
  muted?: boolean;
  bookmarked?: boolean;
  pinned?: boolean;
}

export interface StatusViewerFlags {
  favourited: boolean;
  reblogged: boolean;
  bookmarked: boolean;
  muted: boolean;
}

export function statusUrl(urls: Urls, username: string, id: string): string {
  return `${urls.base}/@${username}/${id}`;
}

export function renderStatus(
  s: StatusRecord,
  parts: {
    urls: Urls;
    account: MastoAccount;
    mentions: MastoMention[];
    tags: string[];
    application: { name: string; website: string | null } | null;
    reblog: MastoStatus | null;
    viewer: StatusViewerFlags | null;
  },
): MastoStatus {
  const out: MastoStatus = {
    id: s.id,
    uri: `${parts.urls.base}/users/${parts.account.username}/statuses/${s.id}`,
    url: s.reblog_of_id ? null : statusUrl(parts.urls, parts.account.username, s.id),
    created_at: s.created_at,
    edited_at: s.edited_at,
    account: parts.account,
    content: s.reblog_of_id ? '' : s.content,
    visibility: s.visibility,
    sensitive: s.sensitive === 1,
    spoiler_text: s.spoiler_text,
    media_attachments: [],
    application: parts.application,
    mentions: parts.mentions,
    tags: parts.tags.map((name) => ({ name, url: `${parts.urls.base}/tags/${encodeURIComponent(name)}` })),
    emojis: [],
    reblogs_count: s.reblogs_count,
    favourites_count: s.favourites_count,
    replies_count: s.replies_count,
    in_reply_to_id: s.in_reply_to_id,
    in_reply_to_account_id: s.in_reply_to_account_id,
    reblog: parts.reblog,
    poll: null,
    card: null,
    language: s.language,
    filtered: [],
  };
  if (parts.viewer) {
    out.favourited = parts.viewer.favourited;
    out.reblogged = parts.viewer.reblogged;
    out.bookmarked = parts.viewer.bookmarked;
    out.muted = parts.viewer.muted;
    out.pinned = false;
  }
  return out;
}

export type NotificationType = 'mention' | 'status' | 'reblog' | 'follow' | 'follow_request' | 'favourite' | 'update';

/** Notification types whose entity carries the status they are about. */
export const STATUS_NOTIFICATION_TYPES: ReadonlySet<NotificationType> = new Set(['mention', 'status', 'reblog', 'favourite', 'update']);

/** The notification fields rendering needs; the store's rows have these shapes. */
export interface NotificationRecord {
  id: string;
  type: NotificationType;
  created_at: string;
}

export interface MastoNotification {
  id: string;
  type: NotificationType;
  created_at: string;
  /** Group key for grouped notifications; Starling does not group, so every one is its own group. */
  group_key: string;
  account: MastoAccount;
  /** Only for mention, status, reblog, favourite and update; for a reblog, the status that was reblogged. */
  status?: MastoStatus;
}

/**
 * Shapes a notification. A type that is about a status but has none to show
 * (deleted, or no longer visible to the recipient) renders as null: Mastodon
 * drops such notifications rather than showing them without their status.
 */
export function renderNotification(n: NotificationRecord, account: MastoAccount, status: MastoStatus | null): MastoNotification | null {
  const out: MastoNotification = { id: n.id, type: n.type, created_at: n.created_at, group_key: `ungrouped-${n.id}`, account };
  if (STATUS_NOTIFICATION_TYPES.has(n.type)) {
    if (!status) return null;
    out.status = status;
  }
  return out;
}
