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

/** How long the oldest waiting unit may have waited before new units are refused `overloaded` (ms). */
export const DEFAULT_MAX_QUEUE_DELAY_MS = 5_000;

type UnitResult = { ok: true; value: unknown } | { ok: false; error: unknown };

interface Pending {
  work: (tx: StoreTx) => Promise<unknown>;
  /** When it was queued (the clock of the options, ms). */
  queuedAt: number;
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
}

/**
 * Group commit: units of work submitted while a batch runs (or within the same turn of the event
 * loop) are run together in the next transaction, so that one fsync serves them all. A unit that
 * throws is rolled back alone and rejected with its error: the batch runs without savepoints, and
 * only when a unit throws is the transaction rolled back and the batch's units run again, each in
 * its own savepoint (so a unit may run twice: it must not act outside its StoreTx). If the commit
 * fails, every unit of the batch is rejected with store_unavailable. A unit's promise settles only
 * after its batch's COMMIT returned.
 *
 * A unit must rethrow every store error it meets (it may catch one only to throw another). The fast
 * pass runs without savepoints: a unit that swallowed a failed statement would leave the shared
 * transaction aborted (PostgreSQL) or half-written, and the batch would go on to commit — the store's
 * commit() must then refuse (PostgreSQL answers such a COMMIT with ROLLBACK; PostgresStore turns
 * that into store_unavailable), so every unit of the batch fails rather than one.
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
  /**
   * The last write failure, cleared by the next batch in which a unit committed: a batch that could
   * not commit (a full disk, a read-only file, a lost connection), or a unit refused audit_unavailable
   * or with a raw driver error. What /readyz reports (writable).
   */
  #writeFailure: unknown;
  /** When the first write of the current failure failed (ms since the epoch). */
  #writeFailureSince = 0;
  /** The probe write of writable(), while it runs. */
  #probe: Promise<boolean> | undefined;
  /** Observer of each committed batch (size, duration ms) — for metrics. */
  onBatch: ((size: number, durationMs: number) => void) | undefined;

  readonly #maxPending: number;
  readonly #maxBatchMs: number;
  readonly #maxQueueDelayMs: number;
  readonly #now: () => number;

  /**
   * @param maxBatch most units in one transaction
   * @param maxPending most units waiting; beyond it submit() refuses with `overloaded` instead of
   *   queueing without limit
   * @param maxBatchMs time budget of one batch: once its units have run this long, no further unit
   *   joins it (those wait for the next batch). A store whose units run synchronously (SQLite) sets
   *   it, so that one batch never holds the event loop for long: between two batches the loop
   *   reads new requests and answers the committed ones. Unbounded by default (a store whose
   *   statements are network round trips does not block the loop while a batch runs).
   * @param maxQueueDelayMs most time the oldest waiting unit may have waited; beyond it submit()
   *   refuses with `overloaded` (issue 14, point 5). A count alone does not bound the wait: at
   *   twice the rate the store commits, the 1,024 requests in flight the HTTP guard admits wait
   *   their turn for seconds on a slow machine (past a client's 10 s timeout, and the kernel then
   *   signs for clients that are gone, so it serves nobody for seconds after the load stops). A
   *   FIFO queue whose head has waited this long gives a new unit about as long a wait: it is
   *   refused rather than answered late. A backstop: the HTTP shell refuses new requests earlier,
   *   at 1 s (buildApp's maxQueueDelayMs, with queueDelayMs), before any work is done for them —
   *   a unit refused here has already been authenticated and derived for.
   * @param now the clock of the queue delay (ms, monotonic); tests pass their own
   */
  constructor(
    driver: BatchDriver,
    {
      maxBatch = 256,
      maxPending = 8192,
      maxBatchMs = Number.POSITIVE_INFINITY,
      maxQueueDelayMs = DEFAULT_MAX_QUEUE_DELAY_MS,
      now = () => performance.now(),
    }: { maxBatch?: number; maxPending?: number; maxBatchMs?: number; maxQueueDelayMs?: number; now?: () => number } = {},
  ) {
    this.#driver = driver;
    this.#maxBatch = maxBatch;
    this.#maxPending = maxPending;
    this.#maxBatchMs = maxBatchMs;
    this.#maxQueueDelayMs = maxQueueDelayMs;
    this.#now = now;
  }

  /** Units queued and not yet committed. */
  get pending(): number {
    return this.#queue.length;
  }

  /** How long the oldest queued unit has waited (ms; 0 when none waits). */
  get queueDelayMs(): number {
    const oldest = this.#queue[0];
    return oldest === undefined ? 0 : this.#now() - oldest.queuedAt;
  }

  submit<T>(work: (tx: StoreTx) => Promise<T>): Promise<T> {
    if (this.#closed) return Promise.reject(new CustosError('store_unavailable', 'the store is closed'));
    const now = this.#now();
    const oldest = this.#queue[0];
    if (this.#queue.length >= this.#maxPending || (oldest !== undefined && now - oldest.queuedAt > this.#maxQueueDelayMs)) {
      return Promise.reject(new CustosError('overloaded', 'too many requests wait for the store; retry later', { details: { retryAfterSeconds: 1 } }));
    }
    return new Promise<T>((resolve, reject) => {
      this.#queue.push({ work, queuedAt: now, resolve: resolve as (v: unknown) => void, reject });
      this.#schedule();
    });
  }

  /** The last write failure (see writable), undefined when the last batch that wrote committed. */
  get writeFailure(): unknown {
    return this.#writeFailure;
  }

  /**
   * Whether writes work (Store.writable, /readyz): true when no write failed since the last unit
   * that committed; otherwise appends a `sys.audit-resumed` audit record in a unit of its own — the
   * very write that failed, through the same chain, lock and COMMIT — and answers whether it
   * committed (which clears the failure). At most one probe at a time: concurrent callers share its
   * answer. A failed probe leaves nothing; a successful one leaves the record of when writing
   * resumed (after what failure, since when).
   */
  writable(): Promise<boolean> {
    if (this.#writeFailure === undefined) return Promise.resolve(true);
    const failure = this.#writeFailure;
    const since = this.#writeFailureSince;
    this.#probe ??= this.submit(async (tx) => {
      const code = failure instanceof CustosError ? failure.code : 'store_error';
      await tx.appendAudit({
        ts: Date.now(),
        appId: null,
        walletName: null,
        action: 'sys.audit-resumed',
        opHash: null,
        decision: 'allowed',
        reason: null,
        detail: { failure: code, failingSince: since },
      });
    }).then(
      () => true,
      () => false,
    );
    const running = this.#probe;
    void running.finally(() => {
      if (this.#probe === running) this.#probe = undefined;
    });
    return running;
  }

  /** Refuses new work and waits until every queued unit has settled. */
  async close(): Promise<void> {
    this.#closed = true;
    while (this.#running || this.#scheduled || this.#queue.length > 0) await new Promise((r) => setTimeout(r, 2));
  }

  #failed(error: unknown): void {
    if (this.#writeFailure === undefined) this.#writeFailureSince = Date.now();
    this.#writeFailure = error;
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
    /** When the units began to run: the time budget is theirs, not BEGIN's (a slow BEGIN must not shrink the batch). */
    let unitsStarted = started;
    // Only units queued when the batch starts may join it, at most maxBatch of them, and only while
    // the batch is within its time budget; the rest stay queued, in order, for the next batch.
    const limit = Math.min(this.#maxBatch, this.#queue.length);
    const batch: Pending[] = [];
    let results: UnitResult[] | undefined;
    let committed = false;
    try {
      // Fast pass, no savepoints: units almost never throw (a kernel denial is a return value that
      // commits its audit record; a throw is a store failure).
      let tx = await this.#driver.begin();
      unitsStarted = performance.now();
      results = [];
      /** The error of the unit that threw in the fast pass (the last of the batch), kept for its re-run. */
      let firstPassError: unknown;
      while (batch.length < limit && (batch.length === 0 || performance.now() - unitsStarted < this.#maxBatchMs)) {
        const unit = this.#queue.shift();
        if (unit === undefined) break;
        batch.push(unit);
        try {
          results.push({ ok: true, value: await unit.work(tx) });
        } catch (error) {
          firstPassError = error;
          results = undefined;
          break;
        }
      }
      if (results === undefined) {
        // A unit threw, possibly half-way through its writes: drop the whole transaction and run the
        // same units again, each in its own savepoint, so that only the failing one is undone.
        await this.#driver.rollback();
        tx = await this.#driver.begin();
        results = [];
        for (const [i, unit] of batch.entries()) {
          this.#driver.markUnit();
          await this.#driver.savepoint();
          try {
            const value = await unit.work(tx);
            await this.#driver.releaseSavepoint();
            // a unit that threw in the fast pass and succeeds now: its first error is dropped on
            // purpose — it was undone with the fast pass's rollback, and this run is what commits
            results.push({ ok: true, value });
          } catch (error) {
            await this.#driver.rollbackToSavepoint();
            results.push({ ok: false, error: i === batch.length - 1 ? withFirstPassError(error, firstPassError) : error });
          }
        }
      }
      await this.#driver.commit();
      committed = true;
    } catch (error) {
      await this.#driver.rollback();
      const failure = new CustosError('store_unavailable', 'the store transaction failed; nothing was committed', { cause: error });
      this.#failed(failure);
      // A batch that failed before its first unit (BEGIN) fails the units it would have run.
      if (batch.length === 0) batch.push(...this.#queue.splice(0, limit));
      for (const unit of batch) unit.reject(failure);
    }
    if (committed && results !== undefined) {
      this.stats.batches += 1;
      this.stats.units += batch.length;
      this.stats.lastBatchSize = batch.length;
      this.onBatch?.(batch.length, performance.now() - started);
      // a unit that committed shows writes work again; one refused for want of a write shows they do not
      const failed = results.find((r) => !r.ok && isWriteFailure(r.error));
      if (failed !== undefined && !failed.ok) this.#failed(failed.error);
      else if (results.some((r) => r.ok)) this.#writeFailure = undefined;
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

/**
 * A unit's error that shows the store could not write: audit_unavailable (the append failed), or a
 * raw driver error (not a CustosError: a statement of the unit failed). A unit's store_unavailable is
 * a race or a failed read (a row that vanished, a lock waited for too long), not taken as one; a
 * failed COMMIT always is (#flush).
 */
function isWriteFailure(error: unknown): boolean {
  if (!(error instanceof CustosError)) return true;
  return error.code === 'audit_unavailable';
}

/**
 * The error a unit is rejected with when it threw in the fast pass and again in its savepoint: the
 * re-run's. When the two differ, the fast pass's is kept as the re-run's `cause` (when it has none)
 * rather than lost: the first failure may be the real one (e.g. the one that broke the transaction).
 */
function withFirstPassError(error: unknown, firstPassError: unknown): unknown {
  if (firstPassError === undefined || firstPassError === error) return error;
  const same = String(firstPassError) === String(error);
  if (!same && error instanceof Error && error.cause === undefined) error.cause = firstPassError;
  return error;
}
