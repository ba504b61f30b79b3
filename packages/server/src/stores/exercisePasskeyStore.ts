import assert from 'node:assert/strict';
import { type ApprovalChange, CustosError, type EnrolledVia, type PasskeyCredentialRecord, type Store, type WalletRows } from '@custos/kernel';
import { APPROVAL_T0, dumpVersion3Tables, fillVersion3Rows, insertVersion4Approval, makeApproval, type RunSql } from './exerciseApprovalStore.js';
import { makeEnrollmentLink } from './exerciseEnrollmentLinkStore.js';
import { enrollmentLinkParams } from './rows.js';

/** A passkey numbered n of `walletName`: its credential id derives from n, every other field from `fields`. */
export function makePasskey(n: number, fields: Partial<PasskeyCredentialRecord> = {}): PasskeyCredentialRecord {
  const suffix = n.toString(16).padStart(8, '0');
  return {
    walletName: 'alice',
    credentialId: `cred-${suffix}`,
    publicKey: `pQECAyYgASFYI${suffix}`,
    counter: 0,
    transports: ['internal', 'hybrid'],
    rpId: 'wallet.example.com',
    enrolledVia: 'page',
    createdAt: APPROVAL_T0 + n,
    mac: `${'9a'.repeat(28)}${suffix}`,
    ...fields,
  };
}

/** Where the database refused a value (the driver's own error: the kernel never writes one). */
function isConstraintViolation(kind: 'check' | 'foreign key'): (error: unknown) => boolean {
  const codes = kind === 'check' ? ['SQLITE_CONSTRAINT_CHECK', '23514'] : ['SQLITE_CONSTRAINT_FOREIGNKEY', '23503'];
  return (error) => typeof error === 'object' && error !== null && 'code' in error && codes.includes(String(error.code));
}

function isAlreadyEnrolled(error: unknown): boolean {
  return error instanceof CustosError && error.code === 'already_enrolled' && error.details.field === 'credentialId';
}

const locked = (store: Store, walletName: string) => store.transact((tx) => tx.listPasskeysForUpdate(walletName));
const credentialIds = (records: PasskeyCredentialRecord[]) => records.map((r) => r.credentialId);

/** What readWalletRows must answer for a wallet of tenant-a created at APPROVAL_T0 with no TOTP factor. */
const walletRows = (name: string, passkeys: PasskeyCredentialRecord[]): WalletRows => ({
  wallet: { name, tenant: 'tenant-a', createdAt: APPROVAL_T0, mac: 'ab'.repeat(32) },
  totp: undefined,
  passkeys,
});

/**
 * The passkey operations of a store (both stores run it on a fresh database): every field read back
 * as written (locked, with the wallet rows, through `second`: another connection or replica), a
 * counter up to 2^53 - 1 exact, a wallet's passkeys oldest first (then by credential id, byte order),
 * no other wallet's; a taken credential id refused as already_enrolled for any wallet, nothing
 * written and the unit still usable; the counter update of one row; the rpIDs in use.
 */
export async function exercisePasskeyStore(store: Store, second: Store): Promise<void> {
  assert.deepEqual(await store.listPasskeyRpIds(), [], 'none on a fresh store');
  await store.transact(async (tx) => {
    for (const name of ['alice', 'bob', 'Alice', 'carol']) await tx.insertWallet({ name, tenant: 'tenant-a', createdAt: APPROVAL_T0, mac: 'ab'.repeat(32) });
  });
  assert.deepEqual(await store.readWalletRows('alice'), walletRows('alice', []), 'a wallet without passkeys');

  // -- round trip: every field; counters past 2^32 and at 2^53 - 1 (a 32-bit column or a BIGINT read as a string would show)
  const full = makePasskey(1, {
    credentialId: 'AbC-_9xyz',
    publicKey: 'pQECAyYgASFYIAbC-_9',
    counter: 2 ** 32 + 7,
    transports: ['usb', 'nfc', 'ble', 'smart-card', 'hybrid', 'internal', 'cable', 'x-"quoted"'],
    rpId: 'custos.example.org',
    enrolledVia: 'api',
    createdAt: APPROVAL_T0 + 2 ** 33,
  });
  const maxCounter = makePasskey(2, { counter: Number.MAX_SAFE_INTEGER, transports: [] });
  assert.deepEqual(
    await store.transact(async (tx) => {
      await tx.insertPasskey(full);
      await tx.insertPasskey(maxCounter);
      return tx.listPasskeysForUpdate('alice'); // a unit reads its own writes
    }),
    [maxCounter, full],
  );
  for (const s of [store, second]) {
    assert.deepEqual(await locked(s, 'alice'), [maxCounter, full]);
    assert.deepEqual(await s.readWalletRows('alice'), walletRows('alice', [maxCounter, full]));
  }

  // -- order: oldest first, then by credential id byte for byte (upper case before lower, '-' before digits);
  // inserted in another order. Another wallet's passkeys (also one differing only in case) are not listed.
  const T = APPROVAL_T0;
  const bobs = [
    makePasskey(0x10, { walletName: 'bob', credentialId: 'b', createdAt: T + 5 }),
    makePasskey(0x11, { walletName: 'bob', credentialId: 'a', createdAt: T + 9 }),
    makePasskey(0x12, { walletName: 'bob', credentialId: 'B', createdAt: T + 5 }),
    makePasskey(0x13, { walletName: 'bob', credentialId: '-1', createdAt: T + 5 }),
    makePasskey(0x14, { walletName: 'bob', credentialId: '_', createdAt: T + 5 }),
    makePasskey(0x15, { walletName: 'bob', credentialId: '0', createdAt: T - 1 }),
  ];
  const ofAliceUpperCase = makePasskey(0x16, { walletName: 'Alice', credentialId: 'ab' });
  await store.transact(async (tx) => {
    for (const record of [...bobs, ofAliceUpperCase]) await tx.insertPasskey(record);
  });
  const bobsInOrder = ['0', '-1', 'B', '_', 'b', 'a'].map((id) => bobs.find((r) => r.credentialId === id));
  for (const s of [store, second]) {
    assert.deepEqual(await locked(s, 'bob'), bobsInOrder);
    assert.deepEqual((await s.readWalletRows('bob')).passkeys, bobsInOrder);
    assert.deepEqual(await locked(s, 'alice'), [maxCounter, full], "bob's and Alice's are not alice's");
    assert.deepEqual(await locked(s, 'Alice'), [ofAliceUpperCase], 'matched exactly');
  }
  assert.deepEqual(await locked(store, 'carol'), []);
  assert.deepEqual(await locked(store, 'nobody'), []);
  assert.deepEqual(await store.readWalletRows('nobody'), { wallet: undefined, totp: undefined, passkeys: [] });
  // credential ids are matched exactly: one differing in case only is another credential
  const caseTwin = makePasskey(0x17, { walletName: 'carol', credentialId: 'abc-_9XYZ' });
  await store.transact((tx) => tx.insertPasskey(caseTwin));
  assert.deepEqual(await locked(store, 'carol'), [caseTwin]);

  // -- a taken credential id is refused for any wallet (this one or another); nothing is written
  const takenBySameWallet = makePasskey(0x20, { credentialId: full.credentialId, counter: 0, mac: 'ff'.repeat(32) });
  const takenByOtherWallet = makePasskey(0x21, { walletName: 'carol', credentialId: full.credentialId, publicKey: 'mallory' });
  for (const duplicate of [takenBySameWallet, takenByOtherWallet]) {
    await assert.rejects(
      store.transact((tx) => tx.insertPasskey(duplicate)),
      isAlreadyEnrolled,
    );
    await assert.rejects(
      second.transact((tx) => tx.insertPasskey(duplicate)),
      isAlreadyEnrolled,
      'also from another connection',
    );
  }
  assert.deepEqual(await locked(store, 'alice'), [maxCounter, full], 'the stored passkey is untouched');
  assert.deepEqual(await locked(store, 'carol'), [caseTwin]);
  // the caller's throw undoes the unit's other writes with it
  const undoneWallet = 'dave';
  const undonePasskey = makePasskey(0x22, { walletName: 'carol' });
  await assert.rejects(
    store.transact(async (tx) => {
      await tx.insertWallet({ name: undoneWallet, tenant: 'tenant-a', createdAt: T, mac: null });
      await tx.insertPasskey(undonePasskey);
      await tx.insertPasskey(takenByOtherWallet);
    }),
    isAlreadyEnrolled,
  );
  assert.equal((await store.readWalletRows(undoneWallet)).wallet, undefined, 'the wallet row of the failed unit is undone');
  assert.deepEqual(await locked(store, 'carol'), [caseTwin], 'the passkey of the failed unit is undone');
  // a refused insert leaves the unit's transaction usable (on PostgreSQL it is not aborted)
  const afterRefusal = makePasskey(0x23, { walletName: 'carol' });
  await store.transact(async (tx) => {
    await assert.rejects(tx.insertPasskey(takenByOtherWallet), isAlreadyEnrolled);
    await tx.insertPasskey(afterRefusal);
  });
  assert.deepEqual(await locked(store, 'carol'), [caseTwin, afterRefusal]);

  // -- what no PasskeyCredentialRecord of a stored wallet holds is refused by the database
  for (const [bad, refusal] of [
    [makePasskey(0x30, { walletName: 'nobody' }), isConstraintViolation('foreign key')],
    [makePasskey(0x31, { counter: -1 }), isConstraintViolation('check')],
    [makePasskey(0x32, { enrolledVia: 'backend' as EnrolledVia }), isConstraintViolation('check')],
  ] as const) {
    await assert.rejects(
      store.transact((tx) => tx.insertPasskey(bad)),
      refusal,
    );
    assert.ok(!credentialIds(await locked(store, bad.walletName)).includes(bad.credentialId));
  }

  // -- updatePasskeyCounter: the counter and MAC of one row, nothing else
  const used = { ...full, counter: Number.MAX_SAFE_INTEGER, mac: '11'.repeat(32) };
  await store.transact((tx) => tx.updatePasskeyCounter(full.credentialId, used.counter, used.mac));
  assert.deepEqual(await locked(second, 'alice'), [maxCounter, used]);
  assert.deepEqual(await locked(store, 'bob'), bobsInOrder, 'other rows are untouched');
  const rolledBackTo = { ...maxCounter, counter: 2 ** 32, mac: '22'.repeat(32) };
  await store.transact((tx) => tx.updatePasskeyCounter(maxCounter.credentialId, rolledBackTo.counter, rolledBackTo.mac));
  assert.deepEqual(await store.readWalletRows('alice'), walletRows('alice', [rolledBackTo, used]), 'the store writes what it is given');
  // a missing credential id (also one differing in case) throws, and the unit's other writes are undone with it
  for (const missing of ['no-such-credential', full.credentialId.toLowerCase()]) {
    const undone = makePasskey(0x33, { walletName: 'carol' });
    await assert.rejects(
      store.transact(async (tx) => {
        await tx.insertPasskey(undone);
        await tx.updatePasskeyCounter(missing, 1, '33'.repeat(32));
      }),
      { code: 'store_unavailable' },
    );
    assert.deepEqual(await locked(store, 'carol'), [caseTwin, afterRefusal]);
  }
  assert.deepEqual(await locked(store, 'alice'), [rolledBackTo, used]);

  // -- the rpIDs in use, each once
  const elsewhere = makePasskey(0x40, { walletName: 'carol', rpId: 'old-host.example.net' });
  await store.transact((tx) => tx.insertPasskey(elsewhere));
  assert.deepEqual(await store.listPasskeyRpIds(), ['custos.example.org', 'old-host.example.net', 'wallet.example.com']);
  assert.deepEqual(await second.listPasskeyRpIds(), ['custos.example.org', 'old-host.example.net', 'wallet.example.com']);
}

/**
 * The wallet rows with a TOTP factor and passkeys: each row once (the passkeys are joined in the same
 * statement as the factor row, which must not repeat it or lose them).
 */
export async function exerciseWalletRowsWithPasskeys(store: Store): Promise<void> {
  const T = APPROVAL_T0;
  const totp = {
    walletName: 'erin',
    enrolledVia: 'page' as const,
    secretEnvelope: '{"sealed":"erin"}',
    lastAcceptedStep: 2 ** 35,
    failures: 2,
    lockedUntilMs: T + 60_000,
    createdAt: T,
    mac: 'cd'.repeat(32),
  };
  const passkeys = [makePasskey(2, { walletName: 'erin' }), makePasskey(1, { walletName: 'erin', createdAt: T + 2 }), makePasskey(3, { walletName: 'erin' })];
  await store.transact(async (tx) => {
    await tx.insertWallet({ name: 'erin', tenant: 'tenant-a', createdAt: T, mac: 'ab'.repeat(32) });
    await tx.insertTotpFactor(totp);
    for (const record of passkeys) await tx.insertPasskey(record);
  });
  assert.deepEqual(await store.readWalletRows('erin'), {
    wallet: { name: 'erin', tenant: 'tenant-a', createdAt: T, mac: 'ab'.repeat(32) },
    totp,
    passkeys: [passkeys[1], passkeys[0], passkeys[2]],
  });
  assert.deepEqual(await store.transact((tx) => tx.getTotpFactorForUpdate('erin')), totp);
  // the MAC pass's list (rows of before passkeys existed) is the wallet and its TOTP factor, once
  assert.deepEqual(await store.transact((tx) => tx.listWalletRows()), [
    { wallet: { name: 'erin', tenant: 'tenant-a', createdAt: T, mac: 'ab'.repeat(32) }, totp },
  ]);
}

/**
 * approvals.challenge: written by insertApproval and updateApproval (set, replaced, spent back to
 * null) and read back by every approval read, also through `second`.
 */
export async function exerciseApprovalChallenge(store: Store, second: Store): Promise<void> {
  const issued = `{"issuedAt":${APPROVAL_T0 + 1},"kind":"passkey","nonce":"${'5a'.repeat(32)}"}`;
  const withChallenge = makeApproval(1, { challenge: issued });
  const without = makeApproval(2, { apiKeyId: 'key-b' });
  await store.transact(async (tx) => {
    await tx.insertApproval(withChallenge);
    await tx.insertApproval(without);
  });
  const reads = (s: Store, id: string, capabilityHash: string) =>
    Promise.all([
      s.readApproval(id),
      s.readApprovalByCapability(capabilityHash),
      s.transact((tx) => tx.getApprovalForUpdate(id)),
      s.transact((tx) => tx.getApprovalByCapabilityForUpdate(capabilityHash)),
      s.transact(async (tx) => (await tx.listPendingApprovalsOfApiKey(id === withChallenge.id ? 'key-a' : 'key-b'))[0]),
      s.transact(async (tx) => (await tx.listExpiredOpenApprovals(APPROVAL_T0 + 600_000, 10)).find((r) => r.id === id)),
    ]);
  for (const s of [store, second]) {
    assert.deepEqual(await reads(s, withChallenge.id, withChallenge.capabilityHash), Array(6).fill(withChallenge));
    assert.deepEqual(await reads(s, without.id, without.capabilityHash), Array(6).fill(without));
  }

  // issued on a pending approval, replaced by a later one, spent by the decision
  const change = (fields: Partial<ApprovalChange>): ApprovalChange => ({
    state: 'pending',
    decidedAt: null,
    evidence: null,
    consumedSeq: null,
    challenge: null,
    mac: '44'.repeat(32),
    ...fields,
  });
  const reissued = issued.replace('5a'.repeat(32), '6b'.repeat(32));
  for (const step of [
    change({ challenge: issued, mac: '55'.repeat(32) }),
    change({ challenge: reissued, mac: '66'.repeat(32) }),
    change({ state: 'approved', decidedAt: APPROVAL_T0 + 5, evidence: '{"factor":"passkey"}', challenge: null, mac: '77'.repeat(32) }),
  ]) {
    await store.transact((tx) => tx.updateApproval(without.id, step));
    assert.deepEqual(await second.readApproval(without.id), { ...without, ...step });
    assert.deepEqual(await store.transact((tx) => tx.getApprovalForUpdate(without.id)), { ...without, ...step });
  }
  assert.deepEqual(await store.readApproval(withChallenge.id), withChallenge, 'another row is untouched');
  const spent = change({ state: 'rejected', decidedAt: APPROVAL_T0 + 6, mac: '88'.repeat(32) });
  await store.transact((tx) => tx.updateApproval(withChallenge.id, spent));
  assert.deepEqual(await store.readApproval(withChallenge.id), { ...withChallenge, ...spent, challenge: null });
}

/** The approval and enrolment link the version-5 rows hold (fillVersion5Rows). */
export const VERSION_5_APPROVAL = makeApproval(1, {
  walletName: 'alice',
  apiKeyId: 'key-a',
  state: 'approved',
  decidedAt: APPROVAL_T0,
  evidence: '{"factor":"totp"}',
});
export const VERSION_5_LINK = makeEnrollmentLink(1, { walletName: 'bob', apiKeyId: 'key-a' });

/** Rows in every table of a version-5 schema (raw SQL): the version-3 rows, an approval, an enrolment link, a factor enrolled on the page. */
export async function fillVersion5Rows(sql: RunSql): Promise<void> {
  await fillVersion3Rows(sql);
  await sql("UPDATE totp_factors SET enrolled_via = 'page' WHERE wallet_name = 'alice'");
  await insertVersion4Approval(sql, VERSION_5_APPROVAL);
  const params = enrollmentLinkParams(VERSION_5_LINK);
  await sql(`INSERT INTO enrollment_links VALUES (${params.map((_, i) => `$${i + 1}`).join(', ')})`, params);
}

/** Every row of the version-5 tables, in a stable order. */
export async function dumpVersion5Tables(sql: RunSql): Promise<Record<string, unknown[]>> {
  return {
    ...(await dumpVersion3Tables(sql)),
    approvals: await sql('SELECT * FROM approvals ORDER BY id'),
    enrollment_links: await sql('SELECT * FROM enrollment_links ORDER BY id'),
  };
}

/**
 * After migration 6 on the version-5 rows: the old approval reads as it was with no challenge, the
 * wallet rows have no passkeys, and the new table and column work (passkeys, a challenge).
 */
export async function exerciseVersion5Store(store: Store): Promise<void> {
  assert.deepEqual(await store.readApproval(VERSION_5_APPROVAL.id), VERSION_5_APPROVAL);
  assert.equal(VERSION_5_APPROVAL.challenge, null);
  const rows = await store.readWalletRows('alice');
  assert.deepEqual([rows.wallet?.name, rows.totp?.enrolledVia, rows.passkeys], ['alice', 'page', []]);
  assert.deepEqual(await store.transact((tx) => tx.getEnrollmentLinkByCapabilityForUpdate(VERSION_5_LINK.capabilityHash)), VERSION_5_LINK);
  assert.deepEqual(await store.listPasskeyRpIds(), []);
  const passkey = makePasskey(1, { walletName: 'bob', counter: 2 ** 40 });
  const change: ApprovalChange = { ...VERSION_5_APPROVAL, challenge: `{"nonce":"${'7c'.repeat(32)}"}`, mac: '99'.repeat(32) };
  await store.transact(async (tx) => {
    await tx.insertPasskey(passkey);
    await tx.updateApproval(VERSION_5_APPROVAL.id, change);
  });
  assert.deepEqual(await store.transact((tx) => tx.listPasskeysForUpdate('bob')), [passkey]);
  assert.deepEqual((await store.readWalletRows('bob')).passkeys, [passkey]);
  assert.deepEqual(await store.readApproval(VERSION_5_APPROVAL.id), { ...VERSION_5_APPROVAL, challenge: change.challenge, mac: change.mac });
  assert.deepEqual(await store.listPasskeyRpIds(), [passkey.rpId]);
}

/**
 * A transports column changed behind the store's back (raw `sql`) that is not a JSON array of
 * strings reads as one transport holding the raw text (a record the kernel's MAC check refuses), by
 * both reads, rather than failing the read (fresh database).
 */
export async function exerciseTamperedTransports(store: Store, sql: RunSql): Promise<void> {
  const record = makePasskey(1, { walletName: 'frank' });
  await store.transact(async (tx) => {
    await tx.insertWallet({ name: 'frank', tenant: 'tenant-a', createdAt: APPROVAL_T0, mac: null });
    await tx.insertPasskey(record);
  });
  for (const [raw, transports] of [
    ['["usb","nfc"]', ['usb', 'nfc']],
    ['not json', ['not json']],
    ['{"0":"usb"}', ['{"0":"usb"}']],
    ['["usb",1]', ['["usb",1]']],
    ['"usb"', ['"usb"']],
    ['null', ['null']],
  ] as const) {
    await sql('UPDATE passkey_credentials SET transports = $1 WHERE credential_id = $2', [raw, record.credentialId]);
    const expected = [{ ...record, transports }];
    assert.deepEqual(await store.transact((tx) => tx.listPasskeysForUpdate('frank')), expected, raw);
    assert.deepEqual((await store.readWalletRows('frank')).passkeys, expected, raw);
  }
}
