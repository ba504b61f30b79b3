import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AuditRateLimiter, auditRetryAfterSeconds, refillBucket } from './auditRateLimit.js';

const budget = { bytesPerSecond: 1_000, burstBytes: 10_000 };

describe('the audit budget (token bucket of bytes, clock passed in)', () => {
  it('a new tenant starts with a full bucket; it refills at the rate, never above the burst', () => {
    assert.deepEqual(refillBucket(undefined, 5, budget), { tokens: 10_000, atMs: 5 });
    assert.deepEqual(refillBucket({ tokens: -500, atMs: 0 }, 2_000, budget), { tokens: 1_500, atMs: 2_000 });
    assert.deepEqual(refillBucket({ tokens: 9_000, atMs: 0 }, 60_000, budget), { tokens: 10_000, atMs: 60_000 });
    assert.deepEqual(refillBucket({ tokens: 0, atMs: 1_000 }, 500, budget), { tokens: 0, atMs: 1_000 }, 'a clock going back refills nothing');
    assert.equal(auditRetryAfterSeconds({ tokens: 1, atMs: 0 }, budget), null);
    assert.equal(auditRetryAfterSeconds({ tokens: 0, atMs: 0 }, budget), 1);
    assert.equal(auditRetryAfterSeconds({ tokens: -2_500, atMs: 0 }, budget), 3);
  });

  it('admits while the tenant has tokens; charges records after; refuses in debt and tallies per API key and minute', () => {
    const limiter = new AuditRateLimiter(budget);
    limiter.admit('key-a', 'acme', 0);
    limiter.charge('key-a', 20_000, 0);
    assert.throws(() => limiter.admit('key-a', 'acme', 0), { code: 'audit_rate_limited', details: { retryAfterSeconds: 11 } });
    // the same tenant's other key shares the budget; another tenant does not
    assert.throws(() => limiter.admit('key-b', 'acme', 10), { code: 'audit_rate_limited' });
    limiter.admit('key-c', 'other', 10);
    assert.throws(() => limiter.admit('key-a', 'acme', 500), { code: 'audit_rate_limited' });
    limiter.admit('key-a', 'acme', 10_001);
    // records of unknown keys (operator actions) are not charged to anyone
    limiter.charge(null, 1e9, 10_001);
    limiter.charge('unknown', 1e9, 10_001);
    limiter.admit('key-c', 'other', 10_001);
    assert.equal(limiter.hasDue(59_999), false);
    assert.deepEqual(limiter.takeDue(59_999), []);
    assert.equal(limiter.hasDue(60_000), true);
    assert.deepEqual(
      limiter.takeDue(60_000).sort((x, y) => x.apiKeyId.localeCompare(y.apiKeyId)),
      [
        { apiKeyId: 'key-a', budgetKey: 'acme', count: 2, firstTs: 0, lastTs: 500 },
        { apiKeyId: 'key-b', budgetKey: 'acme', count: 1, firstTs: 10, lastTs: 10 },
      ],
    );
    assert.equal(limiter.hasDue(120_000), false);
  });

  it('a tally whose record failed is put back and merged with the refusals since', () => {
    const limiter = new AuditRateLimiter({ bytesPerSecond: 1, burstBytes: 1 });
    limiter.admit('k', 't', 0);
    limiter.charge('k', 100, 0);
    assert.throws(() => limiter.admit('k', 't', 1));
    const due = limiter.takeDue(0, { all: true });
    assert.throws(() => limiter.admit('k', 't', 2));
    limiter.restore(due);
    assert.deepEqual(limiter.takeDue(0, { all: true }), [{ apiKeyId: 'k', budgetKey: 't', count: 2, firstTs: 1, lastTs: 2 }]);
  });

  it('refuses a budget that is not a positive integer', () => {
    assert.throws(() => new AuditRateLimiter({ bytesPerSecond: 0, burstBytes: 1 }), { code: 'invalid_input', details: { field: 'auditBytesPerSecond' } });
    assert.throws(() => new AuditRateLimiter({ bytesPerSecond: 1, burstBytes: 1.5 }), { code: 'invalid_input', details: { field: 'auditBurstBytes' } });
  });
});
