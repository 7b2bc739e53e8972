/** Accounts and their users: registration, credentials, profile updates, lookups. */
import { StarlingError, validation } from '../domain/errors.js';
import type { Account, User } from '../store/schema.js';
import type { AppContext } from './context.js';
import { nowIso } from './context.js';
import { hashPassword, verifyPassword } from './passwords.js';

export const USERNAME_RE = /^[a-z0-9_]{1,30}$/i;
/** Names a person could be fooled by, or that collide with routes. */
const RESERVED = new Set(['admin', 'administrator', 'root', 'support', 'help', 'status', 'starling', 'api', 'oauth', 'web', 'about', 'health', 'metrics', 'well-known', 'starling_canary']);

export interface RegisterInput {
  username: string;
  email: string;
  password: string;
  locale?: string;
  role?: User['role'];
  /** Admin creation may take reserved names. */
  allowReserved?: boolean;
}

export async function registerAccount(ctx: AppContext, input: RegisterInput): Promise<Account> {
  const username = input.username.trim();
  if (!USERNAME_RE.test(username)) throw validation('Username must contain only letters, numbers and underscores, at most 30 characters');
  if (!input.allowReserved && RESERVED.has(username.toLowerCase())) throw validation('Username is reserved');
  const email = input.email.trim().toLowerCase();
  if (!/^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(email) || email.length > 320) throw validation('Email is invalid');
  if (input.password.length < 8) throw validation('Password is too short (minimum is 8 characters)');
  if (input.password.length > 72 * 4) throw validation('Password is too long');

  // Hash before the transaction: argon2 takes tens of milliseconds and must not hold the write lock.
  const passwordHash = await hashPassword(input.password);
  const now = nowIso(ctx);
  const id = ctx.ids.next();
  return ctx.write(async (trx) => {
    const taken = await trx.selectFrom('accounts').select('id').where('username_lower', '=', username.toLowerCase()).executeTakeFirst();
    if (taken) throw validation('Username has already been taken');
    const emailTaken = await trx.selectFrom('users').select('account_id').where('email', '=', email).executeTakeFirst();
    if (emailTaken) throw validation('Email has already been taken');
    const account = await trx
      .insertInto('accounts')
      .values({
        id,
        username,
        username_lower: username.toLowerCase(),
        display_name: '',
        note: '',
        locked: 0,
        bot: 0,
        discoverable: 1,
        last_status_at: null,
        created_at: now,
        updated_at: now,
      })
      .returningAll()
      .executeTakeFirstOrThrow();
    await trx
      .insertInto('users')
      .values({
        account_id: id,
        email,
        password_hash: passwordHash,
        role: input.role ?? 'user',
        locale: input.locale ?? 'en',
        default_visibility: 'public',
        default_sensitive: 0,
        default_language: null,
        created_at: now,
      })
      .execute();
    return account;
  });
}

/** Checks a sign-in by username or e-mail. Returns the account id or null; never says which part was wrong. */
export async function checkCredentials(ctx: AppContext, login: string, password: string): Promise<string | null> {
  const l = login.trim().toLowerCase();
  const row = await ctx.db
    .selectFrom('users')
    .innerJoin('accounts', 'accounts.id', 'users.account_id')
    .select(['users.account_id', 'users.password_hash', 'users.disabled'])
    .where((eb) => eb.or([eb('users.email', '=', l), eb('accounts.username_lower', '=', l)]))
    .executeTakeFirst();
  const ok = await verifyPassword(row?.password_hash ?? null, password);
  if (!ok || !row) return null;
  if (row.disabled === 1) throw new StarlingError('account_disabled');
  return row.account_id;
}

export async function findAccount(ctx: AppContext, id: string): Promise<Account | null> {
  return (await ctx.db.selectFrom('accounts').selectAll().where('id', '=', id).executeTakeFirst()) ?? null;
}

export async function requireAccount(ctx: AppContext, id: string): Promise<Account> {
  const a = await findAccount(ctx, id);
  if (!a) throw new StarlingError('not_found');
  return a;
}

export async function findAccountByUsername(ctx: AppContext, username: string): Promise<Account | null> {
  // `user@ourdomain` is the same local account.
  const [name, domain] = username.replace(/^@/, '').split('@');
  if (domain && domain.toLowerCase() !== ctx.urls.domain.toLowerCase()) return null;
  return (await ctx.db.selectFrom('accounts').selectAll().where('username_lower', '=', name.toLowerCase()).executeTakeFirst()) ?? null;
}

export async function findUser(ctx: AppContext, accountId: string): Promise<User> {
  return ctx.db.selectFrom('users').selectAll().where('account_id', '=', accountId).executeTakeFirstOrThrow();
}

export interface ProfileUpdate {
  display_name?: string;
  note?: string;
  locked?: boolean;
  bot?: boolean;
  discoverable?: boolean;
  source?: { privacy?: 'public' | 'unlisted' | 'private' | 'direct'; sensitive?: boolean; language?: string | null };
}

export async function updateProfile(ctx: AppContext, accountId: string, u: ProfileUpdate): Promise<Account> {
  if (u.display_name !== undefined && [...u.display_name].length > 30) throw validation('Display name is too long (maximum is 30 characters)');
  if (u.note !== undefined && [...u.note].length > 500) throw validation('Note is too long (maximum is 500 characters)');
  const b = (v: boolean | undefined) => (v === undefined ? undefined : v ? (1 as const) : (0 as const));
  return ctx.write(async (trx) => {
    const account = await trx
      .updateTable('accounts')
      .set({
        display_name: u.display_name,
        note: u.note,
        locked: b(u.locked),
        bot: b(u.bot),
        discoverable: b(u.discoverable),
        updated_at: nowIso(ctx),
      })
      .where('id', '=', accountId)
      .returningAll()
      .executeTakeFirstOrThrow();
    if (u.source && (u.source.privacy !== undefined || u.source.sensitive !== undefined || u.source.language !== undefined)) {
      await trx
        .updateTable('users')
        .set({
          default_visibility: u.source.privacy,
          default_sensitive: b(u.source.sensitive),
          default_language: u.source.language,
        })
        .where('account_id', '=', accountId)
        .execute();
    }
    return account;
  });
}
