/** Short messages that announce themselves to screen readers and go away. */
import { createStore } from './store';

export interface Toast {
  id: number;
  text: string;
  kind: 'info' | 'error';
}

export const toasts = createStore<Toast[]>([]);
let seq = 0;

export function toast(text: string, kind: Toast['kind'] = 'info', ms = 6000): void {
  const id = ++seq;
  toasts.set((list) => [...list.slice(-3), { id, text, kind }]);
  setTimeout(() => dismissToast(id), ms);
}

export function dismissToast(id: number): void {
  toasts.set((list) => list.filter((t) => t.id !== id));
}
