/**
 * The operations page in chromium: the link is in the navigation only for
 * administrators; someone else who opens /ops is told it is for
 * administrators; an administrator grants the web app admin:read once (a
 * second trip through the OAuth page) and then sees the charts (SVG with
 * titles and text summaries), the SLOs, the components and the last
 * disaster-recovery drills from the drill log (a passed restore drill and a
 * failed failover drill written into the node's drill-log.jsonl). No unexpected
 * console errors. Writes docs/screenshots/web-ops-light-wide.png.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { createUser, eventually, startTestServer, type TestServer } from '../helpers/server.js';
import { appendDrillLog, type DrillCommon } from '../../src/dr/drill.js';
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
    // Two drills in the node's drill log, as `starling drill restore` and `drill failover` append them.
    const common = { phases: {}, checks: [], host: 'test', starling_version: '0.1.0' };
    await appendDrillLog(server.dataDir, { ...common, kind: 'restore', ok: true, started_at: '2026-11-20T10:00:00.000Z', finished_at: '2026-11-20T10:00:12.000Z', rto_seconds: 10.4, rpo_seconds: 175 } as DrillCommon);
    await appendDrillLog(server.dataDir, {
      ...common,
      kind: 'failover',
      ok: false,
      started_at: '2026-11-21T10:00:00.000Z',
      finished_at: '2026-11-21T10:01:00.000Z',
      rto_seconds: 131.2,
      rpo_seconds: 0,
      error: 'writes stopped for 131.2 s, above the bound of 120 s',
      failover: { killed: { name: 'pg2' }, posts_acknowledged: 57, posts_missing: 0, posts_duplicated: 0 },
    } as DrillCommon);
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

  it('shows an administrator the charts, SLOs, components and the last drills', async () => {
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

    const table = page.getByRole('table', { name: 'Service-level objectives' });
    expect(await table.getByRole('rowheader').allTextContents()).toEqual(['Availability', expect.stringMatching(/^Latency \(≤ \d+ ms\)$/)]);
    await expect.poll(() => page.locator('.ops-components li').count()).toBeGreaterThanOrEqual(9);
    expect(await page.locator('.ops-components').textContent()).toContain('Posting');

    // The drill log, newest first: kind, result, RTO, RPO and what the failed one found.
    const drills = page.getByRole('table', { name: 'Disaster-recovery drills' });
    await expect.poll(() => drills.getByRole('row').count(), { timeout: 10_000 }).toBe(3);
    const cells = async (i: number) => (await drills.getByRole('row').nth(i).locator('td').allTextContents()).map((t) => t.trim());
    expect(await drills.getByRole('columnheader').allTextContents()).toEqual(['When', 'Drill', 'Result', 'RTO', 'RPO', 'Details']);
    expect((await cells(1)).slice(0, 4)).toEqual(['Failover', 'Failed', '131.2 s', '0 s']);
    expect((await cells(1))[4]).toBe('primary pg2 killed; 0 lost, 0 duplicated of 57 acknowledged posts. writes stopped for 131.2 s, above the bound of 120 s');
    expect(await cells(2)).toEqual(['Restore', 'Passed', '10.4 s', '175 s', '']);
    expect(await drills.getByRole('rowheader').first().locator('time').getAttribute('datetime')).toBe('2026-11-21T10:00:00.000Z');

    await page.screenshot({ path: join(SCREENSHOTS, 'web-ops-light-wide.png'), fullPage: true });
    await ctx.close();
    expect(watch.errors).toEqual([]);
  });
});
