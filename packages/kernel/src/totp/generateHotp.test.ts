import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadVectors } from '../testing/loadVectors.js';
import { generateHotp } from './generateHotp.js';

interface OtpVectors {
  hotp: { secretAscii: string; digits: 6; codes: { counter: number; code: string }[] };
}

const vectors = loadVectors<OtpVectors>('otp.json');
const secret = new TextEncoder().encode(vectors.hotp.secretAscii);

describe('generateHotp', () => {
  it('has the ten RFC 4226 Appendix D vectors to check', () => {
    assert.equal(vectors.hotp.codes.length, 10);
  });

  for (const { counter, code } of vectors.hotp.codes) {
    it(`matches RFC 4226 Appendix D at counter ${counter}`, () => {
      assert.equal(generateHotp(secret, counter, { digits: vectors.hotp.digits }), code);
      // the defaults are 6 digits and SHA1
      assert.equal(generateHotp(secret, counter), code);
    });
  }

  it('zero-pads to the requested number of digits', () => {
    // RFC 6238 Appendix B: SHA1 at t = 1111111109 (counter 37037036) is 07081804
    assert.equal(generateHotp(secret, 37037036, { digits: 8 }), '07081804');
    assert.equal(generateHotp(secret, 37037036, { digits: 7 }), '7081804');
  });

  it('does not change or keep the secret', () => {
    const copy = new Uint8Array(secret);
    generateHotp(copy, 0);
    assert.deepEqual(copy, secret);
  });

  it('refuses a secret shorter than 128 bits (RFC 4226 R6)', () => {
    assert.throws(() => generateHotp(new Uint8Array(15), 0), {
      code: 'invalid_input',
      details: { field: 'secret' },
    });
    assert.throws(() => generateHotp('12345678901234567890' as unknown as Uint8Array, 0), {
      code: 'invalid_input',
      details: { field: 'secret' },
    });
  });

  it('refuses a counter that is negative, fractional or beyond the safe integers', () => {
    for (const counter of [-1, 1.5, Number.NaN, 2 ** 53, Number.POSITIVE_INFINITY]) {
      assert.throws(() => generateHotp(secret, counter), { code: 'invalid_input', details: { field: 'counter' } });
    }
  });

  it('refuses other digit counts and algorithms', () => {
    for (const digits of [5, 9, 0]) {
      assert.throws(() => generateHotp(secret, 0, { digits: digits as 6 }), {
        code: 'invalid_input',
        details: { field: 'digits' },
      });
    }
    for (const algorithm of ['MD5', 'sha1', 'toString']) {
      assert.throws(() => generateHotp(secret, 0, { algorithm: algorithm as 'SHA1' }), {
        code: 'invalid_input',
        details: { field: 'algorithm' },
      });
    }
  });
});
