/**
 * The database schema as types. Ids are strings in TypeScript and 64-bit
 * integers in the database (see db.ts for the conversion); booleans are 0/1
 * so that SQLite and PostgreSQL (smallint) read the same; times are ISO-8601
 * strings in UTC, which sort correctly as text.
 */
import type { Generated, Insertable, Selectable, Updateable } from 'kysely';

type Bool = 0 | 1;

export interface AccountTable {
  id: string;
  username: string;
  /** Lower-cased username, unique: lookups are case-insensitive. */
  username_lower: string;
  display_name: string;
  note: string;
  locked: Bool;
  bot: Bool;
  discoverable: Bool;
  followers_count: Generated<number>;
  following_count: Generated<number>;
  statuses_count: Generated<number>;
  last_status_at: string | null;
  created_at: string;
  updated_at: string;
}

export interface UserTable {
  account_id: string;
  email: string;
  password_hash: string;
  role: 'user' | 'moderator' | 'admin';
  locale: string;
  default_visibility: string;
  default_sensitive: Bool;
  default_language: string | null;
  disabled: Generated<Bool>;
  created_at: string;
}

export interface OauthApplicationTable {
  id: string;
  name: string;
  website: string | null;
  /** Newline-separated. */
  redirect_uris: string;
  scopes: string;
  client_id: string;
  client_secret: string;
  created_at: string;
}

export interface OauthCodeTable {
  code_hash: string;
  application_id: string;
  account_id: string;
  redirect_uri: string;
  scopes: string;
  code_challenge: string | null;
  code_challenge_method: string | null;
  expires_at: string;
  used_at: string | null;
}

export interface OauthTokenTable {
  id: string;
  /** SHA-256 of the token: a stolen database does not yield usable tokens. */
  token_hash: string;
  application_id: string;
  /** Null for client_credentials tokens, which act for the app, not a person. */
  account_id: string | null;
  scopes: string;
  created_at: string;
  revoked_at: string | null;
}

export interface StatusTable {
  id: string;
  account_id: string;
  text: string;
  content: string;
  spoiler_text: string;
  sensitive: Bool;
  visibility: 'public' | 'unlisted' | 'private' | 'direct';
  language: string | null;
  in_reply_to_id: string | null;
  in_reply_to_account_id: string | null;
  reblog_of_id: string | null;
  application_id: string | null;
  /** 'push': fanned out into followers' home feeds; 'pull': merged into them on read (authors with very many followers). */
  distribution: 'push' | 'pull';
  replies_count: Generated<number>;
  reblogs_count: Generated<number>;
  favourites_count: Generated<number>;
  created_at: string;
  edited_at: string | null;
  deleted_at: string | null;
}

export interface StatusEditTable {
  id: string;
  status_id: string;
  text: string;
  content: string;
  spoiler_text: string;
  sensitive: Bool;
  created_at: string;
}

export interface MentionTable {
  status_id: string;
  account_id: string;
}

export interface TagTable {
  id: string;
  name: string;
  created_at: string;
}

export interface StatusTagTable {
  status_id: string;
  tag_id: string;
}

export interface FavouriteTable {
  id: string;
  account_id: string;
  status_id: string;
  created_at: string;
}

export type BookmarkTable = FavouriteTable;

export interface FollowTable {
  id: string;
  account_id: string;
  target_account_id: string;
  show_reblogs: Bool;
  notify: Bool;
  created_at: string;
}

export type FollowRequestTable = FollowTable;

export interface BlockTable {
  id: string;
  account_id: string;
  target_account_id: string;
  created_at: string;
}

export interface MuteTable extends BlockTable {
  hide_notifications: Bool;
  expires_at: string | null;
}

export interface HomeFeedTable {
  account_id: string;
  status_id: string;
  /** Author of the entry's status, so blocks and mutes can be applied without a join. */
  author_id: string;
  /** For reblogs: the author of the reblogged status. */
  reblog_of_author_id: string | null;
}

export interface NotificationTable {
  id: string;
  account_id: string;
  from_account_id: string;
  type: 'mention' | 'status' | 'reblog' | 'follow' | 'follow_request' | 'favourite' | 'update';
  status_id: string | null;
  /** Makes a repeated job a no-op: one notification per (recipient, type, actor, status). */
  dedupe_key: string;
  created_at: string;
}

export interface IdempotencyKeyTable {
  account_id: string;
  key: string;
  status_id: string;
  created_at: string;
}

export interface JobTable {
  id: string;
  type: string;
  payload: string;
  run_at: string;
  attempts: Generated<number>;
  locked_until: string | null;
  last_error: string | null;
  created_at: string;
}

export interface MarkerTable {
  account_id: string;
  timeline: 'home' | 'notifications';
  last_read_id: string;
  version: Generated<number>;
  updated_at: string;
}

export interface OpsHeartbeatTable {
  node_id: number;
  beat_at: string;
}

export interface ProbeResultTable {
  id: string;
  probe: string;
  ok: Bool;
  latency_ms: number | null;
  detail: string;
  node_id: Generated<number>;
  created_at: string;
}

export interface ComponentStatusTable {
  component: string;
  status: string;
  since: string;
  updated_at: string;
  reason: string | null;
}

export interface ComponentDailyTable {
  component: string;
  day: string;
  samples: Generated<number>;
  ok_samples: Generated<number>;
  worst_status: Generated<string>;
}

export interface IncidentTable {
  id: string;
  title: string;
  status: string;
  impact: string;
  source: string;
  /** JSON array of component ids. */
  components: string;
  created_at: string;
  updated_at: string;
  resolved_at: string | null;
}

export interface IncidentUpdateTable {
  id: string;
  incident_id: string;
  status: string;
  body: string;
  author: string;
  created_at: string;
}

export interface MaintenanceTable {
  id: string;
  title: string;
  body: string;
  /** JSON array of component ids. */
  components: string;
  starts_at: string;
  ends_at: string;
  created_at: string;
  cancelled_at: string | null;
}

export interface StatusSubscriberTable {
  id: string;
  url: string;
  secret: string;
  confirm_token_hash: string;
  confirmed_at: string | null;
  created_at: string;
}

export interface Database {
  accounts: AccountTable;
  users: UserTable;
  oauth_applications: OauthApplicationTable;
  oauth_codes: OauthCodeTable;
  oauth_tokens: OauthTokenTable;
  statuses: StatusTable;
  status_edits: StatusEditTable;
  mentions: MentionTable;
  tags: TagTable;
  status_tags: StatusTagTable;
  favourites: FavouriteTable;
  bookmarks: BookmarkTable;
  follows: FollowTable;
  follow_requests: FollowRequestTable;
  blocks: BlockTable;
  mutes: MuteTable;
  home_feed: HomeFeedTable;
  notifications: NotificationTable;
  idempotency_keys: IdempotencyKeyTable;
  jobs: JobTable;
  markers: MarkerTable;
  ops_heartbeat: OpsHeartbeatTable;
  probe_results: ProbeResultTable;
  component_status: ComponentStatusTable;
  component_daily: ComponentDailyTable;
  incidents: IncidentTable;
  incident_updates: IncidentUpdateTable;
  maintenances: MaintenanceTable;
  status_subscribers: StatusSubscriberTable;
  followed_tags: FollowedTagTable;
  read_fences: ReadFenceTable;
}

export type Account = Selectable<AccountTable>;
export type NewAccount = Insertable<AccountTable>;
export type User = Selectable<UserTable>;
export type OauthApplication = Selectable<OauthApplicationTable>;
export type OauthToken = Selectable<OauthTokenTable>;
export type Status = Selectable<StatusTable>;
export type NewStatus = Insertable<StatusTable>;
export type StatusUpdate = Updateable<StatusTable>;
export type Follow = Selectable<FollowTable>;
export type Notification = Selectable<NotificationTable>;
export type Job = Selectable<JobTable>;

export interface FollowedTagTable {
  id: string;
  account_id: string;
  tag_id: string;
  created_at: string;
}

export type FollowedTag = Selectable<FollowedTagTable>;

/** store/replica.ts: the transaction (pg_current_xact_id() as text) that last wrote for an account. PostgreSQL only. */
export interface ReadFenceTable {
  account_id: string;
  xid: string;
}
