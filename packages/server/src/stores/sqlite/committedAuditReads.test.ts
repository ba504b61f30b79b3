// store-independent: the SQLite store's own connection handling (runs in the SQLite pass only)
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { SqliteStore } from './SqliteStore.js';

// The audit log's followers (GET /v1/audit, the SIEM stream, checkpoints) read through a connection
// that sees committed transactions only: a unit that awaits mid-batch (a passkey's WebCrypto) lets
// them run while its rows are written but not committed; had they seen seq N of a batch that then
// rolled back, their cursor would have moved past the record later committed as N (review MEDIUM).

const dir = mkdtempSync(join(tmpdir(), 'custos-committed-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const entry = (action: string) => ({ ts: 1, appId: null, walletName: null, action, opHash: null, decision: 'allowed' as const, reason: null, detail: {} });

describe('SqliteStore: the audit readers see committed records only', () => {
  it('a batch open mid-unit is not seen by queryAudit or readAudit; after its rollback the record committed under the same seq is', async () => {
    const store = new SqliteStore({ path: join(dir, 'c.db') });
    try {
      await store.transact(async (tx) => {
        await tx.appendAudit(entry('sys.first'));
      });
      let midBatch: (value: unknown) => void = () => undefined;
      const reached = new Promise((resolve) => {
        midBatch = resolve;
      });
      const failing = store
        .transact(async (tx) => {
          await tx.appendAudit(entry('sign.phantom'));
          midBatch(undefined);
          await new Promise((resolve) => setTimeout(resolve, 50));
          throw new Error('the unit fails after its audit record was written');
        })
        .catch((error: unknown) => error);
      await reached;
      const seen = (await store.queryAudit({ afterSeq: 0, limit: 10 })).map((r) => r.action);
      assert.deepEqual(seen, ['sys.first'], 'the open batch is not seen');
      assert.deepEqual(
        (await store.readAudit(1, 10)).map((r) => r.action),
        ['sys.first'],
      );
      assert.ok((await failing) instanceof Error);
      await store.transact(async (tx) => {
        await tx.appendAudit(entry('sign.real'));
      });
      assert.deepEqual(
        (await store.queryAudit({ afterSeq: 1, limit: 10 })).map((r) => [r.seq, r.action]),
        [[2, 'sign.real']],
      );
    } finally {
      await store.close();
    }
  });
});
