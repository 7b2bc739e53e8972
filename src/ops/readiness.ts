/**
 * Readiness: can this node serve right now? A bounded-time database write
 * (a heartbeat row per node — a read alone would not notice a full disk or a
 * read-only database) and a connected bus. Each check has a deadline, so a
 * hung dependency makes the node unready instead of making the check hang.
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
  ready: boolean;
  checks: { database: CheckResult; bus: CheckResult };
  /** A graceful shutdown has begun: not ready, whatever the checks say, so the load balancer stops sending here. */
  draining: boolean;
  /** A read-only node is still ready: it serves reads; writes get 503 until it leaves read-only mode. */
  readOnly: ReadOnlyState;
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

export async function checkReadiness(ctx: AppContext): Promise<Readiness> {
  const readOnly = ctx.writeGuard.state();
  if (ctx.lifecycle.draining) {
    const skipped: CheckResult = { ok: true, ms: 0 };
    return { ready: false, draining: true, checks: { database: skipped, bus: skipped }, readOnly };
  }
  const database = readOnly.active ? await databaseReadCheck(ctx) : await databaseWriteCheck(ctx);
  const bus: CheckResult = ctx.bus.connected ? { ok: true, ms: 0 } : { ok: false, ms: 0, error: 'event bus disconnected' };
  return { ready: database.ok && bus.ok, draining: false, checks: { database, bus }, readOnly };
}
