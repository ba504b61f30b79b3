import { CustosError } from '../../errors.js';
import type { UnsealClient } from './unsealClient.js';

/** Attempts of one network client waiting or running at once; a further one is refused unheard. */
export const MAX_QUEUED_UNSEALS_PER_CLIENT = 2;

interface Job {
  client: UnsealClient;
  attempt: () => Promise<unknown>;
  resolve(value: unknown): void;
  reject(error: unknown): void;
}

/**
 * Runs unseal attempts one after the other (a combine never interleaves with a submission, and
 * each attempt sees the back-off its predecessor's failure set). Each attempt may cost a scrypt or
 * an HSM round trip, so a queue open to the network could be filled by an attacker's slow attempts
 * in front of an operator's. Two rules keep it from that:
 *   - a network client has at most MAX_QUEUED_UNSEALS_PER_CLIENT attempts waiting or running; a
 *     further one is refused `unseal_throttled` (retry in 1 s) without being queued;
 *   - an operator's attempt (admin socket, start-up) goes before every waiting network attempt: it
 *     waits at most for the one attempt that is running.
 * Network attempts keep their arrival order among themselves.
 */
export class UnsealQueue {
  readonly #operator: Job[] = [];
  readonly #network: Job[] = [];
  readonly #perClient = new Map<string, number>();
  #running = false;

  /** Attempts waiting (not counting the one running). */
  get waiting(): number {
    return this.#operator.length + this.#network.length;
  }

  run<T>(client: UnsealClient, attempt: () => Promise<T>): Promise<T> {
    const held = this.#perClient.get(client.key) ?? 0;
    if (!client.operator && held >= MAX_QUEUED_UNSEALS_PER_CLIENT) {
      return Promise.reject(
        new CustosError('unseal_throttled', `${held} unseal attempts of this client are already under way: retry in 1 s`, {
          details: { retryAfterSeconds: 1 },
        }),
      );
    }
    this.#perClient.set(client.key, held + 1);
    return new Promise<T>((resolve, reject) => {
      const job: Job = { client, attempt, resolve: resolve as (value: unknown) => void, reject };
      (client.operator ? this.#operator : this.#network).push(job);
      this.#next();
    });
  }

  #next(): void {
    if (this.#running) return;
    const job = this.#operator.shift() ?? this.#network.shift();
    if (job === undefined) return;
    this.#running = true;
    void Promise.resolve()
      .then(job.attempt)
      .then(job.resolve, job.reject)
      .finally(() => {
        const held = (this.#perClient.get(job.client.key) ?? 1) - 1;
        if (held > 0) this.#perClient.set(job.client.key, held);
        else this.#perClient.delete(job.client.key);
        this.#running = false;
        this.#next();
      });
  }
}
