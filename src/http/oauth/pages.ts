/**
 * The HTML the OAuth flow shows a person: the sign-in and consent page, the
 * page that shows an out-of-band code, and error pages. Pure functions of
 * their input: every interpolated value goes through escapeHtml, the pages
 * carry no script, and the only style is inline (the CSP allows nothing else).
 */
import { escapeHtml } from '../../domain/text.js';

export const OOB = 'urn:ietf:wg:oauth:2.0:oob';

const TOP_DESCRIPTIONS: Record<string, string> = {
  read: 'Read all your account data',
  write: 'Modify all your account data',
  follow: 'Modify account relationships',
  push: 'Receive your push notifications',
  profile: 'Read only your account profile information',
  'admin:read': 'Read all data on the server',
  'admin:write': 'Modify all data on the server',
};

/** A short human description of one scope. */
export function describeScope(scope: string): string {
  const top = TOP_DESCRIPTIONS[scope];
  if (top) return top;
  const [kind, what] = scope.split(':');
  const noun = (what ?? scope).replace(/_/g, ' ');
  if (kind === 'read') return `Read your ${noun}`;
  if (kind === 'write') return `Modify your ${noun}`;
  return scope;
}

/** A valid BCP 47-ish language tag for the `lang` attribute, else English. */
export function pageLang(lang: string | undefined): string {
  return lang && /^[A-Za-z]{2,3}(?:-[A-Za-z0-9]{1,8})*$/.test(lang) ? lang : 'en';
}

/**
 * A CSP source expression for where the sign-in form may lead: the origin of
 * an http(s) redirect URI, the scheme of a custom-scheme one (`myapp:`),
 * nothing for the out-of-band URI or anything unparseable.
 */
export function redirectSource(redirectUri: string | undefined): string | null {
  if (!redirectUri || redirectUri === OOB) return null;
  let url: URL;
  try {
    url = new URL(redirectUri);
  } catch {
    return null;
  }
  const scheme = url.protocol.toLowerCase();
  if (!/^[a-z][a-z0-9+.-]*:$/.test(scheme)) return null;
  if (scheme === 'http:' || scheme === 'https:') {
    const origin = url.origin;
    // A source expression must not be able to smuggle in another directive.
    return /^https?:\/\/[A-Za-z0-9.\-[\]:]+$/.test(origin) ? origin : null;
  }
  return scheme;
}

/** The Content-Security-Policy for every OAuth page. */
export function pageCsp(redirectUri?: string): string {
  const target = redirectSource(redirectUri);
  return `default-src 'none'; style-src 'unsafe-inline'; form-action 'self'${target ? ` ${target}` : ''}; frame-ancestors 'none'; base-uri 'none'`;
}

/** `redirectUri` with `params` added to its query (undefined values left out), keeping any query it already has. */
export function redirectWith(redirectUri: string, params: Record<string, string | undefined>): string {
  const entries = Object.entries(params).filter((e): e is [string, string] => e[1] !== undefined);
  try {
    const url = new URL(redirectUri);
    for (const [k, v] of entries) url.searchParams.append(k, v);
    return url.toString();
  } catch {
    const q = new URLSearchParams(entries).toString();
    if (!q) return redirectUri;
    const hash = redirectUri.indexOf('#');
    const base = hash >= 0 ? redirectUri.slice(0, hash) : redirectUri;
    return `${base}${base.includes('?') ? '&' : '?'}${q}`;
  }
}

const STYLE = `
:root { color-scheme: light dark; }
* { box-sizing: border-box; }
body { margin: 0; font: 16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; background: #f4f4f7; color: #1b1b1f; }
main { max-width: 28rem; margin: 2rem auto; padding: 1.5rem; background: #fff; border-radius: 8px; box-shadow: 0 1px 3px rgba(0,0,0,.15); }
h1 { font-size: 1.4rem; margin: 0 0 1rem; }
ul { padding-left: 1.25rem; }
label { display: block; font-weight: 600; margin: 1rem 0 .25rem; }
input[type=text], input[type=password] { width: 100%; padding: .6rem; font: inherit; border: 1px solid #6b6b76; border-radius: 4px; background: inherit; color: inherit; }
input:focus, button:focus { outline: 3px solid #2b5fd9; outline-offset: 2px; }
.actions { display: flex; gap: .75rem; margin-top: 1.5rem; }
button { flex: 1; padding: .7rem; font: inherit; font-weight: 600; border-radius: 4px; border: 1px solid #2b5fd9; cursor: pointer; }
button.approve { background: #2b5fd9; color: #fff; }
button.deny { background: transparent; color: inherit; border-color: #6b6b76; }
.error { padding: .75rem; border-left: 4px solid #b3261e; background: #fdecea; color: #5f1410; border-radius: 4px; }
code.oauth-code { display: block; padding: .75rem; font-size: 1.1rem; word-break: break-all; background: #eef0f5; border-radius: 4px; user-select: all; }
.muted { color: #55555f; font-size: .9rem; }
@media (prefers-color-scheme: dark) {
  body { background: #17171c; color: #ececf1; }
  main { background: #222229; box-shadow: none; }
  .error { background: #3b1614; color: #ffd9d4; }
  code.oauth-code { background: #2e2e37; }
  .muted { color: #b4b4c0; }
}
`;

function layout(lang: string | undefined, title: string, body: string): string {
  return `<!DOCTYPE html>
<html lang="${escapeHtml(pageLang(lang))}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<meta name="robots" content="noindex, nofollow">
<title>${escapeHtml(title)}</title>
<style>${STYLE}</style>
</head>
<body>
<main>
${body}
</main>
</body>
</html>
`;
}

export interface AuthorizePageInput {
  appName: string;
  appWebsite: string | null;
  scopes: readonly string[];
  /** Every parameter of the authorization request, carried through the form as hidden fields. */
  hidden: Record<string, string | undefined>;
  /** Where the form posts (normally `/oauth/authorize`). */
  action: string;
  /** Prefills the login field after a failed attempt (never the password). */
  login?: string;
  /** Shown above the form, announced to screen readers. */
  error?: string;
  /** Something to know before signing in (read-only mode), shown above the form; not an error of the form's. */
  notice?: string;
  lang?: string;
}

export function renderAuthorizePage(input: AuthorizePageInput): string {
  const name = escapeHtml(input.appName);
  const hidden = Object.entries(input.hidden)
    .filter((e): e is [string, string] => e[1] !== undefined && e[1] !== '')
    .map(([k, v]) => `<input type="hidden" name="${escapeHtml(k)}" value="${escapeHtml(v)}">`)
    .join('\n');
  const scopes = input.scopes
    .map((s) => `<li>${escapeHtml(describeScope(s))} <span class="muted">(<code>${escapeHtml(s)}</code>)</span></li>`)
    .join('\n');
  const website = input.appWebsite && /^https?:\/\//i.test(input.appWebsite)
    ? `<p class="muted">Website: ${escapeHtml(input.appWebsite)}</p>`
    : '';
  const error = input.error ? `<p class="error" id="form-error" role="alert">${escapeHtml(input.error)}</p>` : '';
  const notice = input.notice ? `<p class="error" role="status">${escapeHtml(input.notice)}</p>` : '';
  const describedBy = input.error ? ' aria-describedby="form-error"' : '';
  const invalid = input.error ? ' aria-invalid="true"' : '';
  const body = `<h1>Authorize ${name}</h1>
<p><strong>${name}</strong> would like to use your account. Sign in to allow it to:</p>
<ul aria-label="Requested permissions">
${scopes}
</ul>
${website}
${notice}
${error}
<form method="post" action="${escapeHtml(input.action)}">
${hidden}
<label for="username">Username or e-mail address</label>
<input type="text" id="username" name="username" autocomplete="username" autocapitalize="none" spellcheck="false" required autofocus value="${escapeHtml(input.login ?? '')}"${describedBy}${invalid}>
<label for="password">Password</label>
<input type="password" id="password" name="password" autocomplete="current-password" required${describedBy}${invalid}>
<div class="actions">
<button type="submit" class="approve" name="decision" value="approve">Approve</button>
<button type="submit" class="deny" name="decision" value="deny" formnovalidate>Deny</button>
</div>
</form>
<p class="muted">You will be returned to ${name}. Only approve applications you trust.</p>`;
  return layout(input.lang, `Authorize ${input.appName}`, body);
}

export function renderCodePage(input: { appName: string; code: string; lang?: string }): string {
  const name = escapeHtml(input.appName);
  const body = `<h1>Authorization code</h1>
<p>Copy this code and paste it into <strong>${name}</strong> to finish signing in:</p>
<code class="oauth-code" id="code" aria-label="Authorization code">${escapeHtml(input.code)}</code>
<p class="muted">The code can be used once and expires in ten minutes.</p>`;
  return layout(input.lang, 'Authorization code', body);
}

export function renderMessagePage(input: { title: string; message: string; lang?: string }): string {
  const body = `<h1>${escapeHtml(input.title)}</h1>
<p role="alert">${escapeHtml(input.message)}</p>`;
  return layout(input.lang, input.title, body);
}
