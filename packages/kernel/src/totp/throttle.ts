import { CustosError, invalidInput } from '../errors.js';

/**
 * Back-off for a second factor, persisted per factor by the caller. In ONE store transaction the
 * caller runs: assertFactorNotThrottled → verify → save recordFactorFailure(...) or
 * recordFactorSuccess(). An attempt refused while locked is therefore never counted, and the
 * failure count only resets on a successful verification.
 */
export type FactorThrottleState = { failures: number; lockedUntilMs: number | null };

/** Failures allowed before the first lock. */
export const THROTTLE_THRESHOLD = 5;
/** The first lock; each further failure doubles it. */
export const THROTTLE_BASE_MS = 30_000;
/** The longest lock: 24 hours. */
export const THROTTLE_MAX_MS = 86_400_000;

export function initialThrottleState(): FactorThrottleState {
  return { failures: 0, lockedUntilMs: null };
}

/** Throws `factor_throttled` (details `{ retryAfterSeconds }`, at least 1) while `nowMs` is before the lock's end. */
export function assertFactorNotThrottled(state: FactorThrottleState, nowMs: number): void {
  assertState(state);
  assertNow(nowMs);
  if (state.lockedUntilMs !== null && nowMs < state.lockedUntilMs) {
    const retryAfterSeconds = Math.max(1, Math.ceil((state.lockedUntilMs - nowMs) / 1000));
    throw new CustosError('factor_throttled', `Too many failed attempts: retry in ${retryAfterSeconds} s`, {
      details: { retryAfterSeconds },
    });
  }
}

/**
 * The state after one more failed attempt: from the 5th failure on, locked for
 * 30 s × 2^(failures − 5), at most 24 h.
 */
export function recordFactorFailure(state: FactorThrottleState, nowMs: number): FactorThrottleState {
  assertState(state);
  assertNow(nowMs);
  const failures = state.failures + 1;
  if (failures < THROTTLE_THRESHOLD) return { failures, lockedUntilMs: null };
  // 2 ** n is Infinity for large n; Math.min brings it back to the cap
  const lockMs = Math.min(THROTTLE_BASE_MS * 2 ** (failures - THROTTLE_THRESHOLD), THROTTLE_MAX_MS);
  return { failures, lockedUntilMs: nowMs + lockMs };
}

/** The state after a successful verification: no failures, no lock. */
export function recordFactorSuccess(): FactorThrottleState {
  return { failures: 0, lockedUntilMs: null };
}

function assertState(state: FactorThrottleState): void {
  if (typeof state !== 'object' || state === null) throw invalidInput('state', 'a throttle state object');
  if (!Number.isSafeInteger(state.failures) || state.failures < 0) {
    throw invalidInput('state.failures', 'a non-negative integer', String(state.failures));
  }
  if (state.lockedUntilMs !== null && !Number.isSafeInteger(state.lockedUntilMs)) {
    throw invalidInput('state.lockedUntilMs', 'null or an integer', String(state.lockedUntilMs));
  }
}

function assertNow(nowMs: number): void {
  if (!Number.isSafeInteger(nowMs) || nowMs < 0) {
    throw invalidInput('nowMs', 'a non-negative integer number of milliseconds', String(nowMs));
  }
}
