import assert from 'node:assert/strict';
import { test } from 'node:test';
import { HDKey } from '@scure/bip32';
import { mnemonicToSeedSync } from '@scure/bip39';
import { CustosError } from '../errors.js';
import { loadVectors } from '../testing/loadVectors.js';
import { masterKeyFromSeed } from './masterKeyFromSeed.js';

const vectors = loadVectors<{ bip39: { mnemonic: string; passphrase: string; seedHex: string; rootXprv: string } }>('secp256k1-ethereum.json');
const hex = (bytes: Uint8Array | null | undefined) => Buffer.from(bytes ?? []).toString('hex');
const bytes = (h: string) => new Uint8Array(Buffer.from(h, 'hex'));

test('the bip39 "abandon … about" seed gives the vectors rootXprv', () => {
  const seed = mnemonicToSeedSync(vectors.bip39.mnemonic, vectors.bip39.passphrase);
  assert.equal(hex(seed), vectors.bip39.seedHex);
  const node = masterKeyFromSeed(seed);
  const expected = HDKey.fromExtendedKey(vectors.bip39.rootXprv);
  assert.equal(hex(node.privateKey), hex(expected.privateKey));
  assert.equal(hex(node.chainCode), hex(expected.chainCode));
  assert.equal(Object.getPrototypeOf(node.privateKey), Uint8Array.prototype);
  assert.equal(node.privateKey.buffer === node.chainCode.buffer, false, 'key and chain code do not share memory');
});

test('BIP32 test vector 1 master (seed 000102…0f)', () => {
  const node = masterKeyFromSeed(bytes('000102030405060708090a0b0c0d0e0f'));
  const expected = HDKey.fromExtendedKey('xprv9s21ZrQH143K3QTDL4LXw2F7HEK3wJUD2nW2nRk4stbPy6cq3jPPqjiChkVvvNKmPGJxWUtg6LnF5kejMRNNU3TGtRBeJgk33yuGBxrMPHi');
  assert.equal(hex(node.privateKey), hex(expected.privateKey));
  assert.equal(hex(node.chainCode), hex(expected.chainCode));
});

test('returned buffers are fresh: mutating one result does not change the next', () => {
  const seed = bytes(vectors.bip39.seedHex);
  const a = masterKeyFromSeed(seed);
  a.privateKey.fill(0);
  a.chainCode.fill(0);
  const b = masterKeyFromSeed(seed);
  assert.equal(hex(b.privateKey), hex(HDKey.fromMasterSeed(seed).privateKey));
  assert.equal(hex(seed), vectors.bip39.seedHex, 'the seed is unchanged');
});

test('seeds shorter than 16 or longer than 64 bytes, or not bytes, are invalid_input naming seed', () => {
  for (const seed of [new Uint8Array(15), new Uint8Array(65), new Uint8Array(0), 'seed' as unknown as Uint8Array]) {
    assert.throws(
      () => masterKeyFromSeed(seed),
      (error: unknown) => error instanceof CustosError && error.code === 'invalid_input' && error.details.field === 'seed',
    );
  }
  assert.equal(masterKeyFromSeed(new Uint8Array(16).fill(1)).privateKey.length, 32);
  assert.equal(masterKeyFromSeed(new Uint8Array(64).fill(1)).privateKey.length, 32);
});
