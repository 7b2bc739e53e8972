/** Figures and facts about this server for the instance endpoints. */
import type { Account } from '../store/schema.js';
import type { AppContext } from './context.js';

export async function instanceStats(ctx: AppContext): Promise<{ users: number; statuses: number }> {
  const [u, s] = await Promise.all([
    ctx.db.selectFrom('users').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow(),
    ctx.db.selectFrom('statuses').select((eb) => eb.fn.countAll<number>().as('n')).where('deleted_at', 'is', null).where('reblog_of_id', 'is', null).executeTakeFirstOrThrow(),
  ]);
  return { users: Number(u.n), statuses: Number(s.n) };
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
