/**
 * OAuth scopes as Mastodon defines them: top-level scopes grant every
 * sub-scope under them; the legacy `follow` scope grants the graph scopes.
 */
export const TOP_SCOPES = ['read', 'write', 'follow', 'push', 'profile', 'admin:read', 'admin:write'] as const;

const SUB = {
  read: ['accounts', 'blocks', 'bookmarks', 'favourites', 'filters', 'follows', 'lists', 'mutes', 'notifications', 'search', 'statuses'],
  write: ['accounts', 'blocks', 'bookmarks', 'conversations', 'favourites', 'filters', 'follows', 'lists', 'media', 'mutes', 'notifications', 'reports', 'statuses'],
} as const;

export const ALL_SCOPES: ReadonlySet<string> = new Set<string>([
  ...TOP_SCOPES,
  ...SUB.read.map((s) => `read:${s}`),
  ...SUB.write.map((s) => `write:${s}`),
]);

const FOLLOW_GRANTS = new Set(['read:follows', 'write:follows', 'read:blocks', 'write:blocks', 'read:mutes', 'write:mutes']);

export function parseScopes(value: string | undefined | null): string[] {
  if (!value) return [];
  return [...new Set(value.split(/[\s+,]+/).filter(Boolean))];
}

export function invalidScopes(scopes: readonly string[]): string[] {
  return scopes.filter((s) => !ALL_SCOPES.has(s));
}

/** Does a token holding `granted` satisfy a route that needs `required`? */
export function scopeSatisfies(granted: readonly string[], required: string): boolean {
  if (granted.includes(required)) return true;
  const [top] = required.split(':');
  if (required.includes(':') && granted.includes(top)) return true;
  if (granted.includes('follow') && FOLLOW_GRANTS.has(required)) return true;
  // verify_credentials needs `profile`; any read scope that covers accounts is enough.
  if (required === 'profile') return granted.includes('read') || granted.includes('read:accounts');
  return false;
}

/** Requested scopes must be a subset of what the application registered. */
export function scopesWithin(requested: readonly string[], allowed: readonly string[]): boolean {
  return requested.every((s) => allowed.includes(s) || scopeSatisfies(allowed, s));
}
