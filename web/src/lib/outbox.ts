/**
 * Nothing written is lost. A post enters the outbox (kept in localStorage, so
 * it survives a reload or a crash of the tab) with the Idempotency-Key it was
 * given when it was composed, before the first attempt to send it. It is sent
 * and, after a network failure or a 5xx, sent again with backoff under the same
 * key until the server acknowledges it, so it is posted once and only once (not
 * sooner than a Retry-After the server gave, as in read-only mode). A
 * post the server refuses (422: too long, reply target gone) stays in the outbox
 * with the reason, to be edited or discarded by the person, never dropped.
 */
import { api, ApiError, NetworkError, UnavailableError } from './http';
import { firstSentence, onRecovery } from './health';
import { createStore } from './store';
import type { Status, Visibility } from './types';

const KEY = 'starling.outbox.v1';
/** Posted entries stay visible this long, so the person sees "posted". */
const POSTED_VISIBLE_MS = 8000;

export interface PostParams {
  status: string;
  spoiler_text?: string;
  sensitive?: boolean;
  visibility: Visibility;
  in_reply_to_id?: string;
  language?: string;
}

export type OutboxState = 'queued' | 'sending' | 'posted' | 'failed';

export interface OutboxEntry {
  /** The Idempotency-Key: made when the post was composed, never changed. */
  key: string;
  accountId: string;
  params: PostParams;
  state: OutboxState;
  attempts: number;
  createdAt: number;
  nextAttemptAt: number;
  /** Why the last attempt failed, in plain words. */
  error?: string;
  /**
   * The server said when to ask again (Retry-After with a refusal): a recovery or the browser coming online
   * does not send it earlier; only the person can ("Retry now").
   */
  notBefore?: number;
  statusId?: string;
  postedAt?: number;
}

function load(): OutboxEntry[] {
  try {
    const list = JSON.parse(localStorage.getItem(KEY) ?? '[]') as OutboxEntry[];
    // A send interrupted by a reload is unknown: it is retried under its key, which makes that safe.
    return Array.isArray(list) ? list.map((e) => (e.state === 'sending' ? { ...e, state: 'queued' as const, nextAttemptAt: 0 } : e)) : [];
  } catch {
    return [];
  }
}

export const outbox = createStore<OutboxEntry[]>(load());

function persist(): void {
  try {
    localStorage.setItem(KEY, JSON.stringify(outbox.get().filter((e) => e.state !== 'posted')));
  } catch {
    /* storage full: the entries stay in memory and on screen */
  }
}

function update(key: string, patch: Partial<OutboxEntry>): void {
  outbox.set((list) => list.map((e) => (e.key === key ? { ...e, ...patch } : e)));
  persist();
}

// Another tab changed the outbox: take its view (entries posted there disappear here).
window.addEventListener('storage', (e) => {
  if (e.key !== KEY) return;
  const theirs = load();
  const mine = outbox.get();
  const sendingHere = new Set(mine.filter((x) => x.state === 'sending' || x.state === 'posted').map((x) => x.key));
  outbox.set([...mine.filter((x) => sendingHere.has(x.key)), ...theirs.filter((x) => !sendingHere.has(x.key))]);
});

export function newIdempotencyKey(): string {
  return crypto.randomUUID ? crypto.randomUUID() : `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}-${Math.random().toString(36).slice(2)}`;
}

let accountId: string | null = null;
const postedListeners = new Set<(s: Status) => void>();

export function onPosted(fn: (s: Status) => void): () => void {
  postedListeners.add(fn);
  return () => postedListeners.delete(fn);
}

/** Adds a post (already given its key by the composer) and starts sending it. */
export function enqueue(key: string, params: PostParams, forAccount: string): void {
  if (outbox.get().some((e) => e.key === key)) return;
  const entry: OutboxEntry = { key, accountId: forAccount, params, state: 'queued', attempts: 0, createdAt: Date.now(), nextAttemptAt: 0 };
  outbox.set((list) => [...list, entry]);
  persist();
  pump();
}

export function discard(key: string): void {
  outbox.set((list) => list.filter((e) => e.key !== key));
  persist();
}

/** Sends now: one entry (the person asked), or every queued one the server has not asked to wait (a recovery). */
export function retryNow(key?: string): void {
  const now = Date.now();
  outbox.set((list) => list.map((e) => (e.state === 'queued' && (key ? e.key === key : (e.notBefore ?? 0) <= now) ? { ...e, nextAttemptAt: 0 } : e)));
  pump();
}

/** The person fixed a refused post: it goes again (a new key, since the old one was refused). */
export function resubmit(key: string, params: PostParams): void {
  const entry = outbox.get().find((e) => e.key === key);
  if (!entry) return;
  discard(key);
  enqueue(newIdempotencyKey(), params, entry.accountId);
}

function backoff(attempts: number): number {
  // 1 s, 2 s, 4 s … up to 30 s, with jitter so many clients don't come back at once.
  return Math.min(30_000, 1000 * 2 ** Math.max(0, attempts - 1)) * (0.8 + Math.random() * 0.4);
}

let timer: ReturnType<typeof setTimeout> | null = null;
const sending = new Set<string>();

async function send(e: OutboxEntry): Promise<void> {
  sending.add(e.key);
  update(e.key, { state: 'sending', attempts: e.attempts + 1 });
  try {
    const { data } = await api<Status>('/api/v1/statuses', { method: 'POST', body: e.params, headers: { 'Idempotency-Key': e.key } });
    update(e.key, { state: 'posted', statusId: data.id, postedAt: Date.now(), error: undefined });
    for (const fn of [...postedListeners]) fn(data);
    setTimeout(() => {
      outbox.set((list) => list.filter((x) => x.key !== e.key));
      persist();
    }, POSTED_VISIBLE_MS);
  } catch (err) {
    if (err instanceof ApiError && err.status !== 429 && err.status !== 408 && err.status !== 401) {
      // Refused for a reason that a retry won't change: kept, with the reason, for the person to decide.
      update(e.key, { state: 'failed', error: err.message });
    } else {
      const retryAfter = err instanceof ApiError || err instanceof UnavailableError ? err.retryAfterMs : null;
      const reason =
        // Starling answered and said why (read-only mode, too busy): its words, not "can't be reached".
        err instanceof UnavailableError
          ? firstSentence(err.message).replace(/[.!?]$/, '')
          : err instanceof NetworkError
            ? "Starling can't be reached"
            : err instanceof ApiError && err.status === 401
              ? 'Waiting for you to sign in again'
              : 'The server asked to wait';
      const now = Date.now();
      update(e.key, {
        state: 'queued',
        error: reason,
        nextAttemptAt: now + Math.max(retryAfter ?? 0, backoff(e.attempts + 1)),
        notBefore: retryAfter !== null ? now + retryAfter : undefined,
      });
    }
  } finally {
    sending.delete(e.key);
    pump();
  }
}

/** Sends whatever is due, one post at a time in the order written, and sets a timer for the next. */
export function pump(): void {
  if (timer) clearTimeout(timer);
  timer = null;
  if (!accountId || sending.size > 0) return;
  const mine = outbox.get().filter((e) => e.accountId === accountId && e.state === 'queued');
  if (mine.length === 0) return;
  const first = mine[0];
  const wait = first.nextAttemptAt - Date.now();
  if (wait <= 0) void send(first);
  else timer = setTimeout(pump, wait);
}

/** Sends the signed-in person's posts (null: hold them until they sign in again). */
export function setOutboxAccount(id: string | null): void {
  accountId = id;
  pump();
}

onRecovery(() => retryNow());
window.addEventListener('online', () => retryNow());
