import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  type AdminStatement,
  APPROVE_LABEL,
  type App,
  type AuditRecord,
  bootstrapQuorumOffline,
  computePayloadHash,
  createApiKey,
  generateAdminKey,
  PROPOSE_LABEL,
  parseAdminKeyFile,
  revokeApiKey,
  signAdminMessage,
} from '@custos/kernel';
import {
  createTestSigner,
  QUORUM_APPROVED_STAND_IN,
  RAW_HASHES_ALLOWED,
  recordTestSecret,
  runSql,
  TEST_PASSPHRASE,
  type TestSigner,
} from './testing/createTestSigner.js';
import { openStore } from './openStore.js';
import { expectCode } from './testing/expectCode.js';
import { totpFromUri } from './testing/totpFromUri.js';

// Row rollback by a database writer (issue 13 review; kernel/rowAnchors.ts, docs/threat-model.md):
// every attack copies the REAL bytes of a row as it was earlier (SELECT before), lets the kernel move
// on, and writes the old row back (UPDATE after) with the MAC it had then — a row the MAC check alone
// accepts. The use of the row must refuse it `record_unreadable`, audited where the path audits.

const T0 = Date.UTC(2026, 11, 7, 9, 0, 0);
const HOUR = 3_600_000;
const DELAY = 48 * HOUR;
const HASH = `0x${'42'.repeat(32)}`;

type Row = Record<string, unknown>;

/** The row as it is now, every column (the attacker's copy). */
async function snapshot(signer: TestSigner, table: string, keyColumn: string, key: string): Promise<Row> {
  const [row] = await signer.sql(`SELECT * FROM ${table} WHERE ${keyColumn} = $1`, key);
  assert.ok(row, `a ${table} row ${key}`);
  return row;
}

/** Writes every column of an earlier copy back over the row (or inserts it again when it was deleted). */
async function putBack(signer: Pick<TestSigner, 'sql'>, table: string, keyColumn: string, row: Row): Promise<void> {
  const columns = Object.keys(row).filter((c) => c !== keyColumn);
  const [present] = await signer.sql(`SELECT 1 AS one FROM ${table} WHERE ${keyColumn} = $1`, row[keyColumn]);
  if (present === undefined) {
    const all = Object.keys(row);
    await signer.sql(`INSERT INTO ${table} (${all.join(', ')}) VALUES (${all.map((_, i) => `$${i + 1}`).join(', ')})`, ...all.map((c) => row[c]));
    return;
  }
  await signer.sql(
    `UPDATE ${table} SET ${columns.map((c, i) => `${c} = $${i + 1}`).join(', ')} WHERE ${keyColumn} = $${columns.length + 1}`,
    ...columns.map((c) => row[c]),
    row[keyColumn],
  );
}

async function lastAudit(signer: TestSigner, action: string): Promise<AuditRecord> {
  const found = (await signer.store.readAudit(1, 100_000)).filter((r) => r.action === action).at(-1);
  assert.ok(found, `an audit record ${action}`);
  return found;
}

describe('row rollback: wallet rows, pending changes, policy overrides, API keys', () => {
  let signer: TestSigner;
  let app: App;
  let admin: App;
  const uris = new Map<string, string>();

  before(async () => {
    // TOTP-only wallets' changes also need the admins: a stand-in says "approved" (the timelock is not the subject here).
    signer = await createTestSigner({ policyDefaults: RAW_HASHES_ALLOWED, startMs: T0, kernelOptions: { timelock: { hooks: QUORUM_APPROVED_STAND_IN } } });
    app = await signer.kernel.authenticateApiKey(signer.apiKey);
    const { token } = await createApiKey(signer.store, { name: 'ops', scopes: ['admin'], tenant: 'system' });
    recordTestSecret('adminApiKey', token);
    admin = await signer.kernel.authenticateApiKey(token);
  });
  after(async () => {
    await signer.close();
  });

  function nextCode(walletName: string): string {
    signer.clock.now += 30_000;
    return totpFromUri(uris.get(walletName) as string, signer.clock.now);
  }

  async function enrolled(walletName: string): Promise<void> {
    const { otpauthUri } = await signer.kernel.enrollTotp(app, { walletName });
    recordTestSecret('otpauthUri', otpauthUri);
    uris.set(walletName, otpauthUri);
  }

  const sign = (walletName: string) => signer.kernel.signHash(app, { walletName, keyIndex: 0, hash: HASH, code: nextCode(walletName) });

  it('the newest anchor is one lookup in the partial index (migration 17), never a scan of the log', async () => {
    const lookup = "SELECT * FROM audit_log WHERE action = 'row.anchor' AND op_hash = $1 ORDER BY seq DESC LIMIT 1";
    if (signer.store.kind === 'sqlite') {
      const plan = (await signer.sql(`EXPLAIN QUERY PLAN ${lookup}`, 'ab'.repeat(32))).map((r) => String(r.detail));
      // one index search on op_hash, in seq order (no scan, no sort): the partial index, or the audit
      // filters' (op_hash, seq) index of migration 20, which SQLite's planner may prefer
      assert.equal(plan.length, 1, plan.join(' | '));
      assert.match(plan[0] ?? '', /^SEARCH audit_log USING INDEX audit_log_(row_anchor|op_hash) \(op_hash=\?\)$/);
    } else {
      const [index] = await signer.sql("SELECT indexdef FROM pg_indexes WHERE indexname = 'audit_log_row_anchor' AND schemaname = current_schema()");
      assert.match(String(index?.indexdef), /ON \S*audit_log USING btree \(op_hash, seq\) WHERE \(action = 'row\.anchor'::text\)/);
    }
  });

  it('the wallet row from before a freeze, put back with its MAC: the signature is refused record_unreadable, audited; the apply loop applies nothing', async () => {
    await enrolled('frozen-1');
    await sign('frozen-1');
    // A timelocked 2FA removal is pending when the owner freezes the wallet.
    const change = await signer.kernel.requestChange(app, { walletName: 'frozen-1', kind: '2fa.disable' });
    recordTestSecret('changeCapability', change.capability);
    await signer.kernel.confirmChange(change.capability, { kind: 'totp', proof: nextCode('frozen-1') });
    const before = await snapshot(signer, 'wallets', 'name', 'frozen-1');
    assert.equal(before.frozen_at, null);
    await signer.kernel.freezeWalletByAdmin(admin, { walletName: 'frozen-1' });
    await expectCode(sign('frozen-1'), 'wallet_frozen');

    await putBack(signer, 'wallets', 'name', before);
    // The row is exactly as before the freeze and its MAC holds (the wallet reads as unfrozen)...
    assert.equal((await snapshot(signer, 'wallets', 'name', 'frozen-1')).frozen_at, null);
    // ...but the log says frozen: refused, audited.
    const details = await expectCode(sign('frozen-1'), 'record_unreadable');
    assert.equal(details.row, 'wallet.freeze');
    const denied = await lastAudit(signer, 'sign.hash');
    assert.deepEqual([denied.walletName, denied.decision, denied.reason], ['frozen-1', 'denied', 'record_unreadable']);
    // Nor does an approval start through it (approvals check the freeze through the anchor too).
    const approval = await expectCode(
      signer.kernel.createApproval(app, { walletName: 'frozen-1', keyIndex: 0, operation: { message: { text: 'hi' } } }),
      'record_unreadable',
    );
    assert.equal(approval.row, 'wallet.freeze');
    // The pending removal of the factor does not take effect through the rolled-back row either.
    signer.clock.now += DELAY + HOUR;
    assert.equal(await signer.kernel.applyDueChanges(), 0);
    const apply = await lastAudit(signer, 'change.apply');
    assert.deepEqual([apply.walletName, apply.decision, apply.reason], ['frozen-1', 'denied', 'record_unreadable']);
    assert.equal((await signer.kernel.getChange(app, { id: change.id })).state, 'pending');
  });

  it('the row from before an unfreeze (frozen again later) does not pass either: the anchor is the freeze of NOW', async () => {
    await enrolled('frozen-2');
    await signer.kernel.freezeWalletByAdmin(admin, { walletName: 'frozen-2' });
    const firstFreeze = await snapshot(signer, 'wallets', 'name', 'frozen-2');
    const unfrozen = await signer.kernel.unfreezeWallet({ walletName: 'frozen-2' }, { kind: 'quorum', proposalId: 'test' });
    assert.equal(unfrozen.wasFrozen, true);
    const afterUnfreeze = await snapshot(signer, 'wallets', 'name', 'frozen-2');
    await sign('frozen-2');
    signer.clock.now += 60_000;
    await signer.kernel.freezeWalletByAdmin(admin, { walletName: 'frozen-2' });
    // Put back the unfrozen row: refused.
    await putBack(signer, 'wallets', 'name', afterUnfreeze);
    await expectCode(sign('frozen-2'), 'record_unreadable');
    // Put back the row of the FIRST freeze (frozen, an older frozenAt): refused as well, not taken for the current freeze.
    await putBack(signer, 'wallets', 'name', firstFreeze);
    await expectCode(sign('frozen-2'), 'record_unreadable');
  });

  it('a cancelled 2fa.disable put back to pending: the apply loop does not apply it, refuses it record_unreadable (audited) and sets it back to cancelled', async () => {
    await enrolled('change-1');
    const change = await signer.kernel.requestChange(app, { walletName: 'change-1', kind: '2fa.disable' });
    recordTestSecret('changeCapability', change.capability);
    await signer.kernel.confirmChange(change.capability, { kind: 'totp', proof: nextCode('change-1') });
    const pending = await snapshot(signer, 'pending_changes', 'id', change.id);
    assert.equal(pending.state, 'pending');
    assert.equal((await signer.kernel.cancelChange(change.capability, { kind: 'totp', proof: nextCode('change-1') })).state, 'cancelled');

    await putBack(signer, 'pending_changes', 'id', pending);
    assert.equal((await signer.kernel.getChange(app, { id: change.id })).state, 'pending', 'the row is the pending one, its MAC holds');
    signer.clock.now += DELAY + HOUR;
    assert.equal(await signer.kernel.applyDueChanges(), 0);
    const apply = (await signer.store.readAudit(1, 100_000)).filter((r) => r.action === 'change.apply' && r.detail.changeId === change.id);
    assert.deepEqual(
      apply.map((r) => [r.decision, r.reason]),
      [['denied', 'record_unreadable']],
    );
    // The factor is still in force, and the row says what the log says; the next pass audits nothing more.
    await expectCode(signer.kernel.signHash(app, { walletName: 'change-1', keyIndex: 0, hash: HASH }), 'code_required');
    assert.equal((await signer.kernel.getChange(app, { id: change.id })).state, 'cancelled');
    assert.equal(await signer.kernel.applyDueChanges(), 0);
    assert.equal((await signer.store.readAudit(1, 100_000)).filter((r) => r.action === 'change.apply' && r.detail.changeId === change.id).length, 1);
  });

  it('a cancelled request put back to requested: the owner cannot confirm it (record_unreadable, audited)', async () => {
    await enrolled('change-2');
    const change = await signer.kernel.requestChange(app, { walletName: 'change-2', kind: '2fa.disable' });
    recordTestSecret('changeCapability', change.capability);
    const requested = await snapshot(signer, 'pending_changes', 'id', change.id);
    await signer.kernel.cancelChange(change.capability, { kind: 'totp', proof: nextCode('change-2') });
    await putBack(signer, 'pending_changes', 'id', requested);
    await expectCode(signer.kernel.confirmChange(change.capability, { kind: 'totp', proof: nextCode('change-2') }), 'record_unreadable');
    const confirm = await lastAudit(signer, 'change.confirm');
    assert.deepEqual([confirm.detail.changeId, confirm.decision, confirm.reason], [change.id, 'denied', 'record_unreadable']);
  });

  it('an older, looser policy override put back (or the override deleted): signing beyond the current policy is refused record_unreadable, audited', async () => {
    await enrolled('policy-1');
    // Two tightenings (each applied at once): the first allows raw hashes, the second refuses them.
    await signer.kernel.setWalletPolicy(app, { walletName: 'policy-1', policy: { rawHash: 'allow', maxSignaturesPerWindow: 100 } });
    await sign('policy-1');
    const looser = await snapshot(signer, 'wallet_policies', 'wallet_name', 'policy-1');
    await signer.kernel.setWalletPolicy(app, { walletName: 'policy-1', policy: { rawHash: 'deny', maxSignaturesPerWindow: 100 } });
    await expectCode(sign('policy-1'), 'policy_operation_not_allowed');

    await putBack(signer, 'wallet_policies', 'wallet_name', looser);
    await expectCode(sign('policy-1'), 'record_unreadable');
    const denied = await lastAudit(signer, 'sign.hash');
    assert.deepEqual([denied.walletName, denied.decision, denied.reason], ['policy-1', 'denied', 'record_unreadable']);
    // GET /v1/wallets/policy does not show the rolled-back override as the policy in force either.
    assert.equal((await expectCode(signer.kernel.getWalletPolicy(app, { walletName: 'policy-1' }), 'record_unreadable')).row, 'wallet.policy');
    // Deleting the override (the deployment's defaults allow raw hashes) is refused too.
    await signer.sql('DELETE FROM wallet_policies WHERE wallet_name = $1', 'policy-1');
    await expectCode(sign('policy-1'), 'record_unreadable');
    await expectCode(signer.kernel.getWalletPolicy(app, { walletName: 'policy-1' }), 'record_unreadable');
  });

  it('a revoked API key put back unrevoked: refused record_unreadable, audited (apikey.use)', async () => {
    const { id, token } = await createApiKey(signer.store, { name: 'revoked-later', scopes: ['sign'] });
    recordTestSecret('apiKey', token);
    assert.equal((await signer.kernel.authenticateApiKey(token)).id, id);
    const active = await snapshot(signer, 'api_keys', 'id', id);
    await revokeApiKey(signer.store, id, () => signer.clock.now);
    await expectCode(signer.kernel.authenticateApiKey(token), 'unauthorized');

    // Written from a connection of its own, as a database writer would (SQLite's key cache follows other connections' writes).
    const writer = await openStore(signer.location);
    try {
      await putBack({ sql: (text, ...params) => runSql(writer, text, params) }, 'api_keys', 'id', active);
    } finally {
      await writer.close();
    }
    await expectCode(signer.kernel.authenticateApiKey(token), 'record_unreadable');
    const use = await lastAudit(signer, 'apikey.use');
    assert.deepEqual([use.appId, use.decision, use.reason], [id, 'denied', 'record_unreadable']);
    // Over HTTP: no request of that key is served.
    const res = await signer.app.inject({
      method: 'POST',
      url: '/v1/sign/hash',
      headers: signer.auth(token),
      payload: { walletName: 'any', keyIndex: 0, hash: HASH },
    });
    assert.equal(res.statusCode, 503);
    assert.equal(res.json().error.code, 'record_unreadable');
  });
});

describe('row rollback: the admin set and the deployment settings', () => {
  let signer: TestSigner;
  let app: App;
  const admins = Array.from({ length: 4 }, () => parseAdminKeyFile(JSON.stringify(generateAdminKey())));
  const [A, B, C, D] = admins as [(typeof admins)[0], (typeof admins)[0], (typeof admins)[0], (typeof admins)[0]];
  let counter = 0;

  before(async () => {
    signer = await createTestSigner({ scopes: ['admin', 'register', 'derive', 'sign'], startMs: T0 });
    app = await signer.kernel.authenticateApiKey(signer.apiKey);
    await bootstrapQuorumOffline({
      store: signer.store,
      credential: { type: 'passphrase', passphrase: new TextEncoder().encode(TEST_PASSPHRASE) },
      quorum: {
        threshold: 2,
        admins: [
          { publicKey: A.publicKey, email: 'A@example.com' },
          { publicKey: B.publicKey, email: 'B@example.com' },
          { publicKey: C.publicKey, email: 'C@example.com' },
        ],
      },
      now: () => signer.clock.now,
    });
  });
  after(async () => {
    await signer.close();
  });

  function statement(id: string, payloadHash: string, proposer: string, expiresAt: number): AdminStatement {
    return { signerId: signer.kernel.signerId as string, id, payloadHash, proposer, expiresAt };
  }

  function propose(by: typeof A, kind: string, payload: unknown) {
    counter += 1;
    const id = counter.toString(16).padStart(32, '0');
    const expiresAt = signer.clock.now + HOUR;
    const payloadHash = computePayloadHash(kind, payload);
    const signature = signAdminMessage(by.privateKey, PROPOSE_LABEL, statement(id, payloadHash, by.publicKey, expiresAt));
    return {
      id,
      sent: signer.kernel.proposeChange(app, { id, kind, payload, proposer: by.publicKey, signature, expiresAt }),
      approve: (approver: typeof A) =>
        signer.kernel.approveProposal(app, {
          id,
          admin: approver.publicKey,
          payloadHash,
          signature: signAdminMessage(approver.privateKey, APPROVE_LABEL, statement(id, payloadHash, by.publicKey, expiresAt)),
        }),
    };
  }

  /** A proposal of A applied with the approvals of B and D (the admin set once C is replaced). */
  async function applied(kind: string, payload: unknown): Promise<void> {
    const p = propose(A, kind, payload);
    await p.sent;
    await p.approve(B);
    assert.equal((await p.approve(D)).state, 'applied');
  }

  /** The admin-set row as the kernel last wrote it (A, B, D), copied right after it was written. */
  let currentQuorumRow: Row | undefined;

  it('an older admin set (with an admin since removed) put back: that admin is refused record_unreadable, audited; the row deleted: refused too', async () => {
    const older = await snapshot(signer, 'kernel_settings', 'name', 'quorum');
    // C is replaced by D.
    const p = propose(A, 'quorum.set', {
      threshold: 2,
      admins: [
        { publicKey: A.publicKey, email: 'A@example.com' },
        { publicKey: B.publicKey, email: 'B@example.com' },
        { publicKey: D.publicKey, email: 'D@example.com' },
      ],
    });
    await p.sent;
    await p.approve(B);
    assert.equal((await p.approve(C)).state, 'applied');
    currentQuorumRow = await snapshot(signer, 'kernel_settings', 'name', 'quorum');
    const settings = { timelockDelaySeconds: 3600, webhookUrl: null, policyDefaults: {} };
    await expectCode(propose(C, 'deployment.settings', settings).sent, 'admin_unknown');

    await putBack(signer, 'kernel_settings', 'name', older);
    await expectCode(propose(C, 'deployment.settings', settings).sent, 'record_unreadable');
    const refused = await lastAudit(signer, 'quorum.propose');
    assert.deepEqual([refused.decision, refused.reason], ['denied', 'record_unreadable']);
    await expectCode(signer.kernel.listProposals(app, {}), 'record_unreadable');

    // The current row back: the set works again; deleting it is refused as well.
    await putBack(signer, 'kernel_settings', 'name', currentQuorumRow);
    assert.equal((await signer.kernel.listProposals(app, {})).quorum?.admins.length, 3);
    await signer.sql('DELETE FROM kernel_settings WHERE name = $1', 'quorum');
    await expectCode(signer.kernel.listProposals(app, {}), 'record_unreadable');
    await putBack(signer, 'kernel_settings', 'name', currentQuorumRow);
  });

  it('older deployment settings put back, or the row deleted: record_unreadable where they are read (and the policy defaults are not refreshed from them)', async () => {
    await applied('deployment.settings', { timelockDelaySeconds: 7200, webhookUrl: null, policyDefaults: { rawHash: 'allow' } });
    const older = await snapshot(signer, 'kernel_settings', 'name', 'deployment');
    await applied('deployment.settings', { timelockDelaySeconds: 10800, webhookUrl: null, policyDefaults: { rawHash: 'deny' } });
    assert.equal((await signer.kernel.readDeploymentSettings()).timelockDelaySeconds, 10800);
    assert.equal((await signer.kernel.refreshPolicyDefaults()).rawHash, 'deny');

    await putBack(signer, 'kernel_settings', 'name', older);
    await expectCode(signer.kernel.readDeploymentSettings(), 'record_unreadable');
    await expectCode(signer.kernel.refreshPolicyDefaults(), 'record_unreadable');
    await signer.sql('DELETE FROM kernel_settings WHERE name = $1', 'deployment');
    await expectCode(signer.kernel.readDeploymentSettings(), 'record_unreadable');
    await expectCode(signer.kernel.refreshPolicyDefaults(), 'record_unreadable');
  });
});

describe('row rollback: an older override is never laundered into a pin by a loosening of the defaults (review finding)', () => {
  let signer: TestSigner;
  let app: App;
  const admins = Array.from({ length: 3 }, () => parseAdminKeyFile(JSON.stringify(generateAdminKey())));
  const [A, B, C] = admins as [(typeof admins)[0], (typeof admins)[0], (typeof admins)[0]];
  const DENIED = `0x${'11'.repeat(20)}`;
  let uri = '';
  before(async () => {
    signer = await createTestSigner({
      scopes: ['admin', 'register', 'derive', 'sign'],
      startMs: T0,
      policyDefaults: { rawHash: 'allow', deniedDestinations: [DENIED] },
    });
    app = await signer.kernel.authenticateApiKey(signer.apiKey);
    await bootstrapQuorumOffline({
      store: signer.store,
      credential: { type: 'passphrase', passphrase: new TextEncoder().encode(TEST_PASSPHRASE) },
      quorum: {
        threshold: 2,
        admins: [
          { publicKey: A.publicKey, email: 'A@example.com' },
          { publicKey: B.publicKey, email: 'B@example.com' },
          { publicKey: C.publicKey, email: 'C@example.com' },
        ],
      },
      deployment: { timelockDelaySeconds: 48 * 3600, webhookUrl: null, policyDefaults: { rawHash: 'allow', deniedDestinations: [DENIED] } },
      now: () => signer.clock.now,
    });
    await signer.kernel.refreshPolicyDefaults();
  });
  after(async () => {
    await signer.close();
  });
  const sign = () => {
    signer.clock.now += 30_000;
    return signer.kernel.signHash(app, { walletName: 'launder', keyIndex: 0, hash: HASH, code: totpFromUri(uri, signer.clock.now) });
  };
  it('the admins loosen the defaults while a wallet’s override is rolled back: the apply is refused record_unreadable, nothing pinned, the wallet still refused', async () => {
    uri = (await signer.kernel.enrollTotp(app, { walletName: 'launder' })).otpauthUri;
    recordTestSecret('otpauthUri', uri);
    await signer.kernel.setWalletPolicy(app, { walletName: 'launder', policy: { rawHash: 'allow', maxSignaturesPerWindow: 100 } });
    await sign();
    const looser = await snapshot(signer, 'wallet_policies', 'wallet_name', 'launder');
    await signer.kernel.setWalletPolicy(app, { walletName: 'launder', policy: { rawHash: 'deny', maxSignaturesPerWindow: 100 } });
    await expectCode(sign(), 'policy_operation_not_allowed');
    await putBack(signer, 'wallet_policies', 'wallet_name', looser);
    await expectCode(sign(), 'record_unreadable');
    // The admins loosen the deployment defaults (drop the denied destination): the wallet is pinned from its ROLLED-BACK override.
    const kind = 'deployment.settings';
    const payload = { timelockDelaySeconds: 48 * 3600, webhookUrl: null, policyDefaults: { rawHash: 'allow' } };
    const id = 'ab'.repeat(16);
    const expiresAt = signer.clock.now + HOUR;
    const payloadHash = computePayloadHash(kind, payload);
    const st = { signerId: signer.kernel.signerId as string, id, payloadHash, proposer: A.publicKey, expiresAt };
    await signer.kernel.proposeChange(app, {
      id,
      kind,
      payload,
      proposer: A.publicKey,
      signature: signAdminMessage(A.privateKey, PROPOSE_LABEL, st),
      expiresAt,
    });
    const view = await signer.kernel.approveProposal(app, {
      id,
      admin: B.publicKey,
      payloadHash,
      signature: signAdminMessage(B.privateKey, APPROVE_LABEL, st),
    });
    assert.equal(view.state, 'pending');
    // The approval that meets the threshold: the pin would read the rolled-back override — refused, audited, nothing applied.
    await expectCode(
      signer.kernel.approveProposal(app, { id, admin: C.publicKey, payloadHash, signature: signAdminMessage(C.privateKey, APPROVE_LABEL, st) }),
      'record_unreadable',
    );
    const refused = (await signer.store.readAudit(1, 100_000)).filter((r) => r.action === 'quorum.apply' && r.decision === 'denied');
    assert.equal(refused.at(-1)?.reason, 'record_unreadable');
    // The wallet stays refused: the older override was neither anchored nor queued as its owner's.
    await expectCode(sign(), 'record_unreadable');
  });
});
