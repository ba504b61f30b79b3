import { timingSafeEqual } from 'node:crypto';
import { CustosError, invalidInput } from '../errors.js';
import { generateHotp, type OtpAlgorithm, type OtpDigits } from './generateHotp.js';
import { totpStep } from './generateTotp.js';

export interface VerifyTotpParams {
  secret: Uint8Array;
  /** The code as typed by the user: exactly `digits` ASCII digits. */
  code: string;
  /** Server time in milliseconds since the Unix epoch (never a client's clock). */
  nowMs: number;
  /** The step accepted last for this factor, or null if none was ever accepted. */
  lastAcceptedStep: number | null;
  /** Steps accepted either side of the current one (RFC 6238 §5.2 allows one for network delay). */
  window?: number;
  period?: number;
  digits?: OtpDigits;
  algorithm?: OtpAlgorithm;
}

/** ASCII digits only, checked on the string: Number() would also take spaces, signs, '1e5' or '0x1'. */
const DIGIT_PATTERNS: Record<OtpDigits, RegExp> = { 6: /^[0-9]{6}$/, 7: /^[0-9]{7}$/, 8: /^[0-9]{8}$/ };

/** Largest accepted window: each extra step widens what a guess can hit. */
const MAX_WINDOW = 10;

/**
 * Checks a TOTP code against the steps around the server's current step and returns the step it
 * matched, for the caller to persist as `lastAcceptedStep` in the same transaction as the audit
 * record (RFC 6238 §5.2: a verifier must not accept the second attempt of the same OTP).
 *
 * Every step in the window is compared, each in constant time, with no early exit; only then is
 * the outcome decided: the greatest matching step above `lastAcceptedStep` is returned, a match
 * only at steps already accepted (or older) throws `code_reused`, no match throws `code_invalid`.
 */
export function verifyTotp({ secret, code, nowMs, lastAcceptedStep, window = 1, period = 30, digits = 6, algorithm = 'SHA1' }: VerifyTotpParams): {
  step: number;
} {
  // the code is exactly `digits` ASCII digits (never echoed back: it is a credential)
  if (!Object.hasOwn(DIGIT_PATTERNS, digits)) throw invalidInput('digits', '6, 7 or 8', String(digits));
  if (typeof code !== 'string' || !DIGIT_PATTERNS[digits].test(code)) {
    throw invalidInput('code', `a string of exactly ${digits} ASCII digits`);
  }
  // the last accepted step, if any, is a step number
  if (lastAcceptedStep !== null && (!Number.isSafeInteger(lastAcceptedStep) || lastAcceptedStep < 0)) {
    throw invalidInput('lastAcceptedStep', 'null or a non-negative integer', String(lastAcceptedStep));
  }
  // RFC 6238 §5.2: at most a small number of steps either side
  if (!Number.isSafeInteger(window) || window < 0 || window > MAX_WINDOW) {
    throw invalidInput('window', `an integer from 0 to ${MAX_WINDOW}`, String(window));
  }
  // RFC 6238 §4.2: T = floor((now - T0) / X), on the server's clock (validates nowMs and period)
  const current = totpStep(nowMs, period);

  const given = Buffer.from(code, 'ascii');
  const floor = lastAcceptedStep ?? -1;
  let freshStep = -1;
  let staleMatch = 0;
  for (let step = Math.max(0, current - window); step <= current + window; step++) {
    const expected = Buffer.from(generateHotp(secret, step, { digits, algorithm }), 'ascii');
    const equal = timingSafeEqual(expected, given) ? 1 : 0;
    expected.fill(0);
    const fresh = step > floor ? 1 : 0;
    // branch-free bookkeeping; steps ascend, so the last fresh match is the greatest
    const take = equal & fresh;
    freshStep = take * step + (1 - take) * freshStep;
    staleMatch |= equal & (1 - fresh);
  }
  given.fill(0);

  // single use: only a step above the last accepted one is accepted
  if (freshStep >= 0) return { step: freshStep };
  if (staleMatch === 1) {
    throw new CustosError('code_reused', 'The code (or a later one) was already used; wait for the next code');
  }
  throw new CustosError('code_invalid', 'The code is wrong');
}
