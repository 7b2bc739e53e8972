/**
 * What a write needs to know about the request it runs for, without every service passing it along: the
 * signed-in account, whose read fence the writer sets in the same transaction (store/replica.ts). Entered by
 * the HTTP layer (http/app.ts) just before a route's handler runs.
 */
import { AsyncLocalStorage } from 'node:async_hooks';

export interface RequestScope {
  accountId: string | null;
}

export const requestScope = new AsyncLocalStorage<RequestScope>();

/** The signed-in account of the request this code runs for, if any. */
export const currentAccountId = (): string | null => requestScope.getStore()?.accountId ?? null;
