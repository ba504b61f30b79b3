import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { bootstrapQuorumOffline, computePayloadHash, createApiKey, OPERATOR_TENANT } from '@custos/kernel';
import type { CDPSession, Page } from 'playwright-core';
import { assertQuietConsole, h1, type PageHarness, showsText, startPageHarness } from '../testing/browserPages.js';
import { chromiumForTests } from '../testing/chromium.js';
import { recordTestSecret, TEST_PASSPHRASE } from '../testing/createTestSigner.js';

// Issue 13 point 4 in a real browser, for a quorum of passkey admins only (M = 1 of N = 2, the
// smallest legal set): admin Pat signs in with a discoverable passkey (the sign-in page names no
// credential), proposes a change on the admin page — the kind, the payload as JSON, the draft shown
// in full with its hash before the passkey signs — and admin Quinn, in another browser, signs in
// and approves it: the change applies. Chromium's DevTools virtual authenticator holds each passkey.

const chromium = chromiumForTests();
const KIND = 'deployment.settings';
const PAYLOAD = { timelockDelaySeconds: 10800, webhookUrl: null, policyDefaults: {} };

interface AdminBrowser {
  page: Page;
  cdp: CDPSession;
  authenticatorId: string;
}

describe('proposing on the admin page in Chromium (a quorum of passkey admins only)', { skip: chromium.skip }, () => {
  let harness: PageHarness;
  let operatorKey: string;
  const admins: Record<string, { browser: AdminBrowser; adminId: string }> = {};
  let proposalId = '';

  before(async () => {
    harness = await startPageHarness(chromium.executablePath ?? '', 'admin page propose browser suite', { passkeys: true });
    operatorKey = (await createApiKey(harness.signer.store, { name: 'operator', scopes: ['admin'], tenant: OPERATOR_TENANT })).token;
  });
  after(() => harness?.close());

  async function adminBrowser(): Promise<AdminBrowser> {
    const page = await harness.newPage();
    const cdp = await page.context().newCDPSession(page);
    await cdp.send('WebAuthn.enable', { enableUI: false });
    const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
      options: {
        protocol: 'ctap2',
        transport: 'internal',
        hasResidentKey: true,
        hasUserVerification: true,
        isUserVerified: true,
        automaticPresenceSimulation: true,
      },
    });
    return { page, cdp, authenticatorId };
  }

  /** Presses a passkey button and waits for the form's post to land. */
  async function pressPasskey(page: Page, button: string): Promise<number> {
    await page.locator('#passkey-step[data-state="ready"]').waitFor({ timeout: 10_000 });
    const [response] = await Promise.all([
      page.waitForResponse((r) => r.request().method() === 'POST' && r.request().isNavigationRequest(), { timeout: 20_000 }),
      page.waitForEvent('framenavigated', { predicate: (frame) => frame === page.mainFrame(), timeout: 20_000 }),
      page.getByRole('button', { name: button }).click(),
    ]);
    await page.waitForLoadState('load');
    return response.status();
  }

  async function signIn(page: Page): Promise<void> {
    await page.goto(`${harness.publicUrl}/admin/`);
    assert.equal(await h1(page), 'Admin sign-in');
    // the open sign-in page names no credential: the passkey is found by the browser (discoverable)
    const options = JSON.parse((await page.locator('#passkey-step').getAttribute('data-options')) ?? '{}') as { allowCredentials?: unknown[] };
    assert.deepEqual(options.allowCredentials ?? [], []);
    assert.equal(await pressPasskey(page, 'Sign in with passkey'), 200);
    assert.equal(await h1(page), 'Proposals');
  }

  it('two admins register discoverable passkeys; the set is bootstrapped with them only (M = 1, N = 2)', async () => {
    for (const name of ['Pat', 'Quinn']) {
      const made = await harness.signer.app.inject({
        method: 'POST',
        url: '/v1/admin/passkey-links',
        headers: harness.signer.auth(operatorKey),
        payload: { name },
      });
      assert.equal(made.statusCode, 200, made.body);
      const url = String(made.json().url);
      recordTestSecret('admin enrolment capability', url.slice(url.lastIndexOf('/') + 1));
      const browser = await adminBrowser();
      await browser.page.goto(url);
      assert.equal(await pressPasskey(browser.page, 'Create a passkey'), 200);
      const adminId = await browser.page.locator('#admin-enrolled').getAttribute('data-admin');
      assert.match(adminId ?? '', /^pk:[0-9a-f]{64}$/);
      // the virtual authenticator holds it as a resident (discoverable) credential
      const { credentials } = (await browser.cdp.send('WebAuthn.getCredentials', { authenticatorId: browser.authenticatorId })) as {
        credentials: Array<{ isResidentCredential: boolean }>;
      };
      assert.deepEqual(
        credentials.map((c) => c.isResidentCredential),
        [true],
      );
      admins[name] = { browser, adminId: adminId as string };
    }
    await bootstrapQuorumOffline({
      store: harness.signer.store,
      credential: { type: 'passphrase', passphrase: new TextEncoder().encode(TEST_PASSPHRASE) },
      quorum: { threshold: 1, admins: [admins.Pat?.adminId, admins.Quinn?.adminId].map((publicKey, i) => ({ publicKey, email: `admin-${i}@example.com` })) },
      now: () => harness.signer.clock.now,
    });
  });

  it('Pat signs in (no credential named), proposes: the draft shows the payload, its description and hash before the passkey step; the passkey proposes it', async () => {
    const { page } = admins.Pat?.browser as AdminBrowser;
    await signIn(page);
    await page.getByRole('link', { name: 'Propose a change' }).click();
    await page.waitForLoadState('load');
    assert.equal(await h1(page), 'Propose a change');
    await page.selectOption('#kind', KIND);
    await page.fill('#payload', JSON.stringify(PAYLOAD, null, 2));
    await Promise.all([
      page.waitForEvent('framenavigated', { predicate: (f) => f === page.mainFrame() }),
      page.getByRole('button', { name: 'Review the proposal' }).click(),
    ]);
    await page.waitForLoadState('load');
    assert.equal(await h1(page), 'Review the proposal');
    assert.deepEqual(JSON.parse(await page.locator('#draft-payload').innerText()), PAYLOAD);
    assert.ok(await showsText(page, computePayloadHash(KIND, PAYLOAD)));
    assert.ok(await showsText(page, '10800'), 'the description');
    proposalId = (await page.locator('#draft').getAttribute('data-id')) ?? '';
    assert.match(proposalId, /^[0-9a-f]{32}$/);
    // nothing is proposed before the passkey step
    assert.equal(Number((await harness.signer.sql('SELECT count(*) AS n FROM proposals'))[0]?.n), 0);
    assert.equal(await pressPasskey(page, 'Propose'), 200);
    assert.ok(await showsText(page, 'Proposed.'));
    assert.equal(await page.locator('#proposal').getAttribute('data-id'), proposalId);
    assert.equal(await page.locator('#proposal').getAttribute('data-state'), 'pending');
    assert.ok(await showsText(page, admins.Pat?.adminId as string), 'Pat is the proposer');
    assertQuietConsole(page);
  });

  it('Quinn signs in and approves on the page: M = 1 is met, the change applies', async () => {
    const { page } = admins.Quinn?.browser as AdminBrowser;
    await signIn(page);
    await page.goto(`${harness.publicUrl}/admin/proposals/${proposalId}`);
    assert.equal(await pressPasskey(page, 'Approve'), 200);
    assert.ok(await showsText(page, 'the quorum is met'));
    assert.equal(await page.locator('#proposal').getAttribute('data-state'), 'applied');
    assert.equal((await harness.signer.kernel.readDeploymentSettings()).timelockDelaySeconds, 10800);
    const [apply] = await harness.signer.sql("SELECT detail FROM audit_log WHERE action = 'quorum.apply' AND decision = 'allowed' ORDER BY seq DESC LIMIT 1");
    const detail = (typeof apply?.detail === 'string' ? JSON.parse(apply.detail) : apply?.detail) as { approvers: string[]; proposer: string };
    assert.deepEqual([detail.proposer, detail.approvers], [admins.Pat?.adminId, [admins.Quinn?.adminId]]);
    assertQuietConsole(page);
  });
});
