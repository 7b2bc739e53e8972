/**
 * The operations page in chromium: the link is in the navigation only for
 * administrators; someone else who opens /ops is told it is for
 * administrators; an administrator grants the web app admin:read once (a
 * second trip through the OAuth page) and then sees the charts (SVG with
 * titles and text summaries), the SLOs and the components. No unexpected
 * console errors. Writes docs/screenshots/web-ops-light-wide.png.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { createUser, eventually, startTestServer, type TestServer } from '../helpers/server.js';
import { ConsoleWatch, SCREENSHOTS, ensureWebBuilt, haveChromium, launch, newContext, signInInUi } from './web-support.js';

const PASSWORD = 'correct horse battery';

describe.skipIf(!haveChromium)('operations page in chromium', () => {
  let server: TestServer;
  let browser: Browser;
  const watch = new ConsoleWatch();

  beforeAll(async () => {
    await ensureWebBuilt();
    server = await startTestServer({ ops: { probeIntervalSeconds: 0.5, staleAfterSeconds: 30 } });
    const admin = await createUser(server.url, 'opsboss');
    await createUser(server.url, 'notboss');
    await server.ctx.db.updateTable('users').set({ role: 'admin' }).where('account_id', '=', admin.id).execute();
    // Some traffic for the charts, and a posting probe that has reported.
    for (let i = 0; i < 20; i++) await fetch(`${server.url}/api/v1/timelines/public`);
    await eventually(async () => server.ops.latency('posting').length > 0, 15_000);
    browser = await launch();
    // The API's 403 (who is not an administrator, or a token without admin:read) is the browser's console error by design.
    watch.allow(/status of 403.*\/api\/v1\/admin\/starling\/ops/);
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await server?.stop();
  });

  const heading = (page: Page, name: string) => page.getByRole('heading', { name, level: 1 });

  it('tells someone who is not an administrator that the page is not for them', async () => {
    const ctx = await newContext(browser);
    const page = watch.watch(await ctx.newPage(), 'notboss');
    await signInInUi(page, server.url, 'notboss', PASSWORD);
    await expect(page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Operations' }).count()).resolves.toBe(0);
    await page.goto(`${server.url}/ops`);
    await expect.poll(() => page.getByText('Only administrators can see this page').count(), { timeout: 10_000 }).toBe(1);
    expect(await page.locator('svg[role="img"]').count()).toBe(0);
    await ctx.close();
  });

  it('shows an administrator the charts, SLOs and components', async () => {
    const ctx = await newContext(browser);
    const page = watch.watch(await ctx.newPage(), 'opsboss');
    await signInInUi(page, server.url, 'opsboss', PASSWORD);
    const link = page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Operations' });
    await expect.poll(() => link.count(), { timeout: 10_000 }).toBe(1);
    await link.click();
    await expect.poll(() => heading(page, 'Operations').count()).toBe(1);

    // The sign-in token has no admin:read: the page asks for it once, through the OAuth page.
    const allow = page.getByRole('button', { name: 'Allow access to operations data' });
    await expect.poll(() => allow.count(), { timeout: 10_000 }).toBe(1);
    await allow.click();
    await page.waitForURL(/\/oauth\/authorize\?/);
    expect(new URL(page.url()).searchParams.get('scope')).toContain('admin:read');
    await page.getByLabel('Username or e-mail address').fill('opsboss');
    await page.getByLabel('Password').fill(PASSWORD);
    await page.getByRole('button', { name: 'Approve' }).click();
    await page.waitForURL(`${server.url}/ops`);

    const charts = page.locator('svg[role="img"]');
    await expect.poll(() => charts.count(), { timeout: 10_000 }).toBe(5);
    const titles = await charts.locator('title').allTextContents();
    expect(titles).toEqual(['Request rate', 'Error rate', 'Latency', 'Error-budget burn rate', 'Posting probe latency']);
    // Each chart is named by its title and described by its summary, for screen readers.
    for (let i = 0; i < 5; i++) {
      const ids = (await charts.nth(i).getAttribute('aria-labelledby'))!.split(' ');
      expect(ids).toHaveLength(2);
      const desc = await page.locator(`[id="${ids[1]}"]`).textContent();
      expect(desc).toMatch(/Latest \(\d\d:\d\d\): /);
    }
    await expect.poll(() => page.locator('.ops-chart-summary').first().textContent()).toMatch(/Requests \d+ req\/min/);
    const burn = page.locator('.ops-chart', { hasText: 'Error-budget burn rate' });
    expect(await burn.locator('.ops-threshold line').count()).toBe(2);
    expect(await burn.locator('.ops-chart-summary').textContent()).toContain('14.4×');
    // Lines were drawn: the request rate and the probe latency have data.
    expect(await page.locator('.ops-chart', { hasText: 'Request rate' }).locator('path, circle').count()).toBeGreaterThan(0);
    await expect.poll(() => page.locator('.ops-chart', { hasText: 'Posting probe latency' }).locator('path, circle').count(), { timeout: 10_000 }).toBeGreaterThan(0);

    const table = page.getByRole('table');
    expect(await table.getByRole('rowheader').allTextContents()).toEqual(['Availability', expect.stringMatching(/^Latency \(≤ \d+ ms\)$/)]);
    await expect.poll(() => page.locator('.ops-components li').count()).toBeGreaterThanOrEqual(9);
    expect(await page.locator('.ops-components').textContent()).toContain('Posting');

    await page.screenshot({ path: join(SCREENSHOTS, 'web-ops-light-wide.png'), fullPage: true });
    await ctx.close();
    expect(watch.errors).toEqual([]);
  });
});
