import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { type AuditEntry, CustosError, readAuditPages, verifyAuditChain } from '@custos/kernel';
import Database from 'better-sqlite3';
import { testArtifactsDir } from '../../testing/createTestSigner.js';
import {
  dumpVersion3Tables,
  exerciseApprovalQueries,
  exerciseApprovalStore,
  fillVersion3Rows,
  insertVersion4Approval,
  makeApproval,
  type RunSql,
} from '../exerciseApprovalStore.js';
import { dumpVersion6Tables, exerciseApprovalBatch, exerciseBatchAfterVersion6, fillVersion6Rows } from '../exerciseApprovalBatchStore.js';
import { exerciseAuditCheckpointStore } from '../exerciseAuditCheckpointStore.js';
import { dumpApiKeys, exerciseAfterMigration15, exerciseQuorumStore, fillVersion11ApiKeys } from '../exerciseQuorumStore.js';
import { exerciseEnrollmentLinkStore, makeEnrollmentLink } from '../exerciseEnrollmentLinkStore.js';
import { exerciseEnrolledVia } from '../exerciseEnrollmentLinkStore.js';
import {
  dumpVersion5Tables,
  exerciseApprovalChallenge,
  exercisePasskeyStore,
  exerciseTamperedTransports,
  exerciseVersion5Store,
  exerciseWalletRowsWithPasskeys,
  fillVersion5Rows,
} from '../exercisePasskeyStore.js';
import { exerciseRpcStore, exerciseRpcTablesAfterMigration } from '../exerciseRpcStore.js';
import { exercisePolicyStore, exercisePolicyTablesAfterMigration } from '../exercisePolicyStore.js';
import { exerciseHwkeyAfterVersion6, exerciseHwkeyStore, exerciseWalletRowsWithHwkey } from '../exerciseHwkeyStore.js';
import { exerciseFreezeStore } from '../exerciseFreezeStore.js';
import { exerciseOobStore, makeOutbox } from '../exerciseOobStore.js';
import { exercisePendingChangesAfterMigration, exercisePendingChangeStore } from '../exercisePendingChangeStore.js';
import { SQLITE_MIGRATIONS } from './migrations.js';
import { SqliteStore } from './SqliteStore.js';
import { ALL_SCHEMA_VERSIONS } from '../../testing/schemaVersions.js';

function entry(i: number): AuditEntry {
  return { ts: 1_000 + i, appId: 'app', walletName: `w${i}`, action: 'test', opHash: null, decision: 'allowed', reason: null, detail: { i } };
}

function freshPath(): string {
  return join(mkdtempSync(join(testArtifactsDir(), 'store-')), 'custos.db');
}

/** Raw SQL with `$n` placeholders on a better-sqlite3 handle. */
function rawSql(db: Database.Database): RunSql {
  return async (sql, params = []) => {
    const statement = db.prepare(sql.replace(/\$\d+/g, '?'));
    if (statement.reader) return statement.all(...params) as Array<Record<string, unknown>>;
    statement.run(...params);
    return [];
  };
}

/**
 * A store file at schema version `version` (the migrations applied as they were, each recorded with
 * applied_at = its version), rows written by `fill`; returns its path and what `dump` read of it
 * before the handle closed.
 */
async function storeAtVersion(
  version: number,
  fill: (sql: RunSql) => Promise<void>,
  dump: (sql: RunSql) => Promise<Record<string, unknown[]>>,
): Promise<{ path: string; before: Record<string, unknown[]> }> {
  const path = freshPath();
  const db = new Database(path);
  try {
    const sql = rawSql(db);
    db.exec('CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)');
    for (const m of SQLITE_MIGRATIONS.filter((m) => m.version <= version)) {
      db.exec(m.sql);
      await sql('INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)', [m.version, m.name, m.version]);
    }
    await fill(sql);
    return { path, before: await dump(sql) };
  } finally {
    db.close();
  }
}

describe('SqliteStore', () => {
  it('applies versioned migrations once; reopening keeps data and versions', async () => {
    const path = freshPath();
    const a = new SqliteStore({ path });
    assert.deepEqual(await a.schemaVersions(), ALL_SCHEMA_VERSIONS);
    await a.initMeta({ signerId: 's', derivation: 'custos-v1', sealedRoot: { x: 1 }, createdAt: 1 });
    await a.close();
    const b = new SqliteStore({ path });
    assert.deepEqual(await b.schemaVersions(), ALL_SCHEMA_VERSIONS);
    assert.equal((await b.getMeta())?.signerId, 's');
    await assert.rejects(b.initMeta({ signerId: 't', derivation: 'custos-v1', sealedRoot: {}, createdAt: 2 }), { code: 'already_initialized' });
    assert.equal((await b.getMeta())?.signerId, 's');
    await b.close();
  });

  it('audit checkpoints: the head a unit sees, one per seq (also from another connection), rolled back with the unit, read back in order', async () => {
    const path = freshPath();
    const [a, b] = [new SqliteStore({ path }), new SqliteStore({ path })];
    try {
      await exerciseAuditCheckpointStore(a, b);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('approvals: every field read back as written (by id, by capability, unlocked, from another connection), duplicates refused, updates of one row', async () => {
    const path = freshPath();
    const [a, b] = [new SqliteStore({ path }), new SqliteStore({ path })];
    try {
      await exerciseApprovalStore(a, b);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('approvals: pending counts per wallet and tenant, the expiry sweep’s list, the pending approvals of a key', async () => {
    const store = new SqliteStore({ path: freshPath() });
    try {
      await exerciseApprovalQueries(store);
    } finally {
      await store.close();
    }
  });

  it('enrolment links: every field read back as written (also from another connection), duplicates and bad states refused, pending links of a wallet oldest first, updates of one row', async () => {
    const path = freshPath();
    const [a, b] = [new SqliteStore({ path }), new SqliteStore({ path })];
    try {
      await exerciseEnrollmentLinkStore(a, b);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('migration 5 (enrollment_links): a version-4 store with rows opens at version 5 with every row kept, old factor rows enrolled via api', async () => {
    const { path, before } = await storeAtVersion(
      4,
      async (sql) => {
        await fillVersion3Rows(sql);
        await insertVersion4Approval(sql, makeApproval(1, { walletName: 'alice', apiKeyId: 'key-a' }));
      },
      async (sql) => ({ ...(await dumpVersion3Tables(sql)), approvals: await sql('SELECT * FROM approvals') }),
    );

    const store = new SqliteStore({ path });
    try {
      assert.deepEqual(await store.schemaVersions(), ALL_SCHEMA_VERSIONS);
      const after = rawSql(store.database);
      const dumped = { ...(await dumpVersion3Tables(after)), approvals: await after('SELECT * FROM approvals') };
      // (migrations 6 and 8 then add challenge and batch to the approvals: null)
      assert.deepEqual(dumped, {
        ...before,
        totp_factors: before.totp_factors?.map((row) => ({ ...(row as object), enrolled_via: 'api' })),
        approvals: before.approvals?.map((row) => ({ ...(row as object), challenge: null, batch: null })),
      });
      assert.deepEqual(
        (await after('SELECT version, name, applied_at FROM schema_migrations WHERE version <= 4 ORDER BY version')).map((r) => r.applied_at),
        [1, 2, 3, 4],
        'the applied migrations were not applied again',
      );
      assert.equal((await store.readWalletRows('alice')).totp?.enrolledVia, 'api');
      assert.equal((await store.transact((tx) => tx.getTotpFactorForUpdate('alice')))?.enrolledVia, 'api');
      assert.deepEqual(
        (await store.transact((tx) => tx.listWalletRows())).map((r) => [r.wallet.name, r.totp?.enrolledVia]),
        [
          ['alice', 'api'],
          ['bob', undefined],
        ],
      );
      // the new column refuses anything but api and page
      await assert.rejects(after("UPDATE totp_factors SET enrolled_via = 'backend'"), { code: 'SQLITE_CONSTRAINT_CHECK' });
      const link = makeEnrollmentLink(1, { walletName: 'bob', apiKeyId: 'key-a' });
      await store.transact((tx) => tx.insertEnrollmentLink(link));
      assert.deepEqual(await store.transact((tx) => tx.getEnrollmentLinkByCapabilityForUpdate(link.capabilityHash)), link);
    } finally {
      await store.close();
    }
  });

  it('passkeys: every field read back as written (locked, with the wallet rows, from another connection), counters up to 2^53 - 1, oldest first, a taken credential id refused for any wallet, counter updates of one row, the rpIDs in use', async () => {
    const path = freshPath();
    const [a, b] = [new SqliteStore({ path }), new SqliteStore({ path })];
    try {
      await exercisePasskeyStore(a, b);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('JSON-RPC address book and waiting requests: read back as written (also from another connection), one address per tenant, insertion order and cursor pages, requests replaced, forgotten under their own approval, swept by age', async () => {
    const path = freshPath();
    const [a, b] = [new SqliteStore({ path }), new SqliteStore({ path })];
    try {
      await exerciseRpcStore(a, b);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('migration 9 (rpc_accounts): a version-6 store with rows opens at version 9 with every row kept and the JSON-RPC tables empty', async () => {
    const { path, before } = await storeAtVersion(6, fillVersion3Rows, dumpVersion3Tables);
    assert.equal(before.audit_log?.length, 2);
    const store = new SqliteStore({ path });
    try {
      assert.deepEqual(await store.schemaVersions(), ALL_SCHEMA_VERSIONS);
      const after = rawSql(store.database);
      assert.deepEqual(await dumpVersion3Tables(after), before);
      assert.deepEqual(
        (
          await after("SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name IN ('rpc_accounts', 'rpc_requests') AND sql IS NOT NULL ORDER BY name")
        ).map((r) => r.sql),
        [
          'CREATE INDEX rpc_accounts_tenant_created_at ON rpc_accounts (tenant, created_at, address)',
          'CREATE INDEX rpc_requests_created_at ON rpc_requests (created_at)',
        ],
      );
      await exerciseRpcTablesAfterMigration(store, after);
    } finally {
      await store.close();
    }
  });

  it('migration 14 (wallet_freeze): a version-11 store with rows opens at version 14 with every row kept, no wallet frozen or linked, no recovery codes', async () => {
    const { path, before } = await storeAtVersion(11, fillVersion3Rows, dumpVersion3Tables);
    const store = new SqliteStore({ path });
    try {
      assert.deepEqual(await store.schemaVersions(), ALL_SCHEMA_VERSIONS);
      const after = rawSql(store.database);
      assert.deepEqual(await dumpVersion3Tables(after), before);
      assert.deepEqual(await after('SELECT name FROM wallets WHERE frozen_at IS NOT NULL OR owner_link_hash IS NOT NULL'), []);
      assert.deepEqual(await after('SELECT * FROM recovery_codes'), []);
      for (const row of await after('SELECT name FROM wallets')) {
        const wallet = (await store.readWalletRows(String(row.name))).wallet;
        assert.ok(wallet !== undefined && !('frozenAt' in wallet), 'an old wallet reads as before (not frozen)');
      }
    } finally {
      await store.close();
    }
  });

  it('freeze (migration 14): freeze state, owner links, recovery codes and the audit log by wallet read back as written from another connection', async () => {
    const path = freshPath();
    const [a, b] = [new SqliteStore({ path }), new SqliteStore({ path })];
    try {
      await exerciseFreezeStore(a, b);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('wallet policies (migration 12): overrides and usage rows read back as written (also from another connection), usage after a time, oldest first, one per audit record, swept by age', async () => {
    const path = freshPath();
    const [a, b] = [new SqliteStore({ path }), new SqliteStore({ path })];
    try {
      await exercisePolicyStore(a, b);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('timelock (migration 13): pending changes and safe addresses read back as written from another connection, by either capability, due in order; factor rows deleted one at a time', async () => {
    const path = freshPath();
    const [a, b] = [new SqliteStore({ path }), new SqliteStore({ path })];
    try {
      await exercisePendingChangeStore(a, b);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('migration 13 (pending_changes): a version-11 store with rows opens at version 13 with every row kept and the new tables empty', async () => {
    const { path, before } = await storeAtVersion(11, fillVersion3Rows, dumpVersion3Tables);
    const store = new SqliteStore({ path });
    try {
      assert.deepEqual(await store.schemaVersions(), ALL_SCHEMA_VERSIONS);
      const after = rawSql(store.database);
      assert.deepEqual(await dumpVersion3Tables(after), before);
      await exercisePendingChangesAfterMigration(store, after);
    } finally {
      await store.close();
    }
  });

  it('migration 12 (wallet_policies): a version-11 store with rows opens at version 12 with every row kept and the policy tables empty', async () => {
    const { path, before } = await storeAtVersion(11, fillVersion3Rows, dumpVersion3Tables);
    const store = new SqliteStore({ path });
    try {
      assert.deepEqual(await store.schemaVersions(), ALL_SCHEMA_VERSIONS);
      const after = rawSql(store.database);
      assert.deepEqual(await dumpVersion3Tables(after), before);
      await exercisePolicyTablesAfterMigration(store, after, 'alice');
    } finally {
      await store.close();
    }
  });

  it('delivery (migration 10): channels and outbox rows read back as written from another connection, claims leased, refusals', async () => {
    const path = freshPath();
    const [a, b] = [new SqliteStore({ path }), new SqliteStore({ path })];
    try {
      await exerciseOobStore(a, b);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('passkeys: the wallet rows with a TOTP factor and passkeys hold each row once', async () => {
    const store = new SqliteStore({ path: freshPath() });
    try {
      await exerciseWalletRowsWithPasskeys(store);
    } finally {
      await store.close();
    }
  });

  it('passkeys: a tampered transports column reads as the raw text, not a failed read', async () => {
    const store = new SqliteStore({ path: freshPath() });
    try {
      await exerciseTamperedTransports(store, rawSql(store.database));
    } finally {
      await store.close();
    }
  });

  it('approvals: the batch written by insert, kept or replaced by updates, read back by every read (also from another connection)', async () => {
    const path = freshPath();
    const [a, b] = [new SqliteStore({ path }), new SqliteStore({ path })];
    try {
      await exerciseApprovalBatch(a, b);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('migrations 7 (hwkey_factors), 8 (approval_batches) and 10 (oob_delivery): a version-6 store with rows opens with every row kept, old approvals without a batch, no cards, an empty outbox that takes messages', async () => {
    const { path, before } = await storeAtVersion(6, fillVersion6Rows, dumpVersion6Tables);
    assert.equal(before.approvals?.length, 1);
    assert.equal(before.passkey_credentials?.length, 1);
    const store = new SqliteStore({ path });
    try {
      assert.deepEqual(await store.schemaVersions(), ALL_SCHEMA_VERSIONS);
      const after = rawSql(store.database);
      assert.deepEqual(await dumpVersion6Tables(after), { ...before, approvals: before.approvals?.map((row) => ({ ...(row as object), batch: null })) });
      assert.deepEqual(
        (await after('SELECT version, applied_at FROM schema_migrations WHERE version <= 6 ORDER BY version')).map((r) => r.applied_at),
        [1, 2, 3, 4, 5, 6],
        'the applied migrations were not applied again',
      );
      assert.deepEqual(await after('SELECT * FROM hwkey_factors'), []);
      await exerciseBatchAfterVersion6(store);
      await exerciseHwkeyAfterVersion6(store);
      await store.transact((tx) => tx.insertOutbox(makeOutbox(1)));
      assert.equal((await store.transact((tx) => tx.claimOutbox(Date.UTC(2027, 0, 1), 5, Date.UTC(2027, 0, 2)))).length, 1);
    } finally {
      await store.close();
    }
  });

  it('approvals: the challenge written by insert and update, read back by every read (also from another connection), set and null', async () => {
    const path = freshPath();
    const [a, b] = [new SqliteStore({ path }), new SqliteStore({ path })];
    try {
      await exerciseApprovalChallenge(a, b);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('migration 6 (passkey_credentials): a version-5 store with rows opens at version 6 with every row kept, old approvals without a challenge', async () => {
    const { path, before } = await storeAtVersion(5, fillVersion5Rows, dumpVersion5Tables);
    assert.equal(before.approvals?.length, 1);
    assert.equal(before.enrollment_links?.length, 1);

    const store = new SqliteStore({ path });
    try {
      assert.deepEqual(await store.schemaVersions(), ALL_SCHEMA_VERSIONS);
      const after = rawSql(store.database);
      assert.deepEqual(await dumpVersion5Tables(after), {
        ...before,
        approvals: before.approvals?.map((row) => ({ ...(row as object), challenge: null, batch: null })),
      });
      assert.deepEqual(
        (await after('SELECT version, name, applied_at FROM schema_migrations ORDER BY version')).map((r) => [r.version, r.name, r.applied_at]).slice(0, 5),
        SQLITE_MIGRATIONS.filter((m) => m.version <= 5).map((m) => [m.version, m.name, m.version]),
        'the applied migrations were not applied again',
      );
      assert.deepEqual(await after('SELECT * FROM passkey_credentials'), []);
      // the new table's index serves a wallet's passkeys in order
      assert.deepEqual(
        (await after("SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'passkey_credentials' AND sql IS NOT NULL")).map((r) => r.sql),
        ['CREATE INDEX passkey_credentials_wallet_created_at ON passkey_credentials (wallet_name, created_at, credential_id)'],
      );
      await exerciseVersion5Store(store);
    } finally {
      await store.close();
    }
  });

  it('hardware keys: every field read back as written (locked, with the wallet rows, from another connection), one per wallet, state updates of one row, the database refusing what no record holds', async () => {
    const path = freshPath();
    const [a, b] = [new SqliteStore({ path }), new SqliteStore({ path })];
    try {
      await exerciseHwkeyStore(a, b);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('hardware keys: the wallet rows with a TOTP factor, passkeys and a card hold each row once', async () => {
    const store = new SqliteStore({ path: freshPath() });
    try {
      await exerciseWalletRowsWithHwkey(store);
    } finally {
      await store.close();
    }
  });

  it('factor rows: enrolledVia written and read back by every read (locked, the wallet rows, the MAC pass list)', async () => {
    const store = new SqliteStore({ path: freshPath() });
    try {
      await exerciseEnrolledVia(store);
    } finally {
      await store.close();
    }
  });

  it('migration 15 (admin_quorum): settings, proposals, approvals and API key MACs on two connections', async () => {
    const path = freshPath();
    const [a, b] = [new SqliteStore({ path }), new SqliteStore({ path })];
    try {
      await exerciseQuorumStore(a, b);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('migration 15 (admin_quorum): a version-11 store with API keys opens with every key kept, its MAC NULL', async () => {
    const { path, before } = await storeAtVersion(11, fillVersion11ApiKeys, dumpApiKeys);
    const store = new SqliteStore({ path });
    try {
      assert.deepEqual(await store.schemaVersions(), ALL_SCHEMA_VERSIONS);
      await exerciseAfterMigration15(store, rawSql(store.database), before);
    } finally {
      await store.close();
    }
  });

  it('migration 4 (approvals): a version-3 store with rows opens at version 4 with every row kept', async () => {
    const { path, before } = await storeAtVersion(3, fillVersion3Rows, dumpVersion3Tables);
    assert.equal(before.audit_log?.length, 2);

    const store = new SqliteStore({ path });
    try {
      assert.deepEqual(await store.schemaVersions(), ALL_SCHEMA_VERSIONS);
      const after = rawSql(store.database);
      // (migration 5 then adds enrolled_via to the factor rows: `api`)
      assert.deepEqual(await dumpVersion3Tables(after), {
        ...before,
        totp_factors: before.totp_factors?.map((row) => ({ ...(row as object), enrolled_via: 'api' })),
      });
      assert.deepEqual(
        (await after('SELECT version, name, applied_at FROM schema_migrations WHERE version <= 3 ORDER BY version')).map((r) => [
          r.version,
          r.name,
          r.applied_at,
        ]),
        [
          [1, 'kernel', 1],
          [2, 'tenants_and_macs', 2],
          [3, 'audit_checkpoints', 3],
        ],
        'the applied migrations were not applied again',
      );
      const approval = makeApproval(1, { walletName: 'alice', apiKeyId: 'key-a' });
      await store.transact((tx) => tx.insertApproval(approval));
      assert.deepEqual(await store.readApproval(approval.id), approval);
    } finally {
      await store.close();
    }
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
    // Both units in one batch whatever the machine's load: the batch's time budget (2 ms by default)
    // must not close it after the first unit.
    const store = new SqliteStore({ path: freshPath(), maxBatchMs: 60_000 });
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

  it('API keys are cached, but a revocation by another connection (another process) is seen by the next lookup', async () => {
    const path = freshPath();
    const server = new SqliteStore({ path });
    const cli = new SqliteStore({ path });
    const key = {
      id: '0123456789abcdef',
      name: 'k',
      tenant: 'default',
      scopes: ['sign' as const],
      secretHash: new Uint8Array(32).fill(1),
      createdAt: 1,
      revokedAt: null,
    };
    await cli.transact((tx) => tx.insertApiKey(key));
    // a key created elsewhere is found at once (misses are not cached)
    assert.equal((await server.getApiKey(key.id))?.revokedAt, null);
    // served from the cache now: a raw write on the server's own connection (which the cache does not watch) goes unseen…
    server.database.prepare('UPDATE api_keys SET name = ? WHERE id = ?').run('renamed', key.id);
    assert.equal((await server.getApiKey(key.id))?.name, 'k', 'the second lookup came from the cache');
    // …but a revocation committed by another connection is seen by the very next lookup
    assert.equal(await cli.transact((tx) => tx.revokeApiKey(key.id, 2)), true);
    assert.equal((await server.getApiKey(key.id))?.revokedAt, 2);
    await server.close();
    await cli.close();
  });

  it('API keys: a revocation through the store’s own transaction clears the cache', async () => {
    const store = new SqliteStore({ path: freshPath() });
    const key = {
      id: 'fedcba9876543210',
      name: 'k',
      tenant: 'default',
      scopes: ['sign' as const],
      secretHash: new Uint8Array(32).fill(2),
      createdAt: 1,
      revokedAt: null,
    };
    await store.transact((tx) => tx.insertApiKey(key));
    assert.equal((await store.getApiKey(key.id))?.revokedAt, null);
    assert.equal(await store.transact((tx) => tx.revokeApiKey(key.id, 5)), true);
    assert.equal((await store.getApiKey(key.id))?.revokedAt, 5);
    await store.close();
  });

  it('API keys: the cache hands out copies — a caller that wipes the hash or edits the scopes does not change the next lookup', async () => {
    const store = new SqliteStore({ path: freshPath() });
    const key = {
      id: '00112233445566ff',
      name: 'k',
      tenant: 'default',
      scopes: ['sign' as const],
      secretHash: new Uint8Array(32).fill(3),
      createdAt: 1,
      revokedAt: null,
    };
    await store.transact((tx) => tx.insertApiKey(key));
    const first = await store.getApiKey(key.id); // a miss: read from the database, then cached
    assert.ok(first !== undefined);
    first.secretHash.fill(0);
    first.scopes.push('admin');
    const second = await store.getApiKey(key.id); // a hit
    assert.ok(second !== undefined);
    assert.deepEqual(second.secretHash, new Uint8Array(32).fill(3));
    assert.deepEqual(second.scopes, ['sign']);
    second.secretHash.fill(0);
    second.scopes.length = 0;
    const third = await store.getApiKey(key.id);
    assert.deepEqual(third?.secretHash, new Uint8Array(32).fill(3));
    assert.deepEqual(third?.scopes, ['sign']);
    await store.close();
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
