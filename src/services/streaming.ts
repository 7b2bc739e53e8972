/**
 * The streaming hub: who is connected to this node, to which streams, and
 * which events each of them may see. It listens to the event bus, so a post
 * made on any node reaches streams on every node once the bus is NATS.
 *
 * Each authenticated subscriber carries the facts its filter needs (whom it
 * follows, blocks, mutes, which tags it follows), loaded once at connect and
 * kept current from relationship events, so deciding who gets a status costs
 * no query: only rendering it does, once per event.
 */
import { sql } from 'kysely';
import type { DomainEvent, StatusFacts } from '../bus/events.js';
import type { AppContext } from './context.js';
import { statusViews } from './views.js';
import { notificationView } from './notifications.js';
import { normalizeTag } from '../domain/text.js';

/** What a transport (WebSocket, SSE) gives the hub: a way to send, and to hang up. */
export interface StreamSink {
  /** Returns false if the message could not be queued (the connection is gone or too far behind). */
  send(stream: string[], event: string, payload: string): boolean;
  /** Hang up, e.g. because the consumer is too slow. */
  close(reason: string): void;
}

export type StreamKind = 'user' | 'user:notification' | 'public' | 'public:local' | 'public:remote' | 'public:media' | 'public:local:media' | 'public:remote:media' | 'hashtag' | 'hashtag:local';

export const STREAM_KINDS: readonly StreamKind[] = ['user', 'user:notification', 'public', 'public:local', 'public:remote', 'public:media', 'public:local:media', 'public:remote:media', 'hashtag', 'hashtag:local'];
export const AUTH_REQUIRED: ReadonlySet<StreamKind> = new Set(['user', 'user:notification']);

/** A channel this subscriber listens to: the kind, and for hashtags the tag as the client wrote it. */
interface Channel {
  kind: StreamKind;
  tag?: string;
}

export interface Subscriber {
  readonly id: number;
  readonly accountId: string | null;
  readonly sink: StreamSink;
  readonly channels: Map<string, Channel>;
  following: Map<string, { reblogs: boolean }>;
  hidden: Set<string>;
  followedTags: Set<string>;
}

const channelKey = (c: Channel) => (c.tag ? `${c.kind}:${normalizeTag(c.tag)}` : c.kind);
const streamName = (c: Channel) => (c.tag !== undefined ? [c.kind, c.tag] : [c.kind]);

export class StreamingHub {
  private nextId = 1;
  private readonly subscribers = new Set<Subscriber>();
  /** Subscribers by their account, for notifications, own posts and relationship changes. */
  private readonly byAccount = new Map<string, Set<Subscriber>>();
  /** Subscribers with a user stream, by an account they follow: the audience of a post, found without a scan. */
  private readonly byFollowee = new Map<string, Set<Subscriber>>();
  private readonly unsubscribeBus: () => void;
  delivered = 0;
  dropped = 0;

  constructor(private readonly ctx: AppContext) {
    this.unsubscribeBus = ctx.bus.subscribe((e) => {
      this.onEvent(e).catch((err) => ctx.log.error({ err, event: e.type }, 'stream delivery failed'));
    });
  }

  get size(): number {
    return this.subscribers.size;
  }

  /** Registers a connection. For a signed-in viewer, loads what its filters need. */
  async connect(accountId: string | null, sink: StreamSink): Promise<Subscriber> {
    const sub: Subscriber = { id: this.nextId++, accountId, sink, channels: new Map(), following: new Map(), hidden: new Set(), followedTags: new Set() };
    if (accountId) {
      await this.loadFacts(sub);
      add(this.byAccount, accountId, sub);
      for (const followee of sub.following.keys()) add(this.byFollowee, followee, sub);
    }
    this.subscribers.add(sub);
    return sub;
  }

  disconnect(sub: Subscriber): void {
    if (!this.subscribers.delete(sub)) return;
    if (sub.accountId) remove(this.byAccount, sub.accountId, sub);
    for (const followee of sub.following.keys()) remove(this.byFollowee, followee, sub);
  }

  subscribe(sub: Subscriber, kind: StreamKind, tag?: string): void {
    const c: Channel = { kind, tag };
    sub.channels.set(channelKey(c), c);
  }

  unsubscribe(sub: Subscriber, kind: StreamKind, tag?: string): void {
    sub.channels.delete(channelKey({ kind, tag }));
  }

  /**
   * Hangs up every stream. 'service restart' (graceful shutdown) tells clients
   * to reconnect at once: the load balancer sends them to another node.
   */
  close(reason: 'server shutting down' | 'service restart' = 'server shutting down'): void {
    this.unsubscribeBus();
    for (const sub of [...this.subscribers]) {
      sub.sink.close(reason);
      this.disconnect(sub);
    }
  }

  private async loadFacts(sub: Subscriber): Promise<void> {
    const db = this.ctx.db;
    const id = sub.accountId!;
    const [follows, hidden, tags] = await Promise.all([
      db.selectFrom('follows').select(['target_account_id', 'show_reblogs']).where('account_id', '=', id).execute(),
      sql<{ id: string }>`SELECT target_account_id AS id FROM mutes WHERE account_id = ${id}
        UNION SELECT target_account_id AS id FROM blocks WHERE account_id = ${id}
        UNION SELECT account_id AS id FROM blocks WHERE target_account_id = ${id}`.execute(db),
      sql<{ name: string }>`SELECT t.name AS name FROM followed_tags ft JOIN tags t ON t.id = ft.tag_id WHERE ft.account_id = ${id}`
        .execute(db)
        .catch(() => ({ rows: [] as { name: string }[] })),
    ]);
    sub.following = new Map(follows.map((f) => [f.target_account_id, { reblogs: f.show_reblogs === 1 }]));
    // Ids read through raw SQL arrive as BigInt when the plugin does not see the column name as an id.
    sub.hidden = new Set(hidden.rows.map((r) => String(r.id)));
    sub.followedTags = new Set(tags.rows.map((r) => r.name));
  }

  private async onEvent(e: DomainEvent): Promise<void> {
    switch (e.type) {
      case 'status.created':
        return this.deliverStatus(e.status, 'update');
      case 'status.updated':
        return this.deliverStatus(e.status, 'status.update');
      case 'status.deleted':
        return this.deliverDelete(e.status);
      case 'notification.created':
        return this.deliverNotification(e.accountId, e.notificationId);
      case 'relationship.changed':
        return this.onRelationship(e);
    }
  }

  /** The channels of a subscriber that should carry this status, by Mastodon's rules. */
  private channelsFor(sub: Subscriber, s: StatusFacts): Channel[] {
    const viewer = sub.accountId;
    if (viewer && viewer !== s.accountId) {
      if (sub.hidden.has(s.accountId)) return [];
      if (s.reblogOfAccountId && sub.hidden.has(s.reblogOfAccountId)) return [];
    }
    const out: Channel[] = [];
    const isPublicPost = s.visibility === 'public' && s.reblogOfId === null;
    const isThreadStart = s.inReplyToAccountId === null || s.inReplyToAccountId === s.accountId;
    for (const c of sub.channels.values()) {
      switch (c.kind) {
        case 'user':
          if (viewer && this.inHome(sub, viewer, s)) out.push(c);
          break;
        case 'public':
        case 'public:local':
          if (isPublicPost && isThreadStart) out.push(c);
          break;
        case 'hashtag':
        case 'hashtag:local':
          if (isPublicPost && c.tag !== undefined && s.tags.includes(normalizeTag(c.tag))) out.push(c);
          break;
        default:
          // user:notification carries only notifications; remote and media streams have nothing on this server yet.
          break;
      }
    }
    return out;
  }

  /** Would this status enter the viewer's home timeline? The same rule as feeds.ts fanOut. */
  private inHome(sub: Subscriber, viewer: string, s: StatusFacts): boolean {
    if (s.accountId === viewer) return true;
    const follow = sub.following.get(s.accountId);
    if (s.visibility === 'direct') return follow !== undefined && s.mentionIds.includes(viewer);
    if (follow) {
      if (s.reblogOfId) return follow.reblogs && s.reblogOfAccountId !== viewer;
      if (s.inReplyToAccountId && s.inReplyToAccountId !== s.accountId) {
        return s.inReplyToAccountId === viewer || sub.following.has(s.inReplyToAccountId);
      }
      return true;
    }
    // Followed hashtags bring public posts from anyone.
    return s.visibility === 'public' && s.reblogOfId === null && s.tags.some((t) => sub.followedTags.has(t));
  }

  /** Subscribers that might see a status: its author, followers of its author, the mentioned, and anyone on a public or tag stream. */
  private candidates(s: StatusFacts): Iterable<Subscriber> {
    if (s.visibility !== 'public') {
      const set = new Set<Subscriber>();
      for (const sub of this.byAccount.get(s.accountId) ?? []) set.add(sub);
      for (const sub of this.byFollowee.get(s.accountId) ?? []) set.add(sub);
      for (const m of s.mentionIds) for (const sub of this.byAccount.get(m) ?? []) set.add(sub);
      return set;
    }
    return this.subscribers;
  }

  private async deliverStatus(s: StatusFacts, event: 'update' | 'status.update'): Promise<void> {
    const targets: [Subscriber, Channel[]][] = [];
    for (const sub of this.candidates(s)) {
      const channels = this.channelsFor(sub, s);
      if (channels.length) targets.push([sub, channels]);
    }
    if (targets.length === 0) return;
    const row = await this.ctx.db.selectFrom('statuses').selectAll().where('id', '=', s.id).executeTakeFirst();
    if (!row || row.deleted_at) return;
    // One rendering for everyone; a signed-in viewer's flags on a new status are all false,
    // except on reblogs and edits, which are rendered for each viewer.
    const perViewer = s.reblogOfId !== null || event === 'status.update';
    const [anonymous] = perViewer ? [] : await statusViews(this.ctx, [row], null);
    const baseSignedIn = anonymous ? JSON.stringify({ ...anonymous, favourited: false, reblogged: false, muted: false, bookmarked: false, pinned: false }) : '';
    const baseAnonymous = anonymous ? JSON.stringify(anonymous) : '';
    for (const [sub, channels] of targets) {
      let payload: string;
      if (perViewer) {
        const [view] = await statusViews(this.ctx, [row], sub.accountId);
        if (!view) continue;
        payload = JSON.stringify(view);
      } else {
        payload = sub.accountId ? baseSignedIn : baseAnonymous;
      }
      for (const c of channels) this.send(sub, streamName(c), event, payload);
    }
  }

  private async deliverDelete(s: StatusFacts): Promise<void> {
    for (const sub of this.candidates(s)) {
      for (const c of this.channelsFor(sub, s)) this.send(sub, streamName(c), 'delete', s.id);
    }
  }

  private async deliverNotification(accountId: string, notificationId: string): Promise<void> {
    const subs = this.byAccount.get(accountId);
    if (!subs?.size) return;
    const view = await notificationView(this.ctx, notificationId, accountId);
    if (!view) return;
    const payload = JSON.stringify(view);
    for (const sub of subs) {
      for (const c of sub.channels.values()) {
        if (c.kind === 'user' || c.kind === 'user:notification') this.send(sub, streamName(c), 'notification', payload);
      }
    }
  }

  private onRelationship(e: Extract<DomainEvent, { type: 'relationship.changed' }>): void {
    for (const sub of this.byAccount.get(e.accountId) ?? []) {
      switch (e.change) {
        case 'follow':
          if (!sub.following.has(e.targetAccountId)) add(this.byFollowee, e.targetAccountId, sub);
          // Options (reblogs) may have changed too; reload them with the next full load, default to shown.
          sub.following.set(e.targetAccountId, sub.following.get(e.targetAccountId) ?? { reblogs: true });
          break;
        case 'unfollow':
          sub.following.delete(e.targetAccountId);
          remove(this.byFollowee, e.targetAccountId, sub);
          break;
        case 'block':
          sub.following.delete(e.targetAccountId);
          remove(this.byFollowee, e.targetAccountId, sub);
          sub.hidden.add(e.targetAccountId);
          break;
        case 'mute':
          sub.hidden.add(e.targetAccountId);
          break;
        case 'unblock':
        case 'unmute':
          // Another block or mute may still hide them: reload rather than guess.
          void this.loadFacts(sub);
          break;
        case 'tag.follow':
          if (e.tag) sub.followedTags.add(normalizeTag(e.tag));
          break;
        case 'tag.unfollow':
          if (e.tag) sub.followedTags.delete(normalizeTag(e.tag));
          break;
      }
    }
    // The other side of a block stops seeing the blocker too.
    if (e.change === 'block') {
      for (const sub of this.byAccount.get(e.targetAccountId) ?? []) {
        sub.following.delete(e.accountId);
        remove(this.byFollowee, e.accountId, sub);
        sub.hidden.add(e.accountId);
      }
    }
  }

  private send(sub: Subscriber, stream: string[], event: string, payload: string): void {
    if (sub.sink.send(stream, event, payload)) {
      this.delivered++;
    } else {
      this.dropped++;
      this.disconnect(sub);
      sub.sink.close('slow consumer');
    }
  }
}

function add<K, V>(m: Map<K, Set<V>>, k: K, v: V): void {
  let s = m.get(k);
  if (!s) m.set(k, (s = new Set()));
  s.add(v);
}

function remove<K, V>(m: Map<K, Set<V>>, k: K, v: V): void {
  const s = m.get(k);
  if (!s) return;
  s.delete(v);
  if (s.size === 0) m.delete(k);
}
