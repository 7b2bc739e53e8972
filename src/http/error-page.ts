/**
 * Errors for a person rather than a program. A browser that navigates or posts a form (the sign-in page posts to
 * /oauth/authorize) would show Mastodon's error JSON as a line of text; it gets the same words as a page, with
 * the status, Retry-After and headers unchanged. The API answers JSON whatever the Accept header says, as
 * Mastodon's does.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { pageCsp, renderMessagePage } from './oauth/pages.js';

function wantsPage(req: FastifyRequest): boolean {
  return !req.url.startsWith('/api/') && (req.headers.accept ?? '').includes('text/html');
}

/** The body for an error: Mastodon's JSON, or for a browser a page saying its `error` (the reply's headers are set here). */
export function errorBody(req: FastifyRequest, reply: FastifyReply, json: { error: string }, title = 'Try again shortly'): unknown {
  if (!wantsPage(req)) return json;
  reply.type('text/html; charset=utf-8').header('X-Frame-Options', 'DENY').header('Content-Security-Policy', pageCsp());
  return renderMessagePage({ title, message: json.error });
}
