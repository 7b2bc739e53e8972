/** The status page's pure rendering, snapshot and signing: escaping, bars, Atom well-formedness, staleness. */
import { describe, expect, it } from 'vitest';
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  collectPageData,
  renderAtom,
  renderLatencySvg,
  renderStatusHtml,
  renderUptimeSvg,
  statusDocuments,
  unknownPageData,
  uptimeDays,
  withFreshness,
  formatPercent,
  type StatusPageData,
} from '../../src/ops/status-render.js';
import { readSnapshot, snapshotPath, writeSnapshot } from '../../src/ops/snapshot.js';
import { publishData, publishStatus, StatusPublisher } from '../../src/ops/publish.js';
import { isInternalAddress, signPayload, validateTargetUrl, verifySignature } from '../../src/ops/subscriptions.js';
import { FakeStatusSource, demoStatus } from '../helpers/status-fake.js';
import { tempDir } from '../helpers/server.js';

const NOW = new Date('2025-03-14T15:00:00.000Z');
const served = { now: NOW, base: '/status/', mode: 'served' as const };

function demo(): StatusPageData {
  return withFreshness(collectPageData(demoStatus(NOW), NOW), NOW, 60_000);
}

const HOSTILE = `<script>alert("x")</script><img src=x onerror=alert(1)> & ]]> '"\u0000\u0007`;

function hostile(): StatusPageData {
  const fake = new FakeStatusSource(() => NOW);
  fake.setState('api', 'major_outage', `reason ${HOSTILE}</style>`);
  const i = fake.openIncident(`Title ${HOSTILE}`, ['api'], `Body ${HOSTILE}`);
  fake.update(i.id, 'identified', `Second ${HOSTILE}`, `op${HOSTILE}`);
  fake.maintenances.push({ id: '9"><b>', name: `M ${HOSTILE}`, body: `MB ${HOSTILE}`, components: ['api'], scheduled_for: NOW.toISOString(), scheduled_until: NOW.toISOString(), status: 'in_progress' });
  fake.page = { ...fake.page, name: `Star${HOSTILE}` };
  return withFreshness(collectPageData(fake, NOW), NOW, 60_000);
}

/**
 * A small XML well-formedness check (no DOMParser in Node): one root, tags
 * balanced and properly nested, attribute values quoted without '<', no raw
 * '<' or bare '&' in text, only the five predefined entities or character
 * references, no characters XML 1.0 forbids.
 */
function checkXml(xml: string): { root: string; elements: string[] } {
  expect(xml).not.toMatch(/[\u0000-\u0008\u000B\u000C\u000E-\u001F]/);
  let s = xml.replace(/^\uFEFF?<\?xml[^?]*\?>\s*/, '');
  const stack: string[] = [];
  const elements: string[] = [];
  let root = '';
  const entity = /^&(?:amp|lt|gt|quot|apos|#\d+|#x[0-9a-fA-F]+);/;
  while (s.length) {
    if (s.startsWith('<')) {
      const m = /^<(\/?)([A-Za-z_][\w.:-]*)((?:\s+[A-Za-z_][\w.:-]*\s*=\s*(?:"[^"<]*"|'[^'<]*'))*)\s*(\/?)>/.exec(s);
      if (!m) throw new Error(`malformed tag at: ${s.slice(0, 80)}`);
      const [all, close, name, attrs, selfClose] = m;
      for (const a of attrs.matchAll(/=\s*(?:"([^"]*)"|'([^']*)')/g)) {
        const v = a[1] ?? a[2];
        if (/&(?!(?:amp|lt|gt|quot|apos|#\d+|#x[0-9a-fA-F]+);)/.test(v)) throw new Error(`bare & in attribute: ${v}`);
      }
      if (close) {
        if (stack.pop() !== name) throw new Error(`unbalanced </${name}>`);
      } else {
        if (!stack.length) {
          if (root) throw new Error('more than one root element');
          root = name;
        }
        elements.push(name);
        if (!selfClose) stack.push(name);
      }
      s = s.slice(all.length);
    } else if (s.startsWith('&')) {
      const m = entity.exec(s);
      if (!m) throw new Error(`bare & at: ${s.slice(0, 40)}`);
      s = s.slice(m[0].length);
    } else {
      const next = s.search(/[<&]/);
      const text = next === -1 ? s : s.slice(0, next);
      if (!stack.length && text.trim()) throw new Error(`text outside the root: ${text.slice(0, 40)}`);
      s = next === -1 ? '' : s.slice(next);
    }
  }
  if (stack.length) throw new Error(`unclosed <${stack.join('>, <')}>`);
  return { root, elements };
}

describe('status page HTML', () => {
  it('escapes hostile incident, component, maintenance and page text everywhere', () => {
    const html = renderStatusHtml(hostile(), served);
    expect(html).not.toMatch(/<script/i);
    expect(html).not.toMatch(/<img/i);
    expect(html).not.toMatch(/<b>/);
    expect(html).not.toContain('onerror=alert(1)>');
    expect(html).not.toContain('\u0000');
    expect(html).toContain('Title &lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;');
    expect(html).toContain('Body &lt;script&gt;');
    expect(html).toContain('Second &lt;script&gt;');
    expect(html).toContain('by op&lt;script&gt;');
    expect(html).toContain('reason &lt;script&gt;');
    expect(html).toContain('M &lt;script&gt;');
    // The only </style> is the real one.
    expect(html.match(/<\/style>/g)).toHaveLength(1);
    // The hostile maintenance id cannot break out of its attribute.
    expect(html).toContain('id="maintenance-9&quot;&gt;&lt;b&gt;"');
  });

  it('has no script at all, landmarks, headings and state words beside the colours', () => {
    const html = renderStatusHtml(demo(), served);
    expect(html).not.toMatch(/<script|javascript:|\son[a-z]+=/i);
    expect(html).toMatch(/^<!doctype html>/);
    expect(html).toContain('<html lang="en">');
    for (const tag of ['<header>', '<main id="main">', '<footer>', '<h1>']) expect(html).toContain(tag);
    expect(html).toContain('prefers-color-scheme:dark');
    expect(html).toContain('name="viewport"');
    // Every component's state is written as words.
    expect(html).toContain('Major outage');
    expect(html).toContain('Degraded performance');
    expect(html.match(/class="state s-ok"><span class="dot" aria-hidden="true"><\/span>Operational/g)).toHaveLength(7);
    // Current incident with every update and its time; maintenance; past incidents.
    expect(html).toContain('Posting is slow: database writes failing');
    expect(html.indexOf('Monitoring</strong>')).toBeLessThan(html.indexOf('Identified</strong>'));
    expect(html).toContain('<time datetime="2025-03-14T14:35:00.000Z">2025-03-14 14:35 UTC</time>');
    expect(html).toContain('Database upgrade to PostgreSQL 16');
    expect(html).toContain('Streaming connections dropped');
    expect(html).toContain('Search results delayed');
    expect(html.match(/No incidents reported\./g)).toHaveLength(12);
    // Links for the served page are under /status/.
    expect(html).toContain('href="/status/api/summary.json"');
    expect(html).toContain('href="/status/feed.atom"');
  });

  it('draws 90 uptime bars per component, each with a title naming the day and its uptime', () => {
    const data = demo();
    const html = renderStatusHtml(data, served);
    const svgs = html.match(/<svg class="uptime-bars"[\s\S]*?<\/svg>/g)!;
    expect(svgs).toHaveLength(9);
    for (const svg of svgs) {
      expect(svg.match(/<rect /g)).toHaveLength(90);
      expect(svg.match(/<title>/g)).toHaveLength(90);
    }
    const days = uptimeDays(data.uptime.database!, NOW);
    const svg = renderUptimeSvg('Database', days);
    expect(svg).toContain('<title>2025-03-14: 96.00 % uptime, worst state major outage</title>');
    expect(svg).toMatch(/class="bar b-critical" x="356"/);
    // Search has no data for its first days: grey bars that say so.
    const search = renderUptimeSvg('Search', uptimeDays(data.uptime.search!, NOW));
    expect(search).toContain('<title>2024-12-15: no data</title>');
    expect(search).toContain('b-nodata');
    // A new node with no history still draws 90 days.
    expect(renderUptimeSvg('API', uptimeDays([], NOW)).match(/<rect /g)).toHaveLength(90);
  });

  it('never rounds a bad day up to 100 %', () => {
    expect(formatPercent(0.99999)).toBe('99.99 %');
    expect(formatPercent(1)).toBe('100 %');
    expect(formatPercent(null)).toBe('no data');
  });

  it('charts response time with axis labels in ms', () => {
    const data = demo();
    const svg = renderLatencySvg(data.latency);
    expect(svg).toMatch(/^<svg class="latency-chart chart-wide"/);
    expect(renderLatencySvg(data.latency, 'narrow')).toMatch(/^<svg class="latency-chart chart-narrow"[^>]*viewBox="0 0 360 200"/);
    expect(svg).toMatch(/>0 ms<\/text>/);
    expect(svg).toMatch(/>500 ms<\/text>/);
    expect(svg).toContain('<path class="line" d="M');
    expect(svg).toContain('UTC</text>');
    expect(renderLatencySvg([])).toBe('');
    expect(renderStatusHtml({ ...data, latency: [] }, served)).toContain('No response-time data yet.');
  });

  it('says "unknown" and since when when the data is stale, never "operational"', () => {
    const fake = new FakeStatusSource(() => NOW);
    fake.lastProbeAt = '2025-03-14T14:50:00.000Z';
    const data = withFreshness(collectPageData(fake, NOW), NOW, 60_000);
    expect(data.summary.status.indicator).toBe('unknown');
    expect(data.summary.freshness).toMatchObject({ stale: true, stale_since: '2025-03-14T14:51:00.000Z' });
    const html = renderStatusHtml(data, served);
    expect(html).toContain(`Status unknown since <time datetime="2025-03-14T14:51:00.000Z">2025-03-14 14:51 UTC</time>: this page's data is stale`);
    expect(html).not.toContain('All Systems Operational');
    expect(html).toContain('Unknown (last known: operational)');
    expect(html).not.toContain('class="state s-ok"');
  });

  it('judges a snapshot by its own probe time even when it claimed to be fresh', () => {
    const live = withFreshness(collectPageData(new FakeStatusSource(() => NOW), NOW), NOW, 60_000);
    expect(live.summary.freshness.stale).toBe(false);
    const later = new Date(NOW.getTime() + 5 * 60_000);
    const old = withFreshness({ ...live, origin: 'snapshot' }, later, 60_000);
    expect(old.summary.status.indicator).toBe('unknown');
    expect(old.summary.freshness.stale_since).toBe('2025-03-14T15:01:00.000Z');
    expect(renderStatusHtml(old, { ...served, now: later })).toContain('served from the last snapshot');
  });

  it('with no data at all says so (and is still a page)', () => {
    const data = withFreshness(unknownPageData(NOW, { name: 'Starling', url: 'http://x/status' }), NOW, 60_000);
    const html = renderStatusHtml(data, served);
    expect(html).toContain('Status unknown: this page has no current data');
    expect(html).toContain('No component states are known.');
    expect(statusDocuments(data)['status.json'].status.indicator).toBe('unknown');
  });
});

describe('status JSON', () => {
  it('serves the summary as given and the Statuspage sub-documents', () => {
    const fake = demoStatus(NOW);
    const data = withFreshness(collectPageData(fake, NOW), NOW, 60_000);
    const docs = statusDocuments(data);
    expect(docs['summary.json']).toEqual(fake.summary());
    expect(Object.keys(docs['status.json'])).toEqual(['page', 'status']);
    expect(docs['components.json'].components).toHaveLength(9);
    expect(docs['incidents.json'].incidents.map((i) => i.status)).toEqual(['monitoring', 'resolved', 'resolved']);
    expect(docs['incidents/unresolved.json'].incidents).toHaveLength(1);
    expect(docs['scheduled-maintenances/upcoming.json'].scheduled_maintenances).toHaveLength(1);
    expect(docs['scheduled-maintenances/active.json'].scheduled_maintenances).toHaveLength(0);
  });
});

describe('Atom feed', () => {
  it('is well-formed Atom 1.0 with one entry per incident and maintenance, even with hostile text', () => {
    for (const data of [demo(), hostile()]) {
      const xml = renderAtom(data, { pageUrl: 'https://social.example/status', feedUrl: 'https://social.example/status/feed.atom' });
      const { root, elements } = checkXml(xml);
      expect(root).toBe('feed');
      expect(xml).toContain('<feed xmlns="http://www.w3.org/2005/Atom">');
      for (const el of ['id', 'title', 'updated', 'author']) expect(elements).toContain(el);
      const entries = xml.match(/<entry>[\s\S]*?<\/entry>/g)!;
      expect(entries.length).toBe(data.summary.incidents.length + data.pastIncidents.length + data.summary.scheduled_maintenances.length);
      for (const e of entries) {
        expect(e).toMatch(/<id>https:\/\/social\.example\/status#(incident|maintenance)-[^<]+<\/id>/);
        expect(e).toMatch(/<updated>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z<\/updated>/);
        expect(e).toMatch(/<title>[^<]+<\/title>/);
      }
      expect(xml).toMatch(/<feed[^>]*>[\s\S]*<updated>\d{4}-\d\d-\d\dT[\d:.]+Z<\/updated>/);
    }
    const xml = renderAtom(hostile(), { pageUrl: 'https://social.example/status' });
    expect(xml).not.toMatch(/<script|<img/);
    // The content is HTML escaped once for XML: decoding it yields escaped (inert) HTML.
    expect(xml).toContain('&amp;lt;script&amp;gt;');
  });

  it('carries every update of an incident in its entry, newest first', () => {
    const xml = renderAtom(demo(), { pageUrl: 'https://social.example/status' });
    const entry = xml.match(/<entry><id>[^<]*#incident-1001<\/id>[\s\S]*?<\/entry>/)![0];
    expect(entry).toContain('Posting is slow: database writes failing');
    const order = ['Monitoring', 'Identified', 'Investigating'].map((w) => entry.indexOf(`&lt;strong&gt;${w}&lt;/strong&gt; (`));
    expect(order.every((n) => n > 0)).toBe(true);
    expect([...order].sort((a, b) => a - b)).toEqual(order);
  });
});

describe('snapshot and static copy', () => {
  it('writes the snapshot atomically and reads it back as a snapshot; a corrupt file is no snapshot', async () => {
    const dir = tempDir();
    try {
      expect(readSnapshot(dir.path)).toBeNull();
      const data = demo();
      await writeSnapshot(dir.path, data, NOW);
      expect(readdirSync(dir.path)).toEqual(['status-snapshot.json']);
      const back = readSnapshot(dir.path)!;
      expect(back.origin).toBe('snapshot');
      expect(back.summary).toEqual(data.summary);
      writeFileSync(snapshotPath(dir.path), '{"version":1,"data":{"summ');
      expect(readSnapshot(dir.path)).toBeNull();
    } finally {
      dir.remove();
    }
  });

  it('publishes a complete static copy with relative links, and rewrites nothing when nothing changed', async () => {
    const dir = tempDir();
    try {
      const fake = demoStatus(NOW, { id: 'starling', name: 'Starling', url: 'https://social.example' });
      await publishStatus(fake, dir.path, { now: NOW });
      const html = readFileSync(join(dir.path, 'index.html'), 'utf8');
      expect(html).toContain('href="api/summary.json"');
      expect(html).toContain('href="feed.atom"');
      expect(html).not.toContain('href="/');
      expect(html).toContain('static copy of the status page');
      expect(JSON.parse(readFileSync(join(dir.path, 'api/summary.json'), 'utf8'))).toEqual(fake.summary());
      for (const f of ['api/v2/summary.json', 'api/status.json', 'api/components.json', 'api/incidents.json', 'api/scheduled-maintenances.json']) {
        expect(() => JSON.parse(readFileSync(join(dir.path, f), 'utf8'))).not.toThrow();
      }
      expect(readFileSync(join(dir.path, 'feed.atom'), 'utf8')).toContain('<id>https://social.example/status#incident-1001</id>');
      const data = withFreshness(collectPageData(fake, NOW), NOW, 60_000);
      expect(await publishData(data, dir.path)).toBe(false);
      fake.setState('api', 'partial_outage');
      expect(await publishData(withFreshness(collectPageData(fake, NOW), NOW, 60_000), dir.path)).toBe(true);
      expect(readdirSync(dir.path).filter((f) => f.endsWith('.tmp'))).toEqual([]);
    } finally {
      dir.remove();
    }
  });

  it('the continuous publisher writes on a change of summary and coalesces offers', async () => {
    const dir = tempDir();
    try {
      let clock = NOW.getTime();
      const fake = new FakeStatusSource(() => new Date(clock));
      mkdirSync(join(dir.path, 'data'));
      const pub = new StatusPublisher({ dataDir: join(dir.path, 'data'), publishDir: join(dir.path, 'site'), log: { warn() {}, debug() {} } as never, now: () => new Date(clock), refreshMs: 30_000 });
      const data = () => collectPageData(fake, new Date(clock));
      expect(pub.due(data())).toBe(true);
      await Promise.all([pub.offer(data()), pub.offer(data()), pub.offer(data())]);
      await pub.idle();
      expect(readSnapshot(join(dir.path, 'data'))!.summary.status.indicator).toBe('none');
      clock += 1000;
      fake.probed();
      expect(pub.due(data())).toBe(false);
      fake.setState('bus', 'major_outage');
      expect(pub.due(data())).toBe(true);
      await pub.offer(data());
      expect(readSnapshot(join(dir.path, 'data'))!.summary.status.indicator).toBe('critical');
      expect(readFileSync(join(dir.path, 'site', 'index.html'), 'utf8')).toContain('Major outage');
      clock += 31_000;
      expect(pub.due(data())).toBe(true);
    } finally {
      dir.remove();
    }
  });
});

describe('subscription signing and targets', () => {
  it('signs timestamp.body with HMAC-SHA256 and verifies within the tolerance', () => {
    const sig = signPayload('s3cret', '1700000000', '{"a":1}');
    expect(sig).toMatch(/^sha256=[0-9a-f]{64}$/);
    expect(verifySignature('s3cret', '1700000000', '{"a":1}', sig, 1700000000_000)).toBe(true);
    expect(verifySignature('s3cret', '1700000000', '{"a":2}', sig, 1700000000_000)).toBe(false);
    expect(verifySignature('other', '1700000000', '{"a":1}', sig, 1700000000_000)).toBe(false);
    expect(verifySignature('s3cret', '1700000000', '{"a":1}', sig, 1700001000_000)).toBe(false);
  });

  it('accepts only http(s) URLs, and no internal addresses unless allowed', () => {
    expect(() => validateTargetUrl('ftp://example.com/x', true)).toThrow(/http or https/);
    expect(() => validateTargetUrl('not a url', true)).toThrow(/not a valid URL/);
    expect(() => validateTargetUrl('https://u:p@example.com/', true)).toThrow(/credentials/);
    expect(() => validateTargetUrl('http://127.0.0.1:9/hook', false)).toThrow(/public address/);
    expect(() => validateTargetUrl('http://[::1]/hook', false)).toThrow(/public address/);
    expect(() => validateTargetUrl('http://169.254.169.254/latest', false)).toThrow(/public address/);
    expect(() => validateTargetUrl('http://localhost/x', false)).toThrow(/public address/);
    expect(validateTargetUrl('http://127.0.0.1:9/hook', true).toString()).toBe('http://127.0.0.1:9/hook');
    expect(validateTargetUrl('https://hooks.example.com/a#frag', false).toString()).toBe('https://hooks.example.com/a');
    for (const ip of ['10.1.2.3', '172.20.0.1', '192.168.1.1', '::ffff:127.0.0.1', 'fd00::1', 'fe80::1', '0.0.0.0']) expect(isInternalAddress(ip)).toBe(true);
    for (const ip of ['93.184.216.34', '2606:2800:220:1::1']) expect(isInternalAddress(ip)).toBe(false);
  });
});
