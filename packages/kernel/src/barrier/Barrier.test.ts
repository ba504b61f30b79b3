import assert from 'node:assert/strict';
import { createHmac, hkdfSync, randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { ed25519 } from '@noble/curves/ed25519.js';
import { hkdf } from '@noble/hashes/hkdf.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { deriveAuditPublicKey } from '../audit/deriveAuditSigningKey.js';
import { Barrier, RECORD_MAC_KEY_INFO } from './Barrier.js';

describe('Barrier.wipe', () => {
  it('zeroes every secret buffer it holds: record key, MAC key, master node and every cached wallet node', () => {
    const barrier = new Barrier({ barrierKey: new Uint8Array(randomBytes(32)), master: { kind: 'seed', seed: new Uint8Array(randomBytes(64)) } }, 'custos-v1');
    const digest = new Uint8Array(randomBytes(32));
    for (const wallet of ['alice', 'bob', 'carol']) barrier.sign(wallet, 0, digest);
    const before = barrier.secretBufferState();
    // record key + MAC key + audit key + master (key, chain code) + 3 cached wallets (key, chain code)
    assert.equal(before.buffers, 3 + 2 + 3 * 2);
    assert.equal(before.nonZero, before.buffers);
    barrier.wipe();
    assert.deepEqual(barrier.secretBufferState(), { buffers: before.buffers, nonZero: 0 });
    assert.throws(() => barrier.sign('alice', 0, digest), { code: 'sealed' });
    assert.throws(() => barrier.publicKey('alice', 0), { code: 'sealed' });
    assert.throws(() => barrier.macRecord('wallet', digest), { code: 'sealed' });
    assert.equal(JSON.stringify({ barrier }), '{"barrier":"[Barrier]"}');
  });
});

describe('Barrier.macRecord', () => {
  const keyring = () => ({ barrierKey: Uint8Array.from({ length: 32 }, (_, i) => i), master: { kind: 'seed' as const, seed: new Uint8Array(64).fill(7) } });
  const bytes = new TextEncoder().encode('{"name":"alice","tenant":"default"}');

  it('is HMAC-SHA256 under HKDF-SHA256(barrierKey, info "custos.barrier.record-mac.v1") of label ‖ 0 ‖ bytes', () => {
    const barrier = new Barrier(keyring(), 'custos-v1');
    const key = hkdfSync('sha256', keyring().barrierKey, new Uint8Array(0), RECORD_MAC_KEY_INFO, 32);
    const expected = createHmac('sha256', new Uint8Array(key)).update('wallet\0').update(bytes).digest('hex');
    assert.equal(barrier.macRecord('wallet', bytes), expected);
    // the MAC key is not the record (AES-GCM) key
    assert.notEqual(expected, createHmac('sha256', keyring().barrierKey).update('wallet\0').update(bytes).digest('hex'));
  });

  it('verifies its own MACs only: another label, other bytes, another barrier key, a malformed MAC are false', () => {
    const barrier = new Barrier(keyring(), 'custos-v1');
    const mac = barrier.macRecord('wallet', bytes);
    assert.equal(barrier.verifyRecordMac('wallet', bytes, mac), true);
    assert.equal(barrier.verifyRecordMac('factor', bytes, mac), false);
    assert.equal(barrier.verifyRecordMac('wallet', bytes.subarray(1), mac), false);
    assert.equal(barrier.verifyRecordMac('wallet', bytes, mac.toUpperCase()), false);
    assert.equal(barrier.verifyRecordMac('wallet', bytes, mac.slice(2)), false);
    const other = new Barrier({ ...keyring(), barrierKey: new Uint8Array(32).fill(1) }, 'custos-v1');
    assert.equal(other.verifyRecordMac('wallet', bytes, mac), false);
  });
});

describe('Barrier audit key', () => {
  const barrierKey = new Uint8Array(randomBytes(32));
  const make = () => new Barrier({ barrierKey, master: { kind: 'seed', seed: new Uint8Array(randomBytes(64)) } }, 'custos-v1');

  it('is Ed25519 over HKDF-SHA256(barrier key, no salt, info "custos.audit.v1 checkpoint signing key", 32): the documented path', () => {
    const secret = hkdf(sha256, barrierKey, undefined, new TextEncoder().encode('custos.audit.v1 checkpoint signing key'), 32);
    const barrier = make();
    assert.deepEqual(barrier.auditPublicKey, ed25519.getPublicKey(secret));
    assert.deepEqual(deriveAuditPublicKey(barrierKey), ed25519.getPublicKey(secret));
    const message = new TextEncoder().encode('checkpoint');
    assert.deepEqual(barrier.signCheckpoint(message), ed25519.sign(message, secret));
  });

  it('survives wipeAllButAuditKey (a seal signs its last checkpoint) and is gone after wipe; no member exposes the secret', () => {
    const barrier = make();
    const message = new TextEncoder().encode('checkpoint');
    barrier.wipeAllButAuditKey();
    assert.throws(() => barrier.sign('alice', 0, new Uint8Array(32)), { code: 'sealed' });
    assert.equal(barrier.secretBufferState().nonZero, 1);
    assert.ok(ed25519.verify(barrier.signCheckpoint(message), message, barrier.auditPublicKey));
    barrier.wipe();
    assert.equal(barrier.secretBufferState().nonZero, 0);
    assert.throws(() => barrier.signCheckpoint(message), { code: 'sealed' });
    const secretHex = Buffer.from(hkdf(sha256, barrierKey, undefined, new TextEncoder().encode('custos.audit.v1 checkpoint signing key'), 32)).toString('hex');
    const visible = JSON.stringify({ barrier, keys: Object.keys(barrier), proto: Object.getOwnPropertyNames(Object.getPrototypeOf(barrier)) });
    assert.ok(!visible.includes(secretHex));
    // the audit key's only ways out: its public key and signatures
    assert.deepEqual(Object.getOwnPropertyNames(Object.getPrototypeOf(barrier)).sort(), [
      'auditPublicKey',
      'cachedWallets',
      'constructor',
      'decryptRecord',
      'encryptRecord',
      'macRecord',
      'publicKey',
      'secretBufferState',
      'sign',
      'signCheckpoint',
      'toJSON',
      'verifyRecordMac',
      'wipe',
      'wipeAllButAuditKey',
    ]);
  });
});
