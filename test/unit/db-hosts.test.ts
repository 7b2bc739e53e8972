/**
 * Fresh PostgreSQL clients start at the next host of a multi-host URL (store/db.ts rotateHosts), so a frozen host
 * first in the URL does not make every new connection wait out its connect timeout there.
 */
import { describe, expect, it } from 'vitest';
import { rotateHosts } from '../../src/store/db.js';

describe('rotateHosts', () => {
  const url = 'postgres://starling:p%40ss@127.0.0.1:5433,127.0.0.1:5434,127.0.0.1:5435/starling?target_session_attrs=primary';

  it('starts each rotation at the next host and keeps the rest of the URL', () => {
    expect(rotateHosts(url, 0)).toBe(url);
    expect(rotateHosts(url, 1)).toBe('postgres://starling:p%40ss@127.0.0.1:5434,127.0.0.1:5435,127.0.0.1:5433/starling?target_session_attrs=primary');
    expect(rotateHosts(url, 2)).toBe('postgres://starling:p%40ss@127.0.0.1:5435,127.0.0.1:5433,127.0.0.1:5434/starling?target_session_attrs=primary');
    expect(rotateHosts(url, 3)).toBe(url);
  });

  it('leaves a single-host URL and one without credentials alone, and rotates the latter too', () => {
    expect(rotateHosts('postgres://u@127.0.0.1:5432/db', 5)).toBe('postgres://u@127.0.0.1:5432/db');
    expect(rotateHosts('postgresql://h1:1,h2:2/db', 1)).toBe('postgresql://h2:2,h1:1/db');
  });
});
