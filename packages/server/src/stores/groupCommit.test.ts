// store-independent: opens no store; runs in the SQLite pass only (scripts/test.mjs)
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CustosError } from '@custos/kernel';
import { type BatchDriver, GroupCommit } from './groupCommit.js';

/** A driver that records the transaction-control calls it gets (no database: GroupCommit's own logic). */
function recordingDriver(): { driver: BatchDriver; calls: string[] } {
  const calls: string[] = [];
  const driver: BatchDriver = {
    begin: async () => {
      calls.push('begin');
      return {} as never;
    },
    savepoint: async () => {
      calls.push('savepoint');
    },
    releaseSavepoint: async () => {
      calls.push('release');
    },
    rollbackToSavepoint: async () => {
      calls.push('rollbackToSavepoint');
    },
    commit: async () => {
      calls.push('commit');
    },
    rollback: async () => {
      calls.push('rollback');
    },
    markUnit: () => undefined,
  };
  return { driver, calls };
}

function failureCode(commits: GroupCommit): string | undefined {
  const failure = commits.writeFailure;
  return failure === undefined ? undefined : (failure as CustosError).code;
}

describe('GroupCommit', () => {
  it('runs a batch without savepoints when no unit throws', async () => {
    const { driver, calls } = recordingDriver();
    const commits = new GroupCommit(driver);
    const values = await Promise.all(Array.from({ length: 5 }, (_, i) => commits.submit(async () => i)));
    assert.deepEqual(values, [0, 1, 2, 3, 4]);
    assert.deepEqual(calls, ['begin', 'commit']);
  });

  it('when a unit throws: rolls the batch back and runs the same units again, each in a savepoint; only the thrower fails', async () => {
    const { driver, calls } = recordingDriver();
    const commits = new GroupCommit(driver);
    const runs = [0, 0, 0];
    const settled = await Promise.allSettled(
      [0, 1, 2].map((i) =>
        commits.submit(async () => {
          runs[i] = (runs[i] ?? 0) + 1;
          if (i === 1) throw new CustosError('audit_unavailable', 'unit 1 fails');
          return i;
        }),
      ),
    );
    assert.deepEqual(
      settled.map((s) => (s.status === 'fulfilled' ? s.value : (s.reason as CustosError).code)),
      [0, 'audit_unavailable', 2],
    );
    // fast pass: units 0 and 1 (1 throws, 2 never starts); then 0 and 1 again, each in a savepoint,
    // committed; unit 2 runs once, in the next batch
    assert.deepEqual(runs, [2, 2, 1]);
    assert.deepEqual(calls, ['begin', 'rollback', 'begin', 'savepoint', 'release', 'savepoint', 'rollbackToSavepoint', 'commit', 'begin', 'commit']);
  });

  it('a batch stops taking units once its time budget is spent; the rest commit in the next batch, in order', async () => {
    const { driver } = recordingDriver();
    const commits = new GroupCommit(driver, { maxBatchMs: 5 });
    const sizes: number[] = [];
    commits.onBatch = (size) => sizes.push(size);
    const order: number[] = [];
    const busy = (ms: number) => {
      const end = performance.now() + ms;
      while (performance.now() < end);
    };
    const values = await Promise.all(
      Array.from({ length: 6 }, (_, i) =>
        commits.submit(async () => {
          order.push(i);
          busy(3); // a unit that holds the event loop for 3 ms
          return i;
        }),
      ),
    );
    assert.deepEqual(values, [0, 1, 2, 3, 4, 5]);
    assert.deepEqual(order, [0, 1, 2, 3, 4, 5]);
    // 3 ms units under a 5 ms budget: no batch takes a third unit (a preempted one may take only one)
    assert.ok(
      sizes.every((n) => n >= 1 && n <= 2),
      `batch sizes ${sizes.join(', ')}`,
    );
    assert.equal(
      sizes.reduce((a, b) => a + b, 0),
      6,
    );
  });

  it('the time budget starts after BEGIN: a slow BEGIN does not shrink the batch', async () => {
    const { driver, calls } = recordingDriver();
    const begin = driver.begin;
    driver.begin = async () => {
      await new Promise((r) => setTimeout(r, 30)); // BEGIN waits 30 ms for the write lock
      return begin();
    };
    const commits = new GroupCommit(driver, { maxBatchMs: 10 });
    const sizes: number[] = [];
    commits.onBatch = (size) => sizes.push(size);
    const values = await Promise.all(Array.from({ length: 5 }, (_, i) => commits.submit(async () => i)));
    assert.deepEqual(values, [0, 1, 2, 3, 4]);
    // instant units: all five fit the 10 ms budget of one batch (with the clock started before
    // BEGIN, every batch was over budget after its first unit: five batches of one)
    assert.deepEqual(sizes, [5]);
    assert.deepEqual(calls, ['begin', 'commit']);
  });

  it('a unit that throws in the fast pass and differently in its re-run keeps the first error as the cause', async () => {
    const { driver } = recordingDriver();
    const commits = new GroupCommit(driver);
    let runs = 0;
    const first = new Error('could not serialize access');
    const settled = await Promise.allSettled([
      commits.submit(async () => {
        runs += 1;
        if (runs === 1) throw first;
        throw new CustosError('audit_unavailable', 'the audit head moved');
      }),
    ]);
    const reason = (settled[0] as PromiseRejectedResult).reason as CustosError;
    assert.equal(runs, 2);
    assert.equal(reason.code, 'audit_unavailable', 'the re-run’s error is the one the caller gets');
    assert.equal(reason.cause, first, 'the fast pass’s error is not lost');
    // the same failure twice: nothing to add
    let again = 0;
    const twice = await Promise.allSettled([
      commits.submit(async () => {
        again += 1;
        throw new Error('disk I/O error');
      }),
    ]);
    assert.equal(again, 2);
    assert.equal(((twice[0] as PromiseRejectedResult).reason as Error).cause, undefined);
  });

  it('a BEGIN that fails rejects the units it would have run with store_unavailable (no retry loop)', async () => {
    const { driver } = recordingDriver();
    driver.begin = async () => {
      throw new Error('database is locked');
    };
    const commits = new GroupCommit(driver);
    const settled = await Promise.allSettled([commits.submit(async () => 1), commits.submit(async () => 2)]);
    for (const s of settled) assert.equal((s as PromiseRejectedResult).reason.code, 'store_unavailable');
    assert.equal(commits.pending, 0);
  });

  it('writable: false after a failed COMMIT or an audit_unavailable unit until a probe (a sys.audit-resumed append) or a unit commits', async () => {
    const { driver } = recordingDriver();
    let commitFails = false;
    driver.commit = async () => {
      if (commitFails) throw new Error('disk full');
    };
    let appendFails = false;
    const appended: Array<{ action: string; detail: Record<string, unknown> }> = [];
    driver.begin = async () =>
      ({
        appendAudit: async (entry: { action: string; detail: Record<string, unknown> }) => {
          if (appendFails) throw new CustosError('audit_unavailable', 'append failed');
          appended.push(entry);
          return entry;
        },
      }) as never;
    const commits = new GroupCommit(driver);
    assert.equal(await commits.writable(), true);
    assert.equal(appended.length, 0, 'no probe while writes work');

    // a COMMIT fails: not writable; the probe fails too while the COMMIT fails, and leaves nothing
    commitFails = true;
    await assert.rejects(
      commits.submit(async () => 1),
      (e: CustosError) => e.code === 'store_unavailable',
    );
    assert.equal(failureCode(commits), 'store_unavailable');
    assert.equal(await commits.writable(), false);
    // concurrent callers share one probe
    const before = appended.length;
    assert.deepEqual(await Promise.all([commits.writable(), commits.writable(), commits.writable()]), [false, false, false]);
    assert.equal(appended.length - before, 1, 'the three concurrent callers shared one probe (its append rolled back with the failed COMMIT)');
    commitFails = false;
    appended.length = 0;
    // writing works again: the next probe commits its record and clears the failure
    assert.equal(await commits.writable(), true);
    assert.equal(appended.length, 1);
    assert.equal(appended[0]?.action, 'sys.audit-resumed');
    assert.equal(appended[0]?.detail.failure, 'store_unavailable');
    assert.equal(typeof appended[0]?.detail.failingSince, 'number');
    assert.equal(failureCode(commits), undefined);
    assert.equal(await commits.writable(), true);
    assert.equal(appended.length, 1, 'no probe once writable');

    // an audit append refused (the batch commits without it): not writable; a unit that commits clears it
    appendFails = true;
    await assert.rejects(
      commits.submit(async (tx) => tx.appendAudit({} as never)),
      (e: CustosError) => e.code === 'audit_unavailable',
    );
    assert.equal(failureCode(commits), 'audit_unavailable');
    assert.equal(await commits.writable(), false);
    appendFails = false;
    assert.equal(await commits.submit(async () => 'done'), 'done');
    assert.equal(await commits.writable(), true);
  });

  it('writable: a unit refused with another CustosError (a kernel denial, a vanished row) is no write failure; a raw driver error is', async () => {
    const { driver } = recordingDriver();
    const commits = new GroupCommit(driver);
    for (const code of ['code_invalid', 'store_unavailable'] as const) {
      await assert.rejects(
        commits.submit(async () => {
          throw new CustosError(code, 'refused');
        }),
      );
      assert.equal(failureCode(commits), undefined, code);
    }
    assert.equal(await commits.writable(), true);
    await assert.rejects(
      commits.submit(async () => {
        throw new Error('SQLITE_FULL: database or disk is full');
      }),
    );
    assert.match(String(commits.writeFailure), /SQLITE_FULL/);
  });

  it('refuses new units overloaded while the oldest waiting one has waited over maxQueueDelayMs (queueDelayMs says how long)', async () => {
    const clock = { now: 0 };
    let unblock: () => void = () => undefined;
    const blocked = new Promise<void>((resolve) => {
      unblock = resolve;
    });
    const { driver } = recordingDriver();
    const commits = new GroupCommit({ ...driver, commit: () => blocked }, { maxQueueDelayMs: 1000, now: () => clock.now });
    const first = commits.submit(async () => 'first');
    await new Promise((resolve) => setImmediate(resolve));
    // the first batch is committing (blocked): these wait in the queue
    const waiting = commits.submit(async () => 'waiting');
    assert.equal(commits.queueDelayMs, 0);
    clock.now = 1000;
    assert.equal(commits.queueDelayMs, 1000);
    const atLimit = commits.submit(async () => 'at the limit');
    clock.now = 1001;
    await assert.rejects(
      commits.submit(async () => 'late'),
      (error: unknown) => error instanceof CustosError && error.code === 'overloaded',
    );
    unblock();
    assert.deepEqual(await Promise.all([first, waiting, atLimit]), ['first', 'waiting', 'at the limit']);
    assert.equal(commits.queueDelayMs, 0);
    assert.equal(await commits.submit(async () => 'again'), 'again', 'served again once the queue moved');
  });
});
