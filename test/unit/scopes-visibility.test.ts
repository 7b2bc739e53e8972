import { describe, expect, it } from 'vitest';
import { scopeSatisfies, scopesWithin, invalidScopes, parseScopes } from '../../src/domain/scopes.js';
import { canView, VISIBILITIES } from '../../src/domain/visibility.js';

describe('scopes', () => {
  it('grants sub-scopes from their top scope, and follow the graph scopes', () => {
    expect(scopeSatisfies(['read'], 'read:statuses')).toBe(true);
    expect(scopeSatisfies(['read:statuses'], 'read:accounts')).toBe(false);
    expect(scopeSatisfies(['write'], 'read:statuses')).toBe(false);
    expect(scopeSatisfies(['follow'], 'write:follows')).toBe(true);
    expect(scopeSatisfies(['follow'], 'write:statuses')).toBe(false);
    expect(scopeSatisfies(['read:accounts'], 'profile')).toBe(true);
  });

  it('parses and checks requested scopes', () => {
    expect(parseScopes('read  write+follow')).toEqual(['read', 'write', 'follow']);
    expect(invalidScopes(['read', 'root'])).toEqual(['root']);
    expect(scopesWithin(['read:statuses'], ['read'])).toBe(true);
    expect(scopesWithin(['write'], ['read'])).toBe(false);
  });
});

describe('visibility', () => {
  const none = { isAuthor: false, follows: false, mentioned: false, blocked: false };
  it('follows Mastodon’s rules', () => {
    const table: [string, Partial<typeof none>, boolean[]][] = [
      ['author', { isAuthor: true }, [true, true, true, true]],
      ['follower', { follows: true }, [true, true, true, false]],
      ['mentioned', { mentioned: true }, [true, true, true, true]],
      ['stranger', {}, [true, true, false, false]],
      ['blocked follower', { follows: true, blocked: true }, [false, false, false, false]],
    ];
    for (const [, rel, expected] of table) {
      expect(VISIBILITIES.map((v) => canView(v, { ...none, ...rel }))).toEqual(expected);
    }
  });
});
