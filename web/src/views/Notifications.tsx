/** Notifications, newest first, paged by the Link header; opening them marks them read (the server's marker). */
import { useCallback, useEffect, useState } from 'react';
import { AccountName, Avatar, ErrorBox, Icon, PageHeading, Spinner, relativeTime, useMinuteTick } from '../components/common';
import { StatusCard } from '../components/StatusCard';
import { api, describeError } from '../lib/http';
import { markRead, onNotification, setViewingNotifications } from '../lib/notifications';
import { putStatus } from '../lib/statuses';
import type { Notification } from '../lib/types';

const WHAT: Record<string, { text: string; icon: 'star' | 'repost' | 'user' | 'reply' | 'bell' | 'pen' }> = {
  favourite: { text: 'liked your post', icon: 'star' },
  reblog: { text: 'reposted your post', icon: 'repost' },
  follow: { text: 'followed you', icon: 'user' },
  follow_request: { text: 'asked to follow you', icon: 'user' },
  mention: { text: 'mentioned you', icon: 'reply' },
  status: { text: 'posted', icon: 'bell' },
  update: { text: 'edited a post you interacted with', icon: 'pen' },
};

export default function Notifications() {
  const [items, setItems] = useState<Notification[]>([]);
  const [next, setNext] = useState<string | null>(null);
  const [loaded, setLoaded] = useState(false);
  const [loading, setLoading] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const now = useMinuteTick();

  const take = (list: Notification[]) => {
    for (const n of list) if (n.status) putStatus(n.status);
  };

  const load = useCallback(async (url = '/api/v1/notifications') => {
    setLoading(true);
    setError(null);
    try {
      const res = await api<Notification[]>(url);
      take(res.data);
      setItems((prev) => (url === '/api/v1/notifications' ? res.data : [...prev, ...res.data.filter((n) => !prev.some((p) => p.id === n.id))]));
      setNext(res.data.length ? res.next : null);
      if (url === '/api/v1/notifications') void markRead(res.data[0]?.id);
      setLoaded(true);
    } catch (err) {
      setError(describeError(err));
    } finally {
      setLoading(false);
    }
  }, []);

  useEffect(() => {
    setViewingNotifications(true);
    void load();
    const off = onNotification((n) => {
      take([n]);
      setItems((prev) => (prev.some((p) => p.id === n.id) ? prev : [n, ...prev]));
      void markRead(n.id);
    });
    return () => {
      setViewingNotifications(false);
      off();
    };
  }, [load]);

  return (
    <>
      <PageHeading>Notifications</PageHeading>
      <section aria-label="Notifications" className="notifications">
        <ul className="notification-list">
          {items.map((n) => {
            const what = WHAT[n.type] ?? { text: n.type, icon: 'bell' as const };
            return (
              <li key={n.id} className={`notification n-${n.type}`}>
                {n.type === 'mention' && n.status ? (
                  <StatusCard id={n.status.id} />
                ) : (
                  <>
                    <p className="notification-line">
                      <Icon name={what.icon} />
                      <Avatar account={n.account} size={28} />
                      <span>
                        <AccountName account={n.account} /> {what.text}
                      </span>
                      <time className="muted" dateTime={n.created_at}>
                        {relativeTime(n.created_at, now)}
                      </time>
                    </p>
                    {n.status && <StatusCard id={n.status.id} />}
                  </>
                )}
              </li>
            );
          })}
        </ul>
        {loaded && items.length === 0 && <p className="empty">No notifications yet. When people follow you, reply, like or repost, you'll see it here.</p>}
        {error && <ErrorBox onRetry={() => void load()}>{error}</ErrorBox>}
        {loading && <Spinner label="Loading notifications" />}
        {next && !loading && (
          <div className="load-more">
            <button type="button" className="btn btn-ghost" onClick={() => void load(next)}>
              Load older notifications
            </button>
          </div>
        )}
      </section>
    </>
  );
}
