// store-independent: opens no store; runs in the SQLite pass only (scripts/test.mjs)
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { contentSecurityPolicy, pageHeaders } from './pageHeaders.js';

const NONCE = 'bm9uY2Vub25jZW5vbmNlMQ==';

describe('the pages’ Content-Security-Policy', () => {
  it('a page without a passkey step: no script-src at all (default-src none forbids every script)', () => {
    assert.equal(
      contentSecurityPolicy(NONCE),
      `default-src 'none'; style-src 'nonce-${NONCE}'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'`,
    );
  });

  it('with the passkey step: scripts by this nonce only, requests to this origin only on the approval page; nothing else loosened', () => {
    assert.equal(
      contentSecurityPolicy(NONCE, { scripts: true }),
      `default-src 'none'; script-src 'nonce-${NONCE}'; style-src 'nonce-${NONCE}'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'`,
    );
    const approval = contentSecurityPolicy(NONCE, { scripts: true, connect: true });
    assert.equal(
      approval,
      `default-src 'none'; script-src 'nonce-${NONCE}'; connect-src 'self'; style-src 'nonce-${NONCE}'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'`,
    );
    assert.doesNotMatch(approval, /unsafe|strict-dynamic|\*|https?:|blob:/);
    // connect alone grants nothing without the scripts
    assert.equal(contentSecurityPolicy(NONCE, { connect: true }), contentSecurityPolicy(NONCE));
    assert.equal(pageHeaders(NONCE, { scripts: true, connect: true })['content-security-policy'], approval);
    assert.equal(pageHeaders(NONCE)['x-frame-options'], 'DENY');
  });
});
