/** The unread notification count: from the server's marker at sign-in, kept current by the stream. */
import { api } from './http';
import { createStore } from './store';
import { onReconnect, subscribe } from './streaming';
import type { Notification } from './types';

export const unread = createStore(0);
const listeners = new Set<(n: Notification) => void>();
let viewing = false;
let stop: (() => void) | null = null;

export function onNotification(fn: (n: Notification) => void): () => void {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

export async function refreshUnread(): Promise<void> {
  try {
    const { data } = await api<{ count: number }>('/api/v1/notifications/unread_count');
    if (!viewing) unread.set(data.count);
  } catch {
    /* shown again at the next try */
  }
}

/** Records that notifications up to `newestId` were seen (the server's marker, so other clients agree). */
export async function markRead(newestId: string | undefined): Promise<void> {
  unread.set(0);
  if (!newestId) return;
  try {
    await api('/api/v1/markers', { method: 'POST', body: { notifications: { last_read_id: newestId } } });
  } catch {
    /* the count comes back next time; nothing lost */
  }
}

export function setViewingNotifications(v: boolean): void {
  viewing = v;
}

export function startNotifications(signedIn: boolean): void {
  stop?.();
  stop = null;
  unread.set(0);
  if (!signedIn) return;
  void refreshUnread();
  const offStream = subscribe('user', undefined, (e) => {
    if (e.event !== 'notification') return;
    const n = e.payload as Notification;
    if (!viewing) unread.set((c) => c + 1);
    for (const l of [...listeners]) l(n);
  });
  const offReconnect = onReconnect(() => void refreshUnread());
  stop = () => {
    offStream();
    offReconnect();
  };
}
