import assert from 'node:assert/strict';
import { type ApprovalRecord, type ApprovalState, CustosError, type Store } from '@custos/kernel';
import { approvalParams } from './rows.js';

/** A point in time past 2^32 ms (so that a 32-bit column or a string from BIGINT would show). */
export const APPROVAL_T0 = Date.UTC(2026, 11, 6, 19, 0, 0);

/** An approval numbered n: its id and capability hash derive from n, every other field from `fields`. */
export function makeApproval(n: number, fields: Partial<ApprovalRecord> = {}): ApprovalRecord {
  const suffix = n.toString(16).padStart(8, '0');
  return {
    id: `${'a0'.repeat(12)}${suffix}`,
    tenant: 'tenant-a',
    apiKeyId: 'key-a',
    walletName: 'alice',
    keyIndex: 0,
    opType: 'transaction',
    opHash: 'ab'.repeat(32),
    summary: '{"chainId":1,"to":"0x00000000000000000000000000000000000000aa","value":"1"}',
    summaryText: 'Send 1 wei on chain 1',
    requiredStrength: 'present',
    capabilityHash: `${'c1'.repeat(28)}${suffix}`,
    state: 'pending',
    createdAt: APPROVAL_T0 - 60_000,
    expiresAt: APPROVAL_T0 + 600_000,
    decidedAt: null,
    evidence: null,
    consumedSeq: null,
    challenge: null,
    mac: `${'de'.repeat(28)}${suffix}`,
    ...fields,
  };
}

const ids = (records: ApprovalRecord[]) => records.map((r) => r.id);

/** Where the database's CHECK constraint refused a value (the driver's own error: the kernel never writes one). */
function isCheckViolation(error: unknown): boolean {
  const code = typeof error === 'object' && error !== null && 'code' in error ? error.code : undefined;
  return code === 'SQLITE_CONSTRAINT_CHECK' || code === '23514';
}

/**
 * The approval operations of a store (both stores run it on a fresh database): every field read back
 * as written, by id, by capability and unlocked, also through `second` (another connection or
 * replica on the same database); a duplicate id or capability refused without writing; updates of
 * one row only; the pending counts, the expiry sweep's list and the per-key list, each exact.
 */
export async function exerciseApprovalStore(store: Store, second: Store): Promise<void> {
  // -- round trip: every field, set and null, numbers as numbers
  const full = makeApproval(1, {
    tenant: 'tenant-ü',
    apiKeyId: 'key-full',
    walletName: 'wallet ‮ with "quotes" and\nnewline',
    keyIndex: 2 ** 31 - 1,
    opType: 'typedData',
    opHash: '0f'.repeat(32),
    summary: '{"domain":{"name":"Ether Mail ✉"},"warnings":["blind"]}',
    summaryText: 'Sign typed data\n  from: Cow\n  to: Bob ✉',
    requiredStrength: 'bound',
    state: 'consumed',
    createdAt: APPROVAL_T0,
    expiresAt: APPROVAL_T0 + 3_600_000,
    decidedAt: APPROVAL_T0 + 1_234,
    evidence: '{"counter":7,"credentialId":"AbC-_9","factor":"passkey","userVerified":true}',
    consumedSeq: 2 ** 40 + 3,
  });
  const bare = makeApproval(2);
  assert.equal(
    await store.transact(async (tx) => {
      await tx.insertApproval(full);
      await tx.insertApproval(bare);
      // a unit reads its own writes
      return (await tx.getApprovalForUpdate(full.id))?.mac;
    }),
    full.mac,
  );
  for (const record of [full, bare]) {
    const read = await store.transact(async (tx) => ({
      byId: await tx.getApprovalForUpdate(record.id),
      byCapability: await tx.getApprovalByCapabilityForUpdate(record.capabilityHash),
    }));
    assert.deepEqual(read, { byId: record, byCapability: record });
    assert.deepEqual(await store.readApproval(record.id), record);
    assert.deepEqual(await second.readApproval(record.id), record, 'committed: another connection reads it');
  }
  const unknownId = makeApproval(999);
  assert.deepEqual(
    await store.transact(async (tx) => [await tx.getApprovalForUpdate(unknownId.id), await tx.getApprovalByCapabilityForUpdate(unknownId.capabilityHash)]),
    [undefined, undefined],
  );
  assert.equal(await store.readApproval(unknownId.id), undefined);
  // an id is matched exactly (no case folding, no prefix)
  assert.equal(await store.readApproval(full.id.toUpperCase()), undefined);
  assert.equal(await store.readApproval(full.id.slice(0, 31)), undefined);

  // -- uniqueness: a second approval with a taken id or capability hash is refused; nothing is written
  const sameId = makeApproval(3, { id: bare.id, state: 'approved', mac: 'ff'.repeat(32) });
  const sameCapability = makeApproval(4, { capabilityHash: bare.capabilityHash, walletName: 'mallory' });
  for (const duplicate of [sameId, sameCapability])
    await assert.rejects(
      store.transact((tx) => tx.insertApproval(duplicate)),
      (e: unknown) => e instanceof CustosError && e.code === 'internal',
    );
  assert.deepEqual(await store.readApproval(bare.id), bare, 'the stored approval is untouched');
  assert.equal(await store.readApproval(sameCapability.id), undefined);
  // also across stores (another replica)
  await assert.rejects(
    second.transact((tx) => tx.insertApproval(sameCapability)),
    (e: unknown) => e instanceof CustosError && e.code === 'internal',
  );
  // a refused insert leaves the unit's transaction usable (on PostgreSQL it is not aborted)
  const afterRefusal = makeApproval(5);
  await store.transact(async (tx) => {
    await assert.rejects(tx.insertApproval(sameId), { code: 'internal' });
    await tx.insertApproval(afterRefusal);
  });
  assert.deepEqual(await store.readApproval(afterRefusal.id), afterRefusal);

  // -- the columns' CHECKs refuse what no ApprovalRecord holds
  const badState = makeApproval(6, { state: 'approved-ish' as ApprovalState });
  const badStrength = makeApproval(7, { requiredStrength: 'weak' as ApprovalRecord['requiredStrength'] });
  const negativeIndex = makeApproval(8, { keyIndex: -1 });
  for (const bad of [badState, badStrength, negativeIndex]) {
    await assert.rejects(
      store.transact((tx) => tx.insertApproval(bad)),
      isCheckViolation,
    );
    assert.equal(await store.readApproval(bad.id), undefined);
  }

  // -- a failing unit takes its approval with it
  const rolledBack = makeApproval(9);
  await assert.rejects(
    store.transact(async (tx) => {
      await tx.insertApproval(rolledBack);
      throw new CustosError('code_invalid', 'unit fails after writing');
    }),
    { code: 'code_invalid' },
  );
  assert.equal(await store.readApproval(rolledBack.id), undefined);

  // -- updateApproval: the decision's five fields of one row, nothing else
  const approved = {
    state: 'approved' as const,
    decidedAt: APPROVAL_T0 + 5_000,
    evidence: '{"factor":"totp","step":59}',
    consumedSeq: null,
    challenge: null,
    mac: '11'.repeat(32),
  };
  await store.transact((tx) => tx.updateApproval(bare.id, approved));
  assert.deepEqual(await second.readApproval(bare.id), { ...bare, ...approved });
  assert.deepEqual(await store.readApproval(afterRefusal.id), afterRefusal, 'another row is untouched');
  const consumed = { ...approved, state: 'consumed' as const, consumedSeq: 2 ** 33, mac: '22'.repeat(32) };
  await store.transact((tx) => tx.updateApproval(bare.id, consumed));
  assert.deepEqual(await store.readApproval(bare.id), { ...bare, ...consumed });
  // back to nulls (the store writes what it is given; the MAC is the kernel's business)
  const cleared = { state: 'pending' as const, decidedAt: null, evidence: null, consumedSeq: null, challenge: null, mac: '33'.repeat(32) };
  await store.transact((tx) => tx.updateApproval(bare.id, cleared));
  assert.deepEqual(await store.readApproval(bare.id), { ...bare, ...cleared });
  // a missing id throws, and the unit's other writes are undone with it
  const undone = makeApproval(10);
  await assert.rejects(
    store.transact(async (tx) => {
      await tx.insertApproval(undone);
      await tx.updateApproval(unknownId.id, approved);
    }),
    { code: 'store_unavailable' },
  );
  assert.equal(await store.readApproval(undone.id), undefined);
  assert.equal(await store.readApproval(unknownId.id), undefined, 'no row was created by the update');
}

/**
 * The three queries that select approvals (counts, expiry sweep, per-key list) on a fresh database,
 * over a fixture that has, for each rule, a row on either side of it.
 */
export async function exerciseApprovalQueries(store: Store): Promise<void> {
  const T = APPROVAL_T0;
  // Inserted in this order; numbered so that id order and insertion order differ where expiries tie.
  const rows: Array<[label: string, record: ApprovalRecord]> = [
    ['a/alice pending, 1 ms left', makeApproval(20, { expiresAt: T + 1 })],
    ['a/alice pending, 10 min left', makeApproval(21, { expiresAt: T + 600_000 })],
    ['a/alice pending, expires now', makeApproval(22, { expiresAt: T })],
    ['a/alice pending, expired 1 ms ago', makeApproval(23, { expiresAt: T - 1 })],
    ['a/alice pending, expired long ago (tie, higher id)', makeApproval(25, { expiresAt: T - 100_000 })],
    ['a/alice pending, expired long ago (tie, lower id)', makeApproval(24, { expiresAt: T - 100_000, apiKeyId: 'key-b' })],
    ['a/alice approved, expired', makeApproval(26, { state: 'approved', expiresAt: T - 5, decidedAt: T - 50 })],
    ['a/alice approved, unexpired', makeApproval(27, { state: 'approved', decidedAt: T - 50 })],
    ['a/alice rejected', makeApproval(28, { state: 'rejected', expiresAt: T - 7, decidedAt: T - 60 })],
    ['a/alice expired', makeApproval(29, { state: 'expired', expiresAt: T - 200_000 })],
    ['a/alice cancelled', makeApproval(30, { state: 'cancelled' })],
    ['a/alice consumed', makeApproval(31, { state: 'consumed', decidedAt: T - 50, consumedSeq: 12 })],
    ['a/bob pending (key b)', makeApproval(32, { walletName: 'bob', apiKeyId: 'key-b', expiresAt: T + 50 })],
    ['b/alice pending', makeApproval(33, { tenant: 'tenant-b', apiKeyId: 'key-c', expiresAt: T + 70 })],
    ['b/carol pending, expired', makeApproval(34, { tenant: 'tenant-b', walletName: 'carol', apiKeyId: 'key-c', expiresAt: T - 100_000 })],
  ];
  await store.transact(async (tx) => {
    for (const [, record] of rows) await tx.insertApproval(record);
  });
  const byLabel = new Map(rows);
  const id = (label: string) => byLabel.get(label)?.id ?? assert.fail(`no fixture ${label}`);

  // -- pending and unexpired (expiresAt > now), per wallet within the tenant and per tenant
  const count = (tenant: string, walletName: string, now: number) => store.transact((tx) => tx.countPendingApprovals(tenant, walletName, now));
  assert.deepEqual(await count('tenant-a', 'alice', T), { wallet: 2, tenant: 3 });
  assert.deepEqual(await count('tenant-a', 'bob', T), { wallet: 1, tenant: 3 });
  assert.deepEqual(await count('tenant-a', 'nobody', T), { wallet: 0, tenant: 3 });
  assert.deepEqual(await count('tenant-b', 'alice', T), { wallet: 1, tenant: 1 }, "tenant-a's alice approvals are not tenant-b's");
  assert.deepEqual(await count('tenant-b', 'carol', T), { wallet: 0, tenant: 1 });
  assert.deepEqual(await count('tenant-c', 'alice', T), { wallet: 0, tenant: 0 });
  // earlier, more are unexpired: T+1, T+600000, T, T-1 for alice; + bob
  assert.deepEqual(await count('tenant-a', 'alice', T - 2), { wallet: 4, tenant: 5 });
  assert.deepEqual(await count('tenant-a', 'alice', T + 600_000), { wallet: 0, tenant: 0 });

  // -- the expiry sweep: pending or approved (unused) with expiresAt <= now, by expiry then id, at most `limit`
  const expired = (now: number, limit: number) => store.transact(async (tx) => ids(await tx.listExpiredOpenApprovals(now, limit)));
  const dueAtT = [
    id('a/alice pending, expired long ago (tie, lower id)'),
    id('a/alice pending, expired long ago (tie, higher id)'),
    id('b/carol pending, expired'),
    id('a/alice approved, expired'),
    id('a/alice pending, expired 1 ms ago'),
    id('a/alice pending, expires now'),
  ];
  assert.deepEqual(await expired(T, 100), dueAtT);
  assert.deepEqual(await expired(T, 2), dueAtT.slice(0, 2));
  assert.deepEqual(await expired(T, 1), dueAtT.slice(0, 1));
  assert.deepEqual(await expired(T - 1, 100), dueAtT.slice(0, 5));
  assert.deepEqual(await expired(T - 100_001, 100), []);
  assert.deepEqual(await expired(T + 1, 100), [...dueAtT, id('a/alice pending, 1 ms left')]);
  // the cursor: only those past (expiresAt, id) in the sweep's order
  const after = (cursor: { expiresAt: number; id: string }) => store.transact(async (tx) => ids(await tx.listExpiredOpenApprovals(T, 100, cursor)));
  const second = byLabel.get('a/alice pending, expired long ago (tie, higher id)') as ApprovalRecord;
  assert.deepEqual(await after({ expiresAt: second.expiresAt, id: second.id }), dueAtT.slice(2));
  assert.deepEqual(await after({ expiresAt: T, id: dueAtT[dueAtT.length - 1] as string }), []);
  const listed = await store.transact((tx) => tx.listExpiredOpenApprovals(T, 100));
  assert.deepEqual(listed[0], byLabel.get('a/alice pending, expired long ago (tie, lower id)'), 'whole records');

  // -- the pending approvals of one key (expired or not), by expiry then id
  const ofKey = (apiKeyId: string) => store.transact(async (tx) => ids(await tx.listPendingApprovalsOfApiKey(apiKeyId)));
  assert.deepEqual(await ofKey('key-a'), [
    id('a/alice pending, expired long ago (tie, higher id)'),
    id('a/alice pending, expired 1 ms ago'),
    id('a/alice pending, expires now'),
    id('a/alice pending, 1 ms left'),
    id('a/alice pending, 10 min left'),
  ]);
  assert.deepEqual(await ofKey('key-b'), [id('a/alice pending, expired long ago (tie, lower id)'), id('a/bob pending (key b)')]);
  assert.deepEqual(await ofKey('key-c'), [id('b/carol pending, expired'), id('b/alice pending')]);
  assert.deepEqual(await ofKey('key-none'), []);
  assert.deepEqual(await ofKey('KEY-A'), [], 'matched exactly');

  // -- a decision takes an approval out of all three
  await store.transact((tx) =>
    tx.updateApproval(id('a/alice pending, 1 ms left'), {
      state: 'cancelled',
      decidedAt: T,
      evidence: null,
      consumedSeq: null,
      challenge: null,
      mac: '44'.repeat(32),
    }),
  );
  assert.deepEqual(await count('tenant-a', 'alice', T), { wallet: 1, tenant: 2 });
  assert.deepEqual(await expired(T + 1, 100), dueAtT);
  assert.ok(!(await ofKey('key-a')).includes(id('a/alice pending, 1 ms left')));
}

/** Runs SQL with `$n` placeholders on a database (the migration tests' raw access). */
export type RunSql = (sql: string, params?: unknown[]) => Promise<Array<Record<string, unknown>>>;

/** The tables of schema version 3 (but schema_migrations, which a migration extends) and the column each is ordered by. */
export const VERSION_3_TABLES: Record<string, string> = {
  meta: 'id',
  api_keys: 'id',
  sessions: 'token_hash',
  wallets: 'name',
  totp_factors: 'wallet_name',
  audit_log: 'seq',
  audit_checkpoints: 'seq',
};

/** Rows in every table of a version-3 schema (written with raw SQL: the stores only open at the newest version). */
export async function fillVersion3Rows(sql: RunSql): Promise<void> {
  await sql("INSERT INTO meta (id, signer_id, derivation, sealed_root, created_at, records_mac_pending) VALUES (1, 's3', 'custos-v1', '{\"v\":1}', $1, 0)", [
    APPROVAL_T0,
  ]);
  for (const [id, tenant, scopes, revokedAt] of [
    ['key-a', 'tenant-a', 'sign,derive', null],
    ['key-ops', 'system', 'admin', APPROVAL_T0 + 9],
  ] as const)
    await sql('INSERT INTO api_keys (id, name, tenant, scopes, secret_hash, created_at, revoked_at) VALUES ($1, $2, $3, $4, $5, $6, $7)', [
      id,
      `name of ${id}`,
      tenant,
      scopes,
      Buffer.alloc(32, id.length),
      APPROVAL_T0 + 1,
      revokedAt,
    ]);
  await sql('INSERT INTO sessions (token_hash, api_key_id, expires_at) VALUES ($1, $2, $3)', ['5e'.repeat(32), 'key-a', APPROVAL_T0 + 3_600_000]);
  for (const [name, mac] of [
    ['alice', 'aa'.repeat(32)],
    ['bob', null],
  ] as const)
    await sql('INSERT INTO wallets (name, tenant, created_at, mac) VALUES ($1, $2, $3, $4)', [name, 'tenant-a', APPROVAL_T0 + 2, mac]);
  await sql(
    'INSERT INTO totp_factors (wallet_name, secret_envelope, last_accepted_step, failures, locked_until_ms, created_at, mac) VALUES ($1, $2, $3, $4, $5, $6, $7)',
    ['alice', '{"envelope":1}', 59_333_333, 2, APPROVAL_T0 + 60_000, APPROVAL_T0 + 3, 'bb'.repeat(32)],
  );
  for (const seq of [1, 2])
    await sql(
      'INSERT INTO audit_log (seq, ts, app_id, wallet_name, action, op_hash, decision, reason, detail, prev_hash, hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)',
      [seq, APPROVAL_T0 + seq, 'key-a', 'alice', 'sign.hash', 'cd'.repeat(32), 'allowed', null, '{"i":1}', String(seq - 1).repeat(64), String(seq).repeat(64)],
    );
  await sql('INSERT INTO audit_checkpoints (seq, signer_id, head_hash, ts, public_key, signature) VALUES ($1, $2, $3, $4, $5, $6)', [
    2,
    's3',
    '2'.repeat(64),
    APPROVAL_T0 + 10,
    'ab'.repeat(32),
    'cd'.repeat(64),
  ]);
}

/** Every row of the version-3 tables, in a stable order. */
export async function dumpVersion3Tables(sql: RunSql): Promise<Record<string, unknown[]>> {
  const dump: Record<string, unknown[]> = {};
  for (const [table, order] of Object.entries(VERSION_3_TABLES)) dump[table] = await sql(`SELECT * FROM ${table} ORDER BY ${order}`);
  // Migration 14 adds frozen_at and owner_link_hash to the wallets, NULL on every old row: left out when NULL.
  dump.wallets = (dump.wallets ?? []).map((row) => {
    const { frozen_at, owner_link_hash, ...rest } = row as Record<string, unknown>;
    return frozen_at === null && owner_link_hash === null ? rest : row;
  });
  // Migration 15 (the admin quorum) adds api_keys.mac and sessions.mac, NULL on every row it finds: exerciseQuorumStore.ts checks that.
  // Migration 21 adds api_keys.expires_at, wallet_prefix and last_used_at, NULL on every row it finds (exerciseQuorumStore.ts).
  for (const table of ['api_keys', 'sessions'])
    dump[table] = (dump[table] ?? []).map((row) => {
      const { mac: _mac, expires_at: _e, wallet_prefix: _w, last_used_at: _l, ...rest } = row as Record<string, unknown>;
      return rest;
    });
  return dump;
}

/** Inserts an approval into a version-4 or -5 schema: its columns but `challenge` and `batch` (migrations 6 and 8, last in approvalParams). */
export async function insertVersion4Approval(sql: RunSql, approval: ApprovalRecord): Promise<void> {
  const params = approvalParams(approval).slice(0, -2);
  await sql(`INSERT INTO approvals VALUES (${params.map((_, i) => `$${i + 1}`).join(', ')})`, params);
}
