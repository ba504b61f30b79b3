import assert from 'node:assert/strict';
import type { ApprovalChange, Store } from '@custos/kernel';
import { APPROVAL_T0, dumpVersion3Tables, fillVersion3Rows, makeApproval, type RunSql } from './exerciseApprovalStore.js';
import { makePasskey } from './exercisePasskeyStore.js';
import { approvalParams } from './rows.js';

const BATCH = `{"items":[{"keyIndex":0,"opHash":"${'01'.repeat(32)}","operationType":"transaction"},{"keyIndex":3,"opHash":"${'02'.repeat(32)}","operationType":"authorization"}],"signedSeqs":[null,null]}`;

/**
 * approvals.batch (migration 8): written by insertApproval, read back by every approval read (also
 * through `second`), replaced by an update that names it, kept by one that leaves it out; an
 * approval of one operation reads without the field.
 */
export async function exerciseApprovalBatch(store: Store, second: Store): Promise<void> {
  const batch = makeApproval(1, { opType: 'batch', batch: BATCH });
  const single = makeApproval(2, { apiKeyId: 'key-b' });
  await store.transact(async (tx) => {
    await tx.insertApproval(batch);
    await tx.insertApproval(single);
  });
  const reads = (s: Store, id: string, capabilityHash: string, apiKeyId: string) =>
    Promise.all([
      s.readApproval(id),
      s.readApprovalByCapability(capabilityHash),
      s.transact((tx) => tx.getApprovalForUpdate(id)),
      s.transact((tx) => tx.getApprovalByCapabilityForUpdate(capabilityHash)),
      s.transact(async (tx) => (await tx.listPendingApprovalsOfApiKey(apiKeyId))[0]),
      s.transact(async (tx) => (await tx.listExpiredOpenApprovals(APPROVAL_T0 + 600_000, 10)).find((r) => r.id === id)),
    ]);
  for (const s of [store, second]) {
    assert.deepEqual(await reads(s, batch.id, batch.capabilityHash, 'key-a'), Array(6).fill(batch));
    const singles = await reads(s, single.id, single.capabilityHash, 'key-b');
    assert.deepEqual(singles, Array(6).fill(single));
    assert.ok(
      singles.every((r) => r !== undefined && !('batch' in r)),
      'an approval of one operation has no batch field',
    );
  }

  const change: ApprovalChange = {
    state: 'approved',
    decidedAt: APPROVAL_T0 + 5,
    evidence: '{"factor":"totp"}',
    consumedSeq: null,
    challenge: null,
    mac: '44'.repeat(32),
  };
  const signedOne = BATCH.replace('"signedSeqs":[null,null]', '"signedSeqs":[7,null]');
  // an update that names the batch replaces it; one that leaves it out keeps it
  await store.transact((tx) => tx.updateApproval(batch.id, { ...change, batch: signedOne }));
  assert.deepEqual(await second.readApproval(batch.id), { ...batch, ...change, batch: signedOne });
  const expired: ApprovalChange = { ...change, state: 'expired', decidedAt: APPROVAL_T0 + 9, evidence: null, mac: '55'.repeat(32) };
  await store.transact((tx) => tx.updateApproval(batch.id, expired));
  assert.deepEqual(await second.readApproval(batch.id), { ...batch, ...expired, batch: signedOne });
  await store.transact((tx) => tx.updateApproval(single.id, change));
  const updated = await store.readApproval(single.id);
  assert.deepEqual(updated, { ...single, ...change });
  assert.ok(updated !== undefined && !('batch' in updated), 'an update without a batch leaves an approval of one operation without one');
}

/** The approval the version-6 rows hold (fillVersion6Rows): approved, with a challenge. */
export const VERSION_6_APPROVAL = makeApproval(1, {
  walletName: 'alice',
  apiKeyId: 'key-a',
  state: 'approved',
  decidedAt: APPROVAL_T0,
  evidence: '{"factor":"totp"}',
  challenge: `{"nonce":"${'7c'.repeat(32)}"}`,
});

/** Rows of a version-6 schema (raw SQL): the version-3 rows, an approval with all of its version-6 columns, and a passkey. */
export async function fillVersion6Rows(sql: RunSql): Promise<void> {
  await fillVersion3Rows(sql);
  const params = approvalParams(VERSION_6_APPROVAL).slice(0, -1);
  await sql(`INSERT INTO approvals VALUES (${params.map((_, i) => `$${i + 1}`).join(', ')})`, params);
  const p = makePasskey(0x60, { walletName: 'alice' });
  await sql(
    'INSERT INTO passkey_credentials (wallet_name, credential_id, public_key, counter, transports, rp_id, enrolled_via, created_at, mac) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)',
    [p.walletName, p.credentialId, p.publicKey, p.counter, JSON.stringify(p.transports), p.rpId, p.enrolledVia, p.createdAt, p.mac],
  );
}

/** Every row of the version-6 tables, in a stable order. */
export async function dumpVersion6Tables(sql: RunSql): Promise<Record<string, unknown[]>> {
  return {
    ...(await dumpVersion3Tables(sql)),
    approvals: await sql('SELECT * FROM approvals ORDER BY id'),
    passkey_credentials: await sql('SELECT * FROM passkey_credentials ORDER BY credential_id'),
  };
}

/** After migration 8 on the version-6 rows: the old approval reads as it was (no batch), and a batch approval can be stored. */
export async function exerciseBatchAfterVersion6(store: Store): Promise<void> {
  const old = await store.readApproval(VERSION_6_APPROVAL.id);
  assert.deepEqual(old, VERSION_6_APPROVAL);
  assert.ok(old !== undefined && !('batch' in old));
  const batch = makeApproval(2, { opType: 'batch', batch: BATCH });
  await store.transact((tx) => tx.insertApproval(batch));
  assert.deepEqual(await store.readApproval(batch.id), batch);
}
