import { type AuditCheckpoint, createAuditCheckpoint, verifyAuditCheckpointSignature } from '../audit/auditCheckpoint.js';
import { toHex } from '../util/hex.js';
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
 *
 * A stored checkpoint that claims to cover the head is believed only if the one at the head's own
 * seq verifies under the barrier's audit key and commits to the head's hash: a database writer
 * who inserts a checkpoint beyond the head (or a forged one at it) cannot switch checkpointing off.
 * Such a row is reported (onError, `record_unreadable`) and the real head is signed anyway; when a
 * forged row holds the head's seq, the genuine checkpoint is still handed to onCheckpoint (exported).
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
  /** The seq of the last checkpoint beyond the head reported (reported once, not at every checkpoint). */
  #reportedBeyond = 0;

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
      const first = await this.#store.transact(async (tx) => {
        const head = await tx.auditHead();
        if (head.seq === 0) return { kind: 'empty' as const };
        const latest = await tx.latestAuditCheckpointSeq();
        if (latest >= head.seq) return { kind: 'claimed' as const, head, latest };
        const checkpoint = createAuditCheckpoint({ signerId, seq: head.seq, headHash: head.hash, ts: this.#now() }, signer);
        return { kind: 'made' as const, checkpoint: (await tx.appendAuditCheckpoint(checkpoint)) ? checkpoint : undefined };
      });
      if (first.kind === 'made') made = first.checkpoint;
      else if (first.kind === 'claimed') made = await this.#checkClaim(signerId, signer, first.head, first.latest);
    } catch (error) {
      throw asCustosError(error);
    }
    this.#units = 0;
    if (made !== undefined) this.#onCheckpoint(made);
    return made;
  }

  /**
   * A stored checkpoint claims to cover the head (`latest` ≥ the head's seq): believed only if the
   * one stored at the head's own seq is genuine. Otherwise the claim is reported and the head (as it
   * is now) signed; the checkpoint is returned even when a forged row holds its seq (then not stored).
   */
  async #checkClaim(signerId: string, signer: CheckpointSigner, head: { seq: number; hash: string }, latest: number): Promise<AuditCheckpoint | undefined> {
    const [atHead] = await this.#store.readAuditCheckpoints(head.seq, 1);
    const stored = atHead?.seq === head.seq ? atHead : undefined;
    const genuine =
      stored !== undefined &&
      stored.signerId === signerId &&
      stored.headHash === head.hash &&
      stored.publicKey === toHex(signer.auditPublicKey) &&
      verifyAuditCheckpointSignature(stored, signer.auditPublicKey);
    if (latest > head.seq && this.#reportedBeyond !== latest) {
      this.#reportedBeyond = latest;
      this.#onError(
        new CustosError('record_unreadable', `a stored audit checkpoint claims seq ${latest}, beyond the log's head (${head.seq}): not made by this signer`, {
          details: { field: 'audit_checkpoints', seq: latest, headSeq: head.seq },
        }),
      );
    }
    if (genuine) return undefined;
    if (stored !== undefined)
      this.#onError(
        new CustosError(
          'record_unreadable',
          `the stored audit checkpoint at seq ${head.seq} does not verify (signature or head hash): not made by this signer`,
          {
            details: { field: 'audit_checkpoints', seq: head.seq },
          },
        ),
      );
    return this.#store.transact(async (tx) => {
      const now = await tx.auditHead();
      const checkpoint = createAuditCheckpoint({ signerId, seq: now.seq, headHash: now.hash, ts: this.#now() }, signer);
      await tx.appendAuditCheckpoint(checkpoint); // false when a forged row holds that seq: exported all the same
      return checkpoint;
    });
  }
}

function asCustosError(error: unknown): CustosError {
  if (isCustosError(error)) return error;
  return new CustosError('store_unavailable', 'the audit checkpoint could not be stored', { cause: error });
}
