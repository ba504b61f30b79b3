import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { LightMyRequestResponse } from 'fastify';
import { openStore } from './openStore.js';
import { createTestSigner, recordTestSecret, runSql, type TestSigner } from './testing/createTestSigner.js';
import { adminSet, bootstrapTestQuorum, newTestAdmin } from './testing/testAdmins.js';

// API keys over the API (issue 15 point 5): only an operator key manages them; a key's expiry and
// wallet-name prefix hold on every route family (native /v1, compatibility /sys/v1, JSON-RPC,
// approvals), and a database writer who lifts either is refused. One signer for the file (operator
// key of tenant `system`); the clock is the test's.

const T0 = Date.UTC(2026, 11, 7, 12, 0, 0);
const HASH = `0x${'ab'.repeat(32)}`;
let signer: TestSigner;

before(async () => {
  signer = await createTestSigner({ scopes: ['admin'], startMs: T0 });
});
after(async () => {
  await signer.close();
});

function call(method: 'GET' | 'POST' | 'DELETE', url: string, key: string, payload?: unknown): Promise<LightMyRequestResponse> {
  return signer.app.inject({ method, url, headers: signer.auth(key), ...(payload === undefined ? {} : { payload: payload as object }) });
}

function expectError(res: LightMyRequestResponse, status: number, code: string, field?: string): void {
  assert.equal(res.statusCode, status, res.body);
  assert.equal(res.json().error.code, code, res.body);
  if (field !== undefined) assert.equal(res.json().error.details.field, field, res.body);
}

async function createKey(body: Record<string, unknown>): Promise<{ token: string; id: string }> {
  const res = await call('POST', '/v1/apikeys', signer.apiKey, body);
  assert.equal(res.statusCode, 200, res.body);
  const { token, apiKey } = res.json() as { token: string; apiKey: { id: string } };
  recordTestSecret('apiKey', token);
  return { token, id: apiKey.id };
}

function compatSession(key: string): Promise<LightMyRequestResponse> {
  return signer.app.inject({ method: 'POST', url: '/sys/v1/session/auth', headers: { authorization: `Basic ${key}` } });
}

function compatPubKey(bearer: string, walletName: string): Promise<LightMyRequestResponse> {
  return signer.app.inject({
    method: 'POST',
    url: `/sys/v1/plugins/${signer.signerId}`,
    headers: { authorization: `Bearer ${bearer}`, 'content-type': 'application/json' },
    payload: JSON.stringify({ operation: 'getPubKey', walletName, keyIndex: '0' }),
  });
}

describe('API keys over the API', () => {
  let backend: { token: string; id: string };
  before(async () => {
    backend = await createKey({ name: 'backend', scopes: ['register', 'derive', 'sign'] });
  });

  it('only an operator (admin) key lists, creates or revokes keys; the list shows no secret', async () => {
    expectError(await call('GET', '/v1/apikeys', backend.token), 403, 'forbidden_scope');
    expectError(await call('POST', '/v1/apikeys', backend.token, { name: 'mine', scopes: ['sign'] }), 403, 'forbidden_scope');
    expectError(await call('DELETE', `/v1/apikeys?id=${backend.id}`, backend.token), 403, 'forbidden_scope');
    expectError(await call('GET', '/v1/apikeys', 'ck1.0000000000000000.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'), 401, 'unauthorized');
    const list = await call('GET', '/v1/apikeys', signer.apiKey);
    assert.equal(list.statusCode, 200, list.body);
    const keys = list.json().apiKeys as Array<Record<string, unknown>>;
    const mine = keys.find((k) => k.id === backend.id);
    assert.deepEqual(mine && { ...mine, createdAt: 0, lastUsedAt: 0 }, {
      id: backend.id,
      name: 'backend',
      tenant: 'default',
      scopes: ['register', 'derive', 'sign'],
      createdAt: 0,
      revokedAt: null,
      expiresAt: null,
      walletPrefix: null,
      lastUsedAt: 0,
    });
    assert.ok(!list.body.includes(backend.token.split('.')[2] ?? '-'), 'no secret in the list');
  });

  it('bad input is 400 naming the field; admin only on tenant system; no prefix on an admin key', async () => {
    expectError(await call('POST', '/v1/apikeys', signer.apiKey, { name: 'x', scopes: ['sign', 'bogus'] }), 400, 'invalid_input');
    expectError(await call('POST', '/v1/apikeys', signer.apiKey, { name: 'a\nb', scopes: ['sign'] }), 400, 'invalid_input', 'name');
    expectError(await call('POST', '/v1/apikeys', signer.apiKey, { name: 'x', scopes: ['admin'] }), 400, 'invalid_input', 'scopes');
    expectError(
      await call('POST', '/v1/apikeys', signer.apiKey, { name: 'x', scopes: ['admin'], tenant: 'system', walletPrefix: 'a' }),
      400,
      'invalid_input',
      'walletPrefix',
    );
    expectError(
      await call('POST', '/v1/apikeys', signer.apiKey, { name: 'x', scopes: ['sign'], walletPrefix: 'a\u0000' }),
      400,
      'invalid_input',
      'walletPrefix',
    );
    expectError(await call('POST', '/v1/apikeys', signer.apiKey, { name: 'x', scopes: ['sign'], expiresInSeconds: 59 }), 400, 'invalid_input');
    expectError(await call('DELETE', '/v1/apikeys?id=nothex', signer.apiKey), 400, 'invalid_input');
    expectError(await call('DELETE', `/v1/apikeys?id=${'0'.repeat(16)}`, signer.apiKey), 404, 'not_found', 'id');
  });

  it('a key with a wallet prefix reaches only its tenant’s wallets named so: native, approvals, JSON-RPC and compatibility routes', async () => {
    const shop = await createKey({ name: 'shop backend', scopes: ['register', 'derive', 'sign'], walletPrefix: 'shop-' });
    // The wallets outside the prefix exist (made by the tenant's unrestricted key): refused as unknown, not as absent.
    const outside = ['other', 'shop', 'shop_', 'Shop-a', 'SHOP-a', '\u0455hop-a', 'shop\u2010a', ' shop-a', 'xshop-a'];
    for (const walletName of outside)
      assert.equal((await call('GET', `/v1/keys?walletName=${encodeURIComponent(walletName)}&keyIndex=0`, backend.token)).statusCode, 200);
    const session = (await compatSession(shop.token)).json().access_token as string;
    recordTestSecret('accessToken', session);
    // The writer is another process: its own connection to the store (as an attacker with the database's credentials would have).
    const writer = await openStore(signer.location);
    const dbWriter = (sql: string, ...params: unknown[]) => runSql(writer, sql, params);
    after(() => writer.close());
    for (const walletName of outside) {
      const q = encodeURIComponent(walletName);
      expectError(await call('GET', `/v1/keys?walletName=${q}&keyIndex=0`, shop.token), 404, 'wallet_not_found');
      expectError(await call('GET', `/v1/wallets?walletName=${q}`, shop.token), 404, 'wallet_not_found');
      expectError(await call('POST', '/v1/sign/hash', shop.token, { walletName, keyIndex: 0, hash: HASH }), 404, 'wallet_not_found');
      expectError(await call('POST', '/v1/totp/enroll', shop.token, { walletName }), 404, 'wallet_not_found');
      // out of the key's reach: wallet_not_found as on every route (not consent_not_required, which says it would sign without one), and no approval made
      expectError(await call('POST', '/v1/approvals', shop.token, { walletName, keyIndex: 0, operation: { hash: HASH } }), 404, 'wallet_not_found');
      expectError(await call('POST', '/v1/rpc/accounts', shop.token, { walletName, keyIndex: 0 }), 404, 'wallet_not_found');
      const compat = await compatPubKey(session, walletName);
      assert.ok(compat.statusCode >= 400 && compat.statusCode < 500, compat.body);
      assert.match(compat.body, /wallet_not_found/);
    }
    assert.deepEqual(await dbWriter('SELECT id FROM approvals'), []);
    // A name never seen is not created by the restricted key either.
    expectError(await call('GET', '/v1/keys?walletName=brand-new&keyIndex=0', shop.token), 404, 'wallet_not_found');
    assert.deepEqual(await dbWriter('SELECT name FROM wallets WHERE name = $1', 'brand-new'), []);
    // Inside the prefix every family works.
    assert.equal((await call('GET', '/v1/keys?walletName=shop-a&keyIndex=0', shop.token)).statusCode, 200);
    assert.equal((await call('POST', '/v1/rpc/accounts', shop.token, { walletName: 'shop-a', keyIndex: 0 })).statusCode, 200);
    assert.equal((await compatPubKey(session, 'shop-a')).statusCode, 200);
    // The JSON-RPC address book: the restricted key sees only its wallets' entries; eth_accounts likewise.
    assert.equal((await call('POST', '/v1/rpc/accounts', backend.token, { walletName: 'other', keyIndex: 0 })).statusCode, 200);
    const book = (await call('GET', '/v1/rpc/accounts', shop.token)).json().accounts as Array<{ walletName: string }>;
    assert.deepEqual(
      book.map((a) => a.walletName),
      ['shop-a'],
    );
    const accounts = await call('POST', '/v1/rpc', shop.token, { jsonrpc: '2.0', id: 1, method: 'eth_accounts', params: [] });
    assert.equal(accounts.json().result.length, 1, accounts.body);
    // An approval of another wallet of the tenant, read by id with the restricted key: not found.
    const list = (await call('GET', '/v1/apikeys', signer.apiKey)).json().apiKeys as Array<{ id: string; walletPrefix: string | null }>;
    assert.equal(list.find((k) => k.id === shop.id)?.walletPrefix, 'shop-');
  });

  it('an expired key is refused everywhere (native, compatibility login and its open session); the list shows its expiry and last use', async () => {
    const shortLived = await createKey({ name: 'short-lived', scopes: ['derive', 'sign'], expiresInSeconds: 600 });
    assert.equal((await call('GET', '/v1/keys?walletName=exp-a&keyIndex=0', shortLived.token)).statusCode, 200);
    const session = (await compatSession(shortLived.token)).json().access_token as string;
    recordTestSecret('accessToken', session);
    const view = ((await call('GET', '/v1/apikeys', signer.apiKey)).json().apiKeys as Array<Record<string, unknown>>).find((k) => k.id === shortLived.id);
    assert.equal(view?.expiresAt, signer.clock.now + 600_000);
    assert.equal(view?.lastUsedAt, signer.clock.now);
    signer.clock.now += 600_000;
    expectError(await call('GET', '/v1/keys?walletName=exp-a&keyIndex=0', shortLived.token), 401, 'unauthorized');
    expectError(await call('POST', '/v1/sign/hash', shortLived.token, { walletName: 'exp-a', keyIndex: 0, hash: HASH }), 401, 'unauthorized');
    expectError(await call('POST', '/v1/rpc', shortLived.token, { jsonrpc: '2.0', id: 1, method: 'eth_accounts', params: [] }), 401, 'unauthorized');
    expectError(await compatSession(shortLived.token), 401, 'unauthorized');
    assert.equal((await compatPubKey(session, 'exp-a')).statusCode, 401);
  });

  it('a database writer who lifts a key’s wallet prefix or expiry is refused (record_unreadable, 503), on the compatibility session too', async () => {
    const shop = await createKey({ name: 'shop 2', scopes: ['derive'], walletPrefix: 'shop-', expiresInSeconds: 3600 });
    const session = (await compatSession(shop.token)).json().access_token as string;
    recordTestSecret('accessToken', session);
    // The writer is another process: its own connection to the store (as an attacker with the database's credentials would have).
    const writer = await openStore(signer.location);
    const dbWriter = (sql: string, ...params: unknown[]) => runSql(writer, sql, params);
    after(() => writer.close());
    await dbWriter('UPDATE api_keys SET wallet_prefix = NULL WHERE id = $1', shop.id);
    expectError(await call('GET', '/v1/keys?walletName=other&keyIndex=0', shop.token), 503, 'record_unreadable');
    expectError(await compatPubKey(session, 'other'), 503, 'record_unreadable');
    await dbWriter('UPDATE api_keys SET wallet_prefix = $1 WHERE id = $2', 'sho', shop.id);
    expectError(await call('GET', '/v1/keys?walletName=shop-a&keyIndex=0', shop.token), 503, 'record_unreadable');
    await dbWriter('UPDATE api_keys SET wallet_prefix = $1, expires_at = NULL WHERE id = $2', 'shop-', shop.id);
    expectError(await call('GET', '/v1/keys?walletName=shop-a&keyIndex=0', shop.token), 503, 'record_unreadable');
    // Put back as created: it works again (the refusals were audited apikey.use).
    const created = ((await call('GET', '/v1/apikeys', signer.apiKey)).json().apiKeys as Array<{ id: string; createdAt: number }>).find(
      (k) => k.id === shop.id,
    );
    await dbWriter('UPDATE api_keys SET expires_at = $1 WHERE id = $2', (created?.createdAt ?? 0) + 3_600_000, shop.id);
    assert.equal((await call('GET', '/v1/keys?walletName=shop-a&keyIndex=0', shop.token)).statusCode, 200);
    const denials = await dbWriter("SELECT COUNT(*) AS n FROM audit_log WHERE action = 'apikey.use' AND app_id = $1", shop.id);
    assert.ok(Number(denials[0]?.n) >= 4);
  });

  it('revoked over the API: the key is refused at once', async () => {
    const gone = await createKey({ name: 'gone', scopes: ['derive'] });
    const res = await call('DELETE', `/v1/apikeys?id=${gone.id}`, signer.apiKey);
    assert.equal(res.statusCode, 200, res.body);
    assert.equal(res.json().revokedAt, signer.clock.now);
    expectError(await call('GET', '/v1/keys?walletName=a&keyIndex=0', gone.token), 401, 'unauthorized');
    expectError(await call('DELETE', `/v1/apikeys?id=${gone.id}`, signer.apiKey), 404, 'not_found');
  });

  // Last: it configures an admin quorum on the file's signer.
  it('under an admin quorum a key with sign or admin is refused quorum_required; a register/derive key is made MAC’d and works', async () => {
    const limited = await createKey({ name: 'before quorum', scopes: ['derive'], walletPrefix: 'shop-' });
    await bootstrapTestQuorum(signer.store, adminSet(1, [newTestAdmin('alice'), newTestAdmin('bob')]));
    expectError(await call('POST', '/v1/apikeys', signer.apiKey, { name: 'signer key', scopes: ['derive', 'sign'] }), 409, 'quorum_required');
    expectError(await call('POST', '/v1/apikeys', signer.apiKey, { name: 'ops', scopes: ['admin'], tenant: 'system' }), 409, 'quorum_required');
    const reader = await createKey({ name: 'reader', scopes: ['derive'], walletPrefix: 'shop-' });
    assert.equal((await call('GET', '/v1/keys?walletName=shop-q&keyIndex=0', reader.token)).statusCode, 200);
    // the bootstrap MAC'd the limited key with its limits: it works, and stays confined
    assert.equal((await call('GET', '/v1/keys?walletName=shop-q&keyIndex=0', limited.token)).statusCode, 200);
    expectError(await call('GET', '/v1/keys?walletName=other&keyIndex=0', limited.token), 404, 'wallet_not_found');
    const rows = await signer.sql('SELECT mac FROM api_keys WHERE id = $1', reader.id);
    assert.equal(typeof rows[0]?.mac, 'string', 'made MAC’d');
  });
});
