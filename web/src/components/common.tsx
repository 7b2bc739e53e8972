import { useEffect, useState, type ReactNode } from 'react';
import type { Account } from '../lib/types';
import { Link } from '../lib/router';

export function Avatar({ account, size = 46 }: { account: Account; size?: number }) {
  const [failed, setFailed] = useState(false);
  const initial = (account.display_name || account.username).trim().charAt(0).toUpperCase() || '?';
  // The server's placeholder is a blank image: a coloured initial says more.
  if (failed || account.avatar.endsWith('/missing.png')) {
    const hue = [...account.acct].reduce((h, c) => (h * 31 + c.charCodeAt(0)) % 360, 7);
    return (
      <span className="avatar avatar-initial" aria-hidden="true" style={{ width: size, height: size, fontSize: size * 0.45, background: `hsl(${hue} 45% 45%)` }}>
        {initial}
      </span>
    );
  }
  return <img className="avatar" src={account.avatar} alt="" width={size} height={size} loading="lazy" onError={() => setFailed(true)} />;
}

export function displayName(a: Account): string {
  return a.display_name.trim() || a.username;
}

export function profilePath(a: Pick<Account, 'acct'>): string {
  return `/@${a.acct}`;
}

export function AccountName({ account, link = true }: { account: Account; link?: boolean }) {
  const inner = (
    <>
      <bdi className="display-name">{displayName(account)}</bdi> <span className="acct">@{account.acct}</span>
    </>
  );
  return link ? (
    <Link to={profilePath(account)} className="account-name">
      {inner}
    </Link>
  ) : (
    <span className="account-name">{inner}</span>
  );
}

const rtf = typeof Intl !== 'undefined' && Intl.RelativeTimeFormat ? new Intl.RelativeTimeFormat(undefined, { numeric: 'auto', style: 'narrow' }) : null;

export function relativeTime(iso: string, now = Date.now()): string {
  const s = Math.round((new Date(iso).getTime() - now) / 1000);
  const a = Math.abs(s);
  if (!rtf) return new Date(iso).toLocaleString();
  if (a < 45) return 'just now';
  if (a < 3600) return rtf.format(Math.round(s / 60), 'minute');
  if (a < 86400) return rtf.format(Math.round(s / 3600), 'hour');
  if (a < 7 * 86400) return rtf.format(Math.round(s / 86400), 'day');
  return new Date(iso).toLocaleDateString(undefined, { day: 'numeric', month: 'short', year: a > 300 * 86400 ? 'numeric' : undefined });
}

/** Re-renders every minute so relative times stay true. */
export function useMinuteTick(): number {
  const [t, setT] = useState(Date.now());
  useEffect(() => {
    const i = setInterval(() => setT(Date.now()), 60_000);
    return () => clearInterval(i);
  }, []);
  return t;
}

export function Spinner({ label = 'Loading' }: { label?: string }) {
  return (
    <div className="spinner" role="status">
      <span className="spinner-dot" aria-hidden="true" />
      <span>{label}…</span>
    </div>
  );
}

export function ErrorBox({ children, onRetry }: { children: ReactNode; onRetry?: () => void }) {
  return (
    <div className="error-box" role="alert">
      <p>{children}</p>
      {onRetry && (
        <button type="button" className="btn" onClick={onRetry}>
          Try again
        </button>
      )}
    </div>
  );
}

/** The view's heading takes focus after an in-app navigation, so screen readers announce the new page. */
export function PageHeading({ children, id }: { children: ReactNode; id?: string }) {
  return (
    <h1 className="page-heading" tabIndex={-1} id={id} data-page-heading>
      {children}
    </h1>
  );
}

export function Icon({ name, size = 20 }: { name: keyof typeof ICONS; size?: number }) {
  return (
    <svg className="icon" width={size} height={size} viewBox="0 0 24 24" aria-hidden="true" focusable="false">
      <path d={ICONS[name]} fill="currentColor" />
    </svg>
  );
}

export const ICONS = {
  home: 'M12 3 2 11h3v9h5v-6h4v6h5v-9h3z',
  bell: 'M12 22a2.5 2.5 0 0 0 2.45-2h-4.9A2.5 2.5 0 0 0 12 22zm7-6V11a7 7 0 0 0-5.5-6.84V3a1.5 1.5 0 0 0-3 0v1.16A7 7 0 0 0 5 11v5l-2 2v1h18v-1z',
  users: 'M16 11a3.5 3.5 0 1 0 0-7 3.5 3.5 0 0 0 0 7zM8 11a3.5 3.5 0 1 0 0-7 3.5 3.5 0 0 0 0 7zm0 2c-2.7 0-8 1.3-8 4v3h16v-3c0-2.7-5.3-4-8-4zm8 0c-.3 0-.7 0-1.1.1A4.6 4.6 0 0 1 18 17v3h6v-3c0-2.7-5.3-4-8-4z',
  globe: 'M12 2a10 10 0 1 0 0 20 10 10 0 0 0 0-20zm6.9 6h-3a15.7 15.7 0 0 0-1.4-3.6A8 8 0 0 1 18.9 8zM12 4c.8 1.2 1.5 2.5 1.9 4h-3.8c.4-1.5 1.1-2.8 1.9-4zM4.3 14a8.2 8.2 0 0 1 0-4h3.4a16.5 16.5 0 0 0 0 4zm.8 2h3a15.7 15.7 0 0 0 1.4 3.6A8 8 0 0 1 5.1 16zm3-8h-3a8 8 0 0 1 4.4-3.6C8.9 5.5 8.4 6.7 8.1 8zM12 20c-.8-1.2-1.5-2.5-1.9-4h3.8c-.4 1.5-1.1 2.8-1.9 4zm2.3-6H9.7a14.7 14.7 0 0 1 0-4h4.6a14.7 14.7 0 0 1 0 4zm.3 5.6c.6-1.1 1.1-2.3 1.4-3.6h3a8 8 0 0 1-4.4 3.6zm1.8-5.6a16.5 16.5 0 0 0 0-4h3.4a8.2 8.2 0 0 1 0 4z',
  search: 'M15.5 14h-.8l-.3-.3A6.5 6.5 0 1 0 9.5 16a6.5 6.5 0 0 0 4.2-1.6l.3.3v.8l5 5 1.5-1.5zm-6 0a4.5 4.5 0 1 1 0-9 4.5 4.5 0 0 1 0 9z',
  bookmark: 'M17 3H7a2 2 0 0 0-2 2v16l7-3 7 3V5a2 2 0 0 0-2-2z',
  star: 'm12 17.3 6.2 3.7-1.6-7L22 9.2l-7.2-.6L12 2 9.2 8.6 2 9.2 7.5 14l-1.7 7z',
  reply: 'M10 9V5l-7 7 7 7v-4.1c5 0 8.5 1.6 11 5.1-1-5-4-10-11-11z',
  repost: 'M7 7h10v3l4-4-4-4v3H5v6h2zm10 10H7v-3l-4 4 4 4v-3h12v-6h-2z',
  user: 'M12 12a4 4 0 1 0 0-8 4 4 0 0 0 0 8zm0 2c-2.7 0-8 1.3-8 4v2h16v-2c0-2.7-5.3-4-8-4z',
  out: 'M10 17v-3H3v-4h7V7l5 5zM19 3h-8v2h8v14h-8v2h8a2 2 0 0 0 2-2V5a2 2 0 0 0-2-2z',
  tag: 'M10.6 21 9.9 18H6.5l.6-2h2.3l-.9-4H5l.5-2h3l-.7-3h2l.7 3h4l-.7-3h2l.7 3H20l-.5 2h-2.5l.9 4h3.1l-.5 2h-2.2l.7 3h-2l-.7-3h-4l.7 3zm.3-9 .9 4h4l-.9-4z',
  chart: 'M3 3h2v16h16v2H3zm4 12 4-5 3 3 5-7 1.6 1.2-6.4 9-3-3-2.6 3.4z',
  pen: 'M3 17.2V21h3.8L17.8 9.9l-3.7-3.7zM20.7 7a1 1 0 0 0 0-1.4l-2.3-2.3a1 1 0 0 0-1.4 0l-1.8 1.8 3.7 3.7z',
} as const;
