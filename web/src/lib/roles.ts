import type { Account } from './types';

/** An administrator, as verify_credentials says: Mastodon's role "Admin", or permission bit 1 (administrator). */
export function isAdmin(account: Account | undefined): boolean {
  const role = account?.role;
  if (!role) return false;
  return role.name === 'Admin' || (Number(role.permissions) & 1) === 1;
}
