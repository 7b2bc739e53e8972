/**
 * Every error a client can see, declared once: a stable code, the HTTP
 * status and the text Mastodon clients expect. Lower layers throw these with
 * facts; the HTTP error handler renders `{"error": message}` and logs the cause.
 */
export const ERRORS = {
  bad_request: { status: 400, message: 'Bad request' },
  invalid_json: { status: 400, message: 'Invalid JSON in request body' },
  param_missing: { status: 400, message: 'Missing required parameter' },
  unauthorized: { status: 401, message: 'The access token is invalid' },
  // Mastodon answers 422, not 401, when the token is valid but acts for an app, not a person.
  login_required: { status: 422, message: 'This method requires an authenticated user' },
  invalid_client: { status: 401, message: 'Client authentication failed due to unknown client, no client authentication included, or unsupported authentication method.' },
  invalid_grant: { status: 400, message: 'The provided authorization grant is invalid, expired, revoked, does not match the redirection URI used in the authorization request, or was issued to another client.' },
  unsupported_grant_type: { status: 400, message: 'The authorization grant type is not supported by the authorization server.' },
  invalid_scope: { status: 400, message: 'The requested scope is invalid, unknown, or malformed.' },
  forbidden: { status: 403, message: 'This action is not allowed' },
  scope_missing: { status: 403, message: 'This action is outside the authorized scopes' },
  account_disabled: { status: 403, message: 'Your login is currently disabled' },
  registrations_closed: { status: 403, message: 'Registrations are closed on this server' },
  not_found: { status: 404, message: 'Record not found' },
  route_not_found: { status: 404, message: 'Not found' },
  method_not_allowed: { status: 405, message: 'Method not allowed' },
  conflict: { status: 409, message: 'Conflict' },
  payload_too_large: { status: 413, message: 'Request body is too large' },
  unsupported_media_type: { status: 415, message: 'Unsupported content type' },
  validation: { status: 422, message: 'Validation failed' },
  rate_limited: { status: 429, message: 'Too many requests' },
  internal: { status: 500, message: 'Internal server error' },
  unavailable: { status: 503, message: 'Service temporarily unavailable' },
  // Read-only mode (src/ops/read-only.ts): writes cannot be made durable, reads still work.
  read_only: {
    status: 503,
    message: 'Starling is in read-only mode: posting is temporarily unavailable. Your post was not lost if your app keeps it; try again shortly.',
  },
  // The same for signing in or up (a token, an account: writes) and for any other change (a like, a follow):
  // the words say what is paused (http/pressure.ts picks them by path).
  read_only_sign_in: {
    status: 503,
    message: 'Starling is in read-only mode: it cannot save changes right now, so signing in and signing up are paused. Reading goes on; try again shortly.',
  },
  read_only_change: {
    status: 503,
    message: 'Starling is in read-only mode: it cannot save changes right now. Reading goes on; try again shortly.',
  },
  // Load shedding (src/http/pressure.ts) and the bounded write path (store/writer.ts, ops/read-only.ts).
  overloaded: { status: 503, message: 'Starling is busy right now: try again shortly.' },
} as const satisfies Record<string, { status: number; message: string }>;

export type ErrorCode = keyof typeof ERRORS;

export class StarlingError extends Error {
  readonly status: number;
  constructor(
    readonly code: ErrorCode,
    /** Safe to show the client. Defaults to the code's standard text. */
    message?: string,
    options?: { cause?: unknown; details?: Record<string, unknown> },
  ) {
    super(message ?? ERRORS[code].message, options);
    this.status = ERRORS[code].status;
    this.details = options?.details;
  }
  readonly details: Record<string, unknown> | undefined;
}

export const notFound = (what = 'Record not found') => new StarlingError('not_found', what);
export const validation = (message: string) => new StarlingError('validation', `Validation failed: ${message}`);
