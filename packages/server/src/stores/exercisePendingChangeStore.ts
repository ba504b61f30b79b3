import assert from 'node:assert/strict';
import { CustosError, type PendingChangeRecord, type Store } from '@custos/kernel';
import { APPROVAL_T0, type RunSql } from './exerciseApprovalStore.js';
import { makeOobChannel } from './exerciseOobStore.js';

/** A pending change row (migration 13) with every field set; `fields` overrides. */
export function makePendingChange(n: number, fields: Partial<PendingChangeRecord> = {}): PendingChangeRecord {
  return {
    id: n.toString(16).padStart(32, '0'),
    tenant: 'tenant-a',
    apiKeyId: 'key-a',
    walletName: 'tl-alice',
    kind: '2fa.disable',
    payload: '{}',
    capabilityHash: `c${n}`.padEnd(64, '0'),
    noticeCapabilityHash: `d${n}`.padEnd(64, '0'),
    state: 'requested',
    createdAt: APPROVAL_T0 + n,
    expiresAt: APPROVAL_T0 + 2 ** 33 + n,
    effectiveAt: null,
    decidedAt: null,
    reminders: 0,
    cancelFailures: 0,
    consent: null,
    mac: 'ab'.repeat(32),
    ...fields,
  };
}

const isCode = (code: string) => (error: unknown) => error instanceof CustosError && error.code === code;

/**
 * The store's half of timelocked changes (migration 13): rows read back as written, locked and
 * unlocked, from both connections; by page or notice capability; the open ones of a wallet; the due
 * ones in order; updates; safe addresses upserted; factor rows deleted one at a time.
 */
export async function exercisePendingChangeStore(store: Store, second: Store): Promise<void> {
  const T = APPROVAL_T0;
  const requested = makePendingChange(1);
  const pending = makePendingChange(2, { state: 'pending', effectiveAt: T + 100, consent: '{"factor":"totp"}', reminders: 1 });
  const later = makePendingChange(3, { state: 'pending', effectiveAt: T + 50, apiKeyId: null });
  const other = makePendingChange(4, { walletName: 'tl-bob', state: 'applied', effectiveAt: T, decidedAt: T + 1 });
  await store.transact(async (tx) => {
    for (const r of [requested, pending, later, other]) await tx.insertPendingChange(r);
  });
  await assert.rejects(
    store.transact((tx) => tx.insertPendingChange(makePendingChange(1))),
    'one row per id',
  );
  await assert.rejects(
    store.transact((tx) => tx.insertPendingChange(makePendingChange(9, { capabilityHash: requested.capabilityHash }))),
    'one row per capability',
  );
  for (const s of [store, second]) {
    assert.deepEqual(await s.readPendingChange(pending.id), pending);
    assert.deepEqual(await s.readPendingChangeByCapability(pending.capabilityHash), pending);
    assert.deepEqual(await s.readPendingChangeByCapability(pending.noticeCapabilityHash), pending);
    assert.deepEqual(await s.transact((tx) => tx.getPendingChangeForUpdate(later.id)), later);
    assert.deepEqual(await s.transact((tx) => tx.getPendingChangeByCapabilityForUpdate(requested.noticeCapabilityHash)), requested);
  }
  assert.equal(await store.readPendingChange('f'.repeat(32)), undefined);
  assert.equal(await store.readPendingChangeByCapability('e'.repeat(64)), undefined);
  assert.deepEqual(await store.transact((tx) => tx.listOpenPendingChangesOfWallet('tl-alice')), [requested, pending, later]);
  assert.deepEqual(await store.transact((tx) => tx.listOpenPendingChangesOfWallet('tl-bob')), []);
  // due by: pending only, by effectiveAt then id, at most `limit`
  assert.deepEqual(await store.transact((tx) => tx.listPendingChangesDueBy(T + 100, 10)), [later, pending]);
  assert.deepEqual(await store.transact((tx) => tx.listPendingChangesDueBy(T + 99, 10)), [later]);
  assert.deepEqual(await store.transact((tx) => tx.listPendingChangesDueBy(T + 100, 1)), [later]);
  // keyset paging after (effectiveAt, id): a tie on effectiveAt is ordered by id, never skipped nor repeated
  const tie = makePendingChange(5, { walletName: 'tl-dave', state: 'pending', effectiveAt: T + 100 });
  await store.transact((tx) => tx.insertPendingChange(tie));
  const dueAfter = (by: number, limit: number, row: PendingChangeRecord | { effectiveAt: number; id: string }) =>
    store.transact((tx) => tx.listPendingChangesDueBy(by, limit, { effectiveAt: row.effectiveAt as number, id: row.id }));
  assert.deepEqual(await store.transact((tx) => tx.listPendingChangesDueBy(T + 100, 10)), [later, pending, tie]);
  assert.deepEqual(await dueAfter(T + 100, 10, later), [pending, tie]);
  assert.deepEqual(await dueAfter(T + 100, 1, later), [pending]);
  assert.deepEqual(await dueAfter(T + 100, 10, pending), [tie]);
  assert.deepEqual(await dueAfter(T + 100, 10, tie), []);
  assert.deepEqual(await dueAfter(T + 100, 10, { effectiveAt: T + 100, id: '0' }), [pending, tie]);
  assert.deepEqual(await dueAfter(T + 99, 10, later), []);
  assert.deepEqual(await dueAfter(T + 100, 10, { effectiveAt: T, id: 'f'.repeat(32) }), [later, pending, tie]);
  const change = {
    state: 'cancelled' as const,
    effectiveAt: T + 100,
    decidedAt: T + 2 ** 40,
    reminders: 2,
    cancelFailures: 3,
    consent: '{"x":1}',
    mac: 'ef'.repeat(32),
  };
  await store.transact((tx) => tx.updatePendingChange(pending.id, change));
  assert.deepEqual(await second.readPendingChange(pending.id), { ...pending, ...change });
  await assert.rejects(
    store.transact((tx) => tx.updatePendingChange('f'.repeat(32), change)),
    isCode('store_unavailable'),
  );
  assert.deepEqual(await store.transact((tx) => tx.listOpenPendingChangesOfWallet('tl-alice')), [requested, later]);

  // safe addresses: none, set, replaced
  assert.equal(await store.transact((tx) => tx.getSafeAddressForUpdate('tl-alice')), undefined);
  const safe = { walletName: 'tl-alice', address: `0x${'ab'.repeat(20)}`, updatedAt: T + 2 ** 33, mac: 'cd'.repeat(32) };
  await store.transact((tx) => tx.putSafeAddress(safe));
  assert.deepEqual(await second.transact((tx) => tx.getSafeAddressForUpdate('tl-alice')), safe);
  const moved = { ...safe, address: `0x${'cd'.repeat(20)}`, updatedAt: T + 5, mac: 'ef'.repeat(32) };
  await store.transact((tx) => tx.putSafeAddress(moved));
  assert.deepEqual(await second.transact((tx) => tx.getSafeAddressForUpdate('tl-alice')), moved);

  // factor rows deleted one at a time; a row that is not there fails the unit
  await store.transact(async (tx) => {
    await tx.insertWallet({ name: 'tl-carol', tenant: 'tenant-a', createdAt: T, mac: null });
    await tx.insertTotpFactor({
      walletName: 'tl-carol',
      enrolledVia: 'api',
      secretEnvelope: '{"sealed":"tl-carol"}',
      lastAcceptedStep: null,
      failures: 0,
      lockedUntilMs: null,
      createdAt: T,
      mac: 'ab'.repeat(32),
    });
    await tx.insertOobChannel(makeOobChannel('tl-carol'));
  });
  await store.transact((tx) => tx.deleteFactorRow('totp', 'tl-carol', 'totp'));
  assert.equal((await second.readWalletRows('tl-carol')).totp, undefined);
  assert.ok((await second.readWalletRows('tl-carol')).oob);
  await assert.rejects(
    store.transact((tx) => tx.deleteFactorRow('totp', 'tl-carol', 'totp')),
    isCode('store_unavailable'),
  );
  await assert.rejects(
    store.transact((tx) => tx.deleteFactorRow('passkey', 'tl-carol', 'no-such-credential')),
    isCode('store_unavailable'),
  );
  await store.transact((tx) => tx.deleteFactorRow('oob', 'tl-carol', 'oob'));
  assert.equal((await second.readWalletRows('tl-carol')).oob, undefined);
}

/** After migration 13 on a store with rows: the new tables are empty, and a change and a safe address round-trip. */
export async function exercisePendingChangesAfterMigration(store: Store, sql: RunSql): Promise<void> {
  assert.deepEqual(await sql('SELECT * FROM pending_changes'), []);
  assert.deepEqual(await sql('SELECT * FROM wallet_safe_addresses'), []);
  const record = makePendingChange(7);
  await store.transact((tx) => tx.insertPendingChange(record));
  assert.deepEqual(await store.readPendingChange(record.id), record);
}
