import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type App, bootstrapQuorumOffline, CustosError, generateAdminKey, Kernel, parseAdminKeyFile, type StoreTx } from '@custos/kernel';
import type { OpenedStore } from './openStore.js';
import { createTestSigner, QUORUM_APPROVED_STAND_IN, recordTestSecret, TEST_PASSPHRASE, type TestSigner } from './testing/createTestSigner.js';
import { expectCode } from './testing/expectCode.js';
import { startTestDelivery, type TestDelivery } from './testing/startTestDelivery.js';
import { totpFromUri } from './testing/totpFromUri.js';

// Issue 13 point 2 (review LOWs): the apply loop is robust. A due change whose unit fails at every
// pass — a store error on its row, a hook's unexpected error, its wallet's rows failing their MACs —
// never stops the other due changes; it stays pending, is tried again, and is reported (audited, the
// admins told, the owner told on the channels still readable) once per distinct failure, not at every
// pass. A store-wide failure still ends the pass, and the next pass carries on. A wallet broken for a
// moment does not kill its owner's change: once its rows read again, the change applies. Messages are
// read from a real SMTP server in this process.

const T0 = Date.UTC(2026, 11, 10, 8, 0, 0);
const ORIGIN = 'http://localhost:8631';
const HOUR = 3_600_000;
const OPS = 'ops@example.com';
/** The other admins' addresses (every admin has one): their copies of each admin notice are not counted below, OPS's is. */
const OTHER_ADMINS = ['ops-2@example.com', 'ops-3@example.com'];
const ADMIN = parseAdminKeyFile(JSON.stringify(generateAdminKey()));
const ADMIN_2 = parseAdminKeyFile(JSON.stringify(generateAdminKey()));
const ADMIN_3 = parseAdminKeyFile(JSON.stringify(generateAdminKey()));

/**
 * A store that goes down on demand — a stand-in for a database that stops answering in the middle of
 * a pass (the real store cannot be made to fail and come back on cue): while `down`, every unit of
 * work and the ping fail; everything else is the real store.
 */
function storeGoingDown(store: OpenedStore): { store: OpenedStore; state: { down: boolean } } {
  const state = { down: false };
  const proxy = new Proxy(store, {
    get(target, prop) {
      if (prop === 'transact')
        return (work: (tx: StoreTx) => Promise<unknown>) =>
          state.down ? Promise.reject(new Error('connection terminated (store-going-down stand-in)')) : target.transact(work);
      if (prop === 'ping') return async () => !state.down && (await target.ping());
      const value = Reflect.get(target, prop, target) as unknown;
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
  return { store: proxy, state };
}

describe('the apply loop: a failing change never stops the others', () => {
  let signer: TestSigner;
  let app: App;
  let delivery: TestDelivery;
  const uris = new Map<string, string>();

  before(async () => {
    signer = await createTestSigner({
      startMs: T0,
      appOptions: { publicUrl: ORIGIN },
      // TOTP-only wallets' changes need an admin quorum: a stand-in approves them (not this test's subject).
      kernelOptions: { oob: { channels: ['email'] }, timelock: { delayMs: HOUR, hooks: QUORUM_APPROVED_STAND_IN } },
    });
    // An admin set with an address: the admins are told of a change that cannot be applied.
    await bootstrapQuorumOffline({
      store: signer.store,
      credential: { type: 'passphrase', passphrase: new TextEncoder().encode(TEST_PASSPHRASE) },
      quorum: {
        threshold: 2,
        admins: [
          { publicKey: ADMIN.publicKey, email: OPS },
          { publicKey: ADMIN_2.publicKey, email: OTHER_ADMINS[0] },
          { publicKey: ADMIN_3.publicKey, email: OTHER_ADMINS[1] },
        ],
      },
      deployment: { timelockDelaySeconds: 3600, webhookUrl: null, policyDefaults: {} },
    });
    await signer.kernel.refreshPolicyDefaults();
    app = await signer.kernel.authenticateApiKey(signer.apiKey);
    // The app's own loop (a pass every 30 s of real time) would run passes between this test's, which
    // count them: closed (nothing here goes over HTTP).
    await signer.app.close();
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

  async function totpWallet(walletName: string): Promise<void> {
    const { otpauthUri } = await signer.kernel.enrollTotp(app, { walletName });
    recordTestSecret('totpUri', otpauthUri);
    uris.set(walletName, otpauthUri);
  }

  /** A safe-address change of a TOTP wallet, confirmed: pending, effective after the delay. */
  async function pendingTotpChange(walletName: string): Promise<{ id: string; effectiveAt: number }> {
    const created = await signer.kernel.requestChange(app, { walletName, kind: 'safeAddress.set', payload: { address: `0x${'5a'.repeat(20)}` } });
    recordTestSecret('changeCapability', created.capability);
    const confirmed = await signer.kernel.confirmChange(created.capability, { kind: 'totp', proof: nextCode(walletName) });
    assert.equal(confirmed.state, 'pending');
    return { id: created.id, effectiveAt: confirmed.effectiveAt as number };
  }

  async function state(id: string): Promise<string> {
    const [row] = await signer.sql('SELECT state FROM pending_changes WHERE id = $1', id);
    return String(row?.state);
  }

  async function applyAudits(id: string): Promise<Array<{ decision: string; reason: string | null; detail: Record<string, unknown> }>> {
    return (await signer.store.readAudit(1, 1_000_000))
      .filter((r) => r.action === 'change.apply' && r.detail.changeId === id)
      .map((r) => ({ decision: r.decision, reason: r.reason, detail: r.detail }));
  }

  /**
   * Sends what is queued (e.g. the admins' notice of each TOTP-only wallet's confirmed change, which
   * needs their quorum), then returns how many messages the SMTP server holds: the mark to count from.
   */
  async function drained(): Promise<number> {
    await delivery.loop.runOnce();
    return delivery.mail.received.length;
  }

  /** Runs the sender once: the messages delivered since `mark`, as [to, subject, text]. */
  async function sent(mark: number, expected: number): Promise<Array<{ to: string; subject: string; text: string }>> {
    await delivery.loop.runOnce();
    const counted = () => delivery.mail.received.slice(mark).filter((m) => !OTHER_ADMINS.includes(m.to));
    while (counted().length < expected) await delivery.mail.nextMail(delivery.mail.received.length);
    const mails = counted().map((m) => ({ to: m.to, subject: m.subject, text: m.text }));
    assert.equal(mails.length, expected, JSON.stringify(mails.map((m) => [m.to, m.subject])));
    return mails;
  }

  const isPostgres = () => 'url' in signer.location;

  async function failUpdatesOf(id: string): Promise<void> {
    if (isPostgres()) {
      await signer.sql(
        `CREATE FUNCTION applyloop_fail() RETURNS trigger LANGUAGE plpgsql AS $f$ BEGIN IF OLD.id = '${id}' THEN RAISE EXCEPTION 'injected row failure'; END IF; RETURN NEW; END $f$`,
      );
      await signer.sql('CREATE TRIGGER applyloop_fail BEFORE UPDATE ON pending_changes FOR EACH ROW EXECUTE FUNCTION applyloop_fail()');
    } else {
      await signer.sql(
        `CREATE TRIGGER applyloop_fail BEFORE UPDATE ON pending_changes WHEN OLD.id = '${id}' BEGIN SELECT RAISE(ABORT, 'injected row failure'); END`,
      );
    }
  }

  async function healUpdates(): Promise<void> {
    if (isPostgres()) {
      await signer.sql('DROP TRIGGER applyloop_fail ON pending_changes');
      await signer.sql('DROP FUNCTION applyloop_fail()');
    } else await signer.sql('DROP TRIGGER applyloop_fail');
  }

  it('a store error on one change’s row at every pass: the others apply; reported once (audited, admins told), tried again; a second failure reported once more; applied a full delay after its wallet reads again', async () => {
    await totpWallet('broken');
    await totpWallet('fine-1');
    await totpWallet('fine-2');
    const broken = await pendingTotpChange('broken'); // first in the loop's order
    const fine1 = await pendingTotpChange('fine-1');
    const fine2 = await pendingTotpChange('fine-2');
    await failUpdatesOf(broken.id);
    signer.clock.now = fine2.effectiveAt + 60_000;

    let mark = await drained();
    assert.equal(await signer.kernel.applyDueChanges(), 2, 'the changes after the failing one are applied');
    assert.deepEqual([await state(fine1.id), await state(fine2.id), await state(broken.id)], ['applied', 'applied', 'pending']);
    const first = await applyAudits(broken.id);
    assert.deepEqual(
      first.map((a) => [a.decision, a.reason, a.detail.kept, a.detail.adminsTold]),
      [['denied', 'store_unavailable', 'pending', 3]],
    );
    const [told] = await sent(mark, 1);
    assert.equal(told?.to, OPS);
    assert.match(told?.text ?? '', new RegExp(`safeAddress\\.set, id ${broken.id}\\) of wallet "broken" could not be applied: store_unavailable`));

    // Passes later, the same failure: not reported again (no audit flood, no mail), still pending.
    for (let i = 0; i < 3; i++) {
      signer.clock.now += 30_000;
      mark = await drained();
      assert.equal(await signer.kernel.applyDueChanges(), 0);
      await sent(mark, 0);
    }
    assert.equal((await applyAudits(broken.id)).length, 1, 'one report for one failure');
    assert.equal(await state(broken.id), 'pending');

    // Another failure: its row heals, but its wallet's row now fails its MAC — reported once more (held).
    await healUpdates();
    const [original] = await signer.sql("SELECT mac FROM wallets WHERE name = 'broken'");
    const [other] = await signer.sql("SELECT mac FROM wallets WHERE name = 'fine-1'");
    await signer.sql("UPDATE wallets SET mac = $1 WHERE name = 'broken'", other?.mac);
    mark = await drained();
    for (let i = 0; i < 2; i++) assert.equal(await signer.kernel.applyDueChanges(), 0);
    const second = await applyAudits(broken.id);
    assert.deepEqual(
      second.map((a) => [a.reason, a.detail.kept]),
      [
        ['store_unavailable', 'pending'],
        ['record_unreadable', 'pending'],
      ],
    );
    // A TOTP-only wallet has no channel to tell its owner on: only the admins hear of it.
    assert.equal(second[1]?.detail.ownerNotices, 0);
    const [held] = await sent(mark, 1);
    assert.equal(held?.to, OPS);
    assert.match(held?.text ?? '', /could not be applied: record_unreadable/);
    assert.equal(await state(broken.id), 'pending', 'never applied while unreadable, never dropped');

    // The wallet's row is put right: the owner's change takes effect a full delay after the last pass
    // that held it (postponed by each), not at once.
    await signer.sql("UPDATE wallets SET mac = $1 WHERE name = 'broken'", original?.mac);
    assert.equal(await signer.kernel.applyDueChanges(), 0, 'postponed: not applied the moment the row is put right');
    signer.clock.now = (await signer.kernel.getChange(app, { id: broken.id })).effectiveAt as number;
    assert.equal(await signer.kernel.applyDueChanges(), 1);
    assert.equal(await state(broken.id), 'applied');
    assert.equal((await applyAudits(broken.id)).at(-1)?.decision, 'allowed');
  });

  it('a wallet whose row fails its MAC: its change is held, not cancelled — the owner told once on its address (whose own row holds), the admins told, audited once; postponed, so applied a full delay after the row is put right', async () => {
    // An e-mail wallet, and its change confirmed with a code sent to it.
    await drained();
    const enrolment = await signer.kernel.createEnrollment(app, { walletName: 'mailer', kind: 'oob' });
    recordTestSecret('enrollmentCapability', enrolment.capability);
    await signer.kernel.setEnrollmentAddress(enrolment.capability, { channel: 'email', address: 'owner@example.com' });
    assert.equal((await signer.kernel.completeEnrollment(enrolment.capability, { proof: (await delivery.deliver()).code })).state, 'completed');
    const created = await signer.kernel.requestChange(app, { walletName: 'mailer', kind: 'safeAddress.set', payload: { address: `0x${'6b'.repeat(20)}` } });
    recordTestSecret('changeCapability', created.capability);
    await signer.kernel.sendChangeCode(created.capability);
    const confirmed = await signer.kernel.confirmChange(created.capability, { kind: 'oob', proof: (await delivery.deliver()).code });
    assert.equal(confirmed.state, 'pending');
    await totpWallet('bystander');
    const bystander = await pendingTotpChange('bystander');
    await drained(); // the announcement, the admins' notice of the bystander's change

    // A database writer breaks the wallet's row (its MAC no longer holds) just before the change is due.
    const [original] = await signer.sql("SELECT mac FROM wallets WHERE name = 'mailer'");
    const [other] = await signer.sql("SELECT mac FROM wallets WHERE name = 'bystander'");
    await signer.sql("UPDATE wallets SET mac = $1 WHERE name = 'mailer'", other?.mac);
    signer.clock.now = bystander.effectiveAt + 60_000;
    let mark = await drained();
    assert.equal(await signer.kernel.applyDueChanges(), 1, 'the other wallet’s change is applied');
    assert.equal(await state(bystander.id), 'applied');
    assert.equal(await state(created.id), 'pending', 'held: neither applied nor cancelled');
    const audits = await applyAudits(created.id);
    assert.deepEqual(
      audits.map((a) => [a.decision, a.reason, a.detail.kept, a.detail.ownerNotices, a.detail.adminsTold]),
      [['denied', 'record_unreadable', 'pending', 1, 3]],
    );
    const mails = await sent(mark, 2);
    const owner = mails.find((m) => m.to === 'owner@example.com');
    assert.match(owner?.subject ?? '', /is on hold/);
    assert.match(owner?.text ?? '', /failed their integrity check/);
    const ops = mails.find((m) => m.to === OPS);
    assert.match(ops?.text ?? '', new RegExp(`id ${created.id}\\) of wallet "mailer" could not be applied: record_unreadable`));

    // Later passes: no new report.
    signer.clock.now += HOUR;
    mark = await drained();
    assert.equal(await signer.kernel.applyDueChanges(), 0);
    await sent(mark, 0);
    assert.equal((await applyAudits(created.id)).length, 1);

    // Each pass that held it postponed it: a full delay after the last one (the owner cannot cancel
    // while the wallet is unreadable, so the writer must not be able to pick the moment it applies).
    assert.equal(audits[0]?.detail.postponedTo, bystander.effectiveAt + 60_000 + HOUR);
    const lastHold = signer.clock.now;
    assert.equal((await signer.kernel.getChange(app, { id: created.id })).effectiveAt, lastHold + HOUR);

    // The row put right: not applied at once — the owner has the delay to cancel in now.
    await signer.sql("UPDATE wallets SET mac = $1 WHERE name = 'mailer'", original?.mac);
    assert.equal(await signer.kernel.applyDueChanges(), 0, 'postponed: not applied the moment the row is put right');
    assert.equal(await state(created.id), 'pending');
    // Its time come, the change applies, and its owner hears that it took effect.
    signer.clock.now = lastHold + HOUR;
    mark = await drained();
    assert.equal(await signer.kernel.applyDueChanges(), 1);
    assert.equal(await state(created.id), 'applied');
    const [applied] = await sent(mark, 1);
    assert.deepEqual([applied?.to, /took effect/.test(applied?.subject ?? '')], ['owner@example.com', true]);
  });

  it('a store that goes down in a pass ends it (thrown, nothing reported); the next pass carries on; a hook’s unexpected error is that change’s alone', async () => {
    await totpWallet('z-1');
    await totpWallet('z-2');
    const z1 = await pendingTotpChange('z-1');
    const z2 = await pendingTotpChange('z-2');
    const going = storeGoingDown(signer.store);
    let mode: 'down' | 'error' | 'error-then-down' | 'ok' = 'down';
    // hook: freeze — trusted code that fails on z-1's change: first with the store going down under it, then with an error of its own.
    const isFrozen = async (_tx: StoreTx, walletName: string): Promise<boolean> => {
      if (walletName !== 'z-1' || mode === 'ok') return false;
      if (mode === 'down') {
        going.state.down = true;
        throw new Error('connection lost');
      }
      if (mode === 'error-then-down') going.state.down = true;
      throw new CustosError('internal', 'the freeze hook failed (test)');
    };
    const replica = await Kernel.open({
      store: going.store,
      now: () => signer.clock.now,
      oob: { channels: ['email'] },
      timelock: { delayMs: HOUR, hooks: { ...QUORUM_APPROVED_STAND_IN, isFrozen } },
    });
    await replica.unseal(new TextEncoder().encode(TEST_PASSPHRASE));
    try {
      signer.clock.now = z2.effectiveAt + 60_000;
      await expectCode(replica.applyDueChanges(), 'store_unavailable');
      assert.deepEqual([await state(z1.id), await state(z2.id)], ['pending', 'pending'], 'the pass ended: z-2 not tried');
      assert.equal((await applyAudits(z1.id)).length, 0, 'a store that is down reports nothing');

      // The store is back; the hook now fails with an error of its own at every pass: z-2 applies, z-1 is reported once.
      going.state.down = false;
      mode = 'error';
      assert.equal(await replica.applyDueChanges(), 1);
      assert.deepEqual([await state(z1.id), await state(z2.id)], ['pending', 'applied']);
      assert.equal(await replica.applyDueChanges(), 0);
      assert.deepEqual(
        (await applyAudits(z1.id)).map((a) => [a.decision, a.reason, a.detail.kept]),
        [['denied', 'internal', 'pending']],
      );
      // The same failure, reported already, and the store goes down with it: the ping tells, and the pass ends.
      mode = 'error-then-down';
      await expectCode(replica.applyDueChanges(), 'store_unavailable');
      going.state.down = false;
      assert.equal((await applyAudits(z1.id)).length, 1);

      mode = 'ok';
      assert.equal(await replica.applyDueChanges(), 1);
      assert.equal(await state(z1.id), 'applied');
    } finally {
      replica.seal();
    }
  });
});
