import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import fc from 'fast-check';
import { CustosError } from '../errors.js';
import { loadVectors } from '../testing/loadVectors.js';
import { getPublicKey } from './getPublicKey.js';
import { signDigest } from './signDigest.js';

interface Vectors {
  rfc6979: { privateKey: string; message: string; r: string; s: string };
  eip155: { privateKey: string; tx: { chainId: number }; signingHash: string; signed: string };
}
const vectors = loadVectors<Vectors>('secp256k1-ethereum.json');
const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString('hex');
const bytes = (h: string) => new Uint8Array(Buffer.from(h.replace(/^0x/, ''), 'hex'));
const N = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;
const toBig = (b: Uint8Array) => BigInt(`0x${hex(b)}`);

test('RFC 6979 deterministic nonce: key 1, sha256("Satoshi Nakamoto")', () => {
  const { privateKey, message, r, s } = vectors.rfc6979;
  const digest = createHash('sha256').update(message, 'utf8').digest();
  const sig = signDigest(bytes(privateKey), digest);
  assert.equal(hex(sig.r), r);
  assert.equal(hex(sig.s), s);
  assert.equal(hex(sig.signature), r + s);
});

test('EIP-155 example: r, s and v = recovery + 35 + 2·chainId of the signed transaction', () => {
  const { privateKey, tx, signingHash, signed } = vectors.eip155;
  const raw = bytes(signed);
  // the RLP list ends with v (one byte, 0x25), 0xa0 ‖ r (32 bytes), 0xa0 ‖ s (32 bytes)
  const v = raw[raw.length - 67];
  assert.equal(raw[raw.length - 66], 0xa0);
  assert.equal(raw[raw.length - 33], 0xa0);
  const r = raw.slice(raw.length - 65, raw.length - 33);
  const s = raw.slice(raw.length - 32);
  const sig = signDigest(bytes(privateKey), bytes(signingHash));
  assert.equal(v, 0x25);
  assert.equal(sig.recovery + 35 + 2 * tx.chainId, v);
  assert.equal(hex(sig.r), hex(r));
  assert.equal(hex(sig.s), hex(s));
  assert.ok(hex(sig.r).startsWith('28ef61') && hex(sig.s).startsWith('67cbe9'));
});

test('low-s on random keys, and the recovery id recovers the public key (checked with @noble/curves)', () => {
  fc.assert(
    fc.property(
      fc.uint8Array({ minLength: 32, maxLength: 32 }).filter((k) => toBig(k) > 0n && toBig(k) < N),
      fc.uint8Array({ minLength: 32, maxLength: 32 }),
      (key, digest) => {
        const sig = signDigest(key, digest);
        assert.ok(toBig(sig.s) <= N / 2n, 's <= n/2');
        assert.ok(toBig(sig.r) > 0n && toBig(sig.s) > 0n);
        const recovered = secp256k1.Signature.fromBytes(sig.signature, 'compact').addRecoveryBit(sig.recovery).recoverPublicKey(digest).toBytes(true);
        assert.equal(hex(recovered), hex(getPublicKey(key)));
        assert.ok(secp256k1.verify(sig.signature, digest, getPublicKey(key), { prehash: false, format: 'compact' }));
      },
    ),
    { numRuns: 100 },
  );
});

test('signDigest is deterministic, does not touch the caller key, and returns unaliased buffers', () => {
  const key = bytes(vectors.eip155.privateKey);
  const digest = bytes(vectors.eip155.signingHash);
  const a = signDigest(key, digest);
  assert.equal(hex(key), vectors.eip155.privateKey);
  a.r.fill(0);
  a.signature.fill(0);
  const b = signDigest(key, digest);
  assert.notEqual(hex(b.r), '00'.repeat(32));
  assert.equal(hex(b.signature), hex(b.r) + hex(b.s));
});

function assertInvalid(fn: () => unknown, field: string): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof CustosError);
    assert.equal(error.code, 'invalid_input');
    assert.equal(error.details.field, field);
    return true;
  });
}

test('signDigest rejects a digest or key that is not 32 bytes, and a key out of [1, n-1]', () => {
  const key = bytes(vectors.eip155.privateKey);
  assertInvalid(() => signDigest(key, new Uint8Array(31)), 'digest');
  assertInvalid(() => signDigest(key, new Uint8Array(33)), 'digest');
  assertInvalid(() => signDigest(key, 'ab'.repeat(32) as unknown as Uint8Array), 'digest');
  assertInvalid(() => signDigest(new Uint8Array(31), new Uint8Array(32)), 'privateKey');
  assertInvalid(() => signDigest(new Uint8Array(32), new Uint8Array(32)), 'privateKey');
  assertInvalid(() => signDigest(bytes(N.toString(16)), new Uint8Array(32)), 'privateKey');
  assertInvalid(() => signDigest(new Uint8Array(32).fill(0xff), new Uint8Array(32)), 'privateKey');
});
