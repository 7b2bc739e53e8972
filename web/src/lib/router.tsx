/** A small history router: paths as Starling's own URLs (/@user, /@user/ID, /tags/x) so server links open in the app. */
import { useSyncExternalStore, type AnchorHTMLAttributes, type MouseEvent } from 'react';

export interface Loc {
  path: string;
  search: URLSearchParams;
  /** Changes with every navigation, even to the same URL. */
  key: number;
  /** True when the browser's back/forward buttons brought us here. */
  pop: boolean;
}

let current: Loc = { path: location.pathname, search: new URLSearchParams(location.search), key: 0, pop: false };
const listeners = new Set<() => void>();

function emit(pop: boolean): void {
  current = { path: location.pathname, search: new URLSearchParams(location.search), key: current.key + 1, pop };
  for (const l of [...listeners]) l();
}

window.addEventListener('popstate', () => emit(true));

export function useLocation(): Loc {
  return useSyncExternalStore(
    (cb) => {
      listeners.add(cb);
      return () => listeners.delete(cb);
    },
    () => current,
  );
}

/** Same-origin URLs open in the app; anything else is left to the browser. */
export function appPath(href: string): string | null {
  try {
    const url = new URL(href, location.href);
    if (url.origin !== location.origin) return null;
    if (/^\/(api|oauth|status|\.well-known|nodeinfo|health|readyz|metrics|avatars|headers)(\/|$)/.test(url.pathname)) return null;
    return url.pathname + url.search + url.hash;
  } catch {
    return null;
  }
}

export function navigate(to: string, opts: { replace?: boolean } = {}): void {
  // Remember where the reader was, so Back returns them there.
  history.replaceState({ ...(history.state ?? {}), scrollY: window.scrollY }, '');
  if (opts.replace) history.replaceState({}, '', to);
  else history.pushState({}, '', to);
  emit(false);
}

export function savedScroll(): number | null {
  const y = (history.state as { scrollY?: number } | null)?.scrollY;
  return typeof y === 'number' ? y : null;
}

/** Handles a click on an in-app link: plain left clicks navigate in place, anything else is the browser's. */
export function onLinkClick(e: MouseEvent<HTMLElement>, href: string): void {
  if (e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
  const path = appPath(href);
  if (!path) return;
  e.preventDefault();
  navigate(path);
}

export function Link({ to, children, ...rest }: AnchorHTMLAttributes<HTMLAnchorElement> & { to: string }) {
  return (
    <a href={to} {...rest} onClick={(e) => onLinkClick(e, to)}>
      {children}
    </a>
  );
}
