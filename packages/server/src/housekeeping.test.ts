import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { DEFAULT_RETENTION_MS, Kernel, purgeSteps } from '@custos/kernel';
import { openStore } from './openStore.js';
import { expectCode } from './testing/expectCode.js';
import { createTestSigner, TEST_PASSPHRASE, type TestSigner } from './testing/createTestSigner.js';

// Housekeeping (issue 15 point 13, kernel/housekeeping.ts): finished approvals, enrolment links and
// outbox rows past the retention are deleted; live rows, rows within the retention and the audit log
// are kept; two kernels on one store (two replicas) running it at once delete each row once. The
// rows are written with SQL (what is deleted is decided by state and time alone: no MAC is read).

const DAY = 86_400_000;
const T0 = Date.UTC(2026, 0, 1);
const OLD = T0 - DEFAULT_RETENTION_MS - DAY;
const RECENT = T0 - DAY;
/** More than one batch (500 rows per unit). */
const MANY = 620;

describe('housekeeping', () => {
  let signer: TestSigner;

  before(async () => {
    signer = await createTestSigner({ startMs: T0 });
  });
  after(async () => {
    await signer.close();
  });

  const approval = (id: string, state: string, expiresAt: number) =>
    signer.sql(
      `INSERT INTO approvals (id, tenant, api_key_id, wallet_name, key_index, op_type, op_hash, summary, summary_text, required_strength, capability_hash, state, created_at, expires_at, mac)
       VALUES ($1, 'default', 'k', 'w', 0, 'hash', $2, '{}', '', 'present', $3, $4, $5, $6, 'mac')`,
      id,
      '0'.repeat(64),
      `cap-${id}`,
      state,
      expiresAt - 600_000,
      expiresAt,
    );
  const link = (id: string, state: string, expiresAt: number) =>
    signer.sql(
      `INSERT INTO enrollment_links (id, tenant, api_key_id, wallet_name, kind, capability_hash, state, created_at, expires_at, pending, failures, mac)
       VALUES ($1, 'default', 'k', 'w', 'totp', $2, $3, $4, $5, '{}', 0, 'mac')`,
      id,
      `cap-${id}`,
      state,
      expiresAt - 600_000,
      expiresAt,
    );
  const message = (id: string, status: string, createdAt: number) =>
    signer.sql(
      `INSERT INTO outbox (id, wallet_name, approval_id, status, attempts, next_attempt_at, created_at, expires_at, envelope)
       VALUES ($1, 'w', NULL, $2, 1, $3, $4, $5, 'sealed')`,
      id,
      status,
      createdAt,
      createdAt,
      createdAt + 300_000,
    );
  const stored = (key: string, createdAt: number) =>
    signer.sql(
      `INSERT INTO idempotency_keys (tenant, api_key_id, idempotency_key, request_hash, response, created_at) VALUES ('default', 'k', $1, 'h', 'sealed', $2)`,
      key,
      createdAt,
    );
  const ids = async (table: string) => (await signer.sql(`SELECT id FROM ${table} ORDER BY id`)).map((r) => String(r.id));

  test('deletes finished rows past the retention and keeps the rest', async () => {
    for (const state of ['consumed', 'rejected', 'expired', 'cancelled']) await approval(`old-${state}`, state, OLD);
    // open ones are the expiry sweep's (it marks them expired first), recent ones are kept
    await approval('old-pending', 'pending', OLD);
    await approval('old-approved', 'approved', OLD);
    await approval('recent-consumed', 'consumed', RECENT);
    for (const state of ['completed', 'pending', 'expired']) await link(`old-${state}`, state, OLD);
    await link('recent-completed', 'completed', RECENT);
    for (const status of ['sent', 'failed', 'expired']) await message(`old-${status}`, status, OLD);
    await message('old-queued', 'queued', OLD);
    await message('recent-sent', 'sent', RECENT);
    // idempotency records live 24 h whatever the retention: one 24 h old goes, one a minute younger stays
    await stored('day-old', T0 - DAY);
    await stored('fresh', T0 - DAY + 60_000);
    const auditBefore = await signer.sql('SELECT COUNT(*) AS n FROM audit_log');

    assert.deepEqual(await signer.kernel.runHousekeeping(), { approvals: 4, enrollmentLinks: 3, outbox: 3, idempotency: 1 });
    assert.deepEqual(
      (await signer.sql('SELECT idempotency_key FROM idempotency_keys')).map((r) => String(r.idempotency_key)),
      ['fresh'],
    );
    assert.deepEqual(await ids('approvals'), ['old-approved', 'old-pending', 'recent-consumed']);
    assert.deepEqual(await ids('enrollment_links'), ['recent-completed']);
    assert.deepEqual(await ids('outbox'), ['old-queued', 'recent-sent']);
    // nothing of the audit log is touched (nor added: deleting decides nothing)
    assert.deepEqual(await signer.sql('SELECT COUNT(*) AS n FROM audit_log'), auditBefore);
    // the clock moves past the retention of the recent ones: they go too
    signer.clock.now = T0 + DEFAULT_RETENTION_MS;
    assert.deepEqual(await signer.kernel.runHousekeeping(), { approvals: 1, enrollmentLinks: 1, outbox: 1, idempotency: 1 });
    signer.clock.now = T0;
  });

  test('two replicas at once delete each row once, in batches', async () => {
    await signer.sql('DELETE FROM approvals');
    await signer.sql(
      `INSERT INTO approvals (id, tenant, api_key_id, wallet_name, key_index, op_type, op_hash, summary, summary_text, required_strength, capability_hash, state, created_at, expires_at, mac)
       WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ${MANY})
       SELECT 'bulk-' || i, 'default', 'k', 'w', 0, 'hash', $1, '{}', '', 'present', 'cap-bulk-' || i, 'consumed', $2, $3, 'mac' FROM n`,
      '0'.repeat(64),
      OLD - 600_000,
      OLD,
    );
    const store = await openStore(signer.location);
    const replica = await Kernel.open({ store, now: () => signer.clock.now });
    try {
      await replica.unseal(new TextEncoder().encode(TEST_PASSPHRASE));
      const results = await Promise.all([signer.kernel.runHousekeeping(), replica.runHousekeeping()]);
      assert.equal(
        results.reduce((sum, r) => sum + (r.approvals ?? 0), 0),
        MANY,
      );
      assert.deepEqual(await ids('approvals'), []);
      // sealed, it deletes nothing (every entry point checks sealed first)
      replica.seal();
      await expectCode(replica.runHousekeeping(), 'sealed');
    } finally {
      replica.seal();
      await store.close();
    }
  });

  test('a retention under one day is refused (the outbox hourly caps count its rows)', () => {
    assert.throws(() => purgeSteps({ retentionMs: DAY - 1 }), { code: 'invalid_input' });
    assert.equal(purgeSteps({ retentionMs: DAY }).length, 4);
  });
});
