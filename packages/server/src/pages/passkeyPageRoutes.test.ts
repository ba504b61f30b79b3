import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { LightMyRequestResponse } from 'fastify';
import { createHash } from 'node:crypto';
import { RAW_HASHES_ALLOWED, createTestSigner, recordTestSecret, type TestSigner } from '../testing/createTestSigner.js';
import { type CreationOptionsJSON, type RequestOptionsJSON, SoftAuthenticator } from '../testing/softAuthenticator.js';
import { totpFromUri } from '../testing/totpFromUri.js';
import { simpleWebAuthnBrowserDir } from './pageAssets.js';

// Issue 11, points 4 and 5, over HTTP without a browser: the passkey steps of the kernel's pages —
// the scripts the kernel serves, the enrolment page of a passkey link, the approval page's challenge
// route (POST /approve/<capability>/challenge) and its checks, and the `proof` field's bounds.
// (A real browser drives these pages in the Chromium suites.)

const T0 = Date.UTC(2026, 11, 6, 12, 0, 15);
const PORT = 8420;
const PUBLIC_URL = `http://localhost:${PORT}`;
const ORIGIN = PUBLIC_URL;
const HASH = `0x${'ab'.repeat(32)}`;
const PASSKEYS = { rpId: 'localhost', origin: ORIGIN, rpName: 'Custos' };
const SCRIPT_SRC = /<script nonce="([A-Za-z0-9+/]{22}==)" src="(\/assets\/[a-z]+-[0-9a-f]{16}\.js)" defer><\/script>/g;

/** The CSP of a page with the passkey step: scripts by its nonce only; `connect` on the approval page. */
function passkeyCsp(nonce: string, connect: boolean): string {
  return [
    "default-src 'none'",
    `script-src 'nonce-${nonce}'`,
    ...(connect ? ["connect-src 'self'"] : []),
    `style-src 'nonce-${nonce}'`,
    "img-src 'self' data:",
    "form-action 'self'",
    "frame-ancestors 'none'",
    "base-uri 'none'",
  ].join('; ');
}

/** The scripts a page loads: each with the nonce of its response's CSP. */
function scriptsOf(res: LightMyRequestResponse): { nonce: string; srcs: string[] } {
  const tags = [...res.body.matchAll(SCRIPT_SRC)];
  assert.equal((res.body.match(/<script/g) ?? []).length, tags.length, 'every script tag has the nonce and a src');
  const nonce = tags[0]?.[1] ?? '';
  assert.ok(tags.every((t) => t[1] === nonce));
  return { nonce, srcs: tags.map((t) => t[2] ?? '') };
}

function cookieOf(res: LightMyRequestResponse, path: '/approve/' | '/enroll/'): string {
  const header = String(res.headers['set-cookie'] ?? '');
  const m = new RegExp(`^custos_form=([A-Za-z0-9_-]{43}); Path=${path}; HttpOnly; SameSite=Strict$`).exec(header);
  assert.ok(m?.[1], `Set-Cookie: ${header}`);
  return m[1];
}

function csrfOf(body: string): string {
  const m = /name="csrf" value="([0-9a-f]{64})"/.exec(body);
  assert.ok(m?.[1], 'the page has a form token');
  return m[1];
}

/** `&quot;` and friends back to text (an attribute's value). */
function unescapeAttribute(value: string): string {
  return value.replaceAll('&quot;', '"').replaceAll('&#39;', "'").replaceAll('&lt;', '<').replaceAll('&gt;', '>').replaceAll('&amp;', '&');
}

type Headers = { cookie?: string | undefined; origin?: string | null; site?: string; contentType?: string };

function form(signer: TestSigner, url: string, fields: Record<string, string> | string, { cookie, origin = ORIGIN, site, contentType }: Headers = {}) {
  const headers: Record<string, string> = { 'content-type': contentType ?? 'application/x-www-form-urlencoded' };
  if (cookie !== undefined) headers.cookie = `custos_form=${cookie}`;
  if (origin !== null) headers.origin = origin;
  if (site !== undefined) headers['sec-fetch-site'] = site;
  return signer.app.inject({ method: 'POST', url, headers, payload: typeof fields === 'string' ? fields : new URLSearchParams(fields).toString() });
}

describe('passkey steps of the pages (a signer with passkeys, public URL http://localhost)', () => {
  let signer: TestSigner;
  before(async () => {
    signer = await createTestSigner({
      policyDefaults: RAW_HASHES_ALLOWED,
      startMs: T0,
      appOptions: { publicUrl: PUBLIC_URL },
      kernelOptions: { passkeys: PASSKEYS },
    });
  });
  after(async () => {
    await signer.close();
  });

  async function passkeyLink(walletName: string): Promise<string> {
    const res = await signer.app.inject({ method: 'POST', url: '/v1/enrollments', headers: signer.auth(), payload: { walletName, kind: 'passkey' } });
    assert.equal(res.statusCode, 201, res.body);
    assert.equal(res.json().kind, 'passkey');
    const m = new RegExp(`^${PUBLIC_URL}/enroll/([A-Za-z0-9_-]{43})$`).exec(res.json().enrollUrl as string);
    assert.ok(m?.[1], res.body);
    recordTestSecret('enrolment capability', m[1]);
    return m[1];
  }

  async function enrollTotp(walletName: string): Promise<void> {
    const res = await signer.app.inject({ method: 'POST', url: '/v1/totp/enroll', headers: signer.auth(), payload: { walletName } });
    assert.equal(res.statusCode, 200, res.body);
  }

  async function createApproval(walletName: string) {
    const app = await signer.kernel.authenticateApiKey(signer.apiKey);
    return signer.kernel.createApproval(app, { walletName, keyIndex: 0, operation: { hash: HASH } });
  }

  async function approvalState(id: string): Promise<string> {
    const app = await signer.kernel.authenticateApiKey(signer.apiKey);
    return (await signer.kernel.getApproval(app, { id })).state;
  }

  describe('the scripts the kernel serves', () => {
    it('both scripts: JavaScript, nosniff, cached for good under a content-hash name, same-origin only; the library byte for byte', async () => {
      const page = await signer.app.inject({ method: 'GET', url: `/enroll/${await passkeyLink('pk-assets')}` });
      const { srcs } = scriptsOf(page);
      assert.equal(srcs.length, 2);
      const [library, ours] = srcs as [string, string];
      assert.match(library, /^\/assets\/webauthn-[0-9a-f]{16}\.js$/);
      assert.match(ours, /^\/assets\/passkey-[0-9a-f]{16}\.js$/);
      const expected = {
        [library]: readFileSync(join(simpleWebAuthnBrowserDir(), 'dist', 'bundle', 'index.umd.min.js')),
        [ours]: readFileSync(new URL('../../assets/passkey.js', import.meta.url)),
      };
      for (const src of srcs) {
        for (const method of ['GET', 'HEAD'] as const) {
          const res = await signer.app.inject({ method, url: src });
          assert.equal(res.statusCode, 200, `${method} ${src}`);
          assert.equal(res.headers['content-type'], 'text/javascript; charset=utf-8');
          assert.equal(res.headers['x-content-type-options'], 'nosniff');
          assert.equal(res.headers['cache-control'], 'public, max-age=31536000, immutable');
          assert.equal(res.headers['cross-origin-resource-policy'], 'same-origin');
          if (method === 'GET') assert.deepEqual(res.rawPayload, expected[src]);
        }
      }
      assert.match(String(expected[library]), /^\/\* \[@simplewebauthn\/browser@13\.\d+\.\d+\] \*\//);
      assert.match(String(expected[library]), /SimpleWebAuthnBrowser/);
      // another hash is not served
      const other = await signer.app.inject({ method: 'GET', url: '/assets/webauthn-0000000000000000.js' });
      assert.equal(other.statusCode, 404);
    });

    it('neither script needs eval (the CSP has no unsafe-eval) nor writes markup', () => {
      const library = readFileSync(join(simpleWebAuthnBrowserDir(), 'dist', 'bundle', 'index.umd.min.js'), 'utf8');
      const ours = readFileSync(new URL('../../assets/passkey.js', import.meta.url), 'utf8');
      for (const source of [library, ours]) {
        assert.doesNotMatch(source, /\beval\s*\(|new Function\s*\(|\bFunction\s*\(|setTimeout\s*\(\s*['"`]|setInterval\s*\(\s*['"`]/);
        assert.doesNotMatch(source, /innerHTML|outerHTML|insertAdjacentHTML|document\.write/);
      }
    });
  });

  describe('the enrolment page of a passkey link', () => {
    it('POST /v1/enrollments kind passkey → the page: the Create-a-passkey step, the options for this signer’s rpID, the scripts under a nonce-only CSP', async () => {
      const capability = await passkeyLink('pk-enrol');
      const res = await signer.app.inject({ method: 'GET', url: `/enroll/${capability}` });
      assert.equal(res.statusCode, 200, res.body);
      const { nonce } = scriptsOf(res);
      assert.equal(res.headers['content-security-policy'], passkeyCsp(nonce, false));
      assert.ok(res.body.includes(`<style nonce="${nonce}">`));
      assert.match(res.body, /id="passkey-create"/);
      const options = JSON.parse(unescapeAttribute(/data-options="([^"]*)"/.exec(res.body)?.[1] ?? '')) as Record<string, unknown> & {
        challenge: string;
        rp: { id: string; name: string };
        user: { name: string };
        authenticatorSelection: { userVerification: string };
      };
      assert.equal(Buffer.from(options.challenge, 'base64url').length, 32);
      assert.equal(Buffer.from(options.challenge, 'base64url').toString('base64url'), options.challenge);
      assert.deepEqual(options.rp, { name: 'Custos', id: 'localhost' });
      assert.equal(options.user.name, 'pk-enrol');
      assert.equal(options.authenticatorSelection.userVerification, 'required');
      // the same options on every visit until the link is used (the ceremony's challenge is the link's)
      const again = await signer.app.inject({ method: 'GET', url: `/enroll/${capability}` });
      assert.equal(JSON.parse(unescapeAttribute(/data-options="([^"]*)"/.exec(again.body)?.[1] ?? '')).challenge, options.challenge);
    });

    it('a posted proof that is not a JSON object, or too long: 400 naming proof, nothing enrolled, the link not spent', async () => {
      const capability = await passkeyLink('pk-enrol-bad');
      const page = await signer.app.inject({ method: 'GET', url: `/enroll/${capability}` });
      const cookie = cookieOf(page, '/enroll/');
      const csrf = csrfOf(page.body);
      for (const proof of ['', 'not json', '[1,2]', 'null', '"text"', '7', `{"id":"${'A'.repeat(16 * 1024)}"}`]) {
        const res = await form(signer, `/enroll/${capability}`, { csrf, proof }, { cookie });
        assert.equal(res.statusCode, 400, `${proof.slice(0, 20)}: ${res.body}`);
        assert.match(res.body, /data-code="invalid_input" role="alert">The passkey’s answer could not be read\. Nothing was enrolled\./);
        assert.match(res.body, /id="passkey-create"/, 'the step again');
        assert.equal(res.headers['content-security-policy'], passkeyCsp(scriptsOf(res).nonce, false));
      }
      // a JSON object that is no passkey answer: the kernel's refusal, naming the field of proof
      const shaped = await form(signer, `/enroll/${capability}`, { csrf, proof: '{"id":"x"}' }, { cookie });
      assert.equal(shaped.statusCode, 400, shaped.body);
      assert.match(shaped.body, /data-code="invalid_input"/);
      // a body over the form limit (48 KiB): 413
      const large = await form(signer, `/enroll/${capability}`, { csrf, proof: `{"a":"${'x'.repeat(49 * 1024)}"}` }, { cookie });
      assert.equal(large.statusCode, 413, large.body);
      const [link] = await signer.sql("SELECT state FROM enrollment_links WHERE wallet_name = 'pk-enrol-bad'");
      assert.equal(link?.state, 'pending');
    });

    it('without its cookie and token, or from another origin: refused before the proof is read', async () => {
      const capability = await passkeyLink('pk-enrol-csrf');
      const page = await signer.app.inject({ method: 'GET', url: `/enroll/${capability}` });
      const cookie = cookieOf(page, '/enroll/');
      const csrf = csrfOf(page.body);
      for (const [fields, headers] of [
        [{ proof: '{}' }, { cookie }],
        [{ csrf, proof: '{}' }, {}],
        [
          { csrf, proof: '{}' },
          { cookie, origin: 'http://evil.example' },
        ],
        [
          { csrf, proof: '{}' },
          { cookie, site: 'cross-site' },
        ],
      ] as const) {
        const res = await form(signer, `/enroll/${capability}`, fields, headers);
        assert.equal(res.statusCode, 403, res.body);
        assert.match(res.body, /Form refused/);
      }
    });
  });

  describe('POST /approve/<capability>/challenge', () => {
    let capability: string;
    let id: string;
    let cookie: string;
    let csrf: string;
    before(async () => {
      await enrollTotp('pk-totp');
      const created = await createApproval('pk-totp');
      capability = created.capability;
      id = created.id;
      const page = await signer.app.inject({ method: 'GET', url: `/approve/${capability}` });
      cookie = cookieOf(page, '/approve/');
      csrf = csrfOf(page.body);
    });

    function challenge(cap: string, fields: Record<string, string>, headers: Headers = {}) {
      return form(signer, `/approve/${cap}/challenge`, fields, { cookie, ...headers });
    }

    function assertJsonError(res: LightMyRequestResponse, status: number, code: string, field?: string): void {
      assert.equal(res.statusCode, status, res.body);
      assert.equal(res.headers['content-type'], 'application/json; charset=utf-8');
      assert.equal(res.headers['cache-control'], 'no-store');
      assert.equal(res.headers['x-content-type-options'], 'nosniff');
      const { error } = res.json() as { error: { code: string; details: { field?: string } } };
      assert.equal(error.code, code);
      if (field !== undefined) assert.equal(error.details.field, field);
    }

    it('a TOTP wallet’s page on a passkey signer offers no passkey step and loads no script', async () => {
      const page = await signer.app.inject({ method: 'GET', url: `/approve/${capability}` });
      assert.ok(!page.body.includes('<script') && !page.body.includes('passkey-approve'));
      assert.doesNotMatch(String(page.headers['content-security-policy']), /script-src|connect-src/);
    });

    it('without the page’s token, with another browser’s, or with another page’s: 403 forbidden_origin (csrf)', async () => {
      assertJsonError(await challenge(capability, { kind: 'passkey' }), 403, 'forbidden_origin', 'csrf');
      assertJsonError(await challenge(capability, { csrf, kind: 'passkey' }, { cookie: undefined }), 403, 'forbidden_origin', 'csrf');
      assertJsonError(
        await challenge(capability, { csrf, kind: 'passkey' }, { cookie: randomBytes(32).toString('base64url') }),
        403,
        'forbidden_origin',
        'csrf',
      );
      const other = await createApproval('pk-totp');
      const otherToken = signer.kernel.pageFormToken(other.capability, cookie);
      assertJsonError(await challenge(capability, { csrf: otherToken, kind: 'passkey' }), 403, 'forbidden_origin', 'csrf');
    });

    it('from another origin, or a browser that says cross-site: 403 forbidden_origin (origin)', async () => {
      assertJsonError(await challenge(capability, { csrf, kind: 'passkey' }, { origin: 'http://evil.example' }), 403, 'forbidden_origin', 'origin');
      assertJsonError(await challenge(capability, { csrf, kind: 'passkey' }, { origin: 'http://localhost:8421' }), 403, 'forbidden_origin', 'origin');
      assertJsonError(await challenge(capability, { csrf, kind: 'passkey' }, { origin: 'null' }), 403, 'forbidden_origin', 'origin');
      for (const site of ['cross-site', 'same-site', 'none'])
        assertJsonError(await challenge(capability, { csrf, kind: 'passkey' }, { site }), 403, 'forbidden_origin', 'origin');
    });

    it('an unknown or malformed capability: 404 approval_not_found', async () => {
      const unknown = randomBytes(32).toString('base64url');
      assertJsonError(await challenge(unknown, { csrf: signer.kernel.pageFormToken(unknown, cookie), kind: 'passkey' }), 404, 'approval_not_found');
      for (const malformed of [unknown.slice(0, 42), `${unknown}A`, `${unknown.slice(0, 42)}!`])
        assertJsonError(await challenge(malformed, { csrf, kind: 'passkey' }), 404, 'approval_not_found');
    });

    it('a kind that answers no challenge: 400 invalid_input (kind); passkey on a wallet without one: 403 factor_required; nothing changes', async () => {
      assertJsonError(await challenge(capability, { csrf }), 400, 'invalid_input', 'kind');
      assertJsonError(await challenge(capability, { csrf, kind: 'totp' }), 400, 'invalid_input', 'kind');
      // the page's own request: Origin null under no-referrer, same-origin, a charset in the content type
      const own = await form(signer, `/approve/${capability}/challenge`, new URLSearchParams({ csrf, kind: 'passkey' }).toString(), {
        cookie,
        origin: 'null',
        site: 'same-origin',
        contentType: 'application/x-www-form-urlencoded;charset=UTF-8',
      });
      assertJsonError(own, 403, 'factor_required', 'kind');
      assert.equal(await approvalState(id), 'pending');
    });

    it('a body that is not a form (415) or over 4 KiB (413): JSON errors', async () => {
      const json = await signer.app.inject({
        method: 'POST',
        url: `/approve/${capability}/challenge`,
        headers: { cookie: `custos_form=${cookie}`, origin: ORIGIN },
        payload: { csrf, kind: 'passkey' },
      });
      assertJsonError(json, 415, 'unsupported_media_type');
      assertJsonError(await challenge(capability, { csrf, kind: 'passkey', pad: 'x'.repeat(5000) }), 413, 'body_too_large');
    });

    it('a decision posted with kind passkey and a proof that is not a bounded JSON object: 400 naming proof, the approval still pending', async () => {
      for (const proof of ['', '{', '[]', 'null', `{"id":"${'A'.repeat(16 * 1024)}"}`]) {
        const res = await form(signer, `/approve/${capability}`, { csrf, decision: 'approve', kind: 'passkey', proof }, { cookie });
        assert.equal(res.statusCode, 400, `${proof.slice(0, 20)}: ${res.body}`);
        assert.match(res.body, /data-code="invalid_input" role="alert">The passkey’s answer could not be read\. Nothing was decided\./);
      }
      // a kind that is none of the page's (hwkey is one since issue 12): the form was incomplete
      const bogus = await form(signer, `/approve/${capability}`, { csrf, decision: 'approve', kind: 'smartcard', proof: '{}' }, { cookie });
      assert.equal(bogus.statusCode, 400, bogus.body);
      assert.match(bogus.body, /data-code="invalid_input" role="alert">The form was incomplete\./);
      assert.equal(await approvalState(id), 'pending');
    });
  });
});

describe('passkey steps on a signer without passkeys', () => {
  let signer: TestSigner;
  before(async () => {
    signer = await createTestSigner({ policyDefaults: RAW_HASHES_ALLOWED, startMs: T0, appOptions: { publicUrl: PUBLIC_URL } });
  });
  after(async () => {
    await signer.close();
  });

  it('POST /v1/enrollments kind passkey: 409 passkeys_unavailable; the challenge route: 409 passkeys_unavailable', async () => {
    const link = await signer.app.inject({ method: 'POST', url: '/v1/enrollments', headers: signer.auth(), payload: { walletName: 'np', kind: 'passkey' } });
    assert.equal(link.statusCode, 409, link.body);
    assert.equal(link.json().error.code, 'passkeys_unavailable');
    await signer.app.inject({ method: 'POST', url: '/v1/totp/enroll', headers: signer.auth(), payload: { walletName: 'np' } });
    const app = await signer.kernel.authenticateApiKey(signer.apiKey);
    const created = await signer.kernel.createApproval(app, { walletName: 'np', keyIndex: 0, operation: { hash: HASH } });
    const page = await signer.app.inject({ method: 'GET', url: `/approve/${created.capability}` });
    const cookie = cookieOf(page, '/approve/');
    const res = await form(signer, `/approve/${created.capability}/challenge`, { csrf: csrfOf(page.body), kind: 'passkey' }, { cookie });
    assert.equal(res.statusCode, 409, res.body);
    assert.equal(res.json().error.code, 'passkeys_unavailable');
  });
});

describe('the passkey steps end to end over HTTP, with a registered passkey (the tests’ soft authenticator standing in for the browser)', () => {
  let signer: TestSigner;
  const authenticator = new SoftAuthenticator(ORIGIN);
  let credentialId: string;
  before(async () => {
    signer = await createTestSigner({
      policyDefaults: RAW_HASHES_ALLOWED,
      startMs: T0,
      appOptions: { publicUrl: PUBLIC_URL },
      kernelOptions: { passkeys: PASSKEYS },
    });
  });
  after(async () => {
    await signer.close();
  });

  const dataOf = (body: string, name: string) => JSON.parse(unescapeAttribute(new RegExp(`data-${name}="([^"]*)"`).exec(body)?.[1] ?? 'null'));

  async function createApproval(walletName: string) {
    const app = await signer.kernel.authenticateApiKey(signer.apiKey);
    return signer.kernel.createApproval(app, { walletName, keyIndex: 0, operation: { hash: HASH } });
  }
  async function approvalState(id: string): Promise<string> {
    const app = await signer.kernel.authenticateApiKey(signer.apiKey);
    return (await signer.kernel.getApproval(app, { id })).state;
  }
  async function openApproval(capability: string) {
    const res = await signer.app.inject({ method: 'GET', url: `/approve/${capability}` });
    assert.equal(res.statusCode, 200, res.body);
    return { res, cookie: cookieOf(res, '/approve/'), csrf: csrfOf(res.body) };
  }
  async function challengeFor(capability: string, cookie: string, csrf: string): Promise<{ options: RequestOptionsJSON; expiresAt: number }> {
    const res = await form(signer, `/approve/${capability}/challenge`, { csrf, kind: 'passkey' }, { cookie });
    assert.equal(res.statusCode, 200, res.body);
    assert.equal(res.headers['content-type'], 'application/json; charset=utf-8');
    assert.equal(res.headers['cache-control'], 'no-store');
    return res.json() as { options: RequestOptionsJSON; expiresAt: number };
  }

  it('enrolment: the page’s options → the authenticator’s answer posted as proof → “Passkey active”, stored with enrolledVia page', async () => {
    const link = await signer.app.inject({
      method: 'POST',
      url: '/v1/enrollments',
      headers: signer.auth(),
      payload: { walletName: 'pk-owner', kind: 'passkey' },
    });
    assert.equal(link.statusCode, 201, link.body);
    const path = new URL(link.json().enrollUrl as string).pathname;
    const page = await signer.app.inject({ method: 'GET', url: path });
    const answer = authenticator.create(dataOf(page.body, 'options') as CreationOptionsJSON);
    const res = await form(signer, path, { csrf: csrfOf(page.body), proof: JSON.stringify(answer) }, { cookie: cookieOf(page, '/enroll/') });
    assert.equal(res.statusCode, 200, res.body);
    assert.match(res.body, /<h1>Passkey active<\/h1>/);
    assert.ok(!res.body.includes('<script'), 'the result page runs nothing');
    credentialId = answer.id;
    const rows = await signer.sql('SELECT credential_id, enrolled_via FROM passkey_credentials WHERE wallet_name = $1', 'pk-owner');
    assert.deepEqual(rows, [{ credential_id: credentialId, enrolled_via: 'page' }]);
  });

  it('the approval page of the passkey wallet: Approve with passkey, its scripts under script-src and connect-src by nonce, no code form, the passkey listed', async () => {
    const created = await createApproval('pk-owner');
    const { res } = await openApproval(created.capability);
    const { nonce, srcs } = scriptsOf(res);
    assert.equal(srcs.length, 2);
    assert.equal(res.headers['content-security-policy'], passkeyCsp(nonce, true));
    assert.match(res.body, /id="passkey-approve"/);
    assert.ok(!res.body.includes('name="code"'));
    assert.ok(
      res.body.includes(
        `Passkey <span class="mono">${credentialId.slice(0, 8)}…</span>, registered 2026-12-06 12:00 UTC, added on this signer’s enrolment page`,
      ),
    );
  });

  it('the challenge: options whose challenge is the SHA-256 of this approval’s digest input (32 bytes, base64url) and whose allowCredentials are the wallet’s passkey', async () => {
    const created = await createApproval('pk-owner');
    const { cookie, csrf } = await openApproval(created.capability);
    const { options, expiresAt } = await challengeFor(created.capability, cookie, csrf);
    const challenge = Buffer.from(options.challenge, 'base64url');
    assert.equal(challenge.length, 32);
    assert.equal(challenge.toString('base64url'), options.challenge);
    assert.deepEqual(
      options.allowCredentials?.map((c) => c.id),
      [credentialId],
    );
    assert.equal(options.rpId, 'localhost');
    assert.equal(options.userVerification, 'required');
    assert.equal(expiresAt, created.expiresAt);
    // recomputed from the stored row: SHA-256("custos.approval.v1\0" ‖ signer ‖ approval ‖ opHash ‖ nonce)
    const [row] = await signer.sql('SELECT op_hash, challenge FROM approvals WHERE id = $1', created.id);
    const { nonce } = JSON.parse(String(row?.challenge)) as { nonce: string };
    const expected = createHash('sha256')
      .update(Buffer.from('custos.approval.v1\0', 'utf8'))
      .update(Buffer.from(signer.signerId.replaceAll('-', ''), 'hex'))
      .update(Buffer.from(created.id, 'hex'))
      .update(Buffer.from(String(row?.op_hash).replace(/^0x/, ''), 'hex'))
      .update(Buffer.from(nonce, 'hex'))
      .digest();
    assert.deepEqual(challenge, expected);
    // a new challenge replaces it
    const again = await challengeFor(created.capability, cookie, csrf);
    assert.notEqual(again.options.challenge, options.challenge);
  });

  it('approve with the passkey: the decision form with kind passkey and the answer → Approved; the sign route then signs with the approvalId', async () => {
    const created = await createApproval('pk-owner');
    const { cookie, csrf } = await openApproval(created.capability);
    const { options } = await challengeFor(created.capability, cookie, csrf);
    const proof = JSON.stringify(authenticator.get(options));
    const res = await form(signer, `/approve/${created.capability}`, { csrf, decision: 'approve', kind: 'passkey', proof }, { cookie });
    assert.equal(res.statusCode, 200, res.body);
    assert.match(res.body, /<h1>Approved<\/h1>/);
    assert.equal(await approvalState(created.id), 'approved');
    const signed = await signer.app.inject({
      method: 'POST',
      url: '/v1/sign/hash',
      headers: signer.auth(),
      payload: { walletName: 'pk-owner', keyIndex: 0, hash: HASH, approvalId: created.id },
    });
    assert.equal(signed.statusCode, 200, signed.body);
    // the same answer again: the approval is decided
    const replay = await form(signer, `/approve/${created.capability}`, { csrf, decision: 'approve', kind: 'passkey', proof }, { cookie });
    assert.equal(replay.statusCode, 409, replay.body);
  });

  it('approval A’s answer posted for approval B: 403 passkey_invalid in plain words, B still pending; then the spent challenge: 409 challenge_required', async () => {
    const a = await createApproval('pk-owner');
    const b = await createApproval('pk-owner');
    const pageA = await openApproval(a.capability);
    const pageB = await openApproval(b.capability);
    const { options: optionsA } = await challengeFor(a.capability, pageA.cookie, pageA.csrf);
    await challengeFor(b.capability, pageB.cookie, pageB.csrf);
    const proofA = JSON.stringify(authenticator.get(optionsA));
    const swapped = await form(
      signer,
      `/approve/${b.capability}`,
      { csrf: pageB.csrf, decision: 'approve', kind: 'passkey', proof: proofA },
      { cookie: pageB.cookie },
    );
    assert.equal(swapped.statusCode, 403, swapped.body);
    assert.match(swapped.body, /data-code="passkey_invalid" role="alert">The passkey’s answer did not check out for this request\. Nothing was decided\./);
    assert.match(swapped.body, /id="passkey-approve"/, 'the step again');
    assert.equal(await approvalState(b.id), 'pending');
    // that answer spent B's challenge: the next answer has none to match
    const late = await form(
      signer,
      `/approve/${b.capability}`,
      { csrf: pageB.csrf, decision: 'approve', kind: 'passkey', proof: JSON.stringify(authenticator.get(optionsA)) },
      { cookie: pageB.cookie },
    );
    assert.equal(late.statusCode, 409, late.body);
    assert.match(late.body, /data-code="challenge_required" role="alert">The passkey answered an earlier attempt/);
    assert.equal(await approvalState(b.id), 'pending');
    assert.equal(await approvalState(a.id), 'pending');
  });

  it('a code posted on the passkey wallet’s page: consent_too_weak, said plainly', async () => {
    const created = await createApproval('pk-owner');
    const { cookie, csrf } = await openApproval(created.capability);
    const res = await form(signer, `/approve/${created.capability}`, { csrf, decision: 'approve', code: '123456' }, { cookie });
    assert.equal(res.statusCode, 403, res.body);
    assert.match(res.body, /data-code="consent_too_weak" role="alert">This wallet needs a passkey to approve/);
  });

  it('an authenticator-app link for the passkey wallet: the code form needs the passkey’s consent (code_required naming consent, 400 for unreadable consent), then activates', async () => {
    const link = await signer.app.inject({ method: 'POST', url: '/v1/enrollments', headers: signer.auth(), payload: { walletName: 'pk-owner' } });
    assert.equal(link.statusCode, 201, link.body);
    const path = new URL(link.json().enrollUrl as string).pathname;
    const page = await signer.app.inject({ method: 'GET', url: path });
    assert.equal(page.statusCode, 200, page.body);
    const cookie = cookieOf(page, '/enroll/');
    const csrf = csrfOf(page.body);
    assert.match(page.body, /data-mode="consent"/);
    assert.equal(page.headers['content-security-policy'], passkeyCsp(scriptsOf(page).nonce, false));
    const secret = /<p class="mono secret" aria-label="Secret key">([A-Z2-7 ]+)<\/p>/.exec(page.body)?.[1]?.replaceAll(' ', '');
    assert.ok(secret !== undefined, 'the key is shown');
    recordTestSecret('totp secret', secret);
    const code = totpFromUri(`otpauth://totp/Custos:pk-owner?secret=${secret}&issuer=Custos`, signer.clock.now);
    const missing = await form(signer, path, { csrf, code }, { cookie });
    assert.equal(missing.statusCode, 403, missing.body);
    assert.match(missing.body, /data-code="code_required" role="alert">This wallet already has a passkey: confirm the new factor with it\./);
    const unreadable = await form(signer, path, { csrf, code, consent: '[]' }, { cookie });
    assert.equal(unreadable.statusCode, 400, unreadable.body);
    assert.match(unreadable.body, /data-code="invalid_input" role="alert">The confirmation of this wallet’s passkey could not be read\./);
    const consent = JSON.stringify(authenticator.get(dataOf(page.body, 'consent') as RequestOptionsJSON));
    const done = await form(signer, path, { csrf, code, consent }, { cookie });
    assert.equal(done.statusCode, 200, done.body);
    // Issue 13: added to a wallet that has a factor, it takes effect after the timelock's delay.
    assert.match(done.body, /Change requested/);
    signer.clock.now += signer.kernel.timelockDelayMs;
    assert.equal(await signer.kernel.applyDueChanges(), 1);
  });
});
