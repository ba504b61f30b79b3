import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { CustosError } from '../errors.js';
import { loadVectors } from '../testing/loadVectors.js';
import { generateHotp } from './generateHotp.js';
import { generateTotp, totpStep } from './generateTotp.js';
import { verifyTotp } from './verifyTotp.js';

const secret = new TextEncoder().encode('12345678901234567890');
// the middle of step 37037036 (RFC 6238's t = 1111111109 lies in it)
const nowMs = 37037036 * 30_000 + 15_000;
const current = 37037036;
const codeAt = (step: number) => generateHotp(secret, step);

describe('verifyTotp', () => {
  it('has five distinct codes around the current step (so each case below is unambiguous)', () => {
    assert.equal(totpStep(nowMs), current);
    const codes = [-2, -1, 0, 1, 2].map((d) => codeAt(current + d));
    assert.equal(new Set(codes).size, 5);
  });

  for (const offset of [-1, 0, 1]) {
    it(`accepts the code of step ${offset >= 0 ? '+' : ''}${offset} and returns that exact step`, () => {
      const result = verifyTotp({ secret, code: codeAt(current + offset), nowMs, lastAcceptedStep: null });
      assert.deepEqual(result, { step: current + offset });
    });
  }

  for (const offset of [-2, 2]) {
    it(`refuses the code of step ${offset >= 0 ? '+' : ''}${offset} with code_invalid`, () => {
      assert.throws(() => verifyTotp({ secret, code: codeAt(current + offset), nowMs, lastAcceptedStep: null }), {
        name: 'CustosError',
        code: 'code_invalid',
      });
    });
  }

  it('refuses the same code twice: the second use is code_reused', () => {
    const code = codeAt(current);
    const first = verifyTotp({ secret, code, nowMs, lastAcceptedStep: null });
    assert.equal(first.step, current);
    assert.throws(() => verifyTotp({ secret, code, nowMs, lastAcceptedStep: first.step }), { code: 'code_reused' });
    // still refused a few seconds later, within the same step
    assert.throws(() => verifyTotp({ secret, code, nowMs: nowMs + 10_000, lastAcceptedStep: first.step }), {
      code: 'code_reused',
    });
  });

  it('refuses the code of a step older than the last accepted one with code_reused', () => {
    const { step } = verifyTotp({ secret, code: codeAt(current), nowMs, lastAcceptedStep: null });
    assert.throws(() => verifyTotp({ secret, code: codeAt(current - 1), nowMs, lastAcceptedStep: step }), {
      code: 'code_reused',
    });
  });

  it('after accepting step t+1, refuses the code of step t with code_reused', () => {
    const { step } = verifyTotp({ secret, code: codeAt(current + 1), nowMs, lastAcceptedStep: null });
    assert.equal(step, current + 1);
    assert.throws(() => verifyTotp({ secret, code: codeAt(current), nowMs, lastAcceptedStep: step }), {
      code: 'code_reused',
    });
  });

  it('accepts a later step after an earlier one was accepted', () => {
    assert.deepEqual(verifyTotp({ secret, code: codeAt(current), nowMs, lastAcceptedStep: current - 1 }), {
      step: current,
    });
    assert.deepEqual(verifyTotp({ secret, code: codeAt(current + 1), nowMs, lastAcceptedStep: current }), {
      step: current + 1,
    });
  });

  it('still says code_invalid (not code_reused) for a wrong code after an accepted step', () => {
    const wrong = codeAt(current + 5);
    assert.throws(() => verifyTotp({ secret, code: wrong, nowMs, lastAcceptedStep: current }), {
      code: 'code_invalid',
    });
  });

  it('returns the greatest matching step when one code matches two steps of the window', () => {
    // found by search: steps 153567 and 153569 share this code; current step 153568 sees both
    const s = 153568;
    const code = '468457';
    assert.equal(codeAt(s - 1), code);
    assert.equal(codeAt(s + 1), code);
    assert.notEqual(codeAt(s), code);
    const at = s * 30_000 + 1_000;
    assert.deepEqual(verifyTotp({ secret, code, nowMs: at, lastAcceptedStep: null }), { step: s + 1 });
    assert.deepEqual(verifyTotp({ secret, code, nowMs: at, lastAcceptedStep: s - 1 }), { step: s + 1 });
    assert.throws(() => verifyTotp({ secret, code, nowMs: at, lastAcceptedStep: s + 1 }), { code: 'code_reused' });
  });

  it('honours window = 0 (only the current step)', () => {
    assert.deepEqual(verifyTotp({ secret, code: codeAt(current), nowMs, lastAcceptedStep: null, window: 0 }), {
      step: current,
    });
    for (const offset of [-1, 1]) {
      assert.throws(() => verifyTotp({ secret, code: codeAt(current + offset), nowMs, lastAcceptedStep: null, window: 0 }), { code: 'code_invalid' });
    }
  });

  it('verifies 8-digit SHA256 codes against the RFC 6238 vector', () => {
    interface V {
      time: number;
      algorithm: string;
      secretAscii: string;
      code: string;
    }
    const vector = loadVectors<{ totp: V[] }>('otp.json').totp.find((v) => v.algorithm === 'SHA256' && v.time === 1111111109);
    assert.ok(vector);
    const result = verifyTotp({
      secret: new TextEncoder().encode(vector.secretAscii),
      code: vector.code,
      nowMs: vector.time * 1000,
      lastAcceptedStep: null,
      digits: 8,
      algorithm: 'SHA256',
    });
    assert.deepEqual(result, { step: Math.floor(vector.time / 30) });
    // the same digits under SHA1 are not a valid code
    assert.throws(
      () =>
        verifyTotp({
          secret: new TextEncoder().encode(vector.secretAscii),
          code: vector.code,
          nowMs: vector.time * 1000,
          lastAcceptedStep: null,
          digits: 8,
        }),
      { code: 'code_invalid' },
    );
  });

  it('does not look at negative steps near the epoch', () => {
    assert.deepEqual(verifyTotp({ secret, code: codeAt(0), nowMs: 1_000, lastAcceptedStep: null }), { step: 0 });
    assert.deepEqual(verifyTotp({ secret, code: codeAt(1), nowMs: 1_000, lastAcceptedStep: null }), { step: 1 });
  });

  const malformed: [string, unknown][] = [
    ['five digits', '12345'],
    ['seven digits', '1234567'],
    ['a letter', '12a456'],
    ['a leading space', ' 123456'],
    ['a trailing newline', '123456\n'],
    ['a number instead of a string', 123456],
    ['Arabic-Indic digits', '١٢٣٤٥٦'],
    ['full-width digits', '１２３４５６'],
    ['a sign', '+12345'],
    ['an empty string', ''],
    ['null', null],
  ];
  for (const [label, code] of malformed) {
    it(`refuses a malformed code (${label}) with invalid_input naming code`, () => {
      assert.throws(
        () => verifyTotp({ secret, code: code as string, nowMs, lastAcceptedStep: null }),
        (error: unknown) => {
          assert.ok(error instanceof CustosError);
          assert.equal(error.code, 'invalid_input');
          assert.equal(error.details.field, 'code');
          if (typeof code === 'string' && code.trim() !== '') assert.ok(!error.message.includes(code.trim()));
          return true;
        },
      );
    });
  }

  it('never puts the given or the expected code in an error message', () => {
    const wrong = codeAt(current + 5);
    for (const lastAcceptedStep of [null, current + 1]) {
      const code = lastAcceptedStep === null ? wrong : codeAt(current);
      assert.throws(
        () => verifyTotp({ secret, code, nowMs, lastAcceptedStep }),
        (error: unknown) => {
          assert.ok(error instanceof CustosError);
          for (const d of [-1, 0, 1]) assert.ok(!error.message.includes(codeAt(current + d)));
          assert.ok(!error.message.includes(code));
          assert.ok(!JSON.stringify(error).includes(code));
          return true;
        },
      );
    }
  });

  it('refuses a bad lastAcceptedStep, window, nowMs or digits', () => {
    const code = codeAt(current);
    const cases: [Partial<Parameters<typeof verifyTotp>[0]>, string][] = [
      [{ lastAcceptedStep: -1 }, 'lastAcceptedStep'],
      [{ lastAcceptedStep: 1.5 }, 'lastAcceptedStep'],
      [{ window: -1 }, 'window'],
      [{ window: 11 }, 'window'],
      [{ window: 0.5 }, 'window'],
      [{ nowMs: -1 }, 'nowMs'],
      [{ nowMs: Number.NaN }, 'nowMs'],
      [{ digits: 9 as 6 }, 'digits'],
      [{ period: 0 }, 'period'],
      [{ secret: new Uint8Array(8) }, 'secret'],
    ];
    for (const [override, field] of cases) {
      assert.throws(() => verifyTotp({ secret, code, nowMs, lastAcceptedStep: null, ...override }), {
        code: 'invalid_input',
        details: { field },
      });
    }
  });

  describe('properties', () => {
    const arbSecret = fc.uint8Array({ minLength: 20, maxLength: 20 });
    // from the epoch to the year 2100
    const arbNowMs = fc.integer({ min: 0, max: 4_102_444_800_000 });

    it('the current code verifies at the current step', () => {
      fc.assert(
        fc.property(arbSecret, arbNowMs, (s, now) => {
          const code = generateTotp(s, Math.floor(now / 1000));
          const step = totpStep(now);
          assert.deepEqual(verifyTotp({ secret: s, code, nowMs: now, lastAcceptedStep: null }), { step });
          const earlier = step > 0 ? step - 1 : null;
          assert.deepEqual(verifyTotp({ secret: s, code, nowMs: now, lastAcceptedStep: earlier }), { step });
        }),
        { numRuns: 300 },
      );
    });

    it('a code differing in one digit never verifies as the current step', () => {
      fc.assert(
        fc.property(arbSecret, arbNowMs, fc.integer({ min: 0, max: 5 }), fc.integer({ min: 1, max: 9 }), (s, now, position, delta) => {
          const code = generateTotp(s, Math.floor(now / 1000));
          const digit = (Number(code[position]) + delta) % 10;
          const altered = code.slice(0, position) + String(digit) + code.slice(position + 1);
          assert.notEqual(altered, code);
          try {
            const { step } = verifyTotp({ secret: s, code: altered, nowMs: now, lastAcceptedStep: null });
            // it may only (rarely, ~2 in 10^6) be the code of a neighbouring step
            assert.notEqual(step, totpStep(now));
            assert.equal(generateHotp(s, step), altered);
          } catch (error) {
            if (error instanceof assert.AssertionError) throw error;
            assert.ok(error instanceof CustosError);
            assert.equal(error.code, 'code_invalid');
          }
        }),
        { numRuns: 300 },
      );
    });
  });
});
