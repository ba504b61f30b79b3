import { invalidInput } from '../errors.js';
import { generateHotp, type HotpOptions } from './generateHotp.js';

export interface TotpOptions extends HotpOptions {
  /** Time step X in seconds (RFC 6238 §4.1). */
  period?: number;
}

/** Largest accepted period: one day. */
const MAX_PERIOD_SECONDS = 86_400;

/** Asserts an RFC 6238 time step size: a whole number of seconds from 1 to 86 400. */
function assertPeriod(period: number): void {
  if (!Number.isSafeInteger(period) || period < 1 || period > MAX_PERIOD_SECONDS) {
    throw invalidInput('period', `an integer number of seconds from 1 to ${MAX_PERIOD_SECONDS}`, String(period));
  }
}

/** The RFC 6238 time step T = floor(t / X) for a server time in milliseconds since the Unix epoch. */
export function totpStep(nowMs: number, period = 30): number {
  if (!Number.isSafeInteger(nowMs) || nowMs < 0) {
    throw invalidInput('nowMs', 'a non-negative integer number of milliseconds', String(nowMs));
  }
  assertPeriod(period);
  return Math.floor(nowMs / (period * 1000));
}

/** TOTP (RFC 6238 §4): HOTP with the counter T = floor(t / period), t in seconds since the Unix epoch. */
export function generateTotp(secret: Uint8Array, timeSeconds: number, { period = 30, digits = 6, algorithm = 'SHA1' }: TotpOptions = {}): string {
  // RFC 6238 §4.2: T0 = 0, t is Unix time (non-negative here)
  if (!Number.isFinite(timeSeconds) || timeSeconds < 0) {
    throw invalidInput('timeSeconds', 'a non-negative number of seconds', String(timeSeconds));
  }
  // RFC 6238 §4.1: X, the step size in seconds
  assertPeriod(period);
  return generateHotp(secret, Math.floor(timeSeconds / period), { digits, algorithm });
}
