/**
 * Is the platform working? Four signals, each cleared by recovery:
 * requests failing (network errors and 5xx), the server refusing for a while
 * in its own words (a 503 saying read-only mode or too busy: it answered, so
 * it is not "unreachable"), the live stream being down, and the status page's
 * summary.json reporting an incident. The banner reads this.
 */
import { createStore } from './store';
import type { StatusSummary } from './types';

export interface Health {
  /** The last request to the server failed at the network or with a 5xx. */
  requestsFailing: boolean;
  /** The browser says it is offline. */
  offline: boolean;
  /** The streaming connection has been down for a while. */
  streamDown: boolean;
  /**
   * The server answered a request with a refusal it explained (503 + error JSON): its words, and whether a write
   * was refused. Cleared by a later success of the same kind (any write clears it), or once the server's
   * Retry-After (at least 10 s) has passed without another refusal.
   */
  refusal: { message: string; write: boolean } | null;
  /** What /status/api/summary.json reports when its indicator is not 'none'. */
  incident: { indicator: string; description: string; incidents: string[] } | null;
}

export const health = createStore<Health>({
  requestsFailing: false,
  offline: typeof navigator !== 'undefined' && navigator.onLine === false,
  streamDown: false,
  refusal: null,
  incident: null,
});

const listeners = new Set<() => void>();
/** Called when the server answers again after failures: the outbox and the stream retry at once. */
export function onRecovery(fn: () => void): () => void {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

export function isDegraded(h: Health = health.get()): boolean {
  return h.requestsFailing || h.offline || h.streamDown || h.refusal !== null || h.incident !== null;
}

/**
 * The outcome of a request: `ok` if the server answered (anything but a network error or a 5xx). `succeeded`
 * when it answered 2xx, saying whether the request was a write: that ends a refusal of its kind.
 */
export function reportRequest(ok: boolean, succeeded?: { write: boolean }): void {
  const r = health.get().refusal;
  if (succeeded && r && (succeeded.write || !r.write)) clearRefusal();
  const was = health.get().requestsFailing;
  if (was === !ok) return;
  health.set((h) => ({ ...h, requestsFailing: !ok }));
  if (ok) for (const fn of [...listeners]) fn();
  schedule();
}

/** "A: b. More advice." → "A: b." (a message without a full stop is its own first sentence). */
export function firstSentence(message: string): string {
  const m = /^.*?[.!?](?=\s|$)/.exec(message.trim());
  return m ? m[0] : message.trim();
}

let refusalTimer: ReturnType<typeof setTimeout> | null = null;
function clearRefusal(): void {
  if (refusalTimer) clearTimeout(refusalTimer);
  refusalTimer = null;
  if (health.get().refusal) health.set((h) => ({ ...h, refusal: null }));
}

/** The server refused a request and said why (503 + error JSON): it was reached, and what it said is shown. */
export function reportRefusal(message: string, opts: { write: boolean; retryAfterMs: number | null }): void {
  reportRequest(true);
  // A refused write says more than a refused read (posting is what people lose): a read does not replace it.
  if (health.get().refusal?.write && !opts.write) return;
  health.set((h) => ({ ...h, refusal: { message, write: opts.write } }));
  if (refusalTimer) clearTimeout(refusalTimer);
  refusalTimer = setTimeout(clearRefusal, Math.max(10_000, opts.retryAfterMs ?? 0));
}

let streamTimer: ReturnType<typeof setTimeout> | null = null;
/** The stream reports its state; a drop is shown only if it lasts (reconnects are normally quick). */
export function reportStream(up: boolean, graceMs = 4000): void {
  if (up) {
    if (streamTimer) clearTimeout(streamTimer);
    streamTimer = null;
    if (health.get().streamDown) health.set((h) => ({ ...h, streamDown: false }));
    return;
  }
  if (streamTimer || health.get().streamDown) return;
  streamTimer = setTimeout(() => {
    streamTimer = null;
    health.set((h) => ({ ...h, streamDown: true }));
    schedule();
  }, graceMs);
}

/** The stream is not wanted (signed out): it is not "down". */
export function clearStream(): void {
  if (streamTimer) clearTimeout(streamTimer);
  streamTimer = null;
  if (health.get().streamDown) health.set((h) => ({ ...h, streamDown: false }));
}

// --- Probing: the status summary now and then; the server's health check while degraded.

let probeTimer: ReturnType<typeof setTimeout> | null = null;
let summaryMissing = false;
let lastSummaryAt = 0;

async function fetchSummary(): Promise<void> {
  lastSummaryAt = Date.now();
  let res: Response;
  try {
    res = await fetch('/status/api/summary.json', { cache: 'no-store', headers: { Accept: 'application/json' } });
  } catch {
    reportRequest(false);
    return;
  }
  if (res.status >= 500) {
    reportRequest(false);
    return;
  }
  reportRequest(true);
  // No status page on this server (yet): not a problem, and nothing to show.
  if (!res.ok) {
    summaryMissing = res.status === 404;
    if (health.get().incident) health.set((h) => ({ ...h, incident: null }));
    return;
  }
  summaryMissing = false;
  try {
    const s = (await res.json()) as StatusSummary;
    const indicator = s?.status?.indicator;
    if (typeof indicator !== 'string') return;
    const incident =
      // 'unknown' (the page has no fresh data yet, e.g. just after a start) is not an incident to announce.
      indicator === 'none' || indicator === 'unknown'
        ? null
        : {
            indicator,
            description: String(s.status.description || 'Some parts of Starling are not working normally'),
            incidents: (s.incidents ?? []).filter((i) => i && i.status !== 'resolved' && i.status !== 'postmortem').map((i) => String(i.name)),
          };
    const cur = health.get().incident;
    if (JSON.stringify(cur) !== JSON.stringify(incident)) health.set((h) => ({ ...h, incident }));
  } catch {
    /* not JSON: ignore */
  }
}

async function probeServer(): Promise<void> {
  try {
    const res = await fetch('/health', { cache: 'no-store' });
    reportRequest(res.status < 500);
  } catch {
    reportRequest(false);
  }
}

function schedule(): void {
  if (typeof window === 'undefined') return;
  if (probeTimer) clearTimeout(probeTimer);
  const h = health.get();
  const failing = h.requestsFailing || h.offline;
  // While failing: probe the server every 3 s. Otherwise the summary every minute (every 15 s during an incident, every 5 min if there is none).
  const delay = failing ? 3000 : h.incident || h.streamDown ? 15_000 : summaryMissing ? 300_000 : 60_000;
  probeTimer = setTimeout(() => void tick(), delay);
}

async function tick(): Promise<void> {
  const h = health.get();
  if (h.requestsFailing || h.offline) await probeServer();
  if (!health.get().requestsFailing && Date.now() - lastSummaryAt > 10_000) await fetchSummary();
  schedule();
}

let started = false;
export function startHealth(): void {
  if (started || typeof window === 'undefined') return;
  started = true;
  window.addEventListener('online', () => {
    health.set((h) => ({ ...h, offline: false }));
    void tick();
  });
  window.addEventListener('offline', () => {
    health.set((h) => ({ ...h, offline: true }));
    schedule();
  });
  void fetchSummary().finally(schedule);
}
