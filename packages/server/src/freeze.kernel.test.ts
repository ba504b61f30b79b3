import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type App, createApiKey } from '@custos/kernel';
import type { LightMyRequestResponse } from 'fastify';
import { assertWellFormed } from './testing/assertWellFormed.js';
import { createTestSigner, RAW_HASHES_ALLOWED, recordTestSecret, type TestSigner } from './testing/createTestSigner.js';
import { ETHER_MAIL } from './testing/etherMail.js';
import { type CreationOptionsJSON, type RequestOptionsJSON, SoftAuthenticator } from './testing/softAuthenticator.js';
import { expectCode } from './testing/expectCode.js';
import { startTestDelivery, type TestDelivery } from './testing/startTestDelivery.js';
import { totpFromUri } from './testing/totpFromUri.js';

// "This was not me" (issue 13 point 3, docs/freeze.md): the owner's link on every delivered message
// (read from a real SMTP server) and approval page, its page (GET shows, only a POST with the page's
// form token freezes), and a frozen wallet refused on every route that signs or approves, with the
// exact code, audited; the freeze under the wallet row's MAC; the quorum's unfreeze hook.

const T0 = Date.UTC(2026, 11, 7, 9, 0, 15);
const PUBLIC_URL = 'http://localhost:8420';
const ORIGIN = 'http://localhost:8420';
const HASH = `0x${'ab'.repeat(32)}`;
const TO = '0x3535353535353535353535353535353535353535';
const TX = {
  type: 'eip1559',
  chainId: 8453,
  nonce: 0,
  to: TO,
  value: '1000',
  data: '0x',
  gas: '21000',
  maxFeePerGas: '2000000000',
  maxPriorityFeePerGas: '1000000',
};
const OWNER_LINK = /http:\/\/localhost:8420\/owner\/([A-Za-z0-9_-]{43})/;

function formCookieOf(res: LightMyRequestResponse): string {
  const header = String(res.headers['set-cookie'] ?? '');
  const m = /^custos_form=([A-Za-z0-9_-]{43}); Path=\/owner\/; HttpOnly; SameSite=Strict$/.exec(header);
  assert.ok(m?.[1], `Set-Cookie: ${header}`);
  return m[1];
}

function csrfOf(body: string): string {
  const m = /name="csrf" value="([0-9a-f]{64})"/.exec(body);
  assert.ok(m?.[1], 'the page has a form token');
  return m[1];
}

function assertError(res: LightMyRequestResponse, status: number, code: string): Record<string, unknown> {
  assert.equal(res.statusCode, status, res.body);
  const body = res.json() as { error: { code: string; details: Record<string, unknown> } };
  assert.equal(body.error.code, code, res.body);
  assertWellFormed(res, `${status} ${code}`, { allowed5xx: code === 'record_unreadable' ? ['record_unreadable'] : [] });
  return body.error.details;
}

/** The owner page's link on an approval page (relative: `../owner/<capability>`). */
async function ownerCapabilityFromApprovalPage(signer: TestSigner, approvalCapability: string): Promise<string> {
  const page = await signer.app.inject({ method: 'GET', url: `/approve/${approvalCapability}` });
  assert.equal(page.statusCode, 200, page.body);
  const m = /<p class="aside" id="not-me">Not you\? <a href="\.\.\/owner\/([A-Za-z0-9_-]{43})">/.exec(page.body);
  assert.ok(m?.[1], 'the approval page links to the owner page');
  recordTestSecret('ownerCapability', m[1]);
  return m[1];
}

/** Presses "this was not me" as the owner's browser does: GET the page (cookie, token), POST its form. */
async function freezeOnPage(signer: TestSigner, ownerCapability: string): Promise<LightMyRequestResponse> {
  const page = await signer.app.inject({ method: 'GET', url: `/owner/${ownerCapability}` });
  assert.equal(page.statusCode, 200, page.body);
  const cookie = formCookieOf(page);
  return signer.app.inject({
    method: 'POST',
    url: `/owner/${ownerCapability}`,
    headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: `custos_form=${cookie}`, origin: ORIGIN, 'sec-fetch-site': 'same-origin' },
    payload: new URLSearchParams({ csrf: csrfOf(page.body), decision: 'freeze' }).toString(),
  });
}

async function frozenAt(signer: TestSigner, walletName: string): Promise<number | null> {
  const [row] = await signer.sql('SELECT frozen_at FROM wallets WHERE name = $1', walletName);
  return row?.frozen_at === null || row?.frozen_at === undefined ? null : Number(row.frozen_at);
}

describe('"this was not me": the link, its page, the freeze', () => {
  let signer: TestSigner;
  let app: App;
  let delivery: TestDelivery;

  before(async () => {
    signer = await createTestSigner({
      policyDefaults: RAW_HASHES_ALLOWED,
      startMs: T0,
      appOptions: { publicUrl: PUBLIC_URL },
      kernelOptions: { oob: { limits: { perHour: 40, maxFailures: 12 } } },
    });
    app = await signer.kernel.authenticateApiKey(signer.apiKey);
    delivery = await startTestDelivery(signer, { publicUrl: PUBLIC_URL });
  });
  after(async () => {
    await delivery.close();
    await signer.close();
  });

  it('every delivered message (text and HTML) and the approval page carry the owner link; GET shows without freezing; a POST without the form token is refused; the POST freezes, audited, idempotent', async () => {
    const walletName = 'alice';
    // The address check of the enrolment already carries the link.
    const enrollment = await signer.kernel.createEnrollment(app, { walletName, kind: 'oob' });
    recordTestSecret('enrollmentCapability', enrollment.capability);
    await signer.kernel.setEnrollmentAddress(enrollment.capability, { channel: 'email', address: 'alice@example.com' });
    const verify = await delivery.deliver();
    const fromVerify = OWNER_LINK.exec(verify.text)?.[1];
    assert.ok(fromVerify !== undefined, `the address check links to the owner page: ${verify.text}`);
    assert.match(verify.text, /Not you\? See your wallet's recent activity, or freeze it: http:\/\/localhost:8420\/owner\//);
    assert.ok(verify.html.includes(`<a href="${PUBLIC_URL}/owner/${fromVerify}">`), 'and its HTML');
    assert.equal((await signer.kernel.completeEnrollment(enrollment.capability, { proof: verify.code })).state, 'completed');

    // An approval's message carries the same link (one capability per wallet), and so does its page.
    const created = await signer.kernel.createApproval(app, { walletName, keyIndex: 0, operation: { transaction: TX } });
    recordTestSecret('approvalCapability', created.capability);
    const message = await delivery.deliver();
    assert.equal(OWNER_LINK.exec(message.text)?.[1], fromVerify);
    assert.ok(message.html.includes(`${PUBLIC_URL}/owner/${fromVerify}`));
    const owner = await ownerCapabilityFromApprovalPage(signer, created.capability);
    assert.equal(owner, fromVerify);

    // GET shows the page (and the activity) and freezes nothing, however often (a mail scanner).
    for (let i = 0; i < 3; i++) {
      const page = await signer.app.inject({ method: 'GET', url: `/owner/${owner}` });
      assert.equal(page.statusCode, 200);
      assert.match(page.body, /data-frozen="false"/);
      assert.match(page.body, /id="freeze-form"/);
      assert.match(page.body, /Approval requested/);
    }
    assert.equal(await frozenAt(signer, walletName), null);

    // A POST without the form token (or with another page's, or from another origin) changes nothing.
    const page = await signer.app.inject({ method: 'GET', url: `/owner/${owner}` });
    const cookie = formCookieOf(page);
    const form = (fields: Record<string, string>, headers: Record<string, string> = {}) =>
      signer.app.inject({
        method: 'POST',
        url: `/owner/${owner}`,
        headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: `custos_form=${cookie}`, origin: ORIGIN, ...headers },
        payload: new URLSearchParams(fields).toString(),
      });
    assert.equal((await form({ decision: 'freeze' })).statusCode, 403);
    assert.equal((await form({ decision: 'freeze', csrf: '00'.repeat(32) })).statusCode, 403);
    assert.equal((await form({ decision: 'freeze', csrf: csrfOf(page.body) }, { origin: 'https://evil.example' })).statusCode, 403);
    assert.equal((await form({ decision: 'freeze', csrf: csrfOf(page.body) }, { 'sec-fetch-site': 'cross-site' })).statusCode, 403);
    assert.equal(await frozenAt(signer, walletName), null);
    // An unknown capability is not found (and audits nothing).
    const unknown = await signer.app.inject({ method: 'GET', url: `/owner/${'A'.repeat(43)}` });
    assert.equal(unknown.statusCode, 404);

    // The POST freezes: no factor needed; audited.
    signer.clock.now += 1000;
    const frozen = await form({ decision: 'freeze', csrf: csrfOf(page.body) });
    assert.equal(frozen.statusCode, 200, frozen.body);
    assert.match(frozen.body, /data-frozen="true"/);
    assert.doesNotMatch(frozen.body, /id="freeze-form"/);
    const at = await frozenAt(signer, walletName);
    assert.equal(at, signer.clock.now);
    // Idempotent: a second POST keeps the first freeze's time; both audited.
    signer.clock.now += 1000;
    const again = await form({ decision: 'freeze', csrf: csrfOf(page.body) });
    assert.equal(again.statusCode, 200, again.body);
    assert.match(again.body, /data-frozen="true"/);
    assert.equal(await frozenAt(signer, walletName), at);
    const records = await signer.sql(
      "SELECT decision, detail, app_id FROM audit_log WHERE action = 'wallet.freeze' AND wallet_name = $1 ORDER BY seq",
      walletName,
    );
    assert.deepEqual(
      records.map((r) => [r.decision, JSON.parse(String(r.detail)).alreadyFrozen, r.app_id]),
      [
        ['allowed', false, null],
        ['allowed', true, null],
      ],
    );
    // Every admin is told once (the quorum's notifier reads these).
    const { notices } = await signer.kernel.listFreezeNotices(0);
    assert.deepEqual(
      notices.filter((n) => n.walletName === walletName).map((n) => n.action),
      ['wallet.freeze'],
    );

    // The delivered code, typed on the approval page, approves nothing while frozen (refused before the code is checked).
    const approve = await expectCode(
      signer.kernel.decideApproval(created.capability, { decision: 'approve', kind: 'oob', proof: message.code }),
      'wallet_frozen',
    );
    assert.equal(approve.frozenAt, at);
    // Rejecting it only takes power away: allowed.
    assert.equal((await signer.kernel.decideApproval(created.capability, { decision: 'reject' })).state, 'rejected');
  });

  it('recovery codes: 10 shown once when the first factor is enrolled on the page, stored only as tags; single use (replay refused); wrong codes throttled on their own counter', async () => {
    const walletName = 'dave';
    const enrollment = await signer.kernel.createEnrollment(app, { walletName, kind: 'oob' });
    recordTestSecret('enrollmentCapability', enrollment.capability);
    await signer.kernel.setEnrollmentAddress(enrollment.capability, { channel: 'email', address: 'dave@example.com' });
    const verify = await delivery.deliver();
    const done = await signer.kernel.completeEnrollment(enrollment.capability, { proof: verify.code });
    const codes = done.recoveryCodes ?? assert.fail('the first factor brings recovery codes');
    for (const code of codes) recordTestSecret('recoveryCode', code);
    assert.equal(codes.length, 10);
    assert.equal(new Set(codes).size, 10);
    for (const code of codes) assert.match(code, /^[0-9a-hjkmnp-tv-z]{5}-[0-9a-hjkmnp-tv-z]{5}$/);
    // Not in the clear anywhere in the row; the audit record counts them, never shows them.
    const [row] = await signer.sql('SELECT codes FROM recovery_codes WHERE wallet_name = $1', walletName);
    for (const code of codes) assert.ok(!String(row?.codes).includes(code.replace('-', '')));
    const [enrolled] = await signer.sql("SELECT detail FROM audit_log WHERE action = 'oob.enroll' AND wallet_name = $1 AND decision = 'allowed'", walletName);
    assert.equal(JSON.parse(String(enrolled?.detail)).recoveryCodes, 10);

    // One code works once, typed loosely (case, spaces); its replay is refused.
    const first = codes[0] as string;
    const used = await signer.kernel.useRecoveryCode({ walletName, code: ` ${first.toUpperCase().replace('-', ' ')} `, purpose: 'test' });
    assert.equal(used.remaining, 9);
    await expectCode(signer.kernel.useRecoveryCode({ walletName, code: first, purpose: 'test' }), 'recovery_code_invalid');
    // Brute force: 5 wrong codes per 15 minutes (the replay above was the first), then even a right one is refused, with Retry-After.
    for (let i = 0; i < 4; i++)
      await expectCode(signer.kernel.useRecoveryCode({ walletName, code: `zzzzz-zzzz${i}`, purpose: 'test' }), 'recovery_code_invalid');
    const throttled = await expectCode(signer.kernel.useRecoveryCode({ walletName, code: codes[1], purpose: 'test' }), 'recovery_code_throttled');
    assert.ok(Number(throttled.retryAfterSeconds) > 0 && Number(throttled.retryAfterSeconds) <= 900);
    // The next window takes codes again.
    signer.clock.now += 15 * 60_000;
    assert.equal((await signer.kernel.useRecoveryCode({ walletName, code: codes[1], purpose: 'test' })).remaining, 8);
    // A row changed in the database (a used code marked unused) fails its MAC.
    await signer.sql('UPDATE recovery_codes SET codes = replace(codes, $1, $2) WHERE wallet_name = $3', '"usedAt":', '"usedAt":null,"x":', walletName);
    await expectCode(signer.kernel.useRecoveryCode({ walletName, code: first, purpose: 'test' }), 'record_unreadable');
    // Every use audited, with its refusal.
    const records = await signer.sql("SELECT reason FROM audit_log WHERE action = 'recovery_code.use' AND wallet_name = $1 ORDER BY seq", walletName);
    assert.deepEqual(
      records.map((r) => r.reason),
      [
        null,
        'recovery_code_invalid',
        'recovery_code_invalid',
        'recovery_code_invalid',
        'recovery_code_invalid',
        'recovery_code_invalid',
        'recovery_code_throttled',
        null,
        'record_unreadable',
      ],
    );
  });

  it('the owner unfreezes on the page with a bound factor (a delivered code bound to this freeze); a wrong code, a code of an earlier freeze and a present-only factor are refused', async () => {
    const walletName = 'erin';
    const enrollment = await signer.kernel.createEnrollment(app, { walletName, kind: 'oob' });
    recordTestSecret('enrollmentCapability', enrollment.capability);
    await signer.kernel.setEnrollmentAddress(enrollment.capability, { channel: 'email', address: 'erin@example.com' });
    const verify = await delivery.deliver();
    await signer.kernel.completeEnrollment(enrollment.capability, { proof: verify.code });
    const owner = OWNER_LINK.exec(verify.text)?.[1] ?? assert.fail('link');
    recordTestSecret('ownerCapability', owner);
    assert.equal((await freezeOnPage(signer, owner)).statusCode, 200);

    // The frozen page offers the unfreeze step; its forms carry the page's token.
    const page = await signer.app.inject({ method: 'GET', url: `/owner/${owner}` });
    assert.match(page.body, /id="unfreeze-code-form"/);
    const cookie = formCookieOf(page);
    const csrf = csrfOf(page.body);
    const form = (fields: Record<string, string>) =>
      signer.app.inject({
        method: 'POST',
        url: `/owner/${owner}`,
        headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: `custos_form=${cookie}`, origin: ORIGIN },
        payload: new URLSearchParams({ csrf, ...fields }).toString(),
      });
    // Without the token: refused, nothing sent.
    const forged = await signer.app.inject({
      method: 'POST',
      url: `/owner/${owner}`,
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: ORIGIN },
      payload: 'decision=unfreeze&code=12345678',
    });
    assert.equal(forged.statusCode, 403);

    assert.equal((await form({ decision: 'unfreeze-code' })).statusCode, 200);
    const message = await delivery.deliver();
    assert.equal(message.subject, 'Unfreeze your wallet');
    assert.equal(OWNER_LINK.exec(message.text)?.[1], owner, 'the unfreeze message carries the link too');
    const wrong = message.code === '00000000' ? '00000001' : '00000000';
    const refused = await form({ decision: 'unfreeze', code: wrong });
    assert.equal(refused.statusCode, 403, refused.body);
    assert.match(refused.body, /data-code="code_invalid"/);
    assert.notEqual(await frozenAt(signer, walletName), null);

    // A code sent for an earlier freeze does not unfreeze a later one.
    await signer.kernel.unfreezeWallet({ walletName }, { kind: 'quorum', proposalId: 'p-erin' });
    signer.clock.now += 1000;
    assert.equal((await freezeOnPage(signer, owner)).statusCode, 200);
    const stale = await form({ decision: 'unfreeze', code: message.code });
    assert.match(stale.body, /data-code="challenge_required"/);
    assert.notEqual(await frozenAt(signer, walletName), null);

    // This freeze's code, typed on the page: unfrozen, audited with the factor's evidence.
    assert.equal((await form({ decision: 'unfreeze-code' })).statusCode, 200);
    const fresh = await delivery.deliver();
    const done = await form({ decision: 'unfreeze', code: fresh.code });
    assert.equal(done.statusCode, 200, done.body);
    assert.match(done.body, /data-frozen="false"/);
    assert.equal(await frozenAt(signer, walletName), null);
    const [record] = await signer.sql(
      "SELECT detail FROM audit_log WHERE action = 'wallet.unfreeze' AND wallet_name = $1 AND decision = 'allowed' ORDER BY seq DESC LIMIT 1",
      walletName,
    );
    const detail = JSON.parse(String(record?.detail)) as { by: string; evidence: { factor: string } };
    assert.deepEqual([detail.by, detail.evidence.factor], ['owner', 'oob']);
    // Its replay does nothing more (the wallet is not frozen: refused, audited).
    await expectCode(signer.kernel.unfreezeWalletByOwner(owner, { kind: 'oob', proof: fresh.code }), 'invalid_input');

    // A wallet whose factor is only `present` (TOTP enrolled through the API): its code never unfreezes.
    const enrolled = await signer.app.inject({ method: 'POST', url: '/v1/totp/enroll', headers: signer.auth(), payload: { walletName: 'frank' } });
    const uri = (enrolled.json() as { otpauthUri: string }).otpauthUri;
    const created = await signer.kernel.createApproval(app, { walletName: 'frank', keyIndex: 0, operation: { hash: HASH } });
    recordTestSecret('approvalCapability', created.capability);
    const frank = await ownerCapabilityFromApprovalPage(signer, created.capability);
    assert.equal((await freezeOnPage(signer, frank)).statusCode, 200);
    await expectCode(signer.kernel.unfreezeWalletByOwner(frank, { kind: 'totp', proof: totpFromUri(uri, signer.clock.now) }), 'consent_too_weak');
    const [factor] = await signer.sql('SELECT failures, last_accepted_step FROM totp_factors WHERE wallet_name = $1', 'frank');
    assert.equal(Number(factor?.failures), 0, 'the code was not even checked');
    assert.notEqual(await frozenAt(signer, 'frank'), null);
    const frankPage = await signer.app.inject({ method: 'GET', url: `/owner/${frank}` });
    assert.match(frankPage.body, /ask the operators of this signer/);
  });

  it('attack: clearing frozen_at in the database does not unfreeze (the row fails its MAC); the quorum hook unfreezes, audited', async () => {
    const walletName = 'carol';
    const enrolled = await signer.app.inject({ method: 'POST', url: '/v1/totp/enroll', headers: signer.auth(), payload: { walletName } });
    const uri = (enrolled.json() as { otpauthUri: string }).otpauthUri;
    const created = await signer.kernel.createApproval(app, { walletName, keyIndex: 0, operation: { hash: HASH } });
    recordTestSecret('approvalCapability', created.capability);
    const owner = await ownerCapabilityFromApprovalPage(signer, created.capability);
    assert.equal((await freezeOnPage(signer, owner)).statusCode, 200);
    const at = await frozenAt(signer, walletName);
    assert.notEqual(at, null);

    await signer.sql('UPDATE wallets SET frozen_at = NULL WHERE name = $1', walletName);
    signer.clock.now += 30_000;
    const sign = () =>
      signer.app.inject({
        method: 'POST',
        url: '/v1/sign/hash',
        headers: signer.auth(),
        payload: { walletName, keyIndex: 0, hash: HASH, code: totpFromUri(uri, signer.clock.now) },
      });
    assertError(await sign(), 503, 'record_unreadable');
    await signer.sql('UPDATE wallets SET frozen_at = $1 WHERE name = $2', at, walletName);
    assertError(await sign(), 423, 'wallet_frozen');

    // The admin quorum's applied proposal (issue 13 point 4) calls the hook.
    const done = await signer.kernel.unfreezeWallet({ walletName }, { kind: 'quorum', proposalId: 'p-1', approvals: ['admin-a', 'admin-b'] });
    assert.deepEqual([done.walletName, done.wasFrozen], [walletName, true]);
    assert.equal(await frozenAt(signer, walletName), null);
    const [record] = await signer.sql('SELECT action, decision, detail FROM audit_log WHERE seq = $1', done.auditSeq);
    assert.equal(record?.action, 'wallet.unfreeze');
    assert.deepEqual(JSON.parse(String(record?.detail)), {
      by: 'quorum',
      proposalId: 'p-1',
      approvals: ['admin-a', 'admin-b'],
      wasFrozen: true,
      adminsTold: 0, // no admin set here: the audit record is the notice
    });
    const ok = await sign();
    assert.equal(ok.statusCode, 200, ok.body);
    const page = await signer.app.inject({ method: 'GET', url: `/owner/${owner}` });
    assert.match(page.body, /data-frozen="false"/);
    assert.match(page.body, /Wallet unfrozen/);
    assert.match(page.body, /Signed a raw hash/);
    const { notices } = await signer.kernel.listFreezeNotices(0);
    assert.deepEqual(
      notices.filter((n) => n.walletName === walletName).map((n) => n.action),
      ['wallet.freeze', 'wallet.unfreeze'],
    );
  });
});

describe('a frozen wallet is refused on every route that signs or approves (wallet_frozen, 423), audited', () => {
  let signer: TestSigner;
  let app: App;
  const walletName = 'frozen-wallet';
  let uri: string;

  before(async () => {
    signer = await createTestSigner({ policyDefaults: RAW_HASHES_ALLOWED, startMs: T0, appOptions: { publicUrl: PUBLIC_URL, rpcWaitSeconds: 0 } });
    app = await signer.kernel.authenticateApiKey(signer.apiKey);
  });
  after(async () => {
    await signer.close();
  });

  const code = () => totpFromUri(uri, signer.clock.now);
  const post = (url: string, payload: Record<string, unknown>) => signer.app.inject({ method: 'POST', url, headers: signer.auth(), payload });

  it('native hash, transaction, message, typed data, authorization; compatibility sign; JSON-RPC; approval create, decide, challenge, use; batch item', async () => {
    const enrolled = await post('/v1/totp/enroll', { walletName });
    uri = (enrolled.json() as { otpauthUri: string }).otpauthUri;
    const rpc = await post('/v1/rpc/accounts', { walletName, keyIndex: 0 });
    const { address } = rpc.json() as { address: string };
    // Before the freeze: an approval approved (not yet used), a batch approved, one pending.
    const approved = await signer.kernel.createApproval(app, { walletName, keyIndex: 0, operation: { hash: HASH } });
    const batchItem = { keyIndex: 0, transaction: TX };
    const batch = await signer.kernel.createApproval(app, { walletName, operation: { batch: [batchItem, { keyIndex: 0, transaction: { ...TX, nonce: 1 } }] } });
    const pending = await signer.kernel.createApproval(app, { walletName, keyIndex: 0, operation: { message: { text: 'pending' } } });
    for (const c of [approved, batch, pending]) recordTestSecret('approvalCapability', c.capability);
    signer.clock.now += 30_000;
    assert.equal((await signer.kernel.decideApproval(approved.capability, { decision: 'approve', kind: 'totp', proof: code() })).state, 'approved');
    signer.clock.now += 30_000;
    assert.equal((await signer.kernel.decideApproval(batch.capability, { decision: 'approve', kind: 'totp', proof: code() })).state, 'approved');
    signer.clock.now += 30_000;

    const owner = await ownerCapabilityFromApprovalPage(signer, pending.capability);
    assert.equal((await freezeOnPage(signer, owner)).statusCode, 200);
    const [{ n: before } = { n: 0 }] = await signer.sql("SELECT COUNT(*) AS n FROM audit_log WHERE reason = 'wallet_frozen'");

    // Native routes, with a valid code: refused before the code is read.
    const routes: Array<[string, Record<string, unknown>]> = [
      ['/v1/sign/hash', { hash: HASH }],
      ['/v1/sign/transaction', { transaction: TX }],
      ['/v1/sign/message', { message: { text: 'hello' } }],
      ['/v1/sign/typed-data', { typedData: ETHER_MAIL }],
      ['/v1/sign/authorization', { authorization: { chainId: 1, address: TO, nonce: 0 } }],
    ];
    for (const [url, body] of routes) assertError(await post(url, { walletName, keyIndex: 0, ...body, code: code() }), 423, 'wallet_frozen');
    // The code was not consumed nor charged: no factor state moved.
    const [factor] = await signer.sql('SELECT failures FROM totp_factors WHERE wallet_name = $1', walletName);
    assert.equal(Number(factor?.failures), 0);

    // The compatibility API's sign.
    const session = await signer.app.inject({ method: 'POST', url: '/sys/v1/session/auth', headers: { authorization: `Basic ${signer.apiKey}` } });
    const bearer = (session.json() as { access_token: string }).access_token;
    const compat = await signer.app.inject({
      method: 'POST',
      url: `/sys/v1/plugins/${signer.signerId}`,
      headers: { authorization: `Bearer ${bearer}` },
      payload: { operation: 'sign', walletName, keyIndex: '0', msgHash: HASH.slice(2), code: code() },
    });
    assert.equal(compat.statusCode, 423, compat.body);
    assert.equal((compat.json() as { error: { code: string } }).error.code, 'wallet_frozen');

    // The JSON-RPC signer, every signing method: EIP-1193 4100 with the Custos code.
    const rpcTx = {
      from: address,
      to: TO,
      value: '0x3e8',
      data: '0x',
      chainId: '0x2105',
      nonce: '0x0',
      gas: '0x5208',
      maxFeePerGas: '0x77359400',
      maxPriorityFeePerGas: '0xf4240',
    };
    const calls: Array<[string, unknown[]]> = [
      ['personal_sign', ['0x68656c6c6f', address]],
      ['eth_sign', [address, '0x68656c6c6f']],
      ['eth_signTypedData_v4', [address, JSON.stringify(ETHER_MAIL)]],
      ['eth_signTransaction', [rpcTx]],
      ['eth_sendTransaction', [rpcTx]],
    ];
    for (const [method, params] of calls) {
      const answer = await signer.app.inject({
        method: 'POST',
        url: '/v1/rpc',
        headers: { ...signer.auth(), 'content-type': 'application/json' },
        payload: JSON.stringify({ jsonrpc: '2.0', id: 1, method, params }),
      });
      const rpcError = (answer.json() as { error?: { code: number; data?: { code: string } } }).error;
      assert.deepEqual([rpcError?.code, rpcError?.data?.code], [4100, 'wallet_frozen'], `${method}: ${answer.body}`);
    }

    // Approvals: no new one; the pending one cannot be approved, nor its challenge issued; the approved ones cannot be used.
    assertError(await post('/v1/approvals', { walletName, keyIndex: 0, operation: { hash: HASH } }), 423, 'wallet_frozen');
    await expectCode(signer.kernel.decideApproval(pending.capability, { decision: 'approve', kind: 'totp', proof: code() }), 'wallet_frozen');
    // …and on its page, the refusal is shown with the page (not a generic error).
    const approvalPage = await signer.app.inject({ method: 'GET', url: `/approve/${pending.capability}` });
    const approvalCookie = /custos_form=([A-Za-z0-9_-]{43})/.exec(String(approvalPage.headers['set-cookie']))?.[1] ?? assert.fail('cookie');
    const onPage = await signer.app.inject({
      method: 'POST',
      url: `/approve/${pending.capability}`,
      headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: `custos_form=${approvalCookie}`, origin: ORIGIN },
      payload: new URLSearchParams({ csrf: csrfOf(approvalPage.body), decision: 'approve', code: code() }).toString(),
    });
    assert.equal(onPage.statusCode, 423, onPage.body);
    assert.match(onPage.body, /data-code="wallet_frozen"/);
    assertError(await post(`/v1/approvals/${pending.id}/hwkey-challenge`, {}), 423, 'wallet_frozen');
    const [challenge] = await signer.sql(
      "SELECT decision, reason, detail FROM audit_log WHERE action = 'approval.challenge' AND wallet_name = $1 ORDER BY seq DESC LIMIT 1",
      walletName,
    );
    assert.deepEqual([challenge?.decision, challenge?.reason], ['denied', 'wallet_frozen'], 'the refused challenge is audited');
    assert.equal(JSON.parse(String(challenge?.detail)).approvalId, pending.id);
    assertError(await post('/v1/sign/hash', { walletName, keyIndex: 0, hash: HASH, approvalId: approved.id }), 423, 'wallet_frozen');
    assertError(await post('/v1/sign/transaction', { walletName, ...batchItem, approvalId: batch.id }), 423, 'wallet_frozen');

    // Each refusal is audited with the code.
    const [{ n: afterCount } = { n: 0 }] = await signer.sql("SELECT COUNT(*) AS n FROM audit_log WHERE reason = 'wallet_frozen'");
    assert.ok(Number(afterCount) - Number(before) >= routes.length + 6, `${afterCount} - ${before}`);
    // Nothing was signed after the freeze.
    const [freeze] = await signer.sql("SELECT seq FROM audit_log WHERE action = 'wallet.freeze'");
    const signed = await signer.sql("SELECT action FROM audit_log WHERE seq > $1 AND action LIKE 'sign.%' AND decision = 'allowed'", freeze?.seq);
    assert.deepEqual(signed, []);
  });
});

describe('an operator freezes a wallet alone (POST /v1/wallets/freeze, scope admin)', () => {
  let signer: TestSigner;

  before(async () => {
    signer = await createTestSigner({ policyDefaults: RAW_HASHES_ALLOWED, startMs: T0, appOptions: { publicUrl: PUBLIC_URL } });
  });
  after(async () => {
    await signer.close();
  });

  it('the sign key cannot (forbidden_scope, audited); the admin key freezes any tenant’s wallet at once, idempotent, audited; an unknown wallet is wallet_not_found', async () => {
    const walletName = 'incident';
    const enrolled = await signer.app.inject({ method: 'POST', url: '/v1/totp/enroll', headers: signer.auth(), payload: { walletName } });
    const uri = (enrolled.json() as { otpauthUri: string }).otpauthUri;
    const { token: admin } = await createApiKey(signer.store, { name: 'ops', scopes: ['admin'], tenant: 'system' });
    recordTestSecret('apiKey', admin);
    const freeze = (key: string, name = walletName) =>
      signer.app.inject({ method: 'POST', url: '/v1/wallets/freeze', headers: signer.auth(key), payload: { walletName: name } });

    assertError(await freeze(signer.apiKey), 403, 'forbidden_scope');
    assert.equal(await frozenAt(signer, walletName), null);
    assertError(await freeze(admin, 'nobody'), 404, 'wallet_not_found');

    const first = await freeze(admin);
    assert.equal(first.statusCode, 200, first.body);
    assert.deepEqual(first.json(), { walletName, frozenAt: signer.clock.now });
    signer.clock.now += 1000;
    assert.deepEqual((await freeze(admin)).json(), { walletName, frozenAt: T0 }, 'idempotent: the first time kept');
    signer.clock.now += 30_000;
    assertError(
      await signer.app.inject({
        method: 'POST',
        url: '/v1/sign/hash',
        headers: signer.auth(),
        payload: { walletName, keyIndex: 0, hash: HASH, code: totpFromUri(uri, signer.clock.now) },
      }),
      423,
      'wallet_frozen',
    );
    const records = await signer.sql("SELECT decision, reason, detail FROM audit_log WHERE action = 'wallet.freeze' ORDER BY seq");
    assert.deepEqual(
      records.map((r) => [r.decision, r.reason, JSON.parse(String(r.detail)).alreadyFrozen ?? null]),
      [
        ['denied', 'forbidden_scope', null],
        ['denied', 'wallet_not_found', null],
        ['allowed', null, false],
        ['allowed', null, true],
      ],
    );
  });
});

describe('the owner unfreezes with the wallet’s passkey (its answer to this freeze’s challenge)', () => {
  let signer: TestSigner;
  let app: App;
  const phone = new SoftAuthenticator(ORIGIN);

  before(async () => {
    signer = await createTestSigner({
      policyDefaults: RAW_HASHES_ALLOWED,
      startMs: T0,
      appOptions: { publicUrl: PUBLIC_URL },
      kernelOptions: { passkeys: { rpId: 'localhost', origin: ORIGIN, rpName: 'Custos' } },
    });
    app = await signer.kernel.authenticateApiKey(signer.apiKey);
  });
  after(async () => {
    await signer.close();
  });

  it('an answer to an earlier freeze’s challenge is refused; this freeze’s unfreezes, audited; the challenge route checks the page’s token', async () => {
    const walletName = 'passkey-owner';
    const created = await signer.kernel.createEnrollment(app, { walletName, kind: 'passkey' });
    recordTestSecret('enrollmentCapability', created.capability);
    const page = await signer.kernel.openEnrollmentPage(created.capability);
    const done = await signer.kernel.completeEnrollment(created.capability, {
      proof: phone.create((page.shown as { optionsJSON: CreationOptionsJSON }).optionsJSON),
    });
    assert.equal(done.recoveryCodes?.length, 10);
    for (const code of done.recoveryCodes ?? []) recordTestSecret('recoveryCode', code);
    const approval = await signer.kernel.createApproval(app, { walletName, keyIndex: 0, operation: { hash: HASH } });
    recordTestSecret('approvalCapability', approval.capability);
    const owner = await ownerCapabilityFromApprovalPage(signer, approval.capability);

    // Not frozen: nothing to answer.
    await expectCode(signer.kernel.unfreezeChallengeOptions(owner, { kind: 'passkey' }), 'invalid_input');
    assert.equal((await freezeOnPage(signer, owner)).statusCode, 200);
    const frozenPage = await signer.app.inject({ method: 'GET', url: `/owner/${owner}` });
    assert.match(frozenPage.body, /id="passkey-step"/);
    assert.match(frozenPage.body, /<script nonce="[^"]+" src="[^"]+" defer><\/script>/, 'the passkey scripts, under the nonce');

    // The challenge route: without this browser's token, refused (JSON), nothing issued.
    const forged = await signer.app.inject({
      method: 'POST',
      url: `/owner/${owner}/challenge`,
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: ORIGIN },
      payload: 'kind=passkey&csrf=00',
    });
    assert.equal(forged.statusCode, 403);
    assert.equal((forged.json() as { error: { code: string } }).error.code, 'forbidden_origin');
    const cookie = formCookieOf(frozenPage);
    const viaPage = await signer.app.inject({
      method: 'POST',
      url: `/owner/${owner}/challenge`,
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: ORIGIN, cookie: `custos_form=${cookie}` },
      payload: new URLSearchParams({ kind: 'passkey', csrf: csrfOf(frozenPage.body) }).toString(),
    });
    assert.equal(viaPage.statusCode, 200, viaPage.body);
    const earlier = phone.get((viaPage.json() as { options: RequestOptionsJSON }).options);

    // A later freeze: the earlier answer does not unfreeze it.
    await signer.kernel.unfreezeWallet({ walletName }, { kind: 'quorum', proposalId: 'p-pk' });
    signer.clock.now += 1000;
    assert.equal((await freezeOnPage(signer, owner)).statusCode, 200);
    await expectCode(signer.kernel.unfreezeWalletByOwner(owner, { kind: 'passkey', proof: earlier }), 'passkey_invalid');
    assert.notEqual(await frozenAt(signer, walletName), null);

    // This freeze's challenge, answered by the wallet's passkey: unfrozen.
    const { options } = await signer.kernel.unfreezeChallengeOptions(owner, { kind: 'passkey' });
    const after = await signer.kernel.unfreezeWalletByOwner(owner, { kind: 'passkey', proof: phone.get(options as RequestOptionsJSON) });
    assert.equal(after.frozenAt, null);
    const [record] = await signer.sql(
      "SELECT detail FROM audit_log WHERE action = 'wallet.unfreeze' AND wallet_name = $1 AND decision = 'allowed' ORDER BY seq DESC LIMIT 1",
      walletName,
    );
    const detail = JSON.parse(String(record?.detail)) as { by: string; evidence: { factor: string } };
    assert.deepEqual([detail.by, detail.evidence.factor], ['owner', 'passkey']);
  });
});
