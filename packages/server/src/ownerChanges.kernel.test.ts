import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { App } from '@custos/kernel';
import type { LightMyRequestResponse } from 'fastify';
import { createTestSigner, RAW_HASHES_ALLOWED, recordTestSecret, TEST_PASSPHRASE, type TestSigner } from './testing/createTestSigner.js';
import { expectCode } from './testing/expectCode.js';
import { type CreationOptionsJSON, type RequestOptionsJSON, SoftAuthenticator } from './testing/softAuthenticator.js';
import { adminSet, bootstrapTestQuorum, newTestAdmin, quorumDriver } from './testing/testAdmins.js';
import { totpFromUri } from './testing/totpFromUri.js';

// Issue 13 audit (A, B): the owner sees and cancels every open change of the wallet on its owner page
// (`/owner/<capability>`), the changes the kernel queued itself included — a quorum's factor reset of a
// passkey-only wallet, which has no channel to announce it and no page link anyone holds. The cancel
// takes any current factor with the change page's rules (cancelChange's core): the factor's throttle
// lifted, a wrong answer counted on the change. The change page links to the owner page ("not me").

const T0 = Date.UTC(2026, 11, 7, 9, 0, 0);
const HOUR = 3_600_000;
const HASH = `0x${'42'.repeat(32)}`;
const PUBLIC_URL = 'http://localhost:8420';
const ORIGIN = 'http://localhost:8420';
const _passphrase = () => new TextEncoder().encode(TEST_PASSPHRASE);

const A = newTestAdmin('alice');
const B = newTestAdmin('bob');
const C = newTestAdmin('carol');

function csrfOf(body: string): string {
  const m = /name="csrf" value="([0-9a-f]{64})"/.exec(body);
  assert.ok(m?.[1], 'the page has a form token');
  return m[1];
}

function formCookieOf(res: LightMyRequestResponse): string {
  const m = /custos_form=([A-Za-z0-9_-]{43}); Path=\/owner\//.exec(String(res.headers['set-cookie'] ?? ''));
  assert.ok(m?.[1], `Set-Cookie: ${String(res.headers['set-cookie'])}`);
  return m[1];
}

/** The options in the page's passkey step (`data-options`, HTML-escaped JSON). */
function passkeyOptionsOf(body: string): RequestOptionsJSON {
  const m = /id="passkey-step"[^>]*data-options="([^"]*)"/.exec(body);
  assert.ok(m?.[1], 'the page has a passkey step with its options');
  const json = m[1]
    .replace(/&quot;/g, '"')
    .replace(/&#39;/g, "'")
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&');
  return JSON.parse(json) as RequestOptionsJSON;
}

describe('the owner page: every open change, cancelled there with any current factor', () => {
  let signer: TestSigner;
  let app: App;
  const phone = new SoftAuthenticator(ORIGIN);
  const uris = new Map<string, string>();

  before(async () => {
    signer = await createTestSigner({
      policyDefaults: RAW_HASHES_ALLOWED,
      startMs: T0,
      scopes: ['admin', 'register', 'derive', 'sign'],
      appOptions: { publicUrl: PUBLIC_URL },
      kernelOptions: { passkeys: { rpId: 'localhost', origin: ORIGIN, rpName: 'Custos' } },
    });
    // 2 of 3 admins: A proposes, B and C approve.
    // Under the quorum the deployment's defaults are its settings row's (not the configuration's): the same ones.
    await bootstrapTestQuorum(signer.store, adminSet(2, [A, B, C]), { timelockDelaySeconds: 48 * 3600, webhookUrl: null, policyDefaults: RAW_HASHES_ALLOWED });
    app = await signer.kernel.authenticateApiKey(signer.apiKey);
  });
  after(async () => {
    await signer.close();
  });

  /** Proposed by A, approved by B and C (testing/testAdmins.ts): the answer of the approval that applies it. */
  const q = quorumDriver({ kernel: () => signer.kernel, app: () => app, now: () => signer.clock.now });
  const passProposal = (kind: string, payload: unknown) => q.pass(A, [B, C], kind, payload);

  /** A wallet whose only factor is a passkey, enrolled on the page: its recovery codes and its owner link come back together. */
  async function passkeyWallet(walletName: string): Promise<{ owner: string; recoveryCodes: string[] }> {
    const created = await signer.kernel.createEnrollment(app, { walletName, kind: 'passkey' });
    recordTestSecret('enrollmentCapability', created.capability);
    const page = await signer.kernel.openEnrollmentPage(created.capability);
    const done = await signer.kernel.completeEnrollment(created.capability, {
      proof: phone.create((page.shown as { optionsJSON: CreationOptionsJSON }).optionsJSON),
    });
    for (const code of done.recoveryCodes ?? []) recordTestSecret('recoveryCode', code);
    assert.ok(done.ownerCapability !== undefined, 'the answer that shows the recovery codes carries the owner link');
    recordTestSecret('ownerCapability', done.ownerCapability);
    return { owner: done.ownerCapability, recoveryCodes: done.recoveryCodes ?? [] };
  }

  function nextCode(walletName: string): string {
    signer.clock.now += 30_000;
    return totpFromUri(uris.get(walletName) as string, signer.clock.now);
  }

  async function totpWallet(walletName: string): Promise<void> {
    const { otpauthUri } = await signer.kernel.enrollTotp(app, { walletName });
    recordTestSecret('totpUri', otpauthUri);
    uris.set(walletName, otpauthUri);
  }

  /** A TOTP wallet's change, requested over the API and confirmed on its page: pending. */
  async function pendingChangeOf(walletName: string): Promise<{ id: string; capability: string }> {
    const created = await signer.kernel.requestChange(app, { walletName, kind: '2fa.disable' });
    recordTestSecret('changeCapability', created.capability);
    await signer.kernel.confirmChange(created.capability, { kind: 'totp', proof: nextCode(walletName) });
    return { id: created.id, capability: created.capability };
  }

  async function openOnPage(owner: string, query = ''): Promise<{ body: string; cookie: string }> {
    const page = await signer.app.inject({ method: 'GET', url: `/owner/${owner}${query}` });
    assert.equal(page.statusCode, 200, page.body);
    return { body: page.body, cookie: formCookieOf(page) };
  }

  async function postOnPage(
    owner: string,
    opened: { body: string; cookie: string },
    fields: Record<string, string>,
    extraHeaders: Record<string, string> = {},
  ) {
    return signer.app.inject({
      method: 'POST',
      url: `/owner/${owner}`,
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        cookie: `custos_form=${opened.cookie}`,
        origin: ORIGIN,
        'sec-fetch-site': 'same-origin',
        ...extraHeaders,
      },
      payload: new URLSearchParams({ csrf: csrfOf(opened.body), ...fields }).toString(),
    });
  }

  async function lastAudit(action: string, walletName: string) {
    const [row] = await signer.sql(
      'SELECT decision, reason, detail FROM audit_log WHERE action = $1 AND wallet_name = $2 ORDER BY seq DESC LIMIT 1',
      action,
      walletName,
    );
    assert.ok(row, `an audit record ${action}`);
    return {
      decision: String(row.decision),
      reason: row.reason === null ? null : String(row.reason),
      detail: JSON.parse(String(row.detail)) as Record<string, unknown>,
    };
  }

  async function changeState(id: string): Promise<string> {
    const [row] = await signer.sql('SELECT state FROM pending_changes WHERE id = $1', id);
    return String(row?.state);
  }

  it('a passkey-only wallet’s factor reset (no channel announces it): shown on the owner page, cancelled there with the passkey; the change page links "not me"', async () => {
    const walletName = 'pk-reset';
    const { owner } = await passkeyWallet(walletName);
    const before = await openOnPage(owner);
    assert.doesNotMatch(before.body, /id="open-changes"/, 'no open change yet');

    const reset = (await passProposal('wallet.factor-reset', { walletName })).result as { changeId: string; ownerNotices: number; effectiveAt: number };
    assert.equal(reset.ownerNotices, 0, 'a passkey-only wallet has no channel: nobody is told by message');

    const opened = await openOnPage(owner);
    assert.match(opened.body, new RegExp(`<li class="change" data-change-id="${reset.changeId}" data-state="pending">`));
    assert.match(opened.body, /Turn off two-factor protection/);
    assert.match(opened.body, /Change of protection requested/, 'the activity shows change.* records');
    assert.match(opened.body, /<script nonce="[^"]+" src="[^"]+" defer><\/script>/, 'the passkey scripts, under the nonce');
    const options = passkeyOptionsOf(opened.body);

    // An answer to another step's challenge (this change's confirm options are never offered; a
    // freeze's is another challenge): the unfreeze challenge of the wallet is not this cancel.
    const wrong = await postOnPage(owner, opened, {
      decision: 'cancel-change',
      change: reset.changeId,
      kind: 'passkey',
      proof: JSON.stringify(phone.get({ ...options, challenge: Buffer.from('not this change').toString('base64url') })),
    });
    assert.match(wrong.body, /role="alert" data-code="passkey_invalid"/, wrong.body.slice(0, 400));
    assert.equal(await changeState(reset.changeId), 'pending');

    // The page is opened again (the change's counter moved the challenge): the passkey cancels it.
    const again = await openOnPage(owner, `?change=${reset.changeId}`);
    const done = await postOnPage(owner, again, {
      decision: 'cancel-change',
      change: reset.changeId,
      kind: 'passkey',
      proof: JSON.stringify(phone.get(passkeyOptionsOf(again.body))),
    });
    assert.equal(done.statusCode, 200, done.body);
    assert.match(done.body, /role="alert">Cancelled\./);
    assert.doesNotMatch(done.body, /id="open-changes"/, 'nothing open any more');
    assert.match(done.body, /Change of protection cancelled/);
    assert.equal(await changeState(reset.changeId), 'cancelled');
    const audit = await lastAudit('change.cancel', walletName);
    assert.equal(audit.decision, 'allowed');
    assert.equal(audit.detail.via, 'owner-page');
    assert.equal(audit.detail.changeId, reset.changeId);
    // The delay passes: nothing is removed.
    signer.clock.now += 49 * HOUR;
    assert.equal(await signer.kernel.applyDueChanges(), 0);
    const wallet = await signer.kernel.openOwnerPage(owner);
    assert.deepEqual(wallet.factors, ['passkey']);
  });

  it('a TOTP-only wallet’s change, its factor throttle-locked: cancelled on the owner page with a code (a wrong one counted on the change); reached from the change page’s "not me"', async () => {
    const walletName = 'totp-locked';
    await totpWallet(walletName);
    const change = await pendingChangeOf(walletName);

    // B: the change page links to the owner page (the link is a capability).
    const changePage = await signer.app.inject({ method: 'GET', url: `/changes/${change.capability}` });
    assert.equal(changePage.statusCode, 200, changePage.body);
    const m = /<p class="aside" id="not-me">Not you\? <a href="\.\.\/owner\/([A-Za-z0-9_-]{43})">/.exec(changePage.body);
    assert.ok(m?.[1], 'the change page has the not-me link');
    const owner = m[1];
    recordTestSecret('ownerCapability', owner);

    // The backend locks the factor with wrong codes (each lock waited out, so the next one doubles).
    for (let i = 0; i < 12; i += 1) {
      if (i > 0) signer.clock.now += HOUR;
      await expectCode(signer.kernel.signHash(app, { walletName, keyIndex: 0, hash: HASH, code: '000000' }), 'code_invalid');
    }
    await expectCode(signer.kernel.signHash(app, { walletName, keyIndex: 0, hash: HASH, code: nextCode(walletName) }), 'factor_throttled');

    const opened = await openOnPage(owner);
    assert.match(opened.body, new RegExp(`data-change-id="${change.id}" data-state="pending"`));
    assert.match(opened.body, /data-admin-approval="waiting"/, 'a TOTP-only wallet’s change waits for the admins too');
    const wrong = await postOnPage(owner, opened, { decision: 'cancel-change', change: change.id, kind: 'totp', code: '000000' });
    assert.equal(wrong.statusCode, 403, wrong.body);
    assert.match(wrong.body, /data-code="code_invalid"/);
    const denied = await lastAudit('change.cancel', walletName);
    assert.deepEqual([denied.decision, denied.reason, denied.detail.via, denied.detail.cancelFailures], ['denied', 'code_invalid', 'owner-page', 1]);

    const done = await postOnPage(owner, opened, { decision: 'cancel-change', change: change.id, kind: 'totp', code: nextCode(walletName) });
    assert.equal(done.statusCode, 200, done.body);
    assert.equal(await changeState(change.id), 'cancelled');
    // The factor's lock is untouched by the cancel.
    await expectCode(signer.kernel.signHash(app, { walletName, keyIndex: 0, hash: HASH, code: nextCode(walletName) }), 'factor_throttled');
  });

  it('a change of another wallet is not found from this owner page (not cancelled); the API key alone cancels nothing; a recovery code cancels', async () => {
    const { owner, recoveryCodes } = await passkeyWallet('pk-other');
    await totpWallet('totp-victim');
    const victim = await pendingChangeOf('totp-victim');

    // Another wallet's change id, through this wallet's owner page: not found, the change untouched.
    await expectCode(signer.kernel.cancelChangeFromOwnerPage(owner, victim.id, { kind: 'recovery', proof: recoveryCodes[0] }), 'change_not_found');
    const opened = await openOnPage(owner);
    const refused = await postOnPage(owner, opened, { decision: 'cancel-change', change: victim.id, kind: 'recovery', code: recoveryCodes[0] as string });
    assert.equal(refused.statusCode, 404, refused.body);
    assert.match(refused.body, /data-code="change_not_found"/);
    assert.equal(await changeState(victim.id), 'pending');
    // A malformed id names the field.
    await expectCode(signer.kernel.cancelChangeFromOwnerPage(owner, 'x', {}), 'invalid_input');
    // A forged owner capability: no page.
    await expectCode(signer.kernel.cancelChangeFromOwnerPage('A'.repeat(43), victim.id, {}), 'owner_page_not_found');

    // The API key alone: its cancel is refused (audited), and the owner page's form without the page's token is refused.
    const api = await signer.app.inject({
      method: 'POST',
      url: '/v1/changes/cancel',
      headers: { authorization: `Bearer ${signer.apiKey}`, 'content-type': 'application/json' },
      payload: { id: victim.id },
    });
    assert.equal(api.statusCode, 403, api.body);
    assert.equal((api.json() as { error: { code: string } }).error.code, 'owner_consent_required');
    const victimOwner = (await signer.app.inject({ method: 'GET', url: `/changes/${victim.capability}` })).body.match(/owner\/([A-Za-z0-9_-]{43})/)?.[1];
    assert.ok(victimOwner);
    recordTestSecret('ownerCapability', victimOwner);
    const noToken = await signer.app.inject({
      method: 'POST',
      url: `/owner/${victimOwner}`,
      headers: { authorization: `Bearer ${signer.apiKey}`, 'content-type': 'application/x-www-form-urlencoded', origin: ORIGIN },
      payload: new URLSearchParams({ decision: 'cancel-change', change: victim.id, kind: 'totp', code: nextCode('totp-victim') }).toString(),
    });
    assert.equal(noToken.statusCode, 403, noToken.body);
    assert.equal(await changeState(victim.id), 'pending');

    // The owner of the passkey wallet cancels its own change with a recovery code (its own throttle).
    const reset = (await passProposal('wallet.factor-reset', { walletName: 'pk-other' })).result as { changeId: string };
    const page = await openOnPage(owner);
    const done = await postOnPage(owner, page, { decision: 'cancel-change', change: reset.changeId, kind: 'recovery', code: recoveryCodes[1] as string });
    assert.equal(done.statusCode, 200, done.body);
    assert.equal(await changeState(reset.changeId), 'cancelled');
    assert.equal((await lastAudit('change.cancel', 'pk-other')).detail.via, 'owner-page');

    // A database writer who re-points a change (its payload swapped): the owner page shows it only as unreadable, and its cancel fails closed.
    await signer.sql('UPDATE pending_changes SET payload = $1 WHERE id = $2', JSON.stringify({ swapped: true }), victim.id);
    const shown = await signer.kernel.openOwnerPage(victimOwner);
    assert.deepEqual([shown.changes.length, shown.unreadableChanges], [0, 1]);
    await expectCode(signer.kernel.cancelChangeFromOwnerPage(victimOwner, victim.id, { kind: 'totp', proof: nextCode('totp-victim') }), 'record_unreadable');
    assert.equal(await changeState(victim.id), 'pending');
  });
});
