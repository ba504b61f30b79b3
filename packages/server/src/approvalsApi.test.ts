import assert from 'node:assert/strict';
import { afterEach, describe, test } from 'node:test';
import { createApiKey } from '@custos/kernel';
import type { InjectOptions, LightMyRequestResponse } from 'fastify';
import { createListener, type Listener } from './createListener.js';
import { startServer } from './startServer.js';
import { assertWellFormed } from './testing/assertWellFormed.js';
import {
  RAW_HASHES_ALLOWED,
  UNCOUNTABLE_PRESENT,
  createTestSigner,
  recordTestSecret,
  TEST_PASSPHRASE,
  type TestSigner,
  type TestSignerOptions,
} from './testing/createTestSigner.js';
import { ETHER_MAIL } from './testing/etherMail.js';
import { totpFromUri } from './testing/totpFromUri.js';

// The approvals API (issue 11, point 1): POST /v1/approvals, GET /v1/approvals/{id} (with the long
// poll), POST /v1/approvals/{id}/cancel, and approvalId on every /v1/sign/* route — bad input, the
// lifecycle end to end, tenants, the waiting pool and the long poll's timing, over inject and over
// real sockets.

/** The middle of a 30 s step, so that ±1 step stays well-defined. */
const START_MS = 1_700_000_010_000;
const PUBLIC_URL = 'https://custos.example.com';
const WALLET = 'owner@acme.com';
const HASH = `0x${'c0ffee'.repeat(10)}abcd`;
const TO = '0x3535353535353535353535353535353535353535';
const TRANSACTION = { type: 'eip1559', chainId: 1, nonce: 7, to: TO, value: '1000', gas: '21000', maxFeePerGas: '30', maxPriorityFeePerGas: '2' };
const NO_SUCH_ID = '0123456789abcdef0123456789abcdef';

const signers: TestSigner[] = [];
const listeners: Listener[] = [];
async function newSigner(options: TestSignerOptions = {}): Promise<TestSigner> {
  const signer = await createTestSigner({
    policyDefaults: RAW_HASHES_ALLOWED,
    startMs: START_MS,
    ...options,
    appOptions: { publicUrl: PUBLIC_URL, ...options.appOptions },
  });
  signers.push(signer);
  return signer;
}
afterEach(async () => {
  for (const listener of listeners.splice(0)) await listener.close(1_000);
  for (const signer of signers.splice(0)) await signer.close();
});

function assertError(res: LightMyRequestResponse, status: number, code: string, field?: string): void {
  assert.equal(res.statusCode, status, res.body);
  const body = res.json() as { error: { code: string; message: string; details: Record<string, unknown> } };
  assert.equal(body.error.code, code, res.body);
  if (field !== undefined) assert.equal(body.error.details.field, field, res.body);
  assertWellFormed(res, `${status} ${code}`);
}

/** Enrols TOTP for the wallet (so that it needs consent) and returns its otpauth URI. */
async function enroll(signer: TestSigner, walletName = WALLET, key?: string): Promise<string> {
  const res = await signer.app.inject({ method: 'POST', url: '/v1/totp/enroll', headers: signer.auth(key), payload: { walletName } });
  assert.equal(res.statusCode, 200, res.body);
  return (res.json() as { otpauthUri: string }).otpauthUri;
}

function post(signer: TestSigner, url: string, payload?: unknown, key?: string): Promise<LightMyRequestResponse> {
  const request: InjectOptions = { method: 'POST', url, headers: signer.auth(key) };
  if (payload !== undefined) request.payload = payload as NonNullable<InjectOptions['payload']>;
  return signer.app.inject(request);
}

function get(signer: TestSigner, url: string, key?: string): Promise<LightMyRequestResponse> {
  return signer.app.inject({ method: 'GET', url, headers: signer.auth(key) });
}

interface Created {
  id: string;
  approveUrl: string;
  state: string;
  opHash: string;
  summaryText: string;
  expiresAt: number;
  createdAt: number;
  [key: string]: unknown;
}

async function createApproval(
  signer: TestSigner,
  operation: Record<string, unknown> = { hash: HASH },
  extra: Record<string, unknown> = {},
  key?: string,
): Promise<Created> {
  const res = await post(signer, '/v1/approvals', { walletName: WALLET, keyIndex: 0, operation, ...extra }, key);
  assert.equal(res.statusCode, 201, res.body);
  return res.json() as Created;
}

/** The approval page's capability: the last path segment of approveUrl. */
function capabilityOf(approveUrl: string): string {
  const capability = new URL(approveUrl).pathname.split('/').at(-1) ?? '';
  recordTestSecret('approval capability', capability);
  return capability;
}

/** The owner approves on the page, with the TOTP code of the next step (each decision spends a step). */
async function approve(signer: TestSigner, created: Created, otpauthUri: string): Promise<void> {
  signer.clock.now += 30_000;
  await signer.kernel.decideApproval(capabilityOf(created.approveUrl), { decision: 'approve', kind: 'totp', proof: totpFromUri(otpauthUri, signer.clock.now) });
}

async function listen(signer: TestSigner, timeouts?: Parameters<typeof createListener>[1]['timeouts']): Promise<string> {
  const listener = await createListener(signer.app, { host: '127.0.0.1', port: 0, ...(timeouts === undefined ? {} : { timeouts }) });
  listeners.push(listener);
  return listener.url;
}

async function fetchJson(
  url: string,
  key: string,
  init: RequestInit = {},
): Promise<{ status: number; body: Record<string, unknown>; ms: number; retryAfter: string | null }> {
  const started = performance.now();
  const res = await fetch(url, {
    ...init,
    headers: { authorization: `Bearer ${key}`, ...(init.body === undefined ? {} : { 'content-type': 'application/json' }) },
  });
  const body = (await res.json()) as Record<string, unknown>;
  return { status: res.status, body, ms: performance.now() - started, retryAfter: res.headers.get('retry-after') };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('approvals API: bad input is refused by the schemas, naming the field', () => {
  test('a malformed id in the path: GET and cancel answer 400 invalid_input naming id', async () => {
    const signer = await newSigner();
    for (const id of [
      '0123456789ABCDEF0123456789ABCDEF',
      '0123456789abcdef0123456789abcde',
      '0123456789abcdef0123456789abcdef0',
      'g123456789abcdef0123456789abcdef',
      '%00',
      'x'.repeat(99),
    ]) {
      assertError(await get(signer, `/v1/approvals/${id}`), 400, 'invalid_input', 'id');
      assertError(await get(signer, `/v1/approvals/${id}?waitSeconds=5`), 400, 'invalid_input', 'id');
      assertError(await post(signer, `/v1/approvals/${id}/cancel`), 400, 'invalid_input', 'id');
    }
  });

  test('waitSeconds: 0–60 as a plain decimal, once; other query parameters are refused by name', async () => {
    const signer = await newSigner();
    for (const wait of ['61', '-1', '1.5', '01', '1e1', '0x10', '', ' 5', 'abc', '600'])
      assertError(await get(signer, `/v1/approvals/${NO_SUCH_ID}?waitSeconds=${encodeURIComponent(wait)}`), 400, 'invalid_input', 'waitSeconds');
    assertError(await get(signer, `/v1/approvals/${NO_SUCH_ID}?waitSeconds=1&waitSeconds=2`), 400, 'invalid_input', 'waitSeconds');
    assertError(await get(signer, `/v1/approvals/${NO_SUCH_ID}?wait=5`), 400, 'invalid_input', 'wait');
  });

  test('POST /v1/approvals: operation with none, two or an unknown member, not an object; each member’s own schema', async () => {
    const signer = await newSigner();
    const body = (operation: unknown, extra: Record<string, unknown> = {}) => ({ walletName: WALLET, keyIndex: 0, operation, ...extra });
    const cases: Array<[unknown, string]> = [
      [{}, 'operation'],
      [{ hash: HASH, message: { text: 'hi' } }, 'operation'],
      [{ transaction: TRANSACTION, typedData: ETHER_MAIL }, 'operation'],
      [{ hash: HASH, message: { text: 'hi' }, authorization: { chainId: 1, address: TO, nonce: 0 } }, 'operation'],
      [{ sign: HASH }, 'operation.sign'],
      [{ __proto__: null, constructor: {} }, 'operation.constructor'],
      ['0xabc', 'operation'],
      [[{ hash: HASH }], 'operation'],
      [null, 'operation'],
      [{ hash: HASH.slice(2) }, 'operation.hash'],
      [{ hash: `${HASH}00` }, 'operation.hash'],
      [{ message: { text: 'a', raw: '0x00' } }, 'operation.message'],
      [{ transaction: { ...TRANSACTION, chainId: 0 } }, 'operation.transaction.chainId'],
      [{ transaction: { ...TRANSACTION, gasLimit: '1' } }, 'operation.transaction.gasLimit'],
      [{ authorization: { chainId: 1, address: TO } }, 'operation.authorization.nonce'],
      [{ typedData: { ...ETHER_MAIL, primaryType: 7 } }, 'operation.typedData.primaryType'],
    ];
    for (const [operation, field] of cases) assertError(await post(signer, '/v1/approvals', body(operation)), 400, 'invalid_input', field);
    assertError(await post(signer, '/v1/approvals', { walletName: WALLET, keyIndex: 0 }), 400, 'invalid_input', 'operation');
  });

  test('POST /v1/approvals: ttlSeconds 60–3600 as an integer, walletName and keyIndex as on the sign routes, no unknown field', async () => {
    const signer = await newSigner();
    const op = { hash: HASH };
    for (const ttlSeconds of [59, 3601, 0, -60, 600.5, '600', null, 1e9])
      assertError(await post(signer, '/v1/approvals', { walletName: WALLET, keyIndex: 0, operation: op, ttlSeconds }), 400, 'invalid_input', 'ttlSeconds');
    assertError(await post(signer, '/v1/approvals', { walletName: '', keyIndex: 0, operation: op }), 400, 'invalid_input', 'walletName');
    assertError(await post(signer, '/v1/approvals', { walletName: WALLET, keyIndex: '0', operation: op }), 400, 'invalid_input', 'keyIndex');
    assertError(await post(signer, '/v1/approvals', { walletName: WALLET, keyIndex: 2 ** 31, operation: op }), 400, 'invalid_input', 'keyIndex');
    assertError(await post(signer, '/v1/approvals', { walletName: WALLET, keyIndex: 0, operation: op, code: '123456' }), 400, 'invalid_input', 'code');
    assertError(
      await post(signer, '/v1/approvals', { walletName: WALLET, keyIndex: 0, operation: op, approveUrl: 'https://evil.example' }),
      400,
      'invalid_input',
      'approveUrl',
    );
    assertError(await post(signer, '/v1/approvals', [{ walletName: WALLET }]), 400, 'invalid_input', 'body');
  });

  test('approvalId on every sign route: 32 lowercase hex digits, named when malformed', async () => {
    const signer = await newSigner();
    const routes: Array<[string, Record<string, unknown>]> = [
      ['/v1/sign/hash', { hash: HASH }],
      ['/v1/sign/transaction', { transaction: TRANSACTION }],
      ['/v1/sign/message', { message: { text: 'hi' } }],
      ['/v1/sign/typed-data', { typedData: ETHER_MAIL }],
      ['/v1/sign/authorization', { authorization: { chainId: 1, address: TO, nonce: 0 } }],
    ];
    for (const [url, operation] of routes)
      for (const approvalId of [NO_SUCH_ID.toUpperCase(), NO_SUCH_ID.slice(1), `${NO_SUCH_ID}0`, 42, null, ''])
        assertError(await post(signer, url, { walletName: WALLET, keyIndex: 0, ...operation, approvalId }), 400, 'invalid_input', 'approvalId');
  });

  test('no key: 401 unauthorized on every approvals route (after the schema)', async () => {
    const signer = await newSigner();
    const none = { 'content-type': 'application/json' };
    const create = await signer.app.inject({
      method: 'POST',
      url: '/v1/approvals',
      headers: none,
      payload: { walletName: WALLET, keyIndex: 0, operation: { hash: HASH } },
    });
    assertError(create, 401, 'unauthorized');
    assertError(await signer.app.inject({ method: 'GET', url: `/v1/approvals/${NO_SUCH_ID}` }), 401, 'unauthorized');
    assertError(await signer.app.inject({ method: 'GET', url: `/v1/approvals/${NO_SUCH_ID}?waitSeconds=30` }), 401, 'unauthorized');
    assertError(await signer.app.inject({ method: 'POST', url: `/v1/approvals/${NO_SUCH_ID}/cancel` }), 401, 'unauthorized');
  });
});

describe('approvals API: the lifecycle through HTTP', () => {
  test('create → 201 with approveUrl under --public-url (no capability apart) → approve → sign with approvalId → consumed', async () => {
    const signer = await newSigner();
    const uri = await enroll(signer);
    const res = await post(signer, '/v1/approvals', { walletName: WALLET, keyIndex: 0, operation: { hash: HASH } });
    assert.equal(res.statusCode, 201, res.body);
    const created = res.json() as Created;
    assert.deepEqual(Object.keys(created).sort(), [
      'approveUrl',
      'createdAt',
      'decidedAt',
      'expiresAt',
      'factor',
      'id',
      'keyIndex',
      'opHash',
      'operationType',
      'requiredStrength',
      'state',
      'summary',
      'summaryText',
      'walletName',
    ]);
    assert.match(created.id, /^[0-9a-f]{32}$/);
    assert.match(created.approveUrl, /^https:\/\/custos\.example\.com\/approve\/[A-Za-z0-9_-]{43}$/);
    assert.equal(created.state, 'pending');
    assert.equal(created.walletName, WALLET);
    assert.equal(created.keyIndex, 0);
    assert.equal(created.operationType, 'hash');
    assert.equal(created.requiredStrength, 'present');
    assert.equal(created.expiresAt - created.createdAt, 600_000);
    assert.equal(created.decidedAt, null);
    assert.equal(created.factor, null);

    const read = await get(signer, `/v1/approvals/${created.id}`);
    assert.equal(read.statusCode, 200, read.body);
    const { approveUrl: _url, ...view } = created;
    assert.deepEqual(read.json(), view, 'GET shows the same view, without the link');
    assert.ok(!read.body.includes(capabilityOf(created.approveUrl)), 'the capability is never shown again');

    // not yet decided: the sign is refused, nothing signed
    assertError(await post(signer, '/v1/sign/hash', { walletName: WALLET, keyIndex: 0, hash: HASH, approvalId: created.id }), 409, 'approval_pending');

    await approve(signer, created, uri);
    const approved = (await get(signer, `/v1/approvals/${created.id}`)).json() as Created;
    assert.equal(approved.state, 'approved');
    assert.equal(approved.factor, 'totp');
    assert.equal(approved.decidedAt, signer.clock.now);

    const signed = await post(signer, '/v1/sign/hash', { walletName: WALLET, keyIndex: 0, hash: HASH, approvalId: created.id });
    assert.equal(signed.statusCode, 200, signed.body);
    assert.equal((signed.json() as { opHash: string }).opHash, created.opHash);
    assert.equal(((await get(signer, `/v1/approvals/${created.id}`)).json() as Created).state, 'consumed');
    // a lost response costs nothing: the identical operation returns the same signature
    const again = await post(signer, '/v1/sign/hash', { walletName: WALLET, keyIndex: 0, hash: HASH, approvalId: created.id });
    assert.equal(again.statusCode, 200, again.body);
    assert.equal((again.json() as { signature: string }).signature, (signed.json() as { signature: string }).signature);
    // another operation with the consumed approval: approval_mismatch
    assertError(
      await post(signer, '/v1/sign/hash', { walletName: WALLET, keyIndex: 0, hash: `0x${'11'.repeat(32)}`, approvalId: created.id }),
      403,
      'approval_mismatch',
    );
  });

  test('approvalId with code on any sign route: 400 invalid_input (one consent, not two)', async () => {
    const signer = await newSigner();
    const uri = await enroll(signer);
    const created = await createApproval(signer, { transaction: TRANSACTION });
    await approve(signer, created, uri);
    const code = totpFromUri(uri, signer.clock.now + 30_000);
    for (const [url, member, operation] of [
      ['/v1/sign/transaction', 'transaction', TRANSACTION],
      ['/v1/sign/hash', 'hash', HASH],
      ['/v1/sign/message', 'message', { text: 'hi' }],
      ['/v1/sign/typed-data', 'typedData', ETHER_MAIL],
      ['/v1/sign/authorization', 'authorization', { chainId: 1, address: TO, nonce: 0 }],
    ] as const)
      assertError(
        await post(signer, url, { walletName: WALLET, keyIndex: 0, [member]: operation, approvalId: created.id, code }),
        400,
        'invalid_input',
        'approvalId',
      );
    // refused before anything was spent: the approval still signs its operation
    assert.equal(((await get(signer, `/v1/approvals/${created.id}`)).json() as Created).state, 'approved');
    const signed = await post(signer, '/v1/sign/transaction', { walletName: WALLET, keyIndex: 0, transaction: TRANSACTION, approvalId: created.id });
    assert.equal(signed.statusCode, 200, signed.body);
  });

  test('each operation type: the approval signs its own operation on its own route, and refuses a changed one (approval_mismatch)', async () => {
    // the subject is the opHash, not the policy: this deployment lets a TOTP approval sign the uncountable flows (typed data, 7702)
    const signer = await newSigner({ policyDefaults: { ...RAW_HASHES_ALLOWED, ...UNCOUNTABLE_PRESENT } });
    const uri = await enroll(signer);
    const cases: Array<[string, string, unknown, unknown]> = [
      ['transaction', '/v1/sign/transaction', TRANSACTION, { ...TRANSACTION, value: '1001' }],
      ['message', '/v1/sign/message', { text: 'pay 1 ETH' }, { text: 'pay 2 ETH' }],
      ['typedData', '/v1/sign/typed-data', ETHER_MAIL, { ...ETHER_MAIL, message: { ...ETHER_MAIL.message, contents: 'Hello, Eve!' } }],
      ['authorization', '/v1/sign/authorization', { chainId: 1, address: TO, nonce: 3 }, { chainId: 1, address: TO, nonce: 4 }],
    ];
    for (const [member, url, operation, changed] of cases) {
      const created = await createApproval(signer, { [member]: operation });
      assert.equal(created.operationType, member);
      await approve(signer, created, uri);
      assertError(await post(signer, url, { walletName: WALLET, keyIndex: 0, [member]: changed, approvalId: created.id }), 403, 'approval_mismatch');
      assertError(await post(signer, url, { walletName: WALLET, keyIndex: 1, [member]: operation, approvalId: created.id }), 403, 'approval_mismatch');
      const signed = await post(signer, url, { walletName: WALLET, keyIndex: 0, [member]: operation, approvalId: created.id });
      assert.equal(signed.statusCode, 200, `${member}: ${signed.body}`);
      assert.equal((signed.json() as { opHash: string }).opHash, created.opHash);
    }
  });

  test('ttlSeconds sets the expiry; a wallet with no factor needs no approval (409 consent_not_required)', async () => {
    const signer = await newSigner();
    await enroll(signer);
    const short = await createApproval(signer, { hash: HASH }, { ttlSeconds: 60 });
    assert.equal(short.expiresAt - short.createdAt, 60_000);
    const long = await createApproval(signer, { hash: HASH }, { ttlSeconds: 3600 });
    assert.equal(long.expiresAt - long.createdAt, 3_600_000);
    assertError(await post(signer, '/v1/approvals', { walletName: 'no-factor@acme.com', keyIndex: 0, operation: { hash: HASH } }), 409, 'consent_not_required');
  });

  test('cancel: pending → cancelled; signing with it is approval_cancelled; a second cancel shows the same state', async () => {
    const signer = await newSigner();
    const uri = await enroll(signer);
    const created = await createApproval(signer);
    const cancelled = await post(signer, `/v1/approvals/${created.id}/cancel`);
    assert.equal(cancelled.statusCode, 200, cancelled.body);
    assert.equal((cancelled.json() as Created).state, 'cancelled');
    assert.equal((cancelled.json() as Created).id, created.id);
    assertError(await post(signer, '/v1/sign/hash', { walletName: WALLET, keyIndex: 0, hash: HASH, approvalId: created.id }), 409, 'approval_cancelled');
    const twice = await post(signer, `/v1/approvals/${created.id}/cancel`);
    assert.equal(twice.statusCode, 200, twice.body);
    assert.equal((twice.json() as Created).state, 'cancelled');
    // the owner can no longer approve it
    signer.clock.now += 30_000;
    await assert.rejects(
      signer.kernel.decideApproval(capabilityOf(created.approveUrl), { decision: 'approve', kind: 'totp', proof: totpFromUri(uri, signer.clock.now) }),
      { code: 'approval_cancelled' },
    );
    assertError(await post(signer, `/v1/approvals/${NO_SUCH_ID}/cancel`), 404, 'approval_not_found');
  });

  test('rejected by the owner: GET shows rejected, the sign is approval_rejected', async () => {
    const signer = await newSigner();
    await enroll(signer);
    const created = await createApproval(signer);
    await signer.kernel.decideApproval(capabilityOf(created.approveUrl), { decision: 'reject' });
    assert.equal(((await get(signer, `/v1/approvals/${created.id}`)).json() as Created).state, 'rejected');
    assertError(await post(signer, '/v1/sign/hash', { walletName: WALLET, keyIndex: 0, hash: HASH, approvalId: created.id }), 403, 'approval_rejected');
  });

  test('another tenant’s key gets approval_not_found everywhere (GET, long poll, cancel, sign), and the approval is untouched', async () => {
    const signer = await newSigner();
    const uri = await enroll(signer);
    const { token: other } = await createApiKey(signer.store, { name: 'other backend', tenant: 'tenant-b', scopes: ['register', 'derive', 'sign'] });
    recordTestSecret('apiKey', other);
    const created = await createApproval(signer);
    assertError(await get(signer, `/v1/approvals/${created.id}`, other), 404, 'approval_not_found');
    assertError(await get(signer, `/v1/approvals/${created.id}?waitSeconds=5`, other), 404, 'approval_not_found');
    assertError(await post(signer, `/v1/approvals/${created.id}/cancel`, undefined, other), 404, 'approval_not_found');
    await approve(signer, created, uri);
    // the wallet is tenant A's: tenant B does not see it at all
    assertError(await post(signer, '/v1/sign/hash', { walletName: WALLET, keyIndex: 0, hash: HASH, approvalId: created.id }, other), 404, 'wallet_not_found');
    // tenant B's own wallet with tenant A's approval: not found (as an id never issued)
    await enroll(signer, 'b-owner@acme.com', other);
    assertError(
      await post(signer, '/v1/sign/hash', { walletName: 'b-owner@acme.com', keyIndex: 0, hash: HASH, approvalId: created.id }, other),
      404,
      'approval_not_found',
      'approvalId',
    );
    assert.equal(((await get(signer, `/v1/approvals/${created.id}`)).json() as Created).state, 'approved');
    assertError(await get(signer, `/v1/approvals/${NO_SUCH_ID}`), 404, 'approval_not_found');
  });

  test('a key without the sign scope: forbidden_scope on every approvals route', async () => {
    const signer = await newSigner();
    await enroll(signer);
    const created = await createApproval(signer);
    const { token: deriveOnly } = await createApiKey(signer.store, { name: 'reader', scopes: ['derive'] });
    recordTestSecret('apiKey', deriveOnly);
    assertError(await post(signer, '/v1/approvals', { walletName: WALLET, keyIndex: 0, operation: { hash: HASH } }, deriveOnly), 403, 'forbidden_scope');
    assertError(await get(signer, `/v1/approvals/${created.id}`, deriveOnly), 403, 'forbidden_scope');
    assertError(await post(signer, `/v1/approvals/${created.id}/cancel`, undefined, deriveOnly), 403, 'forbidden_scope');
  });

  test('without --public-url, approveUrl is http://localhost:<the port the request came in on>', async () => {
    const signer = await createTestSigner({ policyDefaults: RAW_HASHES_ALLOWED, startMs: START_MS });
    signers.push(signer);
    await enroll(signer);
    const url = await listen(signer);
    const port = new URL(url).port;
    const res = await fetchJson(`${url}/v1/approvals`, signer.apiKey, {
      method: 'POST',
      body: JSON.stringify({ walletName: WALLET, keyIndex: 0, operation: { hash: HASH } }),
    });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    assert.match(String(res.body.approveUrl), new RegExp(`^http://localhost:${port}/approve/[A-Za-z0-9_-]{43}$`));
    recordTestSecret('approval capability', capabilityOf(String(res.body.approveUrl)));
  });

  test('the expiry sweep runs on the app’s timer: a pending approval past its expiry is marked expired and audited once', async () => {
    const signer = await newSigner({ appOptions: { approvalSweepMs: 50 } });
    await enroll(signer);
    const created = await createApproval(signer, { hash: HASH }, { ttlSeconds: 60 });
    signer.clock.now += 61_000;
    const deadline = Date.now() + 10_000;
    let rows: Array<Record<string, unknown>> = [];
    while (Date.now() < deadline) {
      rows = await signer.sql("SELECT action FROM audit_log WHERE action = 'approval.expire'");
      if (rows.length > 0) break;
      await sleep(50);
    }
    assert.equal(rows.length, 1, 'approval.expire audited by the sweep');
    await sleep(300);
    assert.equal((await signer.sql("SELECT action FROM audit_log WHERE action = 'approval.expire'")).length, 1, 'once');
    assert.equal(((await get(signer, `/v1/approvals/${created.id}`)).json() as Created).state, 'expired');
    assertError(await post(signer, '/v1/sign/hash', { walletName: WALLET, keyIndex: 0, hash: HASH, approvalId: created.id }), 409, 'approval_expired');
    // sealed: the sweep skips (no error, no crash); unsealed again it carries on
    signer.kernel.seal();
    await sleep(200);
  });
});

describe('approvals API: the long poll', () => {
  test('a 3 s long poll answers with the new state within 0.5 s of a decision taken by another request', async () => {
    const signer = await newSigner();
    const uri = await enroll(signer);
    const url = await listen(signer);
    const created = await createApproval(signer);
    const poll = fetchJson(`${url}/v1/approvals/${created.id}?waitSeconds=3`, signer.apiKey);
    await sleep(500);
    const decidedAt = performance.now();
    await approve(signer, created, uri);
    const answer = await poll;
    const lag = performance.now() - decidedAt;
    console.log(`long poll: answered ${lag.toFixed(0)} ms after the decision (poll open ${answer.ms.toFixed(0)} ms)`);
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
    assert.equal(answer.body.state, 'approved');
    assert.ok(lag < 500, `answered ${lag.toFixed(0)} ms after the decision`);
    assert.ok(answer.ms >= 450, 'it did wait for the decision');
  });

  test('a decision taken by another replica (a second kernel on the same store) is seen by the store poll', async () => {
    const signer = await newSigner();
    const uri = await enroll(signer);
    const url = await listen(signer);
    const created = await createApproval(signer);
    const { Kernel } = await import('@custos/kernel');
    const replica = await Kernel.open({ store: signer.store, now: () => signer.clock.now, policyDefaults: RAW_HASHES_ALLOWED });
    await replica.unseal(new TextEncoder().encode(TEST_PASSPHRASE));
    try {
      const poll = fetchJson(`${url}/v1/approvals/${created.id}?waitSeconds=5`, signer.apiKey);
      await sleep(400);
      const decidedAt = performance.now();
      signer.clock.now += 30_000;
      await replica.decideApproval(capabilityOf(created.approveUrl), { decision: 'approve', kind: 'totp', proof: totpFromUri(uri, signer.clock.now) });
      const answer = await poll;
      const lag = performance.now() - decidedAt;
      console.log(`long poll across replicas: answered ${lag.toFixed(0)} ms after the decision`);
      assert.equal(answer.body.state, 'approved', JSON.stringify(answer.body));
      assert.ok(lag < 1_500, `answered ${lag.toFixed(0)} ms after the decision (poll every 250 ms)`);
    } finally {
      replica.seal();
    }
  });

  test('no decision: the answer comes at the deadline with state pending; an approval already decided answers at once', async () => {
    const signer = await newSigner();
    const uri = await enroll(signer);
    const url = await listen(signer);
    const created = await createApproval(signer);
    const pending = await fetchJson(`${url}/v1/approvals/${created.id}?waitSeconds=1`, signer.apiKey);
    assert.equal(pending.status, 200);
    assert.equal(pending.body.state, 'pending');
    assert.ok(pending.ms >= 950 && pending.ms < 4_000, `${pending.ms} ms`);
    await approve(signer, created, uri);
    const decided = await fetchJson(`${url}/v1/approvals/${created.id}?waitSeconds=60`, signer.apiKey);
    assert.equal(decided.body.state, 'approved');
    assert.ok(decided.ms < 2_000, `${decided.ms} ms`);
    const zero = await fetchJson(`${url}/v1/approvals/${created.id}?waitSeconds=0`, signer.apiKey);
    assert.equal(zero.body.state, 'approved');
  });

  test('the wait outlasts the listener’s request and idle timeouts (they cover receiving the request, and silence)', async () => {
    const signer = await newSigner();
    await enroll(signer);
    const url = await listen(signer, { headersMs: 500, requestMs: 800, idleMs: 800 });
    const created = await createApproval(signer);
    const answer = await fetchJson(`${url}/v1/approvals/${created.id}?waitSeconds=3`, signer.apiKey);
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
    assert.equal(answer.body.state, 'pending');
    assert.ok(answer.ms >= 2_900, `${answer.ms} ms`);
    // and the idle timeout is back for the connection afterwards (a plain request is served as before)
    const after = await fetchJson(`${url}/v1/approvals/${created.id}`, signer.apiKey);
    assert.equal(after.status, 200);
  });

  test('50 waiting long polls leave the in-flight slots to signing (maxInFlight 2); over maxWaiting: 503 overloaded with Retry-After', async () => {
    const signer = await newSigner({ maxInFlight: 2, appOptions: { maxWaiting: 50 } });
    const uri = await enroll(signer);
    const url = await listen(signer);
    const created = await createApproval(signer);
    const polls = Array.from({ length: 50 }, () => fetchJson(`${url}/v1/approvals/${created.id}?waitSeconds=20`, signer.apiKey));
    await sleep(1_000);
    // a sign request of a wallet with no factor, and a plain GET: served, not overloaded
    const signed = await fetchJson(`${url}/v1/sign/hash`, signer.apiKey, {
      method: 'POST',
      body: JSON.stringify({ walletName: 'plain@acme.com', keyIndex: 0, hash: HASH }),
    });
    assert.equal(signed.status, 200, JSON.stringify(signed.body));
    assert.equal((await fetchJson(`${url}/v1/approvals/${created.id}`, signer.apiKey)).status, 200);
    // the 51st waiter is refused before anything is read
    const over = await fetchJson(`${url}/v1/approvals/${created.id}?waitSeconds=20`, signer.apiKey);
    assert.equal(over.status, 503, JSON.stringify(over.body));
    assert.equal((over.body.error as { code: string }).code, 'overloaded');
    assert.equal(over.retryAfter, '1');
    // one decision wakes all 50
    const decidedAt = performance.now();
    await approve(signer, created, uri);
    const answers = await Promise.all(polls);
    const lag = performance.now() - decidedAt;
    console.log(`50 long polls: all answered ${lag.toFixed(0)} ms after the decision`);
    for (const answer of answers) {
      assert.equal(answer.status, 200, JSON.stringify(answer.body));
      assert.equal(answer.body.state, 'approved');
    }
    assert.ok(lag < 5_000, `${lag} ms`);
    // the pool is free again
    const again = await fetchJson(`${url}/v1/approvals/${created.id}?waitSeconds=20`, signer.apiKey);
    assert.equal(again.status, 200);
  });

  test('a client that goes away stops its wait and gives its waiting slot back', async () => {
    const signer = await newSigner({ appOptions: { maxWaiting: 1 } });
    await enroll(signer);
    const url = await listen(signer);
    const created = await createApproval(signer);
    // count the store reads of the waits
    const kernel = signer.kernel;
    const read = kernel.getApproval.bind(kernel);
    let reads = 0;
    kernel.getApproval = (caller, request) => {
      reads += 1;
      return read(caller, request);
    };
    const abort = new AbortController();
    const gone = fetch(`${url}/v1/approvals/${created.id}?waitSeconds=60`, { headers: signer.auth(), signal: abort.signal }).catch((e: unknown) => e);
    await sleep(300);
    const busy = await fetchJson(`${url}/v1/approvals/${created.id}?waitSeconds=1`, signer.apiKey);
    assert.equal(busy.status, 503, 'the one waiting slot is taken');
    assert.ok(reads >= 1, 'the wait reads the store');
    abort.abort();
    await gone;
    await sleep(200);
    // the wait stopped: no more reads of the store for it (it polls every 250 ms while waiting)
    const readsAfterAbort = reads;
    await sleep(800);
    assert.equal(reads, readsAfterAbort, 'the wait stopped polling when its client went');
    const next = await fetchJson(`${url}/v1/approvals/${created.id}?waitSeconds=1`, signer.apiKey);
    assert.equal(next.status, 200, JSON.stringify(next.body));
    assert.equal(next.body.state, 'pending');
  });

  test('closing the app answers the waiting requests at once with their current state', async () => {
    const signer = await newSigner();
    await enroll(signer);
    const url = await listen(signer);
    const created = await createApproval(signer);
    const poll = fetchJson(`${url}/v1/approvals/${created.id}?waitSeconds=60`, signer.apiKey);
    await sleep(300);
    const closing = performance.now();
    const closed = signer.app.close();
    const answer = await poll;
    await closed;
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
    assert.equal(answer.body.state, 'pending');
    assert.ok(performance.now() - closing < 3_000);
  });

  test('an approval that expires during the wait: the poll answers expired', async () => {
    const signer = await newSigner();
    await enroll(signer);
    const url = await listen(signer);
    const created = await createApproval(signer, { hash: HASH }, { ttlSeconds: 60 });
    const poll = fetchJson(`${url}/v1/approvals/${created.id}?waitSeconds=10`, signer.apiKey);
    await sleep(300);
    signer.clock.now += 61_000;
    const answer = await poll;
    assert.equal(answer.body.state, 'expired');
    assert.ok(answer.ms < 3_000, `${answer.ms} ms`);
  });
});

describe('approvals API in startServer (custos serve)', () => {
  test('--public-url makes approveUrl, --max-waiting bounds the waits, and a shutdown answers a waiting poll at once', async () => {
    const signer = await newSigner();
    await enroll(signer);
    const server = await startServer({
      store: signer.location,
      port: 0,
      logger: false,
      passphrase: new TextEncoder().encode(TEST_PASSPHRASE),
      publicUrl: 'https://approvals.example.com:8443',
      maxWaiting: 1,
      kernelOptions: { policyDefaults: RAW_HASHES_ALLOWED },
    });
    let closed = false;
    try {
      const created = await fetchJson(`${server.url}/v1/approvals`, signer.apiKey, {
        method: 'POST',
        body: JSON.stringify({ walletName: WALLET, keyIndex: 0, operation: { hash: HASH } }),
      });
      assert.equal(created.status, 201, JSON.stringify(created.body));
      assert.match(String(created.body.approveUrl), /^https:\/\/approvals\.example\.com:8443\/approve\/[A-Za-z0-9_-]{43}$/);
      recordTestSecret('approval capability', capabilityOf(String(created.body.approveUrl)));
      const poll = fetchJson(`${server.url}/v1/approvals/${String(created.body.id)}?waitSeconds=60`, signer.apiKey);
      await sleep(300);
      const over = await fetchJson(`${server.url}/v1/approvals/${String(created.body.id)}?waitSeconds=60`, signer.apiKey);
      assert.equal(over.status, 503, JSON.stringify(over.body));
      assert.equal((over.body.error as { code: string }).code, 'overloaded');
      const closing = performance.now();
      const done = server.close();
      const answer = await poll;
      await done;
      closed = true;
      const ms = performance.now() - closing;
      assert.equal(answer.status, 200, JSON.stringify(answer.body));
      assert.equal(answer.body.state, 'pending');
      assert.ok(ms < 5_000, `closed in ${ms.toFixed(0)} ms (not held by the 60 s wait)`);
    } finally {
      if (!closed) await server.close();
    }
  });
});
