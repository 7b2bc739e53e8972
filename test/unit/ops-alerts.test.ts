/** Alert payloads, signatures and delivery with retries, against a real HTTP receiver on 127.0.0.1. */
import { createHmac } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { AlertSender, backoffMs, payloadFor, signature, type Alert } from '../../src/ops/alerts.js';
import type { IncidentView } from '../../src/ops/model.js';

const incident: IncidentView = {
  id: '1913000000000000001',
  name: 'Posting is failing',
  status: 'investigating',
  impact: 'critical',
  source: 'auto',
  components: ['posting'],
  created_at: '2025-01-01T00:00:00.000Z',
  updated_at: '2025-01-01T00:00:00.000Z',
  resolved_at: null,
  incident_updates: [{ id: '1913000000000000002', status: 'investigating', body: 'Posting is unavailable.', created_at: '2025-01-01T00:00:00.000Z', author: 'system' }],
};

const alert: Alert = {
  event: 'incident.opened',
  summary: 'Incident opened: Posting is failing (critical)',
  detail: 'Posting is unavailable.',
  incident,
  components: [{ id: 'posting', name: 'Posting', status: 'major_outage', since: incident.created_at, updated_at: incident.created_at, reason: 'HTTP 500' }],
  pageUrl: 'https://example.test/status',
  at: '2025-01-01T00:00:01.000Z',
};

interface Hit {
  headers: IncomingHttpHeaders;
  body: string;
  at: number;
}

let server: Server | null = null;
afterEach(async () => {
  await new Promise((r) => (server ? server.close(r) : r(undefined)));
  server = null;
});

/** A receiver that answers each request with the next status from `answers` (the last one repeats). */
function receiver(answers: number[]): Promise<{ url: string; hits: Hit[] }> {
  const hits: Hit[] = [];
  server = createServer((req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      hits.push({ headers: req.headers, body, at: Date.now() });
      res.writeHead(answers[Math.min(hits.length - 1, answers.length - 1)]).end();
    });
  });
  return new Promise((resolve) => server!.listen(0, '127.0.0.1', () => resolve({ url: `http://127.0.0.1:${(server!.address() as { port: number }).port}/hook`, hits })));
}

describe('payloads', () => {
  it('are generic JSON, Slack-compatible or Discord-compatible', () => {
    const json = payloadFor('json', alert) as Record<string, unknown>;
    expect(json).toMatchObject({ event: 'incident.opened', incident: { id: incident.id }, page: { url: 'https://example.test/status' } });
    const slack = payloadFor('slack', alert) as { text: string; blocks: { type: string }[] };
    expect(slack.text).toContain('Posting is failing');
    expect(slack.blocks.map((b) => b.type)).toEqual(['header', 'section', 'context']);
    const discord = payloadFor('discord', alert) as { content: string; embeds: { title: string; url: string; color: number; fields: { name: string }[] }[] };
    expect(discord.content).toContain('Posting is failing');
    expect(discord.embeds[0]).toMatchObject({ title: 'Posting is failing', url: 'https://example.test/status' });
    expect(discord.embeds[0].fields.map((f) => f.name)).toEqual(['Status', 'Impact', 'Components']);
  });

  it('are signed over timestamp and body', () => {
    const expected = `sha256=${createHmac('sha256', 'k').update('1700000000.{"a":1}').digest('hex')}`;
    expect(signature('k', '1700000000', '{"a":1}')).toBe(expected);
  });
});

describe('delivery', () => {
  it('signs each attempt and retries with growing delays until the receiver answers', async () => {
    const { url, hits } = await receiver([503, 503, 204]);
    const sender = new AlertSender([{ url, kind: 'json', secret: 's3cret' }], { baseDelayMs: 50 });
    sender.send(alert);
    expect(await sender.flush(5000)).toBe(true);
    expect(hits).toHaveLength(3);
    expect(sender.stats).toMatchObject({ sent: 1, failed: 0, retries: 2 });
    for (const h of hits) {
      const ts = String(h.headers['x-starling-timestamp']);
      expect(h.headers['x-starling-signature']).toBe(signature('s3cret', ts, h.body));
      expect(h.headers['content-type']).toBe('application/json');
      expect(h.headers['x-starling-event']).toBe('incident.opened');
    }
    // It waited between attempts (at least the first backoff, less jitter).
    expect(hits[1].at - hits[0].at).toBeGreaterThanOrEqual(35);
    sender.stop();
  });

  it('backs off exponentially, up to a cap', () => {
    expect([1, 2, 3, 4, 5, 6, 7, 8].map((n) => backoffMs(n, 1000, 60_000))).toEqual([1000, 2000, 4000, 8000, 16_000, 32_000, 60_000, 60_000]);
  });

  it('gives up after a bounded number of attempts, and at once on a client error', async () => {
    const { url, hits } = await receiver([500]);
    const sender = new AlertSender([{ url, kind: 'slack' }], { baseDelayMs: 5, maxAttempts: 3 });
    sender.send(alert);
    await sender.flush(5000);
    expect(hits).toHaveLength(3);
    expect(sender.stats.failed).toBe(1);
    expect(hits[0].headers['x-starling-signature']).toBeUndefined();
    sender.stop();

    const other = await receiverAgain([400]);
    const s2 = new AlertSender([{ url: other.url, kind: 'discord' }], { baseDelayMs: 5, maxAttempts: 5 });
    s2.send(alert);
    await s2.flush(5000);
    expect(other.hits).toHaveLength(1);
    expect(s2.stats.failed).toBe(1);
    s2.stop();
    await new Promise((r) => other.server.close(r));
  });

  it('keeps a bounded queue and retries an unreachable receiver without blocking the caller', async () => {
    // Nothing listens on this port (it was just freed).
    const probe = await receiver([204]);
    const deadUrl = probe.url;
    await new Promise((r) => server!.close(r));
    server = null;
    const sender = new AlertSender([{ url: deadUrl, kind: 'json' }], { baseDelayMs: 10_000, maxQueue: 3 });
    for (let i = 0; i < 10; i++) sender.send({ ...alert, summary: `#${i}` });
    expect(sender.pending).toBeLessThanOrEqual(3);
    expect(sender.stats.dropped).toBeGreaterThanOrEqual(7);
    sender.stop();
  });
});

async function receiverAgain(answers: number[]): Promise<{ url: string; hits: Hit[]; server: Server }> {
  const hits: Hit[] = [];
  const s = createServer((req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      hits.push({ headers: req.headers, body, at: Date.now() });
      res.writeHead(answers[Math.min(hits.length - 1, answers.length - 1)]).end();
    });
  });
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  return { url: `http://127.0.0.1:${(s.address() as { port: number }).port}/hook`, hits, server: s };
}
