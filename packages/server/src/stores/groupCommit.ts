import { CustosError, type StoreTx } from '@custos/kernel';

/** What a store provides to run one batch of units of work as one database transaction. */
export interface BatchDriver {
  /** BEGIN and take the write lock (audit head); returns the StoreTx the units use. */
  begin(): Promise<StoreTx>;
  savepoint(): Promise<void>;
  releaseSavepoint(): Promise<void>;
  /** Undo one unit: roll back to its savepoint (and forget the audit head it advanced). */
  rollbackToSavepoint(): Promise<void>;
  /** Makes the batch durable (e.g. writes the advanced audit head, COMMIT). */
  commit(): Promise<void>;
  /** Best effort after a failure; must leave the connection usable or discard it. */
  rollback(): Promise<void>;
  /** Called before each unit: remember the audit head, so that rollbackToSavepoint can restore it. */
  markUnit(): void;
}

interface Pending {
  work: (tx: StoreTx) => Promise<unknown>;
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
}

/**
 * Group commit: units of work submitted while a batch runs (or within the same turn of the event
 * loop) are run together in the next transaction, each in its own savepoint, so that one fsync
 * serves them all. A unit that throws is rolled back alone and rejected with its error; if the
 * commit fails, every unit of the batch is rejected with store_unavailable. A unit's promise
 * settles only after its batch's COMMIT returned.
 */
export class GroupCommit {
  readonly #driver: BatchDriver;
  readonly #maxBatch: number;
  #queue: Pending[] = [];
  #scheduled = false;
  #running = false;
  #closed = false;
  /** Batches committed and units in them. */
  readonly stats = { batches: 0, units: 0, lastBatchSize: 0 };
  /** Observer of each committed batch (size, duration ms) — for metrics. */
  onBatch: ((size: number, durationMs: number) => void) | undefined;

  readonly #maxPending: number;

  /**
   * @param maxBatch most units in one transaction
   * @param maxPending most units waiting; beyond it submit() refuses with `overloaded` instead of
   *   queueing without limit
   */
  constructor(driver: BatchDriver, { maxBatch = 256, maxPending = 8192 }: { maxBatch?: number; maxPending?: number } = {}) {
    this.#driver = driver;
    this.#maxBatch = maxBatch;
    this.#maxPending = maxPending;
  }

  /** Units queued and not yet committed. */
  get pending(): number {
    return this.#queue.length;
  }

  submit<T>(work: (tx: StoreTx) => Promise<T>): Promise<T> {
    if (this.#closed) return Promise.reject(new CustosError('store_unavailable', 'the store is closed'));
    if (this.#queue.length >= this.#maxPending) {
      return Promise.reject(new CustosError('overloaded', 'too many requests wait for the store; retry later', { details: { retryAfterSeconds: 1 } }));
    }
    return new Promise<T>((resolve, reject) => {
      this.#queue.push({ work, resolve: resolve as (v: unknown) => void, reject });
      this.#schedule();
    });
  }

  /** Refuses new work and waits until every queued unit has settled. */
  async close(): Promise<void> {
    this.#closed = true;
    while (this.#running || this.#scheduled || this.#queue.length > 0) await new Promise((r) => setTimeout(r, 2));
  }

  #schedule(): void {
    if (this.#scheduled || this.#running || this.#queue.length === 0) return;
    this.#scheduled = true;
    setImmediate(() => {
      this.#scheduled = false;
      void this.#flush();
    });
  }

  async #flush(): Promise<void> {
    this.#running = true;
    const started = performance.now();
    const batch = this.#queue.splice(0, this.#maxBatch);
    const results: Array<{ ok: true; value: unknown } | { ok: false; error: unknown }> = [];
    let committed = false;
    try {
      const tx = await this.#driver.begin();
      for (const unit of batch) {
        this.#driver.markUnit();
        await this.#driver.savepoint();
        try {
          const value = await unit.work(tx);
          await this.#driver.releaseSavepoint();
          results.push({ ok: true, value });
        } catch (error) {
          await this.#driver.rollbackToSavepoint();
          results.push({ ok: false, error });
        }
      }
      await this.#driver.commit();
      committed = true;
    } catch (error) {
      await this.#driver.rollback();
      const failure = new CustosError('store_unavailable', 'the store transaction failed; nothing was committed', { cause: error });
      for (const unit of batch) unit.reject(failure);
    }
    if (committed) {
      this.stats.batches += 1;
      this.stats.units += batch.length;
      this.stats.lastBatchSize = batch.length;
      this.onBatch?.(batch.length, performance.now() - started);
      batch.forEach((unit, i) => {
        const r = results[i];
        if (r === undefined) unit.reject(new CustosError('internal', 'unit of work lost'));
        else if (r.ok) unit.resolve(r.value);
        else unit.reject(r.error);
      });
    }
    this.#running = false;
    this.#schedule();
  }
}
