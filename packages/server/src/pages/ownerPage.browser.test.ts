import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Page } from 'playwright-core';
import { assertErrorCode, assertQuietConsole, h1, inspectPage, type PageHarness, showsText, startPageHarness, watchConsole } from '../testing/browserPages.js';
import { chromiumForTests } from '../testing/chromium.js';
import { RAW_HASHES_ALLOWED, recordTestSecret } from '../testing/createTestSigner.js';
import { totpFromUri } from '../testing/totpFromUri.js';

// "This was not me" in a real browser (issue 13 point 3, docs/freeze.md): from the approval page's
// link to the owner page, its activity, the freeze button (the page's own form post under
// Referrer-Policy: no-referrer), a cross-site post refused, accessibility and a 360 px phone.

const chromium = chromiumForTests();
const WALLET = 'not-me@acme.com';
const HASH = `0x${'ab'.repeat(32)}`;

describe('the owner page ("this was not me") in Chromium', { skip: chromium.skip }, () => {
  let harness: PageHarness;
  let otpauthUri: string;

  before(async () => {
    harness = await startPageHarness(chromium.executablePath ?? '', 'owner page browser suite', { policyDefaults: RAW_HASHES_ALLOWED });
    const enrolled = await harness.api('POST', '/v1/totp/enroll', { walletName: WALLET });
    assert.equal(enrolled.status, 200, JSON.stringify(enrolled.body));
    otpauthUri = String(enrolled.body.otpauthUri);
  });
  after(() => harness?.close());

  async function submit(page: Page, button: string): Promise<number> {
    const [response] = await Promise.all([
      page.waitForResponse((r) => r.request().method() === 'POST' && r.request().isNavigationRequest()),
      page.waitForEvent('framenavigated', { predicate: (frame) => frame === page.mainFrame() }),
      page.getByRole('button', { name: button }).click(),
    ]);
    await page.waitForLoadState('load');
    return response.status();
  }

  it('from the approval page to the owner page: the activity shown, a cross-site post refused, the owner’s button freezes; nothing signs after', async () => {
    const { signer, foreign } = harness;
    // One signature, so that the activity has a line of it.
    signer.clock.now += 30_000;
    const signed = await harness.api('POST', '/v1/sign/hash', { walletName: WALLET, keyIndex: 0, hash: HASH, code: totpFromUri(otpauthUri, signer.clock.now) });
    assert.equal(signed.status, 200, JSON.stringify(signed.body));
    const created = await harness.api('POST', '/v1/approvals', { walletName: WALLET, keyIndex: 0, operation: { hash: HASH } });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const approveUrl = String(created.body.approveUrl);
    recordTestSecret('approval capability', new URL(approveUrl).pathname.split('/').at(-1) ?? '');

    const page = await harness.newPage();
    await page.goto(approveUrl);
    await Promise.all([page.waitForEvent('framenavigated'), page.getByRole('link', { name: /recent activity, or freeze it/ }).click()]);
    await page.waitForLoadState('load');
    const ownerUrl = page.url();
    assert.match(new URL(ownerUrl).pathname, /^\/owner\/[A-Za-z0-9_-]{43}$/);
    recordTestSecret('owner capability', new URL(ownerUrl).pathname.split('/').at(-1) ?? '');
    assert.equal(await h1(page), 'Your wallet’s recent activity');
    assert.ok(await showsText(page, 'Signed a raw hash'));
    assert.ok(await showsText(page, 'Approval requested'));
    await inspectPage(page, 'owner-page');

    // A site of another origin posting the freeze form (even with the real token) freezes nothing.
    const realCsrf = await page.locator('#freeze-form input[name=csrf]').inputValue();
    foreign.pages.set(
      '/freeze',
      `<!doctype html><title>x</title><form method="post" action="${ownerUrl}"><input name="csrf" value="${realCsrf}"><input name="decision" value="freeze"></form><script>document.forms[0].submit()</script>`,
    );
    const attack = await page.context().newPage();
    watchConsole(attack);
    const [response] = await Promise.all([
      attack.waitForResponse((r) => r.url() === ownerUrl && r.request().method() === 'POST'),
      attack.goto(`${foreign.origin}/freeze`),
    ]);
    assert.equal(response.status(), 403);
    await attack.close();
    const [row] = await signer.sql('SELECT frozen_at FROM wallets WHERE name = $1', WALLET);
    assert.equal(row?.frozen_at, null, 'not frozen by the cross-site post');

    // The owner's own button freezes.
    assert.equal(await submit(page, 'This was not me — freeze the wallet'), 200);
    assert.equal(await h1(page), 'This wallet is frozen');
    assert.equal(await page.locator('#wallet-state').getAttribute('data-frozen'), 'true');
    await inspectPage(page, 'owner-page-frozen');
    assertQuietConsole(page);

    signer.clock.now += 30_000;
    assertErrorCode(
      await harness.api('POST', '/v1/sign/hash', { walletName: WALLET, keyIndex: 0, hash: HASH, code: totpFromUri(otpauthUri, signer.clock.now) }),
      423,
      'wallet_frozen',
    );
    assertErrorCode(await harness.api('POST', '/v1/approvals', { walletName: WALLET, keyIndex: 0, operation: { hash: HASH } }), 423, 'wallet_frozen');
  });

  it('from the change page’s "Not you?" link to the owner page: the open change listed, cancelled there with a code', async () => {
    const { signer } = harness;
    const walletName = 'changed@acme.com';
    const enrolled = await harness.api('POST', '/v1/totp/enroll', { walletName });
    assert.equal(enrolled.status, 200, JSON.stringify(enrolled.body));
    const uri = String(enrolled.body.otpauthUri);
    recordTestSecret('otpauth uri', uri);
    const code = () => {
      signer.clock.now += 30_000;
      return totpFromUri(uri, signer.clock.now);
    };
    const requested = await harness.api('POST', '/v1/changes', { walletName, kind: '2fa.disable' });
    assert.equal(requested.status, 201, JSON.stringify(requested.body));
    const changeUrl = String(requested.body.changeUrl);
    recordTestSecret('change capability', new URL(changeUrl).pathname.split('/').at(-1) ?? '');

    const page = await harness.newPage();
    await page.goto(changeUrl);
    await page.locator('#code').fill(code());
    assert.equal(await submit(page, 'Confirm the change'), 200);
    await Promise.all([page.waitForEvent('framenavigated'), page.getByRole('link', { name: /recent activity, or freeze it/ }).click()]);
    await page.waitForLoadState('load');
    assert.match(new URL(page.url()).pathname, /^\/owner\/[A-Za-z0-9_-]{43}$/);
    recordTestSecret('owner capability', new URL(page.url()).pathname.split('/').at(-1) ?? '');
    const item = page.locator(`#open-changes li[data-change-id="${String(requested.body.id)}"]`);
    assert.equal(await item.getAttribute('data-state'), 'pending');
    assert.ok(await showsText(page, 'Turn off two-factor protection'));
    await inspectPage(page, 'owner-page-open-change');

    await item.getByLabel('Code from your authenticator app').fill(code());
    const [response] = await Promise.all([
      page.waitForResponse((r) => r.request().method() === 'POST' && r.request().isNavigationRequest()),
      page.waitForEvent('framenavigated', { predicate: (frame) => frame === page.mainFrame() }),
      item.getByRole('button', { name: 'Cancel this change' }).first().click(),
    ]);
    await page.waitForLoadState('load');
    assert.equal(response.status(), 200);
    assert.ok(await showsText(page, 'Cancelled.'));
    assert.equal(await page.locator('#open-changes').count(), 0);
    const [row] = await signer.sql('SELECT state FROM pending_changes WHERE id = $1', String(requested.body.id));
    assert.equal(row?.state, 'cancelled');
    assertQuietConsole(page);
  });
});
