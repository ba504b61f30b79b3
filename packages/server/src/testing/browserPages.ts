import assert from 'node:assert/strict';
import { mkdirSync, readFileSync } from 'node:fs';
import http from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { createListener, type Listener } from '../createListener.js';
import { launchChromium } from './chromium.js';
import { createTestSigner, type TestSigner } from './createTestSigner.js';
import type { WalletPolicy } from '@custos/kernel';
import { REPO_ROOT } from './runCustos.js';

// What the browser tests of the signer's pages (approval, enrolment) share: a free port for the
// public URL, a foreign site to attack from, pages that record their console, the checks every page
// goes through (no horizontal scroll at 360 px, screenshots, axe-core), and the backend's API calls.

/** Where the browser tests put their screenshots (gitignored). */
export const SCREENSHOTS = join(REPO_ROOT, 'artifacts', 'screenshots');
export const PHONE = { width: 360, height: 740 };
export const DESKTOP = { width: 1280, height: 800 };
const AXE_SOURCE = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

/** A port free now (the app must know its public URL, with the port, before it listens). */
export async function freePort(): Promise<number> {
  const server = http.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

export interface ForeignSite {
  origin: string;
  pages: Map<string, string>;
  close(): Promise<void>;
}

/** Another origin (http://127.0.0.1:<its port>, another site than localhost): serves the pages a test gives it. */
export async function startForeignSite(): Promise<ForeignSite> {
  const pages = new Map<string, string>();
  const server = http.createServer((request, response) => {
    const body = pages.get(request.url ?? '');
    response.writeHead(body === undefined ? 404 : 200, { 'content-type': 'text/html; charset=utf-8' }).end(body ?? 'not found');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    origin: `http://127.0.0.1:${port}`,
    pages,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

export type ApiAnswer = { status: number; body: Record<string, unknown> };

/** The backend's call to the native API, over HTTP with the API key. */
export function apiClient(apiUrl: () => string, apiKey: () => string) {
  return async (method: 'GET' | 'POST', path: string, body?: unknown): Promise<ApiAnswer> => {
    const res = await fetch(`${apiUrl()}${path}`, {
      method,
      headers: { authorization: `Bearer ${apiKey()}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };
}

export function assertErrorCode(res: ApiAnswer, status: number, code: string): void {
  assert.equal(res.status, status, JSON.stringify(res.body));
  assert.equal((res.body.error as { code?: string } | undefined)?.code, code, JSON.stringify(res.body));
}

/** Console errors and warnings, and uncaught page errors, of each page. */
const consoleOf = new WeakMap<Page, string[]>();

/** What `page` printed as errors or warnings so far. */
export function consoleLines(page: Page): string[] {
  return consoleOf.get(page) ?? [];
}

/** Records the console errors and warnings, and uncaught errors, of `page` (for assertQuietConsole). */
export function watchConsole(page: Page): Page {
  const messages: string[] = [];
  consoleOf.set(page, messages);
  page.on('console', (message) => {
    if (message.type() === 'error' || message.type() === 'warning') messages.push(`${message.type()}: ${message.text()} (${message.location().url})`);
  });
  page.on('pageerror', (error) => messages.push(`pageerror: ${error.message}`));
  return page;
}

/** A page in a fresh browser context (its own cookies), phone-sized, recording its console; the context goes in `contexts` to be closed. */
export async function newWatchedPage(browser: Browser, contexts: BrowserContext[]): Promise<Page> {
  const context = await browser.newContext({ viewport: PHONE });
  contexts.push(context);
  return watchConsole(await context.newPage());
}

/**
 * Nothing in the console of our pages: no CSP violation (a style or image the policy blocks), no
 * error — but the ones a test expects (Chromium reports a document answered 4xx as a failed load)
 * and the browser's own /favicon.ico the signer does not have.
 */
export function assertQuietConsole(page: Page, expected: RegExp[] = []): void {
  const allowed = [
    ...expected,
    /^error: Failed to load resource: the server responded with a status of 404 \(Not Found\) \(http:\/\/localhost:\d+\/favicon\.ico\)$/,
  ];
  const unexpected = consoleLines(page).filter((line) => !allowed.some((re) => re.test(line)));
  assert.deepEqual(unexpected, [], 'console errors on our pages');
}

export async function h1(page: Page): Promise<string> {
  return ((await page.locator('h1').textContent()) ?? '').trim();
}

/** Whether the visible text of the page contains `text`. */
export async function showsText(page: Page, text: string): Promise<boolean> {
  return page.getByText(text, { exact: false }).first().isVisible();
}

/**
 * Every page a test reaches goes through here: readable on a 360 px phone (no horizontal scroll),
 * screenshots at 360×740 and 1280×800 (full page) in SCREENSHOTS, and axe-core with no serious or
 * critical violation (the lesser ones printed). Returns the path of the phone screenshot.
 */
export async function inspectPage(page: Page, name: string): Promise<string> {
  await page.setViewportSize(PHONE);
  const scrollWidth = Number(await page.evaluate('document.scrollingElement.scrollWidth'));
  assert.ok(scrollWidth <= PHONE.width, `${name}: no horizontal scroll at 360 px (scrollWidth ${scrollWidth})`);
  const phoneShot = join(SCREENSHOTS, `${name}-360x740.png`);
  await page.screenshot({ path: phoneShot, fullPage: true });
  await page.setViewportSize(DESKTOP);
  await page.screenshot({ path: join(SCREENSHOTS, `${name}-1280x800.png`), fullPage: true });
  await page.setViewportSize(PHONE);

  // axe in the page's main world through DevTools (the pages' CSP admits no script of their own)
  await page.evaluate(AXE_SOURCE);
  const { passes, violations } = (await page.evaluate(`axe.run(document).then((r) => ({
    passes: r.passes.length,
    violations: r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, targets: v.nodes.map((n) => n.target.join(' ')) })),
  }))`)) as { passes: number; violations: Array<{ id: string; impact: string | null; help: string; targets: string[] }> };
  assert.ok(passes > 10, `${name}: axe ran (${passes} rules passed)`);
  console.log(`axe ${name}: ${passes} rules passed, ${violations.length} violated`);
  for (const v of violations) console.log(`axe ${name}: ${v.impact} ${v.id} — ${v.help} (${v.targets.join(', ')})`);
  const serious = violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  assert.deepEqual(serious, [], `${name}: axe finds no serious or critical violation`);
  return phoneShot;
}

/** A listening signer, the foreign site and Chromium, for one browser test file. */
export interface PageHarness {
  signer: TestSigner;
  /** The public URL: http://localhost:<port> (what the owner's browser opens). */
  publicUrl: string;
  foreign: ForeignSite;
  browser: Browser;
  /** The backend's calls to the API, over HTTP at the listening address, with the API key. */
  api: ReturnType<typeof apiClient>;
  /** A page in a fresh browser context (its own cookies), phone-sized, recording its console. */
  newPage(): Promise<Page>;
  close(): Promise<void>;
}

/**
 * Starts the signer (public URL on localhost, listening on 127.0.0.1), the foreign site and Chromium
 * at `executablePath`. With `passkeys`, the kernel has the passkey factor for that public URL (rpID
 * `localhost`, the origin with its port: what `custos serve` derives from --public-url).
 */
export async function startPageHarness(
  executablePath: string,
  label: string,
  { passkeys = false, policyDefaults }: { passkeys?: boolean; policyDefaults?: WalletPolicy } = {},
): Promise<PageHarness> {
  const started = performance.now();
  const port = await freePort();
  const publicUrl = `http://localhost:${port}`;
  const signer = await createTestSigner({
    appOptions: { publicUrl },
    ...(policyDefaults === undefined ? {} : { policyDefaults }),
    ...(passkeys ? { kernelOptions: { passkeys: { rpId: 'localhost', origin: publicUrl, rpName: 'Custos' } } } : {}),
  });
  const listener: Listener = await createListener(signer.app, { host: '127.0.0.1', port });
  const foreign = await startForeignSite();
  const launchedAt = performance.now();
  const browser = await launchChromium(executablePath);
  console.log(`chromium ${browser.version()} launched in ${(performance.now() - launchedAt).toFixed(0)} ms`);
  mkdirSync(SCREENSHOTS, { recursive: true });
  const contexts: BrowserContext[] = [];
  return {
    signer,
    publicUrl,
    foreign,
    browser,
    api: apiClient(
      () => listener.url,
      () => signer.apiKey,
    ),
    newPage: () => newWatchedPage(browser, contexts),
    async close() {
      for (const context of contexts) await context.close();
      await browser.close();
      await foreign.close();
      await listener.close(1_000);
      await signer.close();
      console.log(`${label}: ${((performance.now() - started) / 1000).toFixed(1)} s`);
    },
  };
}
