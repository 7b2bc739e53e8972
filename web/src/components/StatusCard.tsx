/** One post: who, when, content (with its content warning), and the actions on it. */
import { useState, type MouseEvent, type KeyboardEvent } from 'react';
import { session } from '../lib/auth';
import { api, describeError } from '../lib/http';
import { navigate, onLinkClick, Link } from '../lib/router';
import { markDeleted, toggle, useStatus } from '../lib/statuses';
import { useStore } from '../lib/store';
import { toast } from '../lib/toasts';
import type { Status } from '../lib/types';
import { AccountName, Avatar, Icon, displayName, relativeTime, useMinuteTick } from './common';
import { Composer } from './Composer';

export function statusPath(s: Status): string {
  return `/@${s.account.acct}/${s.id}`;
}

/** Links inside server-rendered content (mentions, hashtags) open in the app. */
export function onContentClick(e: MouseEvent<HTMLElement>): void {
  const a = (e.target as HTMLElement).closest('a');
  if (a && a.href) onLinkClick(e, a.href);
}

const VIS_LABEL: Record<string, string> = { public: 'Public', unlisted: 'Quiet public', private: 'Followers only', direct: 'Mentioned people only' };

export function StatusCard({ id, focused = false, onReply }: { id: string; focused?: boolean; onReply?: (s: Status) => void }) {
  const wrapper = useStatus(id);
  const inner = useStatus(wrapper?.reblog?.id);
  const me = useStore(session)?.account;
  const now = useMinuteTick();
  const [showCw, setShowCw] = useState(false);
  const [editing, setEditing] = useState(false);
  const [confirmDelete, setConfirmDelete] = useState(false);
  if (!wrapper) return null;
  const s = inner ?? wrapper.reblog ?? wrapper;
  const mine = me?.id === s.account.id;
  const canReblog = s.visibility === 'public' || s.visibility === 'unlisted' || (mine && s.visibility === 'private');
  const headingId = `status-${wrapper.id}-by`;

  const open = (e: MouseEvent<HTMLElement>) => {
    if (focused) return;
    const t = e.target as HTMLElement;
    if (t.closest('a, button, input, textarea, select, summary, label, form')) return;
    if (window.getSelection()?.toString()) return;
    navigate(statusPath(s));
  };
  const onKey = (e: KeyboardEvent<HTMLElement>) => {
    if (e.target !== e.currentTarget) return;
    if (e.key === 'Enter' && !focused) navigate(statusPath(s));
  };

  const reply = () => (onReply ? onReply(s) : navigate(`${statusPath(s)}?reply=1`));

  const remove = async () => {
    try {
      await api(`/api/v1/statuses/${s.id}`, { method: 'DELETE' });
      markDeleted(s.id);
      toast('Post deleted.');
      if (focused) navigate('/', { replace: true });
    } catch (err) {
      toast(`Couldn't delete the post. ${describeError(err)}`, 'error');
    } finally {
      setConfirmDelete(false);
    }
  };

  return (
    <article
      className={`status${focused ? ' status-focused' : ''}`}
      aria-labelledby={headingId}
      tabIndex={focused ? -1 : 0}
      data-status-id={s.id}
      onClick={open}
      onKeyDown={onKey}
    >
      {wrapper.reblog && (
        <p className="reblog-by">
          <Icon name="repost" size={16} /> <Link to={`/@${wrapper.account.acct}`}>{displayName(wrapper.account)}</Link> reposted
        </p>
      )}
      <header className="status-head">
        <Link to={`/@${s.account.acct}`} className="avatar-link" aria-hidden="true" tabIndex={-1}>
          <Avatar account={s.account} />
        </Link>
        <div className="status-who" id={headingId}>
          <AccountName account={s.account} />
        </div>
        <Link to={statusPath(s)} className="status-time">
          <time dateTime={s.created_at} title={new Date(s.created_at).toLocaleString()}>
            {focused ? new Date(s.created_at).toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' }) : relativeTime(s.created_at, now)}
          </time>
          {s.edited_at && <span className="edited"> · edited</span>}
        </Link>
      </header>
      {editing ? (
        <Composer editing={s} autoFocus onDone={() => setEditing(false)} onCancel={() => setEditing(false)} />
      ) : (
        <div className="status-body">
          {s.spoiler_text && (
            <p className="cw">
              <span className="cw-text">{s.spoiler_text}</span>{' '}
              <button type="button" className="btn-chip" aria-expanded={showCw} onClick={() => setShowCw(!showCw)}>
                {showCw ? 'Show less' : 'Show more'}
              </button>
            </p>
          )}
          {(!s.spoiler_text || showCw) && <div className="status-content" onClick={onContentClick} dangerouslySetInnerHTML={{ __html: s.content }} />}
          {s.visibility !== 'public' && <p className="vis-note">{VIS_LABEL[s.visibility]}</p>}
        </div>
      )}
      {focused && (
        <p className="status-counts">
          <span>
            <strong>{s.reblogs_count}</strong> {s.reblogs_count === 1 ? 'repost' : 'reposts'}
          </span>{' '}
          <span>
            <strong>{s.favourites_count}</strong> {s.favourites_count === 1 ? 'like' : 'likes'}
          </span>
        </p>
      )}
      <div className="status-actions" role="group" aria-label="Post actions">
        <button type="button" className="action" onClick={reply} aria-label={`Reply${s.replies_count ? ` (${s.replies_count} replies)` : ''}`}>
          <Icon name="reply" /> <span aria-hidden="true">{s.replies_count || ''}</span>
        </button>
        <button
          type="button"
          className={`action repost${s.reblogged ? ' on' : ''}`}
          aria-pressed={Boolean(s.reblogged)}
          disabled={!canReblog}
          onClick={() => void toggle(s.id, 'reblog')}
          aria-label={`Repost${s.reblogs_count ? ` (${s.reblogs_count})` : ''}`}
        >
          <Icon name="repost" /> <span aria-hidden="true">{s.reblogs_count || ''}</span>
        </button>
        <button
          type="button"
          className={`action like${s.favourited ? ' on' : ''}`}
          aria-pressed={Boolean(s.favourited)}
          onClick={() => void toggle(s.id, 'favourite')}
          aria-label={`Like${s.favourites_count ? ` (${s.favourites_count})` : ''}`}
        >
          <Icon name="star" /> <span aria-hidden="true">{s.favourites_count || ''}</span>
        </button>
        <button
          type="button"
          className={`action bookmark${s.bookmarked ? ' on' : ''}`}
          aria-pressed={Boolean(s.bookmarked)}
          onClick={() => void toggle(s.id, 'bookmark')}
          aria-label="Bookmark"
        >
          <Icon name="bookmark" />
        </button>
        {mine && !editing && (
          <span className="own-actions">
            {confirmDelete ? (
              <>
                <button type="button" className="btn-chip danger" onClick={() => void remove()}>
                  Delete for good
                </button>
                <button type="button" className="btn-chip" onClick={() => setConfirmDelete(false)}>
                  Keep
                </button>
              </>
            ) : (
              <>
                <button type="button" className="btn-chip" onClick={() => setEditing(true)}>
                  Edit
                </button>
                <button type="button" className="btn-chip" onClick={() => setConfirmDelete(true)}>
                  Delete
                </button>
              </>
            )}
          </span>
        )}
      </div>
    </article>
  );
}
