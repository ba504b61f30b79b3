import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { createApiKey, Kernel } from '@custos/kernel';
import Database from 'better-sqlite3';
import pg from 'pg';
import { buildApp } from './buildApp.js';
import { DB_FILE, openStore, parseStoreUrl, type StoreLocation } from './openStore.js';
import { POSTGRES_MIGRATIONS } from './stores/postgres/migrations.js';
import { SQLITE_MIGRATIONS } from './stores/sqlite/migrations.js';
import {
  createTestSigner,
  dropTestSchema,
  freshTestStoreLocation,
  RAW_HASHES_ALLOWED,
  recordTestSecret,
  runSql,
  TEST_PASSPHRASE,
  type TestSigner,
} from './testing/createTestSigner.js';
import { totpFromUri } from './testing/totpFromUri.js';

// Issue 9, points 5 and 6 on upgrade: a store made with the version-1 schema (no tenants, no MACs)
// is migrated; every wallet belongs to `default`, a key that held `admin` moves to `system`, and the
// first unseal MACs every existing row in one audited unit before the barrier serves a request.

const T0 = Date.UTC(2026, 10, 22, 12, 0, 15);
const HASH = `0x${'aa'.repeat(32)}`;

/** The version-1 tables and the columns they had. */
const V1_COLUMNS: Record<string, string> = {
  meta: 'id, signer_id, derivation, sealed_root, created_at',
  api_keys: 'id, name, scopes, secret_hash, created_at, revoked_at',
  wallets: 'name, created_at',
  totp_factors: 'wallet_name, secret_envelope, last_accepted_step, failures, locked_until_ms, created_at',
  audit_log: 'seq, ts, app_id, wallet_name, action, op_hash, decision, reason, detail, prev_hash, hash',
};

/** Version 1 wrote no store.mac_records record (the source signer, made with this version, wrote one at init). */
const V1_WHERE: Record<string, string> = { audit_log: " WHERE action <> 'store.mac_records'" };

/**
 * A store made with the version-1 schema only (migration 1's SQL, schema_migrations at 1), holding
 * the rows of `source` as version 1 had them: the state of a deployment before this upgrade.
 */
async function copyAsVersion1(source: TestSigner): Promise<StoreLocation> {
  const target = freshTestStoreLocation();
  if ('dataDir' in source.location && 'dataDir' in target) {
    const db = new Database(join(target.dataDir, DB_FILE));
    try {
      db.exec('CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)');
      db.exec(SQLITE_MIGRATIONS[0]?.sql ?? '');
      db.prepare("INSERT INTO schema_migrations VALUES (1, 'kernel', 0)").run();
      db.prepare('ATTACH DATABASE ? AS old').run(join(source.location.dataDir, DB_FILE));
      for (const [table, columns] of Object.entries(V1_COLUMNS))
        db.exec(`INSERT INTO main.${table} (${columns}) SELECT ${columns} FROM old.${table}${V1_WHERE[table] ?? ''}`);
      db.exec('DETACH DATABASE old');
    } finally {
      db.close();
    }
    return target;
  }
  if (!('url' in source.location) || !('url' in target)) throw new Error('mixed store kinds');
  const from = parseStoreUrl(source.location.url).schema;
  const { connectionString, schema: to } = parseStoreUrl(target.url);
  const client = new pg.Client({ connectionString });
  await client.connect();
  try {
    await client.query(`CREATE SCHEMA ${to}`);
    await client.query(`SET search_path = ${to}`);
    await client.query('CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)');
    await client.query(POSTGRES_MIGRATIONS[0]?.sql ?? '');
    await client.query("INSERT INTO schema_migrations VALUES (1, 'kernel', 0)");
    for (const [table, columns] of Object.entries(V1_COLUMNS))
      await client.query(`INSERT INTO ${to}.${table} (${columns}) SELECT ${columns} FROM ${from}.${table}${V1_WHERE[table] ?? ''}`);
    await client.query(`UPDATE ${to}.audit_head SET seq = h.seq, hash = h.hash FROM ${from}.audit_head h`);
  } finally {
    await client.end();
  }
  return target;
}

describe('upgrade of a version-1 store (schema migration 2, tenants_and_macs)', () => {
  it(
    'existing wallets belong to default, admin keys to system; the first unseal MACs every row in one audited unit; factor states survive',
    { timeout: 120_000 },
    async () => {
      // Before the upgrade: two enrolled wallets (one with an accepted step, one with a failure), a sign key and an admin key.
      const source = await createTestSigner({ startMs: T0, policyDefaults: RAW_HASHES_ALLOWED });
      const enroll = async (walletName: string) =>
        (await source.app.inject({ method: 'POST', url: '/v1/totp/enroll', headers: source.auth(), payload: { walletName } })).json().otpauthUri as string;
      const sign = (app: TestSigner['app'], key: string, body: Record<string, unknown>) =>
        app.inject({ method: 'POST', url: '/v1/sign/hash', headers: { authorization: `Bearer ${key}` }, payload: { keyIndex: 0, hash: HASH, ...body } });
      const aliceUri = await enroll('old-alice');
      const bobUri = await enroll('old-bob');
      const aliceCode = totpFromUri(aliceUri, T0);
      assert.equal((await sign(source.app, source.apiKey, { walletName: 'old-alice', code: aliceCode })).statusCode, 200);
      const bobWrong = String((Number(totpFromUri(bobUri, T0)) + 1) % 1_000_000).padStart(6, '0');
      assert.equal((await sign(source.app, source.apiKey, { walletName: 'old-bob', code: bobWrong })).json().error.code, 'code_invalid');
      assert.equal((await sign(source.app, source.apiKey, { walletName: 'old-carol' })).statusCode, 200); // a wallet with no factor
      const admin = await createApiKey(source.store, { name: 'ops', scopes: ['admin', 'derive'], tenant: 'system' });
      recordTestSecret('apiKey', admin.token);
      const location = await copyAsVersion1(source);
      await source.close();

      // The version-1 store opens: migration 2 runs; the rows are not MAC'd yet (that needs the barrier).
      const store = await openStore(location);
      const sql = (text: string, ...params: unknown[]) => runSql(store, text, params);
      try {
        assert.deepEqual((await store.schemaVersions()).slice(0, 2), [1, 2]);
        assert.deepEqual(await sql('SELECT name, tenant, mac FROM wallets ORDER BY name'), [
          { name: 'old-alice', tenant: 'default', mac: null },
          { name: 'old-bob', tenant: 'default', mac: null },
          { name: 'old-carol', tenant: 'default', mac: null },
        ]);
        // A MAC present before the pass (here a forged one) is never replaced by it: the row stays unreadable.
        await sql("UPDATE wallets SET mac = 'aa' WHERE name = 'old-carol'");
        const tenants = await sql('SELECT id, tenant FROM api_keys ORDER BY id');
        assert.deepEqual(
          tenants.find((k) => k.id === admin.id),
          { id: admin.id, tenant: 'system' },
        );
        assert.ok(tenants.filter((k) => k.id !== admin.id).every((k) => k.tenant === 'default'));
        const clock = { now: T0 + 30_000 };
        const kernel = await Kernel.open({ store, now: () => clock.now, policyDefaults: RAW_HASHES_ALLOWED });
        assert.equal(Number((await sql('SELECT records_mac_pending FROM meta'))[0]?.records_mac_pending), 1);
        const seqBefore = Number((await sql('SELECT max(seq) AS s FROM audit_log'))[0]?.s);

        await kernel.unseal(new TextEncoder().encode(TEST_PASSPHRASE));
        const records = await sql('SELECT seq, action, decision, detail FROM audit_log WHERE seq > $1 ORDER BY seq', seqBefore);
        assert.deepEqual(
          records.map((r) => [r.action, r.decision, JSON.parse(String(r.detail))]),
          [
            ['store.mac_records', 'allowed', { wallets: 2, factors: 2 }], // old-carol's (forged) MAC kept
            ['sys.unseal', 'allowed', { unsealer: 'passphrase' }],
          ],
        );
        assert.equal(Number((await sql('SELECT records_mac_pending FROM meta'))[0]?.records_mac_pending), 0);
        for (const table of ['wallets', 'totp_factors'])
          assert.equal(Number((await sql(`SELECT count(*) AS n FROM ${table} WHERE mac IS NULL`))[0]?.n), 0, `${table} all MAC'd`);

        // The states were MAC'd as they were: the used code is still used, the failure still counted.
        const app = await buildApp({ kernel });
        try {
          assert.equal(Number((await sql('SELECT failures FROM totp_factors WHERE wallet_name = $1', 'old-bob'))[0]?.failures), 1);
          const { token: keyB } = await createApiKey(store, { name: 'backend b', tenant: 'tenant-b', scopes: ['derive', 'sign'] });
          recordTestSecret('apiKey', keyB);
          assert.equal((await sign(app, keyB, { walletName: 'old-alice' })).json().error.code, 'wallet_not_found');
          const { token: keyA } = await createApiKey(store, { name: 'backend a', scopes: ['sign'] });
          recordTestSecret('apiKey', keyA);
          assert.equal((await sign(app, keyA, { walletName: 'old-alice', code: aliceCode })).json().error.code, 'code_reused');
          const fresh = await sign(app, keyA, { walletName: 'old-alice', code: totpFromUri(aliceUri, clock.now) });
          assert.equal(fresh.statusCode, 200, fresh.body);
          // The pass ran once: sealed and unsealed again, there is no second store.mac_records.
          const seal = await app.inject({ method: 'POST', url: '/v1/sys/seal', headers: { authorization: `Bearer ${admin.token}` } });
          assert.equal(seal.statusCode, 200, seal.body);
          await kernel.unseal(new TextEncoder().encode(TEST_PASSPHRASE));
          assert.equal(Number((await sql("SELECT count(*) AS n FROM audit_log WHERE action = 'store.mac_records'"))[0]?.n), 1);
          assert.equal((await sign(app, keyA, { walletName: 'old-carol' })).json().error.code, 'record_unreadable');
          assert.deepEqual(await sql("SELECT mac FROM wallets WHERE name = 'old-carol'"), [{ mac: 'aa' }]);

          // Re-arming the pass: a writer resets old-alice's state, nulls its MACs and sets the mark again.
          // The log holds the pass's record: the next unseal refuses the pass (denied record), writes no MAC.
          assert.equal((await app.inject({ method: 'POST', url: '/v1/sys/seal', headers: { authorization: `Bearer ${admin.token}` } })).statusCode, 200);
          await sql("UPDATE totp_factors SET last_accepted_step = NULL, failures = 0, mac = NULL WHERE wallet_name = 'old-alice'");
          await sql("UPDATE wallets SET mac = NULL WHERE name = 'old-alice'");
          await sql('UPDATE meta SET records_mac_pending = 1');
          const seqRearm = Number((await sql('SELECT max(seq) AS s FROM audit_log'))[0]?.s);
          await kernel.unseal(new TextEncoder().encode(TEST_PASSPHRASE));
          assert.deepEqual(
            (await sql('SELECT action, decision, reason FROM audit_log WHERE seq > $1 ORDER BY seq', seqRearm)).map((r) => [r.action, r.decision, r.reason]),
            [
              ['store.mac_records', 'denied', 'record_unreadable'],
              ['sys.unseal', 'allowed', null],
            ],
          );
          assert.equal(Number((await sql('SELECT records_mac_pending FROM meta'))[0]?.records_mac_pending), 0);
          assert.equal((await sign(app, keyA, { walletName: 'old-alice', code: aliceCode })).json().error.code, 'record_unreadable');
        } finally {
          await app.close();
          kernel.seal();
        }
      } finally {
        await store.close();
        if ('url' in location) await dropTestSchema(location.url);
      }
    },
  );
});
