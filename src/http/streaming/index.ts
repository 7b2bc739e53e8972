/**
 * Mastodon's streaming API over WebSocket (`/api/v1/streaming`, multiplexed)
 * and Server-Sent Events (`/api/v1/streaming/<stream>`). Transports only:
 * the hub (services/streaming.ts) decides what each connection receives.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import websocket from '@fastify/websocket';
import type { WebSocket } from 'ws';
import { StarlingError } from '../../domain/errors.js';
import { scopeSatisfies } from '../../domain/scopes.js';
import type { AppContext } from '../../services/context.js';
import { findToken, type AuthInfo } from '../../services/auth.js';
import { StreamingHub, STREAM_KINDS, AUTH_REQUIRED, type StreamKind, type StreamSink, type Subscriber } from '../../services/streaming.js';

/** How far behind a consumer may fall before it is dropped: bounded memory per connection. */
export const MAX_BUFFERED_BYTES = 4 * 1024 * 1024;
const HEARTBEAT_MS = 15_000;
const MAX_CHANNELS = 50;

/** SSE paths map to stream kinds. */
const SSE_PATHS: Record<string, StreamKind> = {
  user: 'user',
  'user/notification': 'user:notification',
  public: 'public',
  'public/local': 'public:local',
  'public/remote': 'public:remote',
  'public/media': 'public:media',
  'public/local/media': 'public:local:media',
  'public/remote/media': 'public:remote:media',
  hashtag: 'hashtag',
  'hashtag/local': 'hashtag:local',
};

const unknownChannel = () => new StarlingError('bad_request', 'Unknown channel requested');

/** Token from the header (already resolved by the auth hook), the WebSocket protocol header, or `access_token`. */
async function authenticate(ctx: AppContext, req: FastifyRequest): Promise<AuthInfo | null> {
  if (req.auth) return req.auth;
  const protocol = req.headers['sec-websocket-protocol'];
  const fromQuery = (req.query as Record<string, unknown>).access_token;
  const token = typeof protocol === 'string' && protocol.trim() ? protocol.split(',')[0].trim() : typeof fromQuery === 'string' ? fromQuery : null;
  if (!token) return null;
  const info = await findToken(ctx, token);
  if (!info) throw new StarlingError('unauthorized');
  return info;
}

/** Checks that a stream may be opened with this authentication; returns the kind and tag. */
function resolveStream(auth: AuthInfo | null, stream: unknown, tag: unknown): { kind: StreamKind; tag?: string } {
  if (typeof stream !== 'string' || !(STREAM_KINDS as readonly string[]).includes(stream)) throw unknownChannel();
  const kind = stream as StreamKind;
  if (AUTH_REQUIRED.has(kind)) {
    if (!auth?.accountId) throw new StarlingError('unauthorized', 'Missing access token');
    if (!scopeSatisfies(auth.scopes, kind === 'user:notification' ? 'read:notifications' : 'read:statuses')) throw new StarlingError('scope_missing');
  }
  if (kind === 'hashtag' || kind === 'hashtag:local') {
    if (typeof tag !== 'string' || tag.trim() === '' || tag.length > 100) throw new StarlingError('bad_request', 'No tag for stream provided');
    return { kind, tag: tag.replace(/^#/, '') };
  }
  return { kind };
}

export async function streamingRoutes(app: FastifyInstance, { ctx, hub }: { ctx: AppContext; hub: StreamingHub }): Promise<void> {
  const frames = new FrameEncoder();
  await app.register(websocket, {
    options: {
      maxPayload: 64 * 1024,
      // masto.js and others send the token as the protocol; echo it so the handshake completes.
      handleProtocols: (protocols) => protocols.values().next().value ?? false,
    },
  });

  app.get('/api/v1/streaming/health', async (_req, reply) => {
    reply.type('text/plain');
    return 'OK';
  });

  app.get('/api/v1/streaming', { websocket: true }, (socket, req) => {
    void openWebSocket(ctx, hub, frames, socket, req);
  });

  app.get('/api/v1/streaming/*', async (req, reply) => {
    const path = (req.params as { '*': string })['*'].replace(/\/+$/, '');
    const kind = SSE_PATHS[path];
    if (!kind) throw unknownChannel();
    const auth = await authenticate(ctx, req);
    const q = req.query as Record<string, unknown>;
    const channel = resolveStream(auth, kind, q.tag);
    return openEventStream(hub, auth, channel, req, reply);
  });
}

/**
 * One event goes to many sockets with the same bytes: the frame is encoded
 * once and reused while the same payload is being delivered (the hub hands
 * every subscriber the same payload string), instead of once per socket.
 */
class FrameEncoder {
  private payload: string | null = null;
  private frames = new Map<string, Buffer>();
  encode(stream: string[], event: string, payload: string): Buffer {
    if (payload !== this.payload) {
      this.payload = payload;
      this.frames = new Map();
    }
    const key = `${event}\u0000${stream.join('\u0000')}`;
    let frame = this.frames.get(key);
    if (!frame) {
      frame = Buffer.from(JSON.stringify({ stream, event, payload }));
      this.frames.set(key, frame);
    }
    return frame;
  }
}

async function openWebSocket(ctx: AppContext, hub: StreamingHub, frames: FrameEncoder, socket: WebSocket, req: FastifyRequest): Promise<void> {
  const sendJson = (o: unknown) => socket.readyState === socket.OPEN && socket.send(JSON.stringify(o));
  // Messages can arrive while the token and the viewer's filters are read (on PostgreSQL that is network I/O,
  // not an instant): listen at once and keep them until the subscriber exists, or a client's first
  // `subscribe` would be lost (@fastify/websocket: attach handlers synchronously).
  let onMessage: ((data: unknown) => void) | null = null;
  const early: unknown[] = [];
  socket.on('message', (data) => (onMessage ? onMessage(data) : early.length < MAX_CHANNELS * 2 && early.push(data)));
  let auth: AuthInfo | null;
  try {
    auth = await authenticate(ctx, req);
  } catch (err) {
    sendJson({ error: (err as Error).message, status: (err as StarlingError).status ?? 401 });
    socket.close(4001, 'unauthorized');
    return;
  }
  const sink: StreamSink = {
    send(stream, event, payload) {
      if (socket.readyState !== socket.OPEN) return false;
      if (socket.bufferedAmount > MAX_BUFFERED_BYTES) return false;
      socket.send(frames.encode(stream, event, payload), { binary: false });
      return true;
    },
    close(reason) {
      // 1013 "try again later": a reconnecting client gets a fresh start elsewhere.
      // 1012 "service restart" (graceful shutdown): reconnect now, another node will answer.
      socket.close(reason === 'slow consumer' ? 1013 : reason === 'service restart' ? 1012 : 1001, reason);
    },
  };
  let sub: Subscriber;
  try {
    sub = await hub.connect(auth?.accountId ?? null, sink);
  } catch (err) {
    req.log.error({ err }, 'stream connect failed');
    socket.close(1011, 'internal error');
    return;
  }
  if (socket.readyState !== socket.OPEN) {
    hub.disconnect(sub);
    return;
  }
  const subscribe = (stream: unknown, tag: unknown, unsubscribe = false) => {
    try {
      const c = resolveStream(auth, stream, tag);
      if (unsubscribe) hub.unsubscribe(sub, c.kind, c.tag);
      else if (sub.channels.size >= MAX_CHANNELS) sendJson({ error: 'Too many streams', status: 400 });
      else hub.subscribe(sub, c.kind, c.tag);
    } catch (err) {
      sendJson({ error: (err as Error).message, status: (err as StarlingError).status ?? 400 });
    }
  };
  const q = req.query as Record<string, unknown>;
  if (q.stream !== undefined) subscribe(q.stream, q.tag);

  onMessage = (data) => {
    let msg: { type?: unknown; stream?: unknown; tag?: unknown };
    try {
      msg = JSON.parse(String(data));
    } catch {
      sendJson({ error: 'Invalid JSON', status: 400 });
      return;
    }
    if (msg.type === 'subscribe') subscribe(msg.stream, msg.tag);
    else if (msg.type === 'unsubscribe') subscribe(msg.stream, msg.tag, true);
    else sendJson({ error: 'Unknown message type', status: 400 });
  };
  for (const data of early.splice(0)) onMessage(data);

  // Heartbeat: a ping each interval; a peer that did not answer the last one is gone.
  let alive = true;
  socket.on('pong', () => (alive = true));
  const heartbeat = setInterval(() => {
    if (!alive) {
      socket.terminate();
      return;
    }
    alive = false;
    socket.ping();
  }, HEARTBEAT_MS);
  heartbeat.unref();
  socket.on('close', () => {
    clearInterval(heartbeat);
    hub.disconnect(sub);
  });
  socket.on('error', () => socket.terminate());
}

async function openEventStream(hub: StreamingHub, auth: AuthInfo | null, channel: { kind: StreamKind; tag?: string }, req: FastifyRequest, reply: FastifyReply): Promise<void> {
  const res = reply.raw;
  reply.hijack();
  res.writeHead(200, {
    'Content-Type': 'text/event-stream; charset=utf-8',
    'Cache-Control': 'no-store',
    Connection: 'keep-alive',
    'X-Accel-Buffering': 'no',
  });
  res.write(':)\n\n');
  const sink: StreamSink = {
    send(_stream, event, payload) {
      if (res.destroyed || res.writableLength > MAX_BUFFERED_BYTES) return false;
      // SSE carries the payload as it is; only the WebSocket wraps it in a string.
      res.write(`event: ${event}\ndata: ${payload}\n\n`);
      return true;
    },
    close(reason) {
      if (res.destroyed) return;
      // EventSource reconnects by itself when the stream ends; `retry` makes it do so soon (to another node, behind a load balancer).
      if (reason === 'service restart') res.write('retry: 250\n\n');
      res.end();
    },
  };
  const sub = await hub.connect(auth?.accountId ?? null, sink);
  hub.subscribe(sub, channel.kind, channel.tag);
  const heartbeat = setInterval(() => {
    if (!res.destroyed) res.write(':thump\n\n');
  }, HEARTBEAT_MS);
  heartbeat.unref();
  req.raw.on('close', () => {
    clearInterval(heartbeat);
    hub.disconnect(sub);
  });
}
