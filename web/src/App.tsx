import { Suspense, lazy, useEffect, useState, type ReactNode } from 'react';
import { DegradedBanner } from './components/Banner';
import { Avatar, Icon, PageHeading, Spinner } from './components/common';
import { OutboxPanel } from './components/Outbox';
import { clearTimelineCache } from './components/Timeline';
import { Toasts } from './components/Toasts';
import { Trends } from './components/Trends';
import { dropSession, retryRevocations, session, signOut, updateAccount } from './lib/auth';
import { api, setUnauthorizedHandler } from './lib/http';
import { onRecovery } from './lib/health';
import { startNotifications, unread } from './lib/notifications';
import { setOutboxAccount } from './lib/outbox';
import { Link, navigate, useLocation } from './lib/router';
import { useStore } from './lib/store';
import { setStreamingToken } from './lib/streaming';
import { toast } from './lib/toasts';
import type { Account } from './lib/types';
import { isAdmin } from './lib/roles';
import Home from './views/Home';
import Public from './views/Public';
import Tag from './views/Tag';
import { AuthCallback, SignInButton, SignUp, Welcome } from './views/Auth';

// Views not on the first screen load on demand.
const Profile = lazy(() => import('./views/Profile'));
const Thread = lazy(() => import('./views/Thread'));
const Notifications = lazy(() => import('./views/Notifications'));
const Search = lazy(() => import('./views/Search'));
const SavedList = lazy(() => import('./views/Lists'));
const Ops = lazy(() => import('./views/Ops'));

// Tokens of sign-outs that could not reach the server are revoked when it can be reached.
void retryRevocations();
onRecovery(() => void retryRevocations());

setUnauthorizedHandler(() => {
  dropSession();
  toast('Your session has ended. Please sign in again.', 'error');
});

function NeedsSignIn({ what }: { what: string }) {
  return (
    <section className="auth-page">
      <PageHeading>Sign in to see {what}</PageHeading>
      <SignInButton />
    </section>
  );
}

function route(path: string, signedIn: boolean): ReactNode {
  let m: RegExpExecArray | null;
  const dec = (s: string) => {
    try {
      return decodeURIComponent(s);
    } catch {
      return s;
    }
  };
  if (path === '/' || path === '') return signedIn ? <Home /> : <Welcome />;
  if (path === '/local') return <Public local />;
  if (path === '/public') return <Public local={false} />;
  if ((m = /^\/tags\/([^/]+)\/?$/.exec(path))) return <Tag name={dec(m[1])} />;
  if (path === '/search') return <Search />;
  if (path === '/signup') return signedIn ? <Home /> : <SignUp />;
  if (path === '/auth/callback') return <AuthCallback />;
  if (path === '/notifications') return signedIn ? <Notifications /> : <NeedsSignIn what="your notifications" />;
  if (path === '/bookmarks') return signedIn ? <SavedList kind="bookmarks" /> : <NeedsSignIn what="your bookmarks" />;
  if (path === '/ops') return signedIn ? <Ops /> : <NeedsSignIn what="the operations page" />;
  if (path === '/favourites') return signedIn ? <SavedList kind="favourites" /> : <NeedsSignIn what="your likes" />;
  if ((m = /^\/@([^/]+)\/?$/.exec(path))) return <Profile key={dec(m[1])} acct={dec(m[1])} tab="posts" />;
  if ((m = /^\/@([^/]+)\/(followers|following)\/?$/.exec(path))) return <Profile key={dec(m[1])} acct={dec(m[1])} tab={m[2] as 'followers' | 'following'} />;
  if ((m = /^\/@([^/]+)\/(\d+)\/?$/.exec(path))) return <Thread key={m[2]} id={m[2]} />;
  return (
    <section>
      <PageHeading>Not found</PageHeading>
      <p>
        There's nothing at this address. <Link to="/">Go home</Link>.
      </p>
    </section>
  );
}

function NavItem({ to, icon, label, current, badge }: { to: string; icon: Parameters<typeof Icon>[0]['name']; label: string; current: boolean; badge?: number }) {
  return (
    <li>
      <Link to={to} aria-current={current ? 'page' : undefined} className="nav-item" aria-label={badge ? `${label}, ${badge} unread` : undefined}>
        <Icon name={icon} size={22} />
        <span className="nav-label">{label}</span>
        {badge ? (
          <span className="badge" aria-hidden="true" data-testid="unread-badge">
            {badge > 99 ? '99+' : badge}
          </span>
        ) : null}
      </Link>
    </li>
  );
}

function Nav({ path, me }: { path: string; me: Account | undefined }) {
  const count = useStore(unread);
  const [busy, setBusy] = useState(false);
  const out = async () => {
    setBusy(true);
    try {
      await signOut();
    } catch {
      toast("Signed out on this device. Starling couldn't be reached; the session will be ended there as soon as it can be.", 'error');
    }
    setBusy(false);
    navigate('/', { replace: true });
  };
  return (
    <nav className="nav" aria-label="Main">
      <Link to="/" className="brand" aria-label="Starling home">
        <span className="brand-mark" aria-hidden="true" />
        <span className="brand-name">Starling</span>
      </Link>
      <ul>
        {me && <NavItem to="/" icon="home" label="Home" current={path === '/'} />}
        {me && <NavItem to="/notifications" icon="bell" label="Notifications" current={path === '/notifications'} badge={count} />}
        <NavItem to="/local" icon="users" label="Local" current={path === '/local'} />
        <NavItem to="/public" icon="globe" label="Everything" current={path === '/public'} />
        <NavItem to="/search" icon="search" label="Search" current={path === '/search'} />
        {me && <NavItem to="/bookmarks" icon="bookmark" label="Bookmarks" current={path === '/bookmarks'} />}
        {me && <NavItem to="/favourites" icon="star" label="Likes" current={path === '/favourites'} />}
        {me && <NavItem to={`/@${me.acct}`} icon="user" label="Profile" current={path === `/@${me.acct}`} />}
        {isAdmin(me) && <NavItem to="/ops" icon="chart" label="Operations" current={path === '/ops'} />}
      </ul>
      {me ? (
        <div className="nav-me">
          <Avatar account={me} size={32} />
          <span className="nav-acct">@{me.acct}</span>
          <button type="button" className="btn btn-ghost btn-small" onClick={() => void out()} disabled={busy}>
            <Icon name="out" size={18} /> <span>Sign out</span>
          </button>
        </div>
      ) : (
        <div className="nav-me">
          <SignInButton className="btn btn-primary btn-small" />
        </div>
      )}
    </nav>
  );
}

export function App() {
  const s = useStore(session);
  const loc = useLocation();
  const me = s?.account;

  // Who is signed in decides the stream, the outbox's sender and the counts.
  useEffect(() => {
    clearTimelineCache();
    setStreamingToken(s?.token ?? null);
    setOutboxAccount(s?.account.id ?? null);
    startNotifications(Boolean(s));
    if (s) {
      api<Account>('/api/v1/accounts/verify_credentials')
        .then(({ data }) => updateAccount(data))
        .catch(() => {});
    }
  }, [s?.token]);

  // After an in-app navigation: to the top, and the new page's heading gets focus.
  useEffect(() => {
    if (loc.key === 0) return;
    if (!loc.pop) window.scrollTo(0, 0);
    let tries = 0;
    let raf = 0;
    const focus = () => {
      const h = document.querySelector<HTMLElement>('main [data-page-heading]');
      if (h) h.focus({ preventScroll: true });
      else if (tries++ < 60) raf = requestAnimationFrame(focus);
    };
    raf = requestAnimationFrame(focus);
    return () => cancelAnimationFrame(raf);
  }, [loc.key]);

  useEffect(() => {
    const h = document.querySelector('main [data-page-heading]')?.textContent;
    document.title = h ? `${h} — Starling` : 'Starling';
  });

  return (
    <div className="app">
      <a className="skip-link" href="#main">
        Skip to content
      </a>
      <DegradedBanner />
      <div className="layout">
        <Nav path={loc.path} me={me} />
        <main id="main" className="main" tabIndex={-1}>
          <OutboxPanel />
          <Suspense fallback={<Spinner />}>{route(loc.path, Boolean(me))}</Suspense>
        </main>
        <aside className="aside" aria-label="Trends">
          <form
            role="search"
            className="aside-search"
            onSubmit={(e) => {
              e.preventDefault();
              const q = new FormData(e.currentTarget).get('q');
              if (typeof q === 'string' && q.trim()) navigate(`/search?q=${encodeURIComponent(q.trim())}`);
            }}
          >
            <label htmlFor="aside-q" className="sr-only">
              Search
            </label>
            <input id="aside-q" name="q" type="search" placeholder="Search Starling" autoComplete="off" />
          </form>
          <Trends />
        </aside>
      </div>
      <Toasts />
    </div>
  );
}
