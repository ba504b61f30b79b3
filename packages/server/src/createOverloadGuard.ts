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
 */
export interface OverloadGuard {
  readonly inFlight: number;
  readonly maxInFlight: number;
  readonly maxInFlightPerClient: number;
  /** Requests of this client still being received (0 for a client with none). */
  inFlightOf(client: string): number;
  /**
   * Admits one request of `client` (a grouped client address) and returns its (idempotent)
   * release, or undefined at the global limit or at the client's own.
   */
  tryEnter(client: string): AdmittedRequest | undefined;
  /** At the limit for `stuckAfterMs` with no admitted request completing meanwhile. */
  stuck(): boolean;
}

/** An admitted request: release() gives its slot back; received() ends its count against its client (both idempotent). */
export interface AdmittedRequest {
  (): void;
  received(): void;
}

export interface OverloadGuardOptions {
  maxInFlight: number;
  /** Requests one client may have in flight and not yet received (default half of maxInFlight, at least 1). */
  maxInFlightPerClient?: number;
  /** How long the counter may stay at its limit with no request completing before it counts as stuck (ms). */
  stuckAfterMs?: number;
  /** The clock (ms); tests pass their own. */
  now?: () => number;
}

/** The default share of one client: half the slots (one client, however slow, leaves the other half to the rest). */
export function defaultMaxInFlightPerClient(maxInFlight: number): number {
  return Math.max(1, Math.floor(maxInFlight / 2));
}

export function createOverloadGuard({
  maxInFlight,
  maxInFlightPerClient = defaultMaxInFlightPerClient(maxInFlight),
  stuckAfterMs = 30_000,
  now = Date.now,
}: OverloadGuardOptions): OverloadGuard {
  if (!Number.isInteger(maxInFlight) || maxInFlight < 1) throw new RangeError(`maxInFlight: expected an integer >= 1, got ${maxInFlight}`);
  if (!Number.isInteger(maxInFlightPerClient) || maxInFlightPerClient < 1)
    throw new RangeError(`maxInFlightPerClient: expected an integer >= 1, got ${maxInFlightPerClient}`);
  const perClientLimit = Math.min(maxInFlightPerClient, maxInFlight);
  let inFlight = 0;
  // requests in flight and still being received, per client; a client with none has no entry (so the map is bounded by inFlight)
  const byClient = new Map<string, number>();
  // the last moment something moved: the counter reached its limit, or an admitted request completed
  let lastProgress = now();
  return {
    get inFlight() {
      return inFlight;
    },
    maxInFlight,
    maxInFlightPerClient: perClientLimit,
    inFlightOf(client) {
      return byClient.get(client) ?? 0;
    },
    tryEnter(client) {
      const ofClient = byClient.get(client) ?? 0;
      if (inFlight >= maxInFlight || ofClient >= perClientLimit) return undefined;
      inFlight += 1;
      byClient.set(client, ofClient + 1);
      if (inFlight === maxInFlight) lastProgress = now();
      let released = false;
      let counted = true;
      const received = () => {
        if (!counted) return;
        counted = false;
        const left = (byClient.get(client) ?? 1) - 1;
        if (left === 0) byClient.delete(client);
        else byClient.set(client, left);
      };
      const release = () => {
        if (released) return;
        released = true;
        inFlight -= 1;
        received();
        lastProgress = now();
      };
      return Object.assign(release, { received });
    },
    stuck() {
      return inFlight >= maxInFlight && now() - lastProgress >= stuckAfterMs;
    },
  };
}
