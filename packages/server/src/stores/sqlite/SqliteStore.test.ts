import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { type AuditEntry, CustosError, readAuditPages, verifyAuditChain } from '@custos/kernel';
import { testArtifactsDir } from '../../testing/createTestSigner.js';
import { SqliteStore } from './SqliteStore.js';

function entry(i: number): AuditEntry {
  return { ts: 1_000 + i, appId: 'app', walletName: `w${i}`, action: 'test', opHash: null, decision: 'allowed', reason: null, detail: { i } };
}

function freshPath(): string {
  return join(mkdtempSync(join(testArtifactsDir(), 'store-')), 'custos.db');
}

describe('SqliteStore', () => {
  it('applies versioned migrations once; reopening keeps data and versions', async () => {
    const path = freshPath();
    const a = new SqliteStore({ path });
    assert.deepEqual(await a.schemaVersions(), [1]);
    await a.initMeta({ signerId: 's', derivation: 'custos-v1', sealedRoot: { x: 1 }, createdAt: 1 });
    await a.close();
    const b = new SqliteStore({ path });
    assert.deepEqual(await b.schemaVersions(), [1]);
    assert.equal((await b.getMeta())?.signerId, 's');
    await assert.rejects(b.initMeta({ signerId: 't', derivation: 'custos-v1', sealedRoot: {}, createdAt: 2 }), { code: 'already_initialized' });
    assert.equal((await b.getMeta())?.signerId, 's');
    await b.close();
  });

  it('group commit: concurrent units share a transaction; a failing unit is rolled back alone', async () => {
    const store = new SqliteStore({ path: freshPath() });
    const units = Array.from({ length: 30 }, (_, i) =>
      store.transact(async (tx) => {
        await tx.appendAudit(entry(i));
        if (i % 7 === 3) throw new CustosError('code_invalid', 'unit fails after writing');
        return i;
      }),
    );
    const settled = await Promise.allSettled(units);
    const failed = settled.filter((s) => s.status === 'rejected');
    assert.equal(failed.length, 4);
    for (const f of failed) assert.equal((f as PromiseRejectedResult).reason.code, 'code_invalid');
    const records = await store.readAudit(1, 100);
    assert.equal(records.length, 26, 'the failing units left nothing behind');
    assert.deepEqual(
      records.map((r) => r.detail.i),
      Array.from({ length: 30 }, (_, i) => i).filter((i) => i % 7 !== 3),
    );
    assert.ok(store.stats.batches < 30, `batched: ${store.stats.batches} transactions for 30 units`);
    assert.equal((await verifyAuditChain(readAuditPages(store))).ok, true);
    await store.close();
  });

  it('a unit settles only after its commit is durable: a second connection sees it at resolution', async () => {
    const path = freshPath();
    const store = new SqliteStore({ path });
    const other = new SqliteStore({ path });
    const seen = await store.transact(async (tx) => (await tx.appendAudit(entry(1))).seq).then(async (seq) => (await other.readAudit(seq, 1)).length);
    assert.equal(seen, 1);
    await store.close();
    await other.close();
  });

  it('a failing COMMIT fails every unit of the batch with store_unavailable', async () => {
    const store = new SqliteStore({ path: freshPath() });
    // A deferred foreign-key violation is only detected at COMMIT.
    store.database.pragma('defer_foreign_keys = ON');
    const bad = store.transact(async (tx) => {
      await tx.appendAudit(entry(1));
      store.database.prepare("INSERT INTO sessions (token_hash, api_key_id, expires_at) VALUES ('t', 'no-such-key', 1)").run();
      store.database.pragma('defer_foreign_keys = ON');
    });
    const good = store.transact(async (tx) => tx.appendAudit(entry(2)));
    for (const r of await Promise.allSettled([bad, good])) {
      assert.equal(r.status, 'rejected');
      assert.equal((r as PromiseRejectedResult).reason.code, 'store_unavailable');
    }
    assert.equal((await store.readAudit(1, 10)).length, 0);
    const after = await store.transact(async (tx) => (await tx.appendAudit(entry(3))).seq);
    assert.equal(after, 1, 'the chain head was not advanced by the failed batch');
    await store.close();
  });

  it('two stores on one file (two processes’ worth) keep one gap-free chain', async () => {
    const path = freshPath();
    const a = new SqliteStore({ path });
    const b = new SqliteStore({ path });
    await Promise.all(Array.from({ length: 40 }, (_, i) => (i % 2 === 0 ? a : b).transact((tx) => tx.appendAudit(entry(i)))));
    const verdict = await verifyAuditChain(readAuditPages(a));
    assert.deepEqual(verdict.ok ? verdict.records : verdict, 40);
    await a.close();
    await b.close();
  });

  it('a closed store refuses new work with store_unavailable', async () => {
    const store = new SqliteStore({ path: freshPath() });
    await store.close();
    await assert.rejects(
      store.transact(async () => 1),
      { code: 'store_unavailable' },
    );
  });
});
