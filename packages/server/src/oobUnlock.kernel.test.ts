import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { App } from '@custos/kernel';
import { createTestSigner, recordTestSecret, type TestSigner } from './testing/createTestSigner.js';
import { expectCode } from './testing/expectCode.js';
import { type CreationOptionsJSON, type RequestOptionsJSON, SoftAuthenticator } from './testing/softAuthenticator.js';

// Issue 12, point 2 (limits): a delivered-code factor locked by consecutive wrong codes is unlocked by
// the owner on the kernel's page with another factor (here the wallet's passkey, which consented to
// the address being added); meanwhile the passkey still approves, and no code is sent.

const T0 = Date.UTC(2026, 11, 7, 16, 0, 0);
const ORIGIN = 'http://localhost:8432';
const TX = {
  type: 'eip1559',
  chainId: 1,
  nonce: 0,
  to: '0x3535353535353535353535353535353535353535',
  value: '9',
  data: '0x',
  gas: '21000',
  maxFeePerGas: '2000000000',
  maxPriorityFeePerGas: '1000000',
};

describe('a locked delivered-code factor, unlocked with the wallet’s passkey', () => {
  let signer: TestSigner;
  let app: App;
  const phone = new SoftAuthenticator(ORIGIN);

  before(async () => {
    signer = await createTestSigner({
      startMs: T0,
      kernelOptions: { passkeys: { rpId: 'localhost', origin: ORIGIN, rpName: 'Custos' }, oob: { limits: { maxFailures: 3 } } },
    });
    app = await signer.kernel.authenticateApiKey(signer.apiKey);
  });
  after(async () => {
    await signer.close();
  });

  async function nextCode(): Promise<string> {
    const [message] = await signer.kernel.claimDeliveries();
    assert.ok(message?.code !== undefined, 'a message with a code was queued');
    recordTestSecret('oobCode', message.code);
    await signer.kernel.settleDelivery(message, { ok: true });
    return message.code;
  }

  async function approval(nonce: number) {
    const created = await signer.kernel.createApproval(app, { walletName: 'both', keyIndex: 0, operation: { transaction: { ...TX, nonce } } });
    recordTestSecret('approvalCapability', created.capability);
    return created;
  }

  it('locks after the failures, keeps the passkey working, and unlocks with it', async () => {
    // A passkey wallet, then its delivery address with the passkey's consent.
    const pk = await signer.kernel.createEnrollment(app, { walletName: 'both', kind: 'passkey' });
    recordTestSecret('enrollmentCapability', pk.capability);
    const pkPage = await signer.kernel.openEnrollmentPage(pk.capability);
    await signer.kernel.completeEnrollment(pk.capability, { proof: phone.create((pkPage.shown as { optionsJSON: CreationOptionsJSON }).optionsJSON) });
    const link = await signer.kernel.createEnrollment(app, { walletName: 'both', kind: 'oob' });
    recordTestSecret('enrollmentCapability', link.capability);
    await signer.kernel.setEnrollmentAddress(link.capability, { channel: 'email', address: 'both@example.com' });
    const linkPage = await signer.kernel.openEnrollmentPage(link.capability);
    assert.ok(linkPage.consent, 'adding the address needs the passkey’s consent');
    const added = await signer.kernel.completeEnrollment(link.capability, {
      proof: await nextCode(),
      consent: phone.get(linkPage.consent.options as RequestOptionsJSON),
    });
    assert.equal(added.state, 'completed');
    // Issue 13: the address is added after the timelock's delay.
    signer.clock.now = added.effectiveAt as number;
    assert.equal(await signer.kernel.applyDueChanges(), 1);
    // The new address is told that the change took effect (a notice, no code).
    const [told] = await signer.kernel.claimDeliveries();
    assert.ok(told !== undefined && told.code === undefined, 'the notice of the change to the new address');
    await signer.kernel.settleDelivery(told, { ok: true });

    // Three wrong codes lock the factor.
    const first = await approval(1);
    const code = await nextCode();
    const wrong = code === '11111111' ? '22222222' : '11111111';
    await expectCode(signer.kernel.decideApproval(first.capability, { decision: 'approve', kind: 'oob', proof: wrong }), 'code_invalid');
    await expectCode(signer.kernel.decideApproval(first.capability, { decision: 'approve', kind: 'oob', proof: wrong }), 'code_invalid');
    const locked = await expectCode(signer.kernel.decideApproval(first.capability, { decision: 'approve', kind: 'oob', proof: wrong }), 'factor_throttled');
    assert.equal(locked.locked, true);
    const notice = await signer.kernel.claimDeliveries();
    assert.deepEqual(
      notice.map((m) => [m.kind, m.address]),
      [['locked', 'both@example.com']],
      'the owner is told',
    );
    for (const m of notice) await signer.kernel.settleDelivery(m, { ok: true });
    // Locked: even the right code is refused; a new approval is created (the passkey can decide it) without a message.
    await expectCode(signer.kernel.decideApproval(first.capability, { decision: 'approve', kind: 'oob', proof: code }), 'factor_throttled');
    const second = await approval(2);
    assert.deepEqual(await signer.kernel.claimDeliveries(), [], 'no code sent while locked');

    // The passkey approves on the page, and unlocks the delivered codes.
    const issued = await signer.kernel.issueApprovalChallenge(second.capability, { kind: 'passkey' });
    const decided = await signer.kernel.decideApproval(second.capability, {
      decision: 'approve',
      kind: 'passkey',
      proof: phone.get(issued.options as RequestOptionsJSON),
    });
    assert.equal(decided.state, 'approved');
    const [record] = await signer.sql("SELECT detail FROM audit_log WHERE action = 'approval.approve' AND decision = 'allowed' AND wallet_name = 'both'");
    assert.match(String(record?.detail), /"unlocked":"oob"/);

    // Codes flow and work again.
    const third = await approval(3);
    const fresh = await nextCode();
    assert.equal((await signer.kernel.decideApproval(third.capability, { decision: 'approve', kind: 'oob', proof: fresh })).state, 'approved');
  });
});
