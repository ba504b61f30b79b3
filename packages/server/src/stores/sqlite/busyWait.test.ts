import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DB_FILE } from '../../openStore.js';
import { createTestSigner, type TestSigner, testArtifactsDir } from '../../testing/createTestSigner.js';
import { holdLock } from '../../testing/sqliteLockHolder.js';
import { SqliteStore } from './SqliteStore.js';

// better-sqlite3 is synchronous: SQLite's busy wait for a lock held by another process sleeps on
// the event loop's thread. It must never stall the server: SQLite waits a few ms itself, longer
// waits are asynchronous retries, bounded by a deadline (then store_unavailable).

/** Largest gap allowed between two ticks of a 5 ms timer while the lock is held (wide: a loaded 2-core machine). */
const MAX_GAP_MS = 200;

/** Measures the longest gap between ticks of a 5 ms timer until stopped. */
function watchEventLoop() {
  let last = performance.now();
  let maxGap = 0;
  const timer = setInterval(() => {
    const now = performance.now();
    maxGap = Math.max(maxGap, now - last);
    last = now;
  }, 5);
  return {
    stop(): number {
      clearInterval(timer);
      return Math.max(maxGap, performance.now() - last);
    },
  };
}

describe('SQLite busy wait: another process holds the write lock', () => {
  let signer: TestSigner;
  before(async () => {
    signer = await createTestSigner();
  });
  after(async () => {
    await signer?.close();
  });

  it('a sign issued meanwhile waits without blocking the event loop, and completes once the lock is released', async () => {
    assert.ok('dataDir' in signer.location, 'runs on the SQLite store');
    const file = join(signer.location.dataDir, DB_FILE);
    const holdMs = 1_000;
    const sign = (hash: string) =>
      signer.app.inject({ method: 'POST', url: '/v1/sign/hash', headers: signer.auth(), payload: { walletName: 'busy-wait', keyIndex: 0, hash } });
    // A first sign, unlocked: what a cold start costs once (compiling the route, deriving the wallet's key) is not the lock's.
    assert.equal((await sign(`0x${'ab'.repeat(32)}`)).statusCode, 200);
    const { events, exited } = await holdLock(file, holdMs);
    const loop = watchEventLoop();
    const issued = performance.now();
    const res = await sign(`0x${'cd'.repeat(32)}`);
    const answered = performance.now();
    const maxGap = loop.stop();
    await exited;
    console.log(`busy wait: sign answered after ${Math.round(answered - issued)} ms under a ${holdMs} ms lock; longest event-loop gap ${maxGap.toFixed(1)} ms`);
    assert.equal(res.statusCode, 200, res.body);
    assert.ok(events.released !== undefined, 'the holder released the lock');
    // the sign waited for the lock (it could not commit before the holder released it)…
    assert.ok(answered - issued >= holdMs / 2, `answered after ${Math.round(answered - issued)} ms`);
    // …while the event loop kept running
    assert.ok(maxGap < MAX_GAP_MS, `longest event-loop gap ${maxGap.toFixed(1)} ms`);
    const records = await signer.sql("SELECT decision FROM audit_log WHERE wallet_name = 'busy-wait' ORDER BY seq");
    assert.deepEqual(
      records.map((r) => r.decision),
      ['allowed', 'allowed'],
    );
  });

  it('past its deadline the wait fails store_unavailable (nothing written), the event loop still free', async () => {
    const file = join(mkdtempSync(join(testArtifactsDir(), 'busy-')), DB_FILE);
    const store = new SqliteStore({ path: file, busyDeadlineMs: 300 });
    try {
      const { exited } = await holdLock(file, 1_500);
      const loop = watchEventLoop();
      const started = performance.now();
      const entry = { ts: 1, appId: null, walletName: null, action: 'test', opHash: null, decision: 'allowed' as const, reason: null, detail: {} };
      await assert.rejects(
        store.transact((tx) => tx.appendAudit(entry)),
        { code: 'store_unavailable' },
      );
      const failedAfter = performance.now() - started;
      const maxGap = loop.stop();
      assert.ok(failedAfter >= 300 && failedAfter < 1_400, `failed after ${Math.round(failedAfter)} ms (deadline 300 ms, lock 1500 ms)`);
      assert.ok(maxGap < MAX_GAP_MS, `longest event-loop gap ${maxGap.toFixed(1)} ms`);
      await exited;
      assert.equal((await store.readAudit(1, 10)).length, 0);
      // the lock gone, the store works again
      assert.equal((await store.transact((tx) => tx.appendAudit(entry))).seq, 1);
    } finally {
      await store.close();
    }
  });
});
