import { CustosError } from '../../errors.js';

/**
 * Back-off of failed unseals (a wrong passphrase, PIN or Shamir combine). The unseal endpoint is
 * served while sealed, without authentication: each wrong PIN is a real C_Login that counts
 * against the token's own lockout, each wrong passphrase one scrypt. After every failure the next
 * attempt is refused until 1 s × 2^(failures − 1), at most 5 minutes, has passed since it; a
 * success resets it. One state per client (UnsealThrottles), in memory; the caller serialises attempts.
 */
export type UnsealThrottleState = { failures: number; blockedUntilMs: number | null };

/** The delay after the first failure; each further failure doubles it. */
export const UNSEAL_THROTTLE_BASE_MS = 1_000;
/** The longest delay: 5 minutes. */
export const UNSEAL_THROTTLE_MAX_MS = 300_000;

export function initialUnsealThrottle(): UnsealThrottleState {
  return { failures: 0, blockedUntilMs: null };
}

/** Throws `unseal_throttled` (details `{ retryAfterSeconds }`, at least 1) while `nowMs` is before the delay's end. */
export function assertUnsealNotThrottled(state: UnsealThrottleState, nowMs: number): void {
  if (state.blockedUntilMs !== null && nowMs < state.blockedUntilMs) {
    const retryAfterSeconds = Math.max(1, Math.ceil((state.blockedUntilMs - nowMs) / 1000));
    throw new CustosError('unseal_throttled', `too many failed unseal attempts: retry in ${retryAfterSeconds} s`, { details: { retryAfterSeconds } });
  }
}

/** The state after one more failed attempt at `nowMs`. */
export function recordUnsealFailure(state: UnsealThrottleState, nowMs: number): UnsealThrottleState {
  const failures = state.failures + 1;
  // 2^(failures − 1) overflows nothing before the cap: the exponent is bounded first.
  const delay = Math.min(UNSEAL_THROTTLE_MAX_MS, UNSEAL_THROTTLE_BASE_MS * 2 ** Math.min(failures - 1, 30));
  return { failures, blockedUntilMs: nowMs + delay };
}
