/**
 * Link-header pagination as Mastodon does it: `next` pages older items
 * (max_id), `prev` pages newer ones (min_id). Clients follow these URLs as
 * given, so they are absolute and keep the request's other parameters.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Page } from './validation.js';

export interface Cursor {
  /** The page's newest and oldest cursor values (ids, or internal ids for lists like favourites). */
  newest: string;
  oldest: string;
}

export function setLinkHeader(req: FastifyRequest, reply: FastifyReply, baseUrl: string, cursor: Cursor | null): void {
  if (!cursor) return;
  const url = new URL(req.url, baseUrl);
  const params = url.searchParams;
  for (const k of ['max_id', 'min_id', 'since_id']) params.delete(k);
  const make = (k: string, v: string) => {
    const p = new URLSearchParams(params);
    p.set(k, v);
    return `${baseUrl}${url.pathname}?${p.toString()}`;
  };
  reply.header('Link', `<${make('max_id', cursor.oldest)}>; rel="next", <${make('min_id', cursor.newest)}>; rel="prev"`);
}

/** Cursor for a page already in newest-first order. */
export function cursorOf<T>(items: readonly T[], key: (t: T) => string): Cursor | null {
  if (items.length === 0) return null;
  return { newest: key(items[0]), oldest: key(items[items.length - 1]) };
}

export type { Page };
