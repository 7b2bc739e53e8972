/**
 * Requests to Starling's Mastodon API: the session's token, JSON bodies, the
 * Link header's next/prev URLs, and a report of every outcome to the health
 * store (network errors and 5xx mark the platform as failing; a 503 in which
 * Starling says why it refuses is a refusal, passed on in its words; anything
 * else means the server answered).
 */
import { reportRefusal, reportRequest } from './health';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly body: unknown,
    readonly retryAfterMs: number | null = null,
  ) {
    super(message);
  }
}

/** The server could not be reached (or answered with a 5xx): the request may be retried. */
export class NetworkError extends Error {}

/**
 * Starling answered, and said it cannot do this now: a 503 with Mastodon's error JSON (read-only mode, or too
 * busy). As retryable as a network failure, but the server was reached: its own words and its Retry-After are
 * kept, so people are told what it said and a retry waits as long as it asked.
 */
export class UnavailableError extends NetworkError {
  constructor(
    message: string,
    readonly retryAfterMs: number | null,
  ) {
    super(message);
  }
}

const WRITE_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/** Retry-After in seconds (what Starling sends), else null. */
function retryAfterMs(res: Response): number | null {
  const ra = res.headers.get('Retry-After');
  return ra && /^\d+$/.test(ra) ? Number(ra) * 1000 : null;
}

/** The `error` of a Mastodon error body, if that is what `text` is. */
function errorMessage(text: string): string | null {
  try {
    const obj = JSON.parse(text) as { error?: unknown };
    return typeof obj?.error === 'string' && obj.error ? obj.error : null;
  } catch {
    return null;
  }
}

export interface ApiResponse<T> {
  data: T;
  status: number;
  /** Link rel="next": older items. */
  next: string | null;
  /** Link rel="prev": newer items. */
  prev: string | null;
}

let token: string | null = null;
let onUnauthorized: (() => void) | null = null;

export function setToken(t: string | null): void {
  token = t;
}
export function getToken(): string | null {
  return token;
}
export function setUnauthorizedHandler(fn: (() => void) | null): void {
  onUnauthorized = fn;
}

/** Parses `<url>; rel="next", <url>; rel="prev"`. */
export function parseLink(header: string | null): { next: string | null; prev: string | null } {
  const out = { next: null as string | null, prev: null as string | null };
  if (!header) return out;
  for (const part of header.split(/,\s*(?=<)/)) {
    const m = /<([^>]*)>\s*;\s*rel="?([^";]+)"?/.exec(part);
    if (!m) continue;
    if (m[2] === 'next') out.next = m[1];
    else if (m[2] === 'prev') out.prev = m[1];
  }
  return out;
}

/**
 * The URL to request. Link URLs are followed exactly as the server wrote them;
 * only if the server's public URL is another origin than the one this page
 * came from (a proxy in front) is the same path and query asked of this origin.
 */
function target(pathOrUrl: string, query?: Record<string, string | number | boolean | string[] | undefined>): string {
  let url: URL;
  if (/^https?:\/\//.test(pathOrUrl)) {
    url = new URL(pathOrUrl);
    if (url.origin !== location.origin) url = new URL(url.pathname + url.search, location.origin);
  } else {
    url = new URL(pathOrUrl, location.origin);
  }
  if (query) {
    for (const [k, v] of Object.entries(query)) {
      if (v === undefined) continue;
      if (Array.isArray(v)) for (const item of v) url.searchParams.append(`${k}[]`, item);
      else url.searchParams.set(k, String(v));
    }
  }
  return url.origin === location.origin ? url.pathname + url.search : url.toString();
}

export interface RequestOptions {
  method?: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  body?: unknown;
  query?: Record<string, string | number | boolean | string[] | undefined>;
  headers?: Record<string, string>;
  /** Another token than the session's (the app token when signing up); null sends none. */
  token?: string | null;
  signal?: AbortSignal;
}

export async function api<T>(pathOrUrl: string, opts: RequestOptions = {}): Promise<ApiResponse<T>> {
  const headers: Record<string, string> = { Accept: 'application/json', ...opts.headers };
  const bearer = opts.token === undefined ? token : opts.token;
  if (bearer) headers.Authorization = `Bearer ${bearer}`;
  let body: string | undefined;
  if (opts.body !== undefined) {
    headers['Content-Type'] = 'application/json';
    body = JSON.stringify(opts.body);
  }
  let res: Response;
  try {
    res = await fetch(target(pathOrUrl, opts.query), { method: opts.method ?? 'GET', headers, body, signal: opts.signal, cache: 'no-store' });
  } catch (err) {
    if ((err as Error).name === 'AbortError') throw err;
    reportRequest(false);
    throw new NetworkError('Starling could not be reached');
  }
  const write = WRITE_METHODS.has(opts.method ?? 'GET');
  if (res.status >= 500) {
    const said = res.status === 503 ? errorMessage(await res.text().catch(() => '')) : null;
    if (said !== null) {
      const wait = retryAfterMs(res);
      reportRefusal(said, { write, retryAfterMs: wait });
      throw new UnavailableError(said, wait);
    }
    reportRequest(false);
    throw new NetworkError(`Starling answered ${res.status}`);
  }
  reportRequest(true, res.ok ? { write } : undefined);
  const text = await res.text().catch(() => '');
  let data: unknown = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = text;
    }
  }
  if (!res.ok) {
    const obj = data && typeof data === 'object' ? (data as { error?: unknown; error_description?: unknown }) : {};
    const message = String(obj.error_description || obj.error || `Request failed (${res.status})`);
    if (res.status === 401 && bearer && bearer === token && opts.token === undefined) onUnauthorized?.();
    throw new ApiError(res.status, message, data, retryAfterMs(res));
  }
  return { data: data as T, status: res.status, ...parseLink(res.headers.get('Link')) };
}

/** An error a person can read. */
export function describeError(err: unknown): string {
  if (err instanceof NetworkError) return "Starling can't be reached right now. Try again in a moment.";
  if (err instanceof ApiError) {
    if (err.status === 429) return "You're doing that too often. Wait a little and try again.";
    if (err.status === 404) return "That isn't here (or you can't see it).";
    return err.message;
  }
  return 'Something went wrong.';
}
