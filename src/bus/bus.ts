/**
 * The event bus. Services publish; streaming and caches subscribe. The
 * in-process bus serves the embedded mode; a NATS bus with the same interface
 * serves the cluster, so neither services nor streaming change.
 */
import type { DomainEvent } from './events.js';

export type EventHandler = (event: DomainEvent) => void;

export interface EventBus {
  /** Fire and forget: a publish never fails the write that caused it (the write has committed). */
  publish(event: DomainEvent): void;
  /** Returns an unsubscribe function. */
  subscribe(handler: EventHandler): () => void;
  /** False while a networked bus is disconnected; readiness reports it. */
  readonly connected: boolean;
  close(): Promise<void>;
}

/**
 * Delivers on the next tick, never synchronously: a subscriber's work must
 * not run inside the publisher's request, and a throwing subscriber must not
 * reach the publisher.
 */
export function createLocalBus(onError: (err: unknown) => void = () => {}): EventBus {
  const handlers = new Set<EventHandler>();
  let closed = false;
  return {
    // A closed bus delivers nothing, and says so: readiness and the ops engine read this.
    get connected() {
      return !closed;
    },
    publish(event) {
      if (closed || handlers.size === 0) return;
      queueMicrotask(() => {
        for (const h of handlers) {
          try {
            h(event);
          } catch (err) {
            onError(err);
          }
        }
      });
    },
    subscribe(handler) {
      handlers.add(handler);
      return () => handlers.delete(handler);
    },
    async close() {
      closed = true;
      handlers.clear();
    },
  };
}
