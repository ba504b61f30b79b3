import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { softHsmForTests } from './softHsm.js';

// The rule for tests that need SoftHSM2: missing, they fail under CI=true and skip loudly elsewhere.
describe('softHsmForTests', () => {
  const missing = { util: 'softhsm2-util-that-does-not-exist' };

  it('throws under CI=true when SoftHSM2 is missing (so the test file fails)', (t) => {
    const saved = process.env.CI;
    t.after(() => {
      if (saved === undefined) delete process.env.CI;
      else process.env.CI = saved;
    });
    process.env.CI = 'true';
    assert.throws(() => softHsmForTests(missing), /need SoftHSM2 in CI/);
    assert.throws(() => softHsmForTests({ modulePath: '/nonexistent/libsofthsm2.so' }), /need SoftHSM2 in CI/);
  });

  it('returns a skip reason outside CI', (t) => {
    const saved = process.env.CI;
    t.after(() => {
      if (saved === undefined) delete process.env.CI;
      else process.env.CI = saved;
    });
    delete process.env.CI;
    const result = softHsmForTests(missing);
    assert.equal(result.hsm, undefined);
    assert.match(String(result.skip), /softhsm2-util-that-does-not-exist cannot run/);
  });
});
