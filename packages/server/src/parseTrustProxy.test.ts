// store-independent: opens no store; runs in the SQLite pass only (scripts/test.mjs)
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseTrustProxy } from './parseTrustProxy.js';

describe('parseTrustProxy', () => {
  test('a comma-separated list of addresses and CIDR ranges', () => {
    assert.deepEqual(parseTrustProxy('10.0.0.1'), ['10.0.0.1']);
    assert.deepEqual(parseTrustProxy('10.0.0.0/8, 127.0.0.1,::1,fd00::/8'), ['10.0.0.0/8', '127.0.0.1', '::1', 'fd00::/8']);
  });

  test('anything else is invalid_input naming trust-proxy (no "true": every caller could pick its address)', () => {
    for (const bad of ['', 'true', '*', 'loopback', '10.0.0.0/33', '::/129', '10.0.0.1/', '10.0.0.1/8/8', 'proxy.example', '10.0.0.1,,10.0.0.2', '10.0.0.0/-1'])
      assert.throws(() => parseTrustProxy(bad), { name: 'CustosError', code: 'invalid_input', details: { field: 'trust-proxy' } }, bad);
  });
});
