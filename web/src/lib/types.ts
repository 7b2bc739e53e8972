/** The Mastodon entities the web app reads (the fields it uses). */

export interface Account {
  id: string;
  username: string;
  acct: string;
  display_name: string;
  locked: boolean;
  bot: boolean;
  note: string;
  url: string;
  avatar: string;
  header: string;
  followers_count: number;
  following_count: number;
  statuses_count: number;
  created_at: string;
  /** verify_credentials only: the signed-in person's role (name "Admin", or permission bit 1, for administrators). */
  role?: { id: string; name: string; permissions: string };
}

export interface Tag {
  name: string;
  url: string;
  history?: { day: string; uses: string; accounts: string }[];
  following?: boolean;
}

export interface Mention {
  id: string;
  username: string;
  acct: string;
  url: string;
}

export type Visibility = 'public' | 'unlisted' | 'private' | 'direct';

export interface Status {
  id: string;
  url: string | null;
  created_at: string;
  edited_at: string | null;
  account: Account;
  content: string;
  visibility: Visibility;
  sensitive: boolean;
  spoiler_text: string;
  mentions: Mention[];
  tags: Tag[];
  reblogs_count: number;
  favourites_count: number;
  replies_count: number;
  in_reply_to_id: string | null;
  in_reply_to_account_id: string | null;
  reblog: Status | null;
  favourited?: boolean;
  reblogged?: boolean;
  bookmarked?: boolean;
}

export interface Relationship {
  id: string;
  following: boolean;
  followed_by: boolean;
  requested: boolean;
  blocking: boolean;
  muting: boolean;
}

export interface Notification {
  id: string;
  type: string;
  created_at: string;
  account: Account;
  status?: Status | null;
}

export interface Context {
  ancestors: Status[];
  descendants: Status[];
}

export interface SearchResults {
  accounts: Account[];
  statuses: Status[];
  hashtags: Tag[];
}

export interface StatusSource {
  id: string;
  text: string;
  spoiler_text: string;
}

export interface Instance {
  domain: string;
  title: string;
  description?: string;
  registrations?: { enabled: boolean };
  configuration?: { statuses?: { max_characters?: number } };
}

/** Statuspage's summary.json, as /status/api/summary.json serves it. */
export interface StatusSummary {
  status: { indicator: 'none' | 'minor' | 'major' | 'critical' | 'maintenance' | string; description: string };
  components?: { name: string; status: string }[];
  incidents?: { name: string; status?: string; impact?: string }[];
}
