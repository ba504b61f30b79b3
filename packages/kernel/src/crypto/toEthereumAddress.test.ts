import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CustosError } from '../errors.js';
import { loadVectors } from '../testing/loadVectors.js';
import { getPublicKey } from './getPublicKey.js';
import { toEthereumAddress } from './toEthereumAddress.js';

const bytes = (h: string) => new Uint8Array(Buffer.from(h, 'hex'));
const vectors = loadVectors<{ fortanixV1: { vectors: { publicKey: string; address: string }[] } }>('secp256k1-ethereum.json');

test('well-known EIP-55 addresses: private key 1 and the EIP-155 example sender (0x46…46)', () => {
  const one = new Uint8Array(32);
  one[31] = 1;
  assert.equal(toEthereumAddress(getPublicKey(one)), '0x7E5F4552091A69125d5DfCb7b8C2659029395Bdf');
  const key = bytes('46'.repeat(32));
  assert.equal(toEthereumAddress(getPublicKey(key)), '0x9d8A62f656a8d1615C1294fd71e9CFb3E4855A4F');
  assert.equal(toEthereumAddress(getPublicKey(key, false)), '0x9d8A62f656a8d1615C1294fd71e9CFb3E4855A4F');
});

test('addresses of the fortanix-v1 vector public keys (the vectors give them in lower case)', () => {
  for (const v of vectors.fortanixV1.vectors) {
    const address = toEthereumAddress(bytes(v.publicKey));
    assert.match(address, /^0x[0-9a-fA-F]{40}$/);
    assert.equal(address.toLowerCase(), v.address);
  }
});

test('toEthereumAddress rejects wrong lengths and points not on the curve, naming publicKey', () => {
  const notOnCurve = bytes(`02${'00'.repeat(31)}05`); // x = 5: x^3 + 7 = 132 is not a square mod p
  const badPrefix = bytes(`05${'11'.repeat(32)}`);
  for (const key of [new Uint8Array(32), new Uint8Array(64), notOnCurve, badPrefix]) {
    assert.throws(
      () => toEthereumAddress(key),
      (error: unknown) => error instanceof CustosError && error.code === 'invalid_input' && error.details.field === 'publicKey',
    );
  }
});
