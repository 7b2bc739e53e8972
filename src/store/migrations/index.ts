/** Migrations are listed here, in order, rather than found on disk: the build output then needs no directory scan. */
import type { Migration } from 'kysely';
import * as m0001 from './0001-core.js';
import * as m0002 from './0002-search.js';
import * as m0003 from './0003-tags.js';
import * as m0004 from './0004-ops.js';
import * as m0005 from './0005-pull-index.js';
import * as m0006 from './0006-search-postgres.js';
import * as m0007 from './0007-read-fences.js';
import * as m0008 from './0008-pull-covering.js';
import * as m0009 from './0009-account-search.js';

export const migrations: Record<string, Migration> = {
  '0001-core': m0001,
  '0002-search': m0002,
  '0003-tags': m0003,
  '0004-ops': m0004,
  '0005-pull-index': m0005,
  '0006-search-postgres': m0006,
  '0007-read-fences': m0007,
  '0008-pull-covering': m0008,
  '0009-account-search': m0009,
};
