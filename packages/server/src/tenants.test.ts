import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createApiKey } from '@custos/kernel';
import { RAW_HASHES_ALLOWED, createTestSigner, recordTestSecret, type TestSigner } from './testing/createTestSigner.js';
import { totpFromUri } from './testing/totpFromUri.js';

// Issue 9, point 5: backends are kept apart. Tenant A is the signer's own key (tenant `default`);
// tenant B is a second backend with every scope a backend may hold. Each test is an attack by B.

const T0 = Date.UTC(2026, 10, 22, 12, 0, 15);
const HASH = `0x${'aa'.repeat(32)}`;
const WRONG = (code: string) => String((Number(code) + 1) % 1_000_000).padStart(6, '0');

describe('tenants: a key of one tenant cannot see or touch another tenant’s wallets', () => {
  let signer: TestSigner;
  let keyB: string;
  before(async () => {
    signer = await createTestSigner({ policyDefaults: RAW_HASHES_ALLOWED, startMs: T0 });
    ({ token: keyB } = await createApiKey(signer.store, { name: 'backend b', tenant: 'tenant-b', scopes: ['register', 'derive', 'sign'] }));
    recordTestSecret('apiKey', keyB);
  });
  after(async () => {
    await signer.close();
  });

  const enroll = (walletName: string, key = signer.apiKey) =>
    signer.app.inject({ method: 'POST', url: '/v1/totp/enroll', headers: signer.auth(key), payload: { walletName } });
  const sign = (body: Record<string, unknown>, key = signer.apiKey) =>
    signer.app.inject({ method: 'POST', url: '/v1/sign/hash', headers: signer.auth(key), payload: { keyIndex: 0, hash: HASH, ...body } });
  const derive = (walletName: string, key = signer.apiKey) =>
    signer.app.inject({ method: 'GET', url: `/v1/keys?walletName=${encodeURIComponent(walletName)}&keyIndex=0`, headers: signer.auth(key) });
  const wallets = (walletName: string, key = signer.apiKey) =>
    signer.app.inject({ method: 'GET', url: `/v1/wallets?walletName=${encodeURIComponent(walletName)}`, headers: signer.auth(key) });

  function assertNotFound(res: Awaited<ReturnType<typeof sign>>): void {
    assert.equal(res.statusCode, 404, res.body);
    assert.equal(res.json().error.code, 'wallet_not_found');
    assert.equal(res.json().error.details.field, 'walletName');
    assert.equal(res.json().r, undefined);
  }

  async function factorState(walletName: string) {
    const [row] = await signer.sql('SELECT failures, locked_until_ms, last_accepted_step FROM totp_factors WHERE wallet_name = $1', walletName);
    assert.ok(row);
    return { failures: Number(row.failures), lockedUntilMs: row.locked_until_ms, lastAcceptedStep: row.last_accepted_step };
  }

  async function enrolled(walletName: string): Promise<string> {
    const res = await enroll(walletName);
    assert.equal(res.statusCode, 200, res.body);
    return res.json().otpauthUri as string;
  }

  it('an enrolled wallet of A answers wallet_not_found to every call of B: derive, wallets, enrol, sign with and without a code', async () => {
    signer.clock.now = T0;
    const uri = await enrolled('a-alice');
    const before = await factorState('a-alice');
    assertNotFound(await derive('a-alice', keyB));
    assertNotFound(await wallets('a-alice', keyB));
    assertNotFound(await enroll('a-alice', keyB)); // not already_enrolled: B learns nothing
    assertNotFound(await sign({ walletName: 'a-alice' }, keyB)); // not code_required
    assertNotFound(await sign({ walletName: 'a-alice', code: totpFromUri(uri, T0) }, keyB)); // even with the right code
    // a name B never saw and a name A owns answer alike
    assertNotFound(await wallets('nobody-at-all', keyB));
    assert.deepEqual(await factorState('a-alice'), before);
    const denied = await signer.sql("SELECT reason FROM audit_log WHERE wallet_name = $1 AND decision = 'denied' ORDER BY seq", 'a-alice');
    assert.deepEqual(
      denied.map((r) => r.reason),
      ['wallet_not_found', 'wallet_not_found', 'wallet_not_found', 'wallet_not_found'],
    );
    // A is served as before; the code B presented was never consumed
    assert.equal((await wallets('a-alice')).json().factors[0], 'totp');
    assert.equal((await sign({ walletName: 'a-alice', code: totpFromUri(uri, T0) })).statusCode, 200);
  });

  it('B cannot lock A’s owner out: wrong codes from B are refused before the factor is read, A’s failures stay 0', async () => {
    signer.clock.now = T0;
    const uri = await enrolled('a-bob');
    const code = totpFromUri(uri, T0);
    for (let i = 0; i < 10; i += 1) assertNotFound(await sign({ walletName: 'a-bob', code: WRONG(code) }, keyB));
    assert.deepEqual(await factorState('a-bob'), { failures: 0, lockedUntilMs: null, lastAcceptedStep: null });
    const res = await sign({ walletName: 'a-bob', code });
    assert.equal(res.statusCode, 200, res.body);
  });

  it('B cannot sign for A’s never-enrolled wallets (named by A through a derive or a signature)', async () => {
    signer.clock.now = T0;
    assert.equal((await derive('a-derived')).statusCode, 200);
    assert.equal((await sign({ walletName: 'a-signed' })).statusCode, 200);
    for (const walletName of ['a-derived', 'a-signed']) {
      assertNotFound(await sign({ walletName }, keyB));
      assertNotFound(await derive(walletName, keyB));
      assertNotFound(await enroll(walletName, keyB)); // nor put its own factor on it
    }
    const rows = await signer.sql("SELECT name, tenant FROM wallets WHERE name IN ('a-derived', 'a-signed') ORDER BY name");
    assert.deepEqual(rows, [
      { name: 'a-derived', tenant: 'default' },
      { name: 'a-signed', tenant: 'default' },
    ]);
    assert.equal(Number((await signer.sql("SELECT count(*) AS n FROM totp_factors WHERE wallet_name IN ('a-derived', 'a-signed')"))[0]?.n), 0);
  });

  it('wallet names are global: the first tenant to name a wallet owns it, and the other is refused', async () => {
    signer.clock.now = T0;
    assert.equal((await derive('b-first', keyB)).statusCode, 200);
    assertNotFound(await enroll('b-first'));
    assertNotFound(await sign({ walletName: 'b-first' }));
    const res = await enroll('b-first', keyB);
    assert.equal(res.statusCode, 200, res.body);
    assert.deepEqual(await signer.sql('SELECT tenant FROM wallets WHERE name = $1', 'b-first'), [{ tenant: 'tenant-b' }]);
    // within its own tenant B has the usual semantics: a code is required now
    assert.equal((await sign({ walletName: 'b-first' }, keyB)).json().error.code, 'code_required');
  });

  describe('compatibility API (/sys/v1): the plugin’s semantics within one tenant', () => {
    async function session(apiKey: string): Promise<string> {
      const res = await signer.app.inject({ method: 'POST', url: '/sys/v1/session/auth', headers: { authorization: `Basic ${apiKey}` } });
      assert.equal(res.statusCode, 200, res.body);
      recordTestSecret('accessToken', res.json().access_token);
      return res.json().access_token as string;
    }
    const plugin = (bearer: string, payload: Record<string, unknown>) =>
      signer.app.inject({
        method: 'POST',
        url: `/sys/v1/plugins/${signer.signerId}`,
        headers: { authorization: `Bearer ${bearer}`, 'content-type': 'application/json' },
        payload: JSON.stringify(payload),
      });

    it('B’s session gets wallet_not_found for A’s wallets on register, getPubKey and sign; within B, unenrolled signs and enrolled needs a code', async () => {
      signer.clock.now = T0;
      const [bearerA, bearerB] = [await session(signer.apiKey), await session(keyB)];
      const uri = (await plugin(bearerA, { operation: 'register', walletName: 'compat-a' })).json().url as string;
      assert.equal((await plugin(bearerA, { operation: 'getPubKey', walletName: 'compat-a-plain', keyIndex: '0' })).statusCode, 200);
      for (const walletName of ['compat-a', 'compat-a-plain']) {
        assertNotFound(await plugin(bearerB, { operation: 'register', walletName }));
        assertNotFound(await plugin(bearerB, { operation: 'getPubKey', walletName, keyIndex: '0' }));
        assertNotFound(await plugin(bearerB, { operation: 'sign', walletName, keyIndex: '0', msgHash: 'cd'.repeat(32) }));
      }
      assertNotFound(
        await plugin(bearerB, { operation: 'sign', walletName: 'compat-a', keyIndex: '0', msgHash: 'cd'.repeat(32), code: WRONG(totpFromUri(uri, T0)) }),
      );
      assert.equal((await factorState('compat-a')).failures, 0);
      // B's own wallets: the plugin's semantics
      const signed = await plugin(bearerB, { operation: 'sign', walletName: 'compat-b', keyIndex: '0', msgHash: 'cd'.repeat(32) });
      assert.equal(signed.statusCode, 200, signed.body);
      const uriB = (await plugin(bearerB, { operation: 'register', walletName: 'compat-b2' })).json().url as string;
      const codeRequired = await plugin(bearerB, { operation: 'sign', walletName: 'compat-b2', keyIndex: '0', msgHash: 'cd'.repeat(32) });
      assert.equal(codeRequired.json().error.code, 'code_required');
      const withCode = await plugin(bearerB, {
        operation: 'sign',
        walletName: 'compat-b2',
        keyIndex: '0',
        msgHash: 'cd'.repeat(32),
        code: totpFromUri(uriB, T0),
      });
      assert.equal(withCode.statusCode, 200, withCode.body);
      // and A's code still signs for A
      assert.equal(
        (await plugin(bearerA, { operation: 'sign', walletName: 'compat-a', keyIndex: '0', msgHash: 'cd'.repeat(32), code: totpFromUri(uri, T0) })).statusCode,
        200,
      );
    });
  });
});

describe('tenants: admin is an operator scope', () => {
  it('createApiKey refuses admin for any tenant but system; a key of system may hold it', async () => {
    const signer = await createTestSigner({ policyDefaults: RAW_HASHES_ALLOWED });
    try {
      for (const tenant of [undefined, 'default', 'tenant-b']) {
        await assert.rejects(
          createApiKey(signer.store, { name: 'ops', scopes: ['admin'], ...(tenant === undefined ? {} : { tenant }) }),
          (error: Error & { code?: string }) => {
            assert.equal(error.code, 'invalid_input');
            assert.match(error.message, /operator tenant 'system'/);
            return true;
          },
        );
      }
      await assert.rejects(createApiKey(signer.store, { name: 'x', scopes: ['derive'], tenant: 'Not A Tenant' }), { code: 'invalid_input' });
      assert.equal(Number((await signer.sql("SELECT count(*) AS n FROM api_keys WHERE name = 'ops'"))[0]?.n), 0);
      const ops = await createApiKey(signer.store, { name: 'ops', scopes: ['admin'], tenant: 'system' });
      recordTestSecret('apiKey', ops.token);
      assert.equal(ops.record.tenant, 'system');
    } finally {
      await signer.close();
    }
  });

  it('a key whose row holds admin outside the system tenant (written behind the kernel’s back) cannot seal: forbidden_scope', async () => {
    const signer = await createTestSigner({ policyDefaults: RAW_HASHES_ALLOWED });
    try {
      const { id, token } = await createApiKey(signer.store, { name: 'ops', scopes: ['admin', 'derive'], tenant: 'system' });
      recordTestSecret('apiKey', token);
      await signer.sql("UPDATE api_keys SET tenant = 'default' WHERE id = $1", id);
      const res = await signer.app.inject({ method: 'POST', url: '/v1/sys/seal', headers: signer.auth(token) });
      assert.equal(res.statusCode, 403, res.body);
      assert.equal(res.json().error.code, 'forbidden_scope');
      assert.equal(signer.kernel.sealed, false);
    } finally {
      await signer.close();
    }
  });
});
