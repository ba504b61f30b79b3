import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { LightMyRequestResponse } from 'fastify';
import { RAW_HASHES_ALLOWED, createTestSigner, recordTestSecret, type TestSigner } from './testing/createTestSigner.js';
import { totpFromUri } from './testing/totpFromUri.js';
import { ALL_SCHEMA_VERSIONS } from './testing/schemaVersions.js';

// Issue 11, point 4: enrolment links (TOTP) through the API and the kernel's enrolment page — the
// link, the page (QR code and key while pending, never after), the first code activating the factor
// (and spent), wrong codes counted to a failed link, replacement, expiry, CSRF, bad input.

// A fixed instant in the middle of a 30 s step.
const T0 = Date.UTC(2026, 11, 6, 12, 0, 15);
const PUBLIC_URL = 'https://custos.example';
const ORIGIN = 'https://custos.example';
const HASH = `0x${'ab'.repeat(32)}`;
const CSP = /^default-src 'none'; style-src 'nonce-([A-Za-z0-9+/]{22}==)'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'$/;

describe('enrolment links: POST /v1/enrollments and the enrolment page', () => {
  let signer: TestSigner;
  /** Every secret seen: the otpauth secrets, looked for in every response of the API and the audit log. */
  const secrets: string[] = [];

  before(async () => {
    signer = await createTestSigner({ policyDefaults: RAW_HASHES_ALLOWED, startMs: T0, appOptions: { publicUrl: PUBLIC_URL } });
  });
  after(async () => {
    await signer.close();
  });

  function createLink(payload: Record<string, unknown>): Promise<LightMyRequestResponse> {
    return signer.app.inject({ method: 'POST', url: '/v1/enrollments', headers: signer.auth(), payload });
  }

  /** A new link for a wallet: the response checked, and its capability (recorded as a secret). */
  async function link(walletName: string, extra: Record<string, unknown> = {}): Promise<{ capability: string; id: string; body: string }> {
    const res = await createLink({ walletName, ...extra });
    assert.equal(res.statusCode, 201, res.body);
    const body = res.json() as { id: string; walletName: string; kind: string; expiresAt: number; enrollUrl: string };
    assert.deepEqual(Object.keys(body).sort(), ['enrollUrl', 'expiresAt', 'id', 'kind', 'walletName']);
    const m = /^https:\/\/custos\.example\/enroll\/([A-Za-z0-9_-]{43})$/.exec(body.enrollUrl);
    assert.ok(m?.[1], body.enrollUrl);
    recordTestSecret('enrolment capability', m[1]);
    assert.match(body.id, /^[0-9a-f]{32}$/);
    assert.equal(body.walletName, walletName);
    assert.equal(body.kind, 'totp');
    return { capability: m[1], id: body.id, body: res.body };
  }

  /** The cookie value a page response sets (custos_form, only for the enrolment pages). */
  function cookieOf(res: LightMyRequestResponse): string {
    const header = String(res.headers['set-cookie'] ?? '');
    const m = /^custos_form=([A-Za-z0-9_-]{43}); Path=\/enroll\/; HttpOnly; SameSite=Strict; Secure$/.exec(header);
    assert.ok(m?.[1], `Set-Cookie: ${header}`);
    return m[1];
  }

  function assertPageHeaders(res: LightMyRequestResponse): void {
    assert.equal(res.headers['content-type'], 'text/html; charset=utf-8');
    const nonce = CSP.exec(String(res.headers['content-security-policy']))?.[1];
    assert.ok(nonce !== undefined && res.body.includes(`<style nonce="${nonce}">`));
    assert.ok(!/<script/i.test(res.body), 'no script');
    assert.equal(res.headers['cache-control'], 'no-store');
    assert.equal(res.headers['referrer-policy'], 'no-referrer');
  }

  /** Opens the page as a browser would: the page, its cookie, its form token, the otpauth URI (from the QR code's SVG). */
  async function open(capability: string) {
    const res = await signer.app.inject({ method: 'GET', url: `/enroll/${capability}` });
    assert.equal(res.statusCode, 200, res.body);
    assertPageHeaders(res);
    const csrf = /name="csrf" value="([0-9a-f]{64})"/.exec(res.body)?.[1] ?? assert.fail('no form token');
    const shown = (await signer.kernel.openEnrollmentPage(capability)).shown as { otpauthUri: string; qrSvg: string };
    recordTestSecret('otpauth uri', shown.otpauthUri);
    const secret = new URL(shown.otpauthUri).searchParams.get('secret') ?? assert.fail('no secret');
    recordTestSecret('totp secret', secret);
    secrets.push(secret);
    return { res, cookie: cookieOf(res), csrf, uri: shown.otpauthUri, secret, qrSvg: shown.qrSvg };
  }

  function post(
    capability: string,
    form: Record<string, string>,
    { cookie, origin = ORIGIN }: { cookie?: string | undefined; origin?: string | null } = {},
  ): Promise<LightMyRequestResponse> {
    const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded' };
    if (cookie !== undefined) headers.cookie = `other=1; custos_form=${cookie}`;
    if (origin !== null) headers.origin = origin;
    for (const value of Object.values(form)) if (/^\d{6}$/.test(value)) recordTestSecret('totp code', value);
    return signer.app.inject({ method: 'POST', url: `/enroll/${capability}`, headers, payload: new URLSearchParams(form).toString() });
  }

  function wrongCode(uri: string): string {
    const valid = new Set([-1, 0, 1].map((o) => totpFromUri(uri, signer.clock.now, o)));
    for (let n = 0; ; n++) {
      const code = String(n).padStart(6, '0');
      if (!valid.has(code)) return code;
    }
  }

  async function linkRow(id: string) {
    const [row] = await signer.sql('SELECT state, failures, completed_at FROM enrollment_links WHERE id = $1', id);
    return { state: row?.state, failures: Number(row?.failures) };
  }

  async function factorsOf(walletName: string): Promise<string[]> {
    const res = await signer.app.inject({ method: 'GET', url: `/v1/wallets?walletName=${encodeURIComponent(walletName)}`, headers: signer.auth() });
    if (res.statusCode === 404) return [];
    assert.equal(res.statusCode, 200, res.body);
    return (res.json() as { factors: string[] }).factors;
  }

  /** Everything the database holds that a GET could change: the links, factor rows, wallets, and the audit log. */
  async function snapshot() {
    return {
      links: await signer.sql('SELECT * FROM enrollment_links ORDER BY id'),
      factors: await signer.sql('SELECT * FROM totp_factors ORDER BY wallet_name'),
      wallets: await signer.sql('SELECT * FROM wallets ORDER BY name'),
      audit: await signer.sql('SELECT seq FROM audit_log ORDER BY seq'),
    };
  }

  it('link → the page shows the wallet, the QR code and the key → wrong codes refused and counted → the right code activates TOTP (enrolled via page), and cannot sign afterwards', async () => {
    const walletName = 'enrol-alice <b>&amp;';
    const { capability, id, body: created } = await link(walletName, { ttlSeconds: 3600 });
    assert.equal((JSON.parse(created) as { expiresAt: number }).expiresAt, T0 + 3_600_000);
    const before = await snapshot();
    const page = await open(capability);
    // the wallet name escaped, in the app-text box; the QR code (the kernel's SVG, as a data: image); the key in groups of four
    assert.match(page.res.body, /<section class="apptext"[\s\S]*<dd>enrol-alice &lt;b&gt;&amp;amp;<\/dd>/);
    const qr = /<img class="qr" src="data:image\/svg\+xml;base64,([A-Za-z0-9+/=]+)"/.exec(page.res.body)?.[1] ?? assert.fail('no QR image');
    assert.equal(Buffer.from(qr, 'base64').toString('utf8'), page.qrSvg);
    assert.ok(page.qrSvg.startsWith('<svg') || page.qrSvg.startsWith('<?xml'), 'an SVG');
    const grouped =
      page.secret
        .replace(/=+$/, '')
        .match(/.{1,4}/g)
        ?.join(' ') ?? '';
    assert.ok(page.res.body.includes(`<p class="mono secret" aria-label="Secret key">${grouped}</p>`), 'the key for manual entry, grouped');
    assert.match(page.res.body, /<label for="code">/);
    assert.match(page.res.body, /<input id="code" name="code" type="text" inputmode="numeric" autocomplete="one-time-code"[^>]* required/);
    assert.match(page.res.body, /<button type="submit" class="approve">Activate<\/button>/);
    // GET changed nothing (opening the page twice neither)
    await signer.app.inject({ method: 'GET', url: `/enroll/${capability}` });
    assert.deepEqual(await snapshot(), before);

    // a wrong code: refused in plain words, the page shown again; counted on the link
    const wrong = await post(capability, { csrf: page.csrf, code: wrongCode(page.uri) }, { cookie: page.cookie });
    assert.equal(wrong.statusCode, 403, wrong.body);
    assert.match(wrong.body, /role="alert">Wrong code\. Nothing was enrolled\./);
    assert.ok(wrong.body.includes('class="qr"'), 'the page again, to try again');
    assert.deepEqual(await linkRow(id), { state: 'pending', failures: 1 });
    assert.deepEqual(await factorsOf(walletName), []);
    // a malformed code costs nothing
    const malformed = await post(capability, { csrf: page.csrf, code: '12ab' }, { cookie: page.cookie });
    assert.equal(malformed.statusCode, 400);
    assert.match(malformed.body, /must be the 6 digits/);
    assert.deepEqual(await linkRow(id), { state: 'pending', failures: 1 });

    // the right code activates the factor
    const code = totpFromUri(page.uri, signer.clock.now);
    const done = await post(capability, { csrf: page.csrf, code }, { cookie: page.cookie });
    assert.equal(done.statusCode, 200, done.body);
    assertPageHeaders(done);
    assert.match(done.body, /TOTP is active for this wallet/);
    assert.match(done.body, /<dd>enrol-alice &lt;b&gt;&amp;amp;<\/dd>/);
    assert.ok(!done.body.includes(page.secret.slice(0, 16)) && !done.body.includes('class="qr"'));
    assert.deepEqual(await factorsOf(walletName), ['totp']);
    assert.deepEqual(await signer.sql('SELECT enrolled_via FROM totp_factors WHERE wallet_name = $1', walletName), [{ enrolled_via: 'page' }]);
    assert.deepEqual(await linkRow(id), { state: 'completed', failures: 1 });
    const audit = await signer.sql("SELECT action, decision, detail FROM audit_log WHERE action LIKE 'totp.enroll' OR action LIKE 'enrollment.%' ORDER BY seq");
    assert.deepEqual(
      audit.filter((r) => String(r.detail).includes(id)).map((r) => [r.action, r.decision]),
      [
        ['enrollment.create', 'allowed'],
        ['totp.enroll', 'denied'], // the wrong code (counted)
        ['totp.enroll', 'denied'], // the malformed one (not counted)
        ['totp.enroll', 'allowed'],
      ],
    );

    // the activation code's step is spent: it cannot sign
    const reused = await signer.app.inject({
      method: 'POST',
      url: '/v1/sign/hash',
      headers: signer.auth(),
      payload: { walletName, keyIndex: 0, hash: HASH, code },
    });
    assert.equal(reused.json().error.code, 'code_reused', reused.body);
    signer.clock.now += 30_000;
    const next = totpFromUri(page.uri, signer.clock.now);
    const signed = await signer.app.inject({
      method: 'POST',
      url: '/v1/sign/hash',
      headers: signer.auth(),
      payload: { walletName, keyIndex: 0, hash: HASH, code: next },
    });
    assert.equal(signed.statusCode, 200, signed.body);
    // without a code the wallet no longer signs
    const bare = await signer.app.inject({ method: 'POST', url: '/v1/sign/hash', headers: signer.auth(), payload: { walletName, keyIndex: 0, hash: HASH } });
    assert.equal(bare.json().error.code, 'code_required');

    // the completed link: a notice, never the secret again (the kernel shows nothing)
    assert.equal((await signer.kernel.openEnrollmentPage(capability)).shown, null);
    const again = await signer.app.inject({ method: 'GET', url: `/enroll/${capability}` });
    assert.equal(again.statusCode, 200);
    assert.match(again.body, /already used/);
    assert.ok(!again.body.includes('class="qr"') && !again.body.includes(grouped) && !again.body.includes('name="csrf"'));
    const replay = await post(capability, { csrf: page.csrf, code: next }, { cookie: page.cookie });
    assert.equal(replay.statusCode, 409);
    assert.match(replay.body, /already used, replaced by a newer one, or spent/);
    assert.ok(!replay.body.includes('class="qr"'));

    // a wallet with a factor gets no link
    const refused = await createLink({ walletName });
    assert.equal(refused.statusCode, 409);
    assert.equal(refused.json().error.code, 'already_enrolled');
    // neither does one enrolled through the API
    assert.equal(
      (await signer.app.inject({ method: 'POST', url: '/v1/totp/enroll', headers: signer.auth(), payload: { walletName: 'enrol-api' } })).statusCode,
      200,
    );
    assert.equal((await createLink({ walletName: 'enrol-api' })).json().error.code, 'already_enrolled');
  });

  it('five wrong codes spend the link (failed): further posts refused, the page shows no secret; nothing enrolled', async () => {
    const walletName = 'enrol-bob';
    const { capability, id } = await link(walletName);
    const page = await open(capability);
    for (let i = 1; i <= 5; i++) {
      const res = await post(capability, { csrf: page.csrf, code: wrongCode(page.uri) }, { cookie: page.cookie });
      assert.equal(res.statusCode, 403, `try ${i}`);
      assert.deepEqual(await linkRow(id), { state: i < 5 ? 'pending' : 'failed', failures: i });
    }
    // even the right code is refused now
    const right = await post(capability, { csrf: page.csrf, code: totpFromUri(page.uri, signer.clock.now) }, { cookie: page.cookie });
    assert.equal(right.statusCode, 409);
    assert.match(right.body, /already used, replaced by a newer one, or spent by wrong codes/);
    assert.deepEqual(await linkRow(id), { state: 'failed', failures: 5 });
    assert.deepEqual(await factorsOf(walletName), []);
    const view = await signer.app.inject({ method: 'GET', url: `/enroll/${capability}` });
    assert.match(view.body, /Too many wrong codes/);
    assert.ok(!view.body.includes('class="qr"') && !view.body.includes('name="csrf"'));
    assert.equal((await signer.kernel.openEnrollmentPage(capability)).shown, null);
    // a new link works
    const fresh = await link(walletName);
    const freshPage = await open(fresh.capability);
    assert.notEqual(freshPage.secret, page.secret, 'a new secret');
    assert.equal(
      (await post(fresh.capability, { csrf: freshPage.csrf, code: totpFromUri(freshPage.uri, signer.clock.now) }, { cookie: freshPage.cookie })).statusCode,
      200,
    );
    assert.deepEqual(await factorsOf(walletName), ['totp']);
  });

  it('a second link for the same wallet replaces the first: the first page is no longer pending, its code is refused', async () => {
    const walletName = 'enrol-carol';
    const first = await link(walletName);
    const firstPage = await open(first.capability);
    const second = await link(walletName);
    assert.deepEqual(await linkRow(first.id), { state: 'cancelled', failures: 0 });
    const view = await signer.app.inject({ method: 'GET', url: `/enroll/${first.capability}` });
    assert.equal(view.statusCode, 200);
    assert.match(view.body, /replaced by a newer one/);
    assert.ok(!view.body.includes('class="qr"'));
    const res = await post(first.capability, { csrf: firstPage.csrf, code: totpFromUri(firstPage.uri, signer.clock.now) }, { cookie: firstPage.cookie });
    assert.equal(res.statusCode, 409);
    assert.deepEqual(await factorsOf(walletName), []);
    const audit = await signer.sql("SELECT detail FROM audit_log WHERE action = 'enrollment.cancel'");
    assert.ok(audit.some((r) => JSON.parse(String(r.detail)).enrollmentId === first.id));
    // the second one is the one
    const secondPage = await open(second.capability);
    assert.equal(
      (await post(second.capability, { csrf: secondPage.csrf, code: totpFromUri(secondPage.uri, signer.clock.now) }, { cookie: secondPage.cookie })).statusCode,
      200,
    );
  });

  it('an expired link is refused: the page says so without the secret, a code posted is refused; nothing enrolled', async () => {
    const walletName = 'enrol-dave';
    const { capability, id } = await link(walletName, { ttlSeconds: 300 });
    const page = await open(capability);
    signer.clock.now += 300_000;
    const view = await signer.app.inject({ method: 'GET', url: `/enroll/${capability}` });
    assert.equal(view.statusCode, 200);
    assert.match(view.body, /This link has expired/);
    assert.ok(!view.body.includes('class="qr"') && !view.body.includes('name="csrf"'));
    const res = await post(capability, { csrf: page.csrf, code: totpFromUri(page.uri, signer.clock.now) }, { cookie: page.cookie });
    assert.equal(res.statusCode, 409);
    assert.match(res.body, /This link has expired/);
    assert.deepEqual(await factorsOf(walletName), []);
    assert.deepEqual(await linkRow(id), { state: 'pending', failures: 0 });
  });

  it('CSRF: no token, a wrong token, another page’s token, no cookie, a cross Origin → 403, nothing enrolled or counted', async () => {
    const walletName = 'enrol-erin';
    const { capability, id } = await link(walletName);
    const page = await open(capability);
    const other = await link('enrol-erin-other');
    const otherPage = await open(other.capability);
    const code = totpFromUri(page.uri, signer.clock.now);
    const attacks: Array<[string, Record<string, string>, { cookie?: string; origin?: string | null }]> = [
      ['no token', { code }, { cookie: page.cookie }],
      ['a wrong token', { csrf: 'ab'.repeat(32), code }, { cookie: page.cookie }],
      ['another page’s token', { csrf: otherPage.csrf, code }, { cookie: page.cookie }],
      ['no cookie', { csrf: page.csrf, code }, {}],
      ['another cookie', { csrf: page.csrf, code }, { cookie: otherPage.cookie === page.cookie ? 'x'.repeat(43) : otherPage.cookie }],
      ['a cross Origin', { csrf: page.csrf, code }, { cookie: page.cookie, origin: 'https://evil.example' }],
      ['the origin over http', { csrf: page.csrf, code }, { cookie: page.cookie, origin: 'http://custos.example' }],
    ];
    const before = await snapshot();
    for (const [label, form, options] of attacks) {
      const res = await post(capability, form, options);
      assert.equal(res.statusCode, 403, label);
      assert.match(res.body, /Form refused/, label);
      assert.ok(!res.body.includes('class="qr"'), label);
    }
    assert.deepEqual(await snapshot(), before, 'nothing written, not even an audit record');
    assert.deepEqual(await linkRow(id), { state: 'pending', failures: 0 });
    assert.deepEqual(await factorsOf(walletName), []);
    // no Origin at all (a browser that sends none) with the right token works
    const ok = await post(capability, { csrf: page.csrf, code }, { cookie: page.cookie, origin: null });
    assert.equal(ok.statusCode, 200, ok.body);
    // a database writer relabelling the page-enrolled factor as the app's breaks its MAC: it no longer signs
    await signer.sql("UPDATE totp_factors SET enrolled_via = 'api' WHERE wallet_name = $1", walletName);
    signer.clock.now += 30_000;
    const tampered = await signer.app.inject({
      method: 'POST',
      url: '/v1/sign/hash',
      headers: signer.auth(),
      payload: { walletName, keyIndex: 0, hash: HASH, code: totpFromUri(page.uri, signer.clock.now) },
    });
    assert.equal(tampered.json().error.code, 'record_unreadable', tampered.body);
  });

  it('malformed or unknown capabilities → 404 on GET and POST, nothing written', async () => {
    const before = await snapshot();
    for (const path of ['x', 'A'.repeat(42), 'A'.repeat(44), `${'A'.repeat(42)}*`, 'A'.repeat(43), `${'A'.repeat(43)}/more`, '']) {
      const get = await signer.app.inject({ method: 'GET', url: `/enroll/${path}` });
      assert.equal(get.statusCode, 404, `GET ${path}`);
      assert.match(get.body, /no enrolment link at this address/);
      const res = await post(path, { csrf: 'ab'.repeat(32), code: '123456' }, {});
      assert.ok(res.statusCode === 404 || res.statusCode === 403, `POST ${path}: ${res.statusCode}`);
    }
    // an unknown well-formed capability with a valid form token: not found
    const unknown = 'B'.repeat(43);
    const cookie = 'c'.repeat(43);
    const res = await post(unknown, { csrf: signer.kernel.pageFormToken(unknown, cookie), code: '123456' }, { cookie });
    assert.equal(res.statusCode, 404);
    assert.deepEqual(await snapshot(), before);
  });

  it('bad input on POST /v1/enrollments → 400 naming the field; the scope register is needed', async () => {
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ walletName: 'w', extra: 1 }, 'extra'],
      [{ walletName: 'w', ttlSeconds: 299 }, 'ttlSeconds'],
      [{ walletName: 'w', ttlSeconds: 604_801 }, 'ttlSeconds'],
      [{ walletName: 'w', ttlSeconds: 3600.5 }, 'ttlSeconds'],
      [{ walletName: 'w', ttlSeconds: '3600' }, 'ttlSeconds'],
      [{ walletName: 'w', kind: 'webauthn' }, 'kind'],
      [{}, 'walletName'],
      [{ walletName: '' }, 'walletName'],
      [{ walletName: 7 }, 'walletName'],
    ];
    for (const [payload, field] of cases) {
      const res = await createLink(payload);
      assert.equal(res.statusCode, 400, `${JSON.stringify(payload)}: ${res.body}`);
      const error = res.json().error as { code: string; details: { field?: string } };
      assert.equal(error.code, 'invalid_input', JSON.stringify(payload));
      assert.equal(error.details.field, field, JSON.stringify(payload));
    }
    // a passkey link from a signer that runs without passkeys (no --public-url host name): refused, naming kind
    const passkey = await createLink({ walletName: 'w', kind: 'passkey' });
    assert.equal(passkey.statusCode, 409, passkey.body);
    assert.equal(passkey.json().error.code, 'passkeys_unavailable');
    assert.equal(passkey.json().error.details.field, 'kind');
    assert.equal(Number((await signer.sql("SELECT COUNT(*) AS n FROM enrollment_links WHERE wallet_name = 'w'"))[0]?.n), 0);
    // a key without the register scope
    const { createApiKey } = await import('@custos/kernel');
    const { token } = await createApiKey(signer.store, { name: 'signer only', scopes: ['sign'], tenant: 'default' });
    recordTestSecret('apiKey', token);
    const forbidden = await signer.app.inject({ method: 'POST', url: '/v1/enrollments', headers: signer.auth(token), payload: { walletName: 'w2' } });
    assert.equal(forbidden.statusCode, 403);
    assert.equal(forbidden.json().error.code, 'forbidden_scope');
    const anonymous = await signer.app.inject({ method: 'POST', url: '/v1/enrollments', payload: { walletName: 'w2' } });
    assert.equal(anonymous.statusCode, 401);
  });

  it('the backend never sees a secret: not in any response of POST /v1/enrollments, nor in any audit record', async () => {
    assert.ok(secrets.length >= 5, `${secrets.length} secrets seen`);
    const audit = JSON.stringify(await signer.sql('SELECT * FROM audit_log'));
    const rows = JSON.stringify(await signer.sql('SELECT * FROM enrollment_links'));
    for (const secret of secrets) {
      assert.ok(!audit.includes(secret), 'not in the audit log');
      assert.ok(!rows.includes(secret), 'sealed in the link row');
    }
    // a response of POST /v1/enrollments never holds the secret the page then shows
    const { capability, body } = await link('enrol-frank');
    const page = await open(capability);
    assert.ok(!body.includes(page.secret));
    assert.ok(!body.includes(page.secret.slice(0, 8)));
  });

  it('the OpenAPI document describes POST /v1/enrollments', async () => {
    const doc = (await signer.app.inject({ method: 'GET', url: '/v1/openapi.json' })).json() as { paths: Record<string, Record<string, unknown>> };
    const op = doc.paths['/v1/enrollments']?.post as { tags: string[]; security: unknown[]; responses: Record<string, unknown> } | undefined;
    assert.ok(op, 'documented');
    assert.deepEqual(op.tags, ['enrolment']);
    assert.deepEqual(op.security, [{ apiKey: [] }]);
    assert.ok(op.responses['201']);
  });
});

describe('schema migration 5 on a signer with TOTP factors enrolled through the API', () => {
  it('the old factor rows read enrolled via api, and their MACs still verify: they sign, and a wrong code is still refused', async () => {
    const signer = await createTestSigner({ policyDefaults: RAW_HASHES_ALLOWED, startMs: T0 });
    try {
      const enrolled = await signer.app.inject({ method: 'POST', url: '/v1/totp/enroll', headers: signer.auth(), payload: { walletName: 'old-api' } });
      assert.equal(enrolled.statusCode, 200, enrolled.body);
      const uri = (enrolled.json() as { otpauthUri: string }).otpauthUri;
      recordTestSecret('otpauth uri', uri);
      const sign = (code?: string) =>
        signer.app.inject({
          method: 'POST',
          url: '/v1/sign/hash',
          headers: signer.auth(),
          payload: { walletName: 'old-api', keyIndex: 0, hash: HASH, ...(code === undefined ? {} : { code }) },
        });
      assert.equal((await sign(totpFromUri(uri, signer.clock.now))).statusCode, 200);
      const rowBefore = await signer.sql('SELECT wallet_name, secret_envelope, last_accepted_step, failures, mac FROM totp_factors');
      // back to version 4: no enrolment links, no enrolled_via column (as an older signer left it)
      await signer.sql('DROP TABLE enrollment_links');
      await signer.sql('ALTER TABLE totp_factors DROP COLUMN enrolled_via');
      await signer.sql('DELETE FROM schema_migrations WHERE version = 5');
      await signer.restart();
      assert.deepEqual(await signer.store.schemaVersions(), ALL_SCHEMA_VERSIONS);
      assert.deepEqual(
        await signer.sql('SELECT wallet_name, secret_envelope, last_accepted_step, failures, mac FROM totp_factors'),
        rowBefore,
        'the row kept as it was',
      );
      assert.deepEqual(await signer.sql('SELECT enrolled_via FROM totp_factors'), [{ enrolled_via: 'api' }]);
      // the MAC holds (a broken one would refuse as record_unreadable): the next code signs, a wrong one is refused
      signer.clock.now += 30_000;
      const next = totpFromUri(uri, signer.clock.now);
      const wrong = String((Number(next) + 1) % 1_000_000).padStart(6, '0');
      assert.equal((await sign(wrong)).json().error.code, 'code_invalid');
      const signed = await sign(next);
      assert.equal(signed.statusCode, 200, signed.body);
      assert.equal((await sign()).json().error.code, 'code_required');
      // relabelling the old row as enrolled on the page breaks its MAC
      await signer.sql("UPDATE totp_factors SET enrolled_via = 'page'");
      signer.clock.now += 30_000;
      assert.equal((await sign(totpFromUri(uri, signer.clock.now))).json().error.code, 'record_unreadable');
    } finally {
      await signer.close();
    }
  });
});
