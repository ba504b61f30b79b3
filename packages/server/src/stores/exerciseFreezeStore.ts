import assert from 'node:assert/strict';
import type { AuditEntry, RecoveryCodesRecord, Store } from '@custos/kernel';
import { APPROVAL_T0 } from './exerciseApprovalStore.js';

// Migration 14 (wallet_freeze) as both stores must keep it: a wallet's freeze and owner link, the
// recovery codes row, the audit log by wallet — what the kernel writes is what it reads back, from
// this connection and another.

function entry(walletName: string | null, action: string, n: number): AuditEntry {
  return { ts: APPROVAL_T0 + n, appId: null, walletName, action, opHash: null, decision: 'allowed', reason: null, detail: { n } };
}

export async function exerciseFreezeStore(store: Store, second: Store): Promise<void> {
  await store.transact(async (tx) => {
    for (const name of ['freeze-alice', 'freeze-bob']) await tx.insertWallet({ name, tenant: 'tenant-a', createdAt: APPROVAL_T0, mac: 'ab'.repeat(32) });
  });
  const plain = { name: 'freeze-alice', tenant: 'tenant-a', createdAt: APPROVAL_T0, mac: 'ab'.repeat(32) };
  // A wallet never frozen reads as before (no frozenAt member).
  for (const s of [store, second]) {
    assert.deepEqual(await s.transact((tx) => tx.getWalletForUpdate('freeze-alice')), plain);
    assert.deepEqual((await s.readWalletRows('freeze-alice')).wallet, plain);
  }

  // -- freeze: frozen_at and the MAC written together; read locked, unlocked, listed; cleared again
  const frozenAt = APPROVAL_T0 + 2 ** 33;
  await store.transact((tx) => tx.setWalletFrozen('freeze-alice', frozenAt, 'cd'.repeat(32)));
  const frozen = { ...plain, mac: 'cd'.repeat(32), frozenAt };
  for (const s of [store, second]) {
    assert.deepEqual(await s.transact((tx) => tx.getWalletForUpdate('freeze-alice')), frozen);
    assert.deepEqual((await s.readWalletRows('freeze-alice')).wallet, frozen);
  }
  assert.deepEqual((await store.transact((tx) => tx.listWalletRows())).find((r) => r.wallet.name === 'freeze-alice')?.wallet, frozen);
  await assert.rejects(store.transact((tx) => tx.setWalletFrozen('freeze-nobody', frozenAt, 'cd'.repeat(32))));
  await store.transact((tx) => tx.setWalletFrozen('freeze-alice', null, 'ef'.repeat(32)));
  assert.deepEqual(await second.transact((tx) => tx.getWalletForUpdate('freeze-alice')), { ...plain, mac: 'ef'.repeat(32) });

  // -- the owner link: the kernel's hash always wins (a value planted in the column is replaced), found by its hash only, unique
  const link = '12'.repeat(32);
  await store.transact((tx) => tx.setWalletOwnerLink('freeze-alice', '34'.repeat(32)));
  await store.transact((tx) => tx.setWalletOwnerLink('freeze-alice', link));
  await store.transact((tx) => tx.setWalletOwnerLink('freeze-alice', link));
  for (const s of [store, second]) {
    assert.equal((await s.readWalletByOwnerLink(link))?.name, 'freeze-alice');
    assert.equal((await s.transact((tx) => tx.getWalletByOwnerLinkForUpdate(link)))?.name, 'freeze-alice');
    assert.equal(await s.readWalletByOwnerLink('34'.repeat(32)), undefined);
  }
  await assert.rejects(
    store.transact((tx) => tx.setWalletOwnerLink('freeze-bob', link)),
    'one link hash, one wallet',
  );

  // -- recovery codes: put, read back locked from both, replaced whole
  const codes: RecoveryCodesRecord = {
    walletName: 'freeze-alice',
    codes: JSON.stringify([{ tag: 'aa'.repeat(32), usedAt: null }]),
    failures: 0,
    windowStart: APPROVAL_T0,
    createdAt: APPROVAL_T0 + 2 ** 33,
    mac: 'cd'.repeat(32),
  };
  assert.equal(await store.transact((tx) => tx.getRecoveryCodesForUpdate('freeze-alice')), undefined);
  await store.transact((tx) => tx.putRecoveryCodes(codes));
  const changed = {
    ...codes,
    codes: JSON.stringify([{ tag: 'aa'.repeat(32), usedAt: APPROVAL_T0 + 5 }]),
    failures: 3,
    windowStart: APPROVAL_T0 + 9,
    mac: 'ef'.repeat(32),
  };
  for (const s of [store, second]) assert.deepEqual(await s.transact((tx) => tx.getRecoveryCodesForUpdate('freeze-alice')), codes);
  await second.transact((tx) => tx.putRecoveryCodes(changed));
  assert.deepEqual(await store.transact((tx) => tx.getRecoveryCodesForUpdate('freeze-alice')), changed);

  // -- the audit log by wallet: newest first, bounded, before a seq
  const seqs: number[] = [];
  await store.transact(async (tx) => {
    for (let i = 0; i < 5; i++) seqs.push((await tx.appendAudit(entry(i % 2 === 0 ? 'freeze-alice' : 'freeze-bob', 'sign.hash', i))).seq);
    await tx.appendAudit(entry(null, 'store.other', 9));
  });
  const alice = seqs.filter((_, i) => i % 2 === 0);
  for (const s of [store, second]) {
    assert.deepEqual(
      (await s.readWalletAudit('freeze-alice', 10)).map((r) => r.seq),
      [...alice].reverse(),
    );
    assert.deepEqual(
      (await s.readWalletAudit('freeze-alice', 2)).map((r) => r.seq),
      [...alice].reverse().slice(0, 2),
    );
    assert.deepEqual(
      (await s.readWalletAudit('freeze-alice', 10, alice[2])).map((r) => r.seq),
      [alice[1], alice[0]],
    );
    assert.deepEqual((await s.readWalletAudit('freeze-alice', 1))[0]?.detail, { n: 4 });
  }
}
