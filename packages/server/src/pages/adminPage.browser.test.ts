import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  type AdminStatement,
  type App,
  bootstrapQuorumOffline,
  computePayloadHash,
  createApiKey,
  generateAdminKey,
  OPERATOR_TENANT,
  PROPOSE_LABEL,
  parseAdminKeyFile,
  signAdminMessage,
} from '@custos/kernel';
import type { CDPSession, Page } from 'playwright-core';
import { assertQuietConsole, h1, inspectPage, type PageHarness, showsText, startPageHarness, watchConsole } from '../testing/browserPages.js';
import { chromiumForTests } from '../testing/chromium.js';
import { recordTestSecret, TEST_PASSPHRASE } from '../testing/createTestSigner.js';

// Issue 13 point 4 in a real browser: a new admin registers a passkey on the admin enrolment link
// (Chromium's DevTools virtual authenticator), the admins bootstrap the set with it, and two
// passkey admins sign in on the admin page, read a proposal in full and approve it — the second
// approval applies it. A GET changes nothing; a cross-site post approves nothing.

const chromium = chromiumForTests();
const KIND = 'deployment.settings';
const PAYLOAD = { timelockDelaySeconds: 9000, webhookUrl: null, policyDefaults: {} };

interface AdminBrowser {
  page: Page;
  cdp: CDPSession;
}

describe('the admin page in Chromium (passkey admins)', { skip: chromium.skip }, () => {
  let harness: PageHarness;
  let operator: App;
  let operatorKey: string;
  const A = parseAdminKeyFile(JSON.stringify(generateAdminKey()));
  const B = parseAdminKeyFile(JSON.stringify(generateAdminKey()));
  const admins: Record<string, { browser: AdminBrowser; adminId: string }> = {};
  let proposalId = '';

  before(async () => {
    harness = await startPageHarness(chromium.executablePath ?? '', 'admin page browser suite', { passkeys: true });
    operatorKey = (await createApiKey(harness.signer.store, { name: 'operator', scopes: ['admin'], tenant: OPERATOR_TENANT })).token;
    operator = await harness.signer.kernel.authenticateApiKey(operatorKey);
  });
  after(() => harness?.close());

  async function adminBrowser(): Promise<AdminBrowser> {
    const page = await harness.newPage();
    const cdp = await page.context().newCDPSession(page);
    await cdp.send('WebAuthn.enable', { enableUI: false });
    await cdp.send('WebAuthn.addVirtualAuthenticator', {
      options: {
        protocol: 'ctap2',
        transport: 'internal',
        hasResidentKey: true,
        hasUserVerification: true,
        isUserVerified: true,
        automaticPresenceSimulation: true,
      },
    });
    return { page, cdp };
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

  async function counts(): Promise<{ audit: number; approvals: number; proposals: string }> {
    const [audit] = await harness.signer.sql('SELECT count(*) AS n FROM audit_log');
    const [approvals] = await harness.signer.sql('SELECT count(*) AS n FROM proposal_approvals');
    const rows = await harness.signer.sql('SELECT id, state, mac FROM proposals ORDER BY id');
    return { audit: Number(audit?.n), approvals: Number(approvals?.n), proposals: JSON.stringify(rows) };
  }

  it('a new admin registers a passkey on the link (a candidate); the link then works no more', async () => {
    for (const name of ['Pat', 'Quinn']) {
      const made = await harness.signer.app.inject({
        method: 'POST',
        url: '/v1/admin/passkey-links',
        headers: harness.signer.auth(operatorKey),
        payload: { name },
      });
      assert.equal(made.statusCode, 200, made.body);
      const url = String(made.json().url);
      const capability = new RegExp(`^${harness.publicUrl}/admin/enroll/([A-Za-z0-9_-]{43})$`).exec(url)?.[1];
      assert.ok(capability, url);
      recordTestSecret('admin enrolment capability', capability);
      const browser = await adminBrowser();
      await browser.page.goto(url);
      assert.equal(await h1(browser.page), 'Register your admin passkey');
      if (name === 'Pat') await inspectPage(browser.page, 'admin-enrol');
      assert.equal(await pressPasskey(browser.page, 'Create a passkey'), 200);
      const adminId = await browser.page.locator('#admin-enrolled').getAttribute('data-admin');
      assert.match(adminId ?? '', /^pk:[0-9a-f]{64}$/);
      admins[name] = { browser, adminId: adminId as string };
      // the link again: used, no passkey step
      await browser.page.goto(url);
      assert.ok(await showsText(browser.page, 'This link was used already'));
      assert.equal(await browser.page.locator('#passkey-step').count(), 0);
      assertQuietConsole(browser.page);
    }
    const candidates = await harness.signer.kernel.listAdminCandidates(operator);
    assert.deepEqual(
      candidates.map((c) => c.inAdminSet),
      [false, false],
    );
  });

  it('the candidates join by the bootstrap; admin A proposes', async () => {
    const pat = admins.Pat?.adminId as string;
    const quinn = admins.Quinn?.adminId as string;
    await bootstrapQuorumOffline({
      store: harness.signer.store,
      credential: { type: 'passphrase', passphrase: new TextEncoder().encode(TEST_PASSPHRASE) },
      // every admin with its address (docs/quorum.md "Every admin is told")
      quorum: {
        threshold: 2,
        admins: [
          { publicKey: A.publicKey, email: 'alice@admins.example.com' },
          { publicKey: B.publicKey, email: 'bob@admins.example.com' },
          { publicKey: pat, email: 'pat@admins.example.com' },
          { publicKey: quinn, email: 'quinn@admins.example.com' },
        ],
      },
      now: () => harness.signer.clock.now,
    });
    proposalId = `${'be'.repeat(8)}${'0'.repeat(15)}1`;
    const expiresAt = harness.signer.clock.now + 3600_000;
    const statement: AdminStatement = {
      signerId: harness.signer.kernel.signerId as string,
      id: proposalId,
      proposer: A.publicKey,
      expiresAt,
      payloadHash: computePayloadHash(KIND, PAYLOAD),
    };
    await harness.signer.kernel.proposeChange(operator, {
      id: proposalId,
      kind: KIND,
      payload: PAYLOAD,
      proposer: A.publicKey,
      expiresAt,
      signature: signAdminMessage(A.privateKey, PROPOSE_LABEL, statement),
    });
  });

  it('without a session the proposal page is the login; GETs change nothing; the passkey login lists the proposals', async () => {
    const { page } = admins.Pat?.browser as AdminBrowser;
    const before = await counts();
    const direct = await page.goto(`${harness.publicUrl}/admin/proposals/${proposalId}`);
    assert.equal(direct?.status(), 401);
    assert.equal(await h1(page), 'Admin sign-in');
    await page.goto(`${harness.publicUrl}/admin/`);
    assert.equal(await h1(page), 'Admin sign-in');
    assert.deepEqual(await counts(), before, 'a GET of the admin pages wrote nothing');
    assert.equal(await pressPasskey(page, 'Sign in with passkey'), 200);
    assert.equal(await h1(page), 'Proposals');
    const cookies = await page.context().cookies();
    const session = cookies.find((c) => c.name === 'custos_admin');
    assert.ok(session);
    recordTestSecret('admin session', session.value);
    assert.equal(session.httpOnly, true);
    assert.equal(session.sameSite, 'Strict');
    assert.equal(session.path, '/admin/');
    assert.equal(await page.locator(`#proposals li[data-id="${proposalId}"]`).count(), 1);
    // and what every admin was told: A's proposal, in full
    const notice = page.locator('#notices li[data-event="proposal"]');
    assert.equal(await notice.count(), 1);
    assert.match((await notice.locator('pre').textContent()) ?? '', new RegExp(`Proposal ${proposalId} \\(deployment.settings\\)`));
  });

  it('the proposal in full; a cross-site post approves nothing; “Approve” records Pat’s approval (1 of 2, not applied)', async () => {
    const { page } = admins.Pat?.browser as AdminBrowser;
    const url = `${harness.publicUrl}/admin/proposals/${proposalId}`;
    const before = await counts();
    await page.goto(url);
    await page.goto(url);
    assert.deepEqual(await counts(), before, 'reading the proposal (twice) wrote nothing');
    assert.equal(await h1(page), 'Proposal');
    assert.equal(await page.locator('#proposal').getAttribute('data-state'), 'pending');
    assert.deepEqual(JSON.parse(await page.locator('#proposal-payload').innerText()), PAYLOAD);
    assert.ok(await showsText(page, computePayloadHash(KIND, PAYLOAD)));
    assert.ok(await showsText(page, A.publicKey));
    await inspectPage(page, 'admin-proposal');

    // A site of another origin posting the approve form (with the real token): refused, nothing recorded.
    const csrf = await page.locator('#passkey-form input[name=csrf]').inputValue();
    const payloadHash = await page.locator('#passkey-form input[name=payloadHash]').inputValue();
    harness.foreign.pages.set(
      '/approve-admin',
      `<!doctype html><title>x</title><form method="post" action="${url}"><input name="csrf" value="${csrf}"><input name="payloadHash" value="${payloadHash}"><input name="proof" value="{}"></form><script>document.forms[0].submit()</script>`,
    );
    const attack = await page.context().newPage();
    watchConsole(attack);
    const [response] = await Promise.all([
      attack.waitForResponse((r) => r.url() === url && r.request().method() === 'POST'),
      attack.goto(`${harness.foreign.origin}/approve-admin`),
    ]);
    assert.equal(response.status(), 403);
    await attack.close();
    assert.equal((await counts()).approvals, 0);

    assert.equal(await pressPasskey(page, 'Approve'), 200);
    assert.ok(await showsText(page, 'Approved.'));
    assert.equal(await page.locator(`#approvals li[data-admin="${admins.Pat?.adminId}"]`).count(), 1);
    assert.equal(await page.locator('#proposal').getAttribute('data-state'), 'pending');
    assert.equal((await harness.signer.kernel.readDeploymentSettings()).timelockDelaySeconds, 48 * 3600);
    // (the proposal page opened without a session answered 401, above)
    assertQuietConsole(page, [/status of 401 \(Unauthorized\) \(http:\/\/localhost:\d+\/admin\/proposals\/[0-9a-f]{32}\)$/]);
  });

  it('a second passkey admin signs in and approves: M is met, the change applies, audited with both approvers', async () => {
    const { page } = admins.Quinn?.browser as AdminBrowser;
    await page.goto(`${harness.publicUrl}/admin/`);
    assert.equal(await pressPasskey(page, 'Sign in with passkey'), 200);
    await page.goto(`${harness.publicUrl}/admin/proposals/${proposalId}`);
    assert.equal(await pressPasskey(page, 'Approve'), 200);
    assert.ok(await showsText(page, 'the quorum is met'));
    assert.equal(await page.locator('#proposal').getAttribute('data-state'), 'applied');
    assert.equal((await harness.signer.kernel.readDeploymentSettings()).timelockDelaySeconds, 9000);
    const [apply] = await harness.signer.sql("SELECT detail FROM audit_log WHERE action = 'quorum.apply' AND decision = 'allowed' ORDER BY seq DESC LIMIT 1");
    const detail = (typeof apply?.detail === 'string' ? JSON.parse(apply.detail) : apply?.detail) as { approvers: string[]; proposalId: string };
    assert.equal(detail.proposalId, proposalId);
    assert.deepEqual(detail.approvers.sort(), [admins.Pat?.adminId, admins.Quinn?.adminId].sort());
    assertQuietConsole(page);
  });
});
