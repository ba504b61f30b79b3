import assert from 'node:assert/strict';
import type { ProposalRecord, Store } from '@custos/kernel';
import type { RunSql } from './exerciseApprovalStore.js';

/**
 * The rows of migration 15 (the admin quorum), the same on both stores: settings written and
 * replaced, proposals inserted once and updated, one approval per admin, API key MACs — read back
 * locked (in a unit) and unlocked, from the same and from another connection.
 */
export async function exerciseQuorumStore(a: Store, b: Store): Promise<void> {
  // settings: insert, then replace; absent reads undefined
  assert.equal(await a.readSetting('quorum'), undefined);
  const first = { name: 'quorum', value: '{"threshold":1}', version: 1, updatedAt: 1_000, mac: 'aa'.repeat(32) };
  await a.transact((tx) => tx.putSetting(first));
  const second = { ...first, value: '{"threshold":2}', version: 2, updatedAt: 2_000, mac: 'bb'.repeat(32) };
  await a.transact(async (tx) => {
    assert.deepEqual(await tx.getSettingForUpdate('quorum'), first);
    await tx.putSetting(second);
  });
  assert.deepEqual(await b.readSetting('quorum'), second);

  // proposals: every field read back; an id once (proposal_exists); an update of state, decidedAt, result, mac
  const p: ProposalRecord = {
    id: '0123456789abcdef0123456789abcdef',
    kind: 'deployment.settings',
    payload: '{"x":1}',
    payloadHash: 'cc'.repeat(32),
    proposer: 'dd'.repeat(32),
    proposerSignature: 'ee'.repeat(64),
    createdAt: 10_000,
    expiresAt: 20_000,
    state: 'pending',
    decidedAt: null,
    result: null,
    mac: 'ff'.repeat(32),
  };
  await a.transact((tx) => tx.insertProposal(p));
  await assert.rejects(
    a.transact((tx) => tx.insertProposal({ ...p, kind: 'other' })),
    { code: 'proposal_exists' },
  );
  assert.deepEqual(await b.readProposal(p.id), p);
  const later = { ...p, id: 'f'.repeat(32), createdAt: 11_000 };
  await b.transact((tx) => tx.insertProposal(later));
  assert.deepEqual(
    (await a.listProposals(10)).map((r) => r.id),
    [later.id, p.id],
    'newest first',
  );
  assert.deepEqual(
    (await a.listProposals(1)).map((r) => r.id),
    [later.id],
  );
  const applied = { state: 'applied' as const, decidedAt: 15_000, result: '{"version":1}', mac: '11'.repeat(32) };
  await a.transact(async (tx) => {
    assert.deepEqual(await tx.getProposalForUpdate(p.id), p);
    await tx.updateProposal(p.id, applied);
  });
  assert.deepEqual(await b.readProposal(p.id), { ...p, ...applied });
  await assert.rejects(a.transact((tx) => tx.updateProposal('0'.repeat(32), applied)));

  // approvals: one per admin and proposal; oldest first
  const approval = { proposalId: p.id, admin: '22'.repeat(32), signature: '33'.repeat(64), createdAt: 12_000 };
  assert.equal(await a.transact((tx) => tx.insertProposalApproval(approval)), true);
  assert.equal(await b.transact((tx) => tx.insertProposalApproval({ ...approval, signature: '44'.repeat(64) })), false);
  const other = { ...approval, admin: '55'.repeat(32), createdAt: 11_500 };
  assert.equal(await b.transact((tx) => tx.insertProposalApproval(other)), true);
  assert.deepEqual(await a.readProposalApprovals(p.id), [other, approval]);
  assert.deepEqual(await b.transact((tx) => tx.listProposalApprovals(p.id)), [other, approval]);
  assert.deepEqual(await a.readProposalApprovals(later.id), []);

  // API keys: the MAC written in a unit, read by getApiKey on either connection (no stale cache)
  const key = {
    id: '0011223344556677',
    name: 'k',
    tenant: 'default',
    scopes: ['sign' as const],
    secretHash: new Uint8Array(32).fill(3),
    createdAt: 5,
    revokedAt: null,
  };
  await a.transact((tx) => tx.insertApiKey(key));
  assert.equal((await b.getApiKey(key.id))?.mac, null);
  assert.equal((await a.getApiKey(key.id))?.mac, null);
  await b.transact((tx) => tx.setApiKeyMac(key.id, '66'.repeat(32)));
  assert.equal((await a.getApiKey(key.id))?.mac, '66'.repeat(32));
  assert.equal((await b.getApiKey(key.id))?.mac, '66'.repeat(32));
  const listed = await a.transact((tx) => tx.listApiKeysForUpdate());
  assert.deepEqual(
    listed.map((k) => [k.id, k.mac]),
    [[key.id, '66'.repeat(32)]],
  );
  await a.transact((tx) => tx.insertApiKey({ ...key, id: '8899aabbccddeeff', mac: '77'.repeat(32) }));
  assert.equal((await b.getApiKey('8899aabbccddeeff'))?.mac, '77'.repeat(32));
  await assert.rejects(a.transact((tx) => tx.setApiKeyMac('ffffffffffffffff', '66'.repeat(32))));

  // hasProposalAudit: only an allowed quorum.propose / quorum.apply record of that very id counts
  const pid = 'abcdef0123456789abcdef0123456789';
  const audit = (action: string, decision: 'allowed' | 'denied', proposalId: string) => ({
    ts: 30_000,
    appId: null,
    walletName: null,
    action,
    opHash: null,
    decision,
    reason: decision === 'denied' ? 'admin_signature_invalid' : null,
    detail: { proposalId, kind: 'deployment.settings' },
  });
  await a.transact(async (tx) => {
    await tx.appendAudit(audit('quorum.propose', 'denied', pid));
    await tx.appendAudit(audit('quorum.approve', 'allowed', pid));
    await tx.appendAudit(audit('quorum.propose', 'allowed', `${pid.slice(0, 31)}0`));
  });
  assert.equal(await b.transact((tx) => tx.hasProposalAudit(pid)), false);
  await a.transact((tx) => tx.appendAudit(audit('quorum.apply', 'allowed', pid)));
  assert.equal(await b.transact((tx) => tx.hasProposalAudit(pid)), true);
  const pid2 = '11111111111111111111111111111111';
  await b.transact((tx) => tx.appendAudit(audit('quorum.propose', 'allowed', pid2)));
  assert.equal(await a.transact((tx) => tx.hasProposalAudit(pid2)), true);
  await assert.rejects(a.transact((tx) => tx.hasProposalAudit('%')));
}

/** Rows of a version-11 store that migration 15 must keep: API keys (their MAC column added, NULL). */
export async function fillVersion11ApiKeys(sql: RunSql): Promise<void> {
  await sql('INSERT INTO api_keys (id, name, tenant, scopes, secret_hash, created_at, revoked_at) VALUES ($1, $2, $3, $4, $5, $6, $7)', [
    'k11',
    'key of version 11',
    'default',
    'sign,derive',
    Buffer.alloc(32, 4),
    1_100,
    null,
  ]);
}

export async function dumpApiKeys(sql: RunSql): Promise<Record<string, unknown[]>> {
  return { api_keys: await sql('SELECT * FROM api_keys ORDER BY id') };
}

/** After migration 15: every API key row kept, its MAC NULL; the new tables empty and usable. */
export async function exerciseAfterMigration15(store: Store, sql: RunSql, before: Record<string, unknown[]>): Promise<void> {
  assert.deepEqual(
    (await dumpApiKeys(sql)).api_keys,
    before.api_keys?.map((row) => ({ ...(row as object), mac: null, expires_at: null, wallet_prefix: null, last_used_at: null })),
  );
  assert.equal((await store.getApiKey('k11'))?.mac, null);
  for (const table of ['kernel_settings', 'proposals', 'proposal_approvals']) assert.deepEqual(await sql(`SELECT * FROM ${table}`), [], table);
  await store.transact((tx) => tx.putSetting({ name: 'deployment', value: '{}', version: 1, updatedAt: 1, mac: '00'.repeat(32) }));
  assert.equal((await store.readSetting('deployment'))?.version, 1);
}
