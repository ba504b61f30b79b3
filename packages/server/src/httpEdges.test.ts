import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { rekeySigner } from '@custos/kernel';
import { openStore } from './openStore.js';
import { createTestSigner, recordTestSecret, TEST_PASSPHRASE, type TestSigner } from './testing/createTestSigner.js';

// Issue 15 point 12, what a new operator met at the HTTP edge: a bodiless POST that says
// application/json, unknown routes under every content type, and the status after a rekey made by
// another process. One signer (operator key) for the file; the seal comes last.

let signer: TestSigner;
before(async () => {
  signer = await createTestSigner({ scopes: ['admin', 'register', 'derive'] });
});
after(async () => {
  await signer.close();
});

const JSON_TYPE = { 'content-type': 'application/json' };

describe('the HTTP edge', () => {
  it('an unknown route is 404 not_found whatever the method, content type and body', async () => {
    const cases: Array<{ method: 'GET' | 'POST' | 'PUT' | 'DELETE'; headers?: Record<string, string>; payload?: string }> = [
      { method: 'GET' },
      { method: 'POST' },
      { method: 'POST', headers: JSON_TYPE },
      { method: 'POST', headers: JSON_TYPE, payload: '{' },
      { method: 'POST', headers: JSON_TYPE, payload: '{"a":1}' },
      { method: 'PUT', headers: { 'content-type': 'text/plain' }, payload: 'x' },
      { method: 'POST', headers: { 'content-type': 'application/xml' }, payload: '<a/>' },
      { method: 'DELETE', headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: 'a=1' },
    ];
    for (const url of ['/v1/nope', '/nope', '/v1/sys/nope']) {
      for (const c of cases) {
        const res = await signer.app.inject({
          method: c.method,
          url,
          headers: { ...signer.auth(), ...(c.headers ?? {}) },
          ...(c.payload === undefined ? {} : { payload: c.payload }),
        });
        assert.equal(res.statusCode, 404, `${c.method} ${url} ${JSON.stringify(c.headers)}: ${res.body}`);
        assert.equal(res.json().error.code, 'not_found');
      }
    }
  });

  it('a bodiless POST with Content-Type application/json is a POST without a body: a route that needs one names the field (400), never a parse error', async () => {
    for (const headers of [{}, JSON_TYPE]) {
      const reset = await signer.app.inject({ method: 'POST', url: '/v1/sys/unseal/reset', headers });
      assert.equal(reset.statusCode, 400, reset.body);
      assert.equal(reset.json().error.code, 'invalid_input');
      assert.equal(reset.json().error.details.field, 'body');
      const derive = await signer.app.inject({ method: 'POST', url: '/v1/wallets/freeze', headers: { ...signer.auth(), ...headers } });
      assert.equal(derive.statusCode, 400, derive.body);
      assert.equal(derive.json().error.code, 'invalid_input');
    }
    // A malformed JSON body on a real route is still refused as such.
    const bad = await signer.app.inject({ method: 'POST', url: '/v1/wallets/freeze', headers: { ...signer.auth(), ...JSON_TYPE }, payload: '{' });
    assert.equal(bad.statusCode, 400);
    assert.equal(bad.json().error.details.field, 'body');
  });

  it('GET /v1/sys/status names the unsealer a rekey by another process switched to', async () => {
    assert.deepEqual((await signer.app.inject({ method: 'GET', url: '/v1/sys/status' })).json().unsealer, { type: 'passphrase' });
    // Another process: its own connection to the same store, as `custos rekey` opens it.
    const other = await openStore(signer.location);
    try {
      await rekeySigner({
        store: other,
        current: { type: 'passphrase', passphrase: new TextEncoder().encode(TEST_PASSPHRASE) },
        next: { type: 'shamir', threshold: 2, shares: 3 },
        persistShares: async (files) => {
          for (const f of files) recordTestSecret('rekey share', (JSON.parse(f.text) as { share: string }).share);
        },
      });
    } finally {
      await other.close();
    }
    const status = (await signer.app.inject({ method: 'GET', url: '/v1/sys/status' })).json();
    assert.equal(status.unsealer.type, 'shamir');
    assert.equal(status.unsealer.threshold, 2);
    assert.equal(status.unsealer.shares, 3);
    assert.equal(status.sealed, false);
  });

  it('POST /v1/sys/seal with Content-Type application/json and no body seals', async () => {
    const res = await signer.app.inject({ method: 'POST', url: '/v1/sys/seal', headers: { ...signer.auth(), ...JSON_TYPE } });
    assert.equal(res.statusCode, 200, res.body);
    assert.equal(res.json().sealed, true);
  });
});
