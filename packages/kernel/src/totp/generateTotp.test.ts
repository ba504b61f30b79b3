import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadVectors } from '../testing/loadVectors.js';
import type { OtpAlgorithm, OtpDigits } from './generateHotp.js';
import { generateTotp, totpStep } from './generateTotp.js';

interface OtpVectors {
  totp: { time: number; algorithm: OtpAlgorithm; secretAscii: string; digits: OtpDigits; period: number; code: string }[];
}

const vectors = loadVectors<OtpVectors>('otp.json');
const encode = (text: string) => new TextEncoder().encode(text);

describe('generateTotp', () => {
  it('has the eighteen RFC 6238 Appendix B vectors to check', () => {
    assert.equal(vectors.totp.length, 18);
    assert.deepEqual(new Set(vectors.totp.map((v) => v.algorithm)), new Set(['SHA1', 'SHA256', 'SHA512']));
  });

  for (const { time, algorithm, secretAscii, digits, period, code } of vectors.totp) {
    it(`matches RFC 6238 Appendix B: ${algorithm} at t = ${time}`, () => {
      assert.equal(generateTotp(encode(secretAscii), time, { period, digits, algorithm }), code);
    });
  }

  it('defaults to SHA1, 6 digits and 30 s (the last 6 digits of the 8-digit vector)', () => {
    // 10^6 divides 10^8, so the 6-digit code is the 8-digit code's last six digits
    assert.equal(generateTotp(encode('12345678901234567890'), 59), '287082');
    assert.equal(generateTotp(encode('12345678901234567890'), 1111111109), '081804');
  });

  it('uses step floor(t / period): the same code within a step, another one at the boundary', () => {
    const secret = encode('12345678901234567890');
    assert.equal(generateTotp(secret, 30), generateTotp(secret, 59.999));
    assert.notEqual(generateTotp(secret, 59), generateTotp(secret, 60));
    assert.equal(generateTotp(secret, 120, { period: 60 }), generateTotp(secret, 60, { period: 30 }));
  });

  it('refuses a negative or non-finite time and a bad period', () => {
    const secret = encode('12345678901234567890');
    for (const t of [-1, Number.NaN, Number.POSITIVE_INFINITY]) {
      assert.throws(() => generateTotp(secret, t), { code: 'invalid_input', details: { field: 'timeSeconds' } });
    }
    for (const period of [0, -30, 1.5, 86_401]) {
      assert.throws(() => generateTotp(secret, 59, { period }), { code: 'invalid_input', details: { field: 'period' } });
    }
  });
});

describe('totpStep', () => {
  it('is floor(nowMs / (period × 1000))', () => {
    assert.equal(totpStep(0), 0);
    assert.equal(totpStep(29_999), 0);
    assert.equal(totpStep(30_000), 1);
    assert.equal(totpStep(1_111_111_109_000), 37037036);
    assert.equal(totpStep(1_111_111_111_000), 37037037);
    assert.equal(totpStep(59_999, 60), 0);
    assert.equal(totpStep(60_000, 60), 1);
  });

  it('refuses a time that is not a non-negative integer of milliseconds', () => {
    for (const nowMs of [-1, 1.5, Number.NaN]) {
      assert.throws(() => totpStep(nowMs), { code: 'invalid_input', details: { field: 'nowMs' } });
    }
    assert.throws(() => totpStep(0, 0), { code: 'invalid_input', details: { field: 'period' } });
  });
});
