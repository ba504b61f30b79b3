/**
 * The in-flight request limit of the HTTP shell. A request is admitted while fewer than
 * `maxInFlight` are in flight and fewer than `maxInFlightPerClient` of its client's are still being
 * received (so that one client holding its requests open — a body trickled, reconnecting at every
 * timeout — cannot take every slot, while a busy backend whose requests arrive whole may use them
 * all); its release must be called however the exchange ends (answered, aborted mid-body, timed
 * out, errored) and may be called more than once; `received()` ends its count against the client
 * once the body is in. The guard is "stuck" when
 * the counter has stayed at its limit for `stuckAfterMs` with no admitted request completing —
 * ordinary load at the limit keeps completing requests, so it never looks stuck.
 *
 * With `targetLatencyMs`, the requests whose bodies are in (the ones that cost CPU and wait in the
 * store's queue: "busy") also follow the rate requests complete at (issue 14, point 5): at most as
 * many busy as complete in `targetLatencyMs` (the completions of the last 2 s), never fewer than
 * `minInFlight`, never more than `maxInFlight` — by Little's law a request admitted then waits about
 * `targetLatencyMs` wherever it waits (the event loop, the store's queue). A fixed count does not
 * bound the wait: 1,024 requests in flight on a kernel that signs 100 a second wait 10 s, past their
 * clients' timeouts, and the kernel goes on working for clients that are gone. Requests still being
 * received do not count against that limit (they cost nothing while their bodies trickle in), only
 * against `maxInFlight` and their client's share: so one slow client cannot take the rate-based
 * limit from the others, and one busy backend may use it all.
 */
export interface OverloadGuard {
  readonly inFlight: number;
  readonly maxInFlight: number;
  readonly maxInFlightPerClient: number;
  /** The limit of busy requests now: maxInFlight, or less with targetLatencyMs (the completion rate × targetLatencyMs, at least minInFlight). */
  readonly limit: number;
  /** Admitted requests whose bodies are in (inFlight less those still being received). */
  readonly busy: number;
  /** Whether a new request would be refused by the global limits now (maxInFlight, or busy at the limit), whoever sends it. */
  full(): boolean;
  /** Requests of this client still being received (0 for a client with none). */
  inFlightOf(client: string): number;
  /**
   * Admits one request of `client` (a grouped client address) and returns its (idempotent)
   * release, or undefined at the global limit or at the client's own. An `operator` request (seal,
   * unseal, status) meets maxInFlight and the client's share, not the rate-based limit: the
   * operator can seal a kernel that a flood of valid requests keeps at that limit.
   */
  tryEnter(client: string, options?: { operator?: boolean }): AdmittedRequest | undefined;
  /** At the limit for `stuckAfterMs` with no admitted request completing meanwhile. */
  stuck(): boolean;
}

/**
 * An admitted request: release() gives its slot back; received() ends its count against its client
 * (both idempotent); away() takes it out of the busy count while it waits on something outside the
 * kernel (a forwarded JSON-RPC call's node) until the function it returns is called (idempotent;
 * release ends it too).
 */
export interface AdmittedRequest {
  (): void;
  received(): void;
  away(): () => void;
}

export interface OverloadGuardOptions {
  maxInFlight: number;
  /** Requests one client may have in flight and not yet received (default half of maxInFlight, at least 1). */
  maxInFlightPerClient?: number;
  /** How long the counter may stay at its limit with no request completing before it counts as stuck (ms). */
  stuckAfterMs?: number;
  /** Bound the time in flight: at most as many in flight as complete in this many ms (default: no such bound). */
  targetLatencyMs?: number;
  /** With targetLatencyMs: the limit never goes below this (an idle signer admits a burst; default 64, at most maxInFlight). */
  minInFlight?: number;
  /** The clock (ms); tests pass their own. */
  now?: () => number;
}

/** Completions are counted in buckets of this many ms, over RATE_WINDOW_BUCKETS of them (2 s). */
const RATE_BUCKET_MS = 250;
const RATE_WINDOW_BUCKETS = 8;

/** The default share of one client: half the slots (one client, however slow, leaves the other half to the rest). */
export function defaultMaxInFlightPerClient(maxInFlight: number): number {
  return Math.max(1, Math.floor(maxInFlight / 2));
}

export function createOverloadGuard({
  maxInFlight,
  maxInFlightPerClient = defaultMaxInFlightPerClient(maxInFlight),
  stuckAfterMs = 30_000,
  targetLatencyMs,
  minInFlight = 64,
  now = Date.now,
}: OverloadGuardOptions): OverloadGuard {
  if (!Number.isInteger(maxInFlight) || maxInFlight < 1) throw new RangeError(`maxInFlight: expected an integer >= 1, got ${maxInFlight}`);
  if (!Number.isInteger(maxInFlightPerClient) || maxInFlightPerClient < 1)
    throw new RangeError(`maxInFlightPerClient: expected an integer >= 1, got ${maxInFlightPerClient}`);
  const perClientLimit = Math.min(maxInFlightPerClient, maxInFlight);
  let inFlight = 0;
  // admitted requests still being received (the sum of byClient's counts)
  let receiving = 0;
  // admitted requests waiting on something outside the kernel (AdmittedRequest.away)
  let away = 0;
  // requests in flight and still being received, per client; a client with none has no entry (so the map is bounded by inFlight)
  const byClient = new Map<string, number>();
  // the last moment something moved: the counter reached its limit, or an admitted request completed
  let lastProgress = now();
  // completions per bucket of RATE_BUCKET_MS, a ring over the last RATE_WINDOW_BUCKETS buckets
  const completed = new Array<number>(RATE_WINDOW_BUCKETS).fill(0);
  let bucketAt = Math.floor(now() / RATE_BUCKET_MS);
  /** Moves the ring to the current bucket, emptying the buckets passed. */
  const advance = (): void => {
    const current = Math.floor(now() / RATE_BUCKET_MS);
    for (let b = bucketAt + 1; b <= current && b <= bucketAt + RATE_WINDOW_BUCKETS; b++) completed[b % RATE_WINDOW_BUCKETS] = 0;
    if (current > bucketAt) bucketAt = current;
  };
  const floor = Math.min(maxInFlight, minInFlight);
  const limit = (): number => {
    if (targetLatencyMs === undefined) return maxInFlight;
    advance();
    const perMs = completed.reduce((a, b) => a + b, 0) / (RATE_BUCKET_MS * RATE_WINDOW_BUCKETS);
    return Math.min(maxInFlight, Math.max(floor, Math.floor(perMs * targetLatencyMs)));
  };
  const busy = (): number => inFlight - receiving - away;
  const full = (): boolean => inFlight >= maxInFlight || busy() >= limit();
  return {
    get inFlight() {
      return inFlight;
    },
    maxInFlight,
    maxInFlightPerClient: perClientLimit,
    get limit() {
      return limit();
    },
    get busy() {
      return busy();
    },
    full,
    inFlightOf(client) {
      return byClient.get(client) ?? 0;
    },
    tryEnter(client, { operator = false } = {}) {
      const ofClient = byClient.get(client) ?? 0;
      // The share counts requests still being received only, and those do not count against the
      // rate-based limit (review of the first version: there, at the floor of 64, one client
      // holding 64 slow requests refused everyone else, the network unseal and seal included).
      if ((operator ? inFlight >= maxInFlight : full()) || ofClient >= perClientLimit) return undefined;
      inFlight += 1;
      receiving += 1;
      byClient.set(client, ofClient + 1);
      if (full()) lastProgress = now();
      let released = false;
      let counted = true;
      const received = () => {
        if (!counted) return;
        counted = false;
        receiving -= 1;
        const left = (byClient.get(client) ?? 1) - 1;
        if (left === 0) byClient.delete(client);
        else byClient.set(client, left);
        // its body in, it is busy: reaching the limit so counts as movement (stuck() waits from here)
        if (full()) lastProgress = now();
      };
      let back: (() => void) | undefined;
      const goAway = () => {
        // only a busy request goes away (one still being received is not busy: counting it twice would make busy negative)
        if (released || counted || back !== undefined) return () => undefined;
        away += 1;
        const returned = () => {
          if (back !== returned) return;
          back = undefined;
          away -= 1;
        };
        back = returned;
        return returned;
      };
      const release = () => {
        if (released) return;
        released = true;
        back?.();
        inFlight -= 1;
        received();
        lastProgress = now();
        if (targetLatencyMs !== undefined) {
          advance();
          completed[bucketAt % RATE_WINDOW_BUCKETS] = (completed[bucketAt % RATE_WINDOW_BUCKETS] ?? 0) + 1;
        }
      };
      return Object.assign(release, { received, away: goAway });
    },
    stuck() {
      // at a global limit (the rate-based one too), with nothing completing for stuckAfterMs
      return full() && now() - lastProgress >= stuckAfterMs;
    },
  };
}
