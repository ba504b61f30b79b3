import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CustosError } from '../errors.js';
import { generateTotp } from './generateTotp.js';
import {
  type FactorThrottleState,
  THROTTLE_BASE_MS,
  THROTTLE_MAX_MS,
  THROTTLE_THRESHOLD,
  assertFactorNotThrottled,
  initialThrottleState,
  recordFactorFailure,
  recordFactorSuccess,
} from './throttle.js';
import { verifyTotp } from './verifyTotp.js';

const T0 = 1_700_000_000_000;

function failTimes(count: number, nowMs: number, state = initialThrottleState()): FactorThrottleState {
  let s = state;
  for (let i = 0; i < count; i++) s = recordFactorFailure(s, nowMs);
  return s;
}

function retryAfter(state: FactorThrottleState, nowMs: number): number {
  try {
    assertFactorNotThrottled(state, nowMs);
  } catch (error) {
    assert.ok(error instanceof CustosError);
    assert.equal(error.code, 'factor_throttled');
    const seconds = error.details.retryAfterSeconds;
    assert.equal(typeof seconds, 'number');
    return seconds as number;
  }
  return 0;
}

describe('factor throttle', () => {
  it('has the documented constants', () => {
    assert.equal(THROTTLE_THRESHOLD, 5);
    assert.equal(THROTTLE_BASE_MS, 30_000);
    assert.equal(THROTTLE_MAX_MS, 86_400_000);
  });

  it('starts unlocked with no failures', () => {
    assert.deepEqual(initialThrottleState(), { failures: 0, lockedUntilMs: null });
    assert.doesNotThrow(() => assertFactorNotThrottled(initialThrottleState(), T0));
  });

  it('does not lock after 4 failures', () => {
    const state = failTimes(4, T0);
    assert.deepEqual(state, { failures: 4, lockedUntilMs: null });
    assert.doesNotThrow(() => assertFactorNotThrottled(state, T0));
  });

  it('locks for exactly 30 s after 5 failures', () => {
    const state = failTimes(5, T0);
    assert.deepEqual(state, { failures: 5, lockedUntilMs: T0 + 30_000 });
    assert.throws(() => assertFactorNotThrottled(state, T0), {
      name: 'CustosError',
      code: 'factor_throttled',
      details: { retryAfterSeconds: 30 },
    });
    assert.equal(retryAfter(state, T0 + 1), 30);
    assert.equal(retryAfter(state, T0 + 1_000), 29);
    // never 0 while still locked
    assert.equal(retryAfter(state, T0 + 29_999), 1);
    assert.doesNotThrow(() => assertFactorNotThrottled(state, T0 + 30_000));
  });

  it('doubles the lock with each further failure: 60 s at the 6th, 120 s at the 7th', () => {
    const fifth = failTimes(5, T0);
    const sixth = recordFactorFailure(fifth, T0 + 30_000);
    assert.deepEqual(sixth, { failures: 6, lockedUntilMs: T0 + 30_000 + 60_000 });
    assert.equal(retryAfter(sixth, T0 + 30_000), 60);
    assert.equal(retryAfter(sixth, T0 + 89_999), 1);
    assert.doesNotThrow(() => assertFactorNotThrottled(sixth, T0 + 90_000));
    const seventh = recordFactorFailure(sixth, T0 + 90_000);
    assert.deepEqual(seventh, { failures: 7, lockedUntilMs: T0 + 90_000 + 120_000 });
    assert.equal(retryAfter(seventh, T0 + 90_000), 120);
  });

  it('caps the lock at 24 h', () => {
    // 16th failure: 30 s × 2^11 = 17 h 4 min, under the cap
    assert.equal(failTimes(16, T0).lockedUntilMs, T0 + 30_000 * 2 ** 11);
    // 17th: 30 s × 2^12 = 34 h 8 min, capped to 24 h
    assert.equal(failTimes(17, T0).lockedUntilMs, T0 + 86_400_000);
    assert.equal(retryAfter(failTimes(17, T0), T0), 86_400);
    // far beyond: 2^(huge) overflows to Infinity and is still capped
    for (const failures of [100, 1_100, 5_000]) {
      const state = recordFactorFailure({ failures, lockedUntilMs: null }, T0);
      assert.equal(state.lockedUntilMs, T0 + 86_400_000);
    }
  });

  it('resets to no failures and no lock on success', () => {
    const locked = failTimes(9, T0);
    assert.notEqual(locked.lockedUntilMs, null);
    const reset = recordFactorSuccess();
    assert.deepEqual(reset, { failures: 0, lockedUntilMs: null });
    // after a reset, 4 more failures do not lock (the count started over)
    assert.deepEqual(failTimes(4, T0, reset), { failures: 4, lockedUntilMs: null });
  });

  it('locks for the documented time after each of failures 1..40, measured from that failure, with the 24 h cap from the 17th', () => {
    // The schedule of docs/security-testing.md, written out (not computed from the constants):
    // nothing for failures 1-4, 30 s at the 5th, doubling up to 61,440 s (17 h 4 min) at the 16th,
    // then 24 h for every further failure.
    const expectedSeconds = [0, 0, 0, 0, 30, 60, 120, 240, 480, 960, 1_920, 3_840, 7_680, 15_360, 30_720, 61_440, ...Array(24).fill(86_400)];
    assert.equal(expectedSeconds.length, 40);
    // A fake clock: each failure lands exactly when the previous lock ends (the earliest an attempt
    // can reach verification), plus an odd offset so that a lock measured from anything but the
    // failure's own time would show.
    let state = initialThrottleState();
    let now = T0;
    const observed: number[] = [];
    for (let failure = 1; failure <= 40; failure++) {
      now = (state.lockedUntilMs ?? now) + 7;
      state = recordFactorFailure(state, now);
      assert.equal(state.failures, failure);
      observed.push(state.lockedUntilMs === null ? 0 : (state.lockedUntilMs - now) / 1000);
      if (state.lockedUntilMs !== null) {
        // refused until the last millisecond of the lock, with Retry-After rounded up
        assert.equal(retryAfter(state, now), Math.ceil((state.lockedUntilMs - now) / 1000));
        assert.equal(retryAfter(state, state.lockedUntilMs - 1), 1);
        assert.doesNotThrow(() => assertFactorNotThrottled(state, state.lockedUntilMs ?? 0));
      } else {
        assert.doesNotThrow(() => assertFactorNotThrottled(state, now));
      }
    }
    assert.deepEqual(observed, expectedSeconds);
    // the schedule is the one the constants describe
    assert.equal(observed.indexOf(THROTTLE_BASE_MS / 1000), THROTTLE_THRESHOLD - 1);
    assert.equal(Math.max(...observed), THROTTLE_MAX_MS / 1000);
  });

  it('a success at any point of the schedule starts it over: the next 4 failures are free and the 5th locks 30 s', () => {
    for (const failuresBefore of [1, 4, 5, 12, 16, 17, 40]) {
      const spent = failTimes(failuresBefore, T0);
      // the success comes once the lock (if any) has ended: a locked factor refuses the owner too
      const later = (spent.lockedUntilMs ?? T0) + 1;
      assert.doesNotThrow(() => assertFactorNotThrottled(spent, later));
      const reset = recordFactorSuccess();
      assert.deepEqual(reset, initialThrottleState());
      const afterFour = failTimes(4, later, reset);
      assert.deepEqual(afterFour, { failures: 4, lockedUntilMs: null });
      assert.deepEqual(recordFactorFailure(afterFour, later), { failures: 5, lockedUntilMs: later + 30_000 });
    }
  });

  it('does not mutate the state it is given', () => {
    const state = Object.freeze(failTimes(5, T0));
    const next = recordFactorFailure(state, T0 + 30_000);
    assert.deepEqual(state, { failures: 5, lockedUntilMs: T0 + 30_000 });
    assert.notEqual(next, state);
  });

  it('refuses a malformed state or time', () => {
    assert.throws(() => recordFactorFailure({ failures: -1, lockedUntilMs: null }, T0), {
      code: 'invalid_input',
      details: { field: 'state.failures' },
    });
    assert.throws(() => assertFactorNotThrottled({ failures: 5, lockedUntilMs: Number.NaN }, T0), {
      code: 'invalid_input',
      details: { field: 'state.lockedUntilMs' },
    });
    assert.throws(() => assertFactorNotThrottled(initialThrottleState(), Number.NaN), {
      code: 'invalid_input',
      details: { field: 'nowMs' },
    });
  });

  describe('brute force', () => {
    const secret = new TextEncoder().encode('12345678901234567890');

    /**
     * What the caller does in one transaction: refuse while locked (not counted), else verify and
     * persist failure or success. Returns the new state and whether the guess reached verification.
     */
    function attempt(state: FactorThrottleState, code: string, nowMs: number) {
      assertFactorNotThrottled(state, nowMs);
      try {
        verifyTotp({ secret, code, nowMs, lastAcceptedStep: null });
        return recordFactorSuccess();
      } catch (error) {
        if (error instanceof CustosError && error.code === 'code_invalid') return recordFactorFailure(state, nowMs);
        throw error;
      }
    }

    /**
     * The bound: 5 free guesses at t = 0, then guess k (k ≥ 6) is possible at the earliest at
     * T_k = 30 s × (2^(k−5) − 1) while the locks are under the 24 h cap, 24 h apart after that.
     */
    function derivedMaxGuesses(horizonMs: number): number {
      let guesses = THROTTLE_THRESHOLD;
      let t = 0;
      for (let failures = THROTTLE_THRESHOLD; ; failures++) {
        t += Math.min(THROTTLE_BASE_MS * 2 ** (failures - THROTTLE_THRESHOLD), THROTTLE_MAX_MS);
        if (t >= horizonMs) return guesses;
        guesses++;
      }
    }

    /** An attacker that tries every second and, at each second, again until refused. */
    function simulate(horizonMs: number, tickMs: number) {
      let state = initialThrottleState();
      let guesses = 0;
      let refused = 0;
      for (let t = 0; t < horizonMs; t += tickMs) {
        for (;;) {
          const nowMs = T0 + t;
          const code = String(guesses).padStart(6, '0');
          // the guesses must all be wrong for the count to mean anything
          assert.notEqual(code, generateTotp(secret, Math.floor(nowMs / 1000)));
          try {
            state = attempt(state, code, nowMs);
          } catch (error) {
            assert.ok(error instanceof CustosError && error.code === 'factor_throttled');
            refused++;
            break;
          }
          guesses++;
        }
      }
      return { guesses, refused, state };
    }

    it('allows at most 16 guesses in 24 h (5 free + 11 after locks of 30 s, 60 s, … 8.5 h)', () => {
      const day = 86_400_000;
      assert.equal(derivedMaxGuesses(day), 16);
      const { guesses, refused, state } = simulate(day, 1_000);
      assert.equal(guesses, 16);
      assert.ok(guesses <= derivedMaxGuesses(day));
      // refused attempts were not counted as failures
      assert.ok(refused > 80_000);
      assert.equal(state.failures, 16);
      // with one step either side, each guess hits 3 of 10^6 codes: under 5 × 10^-5 per day
      assert.ok((guesses * 3) / 1e6 < 5e-5);
    });

    it('allows at most 22 guesses in 7 days (the 24 h cap then holds it to one a day)', () => {
      const week = 7 * 86_400_000;
      assert.equal(derivedMaxGuesses(week), 22);
      // ticks of 30 s land exactly on every lock end (all multiples of 30 s from t = 0)
      const { guesses, state } = simulate(week, 30_000);
      assert.equal(guesses, 22);
      assert.equal(state.failures, 22);
    });
  });
});
