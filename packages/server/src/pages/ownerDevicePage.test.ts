import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { LightMyRequestResponse } from 'fastify';
import { createTestSigner, RAW_HASHES_ALLOWED, recordTestSecret, type TestSigner } from '../testing/createTestSigner.js';
import { totpFromUri } from '../testing/totpFromUri.js';

// Issue 13 point 2 over HTTP (forms posted as a browser would): the owner-device cookie is set by the
// response to a step where the owner proved a factor on the kernel's pages (enrolment, approval,
// change page), HttpOnly, SameSite=Strict, for the change pages and the owner page; a backend that
// holds the change's page link and reaches the owner page uses the shared cancel counter up there,
// and the owner's browser still cancels with a right code. The cookie's value is never in a body (nor,
// recorded as a test secret, in any log the run leaves).

const T0 = Date.UTC(2026, 11, 9, 12, 0, 0);
const PUBLIC_URL = 'http://localhost:8622';
const HASH = `0x${'ab'.repeat(32)}`;

/** The owner-device cookie a response set (`name=value`), its attributes checked: one for the change pages, one for the owner page, the same value. */
function ownerDeviceOf(res: LightMyRequestResponse): string {
  const raw = res.headers['set-cookie'];
  const headers = Array.isArray(raw) ? raw.map(String) : [String(raw ?? '')];
  const [changes, owner] = (['/changes/', '/owner/'] as const).map((path) => {
    const re = new RegExp(`^(custos_owner_[0-9a-f]{16}=[A-Za-z0-9_-]{75}); Path=${path}; Max-Age=34560000; HttpOnly; SameSite=Strict$`);
    return headers.map((h) => re.exec(h)?.[1]).find((v) => v !== undefined);
  });
  assert.ok(changes, `Set-Cookie: ${headers.join(' | ')}`);
  assert.equal(owner, changes, 'the same cookie for the owner page');
  recordTestSecret('ownerDeviceToken', changes.slice(changes.indexOf('=') + 1));
  return changes;
}

function csrfOf(body: string): string {
  const m = /name="csrf" value="([0-9a-f]{64})"/.exec(body);
  assert.ok(m?.[1], 'the page has a form token');
  return m[1];
}

function refusalCodeOf(body: string): string | undefined {
  return /class="state bad"[^>]*data-code="([a-z_]+)"/.exec(body)?.[1];
}

describe('the owner-device cookie on the kernel’s pages (forms over HTTP)', () => {
  let signer: TestSigner;
  const uris = new Map<string, string>();

  before(async () => {
    signer = await createTestSigner({ policyDefaults: RAW_HASHES_ALLOWED, startMs: T0, appOptions: { publicUrl: PUBLIC_URL } });
  });
  after(async () => {
    await signer.close();
  });

  function nextCode(walletName: string): string {
    signer.clock.now += 30_000;
    return totpFromUri(uris.get(walletName) as string, signer.clock.now);
  }

  const api = (url: string, payload: Record<string, unknown>) => signer.app.inject({ method: 'POST', url, headers: signer.auth(), payload });

  /** One browser: its cookies (name → value), kept across requests as a browser keeps them (the paths are not told apart here). */
  function browser(initial: Record<string, string> = {}) {
    const jar = new Map(Object.entries(initial));
    const header = () => [...jar].map(([k, v]) => `${k}=${v}`).join('; ');
    const keep = (res: LightMyRequestResponse) => {
      const raw = res.headers['set-cookie'];
      for (const h of Array.isArray(raw) ? raw.map(String) : raw === undefined ? [] : [String(raw)]) {
        const m = /^([^=]+)=([^;]*)/.exec(h);
        if (m?.[1] !== undefined && m[2] !== undefined) jar.set(m[1], m[2]);
      }
      return res;
    };
    return {
      jar,
      async get(url: string) {
        return keep(await signer.app.inject({ method: 'GET', url, headers: { cookie: header() } }));
      },
      async post(url: string, fields: Record<string, string>) {
        return keep(
          await signer.app.inject({
            method: 'POST',
            url,
            headers: { 'content-type': 'application/x-www-form-urlencoded', origin: PUBLIC_URL, 'sec-fetch-site': 'same-origin', cookie: header() },
            payload: new URLSearchParams(fields).toString(),
          }),
        );
      },
    };
  }

  /** A TOTP wallet enrolled on its page in `owner`'s browser: the response sets the owner-device cookie. */
  async function enrolOnPage(walletName: string, owner: ReturnType<typeof browser>): Promise<string> {
    const link = await api('/v1/enrollments', { walletName, kind: 'totp' });
    assert.equal(link.statusCode, 201, link.body);
    const path = new URL(link.json().enrollUrl as string).pathname;
    recordTestSecret('enrolment path', path);
    const shown = await signer.kernel.openEnrollmentPage(path.split('/').at(-1));
    uris.set(walletName, (shown.shown as { otpauthUri: string }).otpauthUri);
    recordTestSecret('totpUri', uris.get(walletName) as string);
    const page = await owner.get(path);
    assert.equal(page.statusCode, 200);
    const done = await owner.post(path, { csrf: csrfOf(page.body), code: nextCode(walletName) });
    assert.equal(done.statusCode, 200, done.body);
    const device = ownerDeviceOf(done);
    assert.ok(!done.body.includes(device.slice(device.indexOf('=') + 1)), 'the token is not in the body');
    return device;
  }

  async function requestChange(walletName: string): Promise<string> {
    const res = await api('/v1/changes', { walletName, kind: '2fa.disable' });
    assert.equal(res.statusCode, 201, res.body);
    const path = new URL(res.json().changeUrl as string).pathname;
    recordTestSecret('change path', path);
    return path;
  }

  it('enrolment sets it; the backend uses the change page’s shared counter up; the owner’s browser cancels with a right code there', async () => {
    const owner = browser();
    const device = await enrolOnPage('pat', owner);
    const path = await requestChange('pat');
    // The owner confirms on the page: the response sets a fresh cookie.
    const shown = await owner.get(path);
    const confirmed = await owner.post(path, { csrf: csrfOf(shown.body), decision: 'confirm', kind: 'totp', code: nextCode('pat') });
    assert.equal(confirmed.statusCode, 200, confirmed.body);
    assert.notEqual(ownerDeviceOf(confirmed), device, 'a new device id each time the owner proves a factor');
    // The backend (its own browser, no owner cookie): 10 wrong codes, then even a right one is refused.
    const backend = browser();
    const csrf = csrfOf((await backend.get(path)).body);
    for (let i = 0; i < 10; i += 1)
      assert.equal(refusalCodeOf((await backend.post(path, { csrf, decision: 'cancel', kind: 'totp', code: '000000' })).body), 'code_invalid');
    const refused = await backend.post(path, { csrf, decision: 'cancel', kind: 'totp', code: nextCode('pat') });
    assert.equal(refusalCodeOf(refused.body), 'change_cancel_throttled');
    assert.equal(refused.headers['set-cookie'], undefined, 'no owner-device cookie for a refused answer');
    // The owner's browser: its cookie counts the answer on its own budget.
    const cancelled = await owner.post(path, { csrf: csrfOf((await owner.get(path)).body), decision: 'cancel', kind: 'totp', code: nextCode('pat') });
    assert.equal(cancelled.statusCode, 200, cancelled.body);
    assert.match(cancelled.body, /data-state="cancelled"/);
    for (const value of owner.jar.values()) assert.ok(!cancelled.body.includes(value) || value.length < 60, 'no owner-device token in the body');
    const [record] = await signer.sql(
      "SELECT detail FROM audit_log WHERE action = 'change.cancel' AND wallet_name = 'pat' AND decision = 'allowed' ORDER BY seq DESC LIMIT 1",
    );
    assert.equal(JSON.parse(String(record?.detail)).budget, 'device');
  });

  it('on the owner page (reached through the change page’s “not me” link) the same; another wallet’s cookie under this wallet’s name counts as none', async () => {
    const owner = browser();
    await enrolOnPage('pia', owner);
    const stranger = browser();
    const strangers = await enrolOnPage('pim', stranger);
    const path = await requestChange('pia');
    const shown = await owner.get(path);
    await owner.post(path, { csrf: csrfOf(shown.body), decision: 'confirm', kind: 'totp', code: nextCode('pia') });
    const ownerPath = /href="(\/owner\/[A-Za-z0-9_-]{43})#not-me"|href="[^"]*(\/owner\/[A-Za-z0-9_-]{43})/.exec(shown.body);
    const ownerUrl = ownerPath?.[1] ?? ownerPath?.[2] ?? assert.fail('the change page links to the owner page');
    recordTestSecret('owner path', ownerUrl);
    const changeId = /data-change-id="([0-9a-f]{32})"/.exec((await owner.get(ownerUrl)).body)?.[1] ?? assert.fail('the owner page lists the change');
    // The backend uses the shared counter up on the owner page.
    const backend = browser();
    const csrf = csrfOf((await backend.get(ownerUrl)).body);
    const cancel = (who: ReturnType<typeof browser>, token: string, code: string) =>
      who.post(ownerUrl, { csrf: token, decision: 'cancel-change', change: changeId, kind: 'totp', code });
    for (let i = 0; i < 10; i += 1) assert.equal(refusalCodeOf((await cancel(backend, csrf, '000000')).body), 'code_invalid');
    assert.equal(refusalCodeOf((await cancel(backend, csrf, nextCode('pia'))).body), 'change_cancel_throttled');
    // Another wallet's owner cookie, renamed to this wallet's cookie: none.
    const ownName = [...owner.jar.keys()].find((k) => k.startsWith('custos_owner_')) as string;
    const forged = browser({ [ownName]: strangers.slice(strangers.indexOf('=') + 1) });
    const forgedCsrf = csrfOf((await forged.get(ownerUrl)).body);
    assert.equal(refusalCodeOf((await cancel(forged, forgedCsrf, nextCode('pia'))).body), 'change_cancel_throttled');
    // The owner's browser cancels.
    const ownerCsrf = csrfOf((await owner.get(ownerUrl)).body);
    const done = await cancel(owner, ownerCsrf, nextCode('pia'));
    assert.equal(done.statusCode, 200, done.body);
    assert.match(done.body, /Cancelled\./);
    ownerDeviceOf(done);
  });

  it('an approval approved on its page sets it too, and that cookie cancels after the backend used the shared counter up', async () => {
    // A wallet enrolled through the API (no page yet): the browser has no owner cookie until it approves on a page.
    const { otpauthUri } = await signer.kernel.enrollTotp(await signer.kernel.authenticateApiKey(signer.apiKey), { walletName: 'pol' });
    uris.set('pol', otpauthUri);
    recordTestSecret('totpUri', otpauthUri);
    const owner = browser();
    const created = await api('/v1/approvals', { walletName: 'pol', keyIndex: 0, operation: { hash: HASH } });
    assert.equal(created.statusCode, 201, created.body);
    const approvePath = new URL(created.json().approveUrl as string).pathname;
    recordTestSecret('approve path', approvePath);
    const page = await owner.get(approvePath);
    const rejectedFirst = await owner.post(approvePath, { csrf: csrfOf(page.body), decision: 'approve', code: '000000' });
    assert.equal(rejectedFirst.headers['set-cookie'] === undefined || !String(rejectedFirst.headers['set-cookie']).includes('custos_owner_'), true);
    const approved = await owner.post(approvePath, { csrf: csrfOf(page.body), decision: 'approve', code: nextCode('pol') });
    assert.equal(approved.statusCode, 200, approved.body);
    ownerDeviceOf(approved);
    const path = await requestChange('pol');
    const shown = await owner.get(path);
    await owner.post(path, { csrf: csrfOf(shown.body), decision: 'confirm', kind: 'totp', code: nextCode('pol') });
    const backend = browser();
    const csrf = csrfOf((await backend.get(path)).body);
    for (let i = 0; i < 10; i += 1) await backend.post(path, { csrf, decision: 'cancel', kind: 'totp', code: '000000' });
    assert.equal(refusalCodeOf((await backend.post(path, { csrf, decision: 'cancel', kind: 'totp', code: nextCode('pol') })).body), 'change_cancel_throttled');
    const cancelled = await owner.post(path, { csrf: csrfOf((await owner.get(path)).body), decision: 'cancel', kind: 'totp', code: nextCode('pol') });
    assert.match(cancelled.body, /data-state="cancelled"/);
  });
});
