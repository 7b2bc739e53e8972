/**
 * Nothing written is lost, and people are told: the server process is killed
 * while a post is being sent (it had taken the post, the answer never came
 * back), another post is written during the outage, the server comes back on
 * the same data and port, and each post is on the server exactly once. The
 * banner appears during the outage and clears after. Then a post queued during
 * a second outage survives the tab being closed, and is sent by the next one.
 * Last, read-only mode: the server answers, and says why it refuses the post;
 * the app shows its words and waits as long as it asked.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { runStarling } from '../helpers/cli.js';
import { createUser, tempDir, type TestUser } from '../helpers/server.js';
import { ConsoleWatch, SCREENSHOTS, ensureWebBuilt, freePort, haveChromium, launch, newContext, signInInUi, startOnPort, waitFor, type PortServer } from './web-support.js';

describe.skipIf(!haveChromium)('web app through a server outage', () => {
  const dir = tempDir('starling-web-outage-');
  let port: number;
  let server: PortServer;
  let base: string;
  let browser: Browser;
  let ctx: BrowserContext;
  let page: Page;
  let alice: TestUser;
  const watch = new ConsoleWatch();

  /** Alice's statuses with this text, as the server has them. */
  async function copiesOf(text: string): Promise<number> {
    const res = await fetch(`${base}/api/v1/accounts/${alice.id}/statuses?limit=40`, { headers: { Authorization: `Bearer ${alice.token}` } });
    const list = (await res.json()) as { content: string }[];
    return list.filter((s) => s.content.includes(text)).length;
  }

  const banner = () => page.getByTestId('degraded-banner');
  const bannerText = async () => ((await banner().count()) ? await banner().innerText() : '');
  /** What the banner says while the server cannot be reached. */
  const OUTAGE = /can't be reached|offline/;
  const entry = (text: string) => page.locator('.outbox-entry', { hasText: text });

  beforeAll(async () => {
    await ensureWebBuilt();
    port = await freePort();
    server = await startOnPort(dir.path, port);
    base = server.url;
    alice = await createUser(base, 'alice');
    browser = await launch();
    ctx = await newContext(browser);
    page = watch.watch(await ctx.newPage(), 'alice');
    // The account was made through the API; sign in as a person would.
    await fetch(`${base}/api/v1/accounts/update_credentials`, { method: 'PATCH', headers: { Authorization: `Bearer ${alice.token}`, 'Content-Type': 'application/json' }, body: '{"display_name":"Alice"}' });
  });

  afterAll(async () => {
    await browser?.close();
    await server?.kill('SIGTERM');
    dir.remove();
  });

  it('keeps posts queued while the server is down and delivers each exactly once when it is back', async () => {
    await signInInUi(page, base, 'alice', 'correct horse battery');
    await page.getByText('Your home timeline is empty').waitFor();
    // Before the outage the app reaches the server: no banner says it cannot. The status page's own word may be up:
    // clean-clone CI at 7af2100 showed "Minor Service Outage. API is failing." here, the page's incident. Likely
    // cause: on a machine busy with other test files, a fresh node's first API requests (argon2 hashing, the app's
    // opening burst) burn the API's latency objective, which pages after ten requests (and was titled "failing"
    // until this change; "slow" now). That is the page judging the node, not this test's subject; a 5xx the app met
    // would fail the console check at the end.
    await expect.poll(bannerText, { timeout: 20_000 }).not.toMatch(OUTAGE);

    // The server takes the first post, and dies before its answer leaves.
    let killed = false;
    await page.route('**/api/v1/statuses', async (route) => {
      if (route.request().method() !== 'POST' || killed) return route.fallback();
      killed = true;
      const key = route.request().headers()['idempotency-key'];
      expect(key).toBeTruthy();
      await route.fetch();
      watch.expectNetworkErrors(true);
      await server.kill('SIGKILL');
      await route.abort('connectionreset');
    });
    await page.getByLabel("What's on your mind?").fill('Written just before the crash');
    await page.getByRole('button', { name: 'Post', exact: true }).click();
    await entry('Written just before the crash').and(page.locator('[data-state="queued"]')).waitFor({ timeout: 10_000 });
    expect(await entry('Written just before the crash').innerText()).toMatch(/queued/i);
    await expect.poll(bannerText, { timeout: 10_000 }).toContain("can't be reached");
    expect(await banner().getByRole('link', { name: 'Status page' }).getAttribute('href')).toBe('/status');
    await page.unroute('**/api/v1/statuses');

    // Written during the outage: queued too, and kept on the device.
    await page.getByLabel("What's on your mind?").fill('Written during the outage');
    await page.getByRole('button', { name: 'Post', exact: true }).click();
    await entry('Written during the outage').and(page.locator('[data-state="queued"]')).waitFor();
    const stored = await page.evaluate(() => JSON.parse(localStorage.getItem('starling.outbox.v1') ?? '[]') as { key: string; state: string; params: { status: string } }[]);
    expect(stored.map((e) => e.params.status).sort()).toEqual(['Written during the outage', 'Written just before the crash']);
    expect(new Set(stored.map((e) => e.key)).size).toBe(2);
    await page.screenshot({ path: join(SCREENSHOTS, 'web-outage-light-wide.png') });

    // Back on the same data and port: the outbox sends both under their keys.
    server = await startOnPort(dir.path, port);
    await entry('Written just before the crash').and(page.locator('[data-state="posted"]')).waitFor({ timeout: 30_000 });
    await entry('Written during the outage').and(page.locator('[data-state="posted"]')).waitFor({ timeout: 30_000 });
    // The outage's banner goes (the page's incident, if any, may stay: see above).
    await expect.poll(bannerText, { timeout: 30_000 }).not.toMatch(OUTAGE);
    watch.expectNetworkErrors(false);

    expect(await copiesOf('Written just before the crash')).toBe(1);
    expect(await copiesOf('Written during the outage')).toBe(1);
    // And in the home timeline, once each.
    await page.locator('article', { hasText: 'Written during the outage' }).waitFor();
    expect(await page.locator('article', { hasText: 'Written just before the crash' }).count()).toBe(1);
  }, 90_000);

  it('sends a post queued during an outage after the tab was closed, from the next one', async () => {
    watch.expectNetworkErrors(true);
    await server.kill('SIGKILL');
    await page.getByLabel("What's on your mind?").fill('Queued, then the tab was closed');
    await page.getByRole('button', { name: 'Post', exact: true }).click();
    await entry('Queued, then the tab was closed').and(page.locator('[data-state="queued"]')).waitFor({ timeout: 10_000 });
    await page.close();
    server = await startOnPort(dir.path, port);
    watch.expectNetworkErrors(false);

    const next = watch.watch(await ctx.newPage(), 'alice-again');
    await next.goto(`${base}/`);
    await next.locator('.outbox-entry[data-state="posted"]', { hasText: 'Queued, then the tab was closed' }).waitFor({ timeout: 20_000 });
    await waitFor(async () => (await copiesOf('Queued, then the tab was closed')) === 1, 5000, 'the post on the server');
    // Nothing is sent twice, however long we wait.
    await next.waitForTimeout(1500);
    expect(await copiesOf('Queued, then the tab was closed')).toBe(1);
    expect(await copiesOf('Written just before the crash')).toBe(1);
    expect(await next.evaluate(() => JSON.parse(localStorage.getItem('starling.outbox.v1') ?? '[]').length)).toBe(0);
  }, 60_000);

  it("says what the server said in read-only mode, waits as long as it asked, and posts once it can", async () => {
    const tab = watch.watch(await ctx.newPage(), 'alice-read-only');
    // Chromium logs every 503 it receives as a console error; these are the refusals this test causes.
    watch.allow(/status of 503 \(Service Unavailable\)/);
    await tab.goto(`${base}/`);
    await tab.getByRole('heading', { name: 'Home', level: 1 }).waitFor();
    const mode = async () => ((await (await fetch(`${base}/readyz`)).json()) as { mode?: string }).mode;
    expect((await runStarling(['maintenance', 'on', '--data-dir', dir.path])).code).toBe(0);
    await waitFor(async () => (await mode()) === 'read-only', 10_000, 'read-only mode');

    const posts: number[] = [];
    tab.on('request', (r) => {
      if (r.method() === 'POST' && new URL(r.url()).pathname === '/api/v1/statuses') posts.push(Date.now());
    });
    await tab.getByLabel("What's on your mind?").fill('Written while posting is paused');
    await tab.getByRole('button', { name: 'Post', exact: true }).click();
    const queued = tab.locator('.outbox-entry[data-state="queued"]', { hasText: 'Written while posting is paused' });
    await queued.waitFor({ timeout: 10_000 });
    // The server's reason and its Retry-After (30 s), not "can't be reached": the server answered.
    await expect.poll(() => queued.innerText()).toMatch(/read-only mode/);
    expect(await queued.innerText()).toMatch(/trying again in (2\d|30) s/);
    const banner = tab.getByTestId('degraded-banner');
    await banner.waitFor();
    expect(await banner.innerText()).toContain('read-only mode');
    expect(await banner.innerText()).toContain('What you write is kept on this device');
    expect(await banner.innerText()).not.toContain("can't be reached");
    await tab.screenshot({ path: join(SCREENSHOTS, 'web-read-only-light-wide.png') });

    // Reads go on meanwhile, and nothing sends the post again before the server's time: not the reads that
    // succeed, not the app's health checks.
    await tab.getByRole('link', { name: /^Notifications/ }).first().click();
    await tab.getByRole('heading', { name: 'Notifications', level: 1 }).waitFor();
    await tab.getByRole('link', { name: 'Home', exact: true }).first().click();
    await tab.getByRole('heading', { name: 'Home', level: 1 }).waitFor();
    await tab.waitForTimeout(7000);
    expect(posts).toHaveLength(1);
    expect(await copiesOf('Written while posting is paused')).toBe(0);

    // Posting is back: "Retry now" sends it, under its key, once.
    expect((await runStarling(['maintenance', 'off', '--data-dir', dir.path])).code).toBe(0);
    await waitFor(async () => (await mode()) === 'read-write', 10_000, 'read-write mode');
    await queued.getByRole('button', { name: 'Retry now' }).click();
    await tab.locator('.outbox-entry[data-state="posted"]', { hasText: 'Written while posting is paused' }).waitFor({ timeout: 10_000 });
    expect(await copiesOf('Written while posting is paused')).toBe(1);
    expect(posts).toHaveLength(2);
    // A write went through: the server's refusal is no longer news. The banner may still carry the status page's
    // incident: the page confirms a recovery over its next rounds, and the 503s of read-only mode burned the API's
    // error budget (its alert resets with the 5-minute window). That is the page's word, not the refusal's.
    await expect
      .poll(async () => ((await banner.count()) ? await banner.innerText() : ''), { timeout: 10_000 })
      .not.toMatch(/read-only mode|kept on this device/);
  }, 60_000);

  it('logged no console errors other than the refused connections of the outage', () => {
    expect(watch.errors).toEqual([]);
    expect(watch.expected.length).toBeGreaterThan(0);
  });
});
