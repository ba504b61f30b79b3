import assert from 'node:assert/strict';
import { CustosError, type EnrollmentLinkRecord, type EnrollmentLinkState, type Store } from '@custos/kernel';
import { APPROVAL_T0 } from './exerciseApprovalStore.js';

/** An enrolment link numbered n: its id and capability hash derive from n, every other field from `fields`. */
export function makeEnrollmentLink(n: number, fields: Partial<EnrollmentLinkRecord> = {}): EnrollmentLinkRecord {
  const suffix = n.toString(16).padStart(8, '0');
  return {
    id: `${'e0'.repeat(12)}${suffix}`,
    tenant: 'tenant-a',
    apiKeyId: 'key-a',
    walletName: 'alice',
    kind: 'totp',
    capabilityHash: `${'c2'.repeat(28)}${suffix}`,
    state: 'pending',
    createdAt: APPROVAL_T0 + n,
    expiresAt: APPROVAL_T0 + 86_400_000,
    completedAt: null,
    secretEnvelope: `{"sealed":${n}}`,
    pending: 'null',
    failures: 0,
    mac: `${'df'.repeat(28)}${suffix}`,
    ...fields,
  };
}

function isCheckViolation(error: unknown): boolean {
  const code = typeof error === 'object' && error !== null && 'code' in error ? error.code : undefined;
  return code === 'SQLITE_CONSTRAINT_CHECK' || code === '23514';
}

const byCapability = (store: Store, capabilityHash: string) => store.transact((tx) => tx.getEnrollmentLinkByCapabilityForUpdate(capabilityHash));
const pendingOf = (store: Store, walletName: string) =>
  store.transact(async (tx) => (await tx.listPendingEnrollmentLinksOfWallet(walletName)).map((r) => r.id));

/**
 * The enrolment link operations of a store (both stores run it on a fresh database): every field read
 * back as written (also through `second`), a duplicate id or capability refused without writing, the
 * CHECKs, the pending links of a wallet oldest first, updates of one row, a missing row throwing.
 */
export async function exerciseEnrollmentLinkStore(store: Store, second: Store): Promise<void> {
  // -- round trip: every field, set and null, numbers as numbers
  const full = makeEnrollmentLink(1, {
    tenant: 'tenant-ü',
    walletName: 'wallet ‮ with "quotes" and\nnewline',
    state: 'completed',
    createdAt: APPROVAL_T0,
    expiresAt: APPROVAL_T0 + 604_800_000,
    completedAt: APPROVAL_T0 + 1_234,
    pending: '{"challenge":"AbC-_9"}',
    failures: 4,
  });
  const bare = makeEnrollmentLink(2, { secretEnvelope: null });
  assert.equal(
    await store.transact(async (tx) => {
      await tx.insertEnrollmentLink(full);
      await tx.insertEnrollmentLink(bare);
      return (await tx.getEnrollmentLinkByCapabilityForUpdate(full.capabilityHash))?.mac; // a unit reads its own writes
    }),
    full.mac,
  );
  for (const record of [full, bare]) {
    assert.deepEqual(await byCapability(store, record.capabilityHash), record);
    assert.deepEqual(await byCapability(second, record.capabilityHash), record, 'committed: another connection reads it');
  }
  assert.equal(await byCapability(store, makeEnrollmentLink(999).capabilityHash), undefined);
  assert.equal(await byCapability(store, full.capabilityHash.toUpperCase()), undefined, 'matched exactly');
  assert.equal(await byCapability(store, full.capabilityHash.slice(0, 63)), undefined);

  // -- uniqueness: a taken id or capability hash is refused; nothing is written; the unit stays usable
  const sameId = makeEnrollmentLink(3, { id: bare.id, walletName: 'mallory' });
  const sameCapability = makeEnrollmentLink(4, { capabilityHash: bare.capabilityHash, walletName: 'mallory' });
  for (const duplicate of [sameId, sameCapability])
    await assert.rejects(
      store.transact((tx) => tx.insertEnrollmentLink(duplicate)),
      (e: unknown) => e instanceof CustosError && e.code === 'internal',
    );
  await assert.rejects(
    second.transact((tx) => tx.insertEnrollmentLink(sameCapability)),
    { code: 'internal' },
  );
  assert.deepEqual(await byCapability(store, bare.capabilityHash), bare, 'the stored link is untouched');
  assert.equal(await byCapability(store, sameId.capabilityHash), undefined);
  const afterRefusal = makeEnrollmentLink(5, { walletName: 'bob' });
  await store.transact(async (tx) => {
    await assert.rejects(tx.insertEnrollmentLink(sameId), { code: 'internal' });
    await tx.insertEnrollmentLink(afterRefusal);
  });
  assert.deepEqual(await byCapability(store, afterRefusal.capabilityHash), afterRefusal);

  // -- the CHECKs refuse what no EnrollmentLinkRecord holds
  for (const bad of [
    makeEnrollmentLink(6, { state: 'done' as EnrollmentLinkState }),
    makeEnrollmentLink(7, { failures: -1 }),
    makeEnrollmentLink(8, { state: 'consumed' as EnrollmentLinkState }),
  ]) {
    await assert.rejects(
      store.transact((tx) => tx.insertEnrollmentLink(bad)),
      isCheckViolation,
    );
    assert.equal(await byCapability(store, bad.capabilityHash), undefined);
  }

  // -- a failing unit takes its link with it
  const rolledBack = makeEnrollmentLink(9);
  await assert.rejects(
    store.transact(async (tx) => {
      await tx.insertEnrollmentLink(rolledBack);
      throw new CustosError('code_invalid', 'unit fails after writing');
    }),
    { code: 'code_invalid' },
  );
  assert.equal(await byCapability(store, rolledBack.capabilityHash), undefined);

  // -- the pending links of a wallet (expired or not), oldest first (created_at, then id)
  const T = APPROVAL_T0;
  const carol = [
    makeEnrollmentLink(0x20, { walletName: 'carol', createdAt: T + 50 }),
    makeEnrollmentLink(0x22, { walletName: 'carol', createdAt: T + 10 }), // tie on created_at: lower id first
    makeEnrollmentLink(0x21, { walletName: 'carol', createdAt: T + 10, expiresAt: T - 1 }), // expired but still pending
    makeEnrollmentLink(0x23, { walletName: 'carol', createdAt: T, state: 'cancelled', completedAt: T + 10 }),
    makeEnrollmentLink(0x24, { walletName: 'carol', createdAt: T, state: 'failed', completedAt: T + 10, failures: 5 }),
    makeEnrollmentLink(0x25, { walletName: 'carol', createdAt: T, state: 'completed', completedAt: T + 10 }),
    makeEnrollmentLink(0x26, { walletName: 'carol', createdAt: T, state: 'expired' }),
    makeEnrollmentLink(0x27, { walletName: 'Carol', createdAt: T }),
    makeEnrollmentLink(0x28, { walletName: 'carol ', createdAt: T, tenant: 'tenant-b' }),
  ];
  await store.transact(async (tx) => {
    for (const record of carol) await tx.insertEnrollmentLink(record);
  });
  const expected = [carol[2], carol[1], carol[0]].map((r) => r?.id);
  assert.deepEqual(await pendingOf(store, 'carol'), expected);
  assert.deepEqual(await pendingOf(second, 'carol'), expected);
  assert.deepEqual(await pendingOf(store, 'Carol'), [carol[7]?.id], 'matched exactly');
  assert.deepEqual(await pendingOf(store, 'nobody'), []);
  assert.deepEqual(await store.transact((tx) => tx.listPendingEnrollmentLinksOfWallet('carol')), [carol[2], carol[1], carol[0]], 'whole records');

  // -- updateEnrollmentLink: the step's four fields of one row, nothing else
  const failedOnce = { state: 'pending' as const, completedAt: null, failures: 1, mac: '11'.repeat(32) };
  await store.transact((tx) => tx.updateEnrollmentLink(bare.id, failedOnce));
  assert.deepEqual(await byCapability(second, bare.capabilityHash), { ...bare, ...failedOnce });
  const completed = { state: 'completed' as const, completedAt: T + 2 ** 33, failures: 1, mac: '22'.repeat(32) };
  await store.transact((tx) => tx.updateEnrollmentLink(carol[1]?.id ?? '', completed));
  assert.deepEqual(await byCapability(store, carol[1]?.capabilityHash ?? ''), { ...carol[1], ...completed });
  assert.deepEqual(await pendingOf(store, 'carol'), [carol[2]?.id, carol[0]?.id], 'a completed link is no longer pending');
  assert.deepEqual(await byCapability(store, afterRefusal.capabilityHash), afterRefusal, 'another row is untouched');
  // a missing id throws, and the unit's other writes are undone with it
  const undone = makeEnrollmentLink(10);
  await assert.rejects(
    store.transact(async (tx) => {
      await tx.insertEnrollmentLink(undone);
      await tx.updateEnrollmentLink(makeEnrollmentLink(999).id, completed);
    }),
    { code: 'store_unavailable' },
  );
  assert.equal(await byCapability(store, undone.capabilityHash), undefined);
  // a state outside the five is refused by the CHECK on update too
  await assert.rejects(
    store.transact((tx) => tx.updateEnrollmentLink(bare.id, { ...failedOnce, state: 'approved' as EnrollmentLinkState })),
    isCheckViolation,
  );
  assert.deepEqual(await byCapability(store, bare.capabilityHash), { ...bare, ...failedOnce });
}

/** A factor row's enrolledVia through insertTotpFactor and every read of factor rows (fresh database). */
export async function exerciseEnrolledVia(store: Store): Promise<void> {
  const T = APPROVAL_T0;
  const factor = (walletName: string, enrolledVia: 'api' | 'page') => ({
    walletName,
    enrolledVia,
    secretEnvelope: `{"sealed":"${walletName}"}`,
    lastAcceptedStep: null,
    failures: 0,
    lockedUntilMs: null,
    createdAt: T,
    mac: 'ab'.repeat(32),
  });
  await store.transact(async (tx) => {
    for (const name of ['by-api', 'by-page']) await tx.insertWallet({ name, tenant: 'tenant-a', createdAt: T, mac: null });
    await tx.insertTotpFactor(factor('by-api', 'api'));
    await tx.insertTotpFactor(factor('by-page', 'page'));
  });
  for (const via of ['api', 'page'] as const) {
    const name = `by-${via}`;
    assert.deepEqual(await store.transact((tx) => tx.getTotpFactorForUpdate(name)), factor(name, via));
    assert.deepEqual((await store.readWalletRows(name)).totp, factor(name, via));
  }
  assert.deepEqual(
    (await store.transact((tx) => tx.listWalletRows())).map((r) => [r.wallet.name, r.totp]),
    [
      ['by-api', factor('by-api', 'api')],
      ['by-page', factor('by-page', 'page')],
    ],
  );
  await assert.rejects(
    store.transact((tx) => tx.insertTotpFactor(factor('by-page', 'page'))),
    { code: 'already_enrolled' },
  );
}
