import assert from 'node:assert/strict';
import { createHmac, timingSafeEqual } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import {
  type App,
  computeOpHash,
  CustosError,
  type Factor,
  type FactorRows,
  assertFactorNotThrottled,
  recordFactorFailure,
  recordFactorSuccess,
} from '@custos/kernel';
import { RAW_HASHES_ALLOWED, createTestSigner, type TestSigner } from './testing/createTestSigner.js';
import { inMemoryFactorRowsForTests } from './testing/inMemoryFactorRows.js';
import { verifySignature } from './testing/verifySignature.js';

/**
 * The factor seam (consent/Factor.ts), shown with a factor that exists only here: a challenge-
 * response code bound to the operation. The kernel issues a nonce for an approval (`challenge`);
 * the "device" answers with a 6-digit code over nonce ‖ opHash; `verify` accepts it once, for that
 * opHash only. Its rows live in memory (IN-MEMORY, TEST-ONLY: not transactional, unlike a store's
 * table — the real factors' rows are the store's); everything else is the kernel's own path:
 * registration through KernelOptions.factors, enrolment, the consent module's MACs and state
 * persistence, policy, signature and audit.
 */

const KIND = 'test-challenge';
const T0 = Date.UTC(2026, 11, 6, 12, 0, 15);
const HASH_A = `0x${'aa'.repeat(32)}`;
const HASH_B = `0x${'bb'.repeat(32)}`;

interface ChallengeState {
  pending: { nonce: string; opHash: string; approvalId: string; expiresAt: number } | null;
  failures: number;
  lockedUntilMs: number | null;
}

/** The device's answer: 6 digits of HMAC-SHA256(secret, nonce ‖ opHash). */
function answer(secret: Uint8Array, nonce: string, opHash: string): string {
  const mac = createHmac('sha256', secret).update(`custos.test-challenge\0${nonce}\0${opHash}`).digest();
  return String(mac.readUInt32BE(0) % 1_000_000).padStart(6, '0');
}

/** `opened`: every secret the kernel handed the factor (the test checks that the consent module wiped them). */
function challengeFactor(rows: FactorRows<ChallengeState>, opened: Uint8Array[]): Factor<ChallengeState, { secretHex: string }, null> {
  return {
    kind: KIND,
    strength: 'present',
    label: 'test challenge',
    rows,
    enroll: {
      async begin({ random }) {
        const secret = random(32);
        // The test stands in for the device, so it is shown the secret.
        return { secret, shown: { secretHex: Buffer.from(secret).toString('hex') }, pending: null };
      },
      finish() {
        return { id: 'device', state: { pending: null, failures: 0, lockedUntilMs: null } };
      },
    },
    challenge({ wallet, approval, now, random }) {
      assertFactorNotThrottled(wallet.factor.state, now);
      const nonce = Buffer.from(random(16)).toString('hex');
      return {
        challenge: nonce,
        stateChange: { ...wallet.factor.state, pending: { nonce, opHash: approval.opHash, approvalId: approval.id, expiresAt: approval.expiresAt } },
      };
    },
    verify({ wallet, opHash, proof, now }) {
      const state = wallet.factor.state;
      assertFactorNotThrottled(state, now);
      if (state.pending === null) throw new CustosError('code_required', 'request a challenge first', { details: { field: 'code' } });
      if (typeof proof !== 'string') throw new CustosError('code_required', 'a code is required', { details: { field: 'code' } });
      // Single use: whatever the outcome, the pending challenge is spent.
      const pending = state.pending;
      const key = wallet.openSecret();
      opened.push(key);
      const expected = answer(key, pending.nonce, pending.opHash);
      const right =
        pending.opHash === opHash && now < pending.expiresAt && proof.length === expected.length && timingSafeEqual(Buffer.from(proof), Buffer.from(expected));
      if (!right) {
        const stateChange = { pending: null, ...recordFactorFailure(state, now) };
        throw new CustosError('code_invalid', 'the code does not answer the challenge for this operation', { details: { field: 'code' }, stateChange });
      }
      return { stateChange: { pending: null, ...recordFactorSuccess() }, evidence: { factor: KIND, approvalId: pending.approvalId } };
    },
  };
}

describe('the Factor seam: a test-only challenge factor signs through the kernel path', () => {
  let signer: TestSigner;
  let app: App;
  const memory = inMemoryFactorRowsForTests<ChallengeState>(({ pending, failures, lockedUntilMs }) => ({ pending, failures, lockedUntilMs }));
  const opened: Uint8Array[] = [];
  let secret: Uint8Array;

  const opHashOf = (walletName: string, hash: string) => computeOpHash({ type: 'hash', walletName, keyIndex: 0, hash: hash.slice(2) });
  const challenge = async (walletName: string, hash: string, id: string, expiresAt = T0 + 600_000) =>
    (await signer.kernel.challengeFactor(app, { walletName, kind: KIND, approval: { id, opHash: opHashOf(walletName, hash), expiresAt } })).challenge as string;
  const sign = (walletName: string, hash: string, code?: string) =>
    signer.app.inject({
      method: 'POST',
      url: '/v1/sign/hash',
      headers: signer.auth(),
      payload: { walletName, keyIndex: 0, hash, ...(code === undefined ? {} : { code }) },
    });
  /** The wallet's latest audit record, its detail parsed (SQLite stores it as text, PostgreSQL as jsonb). */
  const lastAudit = async (walletName: string) => {
    const [row] = await signer.sql('SELECT action, decision, reason, detail FROM audit_log WHERE wallet_name = $1 ORDER BY seq DESC LIMIT 1', walletName);
    assert.ok(row, `an audit record of ${walletName}`);
    return { action: row.action, decision: row.decision, reason: row.reason, detail: typeof row.detail === 'string' ? JSON.parse(row.detail) : row.detail };
  };

  before(async () => {
    signer = await createTestSigner({ policyDefaults: RAW_HASHES_ALLOWED, startMs: T0, kernelOptions: { factors: [challengeFactor(memory, opened)] } });
    app = await signer.kernel.authenticateApiKey(signer.apiKey);
    const enrolled = await signer.kernel.enrollFactor(app, { walletName: 'seam', kind: KIND });
    secret = Buffer.from((enrolled.shown as { secretHex: string }).secretHex, 'hex');
  });
  after(async () => {
    await signer.close();
  });

  it('enrolment goes through the kernel: the row is sealed and MAC’d, the wallet lists the factor, the record is audited', async () => {
    const row = memory.rows.get('seam');
    assert.ok(row);
    assert.equal(row.kind, KIND);
    assert.ok(row.secretEnvelope !== null && !row.secretEnvelope.includes(Buffer.from(secret).toString('hex')), 'the secret is stored sealed');
    assert.match(row.mac ?? '', /^[0-9a-f]{64}$/);
    const wallet = await signer.app.inject({ method: 'GET', url: '/v1/wallets?walletName=seam', headers: signer.auth() });
    assert.equal(wallet.statusCode, 200, wallet.body);
    assert.deepEqual(wallet.json().factors, [KIND]);
    assert.deepEqual(await lastAudit('seam'), { action: `${KIND}.enroll`, decision: 'allowed', reason: null, detail: {} });
  });

  it('challenge → answer → signature: the signature verifies and the allowed record carries the factor’s evidence', async () => {
    const nonce = await challenge('seam', HASH_A, 'approval-1');
    assert.equal(memory.rows.get('seam')?.state.pending?.nonce, nonce, 'the challenge state was persisted by the consent module');
    const issued = await lastAudit('seam');
    assert.deepEqual(issued, { action: `${KIND}.challenge`, decision: 'allowed', reason: null, detail: { approvalId: 'approval-1', factor: KIND } });
    const res = await sign('seam', HASH_A, answer(secret, nonce, opHashOf('seam', HASH_A)));
    assert.equal(res.statusCode, 200, res.body);
    const body = res.json();
    assert.ok(verifySignature({ r: body.r, s: body.s, hash: HASH_A, publicKey: body.publicKey, recoveryId: body.recoveryId }));
    const record = await lastAudit('seam');
    assert.equal(record.decision, 'allowed');
    assert.equal(record.action, 'sign.hash');
    assert.equal(record.detail.factor, KIND);
    assert.equal(record.detail.approvalId, 'approval-1');
    assert.equal(memory.rows.get('seam')?.state.pending, null, 'the challenge is spent');
    assert.ok(opened.length > 0, 'the factor opened its secret');
    for (const key of opened)
      assert.ok(
        key.every((byte) => byte === 0),
        'the consent module wiped the secret it opened',
      );
  });

  it('expiry: an answer after the approval expired does not sign, and is charged', async () => {
    const before = memory.rows.get('seam')?.state.failures ?? -1;
    const nonce = await challenge('seam', HASH_A, 'approval-short', T0 + 1_000);
    signer.clock.now = T0 + 2_000;
    try {
      const res = await sign('seam', HASH_A, answer(secret, nonce, opHashOf('seam', HASH_A)));
      assert.equal(res.statusCode, 403);
      assert.equal(res.json().error.code, 'code_invalid');
      assert.equal(memory.rows.get('seam')?.state.failures, before + 1);
    } finally {
      signer.clock.now = T0;
    }
  });

  it('policy: a wallet with this factor needs consent — no code is code_required, audited with the factor', async () => {
    const res = await sign('seam', HASH_A);
    assert.equal(res.statusCode, 403);
    assert.equal(res.json().error.code, 'code_required');
    const record = await lastAudit('seam');
    assert.equal(record.reason, 'code_required');
    assert.equal(record.detail.factor, KIND);
  });

  it('replay: the answer that signed once does not sign again', async () => {
    const nonce = await challenge('seam', HASH_A, 'approval-2');
    const code = answer(secret, nonce, opHashOf('seam', HASH_A));
    assert.equal((await sign('seam', HASH_A, code)).statusCode, 200);
    const again = await sign('seam', HASH_A, code);
    assert.equal(again.statusCode, 403);
    assert.equal(again.json().error.code, 'code_required');
  });

  it('swap: an answer for operation A does not sign B; the charged attempt is persisted before the denial', async () => {
    const before = memory.rows.get('seam')?.state.failures ?? -1;
    const nonce = await challenge('seam', HASH_A, 'approval-3');
    const res = await sign('seam', HASH_B, answer(secret, nonce, opHashOf('seam', HASH_A)));
    assert.equal(res.statusCode, 403);
    assert.equal(res.json().error.code, 'code_invalid');
    assert.equal(memory.rows.get('seam')?.state.failures, before + 1, 'the failure was charged');
    assert.equal(memory.rows.get('seam')?.state.pending, null, 'the challenge is spent');
    const record = await lastAudit('seam');
    assert.equal(record.reason, 'code_invalid');
    assert.equal(record.detail.factor, KIND);
  });

  it('integrity: a factor state changed behind the kernel is record_unreadable (the consent module checks the MAC)', async () => {
    await challenge('seam', HASH_A, 'approval-4');
    const row = memory.rows.get('seam');
    assert.ok(row);
    const saved = structuredClone(row);
    // The failure count reset behind the kernel's back (any change of the state would do).
    memory.rows.set('seam', { ...row, state: { ...row.state, failures: row.state.failures + 7 } });
    try {
      const res = await sign('seam', HASH_A, '000000');
      assert.equal(res.statusCode, 503);
      assert.equal(res.json().error.code, 'record_unreadable');
    } finally {
      memory.rows.set('seam', saved);
    }
  });

  it('integrity: a factor row deleted behind the kernel is record_unreadable (the wallet MAC lists its factors)', async () => {
    const saved = memory.rows.get('seam');
    assert.ok(saved);
    memory.rows.delete('seam');
    try {
      const res = await sign('seam', HASH_A);
      assert.equal(res.statusCode, 503);
      assert.equal(res.json().error.code, 'record_unreadable');
    } finally {
      memory.rows.set('seam', saved);
    }
  });

  it('a challenge for a wallet without the factor is refused factor_required, audited', async () => {
    await assert.rejects(
      signer.kernel.challengeFactor(app, {
        walletName: 'never-enrolled',
        kind: KIND,
        approval: { id: 'x', opHash: opHashOf('never-enrolled', HASH_A), expiresAt: T0 + 1 },
      }),
      (error: unknown) => error instanceof CustosError && error.code === 'wallet_not_found',
    );
    await signer.kernel.getPublicKey(app, { walletName: 'plain', keyIndex: 0 });
    await assert.rejects(
      signer.kernel.challengeFactor(app, { walletName: 'plain', kind: KIND, approval: { id: 'x', opHash: opHashOf('plain', HASH_A), expiresAt: T0 + 1 } }),
      (error: unknown) => error instanceof CustosError && error.code === 'factor_required',
    );
    assert.equal((await lastAudit('plain')).reason, 'factor_required');
  });
});
