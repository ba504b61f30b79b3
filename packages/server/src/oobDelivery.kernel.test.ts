import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { App, CreatedApproval } from '@custos/kernel';
import { captureLogLines } from './testing/captureLogLines.js';
import { createTestSigner, recordTestSecret, type TestSigner } from './testing/createTestSigner.js';
import { expectCode } from './testing/expectCode.js';
import { startTestDelivery, type TestDelivery } from './testing/startTestDelivery.js';

// Issue 12, points 2, 5 and 6: codes the kernel delivers itself, through the outbox and a real SMTP
// server in this process (smtp-server + mailparser); every code is read from the received message.

const T0 = Date.UTC(2026, 11, 7, 9, 0, 0);
const TX = {
  type: 'eip1559',
  chainId: 8453,
  nonce: 0,
  to: '0x3535353535353535353535353535353535353535',
  value: '1000',
  data: '0x',
  gas: '21000',
  maxFeePerGas: '2000000000',
  maxPriorityFeePerGas: '1000000',
};
const LIMITS = { perHour: 40, maxFailures: 12 };

describe('delivered codes (oob): enrolment, approval, attacks', () => {
  let signer: TestSigner;
  let app: App;
  let delivery: TestDelivery;
  const log = captureLogLines();
  /** Every code a message carried: none may be found in the store or the log. */
  const codes: string[] = [];

  before(async () => {
    signer = await createTestSigner({ startMs: T0, kernelOptions: { oob: { limits: LIMITS } } });
    app = await signer.kernel.authenticateApiKey(signer.apiKey);
    delivery = await startTestDelivery(signer, { publicUrl: 'http://localhost:8420', from: 'Custos <custos@example.com>', logger: log.logger });
  });
  after(async () => {
    await delivery.close();
    await signer.close();
  });

  /** Runs the sender and returns the next message received. */
  async function deliver() {
    const message = await delivery.deliver();
    codes.push(message.code);
    return message;
  }

  /** A wallet whose delivery address was set and confirmed on its enrolment page. */
  async function oobWallet(walletName: string, address = `${walletName}@example.com`) {
    const created = await signer.kernel.createEnrollment(app, { walletName, kind: 'oob' });
    recordTestSecret('enrollmentCapability', created.capability);
    await signer.kernel.setEnrollmentAddress(created.capability, { channel: 'email', address });
    const message = await deliver();
    assert.equal(message.to, address);
    assert.match(message.subject, /confirm/i);
    assert.equal((await signer.kernel.completeEnrollment(created.capability, { proof: message.code })).state, 'completed');
    return created;
  }

  async function approval(walletName: string, nonce = 0): Promise<CreatedApproval> {
    const created = await signer.kernel.createApproval(app, { walletName, keyIndex: 0, operation: { transaction: { ...TX, nonce } } });
    recordTestSecret('approvalCapability', created.capability);
    return created;
  }

  it('enrols an address only when the code sent to it is typed back on the page', async () => {
    const created = await signer.kernel.createEnrollment(app, { walletName: 'enrol', kind: 'oob' });
    recordTestSecret('enrollmentCapability', created.capability);
    // No address yet: nothing to answer.
    await expectCode(signer.kernel.completeEnrollment(created.capability, { proof: '12345678' }), 'code_required');
    await signer.kernel.setEnrollmentAddress(created.capability, { channel: 'email', address: 'enrol@example.com' });
    const message = await deliver();
    assert.equal(message.to, 'enrol@example.com');
    assert.match(message.html, new RegExp(`<b>${message.code}</b>`), 'an HTML body with the code');
    const wrong = message.code === '00000000' ? '00000001' : '00000000';
    await expectCode(signer.kernel.completeEnrollment(created.capability, { proof: wrong }), 'code_invalid');
    assert.deepEqual((await signer.kernel.getWallet(app, { walletName: 'enrol' })).factors, [], 'not active before the right code');
    assert.equal((await signer.kernel.completeEnrollment(created.capability, { proof: message.code })).state, 'completed');
    assert.deepEqual((await signer.kernel.getWallet(app, { walletName: 'enrol' })).factors, ['oob']);
    // The address is sealed: not in its row as text.
    const rows = await signer.sql('SELECT secret_envelope FROM oob_channels WHERE wallet_name = $1', 'enrol');
    assert.equal(rows.length, 1);
    assert.doesNotMatch(JSON.stringify(rows), /enrol@example\.com/);
  });

  it('the backend cannot set the address through the API', async () => {
    await expectCode(signer.kernel.enrollFactor(app, { walletName: 'api-oob', kind: 'oob', proof: '12345678' }), 'invalid_input');
  });

  it('sends the summary, the link and a code on creation; the code approves that approval, which signs', async () => {
    await oobWallet('alice');
    const created = await approval('alice');
    assert.equal((await signer.kernel.getApproval(app, { id: created.id })).delivery?.status, 'queued');
    const message = await deliver();
    assert.equal(message.to, 'alice@example.com');
    assert.ok(message.text.includes(`http://localhost:8420/approve/${created.capability}`), 'the approval link');
    assert.ok(message.text.includes(created.summaryText.split('\n')[0] as string), 'the one-line summary');
    const view = await signer.kernel.getApproval(app, { id: created.id });
    assert.equal(view.delivery?.status, 'sent');
    assert.doesNotMatch(JSON.stringify(view), new RegExp(message.code), 'the backend never sees the code');
    const decided = await signer.kernel.decideApproval(created.capability, { decision: 'approve', kind: 'oob', proof: message.code });
    assert.equal(decided.state, 'approved');
    assert.equal(decided.factor, 'oob');
    const signed = await signer.kernel.signTransaction(app, { walletName: 'alice', keyIndex: 0, transaction: TX, approvalId: created.id });
    assert.match(signed.serializedTransaction, /^0x02/);
    // Twice: the approval was decided.
    await expectCode(signer.kernel.decideApproval(created.capability, { decision: 'approve', kind: 'oob', proof: message.code }), 'approval_decided');
  });

  it('a delivered code relayed by the backend on the sign route is refused unchecked: it is typed on the kernel’s page only', async () => {
    await oobWallet('relay');
    const created = await approval('relay', 7);
    const { code } = await deliver();
    await expectCode(signer.kernel.signTransaction(app, { walletName: 'relay', keyIndex: 0, transaction: { ...TX, nonce: 7 }, code }), 'consent_too_weak');
    // Not spent by the attempt: the owner still approves with it on the page.
    assert.equal((await signer.kernel.decideApproval(created.capability, { decision: 'approve', kind: 'oob', proof: code })).state, 'approved');
  });

  it('a code is bound to its approval: another approval’s code is wrong there', async () => {
    await oobWallet('bob');
    const first = await approval('bob', 1);
    const firstCode = (await deliver()).code;
    const second = await approval('bob', 2);
    const secondCode = (await deliver()).code;
    assert.notEqual(firstCode, secondCode);
    await expectCode(signer.kernel.decideApproval(second.capability, { decision: 'approve', kind: 'oob', proof: firstCode }), 'code_invalid');
    await expectCode(signer.kernel.decideApproval(first.capability, { decision: 'approve', kind: 'oob', proof: secondCode }), 'code_invalid');
    assert.equal((await signer.kernel.decideApproval(second.capability, { decision: 'approve', kind: 'oob', proof: secondCode })).state, 'approved');
  });

  it('a code expires after its TTL (5 minutes by default)', async () => {
    await oobWallet('carol');
    const created = await approval('carol');
    const { code } = await deliver();
    signer.clock.now += 5 * 60_000;
    await expectCode(signer.kernel.decideApproval(created.capability, { decision: 'approve', kind: 'oob', proof: code }), 'code_expired');
  });

  it('the sixth try is refused even with the right code; a resend does not reset the count', async () => {
    await oobWallet('dave');
    const created = await approval('dave');
    const { code } = await deliver();
    const wrong = (c: string) => (c === '11111111' ? '22222222' : '11111111');
    for (let i = 0; i < 3; i++)
      await expectCode(signer.kernel.decideApproval(created.capability, { decision: 'approve', kind: 'oob', proof: wrong(code) }), 'code_invalid');
    // A resend: a new code (the old one dies), the tries kept.
    await signer.kernel.resendApprovalCode({ capability: created.capability });
    const resent = (await deliver()).code;
    // The first code died with the resend (a wrong try, the fourth).
    await expectCode(signer.kernel.decideApproval(created.capability, { decision: 'approve', kind: 'oob', proof: code }), 'code_invalid');
    await expectCode(signer.kernel.decideApproval(created.capability, { decision: 'approve', kind: 'oob', proof: wrong(resent) }), 'code_invalid');
    // Five wrong tries: the sixth is refused, the right code included.
    await expectCode(signer.kernel.decideApproval(created.capability, { decision: 'approve', kind: 'oob', proof: resent }), 'code_tries_exhausted');
    // And no resend brings it back.
    await expectCode(signer.kernel.resendApprovalCode({ app, id: created.id }), 'delivery_limited');
  });

  it('caps the messages per wallet per hour: the backend cannot mail-bomb the owner', async () => {
    await oobWallet('erin');
    const before = delivery.mail.received.length;
    let created = 0;
    let refused: Record<string, unknown> | undefined;
    for (let i = 0; i < LIMITS.perHour + 1 && refused === undefined; i++) {
      try {
        const a = await approval('erin', 100 + i);
        await signer.kernel.cancelApproval(app, { id: a.id });
        created += 1;
      } catch (error) {
        refused = await expectCode(Promise.reject(error), 'delivery_limited');
      }
    }
    assert.ok(refused !== undefined, 'the cap refused a creation');
    assert.equal(created, LIMITS.perHour, 'the cap counts the wallet’s approval messages of the hour');
    await delivery.loop.runOnce();
    // A cancelled approval's message is not sent (its code is of no use): each is expired unsent.
    assert.equal(delivery.mail.received.length, before);
    const rows = await signer.sql("SELECT status, last_error FROM outbox WHERE wallet_name = 'erin' AND approval_id IS NOT NULL");
    assert.equal(rows.length, LIMITS.perHour, 'one message queued per approval, up to the cap');
    assert.ok(rows.every((r) => r.status === 'expired' && r.last_error === 'the approval is no longer pending'));
    // An hour later, messages flow again.
    signer.clock.now += 3_600_000;
    await approval('erin', 999);
    assert.equal((await deliver()).to, 'erin@example.com');
  });

  it('locks the factor after consecutive failures and tells the owner', async () => {
    await oobWallet('frank');
    let locked = false;
    for (let n = 0; !locked && n < 10; n++) {
      const created = await approval('frank', 200 + n);
      const { code } = await deliver();
      const wrong = code === '11111111' ? '22222222' : '11111111';
      for (let i = 0; i < 5 && !locked; i++) {
        try {
          await signer.kernel.decideApproval(created.capability, { decision: 'approve', kind: 'oob', proof: wrong });
          assert.fail('a wrong code approved');
        } catch (error) {
          const code = (error as { code: string }).code;
          assert.ok(code === 'code_invalid' || code === 'factor_throttled', code);
          locked = code === 'factor_throttled';
        }
      }
    }
    assert.ok(locked, `locked after ${LIMITS.maxFailures} consecutive failures`);
    const count = delivery.mail.received.length;
    await delivery.loop.runOnce();
    const notice = await delivery.mail.nextMail(count);
    assert.equal(notice.to, 'frank@example.com');
    assert.match(notice.subject, /locked/);
    // While locked: no new code is sent.
    await expectCode(approval('frank', 300), 'factor_throttled');
    // 24 hours later it is open again.
    signer.clock.now += 24 * 3_600_000;
    await approval('frank', 301);
  });

  it('no code is stored, not even in the outbox, nor logged', async () => {
    assert.ok(codes.length >= 10);
    // a code as a whole token: not inside a longer run of letters and digits (an 8-digit code turns
    // up by chance inside the hex of a hash in the audit log about once in a few thousand runs)
    const holds = (text: string, code: string) => new RegExp(`(?<![0-9A-Za-z])${code}(?![0-9A-Za-z])`).test(text);
    const tables = ['outbox', 'oob_channels', 'enrollment_links', 'approvals', 'audit_log'];
    for (const table of tables) {
      const text = JSON.stringify(await signer.sql(`SELECT * FROM ${table}`));
      for (const code of codes) assert.ok(!holds(text, code), `a code in ${table}`);
    }
    if ('dataDir' in signer.location || 'path' in signer.location) {
      const dir = (signer.location as { dataDir?: string; path?: string }).dataDir ?? (signer.location as { path: string }).path;
      for (const name of readdirSync(dir)) {
        const path = join(dir, name);
        if (!statSync(path).isFile()) continue;
        const bytes = readFileSync(path).toString('latin1');
        for (const code of codes) assert.ok(!holds(bytes, code), `a code in ${name}`);
      }
    }
    const logText = log.lines.join('\n');
    assert.match(logText, /delivery/);
    for (const code of codes) assert.ok(!holds(logText, code), 'a code in the log');
  });
});
