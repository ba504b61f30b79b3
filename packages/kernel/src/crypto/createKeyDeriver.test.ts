import assert from 'node:assert/strict';
import { test } from 'node:test';
import { HDKey } from '@scure/bip32';
import fc from 'fast-check';
import { CustosError } from '../errors.js';
import { loadVectors } from '../testing/loadVectors.js';
import { createKeyDeriver } from './createKeyDeriver.js';
import { formatPath } from './formatPath.js';
import { getPublicKey } from './getPublicKey.js';
import { masterKeyFromSeed } from './masterKeyFromSeed.js';
import { masterKeyFromXprv } from './masterKeyFromXprv.js';
import { toEthereumAddress } from './toEthereumAddress.js';
import type { DerivationScheme, HDNode } from './types.js';
import { walletPath } from './walletPath.js';

interface KeyVector {
  walletName: string;
  keyIndex: string | number;
  path: string;
  publicKey: string;
  address: string;
}
const published = loadVectors<{ bip39: { seedHex: string; rootXprv: string }; fortanixV1: { vectors: KeyVector[] } }>('secp256k1-ethereum.json');
const custos = loadVectors<{ seedHex: string; vectors: KeyVector[] }>('custos-v1.json');
const hex = (bytes: Uint8Array | null | undefined) => Buffer.from(bytes ?? []).toString('hex');
const seed = new Uint8Array(Buffer.from(published.bip39.seedHex, 'hex'));
const SCHEMES: DerivationScheme[] = ['custos-v1', 'fortanix-v1'];

test('fortanix-v1 vectors: public key and address (master from the seed and from the rootXprv)', () => {
  for (const master of [masterKeyFromSeed(seed), masterKeyFromXprv(published.bip39.rootXprv)]) {
    const deriver = createKeyDeriver({ master, scheme: 'fortanix-v1' });
    for (const v of published.fortanixV1.vectors) {
      const key = deriver.derivePrivateKey(v.walletName, Number(v.keyIndex));
      assert.equal(hex(getPublicKey(key)), v.publicKey, v.path);
      assert.equal(toEthereumAddress(getPublicKey(key)).toLowerCase(), v.address, v.path);
    }
  }
});

test('custos-v1 vectors (test/vectors/custos-v1.json): public key and EIP-55 address', () => {
  assert.equal(custos.seedHex, published.bip39.seedHex);
  const deriver = createKeyDeriver({ master: masterKeyFromSeed(seed), scheme: 'custos-v1' });
  for (const v of custos.vectors) {
    const key = deriver.derivePrivateKey(v.walletName, Number(v.keyIndex));
    assert.equal(hex(getPublicKey(key)), v.publicKey, v.path);
    assert.equal(toEthereumAddress(getPublicKey(key)), v.address, v.path);
  }
});

const seedArb = fc.oneof(fc.uint8Array({ minLength: 32, maxLength: 32 }), fc.uint8Array({ minLength: 64, maxLength: 64 }));
const nameArb = fc.oneof(
  fc.string({ unit: 'binary', minLength: 1, maxLength: 40 }),
  fc.string({ unit: 'grapheme', minLength: 1, maxLength: 10 }),
  fc.constantFrom(' ', '\u0000', '\u200b', 'é', 'é'.normalize('NFD'), '😀', 'a'.repeat(300)),
);
const keyIndexArb = fc.oneof(fc.integer({ min: 0, max: 2 ** 31 - 1 }), fc.constantFrom(0, 1, 2 ** 31 - 1));

for (const scheme of SCHEMES) {
  test(`${scheme}: derivePrivateKey equals @scure/bip32 derive of the same path, cached and uncached`, () => {
    fc.assert(
      fc.property(seedArb, nameArb, keyIndexArb, keyIndexArb, (seedBytes, walletName, keyIndex, otherIndex) => {
        const root = HDKey.fromMasterSeed(seedBytes);
        const expected = (k: number) => hex(root.derive(formatPath(walletPath(scheme, walletName, k))).privateKey);
        const master = masterKeyFromSeed(seedBytes);
        const deriver = createKeyDeriver({ master, scheme });
        assert.equal(hex(deriver.derivePrivateKey(walletName, keyIndex)), expected(keyIndex), 'uncached (first) call');
        assert.equal(deriver.cachedWallets, 1);
        assert.equal(hex(deriver.derivePrivateKey(walletName, keyIndex)), expected(keyIndex), 'cached call');
        assert.equal(hex(deriver.derivePrivateKey(walletName, otherIndex)), expected(otherIndex), 'cached, other index');
        const noCache = createKeyDeriver({ master, scheme, maxCachedWallets: 0 });
        assert.equal(hex(noCache.derivePrivateKey(walletName, otherIndex)), expected(otherIndex), 'cache disabled');
        assert.equal(noCache.cachedWallets, 0);
      }),
      { numRuns: 100 },
    );
  });
}

function assertInvalid(fn: () => unknown, field: string): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof CustosError, String(error));
    assert.equal(error.code, 'invalid_input');
    assert.equal(error.details.field, field);
    return true;
  });
}

test('property: empty names, lone surrogates and out-of-range key indexes are rejected, nothing cached', () => {
  const loneSurrogate = fc
    .tuple(fc.string({ unit: 'binary' }), fc.integer({ min: 0xd800, max: 0xdfff }), fc.string({ unit: 'binary' }))
    .map(([a, c, b]) => a + String.fromCharCode(c) + b);
  const badIndex = fc.oneof(fc.integer({ max: -1 }), fc.integer({ min: 2 ** 31, max: Number.MAX_SAFE_INTEGER }), fc.double({ noInteger: true }));
  for (const scheme of SCHEMES) {
    const deriver = createKeyDeriver({ master: masterKeyFromSeed(seed), scheme });
    fc.assert(
      fc.property(fc.oneof(fc.constant(''), loneSurrogate), keyIndexArb, (walletName, keyIndex) => {
        assertInvalid(() => deriver.derivePrivateKey(walletName, keyIndex), 'walletName');
      }),
      { numRuns: 100 },
    );
    fc.assert(
      fc.property(nameArb, badIndex, (walletName, keyIndex) => {
        assertInvalid(() => deriver.derivePrivateKey(walletName, keyIndex), 'keyIndex');
      }),
      { numRuns: 100 },
    );
    assert.equal(deriver.cachedWallets, 0);
  }
});

test('bad input: keyIndex -1, 2^31, 1.5, NaN and walletName "" are invalid_input with details.field', () => {
  for (const scheme of SCHEMES) {
    const deriver = createKeyDeriver({ master: masterKeyFromSeed(seed), scheme });
    for (const keyIndex of [-1, 2 ** 31, 1.5, Number.NaN]) assertInvalid(() => deriver.derivePrivateKey('alice', keyIndex), 'keyIndex');
    assertInvalid(() => deriver.derivePrivateKey('', 0), 'walletName');
  }
});

test('bad options: master, scheme and maxCachedWallets are checked', () => {
  const master = masterKeyFromSeed(seed);
  assertInvalid(() => createKeyDeriver({ master: { privateKey: new Uint8Array(31), chainCode: master.chainCode }, scheme: 'custos-v1' }), 'master.privateKey');
  assertInvalid(() => createKeyDeriver({ master: { privateKey: new Uint8Array(32), chainCode: master.chainCode }, scheme: 'custos-v1' }), 'master.privateKey');
  assertInvalid(() => createKeyDeriver({ master: { privateKey: master.privateKey, chainCode: new Uint8Array(0) }, scheme: 'custos-v1' }), 'master.chainCode');
  assertInvalid(() => createKeyDeriver({ master: null as unknown as HDNode, scheme: 'custos-v1' }), 'master');
  assertInvalid(() => createKeyDeriver({ master, scheme: 'bip44' as DerivationScheme }), 'scheme');
  for (const maxCachedWallets of [-1, 1.5, Number.NaN])
    assertInvalid(() => createKeyDeriver({ master, scheme: 'custos-v1', maxCachedWallets }), 'maxCachedWallets');
});

test('the cache is bounded: maxCachedWallets = 3 after 10 wallets holds 3, and evicted wallets still derive correctly', () => {
  for (const scheme of SCHEMES) {
    const root = HDKey.fromMasterSeed(seed);
    const expected = (name: string, k: number) => hex(root.derive(formatPath(walletPath(scheme, name, k))).privateKey);
    const deriver = createKeyDeriver({ master: masterKeyFromSeed(seed), scheme, maxCachedWallets: 3 });
    const names = Array.from({ length: 10 }, (_, i) => `wallet-${i}`);
    for (const [i, name] of names.entries()) {
      assert.equal(hex(deriver.derivePrivateKey(name, i)), expected(name, i));
      assert.equal(deriver.cachedWallets, Math.min(i + 1, 3));
    }
    assert.equal(deriver.cachedWallets, 3);
    // wallet-0 was evicted long ago (and its node zeroed): deriving it again must still be right
    for (const name of names) assert.equal(hex(deriver.derivePrivateKey(name, 5)), expected(name, 5));
    assert.equal(deriver.cachedWallets, 3);
    // repeated hits on cached names do not grow the cache
    for (let i = 0; i < 5; i++) deriver.derivePrivateKey('wallet-9', i);
    assert.equal(deriver.cachedWallets, 3);
  }
});

test('no aliasing: mutating the master passed in, or a returned key, does not change later results', () => {
  for (const scheme of SCHEMES) {
    const master = masterKeyFromSeed(seed);
    const deriver = createKeyDeriver({ master, scheme });
    const first = hex(deriver.derivePrivateKey('alice@acme.com', 0));
    master.privateKey.fill(0x11);
    master.chainCode.fill(0x22);
    // a wallet not cached yet walks down from the master copy
    const bob = deriver.derivePrivateKey('bob@acme.com', 0);
    assert.equal(hex(bob), hex(HDKey.fromMasterSeed(seed).derive(formatPath(walletPath(scheme, 'bob@acme.com', 0))).privateKey));
    bob.fill(0);
    const key = deriver.derivePrivateKey('alice@acme.com', 0);
    assert.equal(hex(key), first);
    key.fill(0);
    assert.equal(hex(deriver.derivePrivateKey('alice@acme.com', 0)), first);
    assert.equal(
      hex(deriver.derivePrivateKey('bob@acme.com', 0)),
      hex(HDKey.fromMasterSeed(seed).derive(formatPath(walletPath(scheme, 'bob@acme.com', 0))).privateKey),
    );
    const a = deriver.derivePrivateKey('alice@acme.com', 0);
    const b = deriver.derivePrivateKey('alice@acme.com', 0);
    assert.notEqual(a.buffer, b.buffer, 'each call returns its own buffer');
  }
});

test('wipe(): every later call throws sealed; the caller master is left alone; wipe is idempotent', () => {
  for (const scheme of SCHEMES) {
    const master = masterKeyFromSeed(seed);
    const deriver = createKeyDeriver({ master, scheme });
    deriver.derivePrivateKey('alice@acme.com', 0);
    assert.equal(deriver.cachedWallets, 1);
    deriver.wipe();
    assert.equal(deriver.cachedWallets, 0);
    for (const [name, index] of [
      ['alice@acme.com', 0],
      ['carol', 1],
      ['', -1],
    ] as const) {
      assert.throws(
        () => deriver.derivePrivateKey(name, index),
        (error: unknown) => error instanceof CustosError && error.code === 'sealed',
      );
    }
    deriver.wipe();
    assert.equal(hex(master.privateKey), hex(masterKeyFromSeed(seed).privateKey), 'the caller wipes its own master');
  }
});

test('a cached wallet still refuses a bad keyIndex (the cache-hit path validates too)', () => {
  for (const scheme of ['custos-v1', 'fortanix-v1'] as const) {
    const deriver = createKeyDeriver({ master: masterKeyFromSeed(new Uint8Array(32).fill(9)), scheme });
    deriver.derivePrivateKey('cached', 0);
    assert.equal(deriver.cachedWallets, 1);
    for (const bad of [-1, 2 ** 31, 1.5, Number.NaN]) {
      assert.throws(
        () => deriver.derivePrivateKey('cached', bad),
        (e: unknown) => e instanceof CustosError && e.code === 'invalid_input' && e.details.field === 'keyIndex',
      );
    }
  }
});
