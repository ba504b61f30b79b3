import { existsSync } from 'node:fs';
import { skipUnlessCi } from '@custos/kernel/testing/requirePart';
import { type Browser, chromium } from 'playwright-core';

/** Debian's chromium package puts its launcher here (and .ci/run installs it). Nothing ever downloads a browser. */
export const CHROMIUM = '/usr/bin/chromium';

/** A quiet headless Chromium: no sandbox (tests run as root in containers), no GPU, no network of its own, no updates. */
export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-dev-shm-usage',
];

/**
 * Chromium for a test file. When it is missing the file fails under CI=true (the pages must be
 * proven in a real browser there) and otherwise gets `skip`, a reason to give to describe().
 */
export function chromiumForTests(executablePath = CHROMIUM): { executablePath: string; skip: false } | { executablePath: undefined; skip: string } {
  if (existsSync(executablePath)) return { executablePath, skip: false };
  const missing = `Chromium ${executablePath} not found (apt-get install chromium)`;
  return { executablePath: undefined, skip: skipUnlessCi(missing, { tests: 'the browser tests', part: 'Chromium' }) };
}

/** Launches the headless Chromium at `executablePath` (Playwright adds --headless). */
export function launchChromium(executablePath: string): Promise<Browser> {
  return chromium.launch({ executablePath, headless: true, args: CHROMIUM_ARGS, timeout: 30_000 });
}
