/** A post in its conversation: what it replies to above, replies below, and a reply box under it. */
import { useCallback, useEffect, useRef, useState } from 'react';
import { Composer } from '../components/Composer';
import { ErrorBox, PageHeading, Spinner } from '../components/common';
import { StatusCard } from '../components/StatusCard';
import { session } from '../lib/auth';
import { api, describeError } from '../lib/http';
import { onPosted } from '../lib/outbox';
import { useLocation } from '../lib/router';
import { isDeleted, putStatus, putStatuses, useDeletedVersion, useStatus } from '../lib/statuses';
import { useStore } from '../lib/store';
import { subscribe } from '../lib/streaming';
import type { Context, Status } from '../lib/types';

export default function Thread({ id }: { id: string }) {
  const signedIn = Boolean(useStore(session));
  const loc = useLocation();
  const status = useStatus(id);
  const [ancestors, setAncestors] = useState<string[]>([]);
  const [descendants, setDescendants] = useState<string[]>([]);
  const [error, setError] = useState<string | null>(null);
  const [loading, setLoading] = useState(true);
  const [replyFocus, setReplyFocus] = useState(loc.search.get('reply') === '1');
  const focusedRef = useRef<HTMLDivElement>(null);
  useDeletedVersion();

  const load = useCallback(async () => {
    setError(null);
    try {
      const [s, ctx] = await Promise.all([api<Status>(`/api/v1/statuses/${id}`), api<Context>(`/api/v1/statuses/${id}/context`)]);
      putStatus(s.data);
      setAncestors(putStatuses(ctx.data.ancestors));
      setDescendants(putStatuses(ctx.data.descendants));
    } catch (err) {
      setError(describeError(err));
    } finally {
      setLoading(false);
    }
  }, [id]);

  useEffect(() => {
    setLoading(true);
    void load();
  }, [load]);

  // Bring the post itself into view (below its ancestors) once they are there.
  useEffect(() => {
    if (!loading && ancestors.length && focusedRef.current && !replyFocus) focusedRef.current.scrollIntoView({ block: 'start' });
  }, [loading, ancestors.length, replyFocus]);

  // A reply posted from here, or arriving live, joins the thread.
  useEffect(() => {
    const offPosted = onPosted((s) => {
      if (s.in_reply_to_id === id || descendants.includes(s.in_reply_to_id ?? '')) void load();
    });
    const offStream = signedIn
      ? subscribe('user', undefined, (e) => {
          if (e.event !== 'update') return;
          const s = e.payload as Status;
          if (s.in_reply_to_id === id || descendants.includes(s.in_reply_to_id ?? '')) {
            putStatus(s);
            void load();
          }
        })
      : () => {};
    return () => {
      offPosted();
      offStream();
    };
  }, [id, descendants, load, signedIn]);

  if (loading && !status) return <Spinner label="Loading the conversation" />;
  if (error && !status) return <ErrorBox onRetry={() => void load()}>{error}</ErrorBox>;
  if (!status) return null;
  if (isDeleted(id)) return <p className="empty">This post was deleted.</p>;

  return (
    <>
      <PageHeading>Conversation</PageHeading>
      <section className="thread" aria-label="Conversation">
        {ancestors
          .filter((a) => !isDeleted(a))
          .map((a) => (
            <div className="thread-ancestor" key={a}>
              <StatusCard id={a} />
            </div>
          ))}
        <div ref={focusedRef} className="thread-focus">
          <StatusCard id={id} focused onReply={() => setReplyFocus(true)} />
        </div>
        {signedIn && (
          <div className="thread-reply">
            <Composer key={`${id}:${replyFocus}`} replyTo={status.reblog ?? status} autoFocus={replyFocus} />
          </div>
        )}
        {descendants.filter((d) => !isDeleted(d)).length > 0 && (
          <h2 className="section-title">
            {descendants.length} {descendants.length === 1 ? 'reply' : 'replies'}
          </h2>
        )}
        {descendants
          .filter((d) => !isDeleted(d))
          .map((d) => (
            <div className="thread-descendant" key={d}>
              <StatusCard id={d} />
            </div>
          ))}
      </section>
    </>
  );
}
