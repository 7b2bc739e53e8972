import { MAX_STATUS_CHARS } from '../../../src/domain/text';
import { api } from './http';
import { createStore } from './store';
import type { Instance } from './types';

export const instance = createStore<Instance | null>(null);

export async function loadInstance(): Promise<void> {
  try {
    const { data } = await api<Instance>('/api/v2/instance', { token: null });
    instance.set(data);
  } catch {
    /* the defaults serve until it can be read */
  }
}

export function maxChars(i: Instance | null): number {
  return i?.configuration?.statuses?.max_characters ?? MAX_STATUS_CHARS;
}
