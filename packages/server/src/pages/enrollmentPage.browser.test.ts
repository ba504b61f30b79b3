import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import jsqr from 'jsqr';
import type { Page, Response } from 'playwright-core';
import { PNG } from 'pngjs';
import {
  assertErrorCode,
  assertQuietConsole,
  type ForeignSite,
  h1,
  inspectPage,
  type PageHarness,
  showsText,
  startPageHarness,
} from '../testing/browserPages.js';
import { chromiumForTests } from '../testing/chromium.js';
import { RAW_HASHES_ALLOWED, recordTestSecret, type TestSigner } from '../testing/createTestSigner.js';
import { totpFromUri } from '../testing/totpFromUri.js';

// Issue 11, point 6 (enrolment, TOTP): the enrolment page proven in Chromium against a real listening
// signer — the backend asks for a link over HTTP, the owner's browser opens it, the QR code as the
// browser draws it decodes (jsQR) to the otpauth URI of the key written on the page, the code from it
// activates the factor (and is spent: a later code signs, this one is code_reused), the used link
// shows no secret again, a wrong code is refused, a cross-site post enrols nothing; axe-core, CSP
// errors in the console, no horizontal scroll at 360 px, and screenshots (artifacts/screenshots/).

const chromium = chromiumForTests();
const HASH = `0x${'ab'.repeat(32)}`;
/** jsQR is CommonJS: its module object, the function at `.default` as its types say. */
const jsQR = jsqr.default;
const SETUP_TITLE = 'Set up your authenticator app';

describe('the enrolment page in Chromium', { skip: chromium.skip }, () => {
  let harness: PageHarness;
  let signer: TestSigner;
  let publicUrl: string;
  let foreign: ForeignSite;

  before(async () => {
    harness = await startPageHarness(chromium.executablePath ?? '', 'enrolment browser suite', { policyDefaults: RAW_HASHES_ALLOWED });
    ({ signer, publicUrl, foreign } = harness);
  });
  after(() => harness?.close());

  const api: PageHarness['api'] = (...args) => harness.api(...args);
  const newPage = () => harness.newPage();

  /** The backend asks for a link (POST /v1/enrollments over HTTP): its enrollUrl, on the public URL. */
  async function createLink(walletName: string): Promise<string> {
    const res = await api('POST', '/v1/enrollments', { walletName });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    const enrollUrl = String(res.body.enrollUrl);
    const capability = new RegExp(`^${publicUrl}/enroll/([A-Za-z0-9_-]{43})$`).exec(enrollUrl)?.[1];
    assert.ok(capability, enrollUrl);
    recordTestSecret('enrolment capability', capability);
    return enrollUrl;
  }

  /** The factors GET /v1/wallets lists for the wallet (none when the wallet does not exist yet). */
  async function factorsOf(walletName: string): Promise<string[]> {
    const res = await api('GET', `/v1/wallets?walletName=${encodeURIComponent(walletName)}`);
    if (res.status === 404) return [];
    assert.equal(res.status, 200, JSON.stringify(res.body));
    return res.body.factors as string[];
  }

  function signHash(walletName: string, code: string) {
    return api('POST', '/v1/sign/hash', { walletName, keyIndex: 0, hash: HASH, code });
  }

  /** The key written on the page for manual entry, without its spaces. */
  async function secretShown(page: Page): Promise<string> {
    const secret = ((await page.locator('p.secret').textContent()) ?? '').replace(/\s+/g, '');
    assert.match(secret, /^[A-Z2-7]{16,}$/);
    recordTestSecret('totp secret shown', secret);
    return secret;
  }

  /** The QR code as Chromium draws it (a screenshot of the image with a white margin), decoded by jsQR. */
  async function decodeQr(page: Page): Promise<string> {
    const box = await page.locator('img.qr').boundingBox();
    assert.ok(box && box.width >= 200 && box.height >= 200, `the QR code is shown large enough: ${JSON.stringify(box)}`);
    const margin = 16;
    const png = PNG.sync.read(
      await page.screenshot({ clip: { x: box.x - margin, y: box.y - margin, width: box.width + 2 * margin, height: box.height + 2 * margin } }),
    );
    const decoded = jsQR(new Uint8ClampedArray(png.data), png.width, png.height);
    assert.ok(decoded, 'jsQR finds a QR code in the screenshot');
    recordTestSecret('otpauth uri', decoded.data);
    return decoded.data;
  }

  /** Submits the Activate form and waits for the page the server answers with. */
  async function activate(page: Page, code: string): Promise<Response> {
    recordTestSecret('totp code', code);
    await page.getByLabel('Code from your authenticator app').fill(code);
    const [response] = await Promise.all([
      page.waitForResponse((r) => r.request().method() === 'POST' && r.request().isNavigationRequest()),
      // the answer's document committed, not only its response received: else 'load' may be the old document's
      page.waitForEvent('framenavigated', { predicate: (frame) => frame === page.mainFrame() }),
      page.getByRole('button', { name: 'Activate' }).click(),
    ]);
    await page.waitForLoadState('load');
    return response;
  }

  /** A 6-digit code valid in no step near now. */
  function wrongCode(otpauthUri: string): string {
    const valid = new Set([-1, 0, 1].map((offset) => totpFromUri(otpauthUri, signer.clock.now, offset)));
    for (let n = 0; ; n++) {
      const code = String(n).padStart(6, '0');
      if (!valid.has(code)) return code;
    }
  }

  const WALLET = 'scan@acme.com';
  let enrollUrl: string;
  let secret: string;

  it('the owner scans the QR code (decoded from the screenshot: the key on the page), types its code, activates; the factor is listed, a later code signs, the activation code is code_reused', async () => {
    enrollUrl = await createLink(WALLET);
    const page = await newPage();
    assert.equal((await page.goto(enrollUrl))?.status(), 200);
    assert.equal(await h1(page), SETUP_TITLE);
    assert.ok(await showsText(page, WALLET), 'the wallet name is shown, in the app’s box');
    await inspectPage(page, 'enrollment-pending');

    const uri = await decodeQr(page);
    assert.ok(uri.startsWith('otpauth://totp/'), 'an otpauth TOTP URI');
    secret = await secretShown(page);
    assert.equal((new URL(uri).searchParams.get('secret') ?? '').replace(/=+$/, '').toUpperCase(), secret, 'the QR code holds the key written on the page');
    assert.deepEqual(await factorsOf(WALLET), [], 'nothing enrolled before the code');

    const code = totpFromUri(uri, signer.clock.now);
    const response = await activate(page, code);
    assert.equal(response.status(), 200);
    assert.equal(await h1(page), 'Authenticator active');
    assert.ok(await showsText(page, 'TOTP is active for this wallet'));
    assert.equal(await page.locator('img.qr').count(), 0);
    assert.ok(!(await page.content()).includes(secret), 'no secret on the result page');
    await inspectPage(page, 'enrollment-active');

    assert.deepEqual(await factorsOf(WALLET), ['totp']);
    // the code that activated the factor is spent
    assertErrorCode(await signHash(WALLET, code), 403, 'code_reused');
    // the authenticator's next code (30 s later on the signer's clock) signs
    signer.clock.now += 30_000;
    const signed = await signHash(WALLET, totpFromUri(uri, signer.clock.now));
    assert.equal(signed.status, 200, JSON.stringify(signed.body));
    assert.match(String(signed.body.signature), /^0x[0-9a-f]{130}$/);
    assertQuietConsole(page);
  });

  it('the link opened again after activation: it says it was used, and shows no QR code, no key, no form', async () => {
    assert.ok(enrollUrl && secret, 'the previous test enrolled');
    const page = await newPage();
    assert.equal((await page.goto(enrollUrl))?.status(), 200);
    assert.equal(await h1(page), SETUP_TITLE);
    assert.ok(await showsText(page, 'This link was already used: the factor it enrolled is active.'));
    assert.equal(await page.locator('img').count(), 0, 'no QR code');
    assert.equal(await page.locator('p.secret').count(), 0, 'no key');
    assert.equal(await page.locator('form').count(), 0, 'no form');
    const html = await page.content();
    assert.ok(!html.includes(secret) && !html.includes(`${secret.slice(0, 4)} ${secret.slice(4, 8)}`), 'the secret appears nowhere');
    assert.ok(!html.includes('otpauth'), 'no otpauth URI');
    await inspectPage(page, 'enrollment-used');
    assertQuietConsole(page);
  });

  it('a wrong code typed: the refusal is shown, the form stays, nothing is enrolled', async () => {
    const wallet = 'typo@acme.com';
    const url = await createLink(wallet);
    const page = await newPage();
    await page.goto(url);
    const uri = await decodeQr(page);
    const response = await activate(page, wrongCode(uri));
    assert.equal(response.status(), 403);
    assert.equal(
      ((await page.getByRole('alert').textContent()) ?? '').trim(),
      'Wrong code. Nothing was enrolled. Check that the app shows this wallet’s new entry, and type its current code.',
    );
    assert.equal(await h1(page), SETUP_TITLE);
    assert.ok(await page.getByRole('button', { name: 'Activate' }).isVisible(), 'the form is there to try again');
    await inspectPage(page, 'enrollment-wrong-code');
    assert.deepEqual(await factorsOf(wallet), [], 'the factor is not active');
    assertQuietConsole(page, [
      /^error: Failed to load resource: the server responded with a status of 403 \(Forbidden\) \(http:\/\/localhost:\d+\/enroll\/[\w-]{43}\)$/,
    ]);
  });

  it('a cross-site form auto-posting to /enroll/<capability> (a valid code, the real form token) is refused and enrols nothing', async () => {
    const wallet = 'victim@acme.com';
    const url = await createLink(wallet);
    // the owner has the page open in this browser (its form cookie is set): the best case for an attacker
    const page = await newPage();
    await page.goto(url);
    const uri = await decodeQr(page);
    const realCsrf = await page.locator('input[name=csrf]').inputValue();
    const code = totpFromUri(uri, signer.clock.now);
    foreign.pages.set(
      '/enrol',
      `<!doctype html><title>win a prize</title><form method="post" action="${url}"><input name="csrf" value="${realCsrf}"><input name="code" value="${code}"></form><script>document.forms[0].submit()</script>`,
    );
    const attack = await page.context().newPage();
    const [response] = await Promise.all([
      attack.waitForResponse((r) => r.url() === url && r.request().method() === 'POST'),
      attack.goto(`${foreign.origin}/enrol`),
    ]);
    await attack.waitForURL(url);
    assert.equal(response.status(), 403);
    assert.equal(await h1(attack), 'Form refused');
    assert.ok(await showsText(attack, 'Nothing was enrolled.'));
    await attack.close();
    assert.deepEqual(await factorsOf(wallet), [], 'nothing enrolled');
    // the code was good and the link untouched: the owner's own form activates with it
    assert.equal((await activate(page, code)).status(), 200);
    assert.deepEqual(await factorsOf(wallet), ['totp']);
    assertQuietConsole(page);
  });
});
