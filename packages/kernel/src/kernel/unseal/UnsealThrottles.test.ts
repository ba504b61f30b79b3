import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MAX_UNSEAL_CLIENTS, UnsealThrottles } from './UnsealThrottles.js';

const throttled = (retryAfterSeconds: number) => ({ name: 'CustosError', code: 'unseal_throttled', details: { retryAfterSeconds } });
const T0 = 1_700_000_000_000;

describe('UnsealThrottles', () => {
  it('an attacker failing as each back-off expires never delays another client (the old single back-off did)', () => {
    const throttles = new UnsealThrottles();
    let now = T0;
    for (let i = 0; i < 20; i++) {
      throttles.assertNotThrottled('ip:203.0.113.9', now);
      throttles.recordFailure('ip:203.0.113.9', now);
      // the operator, at any moment of the attacker's back-off, is not delayed
      throttles.assertNotThrottled('ip:192.0.2.1', now);
      throttles.assertNotThrottled('admin-socket', now + 1);
      assert.throws(() => throttles.assertNotThrottled('ip:203.0.113.9', now + 1), { code: 'unseal_throttled' });
      now += Math.min(300_000, 1_000 * 2 ** i);
    }
    assert.throws(() => throttles.assertNotThrottled('ip:203.0.113.9', now - 1), throttled(1));
  });

  it("each client's back-off doubles from 1 s to 5 min; a success resets only that client", () => {
    const throttles = new UnsealThrottles();
    throttles.recordFailure('a', T0);
    throttles.recordFailure('a', T0 + 1_000);
    throttles.recordFailure('b', T0);
    assert.throws(() => throttles.assertNotThrottled('a', T0 + 1_000), throttled(2));
    assert.throws(() => throttles.assertNotThrottled('b', T0 + 999), throttled(1));
    throttles.recordSuccess('b');
    throttles.assertNotThrottled('b', T0);
    assert.throws(() => throttles.assertNotThrottled('a', T0 + 2_999), throttled(1));
    throttles.assertNotThrottled('a', T0 + 3_000);
    for (let i = 0; i < 20; i++) throttles.recordFailure('c', T0);
    assert.throws(() => throttles.assertNotThrottled('c', T0), throttled(300));
  });

  it(`keeps at most ${MAX_UNSEAL_CLIENTS} clients, forgetting the least recently used`, () => {
    const throttles = new UnsealThrottles();
    for (let i = 0; i < MAX_UNSEAL_CLIENTS; i++) throttles.recordFailure(`ip:${i}`, T0);
    assert.equal(throttles.size, MAX_UNSEAL_CLIENTS);
    // client 0 comes back (a use): client 1 is now the least recently used
    assert.throws(() => throttles.assertNotThrottled('ip:0', T0), { code: 'unseal_throttled' });
    throttles.recordFailure('ip:new', T0);
    assert.equal(throttles.size, MAX_UNSEAL_CLIENTS);
    throttles.assertNotThrottled('ip:1', T0); // forgotten: no back-off
    assert.throws(() => throttles.assertNotThrottled('ip:0', T0), { code: 'unseal_throttled' });
    assert.throws(() => throttles.assertNotThrottled('ip:2', T0), { code: 'unseal_throttled' });
    assert.throws(() => throttles.assertNotThrottled('ip:new', T0), { code: 'unseal_throttled' });
    // a client without failures takes no room
    throttles.assertNotThrottled('ip:never-failed', T0);
    assert.equal(throttles.size, MAX_UNSEAL_CLIENTS);
  });
});
