import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { inspect } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { parseTransaction, recoverAddress, recoverTransactionAddress, verifyMessage, verifyTypedData } from 'viem';
import { createCustosClient } from './client.js';
import { CustosApiError, CustosInputError, CustosRequestError } from './errors.js';
import { listenTestSigner } from './testing/listenTestSigner.js';
import { RAW_HASHES_ALLOWED, TEST_PASSPHRASE, totpFromUri } from './testing/serverTesting.js';

type Listening = Awaited<ReturnType<typeof listenTestSigner>>;

describe('createCustosClient against a real kernel (SQLite)', () => {
  let signer: Listening;
  before(async () => {
    signer = await listenTestSigner({ policyDefaults: RAW_HASHES_ALLOWED });
  });
  after(async () => {
    await signer.close();
  });

  it('status needs no key; the signerId is the kernel’s', async () => {
    const client = createCustosClient({ url: signer.url, apiKey: 'ck1.not-a-key' });
    const status = await client.status();
    assert.equal(status.sealed, false);
    assert.equal(status.signerId, signer.signerId);
  });

  it('enrol, wallet, key, then a TOTP-gated sign: code_required, a valid code signs once, code_reused after', async () => {
    const client = createCustosClient({ url: signer.url, apiKey: signer.apiKey });
    const enrolled = await client.enrollTotp({ walletName: 'client-alice' });
    assert.match(enrolled.otpauthUri, /^otpauth:\/\/totp\//);
    assert.deepEqual((await client.getWallet({ walletName: 'client-alice' })).factors, ['totp']);
    const listed = (await client.listWallets({ limit: 200 })).wallets.find((w) => w.walletName === 'client-alice');
    assert.deepEqual(listed && 'factors' in listed ? listed.factors : undefined, ['totp']);
    const key = await client.getKey({ walletName: 'client-alice', keyIndex: 3 });
    assert.equal(key.keyIndex, 3);
    assert.match(key.address, /^0x[0-9a-fA-F]{40}$/);
    const viaInject = (await signer.app.inject({ url: '/v1/keys?walletName=client-alice&keyIndex=3', headers: signer.auth() })).json();
    assert.equal(key.address, viaInject.address);

    const hash = `0x${'ab'.repeat(32)}` as const;
    await assert.rejects(client.signHash({ walletName: 'client-alice', keyIndex: 3, hash }), (e: unknown) => {
      assert.ok(e instanceof CustosApiError);
      assert.equal(e.code, 'code_required');
      assert.equal(e.status, 403);
      return true;
    });
    const code = totpFromUri(enrolled.otpauthUri, signer.clock.now);
    const signed = await client.signHash({ walletName: 'client-alice', keyIndex: 3, hash, code });
    assert.equal(await recoverAddress({ hash, signature: signed.signature }), key.address);
    assert.equal(typeof signed.auditSeq, 'number');
    await assert.rejects(client.signHash({ walletName: 'client-alice', keyIndex: 3, hash, code }), { name: 'CustosApiError', code: 'code_reused' });
  });

  it('a lost sign response is retried under its Idempotency-Key: the stored result comes back, the code is not reused, one audit record', async () => {
    const enrolled = await createCustosClient({ url: signer.url, apiKey: signer.apiKey }).enrollTotp({ walletName: 'client-lost' });
    let calls = 0;
    // The first answer is lost on the way back (the server did sign); the SDK retries the same bytes and key.
    const losing: typeof fetch = async (input, init) => {
      const response = await fetch(input, init);
      if (++calls > 1) return response;
      await response.arrayBuffer();
      throw new TypeError('fetch failed (the response was lost, stand-in)');
    };
    const client = createCustosClient({ url: signer.url, apiKey: signer.apiKey, fetch: losing });
    const hash = `0x${'ef'.repeat(32)}` as const;
    const code = totpFromUri(enrolled.otpauthUri, signer.clock.now);
    const signed = await client.signHash({ walletName: 'client-lost', keyIndex: 0, hash, code });
    assert.equal(calls, 2);
    const [row] = await signer.sql("SELECT count(*) AS n FROM audit_log WHERE op_hash = $1 AND decision = 'allowed'", signed.opHash);
    assert.equal(Number(row?.n), 1, 'one allowed record');
    // Without the key, the same bytes again are a new request: the code was used once, by the first attempt.
    const plain = createCustosClient({ url: signer.url, apiKey: signer.apiKey });
    await assert.rejects(plain.signHash({ walletName: 'client-lost', keyIndex: 0, hash, code }), { name: 'CustosApiError', code: 'code_reused' });
    // Another key is another request: refused, the code having been used.
    const again = await plain.signHash({ walletName: 'client-lost', keyIndex: 0, hash, code }, { idempotencyKey: 'lost-1' }).catch((e: unknown) => e);
    assert.ok(again instanceof CustosApiError && again.code === 'code_reused', 'a new key is a new request');
  });

  it('a wrong key is unauthorized (401), a missing scope forbidden_scope, bad input names the field; no error carries the key', async () => {
    const wrong = createCustosClient({ url: signer.url, apiKey: `${signer.apiKey.slice(0, -2)}xx` });
    const e = await wrong.getKey({ walletName: 'w', keyIndex: 0 }).catch((error: unknown) => error);
    assert.ok(e instanceof CustosApiError);
    assert.equal(e.code, 'unauthorized');
    assert.equal(e.status, 401);
    assert.ok(!JSON.stringify({ message: e.message, details: e.details, stack: e.stack }).includes(signer.apiKey.slice(0, -2)));

    const client = createCustosClient({ url: signer.url, apiKey: signer.apiKey });
    // The key lives in the client's closure: not in its JSON, not in what console.log shows.
    assert.ok(!JSON.stringify(client).includes(signer.apiKey));
    assert.ok(!inspect(client, { depth: 5, showHidden: true }).includes(signer.apiKey));
    const bad = await client.signHash({ walletName: 'w', keyIndex: 0, hash: '0x1234' }).catch((error: unknown) => error);
    assert.ok(bad instanceof CustosApiError);
    assert.equal(bad.code, 'invalid_input');
    assert.equal(bad.status, 400);
    assert.equal(bad.details.field, 'hash');
    assert.equal(bad.docsPath, 'docs/errors.md#invalid-input');
    const badIndex = await client.getKey({ walletName: 'w', keyIndex: -1 }).catch((error: unknown) => error);
    assert.ok(badIndex instanceof CustosApiError);
    assert.equal(badIndex.details.field, 'keyIndex');
  });

  it('unsealing an unsealed signer is already_unsealed (409)', async () => {
    const client = createCustosClient({ url: signer.url, apiKey: signer.apiKey });
    await assert.rejects(client.unseal({ passphrase: 'irrelevant' }), { code: 'already_unsealed', status: 409 });
  });

  it('has a method for every /v1 route of the server’s OpenAPI document (a new route fails this test until the SDK has it)', async () => {
    const client = createCustosClient({ url: signer.url, apiKey: signer.apiKey });
    const METHODS: Record<string, keyof typeof client> = {
      'get /v1/sys/status': 'status',
      'post /v1/sys/unseal': 'unseal',
      'post /v1/sys/unseal/reset': 'resetUnseal',
      'post /v1/sys/seal': 'seal',
      'post /v1/totp/enroll': 'enrollTotp',
      'get /v1/keys': 'getKey',
      'get /v1/wallets': 'getWallet',
      'get /v1/wallets/list': 'listWallets',
      'post /v1/wallets/freeze': 'freezeWallet',
      'get /v1/wallets/policy': 'getWalletPolicy',
      'put /v1/wallets/policy': 'setWalletPolicy',
      'post /v1/sign/hash': 'signHash',
      'post /v1/sign/transaction': 'signTransaction',
      'post /v1/sign/message': 'signMessage',
      'post /v1/sign/typed-data': 'signTypedData',
      'post /v1/sign/authorization': 'signAuthorization',
      'post /v1/approvals': 'createApproval',
      'get /v1/approvals/{id}': 'getApproval',
      'post /v1/approvals/{id}/cancel': 'cancelApproval',
      'post /v1/enrollments': 'createEnrollment',
      'post /v1/changes': 'requestChange',
      'get /v1/changes': 'getChange',
      'post /v1/changes/confirm': 'confirmChange',
      'post /v1/changes/cancel': 'cancelChange',
      'post /v1/factors': 'enrollHwkey',
      'post /v1/approvals/{id}/hwkey-challenge': 'hwkeyChallenge',
      'post /v1/approvals/{id}/hwkey': 'answerHwkeyChallenge',
      'post /v1/approvals/{id}/resend': 'resendApprovalCode',
      'post /v1/rpc/accounts': 'registerRpcAccount',
      'get /v1/rpc/accounts': 'listRpcAccounts',
      'post /v1/rpc': 'rpc',
      'post /v1/admin/proposals': 'proposeChange',
      'get /v1/admin/proposals': 'listProposals',
      'get /v1/admin/proposals/{id}': 'getProposal',
      'post /v1/admin/proposals/{id}/approvals': 'approveProposal',
      'post /v1/admin/passkey-links': 'createAdminPasskeyLink',
      'get /v1/admin/passkey-candidates': 'listAdminPasskeyCandidates',
      'get /v1/admin/notices': 'listAdminNotices',
      'get /v1/audit': 'listAudit',
      'get /v1/apikeys': 'listApiKeys',
      'post /v1/apikeys': 'createApiKey',
      'delete /v1/apikeys': 'revokeApiKey',
    };
    const doc = (await client.openApi()) as { paths: Record<string, Record<string, unknown>> };
    const routes = Object.entries(doc.paths)
      .filter(([path]) => path.startsWith('/v1/'))
      .flatMap(([path, ops]) => Object.keys(ops).map((method) => `${method} ${path}`))
      .sort();
    assert.deepEqual(routes, Object.keys(METHODS).sort());
    for (const method of Object.values(METHODS)) assert.equal(typeof client[method], 'function', method);
  });

  it('the JSON-RPC address book and endpoint through the client: the address the kernel derives, paged, answered by eth_accounts', async () => {
    const client = createCustosClient({ url: signer.url, apiKey: signer.apiKey });
    const key = await client.getKey({ walletName: 'rpc-book', keyIndex: 3 });
    const entry = await client.registerRpcAccount({ walletName: 'rpc-book', keyIndex: 3 });
    assert.equal(entry.address, key.address.toLowerCase());
    assert.deepEqual({ walletName: entry.walletName, keyIndex: entry.keyIndex }, { walletName: 'rpc-book', keyIndex: 3 });
    const page = await client.listRpcAccounts({ limit: 1000 });
    assert.ok(page.accounts.some((a) => a.address === entry.address));
    const answer = await client.rpc({ jsonrpc: '2.0', id: 7, method: 'eth_accounts', params: [] });
    assert.ok(!Array.isArray(answer) && answer.id === 7 && Array.isArray(answer.result) && (answer.result as string[]).includes(entry.address));
    // a refusal comes back inside the JSON-RPC answer, not thrown
    const refused = await client.rpc([{ jsonrpc: '2.0', id: 'x', method: 'personal_unlockAccount', params: [] }]);
    assert.ok(Array.isArray(refused));
    assert.equal(refused[0]?.error?.code, -32601);
  });

  it('Ethereum operations through the client: bigint quantities go as decimal strings; the answers carry summary, opHash, auditSeq', async () => {
    const client = createCustosClient({ url: signer.url, apiKey: signer.apiKey });
    const key = { walletName: 'client-plain', keyIndex: 0 };
    const { address } = await client.getKey(key);
    const tx = await client.signTransaction({
      ...key,
      transaction: {
        type: 'eip1559',
        chainId: 1,
        nonce: 0,
        to: '0x000000000000000000000000000000000000bEEF',
        value: 10n ** 18n,
        gas: 21000n,
        maxFeePerGas: 30n * 10n ** 9n,
        maxPriorityFeePerGas: 10n ** 9n,
      },
    });
    assert.equal(await recoverTransactionAddress({ serializedTransaction: tx.serializedTransaction as never }), address);
    assert.equal(parseTransaction(tx.serializedTransaction).value, 10n ** 18n);
    assert.equal(tx.summary.operation, 'transaction');
    assert.equal(typeof tx.summaryText, 'string');
    assert.match(tx.opHash, /^(0x)?[0-9a-f]{64}$/);
    assert.equal(typeof tx.auditSeq, 'number');
    const message = await client.signMessage({ ...key, message: { text: 'hello' } });
    assert.ok(await verifyMessage({ address, message: 'hello', signature: message.signature }));
    const raw = await client.signMessage({ ...key, message: { raw: '0x00ff' } });
    assert.ok(await verifyMessage({ address, message: { raw: '0x00ff' }, signature: raw.signature }));
    const auth = await client.signAuthorization({ ...key, authorization: { chainId: 1, address: '0x000000000000000000000000000000000000bEEF', nonce: 0 } });
    assert.equal(auth.authorization.nonce, 0);
    const big = await client.signTypedData({
      ...key,
      typedData: {
        domain: { name: 'T', chainId: 1 },
        types: { Pay: [{ name: 'amount', type: 'uint256' }] },
        primaryType: 'Pay',
        message: { amount: 2n ** 255n },
      },
    });
    assert.ok(
      await verifyTypedData({
        address,
        domain: { name: 'T', chainId: 1 },
        types: { Pay: [{ name: 'amount', type: 'uint256' }] },
        primaryType: 'Pay',
        message: { amount: 2n ** 255n },
        signature: big.signature,
      }),
    );
    await assert.rejects(
      client.signTransaction({
        ...key,
        transaction: { type: 'legacy', chainId: 1, nonce: 0, gas: 2n ** 64n, gasPrice: 1n, value: Number.MAX_SAFE_INTEGER * 4 },
      }),
      (e: unknown) => e instanceof CustosInputError && e.field === 'transaction.value',
    );
  });
});

/**
 * Timeouts and retries against a local node:http server that stalls, drops or answers 503: the
 * behaviour under test is the client's, and a real kernel cannot be made to stall on demand.
 */
describe('createCustosClient: seal on demand and unseal (real kernel)', () => {
  let admin: Awaited<ReturnType<typeof listenTestSigner>>;
  before(async () => {
    admin = await listenTestSigner({ scopes: ['admin', 'derive'] });
  });
  after(async () => {
    await admin?.close();
  });

  it('seal needs the admin scope; sealed, the signer refuses work until unseal; a reset needs a share file', async () => {
    const client = createCustosClient({ url: admin.url, apiKey: admin.apiKey });
    const before = await client.getKey({ walletName: 'sealed-then-back', keyIndex: 0 });
    const sealed = await client.seal();
    assert.equal(sealed.sealed, true);
    assert.equal(sealed.unsealer?.type, 'passphrase');
    assert.equal((await client.status()).sealed, true);
    await assert.rejects(client.getKey({ walletName: 'sealed-then-back', keyIndex: 0 }), { code: 'sealed', status: 503 });
    await assert.rejects(client.resetUnseal({ share: 'not a share file' }), { code: 'share_invalid', status: 400 });
    await assert.rejects(client.unseal({ passphrase: 'not the passphrase' }), { code: 'unseal_failed', status: 401 });
    // After a failed unseal the kernel backs off: even the right passphrase waits for Retry-After.
    const throttled = await client.unseal({ passphrase: TEST_PASSPHRASE }).catch((error: unknown) => error);
    assert.ok(throttled instanceof CustosApiError);
    assert.equal(throttled.code, 'unseal_throttled');
    assert.equal(throttled.status, 429);
    assert.ok(throttled.retryAfter !== undefined && throttled.retryAfter >= 1 && throttled.retryAfter <= 2, String(throttled.retryAfter));
    admin.clock.now += (throttled.retryAfter ?? 1) * 1000; // the test signer's kernel runs on a clock the test controls
    const unsealed = await client.unseal({ passphrase: TEST_PASSPHRASE });
    assert.equal(unsealed.sealed, false);
    assert.deepEqual(await client.getKey({ walletName: 'sealed-then-back', keyIndex: 0 }), before);
  });

  it('listAdminNotices: the admin key reads the notice list (none without a quorum), its query as sent; a bad limit names the field', async () => {
    const client = createCustosClient({ url: admin.url, apiKey: admin.apiKey });
    assert.deepEqual(await client.listAdminNotices(), { notices: [], untoldAdmins: [] });
    assert.deepEqual(await client.listAdminNotices({ limit: 5, before: 1_000_000 }), { notices: [], untoldAdmins: [] });
    await assert.rejects(client.listAdminNotices({ limit: 0 }), (error: unknown) => error instanceof CustosApiError && error.code === 'invalid_input');
  });

  it('a key without the admin scope cannot seal (forbidden_scope), and the signer stays unsealed', async () => {
    const signer = await listenTestSigner();
    try {
      const client = createCustosClient({ url: signer.url, apiKey: signer.apiKey });
      await assert.rejects(client.seal(), { code: 'forbidden_scope', status: 403 });
      assert.equal((await client.status()).sealed, false);
    } finally {
      await signer.close();
    }
  });
});

describe('createCustosClient: timeouts and retries (local stub server)', () => {
  let server: Server;
  let base: string;
  let handler: (req: IncomingMessage, res: ServerResponse) => void = () => undefined;
  const hits: Array<{ method: string; url: string; at: number; key: string | undefined }> = [];
  before(async () => {
    server = createServer((req, res) => {
      const key = req.headers['idempotency-key'];
      hits.push({ method: req.method ?? '', url: req.url ?? '', at: Date.now(), key: typeof key === 'string' ? key : undefined });
      req.resume();
      req.on('end', () => handler(req, res));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  const reset = (h: typeof handler) => {
    hits.length = 0;
    handler = h;
  };
  const json = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
    res.writeHead(status, { 'content-type': 'application/json', ...headers });
    res.end(JSON.stringify(body));
  };
  const answer = (res: ServerResponse, status: number, body: unknown) => {
    if (typeof body === 'string') {
      res.writeHead(status);
      res.end(body);
    } else json(res, status, body);
  };
  const SIGN = { walletName: 'w', keyIndex: 0, hash: `0x${'11'.repeat(32)}`, code: '123456' };

  /** Every hit carried the same random Idempotency-Key (a UUID). */
  const assertOneKey = () => {
    const keys = new Set(hits.map((hit) => hit.key));
    assert.equal(keys.size, 1, JSON.stringify(hits));
    assert.match([...keys][0] ?? '', /^[0-9a-f-]{36}$/);
  };

  it('a sign POST that times out is retried under its Idempotency-Key (the server answers a retry with the stored result), then fails with timeout', async () => {
    reset(() => undefined); // never answers
    const client = createCustosClient({ url: base, apiKey: 'k', timeoutMs: 150, retries: 2 });
    const e = await client.signHash(SIGN).catch((error: unknown) => error);
    assert.ok(e instanceof CustosRequestError);
    assert.equal(e.reason, 'timeout');
    assert.equal(e.mayHaveReachedServer, true);
    assert.equal(hits.length, 3);
    assertOneKey();
    // Each call has its own key; the caller may give one (checked before any request).
    reset((_req, res) => json(res, 200, { ok: true }));
    await client.signHash(SIGN);
    await client.signHash(SIGN, { idempotencyKey: 'order-42.sign' });
    assert.equal(hits.length, 2);
    assert.notEqual(hits[0]?.key, undefined);
    assert.equal(hits[1]?.key, 'order-42.sign');
    await assert.rejects(client.signHash(SIGN, { idempotencyKey: 'has space' }), (error: unknown) => error instanceof CustosInputError);
    assert.equal(hits.length, 2);
  });

  it('a GET that times out is retried (idempotent), then fails with timeout', async () => {
    reset(() => undefined);
    const client = createCustosClient({ url: base, apiKey: 'k', timeoutMs: 100, retries: 2 });
    await assert.rejects(client.getKey({ walletName: 'w', keyIndex: 0 }), { name: 'CustosRequestError', reason: 'timeout' });
    assert.equal(hits.length, 3);
  });

  it('a sign POST whose connection drops after sending is retried under the same Idempotency-Key; a POST without one is not', async () => {
    reset((_req, res) => res.socket?.destroy());
    const client = createCustosClient({ url: base, apiKey: 'k', retries: 2 });
    const e = await client.signHash(SIGN).catch((error: unknown) => error);
    assert.ok(e instanceof CustosRequestError);
    assert.equal(e.reason, 'network');
    assert.equal(e.mayHaveReachedServer, true);
    assert.equal(hits.length, 3);
    assertOneKey();
    reset((_req, res) => res.socket?.destroy());
    await assert.rejects(client.enrollTotp({ walletName: 'w' }), { name: 'CustosRequestError', reason: 'network' });
    assert.equal(hits.length, 1);
    assert.equal(hits[0]?.key, undefined);
  });

  it('503 overloaded is retried for a sign POST after the Retry-After delay (refused before any decision)', async () => {
    let n = 0;
    reset((_req, res) => {
      n++;
      if (n === 1) json(res, 503, { error: { code: 'overloaded', message: 'busy', details: { retryAfterSeconds: 1 } } }, { 'retry-after': '1' });
      else json(res, 200, { ok: true });
    });
    const client = createCustosClient({ url: base, apiKey: 'k', retries: 2 });
    assert.deepEqual(await client.signHash(SIGN), { ok: true });
    assert.equal(hits.length, 2);
    const [first, second] = hits;
    assert.ok(first && second && second.at - first.at >= 950, `waited ${second && first ? second.at - first.at : '?'} ms`);
  });

  it('a Retry-After beyond maxRetryDelayMs is not waited for: CustosApiError with retryAfter', async () => {
    reset((_req, res) => json(res, 503, { error: { code: 'overloaded', message: 'busy', details: {} } }, { 'retry-after': '120' }));
    const client = createCustosClient({ url: base, apiKey: 'k', retries: 3, maxRetryDelayMs: 5_000 });
    const e = await client.signHash(SIGN).catch((error: unknown) => error);
    assert.ok(e instanceof CustosApiError);
    assert.equal(e.code, 'overloaded');
    assert.equal(e.status, 503);
    assert.equal(e.retryAfter, 120);
    assert.equal(hits.length, 1);
  });

  it('5xx on a sign POST: store_unavailable and a proxy’s 502 are retried under its Idempotency-Key, internal is not; the same on a GET', async () => {
    for (const [status, body] of [
      [503, { error: { code: 'store_unavailable', message: 'x' } }],
      [500, { error: { code: 'internal', message: 'x' } }],
      [502, 'Bad Gateway'],
    ] as const) {
      reset((_req, res) => answer(res, status, body));
      const client = createCustosClient({ url: base, apiKey: 'k', retries: 2 });
      await assert.rejects(client.signHash(SIGN));
      assert.equal(hits.length, body === 'Bad Gateway' || body.error.code === 'store_unavailable' ? 3 : 1, `POST ${status}`);
      assertOneKey();
      reset((_req, res) => answer(res, status, body));
      await assert.rejects(client.getWallet({ walletName: 'w' }));
      assert.equal(hits.length, body === 'Bad Gateway' || body.error.code === 'store_unavailable' ? 3 : 1, `GET ${status}`);
    }
  });

  it('an error body is mapped to CustosApiError (code, status, details); a non-API body is bad_response', async () => {
    reset((_req, res) =>
      json(res, 429, { error: { code: 'factor_throttled', message: 'locked', details: { retryAfterSeconds: 30 } } }, { 'retry-after': '30' }),
    );
    const client = createCustosClient({ url: base, apiKey: 'k', retries: 0 });
    await assert.rejects(client.signHash(SIGN), {
      name: 'CustosApiError',
      code: 'factor_throttled',
      status: 429,
      retryAfter: 30,
      details: { retryAfterSeconds: 30 },
    });
    reset((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end('<html>');
    });
    await assert.rejects(client.status(), { name: 'CustosRequestError', reason: 'bad_response' });
  });

  it('the caller’s AbortSignal cancels a request (reason aborted) and is not retried', async () => {
    reset(() => undefined);
    const client = createCustosClient({ url: base, apiKey: 'k', timeoutMs: 10_000, retries: 3 });
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 100);
    const started = Date.now();
    await assert.rejects(client.getWallet({ walletName: 'w' }, { signal: controller.signal }), { name: 'CustosRequestError', reason: 'aborted' });
    assert.ok(Date.now() - started < 2_000);
    assert.equal(hits.length, 1);
  });

  it('connection refused: the request never left, so even a sign may be retried; the error says it did not reach the server', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const client = createCustosClient({ url: `http://127.0.0.1:${port}`, apiKey: 'k', retries: 1 });
    const e = await client.signHash(SIGN).catch((error: unknown) => error);
    assert.ok(e instanceof CustosRequestError);
    assert.equal(e.reason, 'network');
    assert.equal(e.mayHaveReachedServer, false);
  });

  it('a redirect is not followed: the sign (and its code) is not sent on, the error says it reached the server', async () => {
    for (const status of [307, 308, 302]) {
      reset((req, res) => {
        if (req.url === '/elsewhere') return json(res, 200, { signature: 'captured' });
        res.writeHead(status, { location: '/elsewhere' });
        res.end();
      });
      const client = createCustosClient({ url: base, apiKey: 'k', retries: 2 });
      const e = await client.signHash(SIGN).catch((error: unknown) => error);
      assert.ok(e instanceof CustosRequestError, `HTTP ${status}`);
      assert.equal(e.mayHaveReachedServer, true);
      assert.deepEqual(
        hits.map((h) => `${h.method} ${h.url}`),
        ['POST /v1/sign/hash'],
        `HTTP ${status}`,
      );
    }
  });

  it('sends the key as Bearer, JSON bodies without undefined members, the key index as a query string', async () => {
    const seen: Array<{ auth: string | undefined; body: string; url: string }> = [];
    server.removeAllListeners('request');
    server.on('request', (req: IncomingMessage, res: ServerResponse) => {
      let body = '';
      req.setEncoding('utf8');
      req.on('data', (c: string) => {
        body += c;
      });
      req.on('end', () => {
        seen.push({ auth: req.headers.authorization, body, url: req.url ?? '' });
        json(res, 200, {});
      });
    });
    const client = createCustosClient({ url: `${base}/`, apiKey: 'ck1.abc' });
    await client.signHash({ walletName: 'w', keyIndex: 0, hash: '0x00', code: undefined });
    await client.getKey({ walletName: 'a b&c', keyIndex: 7 });
    assert.equal(seen[0]?.auth, 'Bearer ck1.abc');
    assert.deepEqual(JSON.parse(seen[0]?.body ?? ''), { walletName: 'w', keyIndex: 0, hash: '0x00' });
    assert.equal(seen[1]?.url, '/v1/keys?walletName=a+b%26c&keyIndex=7');
  });
});
