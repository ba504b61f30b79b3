import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { type App, type AuditRecord, canonicalJson, createApiKey, Kernel } from '@custos/kernel';
import {
  createTestSigner,
  QUORUM_APPROVED_STAND_IN,
  RAW_HASHES_ALLOWED,
  recordTestSecret,
  TEST_PASSPHRASE,
  type TestSigner,
} from './testing/createTestSigner.js';
import { expectCode } from './testing/expectCode.js';
import { standInCard } from './testing/standInCard.js';
import { totpFromUri } from './testing/totpFromUri.js';

// Issue 13, point 2 (timelocked changes) and its attack tests from point 6: a change of a wallet's
// protection takes effect only after the delay (the clock is injected), the old protection stays in
// force meanwhile, only the owner confirms or cancels (never the API key alone), a cancel is not
// blocked by the factor's throttle lock, a consent answers one change only, a swapped payload is
// refused, and expired entries never block later ones.

const T0 = Date.UTC(2026, 11, 7, 9, 0, 0);
const HOUR = 3_600_000;
const DELAY = 48 * HOUR;
const HASH = `0x${'42'.repeat(32)}`;
/**
 * These wallets are TOTP-only, whose changes also need the admin quorum (fail closed without it):
 * here a stand-in hook says "approved", so that the tests see the timelock alone. The real approval
 * (a wallet.change.approve proposal) is attacked in quorumWiring.kernel.test.ts.
 */
const QUORUM_STAND_IN = { timelock: { hooks: QUORUM_APPROVED_STAND_IN } };

describe('timelocked changes (kernel)', () => {
  let signer: TestSigner;
  let app: App;
  const uris = new Map<string, string>();

  before(async () => {
    // The subject is the timelock, not the policy: the wallets sign raw hashes (RAW_HASHES_ALLOWED).
    signer = await createTestSigner({ policyDefaults: RAW_HASHES_ALLOWED, startMs: T0, kernelOptions: QUORUM_STAND_IN });
    app = await signer.kernel.authenticateApiKey(signer.apiKey);
  });
  after(async () => {
    await signer.close();
  });

  /** A fresh TOTP step for each code (a code is single use): the clock moves 30 s. */
  function nextCode(walletName: string): string {
    signer.clock.now += 30_000;
    return totpFromUri(uris.get(walletName) as string, signer.clock.now);
  }

  async function enrolled(walletName: string): Promise<void> {
    const { otpauthUri } = await signer.kernel.enrollTotp(app, { walletName });
    uris.set(walletName, otpauthUri);
  }

  async function request(walletName: string, kind = '2fa.disable', payload?: unknown) {
    const created = await signer.kernel.requestChange(app, { walletName, kind, ...(payload === undefined ? {} : { payload }) });
    recordTestSecret('changeCapability', created.capability);
    return created;
  }

  async function lastAudit(action: string): Promise<AuditRecord> {
    const records = await signer.store.readAudit(1, 100_000);
    const found = records.filter((r) => r.action === action).at(-1);
    assert.ok(found, `an audit record ${action}`);
    return found;
  }

  it('a change takes effect only after the delay; until then the old protection is in force', async () => {
    await enrolled('alice');
    const created = await request('alice');
    assert.equal(created.state, 'requested');
    assert.equal(created.requiredStrength, 'present');
    const confirmed = await signer.kernel.confirmChange(created.capability, { kind: 'totp', proof: nextCode('alice') });
    assert.equal(confirmed.state, 'pending');
    assert.equal(confirmed.effectiveAt, signer.clock.now + DELAY);
    assert.equal((await lastAudit('change.confirm')).decision, 'allowed');
    // Pending: signing still needs the code.
    await expectCode(signer.kernel.signHash(app, { walletName: 'alice', keyIndex: 0, hash: HASH }), 'code_required');
    // One millisecond before: nothing is applied, the factor is still needed.
    signer.clock.now = (confirmed.effectiveAt as number) - 1;
    assert.equal(await signer.kernel.applyDueChanges(), 0);
    await expectCode(signer.kernel.signHash(app, { walletName: 'alice', keyIndex: 0, hash: HASH }), 'code_required');
    assert.equal((await signer.kernel.getChange(app, { id: created.id })).state, 'pending');
    // At the time: applied, audited, and the wallet signs without a factor.
    signer.clock.now = confirmed.effectiveAt as number;
    assert.equal(await signer.kernel.applyDueChanges(), 1);
    const view = await signer.kernel.getChange(app, { id: created.id });
    assert.equal(view.state, 'applied');
    const applied = await lastAudit('change.apply');
    assert.equal(applied.decision, 'allowed');
    assert.deepEqual((applied.detail.result as { removed: unknown[] }).removed, [{ kind: 'totp', id: 'totp' }]);
    await signer.kernel.signHash(app, { walletName: 'alice', keyIndex: 0, hash: HASH });
    // Applied once: another pass changes nothing.
    assert.equal(await signer.kernel.applyDueChanges(), 0);
  });

  it('confirm and cancel with only the API key: owner_consent_required, audited; the change stays as it was', async () => {
    await enrolled('bob');
    const created = await request('bob');
    await expectCode(signer.kernel.refuseChangeByApi(app, { id: created.id }, 'confirm'), 'owner_consent_required');
    const confirm = await lastAudit('change.confirm');
    assert.deepEqual([confirm.decision, confirm.reason, confirm.detail.via], ['denied', 'owner_consent_required', 'api']);
    assert.equal((await signer.kernel.getChange(app, { id: created.id })).state, 'requested');
    await signer.kernel.confirmChange(created.capability, { kind: 'totp', proof: nextCode('bob') });
    await expectCode(signer.kernel.refuseChangeByApi(app, { id: created.id }, 'cancel'), 'owner_consent_required');
    const cancel = await lastAudit('change.cancel');
    assert.deepEqual([cancel.decision, cancel.reason], ['denied', 'owner_consent_required']);
    assert.equal((await signer.kernel.getChange(app, { id: created.id })).state, 'pending');
    // The owner cancels on the page with the factor: it never takes effect.
    const cancelled = await signer.kernel.cancelChange(created.capability, { kind: 'totp', proof: nextCode('bob') });
    assert.equal(cancelled.state, 'cancelled');
    signer.clock.now += DELAY + HOUR;
    await signer.kernel.applyDueChanges();
    await expectCode(signer.kernel.signHash(app, { walletName: 'bob', keyIndex: 0, hash: HASH }), 'code_required');
  });

  it('a cancel while the factor is throttle-locked (a backend provoked it): the cancel works, the lock stays for signing', async () => {
    await enrolled('carol');
    const created = await request('carol');
    await signer.kernel.confirmChange(created.capability, { kind: 'totp', proof: nextCode('carol') });
    // The backend locks the factor with wrong codes on the sign route, waiting out each lock so that
    // the next one doubles: 12 failures lock it for 64 minutes.
    for (let i = 0; i < 12; i += 1) {
      if (i > 0) signer.clock.now += HOUR;
      await expectCode(signer.kernel.signHash(app, { walletName: 'carol', keyIndex: 0, hash: HASH, code: '000000' }), 'code_invalid');
    }
    await expectCode(signer.kernel.signHash(app, { walletName: 'carol', keyIndex: 0, hash: HASH, code: nextCode('carol') }), 'factor_throttled');
    // A wrong cancel answer counts on the change, not on the factor.
    await expectCode(signer.kernel.cancelChange(created.capability, { kind: 'totp', proof: '000000' }), 'code_invalid');
    assert.equal((await lastAudit('change.cancel')).detail.cancelFailures, 1);
    const cancelled = await signer.kernel.cancelChange(created.capability, { kind: 'totp', proof: nextCode('carol') });
    assert.equal(cancelled.state, 'cancelled');
    // The factor's lock is untouched by the cancel.
    await expectCode(signer.kernel.signHash(app, { walletName: 'carol', keyIndex: 0, hash: HASH, code: nextCode('carol') }), 'factor_throttled');
  });

  it('the page link takes at most 10 wrong cancel answers: change_cancel_throttled', async () => {
    await enrolled('cancel-guess');
    const created = await request('cancel-guess');
    await signer.kernel.confirmChange(created.capability, { kind: 'totp', proof: nextCode('cancel-guess') });
    for (let i = 0; i < 10; i += 1) await expectCode(signer.kernel.cancelChange(created.capability, { kind: 'totp', proof: '000000' }), 'code_invalid');
    await expectCode(signer.kernel.cancelChange(created.capability, { kind: 'totp', proof: nextCode('cancel-guess') }), 'change_cancel_throttled');
  });

  it('a consent answers one change: the same code on a second change is code_reused', async () => {
    await enrolled('dave');
    const first = await request('dave');
    const second = await request('dave', 'safeAddress.set', { address: `0x${'ab'.repeat(20)}` });
    const code = nextCode('dave');
    await signer.kernel.confirmChange(first.capability, { kind: 'totp', proof: code });
    await expectCode(signer.kernel.confirmChange(second.capability, { kind: 'totp', proof: code }), 'code_reused');
    assert.equal((await signer.kernel.getChange(app, { id: second.id })).state, 'requested');
    // And a confirmed change cannot be confirmed again.
    await expectCode(signer.kernel.confirmChange(first.capability, { kind: 'totp', proof: nextCode('dave') }), 'change_not_pending');
  });

  it('a pending change’s payload swapped in the database: record_unreadable, never applied', async () => {
    await enrolled('erin');
    const requested = await request('erin', 'safeAddress.set', { address: `0x${'11'.repeat(20)}` });
    await signer.sql('UPDATE pending_changes SET payload = $1 WHERE id = $2', JSON.stringify({ address: `0x${'66'.repeat(20)}` }), requested.id);
    await expectCode(signer.kernel.confirmChange(requested.capability, { kind: 'totp', proof: nextCode('erin') }), 'record_unreadable');
    // A pending one swapped after its consent: the apply loop refuses it (audited), nothing is set.
    const pending = await request('erin', 'factor.remove', { kind: 'totp', id: 'totp' });
    await signer.kernel.confirmChange(pending.capability, { kind: 'totp', proof: nextCode('erin') });
    await signer.sql('UPDATE pending_changes SET kind = $1, payload = $2 WHERE id = $3', '2fa.disable', '{}', pending.id);
    signer.clock.now += DELAY + HOUR;
    await signer.kernel.applyDueChanges();
    const refused = await lastAudit('change.apply');
    assert.deepEqual([refused.decision, refused.reason], ['denied', 'record_unreadable']);
    // Refused once: set aside, not audited again at every pass.
    const unreadableApplies = async () =>
      (await signer.store.readAudit(1, 100_000)).filter((r) => r.action === 'change.apply' && r.reason === 'record_unreadable').length;
    const count = await unreadableApplies();
    await signer.kernel.applyDueChanges();
    assert.equal(await unreadableApplies(), count);
    await expectCode(signer.kernel.signHash(app, { walletName: 'erin', keyIndex: 0, hash: HASH }), 'code_required');
    // Its time moved forward in the database: refused as well.
    await expectCode(signer.kernel.getChange(app, { id: pending.id }), 'record_unreadable');
  });

  it('expired entries never block later ones; open ones are limited', async () => {
    await enrolled('frank');
    const open = [];
    for (let i = 0; i < 8; i += 1) open.push(await request('frank'));
    await expectCode(request('frank'), 'changes_limited');
    // Past their consent window they expire: a new request goes through.
    signer.clock.now += 86_400_000;
    assert.equal((await signer.kernel.getChange(app, { id: (open[0] as { id: string }).id })).state, 'expired');
    const later = await request('frank');
    await expectCode(signer.kernel.confirmChange((open[1] as { capability: string }).capability, { kind: 'totp', proof: nextCode('frank') }), 'change_expired');
    const confirmed = await signer.kernel.confirmChange(later.capability, { kind: 'totp', proof: nextCode('frank') });
    assert.equal(confirmed.state, 'pending');
    // A cancelled one does not count either.
    await signer.kernel.cancelChange(later.capability, { kind: 'totp', proof: nextCode('frank') });
    for (let i = 0; i < 8; i += 1) await request('frank');
  });

  it('a card answer on the change page counts as relayed unless posted from the browser the card was enrolled in: the backend cannot confirm a change with a card tapped in its own app (review finding)', async () => {
    // The owner enrols a card on the enrolment page (page-enrolled: `bound` on the approval page, with its device cookie).
    const card = standInCard(randomBytes(32));
    const link = await signer.kernel.createEnrollment(app, { walletName: 'cardholder', kind: 'hwkey' });
    recordTestSecret('enrollmentCapability', link.capability);
    const page = await signer.kernel.openEnrollmentPage(link.capability);
    const digest = (page.shown as { digest: string }).digest;
    await signer.kernel.completeEnrollment(link.capability, { proof: { xpub: card.xpub, subpath: '0/0', signature: card.sign(digest, '0/0') } });
    const created = await request('cardholder');
    assert.equal(created.requiredStrength, 'bound');
    // The backend computes the change's card digest (deterministic) and has the screenless card sign it.
    const signerId = signer.kernel.signerId;
    const sha = (s: string) => createHash('sha256').update(s).digest('hex');
    const opHash = sha(
      canonicalJson({
        label: 'custos.change.v1',
        signerId,
        id: created.id,
        tenant: app.tenant,
        walletName: 'cardholder',
        kind: '2fa.disable',
        payload: canonicalJson({}),
      }),
    );
    const challenge = sha(`custos.change.confirm.v1\0${signerId}\0${created.id}\0${opHash}\0${0}`);
    await expectCode(signer.kernel.confirmChange(created.capability, { kind: 'hwkey', proof: card.sign(challenge, '0/0') }), 'factor_required');
    assert.equal((await signer.kernel.getChange(app, { id: created.id })).state, 'requested');
    // Nor does the kernel pick the card by itself when the answer names no kind.
    await expectCode(signer.kernel.confirmChange(created.capability, { proof: card.sign(challenge, '0/0') }), 'factor_required');
    // With a device token that is not the card's: still relayed.
    const made = randomBytes(32).toString('base64url');
    await expectCode(
      signer.kernel.confirmChange(created.capability, { kind: 'hwkey', proof: card.sign(challenge, '0/0'), deviceTokens: [made] }),
      'factor_required',
    );
    // From the browser the card was enrolled in (its device cookie, which only that browser holds): bound, confirmed.
    const device = await signer.kernel.enrolledHwkeyDeviceToken('cardholder');
    assert.ok(device);
    recordTestSecret('hwkeyDeviceToken', device);
    const confirmed = await signer.kernel.confirmChange(created.capability, {
      kind: 'hwkey',
      proof: card.sign(challenge, '0/0'),
      deviceTokens: [made, device],
    });
    assert.equal(confirmed.state, 'pending');
  });

  it('another tenant’s change is not found; a request needs the register scope and an enrolled wallet', async () => {
    await expectCode(signer.kernel.requestChange(app, { walletName: 'never-enrolled', kind: '2fa.disable' }), 'wallet_not_found');
    await signer.kernel.getPublicKey(app, { walletName: 'no-factor', keyIndex: 0 });
    await expectCode(signer.kernel.requestChange(app, { walletName: 'no-factor', kind: '2fa.disable' }), 'factor_required');
    await enrolled('gina');
    await expectCode(signer.kernel.requestChange(app, { walletName: 'gina', kind: 'factor.add', payload: {} }), 'invalid_input');
    await expectCode(signer.kernel.requestChange(app, { walletName: 'gina', kind: 'factor.remove', payload: { kind: 'passkey', id: 'x' } }), 'invalid_input');
    await expectCode(signer.kernel.getChange(app, { id: 'f'.repeat(32) }), 'change_not_found');
    // A policy.loosen whose payload is no wallet policy: refused at once.
    await expectCode(signer.kernel.requestChange(app, { walletName: 'gina', kind: 'policy.loosen', payload: { policy: { allow: [] } } }), 'invalid_input');
    // Another tenant: its key sees no change of ours, and cannot even be refused about one.
    const mine = await request('gina');
    const { token: otherKey } = await createApiKey(signer.store, { name: 'other', tenant: 'tenant-b', scopes: ['register'] });
    recordTestSecret('apiKey', otherKey);
    const other = await signer.kernel.authenticateApiKey(otherKey);
    await expectCode(signer.kernel.getChange(other, { id: mine.id }), 'change_not_found');
    await expectCode(signer.kernel.refuseChangeByApi(other, { id: mine.id }, 'cancel'), 'change_not_found');
    await expectCode(signer.kernel.requestChange(other, { walletName: 'gina', kind: '2fa.disable' }), 'wallet_not_found');
    // A key without the register scope asks for nothing (audited).
    const { token: signOnly } = await createApiKey(signer.store, { name: 'sign only', tenant: 'default', scopes: ['sign'] });
    recordTestSecret('apiKey', signOnly);
    const signer2 = await signer.kernel.authenticateApiKey(signOnly);
    await expectCode(signer.kernel.requestChange(signer2, { walletName: 'gina', kind: '2fa.disable' }), 'forbidden_scope');
    await expectCode(signer.kernel.getChange(signer2, { id: mine.id }), 'forbidden_scope');
    const denied = await lastAudit('change.request');
    assert.deepEqual([denied.decision, denied.reason], ['denied', 'forbidden_scope']);
  });

  it('on the page: the owner confirms with a code (a POST with this browser’s form token; a GET decides nothing), then cancels', async () => {
    await enrolled('page-owner');
    const created = await request('page-owner', 'safeAddress.set', { address: `0x${'99'.repeat(20)}` });
    const path = `/changes/${created.capability}`;
    const page = await signer.app.inject({ method: 'GET', url: path });
    assert.equal(page.statusCode, 200, page.body);
    assert.match(page.body, /id="confirm-form"/);
    assert.equal((await signer.kernel.getChange(app, { id: created.id })).state, 'requested');
    const cookie = /custos_form=([A-Za-z0-9_-]{43})/.exec(String(page.headers['set-cookie']))?.[1] as string;
    const csrf = /name="csrf" value="([0-9a-f]{64})"/.exec(page.body)?.[1] as string;
    const post = (fields: Record<string, string>, withCookie = true) =>
      signer.app.inject({
        method: 'POST',
        url: path,
        headers: { 'content-type': 'application/x-www-form-urlencoded', ...(withCookie ? { cookie: `custos_form=${cookie}` } : {}) },
        payload: new URLSearchParams({ csrf, ...fields }).toString(),
      });
    // Without this browser's cookie (a form posted from elsewhere): refused, nothing decided.
    assert.equal((await post({ decision: 'confirm', kind: 'totp', code: nextCode('page-owner') }, false)).statusCode, 403);
    const wrong = await post({ decision: 'confirm', kind: 'totp', code: '000000' });
    assert.equal(wrong.statusCode, 403, wrong.body);
    assert.match(wrong.body, /data-code="code_invalid"/);
    const confirmed = await post({ decision: 'confirm', kind: 'totp', code: nextCode('page-owner') });
    assert.equal(confirmed.statusCode, 200, confirmed.body);
    assert.match(confirmed.body, /id="cancel-form"/);
    assert.equal((await signer.kernel.getChange(app, { id: created.id })).state, 'pending');
    const cancelled = await post({ decision: 'cancel', kind: 'totp', code: nextCode('page-owner') });
    assert.equal(cancelled.statusCode, 200, cancelled.body);
    assert.match(cancelled.body, /data-state="cancelled"/);
  });

  it('two kernels on one store (replicas) apply a due change exactly once', async () => {
    await enrolled('replicated');
    const created = await request('replicated', 'safeAddress.set', { address: `0x${'31'.repeat(20)}` });
    const confirmed = await signer.kernel.confirmChange(created.capability, { kind: 'totp', proof: nextCode('replicated') });
    const replica = await Kernel.open({ ...QUORUM_STAND_IN, store: signer.store, now: () => signer.clock.now });
    await replica.unseal(new TextEncoder().encode(TEST_PASSPHRASE));
    try {
      signer.clock.now = confirmed.effectiveAt as number;
      await Promise.all([signer.kernel.applyDueChanges(), replica.applyDueChanges(), signer.kernel.applyDueChanges(), replica.applyDueChanges()]);
      const applied = (await signer.store.readAudit(1, 100_000)).filter(
        (r) => r.action === 'change.apply' && r.decision === 'allowed' && r.detail.changeId === created.id,
      );
      assert.equal(applied.length, 1);
      assert.equal((await signer.kernel.getChange(app, { id: created.id })).state, 'applied');
    } finally {
      replica.seal();
    }
  });

  it('the hooks: policy.loosen applied through the policy module’s hook; a frozen wallet’s due change waits; a missing quorum keeps it waiting', async () => {
    const policies: unknown[] = [];
    const hooks = { frozen: true, quorum: false };
    const hooked = await Kernel.open({
      store: signer.store,
      now: () => signer.clock.now,
      timelock: {
        hooks: {
          applyPolicy: async (_tx, request) => {
            policies.push(request.policy);
            return { policy: 'loosened' };
          },
          isFrozen: async () => hooks.frozen,
          quorumApproved: async () => hooks.quorum,
        },
      },
    });
    await hooked.unseal(new TextEncoder().encode(TEST_PASSPHRASE));
    try {
      await enrolled('hooked');
      const created = await hooked.requestChange(app, {
        walletName: 'hooked',
        kind: 'policy.loosen',
        payload: { policy: { destinations: [`0x${'ab'.repeat(20)}`] } },
      });
      recordTestSecret('changeCapability', created.capability);
      const confirmed = await hooked.confirmChange(created.capability, { kind: 'totp', proof: nextCode('hooked') });
      signer.clock.now = (confirmed.effectiveAt as number) + 1;
      await hooked.applyDueChanges();
      assert.equal((await hooked.getChange(app, { id: created.id })).state, 'pending', 'frozen: it waits');
      hooks.frozen = false;
      await hooked.applyDueChanges();
      assert.equal((await hooked.getChange(app, { id: created.id })).state, 'pending', 'a TOTP-only wallet: it waits for the quorum');
      hooks.quorum = true;
      await hooked.applyDueChanges();
      assert.equal((await hooked.getChange(app, { id: created.id })).state, 'applied');
      assert.deepEqual(policies, [{ destinations: [`0x${'ab'.repeat(20)}`] }]);
      assert.deepEqual((await lastAudit('change.apply')).detail.result, { policy: 'loosened' });
    } finally {
      hooked.seal();
    }
  });

  it('the emergency exit: a payment to the safe address passes the limits only while a deactivation is pending', async () => {
    await enrolled('hank');
    const safe = await request('hank', 'safeAddress.set', { address: `0x${'5A'.repeat(20)}` });
    await signer.kernel.confirmChange(safe.capability, { kind: 'totp', proof: nextCode('hank') });
    signer.clock.now += DELAY;
    await signer.kernel.applyDueChanges();
    // a limit of 0.001 ETH per transaction (a tightening: at once); the exit moves 1 ETH, its fee 21000 × 1 gwei
    await signer.kernel.setWalletPolicy(app, { walletName: 'hank', policy: { native: { '1': { perTx: String(10n ** 15n) } } } });
    const exit = () =>
      signer.kernel.signTransaction(app, {
        walletName: 'hank',
        keyIndex: 0,
        code: nextCode('hank'),
        transaction: {
          type: 'eip1559',
          chainId: 1,
          nonce: 0,
          to: `0x${'5a'.repeat(20)}`,
          value: String(10n ** 18n),
          gas: '21000',
          maxFeePerGas: String(10n ** 9n),
          maxPriorityFeePerGas: '1',
        },
      } as never);
    await expectCode(exit(), 'policy_limit_exceeded');
    const off = await request('hank');
    await signer.kernel.confirmChange(off.capability, { kind: 'totp', proof: nextCode('hank') });
    await exit();
    assert.equal(((await lastAudit('sign.transaction')).detail.policy as { exit?: boolean } | undefined)?.exit, true);
    await signer.kernel.cancelChange(off.capability, { kind: 'totp', proof: nextCode('hank') });
    await expectCode(exit(), 'policy_limit_exceeded');
  });
});
