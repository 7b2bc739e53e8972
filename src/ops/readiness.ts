/**
 * Readiness: can this node serve right now? A bounded-time database write
 * (a heartbeat row per node — a read alone would not notice a full disk or a
 * read-only database) and a connected bus. Each check has a deadline, so a
 * hung dependency makes the node unready instead of making the check hang.
 */
import type { AppContext } from '../services/context.js';

export interface CheckResult {
  ok: boolean;
  ms: number;
  error?: string;
}

export interface Readiness {
  ready: boolean;
  checks: { database: CheckResult; bus: CheckResult };
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

export function databaseWriteCheck(ctx: AppContext): Promise<CheckResult> {
  return timed(() =>
    ctx.write((trx) =>
      trx
        .insertInto('ops_heartbeat')
        .values({ node_id: ctx.config.nodeId, beat_at: ctx.now().toISOString() })
        .onConflict((oc) => oc.column('node_id').doUpdateSet({ beat_at: ctx.now().toISOString() }))
        .execute(),
    ),
  );
}

export async function checkReadiness(ctx: AppContext): Promise<Readiness> {
  const database = await databaseWriteCheck(ctx);
  const bus: CheckResult = ctx.bus.connected ? { ok: true, ms: 0 } : { ok: false, ms: 0, error: 'event bus disconnected' };
  return { ready: database.ok && bus.ok, checks: { database, bus } };
}
