import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { createApiKey } from '@custos/kernel';
import { FetchRequest, JsonRpcProvider, Signature as EthersSignature, verifyTypedData as ethersVerifyTypedData } from 'ethers';
import { createWalletClient, http, parseTransaction, recoverAddress, recoverMessageAddress, recoverTransactionAddress, verifyTypedData } from 'viem';
import { foundry } from 'viem/chains';
import { buildApp, overloadGuardOf } from './buildApp.js';
import { captureLogLines } from './testing/captureLogLines.js';
import { createTestSigner, recordTestSecret, type TestSigner } from './testing/createTestSigner.js';
import { REPO_ROOT } from './testing/runCustos.js';
import { ANVIL_BIN, type Anvil, startAnvil } from './testing/startAnvil.js';
import { totpFromUri } from './testing/totpFromUri.js';
import { ETHER_MAIL } from './testing/etherMail.js';

/**
 * The JSON-RPC signer (POST /v1/rpc) with unmodified clients — ethers v6, viem, Foundry's cast —
 * against a real node (anvil) behind Custos, and the attacks on its rules with their exact codes.
 * Anvil sits behind a recording proxy, so that a test can assert what was (not) forwarded. Without
 * anvil (or cast) the suites skip with a notice, and fail under CI.
 */

type Hex = `0x${string}`;
const CAST_BIN = join(REPO_ROOT, 'node_modules', '@foundry-rs', 'cast-linux-amd64', 'bin', 'cast');
const anvilPresent = existsSync(ANVIL_BIN);
const castPresent = existsSync(CAST_BIN);
const CI = process.env.CI === 'true';
if (CI && !anvilPresent) throw new Error(`anvil is missing at ${ANVIL_BIN}: CI needs it`);
if (CI && !castPresent) throw new Error(`cast is missing at ${CAST_BIN}: CI needs it`);
if (!anvilPresent) console.error(`NOTICE: anvil not found at ${ANVIL_BIN}; the JSON-RPC signer tests are skipped`);
if (!castPresent) console.error(`NOTICE: cast not found at ${CAST_BIN}; the cast test is skipped`);

const ETHER = 10n ** 18n;
/** EIP-712's Ether Mail on anvil's chain. */
const TYPED_DATA = { ...ETHER_MAIL, domain: { ...ETHER_MAIL.domain, chainId: 31337 } } as const;

/** A proxy in front of anvil that records every method it is sent (the upstream's view). */
async function startRecordingProxy(target: string): Promise<{ url: string; methods: string[]; close(): Promise<void> }> {
  const methods: string[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const parsed = JSON.parse(body) as { method?: string } | Array<{ method?: string }>;
      for (const call of Array.isArray(parsed) ? parsed : [parsed]) methods.push(String(call.method));
      fetch(target, { method: 'POST', headers: { 'content-type': 'application/json' }, body })
        .then(async (answer) => {
          res.writeHead(answer.status, { 'content-type': 'application/json' });
          res.end(await answer.text());
        })
        .catch(() => {
          res.writeHead(502);
          res.end();
        });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    methods,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

describe('the JSON-RPC signer: unmodified clients against anvil behind Custos', { skip: !anvilPresent, timeout: 120_000 }, () => {
  let signer: TestSigner;
  let anvil: Anvil;
  let proxy: Awaited<ReturnType<typeof startRecordingProxy>>;
  let url: string;
  let port: number;

  before(async () => {
    anvil = await startAnvil();
    proxy = await startRecordingProxy(anvil.url);
    // --rpc-wait 1 s: long enough to see the wait, short enough for a quick suite
    signer = await createTestSigner({ appOptions: { upstreamRpc: proxy.url, rpcWaitSeconds: 1 } });
    url = await signer.app.listen({ host: '127.0.0.1', port: 0 });
    port = (signer.app.server.address() as AddressInfo).port;
    url = `http://127.0.0.1:${port}/v1/rpc`;
  });

  after(async () => {
    await signer?.close();
    await proxy?.close();
    await anvil?.stop();
  });

  /** Registers (walletName, 0) in the tenant's book and funds it on anvil; its address. */
  const account = async (walletName: string, key?: string): Promise<Hex> => {
    const res = await signer.app.inject({ method: 'POST', url: '/v1/rpc/accounts', headers: signer.auth(key), payload: { walletName, keyIndex: 0 } });
    assert.equal(res.statusCode, 200, res.body);
    const { address } = res.json() as { address: Hex };
    await anvil.rpc('anvil_setBalance', [address, `0x${(10n * ETHER).toString(16)}`]);
    return address;
  };
  /** One raw JSON-RPC call over HTTP: the whole response object. */
  const call = async (method: string, params: unknown[], key = signer.apiKey) => {
    const res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
      body: JSON.stringify({ jsonrpc: '2.0', id: 7, method, params }),
    });
    assert.equal(res.status, 200);
    return (await res.json()) as { id: unknown; result?: unknown; error?: { code: number; message: string; data?: Record<string, unknown> } };
  };
  const receiptOf = async (hash: string) => {
    for (let i = 0; i < 500; i++) {
      const receipt = await anvil.rpc<{ from: string; status: string } | null>('eth_getTransactionReceipt', [hash]);
      if (receipt !== null) return receipt;
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.fail(`no receipt for ${hash}`);
  };

  it('ethers v6: getSigner(address) sends a transaction mined from the address, signs a message and typed data (batched requests)', async () => {
    const from = await account('ethers-wallet');
    const request = new FetchRequest(url);
    request.setHeader('authorization', `Bearer ${signer.apiKey}`);
    const provider = new JsonRpcProvider(request);
    try {
      const wallet = await provider.getSigner(from);
      const to = '0x000000000000000000000000000000000000dEaD';
      const sent = await wallet.sendTransaction({ to, value: 12345n });
      const receipt = await sent.wait();
      assert.equal(receipt?.from.toLowerCase(), from.toLowerCase());
      assert.equal(receipt?.status, 1);
      const mined = await anvil.rpc<{ from: string; value: string }>('eth_getTransactionByHash', [sent.hash]);
      assert.equal(mined.from.toLowerCase(), from.toLowerCase());
      assert.equal(BigInt(mined.value), 12345n);

      const signature = await wallet.signMessage('hello from ethers');
      assert.equal((await recoverMessageAddress({ message: 'hello from ethers', signature: signature as Hex })).toLowerCase(), from.toLowerCase());

      const types = JSON.parse(JSON.stringify(TYPED_DATA.types)) as Record<string, Array<{ name: string; type: string }>>;
      const typed = await wallet.signTypedData(TYPED_DATA.domain, types, TYPED_DATA.message);
      assert.equal(ethersVerifyTypedData(TYPED_DATA.domain, types, TYPED_DATA.message, typed).toLowerCase(), from.toLowerCase());
      assert.ok(EthersSignature.from(typed).s.startsWith('0x'));
    } finally {
      provider.destroy();
    }
    // ethers batched its calls into arrays: the proxy saw the forwarded ones, never a signing method
    assert.ok(proxy.methods.includes('eth_sendRawTransaction'));
    assert.ok(!proxy.methods.some((m) => m === 'eth_sendTransaction' || m === 'personal_sign' || m.startsWith('eth_signTypedData')));
  });

  it('viem: a JSON-RPC account sends a transaction mined from the address, signs a message and typed data', async () => {
    const from = await account('viem-wallet');
    const client = createWalletClient({
      account: from,
      chain: foundry,
      transport: http(url, { fetchOptions: { headers: { authorization: `Bearer ${signer.apiKey}` } }, retryCount: 0 }),
    });
    const hash = await client.sendTransaction({ to: '0x000000000000000000000000000000000000bEEF', value: 777n });
    const receipt = await receiptOf(hash);
    assert.equal(receipt.from.toLowerCase(), from.toLowerCase());
    assert.equal(receipt.status, '0x1');

    const signature = await client.signMessage({ message: 'hello from viem' });
    assert.equal((await recoverMessageAddress({ message: 'hello from viem', signature })).toLowerCase(), from.toLowerCase());
    const typed = await client.signTypedData(TYPED_DATA);
    assert.equal(await verifyTypedData({ ...TYPED_DATA, address: from, signature: typed }), true);
  });

  it('cast send --unlocked --from: mined from the address', { skip: !castPresent }, async () => {
    const from = await account('cast-wallet');
    const to = '0x000000000000000000000000000000000000cafe';
    const { stdout } = await promisify(execFile)(
      CAST_BIN,
      ['send', '--unlocked', '--from', from, '--rpc-url', url, '--rpc-headers', `Authorization: Bearer ${signer.apiKey}`, '--json', to, '--value', '4242'],
      { timeout: 60_000 },
    );
    const receipt = JSON.parse(stdout) as { from: string; status: string; transactionHash: string };
    assert.equal(receipt.from.toLowerCase(), from.toLowerCase());
    assert.equal(receipt.status, '0x1');
    const mined = await anvil.rpc<{ value: string; to: string }>('eth_getTransactionByHash', [receipt.transactionHash]);
    assert.equal(BigInt(mined.value), 4242n);
    assert.equal(mined.to.toLowerCase(), to);
  });

  it('an enrolled (TOTP) wallet: approval_pending with approveUrl; a changed field is a new approval; approved on the page, the identical request is mined', async () => {
    const walletName = 'totp-wallet';
    const enrolled = await signer.app.inject({ method: 'POST', url: '/v1/totp/enroll', headers: signer.auth(), payload: { walletName } });
    assert.equal(enrolled.statusCode, 200, enrolled.body);
    const { otpauthUri } = enrolled.json() as { otpauthUri: string };
    const from = await account(walletName);
    const client = createWalletClient({
      account: from,
      chain: foundry,
      transport: http(url, { fetchOptions: { headers: { authorization: `Bearer ${signer.apiKey}` } }, retryCount: 0 }),
    });
    const to = '0x0000000000000000000000000000000000000a11' as const;
    /** The EIP-1193 error under viem's error (4100 approval_pending). */
    const pendingOf = async (value: bigint) => {
      const error = await client.sendTransaction({ to, value }).then(
        () => assert.fail('signed without the owner'),
        (e: unknown) => e as { walk(fn: (e: unknown) => boolean): unknown },
      );
      // viem's UnauthorizedProviderError (4100) wraps the RpcRequestError that holds the answer's data
      const rpc = error.walk((e) => typeof (e as { code?: unknown }).code === 'number' && (e as { data?: unknown }).data !== undefined) as {
        code: number;
        data?: Record<string, unknown>;
      } | null;
      assert.ok(rpc !== null, String(error));
      assert.equal(rpc?.code, 4100);
      assert.equal(rpc?.data?.code, 'approval_pending');
      return rpc?.data as { approvalId: string; approveUrl?: string };
    };

    const first = await pendingOf(1000n);
    assert.match(String(first.approvalId), /^[0-9a-f]{32}$/);
    assert.match(String(first.approveUrl), new RegExp(`^http://localhost:${port}/approve/[A-Za-z0-9_-]{43}$`));
    recordTestSecret('rpc approveUrl', String(first.approveUrl));
    // a retry with a changed field (value) is another operation: a new approval, not the first one
    const changed = await pendingOf(1001n);
    assert.notEqual(changed.approvalId, first.approvalId);
    // the identical request finds its approval again (its link was in the first answer only)
    const again = await pendingOf(1000n);
    assert.equal(again.approvalId, first.approvalId);
    assert.equal(again.approveUrl, undefined);

    // the owner approves on the kernel's page: GET it (cookie, csrf), POST the form with a TOTP code
    // (the link names localhost; the page is served on the address the test listens on)
    const page = new URL(String(first.approveUrl));
    const pageUrl = `http://127.0.0.1:${port}${page.pathname}`;
    const opened = await fetch(pageUrl);
    const html = await opened.text();
    assert.equal(opened.status, 200, html);
    const cookie = /^(custos_form=[A-Za-z0-9_-]{43});/.exec(opened.headers.get('set-cookie') ?? '')?.[1] ?? assert.fail('no form cookie');
    const csrf = /name="csrf" value="([^"]+)"/.exec(html)?.[1] ?? assert.fail('no csrf field');
    const decided = await fetch(pageUrl, {
      method: 'POST',
      // the page's own origin (without --public-url: the one the request came to)
      headers: { origin: `http://127.0.0.1:${port}`, cookie, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ csrf, decision: 'approve', code: totpFromUri(otpauthUri, signer.clock.now) }).toString(),
    });
    assert.equal(decided.status, 200, await decided.text());

    const hash = await client.sendTransaction({ to, value: 1000n });
    const receipt = await receiptOf(hash);
    assert.equal(receipt.from.toLowerCase(), from.toLowerCase());
    const mined = await anvil.rpc<{ value: string }>('eth_getTransactionByHash', [hash]);
    assert.equal(BigInt(mined.value), 1000n);
    // the changed request's approval is still pending: it signs nothing
    assert.equal((await signer.kernel.getApproval(await signer.kernel.authenticateApiKey(signer.apiKey), { id: changed.approvalId })).state, 'pending');
  });

  it('eth_signTransaction: fills nonce, gas and fees from the node, answers the signed transaction (not relayed)', async () => {
    const from = await account('sign-only-wallet');
    const before = proxy.methods.length;
    const answer = await call('eth_signTransaction', [{ from, to: '0x000000000000000000000000000000000000dEaD', value: '0x10' }]);
    const raw = answer.result as Hex;
    assert.match(raw, /^0x02/, 'an EIP-1559 transaction by default');
    assert.equal((await recoverTransactionAddress({ serializedTransaction: raw as `0x02${string}` })).toLowerCase(), from.toLowerCase());
    const tx = parseTransaction(raw);
    assert.equal(tx.chainId, 31337);
    assert.equal(tx.nonce, 0);
    assert.equal(tx.gas, 21000n);
    assert.equal(tx.value, 16n);
    const seen = proxy.methods.slice(before);
    for (const method of ['eth_chainId', 'eth_getTransactionCount', 'eth_maxPriorityFeePerGas', 'eth_getBlockByNumber', 'eth_estimateGas'])
      assert.ok(seen.includes(method), `filled with ${method}`);
    assert.ok(!seen.includes('eth_sendRawTransaction'), 'eth_signTransaction relays nothing');
  });

  it('an identical request that waits (--rpc-wait) is answered with the signature as soon as the owner approves', async () => {
    const walletName = 'totp-wait';
    const enrolled = await signer.app.inject({ method: 'POST', url: '/v1/totp/enroll', headers: signer.auth(), payload: { walletName } });
    const { otpauthUri } = enrolled.json() as { otpauthUri: string };
    const from = await account(walletName);
    const first = await call('personal_sign', ['0x77616974', from]);
    assert.equal(first.error?.data?.code, 'approval_pending');
    // another app on the same kernel waits up to 30 s: the decision, not the clock, ends its wait
    const patient = await buildApp({ kernel: signer.kernel, upstreamRpc: proxy.url, rpcWaitSeconds: 30 });
    try {
      const waiting = patient.inject({
        method: 'POST',
        url: '/v1/rpc',
        headers: { ...signer.auth(), 'content-type': 'application/json' },
        payload: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'personal_sign', params: ['0x77616974', from] }),
      });
      await new Promise((r) => setTimeout(r, 50));
      const capability = String(first.error?.data?.approveUrl).split('/').at(-1);
      await signer.kernel.decideApproval(capability, { decision: 'approve', kind: 'totp', proof: totpFromUri(otpauthUri, signer.clock.now) });
      const started = performance.now();
      const answered = await waiting;
      const signature = answered.json().result as Hex;
      assert.equal((await recoverMessageAddress({ message: { raw: '0x77616974' }, signature })).toLowerCase(), from.toLowerCase());
      assert.ok(performance.now() - started < 20_000, 'answered on the decision, not at the end of the wait');
    } finally {
      await patient.close();
    }
  });

  it('a rejected approval answers 4001 (approval_rejected) to the identical request', async () => {
    const walletName = 'totp-reject';
    const enrolled = await signer.app.inject({ method: 'POST', url: '/v1/totp/enroll', headers: signer.auth(), payload: { walletName } });
    assert.equal(enrolled.statusCode, 200, enrolled.body);
    const from = await account(walletName);
    const first = await call('personal_sign', ['0x68656c6c6f', from]);
    assert.equal(first.error?.code, 4100);
    assert.equal(first.error?.data?.code, 'approval_pending');
    const capability = String(first.error?.data?.approveUrl).split('/').at(-1);
    await signer.kernel.decideApproval(capability, { decision: 'reject' });
    const rejected = await call('personal_sign', ['0x68656c6c6f', from]);
    assert.equal(rejected.error?.code, 4001);
    assert.equal(rejected.error?.data?.code, 'approval_rejected');
  });

  it('attack: eth_sendTransaction over the wallet’s limit → 4100 policy_limit_exceeded, nothing relayed (docs/policy.md)', async () => {
    const walletName = 'rpc-limited';
    const from = await account(walletName);
    const set = await signer.app.inject({
      method: 'PUT',
      url: '/v1/wallets/policy',
      headers: signer.auth(),
      payload: { walletName, policy: { native: { '31337': { perTx: String(ETHER / 100n) } } } },
    });
    assert.equal(set.statusCode, 200, set.body);
    const before = proxy.methods.filter((m) => m === 'eth_sendRawTransaction').length;
    const answer = await call('eth_sendTransaction', [{ from, to: '0x000000000000000000000000000000000000dEaD', value: `0x${ETHER.toString(16)}` }]);
    assert.equal(answer.error?.code, 4100);
    assert.equal(answer.error?.data?.code, 'policy_limit_exceeded');
    assert.equal(proxy.methods.filter((m) => m === 'eth_sendRawTransaction').length, before, 'nothing relayed');
  });

  it('attack: eth_sendTransaction from an address not in the tenant’s book → 4100 rpc_account_unknown, nothing relayed', async () => {
    const before = proxy.methods.length;
    const answer = await call('eth_sendTransaction', [
      { from: '0x70997970C51812dc3A010C7d01b50e0d17dc79C8', to: '0x000000000000000000000000000000000000dEaD', value: '0x1' },
    ]);
    assert.equal(answer.error?.code, 4100);
    assert.equal(answer.error?.data?.code, 'rpc_account_unknown');
    assert.deepEqual(proxy.methods.slice(before), [], 'nothing reached the node');
  });

  it('attack: personal_unlockAccount, an anvil_ method and other refused namespaces → -32601, never forwarded', async () => {
    const before = proxy.methods.length;
    const refused = [
      ['personal_unlockAccount', ['0x70997970C51812dc3A010C7d01b50e0d17dc79C8', 'pw', 600]],
      ['anvil_setBalance', ['0x70997970C51812dc3A010C7d01b50e0d17dc79C8', '0x1']],
      ['anvil_impersonateAccount', ['0x70997970C51812dc3A010C7d01b50e0d17dc79C8']],
      ['eth_requestAccounts', []],
      ['wallet_sendTransaction', [{}]],
      ['eth_signTypedData_v3', []],
      ['debug_traceTransaction', ['0x00']],
      ['evm_mine', []],
      ['hardhat_setBalance', []],
      ['admin_peers', []],
      ['miner_start', []],
      ['txpool_content', []],
      // anvil sends an unsigned transaction from any `from` (found by review: it was forwarded)
      ['eth_sendUnsignedTransaction', [{ from: '0x70997970C51812dc3A010C7d01b50e0d17dc79C8', to: '0x70997970C51812dc3A010C7d01b50e0d17dc79C8', value: '0x1' }]],
      ['eth_coinbase', []],
      ['parity_allTransactions', []],
      ['signer_requestsToConfirm', []],
      ['engine_forkchoiceUpdatedV3', []],
      // Besu's validator votes and permissioning, Clef's and geth's account namespaces (review 2),
      // and other spellings of a signing method or a refused one
      ['qbft_proposeValidatorVote', []],
      ['perm_addAccountsToAllowlist', []],
      ['account_signTransaction', []],
      ['ETH_SIGN', ['0x70997970C51812dc3A010C7d01b50e0d17dc79C8', '0x00']],
      ['Personal_unlockAccount', []],
    ] as const;
    for (const [method, params] of refused) {
      const answer = await call(method, [...params]);
      assert.equal(answer.error?.code, -32601, method);
    }
    assert.deepEqual(proxy.methods.slice(before), [], 'the node never saw them');
    // and a method of the node is forwarded unchanged
    const block = await call('eth_blockNumber', []);
    assert.match(String(block.result), /^0x[0-9a-f]+$/);
    assert.deepEqual(proxy.methods.slice(before), ['eth_blockNumber']);
    // a null result is answered as null (not left out)
    const receipt = await call('eth_getTransactionReceipt', [`0x${'00'.repeat(32)}`]);
    assert.ok(Object.hasOwn(receipt, 'result') && receipt.result === null, JSON.stringify(receipt));
  });

  it('attack: eth_sign signs the EIP-191 message of the data, never the data as a raw hash', async () => {
    const from = await account('eth-sign-wallet');
    const hash = `0x${'ab'.repeat(32)}` as Hex;
    const answer = await call('eth_sign', [from, hash]);
    const signature = answer.result as Hex;
    assert.equal((await recoverMessageAddress({ message: { raw: hash }, signature })).toLowerCase(), from.toLowerCase());
    assert.notEqual((await recoverAddress({ hash, signature })).toLowerCase(), from.toLowerCase(), 'not a signature of the raw hash');
  });

  it('attack: another tenant’s key cannot use this tenant’s book (eth_accounts empty, from unknown, the wallet not registrable)', async () => {
    const from = await account('tenant-a-wallet');
    const { token: other } = await createApiKey(signer.store, { name: 'tenant b', tenant: 'tenant-b', scopes: ['register', 'derive', 'sign'] });
    recordTestSecret('rpc other apiKey', other);
    assert.deepEqual((await call('eth_accounts', [], other)).result, []);
    const signed = await call('personal_sign', ['0x68656c6c6f', from], other);
    assert.equal(signed.error?.code, 4100);
    assert.equal(signed.error?.data?.code, 'rpc_account_unknown');
    const registered = await signer.app.inject({
      method: 'POST',
      url: '/v1/rpc/accounts',
      headers: signer.auth(other),
      payload: { walletName: 'tenant-a-wallet', keyIndex: 0 },
    });
    assert.equal(registered.statusCode, 404);
    assert.equal(registered.json().error.code, 'wallet_not_found');
    // this tenant's eth_accounts lists it
    assert.ok(((await call('eth_accounts', [])).result as string[]).includes(from.toLowerCase()));
  });

  it('a key without scope sign: signing and forwarding refused 4100 forbidden_scope', async () => {
    const { token } = await createApiKey(signer.store, { name: 'derive only', scopes: ['derive'] });
    recordTestSecret('rpc derive-only apiKey', token);
    for (const [method, params] of [
      ['eth_blockNumber', []],
      ['eth_accounts', []],
      ['personal_sign', ['0x00', '0x70997970C51812dc3A010C7d01b50e0d17dc79C8']],
    ] as const) {
      const answer = await call(method, [...params], token);
      assert.equal(answer.error?.code, 4100, method);
      assert.equal(answer.error?.data?.code, 'forbidden_scope', method);
    }
    // each refusal audited, by its action
    const denied = (await signer.store.readAudit(1, 100_000)).filter((r) => r.reason === 'forbidden_scope').map((r) => r.action);
    for (const action of ['rpc.forward', 'rpc.account.list', 'rpc.account.resolve']) assert.ok(denied.includes(action), action);
  });
});

describe('the JSON-RPC signer: protocol shapes, no upstream, the key in the URL', () => {
  let signer: TestSigner;
  before(async () => {
    signer = await createTestSigner();
  });
  after(async () => {
    await signer?.close();
  });
  const post = (payload: string, headers: Record<string, string> = signer.auth(), path = '/v1/rpc') =>
    signer.app.inject({ method: 'POST', url: path, headers: { 'content-type': 'application/json', ...headers }, payload });

  it('bad JSON-RPC shapes answer JSON-RPC errors with HTTP 200: -32700 for a body that is not JSON, -32600 for a bad request or batch', async () => {
    const cases: Array<[string, unknown]> = [
      ['{"jsonrpc":"2.0",', { jsonrpc: '2.0', id: null, error: { code: -32700, message: 'the body is not JSON' } }],
      ['[]', { jsonrpc: '2.0', id: null, error: { code: -32600, message: 'a batch holds 1–100 calls' } }],
      ['5', { jsonrpc: '2.0', id: null, error: { code: -32600, message: 'expected a JSON-RPC request object' } }],
      ['{"jsonrpc":"1.0","id":1,"method":"eth_chainId"}', { jsonrpc: '2.0', id: 1, error: { code: -32600, message: 'jsonrpc: expected "2.0"' } }],
      ['{"jsonrpc":"2.0","id":2}', { jsonrpc: '2.0', id: 2, error: { code: -32600, message: 'method: expected a string of 1–128 characters' } }],
      [
        '{"jsonrpc":"2.0","id":{},"method":"eth_chainId"}',
        { jsonrpc: '2.0', id: null, error: { code: -32600, message: 'id: expected a string, a number or null' } },
      ],
      [
        '{"jsonrpc":"2.0","id":3,"method":"eth_sign","params":"x"}',
        { jsonrpc: '2.0', id: 3, error: { code: -32600, message: 'params: expected an array or an object' } },
      ],
    ];
    for (const [payload, expected] of cases) {
      const res = await post(payload);
      assert.equal(res.statusCode, 200, payload);
      assert.deepEqual(res.json(), expected, payload);
    }
    const tooMany = JSON.stringify(Array.from({ length: 101 }, (_, i) => ({ jsonrpc: '2.0', id: i, method: 'eth_accounts' })));
    assert.equal((await post(tooMany)).json().error.code, -32600);
    // a batch answers each call by its id; a notification gets no answer
    const batch = await post(
      JSON.stringify([
        { jsonrpc: '2.0', id: 'a', method: 'eth_accounts' },
        { jsonrpc: '2.0', method: 'eth_accounts' },
        { jsonrpc: '2.0', id: 'b', method: 'personal_unlockAccount', params: [] },
      ]),
    );
    assert.deepEqual(batch.json(), [
      { jsonrpc: '2.0', id: 'a', result: [] },
      { jsonrpc: '2.0', id: 'b', error: { code: -32601, message: 'personal_unlockAccount is not served by this signer' } },
    ]);
    assert.equal((await post('{"jsonrpc":"2.0","method":"eth_accounts"}')).statusCode, 204);
  });

  it('no upstream configured: a forwarded method answers -32603 upstream_unavailable, never a 5xx', async () => {
    const res = await post('{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber","params":[]}');
    assert.equal(res.statusCode, 200);
    assert.equal(res.json().error.code, -32603);
    assert.equal(res.json().error.data.code, 'upstream_unavailable');
  });

  it('a call forwarded to a slow node keeps its in-flight slot but is not busy meanwhile: a slow node does not fill the rate-based limit', async () => {
    // a node that holds every call until told to answer
    const held: Array<() => void> = [];
    const node = createServer((req, res) => {
      req.resume();
      req.on('end', () => held.push(() => res.setHeader('content-type', 'application/json').end('{"jsonrpc":"2.0","id":1,"result":"0x1"}')));
    });
    await new Promise<void>((resolve) => node.listen(0, '127.0.0.1', resolve));
    const { port } = node.address() as AddressInfo;
    const app = await buildApp({ kernel: signer.kernel, upstreamRpc: `http://127.0.0.1:${port}`, targetLatencyMs: 100 });
    try {
      const guard = overloadGuardOf(app);
      const answer = app.inject({
        method: 'POST',
        url: '/v1/rpc',
        headers: { ...signer.auth(), 'content-type': 'application/json' },
        payload: '{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber"}',
      });
      for (let waited = 0; held.length === 0; waited += 10) {
        assert.ok(waited < 10_000, 'the node never got the call');
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      assert.equal(guard.inFlight, 1, 'the forwarded call keeps its slot');
      assert.equal(guard.busy, 0, 'but is not busy while the node answers');
      for (const release of held) release();
      const res = await answer;
      assert.equal(res.statusCode, 200, res.body);
      assert.equal(res.json().result, '0x1');
      assert.equal(guard.inFlight, 0);
      assert.equal(guard.busy, 0);
    } finally {
      await app.close();
      await new Promise<void>((resolve) => node.close(() => resolve()));
    }
  });

  it('an unreachable upstream: -32603 upstream_unavailable', async () => {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    await new Promise<void>((resolve) => server.close(() => resolve()));
    const app = await buildApp({ kernel: signer.kernel, upstreamRpc: `http://127.0.0.1:${port}` });
    try {
      const res = await app.inject({
        method: 'POST',
        url: '/v1/rpc',
        headers: { ...signer.auth(), 'content-type': 'application/json' },
        payload: '{"jsonrpc":"2.0","id":1,"method":"eth_chainId"}',
      });
      assert.equal(res.statusCode, 200);
      assert.equal(res.json().error.data.code, 'upstream_unavailable');
    } finally {
      await app.close();
    }
  });

  it('attack: ?apiKey= is refused without --rpc-key-in-url (400 invalid_input, field apiKey); with it, it authenticates and is never logged', async () => {
    const refused = await post('{"jsonrpc":"2.0","id":1,"method":"eth_accounts"}', {}, `/v1/rpc?apiKey=${encodeURIComponent(signer.apiKey)}`);
    assert.equal(refused.statusCode, 400);
    assert.equal(refused.json().error.code, 'invalid_input');
    assert.equal(refused.json().error.details.field, 'apiKey');
    assert.equal((await post('{"jsonrpc":"2.0","id":1,"method":"eth_accounts"}', {})).json().error.code, 'unauthorized');
    // refused beside a valid header too: without the flag, keys stay out of URLs
    const beside = await post('{"jsonrpc":"2.0","id":1,"method":"eth_accounts"}', signer.auth(), `/v1/rpc?apiKey=${encodeURIComponent(signer.apiKey)}`);
    assert.equal(beside.statusCode, 400);
    assert.equal(beside.json().error.details.field, 'apiKey');

    const { logger, lines } = captureLogLines();
    const app = await buildApp({ kernel: signer.kernel, logger, rpcKeyInUrl: true });
    try {
      const res = await app.inject({
        method: 'POST',
        url: `/v1/rpc?apiKey=${encodeURIComponent(signer.apiKey)}`,
        headers: { 'content-type': 'application/json' },
        payload: '{"jsonrpc":"2.0","id":1,"method":"eth_accounts"}',
      });
      assert.equal(res.statusCode, 200, res.body);
      assert.deepEqual(res.json(), { jsonrpc: '2.0', id: 1, result: [] });
      const wrong = await app.inject({ method: 'POST', url: '/v1/rpc?apiKey=ck_nope', headers: { 'content-type': 'application/json' }, payload: '{}' });
      assert.equal(wrong.json().error.code, 'unauthorized');
    } finally {
      await app.close();
    }
    const log = lines.join('');
    assert.ok(log.includes('/v1/rpc'), 'the requests were logged');
    const secret = signer.apiKey.slice(signer.apiKey.lastIndexOf('_') + 1);
    assert.ok(!log.includes(secret) && !log.includes(encodeURIComponent(signer.apiKey)), 'the key is not in the log');
  });

  it('the address book: registered once, paged in insertion order with a cursor; eth_accounts answers its first entries', async () => {
    const added: string[] = [];
    for (let i = 0; i < 5; i++) {
      signer.clock.now += 1;
      const res = await signer.app.inject({ method: 'POST', url: '/v1/rpc/accounts', headers: signer.auth(), payload: { walletName: 'book', keyIndex: i } });
      assert.equal(res.statusCode, 200, res.body);
      added.push(res.json().address);
    }
    const again = await signer.app.inject({ method: 'POST', url: '/v1/rpc/accounts', headers: signer.auth(), payload: { walletName: 'book', keyIndex: 0 } });
    assert.equal(again.json().address, added[0]);
    // audited: each registration, with its address and key index
    const audited = (await signer.store.readAudit(1, 10_000)).filter((r) => r.action === 'rpc.account.add' && r.walletName === 'book');
    assert.deepEqual(
      audited.map((r) => [r.decision, (r.detail as { address?: string }).address, (r.detail as { keyIndex?: number }).keyIndex]),
      [...added.map((address, i) => ['allowed', address, i]), ['allowed', added[0], 0]],
    );
    const keys = await signer.app.inject({ method: 'GET', url: '/v1/keys?walletName=book&keyIndex=3', headers: signer.auth() });
    assert.equal(keys.json().address.toLowerCase(), added[3], 'the address the kernel derives');

    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page: { statusCode: number; body: string; json(): unknown } = await signer.app.inject({
        method: 'GET',
        url: `/v1/rpc/accounts?limit=2${cursor === null ? '' : `&cursor=${encodeURIComponent(cursor)}`}`,
        headers: signer.auth(),
      });
      assert.equal(page.statusCode, 200, page.body);
      const body = page.json() as { accounts: Array<{ address: string }>; nextCursor: string | null };
      assert.ok(body.accounts.length <= 2);
      seen.push(...body.accounts.map((a) => a.address));
      cursor = body.nextCursor;
    } while (cursor !== null);
    assert.deepEqual(seen, added);
    const accounts = await post('{"jsonrpc":"2.0","id":1,"method":"eth_accounts"}');
    assert.deepEqual(accounts.json().result, added);
    const bad = await signer.app.inject({ method: 'GET', url: '/v1/rpc/accounts?cursor=nope', headers: signer.auth() });
    assert.equal(bad.statusCode, 400);
    assert.equal(bad.json().error.details.field, 'cursor');
  });

  it('attack: an address book row pointed at another key in the database signs nothing (-32603 record_unreadable)', async () => {
    const res = await signer.app.inject({ method: 'POST', url: '/v1/rpc/accounts', headers: signer.auth(), payload: { walletName: 'victim', keyIndex: 0 } });
    const { address } = res.json() as { address: string };
    await signer.sql('UPDATE rpc_accounts SET key_index = 1 WHERE address = $1', address);
    const answer = await post(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'personal_sign', params: ['0x00', address] }));
    assert.equal(answer.json().error.code, -32603);
    assert.equal(answer.json().error.data.code, 'record_unreadable');
  });

  it('a call waiting for its owner gives its in-flight slot back: with one slot, other requests are served meanwhile', async () => {
    const walletName = 'totp-slot';
    const enrolled = await signer.app.inject({ method: 'POST', url: '/v1/totp/enroll', headers: signer.auth(), payload: { walletName } });
    const { otpauthUri } = enrolled.json() as { otpauthUri: string };
    const { address } = (
      await signer.app.inject({ method: 'POST', url: '/v1/rpc/accounts', headers: signer.auth(), payload: { walletName, keyIndex: 0 } })
    ).json() as { address: string };
    const payload = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'personal_sign', params: ['0x736c6f74', address] });
    const headers = { ...signer.auth(), 'content-type': 'application/json' };
    const quick = await buildApp({ kernel: signer.kernel, rpcWaitSeconds: 0 });
    const patient = await buildApp({ kernel: signer.kernel, rpcWaitSeconds: 30, maxInFlight: 1 });
    try {
      const first = (await quick.inject({ method: 'POST', url: '/v1/rpc', headers, payload })).json();
      assert.equal(first.error.data.code, 'approval_pending');
      const pendingSigns = async () =>
        (await signer.store.readAudit(1, 100_000)).filter((r) => r.walletName === walletName && r.reason === 'approval_pending').length;
      const before = await pendingSigns();
      const waiting = patient.inject({ method: 'POST', url: '/v1/rpc', headers, payload });
      // the call was admitted (its slot taken) once its sign with the pending approval is audited
      for (let i = 0; i < 1000 && (await pendingSigns()) === before; i++) await new Promise((r) => setTimeout(r, 10));
      // waiting, it holds no in-flight slot: another request gets the only one
      let other: { statusCode: number; body: string } | undefined;
      for (let i = 0; i < 500; i++) {
        other = await patient.inject({ method: 'GET', url: '/v1/rpc/accounts', headers: signer.auth() });
        if (other.statusCode === 200) break;
        await new Promise((r) => setTimeout(r, 10)); // until the call is in its wait
      }
      assert.equal(other?.statusCode, 200, other?.body);
      const capability = String(first.error.data.approveUrl).split('/').at(-1);
      await signer.kernel.decideApproval(capability, { decision: 'approve', kind: 'totp', proof: totpFromUri(otpauthUri, signer.clock.now) });
      const answered = (await waiting).json();
      assert.ok(typeof answered.result === 'string', JSON.stringify(answered));
      const signature = answered.result as Hex;
      assert.equal((await recoverMessageAddress({ message: { raw: '0x736c6f74' }, signature })).toLowerCase(), address);
    } finally {
      await quick.close();
      await patient.close();
    }
  });
});
