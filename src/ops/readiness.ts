/**
 * Readiness: two questions, answered separately.
 *
 * - **Can this node serve?** (`ready`: GET /readyz, what the load balancer checks.) Yes unless it is draining
 *   (graceful shutdown), its event bus is disconnected (streams and cross-node events need it), or its
 *   database has been failing *reads* for longer than `readiness.databaseGraceSeconds`. A process that
 *   cannot answer at all (wedged) fails the load balancer's own check timeout.
 * - **Can it write?** (`writable`: GET /readyz?require=write.) A bounded heartbeat write (a row per node: a
 *   read alone would not notice a full disk or a read-only database), unless read-only mode already refuses
 *   writes on purpose.
 *
 * A node whose database cannot take writes right now (a PostgreSQL failover, a full disk, a held lock) stays
 * ready: it serves reads, its caches, its status page and open streams, and answers writes itself with a
 * fast 503 + Retry-After in Mastodon's error JSON (ops/read-only.ts, ops/breaker.ts). Taking every node out
 * of the load balancer instead would turn all of that into the load balancer's own 503.
 *
 * Each check has a deadline, so a hung dependency makes a check fail instead of making /readyz hang; the
 * read and the write run side by side, so the answer takes at most one deadline.
 */
import type { AppContext } from '../services/context.js';
import type { WriteFn } from '../store/writer.js';
import type { ReadOnlyState } from './read-only.js';

export interface CheckResult {
  ok: boolean;
  ms: number;
  error?: string;
}

export interface Readiness {
  /** Stay in the load balancer's rotation. */
  ready: boolean;
  /** Writes can be made durable now (false in read-only mode, or when the heartbeat write failed). */
  writable: boolean;
  /** database: a bounded read; database_write: the heartbeat write (skipped while read-only); bus: connected. */
  checks: { database: CheckResult; database_write: CheckResult; bus: CheckResult };
  /** A graceful shutdown has begun: not ready, whatever the checks say, so the load balancer stops sending here. */
  draining: boolean;
  /** A read-only node is still ready: it serves reads; writes get 503 until it leaves read-only mode. */
  readOnly: ReadOnlyState;
  /** Since when database reads have been failing (ISO-8601), null while they work. */
  databaseFailingSince: string | null;
  /** How long failing reads are tolerated before the node turns unready. */
  databaseGraceSeconds: number;
}

export const CHECK_TIMEOUT_MS = 2000;

export async function timed(run: () => Promise<unknown>, timeoutMs = CHECK_TIMEOUT_MS): Promise<CheckResult> {
  const start = performance.now();
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      run(),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms`)), timeoutMs);
      }),
    ]);
    return { ok: true, ms: performance.now() - start };
  } catch (err) {
    return { ok: false, ms: performance.now() - start, error: err instanceof Error ? err.message : String(err) };
  } finally {
    clearTimeout(timer);
  }
}

/** The node's heartbeat row: one small write, used by the write check and by read-only mode's trial write. */
export function heartbeatWrite(write: <T>(fn: WriteFn<T>) => Promise<T>, nodeId: number, now: () => Date): Promise<unknown> {
  return write((trx) =>
    trx
      .insertInto('ops_heartbeat')
      .values({ node_id: nodeId, beat_at: now().toISOString() })
      .onConflict((oc) => oc.column('node_id').doUpdateSet({ beat_at: now().toISOString() }))
      .execute(),
  );
}

export function databaseWriteCheck(ctx: AppContext): Promise<CheckResult> {
  return timed(() => heartbeatWrite(ctx.write, ctx.config.nodeId, ctx.now));
}

/** In read-only mode writes are refused on purpose: check that reads work instead. */
export function databaseReadCheck(ctx: AppContext): Promise<CheckResult> {
  return timed(() => ctx.db.selectFrom('ops_heartbeat').select('node_id').limit(1).execute());
}

/** Reads failing tolerated this long before the node turns unready (config readiness.databaseGraceSeconds). */
export function databaseGraceSeconds(config: AppContext['config']): number {
  return config.readiness.databaseGraceSeconds ?? (config.databaseUrl ? 20 : 0);
}

/** When this node's database reads started failing, per context (several test servers share a process). */
const failingSince = new WeakMap<AppContext, number>();

export async function checkReadiness(ctx: AppContext): Promise<Readiness> {
  const readOnly = ctx.writeGuard.state();
  const graceS = databaseGraceSeconds(ctx.config);
  if (ctx.lifecycle.draining) {
    const skipped: CheckResult = { ok: true, ms: 0 };
    return { ready: false, writable: false, draining: true, checks: { database: skipped, database_write: skipped, bus: skipped }, readOnly, databaseFailingSince: null, databaseGraceSeconds: graceS };
  }
  const [database, databaseWrite] = await Promise.all([
    databaseReadCheck(ctx),
    // In read-only mode writes are refused on purpose (the write guard probes by itself): nothing to try.
    readOnly.active ? Promise.resolve<CheckResult>({ ok: false, ms: 0, error: `read-only mode: ${readOnly.reason ?? 'writes refused'}` }) : databaseWriteCheck(ctx),
  ]);
  const bus: CheckResult = ctx.bus.connected ? { ok: true, ms: 0 } : { ok: false, ms: 0, error: 'event bus disconnected' };
  const now = ctx.now().getTime();
  let since = failingSince.get(ctx) ?? null;
  if (database.ok) {
    failingSince.delete(ctx);
    since = null;
  } else if (since === null) {
    since = now;
    failingSince.set(ctx, now);
  }
  const withinGrace = since !== null && now - since < graceS * 1000;
  if (!database.ok && withinGrace) database.error = `${database.error} (failing for ${Math.round((now - since!) / 1000)} s; unready after ${graceS} s)`;
  return {
    ready: bus.ok && (database.ok || withinGrace),
    writable: databaseWrite.ok,
    draining: false,
    checks: { database, database_write: databaseWrite, bus },
    readOnly,
    databaseFailingSince: since === null ? null : new Date(since).toISOString(),
    databaseGraceSeconds: graceS,
  };
}
