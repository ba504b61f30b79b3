import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type App, changePayloadHash, Kernel, diffPolicies, policyDiffLines, type ProposalView } from '@custos/kernel';
import { renderAdminProposalPage } from './pages/renderAdminPage.js';
import { createTestSigner, RAW_HASHES_ALLOWED, recordTestSecret, TEST_PASSPHRASE, type TestSigner, testStoreKind } from './testing/createTestSigner.js';
import { expectCode } from './testing/expectCode.js';
import { codeOf, type ReceivedMail } from './testing/startMailServer.js';
import { startServer } from './startServer.js';
import { startTestDelivery, type TestDelivery } from './testing/startTestDelivery.js';
import { adminSet, bootstrapTestQuorum, newTestAdmin, proposalIds, quorumDriver } from './testing/testAdmins.js';
import { totpFromUri } from './testing/totpFromUri.js';

// Issue 13: the admin quorum wired into the timelock (point 2, third bullet), the freeze (point 3:
// unfreeze by quorum, every admin told) and the factor reset (point 4), and the deployment settings'
// timelock delay in force. Each rule is attacked with its exact code, on the store of the pass;
// notifications are read from the real SMTP server.

const T0 = Date.UTC(2026, 11, 7, 9, 0, 0);
const HOUR = 3_600_000;
const HASH = `0x${'42'.repeat(32)}`;
const PUBLIC_URL = 'http://localhost:8420';
const passphrase = () => new TextEncoder().encode(TEST_PASSPHRASE);

const A = newTestAdmin('alice');
const B = newTestAdmin('bob');
const C = newTestAdmin('carol');
/** Every admin has an address (docs/quorum.md "Every admin is told"): each notice goes to all three. */
const EVERY_ADMIN = [A, B, C].map((a) => a.email).sort();
const newId = proposalIds();

describe('quorum wiring: timelock, freeze, factor reset, deployment settings', () => {
  let signer: TestSigner;
  let app: App;
  let delivery: TestDelivery;
  const uris = new Map<string, string>();

  before(async () => {
    signer = await createTestSigner({
      policyDefaults: RAW_HASHES_ALLOWED,
      startMs: T0,
      scopes: ['admin', 'register', 'derive', 'sign'],
      appOptions: { publicUrl: PUBLIC_URL },
      kernelOptions: { oob: { limits: { perHour: 40 } } },
    });
    app = await signer.kernel.authenticateApiKey(signer.apiKey);
    // sent only when the test runs the loop: received() counts what one run sends
    delivery = await startTestDelivery(signer, { publicUrl: PUBLIC_URL, watch: false });
    // 2 of 3: A proposes, B and C approve; every admin has an address.
    // the quorum starts from the deployment's defaults (the bootstrap writes the settings row)
    await bootstrapTestQuorum(signer.store, adminSet(2, [A, B, C]), { timelockDelaySeconds: 48 * 3600, webhookUrl: null, policyDefaults: RAW_HASHES_ALLOWED });
    await signer.kernel.refreshPolicyDefaults();
    app = await signer.kernel.authenticateApiKey(signer.apiKey);
  });
  after(async () => {
    await delivery.close();
    await signer.close();
  });

  /** Proposed by A (testing/testAdmins.ts); the id returned. */
  const q = quorumDriver({ kernel: () => signer.kernel, app: () => app, now: () => signer.clock.now, newId });
  const propose = async (kind: string, payload: unknown): Promise<string> => (await q.propose(A, kind, payload)).id;
  const approve = q.approve;
  /** Proposed by A, approved by B then C (the second approval meets M = 2 and applies it). */
  const passProposal = (kind: string, payload: unknown) => q.pass(A, [B, C], kind, payload);
  /** The messages the delivery loop sends now (at least `n`). */
  async function received(n: number): Promise<ReceivedMail[]> {
    const count = delivery.mail.received.length;
    await delivery.loop.runOnce();
    while (delivery.mail.received.length < count + n) await delivery.mail.nextMail(delivery.mail.received.length);
    return delivery.mail.received.slice(count);
  }
  function nextCode(walletName: string): string {
    signer.clock.now += 30_000;
    return totpFromUri(uris.get(walletName) as string, signer.clock.now);
  }
  async function totpWallet(walletName: string): Promise<void> {
    const { otpauthUri } = await signer.kernel.enrollTotp(app, { walletName });
    uris.set(walletName, otpauthUri);
  }
  async function confirmedChange(walletName: string, kind = '2fa.disable', payload?: unknown) {
    const created = await signer.kernel.requestChange(app, { walletName, kind, ...(payload === undefined ? {} : { payload }) });
    recordTestSecret('changeCapability', created.capability);
    const confirmed = await signer.kernel.confirmChange(created.capability, { kind: 'totp', proof: nextCode(walletName) });
    return { ...created, effectiveAt: confirmed.effectiveAt as number };
  }
  async function changeRow(id: string) {
    const [row] = await signer.sql('SELECT payload, state, consent FROM pending_changes WHERE id = $1', id);
    assert.ok(row);
    return { payload: String(row.payload), state: String(row.state), consent: row.consent === null ? null : String(row.consent) };
  }
  const approvePayload = async (id: string) => {
    const row = await changeRow(id);
    const view = await signer.kernel.getChange(app, { id });
    return { changeId: id, walletName: view.walletName, kind: view.kind, payloadHash: changePayloadHash(row) };
  };

  it('a TOTP-only wallet’s change applies only once both the delay has passed and the quorum approved it; admins are told what to approve', async () => {
    await totpWallet('t1');
    const change = await confirmedChange('t1');
    // Every admin is told what to approve, with the exact proposal payload.
    const told = await received(3);
    assert.deepEqual(told.map((m) => m.to).sort(), EVERY_ADMIN);
    const payload = await approvePayload(change.id);
    for (const m of told) {
      assert.match(m.text, /wallet\.change\.approve/);
      assert.ok(m.text.includes(JSON.stringify(payload).replace(/\s/g, '')) || m.text.includes(payload.payloadHash), m.text);
    }
    const [confirm] = await signer.sql("SELECT detail FROM audit_log WHERE action = 'change.confirm' AND wallet_name = 't1' AND decision = 'allowed'");
    assert.deepEqual(JSON.parse(String(confirm?.detail)).quorumNeeded, payload);

    // The delay passes: without the quorum it waits.
    signer.clock.now = change.effectiveAt + HOUR;
    assert.equal(await signer.kernel.applyDueChanges(), 0);
    assert.equal((await signer.kernel.getChange(app, { id: change.id })).state, 'pending');
    await expectCode(signer.kernel.signHash(app, { walletName: 't1', keyIndex: 0, hash: HASH }), 'code_required');

    // M−1 approvals change nothing.
    const id = await propose('wallet.change.approve', payload);
    await approve(B, id, 'wallet.change.approve', payload);
    assert.equal(await signer.kernel.applyDueChanges(), 0);
    // The M-th applies the proposal: the change is approved on its row, and the next pass applies it.
    const applied = await approve(C, id, 'wallet.change.approve', payload);
    assert.equal(applied.state, 'applied');
    assert.deepEqual(applied.result, { changeId: change.id, effectiveAt: change.effectiveAt });
    const consent = JSON.parse((await changeRow(change.id)).consent as string) as { quorumApproval: { proposalId: string; approvers: string[] } };
    assert.equal(consent.quorumApproval.proposalId, id);
    assert.deepEqual(consent.quorumApproval.approvers.sort(), [B.publicKey, C.publicKey].sort());
    assert.equal(await signer.kernel.applyDueChanges(), 1);
    assert.equal((await signer.kernel.getChange(app, { id: change.id })).state, 'applied');
    await signer.kernel.signHash(app, { walletName: 't1', keyIndex: 0, hash: HASH });
    // A second approval of the same change: change_not_pending.
    await expectCode(passProposal('wallet.change.approve', payload), 'change_not_pending');
  });

  it('a change the kernel queues itself (an enrolment page’s new address on a TOTP-only wallet) tells the admins too, records what to approve, and applies once approved', async () => {
    await totpWallet('t9');
    const link = await signer.kernel.createEnrollment(app, { walletName: 't9', kind: 'oob' });
    recordTestSecret('enrollmentCapability', link.capability);
    await signer.kernel.setEnrollmentAddress(link.capability, { channel: 'email', address: 't9-owner@example.com' });
    // (earlier tests' notices may still be queued: the code is the message to the new address)
    let confirm: ReceivedMail | undefined;
    while (confirm === undefined) confirm = (await received(1)).find((m) => m.to === 't9-owner@example.com');
    const start2 = delivery.mail.received.length;
    const done = await signer.kernel.completeEnrollment(link.capability, { proof: codeOf(confirm?.text ?? ''), consent: nextCode('t9') });
    assert.equal(done.state, 'completed');
    const [enrolled] = await signer.sql("SELECT detail FROM audit_log WHERE action = 'oob.enroll' AND wallet_name = 't9' AND decision = 'allowed'");
    const detail = JSON.parse(String(enrolled?.detail)) as { changeId: string; quorumNeeded?: unknown; adminsTold?: number };
    // The enrolment's record names what the admins must approve, and every admin was told.
    const payload = await approvePayload(detail.changeId);
    assert.deepEqual(detail.quorumNeeded, payload);
    assert.equal(detail.adminsTold, EVERY_ADMIN.length);
    await delivery.loop.runOnce();
    const toAdmins = () => delivery.mail.received.slice(start2).filter((m) => EVERY_ADMIN.includes(m.to));
    while (toAdmins().length < EVERY_ADMIN.length) await delivery.mail.nextMail(delivery.mail.received.length);
    const told = toAdmins();
    assert.deepEqual(told.map((m) => m.to).sort(), EVERY_ADMIN);
    for (const m of told) assert.ok(m.text.includes(payload.payloadHash) && /wallet\.change\.approve/.test(m.text), m.text);
    // Past the delay it waits for the quorum; approved, it applies.
    signer.clock.now = (done.effectiveAt as number) + HOUR;
    assert.equal(await signer.kernel.applyDueChanges(), 0);
    assert.equal((await signer.kernel.getChange(app, { id: detail.changeId })).state, 'pending');
    await passProposal('wallet.change.approve', payload);
    assert.equal(await signer.kernel.applyDueChanges(), 1);
    assert.equal((await signer.kernel.getChange(app, { id: detail.changeId })).state, 'applied');
  });

  it('the quorum before the delay: the change still waits for its time', async () => {
    await totpWallet('t2');
    const change = await confirmedChange('t2', 'safeAddress.set', { address: `0x${'5a'.repeat(20)}` });
    await received(3);
    await passProposal('wallet.change.approve', await approvePayload(change.id));
    signer.clock.now = change.effectiveAt - 1;
    assert.equal(await signer.kernel.applyDueChanges(), 0);
    assert.equal((await signer.kernel.getChange(app, { id: change.id })).state, 'pending');
    signer.clock.now = change.effectiveAt;
    assert.equal(await signer.kernel.applyDueChanges(), 1);
    assert.equal((await signer.kernel.getChange(app, { id: change.id })).state, 'applied');
  });

  it('attacks: a proposal for another change, another wallet or kind, a modified payload, an unconfirmed change; a quorum mark written into the row by hand', async () => {
    await totpWallet('t3');
    const first = await confirmedChange('t3');
    const second = await confirmedChange('t3', 'safeAddress.set', { address: `0x${'77'.repeat(20)}` });
    await received(6);
    const p1 = await approvePayload(first.id);
    const p2 = await approvePayload(second.id);
    // The proposal names the second change with the first one's payload hash (or kind, or wallet).
    await expectCode(passProposal('wallet.change.approve', { ...p2, payloadHash: p1.payloadHash }), 'proposal_payload_mismatch');
    await expectCode(passProposal('wallet.change.approve', { ...p2, kind: '2fa.disable' }), 'proposal_payload_mismatch');
    await expectCode(passProposal('wallet.change.approve', { ...p2, walletName: 't1' }), 'proposal_payload_mismatch');
    await expectCode(passProposal('wallet.change.approve', { ...p2, changeId: 'f'.repeat(32) }), 'change_not_found');
    // Nothing of those stuck: no row marked; each refusal audited (quorum.apply, denied).
    assert.equal(JSON.parse((await changeRow(second.id)).consent as string).quorumApproval, undefined);
    // Refused at the first approval already (the kind's inspect reads the stored change), audited quorum.approve denied.
    const refusals = await signer.sql("SELECT reason FROM audit_log WHERE action = 'quorum.approve' AND decision = 'denied' ORDER BY seq");
    assert.deepEqual(
      refusals.slice(-4).map((r) => r.reason),
      ['proposal_payload_mismatch', 'proposal_payload_mismatch', 'proposal_payload_mismatch', 'change_not_found'],
    );
    // A change the owner has not confirmed yet cannot be approved (the owner's factor comes first).
    const requested = await signer.kernel.requestChange(app, { walletName: 't3', kind: 'factor.remove', payload: { kind: 'totp', id: 'totp' } });
    recordTestSecret('changeCapability', requested.capability);
    await expectCode(passProposal('wallet.change.approve', await approvePayload(requested.id)), 'change_not_pending');
    // A modified change (its payload swapped in the database): record_unreadable, never approved.
    const swapped = JSON.stringify({ address: `0x${'66'.repeat(20)}` });
    await signer.sql('UPDATE pending_changes SET payload = $1 WHERE id = $2', swapped, second.id);
    await expectCode(passProposal('wallet.change.approve', { ...p2, payloadHash: changePayloadHash({ payload: swapped }) }), 'record_unreadable');
    // The quorum's mark written into the row by hand breaks the row's MAC: never applied.
    const consent = JSON.parse((await changeRow(first.id)).consent as string);
    const forged = JSON.stringify({
      ...consent,
      quorumApproval: { proposalId: 'f'.repeat(32), approvers: [B.publicKey, C.publicKey], approvedAt: signer.clock.now },
    });
    await signer.sql('UPDATE pending_changes SET consent = $1 WHERE id = $2', forged, first.id);
    signer.clock.now = Math.max(first.effectiveAt, second.effectiveAt) + HOUR;
    assert.equal(await signer.kernel.applyDueChanges(), 0);
    const [denied] = await signer.sql(
      "SELECT reason FROM audit_log WHERE action = 'change.apply' AND wallet_name = 't3' AND decision = 'denied' ORDER BY seq LIMIT 1",
    );
    assert.equal(denied?.reason, 'record_unreadable');
    await expectCode(signer.kernel.signHash(app, { walletName: 't3', keyIndex: 0, hash: HASH }), 'code_required');
  });

  it('an approver sees the change itself (API, admin page): a TOTP-only wallet’s policy.loosen with its diff; a swapped payload or another hash shows as not matching and every approval is refused', async () => {
    await totpWallet('t7');
    const change = await confirmedChange('t7', 'policy.loosen', {
      policy: { native: { '1': { perTx: '5000000000000000000' } }, destinations: [`0x${'ab'.repeat(20)}`] },
    });
    const before = delivery.mail.received.length;
    await received(3);
    // (earlier tests' announcements may arrive in the same pass: the three notices of this change are the ones naming t7)
    const toldOf = () => delivery.mail.received.slice(before).filter((m) => m.text.includes('Wallet t7:'));
    while (toldOf().length < 3) await delivery.mail.nextMail(delivery.mail.received.length);
    const told = toldOf();
    assert.deepEqual(told.map((m) => m.to).sort(), EVERY_ADMIN);
    const row = await changeRow(change.id);
    const stored = JSON.parse(row.payload) as { from: never; to: never };
    const diff = diffPolicies(stored.from, stored.to);
    const diffLines = policyDiffLines(diff);
    assert.ok(diffLines.length >= 2, diffLines.join('\n'));
    // The admins' notice carries the diff, line by line, besides the payload to propose.
    for (const m of told) for (const line of diffLines) assert.ok(m.text.includes(line), `${line} in ${m.text}`);
    const payload = await approvePayload(change.id);
    const id = await propose('wallet.change.approve', payload);
    // The API (GET /v1/admin/proposals/{id}): the change as stored, its diff line by line, matching.
    const res = await signer.app.inject({ method: 'GET', url: `/v1/admin/proposals/${id}`, headers: signer.auth() });
    assert.equal(res.statusCode, 200, res.body);
    const shown = res.json() as ProposalView;
    assert.equal(shown.subject?.matches, true);
    for (const line of diffLines) assert.ok(shown.subject?.lines.includes(line), `${line} in ${shown.subject?.lines.join('\n')}`);
    assert.ok(shown.subject?.lines.some((l) => l.startsWith(`Takes effect: ${new Date(change.effectiveAt).toISOString()}`)));
    const storedView = shown.subject?.stored as {
      kind: string;
      walletName: string;
      state: string;
      payloadHash: string;
      payload: unknown;
      policyDiff: unknown[];
    };
    assert.deepEqual(
      [storedView.kind, storedView.walletName, storedView.state, storedView.payloadHash],
      ['policy.loosen', 't7', 'pending', payload.payloadHash],
    );
    assert.deepEqual(storedView.payload, JSON.parse(row.payload));
    assert.deepEqual(storedView.policyDiff, JSON.parse(JSON.stringify(diff)));
    // The admin page renders the same view: every diff line, and the approve step.
    const page = renderAdminProposalPage(
      { brandName: 'Custos', lang: 'en', nonce: 'n', passkeyScripts: [] },
      { proposal: shown, payloadHash: shown.payloadHash, optionsJSON: { challenge: 'x' }, formToken: 't' },
    );
    const section = /<pre class="message mono" id="proposal-subject" data-matches="yes">([\s\S]*?)<\/pre>/.exec(page)?.[1] ?? '';
    for (const line of diffLines) assert.ok(section.includes(line.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')), line);
    assert.match(page, /data-mode="answer"/);

    // A proposal naming another payload hash: the view says so, and the first approval is refused (not only the one that applies).
    const otherHash = { ...payload, payloadHash: 'ab'.repeat(32) };
    const wrong = await propose('wallet.change.approve', otherHash);
    const wrongView = await signer.kernel.getProposal(app, { id: wrong });
    assert.equal(wrongView.subject?.matches, false);
    assert.equal(wrongView.subject?.refusal?.code, 'proposal_payload_mismatch');
    assert.match(wrongView.subject?.lines[0] ?? '', /^DOES NOT MATCH: .*payload hash/);
    await expectCode(approve(B, wrong, 'wallet.change.approve', otherHash), 'proposal_payload_mismatch');

    // The change row's payload swapped in the database: the view says it does not match, the page offers no approval, and approving is refused.
    const swapped = JSON.stringify({ ...JSON.parse(row.payload), policy: {} });
    await signer.sql('UPDATE pending_changes SET payload = $1 WHERE id = $2', swapped, change.id);
    const after = (await signer.app.inject({ method: 'GET', url: `/v1/admin/proposals/${id}`, headers: signer.auth() })).json() as ProposalView;
    assert.equal(after.subject?.matches, false);
    assert.equal(after.subject?.refusal?.code, 'record_unreadable');
    const afterPage = renderAdminProposalPage(
      { brandName: 'Custos', lang: 'en', nonce: 'n', passkeyScripts: [] },
      { proposal: after, payloadHash: after.payloadHash, optionsJSON: { challenge: 'x' }, formToken: 't' },
    );
    assert.match(afterPage, /id="subject-mismatch"/);
    assert.doesNotMatch(afterPage, /data-mode="answer"/);
    await expectCode(approve(B, id, 'wallet.change.approve', payload), 'record_unreadable');
    const [denied] = await signer.sql("SELECT reason, detail FROM audit_log WHERE action = 'quorum.approve' AND decision = 'denied' ORDER BY seq DESC LIMIT 1");
    assert.equal(denied?.reason, 'record_unreadable');
    assert.equal(JSON.parse(String(denied?.detail)).proposalId, id);
    // Nothing was recorded: no approval row counts.
    assert.equal((await signer.kernel.getProposal(app, { id })).approvals.length, 0);
  });

  it('without the hook the kernel installs, a TOTP-only wallet’s due change waits (fail closed): a kernel whose hook says no', async () => {
    await totpWallet('t4');
    const change = await confirmedChange('t4');
    await received(3);
    const strict = await Kernel.open({ store: signer.store, now: () => signer.clock.now, timelock: { hooks: { quorumApproved: async () => false } } });
    await strict.unseal(passphrase());
    try {
      signer.clock.now = change.effectiveAt + HOUR;
      assert.equal(await strict.applyDueChanges(), 0);
      assert.equal(await signer.kernel.applyDueChanges(), 0);
      assert.equal((await signer.kernel.getChange(app, { id: change.id })).state, 'pending');
    } finally {
      strict.seal();
    }
  });

  it('freeze ← quorum: every admin is told of a freeze and an unfreeze; wallet.unfreeze needs M approvals; another tenant’s name is not found', async () => {
    await totpWallet('f1');
    await signer.kernel.freezeWalletByAdmin(app, { walletName: 'f1' });
    const frozenMail = await received(3);
    assert.deepEqual(frozenMail.map((m) => m.to).sort(), EVERY_ADMIN);
    for (const m of frozenMail) {
      assert.match(m.text, /Wallet "f1" of tenant system was frozen by an operator/);
      assert.doesNotMatch(m.text, /\/owner\//, 'an admin’s message carries no owner link');
    }
    const [freeze] = await signer.sql("SELECT detail FROM audit_log WHERE action = 'wallet.freeze' AND wallet_name = 'f1'");
    assert.equal(JSON.parse(String(freeze?.detail)).adminsTold, 3);
    // A repeated freeze tells no one again.
    await signer.kernel.freezeWalletByAdmin(app, { walletName: 'f1' });
    await delivery.loop.runOnce();
    const before = delivery.mail.received.length;
    await expectCode(signer.kernel.signHash(app, { walletName: 'f1', keyIndex: 0, hash: HASH, code: nextCode('f1') }), 'wallet_frozen');

    await expectCode(passProposal('wallet.unfreeze', { tenant: 'default', walletName: 'f1' }), 'wallet_not_found');
    await expectCode(propose('wallet.unfreeze', { walletName: 'f1', extra: 1 }), 'invalid_input');
    const id = await propose('wallet.unfreeze', { walletName: 'f1' });
    await received(3); // the proposal's announcement
    await approve(B, id, 'wallet.unfreeze', { walletName: 'f1' });
    await expectCode(signer.kernel.signHash(app, { walletName: 'f1', keyIndex: 0, hash: HASH, code: nextCode('f1') }), 'wallet_frozen');
    const done = await approve(C, id, 'wallet.unfreeze', { walletName: 'f1' });
    assert.deepEqual(done.result, { walletName: 'f1', wasFrozen: true });
    await signer.kernel.signHash(app, { walletName: 'f1', keyIndex: 0, hash: HASH, code: nextCode('f1') });
    const [unfreeze] = await signer.sql("SELECT detail FROM audit_log WHERE action = 'wallet.unfreeze' AND wallet_name = 'f1' AND decision = 'allowed'");
    const detail = JSON.parse(String(unfreeze?.detail));
    assert.deepEqual([detail.by, detail.proposalId, detail.approvals.length, detail.adminsTold], ['quorum', id, 2, 3]);
    const mails = await received(6);
    assert.ok(delivery.mail.received.length > before);
    assert.equal(mails.filter((m) => /Wallet "f1" of tenant system was unfrozen by the admin quorum/.test(m.text)).length, 3);
  });

  it('a frozen wallet’s approved, due change waits until the quorum unfreezes it; the kernel’s direct unfreeze is refused under a quorum', async () => {
    await totpWallet('f2');
    const change = await confirmedChange('f2');
    await passProposal('wallet.change.approve', await approvePayload(change.id));
    await signer.kernel.freezeWalletByAdmin(app, { walletName: 'f2' });
    signer.clock.now = change.effectiveAt + HOUR;
    assert.equal(await signer.kernel.applyDueChanges(), 0);
    assert.equal((await signer.kernel.getChange(app, { id: change.id })).state, 'pending');
    await expectCode(signer.kernel.unfreezeWallet({ walletName: 'f2' }, { kind: 'quorum', proposalId: 'not-a-proposal' }), 'quorum_required');
    await expectCode(signer.kernel.unfreezeWallet({ walletName: 'f2' }, { kind: 'owner', evidence: { factor: 'forged' } }), 'quorum_required');
    assert.equal(await signer.kernel.applyDueChanges(), 0);
    await passProposal('wallet.unfreeze', { walletName: 'f2' });
    assert.equal(await signer.kernel.applyDueChanges(), 1);
    assert.equal((await signer.kernel.getChange(app, { id: change.id })).state, 'applied');
    await delivery.loop.runOnce();
  });

  it('factor reset: applied, it removes nothing at once; it queues a 2fa.disable through the timelock, announced to the owner, who cancels it by the delivered link', async () => {
    const walletName = 'r1';
    // the earlier tests' notices to the admins go first (the loop runs only when a test runs it)
    await delivery.loop.runOnce();
    const enrollment = await signer.kernel.createEnrollment(app, { walletName, kind: 'oob' });
    recordTestSecret('enrollmentCapability', enrollment.capability);
    await signer.kernel.setEnrollmentAddress(enrollment.capability, { channel: 'email', address: 'owner@example.com' });
    const verify = await delivery.deliver();
    await signer.kernel.completeEnrollment(enrollment.capability, { proof: verify.code });
    await expectCode(passProposal('wallet.factor-reset', { walletName: 'nobody' }), 'wallet_not_found');

    const applied = await passProposal('wallet.factor-reset', { walletName });
    const result = applied.result as { changeId: string; kind: string; effectiveAt: number; ownerNotices: number };
    assert.deepEqual([result.kind, result.ownerNotices], ['2fa.disable', 1]);
    assert.equal(result.effectiveAt, signer.clock.now + 48 * HOUR);
    // Nothing removed yet: the delivery factor still guards the wallet (a raw hash asks for more than the API gives).
    await expectCode(signer.kernel.signHash(app, { walletName, keyIndex: 0, hash: HASH }), 'consent_too_weak');
    // The owner is told at once, with the link that cancels it.
    const mails = await received(1);
    const notice = mails.find((m) => m.to === 'owner@example.com');
    assert.ok(notice, 'the owner is told');
    assert.match(notice.text, /Turn off two-factor protection/);
    const link = /\/changes\/([A-Za-z0-9_-]{43})/.exec(notice.text)?.[1];
    assert.ok(link !== undefined, notice.text);
    const cancelled = await signer.kernel.cancelChange(link, {});
    assert.equal(cancelled.state, 'cancelled');
    signer.clock.now += 49 * HOUR;
    assert.equal(await signer.kernel.applyDueChanges(), 0);
    await expectCode(signer.kernel.signHash(app, { walletName, keyIndex: 0, hash: HASH }), 'consent_too_weak');

    // A TOTP-only wallet's reset carries the quorum's approval: it applies after the delay.
    await totpWallet('r2');
    const reset = (await passProposal('wallet.factor-reset', { walletName: 'r2' })).result as { changeId: string; effectiveAt: number };
    signer.clock.now = reset.effectiveAt - 1;
    assert.equal(await signer.kernel.applyDueChanges(), 0);
    await expectCode(signer.kernel.signHash(app, { walletName: 'r2', keyIndex: 0, hash: HASH }), 'code_required');
    signer.clock.now = reset.effectiveAt;
    assert.equal(await signer.kernel.applyDueChanges(), 1);
    await signer.kernel.signHash(app, { walletName: 'r2', keyIndex: 0, hash: HASH });
    // A wallet with no factor left: nothing to reset.
    await expectCode(passProposal('wallet.factor-reset', { walletName: 'r2' }), 'factor_required');
  });

  it('the delay in force: the deployment settings row’s; under a quorum a shorter flag does not shorten it, a longer one lengthens it', async () => {
    assert.equal(await signer.kernel.timelockDelayInForceMs(), 48 * HOUR);
    await passProposal('deployment.settings', { timelockDelaySeconds: 2 * 3600, webhookUrl: null, policyDefaults: {} });
    assert.equal(await signer.kernel.timelockDelayInForceMs(), 2 * HOUR);
    // The row says no webhook: under the quorum a flag does not add one.
    assert.equal(await signer.kernel.webhookUrlInForce('https://flag.example.com/hook'), null);
    await totpWallet('d1');
    const change = await confirmedChange('d1');
    assert.equal(change.effectiveAt, signer.clock.now + 2 * HOUR);
    for (const [flagMs, expected] of [
      [HOUR, 2 * HOUR],
      [72 * HOUR, 72 * HOUR],
    ] as const) {
      const flagged = await Kernel.open({ store: signer.store, now: () => signer.clock.now, timelock: { delayMs: flagMs } });
      await flagged.unseal(passphrase());
      try {
        assert.equal(await flagged.timelockDelayInForceMs(), expected);
      } finally {
        flagged.seal();
      }
    }
  });
  it('an approver sees what a factor.add adds: the new delivery address MASKED, opened by the kernel at view time (API, admin page); never in full, and the audit log and no table hold it in plaintext', async () => {
    const walletName = 'v1';
    const address = 'alice.newbox@mail.example.org';
    const masked = 'al••••••••••@mail.example.org';
    const maskedLine = `Adds delivery address: e-mail ${masked} (12 characters before @)`;
    await totpWallet(walletName);
    // The owner (or whoever holds the backend and phished a TOTP code) adds an e-mail channel on the enrolment page.
    const link = await signer.kernel.createEnrollment(app, { walletName, kind: 'oob' });
    recordTestSecret('enrollmentCapability', link.capability);
    await signer.kernel.setEnrollmentAddress(link.capability, { channel: 'email', address });
    // (earlier tests' notices may still be queued ahead of it: the sender runs until the code's message is out)
    let verify: ReceivedMail | undefined;
    while (verify === undefined) verify = (await received(1)).find((m) => m.to === address);
    const code = codeOf(verify.text);
    recordTestSecret('oobCode', code);
    const done = await signer.kernel.completeEnrollment(link.capability, { proof: code, consent: nextCode(walletName) });
    assert.equal(done.state, 'completed');
    const [row] = await signer.sql('SELECT id, kind, state, created_at FROM pending_changes WHERE wallet_name = $1', walletName);
    assert.deepEqual([row?.kind, row?.state], ['factor.add', 'pending']);
    const changeId = String(row?.id);
    const payload = await approvePayload(changeId);
    const id = await propose('wallet.change.approve', payload);

    // The API: the channel and the masked address, the wallet, when it was requested; never the address.
    const res = await signer.app.inject({ method: 'GET', url: `/v1/admin/proposals/${id}`, headers: signer.auth() });
    assert.equal(res.statusCode, 200, res.body);
    assert.ok(!res.body.toLowerCase().includes('alice.newbox'), 'the response body never holds the address');
    const shown = res.json() as ProposalView;
    assert.equal(shown.subject?.matches, true);
    const lines = shown.subject?.lines ?? [];
    assert.ok(lines.includes(maskedLine), lines.join('\n'));
    assert.ok(lines.includes(`Change ${changeId} (factor.add) of wallet "${walletName}"`), lines.join('\n'));
    assert.ok(lines.includes(`Requested: ${new Date(Number(row?.created_at)).toISOString()}`), lines.join('\n'));
    assert.ok(
      lines.some((l) => /confirm it with the owner through a contact you already have/.test(l)),
      lines.join('\n'),
    );
    const stored = shown.subject?.stored as { factor: unknown; payload?: unknown; requestedAt: number };
    assert.deepEqual(stored.factor, { kind: 'oob', channel: 'email', masked, length: 12, domain: 'mail.example.org' });
    assert.equal(stored.payload, undefined, 'the sealed record itself is not shown');
    assert.equal(stored.requestedAt, Number(row?.created_at));
    // The admin page renders the same lines.
    const page = renderAdminProposalPage(
      { brandName: 'Custos', lang: 'en', nonce: 'n', passkeyScripts: [] },
      { proposal: shown, payloadHash: shown.payloadHash, optionsJSON: { challenge: 'x' }, formToken: 't' },
    );
    const section = /<pre class="message mono" id="proposal-subject" data-matches="yes">([\s\S]*?)<\/pre>/.exec(page)?.[1] ?? '';
    assert.ok(section.includes(maskedLine), section);
    assert.ok(!page.toLowerCase().includes('alice.newbox'));

    // Approved by the quorum: the approval is recorded; the address is in no audit record and no table in plaintext.
    await approve(B, id, 'wallet.change.approve', payload);
    assert.equal((await approve(C, id, 'wallet.change.approve', payload)).state, 'applied');
    const tables =
      testStoreKind() === 'postgres'
        ? await signer.sql('SELECT tablename AS name FROM pg_tables WHERE schemaname = current_schema()')
        : await signer.sql("SELECT name FROM sqlite_master WHERE type = 'table'");
    assert.ok(tables.length > 10, 'every table is read');
    const asText = (_k: string, v: unknown) =>
      v !== null && typeof v === 'object' && (v as { type?: unknown }).type === 'Buffer' && Array.isArray((v as { data?: unknown }).data)
        ? Buffer.from((v as { data: number[] }).data).toString('latin1')
        : v;
    let dump = '';
    for (const t of tables) dump += JSON.stringify(await signer.sql(`SELECT * FROM ${String(t.name)}`), asText);
    assert.ok(dump.includes(changeId) && dump.includes(id), 'the dump holds the change and the proposal');
    assert.ok(!dump.toLowerCase().includes('alice.newbox'), 'no table holds the address (nor its local part) in plaintext');
    assert.ok(!dump.includes(masked), 'the masked form is computed at view time, never stored');

    // Applied (delay and quorum), the wallet's address is that one. A later delivery.change shows the new
    // address masked AND the current one it replaces, both opened by the kernel.
    signer.clock.now = (await signer.kernel.getChange(app, { id: changeId })).effectiveAt as number;
    assert.ok((await signer.kernel.applyDueChanges()) >= 1);
    const codeTo = async (to: string, subject: RegExp) => {
      const mark = delivery.mail.received.length;
      await delivery.loop.runOnce();
      const find = () => delivery.mail.received.slice(mark).find((m) => m.to === to && subject.test(m.subject));
      let mail = find();
      while (mail === undefined) {
        await delivery.mail.nextMail(delivery.mail.received.length);
        mail = find();
      }
      const c = codeOf(mail.text);
      recordTestSecret('oobCode', c);
      return c;
    };
    const next = 'carl@other.example';
    const change = await signer.kernel.createEnrollment(app, { walletName, kind: 'oob' });
    recordTestSecret('enrollmentCapability', change.capability);
    await signer.kernel.setEnrollmentAddress(change.capability, { channel: 'email', address: next });
    const newCode = await codeTo(next, /Confirm your address/);
    await signer.kernel.sendEnrollmentChangeCode(change.capability);
    const currentCode = await codeTo(address, /Allow a change of your address/);
    assert.equal((await signer.kernel.completeEnrollment(change.capability, { proof: newCode, consent: currentCode })).state, 'completed');
    const [swap] = await signer.sql("SELECT id FROM pending_changes WHERE wallet_name = $1 AND kind = 'delivery.change'", walletName);
    const swapPayload = await approvePayload(String(swap?.id));
    const swapId = await propose('wallet.change.approve', swapPayload);
    const swapRes = await signer.app.inject({ method: 'GET', url: `/v1/admin/proposals/${swapId}`, headers: signer.auth() });
    assert.equal(swapRes.statusCode, 200, swapRes.body);
    assert.ok(!swapRes.body.toLowerCase().includes('alice.newbox') && !swapRes.body.includes(next), 'neither address in full');
    const swapView = swapRes.json() as ProposalView;
    assert.equal(swapView.subject?.matches, true);
    assert.ok(swapView.subject?.lines.includes('New delivery address: e-mail ca••@other.example (4 characters before @)'), swapView.subject?.lines.join('\n'));
    assert.ok(
      swapView.subject?.lines.includes(`Replacing the current delivery address: e-mail ${masked} (12 characters before @)`),
      swapView.subject?.lines.join('\n'),
    );
    assert.deepEqual((swapView.subject?.stored as { current: unknown }).current, {
      kind: 'oob',
      channel: 'email',
      masked,
      length: 12,
      domain: 'mail.example.org',
    });
  });
});

describe('the delay and the webhook URL without a quorum, then once one is configured', () => {
  it('the flags rule until an admin set exists; then a shorter delay flag no longer shortens it, and serve refuses both flags (quorum_required)', async () => {
    const signer = await createTestSigner({
      policyDefaults: RAW_HASHES_ALLOWED,
      startMs: T0,
      scopes: ['admin'],
      kernelOptions: { timelock: { delayMs: HOUR } },
    });
    try {
      assert.equal(await signer.kernel.timelockDelayInForceMs(), HOUR);
      assert.equal(await signer.kernel.webhookUrlInForce('https://flag.example.com/hook'), 'https://flag.example.com/hook');
      await bootstrapTestQuorum(signer.store, adminSet(1, [A, B]));
      assert.equal(await signer.kernel.timelockDelayInForceMs(), 48 * HOUR);
      // Under the quorum, the flags that would write these directly stop the start.
      await expectCode(startServer({ store: signer.location, port: 0, logger: false, kernelOptions: { timelock: { delayMs: HOUR } } }), 'quorum_required');
      await expectCode(
        startServer({
          store: signer.location,
          port: 0,
          logger: false,
          delivery: { webhookUrl: 'https://flag.example.com/hook', webhookSecret: new TextEncoder().encode('a webhook secret of the test') },
        }),
        'quorum_required',
      );
      // So do the looser modes one operator could switch on (a wallet with no factor signing, the backend enrolling TOTP).
      await expectCode(startServer({ store: signer.location, port: 0, logger: false, kernelOptions: { unknownWallets: 'allow' } }), 'quorum_required');
      await expectCode(startServer({ store: signer.location, port: 0, logger: false, kernelOptions: { backendEnrollment: 'on' } }), 'quorum_required');
      // The settings row's URL is the one in force; the flag never replaces it.
      const app = await signer.kernel.authenticateApiKey(signer.apiKey);
      const payload = { timelockDelaySeconds: 3 * 3600, webhookUrl: 'https://settings.example.com/hook', policyDefaults: {} };
      await quorumDriver({ kernel: () => signer.kernel, app: () => app, now: () => signer.clock.now }).pass(A, [B], 'deployment.settings', payload);
      assert.equal(await signer.kernel.webhookUrlInForce('https://flag.example.com/hook'), 'https://settings.example.com/hook');
      assert.equal(await signer.kernel.timelockDelayInForceMs(), 3 * HOUR);
    } finally {
      await signer.close();
    }
  });
});
