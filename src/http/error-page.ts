/**
 * Errors for a person rather than a program. A browser that navigates or posts a form (the sign-in page posts to
 * /oauth/authorize) would show Mastodon's error JSON as a line of text; it gets the same words as a page, with
 * the status, Retry-After and headers unchanged. The API answers JSON whatever the Accept header says, as
 * Mastodon's does.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { pageCsp, renderMessagePage } from './oauth/pages.js';

export function wantsPage(req: FastifyRequest): boolean {
  return !req.url.startsWith('/api/') && (req.headers.accept ?? '').includes('text/html');
}

/** The body for an error: `{"error": message}`, or for a browser a page saying it (the reply's headers are set here). */
export function errorBody(req: FastifyRequest, reply: FastifyReply, message: string, title = 'Try again shortly'): unknown {
  if (!wantsPage(req)) return { error: message };
  reply.type('text/html; charset=utf-8').header('X-Frame-Options', 'DENY').header('Content-Security-Policy', pageCsp());
  return renderMessagePage({ title, message });
}
