import assert from 'node:assert/strict';
import { CustosError, type EnrolledVia, type HwkeyFactorRecord, type Store } from '@custos/kernel';
import { VERSION_6_APPROVAL } from './exerciseApprovalBatchStore.js';
import { APPROVAL_T0 } from './exerciseApprovalStore.js';
import { makePasskey } from './exercisePasskeyStore.js';

/** The hardware key of `walletName`: every field from `fields`, the rest derived from n. */
export function makeHwkey(n: number, fields: Partial<HwkeyFactorRecord> = {}): HwkeyFactorRecord {
  const suffix = n.toString(16).padStart(8, '0');
  return {
    walletName: 'alice',
    id: `02${'5a'.repeat(28)}${suffix}`,
    xpub: `tpubD6NzVbkrYhZ4X${suffix}`,
    subpath: '0/5',
    windowStart: 0,
    issued: 0,
    enrolledVia: 'page',
    createdAt: APPROVAL_T0 + n,
    mac: `${'7b'.repeat(28)}${suffix}`,
    ...fields,
  };
}

function isConstraintViolation(kind: 'check' | 'foreign key' | 'not null'): (error: unknown) => boolean {
  const codes =
    kind === 'check'
      ? ['SQLITE_CONSTRAINT_CHECK', '23514']
      : kind === 'foreign key'
        ? ['SQLITE_CONSTRAINT_FOREIGNKEY', '23503']
        : ['SQLITE_CONSTRAINT_NOTNULL', '23502'];
  return (error) => typeof error === 'object' && error !== null && 'code' in error && codes.includes(String(error.code));
}

function isAlreadyEnrolled(error: unknown): boolean {
  return error instanceof CustosError && error.code === 'already_enrolled' && error.details.field === 'walletName';
}

const locked = (store: Store, walletName: string) => store.transact((tx) => tx.getHwkeyFactorForUpdate(walletName));

/**
 * The hardware-key operations of a store (both stores run it on a fresh database): every field read
 * back as written (locked, with the wallet rows, through `second`: another connection or replica),
 * a bare key's null xpub, window values up to 2^53 - 1 exact; one per wallet (a second refused as
 * already_enrolled, nothing written, the unit still usable); the state update of one row (a missing
 * row throws store_unavailable, undoing the unit); what no record holds refused by the database.
 */
export async function exerciseHwkeyStore(store: Store, second: Store): Promise<void> {
  await store.transact(async (tx) => {
    for (const name of ['alice', 'bob', 'Alice']) await tx.insertWallet({ name, tenant: 'tenant-a', createdAt: APPROVAL_T0, mac: 'ab'.repeat(32) });
  });
  assert.equal(await locked(store, 'alice'), undefined);
  assert.equal((await store.readWalletRows('alice')).hwkey, undefined, 'a wallet without a hardware key');
  assert.equal(Object.hasOwn(await store.readWalletRows('alice'), 'hwkey'), false, 'absent, not undefined (the rows of before hwkeys compare equal)');

  // -- round trip: every field, an api-enrolled card, big numbers exact
  const card = makeHwkey(1, { windowStart: Number.MAX_SAFE_INTEGER, issued: 2 ** 40, enrolledVia: 'api', createdAt: APPROVAL_T0 + 2 ** 33, subpath: '' });
  const bare = makeHwkey(2, { walletName: 'bob', xpub: null, subpath: '' });
  assert.deepEqual(
    await store.transact(async (tx) => {
      await tx.insertHwkeyFactor(card);
      await tx.insertHwkeyFactor(bare);
      return tx.getHwkeyFactorForUpdate('alice'); // a unit reads its own writes
    }),
    card,
  );
  for (const s of [store, second]) {
    assert.deepEqual(await locked(s, 'alice'), card);
    assert.deepEqual(await locked(s, 'bob'), bare);
    assert.deepEqual((await s.readWalletRows('alice')).hwkey, card);
    assert.deepEqual((await s.readWalletRows('bob')).hwkey, bare);
    assert.equal(await locked(s, 'Alice'), undefined, 'matched exactly');
    assert.equal(await locked(s, 'nobody'), undefined);
  }

  // -- one per wallet: a second is refused, nothing written, from either connection
  const another = makeHwkey(3, { mac: 'ff'.repeat(32) });
  await assert.rejects(
    store.transact((tx) => tx.insertHwkeyFactor(another)),
    isAlreadyEnrolled,
  );
  await assert.rejects(
    second.transact((tx) => tx.insertHwkeyFactor(another)),
    isAlreadyEnrolled,
  );
  assert.deepEqual(await locked(store, 'alice'), card, 'the stored card is untouched');
  // a refused insert leaves the unit usable (on PostgreSQL it is not aborted), and the caller's throw undoes the unit
  const ofUpperCase = makeHwkey(4, { walletName: 'Alice' });
  await store.transact(async (tx) => {
    await assert.rejects(tx.insertHwkeyFactor(another), isAlreadyEnrolled);
    await tx.insertHwkeyFactor(ofUpperCase);
  });
  assert.deepEqual(await locked(store, 'Alice'), ofUpperCase);
  await assert.rejects(
    store.transact(async (tx) => {
      await tx.insertWallet({ name: 'dave', tenant: 'tenant-a', createdAt: APPROVAL_T0, mac: null });
      await tx.insertHwkeyFactor(makeHwkey(5, { walletName: 'dave' }));
      await tx.insertHwkeyFactor(another);
    }),
    isAlreadyEnrolled,
  );
  assert.equal((await store.readWalletRows('dave')).wallet, undefined, 'the failed unit is undone');
  assert.equal(await locked(store, 'dave'), undefined);

  // -- what no record of a stored wallet holds is refused by the database
  await store.transact((tx) => tx.insertWallet({ name: 'erin', tenant: 'tenant-a', createdAt: APPROVAL_T0, mac: null }));
  for (const [bad, refusal] of [
    [makeHwkey(0x30, { walletName: 'nobody' }), isConstraintViolation('foreign key')],
    [makeHwkey(0x31, { walletName: 'erin', issued: -1 }), isConstraintViolation('check')],
    [makeHwkey(0x32, { walletName: 'erin', windowStart: -1 }), isConstraintViolation('check')],
    [makeHwkey(0x33, { walletName: 'erin', enrolledVia: 'backend' as EnrolledVia }), isConstraintViolation('check')],
    [makeHwkey(0x34, { walletName: 'erin', mac: null }), isConstraintViolation('not null')],
  ] as const) {
    await assert.rejects(
      store.transact((tx) => tx.insertHwkeyFactor(bad)),
      refusal,
    );
  }
  assert.equal(await locked(store, 'erin'), undefined);

  // -- updateHwkeyFactorState: the window and MAC of one row, nothing else
  const counted = { ...card, windowStart: APPROVAL_T0, issued: 7, mac: '11'.repeat(32) };
  await store.transact((tx) => tx.updateHwkeyFactorState('alice', { windowStart: counted.windowStart, issued: counted.issued }, counted.mac));
  assert.deepEqual(await locked(second, 'alice'), counted);
  assert.deepEqual(await locked(store, 'bob'), bare, 'other rows are untouched');
  assert.deepEqual(await locked(store, 'Alice'), ofUpperCase);
  for (const missing of ['nobody', 'ALICE']) {
    await assert.rejects(
      store.transact(async (tx) => {
        await tx.insertHwkeyFactor(makeHwkey(0x40, { walletName: 'erin' }));
        await tx.updateHwkeyFactorState(missing, { windowStart: 1, issued: 1 }, '33'.repeat(32));
      }),
      { code: 'store_unavailable' },
    );
    assert.equal(await locked(store, 'erin'), undefined, 'the unit is undone');
  }
}

/**
 * The wallet rows with a TOTP factor, passkeys and a hardware key: each row once (the card is joined
 * in the same statement, one row per wallet: it must not repeat the passkeys or lose them).
 */
export async function exerciseWalletRowsWithHwkey(store: Store): Promise<void> {
  const T = APPROVAL_T0;
  const totp = {
    walletName: 'frank',
    enrolledVia: 'api' as const,
    secretEnvelope: '{"sealed":"frank"}',
    lastAcceptedStep: 5,
    failures: 0,
    lockedUntilMs: null,
    createdAt: T,
    mac: 'cd'.repeat(32),
  };
  const passkeys = [makePasskey(0x51, { walletName: 'frank' }), makePasskey(0x52, { walletName: 'frank' })];
  const card = makeHwkey(0x53, { walletName: 'frank' });
  await store.transact(async (tx) => {
    await tx.insertWallet({ name: 'frank', tenant: 'tenant-a', createdAt: T, mac: 'ab'.repeat(32) });
    await tx.insertTotpFactor(totp);
    for (const record of passkeys) await tx.insertPasskey(record);
    await tx.insertHwkeyFactor(card);
  });
  assert.deepEqual(await store.readWalletRows('frank'), {
    wallet: { name: 'frank', tenant: 'tenant-a', createdAt: T, mac: 'ab'.repeat(32) },
    totp,
    passkeys,
    hwkey: card,
  });
}

/** After migration 7 on the version-6 rows: the rows read as they were, no wallet has a card, and the new table works. */
export async function exerciseHwkeyAfterVersion6(store: Store): Promise<void> {
  assert.deepEqual(await store.readApproval(VERSION_6_APPROVAL.id), VERSION_6_APPROVAL);
  const rows = await store.readWalletRows('alice');
  assert.deepEqual(
    rows.passkeys.map((p) => p.credentialId),
    [makePasskey(0x60).credentialId],
  );
  assert.equal(Object.hasOwn(rows, 'hwkey'), false);
  const card = makeHwkey(0x61, { walletName: 'alice' });
  await store.transact((tx) => tx.insertHwkeyFactor(card));
  assert.deepEqual((await store.readWalletRows('alice')).hwkey, card);
  assert.deepEqual(
    (await store.readWalletRows('alice')).passkeys.map((p) => p.credentialId),
    [makePasskey(0x60).credentialId],
  );
}
