import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createApiKey, type ErrorCode, Kernel } from '@custos/kernel';
import type { LightMyRequestResponse } from 'fastify';
import { openStore } from './openStore.js';
import { assertWellFormed } from './testing/assertWellFormed.js';
import { createTestSigner, RAW_HASHES_ALLOWED, recordTestSecret, TEST_PASSPHRASE, type TestSigner } from './testing/createTestSigner.js';
import { totpFromUri } from './testing/totpFromUri.js';

// Idempotency keys (issue 15 point 6, kernel/idempotency.ts, docs/idempotency.md): a retry of a sign
// or approval request under its Idempotency-Key gets the stored result — no second decision, no
// second audit record, no consent checked or spent — per (tenant, API key), for 24 h; the same key
// with another operation is idempotency_conflict; refusals are not stored. One signer for the file
// (each test its own wallet), a fake clock; both stores (scripts/test.mjs runs the PostgreSQL pass).

/** The middle of a 30 s step, so that ±1 step stays well-defined. */
const START_MS = 1_700_000_010_000;
const HASH = `0x${'ab'.repeat(32)}`;
const OTHER_HASH = `0x${'cd'.repeat(32)}`;
const DAY_MS = 24 * 60 * 60 * 1000;

let signer: TestSigner;
before(async () => {
  signer = await createTestSigner({ policyDefaults: RAW_HASHES_ALLOWED, startMs: START_MS, appOptions: { publicUrl: 'https://custos.example.com' } });
});
after(async () => {
  await signer.close();
});

let wallets = 0;
/** A fresh wallet with TOTP enrolled; its otpauth URI. The clock moves one step on, so each test's codes are new. */
async function enrolledWallet(): Promise<{ walletName: string; uri: string }> {
  signer.clock.now += 30_000;
  const walletName = `idem-${++wallets}@example.com`;
  const res = await signer.app.inject({ method: 'POST', url: '/v1/totp/enroll', headers: signer.auth(), payload: { walletName } });
  assert.equal(res.statusCode, 200, res.body);
  return { walletName, uri: (res.json() as { otpauthUri: string }).otpauthUri };
}

function post(url: string, payload: Record<string, unknown>, key: string | undefined, apiKey = signer.apiKey): Promise<LightMyRequestResponse> {
  return signer.app.inject({
    method: 'POST',
    url,
    headers: { ...signer.auth(apiKey), ...(key === undefined ? {} : { 'idempotency-key': key }) },
    payload,
  });
}

function code(uri: string, stepOffset = 0): string {
  return totpFromUri(uri, signer.clock.now, stepOffset);
}

function assertError(res: LightMyRequestResponse, status: number, errorCode: 'invalid_input' | ErrorCode, field?: string): void {
  assert.equal(res.statusCode, status, res.body);
  const { error } = res.json() as { error: { code: string; details: Record<string, unknown> } };
  assert.equal(error.code, errorCode, res.body);
  if (field !== undefined) assert.equal(error.details.field, field, res.body);
  assertWellFormed(res, `${status} ${errorCode}`, { allowed5xx: ['record_unreadable'] });
}

async function allowedRecords(action: string, opHash: string): Promise<number> {
  const [row] = await signer.sql("SELECT count(*) AS n FROM audit_log WHERE action = $1 AND op_hash = $2 AND decision = 'allowed'", action, opHash);
  return Number(row?.n);
}

describe('Idempotency-Key on the sign and approval routes', () => {
  test('a retry with a newly typed code returns the stored result; the new code is not spent (the owner can still use it); one allowed record', async () => {
    const { walletName, uri } = await enrolledWallet();
    const body = { walletName, keyIndex: 0, hash: HASH };
    const first = await post('/v1/sign/hash', { ...body, code: code(uri) }, 'retry-1');
    assert.equal(first.statusCode, 200, first.body);
    // The response was lost; the owner types the next step's code and the backend retries under the same key.
    signer.clock.now += 30_000;
    const newCode = code(uri);
    const retry = await post('/v1/sign/hash', { ...body, code: newCode }, 'retry-1');
    assert.equal(retry.statusCode, 200, retry.body);
    assert.deepEqual(retry.json(), first.json(), 'the stored result, auditSeq included');
    // A retry with no consent at all, or an approvalId, is the same request too.
    const bare = await post('/v1/sign/hash', body, 'retry-1');
    assert.deepEqual(bare.json(), first.json());
    const { opHash } = first.json() as { opHash: string };
    assert.equal(await allowedRecords('sign.hash', opHash), 1, 'no second allowed record');
    // The newly typed code was never checked nor consumed: it signs another operation.
    const other = await post('/v1/sign/hash', { walletName, keyIndex: 0, hash: OTHER_HASH, code: newCode }, undefined);
    assert.equal(other.statusCode, 200, other.body);
  });

  test('every chain sign route replays its own result; the same key with another body or another route is idempotency_conflict (audited), nothing signed', async () => {
    const { walletName, uri } = await enrolledWallet();
    const message = { walletName, keyIndex: 0, message: { text: 'hello' } };
    const first = await post('/v1/sign/message', { ...message, code: code(uri) }, 'msg-1');
    assert.equal(first.statusCode, 200, first.body);
    signer.clock.now += 30_000;
    assert.deepEqual((await post('/v1/sign/message', { ...message, code: code(uri) }, 'msg-1')).json(), first.json());
    // Another body under the same key: refused before any consent is read (the code is not charged).
    const conflict = await post('/v1/sign/message', { ...message, message: { text: 'hello!' }, code: code(uri) }, 'msg-1');
    assertError(conflict, 409, 'idempotency_conflict', 'Idempotency-Key');
    // Another route under the same key.
    assertError(await post('/v1/sign/hash', { walletName, keyIndex: 0, hash: HASH, code: code(uri) }, 'msg-1'), 409, 'idempotency_conflict');
    // Another key index is another operation.
    assertError(await post('/v1/sign/message', { ...message, keyIndex: 1, code: code(uri) }, 'msg-1'), 409, 'idempotency_conflict');
    const [denied] = await signer.sql(
      "SELECT count(*) AS n FROM audit_log WHERE wallet_name = $1 AND decision = 'denied' AND reason LIKE $2",
      walletName,
      '%idempotency_conflict%',
    );
    assert.equal(Number(denied?.n), 3, 'each conflict audited');
    // The code the conflicts carried is still good: none of them charged or consumed it.
    const fresh = await post('/v1/sign/message', { ...message, message: { text: 'other' }, code: code(uri) }, undefined);
    assert.equal(fresh.statusCode, 200, fresh.body);
  });

  test('a refusal is not stored: after a wrong code, a retry under the same key with the right code signs', async () => {
    const { walletName, uri } = await enrolledWallet();
    const body = { walletName, keyIndex: 0, hash: HASH };
    const right = code(uri);
    const wrong = right === '000000' ? '000001' : '000000';
    assertError(await post('/v1/sign/hash', { ...body, code: wrong }, 'wrong-then-right'), 403, 'code_invalid');
    const res = await post('/v1/sign/hash', { ...body, code: right }, 'wrong-then-right');
    assert.equal(res.statusCode, 200, res.body);
  });

  test('keys are per API key and tenant: the same key under another API key (same tenant, or another tenant) is its own request, nothing leaks', async () => {
    const { walletName, uri } = await enrolledWallet();
    const body = { walletName, keyIndex: 0, hash: HASH };
    const first = await post('/v1/sign/hash', { ...body, code: code(uri) }, 'shared-key');
    assert.equal(first.statusCode, 200, first.body);
    const { token: sameTenant } = await createApiKey(signer.store, { name: 'b', scopes: ['sign'], tenant: 'default' });
    const { token: otherTenant } = await createApiKey(signer.store, { name: 'c', scopes: ['sign'], tenant: 'other' });
    recordTestSecret('apiKey', sameTenant);
    recordTestSecret('apiKey', otherTenant);
    // Without a code, the other key's request is decided on its own: code_required, not the stored signature.
    assertError(await post('/v1/sign/hash', body, 'shared-key', sameTenant), 403, 'code_required');
    assertError(await post('/v1/sign/hash', body, 'shared-key', otherTenant), 404, 'wallet_not_found');
    // And a different body under the same key is no conflict for another API key.
    signer.clock.now += 30_000;
    const own = await post('/v1/sign/hash', { ...body, hash: OTHER_HASH, code: code(uri) }, 'shared-key', sameTenant);
    assert.equal(own.statusCode, 200, own.body);
  });

  test('after 24 h a key is a new operation (the old code is reused, a new one signs anew); purgeExpiredIdempotency deletes the expired rows', async () => {
    const { walletName, uri } = await enrolledWallet();
    const body = { walletName, keyIndex: 0, hash: HASH };
    const oldCode = code(uri);
    const first = await post('/v1/sign/hash', { ...body, code: oldCode }, 'day-old');
    assert.equal(first.statusCode, 200, first.body);
    signer.clock.now += DAY_MS - 1;
    assert.deepEqual((await post('/v1/sign/hash', body, 'day-old')).json(), first.json(), 'still stored 1 ms before 24 h');
    signer.clock.now += 1;
    assertError(await post('/v1/sign/hash', body, 'day-old'), 403, 'code_required');
    const again = await post('/v1/sign/hash', { ...body, code: code(uri) }, 'day-old');
    assert.equal(again.statusCode, 200, again.body);
    assert.notEqual((again.json() as { auditSeq: number }).auditSeq, (first.json() as { auditSeq: number }).auditSeq, 'a new decision');
    assert.equal(await allowedRecords('sign.hash', (first.json() as { opHash: string }).opHash), 2);
    // The earlier tests' rows are older than 24 h: purged (opportunistically, by the unit that stored the new one); this one's kept.
    assert.deepEqual(
      (await signer.sql('SELECT idempotency_key FROM idempotency_keys')).map((r) => r.idempotency_key),
      ['day-old'],
    );
    signer.clock.now += DAY_MS - 1;
    assert.equal(await signer.kernel.purgeExpiredIdempotency(), 0, 'not yet expired');
    signer.clock.now += 1;
    assert.equal(await signer.kernel.purgeExpiredIdempotency(), 1);
    assert.deepEqual(await signer.sql('SELECT idempotency_key FROM idempotency_keys'), []);
  });

  test('concurrent duplicates wait for the first — in one process and on a second kernel (replica) on its own store connection: one signature, one record', async () => {
    const { walletName, uri } = await enrolledWallet();
    const body = { walletName, keyIndex: 0, hash: HASH, code: code(uri) };
    const replicaStore = await openStore(signer.location);
    const replica = await Kernel.open({ store: replicaStore, now: () => signer.clock.now, policyDefaults: RAW_HASHES_ALLOWED });
    await replica.unseal(new TextEncoder().encode(TEST_PASSPHRASE));
    try {
      const app = await replica.authenticateApiKey(signer.apiKey);
      const here = Array.from({ length: 4 }, () => post('/v1/sign/hash', body, 'race-1').then((r) => r.json() as Record<string, unknown>));
      const there = Array.from(
        { length: 4 },
        () => replica.signHash(app, { ...body, idempotencyKey: 'race-1' }) as unknown as Promise<Record<string, unknown>>,
      );
      const results = (await Promise.all([...here, ...there])).map(({ signature, auditSeq, opHash }) => ({ signature, auditSeq, opHash }));
      const [one] = results;
      assert.equal(typeof one?.signature, 'string', JSON.stringify(one));
      for (const result of results) assert.deepEqual(result, one);
      assert.equal(await allowedRecords('sign.hash', String(one?.opHash)), 1);
    } finally {
      replica.seal();
      await replicaStore.close();
    }
  });

  test('POST /v1/approvals: a retry returns the same approval and link (no second approval); another operation is a conflict; the stored row is sealed', async () => {
    const { walletName } = await enrolledWallet();
    const body = { walletName, keyIndex: 0, operation: { hash: HASH } };
    const first = await post('/v1/approvals', body, 'approval-1');
    assert.equal(first.statusCode, 201, first.body);
    const again = await post('/v1/approvals', body, 'approval-1');
    assert.equal(again.statusCode, 201, again.body);
    assert.deepEqual(again.json(), first.json());
    const { approveUrl } = first.json() as { approveUrl: string };
    const capability = approveUrl.slice(approveUrl.lastIndexOf('/') + 1);
    recordTestSecret('approvalCapability', capability);
    const [count] = await signer.sql('SELECT count(*) AS n FROM approvals WHERE wallet_name = $1', walletName);
    assert.equal(Number(count?.n), 1);
    assertError(await post('/v1/approvals', { ...body, ttlSeconds: 120 }, 'approval-1'), 409, 'idempotency_conflict', 'Idempotency-Key');
    // The row holds the capability only sealed under the barrier; moved to another key, it does not open.
    const [row] = await signer.sql("SELECT response FROM idempotency_keys WHERE idempotency_key = 'approval-1'");
    assert.ok(!String(row?.response).includes(capability));
    await signer.sql("UPDATE idempotency_keys SET idempotency_key = 'approval-2' WHERE idempotency_key = 'approval-1'");
    assertError(await post('/v1/approvals', body, 'approval-2'), 503, 'record_unreadable');
  });

  test('the compatibility API’s sign takes the header too: a retry with the next code gets the same r, s; a conflict across its hashes', async () => {
    const { walletName, uri } = await enrolledWallet();
    const auth = await signer.app.inject({ method: 'POST', url: '/sys/v1/session/auth', headers: { authorization: `Basic ${signer.apiKey}` } });
    assert.equal(auth.statusCode, 200, auth.body);
    const token = (auth.json() as { access_token: string }).access_token;
    recordTestSecret('accessToken', token);
    const sign = (msgHash: string, totp: string) =>
      signer.app.inject({
        method: 'POST',
        url: `/sys/v1/plugins/${signer.signerId}`,
        headers: { authorization: `Bearer ${token}`, 'idempotency-key': 'compat-1' },
        payload: { operation: 'sign', walletName, keyIndex: '0', msgHash: msgHash.slice(2), code: totp },
      });
    const first = await sign(HASH, code(uri));
    assert.equal(first.statusCode, 200, first.body);
    signer.clock.now += 30_000;
    const retry = await sign(HASH, code(uri));
    assert.deepEqual(retry.json(), first.json());
    assertError(await sign(OTHER_HASH, code(uri)), 409, 'idempotency_conflict', 'Idempotency-Key');
    // The native route is another route: the same key there is a conflict too (the key is the API key's).
    assertError(await post('/v1/sign/hash', { walletName, keyIndex: 0, hash: HASH }, 'compat-1'), 409, 'idempotency_conflict');
  });

  test('a bad header is 400 invalid_input naming Idempotency-Key, on every route that takes it; nothing is decided', async () => {
    const { walletName } = await enrolledWallet();
    const routes: Array<[string, Record<string, unknown>]> = [
      ['/v1/sign/hash', { walletName, keyIndex: 0, hash: HASH }],
      ['/v1/sign/message', { walletName, keyIndex: 0, message: { text: 'x' } }],
      ['/v1/approvals', { walletName, keyIndex: 0, operation: { hash: HASH } }],
    ];
    for (const [url, payload] of routes)
      for (const key of ['k'.repeat(129), 'has space', 'semi;colon', 'quote"d', ''])
        assertError(await post(url, payload, key), 400, 'invalid_input', 'Idempotency-Key');
    assert.equal((await post('/v1/sign/hash', routes[0]?.[1] ?? {}, 'k'.repeat(128))).statusCode, 403, 'a 128-character key is fine (then code_required)');
  });
});
