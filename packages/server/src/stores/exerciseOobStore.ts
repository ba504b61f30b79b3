import assert from 'node:assert/strict';
import { CustosError, type OobChannelRecord, type OutboxRecord, type Store } from '@custos/kernel';
import { APPROVAL_T0 } from './exerciseApprovalStore.js';

// Migration 10 (oob_channels, outbox) as both stores must keep it: what the kernel writes is what it
// reads back, from this connection and another; a claim leases; the store refuses what it must.

export function makeOobChannel(walletName: string, fields: Partial<OobChannelRecord> = {}): OobChannelRecord {
  return {
    walletName,
    secretEnvelope: `{"sealed":"${walletName}"}`,
    state: '{"channel":"email","codes":[],"failures":0,"lockedUntilMs":null,"sentInWindow":0,"windowStart":1}',
    enrolledVia: 'page',
    createdAt: APPROVAL_T0,
    mac: 'cd'.repeat(32),
    ...fields,
  };
}

export function makeOutbox(n: number, fields: Partial<OutboxRecord> = {}): OutboxRecord {
  const id = n.toString(16).padStart(32, '0');
  return {
    id,
    walletName: 'oob-alice',
    approvalId: null,
    status: 'queued',
    attempts: 0,
    nextAttemptAt: APPROVAL_T0 + n,
    leaseUntil: null,
    createdAt: APPROVAL_T0 + n,
    expiresAt: APPROVAL_T0 + 300_000,
    sentAt: null,
    lastError: null,
    envelope: `{"sealed":"outbox ${n}"}`,
    addressTag: null,
    ...fields,
  };
}

const isCode = (code: string) => (error: unknown) => error instanceof CustosError && error.code === code;

export async function exerciseOobStore(store: Store, second: Store): Promise<void> {
  await store.transact(async (tx) => {
    for (const name of ['oob-alice', 'oob-bob']) await tx.insertWallet({ name, tenant: 'tenant-a', createdAt: APPROVAL_T0, mac: 'ab'.repeat(32) });
  });
  assert.equal('oob' in (await store.readWalletRows('oob-alice')), false, 'no channel: no oob member');

  // -- the channel: round trip, locked and unlocked, from both connections
  const channel = makeOobChannel('oob-alice', { createdAt: APPROVAL_T0 + 2 ** 33 });
  await store.transact((tx) => tx.insertOobChannel(channel));
  for (const s of [store, second]) {
    assert.deepEqual(await s.transact((tx) => tx.getOobChannelForUpdate('oob-alice')), channel);
    assert.deepEqual((await s.readWalletRows('oob-alice')).oob, channel);
  }
  assert.equal(await store.transact((tx) => tx.getOobChannelForUpdate('oob-bob')), undefined);
  await assert.rejects(
    store.transact((tx) => tx.insertOobChannel(makeOobChannel('oob-alice', { secretEnvelope: 'other' }))),
    isCode('already_enrolled'),
    'one channel per wallet',
  );
  await assert.rejects(
    store.transact((tx) => tx.insertOobChannel(makeOobChannel('no-such-wallet'))),
    'a channel belongs to a wallet row',
  );
  await store.transact((tx) => tx.updateOobChannelState('oob-alice', '{"x":1}', 'ef'.repeat(32)));
  assert.deepEqual(await second.transact((tx) => tx.getOobChannelForUpdate('oob-alice')), { ...channel, state: '{"x":1}', mac: 'ef'.repeat(32) });
  await assert.rejects(
    store.transact((tx) => tx.updateOobChannelState('oob-bob', '{}', 'ef'.repeat(32))),
    isCode('store_unavailable'),
  );
  // -- a change of address: the row deleted and its replacement inserted in one unit; a unit that
  // fails after the delete leaves the old row; deleting a channel that is not there fails the unit
  const replacement = makeOobChannel('oob-alice', { secretEnvelope: 'replaced', createdAt: APPROVAL_T0 + 7 });
  await assert.rejects(
    store.transact(async (tx) => {
      await tx.deleteOobChannel('oob-alice');
      throw new Error('the unit fails after the delete');
    }),
  );
  assert.equal((await second.transact((tx) => tx.getOobChannelForUpdate('oob-alice')))?.state, '{"x":1}', 'the failed unit deleted nothing');
  await store.transact(async (tx) => {
    await tx.deleteOobChannel('oob-alice');
    await tx.insertOobChannel(replacement);
  });
  assert.deepEqual(await second.transact((tx) => tx.getOobChannelForUpdate('oob-alice')), replacement);
  await assert.rejects(
    store.transact((tx) => tx.deleteOobChannel('oob-bob')),
    isCode('store_unavailable'),
  );

  // -- the outbox: due messages claimed oldest first under a lease, the lease honoured by another connection
  const now = APPROVAL_T0 + 10_000;
  const a = makeOutbox(1, { approvalId: 'aa'.repeat(16), createdAt: APPROVAL_T0 + 1 });
  const b = makeOutbox(2, { nextAttemptAt: APPROVAL_T0 + 5, expiresAt: APPROVAL_T0 + 2 ** 40 });
  const later = makeOutbox(3, { nextAttemptAt: now + 1 });
  const sent = makeOutbox(4, { status: 'sent', sentAt: APPROVAL_T0 });
  await store.transact(async (tx) => {
    for (const m of [later, b, sent, a]) await tx.insertOutbox(m);
  });
  // the wallet's messages after a time, whatever their state (created at T0+1 … T0+4), from either connection
  for (const s of [store, second]) {
    assert.equal(await s.transact((tx) => tx.countOutboxSince('oob-alice', APPROVAL_T0)), 4);
    assert.equal(await s.transact((tx) => tx.countOutboxSince('oob-alice', APPROVAL_T0 + 2)), 2, 'after, not at');
    assert.equal(await s.transact((tx) => tx.countOutboxSince('oob-bob', APPROVAL_T0)), 0);
  }
  const claimed = await store.transact((tx) => tx.claimOutbox(now, 10, now + 60_000));
  assert.deepEqual(
    claimed.sort((x, y) => x.nextAttemptAt - y.nextAttemptAt),
    [
      { ...a, leaseUntil: now + 60_000 },
      { ...b, leaseUntil: now + 60_000 },
    ],
    'the due queued messages, leased',
  );
  assert.deepEqual(await second.transact((tx) => tx.claimOutbox(now, 10, now + 60_001)), [], 'leased: not claimed again');
  assert.deepEqual(
    (await second.transact((tx) => tx.claimOutbox(now + 60_000, 1, now + 120_000))).map((m) => m.id),
    [a.id],
    'the lease ran out: claimed again, at most `limit`',
  );
  await store.transact((tx) => tx.updateOutbox(a.id, { status: 'sent', attempts: 1, nextAttemptAt: now, leaseUntil: null, sentAt: now + 5, lastError: null }));
  for (const s of [store, second]) assert.deepEqual(await s.readApprovalDelivery(a.id.replace(/./g, 'a')), { status: 'sent', attempts: 1, sentAt: now + 5 });
  assert.equal(await store.readApprovalDelivery('bb'.repeat(16)), undefined);
  // A newer message of the same approval is the one shown (a resend).
  await store.transact((tx) => tx.insertOutbox(makeOutbox(5, { approvalId: 'aa'.repeat(16), createdAt: APPROVAL_T0 + 9 })));
  assert.deepEqual(await store.readApprovalDelivery('aa'.repeat(16)), { status: 'queued', attempts: 0, sentAt: null });
  await assert.rejects(
    store.transact((tx) =>
      tx.updateOutbox('ff'.repeat(16), { status: 'sent', attempts: 1, nextAttemptAt: now, leaseUntil: null, sentAt: now, lastError: null }),
    ),
    isCode('store_unavailable'),
  );
  await assert.rejects(
    store.transact((tx) => tx.insertOutbox(makeOutbox(6, { status: 'lost' as OutboxRecord['status'] }))),
    'the status is checked',
  );
  await assert.rejects(
    store.transact((tx) => tx.insertOutbox(makeOutbox(1))),
    'one row per id',
  );

  // -- the recipient's tag (migration 11): written, read back, counted across wallets after a time
  const tagged = [
    makeOutbox(7, { addressTag: '7a'.repeat(32), createdAt: APPROVAL_T0 + 20 }),
    makeOutbox(8, { addressTag: '7a'.repeat(32), walletName: 'oob-bob', createdAt: APPROVAL_T0 + 21 }),
    makeOutbox(9, { addressTag: '7b'.repeat(32), createdAt: APPROVAL_T0 + 22 }),
  ];
  await store.transact(async (tx) => {
    for (const m of tagged) await tx.insertOutbox(m);
  });
  for (const s of [store, second]) {
    assert.equal(await s.transact((tx) => tx.countOutboxToAddressSince('7a'.repeat(32), APPROVAL_T0)), 2, 'both wallets');
    assert.equal(await s.transact((tx) => tx.countOutboxToAddressSince('7a'.repeat(32), APPROVAL_T0 + 20)), 1, 'after, not at');
    assert.equal(await s.transact((tx) => tx.countOutboxToAddressSince('7c'.repeat(32), APPROVAL_T0)), 0);
  }
  const claimedTagged = await store.transact((tx) => tx.claimOutbox(APPROVAL_T0 + 10_000_000, 100, APPROVAL_T0 + 20_000_000));
  assert.deepEqual(
    claimedTagged
      .filter((m) => m.addressTag !== null)
      .map((m) => [m.id, m.addressTag])
      .sort(([a], [b]) => String(a).localeCompare(String(b))),
    tagged.map((m) => [m.id, m.addressTag]),
    'the tag is read back',
  );
}
