/**
 * One copy of every status the app has seen, by id, so a like in a timeline
 * shows in the thread too; plus the actions (favourite, reblog, bookmark)
 * applied at once and rolled back if the server refuses or can't be reached.
 */
import { useSyncExternalStore } from 'react';
import { api, describeError } from './http';
import { toast } from './toasts';
import type { Status } from './types';

const cache = new Map<string, Status>();
const deleted = new Set<string>();
const listeners = new Map<string, Set<() => void>>();
const deletedListeners = new Set<() => void>();

function notify(id: string): void {
  for (const l of listeners.get(id) ?? []) l();
}

/** Stores statuses (and the statuses they repost) and returns their ids. */
export function putStatuses(list: Status[]): string[] {
  return list.map((s) => putStatus(s));
}

export function putStatus(s: Status): string {
  if (s.reblog) putStatus(s.reblog);
  cache.set(s.id, s);
  notify(s.id);
  return s.id;
}

export function getStatus(id: string): Status | undefined {
  return cache.get(id);
}

export function markDeleted(id: string): void {
  deleted.add(id);
  notify(id);
  for (const l of deletedListeners) l();
  for (const [otherId, s] of cache) if (s.reblog?.id === id) notify(otherId);
}

export function isDeleted(id: string): boolean {
  return deleted.has(id);
}

export function useStatus(id: string | null | undefined): Status | undefined {
  return useSyncExternalStore(
    (cb) => {
      if (!id) return () => {};
      let set = listeners.get(id);
      if (!set) listeners.set(id, (set = new Set()));
      set.add(cb);
      return () => set!.delete(cb);
    },
    () => (id ? cache.get(id) : undefined),
  );
}

/** Changes whenever a status is deleted, so lists can drop it. */
export function useDeletedVersion(): number {
  return useSyncExternalStore(
    (cb) => {
      deletedListeners.add(cb);
      return () => deletedListeners.delete(cb);
    },
    () => deleted.size,
  );
}

type Action = 'favourite' | 'reblog' | 'bookmark';
const FIELD = { favourite: 'favourited', reblog: 'reblogged', bookmark: 'bookmarked' } as const;
const COUNT = { favourite: 'favourites_count', reblog: 'reblogs_count', bookmark: null } as const;
const NOUN = { favourite: 'like', reblog: 'repost', bookmark: 'bookmark' } as const;
const inFlight = new Set<string>();

/** Toggles an action: the change shows at once; if the server fails, it is undone and the person told. */
export async function toggle(id: string, action: Action): Promise<void> {
  const key = `${id}:${action}`;
  if (inFlight.has(key)) return;
  const before = cache.get(id);
  if (!before) return;
  const field = FIELD[action];
  const countField = COUNT[action];
  const on = !before[field];
  const optimistic: Status = { ...before, [field]: on };
  if (countField) optimistic[countField] = Math.max(0, before[countField] + (on ? 1 : -1));
  putStatus(optimistic);
  inFlight.add(key);
  try {
    const { data } = await api<Status>(`/api/v1/statuses/${id}/${on ? action : `un${action}`}`, { method: 'POST' });
    // A repost answers with the new reblog wrapper; the original is inside it.
    const updated = data.reblog && data.reblog.id === id ? data.reblog : data;
    if (updated.id === id) putStatus({ ...updated, [field]: on });
  } catch (err) {
    const now = cache.get(id);
    if (now) {
      const rolledBack: Status = { ...now, [field]: before[field] };
      if (countField) rolledBack[countField] = before[countField];
      putStatus(rolledBack);
    }
    toast(`Couldn't ${on ? '' : 'undo the '}${NOUN[action]}${on ? ' the post' : ''}. ${describeError(err)}`, 'error');
  } finally {
    inFlight.delete(key);
  }
}
