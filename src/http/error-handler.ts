/**
 * One place that turns any failure into Mastodon's `{"error": "..."}`: our
 * own errors carry safe text; Fastify's (bad JSON, body too large, rate
 * limit) are mapped to theirs; anything else is a 500 whose cause is logged
 * and never sent. A browser's page or form (not the API) gets the same words
 * as a page (http/error-page.ts).
 */
import type { FastifyError, FastifyInstance } from 'fastify';
import { StarlingError, ERRORS } from '../domain/errors.js';
import { classifyDbError } from '../store/errors.js';
import { errorBody } from './error-page.js';

/** Retry-After on a 503 that does not say otherwise. */
export const RETRY_AFTER_SECONDS = 5;

export function installErrorHandler(app: FastifyInstance): void {
  app.setErrorHandler((err: FastifyError | StarlingError | Error, req, reply) => {
    if (err instanceof StarlingError) {
      if (err.status >= 500 && err.status !== 503) req.log.error({ err }, 'request failed');
      // Every 503 says when to come back: read-only mode, shedding and an open breaker are all temporary.
      if (err.status === 503) reply.header('Retry-After', String(err.details?.retryAfter ?? RETRY_AFTER_SECONDS));
      const { retryAfter: _r, ...details } = err.details ?? {};
      return reply.code(err.status).send(errorBody(req, reply, { error: err.message, ...details }, err.status >= 500 ? 'Try again shortly' : 'Something is not right'));
    }
    const fe = err as FastifyError;
    const status = fe.statusCode ?? 500;
    if (status === 429) return reply.code(429).send({ error: ERRORS.rate_limited.message });
    if (fe.code === 'FST_ERR_CTP_INVALID_JSON_BODY' || err instanceof SyntaxError) {
      return reply.code(400).send({ error: ERRORS.invalid_json.message });
    }
    if (fe.code === 'FST_ERR_CTP_BODY_TOO_LARGE' || fe.code === 'FST_REQ_FILE_TOO_LARGE' || status === 413) {
      return reply.code(413).send({ error: ERRORS.payload_too_large.message });
    }
    if (fe.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE' || status === 415) {
      return reply.code(415).send({ error: ERRORS.unsupported_media_type.message });
    }
    if (status >= 400 && status < 500) {
      // Fastify's own client errors (empty JSON body, bad content length, multipart limits): their text is safe.
      return reply.code(status).send({ error: err.message || ERRORS.bad_request.message });
    }
    // A read that met a database going away (a PostgreSQL failover) or locked: temporary, so a 503 to retry, not a 500.
    const kind = classifyDbError(err);
    if (kind === 'unavailable' || kind === 'busy') {
      req.log.warn({ err }, 'database unavailable');
      return reply.code(503).header('Retry-After', String(RETRY_AFTER_SECONDS)).send(errorBody(req, reply, { error: ERRORS.overloaded.message }));
    }
    req.log.error({ err }, 'unhandled error');
    return reply.code(500).send(errorBody(req, reply, { error: ERRORS.internal.message }, 'Something went wrong'));
  });

  app.setNotFoundHandler((req, reply) => {
    reply.code(404).send({ error: ERRORS.route_not_found.message });
  });
}
