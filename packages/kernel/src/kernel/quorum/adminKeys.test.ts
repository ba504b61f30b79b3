// store-independent: pure functions over keys and bytes, no store
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ed25519 } from '@noble/curves/ed25519.js';
import {
  adminMessage,
  APPROVE_LABEL,
  assertAdminPublicKey,
  assertAdminSignature,
  computePayloadHash,
  generateAdminKey,
  parseAdminKeyFile,
  PROPOSE_LABEL,
  signAdminMessage,
} from './adminKeys.js';
import { parseQuorumSettings } from './settings.js';

const ID = '0123456789abcdef0123456789abcdef';

describe('admin keys', () => {
  test('a key file round-trips; a file whose public key does not match its private key is refused', () => {
    const file = generateAdminKey();
    const { publicKey, privateKey } = parseAdminKeyFile(JSON.stringify(file));
    assert.equal(publicKey, file.publicKey);
    assert.equal(Buffer.from(privateKey).toString('hex'), file.privateKey);
    const other = generateAdminKey();
    assert.throws(() => parseAdminKeyFile(JSON.stringify({ ...file, publicKey: other.publicKey })), { code: 'invalid_input' });
    assert.throws(() => parseAdminKeyFile('{"type":"custos-admin-key","version":2}'), { code: 'invalid_input' });
    assert.throws(() => parseAdminKeyFile('not json'), { code: 'invalid_input' });
  });

  test('the payload hash is SHA-256 over the label and the canonical JSON of { kind, payload }: member order does not matter, the kind does', () => {
    const a = computePayloadHash('deployment.settings', { webhookUrl: null, timelockDelaySeconds: 3600, policyDefaults: {} });
    const b = computePayloadHash('deployment.settings', { policyDefaults: {}, timelockDelaySeconds: 3600, webhookUrl: null });
    assert.equal(a, b);
    assert.notEqual(a, computePayloadHash('quorum.set', { webhookUrl: null, timelockDelaySeconds: 3600, policyDefaults: {} }));
    // pinned: a change of the construction would void every stored proposal
    // (printf 'custos.quorum.payload.v1\0{"kind":"k","payload":{"a":1}}' | sha256sum)
    assert.equal(computePayloadHash('k', { a: 1 }), '86f194d91f18a782a4e745cfaf84c31ef6d5e15ac2e8f31edf842494e1826273');
  });

  test('signatures: bound to the label, the signer, the id, the proposer, the expiry and the hash; a proposer signature is not an approval; strict', () => {
    const { publicKey, privateKey } = parseAdminKeyFile(JSON.stringify(generateAdminKey()));
    const hash = computePayloadHash('k', { a: 1 });
    const st = { signerId: 'production-signer', id: ID, proposer: 'cd'.repeat(32), expiresAt: 1_700_000_000_000, payloadHash: hash };
    const approval = signAdminMessage(privateKey, APPROVE_LABEL, st);
    assert.equal(assertAdminSignature(publicKey, approval, APPROVE_LABEL, st), approval);
    // pinned: the exact bytes signed
    assert.equal(
      Buffer.from(adminMessage(APPROVE_LABEL, st)).toString(),
      `custos.quorum.approve.v2\0production-signer\0${ID}\0${'cd'.repeat(32)}\u00001700000000000\0${hash}`,
    );
    assert.ok(ed25519.verify(Buffer.from(approval, 'hex'), adminMessage(APPROVE_LABEL, st), Buffer.from(publicKey, 'hex')));
    const refused = { code: 'admin_signature_invalid' };
    assert.throws(() => assertAdminSignature(publicKey, signAdminMessage(privateKey, PROPOSE_LABEL, st), APPROVE_LABEL, st), refused);
    // another deployment (a staging approval replayed on production), id, proposer, expiry or payload
    assert.throws(() => assertAdminSignature(publicKey, approval, APPROVE_LABEL, { ...st, signerId: 'staging-signer' }), refused);
    assert.throws(() => assertAdminSignature(publicKey, approval, APPROVE_LABEL, { ...st, id: `${ID.slice(0, -1)}0` }), refused);
    assert.throws(() => assertAdminSignature(publicKey, approval, APPROVE_LABEL, { ...st, proposer: 'ce'.repeat(32) }), refused);
    assert.throws(() => assertAdminSignature(publicKey, approval, APPROVE_LABEL, { ...st, expiresAt: st.expiresAt + 1 }), refused);
    assert.throws(() => assertAdminSignature(publicKey, approval, APPROVE_LABEL, { ...st, payloadHash: computePayloadHash('k', { a: 2 }) }), refused);
    assert.throws(() => assertAdminSignature(publicKey, approval.toUpperCase(), APPROVE_LABEL, st), refused);
    assert.throws(() => assertAdminSignature(publicKey, 7, APPROVE_LABEL, st), refused);
    assert.throws(() => assertAdminSignature(publicKey, approval, APPROVE_LABEL, { ...st, expiresAt: 1.5 }), refused);
  });

  test('public keys: 64 lowercase hex digits of a point on the curve', () => {
    assert.throws(() => assertAdminPublicKey('AB'.repeat(32)), { code: 'invalid_input' });
    assert.throws(() => assertAdminPublicKey('ab'.repeat(31)), { code: 'invalid_input' });
    assert.throws(() => assertAdminPublicKey(42), { code: 'invalid_input' });
  });

  test('the admin set: 1 ≤ M ≤ N−1 (quorum_threshold_invalid), distinct keys, no unknown members', () => {
    const keys = [generateAdminKey(), generateAdminKey(), generateAdminKey()].map((k) => k.publicKey);
    assert.deepEqual(parseQuorumSettings({ threshold: 2, admins: keys }).admins.length, 3);
    for (const threshold of [0, 3, 4, 1.5, '2', -1])
      assert.throws(() => parseQuorumSettings({ threshold, admins: keys }), { code: 'quorum_threshold_invalid' });
    assert.throws(() => parseQuorumSettings({ threshold: 1, admins: [keys[0]] }), { code: 'quorum_threshold_invalid' });
    assert.throws(() => parseQuorumSettings({ threshold: 1, admins: [keys[0], keys[0]] }), { code: 'invalid_input' });
    assert.throws(() => parseQuorumSettings({ threshold: 1, admins: keys, extra: true }), { code: 'invalid_input' });
    assert.throws(() => parseQuorumSettings({ threshold: 1, admins: [{ publicKey: keys[0], role: 'root' }, keys[1]] }), { code: 'invalid_input' });
  });
});
