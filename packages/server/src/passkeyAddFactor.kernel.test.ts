import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type App, compareFactorRows, readAuditPages } from '@custos/kernel';
import { sha256 } from '@noble/hashes/sha2.js';
import { createTestSigner, QUORUM_APPROVED_STAND_IN, RAW_HASHES_ALLOWED, recordTestSecret, type TestSigner } from './testing/createTestSigner.js';
import { expectCode } from './testing/expectCode.js';
import { type CreationOptionsJSON, type RequestOptionsJSON, SoftAuthenticator, toBase64url } from './testing/softAuthenticator.js';
import { totpFromUri } from './testing/totpFromUri.js';

// Issue 11, point 3: a factor is never added behind the owner's back. Adding one on the enrolment
// page to a wallet that has a passkey takes that passkey's answer to the link's consent challenge,
// in the unit that adds the factor; a wallet whose strongest factor is a code gets no link until the
// policy issue's timelock exists. The assertions come from the tests' own WebAuthn authenticator.

const T0 = Date.UTC(2026, 11, 6, 15, 0, 15);
const ORIGIN = 'http://localhost:8420';
const PASSKEYS = { rpId: 'localhost', origin: ORIGIN, rpName: 'Custos' };
const TX = {
  type: 'eip1559',
  chainId: 1,
  nonce: 0,
  to: '0x3535353535353535353535353535353535353535',
  value: '1',
  data: '0x',
  gas: '21000',
  maxFeePerGas: '2000000000',
  maxPriorityFeePerGas: '1000000',
};

/** The consent digest of approvalChallenge.ts, recomputed from its definition. */
function consentChallenge(signerId: string, linkId: string, failures = 0): string {
  const count = Buffer.alloc(4);
  count.writeUInt32BE(failures);
  const bytes = Buffer.concat([
    Buffer.from('custos.enrollment.v1\0', 'utf8'),
    Buffer.from(signerId.replace(/-/g, ''), 'hex'),
    Buffer.from(linkId, 'hex'),
    count,
  ]);
  assert.equal(bytes.length, 21 + 16 + 16 + 4);
  return toBase64url(sha256(bytes));
}

describe('adding a factor to a wallet that has one (enrolment page)', () => {
  let signer: TestSigner;
  let app: App;
  const phone = new SoftAuthenticator(ORIGIN);
  const laptop = new SoftAuthenticator(ORIGIN);

  before(async () => {
    signer = await createTestSigner({
      policyDefaults: RAW_HASHES_ALLOWED,
      startMs: T0,
      kernelOptions: { passkeys: PASSKEYS, timelock: { hooks: QUORUM_APPROVED_STAND_IN } },
    });
    app = await signer.kernel.authenticateApiKey(signer.apiKey);
  });
  after(async () => {
    await signer.close();
  });

  async function link(walletName: string, kind: 'passkey' | 'totp' | 'hwkey') {
    const created = await signer.kernel.createEnrollment(app, { walletName, kind });
    recordTestSecret('enrollmentCapability', created.capability);
    const page = await signer.kernel.openEnrollmentPage(created.capability);
    assert.equal(page.state, 'pending');
    return { created, page };
  }

  /** A wallet with one passkey (on `phone`), registered on the page; returns its credential id. */
  async function passkeyWallet(walletName: string): Promise<string> {
    const { created, page } = await link(walletName, 'passkey');
    assert.equal(page.consent, undefined, 'the first factor needs no consent');
    const response = phone.create((page.shown as { optionsJSON: CreationOptionsJSON }).optionsJSON);
    assert.equal((await signer.kernel.completeEnrollment(created.capability, { proof: response })).state, 'completed');
    return response.id;
  }

  async function records(walletName: string, action: string) {
    const rows = await signer.sql(
      'SELECT action, decision, reason, detail FROM audit_log WHERE wallet_name = $1 AND action = $2 ORDER BY seq',
      walletName,
      action,
    );
    return rows.map((r) => ({
      decision: String(r.decision),
      reason: r.reason === null ? null : String(r.reason),
      detail: (typeof r.detail === 'string' ? JSON.parse(r.detail) : r.detail) as Record<string, unknown>,
    }));
  }

  async function passkeysOf(walletName: string): Promise<string[]> {
    const rows = await signer.sql('SELECT credential_id FROM passkey_credentials WHERE wallet_name = $1 ORDER BY created_at, credential_id', walletName);
    return rows.map((r) => String(r.credential_id)).sort();
  }

  it('a second passkey: the page asks the first one to consent over the link’s own challenge; both then approve', async () => {
    const first = await passkeyWallet('two-keys');
    const { created, page } = await link('two-keys', 'passkey');
    assert.ok(page.consent, 'the page asks for the consent of the wallet’s passkey');
    assert.equal(page.consent.kind, 'passkey');
    const options = page.consent.options as RequestOptionsJSON;
    assert.equal(options.challenge, consentChallenge(signer.signerId, created.id));
    assert.equal(options.userVerification, 'required');
    assert.deepEqual(
      options.allowCredentials?.map((c) => c.id),
      [first],
    );
    const registration = laptop.create((page.shown as { optionsJSON: CreationOptionsJSON }).optionsJSON);

    // Without the consent: refused, nothing added, not charged.
    const missing = await expectCode(signer.kernel.completeEnrollment(created.capability, { proof: registration }), 'code_required');
    assert.equal(missing.field, 'consent');
    assert.deepEqual(await passkeysOf('two-keys'), [first]);

    signer.clock.now += 1000;
    const done = await signer.kernel.completeEnrollment(created.capability, { proof: registration, consent: phone.get(options) });
    assert.equal(done.state, 'completed');
    // Issue 13: added after the timelock's delay; until then the wallet has its first passkey only.
    assert.deepEqual(await passkeysOf('two-keys'), [first]);
    signer.clock.now = done.effectiveAt as number;
    assert.equal(await signer.kernel.applyDueChanges(), 1);
    assert.deepEqual(await passkeysOf('two-keys'), [first, registration.id].sort());
    const enrolled = (await records('two-keys', 'passkey.enroll')).filter((r) => r.decision === 'allowed');
    assert.equal(enrolled.length, 2);
    assert.deepEqual(enrolled[1]?.detail.consent, { factor: 'passkey', credentialId: first, counter: 1, userVerified: true });
    assert.deepEqual((await signer.kernel.getWallet(app, { walletName: 'two-keys' })).factors, ['passkey']);

    // Either passkey now approves an operation.
    for (const device of [phone, laptop]) {
      const approval = await signer.kernel.createApproval(app, { walletName: 'two-keys', keyIndex: 0, operation: { transaction: TX } });
      recordTestSecret('approvalCapability', approval.capability);
      const issued = await signer.kernel.issueApprovalChallenge(approval.capability, { kind: 'passkey' });
      assert.deepEqual(((issued.options as RequestOptionsJSON).allowCredentials ?? []).map((c) => c.id).sort(), [first, registration.id].sort());
      const view = await signer.kernel.decideApproval(approval.capability, {
        decision: 'approve',
        kind: 'passkey',
        proof: device.get(issued.options as RequestOptionsJSON),
      });
      assert.equal(view.state, 'approved');
    }
  });

  it('TOTP added to a passkey wallet: with the passkey’s consent and a first code; the wallet still requires bound', async () => {
    await passkeyWallet('plus-totp');
    const { created, page } = await link('plus-totp', 'totp');
    assert.ok(page.consent);
    const code = totpFromUri((page.shown as { otpauthUri: string }).otpauthUri, signer.clock.now);
    const done = await signer.kernel.completeEnrollment(created.capability, { proof: code, consent: phone.get(page.consent.options as RequestOptionsJSON) });
    assert.equal(done.state, 'completed');
    assert.deepEqual((await signer.kernel.getWallet(app, { walletName: 'plus-totp' })).factors, ['passkey'], 'pending: the timelock’s delay first');
    signer.clock.now = done.effectiveAt as number;
    assert.equal(await signer.kernel.applyDueChanges(), 1);
    assert.deepEqual((await signer.kernel.getWallet(app, { walletName: 'plus-totp' })).factors.sort(), ['passkey', 'totp']);
    const approval = await signer.kernel.createApproval(app, { walletName: 'plus-totp', keyIndex: 0, operation: { transaction: TX } });
    recordTestSecret('approvalCapability', approval.capability);
    assert.equal(approval.requiredStrength, 'bound', 'a code added later does not weaken the wallet');
  });

  it('consent that is not this link’s: another wallet’s passkey, an approval’s challenge, another link’s answer — refused, charged to the link', async () => {
    await passkeyWallet('victim');
    await passkeyWallet('other');
    const { created, page } = await link('victim', 'passkey');
    assert.ok(page.consent);
    const registration = laptop.create((page.shown as { optionsJSON: CreationOptionsJSON }).optionsJSON);

    // The other wallet's passkey (the same phone holds it: its credential is not one of this wallet's).
    const otherLink = await link('other', 'passkey');
    assert.ok(otherLink.page.consent);
    const otherAnswer = phone.get(otherLink.page.consent.options as RequestOptionsJSON);
    await expectCode(signer.kernel.completeEnrollment(created.capability, { proof: registration, consent: otherAnswer }), 'factor_required');

    // The right credential answering an approval's challenge instead of the link's.
    const approval = await signer.kernel.createApproval(app, { walletName: 'victim', keyIndex: 0, operation: { transaction: TX } });
    recordTestSecret('approvalCapability', approval.capability);
    const issued = await signer.kernel.issueApprovalChallenge(approval.capability, { kind: 'passkey' });
    const forApproval = phone.get(issued.options as RequestOptionsJSON);
    await expectCode(signer.kernel.completeEnrollment(created.capability, { proof: registration, consent: forApproval }), 'passkey_invalid');

    const denied = (await records('victim', 'passkey.enroll')).filter((r) => r.decision === 'denied');
    assert.deepEqual(
      denied.map((r) => [r.reason, r.detail.failures]),
      [
        ['factor_required', 1],
        ['passkey_invalid', 2],
      ],
    );
    assert.equal((await passkeysOf('victim')).length, 1, 'nothing was added');
    // The answer to the first challenge is stale (each counted post moves it on); the page's current one completes the link.
    const stale = phone.get(page.consent.options as RequestOptionsJSON);
    await expectCode(signer.kernel.completeEnrollment(created.capability, { proof: registration, consent: stale }), 'passkey_invalid');
    const current = (await signer.kernel.openEnrollmentPage(created.capability)).consent?.options as RequestOptionsJSON;
    assert.equal(current.challenge, consentChallenge(signer.signerId, created.id, 3));
    const right = phone.get(current);
    assert.equal((await signer.kernel.completeEnrollment(created.capability, { proof: registration, consent: right })).state, 'completed');
  });

  it('an accepted consent answers once, even from a passkey whose counter stays 0: a post that used it and failed changes the link’s challenge', async () => {
    await passkeyWallet('replayed');
    const { created, page } = await link('replayed', 'passkey');
    assert.ok(page.consent);
    const options = (page.shown as { optionsJSON: CreationOptionsJSON }).optionsJSON;
    // A synced passkey keeps its counter at 0: the counter rule cannot stop a replay here.
    const consent = phone.get(page.consent.options as RequestOptionsJSON, { counter: 0 });
    await expectCode(
      signer.kernel.completeEnrollment(created.capability, { proof: laptop.create(options, { userVerified: false }), consent }),
      'passkey_user_not_verified',
    );
    // Accepted, then the new factor's answer missing: the post still counts.
    const missing = await expectCode(
      signer.kernel.completeEnrollment(created.capability, {
        consent: phone.get((await signer.kernel.openEnrollmentPage(created.capability)).consent?.options as RequestOptionsJSON, { counter: 0 }),
      }),
      'code_required',
    );
    assert.equal(missing.field, 'proof');
    // Someone who saw the first consent replays it with a passkey of their own: the link's challenge moved on.
    const intruder = new SoftAuthenticator(ORIGIN);
    await expectCode(signer.kernel.completeEnrollment(created.capability, { proof: intruder.create(options), consent }), 'passkey_invalid');
    assert.equal((await passkeysOf('replayed')).length, 1, 'nothing was added');
    const denied = (await records('replayed', 'passkey.enroll')).filter((r) => r.decision === 'denied');
    assert.deepEqual(
      denied.map((r) => [r.reason, r.detail.failures]),
      [
        ['passkey_user_not_verified', 1],
        ['code_required', 2],
        ['passkey_invalid', 3],
      ],
    );
    // The page shows the new challenge; the owner's fresh answer completes the link.
    const now = await signer.kernel.openEnrollmentPage(created.capability);
    assert.ok(now.consent);
    assert.notEqual((now.consent.options as RequestOptionsJSON).challenge, (page.consent.options as RequestOptionsJSON).challenge);
    const done = await signer.kernel.completeEnrollment(created.capability, {
      proof: laptop.create(options),
      consent: phone.get(now.consent.options as RequestOptionsJSON, { counter: 0 }),
    });
    assert.equal(done.state, 'completed');
  });

  it('five wrong consents spend the link', async () => {
    await passkeyWallet('spent');
    const { created, page } = await link('spent', 'passkey');
    assert.ok(page.consent);
    const registration = laptop.create((page.shown as { optionsJSON: CreationOptionsJSON }).optionsJSON);
    const options = page.consent.options as RequestOptionsJSON;
    for (let i = 0; i < 5; i += 1)
      await expectCode(
        signer.kernel.completeEnrollment(created.capability, { proof: registration, consent: phone.get(options, { origin: 'https://evil.example' }) }),
        'passkey_invalid',
      );
    await expectCode(signer.kernel.completeEnrollment(created.capability, { proof: registration, consent: phone.get(options) }), 'enrollment_used');
    assert.equal((await passkeysOf('spent')).length, 1);
  });

  it('custos audit verify --factors: the rows of every wallet above match the log; deleting a passkey wallet’s rows is reported', async () => {
    const compare = () => compareFactorRows(readAuditPages(signer.store), (walletName) => signer.store.readWalletRows(walletName));
    const before = await compare();
    assert.ok(before.enrolled >= 5, `${before.enrolled} enrolled wallets`);
    assert.deepEqual(before.discrepancies, []);
    await signer.sql('DELETE FROM passkey_credentials WHERE wallet_name = $1', 'two-keys');
    await signer.sql('DELETE FROM wallets WHERE name = $1', 'two-keys');
    assert.deepEqual((await compare()).discrepancies, [{ walletName: 'two-keys', problem: 'no_wallet_row' }]);
  });

  it('a TOTP-only wallet: a passkey is added with a code of its app typed on the page, as a timelocked change; a second app is refused', async () => {
    const { otpauthUri } = await signer.kernel.enrollTotp(app, { walletName: 'code-only' });
    const code = () => {
      signer.clock.now += 30_000;
      return totpFromUri(otpauthUri, signer.clock.now);
    };
    // A second authenticator app: refused at once (a wallet has one).
    const details = await expectCode(signer.kernel.createEnrollment(app, { walletName: 'code-only', kind: 'totp' }), 'already_enrolled');
    assert.deepEqual(details.enrolled, ['totp']);
    const { created, page } = await link('code-only', 'passkey');
    assert.deepEqual(page.consent, { kind: 'totp', options: { currentCode: true } }, 'the page asks for a code of the current app');
    const response = phone.create((page.shown as { optionsJSON: CreationOptionsJSON }).optionsJSON);
    // Without the current factor's code: refused, not charged.
    const missing = await expectCode(signer.kernel.completeEnrollment(created.capability, { proof: response }), 'code_required');
    assert.equal(missing.field, 'consent');
    // A wrong code: charged to the link (and to the factor, as any consent).
    await expectCode(signer.kernel.completeEnrollment(created.capability, { proof: response, consent: '000000' }), 'code_invalid');
    const [link1] = await signer.sql('SELECT failures FROM enrollment_links WHERE id = $1', created.id);
    assert.equal(Number(link1?.failures), 1);
    const consent = code();
    const done = await signer.kernel.completeEnrollment(created.capability, { proof: response, consent });
    assert.equal(done.state, 'completed');
    assert.equal(done.effectiveAt, signer.clock.now + signer.kernel.timelockDelayMs, 'a timelocked change, not active');
    assert.equal(done.recoveryCodes, undefined);
    assert.deepEqual(await passkeysOf('code-only'), [], 'nothing added yet');
    const [enrolled] = (await records('code-only', 'passkey.enroll')).filter((r) => r.decision === 'allowed');
    assert.equal((enrolled?.detail.consent as { factor: string }).factor, 'totp');
    // Its code consented once: the same code consents to nothing else (another link's post).
    const second = await link('code-only', 'hwkey');
    await expectCode(
      signer.kernel.completeEnrollment(second.created.capability, { proof: { publicKey: `02${'11'.repeat(32)}`, signature: '00'.repeat(64) }, consent }),
      'code_reused',
    );
    // Until the delay has passed, signing still needs the app's code; then the passkey is the wallet's.
    await expectCode(signer.kernel.signHash(app, { walletName: 'code-only', keyIndex: 0, hash: `0x${'42'.repeat(32)}` }), 'code_required');
    signer.clock.now = done.effectiveAt as number;
    await signer.kernel.applyDueChanges();
    assert.deepEqual(await passkeysOf('code-only'), [response.id]);
  });

  it('on the enrolment page (HTML): the TOTP-only wallet’s passkey link says the factor is not active at once, takes the app’s code, and says when it takes effect', async () => {
    const { otpauthUri } = await signer.kernel.enrollTotp(app, { walletName: 'code-page' });
    const { created } = await link('code-page', 'passkey');
    const path = `/enroll/${created.capability}`;
    const page = await signer.app.inject({ method: 'GET', url: path });
    assert.equal(page.statusCode, 200, page.body);
    assert.match(page.body, /id="pending-note"/);
    assert.match(page.body, /name="currentCode"/);
    assert.doesNotMatch(page.body, /from now on/);
    const options = JSON.parse(
      (/data-options="([^"]+)"/.exec(page.body)?.[1] as string).replaceAll('&quot;', '"').replaceAll('&#39;', "'").replaceAll('&amp;', '&'),
    ) as CreationOptionsJSON;
    const cookie = /custos_form=([A-Za-z0-9_-]{43})/.exec(String(page.headers['set-cookie']))?.[1] as string;
    const csrf = /name="csrf" value="([0-9a-f]{64})"/.exec(page.body)?.[1] as string;
    signer.clock.now += 30_000;
    const posted = await signer.app.inject({
      method: 'POST',
      url: path,
      headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: `custos_form=${cookie}` },
      payload: new URLSearchParams({ csrf, proof: JSON.stringify(laptop.create(options)), currentCode: totpFromUri(otpauthUri, signer.clock.now) }).toString(),
    });
    assert.equal(posted.statusCode, 200, posted.body);
    assert.match(posted.body, /takes effect only after a delay: at <time datetime="([^"]+)">/);
    assert.doesNotMatch(posted.body, /Passkey active/);
    const at = /<time datetime="([^"]+)">/.exec(posted.body)?.[1] as string;
    assert.equal(Date.parse(at), signer.clock.now + signer.kernel.timelockDelayMs);
  });
});

// Issue 13: a timelocked change of a passkey wallet needs the passkey's consent (its strongest
// strength), over a challenge bound to that change: an assertion for one change is refused for another.
describe('a timelocked change of a passkey wallet (kernel)', () => {
  let signer: TestSigner;
  let app: App;
  const phone = new SoftAuthenticator(ORIGIN);

  before(async () => {
    signer = await createTestSigner({
      policyDefaults: RAW_HASHES_ALLOWED,
      startMs: T0,
      kernelOptions: { passkeys: PASSKEYS, timelock: { hooks: QUORUM_APPROVED_STAND_IN } },
    });
    app = await signer.kernel.authenticateApiKey(signer.apiKey);
  });
  after(async () => {
    await signer.close();
  });

  it('the passkey consents (bound); a TOTP-style code is refused; an assertion for one change does not confirm another; a cancel with it works', async () => {
    const enrolment = await signer.kernel.createEnrollment(app, { walletName: 'pk-change', kind: 'passkey' });
    recordTestSecret('enrollmentCapability', enrolment.capability);
    const shown = (await signer.kernel.openEnrollmentPage(enrolment.capability)).shown as { optionsJSON: CreationOptionsJSON };
    await signer.kernel.completeEnrollment(enrolment.capability, { proof: phone.create(shown.optionsJSON) });
    const first = await signer.kernel.requestChange(app, { walletName: 'pk-change', kind: '2fa.disable' });
    const second = await signer.kernel.requestChange(app, { walletName: 'pk-change', kind: 'safeAddress.set', payload: { address: `0x${'12'.repeat(20)}` } });
    for (const c of [first, second]) recordTestSecret('changeCapability', c.capability);
    assert.equal(first.requiredStrength, 'bound');
    await expectCode(signer.kernel.confirmChange(first.capability, { proof: '123456' }), 'invalid_input');
    const page = await signer.kernel.openChangePage(first.capability);
    assert.equal(page.action, 'confirm');
    const assertion = phone.get(page.consent?.passkey as RequestOptionsJSON);
    await expectCode(signer.kernel.confirmChange(second.capability, { kind: 'passkey', proof: assertion }), 'passkey_invalid');
    const confirmed = await signer.kernel.confirmChange(first.capability, { kind: 'passkey', proof: assertion });
    assert.equal(confirmed.state, 'pending');
    // Replayed on its own change, now pending: a confirm is refused by state.
    await expectCode(signer.kernel.confirmChange(first.capability, { kind: 'passkey', proof: assertion }), 'change_not_pending');
    const cancelPage = await signer.kernel.openChangePage(first.capability);
    assert.equal(cancelPage.action, 'cancel');
    await expectCode(signer.kernel.cancelChange(first.capability, { kind: 'passkey', proof: assertion }), 'passkey_invalid');
    // A wrong passkey answer is a signature, not a guess: it is not counted on the change (the backend, which
    // holds the page link, cannot use the cancel cap up), so the challenge stays and the page's options still hold.
    const fresh = await signer.kernel.openChangePage(first.capability);
    assert.deepEqual(fresh.consent?.passkey, cancelPage.consent?.passkey);
    const cancelled = await signer.kernel.cancelChange(first.capability, {
      kind: 'passkey',
      proof: phone.get(cancelPage.consent?.passkey as RequestOptionsJSON),
    });
    assert.equal(cancelled.state, 'cancelled');
  });

  it('on the change page (HTML): a passkey-only owner confirms and cancels with the passkey step (its script allowed by the CSP); another change’s answer is refused', async () => {
    const enrolment = await signer.kernel.createEnrollment(app, { walletName: 'pk-page', kind: 'passkey' });
    recordTestSecret('enrollmentCapability', enrolment.capability);
    const shown = (await signer.kernel.openEnrollmentPage(enrolment.capability)).shown as { optionsJSON: CreationOptionsJSON };
    await signer.kernel.completeEnrollment(enrolment.capability, { proof: phone.create(shown.optionsJSON) });
    const created = await signer.kernel.requestChange(app, { walletName: 'pk-page', kind: 'safeAddress.set', payload: { address: `0x${'34'.repeat(20)}` } });
    const other = await signer.kernel.requestChange(app, { walletName: 'pk-page', kind: '2fa.disable' });
    for (const c of [created, other]) recordTestSecret('changeCapability', c.capability);
    const path = `/changes/${created.capability}`;
    const unescapeAttr = (v: string) =>
      v.replaceAll('&quot;', '"').replaceAll('&#39;', "'").replaceAll('&lt;', '<').replaceAll('&gt;', '>').replaceAll('&amp;', '&');
    /** The page: its passkey step's mode and options, its form token and cookie. */
    const open = async (url: string) => {
      const page = await signer.app.inject({ method: 'GET', url });
      assert.equal(page.statusCode, 200, page.body);
      assert.match(page.body, /id="passkey-step" class="passkey" data-mode="answer"/);
      assert.match(String(page.headers['content-security-policy']), /script-src 'nonce-/, 'the passkey scripts may run');
      assert.match(page.body, /<script nonce="[^"]+" src="\/assets\/passkey-[^"]+"/);
      const options = JSON.parse(unescapeAttr(/data-options="([^"]+)"/.exec(page.body)?.[1] as string)) as RequestOptionsJSON;
      const cookie = /custos_form=([A-Za-z0-9_-]{43})/.exec(String(page.headers['set-cookie']))?.[1] as string;
      const csrf = /name="csrf" value="([0-9a-f]{64})"/.exec(page.body)?.[1] as string;
      return { options, cookie, csrf, body: page.body };
    };
    const post = (url: string, form: { cookie: string; csrf: string }, fields: Record<string, string>) =>
      signer.app.inject({
        method: 'POST',
        url,
        headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: `custos_form=${form.cookie}` },
        payload: new URLSearchParams({ csrf: form.csrf, ...fields }).toString(),
      });
    const confirmPage = await open(path);
    assert.match(confirmPage.body, /Confirm with passkey/);
    // The answer to another change's page is refused on this one.
    const otherPage = await open(`/changes/${other.capability}`);
    const misplaced = await post(path, confirmPage, { decision: 'confirm', kind: 'passkey', proof: JSON.stringify(phone.get(otherPage.options)) });
    assert.equal(misplaced.statusCode, 403, misplaced.body);
    assert.match(misplaced.body, /data-code="passkey_invalid"/);
    // A malformed answer is refused before the kernel (invalid_input), nothing decided.
    const malformed = await post(path, confirmPage, { decision: 'confirm', kind: 'passkey', proof: '{not json' });
    assert.equal(malformed.statusCode, 400, malformed.body);
    const confirmed = await post(path, confirmPage, { decision: 'confirm', kind: 'passkey', proof: JSON.stringify(phone.get(confirmPage.options)) });
    assert.equal(confirmed.statusCode, 200, confirmed.body);
    assert.equal((await signer.kernel.getChange(app, { id: created.id })).state, 'pending');
    const cancelPage = await open(path);
    assert.match(cancelPage.body, /Cancel with passkey/);
    const cancelled = await post(path, cancelPage, { decision: 'cancel', kind: 'passkey', proof: JSON.stringify(phone.get(cancelPage.options)) });
    assert.equal(cancelled.statusCode, 200, cancelled.body);
    assert.match(cancelled.body, /data-state="cancelled"/);
  });
});
