import { LruMap } from '../../util/LruMap.js';
import { assertUnsealNotThrottled, recordUnsealFailure, type UnsealThrottleState } from './unsealThrottle.js';

/** Clients whose back-off is remembered; beyond it the least recently seen is forgotten. */
export const MAX_UNSEAL_CLIENTS = 10_000;

/**
 * The unseal back-off of each client (see unsealThrottle.ts for one client's rule): a client's
 * failures delay that client's next attempt only, so that an attacker failing as each back-off
 * expires never delays an operator who comes from elsewhere. Pure: the clock is passed in. Only
 * clients with a failure are kept, at most `maxClients` (least recently used dropped: a forgotten
 * client starts again at no back-off, which an attacker with more than `maxClients` addresses can
 * use against their own back-off, never against another client's).
 */
export class UnsealThrottles {
  readonly #states: LruMap<string, UnsealThrottleState>;

  constructor(maxClients = MAX_UNSEAL_CLIENTS) {
    this.#states = new LruMap(maxClients);
  }

  /** Clients remembered (each with at least one failure since its last success). */
  get size(): number {
    return this.#states.size;
  }

  /** Throws `unseal_throttled` (details `{ retryAfterSeconds }`) while `clientKey`'s back-off runs. */
  assertNotThrottled(clientKey: string, nowMs: number): void {
    const state = this.#states.get(clientKey);
    if (state !== undefined) assertUnsealNotThrottled(state, nowMs);
  }

  /** One more failure of `clientKey` at `nowMs`: its next attempt waits. */
  recordFailure(clientKey: string, nowMs: number): void {
    this.#states.set(clientKey, recordUnsealFailure(this.#states.get(clientKey) ?? { failures: 0, blockedUntilMs: null }, nowMs));
  }

  /** A success of `clientKey`: its back-off is over. */
  recordSuccess(clientKey: string): void {
    this.#states.delete(clientKey);
  }
}
