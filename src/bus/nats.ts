/**
 * The event bus over NATS, for cluster mode: every node publishes its domain
 * events to one subject and hears every other node's, so a post made on node
 * A reaches streams held on node B, and per-node caches (streaming filters,
 * trends) learn of changes made elsewhere.
 *
 * Same contract as the in-process bus (bus.ts): publish is fire and forget,
 * delivery is on a later tick, a throwing subscriber reaches no one. Events
 * this node published are delivered to its own subscribers directly (and NATS
 * is told not to echo them back), so local streams keep working while NATS is
 * unreachable; only other nodes miss them.
 *
 * Reconnection is the client's: forever, with jitter, across every server
 * given (and those the cluster announces). `connected` is false while no
 * server is reachable; readiness (/readyz) and the ops engine's bus probe read it.
 */
import { connect, Events, type NatsConnection, type Subscription } from 'nats';
import type { EventBus, EventHandler } from './bus.js';
import type { DomainEvent, DomainEventType } from './events.js';

/** One subject per event type under this prefix; nodes subscribe to `<prefix>.>`. */
export const DEFAULT_SUBJECT_PREFIX = 'starling.events';

const EVENT_TYPES: ReadonlySet<DomainEventType> = new Set<DomainEventType>([
  'status.created',
  'status.updated',
  'status.deleted',
  'notification.created',
  'relationship.changed',
]);

/** What travels on the wire: the event and who sent it (for logs and debugging; NATS's noEcho does the filtering). */
interface Envelope {
  v: 1;
  node: number;
  event: DomainEvent;
}

export interface NatsBusOptions {
  /** Server URLs (nats://host:port); the client tries them in random order and reconnects to any. */
  servers: string[];
  /** This node's id, carried in each message and in the connection name. */
  nodeId: number;
  subjectPrefix?: string;
  /** Base wait between reconnect attempts to one server, in ms (jitter is added). */
  reconnectTimeWaitMs?: number;
  /** How often the client pings the server; a server silent for 2 pings is treated as gone. */
  pingIntervalMs?: number;
  onError?: (err: unknown) => void;
  onStatus?: (status: { type: string; data?: unknown }) => void;
}

export interface NatsBus extends EventBus {
  /** Resolves once connected the first time (for tests and startup logs); never rejects while the bus is open. */
  readonly ready: Promise<void>;
  /** Events received from other nodes and events dropped because no connection existed yet. */
  readonly stats: { received: number; published: number; dropped: number; malformed: number };
  /** The server this node is connected to now (host:port), or null. */
  readonly server: string | null;
}

/** Parses `STARLING_NATS_URL`-style lists: comma-separated, whitespace ignored. */
export function parseNatsServers(value: string): string[] {
  return value
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}

/**
 * Creates the bus and starts connecting in the background: a node whose NATS
 * is not up yet starts anyway (unready, `connected` false) and becomes ready
 * when the first server answers, instead of failing to start.
 */
export function createNatsBus(opts: NatsBusOptions): NatsBus {
  if (opts.servers.length === 0) throw new Error('the NATS bus needs at least one server URL');
  const prefix = opts.subjectPrefix ?? DEFAULT_SUBJECT_PREFIX;
  const onError = opts.onError ?? (() => {});
  const handlers = new Set<EventHandler>();
  const stats = { received: 0, published: 0, dropped: 0, malformed: 0 };
  let nc: NatsConnection | null = null;
  let sub: Subscription | null = null;
  let connected = false;
  let closed = false;

  const deliver = (event: DomainEvent) => {
    for (const h of handlers) {
      try {
        h(event);
      } catch (err) {
        onError(err);
      }
    }
  };

  const onMessage = (data: Uint8Array) => {
    let env: Envelope;
    try {
      env = JSON.parse(Buffer.from(data).toString('utf8')) as Envelope;
    } catch {
      stats.malformed++;
      return;
    }
    // A node of another version (or anything else on the subject) must not crash or confuse this one.
    if (env?.v !== 1 || !env.event || !EVENT_TYPES.has(env.event.type)) {
      stats.malformed++;
      return;
    }
    stats.received++;
    deliver(env.event);
  };

  /**
   * The first connection is retried here rather than by the client's
   * waitOnFirstConnect, so that closing the bus before NATS ever answered
   * stops the attempts (the client offers no way to cancel them).
   */
  const firstConnect = async (): Promise<NatsConnection | null> => {
    const base = opts.reconnectTimeWaitMs ?? 250;
    for (let attempt = 0; !closed; attempt++) {
      try {
        return await connect({
          servers: opts.servers,
          name: `starling-node-${opts.nodeId}`,
          // Our own events are delivered locally (publish below); NATS need not send them back.
          noEcho: true,
          // Keep trying forever: a bus outage must end when NATS comes back, without restarting the node.
          maxReconnectAttempts: -1,
          reconnectTimeWait: base,
          reconnectJitter: 250,
          // A killed server (no FIN) is noticed by missed pings: about 2 × pingInterval.
          pingInterval: opts.pingIntervalMs ?? 2000,
          maxPingOut: 2,
          timeout: 2000,
        });
      } catch (err) {
        if (attempt === 0) onError(err);
        // Capped exponential backoff with full jitter, so many nodes starting together do not knock in step.
        const wait = Math.random() * Math.min(5000, base * 2 ** Math.min(attempt, 5));
        await new Promise((r) => setTimeout(r, wait).unref());
      }
    }
    return null;
  };

  const ready = (async () => {
    const conn = await firstConnect();
    if (!conn) return;
    if (closed) {
      await conn.close();
      return;
    }
    nc = conn;
    connected = true;
    sub = conn.subscribe(`${prefix}.>`, {
      callback: (err, msg) => {
        if (err) onError(err);
        else onMessage(msg.data);
      },
    });
    void (async () => {
      for await (const s of conn.status()) {
        if (s.type === Events.Disconnect) connected = false;
        else if (s.type === Events.Reconnect) connected = true;
        opts.onStatus?.({ type: s.type, data: s.data });
      }
    })().catch(onError);
    void conn.closed().then((err) => {
      connected = false;
      if (err && !closed) onError(err);
    });
  })().catch((err) => {
    connected = false;
    onError(err);
  });

  return {
    ready,
    stats,
    get connected() {
      return connected && !closed;
    },
    get server() {
      return nc && connected ? nc.getServer() : null;
    },
    publish(event) {
      if (closed) return;
      if (handlers.size) queueMicrotask(() => deliver(event));
      if (!nc) {
        // Not connected yet: other nodes miss this event (streams are live views, the timeline API has it).
        stats.dropped++;
        return;
      }
      try {
        const env: Envelope = { v: 1, node: opts.nodeId, event };
        // While reconnecting, the client buffers publishes (up to its reconnect buffer) and sends them on reconnect.
        nc.publish(`${prefix}.${event.type}`, Buffer.from(JSON.stringify(env)));
        stats.published++;
      } catch (err) {
        stats.dropped++;
        onError(err);
      }
    },
    subscribe(handler) {
      handlers.add(handler);
      return () => handlers.delete(handler);
    },
    async close() {
      if (closed) return;
      closed = true;
      handlers.clear();
      sub?.unsubscribe();
      const conn = nc;
      const wasConnected = connected;
      nc = null;
      connected = false;
      if (conn && !conn.isClosed()) {
        // Drain: what this node published is flushed to the server before the connection closes. Not while
        // disconnected (it would wait for a server that may not come back), and never for long: shutdown is bounded.
        const drained = wasConnected ? conn.drain() : conn.close();
        await Promise.race([drained.catch(() => {}), new Promise((r) => setTimeout(r, 2000).unref())]);
        if (!conn.isClosed()) await conn.close().catch(() => {});
      }
    },
  };
}
