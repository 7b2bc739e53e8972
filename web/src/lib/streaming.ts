/**
 * One multiplexed WebSocket to /api/v1/streaming, authenticated with the
 * token as the Sec-WebSocket-Protocol value (as masto.js does). Views
 * subscribe to streams; the connection comes back by itself with backoff and
 * tells views it reconnected so they can fetch what they missed.
 */
import { onRecovery, reportStream, clearStream } from './health';

export interface StreamEvent {
  stream: string[];
  event: string;
  /** Parsed JSON for entities; the bare id for `delete`. */
  payload: unknown;
}

type Handler = (e: StreamEvent) => void;

interface Sub {
  stream: string;
  tag?: string;
  handlers: Set<Handler>;
}

const subs = new Map<string, Sub>();
const reconnectListeners = new Set<() => void>();
let ws: WebSocket | null = null;
let token: string | null = null;
let attempt = 0;
let timer: ReturnType<typeof setTimeout> | null = null;
let everOpened = false;

const keyOf = (stream: string, tag?: string) => (tag ? `${stream}|${tag.toLowerCase()}` : stream);

function send(msg: unknown): void {
  if (ws?.readyState === WebSocket.OPEN) ws.send(JSON.stringify(msg));
}

function open(): void {
  if (!token) return;
  if (timer) clearTimeout(timer);
  timer = null;
  const url = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/api/v1/streaming`;
  let socket: WebSocket;
  try {
    socket = new WebSocket(url, token);
  } catch {
    scheduleReconnect();
    return;
  }
  ws = socket;
  socket.onopen = () => {
    if (ws !== socket) return;
    const wasReconnect = everOpened;
    everOpened = true;
    attempt = 0;
    reportStream(true);
    for (const s of subs.values()) send({ type: 'subscribe', stream: s.stream, ...(s.tag ? { tag: s.tag } : {}) });
    if (wasReconnect) for (const l of [...reconnectListeners]) l();
  };
  socket.onmessage = (m) => {
    let msg: { stream?: string[]; event?: string; payload?: string };
    try {
      msg = JSON.parse(String(m.data));
    } catch {
      return;
    }
    if (!msg.event || !Array.isArray(msg.stream)) return;
    let payload: unknown = msg.payload;
    if (msg.event !== 'delete' && typeof msg.payload === 'string') {
      try {
        payload = JSON.parse(msg.payload);
      } catch {
        return;
      }
    }
    const [stream, tag] = msg.stream;
    const sub = subs.get(keyOf(stream, stream.startsWith('hashtag') ? tag : undefined));
    if (!sub) return;
    const e = { stream: msg.stream, event: msg.event, payload };
    for (const h of [...sub.handlers]) h(e);
  };
  socket.onclose = () => {
    if (ws !== socket) return;
    ws = null;
    if (!token) return;
    reportStream(false);
    scheduleReconnect();
  };
  socket.onerror = () => {
    /* onclose follows */
  };
}

function scheduleReconnect(): void {
  if (timer || !token) return;
  const delay = Math.min(15_000, 500 * 2 ** attempt) * (0.75 + Math.random() * 0.5);
  attempt++;
  timer = setTimeout(() => {
    timer = null;
    open();
  }, delay);
}

onRecovery(() => {
  if (token && !ws) {
    attempt = 0;
    open();
  }
});

/** Connects for a signed-in person (or hangs up with null). */
export function setStreamingToken(t: string | null): void {
  if (t === token) return;
  token = t;
  everOpened = false;
  if (ws) {
    const old = ws;
    ws = null;
    old.close(1000);
  }
  if (timer) clearTimeout(timer);
  timer = null;
  if (t) open();
  else clearStream();
}

/** Subscribes a handler to a stream (`user`, `public`, `public:local`, `hashtag` with a tag). */
export function subscribe(stream: string, tag: string | undefined, handler: Handler): () => void {
  const key = keyOf(stream, tag);
  let sub = subs.get(key);
  if (!sub) {
    sub = { stream, tag, handlers: new Set() };
    subs.set(key, sub);
    send({ type: 'subscribe', stream, ...(tag ? { tag } : {}) });
  }
  sub.handlers.add(handler);
  return () => {
    const s = subs.get(key);
    if (!s) return;
    s.handlers.delete(handler);
    if (s.handlers.size === 0) {
      subs.delete(key);
      send({ type: 'unsubscribe', stream, ...(tag ? { tag } : {}) });
    }
  };
}

export function onReconnect(fn: () => void): () => void {
  reconnectListeners.add(fn);
  return () => reconnectListeners.delete(fn);
}
