// store-independent: opens no store; runs in the SQLite pass only (scripts/test.mjs)
import assert from 'node:assert/strict';
import { describe, it, type TestContext } from 'node:test';
import { chromiumForTests } from './chromium.js';

// The browser suites follow the rule of every suite that needs a part the machine may lack: missing,
// they fail under CI=true and skip loudly elsewhere (skipUnlessCi, shared with the SoftHSM2 suites).

function withCi(t: TestContext, value: string | undefined): void {
  const saved = process.env.CI;
  t.after(() => {
    if (saved === undefined) delete process.env.CI;
    else process.env.CI = saved;
  });
  if (value === undefined) delete process.env.CI;
  else process.env.CI = value;
}

describe('chromiumForTests', () => {
  it('throws under CI=true when Chromium is missing (so the test file fails), naming the path', (t) => {
    withCi(t, 'true');
    assert.throws(
      () => chromiumForTests('/nonexistent/chromium'),
      /^Error: Chromium \/nonexistent\/chromium not found \(apt-get install chromium\): the browser tests need Chromium in CI$/,
    );
  });

  it('returns a skip reason outside CI', (t) => {
    withCi(t, undefined);
    const missing = chromiumForTests('/nonexistent/chromium');
    assert.equal(missing.executablePath, undefined);
    assert.equal(missing.skip, 'Chromium /nonexistent/chromium not found (apt-get install chromium)');
  });

  it('returns the path when the launcher is there', (t) => {
    withCi(t, 'true');
    assert.deepEqual(chromiumForTests(process.execPath), { executablePath: process.execPath, skip: false });
  });
});
