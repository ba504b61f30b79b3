import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { bytesToHex } from '@noble/hashes/utils.js';
import { HDKey } from '@scure/bip32';
import fc from 'fast-check';
import { CustosError } from '../errors.js';
import type { HwkeyFactorState } from '../store/types.js';
import { loadVectors } from '../testing/loadVectors.js';
import { effectiveStrength, type Factor, type FactorRecord, type FactorWallet, strongestOf } from './Factor.js';
import {
  canonicalSubpath,
  derivedPublicKey,
  HWKEY_CHALLENGE_LIMIT,
  hwkeyFactor,
  parseHwkeyEnrollment,
  parseHwkeySignature,
  verifyHwkeySignature,
} from './hwkeyFactor.js';

interface Vectors {
  account: { xpub: string; publicKey: string };
  children: Array<{ subpath: string; publicKey: string; xpub: string }>;
  privateOfAccount: string;
}

const N = secp256k1.Point.CURVE().n;

function isCode(code: string, field?: string): (error: unknown) => boolean {
  return (error) => error instanceof CustosError && error.code === code && (field === undefined || error.details.field === field);
}

function record(enrolledVia: 'api' | 'page', state: Partial<HwkeyFactorState> = {}): FactorRecord<HwkeyFactorState> {
  return {
    kind: 'hwkey',
    id: `02${'11'.repeat(32)}`,
    version: 1,
    walletName: 'w',
    secretEnvelope: null,
    state: { xpub: null, subpath: '', windowStart: 0, issued: 0, ...state },
    createdAt: 0,
    enrolledVia,
    mac: null,
  };
}

function walletOf(factorRecord: FactorRecord<HwkeyFactorState>): FactorWallet<HwkeyFactorState> {
  return {
    name: 'w',
    tenant: 't',
    factor: factorRecord,
    openSecret: () => {
      throw new Error('no secret');
    },
  };
}

describe('hwkey factor (kernel)', () => {
  const vectors = loadVectors<Vectors>('bip32-hwkey.json');

  it('BIP32 vector 1: the key derived from the account xpub along a non-hardened subpath is the published child’s', () => {
    assert.equal(derivedPublicKey(vectors.account.xpub, ''), vectors.account.publicKey);
    for (const child of vectors.children) {
      assert.equal(derivedPublicKey(vectors.account.xpub, child.subpath), child.publicKey, child.subpath);
      assert.equal(bytesToHex(HDKey.fromExtendedKey(child.xpub).publicKey as Uint8Array), child.publicKey, 'the vector is self-consistent');
      const enrolled = parseHwkeyEnrollment({ xpub: vectors.account.xpub, subpath: `m/${child.subpath}` });
      assert.deepEqual(enrolled, { id: child.publicKey, state: { xpub: vectors.account.xpub, subpath: child.subpath, windowStart: 0, issued: 0 } });
    }
  });

  it('the private extended key of the vector is refused as such (field xpub), never parsed', () => {
    assert.throws(
      () => parseHwkeyEnrollment({ xpub: vectors.privateOfAccount, subpath: '2' }),
      (e: unknown) => {
        assert.ok(isCode('invalid_input', 'xpub')(e));
        assert.match((e as CustosError).message, /private key \(xprv\/tprv\)/);
        assert.ok(!(e as CustosError).message.includes(vectors.privateOfAccount));
        return true;
      },
    );
  });

  it('subpaths: canonical form, and every refusal names subpath', () => {
    const ok: Array<[unknown, string]> = [
      [undefined, ''],
      ['', ''],
      ['m', ''],
      ['0', '0'],
      ['m/0/5', '0/5'],
      ['0/5', '0/5'],
      ['2147483647/0', '2147483647/0'],
    ];
    for (const [input, text] of ok) assert.equal(canonicalSubpath(input).text, text, String(input));
    for (const bad of ["0'", '0h', '0H/1', '1/2/3', '2147483648', '01', '-1', '0/', '/0', 'm/', 'a', ' 0', 5, {}, 'm/m/0', 'x'.repeat(41)])
      assert.throws(() => canonicalSubpath(bad), isCode('invalid_input', 'subpath'), String(bad));
  });

  it('property: any text is a canonical subpath or an invalid_input naming subpath; two non-hardened steps derive as @scure/bip32 does', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 30 }), (text) => {
        try {
          const { text: canonical, steps } = canonicalSubpath(text);
          assert.ok(steps.length <= 2 && steps.every((s) => Number.isSafeInteger(s) && s >= 0 && s < 2 ** 31));
          assert.equal(canonicalSubpath(canonical).text, canonical, 'canonical is a fixed point');
        } catch (error) {
          assert.ok(isCode('invalid_input', 'subpath')(error), String(error));
        }
      }),
    );
    const account = HDKey.fromExtendedKey(vectors.account.xpub);
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 31 - 1 }), fc.integer({ min: 0, max: 2 ** 31 - 1 }), (a, b) => {
        assert.equal(derivedPublicKey(vectors.account.xpub, `m/${a}/${b}`), bytesToHex(account.derive(`m/${a}/${b}`).publicKey as Uint8Array));
      }),
      { numRuns: 20 },
    );
  });

  it('property: any text as a signature is 64 bytes r‖s or an invalid_input naming signature; a header byte outside 27–34, 39–42 is refused', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string({ maxLength: 140 }), fc.stringMatching(/^[0-9a-f]{128,130}$/)), (text) => {
        try {
          assert.equal(parseHwkeySignature(text).length, 64);
        } catch (error) {
          assert.ok(isCode('invalid_input', 'signature')(error), String(error));
        }
      }),
    );
    const rs = 'ab'.repeat(64);
    for (const header of [27, 30, 34, 39, 42]) assert.equal(bytesToHex(parseHwkeySignature(header.toString(16).padStart(2, '0') + rs)), rs);
    for (const header of [0, 26, 35, 38, 43, 255])
      assert.throws(() => parseHwkeySignature(header.toString(16).padStart(2, '0') + rs), isCode('invalid_input', 'signature'), String(header));
  });

  it('verification: the enrolled key’s low-s signature over the digest; high s, r or s out of range, another digest or key refused with their codes', () => {
    const key = secp256k1.utils.randomSecretKey();
    const publicKey = bytesToHex(secp256k1.getPublicKey(key, true));
    const digest = secp256k1.utils.randomSecretKey();
    const compact = secp256k1.sign(digest, key, { prehash: false, lowS: true, extraEntropy: true }).toBytes('compact');
    verifyHwkeySignature(compact, digest, publicKey);
    const s = BigInt(`0x${bytesToHex(compact.slice(32))}`);
    const high = new Uint8Array(compact);
    high.set(hexBytes((N - s).toString(16).padStart(64, '0')), 32);
    assert.ok(
      secp256k1.verify(high, digest, secp256k1.getPublicKey(key, true), { prehash: false, lowS: false, format: 'compact' }),
      'the high-s form is a valid ECDSA signature',
    );
    assert.throws(() => verifyHwkeySignature(high, digest, publicKey), isCode('hwkey_signature_high_s', 'signature'));
    const zeroR = new Uint8Array(compact);
    zeroR.fill(0, 0, 32);
    assert.throws(() => verifyHwkeySignature(zeroR, digest, publicKey), isCode('hwkey_invalid'));
    const bigS = new Uint8Array(compact);
    bigS.fill(0xff, 32);
    assert.throws(() => verifyHwkeySignature(bigS, digest, publicKey), isCode('hwkey_invalid'));
    assert.throws(() => verifyHwkeySignature(compact, secp256k1.utils.randomSecretKey(), publicKey), isCode('hwkey_invalid'));
    const other = bytesToHex(secp256k1.getPublicKey(secp256k1.utils.randomSecretKey(), true));
    assert.throws(() => verifyHwkeySignature(compact, digest, other), isCode('hwkey_invalid'));
  });

  it('strength: bound only for a page-enrolled card answering on the page; present relayed or enrolled by the backend', () => {
    const factor = hwkeyFactor() as unknown as Factor;
    assert.equal(effectiveStrength(factor, record('page'), 'page'), 'bound');
    assert.equal(effectiveStrength(factor, record('page'), 'relay'), 'present');
    assert.equal(effectiveStrength(factor, record('api'), 'page'), 'present');
    assert.equal(effectiveStrength(factor, record('api'), 'relay'), 'present');
    assert.deepEqual([strongestOf(factor, record('page')), strongestOf(factor, record('api'))], ['bound', 'present']);
    // a factor that says more than its registered strength, or bound for an api record, is capped
    const boasting = { ...factor, strength: 'present', strengthOf: () => 'bound' } as unknown as Factor;
    assert.equal(effectiveStrength(boasting, record('page'), 'page'), 'present');
    const loose = { ...factor, strengthOf: () => 'bound' } as unknown as Factor;
    assert.equal(effectiveStrength(loose, record('api'), 'page'), 'present');
    // a factor without strengthOf keeps its registered strength
    const plain = { ...factor, strengthOf: undefined, strength: 'bound' } as unknown as Factor;
    assert.equal(effectiveStrength(plain, record('page'), 'relay'), 'bound');
  });

  it('the challenge rate limit: 20 per window, the 21st refused with retryAfterSeconds and nothing counted; a new window starts after it', () => {
    const factor = hwkeyFactor();
    const challenge = factor.challenge?.bind(factor) ?? assert.fail('no challenge');
    let state: HwkeyFactorState = { xpub: null, subpath: '0/1', windowStart: 0, issued: 0 };
    const t0 = 1_000_000_000_000;
    const approval = { id: '00'.repeat(16), opHash: '11'.repeat(32), expiresAt: t0 + 3_600_000 };
    for (let i = 0; i < HWKEY_CHALLENGE_LIMIT.max; i++) {
      const issued = challenge({ wallet: walletOf(record('page', state)), approval, now: t0 + i, random: () => new Uint8Array(0) });
      assert.deepEqual(issued.challenge, { subpath: '0/1' });
      state = issued.stateChange;
    }
    assert.deepEqual([state.windowStart, state.issued], [t0, HWKEY_CHALLENGE_LIMIT.max]);
    assert.throws(
      () => challenge({ wallet: walletOf(record('page', state)), approval, now: t0 + 60_000, random: () => new Uint8Array(0) }),
      (e: unknown) =>
        isCode('hwkey_challenge_rate_limited')(e) &&
        (e as CustosError).details.retryAfterSeconds === HWKEY_CHALLENGE_LIMIT.windowMs / 1000 - 60 &&
        (e as CustosError).stateChange === undefined,
    );
    const next = challenge({ wallet: walletOf(record('page', state)), approval, now: t0 + HWKEY_CHALLENGE_LIMIT.windowMs, random: () => new Uint8Array(0) });
    assert.deepEqual([next.stateChange.windowStart, next.stateChange.issued], [t0 + HWKEY_CHALLENGE_LIMIT.windowMs, 1]);
  });

  it('verify without an unspent challenge is challenge_required; enrolment on the page needs the signature over its challenge', async () => {
    const factor = hwkeyFactor();
    assert.throws(
      () => factor.verify({ wallet: walletOf(record('page')), opHash: '11'.repeat(32), proof: 'ab'.repeat(64), now: 0 }),
      isCode('challenge_required', 'signature'),
    );
    const finish = (proof: unknown, challenge?: Uint8Array) =>
      factor.enroll.finish({ walletName: 'w', pending: null, via: 'page', secret: null, proof, now: 0, ...(challenge === undefined ? {} : { challenge }) });
    const digest = new Uint8Array(32).fill(9);
    assert.throws(() => finish({ xpub: vectors.account.xpub, subpath: '2' }, digest), isCode('code_required', 'signature'));
    const account = HDKey.fromExtendedKey(vectors.account.xpub);
    assert.ok(account.publicKey !== null);
    // a signature by another key is refused: possession is proven only by the enrolled key
    const other = secp256k1.utils.randomSecretKey();
    assert.throws(
      () =>
        finish(
          { xpub: vectors.account.xpub, subpath: '2', signature: bytesToHex(secp256k1.sign(digest, other, { prehash: false, lowS: true }).toBytes('compact')) },
          digest,
        ),
      isCode('hwkey_invalid'),
    );
    // through the API, the card is enrolled as given (no proof)
    const api = await factor.enroll.finish({
      walletName: 'w',
      pending: null,
      via: 'api',
      secret: null,
      proof: { publicKey: vectors.account.publicKey },
      now: 0,
    });
    assert.equal(api.id, vectors.account.publicKey);
  });
});

function hexBytes(hex: string): Uint8Array {
  return Uint8Array.from(hex.match(/../g) ?? [], (b) => Number.parseInt(b, 16));
}
