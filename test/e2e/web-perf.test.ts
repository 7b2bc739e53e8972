/**
 * How big and how fast the web app is: the built bundle's size (raw and gzip,
 * all of it and what the first screen loads), and the time to first timeline
 * in chromium — from navigation start to the home timeline's first page on
 * screen (the app's `starling:first-timeline` performance mark), cold (a new
 * browser context each time: no cache), against a local server. Run it alone
 * with `npm run perf:web`; the figures go in docs/PERFORMANCE.md.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser } from 'playwright-core';
import { createUser, startTestServer, type TestServer } from '../helpers/server.js';
import { ConsoleWatch, ROOT, ensureWebBuilt, haveChromium, launch } from './web-support.js';

const RUNS = 7;
const kb = (n: number) => `${(n / 1024).toFixed(1)} KB`;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

describe.skipIf(!haveChromium)('web app performance', () => {
  let server: TestServer;
  let browser: Browser;
  let session: string;

  beforeAll(async () => {
    await ensureWebBuilt();
    server = await startTestServer();
    const reader = await createUser(server.url, 'reader');
    // A home timeline with a full first page (20 posts from two followed accounts).
    for (const name of ['writer1', 'writer2']) {
      const w = await createUser(server.url, name);
      await reader.client.v1.accounts.$select(w.id).follow();
      for (let i = 0; i < 15; i++) await w.client.v1.statuses.create({ status: `Post ${i} by @${name}, with a #tag and a link https://example.com/${i}` });
    }
    const account = await reader.client.v1.accounts.verifyCredentials();
    session = JSON.stringify({ token: reader.token, account: { ...account, acct: account.acct, display_name: account.displayName } });
    browser = await launch();
  });

  afterAll(async () => {
    await browser?.close();
    await server?.stop();
  });

  it('reports the built bundle size', () => {
    const dir = join(ROOT, 'dist/web');
    const html = readFileSync(join(dir, 'index.html'), 'utf8');
    const files = readdirSync(join(dir, 'assets')).map((f) => {
      const body = readFileSync(join(dir, 'assets', f));
      return { f, raw: body.length, gz: gzipSync(body, { level: 9 }).length, initial: html.includes(`/assets/${f}`) };
    });
    const sum = (xs: typeof files, k: 'raw' | 'gz') => xs.reduce((n, x) => n + x[k], 0);
    const initial = files.filter((x) => x.initial);
    console.log(
      [
        'web bundle (dist/web/assets):',
        ...files.map((x) => `  ${x.f.padEnd(34)} ${kb(x.raw).padStart(10)} raw ${kb(x.gz).padStart(9)} gzip${x.initial ? '  (first screen)' : ''}`),
        `  first screen (index.html's scripts and styles): ${kb(sum(initial, 'raw'))} raw, ${kb(sum(initial, 'gz'))} gzip`,
        `  everything: ${kb(sum(files, 'raw'))} raw, ${kb(sum(files, 'gz'))} gzip`,
      ].join('\n'),
    );
    // A guard, not a target: the first screen stays well under 150 KB gzip.
    expect(sum(initial, 'gz')).toBeLessThan(150 * 1024);
  });

  it('reports the time to first timeline, cold', async () => {
    const watch = new ConsoleWatch();
    const firstTimeline: number[] = [];
    const dcl: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      const ctx = await browser.newContext({ viewport: { width: 1280, height: 860 } });
      await ctx.addInitScript((s) => localStorage.setItem('starling.session.v1', s), session);
      const page = watch.watch(await ctx.newPage(), `run${i}`);
      await page.goto(`${server.url}/`);
      await page.waitForFunction(() => performance.getEntriesByName('starling:first-timeline').length > 0, undefined, { timeout: 15_000 });
      const t = await page.evaluate(() => {
        const nav = performance.getEntriesByType('navigation')[0] as PerformanceNavigationTiming;
        return { mark: performance.getEntriesByName('starling:first-timeline')[0].startTime, dcl: nav.domContentLoadedEventEnd, articles: document.querySelectorAll('article').length };
      });
      expect(t.articles).toBe(20);
      firstTimeline.push(t.mark);
      dcl.push(t.dcl);
      await ctx.close();
    }
    console.log(
      `time to first timeline (chromium, cold, ${RUNS} runs, 20 posts): median ${median(firstTimeline).toFixed(0)} ms, ` +
        `min ${Math.min(...firstTimeline).toFixed(0)} ms, max ${Math.max(...firstTimeline).toFixed(0)} ms; ` +
        `DOMContentLoaded median ${median(dcl).toFixed(0)} ms`,
    );
    expect(watch.errors).toEqual([]);
    expect(median(firstTimeline)).toBeLessThan(3000);
  }, 90_000);
});
