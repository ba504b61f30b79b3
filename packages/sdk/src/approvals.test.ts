import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { verifyMessage as ethersVerifyMessage } from 'ethers';
import { parseTransaction, recoverAddress, recoverTransactionAddress, verifyMessage } from 'viem';
import type { CustosClient } from './client.js';
import { createCustosClient } from './client.js';
import { CustosApiError, CustosInputError, CustosRequestError } from './errors.js';
import { CustosSigner } from './ethers.js';
import type { ApprovalPrompt } from './resolveConsent.js';
import { listenTestSigner } from './testing/listenTestSigner.js';
import { RAW_HASHES_ALLOWED, recordTestSecret, totpFromUri, UNCOUNTABLE_PRESENT } from './testing/serverTesting.js';
import { CustosViemError, custosAccount } from './viem.js';

// Issue 11, point 8: the SDK's approvals against a real kernel — createApproval, getApproval with
// its long poll and deadline, waitForApproval, cancelApproval, and the `approval` callback of the
// viem account and the ethers signer (approved, rejected, a callback that throws), `code` unchanged.

const TO = '0x000000000000000000000000000000000000bEEF';
const HASH = `0x${'ab'.repeat(32)}` as const;
/** The middle of a 30 s step. */
const START_MS = 1_700_000_010_000;

type Listening = Awaited<ReturnType<typeof listenTestSigner>>;

describe('approvals through the SDK (real kernel, SQLite)', () => {
  let signer: Listening;
  let client: CustosClient;
  const uris = new Map<string, string>();

  before(async () => {
    signer = await listenTestSigner({ startMs: START_MS, policyDefaults: { ...RAW_HASHES_ALLOWED, ...UNCOUNTABLE_PRESENT } });
    client = createCustosClient({ url: signer.url, apiKey: signer.apiKey });
    for (const walletName of ['sdk-client', 'sdk-viem', 'sdk-ethers']) uris.set(walletName, (await client.enrollTotp({ walletName })).otpauthUri);
  });
  after(async () => {
    await signer.close();
  });

  function capabilityOf(approveUrl: string): string {
    const capability = new URL(approveUrl).pathname.split('/').at(-1) ?? '';
    recordTestSecret('approval capability', capability);
    return capability;
  }

  /** The owner approves on the page with the code of the next step. */
  async function ownerApproves(walletName: string, approveUrl: string): Promise<void> {
    signer.clock.now += 30_000;
    const proof = totpFromUri(uris.get(walletName) ?? '', signer.clock.now);
    await signer.kernel.decideApproval(capabilityOf(approveUrl), { decision: 'approve', kind: 'totp', proof });
  }

  it('createApproval → waitForApproval (woken by the decision) → signHash with approvalId; getApproval shows consumed', async () => {
    const created = await client.createApproval({ walletName: 'sdk-client', keyIndex: 2, operation: { hash: HASH } });
    assert.match(created.id, /^[0-9a-f]{32}$/);
    assert.equal(created.state, 'pending');
    assert.match(created.approveUrl, /^http:\/\/localhost:\d+\/approve\/[A-Za-z0-9_-]{43}$/);
    const waiting = client.waitForApproval(created.id);
    setTimeout(() => void ownerApproves('sdk-client', created.approveUrl), 300);
    const started = Date.now();
    const decided = await waiting;
    assert.equal(decided.state, 'approved');
    assert.equal(decided.factor, 'totp');
    assert.ok(Date.now() - started < 5_000);
    const signed = await client.signHash({ walletName: 'sdk-client', keyIndex: 2, hash: HASH, approvalId: created.id });
    const key = await client.getKey({ walletName: 'sdk-client', keyIndex: 2 });
    assert.equal(await recoverAddress({ hash: HASH, signature: signed.signature }), key.address);
    assert.equal(signed.opHash, created.opHash);
    assert.equal((await client.getApproval(created.id)).state, 'consumed');
  });

  it('getApproval with waitSeconds answers pending at its deadline; cancelApproval cancels; a wait on it ends at once', async () => {
    const created = await client.createApproval({ walletName: 'sdk-client', keyIndex: 0, operation: { message: { text: 'hello' } }, ttlSeconds: 120 });
    assert.equal(created.expiresAt - created.createdAt, 120_000);
    const started = Date.now();
    const pending = await client.getApproval(created.id, { waitSeconds: 1 });
    assert.equal(pending.state, 'pending');
    assert.ok(Date.now() - started >= 900);
    assert.equal((await client.cancelApproval(created.id)).state, 'cancelled');
    assert.equal((await client.waitForApproval(created.id)).state, 'cancelled');
    await assert.rejects(client.signMessage({ walletName: 'sdk-client', keyIndex: 0, message: { text: 'hello' }, approvalId: created.id }), {
      name: 'CustosApiError',
      code: 'approval_cancelled',
    });
  });

  it('createApproval of a transaction with bigint quantities (sent as decimal strings); errors keep their codes', async () => {
    const created = await client.createApproval({
      walletName: 'sdk-client',
      keyIndex: 0,
      operation: {
        transaction: { type: 'eip1559', chainId: 1, nonce: 0, to: TO, value: 10n ** 18n, gas: 21000n, maxFeePerGas: 30n, maxPriorityFeePerGas: 2n },
      },
    });
    assert.equal(created.operationType, 'transaction');
    await client.cancelApproval(created.id);
    await assert.rejects(client.createApproval({ walletName: 'no-factor', keyIndex: 0, operation: { hash: HASH } }), {
      name: 'CustosApiError',
      code: 'consent_not_required',
    });
    await assert.rejects(client.getApproval('0123456789abcdef0123456789abcdef'), { name: 'CustosApiError', code: 'approval_not_found' });
    await assert.rejects(client.waitForApproval('0123456789abcdef0123456789abcdef'), { name: 'CustosApiError', code: 'approval_not_found' });
  });

  it('a batch: createApproval of transactions (bigint quantities) and an authorization, no keyIndex; each item signed with the approval id; the view shows each item signed, then consumed', async () => {
    const tx = (nonce: number, value: bigint) =>
      ({ type: 'eip1559', chainId: 1, nonce, to: TO, value, gas: 21000n, maxFeePerGas: 30n, maxPriorityFeePerGas: 2n }) as const;
    const authorization = { chainId: 1, address: '0x63c0c19a282a1b52b07dd5a65b58948a07dae32b', nonce: 3 } as const;
    const created = await client.createApproval({
      walletName: 'sdk-client',
      operation: {
        batch: [
          { keyIndex: 0, transaction: tx(10, 10n ** 18n) },
          { keyIndex: 1, transaction: tx(0, 5n) },
          { keyIndex: 0, authorization },
        ],
      },
    });
    assert.equal(created.operationType, 'batch');
    assert.equal(created.keyIndex, null);
    assert.deepEqual(
      created.batch?.items.map((i) => [i.keyIndex, i.operationType, i.signed]),
      [
        [0, 'transaction', false],
        [1, 'transaction', false],
        [0, 'authorization', false],
      ],
    );
    assert.match(created.summaryText, /^Batch of 3 operations: 1\.000000000000000005 ETH on Ethereum \(chain 1\)/);
    await ownerApproves('sdk-client', created.approveUrl);
    const first = await client.signTransaction({ walletName: 'sdk-client', keyIndex: 0, transaction: tx(10, 10n ** 18n), approvalId: created.id });
    assert.equal(first.opHash, created.batch?.items[0]?.opHash);
    // an operation outside the batch
    await assert.rejects(client.signTransaction({ walletName: 'sdk-client', keyIndex: 1, transaction: tx(0, 6n), approvalId: created.id }), {
      name: 'CustosApiError',
      code: 'approval_mismatch',
    });
    await client.signTransaction({ walletName: 'sdk-client', keyIndex: 1, transaction: tx(0, 5n), approvalId: created.id });
    assert.equal((await client.getApproval(created.id)).batch?.signed, 2);
    await client.signAuthorization({ walletName: 'sdk-client', keyIndex: 0, authorization, approvalId: created.id });
    const consumed = await client.getApproval(created.id);
    assert.equal(consumed.state, 'consumed');
    assert.deepEqual(
      consumed.batch?.items.map((i) => i.signed),
      [true, true, true],
    );
    assert.equal(consumed.batch?.items[0]?.auditSeq, first.auditSeq);
  });

  it('checks the id and waitSeconds before any request', async () => {
    for (const id of ['0123456789ABCDEF0123456789ABCDEF', '../../v1/sys/seal', '', '0123456789abcdef0123456789abcdef/cancel']) {
      await assert.rejects(client.getApproval(id), (e: unknown) => e instanceof CustosInputError && e.field === 'id');
      await assert.rejects(client.waitForApproval(id), (e: unknown) => e instanceof CustosInputError && e.field === 'id');
      await assert.rejects(client.cancelApproval(id), (e: unknown) => e instanceof CustosInputError && e.field === 'id');
    }
    for (const waitSeconds of [-1, 61, 1.5, Number.NaN])
      await assert.rejects(
        client.getApproval('0123456789abcdef0123456789abcdef', { waitSeconds }),
        (e: unknown) => e instanceof CustosInputError && e.field === 'waitSeconds',
      );
  });

  it('waitForApproval rejects with reason aborted when its signal fires', async () => {
    const created = await client.createApproval({ walletName: 'sdk-client', keyIndex: 0, operation: { hash: HASH } });
    const abort = new AbortController();
    setTimeout(() => abort.abort(), 300);
    const started = Date.now();
    const e = await client.waitForApproval(created.id, { signal: abort.signal }).catch((error: unknown) => error);
    assert.ok(e instanceof CustosRequestError, String(e));
    assert.equal(e.reason, 'aborted');
    assert.ok(Date.now() - started < 3_000);
    await client.cancelApproval(created.id);
  });

  it('viem: approval instead of code — the callback gets the link and the summary, the account waits and signs', async () => {
    const prompts: ApprovalPrompt[] = [];
    const account = await custosAccount(client, {
      walletName: 'sdk-viem',
      keyIndex: 0,
      approval: async (prompt) => {
        prompts.push(prompt);
        // the owner decides a little later, on the page
        setTimeout(() => void ownerApproves('sdk-viem', prompt.approveUrl), 200);
      },
    });
    const signature = await account.signMessage({ message: 'pay 1 ETH to bob' });
    assert.ok(await verifyMessage({ address: account.address, message: 'pay 1 ETH to bob', signature }));
    assert.equal(prompts.length, 1);
    const [prompt] = prompts as [ApprovalPrompt];
    assert.equal(prompt.operation, 'message');
    assert.equal(prompt.walletName, 'sdk-viem');
    assert.match(prompt.summaryText, /pay 1 ETH to bob/);
    assert.equal((await client.getApproval(prompt.id)).state, 'consumed');

    const serialized = await account.signTransaction({ chainId: 1, nonce: 3, to: TO, value: 5n, gas: 21000n, maxFeePerGas: 30n, maxPriorityFeePerGas: 2n });
    assert.equal(await recoverTransactionAddress({ serializedTransaction: serialized as never }), account.address);
    assert.equal(parseTransaction(serialized).value, 5n);
    assert.equal(prompts.length, 2);
    assert.equal(prompts[1]?.operation, 'transaction');
  });

  it('viem: a rejected approval throws approval_rejected (a CustosViemError) and signs nothing; a throwing callback cancels its approval', async () => {
    const ids: string[] = [];
    const rejecting = await custosAccount(client, {
      walletName: 'sdk-viem',
      keyIndex: 1,
      approval: async ({ approveUrl, id }) => {
        ids.push(id);
        await signer.kernel.decideApproval(capabilityOf(approveUrl), { decision: 'reject' });
      },
    });
    const e = await rejecting.signMessage({ message: 'no' }).catch((error: unknown) => error);
    assert.ok(e instanceof CustosViemError, String(e));
    assert.equal(e.code, 'approval_rejected');
    assert.ok(e.cause instanceof CustosApiError);
    assert.equal((await client.getApproval(ids[0] ?? '')).state, 'rejected');

    const failing = await custosAccount(client, {
      walletName: 'sdk-viem',
      keyIndex: 1,
      approval: ({ id }) => {
        ids.push(id);
        throw new Error('the push service is down');
      },
    });
    await assert.rejects(failing.signMessage({ message: 'x' }), (error: unknown) => error instanceof CustosViemError && /push service/.test(error.message));
    assert.equal((await client.getApproval(ids[1] ?? '')).state, 'cancelled');
  });

  it('viem and ethers: code and approval together are refused (field approval); code alone works unchanged', async () => {
    const approval = () => undefined;
    await assert.rejects(
      custosAccount(client, { walletName: 'sdk-viem', keyIndex: 0, code: '123456', approval }),
      (e: unknown) => e instanceof CustosInputError && e.field === 'approval',
    );
    assert.throws(
      () => new CustosSigner(client, { walletName: 'sdk-ethers', keyIndex: 0, code: () => '123456', approval }),
      (e: unknown) => e instanceof CustosInputError && e.field === 'approval',
    );
    assert.throws(
      () => new CustosSigner(client, { walletName: 'sdk-ethers', keyIndex: 0, approval: 'https://example.com' as never }),
      (e: unknown) => e instanceof CustosInputError && e.field === 'approval',
    );
    const withCode = await custosAccount(client, {
      walletName: 'sdk-viem',
      keyIndex: 0,
      code: () => {
        signer.clock.now += 30_000;
        return totpFromUri(uris.get('sdk-viem') ?? '', signer.clock.now);
      },
    });
    const signature = await withCode.signMessage({ message: 'by code' });
    assert.ok(await verifyMessage({ address: withCode.address, message: 'by code', signature }));
  });

  it('ethers: approval instead of code signs after the owner approves; an expired approval throws approval_expired', async () => {
    const prompts: ApprovalPrompt[] = [];
    const ethersSigner = new CustosSigner(client, {
      walletName: 'sdk-ethers',
      keyIndex: 0,
      approval: async (prompt) => {
        prompts.push(prompt);
        setTimeout(() => void ownerApproves('sdk-ethers', prompt.approveUrl), 200);
      },
    });
    const signature = await ethersSigner.signMessage('hello from ethers');
    assert.equal(ethersVerifyMessage('hello from ethers', signature), await ethersSigner.getAddress());
    assert.equal(prompts[0]?.operation, 'message');

    const expiring = new CustosSigner(client, {
      walletName: 'sdk-ethers',
      keyIndex: 0,
      approval: () => {
        // the owner never decides: the approval's time runs out (on the kernel's clock)
        signer.clock.now += 11 * 60_000;
      },
    });
    await assert.rejects(expiring.signMessage('too late'), { name: 'CustosApiError', code: 'approval_expired' });
  });
});

describe('getApproval: its HTTP deadline is waitSeconds + 10 s (local stub server)', () => {
  let server: Server;
  let base: string;
  before(async () => {
    server = createServer((req, res) => {
      req.resume();
      // answers after 1.5 s, as a long poll that waited for a decision
      setTimeout(() => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ id: '0123456789abcdef0123456789abcdef', state: 'approved', url: req.url }));
      }, 1_500);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  it('a long poll outlives the client’s timeoutMs; a plain GET does not', async () => {
    const client = createCustosClient({ url: base, apiKey: 'k', timeoutMs: 500, retries: 0 });
    const view = (await client.getApproval('0123456789abcdef0123456789abcdef', { waitSeconds: 1 })) as unknown as { state: string; url: string };
    assert.equal(view.state, 'approved');
    assert.equal(view.url, '/v1/approvals/0123456789abcdef0123456789abcdef?waitSeconds=1');
    const e = await client.getApproval('0123456789abcdef0123456789abcdef').catch((error: unknown) => error);
    assert.ok(e instanceof CustosRequestError, String(e));
    assert.equal(e.reason, 'timeout');
  });
});
