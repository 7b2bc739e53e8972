/**
 * The fault harness shared by the chaos suite (test/chaos/cluster-chaos.test.ts)
 * and `starling drill failover` (src/dr/failover-drill.ts): a posting load
 * through the load balancer with each post retried under its Idempotency-Key
 * until acknowledged (as a well-made client does), the PostgreSQL primary found
 * through the cluster's status, members killed by PID, and the read-back that
 * checks every acknowledged post is there exactly once.
 *
 * Plain fetch, no client library: this runs in the CLI as well as in tests.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { clusterDown, processesUnder, type ClusterStatus, type MemberStatus } from './cluster.js';
import { sleep, waitFor } from './processes.js';

/** An account the load posts as: its id (for the read-back) and a token with read and write. */
export interface LoadUser {
  id: string;
  username: string;
  token: string;
}

export interface Acked<U extends LoadUser = LoadUser> {
  key: string;
  id: string;
  user: U;
  text: string;
  /** When it was acknowledged (ms since the epoch). */
  at: number;
}

/** Writers posting through the load balancer; each post retried under its key until acknowledged. */
export class PostingLoad<U extends LoadUser = LoadUser> {
  acked: Acked<U>[] = [];
  failedAttempts = 0;
  lastSuccessAt = Date.now();
  /** Every stretch of more than a second without an acknowledged post, and when it began: the write gaps. */
  gaps: { from: number; ms: number }[] = [];
  /** Acknowledgements as they came: when the acknowledged request was sent, and when its answer came. */
  readonly successes: { sent: number; at: number }[] = [];
  private stopped = false;
  private loops: Promise<void>[] = [];

  /** `keyPrefix` names the posts' idempotency keys and texts (`<prefix>-<writer>-<n>`): the read-back finds them by it. */
  constructor(
    private readonly base: string,
    private readonly users: U[],
    readonly keyPrefix = 'chaos',
  ) {}

  start(): void {
    this.loops = this.users.map((u, w) => this.writer(u, w));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.all(this.loops);
  }

  mark(): { acked: number; failed: number; at: number } {
    return { acked: this.acked.length, failed: this.failedAttempts, at: Date.now() };
  }

  /**
   * When the first write sent at or after `t` (ms since the epoch) was acknowledged, or null. Only requests sent
   * after a fault count: one already in flight may have committed on the old primary just before it died.
   */
  firstAckSentAfter(t: number): number | null {
    return this.successes.find((s) => s.sent >= t)?.at ?? null;
  }

  private async writer(user: U, w: number): Promise<void> {
    for (let n = 0; !this.stopped; n++) {
      const key = `${this.keyPrefix}-${w}-${n}`;
      const text = `chaos post ${key}`;
      // A post begun is retried until acknowledged even after stop(): its outcome must be known.
      for (let attempt = 0; ; attempt++) {
        const sent = Date.now();
        try {
          const r = await fetch(`${this.base}/api/v1/statuses`, {
            method: 'POST',
            headers: { authorization: `Bearer ${user.token}`, 'content-type': 'application/json', 'idempotency-key': key },
            body: JSON.stringify({ status: text }),
            signal: AbortSignal.timeout(10_000),
          });
          if (r.status === 200) {
            const { id } = (await r.json()) as { id: string };
            const now = Date.now();
            const gap = now - this.lastSuccessAt;
            if (gap > 1000) this.gaps.push({ from: this.lastSuccessAt, ms: gap });
            this.lastSuccessAt = Math.max(this.lastSuccessAt, now);
            this.successes.push({ sent, at: now });
            this.acked.push({ key, id, user, text, at: now });
            break;
          }
          await r.body?.cancel();
          this.failedAttempts++;
        } catch {
          this.failedAttempts++;
        }
        if (attempt > 600) throw new Error(`post ${key} never acknowledged`);
        await sleep(Math.min(1000, 50 * 2 ** Math.min(attempt, 5)));
      }
    }
  }
}

/** A process and all its descendants (a postmaster's backends, walsenders, …), from /proc. */
export function processTree(root: number): number[] {
  const parentOf = new Map<number, number>();
  for (const e of readdirSync('/proc')) {
    const pid = Number(e);
    if (!Number.isInteger(pid)) continue;
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      parentOf.set(pid, Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
    } catch {
      /* gone */
    }
  }
  const out = [root];
  for (let i = 0; i < out.length; i++) for (const [pid, ppid] of parentOf) if (ppid === out[i]) out.push(pid);
  return out;
}

/** SIGKILL by PID; a PID already gone is no error. */
export function sigkill(pid: number | null | undefined): void {
  if (!pid) return;
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    /* gone */
  }
}

/** The PostgreSQL primary's whole node: its Patroni and its postmaster (whose backends then exit), SIGKILLed. */
export function killPatroniNode(member: MemberStatus): void {
  sigkill(member.pid);
  sigkill(member.postgresPid);
}

/**
 * The primary once the last failover is over, with a synchronous standby in place: in synchronous mode
 * Patroni promotes only the sync standby, so without one a fault would (rightly) get no failover.
 */
export function healthyPrimary(status: () => Promise<ClusterStatus>, timeoutMs = 60_000): Promise<MemberStatus> {
  return waitFor(
    'a PostgreSQL primary with a synchronous standby',
    async () => {
      const pg = (await status()).members.filter((m) => m.kind === 'patroni' && m.alive && m.postgresAlive);
      return pg.some((m) => m.role === 'sync_standby') ? pg.find((m) => m.role === 'leader') : undefined;
    },
    timeoutMs,
    100,
  );
}

export interface ReadBack {
  /** Keys of acknowledged posts not found. */
  missing: string[];
  /** Keys found more than once, with how often. */
  duplicates: [string, number][];
  /** Posts read back (the load's, by its key prefix). */
  read: number;
}

const escapeRe = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** Reads each author's statuses back through `base` and compares them with what the load had acknowledged. */
export async function readBack<U extends LoadUser>(base: string, users: U[], acked: Acked<U>[], keyPrefix = 'chaos'): Promise<ReadBack> {
  const out: ReadBack = { missing: [], duplicates: [], read: 0 };
  const keyRe = new RegExp(`${escapeRe(keyPrefix)}-\\d+-\\d+`);
  for (const u of users) {
    const mine = acked.filter((a) => a.user === u);
    const seen: { id: string; content: string }[] = [];
    let maxId: string | undefined;
    for (;;) {
      const r = await fetch(`${base}/api/v1/accounts/${u.id}/statuses?limit=40${maxId ? `&max_id=${maxId}` : ''}`, { headers: { authorization: `Bearer ${u.token}` }, signal: AbortSignal.timeout(30_000) });
      if (r.status !== 200) throw new Error(`reading back ${u.username}'s posts: HTTP ${r.status} ${(await r.text()).slice(0, 200)}`);
      const page = (await r.json()) as { id: string; content: string }[];
      if (page.length === 0) break;
      seen.push(...page);
      maxId = page[page.length - 1]!.id;
    }
    const ids = new Set(seen.map((s) => s.id));
    out.missing.push(...mine.filter((a) => !ids.has(a.id)).map((a) => a.key));
    const byKey = new Map<string, number>();
    for (const s of seen) {
      const key = keyRe.exec(s.content)?.[0];
      if (key) byKey.set(key, (byKey.get(key) ?? 0) + 1);
    }
    out.read += [...byKey.values()].reduce((a, b) => a + b, 0);
    out.duplicates.push(...[...byKey].filter(([, n]) => n > 1));
  }
  return out;
}

async function postJson(url: string, body: unknown, token?: string): Promise<any> {
  for (let attempt = 0; ; attempt++) {
    const r = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(30_000),
    });
    const text = await r.text();
    // A node still warming up may shed with 503, or a limit say 429: retry a little, as a client would.
    if ((r.status === 503 || r.status === 429) && attempt < 20) {
      await sleep(500);
      continue;
    }
    if (!r.ok) throw new Error(`POST ${new URL(url).pathname}: HTTP ${r.status} ${text.slice(0, 200)}`);
    return JSON.parse(text);
  }
}

/** Signs up an account through the API (an app, its client-credentials token, the registration) and returns its token. */
export async function registerUser(base: string, username: string): Promise<LoadUser> {
  const scopes = 'read write';
  const app = await postJson(`${base}/api/v1/apps`, { client_name: 'starling-drill', redirect_uris: 'urn:ietf:wg:oauth:2.0:oob', scopes });
  const appToken = await postJson(`${base}/oauth/token`, { grant_type: 'client_credentials', client_id: app.client_id, client_secret: app.client_secret, redirect_uri: 'urn:ietf:wg:oauth:2.0:oob', scope: scopes });
  const password = randomBytes(18).toString('base64url');
  const token = await postJson(`${base}/api/v1/accounts`, { username, email: `${username}@drill.invalid`, password, agreement: true, locale: 'en' }, appToken.access_token);
  const r = await fetch(`${base}/api/v1/accounts/verify_credentials`, { headers: { authorization: `Bearer ${token.access_token}` }, signal: AbortSignal.timeout(30_000) });
  if (!r.ok) throw new Error(`verify_credentials for ${username}: HTTP ${r.status}`);
  const me = (await r.json()) as { id: string };
  return { id: me.id, username, token: token.access_token };
}

/** `cluster down` if it was started, then, whatever happened, SIGKILL by PID anything still running from `dir`. */
export async function tearDownCluster(dir: string, started: boolean): Promise<void> {
  try {
    if (started) await clusterDown(dir, () => {}).catch(() => {});
  } finally {
    for (const p of processesUnder(dir)) sigkill(p.pid);
  }
}
