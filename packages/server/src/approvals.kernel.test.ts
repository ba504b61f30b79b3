import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type App, createApiKey, type CreatedApproval, revokeApiKey } from '@custos/kernel';
import { RAW_HASHES_ALLOWED, createTestSigner, recordTestSecret, type TestSigner } from './testing/createTestSigner.js';
import { expectCode } from './testing/expectCode.js';
import { boundTestFactor } from './testing/boundTestFactor.js';
import { totpFromUri } from './testing/totpFromUri.js';

// Issue 11, point 1 (and the rules of point 9 that the kernel decides): approvals driven through the
// kernel's entry points on a real store. The HTTP routes and the page have tests of their own.

// A fixed instant in the middle of a 30 s step, so that ±1 step arithmetic is exact.
const T0 = Date.UTC(2026, 11, 6, 12, 0, 15);
const TO = '0x3535353535353535353535353535353535353535';
const TX = {
  type: 'eip1559',
  chainId: 8453,
  nonce: 3,
  to: TO,
  value: '1000',
  data: '0x',
  gas: '21000',
  maxFeePerGas: '2000000000',
  maxPriorityFeePerGas: '1000000',
};

describe('approvals in the kernel: one opHash, approved once, every rule attacked', () => {
  let signer: TestSigner;
  let app: App;
  let step = 0;
  const uris = new Map<string, string>();

  before(async () => {
    signer = await createTestSigner({ policyDefaults: RAW_HASHES_ALLOWED, startMs: T0, kernelOptions: { approvalLimits: { perWallet: 3 } } });
    app = await signer.kernel.authenticateApiKey(signer.apiKey);
  });
  after(async () => {
    await signer.close();
  });

  /** A fresh TOTP step for each code (a code is single use). */
  function nextCode(walletName: string): string {
    step += 1;
    signer.clock.now = T0 + step * 30_000;
    return totpFromUri(uris.get(walletName) as string, signer.clock.now);
  }

  async function enrolled(walletName: string): Promise<void> {
    const { otpauthUri } = await signer.kernel.enrollTotp(app, { walletName });
    uris.set(walletName, otpauthUri);
  }

  async function create(
    walletName: string,
    operation: Record<string, unknown> = { transaction: TX },
    extra: Record<string, unknown> = {},
  ): Promise<CreatedApproval> {
    const created = await signer.kernel.createApproval(app, { walletName, keyIndex: 0, operation, ...extra });
    recordTestSecret('approvalCapability', created.capability);
    return created;
  }

  async function approved(walletName: string, operation?: Record<string, unknown>): Promise<CreatedApproval> {
    const created = await create(walletName, operation);
    const view = await signer.kernel.decideApproval(created.capability, { decision: 'approve', kind: 'totp', proof: nextCode(walletName) });
    assert.equal(view.state, 'approved');
    assert.equal(view.factor, 'totp');
    return created;
  }

  async function auditOf(approvalId: string): Promise<Array<Record<string, unknown>>> {
    const rows = await signer.sql('SELECT seq, action, decision, reason, op_hash, detail FROM audit_log ORDER BY seq');
    return rows
      .map((r) => ({ ...r, seq: Number(r.seq), detail: (typeof r.detail === 'string' ? JSON.parse(r.detail) : r.detail) as Record<string, unknown> }))
      .filter((r) => r.detail.approvalId === approvalId || (r.detail.approval as { id?: string } | undefined)?.id === approvalId);
  }

  it('create: pending, with the operation’s opHash and summary, audited; the capability is 32 random bytes', async () => {
    await enrolled('create');
    const created = await create('create');
    assert.match(created.id, /^[0-9a-f]{32}$/);
    assert.match(created.capability, /^[A-Za-z0-9_-]{43}$/);
    assert.equal(created.state, 'pending');
    assert.equal(created.requiredStrength, 'present');
    assert.equal(created.operationType, 'transaction');
    assert.equal(created.expiresAt, signer.clock.now + 600_000, 'default time to live: 10 minutes');
    assert.match(created.summaryText, /8453/);
    // The opHash is the one the sign route computes for the same request.
    const [row] = await signer.sql('SELECT capability_hash, state, mac FROM approvals WHERE id = $1', created.id);
    assert.ok(row);
    assert.notEqual(row.capability_hash, created.capability, 'only a hash of the capability is stored');
    const records = await auditOf(created.id);
    assert.deepEqual(
      records.map((r) => [r.action, r.decision, r.op_hash]),
      [['approval.create', 'allowed', created.opHash]],
    );
    const view = await signer.kernel.getApproval(app, { id: created.id });
    const { capability: _shownOnce, ...shown } = created;
    assert.deepEqual(view, shown);
  });

  it('ttlSeconds: 60–3600 allowed, anything else invalid_input naming the field', async () => {
    await enrolled('ttl');
    assert.equal((await create('ttl', { hash: `0x${'11'.repeat(32)}` }, { ttlSeconds: 60 })).expiresAt, signer.clock.now + 60_000);
    for (const ttlSeconds of [59, 3601, 1.5, '600', -1]) {
      const details = await expectCode(create('ttl', { hash: `0x${'11'.repeat(32)}` }, { ttlSeconds }), 'invalid_input');
      assert.equal(details.field, 'ttlSeconds');
    }
  });

  it('the operation: exactly one member; a codec error is named under operation.', async () => {
    await enrolled('shape');
    for (const operation of [{}, { transaction: TX, hash: `0x${'11'.repeat(32)}` }, { sign: 1 }, [], null, 'x']) {
      const details = await expectCode(signer.kernel.createApproval(app, { walletName: 'shape', keyIndex: 0, operation }), 'invalid_input');
      assert.equal(details.field, 'operation');
    }
    const details = await expectCode(
      signer.kernel.createApproval(app, { walletName: 'shape', keyIndex: 0, operation: { message: { text: 7 } } }),
      'invalid_input',
    );
    assert.equal(details.field, 'operation.message.text');
  });

  it('a wallet that needs no consent: consent_not_required (never enrolled, or never named)', async () => {
    await signer.kernel.getPublicKey(app, { walletName: 'no-factor', keyIndex: 0 });
    await expectCode(create('no-factor'), 'consent_not_required');
    await expectCode(create('never-named'), 'consent_not_required');
  });

  it('approve on the page, sign with the approvalId: one signature, the approval consumed in the unit of its audit record', async () => {
    await enrolled('happy');
    const created = await approved('happy');
    const signed = await signer.kernel.signTransaction(app, { walletName: 'happy', keyIndex: 0, transaction: TX, approvalId: created.id });
    assert.equal(signed.opHash, created.opHash);
    const view = await signer.kernel.getApproval(app, { id: created.id });
    assert.equal(view.state, 'consumed');
    const [row] = await signer.sql('SELECT consumed_seq FROM approvals WHERE id = $1', created.id);
    assert.equal(Number(row?.consumed_seq), signed.auditSeq);
    const records = await auditOf(created.id);
    assert.deepEqual(
      records.map((r) => [r.action, r.decision]),
      [
        ['approval.create', 'allowed'],
        ['approval.approve', 'allowed'],
        ['sign.transaction', 'allowed'],
      ],
    );
    const signRecord = records[2] as { seq: number; detail: { approval: Record<string, unknown> } };
    assert.equal(signRecord.seq, signed.auditSeq);
    assert.equal(signRecord.detail.approval.id, created.id);
    assert.equal(signRecord.detail.approval.factor, 'totp');
    assert.equal(signRecord.detail.approval.strength, 'present');

    // The identical operation again: the same signature, audited as a repeat of the first record.
    const again = await signer.kernel.signTransaction(app, { walletName: 'happy', keyIndex: 0, transaction: TX, approvalId: created.id });
    assert.equal(again.serializedTransaction, signed.serializedTransaction);
    assert.equal(again.auditSeq > signed.auditSeq, true);
    const repeat = (await auditOf(created.id))[3] as { detail: Record<string, unknown> };
    assert.equal(repeat.detail.repeatOf, signed.auditSeq);
    const [after] = await signer.sql('SELECT consumed_seq FROM approvals WHERE id = $1', created.id);
    assert.equal(Number(after?.consumed_seq), signed.auditSeq, 'nothing is consumed twice');
  });

  it('swap: every field of the operation, the key index, the wallet — approval_mismatch, audited with both opHashes', async () => {
    await enrolled('swap');
    await enrolled('swap-other');
    const created = await approved('swap');
    const swaps: Array<[string, { walletName: string; keyIndex: number; transaction: unknown }]> = [
      ['1 wei more', { walletName: 'swap', keyIndex: 0, transaction: { ...TX, value: '1001' } }],
      ['one byte of to', { walletName: 'swap', keyIndex: 0, transaction: { ...TX, to: `${TO.slice(0, -2)}36` } }],
      ['one byte of data', { walletName: 'swap', keyIndex: 0, transaction: { ...TX, data: '0x01' } }],
      ['another nonce', { walletName: 'swap', keyIndex: 0, transaction: { ...TX, nonce: 4 } }],
      ['another chain', { walletName: 'swap', keyIndex: 0, transaction: { ...TX, chainId: 1 } }],
      ['another key index', { walletName: 'swap', keyIndex: 1, transaction: TX }],
      ['another wallet of the tenant', { walletName: 'swap-other', keyIndex: 0, transaction: TX }],
    ];
    for (const [label, request] of swaps) {
      const details = await expectCode(signer.kernel.signTransaction(app, { ...request, approvalId: created.id }), 'approval_mismatch');
      assert.equal(details.approvalOpHash, created.opHash, label);
      assert.notEqual(details.opHash, created.opHash, label);
    }
    // Another operation type with the same approval.
    await expectCode(signer.kernel.signMessage(app, { walletName: 'swap', keyIndex: 0, message: { text: 'hi' }, approvalId: created.id }), 'approval_mismatch');
    await expectCode(
      signer.kernel.signHash(app, { walletName: 'swap', keyIndex: 0, hash: `0x${'22'.repeat(32)}`, approvalId: created.id }),
      'approval_mismatch',
    );
    const denied = (await auditOf(created.id)).filter((r) => r.decision === 'denied');
    assert.equal(denied.length, swaps.length + 2);
    for (const record of denied) {
      assert.equal(record.reason, 'approval_mismatch');
      assert.equal((record.detail as Record<string, unknown>).approvalOpHash, created.opHash);
      assert.notEqual(record.op_hash, created.opHash);
    }
    // Still approved and unused: the right operation signs.
    assert.equal((await signer.kernel.getApproval(app, { id: created.id })).state, 'approved');
    await signer.kernel.signTransaction(app, { walletName: 'swap', keyIndex: 0, transaction: TX, approvalId: created.id });
    // A consumed approval for another operation: a mismatch too.
    await expectCode(
      signer.kernel.signTransaction(app, { walletName: 'swap', keyIndex: 0, transaction: { ...TX, nonce: 9 }, approvalId: created.id }),
      'approval_mismatch',
    );
  });

  it('pending, rejected, cancelled, expired, unknown: each refused with its code', async () => {
    await enrolled('states');
    const sign = (approvalId: string) => signer.kernel.signTransaction(app, { walletName: 'states', keyIndex: 0, transaction: TX, approvalId });
    const pending = await create('states');
    await expectCode(sign(pending.id), 'approval_pending');
    const rejected = await create('states');
    assert.equal((await signer.kernel.decideApproval(rejected.capability, { decision: 'reject' })).state, 'rejected');
    await expectCode(sign(rejected.id), 'approval_rejected');
    assert.equal((await signer.kernel.cancelApproval(app, { id: pending.id })).state, 'cancelled');
    await expectCode(sign(pending.id), 'approval_cancelled');
    await expectCode(sign('0'.repeat(32)), 'approval_not_found');
    // Approved, then past its expiry before it is used.
    const late = await approved('states');
    signer.clock.now = late.expiresAt;
    await expectCode(sign(late.id), 'approval_expired');
    assert.equal((await signer.kernel.getApproval(app, { id: late.id })).state, 'expired');
    // Cannot be decided once decided or expired.
    await expectCode(signer.kernel.decideApproval(rejected.capability, { decision: 'approve', kind: 'totp', proof: '000000' }), 'approval_rejected');
    await expectCode(signer.kernel.decideApproval(late.capability, { decision: 'reject' }), 'approval_expired');
  });

  it('an approval already approved cannot be decided again (approval_decided); cancel of a used one changes nothing', async () => {
    await enrolled('twice');
    const created = await approved('twice');
    await expectCode(signer.kernel.decideApproval(created.capability, { decision: 'reject' }), 'approval_decided');
    await signer.kernel.signTransaction(app, { walletName: 'twice', keyIndex: 0, transaction: TX, approvalId: created.id });
    assert.equal((await signer.kernel.cancelApproval(app, { id: created.id })).state, 'consumed');
  });

  it('a wrong code on the page is charged to the factor’s one throttle; the approval stays pending', async () => {
    await enrolled('wrong');
    const created = await create('wrong');
    const good = nextCode('wrong');
    const wrong = good === '000000' ? '000001' : '000000';
    await expectCode(signer.kernel.decideApproval(created.capability, { decision: 'approve', kind: 'totp', proof: wrong }), 'code_invalid');
    const [row] = await signer.sql('SELECT failures FROM totp_factors WHERE wallet_name = $1', 'wrong');
    assert.equal(Number(row?.failures), 1);
    assert.equal((await signer.kernel.getApproval(app, { id: created.id })).state, 'pending');
    // The code used on the page cannot sign through the API afterwards (single use, one factor state).
    await signer.kernel.decideApproval(created.capability, { decision: 'approve', kind: 'totp', proof: good });
    await expectCode(signer.kernel.signHash(app, { walletName: 'wrong', keyIndex: 0, hash: `0x${'33'.repeat(32)}`, code: good }), 'code_reused');
  });

  it('code and approvalId together: invalid_input; a malformed approvalId: invalid_input naming it', async () => {
    await enrolled('both');
    const created = await approved('both');
    const details = await expectCode(
      signer.kernel.signTransaction(app, { walletName: 'both', keyIndex: 0, transaction: TX, approvalId: created.id, code: '123456' }),
      'invalid_input',
    );
    assert.equal(details.field, 'approvalId');
    for (const approvalId of ['', 'ABC', 'g'.repeat(32), 7, {}]) {
      const bad = await expectCode(signer.kernel.signTransaction(app, { walletName: 'both', keyIndex: 0, transaction: TX, approvalId }), 'invalid_input');
      assert.equal(bad.field, 'approvalId');
    }
  });

  it('another tenant: approval_not_found for read, cancel and sign — even with an operation of its own wallet', async () => {
    await enrolled('tenant-a');
    const created = await approved('tenant-a');
    const { token } = await createApiKey(signer.store, { name: 'backend b', tenant: 'tenant-b', scopes: ['register', 'derive', 'sign'] });
    recordTestSecret('apiKey', token);
    const b = await signer.kernel.authenticateApiKey(token);
    await expectCode(signer.kernel.getApproval(b, { id: created.id }), 'approval_not_found');
    await expectCode(signer.kernel.cancelApproval(b, { id: created.id }), 'approval_not_found');
    await signer.kernel.enrollTotp(b, { walletName: 'tenant-b-wallet' });
    await expectCode(
      signer.kernel.signTransaction(b, { walletName: 'tenant-b-wallet', keyIndex: 0, transaction: TX, approvalId: created.id }),
      'approval_not_found',
    );
    assert.equal((await signer.kernel.getApproval(app, { id: created.id })).state, 'approved');
  });

  it('tampered rows: a pending approval set to approved, or its expiry extended, is record_unreadable', async () => {
    await enrolled('tamper');
    const flipped = await create('tamper');
    await signer.sql("UPDATE approvals SET state = 'approved' WHERE id = $1", flipped.id);
    await expectCode(signer.kernel.signTransaction(app, { walletName: 'tamper', keyIndex: 0, transaction: TX, approvalId: flipped.id }), 'record_unreadable');
    await expectCode(signer.kernel.getApproval(app, { id: flipped.id }), 'record_unreadable');
    const extended = await approved('tamper');
    await signer.sql('UPDATE approvals SET expires_at = expires_at + 3600000 WHERE id = $1', extended.id);
    await expectCode(signer.kernel.signTransaction(app, { walletName: 'tamper', keyIndex: 0, transaction: TX, approvalId: extended.id }), 'record_unreadable');
    // A consumed one re-opened: refused too.
    const used = await approved('tamper');
    await signer.kernel.signTransaction(app, { walletName: 'tamper', keyIndex: 0, transaction: TX, approvalId: used.id });
    await signer.sql("UPDATE approvals SET state = 'approved', consumed_seq = NULL WHERE id = $1", used.id);
    await expectCode(signer.kernel.signTransaction(app, { walletName: 'tamper', keyIndex: 0, transaction: TX, approvalId: used.id }), 'record_unreadable');
  });

  it('pending approvals are capped per wallet: too_many_approvals', async () => {
    await enrolled('cap');
    const made = [await create('cap'), await create('cap'), await create('cap')];
    await expectCode(create('cap'), 'too_many_approvals');
    await signer.kernel.cancelApproval(app, { id: (made[0] as CreatedApproval).id });
    await create('cap');
  });

  it('revoking the API key cancels the pending approvals it created, audited; the rows stay intact', async () => {
    const { token, id: keyId } = await createApiKey(signer.store, { name: 'doomed', scopes: ['register', 'sign'] });
    recordTestSecret('apiKey', token);
    const doomed = await signer.kernel.authenticateApiKey(token);
    await signer.kernel.enrollTotp(doomed, { walletName: 'revoked' });
    const created = await signer.kernel.createApproval(doomed, { walletName: 'revoked', keyIndex: 0, operation: { transaction: TX } });
    recordTestSecret('approvalCapability', created.capability);
    await revokeApiKey(signer.store, keyId, () => signer.clock.now);
    // Another key of the same tenant sees it cancelled (and its MAC holds).
    const view = await signer.kernel.getApproval(app, { id: created.id });
    assert.equal(view.state, 'cancelled');
    const records = await auditOf(created.id);
    assert.deepEqual(records.at(-1)?.action, 'approval.cancel');
    assert.equal((records.at(-1)?.detail as Record<string, unknown>).by, 'apikey.revoke');
    await expectCode(signer.kernel.decideApproval(created.capability, { decision: 'approve', kind: 'totp', proof: '123456' }), 'approval_cancelled');
  });

  it('revoking the API key voids what it asked for and the owner approved but nobody used yet, and its enrolment links', async () => {
    const { token, id: keyId } = await createApiKey(signer.store, { name: 'doomed too', scopes: ['register', 'sign'] });
    recordTestSecret('apiKey', token);
    const doomed = await signer.kernel.authenticateApiKey(token);
    const { otpauthUri } = await signer.kernel.enrollTotp(doomed, { walletName: 'revoked-approved' });
    uris.set('revoked-approved', otpauthUri);
    const created = await signer.kernel.createApproval(doomed, { walletName: 'revoked-approved', keyIndex: 0, operation: { transaction: TX } });
    recordTestSecret('approvalCapability', created.capability);
    await signer.kernel.decideApproval(created.capability, { decision: 'approve', kind: 'totp', proof: nextCode('revoked-approved') });
    const link = await signer.kernel.createEnrollment(doomed, { walletName: 'revoked-link' });
    recordTestSecret('enrollmentCapability', link.capability);
    assert.notEqual((await signer.kernel.openEnrollmentPage(link.capability)).shown, null);
    await revokeApiKey(signer.store, keyId, () => signer.clock.now);
    // Another key of the tenant cannot sign with it.
    await expectCode(
      signer.kernel.signTransaction(app, { walletName: 'revoked-approved', keyIndex: 0, transaction: TX, approvalId: created.id }),
      'approval_cancelled',
    );
    const page = await signer.kernel.openEnrollmentPage(link.capability);
    assert.equal(page.state, 'cancelled');
    assert.equal(page.shown, null, 'no secret for a void link');
    await expectCode(signer.kernel.completeEnrollment(link.capability, { proof: '123456' }), 'enrollment_used');
  });

  it('the sweep writes expired approvals, audited, and they stay intact', async () => {
    await enrolled('sweep');
    const created = await create('sweep', { hash: `0x${'44'.repeat(32)}` }, { ttlSeconds: 60 });
    signer.clock.now += 61_000;
    assert.ok((await signer.kernel.expireApprovals()) >= 1);
    const [row] = await signer.sql('SELECT state FROM approvals WHERE id = $1', created.id);
    assert.equal(row?.state, 'expired');
    assert.equal((await signer.kernel.getApproval(app, { id: created.id })).state, 'expired');
    assert.deepEqual(
      (await auditOf(created.id)).map((r) => r.action),
      ['approval.create', 'approval.expire'],
    );
  });

  it('the sweep also expires an approval that was approved and never used (audited), and its MAC still holds', async () => {
    await enrolled('sweep-approved');
    const created = await approved('sweep-approved');
    signer.clock.now = created.expiresAt + 1;
    assert.ok((await signer.kernel.expireApprovals()) >= 1);
    const [row] = await signer.sql('SELECT state FROM approvals WHERE id = $1', created.id);
    assert.equal(row?.state, 'expired');
    assert.equal((await signer.kernel.getApproval(app, { id: created.id })).state, 'expired');
    assert.deepEqual(
      (await auditOf(created.id)).map((r) => r.action),
      ['approval.create', 'approval.approve', 'approval.expire'],
    );
  });

  it('watchers hear of each change after it committed', async () => {
    await enrolled('watch');
    const heard: string[] = [];
    const stop = signer.kernel.watchApprovals((id) => heard.push(id));
    try {
      const created = await approved('watch');
      await signer.kernel.signTransaction(app, { walletName: 'watch', keyIndex: 0, transaction: TX, approvalId: created.id });
      assert.deepEqual(heard, [created.id, created.id, created.id], 'created, approved, consumed');
    } finally {
      stop();
    }
  });
});

describe('a wallet with a bound factor requires bound: a relayed code is refused before it is checked', () => {
  let signer: TestSigner;
  let app: App;
  let uri: string;

  before(async () => {
    signer = await createTestSigner({ policyDefaults: RAW_HASHES_ALLOWED, startMs: T0, kernelOptions: { factors: [boundTestFactor()] } });
    app = await signer.kernel.authenticateApiKey(signer.apiKey);
    uri = (await signer.kernel.enrollTotp(app, { walletName: 'strong' })).otpauthUri;
    await signer.kernel.enrollFactor(app, { walletName: 'strong', kind: 'test-bound' });
  });
  after(async () => {
    await signer.close();
  });

  const totpRow = async () => {
    const [row] = await signer.sql('SELECT failures, last_accepted_step FROM totp_factors WHERE wallet_name = $1', 'strong');
    return { failures: Number(row?.failures), lastAcceptedStep: row?.last_accepted_step === null ? null : Number(row?.last_accepted_step) };
  };

  it('a code on the sign route (right or wrong): consent_too_weak, audited, not charged, not consumed', async () => {
    const before = await totpRow();
    const right = totpFromUri(uri, signer.clock.now);
    for (const code of [right, right === '000000' ? '000001' : '000000']) {
      const details = await expectCode(
        signer.kernel.signHash(app, { walletName: 'strong', keyIndex: 0, hash: `0x${'55'.repeat(32)}`, code }),
        'consent_too_weak',
      );
      assert.equal(details.required, 'bound');
    }
    assert.deepEqual(await totpRow(), before, 'the code was never checked: no failure charged, no step consumed');
    const [record] = await signer.sql("SELECT reason FROM audit_log WHERE wallet_name = 'strong' AND action = 'sign.hash' ORDER BY seq DESC LIMIT 1");
    assert.equal(record?.reason, 'consent_too_weak');
    // Without a code too: only an approval signs.
    await expectCode(signer.kernel.signHash(app, { walletName: 'strong', keyIndex: 0, hash: `0x${'55'.repeat(32)}` }), 'consent_too_weak');
  });

  it('approvals require bound; a TOTP code on the page is consent_too_weak (not charged); the bound factor approves and the signature carries its evidence', async () => {
    const created = await signer.kernel.createApproval(app, { walletName: 'strong', keyIndex: 0, operation: { transaction: TX } });
    recordTestSecret('approvalCapability', created.capability);
    assert.equal(created.requiredStrength, 'bound');
    const before = await totpRow();
    await expectCode(
      signer.kernel.decideApproval(created.capability, { decision: 'approve', kind: 'totp', proof: totpFromUri(uri, signer.clock.now) }),
      'consent_too_weak',
    );
    assert.deepEqual(await totpRow(), before);
    // The bound factor's proof for another approval is refused (its state is its own business: here, a plain refusal).
    await expectCode(
      signer.kernel.decideApproval(created.capability, { decision: 'approve', kind: 'test-bound', proof: `approve:${'0'.repeat(32)}:${created.opHash}` }),
      'code_invalid',
    );
    const view = await signer.kernel.decideApproval(created.capability, {
      decision: 'approve',
      kind: 'test-bound',
      proof: `approve:${created.id}:${created.opHash}`,
    });
    assert.equal(view.factor, 'test-bound');
    const signed = await signer.kernel.signTransaction(app, { walletName: 'strong', keyIndex: 0, transaction: TX, approvalId: created.id });
    const [row] = await signer.sql('SELECT detail FROM audit_log WHERE seq = $1', signed.auditSeq);
    const detail = (typeof row?.detail === 'string' ? JSON.parse(row.detail) : row?.detail) as { approval: Record<string, unknown> };
    assert.deepEqual(detail.approval, { id: created.id, factor: 'test-bound', strength: 'bound', credentialId: 'device', userVerified: true });
  });

  it('the compatibility API: a code for the bound wallet is consent_too_weak (unchecked), and its register is already_enrolled', async () => {
    const auth = await signer.app.inject({ method: 'POST', url: '/sys/v1/session/auth', headers: { authorization: `Basic ${signer.apiKey}` } });
    assert.equal(auth.statusCode, 200, auth.body);
    const bearer = auth.json().access_token as string;
    recordTestSecret('accessToken', bearer);
    const plugin = (payload: Record<string, unknown>) =>
      signer.app.inject({
        method: 'POST',
        url: `/sys/v1/plugins/${signer.signerId}`,
        headers: { authorization: `Bearer ${bearer}`, 'content-type': 'application/json' },
        payload: JSON.stringify(payload),
      });
    const before = await totpRow();
    const sign = await plugin({ operation: 'sign', walletName: 'strong', keyIndex: '0', msgHash: 'cd'.repeat(32), code: totpFromUri(uri, signer.clock.now) });
    assert.equal(sign.statusCode, 403, sign.body);
    assert.equal(sign.json().error.code, 'consent_too_weak');
    assert.deepEqual(await totpRow(), before);
    await signer.kernel.enrollFactor(app, { walletName: 'bound-only', kind: 'test-bound' });
    const register = await plugin({ operation: 'register', walletName: 'bound-only' });
    assert.equal(register.statusCode, 409, register.body);
    assert.equal(register.json().error.code, 'already_enrolled');
    assert.deepEqual(await signer.sql('SELECT wallet_name FROM totp_factors WHERE wallet_name = $1', 'bound-only'), []);
  });

  it('an approval decided with a present factor, whose wallet since gained a bound one, no longer signs (the stricter requirement wins)', async () => {
    const weakUri = (await signer.kernel.enrollTotp(app, { walletName: 'upgraded' })).otpauthUri;
    const created = await signer.kernel.createApproval(app, { walletName: 'upgraded', keyIndex: 0, operation: { transaction: TX } });
    recordTestSecret('approvalCapability', created.capability);
    assert.equal(created.requiredStrength, 'present');
    signer.clock.now += 30_000;
    await signer.kernel.decideApproval(created.capability, { decision: 'approve', kind: 'totp', proof: totpFromUri(weakUri, signer.clock.now) });
    await signer.kernel.enrollFactor(app, { walletName: 'upgraded', kind: 'test-bound' });
    const details = await expectCode(
      signer.kernel.signTransaction(app, { walletName: 'upgraded', keyIndex: 0, transaction: TX, approvalId: created.id }),
      'consent_too_weak',
    );
    assert.equal(details.required, 'bound');
  });
});

describe('factors cannot be added behind the owner’s back (issue 11, point 3)', () => {
  it('the backend’s TOTP enrolment is refused for a wallet with a factor of any kind: already_enrolled, audited', async () => {
    const signer = await createTestSigner({ policyDefaults: RAW_HASHES_ALLOWED, startMs: T0, kernelOptions: { factors: [boundTestFactor()] } });
    try {
      const app = await signer.kernel.authenticateApiKey(signer.apiKey);
      await signer.kernel.enrollFactor(app, { walletName: 'passkey-first', kind: 'test-bound' });
      const res = await signer.app.inject({ method: 'POST', url: '/v1/totp/enroll', headers: signer.auth(), payload: { walletName: 'passkey-first' } });
      assert.equal(res.statusCode, 409, res.body);
      assert.equal(res.json().error.code, 'already_enrolled');
      assert.equal(res.json().error.details.field, 'walletName');
      const rows = await signer.sql('SELECT wallet_name FROM totp_factors WHERE wallet_name = $1', 'passkey-first');
      assert.deepEqual(rows, [], 'no TOTP secret was made for the backend');
      const [record] = await signer.sql("SELECT decision, reason FROM audit_log WHERE wallet_name = 'passkey-first' AND action = 'totp.enroll'");
      assert.deepEqual({ ...record }, { decision: 'denied', reason: 'already_enrolled' });
    } finally {
      await signer.close();
    }
  });

  it('--backend-enrollment off: the backend enrols nothing, even for a new wallet (backend_enrollment_disabled)', async () => {
    const signer = await createTestSigner({ policyDefaults: RAW_HASHES_ALLOWED, startMs: T0, kernelOptions: { backendEnrollment: 'off' } });
    try {
      const res = await signer.app.inject({ method: 'POST', url: '/v1/totp/enroll', headers: signer.auth(), payload: { walletName: 'fresh' } });
      assert.equal(res.statusCode, 403, res.body);
      assert.equal(res.json().error.code, 'backend_enrollment_disabled');
      assert.deepEqual(await signer.sql('SELECT wallet_name FROM totp_factors'), []);
    } finally {
      await signer.close();
    }
  });
});
