import assert from 'node:assert/strict';
import { test } from 'node:test';
import { sha256 } from '@noble/hashes/sha2.js';
import { createBase58check } from '@scure/base';
import { HDKey } from '@scure/bip32';
import { CustosError } from '../errors.js';
import { loadVectors } from '../testing/loadVectors.js';
import { masterKeyFromSeed } from './masterKeyFromSeed.js';
import { masterKeyFromXprv } from './masterKeyFromXprv.js';

const vectors = loadVectors<{ bip39: { seedHex: string; rootXprv: string } }>('secp256k1-ethereum.json');
const base58check = createBase58check(sha256);
const hex = (bytes: Uint8Array | null | undefined) => Buffer.from(bytes ?? []).toString('hex');
const xprv = vectors.bip39.rootXprv;
const N = 'fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141';

/** The vector's payload with bytes replaced at `offset`, re-encoded with a valid checksum. */
function tampered(offset: number, replacement: Uint8Array | number[], length = 78): string {
  const payload = new Uint8Array(base58check.decode(xprv));
  payload.set(replacement, offset);
  const out = new Uint8Array(length);
  out.set(payload.subarray(0, Math.min(78, length)));
  return base58check.encode(out);
}

function assertBadXprv(input: unknown): void {
  assert.throws(
    () => masterKeyFromXprv(input as string),
    (error: unknown) => {
      assert.ok(error instanceof CustosError);
      assert.equal(error.code, 'invalid_input');
      assert.equal(error.details.field, 'xprv');
      assert.match(error.message, /^xprv: /);
      if (typeof input === 'string' && input.length > 8) {
        // the secret string, or any 8-character piece of it, never appears in the error
        for (let i = 0; i + 8 <= input.length; i++) assert.ok(!error.message.includes(input.slice(i, i + 8)));
        assert.ok(!JSON.stringify(error).includes(input.slice(4, 12)));
      }
      return true;
    },
  );
}

test('masterKeyFromXprv round-trips the vectors rootXprv and equals the seed master', () => {
  const node = masterKeyFromXprv(xprv);
  const fromSeed = masterKeyFromSeed(new Uint8Array(Buffer.from(vectors.bip39.seedHex, 'hex')));
  assert.equal(hex(node.privateKey), hex(fromSeed.privateKey));
  assert.equal(hex(node.chainCode), hex(fromSeed.chainCode));
  const back = new HDKey({ privateKey: node.privateKey, chainCode: node.chainCode });
  assert.equal(back.privateExtendedKey, xprv);
});

test('masterKeyFromXprv accepts testnet tprv, and a non-root xprv (its depth/index are ignored)', () => {
  const root = HDKey.fromExtendedKey(xprv);
  const testnet = new HDKey({
    privateKey: root.privateKey as Uint8Array,
    chainCode: root.chainCode as Uint8Array,
    versions: { private: 0x04358394, public: 0x043587cf },
  });
  assert.ok(testnet.privateExtendedKey.startsWith('tprv'));
  const node = masterKeyFromXprv(testnet.privateExtendedKey);
  assert.equal(hex(node.privateKey), hex(root.privateKey));
  assert.equal(hex(node.chainCode), hex(root.chainCode));
  const child = root.derive("m/44'/60'/0'/0");
  const childNode = masterKeyFromXprv(child.privateExtendedKey);
  assert.equal(hex(childNode.privateKey), hex(child.privateKey));
  assert.equal(hex(childNode.chainCode), hex(child.chainCode));
});

test('invalid xprv strings are invalid_input naming xprv, without echoing the secret', () => {
  const lastChar = xprv.at(-1) === 'u' ? 'v' : 'u';
  assertBadXprv(xprv.slice(0, -1) + lastChar); // bad checksum
  assertBadXprv(`${xprv.slice(0, 20)}0${xprv.slice(21)}`); // '0' is not a base58 character
  assertBadXprv(HDKey.fromExtendedKey(xprv).publicExtendedKey); // xpub: a public key
  assertBadXprv(tampered(0, [0, 0, 0, 0])); // unknown version
  assertBadXprv(tampered(0, [], 77)); // wrong payload length
  assertBadXprv(tampered(0, [], 79));
  assertBadXprv(tampered(45, [0x01])); // key data must start with 0x00
  assertBadXprv(tampered(46, new Uint8Array(32))); // k = 0
  assertBadXprv(tampered(46, Buffer.from(N, 'hex'))); // k = n
  assertBadXprv(xprv.slice(0, -10)); // truncated
  assertBadXprv(xprv + xprv); // too long
  assertBadXprv('');
  assertBadXprv(undefined);
  assertBadXprv(new Uint8Array(78));
});
