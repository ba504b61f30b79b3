import assert from 'node:assert/strict';
import type { PolicyUsageRecord, Store, WalletPolicyRecord } from '@custos/kernel';
import { APPROVAL_T0, type RunSql } from './exerciseApprovalStore.js';

function makePolicy(walletName: string, fields: Partial<WalletPolicyRecord> = {}): WalletPolicyRecord {
  return { walletName, tenant: 'tenant-a', policy: '{"maxSignaturesPerWindow":3}', updatedAt: APPROVAL_T0, mac: 'ab'.repeat(32), ...fields };
}

function makeUsage(n: number, fields: Partial<PolicyUsageRecord> = {}): PolicyUsageRecord {
  return { walletName: 'policy-a', auditSeq: n, ts: APPROVAL_T0 + n * 1000, amounts: `{"native:1":"${n}"}`, ...fields };
}

/**
 * Wallet policies and their usage (migration 12), on a fresh store: an override read back as written
 * (in a unit and unlocked, also through `second`: another connection or replica) and replaced whole;
 * usage rows of a wallet strictly after `since`, oldest first, no other wallet's, one per audit seq
 * (a second row for the same seq refused, the unit rolled back), deleted by age; times past 2^32 and
 * amounts of 78 digits kept exactly.
 */
export async function exercisePolicyStore(store: Store, second: Store): Promise<void> {
  await store.transact(async (tx) => {
    for (const name of ['policy-a', 'policy-b', 'Ünïcode ✓']) await tx.insertWallet({ name, tenant: 'tenant-a', createdAt: APPROVAL_T0, mac: null });
  });
  assert.equal(await store.readWalletPolicy('policy-a'), undefined);
  assert.equal(await store.transact((tx) => tx.getWalletPolicy('policy-a')), undefined);
  const first = makePolicy('policy-a');
  const unicode = makePolicy('Ünïcode ✓', { updatedAt: APPROVAL_T0 + 2 ** 33, policy: '{"destinations":["0x000000000000000000000000000000000000dead"]}' });
  await store.transact(async (tx) => {
    await tx.putWalletPolicy(first);
    await tx.putWalletPolicy(unicode);
  });
  assert.deepEqual(await store.transact((tx) => tx.getWalletPolicy('policy-a')), first);
  assert.deepEqual(await second.readWalletPolicy('policy-a'), first);
  assert.deepEqual(await second.readWalletPolicy('Ünïcode ✓'), unicode);
  assert.equal(await second.readWalletPolicy('policy-b'), undefined);
  // replaced whole
  const replaced = makePolicy('policy-a', { policy: '{}', updatedAt: APPROVAL_T0 + 5, mac: 'cd'.repeat(32), tenant: 'tenant-b' });
  await store.transact((tx) => tx.putWalletPolicy(replaced));
  assert.deepEqual(await second.readWalletPolicy('policy-a'), replaced);

  // usage
  const huge = `{"token:1:0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48":"${(2n ** 256n - 1n).toString()}"}`;
  const rows = [
    makeUsage(3),
    makeUsage(1),
    makeUsage(2, { amounts: huge }),
    makeUsage(4, { walletName: 'policy-b' }),
    makeUsage(5, { ts: APPROVAL_T0 + 2 ** 33 }),
  ];
  await store.transact(async (tx) => {
    for (const row of rows) await tx.insertPolicyUsage(row);
  });
  const ofA = [makeUsage(1), makeUsage(2, { amounts: huge }), makeUsage(3), makeUsage(5, { ts: APPROVAL_T0 + 2 ** 33 })];
  assert.deepEqual(await store.transact((tx) => tx.listPolicyUsage('policy-a', 0)), ofA);
  assert.deepEqual(await second.readPolicyUsage('policy-a', 0), ofA);
  // strictly after `since`
  assert.deepEqual(await second.readPolicyUsage('policy-a', APPROVAL_T0 + 2000), ofA.slice(2));
  assert.deepEqual(await second.readPolicyUsage('policy-b', 0), [makeUsage(4, { walletName: 'policy-b' })]);
  // one row per audit record: a second row for seq 1 is refused and its unit rolled back
  await assert.rejects(
    store.transact(async (tx) => {
      await tx.insertPolicyUsage(makeUsage(6));
      await tx.insertPolicyUsage(makeUsage(1, { walletName: 'policy-b' }));
    }),
  );
  assert.equal((await second.readPolicyUsage('policy-a', 0)).length, 4);
  // swept by age: strictly before
  assert.equal(await store.transact((tx) => tx.deletePolicyUsageBefore(APPROVAL_T0 + 2000)), 1);
  assert.deepEqual(
    (await second.readPolicyUsage('policy-a', 0)).map((r) => r.auditSeq),
    [2, 3, 5],
  );
}

/** After migration 12 on a store with rows: both tables empty, and they take rows. */
export async function exercisePolicyTablesAfterMigration(store: Store, sql: RunSql, walletName: string): Promise<void> {
  assert.deepEqual(await sql('SELECT * FROM wallet_policies'), []);
  assert.deepEqual(await sql('SELECT * FROM policy_usage'), []);
  const policy = makePolicy(walletName);
  await store.transact((tx) => tx.putWalletPolicy(policy));
  assert.deepEqual(await store.readWalletPolicy(walletName), policy);
  const usage = makeUsage(1000, { walletName });
  await store.transact((tx) => tx.insertPolicyUsage(usage));
  assert.deepEqual(await store.readPolicyUsage(walletName, 0), [usage]);
}
