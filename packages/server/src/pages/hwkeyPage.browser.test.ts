import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import type { Page } from 'playwright-core';
import { h1, type PageHarness, startPageHarness } from '../testing/browserPages.js';
import { chromiumForTests } from '../testing/chromium.js';
import { RAW_HASHES_ALLOWED, recordTestSecret } from '../testing/createTestSigner.js';
import { standInCard } from '../testing/standInCard.js';

// Issue 12, point 1 (the card's `bound` rests on the browser it was enrolled in), in Chromium against
// a real listening signer: the device cookie the enrolment's response sets (Path=/approve/, from a
// response under /enroll/, SameSite=Strict) is kept by a real browser and sent back by the approval
// page's own forms, so the owner approves `bound` there; another browser context (no cookie) is
// refused consent_too_weak at the challenge, with the page saying why.

const chromium = chromiumForTests();
const HASH = `0x${'cd'.repeat(32)}`;
const SUBPATH = '0/7';

describe('the hardware key’s device cookie in Chromium', { skip: chromium.skip }, () => {
  let harness: PageHarness;
  before(async () => {
    harness = await startPageHarness(chromium.executablePath ?? '', 'hwkey browser suite', { policyDefaults: RAW_HASHES_ALLOWED });
  });
  after(() => harness?.close());

  const digestOn = async (page: Page) => ((await page.locator('#hwkey-digest').textContent()) ?? '').trim();

  it('enrolled in one browser: that browser approves bound (and it signs); another browser is refused consent_too_weak at the challenge', async () => {
    const card = standInCard(randomBytes(32));
    const link = await harness.api('POST', '/v1/enrollments', { walletName: 'browser-card', kind: 'hwkey' });
    assert.equal(link.status, 201, JSON.stringify(link.body));
    const enrollUrl = String(link.body.enrollUrl);
    recordTestSecret('enrolment url', enrollUrl);
    const owner = await harness.newPage();
    await owner.goto(enrollUrl);
    await owner.fill('#xpub', card.xpub);
    await owner.fill('#subpath', SUBPATH);
    await owner.fill('#signature', card.sign(await digestOn(owner), SUBPATH));
    await Promise.all([owner.waitForURL(enrollUrl), owner.click('#hwkey-form button[type=submit]')]);
    assert.equal(await h1(owner), 'Hardware key active');
    const cookies = await owner.context().cookies();
    const device = cookies.find((c) => c.name.startsWith('custos_hwkey_'));
    assert.ok(device, 'the browser keeps the device cookie');
    recordTestSecret('device cookie', device.value);
    assert.deepEqual({ path: device.path, httpOnly: device.httpOnly, sameSite: device.sameSite }, { path: '/approve/', httpOnly: true, sameSite: 'Strict' });

    const created = await harness.api('POST', '/v1/approvals', { walletName: 'browser-card', keyIndex: 0, operation: { hash: HASH } });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const approveUrl = String(created.body.approveUrl);
    recordTestSecret('approve url', approveUrl);

    // another browser (its own cookie jar): the card step is refused, nothing issued
    const other = await harness.newPage();
    await other.goto(approveUrl);
    await other.click('#hwkey-challenge-form button[type=submit]');
    await other.waitForSelector('[data-code="consent_too_weak"]');
    assert.match((await other.locator('[data-code]').textContent()) ?? '', /approves only in the browser it was added in/);
    assert.equal(await other.locator('#hwkey-digest').count(), 0);

    // the owner's browser: the challenge, the card's answer, approved bound, and it signs
    await owner.goto(approveUrl);
    await owner.click('#hwkey-challenge-form button[type=submit]');
    await owner.waitForSelector('#hwkey-digest');
    await owner.fill('#signature', card.sign(await digestOn(owner), SUBPATH));
    await owner.click('#hwkey-form button[type=submit]');
    await owner.waitForSelector('h1:text("Approved")');
    const view = await harness.api('GET', `/v1/approvals/${String(created.body.id)}`);
    assert.equal(view.body.state, 'approved', JSON.stringify(view.body));
    const signed = await harness.api('POST', '/v1/sign/hash', { walletName: 'browser-card', keyIndex: 0, hash: HASH, approvalId: created.body.id });
    assert.equal(signed.status, 200, JSON.stringify(signed.body));
    const [row] = await harness.signer.sql('SELECT evidence FROM approvals WHERE id = $1', String(created.body.id));
    assert.equal((JSON.parse(String(row?.evidence)) as { strength: string }).strength, 'bound');
  });
});
