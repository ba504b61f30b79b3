import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { App } from '@custos/kernel';
import { createTestSigner, recordTestSecret, type TestSigner } from './testing/createTestSigner.js';
import { startTestDelivery, type TestDelivery } from './testing/startTestDelivery.js';
import { totpFromUri } from './testing/totpFromUri.js';

// Issue 13 (audit): the apply loop is fair — due changes that wait (here: TOTP-only wallets whose
// changes need an admin quorum that never comes) never keep another wallet's change from being
// reminded and applied — and a change with a short delay is still reminded before it takes effect.
// Every reminder is read from a real SMTP server in this process.

const T0 = Date.UTC(2026, 11, 9, 8, 0, 0);
const ORIGIN = 'http://localhost:8437';
const HOUR = 3_600_000;
const MINUTE = 60_000;
const WAITING = 120; // more than one page (100) of due rows, all due before the victim's change

function harness(delayMs: number) {
  const h = {
    signer: undefined as unknown as TestSigner,
    app: undefined as unknown as App,
    delivery: undefined as unknown as TestDelivery,
    uris: new Map<string, string>(),
  };
  before(async () => {
    h.signer = await createTestSigner({
      startMs: T0,
      appOptions: { publicUrl: ORIGIN },
      kernelOptions: { oob: { channels: ['email'] }, timelock: { delayMs } },
    });
    h.app = await h.signer.kernel.authenticateApiKey(h.signer.apiKey);
    // The app's own loop runs a pass every 30 s of real time: on a busy machine one would fall between
    // this test's passes and take their reminder or apply. Closed (nothing here goes over HTTP).
    await h.signer.app.close();
    h.delivery = await startTestDelivery(h.signer, { publicUrl: ORIGIN });
  });
  after(async () => {
    await h.delivery.close();
    await h.signer.close();
  });
  return h;
}

type Harness = ReturnType<typeof harness>;

function nextCode(h: Harness, walletName: string): string {
  h.signer.clock.now += 30_000;
  return totpFromUri(h.uris.get(walletName) as string, h.signer.clock.now);
}

async function totpWallet(h: Harness, walletName: string) {
  const link = await h.signer.kernel.createEnrollment(h.app, { walletName, kind: 'totp' });
  recordTestSecret('enrollmentCapability', link.capability);
  const page = await h.signer.kernel.openEnrollmentPage(link.capability);
  h.uris.set(walletName, (page.shown as { otpauthUri: string }).otpauthUri);
  await h.signer.kernel.completeEnrollment(link.capability, { proof: nextCode(h, walletName) });
}

async function oobWallet(h: Harness, walletName: string, address: string) {
  const created = await h.signer.kernel.createEnrollment(h.app, { walletName, kind: 'oob' });
  recordTestSecret('enrollmentCapability', created.capability);
  await h.signer.kernel.setEnrollmentAddress(created.capability, { channel: 'email', address });
  const message = await h.delivery.deliver();
  assert.equal((await h.signer.kernel.completeEnrollment(created.capability, { proof: message.code })).state, 'completed');
}

/** A safe-address change on an e-mail wallet, confirmed with a code sent to it; the announcement delivered. */
async function confirmByMail(h: Harness, walletName: string, address: string) {
  const created = await h.signer.kernel.requestChange(h.app, { walletName, kind: 'safeAddress.set', payload: { address: `0x${'5a'.repeat(20)}` } });
  recordTestSecret('changeCapability', created.capability);
  await h.signer.kernel.sendChangeCode(created.capability);
  const message = await h.delivery.deliver();
  assert.equal(message.to, address);
  const confirmed = await h.signer.kernel.confirmChange(created.capability, { kind: 'oob', proof: message.code });
  assert.equal(confirmed.state, 'pending');
  const mark = h.delivery.mail.received.length;
  await h.delivery.loop.runOnce();
  const announced = await h.delivery.mail.nextMail(mark);
  assert.match(announced.subject, /was requested/);
  return { id: created.id, effectiveAt: confirmed.effectiveAt as number };
}

/** One apply pass, then the sender once: the mails it delivered to `address`. */
async function pass(h: Harness, address: string, expectedApplied: number, expectedMails: number) {
  const mark = h.delivery.mail.received.length;
  assert.equal(await h.signer.kernel.applyDueChanges(), expectedApplied);
  await h.delivery.loop.runOnce();
  if (expectedMails > 0) await h.delivery.mail.nextMail(mark + expectedMails - 1);
  const mails = h.delivery.mail.received.slice(mark);
  assert.equal(mails.length, expectedMails, JSON.stringify(mails.map((m) => [m.to, m.subject])));
  for (const m of mails) assert.equal(m.to, address);
  return mails;
}

describe('the apply loop with the minimum delay (1 h)', () => {
  const h = harness(HOUR);

  it('a delay of 1 h: one reminder, 30 min before, read from the SMTP server; then applied', async () => {
    await oobWallet(h, 'remind', 'remind@example.com');
    const change = await confirmByMail(h, 'remind', 'remind@example.com');
    assert.equal(change.effectiveAt, h.signer.clock.now + HOUR);
    for (const [beforeMs, mails] of [
      [59 * MINUTE, 0],
      [31 * MINUTE, 0],
      [30 * MINUTE, 1],
      [5 * MINUTE, 0],
    ] as const) {
      h.signer.clock.now = change.effectiveAt - beforeMs;
      const got = await pass(h, 'remind@example.com', 0, mails);
      if (mails > 0) assert.match(got[0]?.subject ?? '', /Reminder/);
    }
    h.signer.clock.now = change.effectiveAt;
    const [applied] = await pass(h, 'remind@example.com', 1, 1);
    assert.match(applied?.subject ?? '', /took effect/);
  });

  it(`${WAITING} due changes that wait (TOTP-only wallets, no admin quorum) never keep another wallet's change from its reminder and its apply`, async () => {
    const started = Date.now();
    const stuck: string[] = [];
    for (let w = 0; stuck.length < WAITING; w++) {
      const name = `stuck${w}`;
      await totpWallet(h, name);
      for (let i = 0; i < 8 && stuck.length < WAITING; i++) {
        const created = await h.signer.kernel.requestChange(h.app, { walletName: name, kind: 'safeAddress.set', payload: { address: `0x${'5a'.repeat(20)}` } });
        recordTestSecret('changeCapability', created.capability);
        assert.equal((await h.signer.kernel.confirmChange(created.capability, { kind: 'totp', proof: nextCode(h, name) })).state, 'pending');
        stuck.push(created.id);
      }
    }
    console.log(`# ${WAITING} waiting changes made in ${Date.now() - started} ms`);
    h.signer.clock.now += HOUR; // the victim's change comes after all of them
    await oobWallet(h, 'victim', 'victim@example.com');
    const change = await confirmByMail(h, 'victim', 'victim@example.com');

    // Every waiting change is due, and all of them come before the victim's in the loop's order.
    h.signer.clock.now = change.effectiveAt - 30 * MINUTE;
    const rows = await h.signer.sql(
      "SELECT id FROM pending_changes WHERE state = 'pending' AND effective_at <= $1 ORDER BY effective_at, id",
      h.signer.clock.now,
    );
    assert.deepEqual(
      rows.map((r) => String(r.id)),
      stuck,
      'the waiting changes are all due, in that order',
    );
    // The victim's reminder comes although more than a page of waiting rows heads the list.
    const [reminder] = await pass(h, 'victim@example.com', 0, 1);
    assert.match(reminder?.subject ?? '', /Reminder/);
    // Its time: applied, although the waiting ones still wait (and are never applied).
    h.signer.clock.now = change.effectiveAt;
    const [applied] = await pass(h, 'victim@example.com', 1, 1);
    assert.match(applied?.subject ?? '', /took effect/);
    assert.equal((await h.signer.kernel.getChange(h.app, { id: change.id })).state, 'applied');
    const waiting = await h.signer.sql("SELECT count(*) AS n FROM pending_changes WHERE state = 'pending'");
    assert.equal(Number(waiting[0]?.n), WAITING, 'the changes without their quorum still wait');
  });
});

describe('the apply loop with a 2 h delay', () => {
  const h = harness(2 * HOUR);

  it('one reminder, 1 h before (none at 30 min): the 1 h reminder stands for the 30 min one', async () => {
    await oobWallet(h, 'two', 'two@example.com');
    const change = await confirmByMail(h, 'two', 'two@example.com');
    assert.equal(change.effectiveAt, h.signer.clock.now + 2 * HOUR);
    for (const [beforeMs, mails] of [
      [61 * MINUTE, 0],
      [HOUR, 1],
      [30 * MINUTE, 0],
      [MINUTE, 0],
    ] as const) {
      h.signer.clock.now = change.effectiveAt - beforeMs;
      const got = await pass(h, 'two@example.com', 0, mails);
      if (mails > 0) assert.match(got[0]?.subject ?? '', /Reminder/);
    }
    h.signer.clock.now = change.effectiveAt;
    await pass(h, 'two@example.com', 1, 1);
  });
});
