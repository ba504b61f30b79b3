import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { describe, it } from 'node:test';
import { verifyWebhookSignature, WebhookSignatureError } from './verifyWebhookSignature.js';

// Issue 12, point 5: a webhook with a wrong signature or a stale timestamp is refused by the verifier
// the SDK exports for the receiver. Signatures are made here with node's HMAC, from the definition.

const SECRET = 'whsec-test-0123456789abcdef';
const NOW = Date.UTC(2026, 11, 7, 10, 0, 0);
const T = Math.floor(NOW / 1000);
const BODY = JSON.stringify({ type: 'custos.oob.approval', id: 'ab'.repeat(16), code: '12345678' });

function sign(t: number, body: string, secret = SECRET): string {
  return `t=${t},v1=${createHmac('sha256', secret).update(`${t}.${body}`).digest('hex')}`;
}

function refused(reason: string, call: () => unknown): void {
  assert.throws(call, (error: unknown) => error instanceof WebhookSignatureError && error.reason === reason);
}

describe('verifyWebhookSignature', () => {
  it('accepts the exact body signed with the secret, within the tolerance', () => {
    assert.deepEqual(verifyWebhookSignature(SECRET, sign(T, BODY), BODY, { now: NOW }), { timestamp: T });
    assert.deepEqual(verifyWebhookSignature(new TextEncoder().encode(SECRET), sign(T - 299, BODY), Buffer.from(BODY), { now: NOW }), { timestamp: T - 299 });
  });

  it('refuses a wrong signature: another secret, another body, one flipped digit', () => {
    refused('mismatch', () => verifyWebhookSignature(SECRET, sign(T, BODY, 'another secret'), BODY, { now: NOW }));
    refused('mismatch', () => verifyWebhookSignature(SECRET, sign(T, BODY), BODY.replace('12345678', '12345679'), { now: NOW }));
    const header = sign(T, BODY);
    const flipped = header.slice(0, -1) + (header.endsWith('0') ? '1' : '0');
    refused('mismatch', () => verifyWebhookSignature(SECRET, flipped, BODY, { now: NOW }));
  });

  it('refuses a stale timestamp, and a replayed body under another timestamp', () => {
    refused('stale', () => verifyWebhookSignature(SECRET, sign(T - 301, BODY), BODY, { now: NOW }));
    refused('stale', () => verifyWebhookSignature(SECRET, sign(T + 301, BODY), BODY, { now: NOW }));
    refused('stale', () => verifyWebhookSignature(SECRET, sign(T - 61, BODY), BODY, { now: NOW, toleranceSeconds: 60 }));
    // The old signature's MAC with a fresh t: the MAC covers t.
    const old = sign(T - 3600, BODY);
    const replayed = old.replace(`t=${T - 3600}`, `t=${T}`);
    refused('mismatch', () => verifyWebhookSignature(SECRET, replayed, BODY, { now: NOW }));
  });

  it('refuses a missing or malformed header', () => {
    refused('malformed', () => verifyWebhookSignature(SECRET, undefined, BODY, { now: NOW }));
    refused('malformed', () => verifyWebhookSignature(SECRET, `v1=${'0'.repeat(64)}`, BODY, { now: NOW }));
    refused('malformed', () => verifyWebhookSignature(SECRET, `t=${T},v1=${'0'.repeat(63)}`, BODY, { now: NOW }));
    refused('malformed', () => verifyWebhookSignature('', sign(T, BODY, ''), BODY, { now: NOW }));
  });
});
