import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { ed25519 } from '@noble/curves/ed25519.js';
import { hkdf } from '@noble/hashes/hkdf.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { deriveAuditPublicKey } from '../audit/deriveAuditSigningKey.js';
import { Barrier } from './Barrier.js';

describe('Barrier.wipe', () => {
  it('zeroes every secret buffer it holds: record key, master node and every cached wallet node', () => {
    const barrier = new Barrier({ barrierKey: new Uint8Array(randomBytes(32)), master: { kind: 'seed', seed: new Uint8Array(randomBytes(64)) } }, 'custos-v1');
    const digest = new Uint8Array(randomBytes(32));
    for (const wallet of ['alice', 'bob', 'carol']) barrier.sign(wallet, 0, digest);
    const before = barrier.secretBufferState();
    // record key + audit key + master (key, chain code) + 3 cached wallets (key, chain code)
    assert.equal(before.buffers, 2 + 2 + 3 * 2);
    assert.equal(before.nonZero, before.buffers);
    barrier.wipe();
    assert.deepEqual(barrier.secretBufferState(), { buffers: before.buffers, nonZero: 0 });
    assert.throws(() => barrier.sign('alice', 0, digest), { code: 'sealed' });
    assert.throws(() => barrier.publicKey('alice', 0), { code: 'sealed' });
    assert.equal(JSON.stringify({ barrier }), '{"barrier":"[Barrier]"}');
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
      'publicKey',
      'secretBufferState',
      'sign',
      'signCheckpoint',
      'toJSON',
      'wipe',
      'wipeAllButAuditKey',
    ]);
  });
});
