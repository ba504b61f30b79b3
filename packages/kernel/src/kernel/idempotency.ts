import { createHash } from 'node:crypto';
import type { Barrier } from '../barrier/Barrier.js';
import { CustosError, invalidInput } from '../errors.js';
import type { IdempotencyRecord, StoreTx } from '../store/types.js';
import { canonicalJson } from '../util/canonicalJson.js';
import type { App } from './types.js';

/**
 * Idempotency keys (issue 15 point 6; docs/idempotency.md). A sign or approval request may carry an
 * `Idempotency-Key` header; its successful result is stored under (tenant, API key id, key) in the
 * decision's own unit (with the audit record: one commits with the other or neither does) and kept
 * 24 h. A retry under the same key whose operation is the same — compared by what is decided on,
 * the route and the opHash (the canonical operation), never by `code` or `approvalId` — gets the
 * stored result back: nothing is decided again, no consent is checked or spent, no second audit
 * record is written. The same key with another operation is `idempotency_conflict` (audited).
 *
 * Only successes are stored. A refusal is decided again on a retry: a wrong code must not become a
 * replayable answer, and a retry with a newly typed code after a wrong one must be able to succeed;
 * a refusal that does not depend on the consent (policy, frozen wallet) is simply refused again.
 *
 * Concurrency: one process runs the units of one key one after the other (`KeyLocks`), so a
 * concurrent duplicate waits for the first and then finds its result; across replicas the store's
 * units that write serialise on the audit head (PostgreSQL: the head row lock each batch takes
 * first; SQLite: the one writer), and the lookup runs inside the unit, after that lock.
 */

/** How long a stored result answers a retry. */
export const IDEMPOTENCY_TTL_MS = 24 * 60 * 60 * 1000;
/** Expired stored results a signing unit deletes at most, once a minute per process (the housekeeping deletes the rest). */
const SIGN_PATH_PURGE = 100;

/** The header's name, as error details and docs spell it. */
export const IDEMPOTENCY_HEADER = 'Idempotency-Key';

const KEY_PATTERN = /^[A-Za-z0-9._:~+/=-]{1,128}$/;

/** A request's key and what its retries must match. */
export interface Idempotency {
  key: string;
  /** 64 hex digits: SHA-256 of the canonical JSON of what the request decides on (route and operation). */
  requestHash: string;
}

/** The header's value: absent, or 1 to 128 characters of A–Z a–z 0–9 . _ : ~ + / = - (invalid_input naming the header otherwise). */
export function assertIdempotencyKey(value: unknown): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || !KEY_PATTERN.test(value))
    throw invalidInput(
      IDEMPOTENCY_HEADER,
      '1 to 128 characters of A-Z a-z 0-9 . _ : ~ + / = -',
      typeof value === 'string' ? `${value.length} characters` : typeof value,
    );
  return value;
}

/** The key (already asserted) bound to what the request decides on; undefined without a key. */
export function idempotencyOf(key: string | undefined, decided: Record<string, unknown>): Idempotency | undefined {
  if (key === undefined) return undefined;
  return { key, requestHash: createHash('sha256').update(canonicalJson(decided)).digest('hex') };
}

/** The record key the stored result is sealed under: the row's identity and request, so that a row moved or altered does not open. */
function recordKey(row: Pick<IdempotencyRecord, 'tenant' | 'apiKeyId' | 'idempotencyKey' | 'requestHash' | 'createdAt'>): string {
  return `idempotency/${canonicalJson([row.tenant, row.apiKeyId, row.idempotencyKey, row.requestHash, row.createdAt])}`;
}

/**
 * In the unit: the result stored under the caller's key within the last 24 h (`{ value }`), a refusal
 * when that key was used for another operation (`{ conflict }`), or undefined (decide as usual). A
 * stored row that does not open under the barrier is record_unreadable (fail closed).
 */
export async function findStoredResult<T>(
  tx: StoreTx,
  barrier: Barrier,
  app: App,
  idempotency: Idempotency,
  now: number,
): Promise<{ value: T } | { conflict: CustosError } | undefined> {
  const row = await tx.getIdempotency(app.tenant, app.id, idempotency.key);
  if (row === undefined || row.createdAt <= now - IDEMPOTENCY_TTL_MS) return undefined;
  if (row.requestHash !== idempotency.requestHash)
    return {
      conflict: new CustosError('idempotency_conflict', 'this Idempotency-Key was used for another request within 24 h; nothing was done', {
        details: { field: IDEMPOTENCY_HEADER },
      }),
    };
  const plaintext = barrier.decryptRecord(recordKey(row), row.response);
  return { value: JSON.parse(new TextDecoder().decode(plaintext)) as T };
}

/** In the unit, with the decision's audit record: stores a successful result under the caller's key (sealed under the barrier). */
export async function storeResult(
  tx: StoreTx,
  barrier: Barrier,
  random: (n: number) => Uint8Array,
  app: App,
  idempotency: Idempotency,
  value: unknown,
  now: number,
  locks: KeyLocks,
): Promise<void> {
  const row = { tenant: app.tenant, apiKeyId: app.id, idempotencyKey: idempotency.key, requestHash: idempotency.requestHash, createdAt: now };
  const response = barrier.encryptRecord(recordKey(row), new TextEncoder().encode(JSON.stringify(value)), random);
  await tx.putIdempotency({ ...row, response });
  // Opportunistic housekeeping (cheap: an index range), at most once a minute per process.
  // at most SIGN_PATH_PURGE rows here, in a signing unit; the housekeeping deletes the rest in bounded batches (review)
  if (locks.purgeDue(now)) await tx.deleteIdempotencyBefore(now - IDEMPOTENCY_TTL_MS + 1, SIGN_PATH_PURGE);
}

/**
 * Runs the work of one (tenant, API key, Idempotency-Key) after the earlier work of the same key in
 * this process has settled: a concurrent duplicate waits for the first, then finds its stored result.
 */
export class KeyLocks {
  readonly #tails = new Map<string, Promise<unknown>>();
  #lastPurge = Number.NEGATIVE_INFINITY;

  /** Whether the opportunistic purge of expired rows is due (once a minute); marks it done. */
  purgeDue(now: number): boolean {
    if (now - this.#lastPurge < 60_000 && now >= this.#lastPurge) return false;
    this.#lastPurge = now;
    return true;
  }

  async run<T>(app: App, idempotency: Idempotency | undefined, work: () => Promise<T>): Promise<T> {
    if (idempotency === undefined) return work();
    const name = `${app.tenant}\0${app.id}\0${idempotency.key}`;
    const before = this.#tails.get(name) ?? Promise.resolve();
    const mine = before.then(work, work);
    const tail = mine.then(
      () => undefined,
      () => undefined,
    );
    this.#tails.set(name, tail);
    try {
      return await mine;
    } finally {
      if (this.#tails.get(name) === tail) this.#tails.delete(name);
    }
  }

  /** Keys with work running or waiting (tests). */
  get size(): number {
    return this.#tails.size;
  }
}
