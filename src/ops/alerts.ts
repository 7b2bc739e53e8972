/**
 * Alerts to webhooks: a generic JSON payload, or Slack- and Discord-compatible
 * ones. Each delivery is signed (HMAC-SHA256 of `${timestamp}.${body}` with the
 * webhook's secret, in `X-Starling-Signature: sha256=<hex>`, the timestamp in
 * `X-Starling-Timestamp`), has a 5 s deadline, and is retried with exponential
 * backoff a bounded number of times.
 *
 * The queue is in memory, bounded, and per webhook — deliberately not the
 * database job table: alerts matter most exactly when the database is down.
 * The price is that alerts still queued when the process dies are lost.
 */
import { createHmac } from 'node:crypto';
import type { Logger } from 'pino';
import type { ComponentView, IncidentView } from './model.js';
import type { IncidentEvent } from './incidents.js';
import { STARLING_VERSION } from '../version.js';

export interface AlertWebhook {
  url: string;
  kind: 'json' | 'slack' | 'discord';
  secret?: string;
}

export type AlertEvent = 'incident.opened' | 'incident.updated' | 'incident.resolved' | 'slo.alert' | 'slo.resolved';

export interface Alert {
  event: AlertEvent;
  /** One line, for chat: "Incident opened: Posting is failing". */
  summary: string;
  /** The latest update's text, or the SLO figures. */
  detail: string;
  incident?: IncidentView;
  /** The components the alert is about, in their present state. */
  components: ComponentView[];
  /** The public status page. */
  pageUrl: string;
  slo?: { name: string; objective: number; burnRates: Record<string, number>; errorBudgetRemaining: number; alert: string | null };
  at: string;
}

/** The alert for an incident event: what opened, changed or resolved, with the components it names. */
export function incidentAlert(e: IncidentEvent, components: ComponentView[], pageUrl: string, at: string): Alert {
  const verb = e.type === 'incident.opened' ? 'Incident opened' : e.type === 'incident.resolved' ? 'Resolved' : `Incident update (${e.incident.status})`;
  return {
    event: e.type,
    summary: `${verb}: ${e.incident.name}${e.type === 'incident.opened' ? ` (${e.incident.impact})` : ''}`,
    detail: e.update.body,
    incident: e.incident,
    components: components.filter((c) => e.incident.components.includes(c.id)),
    pageUrl,
    at,
  };
}

/** The wait before the next attempt after `attempt` failed ones: base, 2×base, 4×base, … capped (jitter is added on top). */
export function backoffMs(attempt: number, baseMs: number, maxMs: number): number {
  return Math.min(maxMs, baseMs * 2 ** Math.max(0, attempt - 1));
}

export function signature(secret: string, timestamp: string, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')}`;
}

const clip = (s: string, n: number) => (s.length <= n ? s : `${s.slice(0, n - 1)}…`);

const COLORS: Record<string, number> = { critical: 0xd93026, major: 0xe8740c, minor: 0xf1c40f, none: 0x3498db, maintenance: 0x3498db, resolved: 0x2ecc71 };

/** The body for one kind of webhook. */
export function payloadFor(kind: AlertWebhook['kind'], a: Alert): unknown {
  const status = a.incident?.status;
  const impact = a.incident?.impact;
  const facts = [status && `Status: ${status}`, impact && `Impact: ${impact}`, a.components.length && `Components: ${a.components.map((c) => `${c.name} (${c.status.replace(/_/g, ' ')})`).join(', ')}`]
    .filter(Boolean)
    .join(' · ');
  switch (kind) {
    case 'slack':
      return {
        text: `${a.summary} — ${a.pageUrl}`,
        blocks: [
          { type: 'header', text: { type: 'plain_text', text: clip(a.summary, 150) } },
          { type: 'section', text: { type: 'mrkdwn', text: clip(a.detail || a.summary, 3000) } },
          { type: 'context', elements: [{ type: 'mrkdwn', text: clip(`${facts ? `${facts} · ` : ''}<${a.pageUrl}|Status page>`, 3000) }] },
        ],
      };
    case 'discord':
      return {
        content: clip(a.summary, 2000),
        embeds: [
          {
            title: clip(a.incident?.name ?? a.summary, 256),
            description: clip(a.detail || a.summary, 4096),
            url: a.pageUrl,
            color: COLORS[status === 'resolved' || a.event === 'slo.resolved' ? 'resolved' : (impact ?? 'major')] ?? COLORS.major,
            timestamp: a.at,
            fields: [
              ...(status ? [{ name: 'Status', value: status, inline: true }] : []),
              ...(impact ? [{ name: 'Impact', value: impact, inline: true }] : []),
              ...(a.components.length ? [{ name: 'Components', value: clip(a.components.map((c) => `${c.name}: ${c.status.replace(/_/g, ' ')}`).join('\n'), 1024) }] : []),
            ],
          },
        ],
      };
    default:
      return {
        event: a.event,
        at: a.at,
        summary: a.summary,
        detail: a.detail,
        incident: a.incident ?? null,
        components: a.components,
        slo: a.slo ?? null,
        page: { url: a.pageUrl },
      };
  }
}

export interface AlertSenderOptions {
  log?: Pick<Logger, 'warn' | 'info' | 'error'>;
  timeoutMs?: number;
  maxAttempts?: number;
  baseDelayMs?: number;
  maxDelayMs?: number;
  /** Per webhook; the oldest alert is dropped (and counted) when full. */
  maxQueue?: number;
  now?: () => Date;
}

interface Delivery {
  body: string;
  event: AlertEvent;
  attempts: number;
}

export interface AlertStats {
  sent: number;
  failed: number;
  dropped: number;
  retries: number;
}

/** One queue per webhook, delivered in order; a failing webhook does not hold up the others. */
export class AlertSender {
  readonly stats: AlertStats = { sent: 0, failed: 0, dropped: 0, retries: 0 };
  private readonly queues: { hook: AlertWebhook; items: Delivery[]; busy: boolean; timer: NodeJS.Timeout | null }[];
  private stopped = false;
  private readonly idleWaiters: (() => void)[] = [];
  private readonly o: Required<Omit<AlertSenderOptions, 'log'>> & { log: AlertSenderOptions['log'] };

  constructor(webhooks: readonly AlertWebhook[], opts: AlertSenderOptions = {}) {
    this.o = {
      log: opts.log,
      timeoutMs: opts.timeoutMs ?? 5000,
      maxAttempts: opts.maxAttempts ?? 10,
      baseDelayMs: opts.baseDelayMs ?? 1000,
      maxDelayMs: opts.maxDelayMs ?? 60_000,
      maxQueue: opts.maxQueue ?? 200,
      now: opts.now ?? (() => new Date()),
    };
    this.queues = webhooks.map((hook) => ({ hook, items: [], busy: false, timer: null }));
  }

  get webhookCount(): number {
    return this.queues.length;
  }

  get pending(): number {
    return this.queues.reduce((n, q) => n + q.items.length, 0);
  }

  send(alert: Alert): void {
    if (this.stopped) return;
    for (const q of this.queues) {
      const body = JSON.stringify(payloadFor(q.hook.kind, alert));
      q.items.push({ body, event: alert.event, attempts: 0 });
      // Drop the oldest waiting alert, never the one being delivered.
      while (q.items.length > this.o.maxQueue) {
        q.items.splice(q.busy || q.timer ? 1 : 0, 1);
        this.stats.dropped++;
      }
      this.pump(q);
    }
  }

  /** Resolves when every queue is empty, or after `timeoutMs`. For the CLI (which exits after) and tests. */
  async flush(timeoutMs = 30_000): Promise<boolean> {
    if (this.pending === 0) return true;
    return new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(this.pending === 0), timeoutMs);
      timer.unref();
      this.idleWaiters.push(() => {
        clearTimeout(timer);
        resolve(true);
      });
    });
  }

  stop(): void {
    this.stopped = true;
    for (const q of this.queues) if (q.timer) clearTimeout(q.timer);
  }

  private pump(q: (typeof this.queues)[number]): void {
    if (q.busy || q.timer || this.stopped || q.items.length === 0) return;
    q.busy = true;
    const d = q.items[0];
    void this.deliver(q.hook, d).then((outcome) => {
      q.busy = false;
      if (this.stopped) return;
      if (outcome === 'retry' && d.attempts < this.o.maxAttempts) {
        this.stats.retries++;
        const delay = backoffMs(d.attempts, this.o.baseDelayMs, this.o.maxDelayMs);
        // Jitter, so many nodes retrying one receiver do not arrive together.
        q.timer = setTimeout(() => {
          q.timer = null;
          this.pump(q);
        }, delay * (0.8 + Math.random() * 0.4));
        q.timer.unref();
        return;
      }
      const at = q.items.indexOf(d);
      if (at >= 0) q.items.splice(at, 1);
      if (outcome === 'ok') this.stats.sent++;
      else {
        this.stats.failed++;
        this.o.log?.error({ webhook: redact(q.hook.url), event: d.event, attempts: d.attempts }, 'alert delivery failed for good');
      }
      if (this.pending === 0) for (const w of this.idleWaiters.splice(0)) w();
      this.pump(q);
    });
  }

  private async deliver(hook: AlertWebhook, d: Delivery): Promise<'ok' | 'retry' | 'fail'> {
    d.attempts++;
    const timestamp = String(Math.floor(this.o.now().getTime() / 1000));
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      'user-agent': `Starling-Alerts/${STARLING_VERSION}`,
      'x-starling-event': d.event,
      'x-starling-timestamp': timestamp,
    };
    if (hook.secret) headers['x-starling-signature'] = signature(hook.secret, timestamp, d.body);
    try {
      const res = await fetch(hook.url, { method: 'POST', headers, body: d.body, signal: AbortSignal.timeout(this.o.timeoutMs), redirect: 'manual' });
      await res.arrayBuffer().catch(() => undefined);
      if (res.ok) return 'ok';
      this.o.log?.warn({ webhook: redact(hook.url), status: res.status, attempt: d.attempts }, 'alert webhook answered with an error');
      // A client error other than "too many" or "timeout" will not get better by retrying.
      return res.status === 408 || res.status === 429 || res.status >= 500 ? 'retry' : 'fail';
    } catch (err) {
      this.o.log?.warn({ webhook: redact(hook.url), err: (err as Error).message, attempt: d.attempts }, 'alert webhook unreachable');
      return 'retry';
    }
  }
}

/** Webhook URLs carry their secret in the path (Slack, Discord): log the host only. */
function redact(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return 'invalid-url';
  }
}
