import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { App, AuditRecord } from '@custos/kernel';
import { createTestSigner, QUORUM_APPROVED_STAND_IN, RAW_HASHES_ALLOWED, recordTestSecret, type TestSigner } from './testing/createTestSigner.js';
import { expectCode } from './testing/expectCode.js';
import { startTestDelivery, type TestDelivery } from './testing/startTestDelivery.js';
import { totpFromUri } from './testing/totpFromUri.js';

// Issue 13 point 2, the gaps closed after the merge: a due change never takes effect while the
// wallet is frozen (the kernel's own check of the wallet row, no hook needed); a recovery code
// cancels a pending change (single use, its own throttle, never the change's counter); every notice
// goes to every channel the wallet has, and a delivery address a change adds is told when it takes
// effect. Messages are read from a real SMTP server in this process.

const T0 = Date.UTC(2026, 11, 9, 8, 0, 0);
const ORIGIN = 'http://localhost:8437';
const HOUR = 3_600_000;
const DELAY = 48 * HOUR;

describe('timelock gaps: freeze, recovery codes, every channel', () => {
  let signer: TestSigner;
  let app: App;
  let delivery: TestDelivery;
  const uris = new Map<string, string>();

  before(async () => {
    signer = await createTestSigner({
      policyDefaults: RAW_HASHES_ALLOWED,
      startMs: T0,
      appOptions: { publicUrl: ORIGIN },
      kernelOptions: { oob: { channels: ['email'] }, timelock: { hooks: QUORUM_APPROVED_STAND_IN } },
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

  /** A wallet whose first factor is an authenticator app enrolled on its page: returns its recovery codes. */
  async function totpWallet(walletName: string): Promise<string[]> {
    const link = await signer.kernel.createEnrollment(app, { walletName, kind: 'totp' });
    recordTestSecret('enrollmentCapability', link.capability);
    const page = await signer.kernel.openEnrollmentPage(link.capability);
    const uri = (page.shown as { otpauthUri: string }).otpauthUri;
    uris.set(walletName, uri);
    const done = await signer.kernel.completeEnrollment(link.capability, { proof: nextCode(walletName) });
    const codes = done.recoveryCodes ?? assert.fail('the first factor brings recovery codes');
    for (const code of codes) recordTestSecret('recoveryCode', code);
    return codes;
  }

  async function pendingChange(walletName: string, kind = 'safeAddress.set', payload: unknown = { address: `0x${'5a'.repeat(20)}` }) {
    const created = await signer.kernel.requestChange(app, { walletName, kind, payload });
    recordTestSecret('changeCapability', created.capability);
    const confirmed = await signer.kernel.confirmChange(created.capability, { kind: 'totp', proof: nextCode(walletName) });
    assert.equal(confirmed.state, 'pending');
    return { ...created, effectiveAt: confirmed.effectiveAt as number };
  }

  async function audits(action: string, walletName: string): Promise<AuditRecord[]> {
    return (await signer.store.readAudit(1, 100_000)).filter((r) => r.action === action && r.walletName === walletName);
  }

  it('a due change waits while the wallet is frozen — with no hook installed — and takes effect once it is unfrozen', async () => {
    await totpWallet('frozen-owner');
    const change = await pendingChange('frozen-owner');
    await signer.kernel.freezeWalletByAdmin(await adminApp(), { walletName: 'frozen-owner' });
    signer.clock.now = change.effectiveAt + HOUR;
    assert.equal(await signer.kernel.applyDueChanges(), 0);
    assert.equal((await signer.kernel.getChange(app, { id: change.id })).state, 'pending', 'frozen: it waits');
    assert.equal((await audits('change.apply', 'frozen-owner')).length, 0, 'nothing applied, nothing refused');
    // Passes later, still frozen: it keeps waiting.
    signer.clock.now += 7 * 24 * HOUR;
    assert.equal(await signer.kernel.applyDueChanges(), 0);
    assert.equal((await signer.kernel.getChange(app, { id: change.id })).state, 'pending');
    // Unfrozen (the admins' quorum): the next pass applies it.
    await signer.kernel.unfreezeWallet({ walletName: 'frozen-owner' }, { kind: 'quorum', proposalId: 'p-test' });
    assert.equal(await signer.kernel.applyDueChanges(), 1);
    assert.equal((await signer.kernel.getChange(app, { id: change.id })).state, 'applied');
  });

  it('a frozen wallet whose freeze was cleared in the database is record_unreadable: its change is never applied, kept pending, refused once', async () => {
    await totpWallet('frozen-tamper');
    const change = await pendingChange('frozen-tamper');
    await signer.kernel.freezeWalletByAdmin(await adminApp(), { walletName: 'frozen-tamper' });
    await signer.sql('UPDATE wallets SET frozen_at = NULL WHERE name = $1', 'frozen-tamper');
    signer.clock.now = change.effectiveAt + HOUR;
    assert.equal(await signer.kernel.applyDueChanges(), 0);
    const [row] = await signer.sql('SELECT state FROM pending_changes WHERE id = $1', change.id);
    assert.equal(row?.state, 'pending', 'not applied, not dropped: held until the wallet reads again (docs/timelock.md)');
    const [refused] = await audits('change.apply', 'frozen-tamper');
    assert.deepEqual([refused?.decision, refused?.reason], ['denied', 'record_unreadable']);
    // Later passes neither apply it nor refuse it again.
    signer.clock.now += HOUR;
    assert.equal(await signer.kernel.applyDueChanges(), 0);
    assert.equal((await audits('change.apply', 'frozen-tamper')).length, 1, 'refused and audited once');
    const [still] = await signer.sql('SELECT state FROM pending_changes WHERE id = $1', change.id);
    assert.equal(still?.state, 'pending');
  });

  it('a recovery code cancels a pending change: single use (its replay is refused), audited with the code’s own record', async () => {
    const codes = await totpWallet('rec-owner');
    const first = await pendingChange('rec-owner');
    const second = await pendingChange('rec-owner', '2fa.disable', {});
    const code = codes[0] as string;
    // Typed loosely: upper case, no dash.
    const cancelled = await signer.kernel.cancelChange(first.capability, { kind: 'recovery', proof: code.replace('-', '').toUpperCase() });
    assert.equal(cancelled.state, 'cancelled');
    const [record] = (await audits('change.cancel', 'rec-owner')).filter((r) => r.decision === 'allowed');
    assert.equal((record?.detail.consent as { factor: string }).factor, 'recovery');
    assert.equal((record?.detail.consent as { remaining: number }).remaining, 9);
    assert.equal(JSON.stringify(record?.detail).includes(code.replace('-', '')), false, 'never the code');
    const uses = await audits('recovery_code.use', 'rec-owner');
    assert.deepEqual(
      uses.map((r) => [r.decision, r.detail.purpose]),
      [['allowed', 'change.cancel']],
    );
    // Replayed on the other change: refused like a wrong code, the change stays pending.
    await expectCode(signer.kernel.cancelChange(second.capability, { kind: 'recovery', proof: code }), 'recovery_code_invalid');
    assert.equal((await signer.kernel.getChange(app, { id: second.id })).state, 'pending');
    const denied = (await audits('change.cancel', 'rec-owner')).at(-1);
    assert.deepEqual([denied?.decision, denied?.reason], ['denied', 'recovery_code_invalid']);
    // A recovery code confirms nothing.
    const requested = await signer.kernel.requestChange(app, { walletName: 'rec-owner', kind: 'factor.remove', payload: { kind: 'totp', id: 'totp' } });
    recordTestSecret('changeCapability', requested.capability);
    await expectCode(signer.kernel.confirmChange(requested.capability, { kind: 'recovery', proof: codes[1] }), 'factor_required');
    // Another one works for the second change; each cancel is its own code.
    assert.equal((await signer.kernel.cancelChange(second.capability, { kind: 'recovery', proof: codes[1] })).state, 'cancelled');
  });

  it('custos audit verify --factors checks the recovery codes row against the log: rolled back to before a use, or deleted', async () => {
    const { compareFactorRows, readAuditPages } = await import('@custos/kernel');
    const check = async () =>
      (
        await compareFactorRows(
          readAuditPages(signer.store),
          (name) => signer.store.readWalletRows(name),
          (name) => signer.store.transact((tx) => tx.getRecoveryCodesForUpdate(name)),
        )
      ).discrepancies.filter((d) => d.walletName === 'rec-audit');
    const codes = await totpWallet('rec-audit');
    const [before] = await signer.sql('SELECT codes, mac FROM recovery_codes WHERE wallet_name = $1', 'rec-audit');
    const change = await pendingChange('rec-audit');
    assert.equal((await signer.kernel.cancelChange(change.capability, { kind: 'recovery', proof: codes[0] })).state, 'cancelled');
    assert.deepEqual(await check(), [], 'the row matches the log');
    // the row put back as it was before the use (its MAC valid then): the used code would work again
    await signer.sql('UPDATE recovery_codes SET codes = $1, mac = $2 WHERE wallet_name = $3', before?.codes, before?.mac, 'rec-audit');
    assert.deepEqual(await check(), [{ walletName: 'rec-audit', problem: 'recovery_codes_differ', expectedUnused: 9, rowUnused: 10 }]);
    await signer.sql('DELETE FROM recovery_codes WHERE wallet_name = $1', 'rec-audit');
    assert.deepEqual(await check(), [{ walletName: 'rec-audit', problem: 'no_recovery_row' }]);
  });

  it('recovery codes have their own throttle: 5 wrong codes lock them (even a right one) — never the change’s counter, never the factor', async () => {
    const codes = await totpWallet('rec-guess');
    const change = await pendingChange('rec-guess');
    for (let i = 0; i < 5; i += 1)
      await expectCode(signer.kernel.cancelChange(change.capability, { kind: 'recovery', proof: `zzzzz-zzzz${i}` }), 'recovery_code_invalid');
    const throttled = await expectCode(signer.kernel.cancelChange(change.capability, { kind: 'recovery', proof: codes[0] }), 'recovery_code_throttled');
    assert.ok((throttled.retryAfterSeconds as number) > 0);
    assert.equal((await signer.kernel.getChange(app, { id: change.id })).state, 'pending');
    // The change's own counter (the page link's 10 answers) was not touched…
    const [row] = await signer.sql('SELECT cancel_failures FROM pending_changes WHERE id = $1', change.id);
    assert.equal(Number(row?.cancel_failures), 0);
    // …nor the factor: the authenticator's code still cancels at once.
    assert.equal((await signer.kernel.cancelChange(change.capability, { kind: 'totp', proof: nextCode('rec-guess') })).state, 'cancelled');
    // Past the window, the right code works again (on another change).
    const later = await pendingChange('rec-guess');
    signer.clock.now += 16 * 60_000;
    assert.equal((await signer.kernel.cancelChange(later.capability, { kind: 'recovery', proof: codes[0] })).state, 'cancelled');
  });

  it('on the change page: the cancel form takes a recovery code (kind recovery); a wrong one shows its refusal', async () => {
    const codes = await totpWallet('rec-page');
    const change = await pendingChange('rec-page');
    const path = `/changes/${change.capability}`;
    const page = await signer.app.inject({ method: 'GET', url: path });
    assert.equal(page.statusCode, 200, page.body);
    assert.match(page.body, /id="recovery-form"/);
    assert.match(page.body, /name="kind" value="recovery"/);
    const cookie = /custos_form=([A-Za-z0-9_-]{43})/.exec(String(page.headers['set-cookie']))?.[1] as string;
    const csrf = /name="csrf" value="([0-9a-f]{64})"/.exec(page.body)?.[1] as string;
    const post = (fields: Record<string, string>) =>
      signer.app.inject({
        method: 'POST',
        url: path,
        headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: `custos_form=${cookie}`, origin: ORIGIN },
        payload: new URLSearchParams({ csrf, ...fields }).toString(),
      });
    const wrong = await post({ decision: 'cancel', kind: 'recovery', code: 'aaaaa-aaaaa' });
    assert.equal(wrong.statusCode, 403, wrong.body);
    assert.match(wrong.body, /data-code="recovery_code_invalid"/);
    const done = await post({ decision: 'cancel', kind: 'recovery', code: codes[2] as string });
    assert.equal(done.statusCode, 200, done.body);
    assert.match(done.body, /data-state="cancelled"/);
  });

  /** Runs the sender once and returns the messages received since `count`, `expected` of them. */
  async function deliverAll(expected: number, count: number) {
    await delivery.loop.runOnce();
    if (expected > 0) await delivery.mail.nextMail(count + expected - 1);
    const messages = delivery.mail.received.slice(count).map((m) => ({ to: m.to, subject: m.subject }));
    assert.equal(messages.length, expected, JSON.stringify(messages));
    return messages;
  }

  it('a change of delivery address: announced and reminded on the address in force; when it takes effect both the old and the new address are told', async () => {
    const walletName = 'two-addresses';
    const first = await signer.kernel.createEnrollment(app, { walletName, kind: 'oob' });
    recordTestSecret('enrollmentCapability', first.capability);
    await signer.kernel.setEnrollmentAddress(first.capability, { channel: 'email', address: 'old@example.com' });
    await signer.kernel.completeEnrollment(first.capability, { proof: (await delivery.deliver()).code });
    const link = await signer.kernel.createEnrollment(app, { walletName, kind: 'oob' });
    recordTestSecret('enrollmentCapability', link.capability);
    await signer.kernel.setEnrollmentAddress(link.capability, { channel: 'email', address: 'new@example.com' });
    const confirm = await delivery.deliver();
    await signer.kernel.sendEnrollmentChangeCode(link.capability);
    const current = await delivery.deliver();
    const mark = delivery.mail.received.length;
    const done = await signer.kernel.completeEnrollment(link.capability, { proof: confirm.code, consent: current.code });
    const effectiveAt = done.effectiveAt as number;
    assert.equal(effectiveAt, signer.clock.now + DELAY);
    const [announced] = await deliverAll(1, mark);
    assert.deepEqual([announced?.to, /was requested/.test(announced?.subject ?? '')], ['old@example.com', true]);
    signer.clock.now = effectiveAt - HOUR;
    let count = delivery.mail.received.length;
    await signer.kernel.applyDueChanges();
    const [reminder] = await deliverAll(1, count);
    assert.deepEqual([reminder?.to, /Reminder/.test(reminder?.subject ?? '')], ['old@example.com', true], 'reminded on the address in force');
    signer.clock.now = effectiveAt;
    count = delivery.mail.received.length;
    assert.ok((await signer.kernel.applyDueChanges()) >= 1);
    const applied = (await deliverAll(2, count)).filter((m) => /took effect/.test(m.subject));
    assert.deepEqual(applied.map((m) => m.to).sort(), ['new@example.com', 'old@example.com']);
    for (const m of applied) assert.match(m.subject, /took effect/);
  });

  it('a wallet whose only factor is its address adds an authenticator app with a code sent to that address, as a timelocked change', async () => {
    const walletName = 'addr-adds-app';
    const first = await signer.kernel.createEnrollment(app, { walletName, kind: 'oob' });
    recordTestSecret('enrollmentCapability', first.capability);
    await signer.kernel.setEnrollmentAddress(first.capability, { channel: 'email', address: 'addr@example.com' });
    await signer.kernel.completeEnrollment(first.capability, { proof: (await delivery.deliver()).code });
    const link = await signer.kernel.createEnrollment(app, { walletName, kind: 'totp' });
    recordTestSecret('enrollmentCapability', link.capability);
    const page = await signer.kernel.openEnrollmentPage(link.capability);
    assert.deepEqual(page.consent, { kind: 'oob', options: { currentAddress: true } });
    const html = await signer.app.inject({ method: 'GET', url: `/enroll/${link.capability}` });
    assert.equal(html.statusCode, 200, html.body);
    for (const part of [/id="oob-current"/, /name="currentCode"/, /id="pending-note"/]) assert.match(html.body, part);
    const uri = (page.shown as { otpauthUri: string }).otpauthUri;
    uris.set(walletName, uri);
    // Without the current address's code: refused, not counted.
    const missing = await expectCode(signer.kernel.completeEnrollment(link.capability, { proof: nextCode(walletName) }), 'code_required');
    assert.equal(missing.field, 'consent');
    await signer.kernel.sendEnrollmentChangeCode(link.capability);
    const current = await delivery.deliver();
    assert.equal(current.to, 'addr@example.com');
    assert.match(current.text, /Add an authenticator app \(on the enrolment page\)/);
    const mark = delivery.mail.received.length;
    const done = await signer.kernel.completeEnrollment(link.capability, { proof: nextCode(walletName), consent: current.code });
    assert.equal(done.effectiveAt, signer.clock.now + DELAY, 'a timelocked change');
    const [announced] = await deliverAll(1, mark);
    assert.deepEqual([announced?.to, /was requested/.test(announced?.subject ?? '')], ['addr@example.com', true]);
    assert.deepEqual((await signer.kernel.getWallet(app, { walletName })).factors, ['oob'], 'not active yet');
    signer.clock.now = done.effectiveAt as number;
    await signer.kernel.applyDueChanges();
    assert.deepEqual((await signer.kernel.getWallet(app, { walletName })).factors.sort(), ['oob', 'totp']);
    // A second app is refused at once.
    await expectCode(signer.kernel.createEnrollment(app, { walletName, kind: 'totp' }), 'already_enrolled');
  });

  async function adminApp(): Promise<App> {
    if (adminKey === undefined) {
      const { createApiKey } = await import('@custos/kernel');
      ({ token: adminKey } = await createApiKey(signer.store, { name: 'operator', tenant: 'system', scopes: ['admin'] }));
      recordTestSecret('apiKey', adminKey);
    }
    return signer.kernel.authenticateApiKey(adminKey);
  }
  let adminKey: string | undefined;
});
