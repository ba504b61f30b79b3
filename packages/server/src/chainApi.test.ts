import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createHash } from 'node:crypto';
import { canonicalJson, createApiKey } from '@custos/kernel';
import { encodeFunctionData, keccak256, parseAbi, parseTransaction, recoverTransactionAddress, verifyMessage, verifyTypedData } from 'viem';
import { recoverAuthorizationAddress } from 'viem/utils';
import { UNCOUNTABLE_PRESENT, createTestSigner, forceAuditFailure, recordTestSecret, TEST_PASSPHRASE, type TestSigner } from './testing/createTestSigner.js';
import { ETHER_MAIL as MAIL } from './testing/etherMail.js';
import { totpFromUri } from './testing/totpFromUri.js';

/**
 * The Ethereum operations over REST: each signature verified independently with viem, the summary
 * in the response and in the audit record, and the consent rules of /v1/sign/hash attacked on
 * every new route (code required, replay across routes, wrong code, scope, unreadable factor,
 * audit failure, sealed).
 */

type Hex = `0x${string}`;
const T0 = Date.UTC(2026, 10, 22, 12, 0, 15);
const TO = '0x3535353535353535353535353535353535353535';
const USDC = '0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48';

const TRANSACTIONS = {
  legacy: { type: 'legacy', chainId: 1, nonce: 7, to: TO, value: '1500000000000000000', gas: '21000', gasPrice: '21000000000' },
  eip2930: {
    type: 'eip2930',
    chainId: 10,
    nonce: 0,
    to: TO,
    gas: '0x5208',
    gasPrice: '1',
    accessList: [{ address: USDC, storageKeys: [`0x${'00'.repeat(31)}01`] }],
  },
  eip1559: {
    type: 'eip1559',
    chainId: 8453,
    nonce: 3,
    to: USDC,
    data: encodeFunctionData({ abi: parseAbi(['function transfer(address to, uint256 amount)']), functionName: 'transfer', args: [TO, 1000000n] }),
    gas: '60000',
    maxFeePerGas: '2000000000',
    maxPriorityFeePerGas: '1000000',
  },
} as const;

/** The four routes with a valid body of each, for the consent checks. */
const OPERATIONS: Array<[string, Record<string, unknown>]> = [
  ['/v1/sign/transaction', { transaction: TRANSACTIONS.eip1559 }],
  ['/v1/sign/message', { message: { text: 'I approve' } }],
  ['/v1/sign/typed-data', { typedData: MAIL }],
  ['/v1/sign/authorization', { authorization: { chainId: 1, address: TO, nonce: 0 } }],
];
const ACTIONS: Record<string, string> = {
  '/v1/sign/transaction': 'sign.transaction',
  '/v1/sign/message': 'sign.message',
  '/v1/sign/typed-data': 'sign.typedData',
  '/v1/sign/authorization': 'sign.authorization',
};

describe('Ethereum operations over REST', () => {
  let signer: TestSigner;
  before(async () => {
    signer = await createTestSigner({ policyDefaults: UNCOUNTABLE_PRESENT, startMs: T0 });
  });
  after(async () => {
    await signer.close();
  });

  const post = (url: string, body: Record<string, unknown>, headers = signer.auth()) =>
    signer.app.inject({ method: 'POST', url, headers, payload: { walletName: 'alice@acme.com', keyIndex: 0, ...body } });
  const addressOf = async (walletName: string, keyIndex = 0): Promise<string> => {
    const res = await signer.app.inject({
      method: 'GET',
      url: `/v1/keys?walletName=${encodeURIComponent(walletName)}&keyIndex=${keyIndex}`,
      headers: signer.auth(),
    });
    assert.equal(res.statusCode, 200, res.body);
    return res.json().address;
  };
  const auditRecord = async (seq: number) => {
    const [record] = await signer.store.readAudit(seq, 1);
    assert.ok(record !== undefined && record.seq === seq);
    return record;
  };

  it('signs legacy (EIP-155), EIP-2930 and EIP-1559 transactions that recover to the wallet’s address', async () => {
    const address = await addressOf('alice@acme.com');
    for (const tx of Object.values(TRANSACTIONS)) {
      const res = await post('/v1/sign/transaction', { transaction: tx });
      assert.equal(res.statusCode, 200, res.body);
      const body = res.json();
      assert.equal(body.address, address);
      const serialized = body.serializedTransaction as Hex;
      assert.equal(await recoverTransactionAddress({ serializedTransaction: serialized as never }), address, tx.type);
      assert.equal(body.transactionHash, keccak256(serialized));
      const decoded = parseTransaction(serialized);
      assert.equal(decoded.type, tx.type);
      assert.equal(decoded.chainId, tx.chainId);
      assert.equal(decoded.nonce, tx.nonce);
      assert.equal(decoded.to?.toLowerCase(), tx.to.toLowerCase());
      assert.equal(decoded.gas, BigInt(tx.gas));
      assert.equal(decoded.r, body.signature.r);
      assert.equal(decoded.s, body.signature.s);
      assert.equal(decoded.yParity, body.signature.yParity);
      assert.equal(body.signature.v, tx.type === 'legacy' ? tx.chainId * 2 + 35 + body.signature.yParity : body.signature.yParity);
      assert.equal(body.summary.operation, 'transaction');
      assert.equal(body.summary.from, address);
      assert.equal(body.summary.chain.id, tx.chainId);
    }
  });

  it('the summary is in the response and in the audit record of the decision, with the opHash', async () => {
    const res = await post('/v1/sign/transaction', { transaction: TRANSACTIONS.eip1559 });
    assert.equal(res.statusCode, 200, res.body);
    const body = res.json();
    assert.deepEqual(body.summary.chain, { id: 8453, name: 'Base', currency: 'ETH' });
    assert.deepEqual(body.summary.action, { kind: 'erc20Transfer', token: USDC, recipient: TO, amount: '1000000' });
    assert.equal(body.summaryText, `ERC-20 transfer of 1000000 base units of token ${USDC} to ${TO} on Base (chain 8453), nonce 3, max fee 0.00012 ETH`);
    const record = await auditRecord(body.auditSeq);
    assert.equal(record.action, 'sign.transaction');
    assert.equal(record.decision, 'allowed');
    assert.equal(record.opHash, body.opHash);
    assert.deepEqual(record.detail.summary, body.summary);
    assert.equal(record.detail.summaryText, body.summaryText);
    // the opHash binds the operation: one changed field, another opHash
    const other = await post('/v1/sign/transaction', { transaction: { ...TRANSACTIONS.eip1559, nonce: 4 } });
    assert.notEqual(other.json().opHash, body.opHash);
    const same = await post('/v1/sign/transaction', { transaction: { ...TRANSACTIONS.eip1559, gas: '0xea60' } });
    assert.equal(same.json().opHash, body.opHash, 'the same operation in another notation has the same opHash');
  });

  it('the opHash is the documented canonical form (docs/operations-ethereum.md)', async () => {
    const res = await post('/v1/sign/transaction', { transaction: { ...TRANSACTIONS.eip2930, gas: '21000', value: '0x10' } });
    assert.equal(res.statusCode, 200, res.body);
    const body = res.json();
    const canonical = {
      type: 'transaction',
      walletName: 'alice@acme.com',
      keyIndex: 0,
      transaction: {
        type: 'eip2930',
        chainId: 10,
        nonce: 0,
        to: TO.toLowerCase(),
        value: '16',
        data: '0x',
        gas: '21000',
        gasPrice: '1',
        accessList: [{ address: USDC.toLowerCase(), storageKeys: [`0x${'00'.repeat(31)}01`] }],
      },
      digest: body.digest.slice(2),
    };
    assert.equal(body.opHash, createHash('sha256').update('custos.op.v1\0').update(canonicalJson(canonical)).digest('hex'));
    const auth = await post('/v1/sign/authorization', { authorization: { chainId: 1, address: TO, nonce: 9 } });
    const authCanonical = {
      type: 'authorization',
      walletName: 'alice@acme.com',
      keyIndex: 0,
      authorization: { chainId: 1, address: TO.toLowerCase(), nonce: 9 },
      digest: auth.json().digest.slice(2),
    };
    assert.equal(auth.json().opHash, createHash('sha256').update('custos.op.v1\0').update(canonicalJson(authCanonical)).digest('hex'));
    // a typed transaction without an access list has `accessList: []` in its canonical form; a legacy one has none
    const noList = await post('/v1/sign/transaction', { transaction: { ...TRANSACTIONS.eip2930, accessList: undefined, gas: '21000', value: '0x10' } });
    assert.equal(noList.statusCode, 200, noList.body);
    const noListCanonical = { ...canonical, transaction: { ...canonical.transaction, accessList: [] }, digest: noList.json().digest.slice(2) };
    assert.equal(noList.json().opHash, createHash('sha256').update('custos.op.v1\0').update(canonicalJson(noListCanonical)).digest('hex'));
    const legacy = await post('/v1/sign/transaction', { transaction: TRANSACTIONS.legacy });
    assert.equal(legacy.statusCode, 200, legacy.body);
    const legacyCanonical = {
      type: 'transaction',
      walletName: 'alice@acme.com',
      keyIndex: 0,
      transaction: {
        type: 'legacy',
        chainId: 1,
        nonce: 7,
        to: TO.toLowerCase(),
        value: '1500000000000000000',
        data: '0x',
        gas: '21000',
        gasPrice: '21000000000',
      },
      digest: legacy.json().digest.slice(2),
    };
    assert.equal(legacy.json().opHash, createHash('sha256').update('custos.op.v1\0').update(canonicalJson(legacyCanonical)).digest('hex'));
  });

  it('an absent and an empty access list sign the same bytes and have the same opHash', async () => {
    const bare = TRANSACTIONS.eip1559;
    const absent = await post('/v1/sign/transaction', { transaction: bare });
    const empty = await post('/v1/sign/transaction', { transaction: { ...bare, accessList: [] } });
    assert.equal(absent.statusCode, 200, absent.body);
    assert.equal(empty.statusCode, 200, empty.body);
    assert.equal(absent.json().digest, empty.json().digest);
    assert.equal(absent.json().opHash, empty.json().opHash);
  });

  it('a raw hash has a summary too: the hash, flagged blind, in the response and the audit record', async () => {
    const hash = `0x${'ab'.repeat(32)}`;
    const res = await post('/v1/sign/hash', { hash });
    assert.equal(res.statusCode, 200, res.body);
    const body = res.json();
    const address = await addressOf('alice@acme.com');
    assert.deepEqual(body.summary, { operation: 'hash', from: address, hash, blind: true });
    assert.equal(body.summaryText, `Sign the raw 32-byte hash ${hash} as ${address} — blind signing: what it commits to cannot be shown`);
    const record = await auditRecord(body.auditSeq);
    assert.deepEqual(record.detail.summary, body.summary);
  });

  it('signs EIP-191 messages (text and raw) and EIP-712 typed data that verify with viem', async () => {
    const address = (await addressOf('alice@acme.com')) as Hex;
    const text = await post('/v1/sign/message', { message: { text: 'hello ✓' } });
    assert.equal(text.statusCode, 200, text.body);
    assert.ok(await verifyMessage({ address, message: 'hello ✓', signature: text.json().signature }));
    assert.equal(text.json().signature, `${text.json().r}${text.json().s.slice(2)}${(27 + text.json().yParity).toString(16)}`);
    const raw = await post('/v1/sign/message', { message: { raw: '0xdeadbeef' } });
    assert.equal(raw.statusCode, 200, raw.body);
    assert.ok(await verifyMessage({ address, message: { raw: '0xdeadbeef' }, signature: raw.json().signature }));
    assert.equal(raw.json().summary.encoding, 'raw');

    const typed = await post('/v1/sign/typed-data', { typedData: MAIL });
    assert.equal(typed.statusCode, 200, typed.body);
    assert.equal(typed.json().digest, '0xbe609aee343fb3c4b28e1df9e632fca64fcfaede20f02e86244efddf30957bd2', 'EIP-712 Ether Mail digest');
    assert.ok(await verifyTypedData({ address, ...MAIL, signature: typed.json().signature }));
    assert.equal(typed.json().summary.primaryType, 'Mail');
    assert.equal((await auditRecord(typed.json().auditSeq)).action, 'sign.typedData');
  });

  it('signs an EIP-7702 authorization, then a type-4 transaction carrying it', async () => {
    const authority = await addressOf('delegator');
    const auth = await post('/v1/sign/authorization', { walletName: 'delegator', authorization: { chainId: 0, address: TO, nonce: 1 } });
    assert.equal(auth.statusCode, 200, auth.body);
    const body = auth.json();
    assert.equal(await recoverAuthorizationAddress({ authorization: body.authorization }), authority);
    assert.equal(body.summary.allChains, true);
    assert.equal(body.summary.warning, `delegate: ${TO} — this contract will control the account`);
    assert.match(body.summaryText, /this contract will control the account.*EVERY chain/);

    const tx = {
      type: 'eip7702',
      chainId: 1,
      nonce: 0,
      to: authority,
      gas: '100000',
      maxFeePerGas: '2',
      maxPriorityFeePerGas: '1',
      authorizationList: [body.authorization],
    };
    const signed = await post('/v1/sign/transaction', { walletName: 'sponsor', transaction: tx });
    assert.equal(signed.statusCode, 200, signed.body);
    const sent = signed.json();
    assert.equal(await recoverTransactionAddress({ serializedTransaction: sent.serializedTransaction }), await addressOf('sponsor'));
    const decoded = parseTransaction(sent.serializedTransaction as Hex);
    assert.equal(decoded.type, 'eip7702');
    assert.deepEqual(sent.summary.authorizations, [{ chainId: 0, allChains: true, delegate: TO, nonce: 1, authority }]);
    assert.match(sent.summaryText, new RegExp(`authorization of account ${authority} on EVERY chain`));
  });

  it('an enrolled wallet needs a code on every route; a code signs once, on any route', async () => {
    signer.clock.now = T0;
    const enrolled = await signer.app.inject({ method: 'POST', url: '/v1/totp/enroll', headers: signer.auth(), payload: { walletName: 'guarded' } });
    const uri = enrolled.json().otpauthUri as string;
    for (const [url, body] of OPERATIONS) {
      const res = await post(url, { walletName: 'guarded', ...body });
      assert.equal(res.statusCode, 403, `${url}: ${res.body}`);
      assert.equal(res.json().error.code, 'code_required', url);
    }
    // each route once, each with the code of a later step; then the same code again on the next route
    for (const [i, [url, body]] of OPERATIONS.entries()) {
      signer.clock.now = T0 + i * 30_000;
      const code = totpFromUri(uri, signer.clock.now);
      const wrong = await post(url, { walletName: 'guarded', ...body, code: code === '000000' ? '111111' : '000000' });
      assert.equal(wrong.json().error.code, 'code_invalid', url);
      const ok = await post(url, { walletName: 'guarded', ...body, code });
      assert.equal(ok.statusCode, 200, `${url}: ${ok.body}`);
      const record = await auditRecord(ok.json().auditSeq);
      assert.equal(record.action, ACTIONS[url]);
      assert.equal(record.detail.factor, 'totp');
      const [nextUrl, nextBody] = OPERATIONS[(i + 1) % OPERATIONS.length] as [string, Record<string, unknown>];
      const replay = await post(nextUrl, { walletName: 'guarded', ...nextBody, code });
      assert.equal(replay.statusCode, 403, `${nextUrl}: ${replay.body}`);
      assert.equal(replay.json().error.code, 'code_reused', `replay of the ${url} code on ${nextUrl}`);
      assert.equal(replay.json().serializedTransaction, undefined);
      assert.equal(replay.json().signature, undefined);
    }
    // every denial is audited with its action, reason and the summary of what was refused
    const denials = await signer.sql("SELECT action, reason, detail FROM audit_log WHERE wallet_name = $1 AND decision = 'denied' ORDER BY seq", 'guarded');
    assert.deepEqual(
      denials.slice(0, 4).map((r) => [r.action, r.reason]),
      OPERATIONS.map(([url]) => [ACTIONS[url], 'code_required']),
    );
    for (const d of denials) assert.equal(typeof (JSON.parse(String(d.detail)) as { summaryText: unknown }).summaryText, 'string');
  });

  it('a key without the sign scope is refused (audited); an unreadable factor refuses; a failed audit signs nothing', async () => {
    const { token } = await createApiKey(signer.store, { name: 'derive-only', scopes: ['derive'] });
    recordTestSecret('apiKey', token);
    for (const [url, body] of OPERATIONS) {
      const res = await post(url, { walletName: 'scoped', ...body }, signer.auth(token));
      assert.equal(res.statusCode, 403, res.body);
      assert.equal(res.json().error.code, 'forbidden_scope', url);
    }
    const reasons = await signer.sql("SELECT action, reason FROM audit_log WHERE wallet_name = $1 AND decision = 'denied' ORDER BY seq", 'scoped');
    assert.deepEqual(
      reasons.map((r) => [r.action, r.reason]),
      OPERATIONS.map(([url]) => [ACTIONS[url], 'forbidden_scope']),
    );
    // The scope is checked before anything is parsed or derived: a 60 KB message, and operations
    // the codecs would refuse, are refused forbidden_scope; each denial's record holds the key
    // index only (no summary, no opHash), so a key without `sign` cannot fill the audit log.
    const big = await post('/v1/sign/message', { walletName: 'scoped', keyIndex: 0, message: { text: 'x'.repeat(60_000) } }, signer.auth(token));
    assert.equal(big.statusCode, 403, big.body);
    assert.equal(big.json().error.code, 'forbidden_scope');
    // (the kernel itself, below the route schemas: what the codec would refuse is never parsed)
    const app = await signer.kernel.authenticateApiKey(token);
    await assert.rejects(signer.kernel.signTransaction(app, { walletName: 'scoped', keyIndex: 0, transaction: 'not a transaction' }), {
      code: 'forbidden_scope',
    });
    await assert.rejects(signer.kernel.signTypedData(app, { walletName: 'scoped', keyIndex: 0, typedData: 42 }), { code: 'forbidden_scope' });
    const records = await signer.sql("SELECT action, op_hash, detail FROM audit_log WHERE wallet_name = $1 AND decision = 'denied' ORDER BY seq", 'scoped');
    assert.equal(records.length, OPERATIONS.length + 3);
    for (const r of records) {
      assert.equal(r.op_hash, null);
      assert.deepEqual(JSON.parse(String(r.detail)), { keyIndex: 0 });
    }

    signer.clock.now = T0;
    const enrolled = await signer.app.inject({ method: 'POST', url: '/v1/totp/enroll', headers: signer.auth(), payload: { walletName: 'corrupt' } });
    const code = totpFromUri(enrolled.json().otpauthUri, T0);
    const [row] = await signer.sql('SELECT secret_envelope FROM totp_factors WHERE wallet_name = $1', 'corrupt');
    const envelope = String(row?.secret_envelope);
    await signer.sql(
      'UPDATE totp_factors SET secret_envelope = $1 WHERE wallet_name = $2',
      `${envelope.slice(0, -2)}${envelope.endsWith('A') ? 'B' : 'A'}A`,
      'corrupt',
    );
    const unreadable = await post('/v1/sign/transaction', { walletName: 'corrupt', transaction: TRANSACTIONS.legacy, code });
    assert.equal(unreadable.statusCode, 503, unreadable.body);
    assert.equal(unreadable.json().error.code, 'record_unreadable');

    const undo = await forceAuditFailure(signer.store);
    try {
      for (const [url, body] of OPERATIONS) {
        const res = await post(url, { walletName: 'blinded', ...body });
        assert.equal(res.statusCode, 503, res.body);
        assert.equal(res.json().error.code, 'audit_unavailable', url);
      }
    } finally {
      await undo();
    }
  });

  it('sealed: every route is 503 sealed', async () => {
    signer.kernel.seal();
    try {
      for (const [url, body] of OPERATIONS) {
        const res = await post(url, body);
        assert.equal(res.statusCode, 503);
        assert.equal(res.json().error.code, 'sealed', url);
      }
    } finally {
      await signer.kernel.unseal(new TextEncoder().encode(TEST_PASSPHRASE));
    }
  });
});
