import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CustosApiError, CustosRequestError, toApiError } from './errors.js';

describe('toApiError (one mapping of an error answer, for the client and the fortanix Accounts)', () => {
  it('the API’s error body → CustosApiError with code, message, status, details and Retry-After (seconds)', () => {
    const body = JSON.stringify({ error: { code: 'factor_throttled', message: 'locked', details: { retryAfterSeconds: 30 } } });
    const e = toApiError(new Response(body, { status: 429, headers: { 'retry-after': '30' } }), body, 'POST /v1/sign/hash');
    assert.ok(e instanceof CustosApiError);
    assert.equal(e.code, 'factor_throttled');
    assert.equal(e.message, 'factor_throttled: locked');
    assert.equal(e.status, 429);
    assert.deepEqual(e.details, { retryAfterSeconds: 30 });
    assert.equal(e.retryAfter, 30);
  });

  it('a Retry-After that is not whole seconds (an HTTP date) is left out; missing message and details get defaults', () => {
    const body = JSON.stringify({ error: { code: 'overloaded' } });
    const e = toApiError(new Response(body, { status: 503, headers: { 'retry-after': 'Wed, 21 Oct 2026 07:28:00 GMT' } }), body, 'GET /v1/keys');
    assert.ok(e instanceof CustosApiError);
    assert.equal(e.retryAfter, undefined);
    assert.equal(e.message, 'overloaded: request refused');
    assert.deepEqual(e.details, {});
  });

  it('anything but the API’s error body → bad_response naming the request (not JSON, no code, null, a proxy’s page)', () => {
    for (const text of ['<html>Bad Gateway</html>', '{"error":{"message":"x"}}', 'null', '{"error":null}', '{"error":"x"}', '']) {
      const e = toApiError(new Response(text, { status: 502 }), text, 'POST /v1/sign/hash');
      assert.ok(e instanceof CustosRequestError, text);
      assert.equal(e.reason, 'bad_response');
      assert.equal(e.mayHaveReachedServer, true);
      assert.equal(e.message, 'POST /v1/sign/hash: HTTP 502 without an API error body');
    }
  });
});
