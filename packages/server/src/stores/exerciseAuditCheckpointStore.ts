import assert from 'node:assert/strict';
import { AUDIT_GENESIS_HASH, type AuditCheckpoint, type AuditEntry, CustosError, type Store } from '@custos/kernel';

function entry(i: number): AuditEntry {
  return { ts: 2_000 + i, appId: 'app', walletName: `c${i}`, action: 'test', opHash: null, decision: 'allowed', reason: null, detail: { i } };
}

function checkpoint(seq: number, headHash: string): AuditCheckpoint {
  return {
    format: 'custos.audit-checkpoint',
    version: 1,
    signerId: 's',
    seq,
    headHash,
    ts: 1_700_000_000_000 + seq,
    publicKey: 'ab'.repeat(32),
    signature: 'cd'.repeat(64),
  };
}

/**
 * The audit checkpoint methods of a store (both stores run it on a fresh database): the head a unit
 * sees, one checkpoint per seq (a second of the same seq writes nothing, also from another store on
 * the same database), rolled back with its unit, read back member for member in seq order.
 * `second` is another store on the same database (another process or replica).
 */
export async function exerciseAuditCheckpointStore(store: Store, second: Store): Promise<void> {
  assert.deepEqual(await store.readAuditCheckpoints(1, 10), []);
  assert.deepEqual(await store.transact(async (tx) => ({ head: await tx.auditHead(), latest: await tx.latestAuditCheckpointSeq() })), {
    head: { seq: 0, hash: AUDIT_GENESIS_HASH },
    latest: 0,
  });
  // the head a unit sees includes what the unit (and its batch) appended
  const third = await store.transact(async (tx) => {
    for (const i of [1, 2]) await tx.appendAudit(entry(i));
    const record = await tx.appendAudit(entry(3));
    assert.deepEqual(await tx.auditHead(), { seq: 3, hash: record.hash });
    return record;
  });
  const first = checkpoint(3, third.hash);
  assert.equal(await store.transact((tx) => tx.appendAuditCheckpoint(first)), true);
  assert.equal(await store.transact((tx) => tx.appendAuditCheckpoint({ ...first, ts: first.ts + 1 })), false, 'one per seq');
  assert.equal(await second.transact((tx) => tx.appendAuditCheckpoint({ ...first, ts: first.ts + 2 })), false, 'one per seq, across stores');
  // a unit that fails takes its checkpoint with it
  await assert.rejects(
    store.transact(async (tx) => {
      await tx.appendAuditCheckpoint(checkpoint(9, 'ef'.repeat(32)));
      throw new CustosError('internal', 'unit fails after writing');
    }),
    { code: 'internal' },
  );
  // two stores racing for the same seq: exactly one writes
  const head = await store.transact(async (tx) => tx.appendAudit(entry(4)));
  const raced = await Promise.all([store, second].map((s, i) => s.transact((tx) => tx.appendAuditCheckpoint({ ...checkpoint(4, head.hash), ts: i }))));
  assert.deepEqual(raced.sort(), [false, true]);
  assert.equal(await second.transact((tx) => tx.latestAuditCheckpointSeq()), 4);
  const stored = await second.readAuditCheckpoints(1, 10);
  assert.deepEqual(stored[0], first);
  assert.deepEqual(
    stored.map((c) => c.seq),
    [3, 4],
  );
  assert.deepEqual(await store.readAuditCheckpoints(4, 10), stored.slice(1));
  assert.deepEqual(await store.readAuditCheckpoints(1, 1), [first]);
}
