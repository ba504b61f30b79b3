import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import type { LightMyRequestResponse } from 'fastify';
import { RAW_HASHES_ALLOWED, createTestSigner, recordTestSecret, type TestSigner } from '../testing/createTestSigner.js';
import { type CreationOptionsJSON, type RequestOptionsJSON, SoftAuthenticator } from '../testing/softAuthenticator.js';
import { highS, type StandInCard, standInCard } from '../testing/standInCard.js';

// Issue 12, points 1 and 5, over HTTP without a browser (the page forms posted as a browser would):
// a card enrolled on the kernel's enrolment page (it proves possession by signing the page's
// challenge), its answer on the approval page → `bound` → a signature with the approvalId; the same
// card's answer relayed by the backend where `bound` is required → consent_too_weak, unchecked; a
// card the app enrolled is shown as such and gives `present`, on the page too.

const T0 = Date.UTC(2026, 11, 7, 10, 0, 0);
const PUBLIC_URL = 'http://localhost:8422';
const HASH = `0x${'ef'.repeat(32)}`;
const SUBPATH = '0/3';

function cookieOf(res: LightMyRequestResponse, path: '/approve/' | '/enroll/' | '/owner/' | '/changes/'): string {
  const header = String(res.headers['set-cookie'] ?? '');
  const m = new RegExp(`^custos_form=([A-Za-z0-9_-]{43}); Path=${path}; HttpOnly; SameSite=Strict$`).exec(header);
  assert.ok(m?.[1], `Set-Cookie: ${header}`);
  return m[1];
}

/**
 * The device cookie the enrolment's response set (`name=value`), its attributes checked: over http
 * never Secure, one cookie per page that reads it; over https one `__Host-` cookie with Path=/ (a
 * sibling host of the same parent domain can neither plant nor overwrite it).
 */
function deviceOf(res: LightMyRequestResponse, secure = false): string {
  const raw = res.headers['set-cookie'];
  const headers = Array.isArray(raw) ? raw.map(String) : [String(raw ?? '')];
  const devices = headers.filter((h) => h.includes('custos_hwkey_'));
  if (secure) {
    assert.equal(devices.length, 1, `one device cookie under https: ${devices.join(' | ')}`);
    const m = /^__Host-(custos_hwkey_[0-9a-f]{16}=[A-Za-z0-9_-]{43}); Path=\/; Max-Age=34560000; HttpOnly; SameSite=Strict; Secure$/.exec(devices[0] ?? '');
    assert.ok(m, `Set-Cookie: ${devices.join(' | ')}`);
    return `__Host-${m[1]}`;
  }
  // The same value for the approval pages, the owner page (a card unfreezes only from this browser) and the change pages.
  assert.equal(devices.length, 3, `three device cookies over http: ${devices.join(' | ')}`);
  const [approve, owner, changes] = (['/approve/', '/owner/', '/changes/'] as const).map((path) => {
    const re = new RegExp(`^(custos_hwkey_[0-9a-f]{16}=[A-Za-z0-9_-]{43}); Path=${path}; Max-Age=34560000; HttpOnly; SameSite=Strict$`);
    return devices.map((h) => re.exec(h)?.[1]).find((v) => v !== undefined);
  });
  assert.ok(approve, `Set-Cookie: ${devices.join(' | ')}`);
  assert.equal(owner, approve, 'the same device cookie for the owner page');
  assert.equal(changes, approve, 'the same device cookie for the change pages');
  return approve;
}

function csrfOf(body: string): string {
  const m = /name="csrf" value="([0-9a-f]{64})"/.exec(body);
  assert.ok(m?.[1], 'the page has a form token');
  return m[1];
}

function digestOf(body: string): string {
  const m = /<p id="hwkey-digest" class="mono">([0-9a-f]{64})<\/p>/.exec(body);
  assert.ok(m?.[1], 'the page shows the challenge');
  return m[1];
}

function refusalCodeOf(body: string): string | undefined {
  return /<p class="state bad" data-code="([a-z_]+)" role="alert">/.exec(body)?.[1];
}

describe('hardware keys on the kernel’s pages (forms over HTTP)', () => {
  let signer: TestSigner;
  let card: StandInCard;
  let otherCard: StandInCard;

  before(async () => {
    signer = await createTestSigner({ policyDefaults: RAW_HASHES_ALLOWED, startMs: T0, appOptions: { publicUrl: PUBLIC_URL } });
    card = standInCard(randomBytes(32));
    otherCard = standInCard(randomBytes(32));
  });
  after(async () => {
    await signer.close();
  });

  /** A form post as the browser sends it: its form cookie, and the card's device cookie when this browser has one. */
  const form = (url: string, fields: Record<string, string>, cookie: string, device?: string) =>
    signer.app.inject({
      method: 'POST',
      url,
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        origin: PUBLIC_URL,
        'sec-fetch-site': 'same-origin',
        cookie: `custos_form=${cookie}${device === undefined ? '' : `; ${device}`}`,
      },
      payload: new URLSearchParams(fields).toString(),
    });
  const api = (url: string, payload?: Record<string, unknown>) =>
    signer.app.inject({ method: 'POST', url, headers: signer.auth(), ...(payload === undefined ? {} : { payload }) });

  /** Enrols `card` at SUBPATH on the enrolment page of a new link for `walletName`; returns the device cookie its response set. */
  async function enrolOnPage(walletName: string, which: StandInCard = card): Promise<string> {
    const link = await api('/v1/enrollments', { walletName, kind: 'hwkey' });
    assert.equal(link.statusCode, 201, link.body);
    assert.equal(link.json().kind, 'hwkey');
    const path = new URL(link.json().enrollUrl as string).pathname;
    recordTestSecret('enrolment path', path);
    const page = await signer.app.inject({ method: 'GET', url: path });
    assert.equal(page.statusCode, 200, page.body);
    const done = await form(
      path,
      { csrf: csrfOf(page.body), xpub: which.xpub, subpath: SUBPATH, signature: which.sign(digestOf(page.body), SUBPATH) },
      cookieOf(page, '/enroll/'),
    );
    assert.equal(done.statusCode, 200, done.body);
    assert.match(done.body, /<h1>Hardware key active<\/h1>/);
    assert.match(done.body, /<p id="hwkey-browser">Approve with the card <strong>in this browser<\/strong>/);
    const device = deviceOf(done);
    recordTestSecret('device cookie', device.slice(device.indexOf('=') + 1));
    return device;
  }

  async function createApproval(walletName: string) {
    const res = await api('/v1/approvals', { walletName, keyIndex: 0, operation: { hash: HASH } });
    assert.equal(res.statusCode, 201, res.body);
    const created = res.json() as { id: string; opHash: string; requiredStrength: string; approveUrl: string };
    recordTestSecret('approveUrl', created.approveUrl);
    return { ...created, path: new URL(created.approveUrl).pathname };
  }

  /** Opens the approval page, asks for a challenge with its form, and returns the page with the digest. */
  async function pageChallenge(path: string, device?: string) {
    const page = await signer.app.inject({ method: 'GET', url: path });
    assert.equal(page.statusCode, 200, page.body);
    const cookie = cookieOf(page, '/approve/');
    const shown = await form(path, { csrf: csrfOf(page.body), decision: 'hwkey-challenge' }, cookie, device);
    assert.equal(shown.statusCode, 200, shown.body);
    return { page, shown, cookie, csrf: csrfOf(shown.body), digest: digestOf(shown.body) };
  }

  it('enrolment page: the challenge shown, a wrong card’s signature refused and counted (the challenge changes), missing fields not counted, the right card active, enrolled via page', async () => {
    const link = await api('/v1/enrollments', { walletName: 'page-card', kind: 'hwkey' });
    const path = new URL(link.json().enrollUrl as string).pathname;
    const page = await signer.app.inject({ method: 'GET', url: path });
    assert.match(page.body, /Use a card that holds no funds/);
    assert.ok(!page.body.includes('<script'), 'the page runs nothing');
    const cookie = cookieOf(page, '/enroll/');
    const csrf = csrfOf(page.body);
    const first = digestOf(page.body);
    // another card's signature over the challenge: refused, counted on the link
    const wrong = await form(path, { csrf, xpub: card.xpub, subpath: SUBPATH, signature: otherCard.sign(first, SUBPATH) }, cookie);
    assert.equal(wrong.statusCode, 403);
    assert.equal(refusalCodeOf(wrong.body), 'hwkey_invalid');
    const [link1] = await signer.sql('SELECT failures FROM enrollment_links WHERE wallet_name = $1', 'page-card');
    assert.equal(Number(link1?.failures), 1);
    const second = digestOf(wrong.body);
    assert.notEqual(second, first, 'the challenge changes with the count');
    // the old challenge's answer by the right card no longer works (it was for the count before)
    const stale = await form(path, { csrf, xpub: card.xpub, subpath: SUBPATH, signature: card.sign(first, SUBPATH) }, cookie);
    assert.equal(refusalCodeOf(stale.body), 'hwkey_invalid');
    const third = digestOf(stale.body);
    // no signature, or a private key pasted: not counted
    const missing = await form(path, { csrf, xpub: card.xpub, subpath: SUBPATH, signature: '' }, cookie);
    assert.equal(refusalCodeOf(missing.body), 'code_required');
    const xprv = await form(path, { csrf, xpub: card.xprv, subpath: SUBPATH, signature: card.sign(third, SUBPATH) }, cookie);
    assert.equal(xprv.statusCode, 400);
    assert.equal(refusalCodeOf(xprv.body), 'invalid_input');
    assert.ok(!xprv.body.includes(card.xprv), 'the private key is not shown back');
    assert.equal(digestOf(xprv.body), third, 'not counted');
    const done = await form(path, { csrf, xpub: card.xpub, subpath: `m/${SUBPATH}`, signature: card.sign(third, SUBPATH) }, cookie);
    assert.equal(done.statusCode, 200, done.body);
    assert.match(done.body, /<h1>Hardware key active<\/h1>/);
    const [row] = await signer.sql('SELECT id, subpath, enrolled_via FROM hwkey_factors WHERE wallet_name = $1', 'page-card');
    assert.deepEqual(row, { id: card.publicKey(SUBPATH), subpath: SUBPATH, enrolled_via: 'page' });
    const [audit] = await signer.sql("SELECT detail FROM audit_log WHERE action = 'hwkey.enroll' AND wallet_name = $1 AND decision = 'allowed'", 'page-card');
    assert.equal((JSON.parse(String(audit?.detail)) as { publicKey?: string }).publicKey, card.publicKey(SUBPATH));
  });

  it('full flow: a page-enrolled card answers on the approval page → approved, bound → the signature with approvalId; the CSP allows no script', async () => {
    const device = await enrolOnPage('page-flow');
    const created = await createApproval('page-flow');
    assert.equal(created.requiredStrength, 'bound', 'a page-enrolled card makes the wallet require bound');
    const { page, shown, cookie, csrf, digest } = await pageChallenge(created.path, device);
    assert.match(page.body, /<li data-kind="hwkey" data-strength="bound">/);
    assert.ok(!page.body.includes('<script') && !shown.body.includes('<script'));
    assert.match(String(page.headers['content-security-policy']), /script-src 'none'|default-src 'none'/);
    assert.ok(!String(page.headers['content-security-policy']).includes("script-src 'nonce"), 'no script may run');
    assert.match(shown.body, new RegExp(`<span id="hwkey-subpath" class="mono">${SUBPATH}</span>`));
    const decided = await form(created.path, { csrf, decision: 'approve', kind: 'hwkey', signature: card.sign(digest, SUBPATH) }, cookie, device);
    assert.equal(decided.statusCode, 200, decided.body);
    assert.match(decided.body, /<h1>Approved<\/h1>/);
    // the device token is in no page, no audit record and no row (it is derived, never stored)
    const token = device.slice(device.indexOf('=') + 1);
    for (const body of [page.body, shown.body, decided.body]) assert.ok(!body.includes(token));
    const dumps = await Promise.all(['audit_log', 'hwkey_factors', 'approvals', 'enrollment_links'].map((t) => signer.sql(`SELECT * FROM ${t}`)));
    assert.ok(!JSON.stringify(dumps).includes(token), 'the token is stored nowhere');
    const [row] = await signer.sql('SELECT state, evidence FROM approvals WHERE id = $1', created.id);
    assert.equal(row?.state, 'approved');
    assert.equal((JSON.parse(String(row?.evidence)) as { strength: string }).strength, 'bound');
    const signed = await api('/v1/sign/hash', { walletName: 'page-flow', keyIndex: 0, hash: HASH, approvalId: created.id });
    assert.equal(signed.statusCode, 200, signed.body);
    const [audit] = await signer.sql("SELECT detail FROM audit_log WHERE action = 'sign.hash' AND wallet_name = $1 AND decision = 'allowed'", 'page-flow');
    assert.ok(audit, 'the signature is audited');
  });

  it('attacks on the page: another approval’s digest, a replay of the page’s answer, a high s — each with its code; the relayed answer where bound is required is consent_too_weak, the signature unchecked', async () => {
    const device = await enrolOnPage('page-attack');
    const a = await createApproval('page-attack');
    const b = await createApproval('page-attack');
    const pa = await pageChallenge(a.path, device);
    const pb = await pageChallenge(b.path, device);
    const onB = await form(a.path, { csrf: pa.csrf, decision: 'approve', kind: 'hwkey', signature: card.sign(pb.digest, SUBPATH) }, pa.cookie, device);
    assert.equal(onB.statusCode, 403);
    assert.equal(refusalCodeOf(onB.body), 'hwkey_invalid');
    // the right answer for a's digest after a refused one: spent
    const replay = await form(a.path, { csrf: pa.csrf, decision: 'approve', kind: 'hwkey', signature: card.sign(pa.digest, SUBPATH) }, pa.cookie, device);
    assert.equal(replay.statusCode, 409);
    assert.equal(refusalCodeOf(replay.body), 'challenge_required');
    // a high s of the right card's valid answer
    const c = await createApproval('page-attack');
    const pc = await pageChallenge(c.path, device);
    const high = await form(c.path, { csrf: pc.csrf, decision: 'approve', kind: 'hwkey', signature: highS(card.sign(pc.digest, SUBPATH)) }, pc.cookie, device);
    assert.equal(high.statusCode, 403);
    assert.equal(refusalCodeOf(high.body), 'hwkey_signature_high_s');
    // the relayed route, where bound is required: no challenge is issued to it, and an answer (even
    // the card's over the page's digest) is refused before the signature is checked
    const challenged = await api(`/v1/approvals/${b.id}/hwkey-challenge`);
    assert.equal(challenged.statusCode, 403, challenged.body);
    assert.equal(challenged.json().error.code, 'consent_too_weak');
    const relayed = await api(`/v1/approvals/${b.id}/hwkey`, { signature: card.sign(pb.digest, SUBPATH) });
    assert.equal(relayed.statusCode, 403, relayed.body);
    assert.equal(relayed.json().error.code, 'consent_too_weak');
    assert.deepEqual(relayed.json().error.details, { required: 'bound', given: 'present' });
    const unchecked = await api(`/v1/approvals/${b.id}/hwkey`, { signature: randomBytes(64).toString('hex') });
    assert.equal(unchecked.json().error.code, 'consent_too_weak');
    const [bRow] = await signer.sql('SELECT state FROM approvals WHERE id = $1', b.id);
    assert.equal(bRow?.state, 'pending');
    // and the card still approves b on the page with a fresh challenge
    const again = await pageChallenge(b.path, device);
    const ok = await form(b.path, { csrf: again.csrf, decision: 'approve', kind: 'hwkey', signature: card.sign(again.digest, SUBPATH) }, again.cookie, device);
    assert.match(ok.body, /<h1>Approved<\/h1>/);
  });

  it('the backend holding approveUrl cannot make a bound approval from a card tap it obtained: no challenge for it (API or page without the device cookie), the owner’s nonce kept, its page answer consent_too_weak, nothing signed; the owner’s browser still approves', async () => {
    const device = await enrolOnPage('bypass');
    const created = await createApproval('bypass');
    assert.equal(created.requiredStrength, 'bound');
    // the API's challenge: refused up front, not counted
    const apiChallenge = await api(`/v1/approvals/${created.id}/hwkey-challenge`);
    assert.equal(apiChallenge.statusCode, 403, apiChallenge.body);
    assert.equal(apiChallenge.json().error.code, 'consent_too_weak');
    assert.deepEqual(apiChallenge.json().error.details, { required: 'bound', given: 'present' });
    // the page, scraped with the capability but without the owner's device cookie: refused too, no digest shown
    const scraped = await signer.app.inject({ method: 'GET', url: created.path });
    const backendCookie = cookieOf(scraped, '/approve/');
    const asked = await form(created.path, { csrf: csrfOf(scraped.body), decision: 'hwkey-challenge' }, backendCookie);
    assert.equal(asked.statusCode, 403, asked.body);
    assert.equal(refusalCodeOf(asked.body), 'consent_too_weak');
    assert.match(asked.body, /approves only in the browser it was added in/);
    assert.ok(!/id="hwkey-digest"/.test(asked.body), 'no digest for the backend');
    const [counted] = await signer.sql('SELECT issued FROM hwkey_factors WHERE wallet_name = $1', 'bypass');
    assert.equal(Number(counted?.issued), 0, 'refused challenges are not counted');
    // the owner's browser asks for one; the API's and the scraper's requests leave its nonce as it is
    const owner = await pageChallenge(created.path, device);
    const [before] = await signer.sql('SELECT challenge FROM approvals WHERE id = $1', created.id);
    assert.equal((JSON.parse(String(before?.challenge)) as { via: string }).via, 'page');
    assert.equal((await api(`/v1/approvals/${created.id}/hwkey-challenge`)).json().error.code, 'consent_too_weak');
    assert.equal(
      refusalCodeOf((await form(created.path, { csrf: csrfOf(scraped.body), decision: 'hwkey-challenge' }, backendCookie)).body),
      'consent_too_weak',
    );
    const [after] = await signer.sql('SELECT challenge FROM approvals WHERE id = $1', created.id);
    assert.equal(after?.challenge, before?.challenge, 'the page’s nonce is unchanged');
    // worst case, the backend learns the owner's digest and gets the card to sign it: posted on the
    // page without the device cookie, it is a relayed answer → refused, unchecked and not spent
    const tapped = card.sign(owner.digest, SUBPATH);
    const posted = await form(created.path, { csrf: csrfOf(scraped.body), decision: 'approve', kind: 'hwkey', signature: tapped }, backendCookie);
    assert.equal(posted.statusCode, 403, posted.body);
    assert.equal(refusalCodeOf(posted.body), 'consent_too_weak');
    const [pending] = await signer.sql('SELECT state, challenge FROM approvals WHERE id = $1', created.id);
    assert.deepEqual(pending, { state: 'pending', challenge: before?.challenge });
    const [refusedAudit] = await signer.sql(
      "SELECT detail FROM audit_log WHERE action = 'approval.approve' AND wallet_name = $1 AND decision = 'denied' ORDER BY seq DESC LIMIT 1",
      'bypass',
    );
    assert.deepEqual((({ channel, device }) => ({ channel, device }))(JSON.parse(String(refusedAudit?.detail)) as { channel: string; device: boolean }), {
      channel: 'relay',
      device: false,
    });
    const notSigned = await api('/v1/sign/hash', { walletName: 'bypass', keyIndex: 0, hash: HASH, approvalId: created.id });
    assert.equal(notSigned.statusCode, 409, notSigned.body);
    assert.equal(notSigned.json().error.code, 'approval_pending');
    // the owner, in the browser the card was enrolled in: bound, and it signs
    const ok = await form(
      created.path,
      { csrf: owner.csrf, decision: 'approve', kind: 'hwkey', signature: card.sign(owner.digest, SUBPATH) },
      owner.cookie,
      device,
    );
    assert.match(ok.body, /<h1>Approved<\/h1>/);
    const [row] = await signer.sql('SELECT evidence FROM approvals WHERE id = $1', created.id);
    assert.equal((JSON.parse(String(row?.evidence)) as { strength: string }).strength, 'bound');
    const signed = await api('/v1/sign/hash', { walletName: 'bypass', keyIndex: 0, hash: HASH, approvalId: created.id });
    assert.equal(signed.statusCode, 200, signed.body);
  });

  it('another wallet’s device cookie is no device cookie: its challenge and its answer are refused consent_too_weak (the value decides, not the name)', async () => {
    const deviceX = await enrolOnPage('device-x');
    const deviceY = await enrolOnPage('device-y', otherCard);
    const created = await createApproval('device-y');
    const page = await signer.app.inject({ method: 'GET', url: created.path });
    const cookie = cookieOf(page, '/approve/');
    const withX = await form(created.path, { csrf: csrfOf(page.body), decision: 'hwkey-challenge' }, cookie, deviceX);
    assert.equal(refusalCodeOf(withX.body), 'consent_too_weak');
    // X's token under Y's cookie name
    const xValueAsY = `${deviceY.slice(0, deviceY.indexOf('='))}=${deviceX.slice(deviceX.indexOf('=') + 1)}`;
    const renamed = await form(created.path, { csrf: csrfOf(page.body), decision: 'hwkey-challenge' }, cookie, xValueAsY);
    assert.equal(refusalCodeOf(renamed.body), 'consent_too_weak');
    // a challenge issued to Y's browser, answered by Y's card but posted with X's cookie (or none)
    const issued = await pageChallenge(created.path, deviceY);
    const signature = otherCard.sign(issued.digest, SUBPATH);
    for (const device of [deviceX, xValueAsY, undefined]) {
      const posted = await form(created.path, { csrf: issued.csrf, decision: 'approve', kind: 'hwkey', signature }, issued.cookie, device);
      assert.equal(posted.statusCode, 403, posted.body);
      assert.equal(refusalCodeOf(posted.body), 'consent_too_weak');
    }
    // both cookies, as a browser that enrolled both wallets' cards sends them: Y's counts — also
    // behind 16 device-looking cookies of other names (planted from a sibling domain, sent first):
    // only the cookie named for the approval's wallet is read (review: they crowded it out)
    const planted = Array.from({ length: 16 }, (_, i) => `custos_hwkey_${i.toString(16).padStart(16, '0')}=${'A'.repeat(43)}`).join('; ');
    const ok = await form(
      created.path,
      { csrf: issued.csrf, decision: 'approve', kind: 'hwkey', signature },
      issued.cookie,
      `${planted}; ${deviceX}; ${deviceY}`,
    );
    assert.match(ok.body, /<h1>Approved<\/h1>/);
  });

  it('a card the app enrolled is marked on every approval page and gives present, on the page too', async () => {
    const enrolled = await api('/v1/factors', { walletName: 'app-card', kind: 'hwkey', xpub: card.xpub, subpath: SUBPATH });
    assert.equal(enrolled.statusCode, 200, enrolled.body);
    const created = await createApproval('app-card');
    assert.equal(created.requiredStrength, 'present');
    const { page, cookie, csrf, digest } = await pageChallenge(created.path);
    assert.match(page.body, /<li data-kind="hwkey" data-strength="present">Hardware key .*enrolled by the app — its signature counts only as “present”/);
    const decided = await form(created.path, { csrf, decision: 'approve', kind: 'hwkey', signature: card.sign(digest, SUBPATH) }, cookie);
    assert.match(decided.body, /<h1>Approved<\/h1>/);
    const [row] = await signer.sql('SELECT evidence FROM approvals WHERE id = $1', created.id);
    assert.equal((JSON.parse(String(row?.evidence)) as { strength: string }).strength, 'present');
  });

  it('the owner page: a page-enrolled card unfreezes from its browser (device cookie); without it, or with an API-enrolled card: consent_too_weak; another card’s signature: hwkey_invalid', async () => {
    const device = await enrolOnPage('card-owner');
    /** The owner page of `walletName` (linked from an approval page), frozen by its own form; returns its form cookie and token. */
    const frozenOwnerPage = async (walletName: string) => {
      const approval = await createApproval(walletName);
      const approvalPage = await signer.app.inject({ method: 'GET', url: approval.path });
      const capability = /id="not-me">Not you\? <a href="\.\.\/owner\/([A-Za-z0-9_-]{43})">/.exec(approvalPage.body)?.[1] as string;
      assert.ok(capability, 'the approval page links to the owner page');
      recordTestSecret('ownerCapability', capability);
      const path = `/owner/${capability}`;
      const page = await signer.app.inject({ method: 'GET', url: path });
      const cookie = cookieOf(page, '/owner/');
      const frozen = await form(path, { csrf: csrfOf(page.body), decision: 'freeze' }, cookie);
      assert.equal(frozen.statusCode, 200, frozen.body);
      assert.match(frozen.body, /data-frozen="true"/);
      return { path, cookie, csrf: csrfOf(page.body), body: frozen.body };
    };
    const owner = await frozenOwnerPage('card-owner');
    const digest = /<p id="hwkey-unfreeze-digest" class="mono">([0-9a-f]{64})<\/p>/.exec(owner.body)?.[1] as string;
    assert.ok(digest, 'the frozen page shows the card’s unfreeze challenge');
    assert.match(owner.body, /id="hwkey-unfreeze-form"/);
    const codeOf = (body: string) => /data-code="([a-z_]+)"/.exec(body)?.[1];
    const unfreeze = (signature: string, withDevice?: string) =>
      form(owner.path, { csrf: owner.csrf, decision: 'unfreeze', kind: 'hwkey', signature }, owner.cookie, withDevice);
    // The right card, from a browser without its device cookie: too weak, unchecked; still frozen.
    const cookieless = await unfreeze(card.sign(digest, SUBPATH));
    assert.equal(cookieless.statusCode, 403, cookieless.body);
    assert.equal(codeOf(cookieless.body), 'consent_too_weak');
    // Another card's signature, with the device cookie: hwkey_invalid.
    const wrong = await unfreeze(otherCard.sign(digest, SUBPATH), device);
    assert.equal(wrong.statusCode, 403, wrong.body);
    assert.equal(codeOf(wrong.body), 'hwkey_invalid');
    const denied = await signer.sql(
      "SELECT reason FROM audit_log WHERE wallet_name = $1 AND action = 'wallet.unfreeze' AND decision = 'denied' ORDER BY seq",
      'card-owner',
    );
    assert.deepEqual(
      denied.map((r) => r.reason),
      ['consent_too_weak', 'hwkey_invalid'],
    );
    const done = await unfreeze(card.sign(digest, SUBPATH), device);
    assert.equal(done.statusCode, 200, done.body);
    assert.match(done.body, /data-frozen="false"/);
    const [record] = await signer.sql(
      "SELECT detail FROM audit_log WHERE wallet_name = $1 AND action = 'wallet.unfreeze' AND decision = 'allowed'",
      'card-owner',
    );
    const detail = (typeof record?.detail === 'string' ? JSON.parse(record.detail) : record?.detail) as { by: string; evidence: { factor: string } };
    assert.deepEqual([detail.by, detail.evidence.factor], ['owner', 'hwkey']);
    // Replayed once frozen again: a new freeze has a new challenge, so the old signature unfreezes nothing.
    signer.clock.now += 1000;
    const again = await form(owner.path, { csrf: owner.csrf, decision: 'freeze' }, owner.cookie);
    assert.match(again.body, /data-frozen="true"/);
    assert.notEqual(/<p id="hwkey-unfreeze-digest" class="mono">([0-9a-f]{64})<\/p>/.exec(again.body)?.[1], digest);
    const replay = await unfreeze(card.sign(digest, SUBPATH), device);
    assert.equal(codeOf(replay.body), 'hwkey_invalid');
    assert.match(replay.body, /data-frozen="true"/);

    // A card the backend enrolled (API): the page offers no card step, and its answer is too weak.
    const api2 = await api('/v1/factors', { walletName: 'card-api', kind: 'hwkey', xpub: otherCard.xpub, subpath: SUBPATH });
    assert.equal(api2.statusCode, 200, api2.body);
    const apiOwner = await frozenOwnerPage('card-api');
    assert.doesNotMatch(apiOwner.body, /hwkey-unfreeze-digest/);
    const apiTry = await form(
      apiOwner.path,
      { csrf: apiOwner.csrf, decision: 'unfreeze', kind: 'hwkey', signature: otherCard.sign('00'.repeat(32), SUBPATH) },
      apiOwner.cookie,
      device,
    );
    assert.equal(apiTry.statusCode, 403, apiTry.body);
    assert.equal(codeOf(apiTry.body), 'consent_too_weak');
  });

  it('the change page: a page-enrolled card confirms a change only from its browser (device cookie) — without it factor_required, another card hwkey_invalid — and cancels it', async () => {
    const device = await enrolOnPage('card-change');
    const created = await api('/v1/changes', { walletName: 'card-change', kind: '2fa.disable' });
    assert.equal(created.statusCode, 201, created.body);
    assert.equal(created.json().requiredStrength, 'bound');
    const path = new URL(created.json().changeUrl as string).pathname;
    recordTestSecret('changePath', path);
    const page = await signer.app.inject({ method: 'GET', url: path });
    assert.equal(page.statusCode, 200, page.body);
    const cookie = cookieOf(page, '/changes/');
    const csrf = csrfOf(page.body);
    const digestOn = (body: string) => /<p id="hwkey-change-digest" class="mono">([0-9a-f]{64})<\/p>/.exec(body)?.[1] as string;
    const digest = digestOn(page.body);
    assert.ok(digest, 'the change page shows what the card signs');
    assert.match(page.body, /id="hwkey-change-form"/);
    const post = (decision: string, signature: string, withDevice?: string) => form(path, { csrf, decision, kind: 'hwkey', signature }, cookie, withDevice);
    const stateOf = async () => (await signer.app.inject({ method: 'GET', url: `/v1/changes?id=${created.json().id}`, headers: signer.auth() })).json().state;
    // The right card, posted without the browser's device cookie (a tap the backend obtained in its own app): relayed, too weak.
    const cookieless = await post('confirm', card.sign(digest, SUBPATH));
    assert.equal(cookieless.statusCode, 403, cookieless.body);
    assert.equal(refusalCodeOf(cookieless.body), 'factor_required');
    // Another wallet's device cookie is none of this card's.
    const foreign = await post('confirm', card.sign(digest, SUBPATH), `${device.slice(0, device.indexOf('='))}=${randomBytes(32).toString('base64url')}`);
    assert.equal(refusalCodeOf(foreign.body), 'factor_required');
    // Another card's signature, with the device cookie: hwkey_invalid.
    const wrong = await post('confirm', otherCard.sign(digest, SUBPATH), device);
    assert.equal(wrong.statusCode, 403, wrong.body);
    assert.equal(refusalCodeOf(wrong.body), 'hwkey_invalid');
    assert.equal(await stateOf(), 'requested');
    const confirmed = await post('confirm', card.sign(digest, SUBPATH), device);
    assert.equal(confirmed.statusCode, 200, confirmed.body);
    assert.equal(await stateOf(), 'pending');
    const [record] = await signer.sql(
      "SELECT detail FROM audit_log WHERE wallet_name = $1 AND action = 'change.confirm' AND decision = 'allowed'",
      'card-change',
    );
    const detail = (typeof record?.detail === 'string' ? JSON.parse(record.detail) : record?.detail) as { consent: { factor: string; enrolledVia: string } };
    assert.deepEqual([detail.consent.factor, detail.consent.enrolledVia], ['hwkey', 'page']);
    // Pending: the page offers the card's cancel, over its own digest (the confirm's signature cancels nothing).
    const pending = await signer.app.inject({ method: 'GET', url: path, headers: { cookie: `custos_form=${cookie}` } });
    const cancelDigest = digestOn(pending.body);
    assert.ok(cancelDigest && cancelDigest !== digest, 'the cancel has a digest of its own');
    const replayed = await post('cancel', card.sign(digest, SUBPATH), device);
    assert.equal(refusalCodeOf(replayed.body), 'hwkey_invalid');
    assert.equal(await stateOf(), 'pending');
    // A wrong card answer cannot be a guess (a signature): never counted nor capped, so the backend, which holds
    // this page's link, cannot use the 10 wrong answers up — after 11 wrong ones the digest is the same and the card cancels.
    for (let i = 0; i < 11; i += 1) assert.equal(refusalCodeOf((await post('cancel', otherCard.sign(cancelDigest, SUBPATH))).body), 'hwkey_invalid');
    const latest = digestOn((await signer.app.inject({ method: 'GET', url: path, headers: { cookie: `custos_form=${cookie}` } })).body);
    assert.equal(latest, cancelDigest, 'wrong card answers are not counted');
    // Any current factor cancels, from any browser: the card's signature over the page's digest, no device cookie.
    const cancelled = await post('cancel', card.sign(latest, SUBPATH));
    assert.equal(cancelled.statusCode, 200, cancelled.body);
    assert.equal(await stateOf(), 'cancelled');
  });

  it('a card on the enrolment page: a TOTP-only wallet’s link asks for a code of its app (a timelocked change); a wallet with a card gets no link (already_enrolled)', async () => {
    assert.equal((await api('/v1/totp/enroll', { walletName: 'has-totp' })).statusCode, 200);
    const link = await api('/v1/enrollments', { walletName: 'has-totp', kind: 'hwkey' });
    assert.equal(link.statusCode, 201, link.body);
    const page = await signer.app.inject({ method: 'GET', url: new URL(link.json().enrollUrl as string).pathname });
    assert.match(page.body, /name="currentCode"/);
    assert.match(page.body, /id="pending-note"/);
    await enrolOnPage('has-card');
    const again = await api('/v1/enrollments', { walletName: 'has-card', kind: 'hwkey' });
    assert.equal(again.json().error.code, 'already_enrolled');
  });
});

describe('the device cookie over https', () => {
  it('is a __Host- cookie when the public URL is https (Secure, HttpOnly, SameSite=Strict, Path=/, 400 days), and only that name is read', async () => {
    const origin = 'https://localhost:8424';
    const signer = await createTestSigner({ policyDefaults: RAW_HASHES_ALLOWED, startMs: T0, appOptions: { publicUrl: origin } });
    try {
      const card = standInCard(randomBytes(32));
      const link = await signer.app.inject({ method: 'POST', url: '/v1/enrollments', headers: signer.auth(), payload: { walletName: 'tls', kind: 'hwkey' } });
      const path = new URL(link.json().enrollUrl as string).pathname;
      recordTestSecret('enrolment path', path);
      const page = await signer.app.inject({ method: 'GET', url: path });
      const cookie = /custos_form=([A-Za-z0-9_-]{43}); Path=\/enroll\/; HttpOnly; SameSite=Strict; Secure/.exec(String(page.headers['set-cookie']))?.[1];
      assert.ok(cookie, String(page.headers['set-cookie']));
      const done = await signer.app.inject({
        method: 'POST',
        url: path,
        headers: { 'content-type': 'application/x-www-form-urlencoded', origin, 'sec-fetch-site': 'same-origin', cookie: `custos_form=${cookie}` },
        payload: new URLSearchParams({
          csrf: csrfOf(page.body),
          xpub: card.xpub,
          subpath: SUBPATH,
          signature: card.sign(digestOf(page.body), SUBPATH),
        }).toString(),
      });
      assert.equal(done.statusCode, 200, done.body);
      const device = deviceOf(done, true);
      // The approval page reads the device token under its __Host- name only: the same value under the
      // plain name (as a sibling host could set it) is no device cookie.
      const created = await signer.app.inject({
        method: 'POST',
        url: '/v1/approvals',
        headers: signer.auth(),
        payload: { walletName: 'tls', keyIndex: 0, operation: { hash: `0x${'ab'.repeat(32)}` } },
      });
      assert.equal(created.statusCode, 201, created.body);
      const approveUrl = (created.json() as { approveUrl: string }).approveUrl;
      recordTestSecret('approveUrl', approveUrl);
      const approvePath = new URL(approveUrl).pathname;
      const challenge = async (deviceCookie: string) => {
        const shown = await signer.app.inject({ method: 'GET', url: approvePath });
        const form = /custos_form=([A-Za-z0-9_-]{43}); Path=\/approve\/; HttpOnly; SameSite=Strict; Secure/.exec(String(shown.headers['set-cookie']))?.[1];
        assert.ok(form, String(shown.headers['set-cookie']));
        return signer.app.inject({
          method: 'POST',
          url: approvePath,
          headers: {
            'content-type': 'application/x-www-form-urlencoded',
            origin,
            'sec-fetch-site': 'same-origin',
            cookie: `custos_form=${form}; ${deviceCookie}`,
          },
          payload: new URLSearchParams({ csrf: csrfOf(shown.body), decision: 'hwkey-challenge' }).toString(),
        });
      };
      const plain = await challenge(device.slice('__Host-'.length));
      assert.equal(refusalCodeOf(plain.body), 'consent_too_weak', plain.body);
      const hosted = await challenge(device);
      assert.equal(hosted.statusCode, 200, hosted.body);
      assert.equal(refusalCodeOf(hosted.body), undefined, hosted.body);
      assert.ok(digestOf(hosted.body));
    } finally {
      await signer.close();
    }
  });
});

describe('a card on a wallet that has a passkey (a signer with passkeys)', () => {
  it('the card’s enrolment page asks the wallet’s passkey to consent: without it code_required (nothing added), another link’s answer charged, with it the card is added beside the passkey', async () => {
    const origin = 'http://localhost:8423';
    const signer = await createTestSigner({
      policyDefaults: RAW_HASHES_ALLOWED,
      startMs: T0,
      appOptions: { publicUrl: origin },
      kernelOptions: { passkeys: { rpId: 'localhost', origin, rpName: 'Custos' } },
    });
    const card = standInCard(randomBytes(32));
    const phone = new SoftAuthenticator(origin);
    const post = (url: string, fields: Record<string, string>, cookie: string) =>
      signer.app.inject({
        method: 'POST',
        url,
        headers: { 'content-type': 'application/x-www-form-urlencoded', origin, 'sec-fetch-site': 'same-origin', cookie: `custos_form=${cookie}` },
        payload: new URLSearchParams(fields).toString(),
      });
    const cardLink = async (walletName: string) => {
      const res = await signer.app.inject({ method: 'POST', url: '/v1/enrollments', headers: signer.auth(), payload: { walletName, kind: 'hwkey' } });
      assert.equal(res.statusCode, 201, res.body);
      const path = new URL(res.json().enrollUrl as string).pathname;
      recordTestSecret('enrolment path', path);
      return { path, capability: path.slice('/enroll/'.length) };
    };
    const consentOptions = async (capability: string) => {
      const consent = (await signer.kernel.openEnrollmentPage(capability)).consent;
      assert.equal(consent?.kind, 'passkey');
      return consent?.options as RequestOptionsJSON;
    };
    try {
      const app = await signer.kernel.authenticateApiKey(signer.apiKey);
      for (const walletName of ['has-passkey', 'other-passkey']) {
        const link = await signer.kernel.createEnrollment(app, { walletName, kind: 'passkey' });
        recordTestSecret('enrolment capability', link.capability);
        const page = await signer.kernel.openEnrollmentPage(link.capability);
        const proof = phone.create((page.shown as { optionsJSON: CreationOptionsJSON }).optionsJSON);
        assert.equal((await signer.kernel.completeEnrollment(link.capability, { proof })).state, 'completed');
      }
      const { path, capability } = await cardLink('has-passkey');
      const page = await signer.app.inject({ method: 'GET', url: path });
      assert.equal(page.statusCode, 200, page.body);
      assert.match(page.body, /<section id="passkey-step" class="passkey" data-mode="consent" data-state="loading" data-consent="/);
      assert.match(page.body, /<form method="post" id="passkey-form">/);
      assert.match(page.body, /<input type="hidden" name="consent" value="">/);
      assert.match(page.body, /<script /, 'the page loads the passkey script');
      const cookie = cookieOf(page, '/enroll/');
      const csrf = csrfOf(page.body);
      const fields = { csrf, xpub: card.xpub, subpath: SUBPATH, signature: card.sign(digestOf(page.body), SUBPATH) };

      // The card's valid answer without the passkey's consent: refused, nothing added, not charged.
      const without = await post(path, fields, cookie);
      assert.equal(refusalCodeOf(without.body), 'code_required', without.body);
      assert.equal((await signer.sql('SELECT id FROM hwkey_factors WHERE wallet_name = $1', 'has-passkey')).length, 0);

      // Another wallet's link's consent (the same phone holds that wallet's passkey): refused and charged (the challenges move on).
      const other = await cardLink('other-passkey');
      const foreign = phone.get(await consentOptions(other.capability));
      const refused = await post(path, { ...fields, consent: JSON.stringify(foreign) }, cookie);
      assert.equal(refusalCodeOf(refused.body), 'factor_required', refused.body);
      assert.equal((await signer.sql('SELECT id FROM hwkey_factors WHERE wallet_name = $1', 'has-passkey')).length, 0);
      const [charged] = await signer.sql(
        'SELECT failures FROM enrollment_links WHERE id = (SELECT id FROM enrollment_links WHERE wallet_name = $1 AND kind = $2)',
        'has-passkey',
        'hwkey',
      );
      assert.equal(Number(charged?.failures), 1);

      // The page's current challenges: the card signs the new digest, the wallet's passkey consents to this link.
      const again = await signer.app.inject({ method: 'GET', url: path });
      const consent = phone.get(await consentOptions(capability));
      const done = await post(
        path,
        { csrf: csrfOf(again.body), xpub: card.xpub, subpath: SUBPATH, signature: card.sign(digestOf(again.body), SUBPATH), consent: JSON.stringify(consent) },
        cookieOf(again, '/enroll/'),
      );
      assert.equal(done.statusCode, 200, done.body);
      // Issue 13: the wallet has a passkey, so the card is added after the timelock's delay; this browser gets its cookie now.
      assert.match(done.body, /<h1>Change requested<\/h1>/);
      assert.match(String(done.headers['set-cookie']), /custos_hwkey/);
      assert.equal((await signer.sql('SELECT id FROM hwkey_factors WHERE wallet_name = $1', 'has-passkey')).length, 0);
      signer.clock.now += signer.kernel.timelockDelayMs;
      assert.equal(await signer.kernel.applyDueChanges(), 1);
      const [row] = await signer.sql('SELECT id, enrolled_via FROM hwkey_factors WHERE wallet_name = $1', 'has-passkey');
      assert.deepEqual({ ...row }, { id: card.publicKey(SUBPATH), enrolled_via: 'page' });
      const [audit] = await signer.sql(
        "SELECT detail FROM audit_log WHERE action = 'hwkey.enroll' AND decision = 'allowed' AND wallet_name = $1",
        'has-passkey',
      );
      assert.equal((JSON.parse(String(audit?.detail)) as { consent?: { credentialId?: string } }).consent?.credentialId, consent.id);
      assert.deepEqual((await signer.kernel.getWallet(app, { walletName: 'has-passkey' })).factors.sort(), ['hwkey', 'passkey']);
    } finally {
      await signer.close();
    }
  });
});
