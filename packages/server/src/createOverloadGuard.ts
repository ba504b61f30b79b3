/**
 * The in-flight request limit of the HTTP shell. A request is admitted while fewer than
 * `maxInFlight` are in flight; its release must be called however the exchange ends (answered,
 * aborted mid-body, timed out, errored) and may be called more than once. The guard is "stuck" when
 * the counter has stayed at its limit for `stuckAfterMs` with no admitted request completing —
 * ordinary load at the limit keeps completing requests, so it never looks stuck.
 */
export interface OverloadGuard {
  readonly inFlight: number;
  readonly maxInFlight: number;
  /** Admits one request and returns its (idempotent) release, or undefined at the limit. */
  tryEnter(): (() => void) | undefined;
  /** At the limit for `stuckAfterMs` with no admitted request completing meanwhile. */
  stuck(): boolean;
}

export interface OverloadGuardOptions {
  maxInFlight: number;
  /** How long the counter may stay at its limit with no request completing before it counts as stuck (ms). */
  stuckAfterMs?: number;
  /** The clock (ms); tests pass their own. */
  now?: () => number;
}

export function createOverloadGuard({ maxInFlight, stuckAfterMs = 30_000, now = Date.now }: OverloadGuardOptions): OverloadGuard {
  if (!Number.isInteger(maxInFlight) || maxInFlight < 1) throw new RangeError(`maxInFlight: expected an integer >= 1, got ${maxInFlight}`);
  let inFlight = 0;
  // the last moment something moved: the counter reached its limit, or an admitted request completed
  let lastProgress = now();
  return {
    get inFlight() {
      return inFlight;
    },
    maxInFlight,
    tryEnter() {
      if (inFlight >= maxInFlight) return undefined;
      inFlight += 1;
      if (inFlight === maxInFlight) lastProgress = now();
      let released = false;
      return () => {
        if (released) return;
        released = true;
        inFlight -= 1;
        lastProgress = now();
      };
    },
    stuck() {
      return inFlight >= maxInFlight && now() - lastProgress >= stuckAfterMs;
    },
  };
}
