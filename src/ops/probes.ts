/**
 * Synthetic probes: Starling checks itself the way its users use it.
 *
 * The posting probe matters most. A canary account (a bot, not discoverable,
 * one per node) posts a followers-only status — it has no followers, so
 * nobody sees it — through the node's real HTTP API on its own listening URL,
 * waits for it on its user stream (a real WebSocket to /api/v1/streaming) and
 * in its home timeline, measures both end-to-end latencies, then deletes it.
 * That exercises routing, authentication, the write path, fan-out and the
 * stream, as a person posting would.
 *
 * The dependency checks look at each part on its own: a database write, the
 * bus, the age of the oldest waiting background job (a backlog that makes
 * posts late is an incident too), and one read each of timelines, search,
 * notifications, the instance endpoint and the web root.
 *
 * Every step has a deadline. A probe never throws: it returns what it saw,
 * and what that says about each component.
 */
import { randomBytes } from 'node:crypto';
import WebSocket from 'ws';
import type { AppContext } from '../services/context.js';
import { findAccountByUsername, registerAccount, updateProfile } from '../services/accounts.js';
import { createApplication, issueToken, OOB_REDIRECT } from '../services/auth.js';
import { databaseWriteCheck, databaseReadCheck } from './readiness.js';
import type { ComponentId } from './model.js';
import type { Observation } from './components.js';
import { STARLING_VERSION } from '../version.js';

export const PROBES = ['posting', 'streaming', 'database', 'bus', 'jobs', 'timelines', 'search', 'notifications', 'api', 'web'] as const;
export type ProbeName = (typeof PROBES)[number];

export interface ProbeOutcome {
  probe: ProbeName;
  ok: boolean;
  /** The end-to-end figure the probe measures (ms), when it got that far. */
  latencyMs: number | null;
  /** Plain words: what happened. */
  detail: string;
  /** What this says about components (none when the probe could not tell, e.g. it was skipped). */
  observations: { component: ComponentId; obs: Observation }[];
  at: number;
}

export interface ProbeThresholds {
  /** Deadline of each step (one request, the stream event, the timeline read-back). */
  stepTimeoutMs: number;
  /** Post → home timeline (and → stream) slower than this is "slow". */
  slowPostMs: number;
  /** A read (timeline, search, notifications, instance) slower than this is "slow". */
  slowReadMs: number;
  /** A database test write slower than this is "slow". */
  slowDbMs: number;
  /** The oldest waiting job older than this: posts are late (degraded). */
  jobsLateMs: number;
  /** ...older than this: a partial outage. */
  jobsStuckMs: number;
}

export const DEFAULT_THRESHOLDS: ProbeThresholds = {
  stepTimeoutMs: 5000,
  slowPostMs: 2000,
  slowReadMs: 1000,
  slowDbMs: 500,
  jobsLateMs: 30_000,
  jobsStuckMs: 120_000,
};

/** The header that marks the engine's own requests (exempt from rate limits, left out of live-traffic error rates). */
export const PROBE_HEADER = 'x-starling-probe';

export interface ProbeEnv {
  ctx: AppContext;
  /** The oldest waiting job (services/jobs.ts worker.backlog()). */
  backlog?: () => Promise<{ pending: number; oldestAgeMs: number | null }>;
  /** The node's own listening URL (http://127.0.0.1:port); read at each run, as it is known only after listen. */
  baseUrl: () => string;
  /** A secret per process that marks probe requests. */
  probeSecret: string;
  thresholds: ProbeThresholds;
}

const ok = (reason = 'ok'): Observation => ({ level: 'ok', reason });
const slow = (reason: string): Observation => ({ level: 'slow', reason });
const fail = (reason: string, cap?: Observation['cap']): Observation => ({ level: 'fail', reason, cap });
const secs = (ms: number) => (ms >= 10_000 ? `${Math.round(ms / 1000)} s` : `${(ms / 1000).toFixed(1)} s`);
const errText = (err: unknown) => (err instanceof Error ? err.message : String(err));

// ---- the canary account ----------------------------------------------------------------------

export const canaryUsername = (nodeId: number) => (nodeId === 0 ? 'starling_canary' : `starling_canary_${nodeId}`);
const CANARY_APP = 'Starling canary';

/**
 * The canary: made on first use if missing, with a fresh token each time the
 * engine starts (older tokens of the canary are revoked). Needs the database;
 * when it is down, setting up fails and the posting probe says so.
 */
export class Canary {
  accountId: string | null = null;
  private token: string | null = null;
  private pending: Promise<{ accountId: string; token: string }> | null = null;

  constructor(private readonly ctx: AppContext) {}

  get ready(): boolean {
    return this.token !== null;
  }

  /** Forget the token (it stopped working); the next probe makes a new one. */
  invalidate(): void {
    this.token = null;
  }

  ensure(): Promise<{ accountId: string; token: string }> {
    if (this.token && this.accountId) return Promise.resolve({ accountId: this.accountId, token: this.token });
    // Probes running side by side share one set-up.
    this.pending ??= this.setUp().finally(() => (this.pending = null));
    return this.pending;
  }

  private async setUp(): Promise<{ accountId: string; token: string }> {
    const ctx = this.ctx;
    const username = canaryUsername(ctx.config.nodeId);
    let account = await findAccountByUsername(ctx, username);
    if (!account) {
      try {
        account = await registerAccount(ctx, {
          username,
          email: `${username}@canary.invalid`,
          password: randomBytes(24).toString('base64url'),
          allowReserved: true,
        });
      } catch (err) {
        // Another engine on the same database made it meanwhile.
        account = await findAccountByUsername(ctx, username);
        if (!account) throw err;
      }
    }
    // Never take over someone else's account that happens to have the canary's name.
    const owner = await ctx.db.selectFrom('users').select('email').where('account_id', '=', account.id).executeTakeFirst();
    if (owner?.email !== `${username}@canary.invalid`) throw new Error(`the username ${username} belongs to an account that is not the canary`);
    if (account.bot !== 1 || account.discoverable !== 0) {
      await updateProfile(ctx, account.id, { bot: true, discoverable: false, display_name: 'Starling canary', note: 'Checks that posting works. Posts nothing anyone can see.' });
    }
    const accountId = account.id;
    const previous = await ctx.db.selectFrom('oauth_tokens').select('application_id').where('account_id', '=', accountId).orderBy('id', 'desc').limit(1).executeTakeFirst();
    const applicationId =
      previous?.application_id ?? (await createApplication(ctx, { name: CANARY_APP, redirectUris: [OOB_REDIRECT], scopes: ['read', 'write'], website: null })).id;
    const now = ctx.now().toISOString();
    await ctx.write((trx) => trx.updateTable('oauth_tokens').set({ revoked_at: now }).where('account_id', '=', accountId).where('revoked_at', 'is', null).execute());
    const issued = await issueToken(ctx, { applicationId, accountId, scopes: ['read', 'write'] });
    this.accountId = accountId;
    this.token = issued.access_token;
    return { accountId, token: issued.access_token };
  }
}

// ---- HTTP and WebSocket helpers --------------------------------------------------------------

interface CallResult {
  status: number;
  body: unknown;
  ms: number;
}

async function call(env: ProbeEnv, path: string, init: { method?: string; token?: string; json?: unknown; headers?: Record<string, string> } = {}): Promise<CallResult> {
  const headers: Record<string, string> = {
    'user-agent': `Starling-Probe/${STARLING_VERSION}`,
    [PROBE_HEADER]: env.probeSecret,
    accept: 'application/json',
    ...init.headers,
  };
  if (init.token) headers.authorization = `Bearer ${init.token}`;
  if (init.json !== undefined) headers['content-type'] = 'application/json';
  const start = performance.now();
  let res: Response;
  try {
    res = await fetch(`${env.baseUrl()}${path}`, {
      method: init.method ?? 'GET',
      headers,
      body: init.json === undefined ? undefined : JSON.stringify(init.json),
      signal: AbortSignal.timeout(env.thresholds.stepTimeoutMs),
    });
  } catch (err) {
    const e = err as Error;
    if (e.name === 'TimeoutError' || e.name === 'AbortError') throw new Error(`no answer within ${secs(env.thresholds.stepTimeoutMs)}`);
    throw new Error(`could not connect: ${errText((e as { cause?: unknown }).cause ?? e)}`);
  }
  const text = await res.text().catch(() => '');
  let body: unknown = text;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    /* not JSON: keep the text */
  }
  return { status: res.status, body, ms: performance.now() - start };
}

function httpProblem(r: CallResult): string {
  const msg = r.body && typeof r.body === 'object' && 'error' in r.body ? String((r.body as { error: unknown }).error) : '';
  return `HTTP ${r.status}${msg ? ` (${msg})` : ''}`;
}

/** A user stream on the node's own WebSocket endpoint, with the events it has seen. */
class UserStream {
  private readonly seen = new Map<string, number>();
  private readonly waiters = new Map<string, (t: number) => void>();
  private constructor(private readonly ws: WebSocket) {
    ws.on('message', (data) => {
      let msg: { event?: string; payload?: string; error?: string };
      try {
        msg = JSON.parse(String(data));
      } catch {
        return;
      }
      if (msg.event !== 'update' || typeof msg.payload !== 'string') return;
      try {
        const id = String((JSON.parse(msg.payload) as { id?: unknown }).id);
        const t = performance.now();
        this.seen.set(id, t);
        this.waiters.get(id)?.(t);
      } catch {
        /* not a status */
      }
    });
  }

  /**
   * Opens the stream and waits until the server has really subscribed it: the
   * server registers the subscription, then starts reading messages, so the
   * first answer to a message it does not know proves the subscription is live.
   */
  static async open(env: ProbeEnv, token: string): Promise<UserStream> {
    const url = `${env.baseUrl().replace(/^http/, 'ws')}/api/v1/streaming?stream=user`;
    const deadline = env.thresholds.stepTimeoutMs;
    const ws = new WebSocket(url, {
      headers: { authorization: `Bearer ${token}`, [PROBE_HEADER]: env.probeSecret, 'user-agent': `Starling-Probe/${STARLING_VERSION}` },
      handshakeTimeout: deadline,
    });
    const stream = new UserStream(ws);
    try {
      await new Promise<void>((resolve, reject) => {
        let timer: NodeJS.Timeout | undefined;
        let ping: NodeJS.Timeout | undefined;
        const done = (err?: Error) => {
          clearTimeout(timer);
          clearInterval(ping);
          ws.off('message', onMessage);
          if (err) reject(err);
          else resolve();
        };
        const onMessage = (data: WebSocket.RawData) => {
          const text = String(data);
          if (text.includes('Unknown message type')) done();
          else if (text.includes('"error"')) done(new Error(`the stream refused: ${text.slice(0, 200)}`));
        };
        timer = setTimeout(() => done(new Error(`the stream did not answer within ${secs(deadline)}`)), deadline);
        ws.on('message', onMessage);
        ws.once('open', () => {
          const sync = () => ws.readyState === ws.OPEN && ws.send('{"type":"starling-probe-sync"}');
          sync();
          ping = setInterval(sync, 50);
        });
        // (No 'unexpected-response' listener: without one, ws aborts the handshake and closes the socket itself.)
        ws.once('error', (err) => {
          const refused = /Unexpected server response: (\d+)/.exec(errText(err));
          done(new Error(refused ? `the stream was refused: HTTP ${refused[1]}` : errText(err)));
        });
        ws.once('close', (code, reason) => done(new Error(`the stream closed (${code}${reason.length ? ` ${String(reason)}` : ''})`)));
      });
    } catch (err) {
      ws.terminate();
      throw err;
    }
    ws.on('error', () => {});
    return stream;
  }

  /** When the status arrived (performance.now()), waiting up to `timeoutMs`; null if it did not. */
  waitFor(id: string, timeoutMs: number): Promise<number | null> {
    const seen = this.seen.get(id);
    if (seen !== undefined) return Promise.resolve(seen);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiters.delete(id);
        resolve(null);
      }, timeoutMs);
      this.waiters.set(id, (t) => {
        clearTimeout(timer);
        this.waiters.delete(id);
        resolve(t);
      });
    });
  }

  close(): void {
    this.ws.removeAllListeners('message');
    this.ws.terminate();
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// ---- the posting probe -----------------------------------------------------------------------

/** Post → stream → timeline → delete. Returns the 'posting' and 'streaming' outcomes. */
export async function postingProbe(env: ProbeEnv, canary: Canary): Promise<ProbeOutcome[]> {
  const t = env.thresholds;
  const at = Date.now();
  const postingOutcome = (o: Omit<ProbeOutcome, 'probe' | 'at' | 'observations'> & { obs: Observation }): ProbeOutcome => ({
    probe: 'posting',
    ok: o.ok,
    latencyMs: o.latencyMs,
    detail: o.detail,
    observations: [{ component: 'posting', obs: o.obs }],
    at,
  });

  let creds: { accountId: string; token: string };
  try {
    creds = await withDeadline(canary.ensure(), t.stepTimeoutMs * 2, 'setting up the canary account');
  } catch (err) {
    const reason = `the test account could not be set up: ${errText(err)}`;
    return [postingOutcome({ ok: false, latencyMs: null, detail: reason, obs: fail(reason) })];
  }

  const out: ProbeOutcome[] = [];
  let stream: UserStream | null = null;
  let streamError: string | null = null;
  try {
    stream = await UserStream.open(env, creds.token);
  } catch (err) {
    streamError = errText(err);
  }

  try {
    const nonce = randomBytes(8).toString('hex');
    const start = performance.now();
    let posted: CallResult;
    try {
      posted = await call(env, '/api/v1/statuses', {
        method: 'POST',
        token: creds.token,
        json: { status: `Starling canary ${new Date(at).toISOString()} ${nonce}`, visibility: 'private' },
        headers: { 'idempotency-key': `canary-${nonce}` },
      });
    } catch (err) {
      const reason = `posting a test status failed: ${errText(err)}`;
      out.push(postingOutcome({ ok: false, latencyMs: null, detail: reason, obs: fail(reason) }));
      return out;
    }
    if (posted.status === 401) canary.invalidate();
    const id = posted.status === 200 && posted.body && typeof posted.body === 'object' ? String((posted.body as { id?: unknown }).id ?? '') : '';
    if (!id) {
      const reason = `posting a test status failed: ${httpProblem(posted)}`;
      out.push(postingOutcome({ ok: false, latencyMs: null, detail: reason, obs: fail(reason) }));
      return out;
    }
    const ackMs = posted.ms;

    // The stream and the timeline are read side by side; each has its own deadline.
    const streamed = stream ? stream.waitFor(id, t.stepTimeoutMs) : Promise.resolve(null);
    const inTimeline = (async (): Promise<{ ms: number | null; error: string | null }> => {
      const deadline = performance.now() + t.stepTimeoutMs;
      let lastError: string | null = null;
      while (performance.now() < deadline) {
        try {
          const r = await call(env, '/api/v1/timelines/home?limit=10', { token: creds.token });
          if (r.status === 200 && Array.isArray(r.body)) {
            if ((r.body as { id?: unknown }[]).some((s) => String(s.id) === id)) return { ms: performance.now() - start, error: null };
            lastError = null;
          } else lastError = httpProblem(r);
        } catch (err) {
          lastError = errText(err);
        }
        await sleep(50);
      }
      return { ms: null, error: lastError };
    })();
    const [streamAt, timeline] = await Promise.all([streamed, inTimeline]);

    // Delete: the canary leaves nothing behind.
    let deleteProblem: string | null = null;
    try {
      const del = await call(env, `/api/v1/statuses/${id}`, { method: 'DELETE', token: creds.token });
      if (del.status !== 200) deleteProblem = httpProblem(del);
    } catch (err) {
      deleteProblem = errText(err);
    }

    if (timeline.ms === null) {
      const reason = `a test status was accepted but did not appear in the home timeline within ${secs(t.stepTimeoutMs)}${timeline.error ? ` (${timeline.error})` : ''}`;
      out.push(postingOutcome({ ok: false, latencyMs: null, detail: reason, obs: fail(reason) }));
    } else if (deleteProblem) {
      const reason = `deleting the test status failed: ${deleteProblem}`;
      out.push(postingOutcome({ ok: false, latencyMs: timeline.ms, detail: reason, obs: fail(reason, 'partial_outage') }));
    } else {
      const detail = `posted in ${Math.round(ackMs)} ms, in the home timeline after ${Math.round(timeline.ms)} ms`;
      const obs = timeline.ms > t.slowPostMs ? slow(`a test status took ${secs(timeline.ms)} to reach the home timeline`) : ok(detail);
      out.push(postingOutcome({ ok: true, latencyMs: timeline.ms, detail, obs }));
    }

    if (stream) {
      if (streamAt === null) {
        const reason = `a test status did not arrive on the user stream within ${secs(t.stepTimeoutMs)}`;
        out.push({ probe: 'streaming', ok: false, latencyMs: null, detail: reason, observations: [{ component: 'streaming', obs: fail(reason) }], at });
      } else {
        const ms = streamAt - start;
        const detail = `a test status reached the user stream ${Math.round(ms)} ms after it was sent`;
        const obs = ms > t.slowPostMs ? slow(`a test status took ${secs(ms)} to reach the user stream`) : ok(detail);
        out.push({ probe: 'streaming', ok: true, latencyMs: ms, detail, observations: [{ component: 'streaming', obs }], at });
      }
    }
    return out;
  } finally {
    stream?.close();
    if (streamError !== null) {
      const reason = `could not open a user stream: ${streamError}`;
      out.push({ probe: 'streaming', ok: false, latencyMs: null, detail: reason, observations: [{ component: 'streaming', obs: fail(reason) }], at });
    }
  }
}

// ---- dependency checks -----------------------------------------------------------------------

async function readProbe(env: ProbeEnv, probe: ProbeName, component: ComponentId, what: string, path: string, token?: string, accept?: (status: number) => boolean): Promise<ProbeOutcome> {
  const at = Date.now();
  try {
    const r = await call(env, path, { token });
    const good = accept ? accept(r.status) : r.status === 200;
    if (!good) {
      const reason = `${what} failed: ${httpProblem(r)}`;
      return { probe, ok: false, latencyMs: r.ms, detail: reason, observations: [{ component, obs: fail(reason) }], at };
    }
    const detail = `${what} answered in ${Math.round(r.ms)} ms`;
    const obs = r.ms > env.thresholds.slowReadMs ? slow(`${what} took ${secs(r.ms)}`) : ok(detail);
    return { probe, ok: true, latencyMs: r.ms, detail, observations: [{ component, obs }], at };
  } catch (err) {
    const reason = `${what} failed: ${errText(err)}`;
    return { probe, ok: false, latencyMs: null, detail: reason, observations: [{ component, obs: fail(reason) }], at };
  }
}

export async function databaseProbe(env: ProbeEnv): Promise<ProbeOutcome> {
  const at = Date.now();
  if (env.ctx.writeGuard.readOnly) {
    // Writes are refused on purpose (posting reports it); the database itself is judged by a read.
    const rr = await databaseReadCheck(env.ctx);
    const detail = rr.ok ? `read-only mode: a test read took ${Math.round(rr.ms)} ms` : `a test read from the database failed: ${rr.error}`;
    return { probe: 'database', ok: rr.ok, latencyMs: rr.ok ? rr.ms : null, detail, observations: [{ component: 'database', obs: rr.ok ? ok(detail) : fail(detail) }], at };
  }
  const r = await databaseWriteCheck(env.ctx);
  if (!r.ok) {
    const reason = `a test write to the database failed: ${r.error}`;
    return { probe: 'database', ok: false, latencyMs: null, detail: reason, observations: [{ component: 'database', obs: fail(reason) }], at };
  }
  const detail = `a test write took ${Math.round(r.ms)} ms`;
  const obs = r.ms > env.thresholds.slowDbMs ? slow(`a test write to the database took ${secs(r.ms)}`) : ok(detail);
  return { probe: 'database', ok: true, latencyMs: r.ms, detail, observations: [{ component: 'database', obs }], at };
}

export function busProbe(env: ProbeEnv): ProbeOutcome {
  const at = Date.now();
  if (!env.ctx.bus.connected) {
    const reason = 'the event bus is disconnected: live updates and streams cannot be delivered';
    return { probe: 'bus', ok: false, latencyMs: null, detail: reason, observations: [{ component: 'bus', obs: fail(reason) }], at };
  }
  return { probe: 'bus', ok: true, latencyMs: null, detail: 'connected', observations: [{ component: 'bus', obs: ok('connected') }], at };
}

export async function jobsProbe(env: ProbeEnv): Promise<ProbeOutcome | null> {
  if (!env.backlog) return null;
  const at = Date.now();
  let b: { pending: number; oldestAgeMs: number | null };
  try {
    b = await withDeadline(env.backlog(), env.thresholds.stepTimeoutMs, 'reading the job queue');
  } catch (err) {
    // The database check speaks for an unreadable queue; this says nothing about lateness.
    return { probe: 'jobs', ok: false, latencyMs: null, detail: `could not read the job queue: ${errText(err)}`, observations: [], at };
  }
  const age = b.oldestAgeMs ?? 0;
  const t = env.thresholds;
  const detail = `${b.pending} background job${b.pending === 1 ? '' : 's'} waiting, the oldest for ${secs(age)}`;
  let obs: Observation;
  if (age > t.jobsStuckMs) obs = fail(`posts and notifications are late: the oldest background job has waited ${secs(age)}`, 'partial_outage');
  else if (age > t.jobsLateMs) obs = slow(`posts and notifications are late: the oldest background job has waited ${secs(age)}`);
  else obs = ok(detail);
  return {
    probe: 'jobs',
    ok: obs.level === 'ok',
    latencyMs: b.oldestAgeMs,
    detail,
    observations: [
      { component: 'posting', obs },
      { component: 'notifications', obs },
    ],
    at,
  };
}

/** One round of every probe, side by side. Never throws. */
export async function runAllProbes(env: ProbeEnv, canary: Canary): Promise<ProbeOutcome[]> {
  const token = async (): Promise<string | undefined> => {
    try {
      return (await withDeadline(canary.ensure(), env.thresholds.stepTimeoutMs * 2, 'setting up the canary account')).token;
    } catch {
      return undefined;
    }
  };
  const guarded = async (p: Promise<ProbeOutcome | ProbeOutcome[] | null>): Promise<ProbeOutcome[]> => {
    try {
      const r = await p;
      return r === null ? [] : Array.isArray(r) ? r : [r];
    } catch (err) {
      env.ctx.log.warn({ err }, 'probe crashed');
      return [];
    }
  };
  // The posting probe sets up the canary first, so the reads below can share its token.
  const posting = guarded(postingProbe(env, canary));
  const reads = (async () => {
    const tok = await token();
    return Promise.all([
      tok ? guarded(readProbe(env, 'timelines', 'timelines', 'reading the home timeline', '/api/v1/timelines/home?limit=20', tok)) : [],
      tok ? guarded(readProbe(env, 'search', 'search', 'a search', '/api/v2/search?q=starling&type=statuses&limit=5', tok)) : [],
      tok ? guarded(readProbe(env, 'notifications', 'notifications', 'listing notifications', '/api/v1/notifications?limit=5', tok)) : [],
    ]);
  })();
  const results = await Promise.all([
    posting,
    guarded(databaseProbe(env)),
    guarded(Promise.resolve(busProbe(env))),
    guarded(jobsProbe(env)),
    guarded(readProbe(env, 'api', 'api', 'the instance endpoint', '/api/v1/instance')),
    // No web app is served yet: the web root counts as working while it answers anything but a server error.
    guarded(readProbe(env, 'web', 'web', 'the web app', '/', undefined, (s) => s < 500)),
    reads.then((r) => r.flat()),
  ]);
  return results.flat();
}

export function withDeadline<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} took more than ${secs(ms)}`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}
