import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import { createCustosClient } from './client.js';
import { CustosRequestError } from './errors.js';
import { wasNeverSent } from './wasNeverSent.js';

/** What undici's fetch rejects with: a TypeError whose cause is the system error. */
const fetchFailed = (cause: unknown) => Object.assign(new TypeError('fetch failed'), { cause });
const systemError = (code: string, syscall?: string) =>
  Object.assign(new Error(`${syscall ?? '?'} ${code}`), { code, ...(syscall === undefined ? {} : { syscall }) });

describe('wasNeverSent (may a request that failed be retried as never sent?)', () => {
  it('a refused or unroutable connect, or a failed DNS look-up: never sent', () => {
    for (const [code, syscall] of [
      ['ECONNREFUSED', 'connect'],
      ['EHOSTUNREACH', 'connect'],
      ['ENETUNREACH', 'connect'],
      ['ENOTFOUND', 'getaddrinfo'],
      ['EAI_AGAIN', 'getaddrinfo'],
    ] as const) {
      assert.equal(wasNeverSent(fetchFailed(systemError(code, syscall))), true, `${syscall} ${code}`);
    }
  });

  it('the same codes from another call (after the connection was up), or without a syscall: may have been sent', () => {
    for (const [code, syscall] of [
      ['EHOSTUNREACH', 'write'],
      ['ENETUNREACH', 'read'],
      ['ECONNREFUSED', 'write'],
      ['ENOTFOUND', 'connect'],
      ['ECONNRESET', 'read'],
      ['EPIPE', 'write'],
      ['ETIMEDOUT', 'connect'],
      ['EHOSTUNREACH', undefined],
      ['ECONNREFUSED', undefined],
    ] as const) {
      assert.equal(wasNeverSent(fetchFailed(systemError(code, syscall))), false, `${syscall} ${code}`);
    }
    assert.equal(wasNeverSent(new TypeError('fetch failed')), false);
    assert.equal(wasNeverSent(fetchFailed(new Error('other side closed'))), false);
    assert.equal(wasNeverSent(null), false);
    assert.equal(wasNeverSent(fetchFailed({ code: 'ECONNREFUSED', syscall: 'constructor' })), false);
  });

  it('a multi-address connect (AggregateError): never sent only if every attempt was', () => {
    const refused = systemError('ECONNREFUSED', 'connect');
    const unreachable = systemError('ENETUNREACH', 'connect');
    assert.equal(wasNeverSent(fetchFailed(new AggregateError([refused, unreachable]))), true);
    assert.equal(wasNeverSent(fetchFailed(new AggregateError([refused, systemError('ECONNRESET', 'read')]))), false);
    assert.equal(wasNeverSent(fetchFailed(new AggregateError([]))), false);
  });

  it('a real refused connection is classified as never sent', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const error = await fetch(`http://127.0.0.1:${port}/`).catch((e: unknown) => e);
    assert.equal(wasNeverSent(error), true);
  });

  it('the client retries a sign after EHOSTUNREACH on connect or write under the same Idempotency-Key; a POST without one (an enrolment link) only when it was never sent', async () => {
    const SIGN = { walletName: 'w', keyIndex: 0, hash: `0x${'11'.repeat(32)}` as const, code: '123456' };
    for (const [call, syscall, attempts, mayHaveReachedServer] of [
      ['sign', 'connect', 3, false],
      // a sign carries an Idempotency-Key: a retry that reaches the signer gets the stored result, never a second decision
      ['sign', 'write', 3, true],
      ['enrollment', 'connect', 3, false],
      // no key: a request that may have reached the signer is never sent again
      ['enrollment', 'write', 1, true],
    ] as const) {
      const keys: Array<string | null> = [];
      const failingFetch = (async (_url: unknown, init?: RequestInit) => {
        keys.push(new Headers(init?.headers).get('idempotency-key'));
        throw fetchFailed(systemError('EHOSTUNREACH', syscall));
      }) as typeof fetch;
      const client = createCustosClient({ url: 'http://127.0.0.1:8420', apiKey: 'k', retries: 2, fetch: failingFetch });
      const e = await (call === 'sign' ? client.signHash(SIGN) : client.createEnrollment({ walletName: 'w', kind: 'totp' })).catch((error: unknown) => error);
      assert.ok(e instanceof CustosRequestError);
      assert.equal(e.reason, 'network');
      assert.equal(e.mayHaveReachedServer, mayHaveReachedServer, `${call} ${syscall}`);
      assert.equal(keys.length, attempts, `${call} ${syscall}`);
      if (call === 'sign') {
        assert.match(keys[0] ?? '', /^[A-Za-z0-9._:~+/=-]{1,128}$/, 'a sign carries an Idempotency-Key');
        assert.equal(new Set(keys).size, 1, 'every retry of a sign carries the same key');
      } else assert.deepEqual(new Set(keys), new Set([null]), 'an enrolment link carries no key');
    }
  });
});
