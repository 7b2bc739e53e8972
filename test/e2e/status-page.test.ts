/**
 * The status page in a real browser (Debian's chromium through playwright-core)
 * with JavaScript disabled: it renders, shows every component with its state
 * and 90 uptime bars, and looks right at desktop and phone widths in light
 * and dark schemes. Screenshots go to docs/screenshots/ with STARLING_SCREENSHOTS=1 (test/e2e/web-support.ts).
 *
 * The ops engine is stood in for by a fake StatusSource with a realistic
 * page (an open incident, maintenance, past incidents, history, latency).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdirSync } from 'node:fs';
import { chromium, type Browser, type BrowserContextOptions } from 'playwright-core';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { demoStatus } from '../helpers/status-fake.js';
import { SCREENSHOTS } from './web-support.js';

const SHOTS = SCREENSHOTS;
let server: TestServer;
let browser: Browser;

beforeAll(async () => {
  // The fake stands in for the ops engine, which stays off: nothing else moves while the screenshots are taken.
  server = await startTestServer({ ops: { enabled: false } });
  const fake = demoStatus(new Date(), { id: 'starling', name: 'Starling', url: `${server.url}/status` });
  server.app.statusPage.setSource(() => fake);
  browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
  mkdirSync(SHOTS, { recursive: true });
});

afterAll(async () => {
  await browser?.close();
  await server?.stop();
});

const VIEWPORTS = {
  desktop: { viewport: { width: 1280, height: 900 }, deviceScaleFactor: 1 },
  phone: { viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true },
} satisfies Record<string, BrowserContextOptions>;

async function open(kind: keyof typeof VIEWPORTS, colorScheme: 'light' | 'dark') {
  const context = await browser.newContext({ ...VIEWPORTS[kind], colorScheme, javaScriptEnabled: false });
  const page = await context.newPage();
  const errors: string[] = [];
  page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
  const res = await page.goto(`${server.url}/status`);
  return { context, page, res: res!, errors };
}

describe('status page in chromium, JavaScript disabled', () => {
  it('renders every component with its state and 90 uptime bars, the incident and the chart', async () => {
    const { context, page, res, errors } = await open('desktop', 'light');
    try {
      expect(res.status()).toBe(200);
      expect(res.headers()['content-security-policy']).toBe("default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:");
      expect(await page.locator('script').count()).toBe(0);
      await expect.poll(() => page.locator('h1').textContent()).toBe('Starling status');
      expect(await page.getByRole('main').count()).toBe(1);
      expect(await page.getByRole('heading', { level: 2, name: 'Components' }).isVisible()).toBe(true);

      const components = page.locator('li.component');
      expect(await components.count()).toBe(9);
      for (const name of ['API', 'Posting', 'Timelines', 'Streaming', 'Search', 'Notifications', 'Web app', 'Database', 'Event bus']) {
        const item = components.filter({ has: page.getByRole('heading', { level: 3, name, exact: true }) });
        expect(await item.isVisible()).toBe(true);
        expect(await item.locator('svg.uptime-bars rect').count()).toBe(90);
        const box = await item.locator('svg.uptime-bars').boundingBox();
        expect(box!.width).toBeGreaterThan(600);
        expect(box!.height).toBeGreaterThan(20);
      }
      expect(await components.filter({ hasText: 'Database' }).locator('.state').textContent()).toBe('Major outage');
      expect(await components.filter({ hasText: 'Posting' }).locator('.state').textContent()).toBe('Degraded performance');

      expect(await page.locator('.banner').textContent()).toBe('Major Service Outage');
      const incident = page.getByRole('article').filter({ hasText: 'Posting is slow: database writes failing' }).first();
      expect(await incident.isVisible()).toBe(true);
      expect(await incident.locator('ol.timeline li').count()).toBe(3);
      expect(await page.locator('svg.chart-wide').isVisible()).toBe(true);
      expect(await page.locator('svg.chart-narrow').isVisible()).toBe(false);
      expect(await page.locator('svg.chart-wide text', { hasText: ' ms' }).count()).toBe(3);
      // The past incidents' timelines open without JavaScript (<details>).
      const past = page.locator('details').first();
      await past.locator('summary').click();
      expect(await past.locator('ol.timeline li').first().isVisible()).toBe(true);
      expect(errors).toEqual([]);
      await page.screenshot({ path: `${SHOTS}/status-desktop-light.png`, fullPage: true });
    } finally {
      await context.close();
    }
  });

  it('follows the dark colour scheme', async () => {
    const { context, page } = await open('desktop', 'dark');
    try {
      // Playwright's evaluate runs in its own world, so it works with the page's JavaScript off.
      expect(await page.locator('body').evaluate((b) => getComputedStyle(b).backgroundColor)).toBe('rgb(13, 17, 23)');
      expect(await page.locator('.banner').evaluate((b) => getComputedStyle(b).color)).toBe('rgb(255, 255, 255)');
      await page.screenshot({ path: `${SHOTS}/status-desktop-dark.png`, fullPage: true });
    } finally {
      await context.close();
    }
  });

  for (const scheme of ['light', 'dark'] as const) {
    it(`fits a phone's width (${scheme})`, async () => {
      const { context, page } = await open('phone', scheme);
      try {
        // Nothing wider than the screen: no sideways scrolling.
        const widest = await page.locator('main, header, footer, li.component, svg, article').evaluateAll((els) => Math.max(...els.map((e) => e.getBoundingClientRect().right)));
        expect(widest).toBeLessThanOrEqual(390);
        expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
        for (const svg of await page.locator('svg.uptime-bars').all()) {
          const box = (await svg.boundingBox())!;
          expect(box.x).toBeGreaterThanOrEqual(0);
          expect(box.x + box.width).toBeLessThanOrEqual(390);
        }
        expect(await page.locator('li.component').first().isVisible()).toBe(true);
        // The phone gets the narrow drawing of the chart, so its labels stay readable.
        expect(await page.locator('svg.chart-narrow').isVisible()).toBe(true);
        expect(await page.locator('svg.chart-wide').isVisible()).toBe(false);
        await page.screenshot({ path: `${SHOTS}/status-phone-${scheme}.png`, fullPage: true });
      } finally {
        await context.close();
      }
    });
  }
});
