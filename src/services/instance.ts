/** Figures and facts about this server for the instance endpoints. */
import type { Account } from '../store/schema.js';
import type { AppContext } from './context.js';

/** Instance figures are for display: a minute old is fine, and counting a million statuses per request is not. */
const STATS_TTL_MS = 60_000;
const statsCache = new WeakMap<object, { at: number; value: Promise<{ users: number; statuses: number }> }>();

export function instanceStats(ctx: AppContext): Promise<{ users: number; statuses: number }> {
  const cached = statsCache.get(ctx.db);
  const now = Date.now();
  if (cached && now - cached.at < STATS_TTL_MS) return cached.value;
  const value = (async () => {
    // Per-account counters are kept in step with every write, so the sum is exact and costs one pass over accounts.
    const [u, s] = await Promise.all([
      ctx.db.selectFrom('users').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow(),
      ctx.db.selectFrom('accounts').select((eb) => eb.fn.coalesce(eb.fn.sum<number>('statuses_count'), eb.lit(0)).as('n')).executeTakeFirstOrThrow(),
    ]);
    return { users: Number(u.n), statuses: Number(s.n) };
  })();
  statsCache.set(ctx.db, { at: now, value });
  value.catch(() => statsCache.delete(ctx.db));
  return value;
}

export async function findAdminContact(ctx: AppContext): Promise<Account | null> {
  const row = await ctx.db
    .selectFrom('users')
    .innerJoin('accounts', 'accounts.id', 'users.account_id')
    .selectAll('accounts')
    .where('users.role', '=', 'admin')
    .orderBy('accounts.id')
    .limit(1)
    .executeTakeFirst();
  return row ?? null;
}
