/**
 * Periodic clean-up of rows that only matter for a while: expired
 * idempotency keys, used or expired OAuth codes, expired mutes. Each sweep is
 * a few bounded deletes, safe to run on every node at once.
 */
import type { AppContext } from './context.js';
import { IDEMPOTENCY_TTL_MS } from './posts.js';

export async function sweep(ctx: AppContext): Promise<{ idempotencyKeys: number; codes: number; mutes: number }> {
  const now = ctx.now();
  const nowIso = now.toISOString();
  // One write, one commit: three bounded deletes.
  const { keys, codes, mutes } = await ctx.write(async (trx) => ({
    keys: await trx.deleteFrom('idempotency_keys').where('created_at', '<', new Date(now.getTime() - IDEMPOTENCY_TTL_MS).toISOString()).executeTakeFirst(),
    codes: await trx
      .deleteFrom('oauth_codes')
      .where((eb) => eb.or([eb('expires_at', '<', nowIso), eb('used_at', 'is not', null)]))
      .executeTakeFirst(),
    mutes: await trx.deleteFrom('mutes').where('expires_at', 'is not', null).where('expires_at', '<', nowIso).executeTakeFirst(),
  }));
  return { idempotencyKeys: Number(keys.numDeletedRows), codes: Number(codes.numDeletedRows), mutes: Number(mutes.numDeletedRows) };
}

export function startHousekeeping(ctx: AppContext, everyMs = 10 * 60_000): () => void {
  const timer = setInterval(() => {
    sweep(ctx).catch((err) => ctx.log.warn({ err }, 'housekeeping failed'));
  }, everyMs);
  timer.unref();
  return () => clearInterval(timer);
}
