import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import type { LightMyRequestResponse } from 'fastify';
import { join } from 'node:path';
import { DB_FILE } from '../openStore.js';
import { RAW_HASHES_ALLOWED, createTestSigner, type TestSigner } from '../testing/createTestSigner.js';
import { holdLock } from '../testing/sqliteLockHolder.js';
import { totpFromUri } from '../testing/totpFromUri.js';

// A fixed instant in the middle of a 30 s step.
const T0 = Date.UTC(2026, 11, 6, 12, 0, 15);
const PUBLIC_URL = 'https://custos.example';
const ORIGIN = 'https://custos.example';
const HASH = `0x${'ab'.repeat(32)}`;
const CSP = /^default-src 'none'; style-src 'nonce-([A-Za-z0-9+/]{22}==)'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'$/;

/** Every page response carries these headers, and the nonce of its CSP is the one of its stylesheet. */
function assertPageHeaders(res: LightMyRequestResponse): string {
  assert.equal(res.headers['content-type'], 'text/html; charset=utf-8');
  const csp = String(res.headers['content-security-policy']);
  const nonce = CSP.exec(csp)?.[1];
  assert.ok(nonce !== undefined, `CSP: ${csp}`);
  assert.ok(res.body.includes(`<style nonce="${nonce}">`), 'the stylesheet carries the nonce');
  assert.ok(!/<script/i.test(res.body), 'no script');
  assert.equal(res.headers['referrer-policy'], 'no-referrer');
  assert.equal(res.headers['x-content-type-options'], 'nosniff');
  assert.equal(res.headers['cache-control'], 'no-store');
  assert.equal(res.headers['x-frame-options'], 'DENY');
  return nonce;
}

/** The form token in a page's hidden csrf field. */
function csrfOf(body: string): string {
  const m = /name="csrf" value="([0-9a-f]{64})"/.exec(body);
  assert.ok(m?.[1], 'the page has a form token');
  return m[1];
}

/** The cookie value a response sets (custos_form). */
function cookieOf(res: LightMyRequestResponse): string {
  const header = String(res.headers['set-cookie'] ?? '');
  const m = /^custos_form=([A-Za-z0-9_-]{43}); Path=\/approve\/; HttpOnly; SameSite=Strict; Secure$/.exec(header);
  assert.ok(m?.[1], `Set-Cookie: ${header}`);
  return m[1];
}

describe('the approval page over HTTP', () => {
  let signer: TestSigner;
  const uris = new Map<string, string>();

  before(async () => {
    signer = await createTestSigner({ policyDefaults: RAW_HASHES_ALLOWED, startMs: T0, appOptions: { publicUrl: PUBLIC_URL } });
  });
  after(async () => {
    await signer.close();
  });

  async function enroll(walletName: string): Promise<void> {
    const res = await signer.app.inject({ method: 'POST', url: '/v1/totp/enroll', headers: signer.auth(), payload: { walletName } });
    assert.equal(res.statusCode, 200, res.body);
    uris.set(walletName, res.json().otpauthUri);
  }

  /** The code the owner's app shows now. */
  function codeFor(walletName: string, stepOffset = 0): string {
    return totpFromUri(uris.get(walletName) ?? '', signer.clock.now, stepOffset);
  }

  /** A code that is not valid now (nor one step either side). */
  function wrongCodeFor(walletName: string): string {
    const valid = new Set([-1, 0, 1].map((o) => codeFor(walletName, o)));
    for (let n = 0; ; n++) {
      const code = String(n).padStart(6, '0');
      if (!valid.has(code)) return code;
    }
  }

  async function createApproval(walletName: string, operation: Record<string, unknown> = { hash: HASH }) {
    const app = await signer.kernel.authenticateApiKey(signer.apiKey);
    return signer.kernel.createApproval(app, { walletName, keyIndex: 0, operation });
  }

  async function stateOf(id: string): Promise<string> {
    const app = await signer.kernel.authenticateApiKey(signer.apiKey);
    return (await signer.kernel.getApproval(app, { id })).state;
  }

  async function failuresOf(walletName: string): Promise<number> {
    const [row] = await signer.sql('SELECT failures FROM totp_factors WHERE wallet_name = $1', walletName);
    return Number(row?.failures);
  }

  async function auditCount(): Promise<number> {
    const [row] = await signer.sql('SELECT COUNT(*) AS n FROM audit_log');
    return Number(row?.n);
  }

  /** Opens the page as a browser would the first time: the page, its cookie and its form token. */
  async function open(capability: string) {
    const res = await signer.app.inject({ method: 'GET', url: `/approve/${capability}` });
    assert.equal(res.statusCode, 200, res.body);
    return { res, cookie: cookieOf(res), csrf: csrfOf(res.body) };
  }

  function post(
    capability: string,
    form: Record<string, string>,
    { cookie, origin = ORIGIN, site }: { cookie?: string | undefined; origin?: string | null; site?: string } = {},
  ): Promise<LightMyRequestResponse> {
    const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded' };
    if (cookie !== undefined) headers.cookie = `other=1; custos_form=${cookie}`;
    if (origin !== null) headers.origin = origin;
    if (site !== undefined) headers['sec-fetch-site'] = site;
    return signer.app.inject({ method: 'POST', url: `/approve/${capability}`, headers, payload: new URLSearchParams(form).toString() });
  }

  it('the page of a pending approval: the summary, the app text escaped, the forms; with every page header', async () => {
    await enroll('page-alice');
    const text = 'Log in <script>alert(1)</script> \u202Etxt.exe';
    const created = await createApproval('page-alice', { message: { text } });
    const { res } = await open(created.capability);
    const nonce = assertPageHeaders(res);
    assert.ok(res.body.includes('Log in &lt;script&gt;alert(1)&lt;/script&gt; <span class="cp">⟨U+202E⟩</span>txt.exe'));
    assert.ok(!res.body.includes('\u202E'));
    assert.ok(res.body.includes('Text from the app (not verified by Custos)'));
    assert.ok(res.body.includes('name="code"') && res.body.includes('value="reject"'));
    assert.match(res.body, /Authenticator app \(TOTP code\)[^<]*, enrolled 2026-12-06 12:00 UTC/);
    // a fresh nonce per response
    const again = await signer.app.inject({ method: 'GET', url: `/approve/${created.capability}` });
    assert.notEqual(assertPageHeaders(again), nonce);
  });

  it('GET never changes anything: the approval stays pending, nothing is audited', async () => {
    const created = await createApproval('page-alice');
    const before = await auditCount();
    for (let i = 0; i < 3; i++) {
      assert.equal((await signer.app.inject({ method: 'GET', url: `/approve/${created.capability}?decision=approve&code=123456` })).statusCode, 200);
      assert.equal((await signer.app.inject({ method: 'HEAD', url: `/approve/${created.capability}` })).statusCode, 200);
    }
    assert.equal(await stateOf(created.id), 'pending');
    assert.equal(await auditCount(), before);
    assert.equal(await failuresOf('page-alice'), 0);
  });

  it('malformed and unknown capabilities: the same 404 page, with the page headers', async () => {
    const unknown = randomBytes(32).toString('base64url');
    const malformed = [unknown.slice(0, 42), `${unknown}A`, 'A'.repeat(200), `${unknown.slice(0, 42)}!`, `${unknown.slice(0, 42)}%2B`, `${unknown}/more`, ''];
    const bodies = new Set<string>();
    const page = async (method: 'GET' | 'POST', shape: string) => {
      const res = await signer.app.inject({
        method,
        url: `/approve/${shape}`,
        ...(method === 'POST' ? { headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: 'decision=reject' } : {}),
      });
      const nonce = assertPageHeaders(res);
      return { status: res.statusCode, body: res.body.replaceAll(nonce, 'NONCE') };
    };
    for (const shape of malformed) {
      for (const method of ['GET', 'POST'] as const) {
        const res = await page(method, shape);
        assert.equal(res.status, 404, `${method} /approve/${shape}`);
        bodies.add(res.body);
      }
    }
    const res = await page('GET', unknown);
    assert.equal(res.status, 404);
    bodies.add(res.body);
    assert.equal(bodies.size, 1, 'an unknown capability reads exactly as a malformed one');
    // a form post to a well-formed capability is refused for its missing token before anything is looked up:
    // the same answer whether the approval exists or not
    const known = await createApproval('page-alice');
    const refusedUnknown = await page('POST', unknown);
    const refusedKnown = await page('POST', known.capability);
    assert.equal(refusedUnknown.status, 403);
    assert.deepEqual(refusedKnown, refusedUnknown);
  });

  describe('CSRF: a POST decides only with its cookie, its page token and no foreign Origin', () => {
    let capability: string;
    let id: string;
    let cookie: string;
    let csrf: string;
    before(async () => {
      await enroll('page-csrf');
      const created = await createApproval('page-csrf');
      capability = created.capability;
      id = created.id;
      ({ cookie, csrf } = await open(capability));
    });

    async function assertRefused(res: LightMyRequestResponse): Promise<void> {
      assert.equal(res.statusCode, 403, res.body);
      assertPageHeaders(res);
      assert.match(res.body, /Form refused/);
      assert.equal(await stateOf(id), 'pending');
      assert.equal(await failuresOf('page-csrf'), 0, 'the code was not even tried');
    }

    it('no csrf field', async () => {
      await assertRefused(await post(capability, { decision: 'approve', code: codeFor('page-csrf') }, { cookie }));
      await assertRefused(await post(capability, { decision: 'reject' }, { cookie }));
    });

    it('a wrong token, a malformed one, two of them', async () => {
      await assertRefused(await post(capability, { csrf: randomBytes(32).toString('hex'), decision: 'reject' }, { cookie }));
      await assertRefused(await post(capability, { csrf: csrf.toUpperCase(), decision: 'reject' }, { cookie }));
      const twice = new URLSearchParams([
        ['csrf', csrf],
        ['csrf', csrf],
        ['decision', 'reject'],
      ]).toString();
      await assertRefused(
        await signer.app.inject({
          method: 'POST',
          url: `/approve/${capability}`,
          headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: `custos_form=${cookie}`, origin: ORIGIN },
          payload: twice,
        }),
      );
    });

    it('no cookie, or another browser’s cookie', async () => {
      await assertRefused(await post(capability, { csrf, decision: 'reject' }));
      const otherBrowser = await open(capability);
      await assertRefused(await post(capability, { csrf, decision: 'reject' }, { cookie: otherBrowser.cookie }));
    });

    it('the token of another approval’s page, in the same browser', async () => {
      const other = await createApproval('page-csrf');
      const res = await signer.app.inject({ method: 'GET', url: `/approve/${other.capability}`, headers: { cookie: `custos_form=${cookie}` } });
      assert.equal(res.headers['set-cookie'], undefined, 'the browser’s cookie is kept');
      const otherToken = csrfOf(res.body);
      assert.notEqual(otherToken, csrf);
      await assertRefused(await post(capability, { csrf: otherToken, decision: 'reject' }, { cookie }));
    });

    it('a cross Origin; Origin null without Sec-Fetch-Site same-origin; a browser that says the post is cross-site', async () => {
      await assertRefused(await post(capability, { csrf, decision: 'reject' }, { cookie, origin: 'https://evil.example' }));
      await assertRefused(await post(capability, { csrf, decision: 'reject' }, { cookie, origin: 'http://custos.example' }));
      await assertRefused(await post(capability, { csrf, decision: 'reject' }, { cookie, origin: 'null' }));
      // A sandboxed frame of another site sends Origin null too; its browser says cross-site.
      await assertRefused(await post(capability, { csrf, decision: 'reject' }, { cookie, origin: 'null', site: 'cross-site' }));
      for (const site of ['cross-site', 'same-site', 'none'])
        await assertRefused(await post(capability, { csrf, decision: 'reject' }, { cookie, origin: null, site }));
      // The public origin with a browser that says cross-site: the browser's word wins.
      await assertRefused(await post(capability, { csrf, decision: 'reject' }, { cookie, site: 'cross-site' }));
    });

    it('the page’s own post under no-referrer (Origin null, Sec-Fetch-Site same-origin) decides, with its cookie and token', async () => {
      const other = await createApproval('page-csrf');
      const res = await signer.app.inject({ method: 'GET', url: `/approve/${other.capability}`, headers: { cookie: `custos_form=${cookie}` } });
      const decided = await post(other.capability, { csrf: csrfOf(res.body), decision: 'reject' }, { cookie, origin: 'null', site: 'same-origin' });
      assert.equal(decided.statusCode, 200, decided.body);
      assert.equal(await stateOf(other.id), 'rejected');
    });

    it('the same form with its cookie and token decides (from the public origin, or with no Origin)', async () => {
      const res = await post(capability, { csrf, decision: 'reject' }, { cookie, origin: null });
      assert.equal(res.statusCode, 200, res.body);
      assert.equal(await stateOf(id), 'rejected');
    });
  });

  it('reject → rejected: the result page, then the page shows the state and no form', async () => {
    const created = await createApproval('page-alice');
    const { cookie, csrf } = await open(created.capability);
    const res = await post(created.capability, { csrf, decision: 'reject' }, { cookie });
    assert.equal(res.statusCode, 200, res.body);
    assertPageHeaders(res);
    assert.match(res.body, /<h1>Rejected<\/h1>/);
    assert.equal(await stateOf(created.id), 'rejected');
    const page = await signer.app.inject({ method: 'GET', url: `/approve/${created.capability}`, headers: { cookie: `custos_form=${cookie}` } });
    assert.equal(page.statusCode, 200);
    assert.match(page.body, /Rejected on /);
    assert.ok(!page.body.includes('<form'));
    // deciding again: refused, said plainly, still rejected
    const again = await post(created.capability, { csrf, decision: 'approve', code: codeFor('page-alice') }, { cookie });
    assert.equal(again.statusCode, 403);
    assert.match(again.body, /already decided/);
    assert.equal(await stateOf(created.id), 'rejected');
  });

  it('the whole flow over HTTP: POST /v1/approvals → approveUrl → approve with the right code → the sign route signs with the approvalId, once', async () => {
    signer.clock.now += 60_000;
    const created = await signer.app.inject({
      method: 'POST',
      url: '/v1/approvals',
      headers: signer.auth(),
      payload: { walletName: 'page-alice', keyIndex: 0, operation: { hash: HASH } },
    });
    assert.equal(created.statusCode, 201, created.body);
    const { id, approveUrl } = created.json() as { id: string; approveUrl: string };
    const capability = new RegExp(`^${PUBLIC_URL}/approve/([A-Za-z0-9_-]{43})$`).exec(approveUrl)?.[1];
    assert.ok(capability !== undefined, approveUrl);
    const { cookie, csrf } = await open(capability);
    const res = await post(capability, { csrf, decision: 'approve', code: codeFor('page-alice') }, { cookie });
    assert.equal(res.statusCode, 200, res.body);
    assertPageHeaders(res);
    assert.match(res.body, /<h1>Approved<\/h1>/);
    assert.equal(await stateOf(id), 'approved');
    const sign = (hash: string) =>
      signer.app.inject({
        method: 'POST',
        url: '/v1/sign/hash',
        headers: signer.auth(),
        payload: { walletName: 'page-alice', keyIndex: 0, hash, approvalId: id },
      });
    const signed = await sign(HASH);
    assert.equal(signed.statusCode, 200, signed.body);
    assert.equal(await stateOf(id), 'consumed');
    // another hash with the same approval: refused
    const swapped = await sign(`0x${'cd'.repeat(32)}`);
    assert.equal(swapped.statusCode, 403, swapped.body);
    assert.equal(swapped.json().error.code, 'approval_mismatch');
    // the page now says it was used, with no form
    const page = await signer.app.inject({ method: 'GET', url: `/approve/${capability}`, headers: { cookie: `custos_form=${cookie}` } });
    assert.match(page.body, /the operation has been signed/);
    assert.ok(!page.body.includes('<form'));
  });

  it('a policy tightened after the approval was made: the page shows the policy refusal, the code unchecked and uncharged', async () => {
    await enroll('page-policy');
    const created = await createApproval('page-policy');
    const app = await signer.kernel.authenticateApiKey(signer.apiKey);
    await signer.kernel.setWalletPolicy(app, { walletName: 'page-policy', policy: { rawHash: 'deny' } });
    const { cookie, csrf } = await open(created.capability);
    const res = await post(created.capability, { csrf, decision: 'approve', code: wrongCodeFor('page-policy') }, { cookie });
    assert.equal(res.statusCode, 403, res.body);
    assertPageHeaders(res);
    assert.match(res.body, /role="alert">This wallet’s policy does not allow this kind of operation\. Nothing was decided\./);
    assert.equal(await failuresOf('page-policy'), 0);
    assert.equal(await stateOf(created.id), 'pending');
  });

  it('a wrong code: the refusal page, charged to the same TOTP throttle as the API (after 5, the API is factor_throttled)', async () => {
    await enroll('page-throttle');
    const created = await createApproval('page-throttle');
    const { cookie, csrf } = await open(created.capability);
    for (let i = 1; i <= 4; i++) {
      const res = await post(created.capability, { csrf, decision: 'approve', code: wrongCodeFor('page-throttle') }, { cookie });
      assert.equal(res.statusCode, 403, res.body);
      assertPageHeaders(res);
      assert.match(res.body, /role="alert">Wrong code\./);
      assert.ok(res.body.includes('name="code"'), 'the form again');
      assert.equal(await failuresOf('page-throttle'), i);
    }
    // the fifth wrong code locks the factor
    const fifth = await post(created.capability, { csrf, decision: 'approve', code: wrongCodeFor('page-throttle') }, { cookie });
    assert.equal(fifth.statusCode, 403, fifth.body);
    assert.equal(await failuresOf('page-throttle'), 5);
    // the API's sign with the right code is refused by the same throttle
    const sign = await signer.app.inject({
      method: 'POST',
      url: '/v1/sign/hash',
      headers: signer.auth(),
      payload: { walletName: 'page-throttle', keyIndex: 0, hash: HASH, code: codeFor('page-throttle') },
    });
    assert.equal(sign.statusCode, 429, sign.body);
    assert.equal(sign.json().error.code, 'factor_throttled');
    // and so is the page, in plain words
    const locked = await post(created.capability, { csrf, decision: 'approve', code: codeFor('page-throttle') }, { cookie });
    assert.equal(locked.statusCode, 429, locked.body);
    assert.match(locked.body, /Too many wrong codes/);
    assert.equal(await stateOf(created.id), 'pending');
  });

  it('approve with no code, an empty one or one of letters: the refusal page, nothing decided', async () => {
    await enroll('page-nocode');
    const created = await createApproval('page-nocode');
    const { cookie, csrf } = await open(created.capability);
    for (const form of [
      { csrf, decision: 'approve' },
      { csrf, decision: 'approve', code: '' },
      { csrf, decision: 'approve', code: 'abcdef' },
    ]) {
      const res = await post(created.capability, form, { cookie });
      assert.ok(res.statusCode === 400 || res.statusCode === 403, `${res.statusCode} ${res.body}`);
      assertPageHeaders(res);
      assert.match(res.body, /role="alert">[^<]*Nothing was decided\./);
      assert.ok(res.body.includes('name="code"'), 'the form again');
    }
    assert.equal(await stateOf(created.id), 'pending');
  });

  it('typed data too large to show in full: an approve posted anyway, with a right code, is refused and the code is not charged', async () => {
    await enroll('page-huge');
    const typed = {
      types: {
        EIP712Domain: [{ name: 'name', type: 'string' }],
        Entry: [{ name: 'amount', type: 'uint256' }],
        Batch: [
          { name: 'permitted', type: 'Entry[]' },
          { name: 'spender', type: 'address' },
        ],
      },
      primaryType: 'Batch',
      domain: { name: 'Permit2' },
      message: { permitted: Array.from({ length: 300 }, () => ({ amount: '0' })), spender: '0x000000000000000000000000000000000000dEaD' },
    };
    const created = await createApproval('page-huge', { typedData: typed });
    const { cookie, csrf } = await open(created.capability);
    const res = await post(created.capability, { csrf, decision: 'approve', code: codeFor('page-huge') }, { cookie });
    assert.equal(res.statusCode, 403, res.body);
    assert.match(res.body, /role="alert">This request cannot be approved on this page/);
    assert.doesNotMatch(res.body, /value="approve"/);
    assert.equal(await stateOf(created.id), 'pending');
    const [row] = await signer.sql('SELECT failures, last_accepted_step FROM totp_factors WHERE wallet_name = $1', 'page-huge');
    assert.deepEqual([Number(row?.failures), row?.last_accepted_step], [0, null], 'the code was not checked');
    // Reject still works.
    const rejected = await post(created.capability, { csrf, decision: 'reject' }, { cookie });
    assert.equal(rejected.statusCode, 200, rejected.body);
    assert.equal(await stateOf(created.id), 'rejected');
  });

  it('a page GET never waits on the store’s writer: it answers while another process holds the SQLite write lock', async (t) => {
    if (!('dataDir' in signer.location)) {
      t.skip('SQLite only: the write lock of another process');
      return;
    }
    const { dataDir } = signer.location;
    await enroll('page-unlocked');
    const created = await createApproval('page-unlocked');
    const enrolment = await signer.app.inject({
      method: 'POST',
      url: '/v1/enrollments',
      headers: signer.auth(),
      payload: { walletName: 'page-unlocked-link' },
    });
    assert.equal(enrolment.statusCode, 201, enrolment.body);
    const enrollPath = new URL(enrolment.json().enrollUrl as string).pathname;
    const holder = await holdLock(join(dataDir, DB_FILE), 4_000);
    const approvalPage = await signer.app.inject({ method: 'GET', url: `/approve/${created.capability}` });
    const enrolmentPage = await signer.app.inject({ method: 'GET', url: enrollPath });
    const answeredBeforeRelease = holder.events.released === undefined;
    await holder.exited;
    assert.equal(approvalPage.statusCode, 200, approvalPage.body);
    assert.equal(enrolmentPage.statusCode, 200, enrolmentPage.body);
    assert.ok(answeredBeforeRelease, 'both pages answered while the other process still held the write lock');
  });

  it('a missing or unknown decision: 400 page, nothing decided', async () => {
    const created = await createApproval('page-alice');
    const { cookie, csrf } = await open(created.capability);
    for (const form of [{ csrf }, { csrf, decision: 'maybe' }, { csrf, decision: 'APPROVE' }]) {
      const res = await post(created.capability, form, { cookie });
      assert.equal(res.statusCode, 400, res.body);
      assertPageHeaders(res);
    }
    assert.equal(await stateOf(created.id), 'pending');
  });

  it('a body that is not a form (415), or too large (413): a page, nothing decided', async () => {
    const created = await createApproval('page-alice');
    const { cookie, csrf } = await open(created.capability);
    const json = await signer.app.inject({
      method: 'POST',
      url: `/approve/${created.capability}`,
      headers: { cookie: `custos_form=${cookie}`, origin: ORIGIN },
      payload: { csrf, decision: 'reject' },
    });
    assert.equal(json.statusCode, 415, json.body);
    assertPageHeaders(json);
    // (the decision form may carry a passkey's answer: up to 48 KiB)
    const large = await post(created.capability, { csrf, decision: 'reject', pad: 'x'.repeat(49 * 1024) }, { cookie });
    assert.equal(large.statusCode, 413, large.body);
    assertPageHeaders(large);
    assert.equal(await stateOf(created.id), 'pending');
  });

  it('while sealed: the 503 "sealed" page, nothing decided', async () => {
    const created = await createApproval('page-alice');
    const { cookie, csrf } = await open(created.capability);
    signer.kernel.seal();
    try {
      for (const res of [
        await signer.app.inject({ method: 'GET', url: `/approve/${created.capability}` }),
        await post(created.capability, { csrf, decision: 'reject' }, { cookie }),
      ]) {
        assert.equal(res.statusCode, 503, res.body);
        assertPageHeaders(res);
        assert.match(res.body, /The signer is sealed/);
      }
    } finally {
      await signer.restart();
    }
    assert.equal(await stateOf(created.id), 'pending');
  });
});
