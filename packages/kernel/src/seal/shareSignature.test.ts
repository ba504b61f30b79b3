import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { describe, it } from 'node:test';
import { ed25519 } from '@noble/curves/ed25519.js';
import { shareSignatureMessage, signShareSet, verifyShareSignature } from './shareSignature.js';
import type { UnsealShare } from './unsealerTypes.js';

const base = { signerId: randomUUID(), shareSetId: randomBytes(16).toString('base64'), threshold: 2, shares: 3 };
const unsigned = [1, 2, 3].map((index) => ({ ...base, index, share: Uint8Array.from([...randomBytes(32), index]) }));
const forged = { name: 'CustosError', code: 'share_forged', details: { field: 'share.signature' } };

describe('share signatures (signShareSet / verifyShareSignature)', () => {
  it('signs every share with a one-time key and wipes the key it was given', () => {
    const seed = new Uint8Array(randomBytes(32));
    const expectedKey = Buffer.from(ed25519.getPublicKey(seed)).toString('base64');
    const { shareKey, signatures } = signShareSet(seed, unsigned);
    assert.equal(shareKey, expectedKey);
    assert.ok(
      seed.every((b) => b === 0),
      'the private key is wiped',
    );
    assert.equal(signatures.length, 3);
    for (const [i, share] of unsigned.entries()) verifyShareSignature({ ...share, signature: signatures[i] as Uint8Array }, shareKey);
  });

  it('wipes the key even when signing fails', () => {
    const seed = new Uint8Array(randomBytes(32));
    assert.throws(() => signShareSet(seed, [{ ...base, index: 1, share: null as unknown as Uint8Array }]));
    assert.ok(seed.every((b) => b === 0));
  });

  it('a domain-separated message over every member: any change is share_forged', () => {
    const { shareKey, signatures } = signShareSet(new Uint8Array(randomBytes(32)), unsigned);
    const good: UnsealShare = { ...(unsigned[0] as UnsealShare), signature: signatures[0] as Uint8Array };
    assert.equal(Buffer.from(shareSignatureMessage(good)).subarray(0, 16).toString('latin1'), 'custos.share.v1\0');
    const flipped = Uint8Array.from(good.share);
    flipped[0] = (flipped[0] as number) ^ 1;
    for (const edit of [
      { index: 2 },
      { threshold: 3 },
      { shares: 4 },
      { signerId: randomUUID() },
      { shareSetId: randomBytes(16).toString('base64') },
      { share: flipped },
      // another share's signature
      { signature: signatures[1] as Uint8Array },
      { signature: undefined },
    ]) {
      assert.throws(() => verifyShareSignature({ ...good, ...edit } as UnsealShare, shareKey), forged, Object.keys(edit).join());
    }
    // another set's key
    const other = signShareSet(new Uint8Array(randomBytes(32)), unsigned);
    assert.throws(() => verifyShareSignature(good, other.shareKey), forged);
    // a key that is no curve point at all
    assert.throws(() => verifyShareSignature(good, Buffer.alloc(32, 0xff).toString('base64')), forged);
    verifyShareSignature(good, shareKey);
  });
});
