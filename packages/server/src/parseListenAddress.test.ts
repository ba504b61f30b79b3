// store-independent: opens no store; runs in the SQLite pass only (scripts/test.mjs)
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseListenAddress } from './parseListenAddress.js';

describe('parseListenAddress (--public-listen HOST:PORT)', () => {
  it('a name or IPv4 address and a port; IPv6 in brackets', () => {
    assert.deepEqual(parseListenAddress('127.0.0.1:8443', 'public-listen'), { host: '127.0.0.1', port: 8443 });
    assert.deepEqual(parseListenAddress('0.0.0.0:0', 'public-listen'), { host: '0.0.0.0', port: 0 });
    assert.deepEqual(parseListenAddress('localhost:65535', 'public-listen'), { host: 'localhost', port: 65535 });
    assert.deepEqual(parseListenAddress('pages.internal:80', 'public-listen'), { host: 'pages.internal', port: 80 });
    assert.deepEqual(parseListenAddress('[::1]:8443', 'public-listen'), { host: '::1', port: 8443 });
    assert.deepEqual(parseListenAddress('[::]:8443', 'public-listen'), { host: '::', port: 8443 });
  });

  it('anything else: invalid_input naming the option', () => {
    for (const value of [
      '',
      'localhost',
      '127.0.0.1',
      ':8443',
      '127.0.0.1:',
      '127.0.0.1:65536',
      '127.0.0.1:-1',
      '127.0.0.1:8a',
      '127.0.0.1:123456',
      '::1:8443',
      '[::1',
      '[::1]',
      '[localhost]:80',
      '[1.2.3.4]:80',
      '-x:80',
      'x.:80',
      'a b:80',
      'http://localhost:80',
      'localhost:80/',
    ]) {
      assert.throws(
        () => parseListenAddress(value, 'public-listen'),
        (error: Error & { code?: string; details?: Record<string, unknown> }) =>
          error.code === 'invalid_input' && error.details?.field === 'public-listen' && error.message.startsWith('--public-listen: expected HOST:PORT'),
        JSON.stringify(value),
      );
    }
  });
});
