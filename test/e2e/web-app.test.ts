/**
 * The web app in a real browser (Debian's chromium, driven by playwright-core)
 * against a real Starling: sign up, sign in through OAuth with PKCE, post, a
 * post arriving live in another person's home timeline, reply and thread,
 * like and repost (and a failed action rolled back), follow from a profile,
 * notifications, search, Link-header paging, edit and delete, screenshots of
 * the main views, sign out. No console errors anywhere.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import Fastify from 'fastify';
import { countLength } from '../../src/domain/text.js';
import { webRoutes } from '../../src/http/web/index.js';
import { createUser, eventually, startTestServer, type TestServer, type TestUser } from '../helpers/server.js';
import { ConsoleWatch, PHONE, SCREENSHOTS, WIDE, ensureWebBuilt, haveChromium, launch, newContext, signInInUi, signUpInUi, tokenOf, waitFor } from './web-support.js';

const PASSWORD = 'correct horse battery';
const ROOT_FOR_MISSING = tmpdir();

describe.skipIf(!haveChromium)('web app in chromium', () => {
  let server: TestServer;
  let browser: Browser;
  let ctxA: BrowserContext;
  let ctxB: BrowserContext;
  let alicePage: Page;
  let bobPage: Page;
  let bob: TestUser;
  let carol: TestUser;
  let aliceToken: string;
  let alicePostId: string;
  const watch = new ConsoleWatch();
  const text = 'Hello @bob, this is #starling from the web https://example.com/a/very/long/address/that/counts/as/twenty-three';

  beforeAll(async () => {
    await ensureWebBuilt();
    server = await startTestServer();
    bob = await createUser(server.url, 'bob');
    carol = await createUser(server.url, 'carol');
    await bob.client.v1.accounts.updateCredentials({ displayName: 'Bob Builder', note: 'Builds things. Posts about #starling.' });
    await carol.client.v1.accounts.updateCredentials({ displayName: 'Carol' });
    // Enough posts for more than two pages, for infinite scroll.
    for (let i = 1; i <= 45; i++) await carol.client.v1.statuses.create({ status: `Carol's post number ${i} #numbers` });
    // A trend for the sidebar: a tag used by several people within the hour (before anyone reads trends, which are cached a minute).
    await carol.client.v1.statuses.create({ status: 'Trying #starling today' });
    await bob.client.v1.statuses.create({ status: 'Me too, #starling is nice' });
    browser = await launch();
    ctxA = await newContext(browser);
    ctxB = await newContext(browser, { colorScheme: 'dark' });
    alicePage = watch.watch(await ctxA.newPage(), 'alice');
    bobPage = watch.watch(await ctxB.newPage(), 'bob');
  });

  afterAll(async () => {
    await browser?.close();
    await server?.stop();
  });

  const heading = (page: Page, name: string) => page.getByRole('heading', { name, level: 1 });
  const article = (page: Page, contains: string) => page.locator('article', { hasText: contains });

  it('signs a new person up through the web app', async () => {
    await signUpInUi(alicePage, server.url, 'alice', PASSWORD);
    aliceToken = await tokenOf(alicePage);
    const me = await fetch(`${server.url}/api/v1/accounts/verify_credentials`, { headers: { Authorization: `Bearer ${aliceToken}` } }).then((r) => r.json());
    expect(me.username).toBe('alice');
  });

  it('signs an existing person in through OAuth (authorization code with PKCE)', async () => {
    const pkce: string[] = [];
    bobPage.on('request', (r) => {
      if (r.url().includes('/oauth/authorize?')) pkce.push(new URL(r.url()).searchParams.get('code_challenge_method') ?? '');
    });
    await signInInUi(bobPage, server.url, 'bob', PASSWORD);
    expect(pkce).toContain('S256');
    await expect.poll(() => bobPage.locator('.nav-acct').textContent()).toBe('@bob');
  });

  it('follows from a profile, and the followed person is notified live', async () => {
    await bobPage.goto(`${server.url}/@alice`);
    await bobPage.getByRole('button', { name: 'Follow', exact: true }).click();
    await expect.poll(() => bobPage.getByRole('button', { name: 'Unfollow' }).count()).toBe(1);
    const rel = await bob.client.v1.accounts.relationships.fetch({ id: [(await bob.client.v1.accounts.lookup({ acct: 'alice' })).id] });
    expect(rel[0].following).toBe(true);
    // Alice, on her home timeline, sees the unread count rise without reloading.
    await expect.poll(() => alicePage.getByTestId('unread-badge').textContent(), { timeout: 10_000 }).toBe('1');
  });

  it('counts characters as the server does, highlights mentions and hashtags, and posts', async () => {
    await bobPage.goto(`${server.url}/`);
    await heading(bobPage, 'Home').waitFor();
    const box = alicePage.getByLabel("What's on your mind?");
    await box.fill(text);
    expect(Number(await alicePage.getByTestId('char-counter').first().innerText().then((t) => t.replace(/\D+/g, '')))).toBe(500 - countLength(text));
    expect(await alicePage.locator('.compose-backdrop mark.mention').allTextContents()).toEqual(['@bob']);
    expect(await alicePage.locator('.compose-backdrop mark.hashtag').allTextContents()).toEqual(['#starling']);
    await alicePage.getByRole('button', { name: 'Post', exact: true }).click();
    await alicePage.locator('.outbox-entry[data-state="posted"]').waitFor();
    await article(alicePage, 'this is #starling').waitFor();
    const statuses = await fetch(`${server.url}/api/v1/accounts/${(await bob.client.v1.accounts.lookup({ acct: 'alice' })).id}/statuses`).then((r) => r.json());
    expect(statuses).toHaveLength(1);
    alicePostId = statuses[0].id;
  });

  it("shows the post arriving live in a follower's home, announced without moving the page", async () => {
    const button = bobPage.getByRole('button', { name: '1 new post' });
    await button.waitFor({ timeout: 10_000 });
    const before = await bobPage.evaluate(() => window.scrollY);
    expect(await article(bobPage, 'this is #starling').count()).toBe(0);
    expect(await bobPage.evaluate(() => window.scrollY)).toBe(before);
    await button.click();
    await article(bobPage, 'this is #starling').waitFor();
  });

  it('replies and opens the thread', async () => {
    await article(bobPage, 'this is #starling').getByRole('button', { name: /^Reply/ }).click();
    await bobPage.waitForURL(new RegExp(`/@alice/${alicePostId}`));
    const replyBox = bobPage.getByRole('form', { name: 'Reply' }).getByRole('textbox');
    await expect.poll(() => replyBox.inputValue()).toBe('@alice ');
    await expect.poll(() => bobPage.evaluate(() => document.activeElement?.tagName)).toBe('TEXTAREA');
    await replyBox.pressSequentially('Nice to see you here!');
    await bobPage.getByRole('form', { name: 'Reply' }).getByRole('button', { name: 'Reply' }).click();
    await bobPage.locator('.thread-descendant article', { hasText: 'Nice to see you here!' }).waitFor();
    // Alice opens the thread from her timeline.
    await article(alicePage, 'this is #starling').locator('.status-time').click();
    await heading(alicePage, 'Conversation').waitFor();
    await alicePage.locator('.thread-descendant article', { hasText: 'Nice to see you here!' }).waitFor();
  });

  it('likes and reposts at once, as the server records', async () => {
    const focused = bobPage.locator('.thread-focus article');
    await focused.getByRole('button', { name: /^Like/ }).click();
    await expect.poll(() => focused.getByRole('button', { name: /^Like/ }).getAttribute('aria-pressed')).toBe('true');
    await focused.getByRole('button', { name: /^Repost/ }).click();
    await expect.poll(() => focused.getByRole('button', { name: /^Repost/ }).getAttribute('aria-pressed')).toBe('true');
    await eventually(async () => {
      const s = await bob.client.v1.statuses.$select(alicePostId).fetch();
      return s.favouritesCount === 1 && s.reblogsCount === 1 && s.favourited && s.reblogged;
    });
  });

  it('rolls an action back when the server fails it', async () => {
    watch.allow(/status of 500 .*\/bookmark/);
    await bobPage.route('**/api/v1/statuses/*/bookmark', (route) => route.fulfill({ status: 500, contentType: 'application/json', body: '{"error":"boom"}' }));
    const button = bobPage.locator('.thread-focus article').getByRole('button', { name: 'Bookmark' });
    await button.click();
    await bobPage.getByText("Couldn't bookmark the post").waitFor();
    expect(await button.getAttribute('aria-pressed')).toBe('false');
    await bobPage.unroute('**/api/v1/statuses/*/bookmark');
    await button.click();
    await expect.poll(() => button.getAttribute('aria-pressed')).toBe('true');
    await bobPage.goto(`${server.url}/bookmarks`);
    await article(bobPage, 'this is #starling').waitFor();
    await bobPage.goto(`${server.url}/favourites`);
    await article(bobPage, 'this is #starling').waitFor();
  });

  it('receives notifications with an unread count, cleared on reading', async () => {
    // The follow, the mention in the reply, the like and the repost.
    await expect.poll(() => alicePage.getByTestId('unread-badge').textContent(), { timeout: 10_000 }).toBe('4');
    await alicePage.getByRole('link', { name: /^Notifications/ }).click();
    await heading(alicePage, 'Notifications').waitFor();
    for (const what of ['followed you', 'liked your post', 'reposted your post']) await alicePage.getByText(what).first().waitFor();
    await alicePage.locator('.n-mention article', { hasText: 'Nice to see you here!' }).waitFor();
    await expect.poll(() => alicePage.getByTestId('unread-badge').count()).toBe(0);
    const markers = await fetch(`${server.url}/api/v1/markers?timeline[]=notifications`, { headers: { Authorization: `Bearer ${aliceToken}` } }).then((r) => r.json());
    expect(markers.notifications.last_read_id).toBeTruthy();
  });

  it('searches people, posts and hashtags', async () => {
    await alicePage.getByRole('link', { name: 'Search' }).click();
    const q = alicePage.getByRole('searchbox', { name: 'Search for people, posts and hashtags' });
    await q.fill('builder');
    await q.press('Enter');
    await alicePage.getByRole('heading', { name: 'People' }).waitFor();
    await alicePage.locator('.account-list').getByText('Bob Builder').waitFor();
    await q.fill('nice');
    await q.press('Enter');
    await alicePage.getByRole('heading', { name: 'Posts' }).waitFor();
    await article(alicePage, 'Nice to see you here!').waitFor();
    await q.fill('numbers');
    await q.press('Enter');
    await alicePage.getByRole('heading', { name: 'Hashtags' }).waitFor();
    await alicePage.getByRole('link', { name: '#numbers' }).first().click();
    await heading(alicePage, '#numbers').waitFor();
    await article(alicePage, "Carol's post number 45").waitFor();
  });

  it('pages with infinite scroll by following the Link header exactly', async () => {
    const links: string[] = [];
    const requested: string[] = [];
    alicePage.on('response', (r) => {
      const link = r.headers()['link'];
      const m = link && /<([^>]+)>; rel="next"/.exec(link);
      if (m && r.url().includes('/api/v1/accounts/')) links.push(m[1]);
    });
    alicePage.on('request', (r) => /\/api\/v1\/accounts\/\d+\/statuses/.test(r.url()) && requested.push(r.url()));
    await alicePage.goto(`${server.url}/@carol`);
    await article(alicePage, "Carol's post number 45").waitFor();
    expect(await alicePage.locator('article').count()).toBe(20);
    for (let i = 0; i < 3 && (await alicePage.locator('article').count()) < 46; i++) {
      await alicePage.mouse.wheel(0, 100_000);
      await alicePage.waitForTimeout(400);
    }
    await expect.poll(() => alicePage.locator('article').count(), { timeout: 10_000 }).toBe(46);
    await alicePage.locator('article', { hasText: /number 1 #numbers/ }).waitFor();
    // Every page after the first was asked for with the URL the previous page's Link header gave.
    expect(requested.length).toBeGreaterThanOrEqual(3);
    for (const url of requested.slice(1)) expect(links).toContain(url);
  });

  it('edits and deletes its own post', async () => {
    await alicePage.goto(`${server.url}/`);
    await alicePage.getByLabel("What's on your mind?").fill('A post with a tpyo');
    await alicePage.getByRole('button', { name: 'Post', exact: true }).click();
    const mine = article(alicePage, 'A post with a');
    await mine.waitFor();
    await mine.getByRole('button', { name: 'Edit' }).click();
    const editBox = mine.getByRole('textbox', { name: 'Edit your post' });
    await expect.poll(() => editBox.inputValue()).toBe('A post with a tpyo');
    await editBox.fill('A post with a typo fixed');
    await mine.getByRole('button', { name: 'Save' }).click();
    await article(alicePage, 'A post with a typo fixed').getByText('edited').waitFor();
    await article(alicePage, 'A post with a typo fixed').getByRole('button', { name: 'Delete' }).click();
    await article(alicePage, 'A post with a typo fixed').getByRole('button', { name: 'Delete for good' }).click();
    await expect.poll(() => article(alicePage, 'A post with a typo fixed').count()).toBe(0);
    await alicePage.getByText('Post deleted.').waitFor();
  });

  it('writes screenshots of the main views, light and dark, wide and phone', async () => {
    mkdirSync(SCREENSHOTS, { recursive: true });
    const state = await ctxA.storageState();
    const views: [string, string, string][] = [
      ['home', '/', 'Home'],
      ['thread', `/@alice/${alicePostId}`, 'Conversation'],
      ['profile', '/@bob', 'Bob Builder'],
      ['notifications', '/notifications', 'Notifications'],
      ['search', '/search?q=starling', 'Search'],
    ];
    for (const scheme of ['light', 'dark'] as const) {
      for (const [size, viewport] of [
        ['wide', WIDE],
        ['phone', PHONE],
      ] as const) {
        const ctx = await browser.newContext({ viewport, colorScheme: scheme, storageState: state, reducedMotion: 'reduce', locale: 'en-GB', timezoneId: 'UTC' });
        const page = watch.watch(await ctx.newPage(), `shot-${scheme}-${size}`);
        for (const [name, path, title] of views) {
          await page.goto(`${server.url}${path}`);
          await page.getByRole('heading', { name: title, level: 1 }).waitFor();
          await page.locator('.spinner').waitFor({ state: 'detached' }).catch(() => {});
          if (name !== 'search' && name !== 'profile') await page.locator('article').first().waitFor();
          if (size === 'wide') await page.getByRole('link', { name: '#starling' }).first().waitFor();
          await page.evaluate(() => window.scrollTo(0, 0));
          await page.waitForTimeout(150);
          await page.screenshot({ path: join(SCREENSHOTS, `web-${name}-${scheme}-${size}.png`) });
        }
        await ctx.close();
      }
    }
  }, 120_000);

  it('signs out, revoking the token', async () => {
    await alicePage.goto(`${server.url}/`);
    await alicePage.getByRole('button', { name: 'Sign out' }).click();
    await heading(alicePage, 'Welcome to Starling').waitFor();
    expect(await alicePage.evaluate(() => localStorage.getItem('starling.session.v1'))).toBeNull();
    await waitFor(async () => (await fetch(`${server.url}/api/v1/accounts/verify_credentials`, { headers: { Authorization: `Bearer ${aliceToken}` } })).status === 401, 5000, 'token revoked');
  });

  it('keeps the app shell routes and the server routes apart', async () => {
    const html = await fetch(`${server.url}/@alice/123`, { headers: { Accept: 'text/html' } });
    expect(html.status).toBe(200);
    expect(html.headers.get('cache-control')).toBe('no-cache');
    expect(await html.text()).toContain('<div id="root">');
    const api404 = await fetch(`${server.url}/api/v1/nothing-here`, { headers: { Accept: 'text/html' } });
    expect(api404.status).toBe(404);
    expect(await api404.json()).toHaveProperty('error');
    const asset = /src="(\/assets\/[^"]+\.js)"/.exec(await (await fetch(`${server.url}/`, { headers: { Accept: 'text/html' } })).text())![1];
    const js = await fetch(`${server.url}${asset}`, { headers: { 'Accept-Encoding': 'gzip' } });
    expect(js.status).toBe(200);
    expect(js.headers.get('cache-control')).toContain('immutable');
    expect((await fetch(`${server.url}/assets/missing.js`)).status).toBe(404);
    expect((await fetch(`${server.url}/assets/..%2f..%2fpackage.json`)).status).toBe(404);
  });

  it('logged no console errors', () => {
    expect(watch.errors).toEqual([]);
  });
});

describe('web app serving without a build', () => {
  it('answers / with a page that says how to build the app, never an error', async () => {
    const app = Fastify();
    await app.register(webRoutes, { ctx: {} as never, dir: join(ROOT_FOR_MISSING, 'no-such-build') });
    const res = await app.inject({ method: 'GET', url: '/', headers: { accept: 'text/html' } });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toContain('text/html');
    expect(res.body).toContain('npm run build');
    const deep = await app.inject({ method: 'GET', url: '/@alice', headers: { accept: 'text/html' } });
    expect(deep.statusCode).toBe(200);
    expect((await app.inject({ method: 'GET', url: '/api/v1/whatever', headers: { accept: 'text/html' } })).statusCode).toBe(404);
    await app.close();
  });
});
