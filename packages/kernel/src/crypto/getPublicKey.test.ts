import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CustosError } from '../errors.js';
import { getPublicKey } from './getPublicKey.js';

const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString('hex');
const GX = '79be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798';
const GY = '483ada7726a3c4655da4fbfc0e1108a8fd17b448a68554199c47d08ffb10d4b8';

test('getPublicKey of key 1 is the generator G, compressed by default or uncompressed', () => {
  const one = new Uint8Array(32);
  one[31] = 1;
  assert.equal(hex(getPublicKey(one)), `02${GX}`);
  assert.equal(hex(getPublicKey(one, true)), `02${GX}`);
  assert.equal(hex(getPublicKey(one, false)), `04${GX}${GY}`);
  assert.equal(Object.getPrototypeOf(getPublicKey(one)), Uint8Array.prototype);
  assert.equal(one[31], 1, 'the caller key is unchanged');
});

test('getPublicKey rejects keys of the wrong length or out of range, naming privateKey', () => {
  for (const key of [new Uint8Array(31), new Uint8Array(32), new Uint8Array(32).fill(0xff)]) {
    assert.throws(
      () => getPublicKey(key),
      (error: unknown) => error instanceof CustosError && error.code === 'invalid_input' && error.details.field === 'privateKey',
    );
  }
});
