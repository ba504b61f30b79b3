import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type App, type CreatedApproval, ERROR_CODES, isCustosError, Kernel } from '@custos/kernel';
import { sha256 } from '@noble/hashes/sha2.js';
import { recoverTransactionAddress } from 'viem';
import { RAW_HASHES_ALLOWED, createTestSigner, recordTestSecret, TEST_PASSPHRASE, type TestSigner } from './testing/createTestSigner.js';
import { expectCode } from './testing/expectCode.js';
import {
  type AuthenticationKnobs,
  type CreationOptionsJSON,
  type RegistrationKnobs,
  type RequestOptionsJSON,
  SoftAuthenticator,
  toBase64url,
} from './testing/softAuthenticator.js';

// Issue 11, points 5 and 9 for passkeys, at the kernel's entry points on a real store: registration
// on the enrolment page, an assertion over the kernel's challenge on the approval page, and every
// rule attacked with the exact code. The assertions come from a WebAuthn authenticator written for
// the tests (testing/softAuthenticator.ts), independent of the SimpleWebAuthn the kernel verifies
// with; the browser tests drive Chromium's own.

const T0 = Date.UTC(2026, 11, 6, 12, 0, 15);
const ORIGIN = 'http://localhost:8420';
const PASSKEYS = { rpId: 'localhost', origin: ORIGIN, rpName: 'Custos' };
const TX = {
  type: 'eip1559',
  chainId: 8453,
  nonce: 3,
  to: '0x3535353535353535353535353535353535353535',
  value: '1000',
  data: '0x',
  gas: '21000',
  maxFeePerGas: '2000000000',
  maxPriorityFeePerGas: '1000000',
};

/** The challenge digest of approvalChallenge.ts, recomputed here from its definition (issue 11, point 5). */
function expectedChallenge(signerId: string, approvalId: string, opHash: string, nonce: string): string {
  const bytes = Buffer.concat([
    Buffer.from('custos.approval.v1\0', 'utf8'),
    Buffer.from(signerId.replace(/-/g, ''), 'hex'),
    Buffer.from(approvalId, 'hex'),
    Buffer.from(opHash.replace(/^0x/, ''), 'hex'),
    Buffer.from(nonce, 'hex'),
  ]);
  assert.equal(bytes.length, 19 + 16 + 16 + 32 + 32);
  return toBase64url(sha256(bytes));
}

type AuditRow = { seq: number; action: string; decision: string; reason: string | null; wallet_name: string | null; detail: Record<string, unknown> };

describe('passkeys in the kernel: registered on the page, bound to one approval, every rule attacked', () => {
  let signer: TestSigner;
  let app: App;
  const authenticator = new SoftAuthenticator(ORIGIN);

  before(async () => {
    signer = await createTestSigner({ policyDefaults: RAW_HASHES_ALLOWED, startMs: T0, kernelOptions: { passkeys: PASSKEYS } });
    app = await signer.kernel.authenticateApiKey(signer.apiKey);
  });
  after(async () => {
    await signer.close();
  });

  async function audit(filter: (row: AuditRow) => boolean): Promise<AuditRow[]> {
    const rows = await signer.sql('SELECT seq, action, decision, reason, wallet_name, detail FROM audit_log ORDER BY seq');
    return rows
      .map(
        (r) =>
          ({
            ...r,
            seq: Number(r.seq),
            detail: (typeof r.detail === 'string' ? JSON.parse(r.detail) : r.detail) as Record<string, unknown>,
          }) as AuditRow,
      )
      .filter(filter);
  }

  /** The last audit record of an approval's decisions (approve or reject). */
  async function lastDecisionRecord(approvalId: string): Promise<AuditRow> {
    const records = await audit((r) => r.action.startsWith('approval.') && r.detail.approvalId === approvalId);
    const last = records.at(-1);
    assert.ok(last, `no audit record for ${approvalId}`);
    return last;
  }

  async function link(walletName: string): Promise<{ capability: string; options: CreationOptionsJSON }> {
    const created = await signer.kernel.createEnrollment(app, { walletName, kind: 'passkey' });
    recordTestSecret('enrollmentCapability', created.capability);
    assert.equal(created.kind, 'passkey');
    const page = await signer.kernel.openEnrollmentPage(created.capability);
    assert.equal(page.state, 'pending');
    const shown = page.shown as { optionsJSON: CreationOptionsJSON };
    return { capability: created.capability, options: shown.optionsJSON };
  }

  /** Registers a passkey for `walletName` through the enrolment page; returns its credential id. */
  async function enrol(walletName: string, knobs: RegistrationKnobs = {}, device = authenticator): Promise<string> {
    const { capability, options } = await link(walletName);
    const response = device.create(options, knobs);
    const page = await signer.kernel.completeEnrollment(capability, { proof: response });
    assert.equal(page.state, 'completed');
    return response.id;
  }

  async function create(walletName: string, extra: Record<string, unknown> = {}): Promise<CreatedApproval> {
    const created = await signer.kernel.createApproval(app, { walletName, keyIndex: 0, operation: { transaction: TX }, ...extra });
    recordTestSecret('approvalCapability', created.capability);
    assert.equal(created.requiredStrength, 'bound');
    return created;
  }

  async function challenge(created: CreatedApproval): Promise<RequestOptionsJSON> {
    const issued = await signer.kernel.issueApprovalChallenge(created.capability, { kind: 'passkey' });
    assert.equal(issued.kind, 'passkey');
    assert.equal(issued.expiresAt, created.expiresAt);
    return issued.options as RequestOptionsJSON;
  }

  const approve = (created: CreatedApproval, proof: unknown) =>
    signer.kernel.decideApproval(created.capability, { decision: 'approve', kind: 'passkey', proof });

  async function storedChallenge(approvalId: string): Promise<{ kind: string; nonce: string; issuedAt: number } | null> {
    const [row] = await signer.sql('SELECT challenge FROM approvals WHERE id = $1', approvalId);
    assert.ok(row);
    return row.challenge === null ? null : JSON.parse(row.challenge as string);
  }

  async function passkeyRow(credentialId: string): Promise<Record<string, unknown> | undefined> {
    const [row] = await signer.sql('SELECT * FROM passkey_credentials WHERE credential_id = $1', credentialId);
    return row;
  }

  /** An approval approved with a fresh assertion (knobs for the counter). */
  async function approved(walletName: string, knobs: AuthenticationKnobs = {}): Promise<CreatedApproval> {
    const created = await create(walletName);
    const view = await approve(created, authenticator.get(await challenge(created), knobs));
    assert.equal(view.state, 'approved');
    assert.equal(view.factor, 'passkey');
    return created;
  }

  it('enrol on the page, approve with an assertion over the kernel’s challenge, sign: the signature verifies, the records carry the evidence', async () => {
    const credentialId = await enrol('happy');
    const row = await passkeyRow(credentialId);
    assert.ok(row);
    assert.equal(row.wallet_name, 'happy');
    assert.equal(Number(row.counter), 0);
    assert.equal(row.rp_id, 'localhost');
    assert.equal(row.enrolled_via, 'page');
    assert.match(String(row.mac), /^[0-9a-f]{64}$/);
    const [enrolRecord] = await audit((r) => r.action === 'passkey.enroll' && r.wallet_name === 'happy');
    assert.equal(enrolRecord?.decision, 'allowed');

    const created = await create('happy');
    const page = await signer.kernel.openApprovalPage(created.capability);
    assert.deepEqual(
      page.factors.map((f) => [f.kind, f.id, f.strength, f.enrolledVia]),
      [['passkey', credentialId, 'bound', 'page']],
    );
    const options = await challenge(created);
    assert.equal(options.rpId, 'localhost');
    assert.equal(options.userVerification, 'required');
    assert.deepEqual(
      options.allowCredentials?.map((c) => c.id),
      [credentialId],
    );
    // The challenge is the digest of the signer, the approval, its opHash and the nonce stored with
    // the approval — recomputed here from the row, not trusted from the options.
    const stored = await storedChallenge(created.id);
    assert.ok(stored);
    assert.equal(stored.kind, 'passkey');
    assert.match(stored.nonce, /^[0-9a-f]{64}$/);
    assert.equal(stored.issuedAt, signer.clock.now);
    assert.equal(options.challenge, expectedChallenge(signer.signerId, created.id, created.opHash, stored.nonce));

    signer.clock.now += 1000;
    const view = await approve(created, authenticator.get(options));
    assert.equal(view.state, 'approved');
    assert.equal(view.factor, 'passkey');
    assert.equal(await storedChallenge(created.id), null, 'the decision spent the challenge');
    assert.equal(Number((await passkeyRow(credentialId))?.counter), 1, 'the new counter is stored');
    const evidence = { factor: 'passkey', strength: 'bound', credentialId, counter: 1, userVerified: true };
    const approveRecord = await lastDecisionRecord(created.id);
    assert.equal(approveRecord.action, 'approval.approve');
    assert.equal(approveRecord.decision, 'allowed');
    assert.deepEqual(approveRecord.detail, { approvalId: created.id, keyIndex: 0, ...evidence });

    const signed = await signer.kernel.signTransaction(app, { walletName: 'happy', keyIndex: 0, transaction: TX, approvalId: created.id });
    const { address } = await signer.kernel.getPublicKey(app, { walletName: 'happy', keyIndex: 0 });
    assert.equal(await recoverTransactionAddress({ serializedTransaction: signed.serializedTransaction as never }), address);
    const [signRecord] = await audit((r) => r.seq === signed.auditSeq);
    assert.equal(signRecord?.action, 'sign.transaction');
    assert.equal(signRecord?.decision, 'allowed');
    assert.deepEqual(signRecord?.detail.approval, { id: created.id, ...evidence });
    assert.equal((await signer.kernel.getApproval(app, { id: created.id })).state, 'consumed');
  });

  it('a batch: the passkey’s challenge covers the batch’s opHash; each item signs with the approval, carrying the evidence; the last consumes it', async () => {
    const credentialId = await enrol('batch-owner');
    const items = [
      { keyIndex: 0, transaction: TX },
      { keyIndex: 1, transaction: { ...TX, nonce: 9, value: '2000' } },
    ];
    const created = await signer.kernel.createApproval(app, { walletName: 'batch-owner', operation: { batch: items } });
    recordTestSecret('approvalCapability', created.capability);
    assert.equal(created.requiredStrength, 'bound');
    assert.equal(created.operationType, 'batch');
    const options = await challenge(created);
    const stored = await storedChallenge(created.id);
    assert.ok(stored);
    assert.equal(options.challenge, expectedChallenge(signer.signerId, created.id, created.opHash, stored.nonce));
    signer.clock.now += 1000;
    assert.equal((await approve(created, authenticator.get(options))).state, 'approved');
    for (const [i, item] of items.entries()) {
      const signed = await signer.kernel.signTransaction(app, { walletName: 'batch-owner', ...item, approvalId: created.id });
      const [record] = await audit((r) => r.seq === signed.auditSeq);
      assert.deepEqual(record?.detail.approval, {
        id: created.id,
        factor: 'passkey',
        strength: 'bound',
        credentialId,
        counter: 1,
        userVerified: true,
        batchItem: i,
      });
    }
    assert.equal((await signer.kernel.getApproval(app, { id: created.id })).state, 'consumed');
  });

  it('an assertion for approval A submitted for approval B: passkey_invalid, audited; it spends B’s challenge, and A’s own approval still works', async () => {
    await enrol('swap');
    const a = await create('swap');
    const b = await create('swap');
    const forA = authenticator.get(await challenge(a));
    const forB = authenticator.get(await challenge(b));
    await expectCode(approve(b, forA), 'passkey_invalid');
    const record = await lastDecisionRecord(b.id);
    assert.deepEqual([record.action, record.decision, record.reason], ['approval.approve', 'denied', 'passkey_invalid']);
    assert.equal(await storedChallenge(b.id), null, 'a wrong answer spends the challenge');
    // B's right answer for the spent nonce: nothing to answer any more.
    await expectCode(approve(b, forB), 'challenge_required');
    assert.equal((await signer.kernel.getApproval(app, { id: b.id })).state, 'pending');
    assert.equal((await approve(a, forA)).state, 'approved');
  });

  it('replay: after the decision approval_decided; for a re-issued challenge passkey_invalid (the nonce changed)', async () => {
    await enrol('replay');
    const created = await create('replay');
    const first = authenticator.get(await challenge(created));
    const firstNonce = (await storedChallenge(created.id))?.nonce;
    const reissued = await challenge(created);
    const secondNonce = (await storedChallenge(created.id))?.nonce;
    assert.notEqual(firstNonce, secondNonce);
    assert.notEqual(reissued.challenge, expectedChallenge(signer.signerId, created.id, created.opHash, firstNonce as string));
    await expectCode(approve(created, first), 'passkey_invalid');
    const denied = await lastDecisionRecord(created.id);
    assert.deepEqual([denied.decision, denied.reason], ['denied', 'passkey_invalid']);
    // Approve honestly, then replay the accepted assertion.
    const accepted = authenticator.get(await challenge(created));
    assert.equal((await approve(created, accepted)).state, 'approved');
    await expectCode(approve(created, accepted), 'approval_decided');
    const replayed = await lastDecisionRecord(created.id);
    assert.deepEqual([replayed.decision, replayed.reason], ['denied', 'approval_decided']);
  });

  it('the same assertion sent twice at once: one approval, the other approval_decided', async () => {
    await enrol('race');
    const created = await create('race');
    const assertion = authenticator.get(await challenge(created));
    const settled = await Promise.allSettled([approve(created, assertion), approve(created, assertion), approve(created, assertion)]);
    assert.equal(settled.filter((r) => r.status === 'fulfilled').length, 1);
    for (const result of settled)
      if (result.status === 'rejected') assert.equal(isCustosError(result.reason) ? result.reason.code : String(result.reason), 'approval_decided');
    const approvals = await audit((r) => r.action === 'approval.approve' && r.detail.approvalId === created.id && r.decision === 'allowed');
    assert.equal(approvals.length, 1);
  });

  it('no challenge issued: challenge_required, audited — even for an assertion over the right digest of a nonce the kernel never chose', async () => {
    const credentialId = await enrol('unissued');
    const created = await create('unissued');
    const made = expectedChallenge(signer.signerId, created.id, created.opHash, 'ab'.repeat(32));
    const assertion = authenticator.get({ challenge: made, rpId: 'localhost', allowCredentials: [{ id: credentialId, type: 'public-key' }] });
    await expectCode(approve(created, assertion), 'challenge_required');
    const record = await lastDecisionRecord(created.id);
    assert.deepEqual([record.decision, record.reason], ['denied', 'challenge_required']);
    // A challenge is refused for an unknown capability, an unknown kind, and a kind that answers none.
    await expectCode(signer.kernel.issueApprovalChallenge('A'.repeat(43), { kind: 'passkey' }), 'approval_not_found');
    assert.equal((await expectCode(signer.kernel.issueApprovalChallenge(created.capability, { kind: 'totp' }), 'invalid_input')).field, 'kind');
    assert.equal((await expectCode(signer.kernel.issueApprovalChallenge(created.capability, { kind: 7 }), 'invalid_input')).field, 'kind');
  });

  it('a challenge spent by a wrong answer: the right answer for the old nonce is challenge_required; a new challenge approves', async () => {
    await enrol('spent');
    const created = await create('spent');
    const options = await challenge(created);
    await expectCode(approve(created, authenticator.get(options, { origin: 'http://localhost:8421' })), 'passkey_invalid');
    await expectCode(approve(created, authenticator.get(options)), 'challenge_required');
    assert.equal((await approve(created, authenticator.get(await challenge(created)))).state, 'approved');
  });

  it('rejected or cancelled after the challenge: the assertion is approval_rejected / approval_cancelled, and no new challenge is issued', async () => {
    await enrol('otherwise');
    const rejected = await create('otherwise');
    const forRejected = authenticator.get(await challenge(rejected));
    assert.equal((await signer.kernel.decideApproval(rejected.capability, { decision: 'reject' })).state, 'rejected');
    assert.equal(await storedChallenge(rejected.id), null, 'a rejection spends the challenge too');
    await expectCode(approve(rejected, forRejected), 'approval_rejected');
    await expectCode(signer.kernel.issueApprovalChallenge(rejected.capability, { kind: 'passkey' }), 'approval_rejected');
    const cancelled = await create('otherwise');
    const forCancelled = authenticator.get(await challenge(cancelled));
    await signer.kernel.cancelApproval(app, { id: cancelled.id });
    await expectCode(approve(cancelled, forCancelled), 'approval_cancelled');
    await expectCode(signer.kernel.issueApprovalChallenge(cancelled.capability, { kind: 'passkey' }), 'approval_cancelled');
  });

  it('malformed proofs: invalid_input naming the field, audited; any answer spends the challenge', async () => {
    const credentialId = await enrol('malformed');
    const created = await create('malformed');
    const good = authenticator.get(await challenge(created));
    const cases: Array<[unknown, string]> = [
      ['123456', 'proof'],
      [null, 'proof'],
      [[good], 'proof'],
      [{ ...good, rawId: `${credentialId}A` }, 'proof.rawId'],
      [{ ...good, type: 'password' }, 'proof.type'],
      [{ ...good, response: 'x' }, 'proof.response'],
      [{ ...good, response: { ...good.response, signature: 'not base64url!' } }, 'proof.response.signature'],
      [{ ...good, response: { ...good.response, authenticatorData: 'A'.repeat(20_000) } }, 'proof.response.authenticatorData'],
      [{ ...good, response: { ...good.response, clientDataJSON: undefined } }, 'proof.response.clientDataJSON'],
    ];
    for (const [proof, field] of cases) {
      await challenge(created);
      const details = await expectCode(approve(created, proof), 'invalid_input');
      assert.equal(details.field, field);
      const record = await lastDecisionRecord(created.id);
      assert.deepEqual([record.decision, record.reason], ['denied', 'invalid_input'], field);
      assert.equal(await storedChallenge(created.id), null, field);
    }
    // A client data that is not JSON: passkey_invalid.
    await challenge(created);
    await expectCode(
      approve(created, { ...good, response: { ...good.response, clientDataJSON: toBase64url(new Uint8Array([0xff, 0x7b])) } }),
      'passkey_invalid',
    );
    assert.equal((await signer.kernel.getApproval(app, { id: created.id })).state, 'pending');
  });

  it('counter rollback (and a repeated counter): passkey_counter_invalid, audited, the stored counter unchanged', async () => {
    const credentialId = await enrol('counter');
    await approved('counter', { counter: 10 });
    assert.equal(Number((await passkeyRow(credentialId))?.counter), 10);
    for (const counter of [9, 10, 0]) {
      const created = await create('counter');
      await expectCode(approve(created, authenticator.get(await challenge(created), { counter })), 'passkey_counter_invalid');
      const record = await lastDecisionRecord(created.id);
      assert.deepEqual([record.decision, record.reason], ['denied', 'passkey_counter_invalid'], `counter ${counter}`);
      assert.equal(Number((await passkeyRow(credentialId))?.counter), 10, `counter ${counter}`);
      await signer.kernel.cancelApproval(app, { id: created.id });
    }
    await approved('counter', { counter: 11 });
    assert.equal(Number((await passkeyRow(credentialId))?.counter), 11);
  });

  it('an authenticator that keeps no counter: 0 after 0 is accepted (both zero); once non-zero, 0 is refused', async () => {
    const credentialId = await enrol('no-counter');
    await approved('no-counter', { counter: 0 });
    await approved('no-counter', { counter: 0 });
    assert.equal(Number((await passkeyRow(credentialId))?.counter), 0);
    await approved('no-counter', { counter: 5 });
    const created = await create('no-counter');
    await expectCode(approve(created, authenticator.get(await challenge(created), { counter: 0 })), 'passkey_counter_invalid');
  });

  it('user verification missing: passkey_user_not_verified at registration (charged to the link, audited) and at authentication', async () => {
    const { capability, options } = await link('no-uv');
    await expectCode(
      signer.kernel.completeEnrollment(capability, { proof: authenticator.create(options, { userVerified: false }) }),
      'passkey_user_not_verified',
    );
    const [denied] = await audit((r) => r.action === 'passkey.enroll' && r.wallet_name === 'no-uv');
    assert.deepEqual([denied?.decision, denied?.reason, denied?.detail.failures], ['denied', 'passkey_user_not_verified', 1]);
    assert.deepEqual(await signer.sql('SELECT credential_id FROM passkey_credentials WHERE wallet_name = $1', 'no-uv'), []);
    // The same link, answered properly, registers.
    const response = authenticator.create(options);
    assert.equal((await signer.kernel.completeEnrollment(capability, { proof: response })).state, 'completed');
    const created = await create('no-uv');
    await expectCode(approve(created, authenticator.get(await challenge(created), { userVerified: false })), 'passkey_user_not_verified');
    const record = await lastDecisionRecord(created.id);
    assert.deepEqual([record.decision, record.reason], ['denied', 'passkey_user_not_verified']);
    assert.equal(Number((await passkeyRow(response.id))?.counter), 0, 'nothing of the refused assertion was kept');
  });

  it('wrong origin, wrong rpID, crossOrigin, topOrigin, another challenge or type, no presence, another key: passkey_invalid, each audited', async () => {
    const credentialId = await enrol('framed');
    const other = new SoftAuthenticator(ORIGIN);
    other.create({
      rp: { id: 'localhost', name: 'x' },
      user: { id: 'AAAA', name: 'x', displayName: 'x' },
      challenge: 'AAAA',
      pubKeyCredParams: [{ alg: -7, type: 'public-key' }],
    });
    const attacks: Array<[string, AuthenticationKnobs]> = [
      ['another origin (port)', { origin: 'http://localhost:8421' }],
      ['another origin (scheme)', { origin: 'https://localhost:8420' }],
      ['a subdomain as rpID', { rpId: 'evil.localhost' }],
      ['another rpID', { rpId: 'custos.example.com' }],
      ['crossOrigin true', { crossOrigin: true }],
      ['a topOrigin', { topOrigin: ORIGIN }],
      ['a topOrigin of another site', { crossOrigin: true, topOrigin: 'https://evil.example' }],
      ['another challenge', { challenge: new Uint8Array(32).fill(9) }],
      // Client text never picks the code: a challenge or origin that reads like another refusal is still passkey_invalid.
      ['a challenge reading “counter”', { challenge: 'counter' }],
      ['an origin reading “User verification required, but”', { origin: 'https://user-verification-required-but.example' }],
      ['another type', { type: 'webauthn.create' }],
      ['no user presence', { userPresent: false }],
      ['another key', { signWith: (other.credentials[0] as { secretKey: Uint8Array }).secretKey }],
    ];
    for (const [label, knobs] of attacks) {
      const created = await create('framed');
      await expectCode(approve(created, authenticator.get(await challenge(created), knobs)), 'passkey_invalid');
      const record = await lastDecisionRecord(created.id);
      assert.deepEqual([record.decision, record.reason], ['denied', 'passkey_invalid'], label);
      assert.equal((await signer.kernel.getApproval(app, { id: created.id })).state, 'pending', label);
      await signer.kernel.cancelApproval(app, { id: created.id });
    }
    assert.equal(Number((await passkeyRow(credentialId))?.counter), 0, 'no refused assertion moved the counter');
  });

  it('registration on another origin or rpID, framed, or for another challenge: passkey_invalid; five wrong answers spend the link', async () => {
    const { capability, options } = await link('bad-registration');
    const attacks: RegistrationKnobs[] = [
      { origin: 'http://evil.localhost:8420' },
      { rpId: 'evil.example' },
      { crossOrigin: true },
      { topOrigin: 'https://evil.example' },
      { challenge: new Uint8Array(32).fill(1) },
    ];
    for (const knobs of attacks)
      await expectCode(signer.kernel.completeEnrollment(capability, { proof: authenticator.create(options, knobs) }), 'passkey_invalid');
    const records = await audit((r) => r.action === 'passkey.enroll' && r.wallet_name === 'bad-registration');
    assert.deepEqual(
      records.map((r) => [r.reason, r.detail.failures]),
      [1, 2, 3, 4, 5].map((n) => ['passkey_invalid', n]),
    );
    await expectCode(signer.kernel.completeEnrollment(capability, { proof: authenticator.create(options) }), 'enrollment_used');
    assert.deepEqual(await signer.sql('SELECT credential_id FROM passkey_credentials WHERE wallet_name = $1', 'bad-registration'), []);
  });

  it('another credential’s id (a passkey of another wallet): factor_required naming the proof, audited, the challenge spent', async () => {
    await enrol('mine');
    const theirs = await enrol('theirs');
    const created = await create('mine');
    const options = await challenge(created);
    const details = await expectCode(approve(created, authenticator.get(options, { credentialId: theirs })), 'factor_required');
    assert.equal(details.field, 'proof');
    const record = await lastDecisionRecord(created.id);
    assert.deepEqual([record.decision, record.reason], ['denied', 'factor_required']);
    assert.equal(await storedChallenge(created.id), null);
  });

  it('a TOTP code on a passkey wallet’s approval or sign route: consent_too_weak before anything is checked; the challenge is not spent', async () => {
    await enrol('strong');
    const created = await create('strong');
    const options = await challenge(created);
    const before = await storedChallenge(created.id);
    const details = await expectCode(
      signer.kernel.decideApproval(created.capability, { decision: 'approve', kind: 'totp', proof: '123456' }),
      'consent_too_weak',
    );
    assert.equal(details.required, 'bound');
    const record = await lastDecisionRecord(created.id);
    assert.deepEqual([record.decision, record.reason], ['denied', 'consent_too_weak']);
    assert.deepEqual(await storedChallenge(created.id), before, 'a refusal before any check leaves the challenge');
    assert.equal((await approve(created, authenticator.get(options))).state, 'approved');
    await expectCode(signer.kernel.signHash(app, { walletName: 'strong', keyIndex: 0, hash: `0x${'55'.repeat(32)}`, code: '123456' }), 'consent_too_weak');
    await expectCode(signer.kernel.signTransaction(app, { walletName: 'strong', keyIndex: 0, transaction: TX, code: '123456' }), 'consent_too_weak');
  });

  it('the backend cannot add or make a factor: TOTP on a passkey wallet already_enrolled; a passkey through the API refused; a second link needs the passkey’s consent', async () => {
    await enrol('owned');
    await expectCode(signer.kernel.enrollTotp(app, { walletName: 'owned' }), 'already_enrolled');
    // The factor seam (trusted code, not the backend's rules) refuses too: a passkey wallet takes a factor only with its consent.
    await expectCode(signer.kernel.enrollFactor(app, { walletName: 'owned', kind: 'totp' }), 'already_enrolled');
    const [totpRecord] = await audit((r) => r.action === 'totp.enroll' && r.wallet_name === 'owned');
    assert.deepEqual([totpRecord?.decision, totpRecord?.reason], ['denied', 'already_enrolled']);
    assert.deepEqual(await signer.sql('SELECT wallet_name FROM totp_factors WHERE wallet_name = $1', 'owned'), []);
    // A second link is made, but adds nothing without the wallet's passkey (passkeyAddFactor.kernel.test).
    for (const kind of ['passkey', 'totp'] as const) {
      const second = await signer.kernel.createEnrollment(app, { walletName: 'owned', kind });
      recordTestSecret('enrollmentCapability', second.capability);
      assert.equal((await signer.kernel.openEnrollmentPage(second.capability)).consent?.kind, 'passkey');
      const refusal = await expectCode(signer.kernel.completeEnrollment(second.capability, { proof: '000000' }), 'code_required');
      assert.equal(refusal.field, 'consent');
    }

    // A passkey the backend registers would be its own key: refused, with or without a response.
    const { options } = await link('backend-made');
    for (const proof of [undefined, authenticator.create(options)]) {
      const refusal = await expectCode(signer.kernel.enrollFactor(app, { walletName: 'backend-made', kind: 'passkey', proof }), 'invalid_input');
      assert.equal(refusal.field, 'kind');
    }
    const denied = await audit((r) => r.action === 'passkey.enroll' && r.wallet_name === 'backend-made');
    assert.deepEqual(
      denied.map((r) => [r.decision, r.reason]),
      [
        ['denied', 'invalid_input'],
        ['denied', 'invalid_input'],
      ],
    );
    assert.deepEqual(await signer.sql('SELECT credential_id FROM passkey_credentials WHERE wallet_name = $1', 'backend-made'), []);
  });

  it('a credential id registered already (on another wallet): already_enrolled, audited, nothing stored, the link still usable, the first wallet unaffected', async () => {
    const credentialId = await enrol('dup-a');
    const { capability, options } = await link('dup-b');
    const again = authenticator.create(options, { reuse: credentialId, ignoreExclude: true });
    assert.equal(again.id, credentialId);
    const details = await expectCode(signer.kernel.completeEnrollment(capability, { proof: again }), 'already_enrolled');
    assert.equal(details.field, 'credentialId');
    const rows = await signer.sql('SELECT wallet_name FROM passkey_credentials WHERE credential_id = $1', credentialId);
    assert.deepEqual(
      rows.map((r) => r.wallet_name),
      ['dup-a'],
    );
    const [record] = await audit((r) => r.action === 'passkey.enroll' && r.wallet_name === 'dup-b');
    assert.deepEqual([record?.decision, record?.reason, record?.detail.factor], ['denied', 'already_enrolled', 'passkey']);
    assert.equal((await signer.kernel.openEnrollmentPage(capability)).state, 'pending', 'the link is not spent');
    const [linkRow] = await signer.sql("SELECT failures FROM enrollment_links WHERE wallet_name = $1 AND state = 'pending'", 'dup-b');
    assert.equal(Number(linkRow?.failures), 0, 'not charged: the answer was valid, its credential is taken');
    // The wallet's MAC still lists no factor: a fresh credential completes the same link.
    assert.equal((await signer.kernel.completeEnrollment(capability, { proof: authenticator.create(options) })).state, 'completed');
    await approved('dup-a');
    await approved('dup-b');
  });

  it('expired: the decision is approval_expired (audited), and no challenge is issued for it', async () => {
    await enrol('late');
    const created = await create('late', { ttlSeconds: 60 });
    const assertion = authenticator.get(await challenge(created));
    signer.clock.now = created.expiresAt;
    await expectCode(approve(created, assertion), 'approval_expired');
    const record = await lastDecisionRecord(created.id);
    assert.deepEqual([record.decision, record.reason], ['denied', 'approval_expired']);
    await expectCode(signer.kernel.issueApprovalChallenge(created.capability, { kind: 'passkey' }), 'approval_expired');
  });

  it('tampered passkey rows: counter rolled back, public key swapped, rpID or wallet changed — record_unreadable', async () => {
    const victim = await enrol('tamper');
    const donor = await enrol('tamper-donor');
    await approved('tamper', { counter: 7 });
    const [original] = await signer.sql('SELECT * FROM passkey_credentials WHERE credential_id = $1', victim);
    assert.ok(original);
    const [donorRow] = await signer.sql('SELECT public_key FROM passkey_credentials WHERE credential_id = $1', donor);
    const edits: Array<[string, string, unknown]> = [
      ['the counter', 'counter', 0],
      ['the public key', 'public_key', donorRow?.public_key],
      ['the rpID', 'rp_id', 'evil.example'],
      ['the transports', 'transports', '["usb"]'],
      ['how it was enrolled', 'enrolled_via', 'api'],
    ];
    for (const [label, column, value] of edits) {
      await signer.sql(`UPDATE passkey_credentials SET ${column} = $1 WHERE credential_id = $2`, value, victim);
      const created = await create('tamper').catch((error: unknown) => error);
      assert.ok(isCustosError(created), label);
      assert.equal(created.code, 'record_unreadable', label);
      await signer.sql(`UPDATE passkey_credentials SET ${column} = $1 WHERE credential_id = $2`, original[column], victim);
    }
    // An approval made before the tampering: no challenge, no decision.
    const created = await create('tamper');
    const options = await challenge(created);
    await signer.sql('UPDATE passkey_credentials SET counter = 0 WHERE credential_id = $1', victim);
    await expectCode(approve(created, authenticator.get(options)), 'record_unreadable');
    await expectCode(signer.kernel.issueApprovalChallenge(created.capability, { kind: 'passkey' }), 'record_unreadable');
    await signer.sql('UPDATE passkey_credentials SET counter = $1 WHERE credential_id = $2', original.counter, victim);
    // Moved to another wallet: both wallets refuse.
    await signer.sql('UPDATE passkey_credentials SET wallet_name = $1 WHERE credential_id = $2', 'tamper-donor', victim);
    await expectCode(signer.kernel.getPublicKey(app, { walletName: 'tamper', keyIndex: 0 }), 'record_unreadable');
    await expectCode(signer.kernel.getPublicKey(app, { walletName: 'tamper-donor', keyIndex: 0 }), 'record_unreadable');
    await signer.sql('UPDATE passkey_credentials SET wallet_name = $1 WHERE credential_id = $2', 'tamper', victim);
    // Deleted: the wallet's MAC lists it, so the wallet refuses (never "not enrolled").
    await signer.sql('DELETE FROM passkey_credentials WHERE credential_id = $1', victim);
    await expectCode(signer.kernel.getPublicKey(app, { walletName: 'tamper', keyIndex: 0 }), 'record_unreadable');
    await expectCode(signer.kernel.signHash(app, { walletName: 'tamper', keyIndex: 0, hash: `0x${'67'.repeat(32)}` }), 'record_unreadable');
    const columns = Object.keys(original);
    await signer.sql(
      `INSERT INTO passkey_credentials (${columns.join(', ')}) VALUES (${columns.map((_, i) => `$${i + 1}`).join(', ')})`,
      ...columns.map((c) => original[c]),
    );
    // The approval's stored challenge: changed, removed or moved to another approval — record_unreadable.
    await challenge(created);
    const [{ challenge: stored } = {}] = await signer.sql('SELECT challenge FROM approvals WHERE id = $1', created.id);
    assert.equal(typeof stored, 'string');
    const other = await create('tamper');
    await challenge(other);
    const [{ challenge: otherStored } = {}] = await signer.sql('SELECT challenge FROM approvals WHERE id = $1', other.id);
    const forged = JSON.stringify({ ...JSON.parse(String(stored)), nonce: '00'.repeat(32) });
    for (const [label, value] of [
      ['another nonce', forged],
      ['no challenge', null],
      ['the other approval’s', otherStored],
    ] as const) {
      await signer.sql('UPDATE approvals SET challenge = $1 WHERE id = $2', value, created.id);
      const refused = await signer.kernel.getApproval(app, { id: created.id }).catch((error: unknown) => error);
      assert.ok(isCustosError(refused) && refused.code === 'record_unreadable', label);
    }
    await signer.sql('UPDATE approvals SET challenge = $1 WHERE id = $2', stored, created.id);
    // Restored as it was: it works again (the refusals were the MAC's, not a broken row).
    assert.equal((await approve(created, authenticator.get(await challenge(created)))).state, 'approved');
  });

  it('a kernel without passkeys: passkeys_unavailable (409) for a passkey link or challenge; a wallet with a passkey fails closed (record_unreadable)', async () => {
    await enrol('orphan');
    const pending = await create('orphan');
    const bare = await Kernel.open({ store: signer.store, now: () => signer.clock.now });
    await bare.unseal(new TextEncoder().encode(TEST_PASSPHRASE));
    try {
      assert.equal(bare.passkeys, undefined);
      const bareApp = await bare.authenticateApiKey(signer.apiKey);
      await expectCode(bare.createEnrollment(bareApp, { walletName: 'fresh', kind: 'passkey' }), 'passkeys_unavailable');
      assert.equal(ERROR_CODES.passkeys_unavailable.status, 409);
      await expectCode(bare.issueApprovalChallenge(pending.capability, { kind: 'passkey' }), 'passkeys_unavailable');
      await expectCode(bare.decideApproval(pending.capability, { decision: 'approve', kind: 'passkey', proof: {} }), 'passkeys_unavailable');
      await expectCode(bare.getPublicKey(bareApp, { walletName: 'orphan', keyIndex: 0 }), 'record_unreadable');
      await expectCode(bare.signHash(bareApp, { walletName: 'orphan', keyIndex: 0, hash: `0x${'66'.repeat(32)}` }), 'record_unreadable');
      await expectCode(bare.signHash(bareApp, { walletName: 'orphan', keyIndex: 0, hash: `0x${'66'.repeat(32)}`, code: '123456' }), 'record_unreadable');
      await expectCode(bare.createApproval(bareApp, { walletName: 'orphan', keyIndex: 0, operation: { transaction: TX } }), 'record_unreadable');
      await expectCode(bare.enrollTotp(bareApp, { walletName: 'orphan' }), 'record_unreadable');
      await expectCode(bare.decideApproval(pending.capability, { decision: 'approve', kind: 'totp', proof: '123456' }), 'record_unreadable');
      assert.deepEqual(await signer.sql('SELECT wallet_name FROM totp_factors WHERE wallet_name = $1', 'orphan'), []);
    } finally {
      bare.seal();
    }
    // The kernel with passkeys still serves the wallet.
    assert.equal((await approve(pending, authenticator.get(await challenge(pending)))).state, 'approved');
  });
});
