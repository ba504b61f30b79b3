import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { App, AuditRecord } from '@custos/kernel';
import { renderMessage } from './delivery/renderMessage.js';
import { createTestSigner, QUORUM_APPROVED_STAND_IN, recordTestSecret, type TestSigner } from './testing/createTestSigner.js';
import { expectCode } from './testing/expectCode.js';
import { startTestDelivery, type TestDelivery } from './testing/startTestDelivery.js';
import { totpFromUri } from './testing/totpFromUri.js';

// Issue 13 point 2, the security review's open finding: the backend holds a change's page link and
// reaches the owner page, so it can use up the change's shared cancel counter (10 wrong codes), the
// wallet's recovery-code throttle (5 wrong per 15 min) and the cancel codes' hourly cap (6). An
// owner-device cookie (kernel/ownerDevice.ts), set only where the owner proved a factor on the
// kernel's pages, carries a budget of its own that the backend cannot reach; so does the delivered
// link. Each test first has the backend use the shared budgets up, then the owner cancels.

const T0 = Date.UTC(2026, 11, 9, 8, 0, 0);
const ORIGIN = 'http://localhost:8621';
const HOUR = 3_600_000;
const DAY = 24 * HOUR;

describe('cancel budgets the backend cannot reach (owner device, delivered link)', () => {
  let signer: TestSigner;
  let app: App;
  let delivery: TestDelivery;
  const uris = new Map<string, string>();

  before(async () => {
    signer = await createTestSigner({
      startMs: T0,
      appOptions: { publicUrl: ORIGIN },
      kernelOptions: { oob: { channels: ['email', 'webhook'] }, timelock: { hooks: QUORUM_APPROVED_STAND_IN } },
    });
    app = await signer.kernel.authenticateApiKey(signer.apiKey);
    delivery = await startTestDelivery(signer, { publicUrl: ORIGIN });
  });
  after(async () => {
    await delivery.close();
    await signer.close();
  });

  function nextCode(walletName: string): string {
    signer.clock.now += 30_000;
    return totpFromUri(uris.get(walletName) as string, signer.clock.now);
  }

  /** A TOTP-only wallet enrolled on its page: its recovery codes and owner page come with it. */
  async function totpWallet(walletName: string): Promise<{ recoveryCodes: string[]; owner: string }> {
    const link = await signer.kernel.createEnrollment(app, { walletName, kind: 'totp' });
    recordTestSecret('enrollmentCapability', link.capability);
    const page = await signer.kernel.openEnrollmentPage(link.capability);
    uris.set(walletName, (page.shown as { otpauthUri: string }).otpauthUri);
    recordTestSecret('totpUri', uris.get(walletName) as string);
    const done = await signer.kernel.completeEnrollment(link.capability, { proof: nextCode(walletName) });
    for (const code of done.recoveryCodes ?? []) recordTestSecret('recoveryCode', code);
    recordTestSecret('ownerCapability', done.ownerCapability as string);
    return { recoveryCodes: done.recoveryCodes ?? assert.fail('recovery codes'), owner: done.ownerCapability as string };
  }

  async function emailWallet(walletName: string): Promise<{ recoveryCodes: string[] }> {
    const link = await signer.kernel.createEnrollment(app, { walletName, kind: 'oob' });
    recordTestSecret('enrollmentCapability', link.capability);
    await signer.kernel.setEnrollmentAddress(link.capability, { channel: 'email', address: `${walletName}@example.com` });
    const verify = await delivery.deliver();
    const done = await signer.kernel.completeEnrollment(link.capability, { proof: verify.code });
    for (const code of done.recoveryCodes ?? []) recordTestSecret('recoveryCode', code);
    return { recoveryCodes: done.recoveryCodes ?? [] };
  }

  /** Sends what is queued (notices) and waits for `n` messages. */
  async function flush(n: number): Promise<void> {
    const count = delivery.mail.received.length;
    await delivery.loop.runOnce();
    await delivery.mail.nextMail(count + n - 1);
  }

  /** An e-mail wallet's change, confirmed with a code sent for it (its announcement delivered). */
  async function pendingByMail(walletName: string) {
    return pendingChange(walletName, async (c) => {
      await signer.kernel.sendChangeCode(c);
      const message = await delivery.deliver();
      await signer.kernel.confirmChange(c, { kind: 'oob', proof: message.code });
      await flush(1);
    });
  }

  /** The owner's browser after proving a factor on a page: the token its owner-device cookie holds. */
  async function device(walletName: string): Promise<string> {
    const minted = await signer.kernel.issueOwnerDeviceToken(walletName);
    assert.ok(minted !== undefined);
    assert.equal(minted.maxAgeSeconds, 400 * 86_400);
    recordTestSecret('ownerDeviceToken', minted.token);
    return minted.token;
  }

  async function pendingChange(walletName: string, confirm: (capability: string) => Promise<unknown>) {
    const created = await signer.kernel.requestChange(app, { walletName, kind: '2fa.disable' });
    recordTestSecret('changeCapability', created.capability);
    await confirm(created.capability);
    assert.equal((await signer.kernel.getChange(app, { id: created.id })).state, 'pending');
    return created;
  }

  async function lastCancel(walletName: string): Promise<AuditRecord> {
    const found = (await signer.store.readAudit(1, 1_000_000)).filter((r) => r.action === 'change.cancel' && r.walletName === walletName).at(-1);
    return found ?? assert.fail('a change.cancel record');
  }

  /** The backend, through the page link, types 10 wrong codes (the shared counter) and 5 wrong recovery codes (the wallet's throttle). */
  async function backendUsesUp(capability: string, kind: 'totp', walletName: string) {
    const wrong = '000000';
    for (let i = 0; i < 10; i += 1) await expectCode(signer.kernel.cancelChange(capability, { kind, proof: wrong }), 'code_invalid');
    const shared = await expectCode(signer.kernel.cancelChange(capability, { kind, proof: wrong }), 'change_cancel_throttled');
    assert.equal(shared.budget, 'shared');
    for (let i = 0; i < 5; i += 1)
      await expectCode(signer.kernel.cancelChange(capability, { kind: 'recovery', proof: 'aaaaa-aaaaa' }), 'recovery_code_invalid');
    await expectCode(signer.kernel.cancelChange(capability, { kind: 'recovery', proof: 'aaaaa-aaaaa' }), 'recovery_code_throttled');
    assert.equal((await lastCancel(walletName)).detail.budget, 'shared');
  }

  it('TOTP-only: the backend uses up the shared counter and the recovery throttle; the owner’s device cancels with a right TOTP code', async () => {
    await totpWallet('tina');
    const change = await pendingChange('tina', (c) => signer.kernel.confirmChange(c, { kind: 'totp', proof: nextCode('tina') }));
    await backendUsesUp(change.capability, 'totp', 'tina');
    // Without the cookie, a right code is refused too: that is the hole.
    await expectCode(signer.kernel.cancelChange(change.capability, { kind: 'totp', proof: nextCode('tina') }), 'change_cancel_throttled');
    const token = await device('tina');
    const cancelled = await signer.kernel.cancelChange(change.capability, { kind: 'totp', proof: nextCode('tina'), deviceTokens: [token] });
    assert.equal(cancelled.state, 'cancelled');
    const record = await lastCancel('tina');
    assert.deepEqual([record.decision, record.detail.budget, record.detail.via], ['allowed', 'device', 'page']);
    assert.ok(!JSON.stringify(record).includes(token), 'the token is not in the audit record');
  });

  it('TOTP-only: the device cancels with a recovery code while the wallet’s recovery throttle is kept busy, and on the owner page', async () => {
    const { recoveryCodes, owner } = await totpWallet('tom');
    const first = await pendingChange('tom', (c) => signer.kernel.confirmChange(c, { kind: 'totp', proof: nextCode('tom') }));
    await backendUsesUp(first.capability, 'totp', 'tom');
    const token = await device('tom');
    // A wrong recovery code from the device: counted on the device, and the wallet's throttle does not refuse a right one.
    await expectCode(signer.kernel.cancelChange(first.capability, { kind: 'recovery', proof: 'bbbbb-bbbbb', deviceTokens: [token] }), 'recovery_code_invalid');
    assert.equal((await lastCancel('tom')).detail.budget, 'device');
    const cancelled = await signer.kernel.cancelChange(first.capability, { kind: 'recovery', proof: recoveryCodes[0], deviceTokens: [token] });
    assert.equal(cancelled.state, 'cancelled');
    // The owner page: the backend reaches it too, and uses the shared counter of another change up there.
    const second = await pendingChange('tom', (c) => signer.kernel.confirmChange(c, { kind: 'totp', proof: nextCode('tom') }));
    for (let i = 0; i < 10; i += 1)
      await expectCode(signer.kernel.cancelChangeFromOwnerPage(owner, second.id, { kind: 'totp', proof: '000000' }), 'code_invalid');
    await expectCode(signer.kernel.cancelChangeFromOwnerPage(owner, second.id, { kind: 'totp', proof: nextCode('tom') }), 'change_cancel_throttled');
    const onOwnerPage = await signer.kernel.cancelChangeFromOwnerPage(owner, second.id, { kind: 'totp', proof: nextCode('tom'), deviceTokens: [token] });
    assert.equal(onOwnerPage.state, 'cancelled');
    const record = await lastCancel('tom');
    assert.deepEqual([record.detail.via, record.detail.budget], ['owner-page', 'device']);
  });

  it('a cookie of another wallet, a tampered one, a malformed one count as none (the shared budget, used up, refuses)', async () => {
    await totpWallet('uma');
    await totpWallet('uli');
    const change = await pendingChange('uma', (c) => signer.kernel.confirmChange(c, { kind: 'totp', proof: nextCode('uma') }));
    await backendUsesUp(change.capability, 'totp', 'uma');
    const others = await device('uli');
    const good = await device('uma');
    // one character of the MAC part changed
    const at = 60;
    const tampered = `${good.slice(0, at)}${good[at] === 'A' ? 'B' : 'A'}${good.slice(at + 1)}`;
    for (const tokens of [[others], [tampered], [good.slice(0, 43)], ['x'.repeat(75)]]) {
      const refused = await expectCode(
        signer.kernel.cancelChange(change.capability, { kind: 'totp', proof: nextCode('uma'), deviceTokens: tokens }),
        'change_cancel_throttled',
      );
      assert.equal(refused.budget, 'shared');
    }
    // The recovery codes too: a forged cookie does not lift the wallet's throttle.
    await expectCode(
      signer.kernel.cancelChange(change.capability, { kind: 'recovery', proof: 'ccccc-ccccc', deviceTokens: [tampered] }),
      'recovery_code_throttled',
    );
    // The same wallet's real cookie (among the forged ones) does.
    assert.equal(
      (await signer.kernel.cancelChange(change.capability, { kind: 'totp', proof: nextCode('uma'), deviceTokens: [tampered, good] })).state,
      'cancelled',
    );
  });

  it('a device’s own budget is bounded: 10 wrong codes, the 11th answer refused even when right; 5 wrong recovery codes per 15 minutes', async () => {
    const { recoveryCodes } = await totpWallet('vic');
    const change = await pendingChange('vic', (c) => signer.kernel.confirmChange(c, { kind: 'totp', proof: nextCode('vic') }));
    const token = await device('vic');
    for (let i = 0; i < 10; i += 1)
      await expectCode(signer.kernel.cancelChange(change.capability, { kind: 'totp', proof: '000000', deviceTokens: [token] }), 'code_invalid');
    const refused = await expectCode(
      signer.kernel.cancelChange(change.capability, { kind: 'totp', proof: nextCode('vic'), deviceTokens: [token] }),
      'change_cancel_throttled',
    );
    assert.equal(refused.budget, 'device');
    // The device's wrong codes were never counted on the shared counter: the page link still takes a right code…
    // …but first, the device's recovery budget: 5 wrong, then refused even for a right code.
    for (let i = 0; i < 5; i += 1)
      await expectCode(
        signer.kernel.cancelChange(change.capability, { kind: 'recovery', proof: 'ddddd-ddddd', deviceTokens: [token] }),
        'recovery_code_invalid',
      );
    await expectCode(
      signer.kernel.cancelChange(change.capability, { kind: 'recovery', proof: recoveryCodes[0], deviceTokens: [token] }),
      'recovery_code_throttled',
    );
    // The device's wrong recovery codes were not the wallet's: without the cookie a right one still cancels.
    assert.equal((await signer.kernel.cancelChange(change.capability, { kind: 'recovery', proof: recoveryCodes[0] })).state, 'cancelled');
    const [row] = await signer.sql('SELECT cancel_failures FROM pending_changes WHERE id = $1', change.id);
    assert.equal(Number(row?.cancel_failures), 0, 'nothing was counted on the shared counter');
  });

  it('a device budget row that does not match its MAC: record_unreadable', async () => {
    await totpWallet('wes');
    const change = await pendingChange('wes', (c) => signer.kernel.confirmChange(c, { kind: 'totp', proof: nextCode('wes') }));
    const token = await device('wes');
    await expectCode(signer.kernel.cancelChange(change.capability, { kind: 'totp', proof: '000000', deviceTokens: [token] }), 'code_invalid');
    // A database writer gives the device its guesses back.
    await signer.sql("UPDATE cancel_budgets SET code_failures = 0 WHERE wallet_name = 'wes'");
    await expectCode(signer.kernel.cancelChange(change.capability, { kind: 'totp', proof: nextCode('wes'), deviceTokens: [token] }), 'record_unreadable');
  });

  it('delivered codes (e-mail): the backend uses up the shared cancel-code cap; the device gets its own code, which the backend’s sends never void', async () => {
    await emailWallet('xena');
    const change = await pendingByMail('xena');
    // 6 cancel codes an hour through the page link, then delivery_limited.
    for (let i = 0; i < 6; i += 1) {
      await signer.kernel.sendChangeCode(change.capability);
      await delivery.deliver();
    }
    await expectCode(signer.kernel.sendChangeCode(change.capability), 'delivery_limited');
    const token = await device('xena');
    await signer.kernel.sendChangeCode(change.capability, [token]);
    const mine = await delivery.deliver();
    assert.equal(mine.to, 'xena@example.com');
    const sent = (await signer.store.readAudit(1, 1_000_000)).filter((r) => r.action === 'change.code' && r.walletName === 'xena').at(-1);
    assert.deepEqual([sent?.decision, sent?.detail.budget], ['allowed', 'device']);
    // The backend's sends through the page link (its cap fresh again an hour later) never void the device's code.
    signer.clock.now += HOUR;
    await signer.kernel.sendChangeCode(change.capability, [token]);
    const fresh = await delivery.deliver();
    for (let i = 0; i < 3; i += 1) {
      await signer.kernel.sendChangeCode(change.capability);
      await delivery.deliver();
    }
    // Without the cookie the device's code is not the page link's (another subject): refused, counted on the shared counter.
    await expectCode(signer.kernel.cancelChange(change.capability, { kind: 'oob', proof: fresh.code }), 'code_invalid');
    assert.equal((await signer.kernel.cancelChange(change.capability, { kind: 'oob', proof: fresh.code, deviceTokens: [token] })).state, 'cancelled');
    assert.equal((await lastCancel('xena')).detail.budget, 'device');
    await flush(1);
  });

  it('a device’s own cancel-code cap: 6 an hour from the device, then delivery_limited; the backend’s shared cap is untouched by them', async () => {
    await emailWallet('yara');
    const change = await pendingByMail('yara');
    const token = await device('yara');
    for (let i = 0; i < 6; i += 1) {
      await signer.kernel.sendChangeCode(change.capability, [token]);
      await delivery.deliver();
    }
    await expectCode(signer.kernel.sendChangeCode(change.capability, [token]), 'delivery_limited');
    // A forged cookie counts as none: the shared cap, untouched by the device's six, sends.
    await signer.kernel.sendChangeCode(change.capability, [`${token.slice(0, 74)}${token.endsWith('A') ? 'B' : 'A'}`]);
    const shared = await delivery.deliver();
    assert.equal((await signer.kernel.cancelChange(change.capability, { kind: 'oob', proof: shared.code })).state, 'cancelled');
    assert.equal((await lastCancel('yara')).detail.budget, 'shared');
    await flush(1);
  });

  it('an expired owner-device cookie counts as none (400 days)', async () => {
    await totpWallet('ada');
    const token = await device('ada');
    signer.clock.now += 400 * DAY;
    const change = await pendingChange('ada', (c) => signer.kernel.confirmChange(c, { kind: 'totp', proof: nextCode('ada') }));
    await backendUsesUp(change.capability, 'totp', 'ada');
    const refused = await expectCode(
      signer.kernel.cancelChange(change.capability, { kind: 'totp', proof: nextCode('ada'), deviceTokens: [token] }),
      'change_cancel_throttled',
    );
    assert.equal(refused.budget, 'shared');
    // A new cookie (the owner proves a factor on a page again) cancels.
    const renewed = await device('ada');
    assert.equal((await signer.kernel.cancelChange(change.capability, { kind: 'totp', proof: nextCode('ada'), deviceTokens: [renewed] })).state, 'cancelled');
  });
});

describe('a webhook-only wallet: the delivered link has a cancel budget of its own', () => {
  // No delivery loop here: the test claims the webhook's messages itself (what the receiver would get).
  let signer: TestSigner;
  let app: App;
  before(async () => {
    signer = await createTestSigner({ startMs: T0, appOptions: { publicUrl: ORIGIN }, kernelOptions: { oob: { channels: ['webhook'] } } });
    app = await signer.kernel.authenticateApiKey(signer.apiKey);
  });
  after(async () => {
    await signer.close();
  });

  async function lastCancel(walletName: string): Promise<AuditRecord> {
    const found = (await signer.store.readAudit(1, 1_000_000)).filter((r) => r.action === 'change.cancel' && r.walletName === walletName).at(-1);
    return found ?? assert.fail('a change.cancel record');
  }

  it('webhook-only: the notice carries the cancel link (cancelUrl); through it a cancel code has its own cap and subject, so the owner cancels after the backend used the shared cap up', async () => {
    const link = await signer.kernel.createEnrollment(app, { walletName: 'zed', kind: 'oob' });
    recordTestSecret('enrollmentCapability', link.capability);
    await signer.kernel.setEnrollmentAddress(link.capability, { channel: 'webhook', address: 'zed-recipient' });
    const claim = async () => {
      const claimed = await signer.kernel.claimDeliveries();
      for (const m of claimed) {
        if (m.code !== undefined) recordTestSecret('oobCode', m.code);
        if (m.capability !== undefined) recordTestSecret('noticeCapability', m.capability);
        await signer.kernel.settleDelivery(m, { ok: true });
      }
      return claimed.filter((m) => m.walletName === 'zed');
    };
    const [verify] = await claim();
    await signer.kernel.completeEnrollment(link.capability, { proof: verify?.code });
    const change = await signer.kernel.requestChange(app, { walletName: 'zed', kind: '2fa.disable' });
    recordTestSecret('changeCapability', change.capability);
    await signer.kernel.sendChangeCode(change.capability);
    const [consent] = await claim();
    await signer.kernel.confirmChange(change.capability, { kind: 'oob', proof: consent?.code });
    const notices = (await claim()).filter((m) => m.kind === 'timelock');
    assert.equal(notices.length, 1);
    const notice = notices[0] ?? assert.fail('the announcement');
    // The webhook body carries the cancel link (the delivered link, not the backend's page link).
    const rendered = renderMessage(notice, { publicUrl: ORIGIN, now: signer.clock.now });
    const cancelUrl = String(rendered.fields.cancelUrl);
    assert.equal(cancelUrl, `${ORIGIN}/changes/${notice.capability}`);
    assert.notEqual(notice.capability, change.capability);
    // The link alone does not cancel a webhook wallet's change (only an e-mailed one does): it needs a code.
    const noticeCapability = notice.capability as string;
    await expectCode(signer.kernel.cancelChange(noticeCapability, {}), 'code_required');
    // The backend asks for cancel codes through its page link; the owner asks through the delivered link
    // between them; the backend's later sends never void the owner's code, and its cap used up never
    // keeps the owner from getting one.
    for (let i = 0; i < 3; i += 1) {
      await signer.kernel.sendChangeCode(change.capability);
      await claim();
    }
    await signer.kernel.sendChangeCode(noticeCapability);
    const [first] = await claim();
    for (let i = 0; i < 3; i += 1) {
      await signer.kernel.sendChangeCode(change.capability);
      await claim();
    }
    await expectCode(signer.kernel.sendChangeCode(change.capability), 'delivery_limited');
    await signer.kernel.sendChangeCode(noticeCapability);
    const [code] = await claim();
    assert.notEqual(first?.code, undefined);
    assert.equal((await signer.kernel.cancelChange(noticeCapability, { kind: 'oob', proof: code?.code })).state, 'cancelled');
    const record = await lastCancel('zed');
    assert.deepEqual([record.detail.via, record.detail.budget], ['notice', 'notice']);
  });
});
