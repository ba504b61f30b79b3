import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { describe, it, type TestContext } from 'node:test';
import { softHsmForTests } from './softHsm.js';

// The rule for tests that need SoftHSM2: missing, they fail under CI=true and skip loudly elsewhere.
// Both parts are named explicitly, so that the test says the same on a machine with SoftHSM2 and
// on one without it (the module is checked first: an existing file stands in for it where the
// missing tool is what is tested).
describe('softHsmForTests', () => {
  const moduleMissing = { modulePath: '/nonexistent/libsofthsm2.so', util: 'softhsm2-util-that-does-not-exist' };
  const utilMissing = { modulePath: fileURLToPath(import.meta.url), util: 'softhsm2-util-that-does-not-exist' };

  function withCi(t: TestContext, value: string | undefined): void {
    const saved = process.env.CI;
    t.after(() => {
      if (saved === undefined) delete process.env.CI;
      else process.env.CI = saved;
    });
    if (value === undefined) delete process.env.CI;
    else process.env.CI = value;
  }

  it('throws under CI=true when SoftHSM2 is missing (so the test file fails), naming the missing part', (t) => {
    withCi(t, 'true');
    assert.throws(() => softHsmForTests(moduleMissing), /^Error: SoftHSM2 module \/nonexistent\/libsofthsm2\.so not found .*need SoftHSM2 in CI$/);
    assert.throws(() => softHsmForTests(utilMissing), /^Error: softhsm2-util-that-does-not-exist cannot run .*need SoftHSM2 in CI$/);
  });

  it('returns a skip reason outside CI: the module first, then the tool', (t) => {
    withCi(t, undefined);
    const noModule = softHsmForTests(moduleMissing);
    assert.equal(noModule.hsm, undefined);
    assert.match(String(noModule.skip), /^SoftHSM2 module \/nonexistent\/libsofthsm2\.so not found \(apt-get install softhsm2\)$/);
    const noUtil = softHsmForTests(utilMissing);
    assert.equal(noUtil.hsm, undefined);
    assert.match(String(noUtil.skip), /^softhsm2-util-that-does-not-exist cannot run \(apt-get install softhsm2\)$/);
  });
});
