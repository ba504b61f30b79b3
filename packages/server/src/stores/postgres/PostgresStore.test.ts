import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { type AuditEntry, CustosError, readAuditPages, verifyAuditChain } from '@custos/kernel';
import pg from 'pg';
import { dropTestSchema, freshTestStoreLocation, testPostgresUrl } from '../../testing/createTestSigner.js';
import {
  APPROVAL_T0,
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
import { exerciseEnrolledVia, exerciseEnrollmentLinkStore, makeEnrollmentLink } from '../exerciseEnrollmentLinkStore.js';
import {
  dumpVersion5Tables,
  exerciseApprovalChallenge,
  exercisePasskeyStore,
  exerciseTamperedTransports,
  exerciseVersion5Store,
  exerciseWalletRowsWithPasskeys,
  fillVersion5Rows,
  makePasskey,
} from '../exercisePasskeyStore.js';
import { exerciseRpcStore, exerciseRpcTablesAfterMigration } from '../exerciseRpcStore.js';
import { exercisePolicyStore, exercisePolicyTablesAfterMigration } from '../exercisePolicyStore.js';
import { exerciseHwkeyAfterVersion6, exerciseHwkeyStore, exerciseWalletRowsWithHwkey } from '../exerciseHwkeyStore.js';
import { exerciseFreezeStore } from '../exerciseFreezeStore.js';
import { exerciseOobStore, makeOutbox } from '../exerciseOobStore.js';
import { exercisePendingChangesAfterMigration, exercisePendingChangeStore } from '../exercisePendingChangeStore.js';
import { POSTGRES_MIGRATIONS } from './migrations.js';
import { dumpApiKeys, exerciseAfterMigration15, exerciseQuorumStore, fillVersion11ApiKeys } from '../exerciseQuorumStore.js';
import { PostgresStore } from './PostgresStore.js';
import { ALL_SCHEMA_VERSIONS } from '../../testing/schemaVersions.js';

// Runs in the PostgreSQL pass of npm test only (scripts/test.mjs), where PostgreSQL must answer.

function entry(i: number): AuditEntry {
  return { ts: 1_000 + i, appId: 'app', walletName: `w${i}`, action: 'test', opHash: null, decision: 'allowed', reason: null, detail: { i } };
}

const urls: string[] = [];
function freshUrl(): string {
  const location = freshTestStoreLocation();
  const url = 'url' in location ? location.url : `${testPostgresUrl()}?schema=t_${process.pid}_${urls.length}`;
  urls.push(url);
  return url;
}

async function open(url: string): Promise<PostgresStore> {
  const parsed = new URL(url);
  const schema = parsed.searchParams.get('schema') ?? 'public';
  parsed.searchParams.delete('schema');
  return PostgresStore.open({ connectionString: parsed.toString(), schema });
}

async function admin<T>(run: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: testPostgresUrl() });
  await client.connect();
  try {
    return await run(client);
  } finally {
    await client.end();
  }
}

/** A client of the test database working in a store's schema (the other transaction of the lock tests). */
async function schemaClient(url: string): Promise<pg.Client> {
  const schema = new URL(url).searchParams.get('schema') ?? 'public';
  const client = new pg.Client({ connectionString: testPostgresUrl(), options: `-c search_path=${schema}` });
  await client.connect();
  return client;
}

/**
 * Runs `work` in a unit of `store` and keeps the unit's transaction open until `release` is called
 * (`inside` settles once `work` has run).
 */
/**
 * A fresh schema at schema version `version` (the migrations applied as they were, each recorded
 * with applied_at = its version), rows written by `fill`, the audit head at seq 2; returns its URL
 * and name, and what `dump` read of it (with the audit head) before the client closed.
 */
async function schemaAtVersion(
  version: number,
  fill: (sql: RunSql) => Promise<void>,
  dump: (sql: RunSql) => Promise<Record<string, unknown[]>>,
): Promise<{ url: string; schema: string; before: Record<string, unknown[]> }> {
  const url = freshUrl();
  const schema = new URL(url).searchParams.get('schema') ?? assert.fail('no schema');
  await admin((c) => c.query(`CREATE SCHEMA ${schema}`));
  const raw = await schemaClient(url);
  const sql: RunSql = async (text, params = []) => (await raw.query(text, params)).rows as Array<Record<string, unknown>>;
  try {
    await sql('CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)');
    for (const m of POSTGRES_MIGRATIONS.filter((m) => m.version <= version)) {
      await sql(m.sql);
      await sql('INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)', [m.version, m.name, m.version]);
    }
    await fill(sql);
    await sql('UPDATE audit_head SET seq = 2, hash = $1 WHERE id = 1', ['2'.repeat(64)]);
    return { url, schema, before: { ...(await dump(sql)), audit_head: await sql('SELECT * FROM audit_head') } };
  } finally {
    await raw.end();
  }
}

function holdUnit<T>(store: PostgresStore, work: Parameters<PostgresStore['transact']>[0]) {
  let release: () => void = () => undefined;
  const held = new Promise<void>((resolve) => {
    release = resolve;
  });
  let entered: (value: T) => void = () => undefined;
  const inside = new Promise<T>((resolve) => {
    entered = resolve;
  });
  const done = store.transact(async (tx) => {
    entered((await work(tx)) as T);
    await held;
  });
  return { inside, release, done };
}

/** Which of `ids` another transaction cannot lock right now (NOWAIT: lock_not_available, 55P03). */
async function lockedElsewhere(client: pg.Client, ids: string[], table = 'approvals', column = 'id'): Promise<string[]> {
  const locked: string[] = [];
  for (const id of ids) {
    await client.query('BEGIN');
    try {
      await client.query(`SELECT ${column} FROM ${table} WHERE ${column} = $1 FOR UPDATE NOWAIT`, [id]);
    } catch (error) {
      if ((error as { code?: string }).code !== '55P03') throw error;
      locked.push(id);
    } finally {
      await client.query('ROLLBACK');
    }
  }
  return locked;
}

describe('PostgresStore', () => {
  after(async () => {
    for (const url of urls) await dropTestSchema(url);
  });

  it('replicas opening a fresh schema together apply each migration exactly once', async () => {
    const url = freshUrl();
    const stores = await Promise.all([open(url), open(url), open(url)]);
    for (const store of stores) assert.deepEqual(await store.schemaVersions(), ALL_SCHEMA_VERSIONS);
    const [first] = stores;
    assert.ok(first);
    assert.deepEqual(await first.query('SELECT version, count(*)::int AS n FROM schema_migrations GROUP BY version ORDER BY version'), [
      { version: 1, n: 1 },
      { version: 2, n: 1 },
      { version: 3, n: 1 },
      { version: 4, n: 1 },
      { version: 5, n: 1 },
      { version: 6, n: 1 },
      { version: 7, n: 1 },
      { version: 8, n: 1 },
      { version: 9, n: 1 },
      { version: 10, n: 1 },
      { version: 11, n: 1 },
      { version: 12, n: 1 },
      { version: 13, n: 1 },
      { version: 14, n: 1 },
      { version: 15, n: 1 },
      { version: 16, n: 1 },
      { version: 17, n: 1 },
      { version: 18, n: 1 },
      { version: 19, n: 1 },
      { version: 20, n: 1 },
      { version: 21, n: 1 },
      { version: 22, n: 1 },
      { version: 23, n: 1 },
    ]);
    await first.initMeta({ signerId: 's', derivation: 'fortanix-v1', sealedRoot: { x: 1 }, createdAt: 1 });
    await assert.rejects(
      stores[1]?.initMeta({ signerId: 't', derivation: 'custos-v1', sealedRoot: {}, createdAt: 2 }) ?? Promise.reject(new Error('no store')),
      { code: 'already_initialized' },
    );
    assert.equal((await stores[2]?.getMeta())?.signerId, 's');
    await Promise.all(stores.map((s) => s.close()));
  });

  it('audit checkpoints: the head a unit sees, one per seq (also from another replica), rolled back with the unit, read back in order', async () => {
    const url = freshUrl();
    const [a, b] = [await open(url), await open(url)];
    try {
      await exerciseAuditCheckpointStore(a, b);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('approvals: every field read back as written (by id, by capability, unlocked, from another replica), duplicates refused, updates of one row', async () => {
    const url = freshUrl();
    const [a, b] = [await open(url), await open(url)];
    try {
      await exerciseApprovalStore(a, b);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('approvals: pending counts per wallet and tenant, the expiry sweep’s list, the pending approvals of a key', async () => {
    const store = await open(freshUrl());
    try {
      await exerciseApprovalQueries(store);
    } finally {
      await store.close();
    }
  });

  it('approvals: the *ForUpdate reads and both lists lock exactly their rows until the unit commits', async (t) => {
    const url = freshUrl();
    const store = await open(url);
    const other = await schemaClient(url);
    t.after(async () => {
      await other.end();
      await store.close();
    });
    const expiredOfA = makeApproval(1, { expiresAt: APPROVAL_T0 - 1 });
    const pendingOfA = makeApproval(2);
    const pendingOfB = makeApproval(3, { apiKeyId: 'key-b' });
    const approvedExpired = makeApproval(4, { state: 'approved', expiresAt: APPROVAL_T0 - 1, decidedAt: APPROVAL_T0 - 2 });
    const all = [expiredOfA, pendingOfA, pendingOfB, approvedExpired];
    await store.transact(async (tx) => {
      for (const record of all) await tx.insertApproval(record);
    });
    const cases: Array<[string, Parameters<PostgresStore['transact']>[0], string[]]> = [
      ['getApprovalForUpdate', (tx) => tx.getApprovalForUpdate(pendingOfB.id), [pendingOfB.id]],
      ['getApprovalByCapabilityForUpdate', (tx) => tx.getApprovalByCapabilityForUpdate(pendingOfA.capabilityHash), [pendingOfA.id]],
      ['listExpiredOpenApprovals', (tx) => tx.listExpiredOpenApprovals(APPROVAL_T0, 10), [expiredOfA.id, approvedExpired.id]],
      ['listPendingApprovalsOfApiKey', (tx) => tx.listPendingApprovalsOfApiKey('key-a'), [expiredOfA.id, pendingOfA.id]],
    ];
    assert.deepEqual(
      await lockedElsewhere(
        other,
        all.map((r) => r.id),
      ),
      [],
      'nothing is locked outside a unit',
    );
    for (const [name, work, expected] of cases) {
      const unit = holdUnit(store, work);
      await unit.inside;
      try {
        assert.deepEqual(
          await lockedElsewhere(
            other,
            all.map((r) => r.id),
          ),
          expected,
          name,
        );
      } finally {
        unit.release();
        await unit.done;
      }
      assert.deepEqual(
        await lockedElsewhere(
          other,
          all.map((r) => r.id),
        ),
        [],
        `${name}: released at commit`,
      );
    }
  });

  it('approvals: a unit’s getApprovalForUpdate waits for another transaction holding the row and reads what it committed', async (t) => {
    const url = freshUrl();
    const store = await open(url);
    const first = await schemaClient(url);
    const watcher = await schemaClient(url);
    t.after(async () => {
      await first.end();
      await watcher.end();
      await store.close();
    });
    const record = makeApproval(1);
    await store.transact((tx) => tx.insertApproval(record));
    const events: string[] = [];
    // The first transaction (another replica deciding) holds the row...
    await first.query('BEGIN');
    await first.query('SELECT id FROM approvals WHERE id = $1 FOR UPDATE', [record.id]);
    await first.query("UPDATE approvals SET state = 'approved', decided_at = $1 WHERE id = $2", [APPROVAL_T0, record.id]);
    // ...the store's unit asks for it...
    const second = store
      .transact((tx) => tx.getApprovalForUpdate(record.id))
      .then((read) => {
        events.push('second read');
        return read;
      });
    // ...and waits on the row lock (seen in pg_stat_activity; bounded by count, well within the store's 5 s lock_timeout)
    const schema = new URL(url).searchParams.get('schema');
    let waiting = false;
    for (let i = 0; i < 200 && !waiting; i += 1) {
      const { rows } = await watcher.query(
        "SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1 AND wait_event_type = 'Lock' AND query LIKE 'SELECT * FROM approvals WHERE id = %'",
        [`custos:${schema}`],
      );
      waiting = (rows[0] as { n: number }).n === 1;
      if (!waiting) await new Promise((resolve) => setTimeout(resolve, 10));
    }
    assert.ok(waiting, 'the unit waits on the row lock');
    assert.equal(events.length, 0, 'no answer while the first transaction holds the row');
    events.push('first commit');
    await first.query('COMMIT');
    const read = await second;
    assert.deepEqual(events, ['first commit', 'second read']);
    assert.deepEqual(read, { ...record, state: 'approved', decidedAt: APPROVAL_T0 }, 'it reads the committed row, not the one from before');
  });

  it('enrolment links: every field read back as written (also from another replica), duplicates and bad states refused, pending links of a wallet oldest first, updates of one row', async () => {
    const url = freshUrl();
    const [a, b] = [await open(url), await open(url)];
    try {
      await exerciseEnrollmentLinkStore(a, b);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('factor rows: enrolledVia written and read back by every read (locked, the wallet rows, the MAC pass list)', async (t) => {
    const store = await open(freshUrl());
    t.after(() => store.close());
    await exerciseEnrolledVia(store);
  });

  it('enrolment links: the locked read and the pending list lock exactly their rows until the unit commits', async (t) => {
    const url = freshUrl();
    const store = await open(url);
    const other = await schemaClient(url);
    t.after(async () => {
      await other.end();
      await store.close();
    });
    const pendingOfAlice = makeEnrollmentLink(1);
    const expiredOfAlice = makeEnrollmentLink(2, { expiresAt: APPROVAL_T0 - 1 });
    const cancelledOfAlice = makeEnrollmentLink(3, { state: 'cancelled', completedAt: APPROVAL_T0 });
    const pendingOfBob = makeEnrollmentLink(4, { walletName: 'bob' });
    const all = [pendingOfAlice, expiredOfAlice, cancelledOfAlice, pendingOfBob];
    await store.transact(async (tx) => {
      for (const record of all) await tx.insertEnrollmentLink(record);
    });
    const ids = all.map((r) => r.id);
    const cases: Array<[string, Parameters<PostgresStore['transact']>[0], string[]]> = [
      ['getEnrollmentLinkByCapabilityForUpdate', (tx) => tx.getEnrollmentLinkByCapabilityForUpdate(pendingOfBob.capabilityHash), [pendingOfBob.id]],
      ['listPendingEnrollmentLinksOfWallet', (tx) => tx.listPendingEnrollmentLinksOfWallet('alice'), [pendingOfAlice.id, expiredOfAlice.id]],
    ];
    assert.deepEqual(await lockedElsewhere(other, ids, 'enrollment_links'), [], 'nothing is locked outside a unit');
    for (const [name, work, expected] of cases) {
      const unit = holdUnit(store, work);
      await unit.inside;
      try {
        assert.deepEqual(await lockedElsewhere(other, ids, 'enrollment_links'), expected, name);
      } finally {
        unit.release();
        await unit.done;
      }
      assert.deepEqual(await lockedElsewhere(other, ids, 'enrollment_links'), [], `${name}: released at commit`);
    }
  });

  it('migration 5 (enrollment_links): a version-4 schema with rows opens at version 5 with every row kept, old factor rows enrolled via api', async (t) => {
    const approval = makeApproval(1, { walletName: 'alice', apiKeyId: 'key-a' });
    const { url, before } = await schemaAtVersion(
      4,
      async (sql) => {
        await fillVersion3Rows(sql);
        await insertVersion4Approval(sql, approval);
      },
      async (sql) => ({ ...(await dumpVersion3Tables(sql)), approvals: await sql('SELECT * FROM approvals') }),
    );

    const store = await open(url);
    t.after(() => store.close());
    assert.deepEqual(await store.schemaVersions(), ALL_SCHEMA_VERSIONS);
    const after: RunSql = (text, params = []) => store.query(text, params);
    assert.deepEqual(
      { ...(await dumpVersion3Tables(after)), approvals: await after('SELECT * FROM approvals'), audit_head: await after('SELECT * FROM audit_head') },
      // (migrations 6 and 8 then add challenge and batch to the approvals: null)
      {
        ...before,
        totp_factors: before.totp_factors?.map((row) => ({ ...(row as object), enrolled_via: 'api' })),
        approvals: before.approvals?.map((row) => ({ ...(row as object), challenge: null, batch: null })),
      },
    );
    assert.deepEqual(
      (await after('SELECT applied_at::int AS applied_at FROM schema_migrations WHERE version <= 4 ORDER BY version')).map((r) => r.applied_at),
      [1, 2, 3, 4],
      'the applied migrations were not applied again',
    );
    assert.equal((await store.readWalletRows('alice')).totp?.enrolledVia, 'api');
    assert.equal((await store.transact((tx) => tx.getTotpFactorForUpdate('alice')))?.enrolledVia, 'api');
    await assert.rejects(after("UPDATE totp_factors SET enrolled_via = 'backend'"), { code: '23514' });
    const link = makeEnrollmentLink(1, { walletName: 'bob', apiKeyId: 'key-a' });
    await store.transact((tx) => tx.insertEnrollmentLink(link));
    assert.deepEqual(await store.transact((tx) => tx.getEnrollmentLinkByCapabilityForUpdate(link.capabilityHash)), link);
    assert.equal(await store.transact(async (tx) => (await tx.auditHead()).seq), 2);
  });

  it('JSON-RPC address book and waiting requests: read back as written (also from another replica), one address per tenant, insertion order and cursor pages, requests replaced, forgotten under their own approval, swept by age', async () => {
    const url = freshUrl();
    const [a, b] = [await open(url), await open(url)];
    try {
      await exerciseRpcStore(a, b);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('migration 9 (rpc_accounts): a version-6 schema with rows opens at version 9 with every row kept and the JSON-RPC tables empty', async (t) => {
    const { url, schema, before } = await schemaAtVersion(6, fillVersion3Rows, dumpVersion3Tables);
    assert.equal(before.audit_log?.length, 2);
    const store = await open(url);
    t.after(() => store.close());
    assert.deepEqual(await store.schemaVersions(), ALL_SCHEMA_VERSIONS);
    const after: RunSql = (text, params = []) => store.query(text, params);
    assert.deepEqual({ ...(await dumpVersion3Tables(after)), audit_head: await after('SELECT * FROM audit_head') }, before);
    // addresses compare and sort byte for byte whatever the database's locale (as SQLite's BINARY)
    assert.deepEqual(
      await after("SELECT collation_name FROM information_schema.columns WHERE table_schema = $1 AND table_name = 'rpc_accounts' AND column_name = 'address'", [
        schema,
      ]),
      [{ collation_name: 'C' }],
    );
    await exerciseRpcTablesAfterMigration(store, after);
    assert.equal(await store.transact(async (tx) => (await tx.auditHead()).seq), 2, 'the chain continues from the migrated head');
  });

  it('passkeys: every field read back as written (locked, with the wallet rows, from another replica), counters up to 2^53 - 1, oldest first, a taken credential id refused for any wallet, counter updates of one row, the rpIDs in use', async () => {
    const url = freshUrl();
    const [a, b] = [await open(url), await open(url)];
    try {
      await exercisePasskeyStore(a, b);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('migration 14 (wallet_freeze): a version-11 schema with rows opens at version 14 with every row kept, no wallet frozen or linked, no recovery codes', async (t) => {
    const { url, before } = await schemaAtVersion(11, fillVersion3Rows, dumpVersion3Tables);
    const store = await open(url);
    t.after(() => store.close());
    assert.deepEqual(await store.schemaVersions(), ALL_SCHEMA_VERSIONS);
    const after: RunSql = (text, params = []) => store.query(text, params);
    assert.deepEqual({ ...(await dumpVersion3Tables(after)), audit_head: await after('SELECT * FROM audit_head') }, before);
    assert.deepEqual(await after('SELECT name FROM wallets WHERE frozen_at IS NOT NULL OR owner_link_hash IS NOT NULL'), []);
    assert.deepEqual(await after('SELECT * FROM recovery_codes'), []);
    for (const row of await after('SELECT name FROM wallets')) {
      const wallet = (await store.readWalletRows(String(row.name))).wallet;
      assert.ok(wallet !== undefined && !('frozenAt' in wallet), 'an old wallet reads as before (not frozen)');
    }
    assert.equal(await store.transact(async (tx) => (await tx.auditHead()).seq), 2, 'the chain continues from the migrated head');
  });

  it('freeze (migration 14): freeze state, owner links, recovery codes and the audit log by wallet read back as written from another replica', async () => {
    const url = freshUrl();
    const [a, b] = [await open(url), await open(url)];
    try {
      await exerciseFreezeStore(a, b);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('wallet policies (migration 12): overrides and usage rows read back as written (also from another replica), usage after a time, oldest first, one per audit record, swept by age', async () => {
    const url = freshUrl();
    const [a, b] = [await open(url), await open(url)];
    try {
      await exercisePolicyStore(a, b);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('timelock (migration 13): pending changes and safe addresses read back as written from another replica, by either capability, due in order; factor rows deleted one at a time', async () => {
    const url = freshUrl();
    const [a, b] = [await open(url), await open(url)];
    try {
      await exercisePendingChangeStore(a, b);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('migration 13 (pending_changes): a version-11 schema with rows opens at version 13 with every row kept and the new tables empty', async (t) => {
    const { url, before } = await schemaAtVersion(11, fillVersion3Rows, dumpVersion3Tables);
    const store = await open(url);
    t.after(() => store.close());
    assert.deepEqual(await store.schemaVersions(), ALL_SCHEMA_VERSIONS);
    const after: RunSql = (text, params = []) => store.query(text, params);
    assert.deepEqual({ ...(await dumpVersion3Tables(after)), audit_head: await after('SELECT * FROM audit_head') }, before);
    await exercisePendingChangesAfterMigration(store, after);
  });

  it('delivery (migration 10): channels and outbox rows read back as written from another replica, claims leased, refusals', async () => {
    const url = freshUrl();
    const [a, b] = [await open(url), await open(url)];
    try {
      await exerciseOobStore(a, b);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('migration 12 (wallet_policies): a version-11 schema with rows opens at version 12 with every row kept and the policy tables empty', async (t) => {
    const { url, before } = await schemaAtVersion(11, fillVersion3Rows, dumpVersion3Tables);
    const store = await open(url);
    t.after(() => store.close());
    assert.deepEqual(await store.schemaVersions(), ALL_SCHEMA_VERSIONS);
    const after: RunSql = (text, params = []) => store.query(text, params);
    assert.deepEqual({ ...(await dumpVersion3Tables(after)), audit_head: await after('SELECT * FROM audit_head') }, before);
    await exercisePolicyTablesAfterMigration(store, after, 'alice');
  });

  it('delivery (migration 10): channels and outbox rows read back as written from another replica, claims leased, refusals', async () => {
    const url = freshUrl();
    const [a, b] = [await open(url), await open(url)];
    try {
      await exerciseOobStore(a, b);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('delivery: a claim skips outbox rows another transaction holds (FOR UPDATE SKIP LOCKED), without waiting', async (t) => {
    const url = freshUrl();
    const store = await open(url);
    t.after(() => store.close());
    const now = Date.UTC(2027, 0, 1);
    await store.transact(async (tx) => {
      for (const n of [1, 2, 3]) await tx.insertOutbox(makeOutbox(n));
    });
    const client = await schemaClient(url);
    t.after(() => client.end());
    await client.query('BEGIN');
    await client.query('SELECT id FROM outbox WHERE id = $1 FOR UPDATE', [makeOutbox(1).id]);
    const started = Date.now();
    const claimed = await store.transact((tx) => tx.claimOutbox(now, 10, now + 60_000));
    assert.deepEqual(claimed.map((m) => m.id).sort(), [makeOutbox(2).id, makeOutbox(3).id], 'the held row is skipped');
    assert.ok(Date.now() - started < 10_000, 'not waited for');
    await client.query('ROLLBACK');
    assert.deepEqual(
      (await store.transact((tx) => tx.claimOutbox(now, 10, now + 60_000))).map((m) => m.id),
      [makeOutbox(1).id],
      'claimed once released',
    );
  });

  it('passkeys: the wallet rows with a TOTP factor and passkeys hold each row once', async (t) => {
    const store = await open(freshUrl());
    t.after(() => store.close());
    await exerciseWalletRowsWithPasskeys(store);
  });

  it('passkeys: a tampered transports column reads as the raw text, not a failed read', async (t) => {
    const store = await open(freshUrl());
    t.after(() => store.close());
    await exerciseTamperedTransports(store, (text, params = []) => store.query(text, params));
  });

  it('approvals: the batch written by insert, kept or replaced by updates, read back by every read (also from another replica)', async () => {
    const url = freshUrl();
    const [a, b] = [await open(url), await open(url)];
    try {
      await exerciseApprovalBatch(a, b);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('migrations 7 (hwkey_factors), 8 (approval_batches) and 10 (oob_delivery): a version-6 schema with rows opens with every row kept, old approvals without a batch, no cards, an empty outbox that takes messages', async (t) => {
    const { url, before } = await schemaAtVersion(6, fillVersion6Rows, dumpVersion6Tables);
    assert.equal(before.approvals?.length, 1);
    assert.equal(before.passkey_credentials?.length, 1);
    const store = await open(url);
    t.after(() => store.close());
    assert.deepEqual(await store.schemaVersions(), ALL_SCHEMA_VERSIONS);
    const after: RunSql = (text, params = []) => store.query(text, params);
    assert.deepEqual(
      { ...(await dumpVersion6Tables(after)), audit_head: await after('SELECT * FROM audit_head') },
      { ...before, approvals: before.approvals?.map((row) => ({ ...(row as object), batch: null })) },
    );
    assert.deepEqual(
      (await after('SELECT version, applied_at::int AS applied_at FROM schema_migrations WHERE version <= 6 ORDER BY version')).map((r) => r.applied_at),
      [1, 2, 3, 4, 5, 6],
      'the applied migrations were not applied again',
    );
    assert.deepEqual(await after('SELECT * FROM hwkey_factors'), []);
    await exerciseBatchAfterVersion6(store);
    await exerciseHwkeyAfterVersion6(store);
    await store.transact((tx) => tx.insertOutbox(makeOutbox(1)));
    assert.equal((await store.transact((tx) => tx.claimOutbox(Date.UTC(2027, 0, 1), 5, Date.UTC(2027, 0, 2)))).length, 1);
  });

  it('approvals: the challenge written by insert and update, read back by every read (also from another replica), set and null', async () => {
    const url = freshUrl();
    const [a, b] = [await open(url), await open(url)];
    try {
      await exerciseApprovalChallenge(a, b);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it("passkeys: listPasskeysForUpdate locks exactly the wallet's rows until the unit commits; the unlocked wallet rows read does not wait for them", async (t) => {
    const url = freshUrl();
    const store = await open(url);
    const other = await schemaClient(url);
    t.after(async () => {
      await other.end();
      await store.close();
    });
    const ofAlice = [makePasskey(1), makePasskey(2)];
    const ofBob = makePasskey(3, { walletName: 'bob' });
    await store.transact(async (tx) => {
      for (const name of ['alice', 'bob']) await tx.insertWallet({ name, tenant: 'tenant-a', createdAt: APPROVAL_T0, mac: null });
      for (const record of [...ofAlice, ofBob]) await tx.insertPasskey(record);
    });
    const ids = [...ofAlice, ofBob].map((r) => r.credentialId);
    const lockedNow = () => lockedElsewhere(other, ids, 'passkey_credentials', 'credential_id');
    assert.deepEqual(await lockedNow(), [], 'nothing is locked outside a unit');
    const unit = holdUnit(store, (tx) => tx.listPasskeysForUpdate('alice'));
    assert.deepEqual(await unit.inside, ofAlice);
    try {
      assert.deepEqual(
        await lockedNow(),
        ofAlice.map((r) => r.credentialId),
      );
      assert.deepEqual((await store.readWalletRows('alice')).passkeys, ofAlice, 'read while the rows are locked');
    } finally {
      unit.release();
      await unit.done;
    }
    assert.deepEqual(await lockedNow(), [], 'released at commit');
  });

  it('hardware keys: every field read back as written (locked, with the wallet rows, from another replica), one per wallet, state updates of one row, the database refusing what no record holds', async () => {
    const url = freshUrl();
    const [a, b] = [await open(url), await open(url)];
    try {
      await exerciseHwkeyStore(a, b);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('hardware keys: the wallet rows with a TOTP factor, passkeys and a card hold each row once', async (t) => {
    const store = await open(freshUrl());
    t.after(() => store.close());
    await exerciseWalletRowsWithHwkey(store);
  });

  it('migration 6 (passkey_credentials): a version-5 schema with rows opens at version 6 with every row kept, old approvals without a challenge', async (t) => {
    const { url, schema, before } = await schemaAtVersion(5, fillVersion5Rows, dumpVersion5Tables);
    assert.equal(before.approvals?.length, 1);
    assert.equal(before.enrollment_links?.length, 1);

    const store = await open(url);
    t.after(() => store.close());
    assert.deepEqual(await store.schemaVersions(), ALL_SCHEMA_VERSIONS);
    const after: RunSql = (text, params = []) => store.query(text, params);
    assert.deepEqual(
      { ...(await dumpVersion5Tables(after)), audit_head: await after('SELECT * FROM audit_head') },
      { ...before, approvals: before.approvals?.map((row) => ({ ...(row as object), challenge: null, batch: null })) },
    );
    assert.deepEqual(
      (await after('SELECT version, name, applied_at::int AS applied_at FROM schema_migrations WHERE version <= 5 ORDER BY version')).map((r) => [
        r.version,
        r.name,
        r.applied_at,
      ]),
      POSTGRES_MIGRATIONS.filter((m) => m.version <= 5).map((m) => [m.version, m.name, m.version]),
      'the applied migrations were not applied again',
    );
    assert.deepEqual(await after('SELECT * FROM passkey_credentials'), []);
    // credential ids compare and sort byte for byte whatever the database's locale (as SQLite's BINARY)
    assert.deepEqual(
      await after(
        "SELECT collation_name FROM information_schema.columns WHERE table_schema = $1 AND table_name = 'passkey_credentials' AND column_name = 'credential_id'",
        [schema],
      ),
      [{ collation_name: 'C' }],
    );
    assert.deepEqual(
      (await after("SELECT indexdef FROM pg_indexes WHERE schemaname = $1 AND tablename = 'passkey_credentials' ORDER BY indexname", [schema])).map((r) =>
        String(r.indexdef).replace(`${schema}.`, ''),
      ),
      [
        'CREATE UNIQUE INDEX passkey_credentials_pkey ON passkey_credentials USING btree (credential_id)',
        'CREATE INDEX passkey_credentials_wallet_created_at ON passkey_credentials USING btree (wallet_name, created_at, credential_id)',
      ],
    );
    await exerciseVersion5Store(store);
    assert.equal(await store.transact(async (tx) => (await tx.auditHead()).seq), 2, 'the chain continues from the migrated head');
  });

  it('migration 15 (admin_quorum): settings, proposals, approvals and API key MACs on two connections', async (t) => {
    const url = freshUrl();
    const [a, b] = [await open(url), await open(url)];
    t.after(async () => {
      await a.close();
      await b.close();
    });
    await exerciseQuorumStore(a, b);
  });

  it('migration 15 (admin_quorum): a version-11 schema with API keys opens with every key kept, its MAC NULL', async (t) => {
    const { url, before } = await schemaAtVersion(11, fillVersion11ApiKeys, dumpApiKeys);
    const store = await open(url);
    t.after(() => store.close());
    assert.deepEqual(await store.schemaVersions(), ALL_SCHEMA_VERSIONS);
    await exerciseAfterMigration15(store, (text, params = []) => store.query(text, params), before);
  });

  it('migration 4 (approvals): a version-3 schema with rows opens at version 4 with every row kept', async (t) => {
    const { url, before } = await schemaAtVersion(3, fillVersion3Rows, dumpVersion3Tables);
    assert.equal(before.audit_log?.length, 2);

    const store = await open(url);
    t.after(() => store.close());
    assert.deepEqual(await store.schemaVersions(), ALL_SCHEMA_VERSIONS);
    const after: RunSql = (text, params = []) => store.query(text, params);
    // (migration 5 then adds enrolled_via to the factor rows: `api`)
    assert.deepEqual(
      { ...(await dumpVersion3Tables(after)), audit_head: await after('SELECT * FROM audit_head') },
      { ...before, totp_factors: before.totp_factors?.map((row) => ({ ...(row as object), enrolled_via: 'api' })) },
    );
    assert.deepEqual(
      (await after('SELECT version, name, applied_at::int AS applied_at FROM schema_migrations WHERE version <= 3 ORDER BY version')).map((r) => [
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
    // the chain continues from the migrated head
    assert.equal(await store.transact(async (tx) => (await tx.auditHead()).seq), 2);
  });

  it('group commit: a failing unit is rolled back alone; the audit head row follows the chain', async () => {
    const store = await open(freshUrl());
    const settled = await Promise.allSettled(
      Array.from({ length: 30 }, (_, i) =>
        store.transact(async (tx) => {
          await tx.appendAudit(entry(i));
          if (i % 7 === 3) throw new CustosError('code_invalid', 'unit fails after writing');
          return i;
        }),
      ),
    );
    assert.equal(settled.filter((s) => s.status === 'rejected').length, 4);
    const records = await store.readAudit(1, 100);
    assert.deepEqual(
      records.map((r) => r.detail.i),
      Array.from({ length: 30 }, (_, i) => i).filter((i) => i % 7 !== 3),
    );
    assert.ok(store.stats.batches < 30, `batched: ${store.stats.batches} transactions for 30 units`);
    const verdict = await verifyAuditChain(readAuditPages(store));
    assert.ok(verdict.ok);
    assert.deepEqual(await store.query('SELECT seq::int AS seq, hash FROM audit_head'), [{ seq: verdict.headSeq, hash: verdict.headHash }]);
    await store.close();
  });

  it('a COMMIT that PostgreSQL turned into ROLLBACK (a unit swallowed a failed statement) fails the batch; nothing is committed', async (t) => {
    const store = await open(freshUrl());
    // closed even when an assertion fails (an open pool would keep the test process alive)
    t.after(() => store.close());
    const key = (id: string) => ({
      id,
      name: id,
      tenant: 'default',
      scopes: ['sign' as const],
      secretHash: new Uint8Array(32).fill(7),
      createdAt: 1,
      revokedAt: null,
    });
    await store.transact((tx) => tx.insertApiKey(key('aaaaaaaaaaaaaaaa')));
    // one batch: a well-behaved unit, and one that writes, then swallows a failing statement (a
    // duplicate primary key), which aborts the shared transaction; neither advances the audit head,
    // so COMMIT is the first statement after the failure
    const good = store.transact(async (tx) => {
      await tx.insertApiKey(key('bbbbbbbbbbbbbbbb'));
      return 'good';
    });
    const swallowing = store.transact(async (tx) => {
      await tx.insertApiKey(key('cccccccccccccccc'));
      await tx.insertApiKey(key('aaaaaaaaaaaaaaaa')).catch(() => undefined); // a unit breaking the rule
      return 'swallowed';
    });
    const settled = await Promise.allSettled([good, swallowing]);
    for (const s of settled) {
      assert.equal(s.status, 'rejected', 'no result is released from a batch that did not commit');
      assert.equal((s.reason as CustosError).code, 'store_unavailable');
      assert.match((s.reason as CustosError).cause instanceof Error ? String((s.reason as CustosError).cause) : '', /ROLLBACK/);
    }
    assert.deepEqual(await store.query('SELECT id FROM api_keys ORDER BY id'), [{ id: 'aaaaaaaaaaaaaaaa' }], 'nothing of the batch was committed');
    // the writer connection is usable again
    assert.equal(await store.transact(async (tx) => (await tx.appendAudit(entry(1))).seq), 1);
  });

  it('two stores (two replicas’ worth) appending at once keep one gap-free chain', async () => {
    const url = freshUrl();
    const a = await open(url);
    const b = await open(url);
    await Promise.all(Array.from({ length: 60 }, (_, i) => (i % 2 === 0 ? a : b).transact((tx) => tx.appendAudit(entry(i)))));
    const verdict = await verifyAuditChain(readAuditPages(a));
    assert.deepEqual(verdict.ok ? verdict.records : verdict, 60);
    await a.close();
    await b.close();
  });

  it('a connection lost in the middle of a batch fails it with store_unavailable; the next batch reconnects', async () => {
    const url = freshUrl();
    const store = await open(url);
    assert.equal(await store.transact(async (tx) => (await tx.appendAudit(entry(1))).seq), 1);
    const schema = new URL(url).searchParams.get('schema');
    const doomed = store.transact(async (tx) => {
      await tx.appendAudit(entry(2));
      // The database goes away while this batch's transaction is open.
      const killed = await admin(
        async (c) => (await c.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1', [`custos:${schema}`])).rowCount,
      );
      assert.ok((killed ?? 0) >= 1, 'the writer connection was terminated');
      await tx.appendAudit(entry(3));
    });
    await assert.rejects(doomed, (e: unknown) => e instanceof CustosError && e.code === 'store_unavailable');
    assert.equal(await store.transact(async (tx) => (await tx.appendAudit(entry(4))).seq), 2, 'nothing of the failed batch was kept: no gap');
    const verdict = await verifyAuditChain(readAuditPages(store));
    assert.deepEqual(verdict.ok ? verdict.records : verdict, 2);
    await store.close();
    assert.equal(await store.ping(), false);
  });

  it('a replica stuck inside a batch does not stall the others forever: they fail closed after the lock timeout', async () => {
    const url = freshUrl();
    const stuck = await open(url);
    const other = await open(url);
    let release: () => void = () => undefined;
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    let entered: () => void = () => undefined;
    const inside = new Promise<void>((resolve) => {
      entered = resolve;
    });
    // This batch holds the audit-head lock until we let it go (a frozen replica).
    const blocking = stuck.transact(async (tx) => {
      await tx.appendAudit(entry(1));
      entered();
      await held;
    });
    await inside;
    const started = Date.now();
    await assert.rejects(
      other.transact((tx) => tx.appendAudit(entry(2))),
      (e: unknown) => e instanceof CustosError && e.code === 'store_unavailable',
    );
    const waited = Date.now() - started;
    assert.ok(waited >= 4_000 && waited < 20_000, `refused after the 5 s lock timeout, not never (waited ${waited} ms)`);
    release();
    await blocking;
    assert.equal(await other.transact(async (tx) => (await tx.appendAudit(entry(3))).seq), 2, 'served again once the lock is free');
    await stuck.close();
    await other.close();
  });

  it('an unreachable server is store_unavailable at open, naming no password', async () => {
    await assert.rejects(PostgresStore.open({ connectionString: 'postgres://custos:hunter2-secret@127.0.0.1:1/custos' }), (e: unknown) => {
      assert.ok(e instanceof CustosError);
      assert.equal(e.code, 'store_unavailable');
      assert.ok(!e.message.includes('hunter2-secret'));
      return true;
    });
  });
});
