import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CustosError } from '../errors.js';
import { formatPath } from './formatPath.js';

test('formatPath writes hardened indexes with an apostrophe', () => {
  assert.equal(formatPath([]), 'm');
  assert.equal(formatPath([0x80000001, 2]), "m/1'/2");
  assert.equal(formatPath([0x80000000, 0x7fffffff, 0xffffffff, 0]), "m/0'/2147483647/2147483647'/0");
});

test('formatPath rejects indexes outside [0, 2^32)', () => {
  for (const index of [-1, 2 ** 32, 0.5, Number.NaN]) {
    assert.throws(
      () => formatPath([index]),
      (error: unknown) => error instanceof CustosError && error.code === 'invalid_input' && error.details.field === 'indexes',
    );
  }
});
