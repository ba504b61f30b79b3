import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { App } from '@custos/kernel';
import { createTestSigner, recordTestSecret, type TestSigner } from './testing/createTestSigner.js';
import { expectCode } from './testing/expectCode.js';
import { type CreationOptionsJSON, type RequestOptionsJSON, SoftAuthenticator } from './testing/softAuthenticator.js';
import { codeOf } from './testing/startMailServer.js';
import { startTestDelivery, type TestDelivery } from './testing/startTestDelivery.js';

// Issue 12, point 2: "a later change needs the current factor". A delivery-address link for a wallet
// that has an address changes it: the new address is confirmed by the code sent there (as at
// enrolment) AND the change is consented by a current factor — the wallet's passkey, or, for a
// wallet without one, a code the kernel sends to the CURRENT address for this link. The old address
// is told. Every code is read from a message received by a real SMTP server in this process.

const T0 = Date.UTC(2026, 11, 7, 18, 0, 0);
const ORIGIN = 'http://localhost:8434';
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

const wrongOf = (code: string) => (code === '00000000' ? '00000001' : '00000000');

describe('changing a delivery address needs the current factor', () => {
  let signer: TestSigner;
  let app: App;
  let delivery: TestDelivery;

  before(async () => {
    signer = await createTestSigner({
      startMs: T0,
      appOptions: { publicUrl: ORIGIN },
      kernelOptions: { oob: { channels: ['email'] }, passkeys: { rpId: 'localhost', origin: ORIGIN, rpName: 'Custos' } },
    });
    app = await signer.kernel.authenticateApiKey(signer.apiKey);
    delivery = await startTestDelivery(signer, { publicUrl: ORIGIN });
  });
  after(async () => {
    await delivery.close();
    await signer.close();
  });

  /** Runs the sender once and returns the messages it sent, each with its code when it has one. */
  /** `count`: the messages received before the action that queued these (the sender may wake before this is called). */
  async function deliverAll(expected: number, count = delivery.mail.received.length) {
    await delivery.loop.runOnce();
    if (expected > 0) await delivery.mail.nextMail(count + expected - 1);
    const messages = delivery.mail.received.slice(count).map((m) => {
      const code = /\b(\d{8})\b/.exec(m.text)?.[1];
      if (code !== undefined) recordTestSecret('oobCode', code);
      return { to: m.to, subject: m.subject, text: m.text, code };
    });
    assert.equal(messages.length, expected, JSON.stringify(messages.map((m) => [m.to, m.subject])));
    return messages;
  }
  async function deliver() {
    const [message] = await deliverAll(1);
    assert.ok(message?.code);
    return { ...message, code: codeOf(message.text) };
  }

  async function oobLink(walletName: string) {
    const created = await signer.kernel.createEnrollment(app, { walletName, kind: 'oob' });
    recordTestSecret('enrollmentCapability', created.capability);
    return created;
  }

  /** A wallet whose address was set and confirmed on its enrolment page (no other factor). */
  async function oobWallet(walletName: string, address: string) {
    const created = await oobLink(walletName);
    await signer.kernel.setEnrollmentAddress(created.capability, { channel: 'email', address });
    const message = await deliver();
    assert.equal((await signer.kernel.completeEnrollment(created.capability, { proof: message.code })).state, 'completed');
  }

  async function auditOf(walletName: string, action: string) {
    const rows = await signer.sql('SELECT decision, reason, detail FROM audit_log WHERE wallet_name = $1 AND action = $2 ORDER BY seq', walletName, action);
    return rows.map((r) => ({
      decision: String(r.decision),
      reason: r.reason === null ? null : String(r.reason),
      detail: (typeof r.detail === 'string' ? JSON.parse(r.detail) : r.detail) as Record<string, unknown>,
    }));
  }

  async function failuresOf(id: string): Promise<number> {
    const [row] = await signer.sql('SELECT failures FROM enrollment_links WHERE id = $1', id);
    return Number(row?.failures);
  }

  /** Where the wallet's next approval message goes. */
  async function approvalGoesTo(walletName: string, nonce: number): Promise<string> {
    const approval = await signer.kernel.createApproval(app, { walletName, keyIndex: 0, operation: { transaction: { ...TX, nonce } } });
    recordTestSecret('approvalCapability', approval.capability);
    const [message] = await deliverAll(1);
    return message?.to ?? '';
  }

  it('a wallet whose only factor is its address: the new address’s code AND a code sent to the current one; the old address is told', async () => {
    await oobWallet('carol', 'old@example.com');
    const link = await oobLink('carol');
    const page = await signer.kernel.openEnrollmentPage(link.capability);
    assert.deepEqual(page.consent, { kind: 'oob', options: { currentAddress: true } }, 'the page asks for the current address’s consent');

    await signer.kernel.setEnrollmentAddress(link.capability, { channel: 'email', address: 'new@example.com' });
    const confirm = await deliver();
    assert.equal(confirm.to, 'new@example.com');

    // The new address's code alone does not change it: the current factor must consent (not charged).
    const missing = await expectCode(signer.kernel.completeEnrollment(link.capability, { proof: confirm.code }), 'code_required');
    assert.equal(missing.field, 'consent');
    assert.equal(await failuresOf(link.id), 0);

    // The consent code goes to the CURRENT address, and differs from the new address's code.
    await signer.kernel.sendEnrollmentChangeCode(link.capability);
    const current = await deliver();
    assert.equal(current.to, 'old@example.com');
    assert.match(current.subject, /change/i);
    assert.notEqual(current.code, confirm.code);

    // The new address's code is not accepted as the consent: charged to the link and to the code's tries.
    await expectCode(signer.kernel.completeEnrollment(link.capability, { proof: confirm.code, consent: confirm.code }), 'code_invalid');
    assert.equal(await failuresOf(link.id), 1);
    // A wrong current-address code: charged too.
    await expectCode(signer.kernel.completeEnrollment(link.capability, { proof: confirm.code, consent: wrongOf(current.code) }), 'code_invalid');
    assert.equal(await failuresOf(link.id), 2);
    const [channel] = await signer.sql('SELECT state FROM oob_channels WHERE wallet_name = $1', 'carol');
    const tries = (JSON.parse(String(channel?.state)) as { codes: Array<{ subject: string; tries: number }>; failures: number }).codes.find(
      (c) => c.subject === `change:${link.id}`,
    );
    assert.equal(tries?.tries, 2, 'both wrong consents counted on the change code');
    // And vice versa: the current address's code is not the new address's confirmation (the consent
    // was accepted, so the post is charged and that consent is spent).
    await expectCode(signer.kernel.completeEnrollment(link.capability, { proof: current.code, consent: current.code }), 'code_invalid');
    assert.equal(await failuresOf(link.id), 3);
    await expectCode(signer.kernel.completeEnrollment(link.capability, { proof: confirm.code, consent: current.code }), 'code_reused');
    // Nothing changed so far: an approval's message still goes to the old address.
    const pending = await signer.kernel.createApproval(app, { walletName: 'carol', keyIndex: 0, operation: { transaction: { ...TX, nonce: 1 } } });
    recordTestSecret('approvalCapability', pending.capability);
    const oldCode = await deliver();
    assert.equal(oldCode.to, 'old@example.com');

    // The spent consent gets no new code on this link: the owner asks for a new link.
    await expectCode(signer.kernel.sendEnrollmentChangeCode(link.capability), 'delivery_limited');
    const fresh = await oobLink('carol');
    await signer.kernel.setEnrollmentAddress(fresh.capability, { channel: 'email', address: 'new@example.com' });
    const confirmed = await deliver();
    await signer.kernel.sendEnrollmentChangeCode(fresh.capability);
    const again = await deliver();
    assert.equal(again.to, 'old@example.com');
    // Both right codes: the address is replaced — after the timelock's delay (issue 13), announced at once to the old address.
    const mark = delivery.mail.received.length;
    const done = await signer.kernel.completeEnrollment(fresh.capability, { proof: confirmed.code, consent: again.code });
    assert.equal(done.state, 'completed');
    assert.equal(done.effectiveAt, signer.clock.now + signer.kernel.timelockDelayMs);
    const [announced] = await deliverAll(1, mark);
    assert.equal(announced?.to, 'old@example.com', 'the old address is told of the change at once');
    assert.match(announced?.text ?? '', /was requested/);
    assert.match(announced?.text ?? '', /\/changes\/[A-Za-z0-9_-]{43}/, 'with the link that cancels it');
    assert.equal(announced?.code, undefined, 'the notice carries no code');
    // Until then the old address is in force; an approval's code sent there now dies with it.
    signer.clock.now = (done.effectiveAt as number) - 60_000;
    const before = await signer.kernel.createApproval(app, { walletName: 'carol', keyIndex: 0, operation: { transaction: { ...TX, nonce: 3 } } });
    recordTestSecret('approvalCapability', before.capability);
    const beforeCode = await deliver();
    assert.equal(beforeCode.to, 'old@example.com');
    signer.clock.now = done.effectiveAt as number;
    const applyMark = delivery.mail.received.length;
    assert.equal(await signer.kernel.applyDueChanges(), 1);
    assert.deepEqual((await signer.kernel.getWallet(app, { walletName: 'carol' })).factors, ['oob']);
    const notices = await deliverAll(2, applyMark);
    // Issue 13: every channel is told — the old address, and the new one now in force.
    assert.deepEqual(notices.map((m) => m.to).sort(), ['new@example.com', 'old@example.com'], 'the old address is told of the change, and the new one');
    const notice = notices.find((m) => m.to === 'old@example.com');
    assert.match(notice?.text ?? '', /took effect/);
    assert.equal(notice?.code, undefined, 'the notice carries no code');
    const enrolled = (await auditOf('carol', 'oob.enroll')).filter((r) => r.decision === 'allowed');
    assert.equal(enrolled.length, 2);
    assert.equal(enrolled[1]?.detail.replaced, true);
    assert.deepEqual(enrolled[1]?.detail.consent, { factor: 'oob', channel: 'email', counter: 1 });
    assert.doesNotMatch(JSON.stringify(await signer.sql('SELECT * FROM oob_channels')), /@example\.com/, 'the new address is sealed');

    // The code the old address got for a pending approval died with it; the next message goes to the new address.
    await expectCode(signer.kernel.decideApproval(before.capability, { decision: 'approve', kind: 'oob', proof: beforeCode.code }), 'challenge_required');
    assert.ok(oldCode.code);
    assert.equal(await approvalGoesTo('carol', 2), 'new@example.com');
  });

  it('attack: the backend cannot change the address through the API, nor without a link’s consent', async () => {
    await oobWallet('dave', 'dave@example.com');
    await expectCode(signer.kernel.enrollFactor(app, { walletName: 'dave', kind: 'oob', proof: '12345678' }), 'already_enrolled');
    // A link whose consent code was never asked for: the consent field is refused, nothing changed.
    const link = await oobLink('dave');
    await signer.kernel.setEnrollmentAddress(link.capability, { channel: 'email', address: 'attacker@example.com' });
    const confirm = await deliver();
    const refused = await expectCode(signer.kernel.completeEnrollment(link.capability, { proof: confirm.code, consent: confirm.code }), 'challenge_required');
    assert.equal(refused.field, 'proof');
    assert.equal(await approvalGoesTo('dave', 1), 'dave@example.com');
    const denied = (await auditOf('dave', 'oob.enroll')).filter((r) => r.decision === 'denied');
    assert.deepEqual(
      denied.map((r) => [r.reason, r.detail.consent]),
      [
        ['already_enrolled', undefined],
        ['challenge_required', 'current-address'],
      ],
    );
  });

  it('a wallet with a passkey: the passkey consents to the change (no code to the current address); the old address is told', async () => {
    const phone = new SoftAuthenticator(ORIGIN);
    const first = await signer.kernel.createEnrollment(app, { walletName: 'erin', kind: 'passkey' });
    recordTestSecret('enrollmentCapability', first.capability);
    const opened = await signer.kernel.openEnrollmentPage(first.capability);
    const proof = phone.create((opened.shown as { optionsJSON: CreationOptionsJSON }).optionsJSON);
    assert.equal((await signer.kernel.completeEnrollment(first.capability, { proof })).state, 'completed');
    // The address added with the passkey's consent, then changed with it.
    for (const [address, replaced] of [
      ['erin-1@example.com', false],
      ['erin-2@example.com', true],
    ] as const) {
      const link = await oobLink('erin');
      const page = await signer.kernel.openEnrollmentPage(link.capability);
      assert.equal(page.consent?.kind, 'passkey');
      await expectCode(signer.kernel.sendEnrollmentChangeCode(link.capability), 'invalid_input');
      await signer.kernel.setEnrollmentAddress(link.capability, { channel: 'email', address });
      const confirm = await deliver();
      assert.equal(confirm.to, address);
      await expectCode(signer.kernel.completeEnrollment(link.capability, { proof: confirm.code }), 'code_required');
      const consent = phone.get(page.consent?.options as RequestOptionsJSON);
      const mark = delivery.mail.received.length;
      const done = await signer.kernel.completeEnrollment(link.capability, { proof: confirm.code, consent });
      assert.equal(done.state, 'completed');
      // Issue 13: a wallet that has a factor changes after the timelock's delay (announced on its channel, when it has one).
      if (replaced) assert.match((await deliverAll(1, mark))[0]?.text ?? '', /was requested/);
      signer.clock.now = done.effectiveAt as number;
      const applyMark = delivery.mail.received.length;
      assert.equal(await signer.kernel.applyDueChanges(), 1);
      // Told on the address in force before (when there was one) and on the new one.
      const notices = await deliverAll(replaced ? 2 : 1, applyMark);
      assert.deepEqual(notices.map((m) => m.to).sort(), replaced ? [address, 'erin-1@example.com'].sort() : [address]);
      for (const notice of notices) assert.match(notice.text ?? '', /took effect/);
    }
    assert.deepEqual((await signer.kernel.getWallet(app, { walletName: 'erin' })).factors.sort(), ['oob', 'passkey']);
    const enrolled = (await auditOf('erin', 'oob.enroll')).filter((r) => r.decision === 'allowed');
    assert.equal(enrolled[1]?.detail.replaced, true);
    assert.equal((enrolled[1]?.detail.consent as { factor?: string }).factor, 'passkey');
  });

  it('on the page, a wallet with a passkey: the passkey’s consent step wraps the address’s confirm form; posted with both, the address is changed', async () => {
    const phone = new SoftAuthenticator(ORIGIN);
    const first = await signer.kernel.createEnrollment(app, { walletName: 'frank', kind: 'passkey' });
    recordTestSecret('enrollmentCapability', first.capability);
    const opened = await signer.kernel.openEnrollmentPage(first.capability);
    assert.equal(
      (await signer.kernel.completeEnrollment(first.capability, { proof: phone.create((opened.shown as { optionsJSON: CreationOptionsJSON }).optionsJSON) }))
        .state,
      'completed',
    );
    let mark = 0;
    for (const address of ['frank-1@example.com', 'frank-2@example.com']) {
      const created = await signer.app.inject({
        method: 'POST',
        url: '/v1/enrollments',
        headers: signer.auth(),
        payload: { walletName: 'frank', kind: 'oob' },
      });
      assert.equal(created.statusCode, 201, created.body);
      const path = new URL(created.json().enrollUrl as string).pathname;
      const capability = path.split('/').at(-1) as string;
      recordTestSecret('enrollmentCapability', capability);
      const page = await signer.app.inject({ method: 'GET', url: path });
      const cookie = /custos_form=([A-Za-z0-9_-]{43})/.exec(String(page.headers['set-cookie']))?.[1] as string;
      const csrf = /name="csrf" value="([0-9a-f]{64})"/.exec(page.body)?.[1] as string;
      const form = (fields: Record<string, string>) =>
        signer.app.inject({
          method: 'POST',
          url: path,
          headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: `custos_form=${cookie}`, origin: ORIGIN },
          payload: new URLSearchParams({ csrf, ...fields }).toString(),
        });
      assert.doesNotMatch(page.body, /id="oob-current"/, 'no code to the current address: the passkey consents');
      const beforeSend = delivery.mail.received.length;
      const sent = await form({ channel: 'email', address });
      assert.equal(sent.statusCode, 200, sent.body);
      assert.match(sent.body, /<section id="passkey-step" class="passkey" data-mode="consent"/);
      assert.match(sent.body, /<form method="post" id="passkey-form">/);
      assert.match(sent.body, /<script /);
      const [confirmed] = await deliverAll(1, beforeSend);
      const confirm = { to: confirmed?.to, code: codeOf(confirmed?.text ?? '') };
      assert.equal(confirm.to, address);
      const consent = phone.get((await signer.kernel.openEnrollmentPage(capability)).consent?.options as RequestOptionsJSON);
      mark = delivery.mail.received.length;
      const done = await form({ code: confirm.code, consent: JSON.stringify(consent) });
      assert.equal(done.statusCode, 200, done.body);
      // Issue 13: the wallet has a factor, so the address waits out the timelock's delay.
      assert.match(done.body, /Change requested/);
      if (address === 'frank-2@example.com') {
        const [announced] = await deliverAll(1, mark);
        assert.equal(announced?.to, 'frank-1@example.com', 'the old address is told at once');
        assert.match(announced?.text ?? '', /was requested/);
      }
      signer.clock.now += signer.kernel.timelockDelayMs;
      mark = delivery.mail.received.length;
      assert.equal(await signer.kernel.applyDueChanges(), 1);
      // Told on the address in force before (when there was one), and on the new one.
      const notices = await deliverAll(address === 'frank-2@example.com' ? 2 : 1, mark);
      assert.deepEqual(
        notices.map((m) => m.to).sort(),
        address === 'frank-2@example.com' ? ['frank-1@example.com', 'frank-2@example.com'] : ['frank-1@example.com'],
      );
      for (const notice of notices) assert.match(notice.text ?? '', /took effect/);
    }
    assert.equal(await approvalGoesTo('frank', 1), 'frank-2@example.com');
  });
});
