import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { App } from '@custos/kernel';
import type { LightMyRequestResponse } from 'fastify';
import { createTestSigner, recordTestSecret, type TestSigner } from './testing/createTestSigner.js';
import { totpFromUri } from './testing/totpFromUri.js';

// Issue 13 point 2 (review LOW): a change row that a database writer tampered with no longer takes the
// whole owner page down (record_unreadable) — and the "this was not me" freeze with it. The page is
// shown, its freeze works, the wallet's other open changes are listed and cancel, and the bad row is
// one line, "a change that cannot be read (integrity check failed)", none of its unverified fields shown.

const T0 = Date.UTC(2026, 11, 12, 8, 0, 0);
const ORIGIN = 'http://localhost:8632';
const PLANTED = `0x${'ee'.repeat(20)}`;

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

describe('the owner page with a tampered change row', () => {
  let signer: TestSigner;
  let app: App;
  let uri: string;

  before(async () => {
    signer = await createTestSigner({ startMs: T0, appOptions: { publicUrl: ORIGIN } });
    app = await signer.kernel.authenticateApiKey(signer.apiKey);
  });
  after(async () => {
    await signer.close();
  });

  function nextCode(): string {
    signer.clock.now += 30_000;
    return totpFromUri(uri, signer.clock.now);
  }

  async function pendingChange(kind: string, payload?: Record<string, unknown>): Promise<{ id: string; capability: string }> {
    const created = await signer.kernel.requestChange(app, { walletName: 'owned', kind, ...(payload === undefined ? {} : { payload }) });
    recordTestSecret('changeCapability', created.capability);
    assert.equal((await signer.kernel.confirmChange(created.capability, { kind: 'totp', proof: nextCode() })).state, 'pending');
    return { id: created.id, capability: created.capability };
  }

  async function open(owner: string): Promise<{ body: string; cookie: string }> {
    const page = await signer.app.inject({ method: 'GET', url: `/owner/${owner}` });
    assert.equal(page.statusCode, 200, page.body.slice(0, 600));
    return { body: page.body, cookie: formCookieOf(page) };
  }

  async function post(owner: string, opened: { body: string; cookie: string }, fields: Record<string, string>) {
    return signer.app.inject({
      method: 'POST',
      url: `/owner/${owner}`,
      headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: `custos_form=${opened.cookie}`, origin: ORIGIN, 'sec-fetch-site': 'same-origin' },
      payload: new URLSearchParams({ csrf: csrfOf(opened.body), ...fields }).toString(),
    });
  }

  it('shown with the bad row as one unreadable line (no field of it), the other change listed and cancellable, and the freeze working', async () => {
    ({ otpauthUri: uri } = await signer.kernel.enrollTotp(app, { walletName: 'owned' }));
    recordTestSecret('totpUri', uri);
    const kept = await pendingChange('2fa.disable');
    const tampered = await pendingChange('safeAddress.set', { address: `0x${'5a'.repeat(20)}` });
    const third = await pendingChange('safeAddress.set', { address: `0x${'6b'.repeat(20)}` });
    const owner = /owner\/([A-Za-z0-9_-]{43})/.exec((await signer.app.inject({ method: 'GET', url: `/changes/${kept.capability}` })).body)?.[1];
    assert.ok(owner, 'the change page links to the owner page');
    recordTestSecret('ownerCapability', owner);

    // A database writer swaps one change's payload (its MAC no longer holds).
    await signer.sql('UPDATE pending_changes SET payload = $1 WHERE id = $2', JSON.stringify({ address: PLANTED }), tampered.id);

    const page = await open(owner);
    assert.match(page.body, /id="freeze-form"/, 'the freeze button is there');
    assert.match(page.body, new RegExp(`<li class="change" data-change-id="${kept.id}" data-state="pending">`));
    assert.match(page.body, new RegExp(`<li class="change" data-change-id="${third.id}" data-state="pending">`));
    const unreadable = [...page.body.matchAll(/<li class="change unreadable" data-state="unreadable">([\s\S]*?)<\/li>/g)];
    assert.equal(unreadable.length, 1, 'one line for the bad row');
    assert.match(unreadable[0]?.[1] ?? '', /A change that cannot be read \(integrity check failed\)/);
    assert.ok(!page.body.includes(tampered.id), 'not even its id is shown');
    assert.ok(!page.body.includes(PLANTED.slice(2)), 'never its unverified payload');
    assert.equal(
      page.body.match(/name="decision" value="cancel-change"/g)?.length,
      4,
      'a code and a recovery form for each readable change, none for the bad one',
    );

    // The other changes still cancel from this page.
    const cancelled = await post(owner, page, { decision: 'cancel-change', change: kept.id, kind: 'totp', code: nextCode() });
    assert.equal(cancelled.statusCode, 200, cancelled.body.slice(0, 600));
    const [row] = await signer.sql('SELECT state FROM pending_changes WHERE id = $1', kept.id);
    assert.equal(row?.state, 'cancelled');

    // "This was not me": the wallet is frozen; the page after it still shows, with the unreadable line.
    const again = await open(owner);
    const frozen = await post(owner, again, { decision: 'freeze' });
    assert.equal(frozen.statusCode, 200, frozen.body.slice(0, 600));
    assert.match(frozen.body, /id="wallet-state"[^>]*data-frozen="true"/);
    assert.match(frozen.body, /class="change unreadable"/);
    assert.notEqual((await signer.kernel.openOwnerPage(owner)).frozenAt, null);
    const [audit] = await signer.sql("SELECT decision FROM audit_log WHERE action = 'wallet.freeze' AND wallet_name = 'owned' ORDER BY seq DESC LIMIT 1");
    assert.equal(audit?.decision, 'allowed');
    // The tampered row is left as it is (the apply loop never applies it).
    const [bad] = await signer.sql('SELECT state FROM pending_changes WHERE id = $1', tampered.id);
    assert.equal(bad?.state, 'pending');
  });
});
