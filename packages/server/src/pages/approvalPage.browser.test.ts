import assert from 'node:assert/strict';
import { copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Page, Response } from 'playwright-core';
import {
  assertErrorCode,
  assertQuietConsole,
  consoleLines,
  type ForeignSite,
  h1,
  inspectPage as inspectAnyPage,
  type PageHarness,
  showsText,
  startPageHarness,
  watchConsole,
} from '../testing/browserPages.js';
import { chromiumForTests } from '../testing/chromium.js';
import { recordTestSecret, type TestSigner } from '../testing/createTestSigner.js';
import { REPO_ROOT } from '../testing/runCustos.js';
import { totpFromUri } from '../testing/totpFromUri.js';

// Issue 11, point 6: the approval page proven in a real browser (Debian's Chromium, driven by
// playwright-core) against a real listening signer — the owner's whole path (read, type the code,
// approve or reject, the backend's long poll and sign), the swap, expiry, a wrong code, framing and
// cross-site posts from another origin, accessibility (axe-core), CSP violations in the console, a
// 360 px phone without horizontal scroll, and screenshots of every page (artifacts/screenshots/;
// CUSTOS_UPDATE_DOCS_SCREENSHOT=1 also rewrites docs/images/approval-page-phone.png).

const chromium = chromiumForTests();

const WALLET = 'owner@acme.com';
const TO = '0x3535353535353535353535353535353535353535';
/** 0.25 ETH to TO on mainnet. */
const TRANSACTION = {
  type: 'eip1559',
  chainId: 1,
  nonce: 7,
  to: TO,
  value: '250000000000000000',
  gas: '21000',
  maxFeePerGas: '30000000000',
  maxPriorityFeePerGas: '2000000000',
};
const DOCS_SCREENSHOT = join(REPO_ROOT, 'docs', 'images', 'approval-page-phone.png');

interface Created {
  id: string;
  approveUrl: string;
  state: string;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('the approval page in Chromium', { skip: chromium.skip }, () => {
  let harness: PageHarness;
  let signer: TestSigner;
  let publicUrl: string;
  let foreign: ForeignSite;
  let otpauthUri: string;

  before(async () => {
    harness = await startPageHarness(chromium.executablePath ?? '', 'browser suite');
    ({ signer, publicUrl, foreign } = harness);
    const enrolled = await api('POST', '/v1/totp/enroll', { walletName: WALLET });
    assert.equal(enrolled.status, 200, JSON.stringify(enrolled.body));
    otpauthUri = String(enrolled.body.otpauthUri);
  });
  after(() => harness?.close());

  /** The backend's call to the native API, over HTTP with the API key. */
  const api: PageHarness['api'] = (...args) => harness.api(...args);

  async function createApproval(extra: Record<string, unknown> = {}, transaction: Record<string, unknown> = TRANSACTION): Promise<Created> {
    const res = await api('POST', '/v1/approvals', { walletName: WALLET, keyIndex: 0, operation: { transaction }, ...extra });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    const created = res.body as unknown as Created;
    assert.equal(new URL(created.approveUrl).origin, publicUrl);
    recordTestSecret('approval capability', new URL(created.approveUrl).pathname.split('/').at(-1) ?? '');
    return created;
  }

  async function stateOf(id: string): Promise<string> {
    const res = await api('GET', `/v1/approvals/${id}`);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    return String(res.body.state);
  }

  function signTransaction(approvalId: string, transaction: Record<string, unknown> = TRANSACTION) {
    return api('POST', '/v1/sign/transaction', { walletName: WALLET, keyIndex: 0, transaction, approvalId });
  }

  /** The code the owner's authenticator shows, in a fresh 30 s step (each accepted code spends its step). */
  function nextCode(): string {
    signer.clock.now += 30_000;
    return totpFromUri(otpauthUri, signer.clock.now);
  }

  /** A 6-digit code valid in no step near now. */
  function wrongCode(): string {
    const valid = new Set([-1, 0, 1].map((offset) => totpFromUri(otpauthUri, signer.clock.now, offset)));
    for (let n = 0; ; n++) {
      const code = String(n).padStart(6, '0');
      if (!valid.has(code)) return code;
    }
  }

  /** A page in a fresh browser context (its own cookies), phone-sized, recording console errors. */
  const newPage = () => harness.newPage();

  /** Submits the form holding `button` and waits for the page the server answers with. */
  async function submit(page: Page, button: 'Approve' | 'Reject'): Promise<Response> {
    const [response] = await Promise.all([
      page.waitForResponse((r) => r.request().method() === 'POST' && r.request().isNavigationRequest()),
      // the answer's document committed, not only its response received: else 'load' may be the old document's
      page.waitForEvent('framenavigated', { predicate: (frame) => frame === page.mainFrame() }),
      page.getByRole('button', { name: button }).click(),
    ]);
    await page.waitForLoadState('load');
    return response;
  }

  /** inspectPage (browserPages.ts); `docs` also rewrites the README's picture on demand. */
  async function inspectPage(page: Page, name: string, { docs = false } = {}): Promise<void> {
    const phoneShot = await inspectAnyPage(page, name);
    if (docs && process.env.CUSTOS_UPDATE_DOCS_SCREENSHOT === '1') {
      copyFileSync(phoneShot, DOCS_SCREENSHOT);
      console.log(`rewrote ${DOCS_SCREENSHOT}`);
    }
  }

  it('TOTP approval: the owner reads the summary, types the code, approves; the long poll started before hears it, the sign succeeds', async () => {
    const created = await createApproval();
    const page = await newPage();
    const opened = await page.goto(created.approveUrl);
    assert.equal(opened?.status(), 200);
    // what will be signed, large and visible: the amount and the recipient
    assert.equal(await h1(page), 'Send 0.25 ETH');
    assert.ok(await showsText(page, TO), 'the recipient is shown');
    assert.ok(await page.locator('dd', { hasText: 'Ethereum' }).first().isVisible(), 'the chain is shown');
    assert.ok(await showsText(page, WALLET), 'the wallet name is shown, in the app’s box');
    await inspectPage(page, 'approval-pending', { docs: true });

    const poll = api('GET', `/v1/approvals/${created.id}?waitSeconds=5`);
    await sleep(300);
    await page.getByLabel('Code from your authenticator app').fill(nextCode());
    const response = await submit(page, 'Approve');
    assert.equal(response.status(), 200);
    assert.equal(await h1(page), 'Approved');
    assert.ok(await showsText(page, 'The app can now have exactly this operation signed, once.'));
    await inspectPage(page, 'approval-approved');

    const answer = await poll;
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
    assert.equal(answer.body.state, 'approved');
    const signed = await signTransaction(created.id);
    assert.equal(signed.status, 200, JSON.stringify(signed.body));
    assert.equal(await stateOf(created.id), 'consumed');
    assertQuietConsole(page);
  });

  it('a batch: the page shows the total and every recipient, readable on a phone; approved with one code, each item then signs once', async () => {
    const payees = ['0x4646464646464646464646464646464646464646', '0x5757575757575757575757575757575757575757', TO];
    const batch = payees.map((to, i) => ({ keyIndex: 0, transaction: { ...TRANSACTION, nonce: 100 + i, to } }));
    const res = await api('POST', '/v1/approvals', { walletName: WALLET, operation: { batch } });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    const created = res.body as unknown as Created;
    recordTestSecret('approval capability', new URL(created.approveUrl).pathname.split('/').at(-1) ?? '');
    const page = await newPage();
    assert.equal((await page.goto(created.approveUrl))?.status(), 200);
    assert.equal(await h1(page), 'Approve a batch of 3 payments');
    assert.ok(await showsText(page, '0.75 ETH'), 'the total is shown');
    for (const to of payees) assert.ok(await showsText(page, to), `recipient ${to} is shown`);
    await inspectPage(page, 'approval-batch');
    await page.getByLabel('Code from your authenticator app').fill(nextCode());
    assert.equal((await submit(page, 'Approve')).status(), 200);
    assert.equal(await h1(page), 'Approved');
    for (const item of batch) {
      const signed = await api('POST', '/v1/sign/transaction', { walletName: WALLET, ...item, approvalId: created.id });
      assert.equal(signed.status, 200, JSON.stringify(signed.body));
    }
    assert.equal(await stateOf(created.id), 'consumed');
    assertQuietConsole(page);
  });

  it('the swap: approved in the page for A, an attempt to sign B (one field changed) with it is approval_mismatch', async () => {
    const created = await createApproval();
    const page = await newPage();
    await page.goto(created.approveUrl);
    await page.getByLabel('Code from your authenticator app').fill(nextCode());
    assert.equal((await submit(page, 'Approve')).status(), 200);
    assert.equal(await h1(page), 'Approved');
    assertErrorCode(await signTransaction(created.id, { ...TRANSACTION, to: `0x${'36'.repeat(20)}` }), 403, 'approval_mismatch');
    assertErrorCode(await signTransaction(created.id, { ...TRANSACTION, value: '250000000000000001' }), 403, 'approval_mismatch');
    // the refused swaps spent nothing: A still signs, once
    assert.equal(await stateOf(created.id), 'approved');
    assert.equal((await signTransaction(created.id)).status, 200);
    assertQuietConsole(page);
  });

  it('rejected in the page: the backend sees rejected, and signing with it is approval_rejected', async () => {
    const created = await createApproval();
    const page = await newPage();
    await page.goto(created.approveUrl);
    const poll = api('GET', `/v1/approvals/${created.id}?waitSeconds=5`);
    await sleep(300);
    const response = await submit(page, 'Reject');
    assert.equal(response.status(), 200);
    assert.equal(await h1(page), 'Rejected');
    assert.ok(await showsText(page, 'Nothing will be signed with this request.'));
    await inspectPage(page, 'approval-rejected');
    assert.equal((await poll).body.state, 'rejected');
    assertErrorCode(await signTransaction(created.id), 403, 'approval_rejected');
    // opened again, the page shows the decision and no form
    await page.goto(created.approveUrl);
    assert.equal(await page.locator('form').count(), 0);
    assert.ok(await showsText(page, 'Rejected on '));
    assertQuietConsole(page);
  });

  it('expired: past its ttl the page says so and shows no form; signing with it is approval_expired', async () => {
    const created = await createApproval({ ttlSeconds: 60 });
    signer.clock.now += 61_000;
    const page = await newPage();
    assert.equal((await page.goto(created.approveUrl))?.status(), 200);
    assert.ok(await showsText(page, 'without a decision. Nothing will be signed with this request.'), 'the page says it expired');
    assert.equal(await page.locator('form').count(), 0, 'no form');
    assert.equal(await page.getByRole('button').count(), 0, 'no button');
    await inspectPage(page, 'approval-expired');
    assertErrorCode(await signTransaction(created.id), 409, 'approval_expired');
    assert.equal(await stateOf(created.id), 'expired');
    assertQuietConsole(page);
  });

  it('a wrong code typed in the page: the refusal is shown above the page, the form stays, the approval stays pending', async () => {
    const created = await createApproval();
    const page = await newPage();
    await page.goto(created.approveUrl);
    signer.clock.now += 30_000;
    await page.getByLabel('Code from your authenticator app').fill(wrongCode());
    const response = await submit(page, 'Approve');
    assert.equal(response.status(), 403);
    assert.equal(
      ((await page.getByRole('alert').textContent()) ?? '').trim(),
      'Wrong code. Nothing was decided. Check the code in your authenticator app and try again.',
    );
    assert.equal(await h1(page), 'Send 0.25 ETH');
    assert.ok(await page.getByRole('button', { name: 'Approve' }).isVisible(), 'the form is there to try again');
    await inspectPage(page, 'approval-wrong-code');
    assert.equal(await stateOf(created.id), 'pending');
    // and the right code still approves from the same page
    await page.getByLabel('Code from your authenticator app').fill(nextCode());
    assert.equal((await submit(page, 'Approve')).status(), 200);
    assert.equal(await stateOf(created.id), 'approved');
    assertQuietConsole(page, [
      /^error: Failed to load resource: the server responded with a status of 403 \(Forbidden\) \(http:\/\/localhost:\d+\/approve\/[\w-]{43}\)$/,
    ]);
  });

  it('framing: a page of another origin cannot show the approval page in an iframe (frame-ancestors, X-Frame-Options)', async () => {
    const created = await createApproval();
    // the control frame (same foreign origin, no protection) proves frames load at all here
    foreign.pages.set('/control', '<!doctype html><title>control</title><h1>control frame</h1>');
    foreign.pages.set(
      '/frame',
      `<!doctype html><title>framer</title><iframe id="victim" title="victim" src="${created.approveUrl}" width="600" height="400"></iframe><iframe id="control" title="control" src="/control"></iframe>`,
    );
    const page = await newPage();
    await page.goto(`${foreign.origin}/frame`);
    await page.waitForLoadState('load');
    const control = page.frames().find((f) => f.url() === `${foreign.origin}/control`);
    assert.ok(control, 'the control frame loaded');
    assert.equal(((await control.locator('h1').textContent()) ?? '').trim(), 'control frame');

    const victim = page.frames().find((f) => f !== page.mainFrame() && f !== control);
    assert.ok(victim, 'the victim iframe has a frame');
    assert.notEqual(victim.url(), created.approveUrl, `the approval page was not committed in the frame (${victim.url()})`);
    const text = await victim.evaluate('document.documentElement ? document.documentElement.innerText : ""').catch(() => '');
    assert.ok(!String(text).includes('Send 0.25 ETH') && !String(text).includes('Approve'), `no approval content in the frame: ${String(text).slice(0, 200)}`);
    assert.ok(
      consoleLines(page).some((line) =>
        /^error: Framing '[^']+' violates the following Content Security Policy directive: "frame-ancestors 'none'"|^error: Refused to display '[^']+' in a frame because it set 'X-Frame-Options' to 'deny'/.test(
          line,
        ),
      ),
      `Chromium reports the refused frame: ${JSON.stringify(consoleLines(page))}`,
    );
    assert.equal(await stateOf(created.id), 'pending');
  });

  it('a cross-site form post to /approve/<capability> (valid code, guessed or even the real csrf) is refused: 403 page, still pending', async () => {
    const created = await createApproval();
    // the owner has the page open in this browser (its form cookie is set) — the best case for an attacker
    const page = await newPage();
    await page.goto(created.approveUrl);
    const realCsrf = await page.locator('input[name=csrf]').first().inputValue();
    const code = nextCode();
    for (const [name, csrf] of [
      ['guessed', '0'.repeat(64)],
      ['real', realCsrf],
    ] as const) {
      foreign.pages.set(
        `/post-${name}`,
        `<!doctype html><title>win a prize</title><form method="post" action="${created.approveUrl}"><input name="csrf" value="${csrf}"><input name="decision" value="approve"><input name="code" value="${code}"></form><script>document.forms[0].submit()</script>`,
      );
      const attack = await page.context().newPage();
      watchConsole(attack);
      const [response] = await Promise.all([
        attack.waitForResponse((r) => r.url() === created.approveUrl && r.request().method() === 'POST'),
        attack.goto(`${foreign.origin}/post-${name}`),
      ]);
      await attack.waitForURL(created.approveUrl);
      assert.equal(response.status(), 403, `${name} csrf`);
      assert.equal(await h1(attack), 'Form refused');
      if (name === 'guessed') await inspectPage(attack, 'form-refused');
      assert.equal(await stateOf(created.id), 'pending', `${name} csrf: nothing decided`);
      await attack.close();
    }
    // the code was good: the owner's own form approves with it
    await page.getByLabel('Code from your authenticator app').fill(code);
    assert.equal((await submit(page, 'Approve')).status(), 200);
    assert.equal(await stateOf(created.id), 'approved');
    assertQuietConsole(page);
  });

  it('the not-found page: an unknown capability, accessible and readable on a phone', async () => {
    const page = await newPage();
    const response = await page.goto(`${publicUrl}/approve/${'A'.repeat(43)}`);
    assert.equal(response?.status(), 404);
    assert.equal(await h1(page), 'Page not found');
    await inspectPage(page, 'not-found');
    assertQuietConsole(page, [
      /^error: Failed to load resource: the server responded with a status of 404 \(Not Found\) \(http:\/\/localhost:\d+\/approve\/A{43}\)$/,
    ]);
  });
});
