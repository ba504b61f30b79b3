import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createApiKey, loadVectors, revokeApiKey } from '@custos/kernel';
import { createTestSigner, recordTestSecret, type TestSigner } from './testing/createTestSigner.js';
import { totpFromUri } from './testing/totpFromUri.js';
import { findRecoveryId, verifySignature } from './testing/verifySignature.js';

interface FortanixVector {
  walletName: string;
  keyIndex: string;
  publicKey: string;
  address: string;
}
const vectors = loadVectors<{ fortanixV1: { vectors: FortanixVector[] } }>('secp256k1-ethereum.json').fortanixV1.vectors;
const T0 = Date.UTC(2026, 10, 22, 12, 0, 15);
const MSG = 'cd'.repeat(32);

describe('TOTP ETH Signer compatibility API (/sys/v1)', () => {
  let signer: TestSigner;
  let token: string;
  before(async () => {
    signer = await createTestSigner({ derivation: 'fortanix-v1', startMs: T0 });
    token = await session(signer, signer.apiKey);
  });
  after(async () => {
    await signer.close();
  });

  async function session(s: TestSigner, apiKey: string): Promise<string> {
    const res = await s.app.inject({ method: 'POST', url: '/sys/v1/session/auth', headers: { authorization: `Basic ${apiKey}` } });
    assert.equal(res.statusCode, 200, res.body);
    const body = res.json();
    assert.equal(body.token_type, 'Bearer');
    assert.equal(typeof body.expires_in, 'number');
    recordTestSecret('accessToken', body.access_token);
    return body.access_token as string;
  }

  function plugin(
    payload: unknown,
    {
      bearer = token,
      signerId = signer.signerId,
      contentType = 'application/json',
    }: { bearer?: string; signerId?: string; contentType?: string | undefined } = {},
  ) {
    const headers: Record<string, string> = { authorization: `Bearer ${bearer}` };
    if (contentType !== undefined) headers['content-type'] = contentType;
    return signer.app.inject({
      method: 'POST',
      url: `/sys/v1/plugins/${signerId}`,
      headers,
      payload: typeof payload === 'string' ? payload : JSON.stringify(payload),
    });
  }

  it('session/auth: the API key verbatim as Basic credential → bearer; a wrong key → 401', async () => {
    const wrong = await signer.app.inject({ method: 'POST', url: '/sys/v1/session/auth', headers: { authorization: `Basic ${signer.apiKey.slice(0, -1)}x` } });
    assert.equal(wrong.statusCode, 401);
    assert.equal(wrong.json().error.code, 'unauthorized');
    const userPass = await signer.app.inject({
      method: 'POST',
      url: '/sys/v1/session/auth',
      headers: { authorization: `Basic ${Buffer.from('user:pass').toString('base64')}` },
    });
    assert.equal(userPass.statusCode, 401);
    const none = await signer.app.inject({ method: 'POST', url: '/sys/v1/session/auth' });
    assert.equal(none.statusCode, 401);
  });

  it('plugins: no session → 401, a made-up token → 401, unknown signerId → 404', async () => {
    const op = { operation: 'getPubKey', walletName: 'x', keyIndex: '0' };
    const noAuth = await signer.app.inject({ method: 'POST', url: `/sys/v1/plugins/${signer.signerId}`, payload: op });
    assert.equal(noAuth.statusCode, 401);
    const fake = await plugin(op, { bearer: 'A'.repeat(43) });
    assert.equal(fake.statusCode, 401);
    assert.equal(fake.json().error.code, 'unauthorized');
    const apiKeyAsBearer = await plugin(op, { bearer: signer.apiKey });
    assert.equal(apiKeyAsBearer.statusCode, 401);
    const unknown = await plugin(op, { signerId: '00000000-0000-4000-8000-000000000000' });
    assert.equal(unknown.statusCode, 404);
    assert.equal(unknown.json().error.code, 'signer_not_found');
  });

  it('getPubKey returns the plugin’s addresses for the same seed (fortanix-v1 vectors)', async () => {
    for (const v of vectors) {
      const res = await plugin({ operation: 'getPubKey', walletName: v.walletName, keyIndex: v.keyIndex });
      assert.equal(res.statusCode, 200, res.body);
      assert.deepEqual(res.json(), { xpub: v.publicKey });
    }
  });

  it('the body is JSON whatever the Content-Type (text/plain, form, none)', async () => {
    const v = vectors[0];
    assert.ok(v);
    for (const contentType of ['text/plain', 'application/x-www-form-urlencoded', 'application/octet-stream', '', 'text', 'a;b', undefined]) {
      const res = await plugin({ operation: 'getPubKey', walletName: v.walletName, keyIndex: v.keyIndex }, { contentType });
      assert.equal(res.statusCode, 200, `${contentType}: ${res.body}`);
      assert.equal(res.json().xpub, v.publicKey);
    }
  });

  it('sign on a wallet never enrolled: no code needed; r, s low-s and xpub let the SDK compute v', async () => {
    const v = vectors[1];
    assert.ok(v);
    const res = await plugin({ operation: 'sign', walletName: v.walletName, keyIndex: v.keyIndex, msgHash: MSG });
    assert.equal(res.statusCode, 200, res.body);
    const { r, s, xpub } = res.json();
    assert.equal(xpub, v.publicKey);
    assert.match(r, /^[0-9a-f]{64}$/);
    assert.match(s, /^[0-9a-f]{64}$/);
    assert.ok(verifySignature({ r, s, hash: MSG, publicKey: xpub }), 'verifies, low-s');
    assert.notEqual(findRecoveryId({ r, s, hash: MSG, publicKey: xpub }), undefined);
  });

  it('register → otpauth url and security_object; twice → 409 already_enrolled', async () => {
    const res = await plugin({ operation: 'register', walletName: 'carol@acme.com' });
    assert.equal(res.statusCode, 200, res.body);
    const { url, security_object } = res.json();
    assert.equal(security_object, 'totp/carol@acme.com');
    const parsed = new URL(url);
    assert.equal(parsed.protocol, 'otpauth:');
    for (const [k, want] of [
      ['issuer', 'Custos'],
      ['algorithm', 'SHA1'],
      ['digits', '6'],
      ['period', '30'],
    ] as const)
      assert.equal(parsed.searchParams.get(k), want);
    assert.match(parsed.searchParams.get('secret') ?? '', /^[A-Z2-7]{32}$/);
    const twice = await plugin({ operation: 'register', walletName: 'carol@acme.com' });
    assert.equal(twice.statusCode, 409);
    assert.equal(twice.json().error.code, 'already_enrolled');
  });

  it('sign on an enrolled wallet: code required, ±1 step only, single use, throttled', async () => {
    signer.clock.now = T0;
    const reg = await plugin({ operation: 'register', walletName: 'dave' });
    const uri = reg.json().url as string;
    const op = { operation: 'sign', walletName: 'dave', keyIndex: '0', msgHash: MSG };
    assert.equal((await plugin(op)).json().error.code, 'code_required');
    // The plugin accepted ±5 steps; Custos accepts ±1.
    for (const offset of [-5, -3, 2, 5])
      assert.equal((await plugin({ ...op, code: totpFromUri(uri, T0, offset) })).json().error.code, 'code_invalid', `offset ${offset}`);
    const code = totpFromUri(uri, T0);
    // 4 failures so far; the fifth attempt (right code) succeeds and resets the counter.
    const ok = await plugin({ ...op, code });
    assert.equal(ok.statusCode, 200, ok.body);
    assert.ok(verifySignature({ r: ok.json().r, s: ok.json().s, hash: MSG, publicKey: ok.json().xpub }));
    assert.equal((await plugin({ ...op, code })).json().error.code, 'code_reused');
    // The plugin never throttled: here 5 consecutive failures lock the factor (the reuse above is
    // not one: a retried code is never charged).
    for (let i = 0; i < 5; i++)
      assert.equal((await plugin({ ...op, code: code === '999999' ? '999998' : '999999' })).json().error.code, 'code_invalid', `wrong code ${i + 1}`);
    const locked = await plugin({ ...op, code: totpFromUri(uri, T0, 1) });
    assert.equal(locked.statusCode, 429);
    assert.equal(locked.json().error.code, 'factor_throttled');
  });

  it('fail closed where the plugin signed: an enrolled wallet whose TOTP record cannot be read is refused', async () => {
    signer.clock.now = T0;
    const reg = await plugin({ operation: 'register', walletName: 'erin' });
    await signer.sql("UPDATE totp_factors SET secret_envelope = 'v1.garbage.garbage' WHERE wallet_name = 'erin'");
    const res = await plugin({ operation: 'sign', walletName: 'erin', keyIndex: '0', msgHash: MSG, code: totpFromUri(reg.json().url, T0) });
    assert.equal(res.statusCode, 503);
    assert.equal(res.json().error.code, 'record_unreadable');
    assert.equal(res.json().r, undefined);
  });

  it('scopes apply to the plugin operations; a revoked key ends its sessions; sessions expire', async () => {
    const { token: deriveOnly } = await createApiKey(signer.store, { name: 'derive-only', scopes: ['derive'] });
    const limited = await session(signer, deriveOnly);
    assert.equal((await plugin({ operation: 'getPubKey', walletName: 'x', keyIndex: '0' }, { bearer: limited })).statusCode, 200);
    const denied = await plugin({ operation: 'sign', walletName: 'x', keyIndex: '0', msgHash: MSG }, { bearer: limited });
    assert.equal(denied.statusCode, 403);
    assert.equal(denied.json().error.code, 'forbidden_scope');
    const reg = await plugin({ operation: 'register', walletName: 'y' }, { bearer: limited });
    assert.equal(reg.json().error.code, 'forbidden_scope');

    const [id] = deriveOnly.split('.').slice(1);
    assert.ok(id);
    await revokeApiKey(signer.store, id);
    assert.equal((await plugin({ operation: 'getPubKey', walletName: 'x', keyIndex: '0' }, { bearer: limited })).statusCode, 401);

    const fresh = await session(signer, signer.apiKey);
    signer.clock.now += 901_000;
    const expired = await plugin({ operation: 'getPubKey', walletName: 'x', keyIndex: '0' }, { bearer: fresh });
    assert.equal(expired.statusCode, 401);
    assert.equal(expired.json().error.code, 'unauthorized');
    // Expired sessions are swept from the store when new ones are made.
    const count = async () => Number((await signer.sql('SELECT count(*) AS n FROM sessions WHERE expires_at <= $1', signer.clock.now))[0]?.n);
    assert.ok((await count()) >= 1);
    await session(signer, signer.apiKey);
    assert.equal(await count(), 0);
    signer.clock.now = T0;
  });

  it('while sealed the compatibility API answers 503 sealed', async () => {
    signer.kernel.seal();
    try {
      const res = await plugin({ operation: 'getPubKey', walletName: 'x', keyIndex: '0' });
      assert.equal(res.statusCode, 503);
      assert.equal(res.json().error.code, 'sealed');
      const auth = await signer.app.inject({ method: 'POST', url: '/sys/v1/session/auth', headers: { authorization: `Basic ${signer.apiKey}` } });
      assert.equal(auth.json().error.code, 'sealed');
    } finally {
      await signer.kernel.unseal(new TextEncoder().encode((await import('./testing/createTestSigner.js')).TEST_PASSPHRASE));
    }
  });
});
