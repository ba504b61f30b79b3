import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { App } from '@custos/kernel';
import { createTestSigner, recordTestSecret, type TestSigner } from './testing/createTestSigner.js';
import { expectCode } from './testing/expectCode.js';
import { codeOf } from './testing/startMailServer.js';
import { startTestDelivery, type TestDelivery } from './testing/startTestDelivery.js';

// Issue 13, point 2: a timelocked change is announced at once on the wallet's channel, reminded
// before it takes effect (24 h and 1 h), confirmed when it does; the owner cancels it through the
// link the kernel delivered; the API key alone neither confirms nor cancels (over HTTP). Every
// message is read from a real SMTP server in this process.

const T0 = Date.UTC(2026, 11, 8, 6, 0, 0);
const ORIGIN = 'http://localhost:8435';
const HOUR = 3_600_000;

describe('timelocked changes: notices on the delivery channel, the page, the API', () => {
  let signer: TestSigner;
  let app: App;
  let delivery: TestDelivery;

  before(async () => {
    signer = await createTestSigner({ startMs: T0, appOptions: { publicUrl: ORIGIN }, kernelOptions: { oob: { channels: ['email'] } } });
    app = await signer.kernel.authenticateApiKey(signer.apiKey);
    delivery = await startTestDelivery(signer, { publicUrl: ORIGIN });
  });
  after(async () => {
    await delivery.close();
    await signer.close();
  });

  /** Runs the sender once and returns the `expected` messages received since `count`. */
  async function deliverAll(expected: number, count = delivery.mail.received.length) {
    await delivery.loop.runOnce();
    if (expected > 0) await delivery.mail.nextMail(count + expected - 1);
    const messages = delivery.mail.received.slice(count).map((m) => ({ to: m.to, subject: m.subject, text: m.text }));
    assert.equal(messages.length, expected, JSON.stringify(messages.map((m) => [m.to, m.subject])));
    return messages;
  }

  /** A wallet whose only factor is an e-mail address, set and confirmed on its enrolment page. */
  async function oobWallet(walletName: string, address: string) {
    const created = await signer.kernel.createEnrollment(app, { walletName, kind: 'oob' });
    recordTestSecret('enrollmentCapability', created.capability);
    await signer.kernel.setEnrollmentAddress(created.capability, { channel: 'email', address });
    const message = await delivery.deliver();
    assert.equal((await signer.kernel.completeEnrollment(created.capability, { proof: message.code })).state, 'completed');
  }

  /** POST /v1/changes over HTTP; returns the change and its page's capability. */
  async function request(walletName: string, kind: string, payload?: unknown) {
    const res = await signer.app.inject({
      method: 'POST',
      url: '/v1/changes',
      headers: signer.auth(),
      payload: { walletName, kind, ...(payload === undefined ? {} : { payload }) },
    });
    assert.equal(res.statusCode, 201, res.body);
    const body = res.json() as { id: string; changeUrl: string; requiredStrength: string; state: string };
    const capability = new URL(body.changeUrl).pathname.split('/').at(-1) as string;
    recordTestSecret('changeCapability', capability);
    assert.equal(new URL(body.changeUrl).origin, ORIGIN);
    return { ...body, capability };
  }

  /** The owner confirms with a code sent to the wallet's address for this change. */
  async function confirmByMail(capability: string, address: string) {
    await signer.kernel.sendChangeCode(capability);
    const message = await delivery.deliver();
    assert.equal(message.to, address);
    assert.match(message.subject, /change of your wallet/i);
    return signer.kernel.confirmChange(capability, { kind: 'oob', proof: message.code });
  }

  it('announced at once, reminded 24 h and 1 h before, confirmed when applied; the API key alone is refused (HTTP 403)', async () => {
    await oobWallet('olga', 'olga@example.com');
    const created = await request('olga', '2fa.disable');
    assert.equal(created.requiredStrength, 'bound');
    for (const step of ['confirm', 'cancel']) {
      const res = await signer.app.inject({ method: 'POST', url: `/v1/changes/${step}`, headers: signer.auth(), payload: { id: created.id } });
      assert.equal(res.statusCode, 403, res.body);
      assert.equal(res.json().error.code, 'owner_consent_required');
    }
    const get = await signer.app.inject({ method: 'GET', url: `/v1/changes?id=${created.id}`, headers: signer.auth() });
    assert.equal(get.statusCode, 200, get.body);
    assert.equal(get.json().state, 'requested');
    assert.equal(Object.hasOwn(get.json(), 'capability'), false);

    const mark = delivery.mail.received.length;
    const confirmed = await confirmByMail(created.capability, 'olga@example.com');
    const effectiveAt = confirmed.effectiveAt as number;
    assert.equal(effectiveAt, signer.clock.now + 48 * HOUR);
    const [announced] = await deliverAll(1, mark + 1);
    assert.equal(announced?.to, 'olga@example.com');
    assert.match(announced?.subject ?? '', /was requested/);
    assert.match(announced?.text ?? '', /Turn off two-factor protection/);
    const link = /(http:\/\/localhost:8435\/changes\/[A-Za-z0-9_-]{43})/.exec(announced?.text ?? '')?.[1];
    assert.ok(link, 'the notice carries the cancel link');
    assert.notEqual(new URL(link).pathname.split('/').at(-1), created.capability, 'the delivered link is not the one the backend holds');
    assert.equal(/\b\d{8}\b/.test(announced?.text ?? ''), false, 'no code in a notice');

    // Reminders: none yet at 25 h before; one at 24 h before, one at 1 h before; each once (none at 30 min).
    for (const [before, expected, pattern] of [
      [25 * HOUR, 0, undefined],
      [24 * HOUR, 1, /Reminder/],
      [23 * HOUR, 0, undefined],
      [HOUR, 1, /Reminder/],
      [HOUR / 2, 0, undefined],
    ] as const) {
      signer.clock.now = effectiveAt - before;
      const count = delivery.mail.received.length;
      assert.equal(await signer.kernel.applyDueChanges(), 0);
      const messages = await deliverAll(expected, count);
      if (pattern !== undefined) assert.match(messages[0]?.subject ?? '', pattern);
      assert.deepEqual((await signer.kernel.getWallet(app, { walletName: 'olga' })).factors, ['oob'], 'the old protection in force');
    }
    signer.clock.now = effectiveAt;
    const count = delivery.mail.received.length;
    assert.equal(await signer.kernel.applyDueChanges(), 1);
    const [applied] = await deliverAll(1, count);
    assert.equal(applied?.to, 'olga@example.com', 'told on the channel it had');
    assert.match(applied?.subject ?? '', /took effect/);
    assert.deepEqual((await signer.kernel.getWallet(app, { walletName: 'olga' })).factors, []);
  });

  it('cancelled through the delivered link on the page (a POST; a GET shows only); the owner is told; that link never confirms', async () => {
    await oobWallet('oleg', 'oleg@example.com');
    const created = await request('oleg', 'safeAddress.set', { address: `0x${'77'.repeat(20)}` });
    const mark = delivery.mail.received.length;
    await confirmByMail(created.capability, 'oleg@example.com');
    const [announced] = await deliverAll(1, mark + 1);
    const path = new URL(/(http:\/\/localhost:8435\/changes\/[A-Za-z0-9_-]{43})/.exec(announced?.text ?? '')?.[1] as string).pathname;
    const capability = path.split('/').at(-1) as string;
    recordTestSecret('changeNoticeCapability', capability);
    await expectCode(signer.kernel.confirmChange(capability, { kind: 'oob', proof: '12345678' }), 'change_not_pending');

    const page = await signer.app.inject({ method: 'GET', url: path });
    assert.equal(page.statusCode, 200, page.body);
    assert.match(page.body, /Set the wallet’s safe address/);
    assert.match(page.body, /id="cancel-form"/);
    assert.equal((await signer.kernel.getChange(app, { id: created.id })).state, 'pending', 'a GET decides nothing');
    const cookie = /custos_form=([A-Za-z0-9_-]{43})/.exec(String(page.headers['set-cookie']))?.[1] as string;
    const csrf = /name="csrf" value="([0-9a-f]{64})"/.exec(page.body)?.[1] as string;
    const post = (fields: Record<string, string>, headers: Record<string, string> = {}) =>
      signer.app.inject({
        method: 'POST',
        url: path,
        headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: `custos_form=${cookie}`, origin: ORIGIN, ...headers },
        payload: new URLSearchParams({ csrf, ...fields }).toString(),
      });
    // A form from another origin cancels nothing.
    assert.equal((await post({ decision: 'cancel' }, { origin: 'https://evil.example' })).statusCode, 403);
    assert.equal((await signer.kernel.getChange(app, { id: created.id })).state, 'pending');
    const count = delivery.mail.received.length;
    const done = await post({ decision: 'cancel' });
    assert.equal(done.statusCode, 200, done.body);
    assert.match(done.body, /data-state="cancelled"/);
    assert.equal((await signer.kernel.getChange(app, { id: created.id })).state, 'cancelled');
    const [told] = await deliverAll(1, count);
    assert.match(told?.subject ?? '', /was cancelled/);
    const record = (await signer.store.readAudit(1, 100_000)).filter((r) => r.action === 'change.cancel').at(-1);
    assert.deepEqual(record?.detail.consent, { factor: 'oob', via: 'notice-link' });
    signer.clock.now += 49 * HOUR;
    await signer.kernel.applyDueChanges();
    assert.equal((await signer.sql('SELECT * FROM wallet_safe_addresses WHERE wallet_name = $1', 'oleg')).length, 0, 'never set');
  });

  it('the kernel refuses to start with a delay below 1 hour', async () => {
    const { Kernel } = await import('@custos/kernel');
    await expectCode(Kernel.open({ store: signer.store, timelock: { delayMs: HOUR - 1 } }), 'invalid_input');
    const kernel = await Kernel.open({ store: signer.store, timelock: { delayMs: HOUR } });
    assert.equal(kernel.timelockDelayMs, HOUR);
    assert.ok(codeOf);
  });
});

describe('cancel codes: neither a lock nor a used-up hourly cap (which a backend provokes) keeps them from the owner (issue 13 review, gap 3)', () => {
  let signer: TestSigner;
  let app: App;
  let delivery: TestDelivery;

  before(async () => {
    // small limits: 2 codes per wallet per hour, a lock after 3 wrong codes, 2 cancel codes per wallet per hour
    signer = await createTestSigner({
      startMs: T0,
      appOptions: { publicUrl: ORIGIN },
      kernelOptions: { oob: { channels: ['email'], limits: { perHour: 2, maxFailures: 3, cancelPerHour: 2 } } },
    });
    app = await signer.kernel.authenticateApiKey(signer.apiKey);
    delivery = await startTestDelivery(signer, { publicUrl: ORIGIN });
  });
  after(async () => {
    await delivery.close();
    await signer.close();
  });

  async function oobWallet(walletName: string, address: string) {
    const created = await signer.kernel.createEnrollment(app, { walletName, kind: 'oob' });
    recordTestSecret('enrollmentCapability', created.capability);
    await signer.kernel.setEnrollmentAddress(created.capability, { channel: 'email', address });
    await signer.kernel.completeEnrollment(created.capability, { proof: (await delivery.deliver()).code });
  }
  /** A change asked by the backend (it holds the page link: `capability`). */
  async function request(walletName: string, kind = '2fa.disable', payload?: unknown) {
    const created = await signer.kernel.requestChange(app, { walletName, kind, ...(payload === undefined ? {} : { payload }) });
    recordTestSecret('changeCapability', created.capability);
    return created;
  }
  /** The owner confirms with a code sent for it; the announcement is delivered too. */
  async function confirmed(walletName: string, kind?: string, payload?: unknown) {
    const created = await request(walletName, kind, payload);
    await signer.kernel.sendChangeCode(created.capability);
    const code = (await delivery.deliver()).code;
    assert.equal((await signer.kernel.confirmChange(created.capability, { kind: 'oob', proof: code })).state, 'pending');
    const count = delivery.mail.received.length;
    await delivery.loop.runOnce();
    assert.match((await delivery.mail.nextMail(count)).subject, /was requested/);
    return created;
  }
  /** The sender runs: the one notice queued is delivered. */
  async function told(subject: RegExp) {
    const count = delivery.mail.received.length;
    await delivery.loop.runOnce();
    assert.match((await delivery.mail.nextMail(count)).subject, subject);
  }
  const lastCodeRecord = async (walletName: string) =>
    (await signer.store.readAudit(1, 100_000)).filter((r) => r.action === 'change.code' && r.walletName === walletName).at(-1);

  it('the hourly cap used up: a confirm code is refused delivery_limited, a cancel code is delivered and cancels', async () => {
    await oobWallet('otto', 'otto@example.com');
    const first = await confirmed('otto'); // code 1 of the hour
    const second = await confirmed('otto', 'safeAddress.set', { address: `0x${'77'.repeat(20)}` }); // code 2: the cap
    const third = await request('otto', 'factor.remove', { kind: 'oob', id: 'oob' });
    await expectCode(signer.kernel.sendChangeCode(third.capability), 'delivery_limited');
    // the cancel code: delivered over SMTP, and it cancels
    await signer.kernel.sendChangeCode(first.capability);
    const message = await delivery.deliver();
    assert.equal(message.to, 'otto@example.com');
    assert.equal((await lastCodeRecord('otto'))?.decision, 'allowed');
    assert.equal((await signer.kernel.cancelChange(first.capability, { kind: 'oob', proof: message.code })).state, 'cancelled');
    await told(/was cancelled/);
    // its own cap still holds (no mail bomb): 2 cancel codes per hour, the third refused
    await signer.kernel.sendChangeCode(second.capability);
    const last = await delivery.deliver();
    await expectCode(signer.kernel.sendChangeCode(second.capability), 'delivery_limited');
    const refused = await lastCodeRecord('otto');
    assert.deepEqual([refused?.decision, refused?.reason], ['denied', 'delivery_limited']);
    assert.equal((await signer.kernel.cancelChange(second.capability, { kind: 'oob', proof: last.code })).state, 'cancelled');
    await told(/was cancelled/);
    // an hour later the cancel codes' cap starts again; the normal cap too
    signer.clock.now += HOUR;
    await signer.kernel.sendChangeCode(third.capability);
    await delivery.deliver();
  });

  it('the factor locked by wrong codes: a confirm code is refused factor_throttled, a cancel code is delivered and cancels', async () => {
    await oobWallet('oona', 'oona@example.com');
    const pending = await confirmed('oona'); // code 1 of the hour
    // the backend asks a code for another change and types wrong ones until the factor locks
    const other = await request('oona', 'safeAddress.set', { address: `0x${'78'.repeat(20)}` });
    await signer.kernel.sendChangeCode(other.capability); // code 2: the cap as well
    await delivery.deliver();
    await expectCode(signer.kernel.confirmChange(other.capability, { kind: 'oob', proof: '00000000' }), 'code_invalid');
    await expectCode(signer.kernel.confirmChange(other.capability, { kind: 'oob', proof: '00000001' }), 'code_invalid');
    await expectCode(signer.kernel.confirmChange(other.capability, { kind: 'oob', proof: '00000002' }), 'factor_throttled');
    const state = JSON.parse(String((await signer.sql('SELECT state FROM oob_channels WHERE wallet_name = $1', 'oona'))[0]?.state));
    assert.ok(state.lockedUntilMs > signer.clock.now, 'the factor is locked');
    // an hour later (the normal cap free again) a confirm code is still refused: the lock holds for everything else
    signer.clock.now += HOUR;
    const third = await request('oona', 'factor.remove', { kind: 'oob', id: 'oob' });
    await expectCode(signer.kernel.sendChangeCode(third.capability), 'factor_throttled');
    // the cancel code is sent, read from the SMTP server, and cancels
    await signer.kernel.sendChangeCode(pending.capability);
    const message = await delivery.deliver();
    assert.equal(message.to, 'oona@example.com');
    assert.equal((await signer.kernel.cancelChange(pending.capability, { kind: 'oob', proof: message.code })).state, 'cancelled');
    assert.equal(
      JSON.parse(String((await signer.sql('SELECT state FROM oob_channels WHERE wallet_name = $1', 'oona'))[0]?.state)).lockedUntilMs,
      state.lockedUntilMs,
    );
  });
});
