import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SCRYPT_BOUNDS, validateScryptParams } from './validateScryptParams.js';

const salt = new Uint8Array(16);
const ok = { N: 2 ** 10, r: 8, p: 1, salt };

function rejectsField(params: unknown, field: string, prefix?: string): void {
  assert.throws(() => (prefix === undefined ? validateScryptParams(params) : validateScryptParams(params, prefix)), {
    name: 'CustosError',
    code: 'invalid_input',
    details: { field },
  });
}

describe('validateScryptParams', () => {
  it('accepts the bounds themselves', () => {
    validateScryptParams(ok);
    validateScryptParams({ N: SCRYPT_BOUNDS.maxN, r: 2, p: 1, salt: new Uint8Array(64) }); // 256 MiB
    validateScryptParams({ N: 2 ** 10, r: SCRYPT_BOUNDS.maxR, p: SCRYPT_BOUNDS.maxP, salt: new Uint8Array(64) });
    validateScryptParams({ N: 2 ** 18, r: 8, p: 1, salt }); // `--scrypt-log-n 18`, the most the CLI offers
    validateScryptParams({ N: 2 ** 17, r: 8, p: 1, salt }); // DEFAULT_SCRYPT
    validateScryptParams({ N: 2 ** 15, r: 1, p: 1, salt });
  });

  it('refuses N out of bounds or not a power of two, naming the field with the given prefix', () => {
    for (const N of [2 ** 9, 2 ** 21, 2 ** 30, 3 * 2 ** 10, 0, -1024, 1024.5, Number.NaN, '1024', undefined]) {
      rejectsField({ ...ok, N }, 'kdf.N', 'kdf');
    }
    rejectsField({ ...ok, N: 2 ** 21 }, 'scrypt.N');
  });

  it('refuses parameters each within its bound whose product asks more than 256 MiB of memory or 512 MiB of work', () => {
    // 128 · 32 · 2^20 bytes = 4 GiB, though every member is within its own bound
    rejectsField({ N: SCRYPT_BOUNDS.maxN, r: SCRYPT_BOUNDS.maxR, p: 1, salt }, 'kdf.r', 'kdf');
    // what the bounds let through before issue 9: 1 GiB (N = 2^20, r = 8), and 16 times that work
    rejectsField({ N: 2 ** 20, r: 8, p: SCRYPT_BOUNDS.maxP, salt }, 'scrypt.r');
    rejectsField({ N: 2 ** 19, r: 8, p: 1, salt }, 'scrypt.r'); // 512 MiB
    assert.throws(() => validateScryptParams({ N: 2 ** 18, r: 9, p: 1, salt }), {
      code: 'invalid_input',
      message: 'scrypt.r: expected N and r needing at most 256 MiB (128·r·N bytes), got 288 MiB',
    });
    validateScryptParams({ N: 2 ** 18, r: 8, p: 2, salt }); // exactly 256 MiB, twice: 512 MiB of work
    assert.throws(() => validateScryptParams({ N: 2 ** 18, r: 8, p: 3, salt }), {
      code: 'invalid_input',
      details: { field: 'scrypt.p' },
      message: 'scrypt.p: expected N, r and p costing at most 512 MiB of mixing (128·r·N·p bytes), got 768 MiB',
    });
    validateScryptParams({ N: 2 ** 15, r: 8, p: SCRYPT_BOUNDS.maxP, salt }); // 32 MiB × 16 = 512 MiB of work
    rejectsField({ N: 2 ** 16, r: 8, p: SCRYPT_BOUNDS.maxP, salt }, 'kdf.p', 'kdf'); // 64 MiB × 16
  });

  it('refuses N ≥ 2^16 with r = 1 (RFC 7914)', () => {
    rejectsField({ ...ok, N: 2 ** 16, r: 1 }, 'scrypt.N');
  });

  it('refuses r and p out of bounds', () => {
    for (const r of [0, 33, 1000, 1.5, '8', null]) rejectsField({ ...ok, r }, 'kdf.r', 'kdf');
    for (const p of [0, 17, 2.5, '1']) rejectsField({ ...ok, p }, 'kdf.p', 'kdf');
  });

  it('refuses a salt outside 16..64 bytes or not bytes', () => {
    for (const s of [new Uint8Array(15), new Uint8Array(65), new Uint8Array(0), 'c2FsdA==', [1, 2, 3]]) {
      rejectsField({ ...ok, salt: s }, 'kdf.salt', 'kdf');
    }
  });

  it('refuses a non-object', () => {
    rejectsField(null, 'scrypt');
    rejectsField(42, 'scrypt');
  });
});
