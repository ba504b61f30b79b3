import assert from 'node:assert/strict';
import type { RpcAccountRecord, RpcRequestRecord, Store } from '@custos/kernel';
import { APPROVAL_T0, type RunSql } from './exerciseApprovalStore.js';

/** An address-book entry numbered n of a tenant: its address derives from n, every other field from `fields`. */
export function makeRpcAccount(n: number, fields: Partial<RpcAccountRecord> = {}): RpcAccountRecord {
  return {
    tenant: 'tenant-a',
    address: `0x${n.toString(16).padStart(40, '0')}`,
    walletName: `wallet-${n}`,
    keyIndex: n,
    createdAt: APPROVAL_T0 + n,
    ...fields,
  };
}

function makeRpcRequest(n: number, fields: Partial<RpcRequestRecord> = {}): RpcRequestRecord {
  return {
    tenant: 'tenant-a',
    requestKey: n.toString(16).padStart(64, '0'),
    approvalId: `${n.toString(16).padStart(2, '0')}`.repeat(16),
    operation: `{"transaction":{"nonce":${n}}}`,
    createdAt: APPROVAL_T0 + n,
    ...fields,
  };
}

/**
 * The JSON-RPC signer's rows (migration 9), on a fresh store: address-book entries read back as
 * written (also through `second`: another connection or replica), key indexes up to 2^31 - 1 and
 * times past 2^32; one address per tenant (a second insert writes nothing and answers false, the
 * unit still usable), the same address in two tenants; a tenant's book in insertion order (then by
 * address), paged after a cursor, no other tenant's entries; requests stored, replaced by a newer
 * approval, forgotten only under their own approval id, and swept by age.
 */
export async function exerciseRpcStore(store: Store, second: Store): Promise<void> {
  assert.equal(await store.readRpcAccount('tenant-a', makeRpcAccount(1).address), undefined);
  assert.deepEqual(await store.listRpcAccounts('tenant-a', 10), []);

  // -- the book: round trip, extremes, one address per tenant
  const tie = APPROVAL_T0 + 2 ** 33;
  const a3 = makeRpcAccount(3, { createdAt: tie, keyIndex: 2 ** 31 - 1, walletName: 'Ünïcode wallet ✓' });
  const a2 = makeRpcAccount(2, { createdAt: tie });
  const a1 = makeRpcAccount(1);
  const other = makeRpcAccount(2, { tenant: 'tenant-b', walletName: 'b-wallet', createdAt: APPROVAL_T0 });
  assert.deepEqual(
    await store.transact(async (tx) => [
      await tx.insertRpcAccount(a3),
      await tx.insertRpcAccount(a2),
      await tx.insertRpcAccount(a1),
      await tx.insertRpcAccount(other),
    ]),
    [true, true, true, true],
  );
  assert.equal(
    await store.transact(async (tx) => {
      const again = await tx.insertRpcAccount({ ...a1, walletName: 'changed', keyIndex: 9, createdAt: 1 });
      await tx.insertRpcAccount(makeRpcAccount(4)); // the unit goes on after the refused insert
      return again;
    }),
    false,
  );
  const a4 = makeRpcAccount(4);
  for (const s of [store, second]) {
    assert.deepEqual(await s.readRpcAccount('tenant-a', a1.address), a1, 'unchanged by the second insert');
    assert.deepEqual(await s.readRpcAccount('tenant-a', a3.address), a3);
    assert.deepEqual(await s.readRpcAccount('tenant-b', other.address), other);
    assert.equal(await s.readRpcAccount('tenant-b', a1.address), undefined, 'another tenant’s entry');
    // insertion order (createdAt), then the address; a page and the pages after it
    assert.deepEqual(await s.listRpcAccounts('tenant-a', 10), [a1, a4, a2, a3]);
    assert.deepEqual(await s.listRpcAccounts('tenant-a', 2), [a1, a4]);
    assert.deepEqual(await s.listRpcAccounts('tenant-a', 2, { createdAt: a4.createdAt, address: a4.address }), [a2, a3]);
    assert.deepEqual(await s.listRpcAccounts('tenant-a', 10, { createdAt: tie, address: a2.address }), [a3], 'after a tie on createdAt, by address');
    assert.deepEqual(await s.listRpcAccounts('tenant-a', 10, { createdAt: tie, address: a3.address }), []);
    assert.deepEqual(await s.listRpcAccounts('tenant-b', 10), [other]);
  }

  // -- the waiting requests
  const r1 = makeRpcRequest(1);
  const r2 = makeRpcRequest(2);
  const rOther = makeRpcRequest(1, { tenant: 'tenant-b', approvalId: 'ee'.repeat(16) });
  await store.transact(async (tx) => {
    await tx.putRpcRequest(r1);
    await tx.putRpcRequest(r2);
    await tx.putRpcRequest(rOther);
  });
  assert.deepEqual(await second.readRpcRequest('tenant-a', r1.requestKey), r1);
  assert.deepEqual(await second.readRpcRequest('tenant-b', r1.requestKey), rOther, 'the same key in another tenant is another request');
  // a newer approval for the same request replaces the stored one
  const newer = { ...r1, approvalId: 'ab'.repeat(16), operation: '{"transaction":{"nonce":7}}', createdAt: APPROVAL_T0 + 100 };
  await store.transact((tx) => tx.putRpcRequest(newer));
  assert.deepEqual(await second.readRpcRequest('tenant-a', r1.requestKey), newer);
  // forgotten only under its own approval id (an older approval's answer does not forget the newer one)
  await store.transact((tx) => tx.deleteRpcRequest('tenant-a', r1.requestKey, r1.approvalId));
  assert.deepEqual(await store.readRpcRequest('tenant-a', r1.requestKey), newer);
  await store.transact((tx) => tx.deleteRpcRequest('tenant-a', r1.requestKey, newer.approvalId));
  assert.equal(await store.readRpcRequest('tenant-a', r1.requestKey), undefined);
  assert.deepEqual(await store.readRpcRequest('tenant-b', r1.requestKey), rOther, 'another tenant’s request is kept');
  // swept by age, every tenant's
  assert.equal(await store.transact((tx) => tx.deleteRpcRequestsBefore(APPROVAL_T0 + 2)), 1);
  assert.equal(await store.readRpcRequest('tenant-b', r1.requestKey), undefined);
  assert.deepEqual(await store.readRpcRequest('tenant-a', r2.requestKey), r2);
}

/** After migration 9: the JSON-RPC tables are there, empty, and work. */
export async function exerciseRpcTablesAfterMigration(store: Store, sql: RunSql): Promise<void> {
  assert.deepEqual(await sql('SELECT * FROM rpc_accounts'), []);
  assert.deepEqual(await sql('SELECT * FROM rpc_requests'), []);
  const account = makeRpcAccount(5);
  await store.transact((tx) => tx.insertRpcAccount(account));
  assert.deepEqual(await store.listRpcAccounts(account.tenant, 10), [account]);
  const request = makeRpcRequest(5);
  await store.transact((tx) => tx.putRpcRequest(request));
  assert.deepEqual(await store.readRpcRequest(request.tenant, request.requestKey), request);
}
