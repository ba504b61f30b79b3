import assert from 'node:assert/strict';
import { test } from 'node:test';
import { randomBytes } from 'node:crypto';
import { CustosError } from '../errors.js';
import { addressFromPoint } from './addressFromPoint.js';
import { getPublicKey } from './getPublicKey.js';
import { toEthereumAddress } from './toEthereumAddress.js';

test('addressFromPoint: the EIP-55 address of private key 1 and of 0x46…46 (the EIP-155 example sender)', () => {
  const one = new Uint8Array(32);
  one[31] = 1;
  assert.equal(addressFromPoint(getPublicKey(one, false)), '0x7E5F4552091A69125d5DfCb7b8C2659029395Bdf');
  assert.equal(addressFromPoint(getPublicKey(new Uint8Array(32).fill(0x46), false)), '0x9d8A62f656a8d1615C1294fd71e9CFb3E4855A4F');
});

test('addressFromPoint equals the checked toEthereumAddress on random keys', () => {
  for (let i = 0; i < 200; i++) {
    const key = new Uint8Array(randomBytes(32));
    const point = getPublicKey(key, false);
    assert.equal(addressFromPoint(point), toEthereumAddress(getPublicKey(key, true)));
  }
});

test('addressFromPoint takes only a 65-byte point', () => {
  const compressed = getPublicKey(new Uint8Array(32).fill(7), true);
  assert.throws(
    () => addressFromPoint(compressed),
    (e) => e instanceof CustosError && e.code === 'invalid_input' && /uncompressed/.test(e.message),
  );
});
