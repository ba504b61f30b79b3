import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isSqliteBusy, retryWhileBusy } from './retryWhileBusy.js';

function busy(code = 'SQLITE_BUSY'): Error {
  return Object.assign(new Error('database is locked'), { code });
}

describe('retryWhileBusy', () => {
  it('retries SQLITE_BUSY (and its extended codes) until the operation succeeds', async () => {
    let calls = 0;
    const codes = ['SQLITE_BUSY', 'SQLITE_BUSY_RECOVERY', 'SQLITE_BUSY_SNAPSHOT'];
    const value = await retryWhileBusy(() => {
      const code = codes[calls];
      calls += 1;
      if (code !== undefined) throw busy(code);
      return 'done';
    });
    assert.equal(value, 'done');
    assert.equal(calls, 4);
  });

  it('fails store_unavailable once the deadline has passed (the last busy error as its cause)', async () => {
    let calls = 0;
    const started = performance.now();
    await assert.rejects(
      retryWhileBusy(
        () => {
          calls += 1;
          throw busy();
        },
        { deadlineMs: 50 },
      ),
      (error: Error & { code?: string; cause?: { code?: string } }) => error.code === 'store_unavailable' && error.cause?.code === 'SQLITE_BUSY',
    );
    assert.ok(performance.now() - started >= 50);
    assert.ok(calls >= 2, `${calls} attempts`);
  });

  it('throws any other error at once, unretried', async () => {
    let calls = 0;
    await assert.rejects(
      retryWhileBusy(() => {
        calls += 1;
        throw Object.assign(new Error('constraint'), { code: 'SQLITE_CONSTRAINT_UNIQUE' });
      }),
      { code: 'SQLITE_CONSTRAINT_UNIQUE' },
    );
    assert.equal(calls, 1);
    assert.equal(isSqliteBusy(new Error('x')), false);
    assert.equal(isSqliteBusy(busy('SQLITE_BUSY_TIMEOUT')), true);
  });
});
