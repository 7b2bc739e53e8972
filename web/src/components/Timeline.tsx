/**
 * A paged list of posts: the first page from `source`, older pages by the
 * Link header's rel="next" URL exactly as given, live arrivals from the
 * stream held back and announced ("3 new posts") so the reader's place never
 * moves, and after a reconnect the gap filled from rel="prev".
 */
import { useCallback, useEffect, useRef, useState, type KeyboardEvent } from 'react';
import { session } from '../lib/auth';
import { api, describeError, type ApiResponse } from '../lib/http';
import { onPosted } from '../lib/outbox';
import { savedScroll, useLocation } from '../lib/router';
import { isDeleted, markDeleted, putStatus, putStatuses, useDeletedVersion } from '../lib/statuses';
import { onReconnect, subscribe } from '../lib/streaming';
import type { Status } from '../lib/types';
import { ErrorBox, Spinner } from './common';
import { StatusCard } from './StatusCard';

interface State {
  ids: string[];
  pending: string[];
  next: string | null;
  prev: string | null;
  loaded: boolean;
}

/** Timelines kept while the app runs, so Back returns to the same place. */
const cache = new Map<string, State>();

/** First pages asked for before the app rendered (the home timeline on a cold start). */
const prefetched = new Map<string, Promise<ApiResponse<Status[]>>>();

/** Starts loading a timeline's first page now; the Timeline that shows it picks the answer up. */
export function prefetchTimeline(cacheKey: string, source: string): void {
  const p = api<Status[]>(source);
  p.catch(() => {});
  prefetched.set(cacheKey, p);
}

/** Forget every kept timeline (another person signed in). */
export function clearTimelineCache(): void {
  cache.clear();
}

/** Newest first: ids are time-ordered and of equal length, so they compare as strings. */
const newerFirst = (a: string, b: string) => (a.length !== b.length ? b.length - a.length : b < a ? -1 : b > a ? 1 : 0);

export interface TimelineProps {
  cacheKey: string;
  source: string;
  query?: Record<string, string | number | boolean | undefined>;
  /** The stream that carries this timeline's new posts. */
  stream?: { name: string; tag?: string };
  /** Posts made here appear at once (the home timeline and one's own profile). */
  showOwnPosts?: boolean;
  label: string;
  empty: string;
  /** Marks the first render with posts, for the time-to-first-timeline figure. */
  perfMark?: boolean;
  /** Always load afresh (lists that change elsewhere: bookmarks, likes). */
  fresh?: boolean;
}

/** Mount with `key={cacheKey}`: one component instance per timeline. */
export function Timeline({ cacheKey, source, query, stream, showOwnPosts, label, empty, perfMark, fresh }: TimelineProps) {
  const [state, setStateRaw] = useState<State>(() => (!fresh && cache.get(cacheKey)) || { ids: [], pending: [], next: null, prev: null, loaded: false });
  const stateRef = useRef(state);
  const [loading, setLoading] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [announce, setAnnounce] = useState('');
  const feedRef = useRef<HTMLDivElement>(null);
  const sentinelRef = useRef<HTMLDivElement>(null);
  const loc = useLocation();
  useDeletedVersion();

  const setState = useCallback(
    (fn: (s: State) => State) => {
      setStateRaw((prev) => {
        const next = fn(prev);
        stateRef.current = next;
        cache.set(cacheKey, next);
        return next;
      });
    },
    [cacheKey],
  );

  const loadFirst = useCallback(async () => {
    setLoading(true);
    setError(null);
    try {
      const early = prefetched.get(cacheKey);
      prefetched.delete(cacheKey);
      const res = await (early ?? api<Status[]>(source, { query }));
      const ids = putStatuses(res.data);
      setState(() => ({ ids, pending: [], next: res.data.length ? res.next : null, prev: res.prev, loaded: true }));
    } catch (err) {
      setError(describeError(err));
    } finally {
      setLoading(false);
    }
  }, [cacheKey, source, JSON.stringify(query), setState]);

  useEffect(() => {
    if (!state.loaded && !loading) void loadFirst();
  }, [cacheKey, state.loaded]);

  // Back to a timeline we had: the reader's place.
  useEffect(() => {
    if (!loc.pop || !state.loaded) return;
    const y = savedScroll();
    if (y !== null) requestAnimationFrame(() => window.scrollTo(0, y));
  }, [loc.key, state.loaded]);

  useEffect(() => {
    if (perfMark && state.loaded && !performance.getEntriesByName('starling:first-timeline').length) {
      performance.mark('starling:first-timeline', { detail: { posts: state.ids.length } });
    }
  }, [perfMark, state.loaded, state.ids.length]);

  const loadMore = useCallback(async () => {
    const { next } = stateRef.current;
    if (!next || loading) return;
    setLoading(true);
    setError(null);
    try {
      const res = await api<Status[]>(next);
      const ids = putStatuses(res.data);
      setState((s) => {
        const have = new Set(s.ids);
        return { ...s, ids: [...s.ids, ...ids.filter((i) => !have.has(i))], next: res.data.length ? res.next : null };
      });
    } catch (err) {
      setError(describeError(err));
    } finally {
      setLoading(false);
    }
  }, [loading, setState]);

  // Infinite scroll: the sentinel near the end asks for the next page.
  useEffect(() => {
    const el = sentinelRef.current;
    if (!el || !state.next) return;
    const io = new IntersectionObserver((entries) => entries.some((e) => e.isIntersecting) && void loadMore(), { rootMargin: '600px 0px' });
    io.observe(el);
    return () => io.disconnect();
  }, [state.next, loadMore]);

  const addPending = useCallback(
    (incoming: string[]) => {
      setState((s) => {
        const have = new Set([...s.ids, ...s.pending]);
        const added = incoming.filter((i) => !have.has(i));
        if (!added.length) return s;
        return { ...s, pending: [...added, ...s.pending].sort(newerFirst) };
      });
    },
    [setState],
  );

  // Live: new posts wait above the list; edits and deletions apply at once.
  useEffect(() => {
    if (!stream) return;
    return subscribe(stream.name, stream.tag, (e) => {
      if (e.event === 'update') {
        const st = e.payload as Status;
        putStatus(st);
        const me = session.get()?.account.id;
        if (showOwnPosts && st.account.id === me && !st.reblog) {
          setState((s) => (s.ids.includes(st.id) ? s : { ...s, ids: [st.id, ...s.ids] }));
        } else addPending([st.id]);
      } else if (e.event === 'status.update') putStatus(e.payload as Status);
      else if (e.event === 'delete') markDeleted(String(e.payload));
    });
  }, [stream?.name, stream?.tag, showOwnPosts, addPending, setState]);

  // What was missed while the stream was down or this view was closed: the page newer than the newest we have, by rel="prev".
  const fillGap = useCallback(() => {
    const { prev, loaded } = stateRef.current;
    if (!loaded) return;
    if (!prev) return void loadFirst();
    api<Status[]>(prev)
      .then((res) => {
        addPending(putStatuses(res.data));
        if (res.prev) setState((s) => ({ ...s, prev: res.prev }));
      })
      .catch(() => {});
  }, [addPending, loadFirst, setState]);

  useEffect(() => {
    if (!stream) return;
    return onReconnect(fillGap);
  }, [stream?.name, stream?.tag, fillGap]);

  // Coming back to a timeline kept from before: what arrived meanwhile waits above it.
  useEffect(() => {
    if (stream && stateRef.current.loaded) fillGap();
    // Once, on mount.
  }, []);

  // One's own new posts show at once where they belong.
  useEffect(() => {
    if (!showOwnPosts) return;
    return onPosted((st) => {
      putStatus(st);
      setState((s) => (s.ids.includes(st.id) ? s : { ...s, ids: [st.id, ...s.ids], pending: s.pending.filter((p) => p !== st.id) }));
    });
  }, [showOwnPosts, setState]);

  const showPending = () => {
    const n = stateRef.current.pending.length;
    setState((s) => ({ ...s, ids: [...s.pending, ...s.ids.filter((i) => !s.pending.includes(i))], pending: [] }));
    setAnnounce(`${n} new ${n === 1 ? 'post' : 'posts'} shown`);
    requestAnimationFrame(() => {
      const top = feedRef.current;
      if (!top) return;
      top.scrollIntoView({ block: 'start' });
      window.scrollBy(0, -80);
      top.querySelector<HTMLElement>('article')?.focus({ preventScroll: true });
    });
  };

  // j / k move between posts, as in other Mastodon clients.
  const onKeyDown = (e: KeyboardEvent<HTMLDivElement>) => {
    if (e.key !== 'j' && e.key !== 'k') return;
    const t = e.target as HTMLElement;
    if (t.closest('input, textarea, select, [contenteditable]')) return;
    const items = [...(feedRef.current?.querySelectorAll<HTMLElement>(':scope > article') ?? [])];
    const at = items.findIndex((el) => el.contains(t));
    const to = items[e.key === 'j' ? Math.min(items.length - 1, at + 1) : Math.max(0, at - 1)];
    if (to) {
      e.preventDefault();
      to.focus();
    }
  };

  const visible = state.ids.filter((i) => !isDeleted(i));
  const pending = state.pending.filter((i) => !isDeleted(i)).length;

  return (
    <section className="timeline" aria-label={label}>
      {pending > 0 && (
        <div className="new-posts-bar">
          <button type="button" className="new-posts" onClick={showPending}>
            {pending} new {pending === 1 ? 'post' : 'posts'}
          </button>
        </div>
      )}
      <p className="sr-only" role="status" aria-live="polite">
        {pending > 0 ? `${pending} new ${pending === 1 ? 'post' : 'posts'} above` : announce}
      </p>
      <div className="feed" role="feed" aria-busy={loading} aria-label={label} ref={feedRef} onKeyDown={onKeyDown}>
        {visible.map((id) => (
          <StatusCard key={id} id={id} />
        ))}
      </div>
      {state.loaded && visible.length === 0 && !loading && !error && <p className="empty">{empty}</p>}
      {error && <ErrorBox onRetry={() => void (state.loaded ? loadMore() : loadFirst())}>{error}</ErrorBox>}
      {loading && <Spinner label={state.loaded ? 'Loading older posts' : 'Loading posts'} />}
      {state.next && !loading && !error && (
        <div ref={sentinelRef} className="load-more">
          <button type="button" className="btn btn-ghost" onClick={() => void loadMore()}>
            Load older posts
          </button>
        </div>
      )}
    </section>
  );
}
