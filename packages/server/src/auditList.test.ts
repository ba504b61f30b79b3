import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createApiKey } from '@custos/kernel';
import { createTestSigner, TEST_PASSPHRASE, type TestSigner } from './testing/createTestSigner.js';

// Issue 15 point 4, "audit you can use": GET /v1/audit reads the log filtered (wallet, app, action,
// decision, opHash, time range), oldest first, a page at a time with an opaque cursor that stays
// right while records are appended; only an operator key (scope admin, tenant system) reads it, a
// refusal is itself audited; bad input is 400 invalid_input naming the field; no secret in a
// record. One signer for the file, on the store of the pass (SQLite, PostgreSQL).

const T0 = Date.UTC(2026, 11, 1, 12, 0, 0);
const DAY = 86_400_000;
const HASH = 'ab'.repeat(32);

interface Page {
  records: Array<{
    seq: number;
    ts: number;
    appId: string | null;
    walletName: string | null;
    action: string;
    decision: string;
    opHash: string | null;
    reason: string | null;
  }>;
  nextCursor: string;
  more: boolean;
}

let signer: TestSigner;
let operator: string;
let operatorId: string;
let signOnly: { id: string; token: string };
let deriveOnly: { id: string; token: string };
let systemNoAdmin: string;

async function list(query: string, key = operator) {
  return signer.app.inject({ method: 'GET', url: `/v1/audit${query === '' ? '' : `?${query}`}`, headers: signer.auth(key) });
}
async function page(query: string): Promise<Page> {
  const res = await list(query);
  assert.equal(res.statusCode, 200, res.body);
  return res.json() as Page;
}
async function signHash(walletName: string, key: string) {
  return signer.app.inject({ method: 'POST', url: '/v1/sign/hash', headers: signer.auth(key), payload: { walletName, keyIndex: 0, hash: HASH } });
}

before(async () => {
  signer = await createTestSigner({ startMs: T0, policyDefaults: { rawHash: 'allow' } });
  const ops = await createApiKey(signer.store, { name: 'ops', scopes: ['admin'], tenant: 'system' });
  operator = ops.token;
  operatorId = ops.id;
  const s = await createApiKey(signer.store, { name: 'backend', scopes: ['sign'] });
  signOnly = { id: s.id, token: s.token };
  const d = await createApiKey(signer.store, { name: 'reader', scopes: ['derive'] });
  deriveOnly = { id: d.id, token: d.token };
  systemNoAdmin = (await createApiKey(signer.store, { name: 'sys-signer', scopes: ['sign'], tenant: 'system' })).token;
  // a week of activity: alice signs on day 0 and day 6, bob on day 3; the derive-only key is refused on alice at day 6
  for (const [day, wallet, key, status] of [
    [0, 'alice', signOnly.token, 200],
    [3, 'bob', signOnly.token, 200],
    [6, 'alice', signOnly.token, 200],
    [6, 'alice', deriveOnly.token, 403],
  ] as const) {
    signer.clock.now = T0 + day * DAY;
    assert.equal((await signHash(wallet, key)).statusCode, status);
  }
});

after(async () => {
  await signer?.close();
});

describe('GET /v1/audit', () => {
  test('"what did wallet alice sign last week, and who asked": one query, the allowed signatures with their app', async () => {
    const since = signer.clock.now - 7 * DAY;
    const { records, more } = await page(`walletName=alice&action=sign.hash&decision=allowed&since=${since}`);
    assert.equal(more, false);
    assert.deepEqual(
      records.map((r) => [r.walletName, r.action, r.decision, r.appId, r.ts]),
      [
        ['alice', 'sign.hash', 'allowed', signOnly.id, T0],
        ['alice', 'sign.hash', 'allowed', signOnly.id, T0 + 6 * DAY],
      ],
    );
    // each filter narrows on its own: the refusal by app and decision, the time range, the opHash
    const denied = await page(`appId=${deriveOnly.id}&decision=denied`);
    assert.deepEqual(
      denied.records.map((r) => [r.walletName, r.action, r.reason]),
      [['alice', 'sign.hash', 'forbidden_scope']],
    );
    const midweek = await page(`action=sign.hash&since=${T0 + DAY}&until=${T0 + 6 * DAY}`);
    assert.deepEqual(
      midweek.records.map((r) => r.walletName),
      ['bob'],
    );
    // a prefix: every signing action
    assert.deepEqual(
      (await page(`walletName=alice&action=sign.*&decision=allowed&since=${since}`)).records.map((r) => r.action),
      ['sign.hash', 'sign.hash'],
    );
    assert.equal((await page('action=sig.*')).records.length, 0);
    const opHash = records[0]?.opHash;
    assert.match(opHash ?? '', /^[0-9a-f]{64}$/);
    const byHash = await page(`opHash=${opHash}`);
    assert.ok(byHash.records.length >= 1 && byHash.records.every((r) => r.opHash === opHash));
  });

  test('pages oldest first by cursor; records appended between pages come after it, none twice, none skipped', async () => {
    const all = (await page('limit=1000')).records.map((r) => r.seq);
    assert.deepEqual(
      all,
      [...all].sort((a, b) => a - b),
    );
    const seen: number[] = [];
    let cursor: string | undefined;
    let appended = 0;
    for (;;) {
      const p = await page(`limit=2${cursor === undefined ? '' : `&cursor=${cursor}`}`);
      seen.push(...p.records.map((r) => r.seq));
      cursor = p.nextCursor;
      // a concurrent writer: one more signature while the reader is in the middle
      if (appended < 2) {
        appended += 1;
        assert.equal((await signHash('carol', signOnly.token)).statusCode, 200);
      }
      if (!p.more && appended >= 2) {
        const tail = await page(`limit=2&cursor=${cursor}`);
        if (tail.records.length === 0) break;
        seen.push(...tail.records.map((r) => r.seq));
        cursor = tail.nextCursor;
      }
    }
    const now = (await page('limit=1000')).records.map((r) => r.seq);
    assert.deepEqual(seen, now, 'every record once, in order');
    assert.equal(now.length, all.length + 2);
    // the last cursor is where a follower polls from: nothing new, the same cursor back
    const idle = await page(`cursor=${cursor}`);
    assert.deepEqual([idle.records.length, idle.nextCursor, idle.more], [0, cursor, false]);
  });

  test('only an operator key reads it: a key without admin (any tenant) is forbidden_scope, and the refusal is audited as audit.read', async () => {
    for (const key of [signOnly.token, deriveOnly.token, systemNoAdmin]) {
      const res = await list('', key);
      assert.equal(res.statusCode, 403, res.body);
      assert.equal((res.json() as { error: { code: string } }).error.code, 'forbidden_scope');
    }
    const refusals = await page('action=audit.read');
    assert.equal(refusals.records.length, 3);
    assert.ok(refusals.records.every((r) => r.decision === 'denied' && r.reason === 'forbidden_scope'));
    const unauthenticated = await signer.app.inject({ method: 'GET', url: '/v1/audit' });
    assert.equal(unauthenticated.statusCode, 401);
    // an allowed read writes nothing
    const before = (await page('limit=1000')).records.length;
    await page('walletName=alice');
    assert.equal((await page('limit=1000')).records.length, before);
    assert.ok(operatorId.length > 0);
  });

  test('bad input is 400 invalid_input naming the field, never 5xx', async () => {
    for (const [query, field] of [
      ['limit=0', 'limit'],
      ['limit=1001', 'limit'],
      ['limit=x', 'limit'],
      ['decision=maybe', 'decision'],
      ['opHash=XYZ', 'opHash'],
      [`opHash=${'A'.repeat(64)}`, 'opHash'],
      ['since=yesterday', 'since'],
      ['until=-1', 'until'],
      [`since=${T0}&until=${T0}`, 'until'],
      ['since=9999999999999999', 'since'],
      ['cursor=42', 'cursor'],
      ['cursor=s%2F..', 'cursor'],
      [`cursor=${'s'.repeat(40)}`, 'cursor'],
      ['action=Sign%20Hash', 'action'],
      ['action=sign.h*', 'action'],
      ['action=*', 'action'],
      [`action=${'a'.repeat(65)}`, 'action'],
      ['appId=a%20b', 'appId'],
      [`walletName=${'w'.repeat(257)}`, 'walletName'],
      ['walletName=', 'walletName'],
      ['wallet=alice', 'wallet'],
    ] as const) {
      const res = await list(query);
      assert.equal(res.statusCode, 400, `${query}: ${res.body}`);
      const body = res.json() as { error: { code: string; details: { field: string } } };
      assert.equal(body.error.code, 'invalid_input', query);
      assert.equal(body.error.details.field, field, `${query}: ${res.body}`);
    }
  });

  test('no secret in what it returns: no API key secret, no passphrase', async () => {
    const res = await list('limit=1000');
    for (const secret of [operator, signOnly.token, deriveOnly.token, systemNoAdmin, signer.apiKey, TEST_PASSPHRASE]) {
      // a token is ck1.<id>.<secret>: the id is public (appId), the secret part never shows
      const secretPart = secret.split('.').at(-1) ?? secret;
      assert.ok(!res.body.includes(secret), 'a token');
      assert.ok(!res.body.includes(secretPart), 'a token secret');
    }
  });
});
