import assert from 'node:assert/strict';
import { afterEach, describe, test } from 'node:test';
import { Kernel } from '@custos/kernel';
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex, concatBytes, hexToBytes, utf8ToBytes } from '@noble/hashes/utils.js';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { buildApp } from './buildApp.js';
import { openStore } from './openStore.js';
import { assertWellFormed } from './testing/assertWellFormed.js';
import { UNCOUNTABLE_PRESENT, createTestSigner, recordTestSecret, TEST_PASSPHRASE, type TestSigner } from './testing/createTestSigner.js';
import { totpFromUri } from './testing/totpFromUri.js';

// Batch approvals (issue 12, point 3): one approval for up to 100 transactions and authorizations of
// one wallet, whose opHash is SHA-256("custos.batch.v1\0" ‖ the items' opHashes); each item then signs
// once on its own route with the approval id, nothing outside the batch does, the approval is consumed
// with the last item and expires as usual. In process (buildApp + inject); the concurrency test runs
// two kernels, each with its own store connection, on one database.

const START_MS = 1_700_000_010_000;
const PUBLIC_URL = 'https://custos.example.com';
const WALLET = 'payouts@exchange.example';
const USDC = '0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48';
const recipient = (n: number) => `0x${n.toString(16).padStart(2, '0').repeat(20)}`;

/** An EIP-1559 payment of `value` wei to `to` (nonce n). */
function payment(n: number, to = recipient(n + 1), value = '1000000000000000000'): Record<string, unknown> {
  return { type: 'eip1559', chainId: 1, nonce: n, to, value, gas: '21000', maxFeePerGas: '30000000000', maxPriorityFeePerGas: '1000000000' };
}

/** An ERC-20 transfer of `amount` base units of USDC to `to` (nonce n). */
function tokenPayment(n: number, to: string, amount: bigint): Record<string, unknown> {
  const data = `0xa9059cbb${to.slice(2).toLowerCase().padStart(64, '0')}${amount.toString(16).padStart(64, '0')}`;
  return { type: 'eip1559', chainId: 1, nonce: n, to: USDC, value: '0', data, gas: '60000', maxFeePerGas: '30000000000', maxPriorityFeePerGas: '1000000000' };
}

const AUTHORIZATION = { chainId: 1, address: '0x63c0c19a282a1b52b07dd5a65b58948a07dae32b', nonce: 4 };

const signers: TestSigner[] = [];
const closers: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const close of closers.splice(0)) await close();
  for (const signer of signers.splice(0)) await signer.close();
});

async function newSigner(): Promise<{ signer: TestSigner; uri: string }> {
  const signer = await createTestSigner({ policyDefaults: UNCOUNTABLE_PRESENT, startMs: START_MS, appOptions: { publicUrl: PUBLIC_URL } });
  signers.push(signer);
  const res = await signer.app.inject({ method: 'POST', url: '/v1/totp/enroll', headers: signer.auth(), payload: { walletName: WALLET } });
  assert.equal(res.statusCode, 200, res.body);
  return { signer, uri: (res.json() as { otpauthUri: string }).otpauthUri };
}

function post(app: FastifyInstance, signer: TestSigner, url: string, payload: unknown): Promise<LightMyRequestResponse> {
  return app.inject({ method: 'POST', url, headers: signer.auth(), payload: payload as Record<string, unknown> });
}

function assertError(res: LightMyRequestResponse, status: number, code: string, field?: string): Record<string, unknown> {
  assert.equal(res.statusCode, status, res.body);
  const body = res.json() as { error: { code: string; details: Record<string, unknown> } };
  assert.equal(body.error.code, code, res.body);
  if (field !== undefined) assert.equal(body.error.details.field, field, res.body);
  assertWellFormed(res, `${status} ${code}`, { allowed5xx: code === 'record_unreadable' ? ['record_unreadable'] : [] });
  return body.error.details;
}

interface BatchView {
  id: string;
  approveUrl: string;
  opHash: string;
  state: string;
  keyIndex: number | null;
  operationType: string;
  summary: Record<string, unknown>;
  summaryText: string;
  expiresAt: number;
  batch: { items: Array<{ keyIndex: number; operationType: string; opHash: string; signed: boolean; auditSeq: number | null }>; signed: number };
}

type Item = { keyIndex: number; transaction: Record<string, unknown> } | { keyIndex: number; authorization: Record<string, unknown> };

async function createBatch(signer: TestSigner, batch: Item[], extra: Record<string, unknown> = {}): Promise<BatchView> {
  const res = await post(signer.app, signer, '/v1/approvals', { walletName: WALLET, operation: { batch }, ...extra });
  assert.equal(res.statusCode, 201, res.body);
  return res.json() as BatchView;
}

async function approve(signer: TestSigner, created: { approveUrl: string }, uri: string): Promise<void> {
  const capability = new URL(created.approveUrl).pathname.split('/').at(-1) ?? '';
  recordTestSecret('approval capability', capability);
  signer.clock.now += 30_000;
  const view = await signer.kernel.decideApproval(capability, { decision: 'approve', kind: 'totp', proof: totpFromUri(uri, signer.clock.now) });
  assert.equal(view.state, 'approved');
}

/** Signs one item of a batch on its own route. */
function signItem(app: FastifyInstance, signer: TestSigner, item: Item, approvalId: string): Promise<LightMyRequestResponse> {
  const route = 'transaction' in item ? '/v1/sign/transaction' : '/v1/sign/authorization';
  return post(app, signer, route, { walletName: WALLET, ...item, approvalId });
}

async function view(signer: TestSigner, id: string): Promise<BatchView> {
  const res = await signer.app.inject({ method: 'GET', url: `/v1/approvals/${id}`, headers: signer.auth() });
  assert.equal(res.statusCode, 200, res.body);
  return res.json() as BatchView;
}

async function signRecords(signer: TestSigner): Promise<Array<{ seq: number; decision: string; reason: string | null; detail: Record<string, unknown> }>> {
  const rows = await signer.sql("SELECT seq, decision, reason, detail FROM audit_log WHERE action IN ('sign.transaction', 'sign.authorization') ORDER BY seq");
  return rows.map((r) => ({
    seq: Number(r.seq),
    decision: String(r.decision),
    reason: r.reason === null ? null : String(r.reason),
    detail: JSON.parse(String(r.detail)),
  }));
}

describe('batch approvals: creation', () => {
  test('the opHash is SHA-256("custos.batch.v1\\0" ‖ the items’ opHashes), each as its single-operation approval reports it; the summary totals every asset and lists every recipient', async () => {
    const { signer } = await newSigner();
    const items: Item[] = [
      { keyIndex: 0, transaction: payment(0, recipient(1), '1500000000000000000') },
      { keyIndex: 0, transaction: payment(1, recipient(2), '2000000000000000000') },
      { keyIndex: 1, transaction: tokenPayment(0, recipient(3), 12_000_000_000n) },
      { keyIndex: 0, transaction: tokenPayment(2, recipient(4), 500_000n) },
      { keyIndex: 2, authorization: AUTHORIZATION },
    ];
    // each item's opHash, as a single-operation approval of it reports it
    const itemOpHashes: string[] = [];
    for (const { keyIndex, ...operation } of items) {
      const res = await post(signer.app, signer, '/v1/approvals', { walletName: WALLET, keyIndex, operation });
      assert.equal(res.statusCode, 201, res.body);
      itemOpHashes.push((res.json() as { opHash: string }).opHash);
    }
    const expected = bytesToHex(sha256(concatBytes(utf8ToBytes('custos.batch.v1\0'), ...itemOpHashes.map((h) => hexToBytes(h)))));

    const created = await createBatch(signer, items);
    assert.equal(created.opHash, expected);
    assert.equal(created.operationType, 'batch');
    assert.equal(created.keyIndex, null);
    assert.equal(created.state, 'pending');
    assert.deepEqual(
      created.batch.items.map((i) => [i.keyIndex, i.operationType, i.opHash, i.signed, i.auditSeq]),
      items.map((item, i) => [item.keyIndex, 'transaction' in item ? 'transaction' : 'authorization', itemOpHashes[i], false, null]),
    );
    assert.equal(created.batch.signed, 0);

    const summary = created.summary as {
      operation: string;
      count: number;
      signers: string[];
      totals: { native: Array<{ chain: { id: number }; value: { wei: string; ether: string } }>; tokens: Array<{ token: string; amount: string }> };
      recipients: Array<{ item: number; recipient: string; asset: string; amount: string }>;
      authorizations: Array<{ item: number; delegate: string }>;
      items: Array<{ keyIndex: number; summaryText: string }>;
    };
    assert.equal(summary.operation, 'batch');
    assert.equal(summary.count, 5);
    assert.equal(summary.signers.length, 3, 'key indexes 0, 1 and 2');
    assert.deepEqual(
      summary.totals.native.map((n) => [n.chain.id, n.value.ether]),
      [[1, '3.5']],
    );
    assert.deepEqual(
      summary.totals.tokens.map((t) => [t.token.toLowerCase(), t.amount]),
      [[USDC, '12000500000']],
    );
    assert.deepEqual(
      summary.recipients.map((r) => [r.item, r.recipient.toLowerCase(), r.asset === 'native' ? 'native' : r.asset.toLowerCase(), r.amount]),
      [
        [0, recipient(1), 'native', '1500000000000000000'],
        [1, recipient(2), 'native', '2000000000000000000'],
        [2, recipient(3), USDC, '12000000000'],
        [3, recipient(4), USDC, '500000'],
      ],
    );
    assert.deepEqual(
      summary.authorizations.map((a) => [a.item, a.delegate.toLowerCase()]),
      [[4, AUTHORIZATION.address]],
    );
    assert.equal(summary.items.length, 5);
    assert.match(
      created.summaryText,
      /^Batch of 5 operations: 3\.5 ETH on Ethereum \(chain 1\), 12000500000 base units of token 0x[0-9a-fA-F]{40} on Ethereum \(chain 1\), to 4 recipients, 1 EIP-7702 delegation/,
    );

    // every payment: "payments"
    const payments = await createBatch(signer, [{ keyIndex: 0, transaction: payment(9) }]);
    assert.match(payments.summaryText, /^Batch of 1 payment: 1 ETH on Ethereum \(chain 1\), to 1 recipient, max fees /);
  });

  test('bad input is refused 400 invalid_input naming the field: 101 items, none, a bad item (schema or codec), a message item, a top-level keyIndex', async () => {
    const { signer } = await newSigner();
    const create = (operation: unknown, extra: Record<string, unknown> = {}) =>
      post(signer.app, signer, '/v1/approvals', { walletName: WALLET, operation, ...extra });
    const hundredAndOne = Array.from({ length: 101 }, (_, i) => ({ keyIndex: 0, transaction: payment(i) }));
    assertError(await create({ batch: hundredAndOne }), 400, 'invalid_input', 'operation.batch');
    assertError(await create({ batch: [] }), 400, 'invalid_input', 'operation.batch');
    const bad = Array.from({ length: 5 }, (_, i) => ({ keyIndex: 0, transaction: payment(i) }));
    // the schema's check
    bad[3] = { keyIndex: 0, transaction: { ...payment(3), to: '0x1234' } };
    assertError(await create({ batch: bad }), 400, 'invalid_input', 'operation.batch[3].transaction.to');
    // the codec's check (a rule the schema cannot say)
    bad[3] = { keyIndex: 0, transaction: { ...payment(3), maxPriorityFeePerGas: '40000000000' } };
    assertError(await create({ batch: bad }), 400, 'invalid_input', 'operation.batch[3].transaction.maxPriorityFeePerGas');
    // a mixed-case address with a wrong EIP-55 checksum: the codec's
    bad[3] = { keyIndex: 0, transaction: { ...payment(3), to: '0xA0b86991c6218b36c1d19d4a2e9eb0ce3606eB49' } };
    assertError(await create({ batch: bad }), 400, 'invalid_input', 'operation.batch[3].transaction.to');
    assertError(await create({ batch: [{ keyIndex: 0, message: { text: 'hi' } }] }), 400, 'invalid_input', 'operation.batch[0].message');
    assertError(await create({ batch: [{ transaction: payment(0), authorization: AUTHORIZATION }] }), 400, 'invalid_input', 'operation.batch[0].keyIndex');
    assertError(await create({ batch: [{ transaction: payment(0) }] }), 400, 'invalid_input', 'operation.batch[0]');
    assertError(await create({ batch: [{ keyIndex: 0, transaction: payment(0), authorization: AUTHORIZATION }] }), 400, 'invalid_input', 'operation.batch[0]');
    assertError(await create({ batch: [{ keyIndex: 0, transaction: payment(0) }] }, { keyIndex: 0 }), 400, 'invalid_input', 'keyIndex');
    // the same operation twice (it would be one signature: the batch could never be consumed)
    assertError(
      await create({
        batch: [
          { keyIndex: 0, transaction: payment(0) },
          { keyIndex: 0, transaction: payment(1) },
          { keyIndex: 0, transaction: payment(0) },
        ],
      }),
      400,
      'invalid_input',
      'operation.batch[2]',
    );
    // a single operation still needs its keyIndex
    assertError(await create({ transaction: payment(0) }), 400, 'invalid_input', 'keyIndex');
    // nothing was created
    assert.equal(Number((await signer.sql("SELECT count(*) AS n FROM approvals WHERE op_type = 'batch'"))[0]?.n), 0);
  });

  test('the kernel refuses the same without the route schema (101 items, a bad item, a top-level keyIndex), naming the field', async () => {
    const { signer } = await newSigner();
    const app = await signer.kernel.authenticateApiKey(signer.apiKey);
    const create = (operation: unknown, extra: Record<string, unknown> = {}) =>
      signer.kernel.createApproval(app, { walletName: WALLET, operation, ...extra }).then(
        () => assert.fail('created'),
        (error: { code: string; details: { field: string } }) => [error.code, error.details.field],
      );
    assert.deepEqual(await create({ batch: Array.from({ length: 101 }, (_, i) => ({ keyIndex: 0, transaction: payment(i) })) }), [
      'invalid_input',
      'operation.batch',
    ]);
    assert.deepEqual(
      await create({
        batch: [
          { keyIndex: 0, transaction: payment(0) },
          { keyIndex: 0, hash: `0x${'00'.repeat(32)}` },
        ],
      }),
      ['invalid_input', 'operation.batch[1]'],
    );
    assert.deepEqual(await create({ batch: [{ keyIndex: -1, transaction: payment(0) }] }), ['invalid_input', 'operation.batch[0].keyIndex']);
    assert.deepEqual(await create({ batch: [{ keyIndex: 0, transaction: { ...payment(0), gas: 'lots' } }] }), [
      'invalid_input',
      'operation.batch[0].transaction.gas',
    ]);
    assert.deepEqual(await create({ batch: 'all of them' }), ['invalid_input', 'operation.batch']);
    assert.deepEqual(await create({ batch: [{ keyIndex: 0, transaction: payment(0) }] }, { keyIndex: 0 }), ['invalid_input', 'keyIndex']);
  });

  test('POST /v1/approvals takes a body of about 1 MB (100 items with calldata) and refuses more 413 body_too_large; the other routes keep 64 KiB', async () => {
    const { signer } = await newSigner();
    // 100 calls of 4,900 bytes of calldata each: about 1,000,000 bytes of JSON
    const call = (n: number, bytes: number) => ({ keyIndex: 0, transaction: { ...payment(n), value: '0', gas: '200000', data: `0x${'ab'.repeat(bytes)}` } });
    const batch = Array.from({ length: 100 }, (_, i) => call(i, 4_900));
    const payload = JSON.stringify({ walletName: WALLET, operation: { batch } });
    assert.ok(payload.length > 990_000 && payload.length <= 1024 * 1024, `${payload.length} bytes`);
    const started = performance.now();
    const res = await signer.app.inject({ method: 'POST', url: '/v1/approvals', headers: { ...signer.auth(), 'content-type': 'application/json' }, payload });
    console.log(`a batch of 100 items in ${payload.length} bytes: created in ${(performance.now() - started).toFixed(0)} ms`);
    assert.equal(res.statusCode, 201, res.body.slice(0, 500));
    assert.equal((res.json() as BatchView).batch.items.length, 100);
    assert.equal((res.json() as { summary: { otherOperations: number } }).summary.otherOperations, 100, 'unknown calls are counted apart');

    const over = JSON.stringify({ walletName: WALLET, operation: { batch: Array.from({ length: 100 }, (_, i) => call(i, 5_300)) } });
    assert.ok(over.length > 1024 * 1024, `${over.length} bytes`);
    assertError(
      await signer.app.inject({ method: 'POST', url: '/v1/approvals', headers: { ...signer.auth(), 'content-type': 'application/json' }, payload: over }),
      413,
      'body_too_large',
      'body',
    );
    const sign = JSON.stringify({ walletName: WALLET, keyIndex: 0, transaction: { ...payment(0), data: `0x${'ab'.repeat(40_000)}` } });
    assertError(
      await signer.app.inject({
        method: 'POST',
        url: '/v1/sign/transaction',
        headers: { ...signer.auth(), 'content-type': 'application/json' },
        payload: sign,
      }),
      413,
      'body_too_large',
      'body',
    );
  });
});

describe('batch approvals: signing the items', () => {
  test('each item signs once with the approval id; the approval is consumed with the last; a repeat returns the same signature, audited as a repeat of the first', async () => {
    const { signer, uri } = await newSigner();
    const items: Item[] = [
      { keyIndex: 0, transaction: payment(0) },
      { keyIndex: 3, transaction: tokenPayment(0, recipient(7), 42n) },
      { keyIndex: 0, authorization: AUTHORIZATION },
    ];
    const created = await createBatch(signer, items);
    // not yet approved
    assertError(await signItem(signer.app, signer, items[0] as Item, created.id), 409, 'approval_pending');
    await approve(signer, created, uri);

    const first = await signItem(signer.app, signer, items[0] as Item, created.id);
    assert.equal(first.statusCode, 200, first.body);
    let seen = await view(signer, created.id);
    assert.equal(seen.state, 'approved', 'one of three signed: still approved');
    assert.deepEqual(
      seen.batch.items.map((i) => i.signed),
      [true, false, false],
    );
    assert.equal(seen.batch.items[0]?.auditSeq, (first.json() as { auditSeq: number }).auditSeq);

    // the same item again: the same signature, a repeat pointing at the first record
    const again = await signItem(signer.app, signer, items[0] as Item, created.id);
    assert.equal(again.statusCode, 200, again.body);
    assert.equal(
      (again.json() as { serializedTransaction: string }).serializedTransaction,
      (first.json() as { serializedTransaction: string }).serializedTransaction,
    );
    const repeat = (await signRecords(signer)).at(-1);
    assert.equal(repeat?.decision, 'allowed');
    assert.equal(repeat?.detail.repeatOf, (first.json() as { auditSeq: number }).auditSeq);
    assert.equal((repeat?.detail.approval as { batchItem: number }).batchItem, 0);

    const second = await signItem(signer.app, signer, items[1] as Item, created.id);
    assert.equal(second.statusCode, 200, second.body);
    assert.equal((await view(signer, created.id)).state, 'approved');
    const third = await signItem(signer.app, signer, items[2] as Item, created.id);
    assert.equal(third.statusCode, 200, third.body);
    seen = await view(signer, created.id);
    assert.equal(seen.state, 'consumed');
    assert.deepEqual(
      seen.batch.items.map((i) => i.auditSeq),
      [first, second, third].map((r) => (r.json() as { auditSeq: number }).auditSeq),
    );
    assert.equal(seen.batch.signed, 3);
    // consumed: every item still repeats (a lost response costs no new approval), nothing else signs
    const late = await signItem(signer.app, signer, items[1] as Item, created.id);
    assert.equal(late.statusCode, 200, late.body);
    assert.equal(
      (late.json() as { serializedTransaction: string }).serializedTransaction,
      (second.json() as { serializedTransaction: string }).serializedTransaction,
    );
    assert.equal((await signRecords(signer)).at(-1)?.detail.repeatOf, (second.json() as { auditSeq: number }).auditSeq);
    assertError(await signItem(signer.app, signer, { keyIndex: 0, transaction: payment(5) }, created.id), 403, 'approval_mismatch', 'approvalId');
    // one allowed first signature per item
    const firsts = (await signRecords(signer)).filter((r) => r.decision === 'allowed' && r.detail.repeatOf === undefined);
    assert.equal(firsts.length, 3);
  });

  test('the owner approves on the page over HTTP: it shows the totals and every item; the TOTP code typed there approves the whole batch', async () => {
    const { signer, uri } = await newSigner();
    const items: Item[] = [
      { keyIndex: 0, transaction: payment(0, recipient(0x21), '1500000000000000000') },
      { keyIndex: 0, transaction: payment(1, recipient(0x22), '2000000000000000000') },
    ];
    const created = await createBatch(signer, items);
    const capability = new URL(created.approveUrl).pathname.split('/').at(-1) ?? '';
    recordTestSecret('approval capability', capability);
    const page = await signer.app.inject({ method: 'GET', url: `/approve/${capability}` });
    assert.equal(page.statusCode, 200, page.body);
    assert.match(page.body, /<h1>Approve a batch of 2 payments<\/h1>/);
    assert.match(page.body, /Total ETH sent on Ethereum \(chain 1\)<\/dt><dd><strong>3\.5 ETH<\/strong>/);
    for (const n of [0x21, 0x22]) assert.ok(page.body.toLowerCase().includes(recipient(n)), `recipient ${n} on the page`);
    assert.match(page.body, /Item 1 of 2/);
    assert.match(page.body, /Item 2 of 2/);
    const cookie = /custos_form=([A-Za-z0-9_-]{43})/.exec(String(page.headers['set-cookie']))?.[1] ?? assert.fail('no form cookie');
    const csrf = /name="csrf" value="([0-9a-f]{64})"/.exec(page.body)?.[1] ?? assert.fail('no form token');
    signer.clock.now += 30_000;
    const decided = await signer.app.inject({
      method: 'POST',
      url: `/approve/${capability}`,
      headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: `custos_form=${cookie}`, origin: PUBLIC_URL },
      payload: new URLSearchParams({ csrf, decision: 'approve', code: totpFromUri(uri, signer.clock.now) }).toString(),
    });
    assert.equal(decided.statusCode, 200, decided.body);
    assert.match(decided.body, /exactly these operations signed, each once/);
    assert.equal((await view(signer, created.id)).state, 'approved');
    // the records of a batch name no key index of their own (each item has its own)
    const [approved] = await signer.sql("SELECT detail FROM audit_log WHERE action = 'approval.approve' ORDER BY seq DESC LIMIT 1");
    const detail = JSON.parse(String(approved?.detail)) as Record<string, unknown>;
    assert.equal(detail.batch, true);
    assert.equal(detail.approvalId, created.id);
    assert.ok(!('keyIndex' in detail));
    for (const item of items) assert.equal((await signItem(signer.app, signer, item, created.id)).statusCode, 200);
    assert.equal((await view(signer, created.id)).state, 'consumed');
  });

  test('a swap inside the batch (one recipient changed) is refused approval_mismatch, audited with both opHashes, and nothing is marked signed', async () => {
    const { signer, uri } = await newSigner();
    const items: Item[] = [
      { keyIndex: 0, transaction: payment(0, recipient(1)) },
      { keyIndex: 0, transaction: tokenPayment(1, recipient(2), 1_000_000n) },
    ];
    const created = await createBatch(signer, items);
    await approve(signer, created, uri);
    const swaps: Item[] = [
      { keyIndex: 0, transaction: payment(0, recipient(0x66)) },
      { keyIndex: 0, transaction: tokenPayment(1, recipient(0x66), 1_000_000n) },
      { keyIndex: 0, transaction: tokenPayment(1, recipient(2), 1_000_001n) },
      // the right operation under another key index: another opHash, and not the item's key
      { keyIndex: 1, transaction: payment(0, recipient(1)) },
    ];
    for (const swap of swaps) {
      const details = assertError(await signItem(signer.app, signer, swap, created.id), 403, 'approval_mismatch', 'approvalId');
      assert.equal(details.approvalOpHash, created.opHash);
      const record = (await signRecords(signer)).at(-1);
      assert.equal(record?.decision, 'denied');
      assert.equal(record?.reason, 'approval_mismatch');
      assert.equal(record?.detail.approvalId, created.id);
      assert.equal(record?.detail.approvalOpHash, created.opHash);
    }
    const seen = await view(signer, created.id);
    assert.equal(seen.state, 'approved');
    assert.equal(seen.batch.signed, 0);
    // the real items still sign
    for (const item of items) assert.equal((await signItem(signer.app, signer, item, created.id)).statusCode, 200);
    assert.equal((await view(signer, created.id)).state, 'consumed');
  });

  test("an item of another batch, or another approval's operation, is refused approval_mismatch; a batch item is not signed by a single-operation approval", async () => {
    const { signer, uri } = await newSigner();
    const a: Item[] = [{ keyIndex: 0, transaction: payment(0) }];
    const b: Item[] = [{ keyIndex: 0, transaction: payment(1) }];
    const batchA = await createBatch(signer, a);
    const batchB = await createBatch(signer, b);
    await approve(signer, batchA, uri);
    await approve(signer, batchB, uri);
    assertError(await signItem(signer.app, signer, b[0] as Item, batchA.id), 403, 'approval_mismatch', 'approvalId');
    assertError(await signItem(signer.app, signer, a[0] as Item, batchB.id), 403, 'approval_mismatch', 'approvalId');
    const single = await post(signer.app, signer, '/v1/approvals', { walletName: WALLET, keyIndex: 0, operation: { transaction: payment(2) } });
    assert.equal(single.statusCode, 201, single.body);
    const singleView = single.json() as BatchView;
    await approve(signer, singleView, uri);
    assertError(await signItem(signer.app, signer, a[0] as Item, singleView.id), 403, 'approval_mismatch', 'approvalId');
    assertError(await signItem(signer.app, signer, { keyIndex: 0, transaction: payment(2) }, batchA.id), 403, 'approval_mismatch', 'approvalId');
    // each approval still signs its own
    assert.equal((await signItem(signer.app, signer, a[0] as Item, batchA.id)).statusCode, 200);
    assert.equal((await signItem(signer.app, signer, b[0] as Item, batchB.id)).statusCode, 200);
  });

  test('after expiry the items not yet signed are refused approval_expired (the sweep too leaves them unsigned); a cancelled batch signs nothing more', async () => {
    const { signer, uri } = await newSigner();
    const items: Item[] = [0, 1, 2].map((n) => ({ keyIndex: 0, transaction: payment(n) }));
    const created = await createBatch(signer, items, { ttlSeconds: 120 });
    await approve(signer, created, uri);
    assert.equal((await signItem(signer.app, signer, items[0] as Item, created.id)).statusCode, 200);
    signer.clock.now = created.expiresAt;
    assertError(await signItem(signer.app, signer, items[1] as Item, created.id), 409, 'approval_expired');
    // the sweep writes it expired; the signed item stays shown
    assert.equal(await signer.kernel.expireApprovals(), 1);
    const seen = await view(signer, created.id);
    assert.equal(seen.state, 'expired');
    assert.deepEqual(
      seen.batch.items.map((i) => i.signed),
      [true, false, false],
    );
    assertError(await signItem(signer.app, signer, items[2] as Item, created.id), 409, 'approval_expired');

    const other = await createBatch(
      signer,
      [3, 4].map((n) => ({ keyIndex: 0, transaction: payment(n) })),
    );
    await approve(signer, other, uri);
    assert.equal((await signItem(signer.app, signer, { keyIndex: 0, transaction: payment(3) }, other.id)).statusCode, 200);
    const cancelled = await signer.app.inject({ method: 'POST', url: `/v1/approvals/${other.id}/cancel`, headers: signer.auth() });
    assert.equal((cancelled.json() as { state: string }).state, 'cancelled');
    assertError(await signItem(signer.app, signer, { keyIndex: 0, transaction: payment(4) }, other.id), 409, 'approval_cancelled');
  });

  test('a batch changed in the database (an item’s opHash replaced) is refused record_unreadable: the row’s MAC covers the batch', async () => {
    const { signer, uri } = await newSigner();
    const items: Item[] = [{ keyIndex: 0, transaction: payment(0) }];
    const created = await createBatch(signer, items);
    await approve(signer, created, uri);
    // the attacker's own operation, approved for nothing: its opHash written into the batch
    const theirs = await post(signer.app, signer, '/v1/approvals', {
      walletName: WALLET,
      keyIndex: 0,
      operation: { transaction: payment(0, recipient(0x66)) },
    });
    const theirOpHash = (theirs.json() as { opHash: string }).opHash;
    const [row] = await signer.sql('SELECT batch FROM approvals WHERE id = $1', created.id);
    const tampered = String(row?.batch).replace(created.batch.items[0]?.opHash ?? '', theirOpHash);
    await signer.sql('UPDATE approvals SET batch = $1 WHERE id = $2', tampered, created.id);
    assertError(await signItem(signer.app, signer, { keyIndex: 0, transaction: payment(0, recipient(0x66)) }, created.id), 503, 'record_unreadable');
    // marked signed behind the kernel's back: refused as well
    await signer.sql('UPDATE approvals SET batch = $1 WHERE id = $2', String(row?.batch).replace('[null]', '[1]'), created.id);
    assertError(await signItem(signer.app, signer, items[0] as Item, created.id), 503, 'record_unreadable');
    // not JSON at all, on a row made to read cancelled (whose MAC may be the pending one's): refused, never a crash
    for (const batch of ['not json', 'null', '{"items":7}']) {
      await signer.sql("UPDATE approvals SET batch = $1, state = 'cancelled' WHERE id = $2", batch, created.id);
      assertError(await signer.app.inject({ method: 'GET', url: `/v1/approvals/${created.id}`, headers: signer.auth() }), 503, 'record_unreadable');
      assertError(await signItem(signer.app, signer, items[0] as Item, created.id), 503, 'record_unreadable');
    }
  });
});

describe('batch approvals across replicas', () => {
  test('two kernels on one database, each with its own store connection, signing the same and different items concurrently: each item consumed once, repeats identical', async () => {
    const { signer, uri } = await newSigner();
    const store = await openStore(signer.location);
    const replica = await Kernel.open({ store, now: () => signer.clock.now });
    await replica.unseal(new TextEncoder().encode(TEST_PASSPHRASE));
    const replicaApp = await buildApp({ kernel: replica, publicUrl: PUBLIC_URL });
    closers.push(async () => {
      await replicaApp.close();
      replica.seal();
      await store.close();
    });
    const items: Item[] = [0, 1, 2, 3].map((n) => ({ keyIndex: n % 2, transaction: payment(n) }));
    const created = await createBatch(signer, items);
    await approve(signer, created, uri);

    // 48 requests: every item 12 times, alternating between the two kernels
    const requests = Array.from({ length: 48 }, (_, i) => ({ item: i % 4, app: i % 2 === 0 ? signer.app : replicaApp }));
    const started = performance.now();
    const answers = await Promise.all(requests.map(({ item, app }) => signItem(app, signer, items[item] as Item, created.id)));
    console.log(`48 concurrent item signatures over two kernels: ${(performance.now() - started).toFixed(0)} ms`);
    for (const answer of answers) assert.equal(answer.statusCode, 200, answer.body);
    for (let item = 0; item < 4; item++) {
      const signed = new Set(
        answers.filter((_, i) => requests[i]?.item === item).map((a) => (a.json() as { serializedTransaction: string }).serializedTransaction),
      );
      assert.equal(signed.size, 1, `item ${item}: one signature`);
    }
    const records = (await signRecords(signer)).filter((r) => r.decision === 'allowed');
    assert.equal(records.length, 48);
    const firsts = records.filter((r) => r.detail.repeatOf === undefined);
    assert.deepEqual(firsts.map((r) => (r.detail.approval as { batchItem: number }).batchItem).sort(), [0, 1, 2, 3], 'one first signature per item');
    const seen = await view(signer, created.id);
    assert.equal(seen.state, 'consumed');
    assert.deepEqual(seen.batch.items.map((i) => i.auditSeq).sort(), firsts.map((r) => r.seq).sort());
    for (const r of records.filter((r) => r.detail.repeatOf !== undefined)) {
      const item = (r.detail.approval as { batchItem: number }).batchItem;
      assert.equal(r.detail.repeatOf, seen.batch.items[item]?.auditSeq, 'a repeat points at its item’s first record');
    }
  });
});
