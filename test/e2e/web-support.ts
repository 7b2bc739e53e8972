/**
 * Shared by the web app's browser tests: build the app if it is stale, launch
 * Debian's chromium through playwright-core, watch the console, and the UI
 * steps every test needs (sign up, sign in).
 */
import { execFileSync, spawn } from 'node:child_process';
import { createServer, type AddressInfo } from 'node:net';
import { existsSync, mkdirSync, readdirSync, rmdirSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { chromium, type Browser, type BrowserContext, type ConsoleMessage, type Page } from 'playwright-core';
import { expect } from 'vitest';

export const ROOT = resolve(import.meta.dirname, '../..');
export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
export const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'];
/**
 * Where the browser tests put their screenshots: docs/screenshots when asked (`STARLING_SCREENSHOTS=1 npm test`,
 * to refresh the ones the docs show), else a folder under the system's temp folder, so a test run does not
 * leave the working tree modified.
 */
export const SCREENSHOTS = process.env.STARLING_SCREENSHOTS === '1' ? join(ROOT, 'docs/screenshots') : join(tmpdir(), 'starling-screenshots');

/** Locally, no chromium means the browser tests are skipped; in CI they must run. */
export const haveChromium = existsSync(CHROMIUM) || Boolean(process.env.CI);

function newestMtime(path: string): number {
  const st = statSync(path);
  if (!st.isDirectory()) return st.mtimeMs;
  let newest = st.mtimeMs;
  for (const name of readdirSync(path)) newest = Math.max(newest, newestMtime(join(path, name)));
  return newest;
}

function webIsStale(): boolean {
  const built = join(ROOT, 'dist/web/index.html');
  if (!existsSync(built)) return true;
  const sources = Math.max(newestMtime(join(ROOT, 'web')), newestMtime(join(ROOT, 'src/domain/text.ts')), newestMtime(join(ROOT, 'package.json')));
  return sources > statSync(built).mtimeMs;
}

/** Builds dist/web unless it is newer than every source; test files running side by side build it once. */
export async function ensureWebBuilt(): Promise<void> {
  const lock = join(ROOT, 'dist/.web-build.lock');
  mkdirSync(join(ROOT, 'dist'), { recursive: true });
  for (let waited = 0; ; waited += 200) {
    if (!webIsStale()) return;
    try {
      mkdirSync(lock);
    } catch {
      // Another test file is building: wait for it (a lock left by a killed run expires after a minute).
      if (waited > 60_000) rmdirSync(lock);
      await new Promise((r) => setTimeout(r, 200));
      continue;
    }
    try {
      if (webIsStale()) execFileSync(process.execPath, [join(ROOT, 'node_modules/vite/bin/vite.js'), 'build', 'web', '--logLevel', 'warn'], { cwd: ROOT, stdio: 'inherit', env: { ...process.env, NODE_ENV: 'production' } });
    } finally {
      rmdirSync(lock);
    }
    return;
  }
}

export function launch(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
}

export const WIDE = { width: 1280, height: 860 };
export const PHONE = { width: 390, height: 844 };

export function newContext(browser: Browser, opts: { colorScheme?: 'light' | 'dark'; viewport?: { width: number; height: number } } = {}): Promise<BrowserContext> {
  return browser.newContext({ viewport: opts.viewport ?? WIDE, colorScheme: opts.colorScheme ?? 'light', reducedMotion: 'reduce', locale: 'en-GB', timezoneId: 'UTC' });
}

/**
 * Collects console errors and uncaught page errors. `expectNetworkErrors` opens
 * a window in which failed connections (the outage) are expected and kept apart.
 */
export class ConsoleWatch {
  readonly errors: string[] = [];
  readonly expected: string[] = [];
  private allowNetwork = false;
  private allowed: RegExp[] = [];

  watch(page: Page, name = 'page'): Page {
    page.on('console', (m: ConsoleMessage) => {
      if (m.type() !== 'error') return;
      const text = `${name}: ${m.text()} ${m.location().url ?? ''}`.trim();
      const network = /Failed to load resource: net::ERR_|WebSocket connection to .* failed|ERR_CONNECTION_(REFUSED|RESET)/.test(m.text());
      if ((this.allowNetwork && network) || this.allowed.some((r) => r.test(text))) this.expected.push(text);
      else this.errors.push(text);
    });
    page.on('pageerror', (err) => this.errors.push(`${name}: uncaught ${err.message}`));
    return page;
  }

  /** Errors matching `pattern` (on their text and URL) are expected from now on. */
  allow(pattern: RegExp): void {
    this.allowed.push(pattern);
  }

  expectNetworkErrors(on: boolean): void {
    this.allowNetwork = on;
  }
}

/** Signs up through the web app's own form; lands on the home timeline. */
export async function signUpInUi(page: Page, base: string, username: string, password = 'correct horse battery staple'): Promise<void> {
  await page.goto(`${base}/`);
  await page.getByRole('link', { name: 'Create an account' }).click();
  await page.getByLabel('Username').fill(username);
  await page.getByLabel('E-mail address').fill(`${username}@example.test`);
  await page.getByLabel('Password').fill(password);
  await page.getByLabel("I agree to this server's rules and terms.").check();
  await page.getByRole('button', { name: 'Sign up' }).click();
  await expect.poll(() => page.getByRole('heading', { name: 'Home', level: 1 }).count(), { timeout: 10_000 }).toBe(1);
}

/** Signs in through Starling's OAuth page (authorization code + PKCE); lands on the home timeline. */
export async function signInInUi(page: Page, base: string, login: string, password: string): Promise<void> {
  await page.goto(`${base}/`);
  await page.getByRole('button', { name: 'Sign in' }).first().click();
  await page.waitForURL(/\/oauth\/authorize\?/);
  await page.getByLabel('Username or e-mail address').fill(login);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Approve' }).click();
  await page.waitForURL(`${base}/`);
  await expect.poll(() => page.getByRole('heading', { name: 'Home', level: 1 }).count(), { timeout: 10_000 }).toBe(1);
}

/** The signed-in person's token, as the app keeps it. */
export function tokenOf(page: Page): Promise<string> {
  return page.evaluate(() => (JSON.parse(localStorage.getItem('starling.session.v1') ?? 'null') as { token: string }).token);
}

export async function waitFor(check: () => Promise<boolean>, timeoutMs = 10_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** A port that was free a moment ago, for a server that must come back on the same address. */
export function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as AddressInfo;
      srv.close(() => resolvePort(port));
    });
  });
}

export interface PortServer {
  url: string;
  pid: number;
  kill(signal?: NodeJS.Signals): Promise<void>;
}

/**
 * `starling serve` as a child process on a given port (startChildServer picks
 * a new port each time; a browser that must find the server again after a
 * restart needs the same origin).
 */
export function startOnPort(dataDir: string, port: number): Promise<PortServer> {
  const proc = spawn(process.execPath, [join(ROOT, 'bin/starling.js'), 'serve', '--port', String(port), '--host', '127.0.0.1', '--data-dir', dataDir], {
    cwd: ROOT,
    env: { PATH: process.env.PATH, STARLING_LOG_LEVEL: 'info', STARLING_RATE_LIMIT_MAX: '0', STARLING_PRESSURE_ENABLED: '0' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise<void>((res) => proc.once('exit', () => res()));
  return new Promise((resolveServer, reject) => {
    let out = '';
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`server did not start in time:\n${out}`));
    }, 20_000);
    proc.stderr!.on('data', (d) => (out += d));
    proc.stdout!.on('data', (d) => {
      out += d;
      const line = out.split('\n').find((l) => l.includes('Starling listening on'));
      if (!line) return;
      clearTimeout(timer);
      proc.stdout!.removeAllListeners('data');
      proc.stderr!.removeAllListeners('data');
      proc.stdout!.resume();
      proc.stderr!.resume();
      resolveServer({
        url: (JSON.parse(line) as { url: string }).url,
        pid: proc.pid!,
        async kill(signal: NodeJS.Signals = 'SIGTERM') {
          if (proc.exitCode === null && proc.signalCode === null) process.kill(proc.pid!, signal);
          await exited;
        },
      });
    });
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`server exited with ${code} before listening:\n${out}`));
    });
  });
}
