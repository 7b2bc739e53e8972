/**
 * Post text: finding mentions, hashtags and links, counting length the way
 * Mastodon does, and rendering safe HTML. Everything the author wrote is
 * escaped; the only markup in the output is what this module emits.
 */

export const MAX_STATUS_CHARS = 500;
/** Mastodon counts every URL as 23 characters, whatever its length. */
export const URL_PLACEHOLDER_CHARS = 23;

export type Token =
  | { kind: 'text'; text: string }
  | { kind: 'mention'; text: string; username: string; domain: string | null }
  | { kind: 'hashtag'; text: string; tag: string }
  | { kind: 'link'; text: string; url: string };

// A mention is @user or @user@domain, not preceded by a word character (so e-mail addresses are not mentions).
const MENTION = /(?<![\p{L}\p{N}_\/@.])@([a-z0-9_]+(?:[a-z0-9_.-]+[a-z0-9_]+)?)(?:@([a-z0-9.-]+\.[a-z]{2,}|localhost(?::\d+)?|[a-z0-9.-]+:\d+))?/giu;
// A hashtag starts a word and holds letters, numbers, underscores and joiners, and at least one non-digit.
const HASHTAG = /(?<![\p{L}\p{N}_&\/)#])#([\p{L}\p{M}\p{N}_\u00b7\u200c]*[\p{L}\p{M}_][\p{L}\p{M}\p{N}_\u00b7\u200c]*)/gu;
const LINK = /\bhttps?:\/\/[^\s<>"'\u0000-\u001f]+/giu;
// Trailing punctuation is almost never part of a URL; a closing bracket is when the URL opened one.
const TRAILING = /[.,;:!?'"…]+$/u;

export function tokenize(text: string): Token[] {
  type Hit = { start: number; end: number; token: Token };
  const hits: Hit[] = [];
  for (const m of text.matchAll(LINK)) {
    let url = m[0].replace(TRAILING, '');
    while (url.endsWith(')') && count(url, '(') < count(url, ')')) url = url.slice(0, -1).replace(TRAILING, '');
    hits.push({ start: m.index!, end: m.index! + url.length, token: { kind: 'link', text: url, url } });
  }
  const free = (start: number, end: number) => !hits.some((h) => start < h.end && end > h.start);
  for (const m of text.matchAll(MENTION)) {
    const end = m.index! + m[0].length;
    if (free(m.index!, end)) {
      hits.push({ start: m.index!, end, token: { kind: 'mention', text: m[0], username: m[1], domain: m[2]?.toLowerCase() ?? null } });
    }
  }
  for (const m of text.matchAll(HASHTAG)) {
    const end = m.index! + m[0].length;
    if (free(m.index!, end) && m[1].length <= 100) {
      hits.push({ start: m.index!, end, token: { kind: 'hashtag', text: m[0], tag: m[1] } });
    }
  }
  hits.sort((a, b) => a.start - b.start);
  const out: Token[] = [];
  let at = 0;
  for (const h of hits) {
    if (h.start > at) out.push({ kind: 'text', text: text.slice(at, h.start) });
    out.push(h.token);
    at = h.end;
  }
  if (at < text.length) out.push({ kind: 'text', text: text.slice(at) });
  return out;
}

function count(s: string, ch: string): number {
  let n = 0;
  for (const c of s) if (c === ch) n++;
  return n;
}

const segmenter = new Intl.Segmenter('en', { granularity: 'grapheme' });

function graphemes(s: string): number {
  let n = 0;
  for (const _ of segmenter.segment(s)) n++;
  return n;
}

/**
 * Length as Mastodon counts it: graphemes, every URL as 23, a remote mention
 * as its local part only. The web app's counter uses this same function.
 */
export function countLength(text: string, spoilerText = ''): number {
  let n = graphemes(spoilerText);
  for (const t of tokenize(text)) {
    if (t.kind === 'link') n += URL_PLACEHOLDER_CHARS;
    else if (t.kind === 'mention') n += graphemes(`@${t.username}`);
    else n += graphemes(t.text);
  }
  return n;
}

/** Hashtag names are compared case-insensitively and without accents' composition differences. */
export function normalizeTag(tag: string): string {
  return tag.normalize('NFKC').toLowerCase();
}

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

export interface RenderContext {
  /** Base URL of this server, without a trailing slash. */
  baseUrl: string;
  /** The local domain, so that `@user@ourdomain` is treated as local. */
  domain: string;
  /** Resolved local mentions, by lower-cased username. */
  mentions: ReadonlyMap<string, { username: string; url: string }>;
}

/** The local username a mention token refers to, or null for a remote account. */
export function localMentionName(t: Extract<Token, { kind: 'mention' }>, domain: string): string | null {
  if (t.domain === null || t.domain === domain.toLowerCase()) return t.username.toLowerCase();
  return null;
}

export function renderHtml(text: string, ctx: RenderContext): string {
  const paragraphs = text.replace(/\r\n?/g, '\n').trim().split(/\n{2,}/);
  return paragraphs
    .map((p) => `<p>${tokenize(p).map((t) => renderToken(t, ctx)).join('').replace(/\n/g, '<br />')}</p>`)
    .join('');
}

function renderToken(t: Token, ctx: RenderContext): string {
  switch (t.kind) {
    case 'text':
      return escapeHtml(t.text);
    case 'mention': {
      const name = localMentionName(t, ctx.domain);
      const acct = name ? ctx.mentions.get(name) : undefined;
      if (!acct) return escapeHtml(t.text);
      return `<span class="h-card" translate="no"><a href="${escapeHtml(acct.url)}" class="u-url mention">@<span>${escapeHtml(acct.username)}</span></a></span>`;
    }
    case 'hashtag':
      return `<a href="${escapeHtml(`${ctx.baseUrl}/tags/${encodeURIComponent(normalizeTag(t.tag))}`)}" class="mention hashtag" rel="tag">#<span>${escapeHtml(t.tag)}</span></a>`;
    case 'link': {
      const m = /^(https?:\/\/(?:www\.)?)(.*)$/i.exec(t.url)!;
      const shown = m[2].length > 30 ? [m[2].slice(0, 30), m[2].slice(30)] : [m[2], ''];
      return `<a href="${escapeHtml(t.url)}" target="_blank" rel="nofollow noopener noreferrer" translate="no"><span class="invisible">${escapeHtml(m[1])}</span><span class="${shown[1] ? 'ellipsis' : ''}">${escapeHtml(shown[0])}</span><span class="invisible">${escapeHtml(shown[1])}</span></a>`;
    }
  }
}

/** Plain text to HTML for account bios: escaped, links and hashtags kept, line breaks kept. */
export function renderNote(text: string, ctx: RenderContext): string {
  return text.trim() === '' ? '' : renderHtml(text, ctx);
}

export function extract(text: string): { mentions: string[]; tags: string[]; links: string[] } {
  const mentions: string[] = [];
  const tags = new Map<string, string>();
  const links: string[] = [];
  for (const t of tokenize(text)) {
    if (t.kind === 'mention') mentions.push(t.domain ? `${t.username}@${t.domain}` : t.username);
    else if (t.kind === 'hashtag') tags.set(normalizeTag(t.tag), t.tag);
    else if (t.kind === 'link') links.push(t.url);
  }
  return { mentions, tags: [...tags.keys()], links };
}
