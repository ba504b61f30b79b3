import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  type AdminStatement,
  APPROVE_LABEL,
  type App,
  bootstrapQuorumOffline,
  computePayloadHash,
  createApiKey,
  generateApiKeyToken,
  Kernel,
  PROPOSE_LABEL,
  rekeySigner,
  signAdminMessage,
} from '@custos/kernel';
import { openStore } from './openStore.js';
import { createTestSigner, recordTestSecret, TEST_PASSPHRASE, type TestSigner } from './testing/createTestSigner.js';
import { expectCode } from './testing/expectCode.js';
import { startTestDelivery } from './testing/startTestDelivery.js';
import { adminEntry, newTestAdmin, proposalIds, quorumDriver } from './testing/testAdmins.js';

// Issue 13 point 4 (M-of-N admin quorum) and its attack tests from point 6: each rule is attacked
// and the exact code asserted, on the real store of the pass (SQLite, then PostgreSQL).

const passphrase = () => new TextEncoder().encode(TEST_PASSPHRASE);

const A = newTestAdmin('alice');
const B = newTestAdmin('bob');
const C = newTestAdmin('carol');
const D = newTestAdmin('dave'); // never in the set
const newId = proposalIds();

let signer: TestSigner;
let app: App;

/** Proposing and approving on this suite's signer (testing/testAdmins.ts); an id it did not propose reads as A's, expired. */
const q = quorumDriver({
  kernel: () => signer.kernel,
  app: () => app,
  now: () => signer.clock.now,
  newId,
  fallback: () => ({ proposer: A.publicKey, expiresAt: 0 }),
});
const propose = q.propose;
const approve = q.approve;

/** What an admin signs for proposal `id` (proposed through propose(), on `kernel`'s signer). */
function st(id: string, payloadHash: string, kernel: Kernel = signer.kernel): AdminStatement {
  return { ...q.statement(id, payloadHash), signerId: kernel.signerId as string };
}

async function auditOf(proposalId: string): Promise<Array<{ action: string; decision: string; reason: string | null }>> {
  const records = await signer.store.readAudit(1, 100_000);
  return records
    .filter((r) => (r.detail as { proposalId?: string }).proposalId === proposalId)
    .map((r) => ({ action: r.action, decision: r.decision, reason: r.reason }));
}

const SETTINGS = { timelockDelaySeconds: 7200, webhookUrl: 'https://hooks.example.com/custos', policyDefaults: { unknownToken: 'deny' } };

before(async () => {
  signer = await createTestSigner({ scopes: ['admin', 'register', 'derive', 'sign'] });
  app = await signer.kernel.authenticateApiKey(signer.apiKey);
});

after(async () => {
  await signer?.close();
});

describe('admin quorum: bootstrap', () => {
  test('before any admin set: a proposal is quorum_not_configured (audited), and a key row inserted by hand still authenticates', async () => {
    await expectCode(propose(A, 'deployment.settings', SETTINGS), 'quorum_not_configured');
    // The contrast for the "key inserted by hand" attack below: without a quorum a row with no MAC works.
    const { id, token, secretHash } = generateApiKeyToken((n) => new Uint8Array(n).fill(7));
    await signer.sql(
      'INSERT INTO api_keys (id, name, tenant, scopes, secret_hash, created_at, revoked_at) VALUES ($1, $2, $3, $4, $5, $6, NULL)',
      id,
      'by hand before',
      'default',
      'sign',
      Buffer.from(secretHash),
      signer.clock.now,
    );
    assert.equal((await signer.kernel.authenticateApiKey(token)).id, id);
  });

  test('M ≥ N, M < 1, a repeated admin and a malformed key are refused, nothing written; then 2 of 3 is set up and MACs the keys present', async () => {
    const bootstrap = (quorum: unknown) =>
      bootstrapQuorumOffline({ store: signer.store, credential: { type: 'passphrase', passphrase: passphrase() }, quorum });
    await expectCode(bootstrap({ threshold: 2, admins: [adminEntry(A), adminEntry(B)] }), 'quorum_threshold_invalid');
    await expectCode(bootstrap({ threshold: 3, admins: [adminEntry(A), adminEntry(B), adminEntry(C)] }), 'quorum_threshold_invalid');
    await expectCode(bootstrap({ threshold: 0, admins: [adminEntry(A), adminEntry(B)] }), 'quorum_threshold_invalid');
    await expectCode(bootstrap({ threshold: 1, admins: [adminEntry(A), adminEntry(A)] }), 'invalid_input');
    await expectCode(bootstrap({ threshold: 1, admins: [adminEntry(A), `zz${'ab'.repeat(31)}`] }), 'invalid_input');
    assert.equal(Number((await signer.sql('SELECT count(*) AS n FROM kernel_settings'))[0]?.n), 0);
    // A wrong passphrase opens nothing.
    await expectCode(
      bootstrapQuorumOffline({
        store: signer.store,
        credential: { type: 'passphrase', passphrase: new TextEncoder().encode('wrong') },
        quorum: { threshold: 2, admins: [adminEntry(A), adminEntry(B), adminEntry(C)] },
      }),
      'unseal_failed',
    );
    const done = await bootstrap({ threshold: 2, admins: [adminEntry(A), adminEntry(B), adminEntry(C)] });
    assert.deepEqual(done, { threshold: 2, admins: 3, apiKeysMacd: 2 });
    // Changing the set is a proposal: a second bootstrap is refused.
    await expectCode(bootstrap({ threshold: 1, admins: [adminEntry(A), adminEntry(D)] }), 'quorum_required');
    const list = await signer.kernel.listProposals(app, {});
    assert.equal(list.quorum?.threshold, 2);
    assert.deepEqual(
      list.quorum?.admins.map((a) => [a.name, a.email]),
      [A, B, C].map((a) => [a.name, a.email]),
    );
    // The key the test signer made before the bootstrap was MAC'd: it still works.
    assert.equal((await signer.kernel.authenticateApiKey(signer.apiKey)).id, app.id);
  });

  test("a key row inserted by hand is refused under the quorum, and so is a MAC'd row given more scopes by hand", async () => {
    const { id, token, secretHash } = generateApiKeyToken((n) => new Uint8Array(n).fill(9));
    recordTestSecret('hand-inserted key', token);
    await signer.sql(
      'INSERT INTO api_keys (id, name, tenant, scopes, secret_hash, created_at, revoked_at) VALUES ($1, $2, $3, $4, $5, $6, NULL)',
      id,
      'by hand',
      'system',
      'admin,sign',
      Buffer.from(secretHash),
      signer.clock.now,
    );
    await expectCode(signer.kernel.authenticateApiKey(token), 'unauthorized');
    // a MAC copied from another row does not hold either
    const [row] = await signer.sql('SELECT mac FROM api_keys WHERE id = $1', app.id);
    await signer.sql('UPDATE api_keys SET mac = $1 WHERE id = $2', row?.mac, id);
    await expectCode(signer.kernel.authenticateApiKey(token), 'unauthorized');
    // the row the test inserted before the bootstrap was MAC'd then (the operator attested it)…
    // …but a MAC'd key whose scopes are widened by hand is refused
    const [before] = await signer.sql("SELECT id, scopes FROM api_keys WHERE name = 'by hand before'");
    await signer.sql("UPDATE api_keys SET scopes = 'sign,admin' WHERE id = $1", before?.id);
    const handBefore = generateApiKeyToken((n) => new Uint8Array(n).fill(7)).token;
    await expectCode(signer.kernel.authenticateApiKey(handBefore), 'unauthorized');
    // and over HTTP, the same answer as an unknown key
    const res = await signer.app.inject({ method: 'GET', url: '/v1/admin/proposals', headers: signer.auth(token) });
    assert.equal(res.statusCode, 401);
    assert.equal(res.json().error.code, 'unauthorized');
  });

  test('direct writes are refused under the quorum: createApiKey is quorum_required', async () => {
    await expectCode(createApiKey(signer.store, { name: 'direct', scopes: ['sign'] }), 'quorum_required');
    await expectCode(createApiKey(signer.store, { name: 'direct', scopes: ['derive'] }), 'quorum_required');
  });
});

describe('admin quorum: proposals', () => {
  test('M−1 approvals apply nothing; the M-th applies the payload exactly as stored, in one unit with quorum.apply', async () => {
    const proposed = await propose(A, 'deployment.settings', SETTINGS);
    assert.equal(proposed.state, 'pending');
    assert.equal(proposed.threshold, 2);
    assert.equal(proposed.payloadHash, computePayloadHash('deployment.settings', SETTINGS));
    assert.match(proposed.description, /timelock 7200 s/);
    const one = await approve(B, proposed.id, 'deployment.settings', SETTINGS);
    assert.equal(one.state, 'pending');
    assert.equal(one.approvals.length, 1);
    assert.equal((await signer.kernel.readDeploymentSettings()).timelockDelaySeconds, 48 * 3600, 'M−1 approvals change nothing');
    const two = await approve(C, proposed.id, 'deployment.settings', SETTINGS);
    assert.equal(two.state, 'applied');
    // version 2: the bootstrap wrote the first (the built-in settings)
    assert.deepEqual(two.result, { version: 2 });
    const settings = await signer.kernel.readDeploymentSettings();
    assert.deepEqual({ ...settings, version: undefined }, { ...SETTINGS, compatRawHash: 'policy', version: undefined });
    assert.deepEqual(await auditOf(proposed.id), [
      { action: 'quorum.propose', decision: 'allowed', reason: null },
      { action: 'quorum.approve', decision: 'allowed', reason: null },
      { action: 'quorum.approve', decision: 'allowed', reason: null },
      { action: 'quorum.apply', decision: 'allowed', reason: null },
    ]);
    const [apply] = (await signer.store.readAudit(1, 100_000)).filter((r) => r.action === 'quorum.apply' && r.detail.proposalId === proposed.id);
    assert.deepEqual((apply?.detail.approvers as string[]).sort(), [B.publicKey, C.publicKey].sort());
    // applied: a late approval is refused
    await expectCode(approve(A, proposed.id, 'deployment.settings', SETTINGS), 'proposal_not_pending');
  });

  test('the log holds the exact payload: inline in quorum.propose, or in quorum.payload parts under the 4 KB detail bound; its hash is the proposal’s payloadHash', async () => {
    const records = async (id: string) => (await signer.store.readAudit(1, 100_000)).filter((r) => r.detail.proposalId === id);
    // A short payload: its canonical JSON text in the quorum.propose record itself.
    const small = await propose(A, 'deployment.settings', SETTINGS);
    const [propRecord] = (await records(small.id)).filter((r) => r.action === 'quorum.propose');
    const text = propRecord?.detail.payload as string;
    assert.deepEqual(JSON.parse(text), SETTINGS);
    assert.equal(computePayloadHash('deployment.settings', JSON.parse(text)), small.payloadHash);
    // A long one (defaults with 120 allowed destinations, ~5 KB): in order, in quorum.payload records right after it.
    const destinations = Array.from({ length: 120 }, (_, i) => `0x${i.toString(16).padStart(40, '0')}`);
    const big = { ...SETTINGS, policyDefaults: { unknownToken: 'deny', destinations } };
    const large = await propose(A, 'deployment.settings', big);
    const logged = await records(large.id);
    const head = logged.find((r) => r.action === 'quorum.propose');
    const parts = logged.filter((r) => r.action === 'quorum.payload');
    assert.equal(head?.detail.payload, undefined);
    assert.equal(head?.detail.payloadParts, parts.length);
    assert.ok(parts.length > 1);
    for (const part of parts) assert.equal(part.detail.truncated, undefined, 'every part is whole');
    assert.deepEqual(
      parts.map((r) => [r.detail.part, r.detail.parts]),
      parts.map((_, i) => [i + 1, parts.length]),
    );
    const joined = parts.map((r) => r.detail.text as string).join('');
    assert.deepEqual(JSON.parse(joined), big);
    assert.equal(computePayloadHash('deployment.settings', JSON.parse(joined)), large.payloadHash);
  });

  test("the proposer's own approval does not count, and one admin counts once (each refusal audited with its code)", async () => {
    const p = await propose(A, 'deployment.settings', { ...SETTINGS, timelockDelaySeconds: 3600 });
    const payload = { ...SETTINGS, timelockDelaySeconds: 3600 };
    await expectCode(approve(A, p.id, 'deployment.settings', payload), 'proposal_self_approval');
    await approve(B, p.id, 'deployment.settings', payload);
    await expectCode(approve(B, p.id, 'deployment.settings', payload), 'proposal_already_approved');
    const view = await signer.kernel.getProposal(app, { id: p.id });
    assert.equal(view.state, 'pending');
    assert.deepEqual(
      view.approvals.map((a) => a.admin),
      [B.publicKey],
    );
    assert.equal((await signer.kernel.readDeploymentSettings()).timelockDelaySeconds, 7200);
    assert.deepEqual(
      (await auditOf(p.id)).filter((r) => r.decision === 'denied').map((r) => r.reason),
      ['proposal_self_approval', 'proposal_already_approved'],
    );
  });

  test('an approval of a modified payload is refused proposal_payload_mismatch; a payload modified in the database is record_unreadable', async () => {
    const payload = { ...SETTINGS, webhookUrl: 'https://good.example.com/hook' };
    const p = await propose(A, 'deployment.settings', payload);
    await expectCode(approve(B, p.id, 'deployment.settings', { ...payload, webhookUrl: 'https://evil.example.com/hook' }), 'proposal_payload_mismatch');
    await expectCode(approve(B, p.id, 'apikey.create', payload), 'proposal_payload_mismatch');
    // a signature over the right hash sent with another hash: the signature does not verify
    const goodHash = computePayloadHash('deployment.settings', payload);
    await expectCode(
      signer.kernel.approveProposal(app, {
        id: p.id,
        admin: B.publicKey,
        payloadHash: computePayloadHash('deployment.settings', { ...payload, timelockDelaySeconds: 3600 }),
        signature: signAdminMessage(B.privateKey, APPROVE_LABEL, st(p.id, goodHash)),
      }),
      'admin_signature_invalid',
    );
    // the stored payload swapped for the evil one (hash and all): its MAC no longer holds
    const evil = { ...payload, webhookUrl: 'https://evil.example.com/hook' };
    await signer.sql(
      'UPDATE proposals SET payload = $1, payload_hash = $2 WHERE id = $3',
      JSON.stringify(evil),
      computePayloadHash('deployment.settings', evil),
      p.id,
    );
    await expectCode(approve(B, p.id, 'deployment.settings', evil), 'record_unreadable');
    await expectCode(signer.kernel.getProposal(app, { id: p.id }), 'record_unreadable');
    assert.deepEqual(
      (await auditOf(p.id)).filter((r) => r.decision === 'denied').map((r) => r.reason),
      ['proposal_payload_mismatch', 'proposal_payload_mismatch', 'admin_signature_invalid', 'record_unreadable'],
    );
    assert.equal((await signer.kernel.readDeploymentSettings()).webhookUrl, SETTINGS.webhookUrl);
  });

  test('an expired proposal is refused proposal_expired and marked expired; nothing applies', async () => {
    const payload = { ...SETTINGS, timelockDelaySeconds: 10_800 };
    const p = await propose(A, 'deployment.settings', payload, { ttlSeconds: 60 });
    await approve(B, p.id, 'deployment.settings', payload);
    signer.clock.now += 60_000;
    await expectCode(approve(C, p.id, 'deployment.settings', payload), 'proposal_expired');
    assert.equal((await signer.kernel.getProposal(app, { id: p.id })).state, 'expired');
    assert.equal((await signer.kernel.readDeploymentSettings()).timelockDelaySeconds, 7200);
    assert.deepEqual((await auditOf(p.id)).at(-1), { action: 'quorum.approve', decision: 'denied', reason: 'proposal_expired' });
  });

  test('strangers and forgeries: an admin not in the set, a bad proposer signature, a proposer signature replayed as an approval, an approval row inserted by hand', async () => {
    await expectCode(propose(D, 'deployment.settings', SETTINGS), 'admin_unknown');
    const id = newId();
    const expiresAt = signer.clock.now + 3600_000;
    q.note(id, A.publicKey, expiresAt);
    await expectCode(
      signer.kernel.proposeChange(app, {
        id,
        kind: 'deployment.settings',
        payload: SETTINGS,
        proposer: A.publicKey,
        signature: signAdminMessage(B.privateKey, PROPOSE_LABEL, st(id, computePayloadHash('deployment.settings', SETTINGS))),
        expiresAt,
      }),
      'admin_signature_invalid',
    );
    const payload = { ...SETTINGS, timelockDelaySeconds: 14_400 };
    const p = await propose(A, 'deployment.settings', payload);
    await expectCode(approve(D, p.id, 'deployment.settings', payload), 'admin_unknown');
    const hash = computePayloadHash('deployment.settings', payload);
    // B's signature under the propose label is not an approval
    await expectCode(
      signer.kernel.approveProposal(app, {
        id: p.id,
        admin: B.publicKey,
        payloadHash: hash,
        signature: signAdminMessage(B.privateKey, PROPOSE_LABEL, st(p.id, hash)),
      }),
      'admin_signature_invalid',
    );
    // rows written by hand with no valid signature never count: B's real approval is still the first
    await signer.sql(
      'INSERT INTO proposal_approvals (proposal_id, admin, signature, created_at) VALUES ($1, $2, $3, $4)',
      p.id,
      C.publicKey,
      '00'.repeat(64),
      1,
    );
    const one = await approve(B, p.id, 'deployment.settings', payload);
    assert.equal(one.state, 'pending');
    assert.equal(one.approvals.length, 1);
    await expectCode(approve(C, p.id, 'deployment.settings', payload), 'proposal_already_approved');
    // a malformed kind or payload is invalid_input before anything is written
    await expectCode(propose(A, 'no.such.kind', {}), 'invalid_input');
    await expectCode(propose(A, 'deployment.settings', { ...SETTINGS, timelockDelaySeconds: 60 }), 'invalid_input');
    await expectCode(propose(A, 'deployment.settings', { ...SETTINGS, extra: 1 }), 'invalid_input');
  });

  test('a key without the admin scope is forbidden_scope (audited)', async () => {
    const signKey = await signer.kernel.authenticateApiKey(signer.apiKey);
    const weak: App = { ...signKey, scopes: ['sign'] };
    await expectCode(signer.kernel.listProposals(weak, {}), 'forbidden_scope');
    await expectCode(
      signer.kernel.approveProposal(weak, { id: newId(), admin: B.publicKey, payloadHash: '00'.repeat(32), signature: '00'.repeat(64) }),
      'forbidden_scope',
    );
  });

  test("apikey.create: the proposer makes the token, the key works once applied, is MAC'd, and is refused before", async () => {
    const { id, token, secretHash } = generateApiKeyToken((n) => crypto.getRandomValues(new Uint8Array(n)));
    recordTestSecret('proposed key', token);
    const payload = { id, name: 'backend', tenant: 'default', scopes: ['sign', 'derive'], secretHash: Buffer.from(secretHash).toString('hex') };
    const p = await propose(B, 'apikey.create', payload);
    await expectCode(signer.kernel.authenticateApiKey(token), 'unauthorized');
    await approve(A, p.id, 'apikey.create', payload);
    await expectCode(signer.kernel.authenticateApiKey(token), 'unauthorized');
    const applied = await approve(C, p.id, 'apikey.create', payload);
    assert.deepEqual(applied.result, { apiKeyId: id });
    const made = await signer.kernel.authenticateApiKey(token);
    assert.deepEqual([made.id, made.tenant, made.scopes], [id, 'default', ['sign', 'derive']]);
    // the admin scope only for the operator tenant
    await expectCode(propose(B, 'apikey.create', { ...payload, id: 'ab'.repeat(8), scopes: ['admin'] }), 'invalid_input');
  });

  test('two last approvals at once through two replicas (two kernels, two connections): applied once, one quorum.apply record', async (t) => {
    const payload = { ...SETTINGS, timelockDelaySeconds: 5 * 3600 };
    const p = await propose(C, 'deployment.settings', payload);
    const otherStore = await openStore(signer.location);
    const other = await Kernel.open({ store: otherStore, now: () => signer.clock.now });
    t.after(async () => {
      other.seal();
      await otherStore.close();
    });
    await other.unseal(passphrase());
    const otherApp = await other.authenticateApiKey(signer.apiKey);
    const hash = computePayloadHash('deployment.settings', payload);
    const [x, y] = await Promise.allSettled([
      approve(A, p.id, 'deployment.settings', payload),
      other.approveProposal(otherApp, {
        id: p.id,
        admin: B.publicKey,
        payloadHash: hash,
        signature: signAdminMessage(B.privateKey, APPROVE_LABEL, st(p.id, hash)),
      }),
    ]);
    assert.equal(x.status, 'fulfilled');
    assert.equal(y.status, 'fulfilled');
    assert.deepEqual([x, y].map((r) => (r.status === 'fulfilled' ? r.value.state : 'refused')).sort(), ['applied', 'pending']);
    assert.equal((await auditOf(p.id)).filter((r) => r.action === 'quorum.apply').length, 1);
    assert.equal((await signer.kernel.readDeploymentSettings()).timelockDelaySeconds, 5 * 3600);
  });

  test('unsealer.change: a rekey without an applied proposal is quorum_required; with one it switches and uses it up', async () => {
    const rekey = (proposalId?: string) =>
      rekeySigner({
        store: signer.store,
        current: { type: 'passphrase', passphrase: passphrase() },
        next: { type: 'passphrase', passphrase: passphrase(), scrypt: { N: 2 ** 10, r: 8, p: 1 } },
        ...(proposalId === undefined ? {} : { proposalId }),
      });
    await expectCode(rekey(), 'quorum_required');
    const payload = { unsealer: 'passphrase' };
    const p = await propose(A, 'unsealer.change', payload);
    await approve(B, p.id, 'unsealer.change', payload);
    await expectCode(rekey(p.id), 'quorum_required'); // still pending
    const other = { unsealer: 'shamir', shares: 3, threshold: 2 };
    const q = await propose(A, 'unsealer.change', other);
    await approve(B, q.id, 'unsealer.change', other);
    await approve(C, q.id, 'unsealer.change', other);
    await expectCode(rekey(q.id), 'proposal_payload_mismatch'); // allows shares, not a passphrase
    await approve(C, p.id, 'unsealer.change', payload);
    const done = await rekey(p.id);
    assert.equal(done.to, 'passphrase');
    assert.equal((await signer.kernel.getProposal(app, { id: p.id })).state, 'consumed');
    const [record] = (await signer.store.readAudit(1, 100_000)).filter((r) => r.action === 'sys.rekey');
    assert.equal(record?.detail.proposalId, p.id);
    await expectCode(rekey(p.id), 'proposal_not_pending');
  });

  test('signatures are bound to the deployment, the expiry and the proposer: a staging signature, a changed expiry or proposer is admin_signature_invalid', async () => {
    const payload = { ...SETTINGS, timelockDelaySeconds: 6 * 3600 };
    const hash = computePayloadHash('deployment.settings', payload);
    // a proposal signed for another signer (staging) is refused on this one
    const id = newId();
    const expiresAt = signer.clock.now + 3600_000;
    const staging = { signerId: 'staging-signer-id', id, proposer: A.publicKey, expiresAt, payloadHash: hash };
    const proposeWith = (signature: string, over: Record<string, unknown> = {}) =>
      signer.kernel.proposeChange(app, { id, kind: 'deployment.settings', payload, proposer: A.publicKey, signature, expiresAt, ...over });
    await expectCode(proposeWith(signAdminMessage(A.privateKey, PROPOSE_LABEL, staging)), 'admin_signature_invalid');
    // the expiry is the proposer's, signed: moved by the caller, the signature no longer holds
    const good = signAdminMessage(A.privateKey, PROPOSE_LABEL, { ...staging, signerId: signer.kernel.signerId as string });
    await expectCode(proposeWith(good, { expiresAt: expiresAt + 30 * 24 * 3600_000 - 3600_000 }), 'admin_signature_invalid');
    // an expiry outside 60 s – 30 days from now is invalid_input before any signature is checked
    for (const bad of [signer.clock.now, signer.clock.now + 31 * 24 * 3600_000, 1.5, '1'])
      await expectCode(proposeWith(good, { expiresAt: bad }), 'invalid_input');
    q.note(id, A.publicKey, expiresAt);
    await proposeWith(good);
    // B's approval signed for staging (same id, payload, proposer and expiry) does not count here
    await expectCode(
      signer.kernel.approveProposal(app, {
        id,
        admin: B.publicKey,
        payloadHash: hash,
        signature: signAdminMessage(B.privateKey, APPROVE_LABEL, { ...staging, signerId: 'staging-signer-id' }),
      }),
      'admin_signature_invalid',
    );
    // nor one signed for another expiry or another proposer
    for (const other of [{ expiresAt: expiresAt + 1 }, { proposer: C.publicKey }])
      await expectCode(
        signer.kernel.approveProposal(app, {
          id,
          admin: B.publicKey,
          payloadHash: hash,
          signature: signAdminMessage(B.privateKey, APPROVE_LABEL, { ...st(id, hash), ...other }),
        }),
        'admin_signature_invalid',
      );
    assert.equal((await approve(B, id, 'deployment.settings', payload)).approvals.length, 1);
  });

  test('a proposal id is used once: proposed again after its row (and its approvals) were deleted by hand, it is proposal_exists; the old signatures replay nothing', async () => {
    const payload = { ...SETTINGS, timelockDelaySeconds: 7 * 3600 };
    const p = await propose(A, 'deployment.settings', payload);
    await approve(B, p.id, 'deployment.settings', payload);
    assert.equal((await approve(C, p.id, 'deployment.settings', payload)).state, 'applied');
    const [row] = await signer.sql('SELECT proposer_signature FROM proposals WHERE id = $1', p.id);
    const approvals = await signer.sql('SELECT admin, signature FROM proposal_approvals WHERE proposal_id = $1', p.id);
    await signer.sql('DELETE FROM proposal_approvals WHERE proposal_id = $1', p.id);
    await signer.sql('DELETE FROM proposals WHERE id = $1', p.id);
    // the DB writer replays the proposer's signature, then the approvals
    const known = q.statement(p.id, '');
    await expectCode(
      signer.kernel.proposeChange(app, {
        id: p.id,
        kind: 'deployment.settings',
        payload,
        proposer: A.publicKey,
        signature: String(row?.proposer_signature),
        expiresAt: known.expiresAt,
      }),
      'proposal_exists',
    );
    for (const a of approvals)
      await expectCode(
        signer.kernel.approveProposal(app, { id: p.id, admin: String(a.admin), payloadHash: p.payloadHash, signature: String(a.signature) }),
        'proposal_not_found',
      );
    // only the quorum.propose record with its id is left: deleting the apply record alone is not enough
    await signer.sql("DELETE FROM audit_log WHERE action = 'quorum.apply' AND detail LIKE $1", `%${p.id}%`);
    await expectCode(
      signer.kernel.proposeChange(app, {
        id: p.id,
        kind: 'deployment.settings',
        payload,
        proposer: A.publicKey,
        signature: String(row?.proposer_signature),
        expiresAt: known.expiresAt,
      }),
      'proposal_exists',
    );
    // a refused proposal (a bad signature) does not use its id up
    const fresh = newId();
    const expiresAt = signer.clock.now + 3600_000;
    q.note(fresh, A.publicKey, expiresAt);
    const hash = computePayloadHash('deployment.settings', payload);
    await expectCode(
      signer.kernel.proposeChange(app, { id: fresh, kind: 'deployment.settings', payload, proposer: A.publicKey, signature: '00'.repeat(64), expiresAt }),
      'admin_signature_invalid',
    );
    await signer.kernel.proposeChange(app, {
      id: fresh,
      kind: 'deployment.settings',
      payload,
      proposer: A.publicKey,
      signature: signAdminMessage(A.privateKey, PROPOSE_LABEL, st(fresh, hash)),
      expiresAt,
    });
  });

  test('a deeply nested or oversized payload is invalid_input naming payload (not a stack overflow), in the kernel and over HTTP (400)', async () => {
    let deep: unknown = 1;
    for (let i = 0; i < 100_000; i += 1) deep = [deep];
    for (const payload of [deep, { policyDefaults: deep }, { timelockDelaySeconds: 3600, webhookUrl: null, policyDefaults: { x: 'y'.repeat(20_000) } }]) {
      const id = newId();
      const details = await expectCode(
        signer.kernel.proposeChange(app, {
          id,
          kind: 'deployment.settings',
          payload,
          proposer: A.publicKey,
          signature: '00'.repeat(64),
          expiresAt: signer.clock.now + 3600_000,
        }),
        'invalid_input',
      );
      assert.equal(details.field, 'payload');
    }
    // the HTTP body: 10 000 levels of nesting
    const body = `{"id":"${newId()}","kind":"deployment.settings","proposer":"${A.publicKey}","signature":"${'00'.repeat(64)}","expiresAt":${signer.clock.now + 3600_000},"payload":${'['.repeat(10_000)}${']'.repeat(10_000)}}`;
    const res = await signer.app.inject({
      method: 'POST',
      url: '/v1/admin/proposals',
      headers: { ...signer.auth(signer.apiKey), 'content-type': 'application/json' },
      payload: body,
    });
    assert.equal(res.statusCode, 400, res.body);
    assert.equal(res.json().error.code, 'invalid_input');
    assert.equal(res.json().error.details.field, 'payload');
  });

  test('quorum.set: M ≥ N refused at proposal; a new set applies and the old admin is out; a deleted set row is record_unreadable', async () => {
    await expectCode(propose(A, 'quorum.set', { threshold: 3, admins: [adminEntry(A), adminEntry(B), adminEntry(D)] }), 'quorum_threshold_invalid');
    const next = { threshold: 2, admins: [adminEntry(A), adminEntry(B), adminEntry(D)] };
    const p = await propose(A, 'quorum.set', next);
    await approve(B, p.id, 'quorum.set', next);
    assert.equal((await approve(C, p.id, 'quorum.set', next)).state, 'applied');
    const list = await signer.kernel.listProposals(app, {});
    assert.deepEqual(
      list.quorum?.admins.map((a) => a.publicKey),
      next.admins.map((a) => a.publicKey),
    );
    await expectCode(propose(C, 'deployment.settings', SETTINGS), 'admin_unknown');
    // the settings row tampered with: refused
    await signer.sql("UPDATE kernel_settings SET value = replace(value, '\"threshold\":2', '\"threshold\":1') WHERE name = 'quorum'");
    await expectCode(propose(A, 'deployment.settings', SETTINGS), 'record_unreadable');
    // the row deleted (to switch the quorum off): the bootstrap's record says it existed
    await signer.sql("DELETE FROM kernel_settings WHERE name = 'quorum'");
    await expectCode(propose(A, 'deployment.settings', SETTINGS), 'record_unreadable');
    await expectCode(createApiKey(signer.store, { name: 'direct', scopes: ['sign'] }), 'quorum_required');
  });
});

describe('admin quorum: compatibility sessions', () => {
  test("a session row inserted by hand for a MAC'd key is refused under the quorum; one the kernel made works", async () => {
    const s = await createTestSigner({ scopes: ['admin', 'sign'] });
    try {
      const sApp = await s.kernel.authenticateApiKey(s.apiKey);
      const made = await s.kernel.createSession(sApp);
      recordTestSecret('session token', made.accessToken);
      await bootstrapQuorumOffline({
        store: s.store,
        credential: { type: 'passphrase', passphrase: passphrase() },
        quorum: { threshold: 1, admins: [adminEntry(A), adminEntry(B)] },
      });
      assert.equal((await s.kernel.authenticateSession(made.accessToken)).id, sApp.id, 'a session the kernel made carries its MAC');
      // a session row written by hand for the (MAC'd, legitimate) key, with a token the writer knows
      const token = 'A'.repeat(43);
      const { createHash } = await import('node:crypto');
      const tokenHash = createHash('sha256').update('custos.session.v1\0').update(token).digest('hex');
      await s.sql('INSERT INTO sessions (token_hash, api_key_id, expires_at) VALUES ($1, $2, $3)', tokenHash, sApp.id, s.clock.now + 600_000);
      await expectCode(s.kernel.authenticateSession(token), 'unauthorized');
      // the kernel's session with its expiry pushed back by hand: the MAC no longer holds
      await s.sql('UPDATE sessions SET expires_at = expires_at + 1 WHERE api_key_id = $1 AND mac IS NOT NULL', sApp.id);
      await expectCode(s.kernel.authenticateSession(made.accessToken), 'unauthorized');
    } finally {
      await s.close();
    }
  });
});

describe('admin quorum: announcements', () => {
  test('a proposal and its application are announced to every admin (each has an address), by e-mail through a real SMTP server', async () => {
    const s = await createTestSigner({ scopes: ['admin'] });
    const delivery = await startTestDelivery(s, { publicUrl: 'http://localhost:1', watch: false });
    try {
      await bootstrapQuorumOffline({
        store: s.store,
        credential: { type: 'passphrase', passphrase: passphrase() },
        quorum: {
          threshold: 1,
          admins: [adminEntry(A), adminEntry(B), adminEntry(C)],
        },
      });
      const sApp = await s.kernel.authenticateApiKey(s.apiKey);
      const id = newId();
      const payload = { ...SETTINGS, timelockDelaySeconds: 4 * 3600 };
      const hash = computePayloadHash('deployment.settings', payload);
      const expiresAt = s.clock.now + 3600_000;
      q.note(id, A.publicKey, expiresAt);
      await s.kernel.proposeChange(sApp, {
        id,
        kind: 'deployment.settings',
        payload,
        proposer: A.publicKey,
        signature: signAdminMessage(A.privateKey, PROPOSE_LABEL, st(id, hash, s.kernel)),
        expiresAt,
      });
      const received = async (n: number) => {
        const count = delivery.mail.received.length;
        await delivery.loop.runOnce();
        while (delivery.mail.received.length < count + n) await delivery.mail.nextMail(delivery.mail.received.length);
        return delivery.mail.received.slice(count);
      };
      const everyAdmin = [A.email, B.email, C.email].sort();
      const proposed = await received(3);
      assert.deepEqual(proposed.map((m) => m.to).sort(), everyAdmin);
      for (const m of proposed) {
        assert.match(m.subject, new RegExp(`^Custos admin quorum: Proposal ${id} \\(deployment.settings\\)`));
        assert.match(m.text, /timelock 14400 s/);
        assert.match(m.text, new RegExp(`custos admin show --id ${id}`));
      }
      await s.kernel.approveProposal(sApp, {
        id,
        admin: C.publicKey,
        payloadHash: hash,
        signature: signAdminMessage(C.privateKey, APPROVE_LABEL, st(id, hash, s.kernel)),
      });
      const applied = await received(3);
      assert.deepEqual(applied.map((m) => m.to).sort(), everyAdmin);
      for (const m of applied) assert.match(m.text, new RegExp(`Proposal ${id} \\(deployment.settings\\) was approved by 1 admins and applied`));
      const records = (await s.store.readAudit(1, 1000)).filter((r) => r.detail.proposalId === id);
      assert.deepEqual(
        records.map((r) => [r.action, r.detail.announced ?? null]),
        [
          ['quorum.propose', 3],
          ['quorum.approve', null],
          ['quorum.apply', 3],
        ],
      );
      // an address that is not an e-mail address is refused at set-up
      await expectCode(propose(A, 'quorum.set', { threshold: 1, admins: [{ ...adminEntry(A), email: 'not an address' }, adminEntry(B)] }), 'invalid_input');
    } finally {
      await delivery.close();
      await s.close();
    }
  });
});

describe('admin quorum: the sealed root carries the mark (review finding 1)', () => {
  test('a database writer deletes the set row and renames the bootstrap record: after a restart a hand-inserted key is still refused, everything quorum-protected is refused; stripping the mark stops the unseal', async () => {
    const s = await createTestSigner({ scopes: ['admin'] });
    const credential = { type: 'passphrase' as const, passphrase: passphrase() };
    try {
      await bootstrapQuorumOffline({ store: s.store, credential, quorum: { threshold: 1, admins: [adminEntry(A), adminEntry(B)] } });
      const [meta] = await s.sql('SELECT sealed_root FROM meta WHERE id = 1');
      const envelope = JSON.parse(String(meta?.sealed_root)) as Record<string, unknown>;
      assert.equal(envelope.quorum, true, 'the bootstrap marked the sealed root');
      await s.restart(); // the same passphrase unseals the marked root
      assert.equal((await s.kernel.authenticateApiKey(s.apiKey)).tenant, 'system', "the operator's key (MAC'd at bootstrap) still works");

      // the database writer: the set's row deleted, the bootstrap's record renamed, a key inserted by hand
      await s.sql("DELETE FROM kernel_settings WHERE name = 'quorum'");
      await s.sql("UPDATE audit_log SET action = 'sys.note' WHERE action = 'quorum.bootstrap'");
      assert.equal(Number((await s.sql("SELECT count(*) AS n FROM audit_log WHERE action = 'quorum.bootstrap'"))[0]?.n), 0);
      const { id, token, secretHash } = generateApiKeyToken((n) => crypto.getRandomValues(new Uint8Array(n)));
      recordTestSecret('hand-inserted key after the row was deleted', token);
      await s.sql(
        'INSERT INTO api_keys (id, name, tenant, scopes, secret_hash, created_at, revoked_at) VALUES ($1, $2, $3, $4, $5, $6, NULL)',
        id,
        'by hand',
        'system',
        'admin,sign',
        Buffer.from(secretHash),
        s.clock.now,
      );
      await s.restart(); // a fresh process: nothing sticky in memory
      await expectCode(s.kernel.authenticateApiKey(token), 'unauthorized');
      const res = await s.app.inject({ method: 'GET', url: '/v1/admin/proposals', headers: s.auth(token) });
      assert.equal(res.statusCode, 401);
      const sApp = await s.kernel.authenticateApiKey(s.apiKey);
      const pid = newId();
      const expiresAt = s.clock.now + 3600_000;
      const hash = computePayloadHash('deployment.settings', SETTINGS);
      q.note(pid, A.publicKey, expiresAt);
      await expectCode(
        s.kernel.proposeChange(sApp, {
          id: pid,
          kind: 'deployment.settings',
          payload: SETTINGS,
          proposer: A.publicKey,
          signature: signAdminMessage(A.privateKey, PROPOSE_LABEL, st(pid, hash, s.kernel)),
          expiresAt,
        }),
        'record_unreadable',
      );
      await expectCode(s.kernel.listProposals(sApp, {}), 'record_unreadable');
      // the offline paths: apikey create, a second bootstrap, a rekey without a proposal
      await expectCode(createApiKey(s.store, { name: 'direct', scopes: ['sign'] }), 'quorum_required');
      await expectCode(
        bootstrapQuorumOffline({ store: s.store, credential, quorum: { threshold: 1, admins: [adminEntry(A), adminEntry(D)] } }),
        'record_unreadable',
      );
      await expectCode(
        rekeySigner({ store: s.store, current: credential, next: { type: 'passphrase', passphrase: passphrase(), scrypt: { N: 2 ** 10, r: 8, p: 1 } } }),
        'record_unreadable',
      );
      // stripping the mark from the envelope: the signer no longer unseals (unseal_failed)
      const { quorum: _mark, ...stripped } = envelope;
      await s.sql('UPDATE meta SET sealed_root = $1 WHERE id = 1', JSON.stringify(stripped));
      const other = await Kernel.open({ store: s.store, now: () => s.clock.now });
      await expectCode(other.unseal(passphrase()), 'unseal_failed');
      await s.sql('UPDATE meta SET sealed_root = $1 WHERE id = 1', JSON.stringify(envelope));
    } finally {
      await s.close();
    }
  });

  test('a rekey (with its applied unsealer.change proposal) carries the mark', async () => {
    const s = await createTestSigner({ scopes: ['admin'] });
    try {
      await bootstrapQuorumOffline({
        store: s.store,
        credential: { type: 'passphrase', passphrase: passphrase() },
        quorum: { threshold: 1, admins: [adminEntry(A), adminEntry(B)] },
      });
      const sApp = await s.kernel.authenticateApiKey(s.apiKey);
      const payload = { unsealer: 'passphrase' };
      const id = newId();
      const expiresAt = s.clock.now + 3600_000;
      q.note(id, A.publicKey, expiresAt);
      const hash = computePayloadHash('unsealer.change', payload);
      await s.kernel.proposeChange(sApp, {
        id,
        kind: 'unsealer.change',
        payload,
        proposer: A.publicKey,
        signature: signAdminMessage(A.privateKey, PROPOSE_LABEL, st(id, hash, s.kernel)),
        expiresAt,
      });
      await s.kernel.approveProposal(sApp, {
        id,
        admin: B.publicKey,
        payloadHash: hash,
        signature: signAdminMessage(B.privateKey, APPROVE_LABEL, st(id, hash, s.kernel)),
      });
      await rekeySigner({
        store: s.store,
        current: { type: 'passphrase', passphrase: passphrase() },
        next: { type: 'passphrase', passphrase: passphrase(), scrypt: { N: 2 ** 10, r: 8, p: 1 } },
        proposalId: id,
      });
      const [meta] = await s.sql('SELECT sealed_root FROM meta WHERE id = 1');
      assert.equal((JSON.parse(String(meta?.sealed_root)) as { quorum?: boolean }).quorum, true, 'the rekeyed root is marked');
      await s.restart();
    } finally {
      await s.close();
    }
  });
});
