/** Migrations are listed here, in order, rather than found on disk: the build output then needs no directory scan. */
import type { Migration } from 'kysely';
import * as m0001 from './0001-core.js';

export const migrations: Record<string, Migration> = {
  '0001-core': m0001,
};
