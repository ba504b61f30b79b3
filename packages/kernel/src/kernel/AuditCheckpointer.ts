import { type AuditCheckpoint, createAuditCheckpoint } from '../audit/auditCheckpoint.js';
import { CustosError, isCustosError } from '../errors.js';
import type { Store } from '../store/types.js';

/** When the kernel signs audit checkpoints, and who hears of them (KernelOptions.auditCheckpoints). */
export interface AuditCheckpointOptions {
  /**
   * Sign a checkpoint after this many units of work committed by this kernel (each unit appends
   * one audit record, or a few): default 1000; 0 turns the count off (the shell's timer, the seal
   * and the shutdown still checkpoint).
   */
  every?: number;
  /**
   * Hears every checkpoint this kernel stored, after its commit (to push it out of the data
   * directory). Called synchronously: it must only queue, never block or throw.
   */
  onCheckpoint?: (checkpoint: AuditCheckpoint) => void;
  /** Hears a checkpoint made in the background (after a commit) that failed: its records stay unprotected until the next one. */
  onError?: (error: CustosError) => void;
}

/** What signs: the barrier (the audit key never leaves it). */
export interface CheckpointSigner {
  readonly auditPublicKey: Uint8Array;
  signCheckpoint(message: Uint8Array): Uint8Array;
}

/**
 * Decides when the audit chain's head is signed, and signs it in a unit of work of its own: the
 * head is read under the store's batch lock, a checkpoint made only if none covers it yet, and
 * stored in the same transaction. One checkpoint at a time per kernel; across replicas, a
 * checkpoint of a seq already stored is dropped by the store (one per seq).
 */
export class AuditCheckpointer {
  readonly #store: Store;
  readonly #now: () => number;
  readonly #every: number;
  readonly #onCheckpoint: (checkpoint: AuditCheckpoint) => void;
  readonly #onError: (error: CustosError) => void;
  #units = 0;
  #queue: Promise<unknown> = Promise.resolve();
  #backgroundPending = false;

  constructor(store: Store, now: () => number, { every = 1000, onCheckpoint = () => undefined, onError = () => undefined }: AuditCheckpointOptions = {}) {
    if (!Number.isSafeInteger(every) || every < 0)
      throw new CustosError('invalid_input', 'auditCheckpoints.every: expected an integer ≥ 0', { details: { field: 'every' } });
    this.#store = store;
    this.#now = now;
    this.#every = every;
    this.#onCheckpoint = onCheckpoint;
    this.#onError = onError;
  }

  /** After each committed unit: every `every` units, a checkpoint in the background (never awaited by a request). */
  noteCommit(signer: () => { signerId: string; signer: CheckpointSigner } | undefined): void {
    if (this.#every === 0) return;
    this.#units += 1;
    if (this.#units < this.#every || this.#backgroundPending) return;
    this.#units = 0;
    this.#backgroundPending = true;
    void this.#enqueue(async () => {
      this.#backgroundPending = false;
      const current = signer();
      if (current !== undefined) await this.#checkpointNow(current.signerId, current.signer);
    }).catch((error: unknown) => this.#onError(asCustosError(error)));
  }

  /** Signs the current head unless a stored checkpoint covers it already; the checkpoint made, or undefined. */
  checkpoint(signerId: string, signer: CheckpointSigner): Promise<AuditCheckpoint | undefined> {
    return this.#enqueue(() => this.#checkpointNow(signerId, signer));
  }

  #enqueue<T>(run: () => Promise<T>): Promise<T> {
    const next = this.#queue.then(run);
    this.#queue = next.catch(() => undefined);
    return next;
  }

  async #checkpointNow(signerId: string, signer: CheckpointSigner): Promise<AuditCheckpoint | undefined> {
    let made: AuditCheckpoint | undefined;
    try {
      made = await this.#store.transact(async (tx) => {
        const head = await tx.auditHead();
        if (head.seq === 0 || (await tx.latestAuditCheckpointSeq()) >= head.seq) return undefined;
        const checkpoint = createAuditCheckpoint({ signerId, seq: head.seq, headHash: head.hash, ts: this.#now() }, signer);
        return (await tx.appendAuditCheckpoint(checkpoint)) ? checkpoint : undefined;
      });
    } catch (error) {
      throw asCustosError(error);
    }
    this.#units = 0;
    if (made !== undefined) this.#onCheckpoint(made);
    return made;
  }
}

function asCustosError(error: unknown): CustosError {
  if (isCustosError(error)) return error;
  return new CustosError('store_unavailable', 'the audit checkpoint could not be stored', { cause: error });
}
