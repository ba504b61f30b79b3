import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { CDPSession, Page, Request, Response } from 'playwright-core';
import { recoverTransactionAddress } from 'viem';
import {
  type ApiAnswer,
  assertErrorCode,
  assertQuietConsole,
  h1,
  inspectPage,
  type PageHarness,
  showsText,
  startPageHarness,
} from '../testing/browserPages.js';
import { chromiumForTests } from '../testing/chromium.js';
import { recordTestSecret, type TestSigner } from '../testing/createTestSigner.js';

// Issue 11, point 6 (passkeys): the owner's passkey proven in Debian's Chromium, driven by
// playwright-core, through the DevTools virtual authenticator (WebAuthn domain), against a real
// listening signer whose public URL is http://localhost:<port> (an IP is no valid rpID): the passkey
// registered on the enrolment page, an approval given with it on the approval page and signed with
// the approvalId (the signature recovers to the wallet, the audit record carries the credential, its
// counter and user verification), user verification enforced by the server and not only by the
// browser (an authenticator without UV, the page's options rewritten in flight to 'preferred', so
// that Chromium does make the assertion), a cloned authenticator (its counter behind), the swap,
// rejection, expiry (on the page, and between the assertion and its arrival); axe-core, the console,
// no horizontal scroll at 360 px and screenshots of every passkey page (artifacts/screenshots/).

const chromium = chromiumForTests();

const WALLET = 'passkey@acme.com';
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
const HEADLINE = 'Send 0.25 ETH';

/** A credential as a DevTools virtual authenticator holds it (WebAuthn.getCredentials, WebAuthn.addCredential; binary fields base64). */
interface VirtualCredential {
  credentialId: string;
  isResidentCredential: boolean;
  rpId?: string;
  privateKey: string;
  userHandle?: string;
  signCount: number;
}

/** An owner's browser (a fresh context) with a virtual authenticator in its page. */
interface Owner {
  page: Page;
  cdp: CDPSession;
  authenticatorId: string;
  /** The credentials the authenticator holds now (their counters as they are now). */
  credentials(): Promise<VirtualCredential[]>;
}

interface Created {
  id: string;
  approveUrl: string;
  state: string;
  requiredStrength: string;
}

/** The assertion or attestation a page posted: the SimpleWebAuthn response JSON, found in a form field or as the body. */
function webauthnResponsePosted(request: Request): { id: string; response: Record<string, string> } {
  const body = request.postData() ?? '';
  const candidates = [body, ...new URLSearchParams(body).values()];
  for (const candidate of candidates) {
    try {
      const value = JSON.parse(candidate) as { id?: unknown; response?: unknown };
      if (typeof value?.id === 'string' && typeof value.response === 'object' && value.response !== null)
        return value as { id: string; response: Record<string, string> };
    } catch {
      // not JSON: another field
    }
  }
  assert.fail(`no WebAuthn response in the posted body (${body.length} bytes)`);
}

/** The flags and counter of authenticator data (base64url): rpIdHash 32 B, flags 1 B (UP 0x01, UV 0x04), counter 4 B. */
function authenticatorDataOf(authenticatorData: string): { userPresent: boolean; userVerified: boolean; counter: number } {
  const bytes = Buffer.from(authenticatorData, 'base64url');
  const flags = bytes[32] ?? 0;
  return { userPresent: (flags & 0x01) !== 0, userVerified: (flags & 0x04) !== 0, counter: bytes.readUInt32BE(33) };
}

/** The credential id as the server names it (base64url) from the authenticator's (base64). */
const credentialIdOf = (credential: VirtualCredential) => Buffer.from(credential.credentialId, 'base64').toString('base64url');

/** Rewrites `"userVerification":"required"` (as JSON, or JSON inside an HTML attribute) to 'preferred'; the count of rewrites. */
function preferUserVerification(text: string): { text: string; rewritten: number } {
  let rewritten = 0;
  const out = text.replace(
    /userVerification(\\?"|&quot;|&#34;)(\s*):(\s*)(\\?"|&quot;|&#34;)required\4/g,
    (_match, q1: string, s1: string, s2: string, q2: string) => {
      rewritten++;
      return `userVerification${q1}${s1}:${s2}${q2}preferred${q2}`;
    },
  );
  return { text: out, rewritten };
}

describe('passkeys in Chromium (the DevTools virtual authenticator)', { skip: chromium.skip }, () => {
  let harness: PageHarness;
  let signer: TestSigner;
  let publicUrl: string;
  /** The owner's passkey as the authenticator holds it after its latest ceremony (its counter current). */
  let device: VirtualCredential | undefined;

  before(async () => {
    harness = await startPageHarness(chromium.executablePath ?? '', 'passkey browser suite', { passkeys: true });
    ({ signer, publicUrl } = harness);
  });
  after(() => harness?.close());

  const api: PageHarness['api'] = (...args) => harness.api(...args);

  /** A fresh browser context whose page has a virtual authenticator (with user verification unless told), holding `credential` when given. */
  async function ownerBrowser({ userVerification = true, credential }: { userVerification?: boolean; credential?: VirtualCredential } = {}): Promise<Owner> {
    const page = await harness.newPage();
    const cdp = await page.context().newCDPSession(page);
    await cdp.send('WebAuthn.enable', { enableUI: false });
    const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
      options: {
        protocol: 'ctap2',
        transport: 'internal',
        hasResidentKey: true,
        hasUserVerification: userVerification,
        isUserVerified: userVerification,
        automaticPresenceSimulation: true,
      },
    });
    if (credential !== undefined) await cdp.send('WebAuthn.addCredential', { authenticatorId, credential });
    return {
      page,
      cdp,
      authenticatorId,
      credentials: async () => (await cdp.send('WebAuthn.getCredentials', { authenticatorId })).credentials as VirtualCredential[],
    };
  }

  /** The owner's passkey, enrolled by the first test. */
  function enrolled(): VirtualCredential {
    assert.ok(device, 'the first test enrolled the passkey');
    return device;
  }

  /** The backend asks for a passkey enrolment link (POST /v1/enrollments over HTTP): its enrollUrl, on the public URL. */
  async function createLink(walletName: string): Promise<string> {
    const res = await api('POST', '/v1/enrollments', { walletName, kind: 'passkey' });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    const enrollUrl = String(res.body.enrollUrl);
    const capability = new RegExp(`^${publicUrl}/enroll/([A-Za-z0-9_-]{43})$`).exec(enrollUrl)?.[1];
    assert.ok(capability, enrollUrl);
    recordTestSecret('enrolment capability', capability);
    return enrollUrl;
  }

  /** The factors GET /v1/wallets lists for the wallet (none when the wallet does not exist). */
  async function factorsOf(walletName: string): Promise<string[]> {
    const res = await api('GET', `/v1/wallets?walletName=${encodeURIComponent(walletName)}`);
    if (res.status === 404) return [];
    assert.equal(res.status, 200, JSON.stringify(res.body));
    return res.body.factors as string[];
  }

  async function createApproval(extra: Record<string, unknown> = {}): Promise<Created> {
    const res = await api('POST', '/v1/approvals', { walletName: WALLET, keyIndex: 0, operation: { transaction: TRANSACTION }, ...extra });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    const created = res.body as unknown as Created;
    assert.equal(new URL(created.approveUrl).origin, publicUrl);
    assert.equal(created.requiredStrength, 'bound', 'a wallet with a passkey requires bound consent');
    recordTestSecret('approval capability', new URL(created.approveUrl).pathname.split('/').at(-1) ?? '');
    return created;
  }

  async function approvalOf(id: string): Promise<Record<string, unknown>> {
    const res = await api('GET', `/v1/approvals/${id}`);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    return res.body;
  }

  function signTransaction(approvalId: string, transaction: Record<string, unknown> = TRANSACTION): Promise<ApiAnswer> {
    return api('POST', '/v1/sign/transaction', { walletName: WALLET, keyIndex: 0, transaction, approvalId });
  }

  /** The wallet's latest audit record of `action`: decision, reason, detail. */
  async function lastAudit(walletName: string, action: string): Promise<{ decision: string; reason: string | null; detail: Record<string, unknown> }> {
    const [row] = await signer.sql(
      'SELECT decision, reason, detail FROM audit_log WHERE wallet_name = $1 AND action = $2 ORDER BY seq DESC LIMIT 1',
      walletName,
      action,
    );
    assert.ok(row, `an audit record ${action} for ${walletName}`);
    const detail = typeof row.detail === 'string' ? JSON.parse(row.detail) : row.detail;
    return { decision: String(row.decision), reason: (row.reason as string | null) ?? null, detail };
  }

  /** The wallet's stored passkeys (passkey_credentials): credential id, counter, rpID, how enrolled. */
  async function storedPasskeys(walletName: string): Promise<Array<{ credentialId: string; counter: number; rpId: string; enrolledVia: string }>> {
    const rows = await signer.sql('SELECT credential_id, counter, rp_id, enrolled_via FROM passkey_credentials WHERE wallet_name = $1', walletName);
    return rows.map((row) => ({
      credentialId: String(row.credential_id),
      counter: Number(row.counter),
      rpId: String(row.rp_id),
      enrolledVia: String(row.enrolled_via),
    }));
  }

  /**
   * Clicks `selector` on a page at `url` and waits for the POST to `url` it leads to (the passkey
   * ceremony runs in between), then for the page the server answers with.
   */
  async function clickAndPost(page: Page, selector: string, url: string): Promise<{ request: Request; response: Response }> {
    const [response] = await Promise.all([
      page.waitForResponse((r) => r.request().method() === 'POST' && r.url() === url, { timeout: 15_000 }),
      // the answer's document committed (not only its response received): then its load
      page.waitForEvent('framenavigated', { predicate: (frame) => frame === page.mainFrame(), timeout: 15_000 }),
      page.locator(selector).click(),
    ]);
    await page.waitForLoadState('load');
    return { request: response.request(), response };
  }

  /** The code of the refusal the page shows after a post (its alert's data-code, the kernel's error code). */
  async function refusalShown(page: Page): Promise<string | null> {
    const alert = page.getByRole('alert');
    assert.ok(await alert.isVisible(), 'the refusal is shown');
    return alert.getAttribute('data-code');
  }

  async function waitForHeading(page: Page, text: string | RegExp): Promise<void> {
    await page.locator('h1').filter({ hasText: text }).waitFor({ timeout: 10_000 });
  }

  /** A 4xx answer to the decision (or enrolment) POST shows in Chromium's console as a failed document load. */
  const failedPost = (status: string, path: 'approve' | 'enroll') =>
    new RegExp(`^error: Failed to load resource: the server responded with a status of ${status} \\(http://localhost:\\d+/${path}/[\\w-]{43}\\)$`);

  /** The owner approves on the page with the passkey: the page asks for a challenge, the authenticator answers, the page posts the decision. */
  async function approveInPage(owner: Owner, created: Created): Promise<{ request: Request; response: Response; challenge: Response }> {
    assert.equal((await owner.page.goto(created.approveUrl))?.status(), 200);
    assert.equal(await h1(owner.page), HEADLINE);
    const challenge = owner.page.waitForResponse((r) => r.request().method() === 'POST' && r.url() === `${created.approveUrl}/challenge`);
    const decided = await clickAndPost(owner.page, '#passkey-approve', created.approveUrl);
    return { ...decided, challenge: await challenge };
  }

  it('enrolment: the backend’s link (kind passkey) opened in the owner’s browser, the passkey created there; the page says active, the wallet lists it, GET /v1/wallets shows it', async () => {
    const enrollUrl = await createLink(WALLET);
    const owner = await ownerBrowser();
    const { page } = owner;
    assert.equal((await page.goto(enrollUrl))?.status(), 200);
    assert.equal(await h1(page), 'Create a passkey');
    assert.ok(await showsText(page, WALLET), 'the wallet name is shown, in the app’s box');
    assert.ok(await page.locator('#passkey-create').isVisible(), 'the Create button');
    await inspectPage(page, 'passkey-enrollment-pending');
    assert.deepEqual(await owner.credentials(), [], 'no credential before the click');
    assert.deepEqual(await factorsOf(WALLET), [], 'nothing enrolled before the click');

    const { request, response } = await clickAndPost(page, '#passkey-create', enrollUrl);
    assert.equal(response.status(), 200);
    await waitForHeading(page, 'Passkey active');
    assert.ok(await showsText(page, 'The passkey is active for this wallet'));
    assert.equal(await page.locator('#passkey-create').count(), 0, 'no Create button on the result page');
    await inspectPage(page, 'passkey-enrollment-active');

    const credentials = await owner.credentials();
    assert.equal(credentials.length, 1, 'the authenticator made one credential');
    const [credential] = credentials as [VirtualCredential];
    assert.equal(credential.rpId, 'localhost');
    assert.equal(credential.isResidentCredential, true, 'a discoverable credential (residentKey preferred)');
    assert.equal(webauthnResponsePosted(request).id, credentialIdOf(credential), 'the page posted the new credential');
    assert.deepEqual(await factorsOf(WALLET), ['passkey']);
    assert.deepEqual(await storedPasskeys(WALLET), [
      { credentialId: credentialIdOf(credential), counter: credential.signCount, rpId: 'localhost', enrolledVia: 'page' },
    ]);
    const audited = await lastAudit(WALLET, 'passkey.enroll');
    assert.equal(audited.decision, 'allowed');
    assert.equal(audited.detail.via, 'page');

    // the link is spent: opened again, nothing to create
    assert.equal((await page.goto(enrollUrl))?.status(), 200);
    assert.equal(await page.locator('#passkey-create').count(), 0);
    assert.ok(await showsText(page, 'This link was already used'));
    assertQuietConsole(page);
    device = credential;
  });

  it('an approval approved with the passkey on the page, then signed with its approvalId: the signature recovers to the wallet; the record carries credential, counter, userVerified', async () => {
    const passkey = enrolled();
    const created = await createApproval();
    const owner = await ownerBrowser({ credential: passkey });
    assert.equal((await owner.page.goto(created.approveUrl))?.status(), 200);
    // the page lists the wallet's passkey and how it was enrolled
    const listed = owner.page.locator('ul.factors li');
    assert.equal(await listed.count(), 1);
    assert.match(
      (await listed.textContent()) ?? '',
      new RegExp(`^Passkey ${credentialIdOf(passkey).slice(0, 8)}…, registered .+, added on this signer’s enrolment page$`),
      'the factor is listed, with how it was enrolled',
    );
    assert.ok(await owner.page.locator('#passkey-approve').isVisible(), 'the passkey Approve button');
    await inspectPage(owner.page, 'passkey-approval-pending');

    const { request, response, challenge } = await approveInPage(owner, created);
    assert.equal(challenge.status(), 200, 'the page got its challenge');
    assert.equal(response.status(), 200);
    await waitForHeading(owner.page, 'Approved');
    await inspectPage(owner.page, 'passkey-approval-approved');

    const posted = webauthnResponsePosted(request);
    assert.equal(posted.id, credentialIdOf(passkey));
    const flags = authenticatorDataOf(posted.response.authenticatorData ?? '');
    assert.ok(flags.userPresent && flags.userVerified, 'the authenticator verified its user');
    const [now] = (await owner.credentials()) as [VirtualCredential];
    assert.equal(flags.counter, now.signCount);
    assert.ok(now.signCount > passkey.signCount, 'the counter went up');
    device = now;
    assert.equal((await storedPasskeys(WALLET))[0]?.counter, now.signCount, 'the stored counter is the assertion’s');

    const view = await approvalOf(created.id);
    assert.equal(view.state, 'approved');
    assert.equal(view.factor, 'passkey');
    const signed = await signTransaction(created.id);
    assert.equal(signed.status, 200, JSON.stringify(signed.body));
    const keys = await api('GET', `/v1/keys?walletName=${encodeURIComponent(WALLET)}&keyIndex=0`);
    assert.equal(keys.status, 200, JSON.stringify(keys.body));
    assert.equal(
      await recoverTransactionAddress({ serializedTransaction: signed.body.serializedTransaction as never }),
      keys.body.address,
      'the signed transaction recovers to the wallet’s address',
    );
    const [record] = await signer.store.readAudit(Number(signed.body.auditSeq), 1);
    assert.ok(record && record.action === 'sign.transaction' && record.decision === 'allowed');
    assert.deepEqual(record.detail.approval, {
      id: created.id,
      factor: 'passkey',
      strength: 'bound',
      credentialId: credentialIdOf(passkey),
      counter: now.signCount,
      userVerified: true,
    });
    assert.equal((await approvalOf(created.id)).state, 'consumed');
    assertQuietConsole(owner.page);
  });

  it('user verification is enforced by the server: an authenticator without UV, the page’s options rewritten to preferred — Chromium asserts without UV, the server refuses passkey_user_not_verified, the approval stays pending', async () => {
    const passkey = enrolled();
    const created = await createApproval();
    // the same passkey in an authenticator that cannot verify its user (no PIN, no biometric)
    const owner = await ownerBrowser({ userVerification: false, credential: passkey });
    let rewritten = 0;
    await owner.page.route(
      (url) => url.href === `${created.approveUrl}/challenge`,
      async (route) => {
        const response = await route.fetch();
        const changed = preferUserVerification(await response.text());
        rewritten += changed.rewritten;
        await route.fulfill({ response, body: changed.text });
      },
    );
    const { request, response } = await approveInPage(owner, created);
    assert.equal(rewritten, 1, 'the challenge’s options asked for user verification, and were rewritten');
    const flags = authenticatorDataOf(webauthnResponsePosted(request).response.authenticatorData ?? '');
    assert.deepEqual([flags.userPresent, flags.userVerified], [true, false], 'Chromium made the assertion, without UV, and it reached the server');

    assert.equal(response.status(), 403);
    assert.equal(await refusalShown(owner.page), 'passkey_user_not_verified');
    assert.equal(await h1(owner.page), HEADLINE, 'the approval page again');
    await inspectPage(owner.page, 'passkey-approval-not-verified');
    const audited = await lastAudit(WALLET, 'approval.approve');
    assert.deepEqual([audited.decision, audited.reason], ['denied', 'passkey_user_not_verified']);
    assert.equal(audited.detail.approvalId, created.id);
    assert.equal((await approvalOf(created.id)).state, 'pending');
    assert.equal((await storedPasskeys(WALLET))[0]?.counter, passkey.signCount, 'the stored counter did not move');
    assertErrorCode(await signTransaction(created.id), 409, 'approval_pending');
    assertQuietConsole(owner.page, [failedPost('403 \\(Forbidden\\)', 'approve')]);
  });

  it('a cloned authenticator (the same passkey, its counter behind the stored one): passkey_counter_invalid, the approval stays pending', async () => {
    const passkey = enrolled();
    assert.ok(passkey.signCount >= 1, 'the stored counter is not below what the clone will send (1)');
    const created = await createApproval();
    const owner = await ownerBrowser({ credential: { ...passkey, signCount: 0 } });
    const { request, response } = await approveInPage(owner, created);
    assert.equal(authenticatorDataOf(webauthnResponsePosted(request).response.authenticatorData ?? '').counter, 1);
    assert.equal(response.status(), 403);
    assert.equal(await refusalShown(owner.page), 'passkey_counter_invalid');
    const audited = await lastAudit(WALLET, 'approval.approve');
    assert.deepEqual([audited.decision, audited.reason], ['denied', 'passkey_counter_invalid']);
    assert.equal((await approvalOf(created.id)).state, 'pending');
    assert.equal((await storedPasskeys(WALLET))[0]?.counter, passkey.signCount, 'the stored counter did not go back');
    assertQuietConsole(owner.page, [failedPost('403 \\(Forbidden\\)', 'approve')]);
  });

  it('enrolment without user verification (the embedded options rewritten to preferred): the server refuses passkey_user_not_verified, nothing is enrolled', async () => {
    const wallet = 'no-uv@acme.com';
    const enrollUrl = await createLink(wallet);
    const owner = await ownerBrowser({ userVerification: false });
    let rewritten = 0;
    await owner.page.route(
      (url) => url.href === enrollUrl,
      async (route) => {
        if (route.request().method() !== 'GET') return route.continue();
        const response = await route.fetch();
        const changed = preferUserVerification(await response.text());
        rewritten += changed.rewritten;
        return route.fulfill({ response, body: changed.text });
      },
    );
    assert.equal((await owner.page.goto(enrollUrl))?.status(), 200);
    assert.equal(rewritten, 1, 'the page’s options asked for user verification, and were rewritten');
    const { request, response } = await clickAndPost(owner.page, '#passkey-create', enrollUrl);
    assert.equal((await owner.credentials()).length, 1, 'Chromium did create the credential');
    assert.ok(webauthnResponsePosted(request).response.attestationObject, 'and the page posted it');
    assert.equal(response.status(), 403);
    assert.equal(await refusalShown(owner.page), 'passkey_user_not_verified');
    await inspectPage(owner.page, 'passkey-enrollment-not-verified');
    const audited = await lastAudit(wallet, 'passkey.enroll');
    assert.deepEqual([audited.decision, audited.reason], ['denied', 'passkey_user_not_verified']);
    assert.deepEqual(await factorsOf(wallet), [], 'nothing enrolled');
    assertQuietConsole(owner.page, [failedPost('403 \\(Forbidden\\)', 'enroll')]);
  });

  it('the swap: approved in the page for A, signing B (one field changed) with A’s approvalId is approval_mismatch; A still signs, once', async () => {
    const created = await createApproval();
    const owner = await ownerBrowser({ credential: enrolled() });
    const { response } = await approveInPage(owner, created);
    assert.equal(response.status(), 200);
    await waitForHeading(owner.page, 'Approved');
    [device] = (await owner.credentials()) as [VirtualCredential];
    assertErrorCode(await signTransaction(created.id, { ...TRANSACTION, to: `0x${'36'.repeat(20)}` }), 403, 'approval_mismatch');
    assertErrorCode(await signTransaction(created.id, { ...TRANSACTION, value: '250000000000000001' }), 403, 'approval_mismatch');
    assert.equal((await approvalOf(created.id)).state, 'approved', 'the refused swaps spent nothing');
    assert.equal((await signTransaction(created.id)).status, 200);
    assert.equal((await approvalOf(created.id)).state, 'consumed');
    assertQuietConsole(owner.page);
  });

  it('rejected in the page of a passkey wallet (no ceremony needed): the backend sees rejected, signing with it is approval_rejected', async () => {
    const created = await createApproval();
    const owner = await ownerBrowser({ credential: enrolled() });
    const { page } = owner;
    assert.equal((await page.goto(created.approveUrl))?.status(), 200);
    const { response } = await clickAndPost(page, 'button.reject', created.approveUrl);
    assert.equal(response.status(), 200);
    assert.equal(await h1(page), 'Rejected');
    await inspectPage(page, 'passkey-approval-rejected');
    assert.equal((await approvalOf(created.id)).state, 'rejected');
    assertErrorCode(await signTransaction(created.id), 403, 'approval_rejected');
    // opened again: the decision, and no passkey button
    await page.goto(created.approveUrl);
    assert.equal(await page.locator('#passkey-approve').count(), 0);
    assert.ok(await showsText(page, 'Rejected on '));
    assertQuietConsole(page);
  });

  it('expired: past its ttl the page shows no passkey button; signing with it is approval_expired', async () => {
    const created = await createApproval({ ttlSeconds: 60 });
    signer.clock.now += 61_000;
    const owner = await ownerBrowser({ credential: enrolled() });
    assert.equal((await owner.page.goto(created.approveUrl))?.status(), 200);
    assert.ok(await showsText(owner.page, 'without a decision. Nothing will be signed with this request.'), 'the page says it expired');
    assert.equal(await owner.page.locator('#passkey-approve').count(), 0, 'no passkey button');
    assert.equal(await owner.page.getByRole('button').count(), 0, 'no button');
    await inspectPage(owner.page, 'passkey-approval-expired');
    assertErrorCode(await signTransaction(created.id), 409, 'approval_expired');
    assert.equal((await approvalOf(created.id)).state, 'expired');
    assertQuietConsole(owner.page);
  });

  it('expired between the assertion and its arrival: the valid assertion is refused approval_expired, nothing is approved', async () => {
    const created = await createApproval({ ttlSeconds: 60 });
    const owner = await ownerBrowser({ credential: enrolled() });
    // the decision leaves the browser in time and reaches the signer after the approval's expiry
    await owner.page.route(
      (url) => url.href === created.approveUrl,
      async (route) => {
        if (route.request().method() === 'POST') signer.clock.now += 61_000;
        await route.continue();
      },
    );
    const { request, response } = await approveInPage(owner, created);
    assert.ok(authenticatorDataOf(webauthnResponsePosted(request).response.authenticatorData ?? '').userVerified);
    assert.equal(response.status(), 409);
    assert.equal(await refusalShown(owner.page), 'approval_expired');
    const audited = await lastAudit(WALLET, 'approval.approve');
    assert.deepEqual([audited.decision, audited.reason], ['denied', 'approval_expired']);
    assert.equal((await approvalOf(created.id)).state, 'expired');
    assertErrorCode(await signTransaction(created.id), 409, 'approval_expired');
    assertQuietConsole(owner.page, [failedPost('409 \\(Conflict\\)', 'approve')]);
  });

  it('the change page (issue 13): the passkey-only owner confirms a timelocked change and then cancels it with the passkey step (passkey.js mode answer)', async () => {
    const res = await api('POST', '/v1/changes', { walletName: WALLET, kind: 'safeAddress.set', payload: { address: `0x${'5c'.repeat(20)}` } });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    assert.equal(res.body.requiredStrength, 'bound');
    const changeUrl = String(res.body.changeUrl);
    recordTestSecret('change capability', new URL(changeUrl).pathname.split('/').at(-1) ?? '');
    const stateOf = async () => String((await api('GET', `/v1/changes?id=${String(res.body.id)}`)).body.state);
    const owner = await ownerBrowser({ credential: enrolled() });
    assert.equal((await owner.page.goto(changeUrl))?.status(), 200);
    assert.equal(await h1(owner.page), 'Confirm a change of your wallet’s protection');
    await owner.page.locator('#passkey-step[data-state="ready"]').waitFor({ timeout: 10_000 });
    const confirmed = await clickAndPost(owner.page, '#passkey-approve', changeUrl);
    assert.equal(confirmed.response.status(), 200);
    assert.equal(webauthnResponsePosted(confirmed.request).id, credentialIdOf(enrolled()));
    await waitForHeading(owner.page, 'A change of your wallet’s protection is pending');
    assert.equal(await stateOf(), 'pending');
    await owner.page.locator('#passkey-step[data-state="ready"]').waitFor({ timeout: 10_000 });
    const cancelled = await clickAndPost(owner.page, '#passkey-approve', changeUrl);
    assert.equal(cancelled.response.status(), 200);
    await owner.page.locator('[data-state="cancelled"]').waitFor({ timeout: 10_000 });
    assert.equal(await stateOf(), 'cancelled');
    const audited = await lastAudit(WALLET, 'change.cancel');
    assert.deepEqual([audited.decision, (audited.detail.consent as { factor?: string }).factor], ['allowed', 'passkey']);
    assertQuietConsole(owner.page);
  });
});
