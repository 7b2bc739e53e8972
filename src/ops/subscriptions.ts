/**
 * Webhook subscriptions to the status page, with confirmation and signed
 * deliveries.
 *
 * 1. `subscribe(url)` stores the URL with a fresh secret and a confirmation
 *    token (only the token's SHA-256 is stored), then POSTs
 *    `{type: 'subscription.confirm', id, url, confirm_url, secret}` to the URL.
 *    A URL that cannot take that request is not kept.
 * 2. The receiver confirms by fetching `confirm_url` (GET or POST). Unconfirmed
 *    subscriptions expire after a day and never receive anything.
 * 3. `notifySubscribers(ctx, event)` POSTs incident events to every confirmed
 *    subscriber, signed: `X-Starling-Signature: sha256=HMAC(secret, "<timestamp>.<body>")`
 *    with the timestamp (Unix seconds) in `X-Starling-Timestamp`. Failures are
 *    retried a bounded number of times from memory; a 410 Gone unsubscribes.
 * 4. `unsubscribe(url, proof)` with the secret, or with a fresh signature of
 *    `"<timestamp>.<url>"` under it.
 *
 * Deliveries go only to http(s) URLs, and — unless allowed — never to
 * loopback, private, link-local or other internal addresses; the address is
 * checked when connecting, so a DNS answer cannot swap in an internal one.
 * The list of confirmed subscribers is kept in memory as well, so an incident
 * about the database itself still reaches them.
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import http from 'node:http';
import https from 'node:https';
import { BlockList, isIP } from 'node:net';
import { StarlingError } from '../domain/errors.js';
import type { AppContext } from '../services/context.js';
import { STARLING_VERSION } from '../version.js';
import type { IncidentUpdateView, IncidentView } from './model.js';

/** The ops engine's incident events ('incident.opened'); 'incident.created' is accepted as a synonym. Delivered with the type as given. */
export type SubscriptionEventType = 'incident.opened' | 'incident.created' | 'incident.updated' | 'incident.resolved';

export interface SubscriptionEvent {
  type: SubscriptionEventType;
  incident: IncidentView;
  /** The update that caused the event, when there is one. */
  update?: IncidentUpdateView;
}

export interface SubscriptionOptions {
  /** Allow loopback and private targets. Defaults to true only when the node's own public URL is on loopback (development, tests). */
  allowPrivateTargets: boolean;
  /** Per request. */
  timeoutMs: number;
  /** Delays before each retry of a failed delivery; its length bounds the retries. */
  retryDelaysMs: number[];
  /** How long a subscription may stay unconfirmed. */
  confirmTtlMs: number;
  /** At most this many unconfirmed subscriptions at once (a flood of sign-ups cannot fill the table). */
  maxPending: number;
  /** At most this many deliveries waiting for a retry; beyond it, failures are dropped (and logged). */
  maxQueuedRetries: number;
}

export const DEFAULT_SUBSCRIPTION_OPTIONS: Omit<SubscriptionOptions, 'allowPrivateTargets'> = {
  timeoutMs: 5000,
  retryDelaysMs: [2000, 10_000, 60_000],
  confirmTtlMs: 24 * 3600_000,
  maxPending: 1000,
  maxQueuedRetries: 1000,
};

interface Subscriber {
  id: string;
  url: string;
  secret: string;
}

interface State {
  options: SubscriptionOptions;
  /** Confirmed subscribers as last read (null until first read). */
  cache: Map<string, Subscriber> | null;
  timers: Set<NodeJS.Timeout>;
  inflight: Set<Promise<unknown>>;
  stopped: boolean;
}

/** Per-node state, keyed by the context (no module-level singletons: tests run several nodes in one process). */
const states = new WeakMap<AppContext, State>();

function isLoopbackUrl(url: string): boolean {
  try {
    const host = new URL(url).hostname.replace(/^\[|\]$/g, '');
    return host === 'localhost' || host.endsWith('.localhost') || host === '::1' || /^127\./.test(host);
  } catch {
    return false;
  }
}

function state(ctx: AppContext): State {
  let s = states.get(ctx);
  if (!s) {
    s = {
      options: { ...DEFAULT_SUBSCRIPTION_OPTIONS, allowPrivateTargets: isLoopbackUrl(ctx.urls.base) },
      cache: null,
      timers: new Set(),
      inflight: new Set(),
      stopped: false,
    };
    states.set(ctx, s);
  }
  return s;
}

export function configureSubscriptions(ctx: AppContext, options: Partial<SubscriptionOptions>): void {
  const s = state(ctx);
  s.options = { ...s.options, ...options };
  s.stopped = false;
}

/** Cancels pending retries and waits for deliveries in flight (at shutdown). */
export async function stopSubscriptions(ctx: AppContext): Promise<void> {
  const s = states.get(ctx);
  if (!s) return;
  s.stopped = true;
  for (const t of s.timers) clearTimeout(t);
  s.timers.clear();
  await Promise.allSettled([...s.inflight]);
}

// ---------------------------------------------------------------- signing

const sha256 = (v: string) => createHash('sha256').update(v).digest('hex');

/** `sha256=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>` */
export function signPayload(secret: string, timestamp: string | number, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')}`;
}

function safeEqual(a: string, b: string): boolean {
  const ba = Buffer.from(a);
  const bb = Buffer.from(b);
  return ba.length === bb.length && timingSafeEqual(ba, bb);
}

/** Checks a signature made by `signPayload`, and that the timestamp is within `toleranceSeconds` of now. For receivers and for unsubscribing. */
export function verifySignature(secret: string, timestamp: string, body: string, signature: string, now = Date.now(), toleranceSeconds = 300): boolean {
  const ts = Number(timestamp);
  if (!/^\d{1,12}$/.test(timestamp) || Math.abs(now / 1000 - ts) > toleranceSeconds) return false;
  return safeEqual(signPayload(secret, timestamp, body), signature);
}

// ---------------------------------------------------------------- target checks

const BLOCKED = new BlockList();
for (const [net, prefix] of [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['224.0.0.0', 4],
  ['240.0.0.0', 4],
] as const) {
  BLOCKED.addSubnet(net, prefix, 'ipv4');
}
for (const [net, prefix] of [
  ['::', 127],
  ['fc00::', 7],
  ['fe80::', 10],
  ['ff00::', 8],
  ['64:ff9b::', 96],
] as const) {
  BLOCKED.addSubnet(net, prefix, 'ipv6');
}

/** Loopback, private, link-local (cloud metadata), multicast and reserved addresses, also as IPv4-mapped IPv6. */
export function isInternalAddress(address: string): boolean {
  const family = isIP(address);
  if (family === 4) return BLOCKED.check(address, 'ipv4');
  if (family === 6) {
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
    if (mapped) return BLOCKED.check(mapped[1], 'ipv4');
    return BLOCKED.check(address, 'ipv6');
  }
  return true;
}

/** Validates a subscriber URL; throws a 422 with the reason. */
export function validateTargetUrl(raw: unknown, allowPrivate: boolean): URL {
  if (typeof raw !== 'string' || !raw.trim()) throw new StarlingError('validation', 'Validation failed: url is required');
  if (raw.length > 2048) throw new StarlingError('validation', 'Validation failed: url is too long');
  let url: URL;
  try {
    url = new URL(raw.trim());
  } catch {
    throw new StarlingError('validation', 'Validation failed: url is not a valid URL');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new StarlingError('validation', 'Validation failed: url must be http or https');
  if (url.username || url.password) throw new StarlingError('validation', 'Validation failed: url must not contain credentials');
  url.hash = '';
  const host = url.hostname.replace(/^\[|\]$/g, '');
  if (!allowPrivate && (isIP(host) ? isInternalAddress(host) : host === 'localhost' || host.endsWith('.localhost') || !host.includes('.'))) {
    throw new StarlingError('validation', 'Validation failed: url must be a public address');
  }
  return url;
}

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;

/** A dns.lookup that refuses internal addresses, used at connect time (no DNS rebinding between check and use). */
function guardedLookup(hostname: string, options: object, callback: LookupCallback): void {
  dnsLookup(hostname, { ...(options as Record<string, unknown>), all: true }, (err, addresses) => {
    if (err) return callback(err, '');
    const list = addresses as LookupAddress[];
    const bad = list.find((a) => isInternalAddress(a.address));
    if (bad || !list.length) {
      const e = new Error(`refusing to deliver to internal address ${bad?.address ?? '(none)'}`) as NodeJS.ErrnoException;
      e.code = 'EBLOCKED';
      return callback(e, '');
    }
    if ((options as { all?: boolean }).all) return callback(null, list);
    callback(null, list[0].address, list[0].family);
  });
}

interface PostResult {
  status: number | null;
  error?: string;
}

/** One POST; never throws. Redirects are not followed. */
function post(url: string, body: string, headers: Record<string, string>, opts: SubscriptionOptions): Promise<PostResult> {
  return new Promise((resolve) => {
    let u: URL;
    try {
      u = validateTargetUrl(url, opts.allowPrivateTargets);
    } catch (err) {
      return resolve({ status: null, error: (err as Error).message });
    }
    const mod = u.protocol === 'https:' ? https : http;
    const req = mod.request(
      u,
      {
        method: 'POST',
        agent: false,
        timeout: opts.timeoutMs,
        headers: { 'Content-Type': 'application/json', 'Content-Length': String(Buffer.byteLength(body)), 'User-Agent': `Starling/${STARLING_VERSION} (status subscriptions)`, ...headers },
        ...(opts.allowPrivateTargets ? {} : { lookup: guardedLookup as unknown as typeof dnsLookup }),
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode ?? null }));
        res.on('error', () => resolve({ status: res.statusCode ?? null }));
      },
    );
    const timer = setTimeout(() => req.destroy(new Error(`timed out after ${opts.timeoutMs} ms`)), opts.timeoutMs);
    req.on('timeout', () => req.destroy(new Error(`timed out after ${opts.timeoutMs} ms`)));
    req.on('error', (err) => resolve({ status: null, error: err.message }));
    req.on('close', () => clearTimeout(timer));
    req.end(body);
  });
}

function signedHeaders(secret: string, body: string, event: string, deliveryId: string): Record<string, string> {
  const timestamp = String(Math.floor(Date.now() / 1000));
  return {
    'X-Starling-Event': event,
    'X-Starling-Delivery': deliveryId,
    'X-Starling-Timestamp': timestamp,
    'X-Starling-Signature': signPayload(secret, timestamp, body),
  };
}

// ---------------------------------------------------------------- subscribe / confirm / unsubscribe

export interface SubscriptionView {
  id: string;
  url: string;
  confirmed: boolean;
  created_at: string;
}

export function confirmUrl(ctx: AppContext, token: string): string {
  return `${ctx.urls.base}/status/api/subscriptions/confirm?token=${encodeURIComponent(token)}`;
}

/**
 * Stores an unconfirmed subscription and sends the confirmation request.
 * An already confirmed URL is a 409 (unsubscribe first); an unconfirmed one
 * gets a new secret and token. If the URL does not accept the confirmation
 * request (2xx), nothing is kept and the answer is a 422 saying why.
 */
export async function subscribe(ctx: AppContext, rawUrl: unknown): Promise<SubscriptionView> {
  const s = state(ctx);
  const url = validateTargetUrl(rawUrl, s.options.allowPrivateTargets).toString();
  const now = ctx.now();
  const at = now.toISOString();
  const expiredBefore = new Date(now.getTime() - s.options.confirmTtlMs).toISOString();
  const secret = randomBytes(32).toString('base64url');
  const token = randomBytes(32).toString('base64url');
  const tokenHash = sha256(token);

  const row = await ctx.write(async (trx) => {
    await trx.deleteFrom('status_subscribers').where('confirmed_at', 'is', null).where('created_at', '<', expiredBefore).execute();
    const existing = await trx.selectFrom('status_subscribers').selectAll().where('url', '=', url).executeTakeFirst();
    if (existing?.confirmed_at) throw new StarlingError('conflict', 'This URL is already subscribed; unsubscribe it first to subscribe it again');
    if (existing) {
      await trx.updateTable('status_subscribers').set({ secret, confirm_token_hash: tokenHash, created_at: at }).where('id', '=', existing.id).execute();
      return { id: existing.id, url, created_at: at };
    }
    const pending = await trx.selectFrom('status_subscribers').select((eb) => eb.fn.countAll<number>().as('n')).where('confirmed_at', 'is', null).executeTakeFirst();
    if (Number(pending?.n ?? 0) >= s.options.maxPending) throw new StarlingError('rate_limited', 'Too many unconfirmed subscriptions; try again later');
    const id = ctx.ids.next();
    await trx.insertInto('status_subscribers').values({ id, url, secret, confirm_token_hash: tokenHash, confirmed_at: null, created_at: at }).execute();
    return { id, url, created_at: at };
  });

  const body = JSON.stringify({ type: 'subscription.confirm', id: row.id, url, confirm_url: confirmUrl(ctx, token), secret, created_at: at });
  const result = await post(url, body, signedHeaders(secret, body, 'subscription.confirm', row.id), s.options);
  if (result.status === null || result.status < 200 || result.status >= 300) {
    await ctx
      .write((trx) => trx.deleteFrom('status_subscribers').where('id', '=', row.id).where('confirm_token_hash', '=', tokenHash).where('confirmed_at', 'is', null).execute())
      .catch(() => {});
    const why = result.status === null ? result.error ?? 'no answer' : `HTTP ${result.status}`;
    throw new StarlingError('validation', `Validation failed: the confirmation request to the URL failed (${why})`);
  }
  return { id: row.id, url, confirmed: false, created_at: at };
}

/** Confirms by token. Confirming twice is fine; an unknown or expired token is a 404. */
export async function confirmSubscription(ctx: AppContext, token: unknown): Promise<SubscriptionView> {
  if (typeof token !== 'string' || !token || token.length > 200) throw new StarlingError('not_found', 'Unknown or expired confirmation token');
  const s = state(ctx);
  const now = ctx.now();
  const at = now.toISOString();
  const expiredBefore = new Date(now.getTime() - s.options.confirmTtlMs).toISOString();
  const row = await ctx.write(async (trx) => {
    const r = await trx.selectFrom('status_subscribers').selectAll().where('confirm_token_hash', '=', sha256(token)).executeTakeFirst();
    if (!r || (!r.confirmed_at && r.created_at < expiredBefore)) return null;
    if (!r.confirmed_at) await trx.updateTable('status_subscribers').set({ confirmed_at: at }).where('id', '=', r.id).execute();
    return { ...r, confirmed_at: r.confirmed_at ?? at };
  });
  if (!row) throw new StarlingError('not_found', 'Unknown or expired confirmation token');
  s.cache?.set(row.id, { id: row.id, url: row.url, secret: row.secret });
  return { id: row.id, url: row.url, confirmed: true, created_at: row.created_at };
}

export interface UnsubscribeProof {
  url: unknown;
  secret?: unknown;
  timestamp?: unknown;
  signature?: unknown;
}

/** Removes a subscription, given its secret or a signature of `"<timestamp>.<url>"` made with it (within 5 minutes). */
export async function unsubscribe(ctx: AppContext, proof: UnsubscribeProof): Promise<void> {
  if (typeof proof.url !== 'string' || !proof.url) throw new StarlingError('validation', 'Validation failed: url is required');
  let url: string;
  try {
    url = new URL(proof.url.trim()).toString();
  } catch {
    throw new StarlingError('validation', 'Validation failed: url is not a valid URL');
  }
  const row = await ctx.db.selectFrom('status_subscribers').selectAll().where('url', '=', url).executeTakeFirst();
  const ok =
    row &&
    ((typeof proof.secret === 'string' && safeEqual(proof.secret, row.secret)) ||
      (typeof proof.timestamp === 'string' && typeof proof.signature === 'string' && verifySignature(row.secret, proof.timestamp, url, proof.signature)));
  if (!row) throw new StarlingError('not_found', 'No such subscription');
  if (!ok) throw new StarlingError('forbidden', 'The secret or signature does not match this subscription');
  await ctx.write((trx) => trx.deleteFrom('status_subscribers').where('id', '=', row.id).execute());
  state(ctx).cache?.delete(row.id);
}

/** Reads the confirmed subscribers into memory. Called at startup so deliveries work even if the database fails before the first incident. */
export async function loadSubscribers(ctx: AppContext): Promise<Subscriber[]> {
  const s = state(ctx);
  try {
    const rows = await ctx.db.selectFrom('status_subscribers').select(['id', 'url', 'secret']).where('confirmed_at', 'is not', null).execute();
    s.cache = new Map(rows.map((r) => [r.id, r]));
  } catch (err) {
    if (!s.cache) ctx.log.warn({ err }, 'status subscribers could not be read and none are cached');
    else ctx.log.warn({ err }, 'status subscribers could not be read; using the list in memory');
  }
  return [...(s.cache?.values() ?? [])];
}

// ---------------------------------------------------------------- deliveries

export interface NotifyResult {
  subscribers: number;
  delivered: number;
  /** Failed at the first attempt (retries continue in the background). */
  failed: number;
}

/**
 * Sends an incident event to every confirmed subscriber. Resolves after the
 * first attempt to each; failed deliveries are retried in the background
 * (`retryDelaysMs`), each retry signed afresh. The ops engine calls this on
 * every incident change; it never throws.
 */
export async function notifySubscribers(ctx: AppContext, event: SubscriptionEvent): Promise<NotifyResult> {
  const s = state(ctx);
  if (s.stopped) return { subscribers: 0, delivered: 0, failed: 0 };
  const subs = await loadSubscribers(ctx);
  const deliveryBase = ctx.ids.next();
  const results = await Promise.all(
    subs.map((sub, n) => {
      const deliveryId = `${deliveryBase}-${n}`;
      const body = JSON.stringify({
        id: deliveryId,
        type: event.type,
        created_at: ctx.now().toISOString(),
        page: { url: `${ctx.urls.base}/status` },
        incident: event.incident,
        ...(event.update ? { update: event.update } : {}),
      });
      return attempt(ctx, s, sub, event.type, deliveryId, body, 0);
    }),
  );
  const delivered = results.filter(Boolean).length;
  return { subscribers: subs.length, delivered, failed: subs.length - delivered };
}

async function attempt(ctx: AppContext, s: State, sub: Subscriber, type: string, deliveryId: string, body: string, n: number): Promise<boolean> {
  if (s.stopped) return false;
  const p = post(sub.url, body, signedHeaders(sub.secret, body, type, deliveryId), s.options);
  s.inflight.add(p);
  const result = await p.finally(() => s.inflight.delete(p));
  if (result.status !== null && result.status >= 200 && result.status < 300) return true;
  if (result.status === 410) {
    // Gone: the receiver asks to be forgotten.
    s.cache?.delete(sub.id);
    await ctx.write((trx) => trx.deleteFrom('status_subscribers').where('id', '=', sub.id).execute()).catch(() => {});
    return false;
  }
  const retryable = result.status === null || result.status === 408 || result.status === 429 || result.status >= 500;
  const delay = s.options.retryDelaysMs[n];
  if (!retryable || delay === undefined || s.stopped || s.timers.size >= s.options.maxQueuedRetries) {
    ctx.log.warn({ subscriber: sub.id, delivery: deliveryId, attempt: n + 1, status: result.status, error: result.error }, 'status subscription delivery failed');
    return false;
  }
  const timer = setTimeout(() => {
    s.timers.delete(timer);
    void attempt(ctx, s, sub, type, deliveryId, body, n + 1);
  }, delay);
  timer.unref();
  s.timers.add(timer);
  return false;
}
