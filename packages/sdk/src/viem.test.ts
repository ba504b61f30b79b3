import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type Hex, parseTransaction, recoverTransactionAddress, type TransactionSerializable, verifyMessage, verifyTypedData } from 'viem';
import type { CustosClient } from './client.js';
import { createCustosClient } from './client.js';
import { CustosApiError, CustosInputError, CustosRequestError } from './errors.js';
import type { CodeRequest } from './resolveCode.js';
import { listenTestSigner } from './testing/listenTestSigner.js';
import { totpFromUri } from './testing/serverTesting.js';
import { CustosViemError, custosAccount, toCustosTransaction } from './viem.js';

const TO = '0x000000000000000000000000000000000000bEEF';

describe('toCustosTransaction (viem → the REST contract)', () => {
  it('maps each type, quantities stay bigints (sent as decimal strings), a deployment has to: null', () => {
    assert.deepEqual(toCustosTransaction({ chainId: 1, nonce: 7, to: TO, value: 5n, gas: 21000n, maxFeePerGas: 10n, maxPriorityFeePerGas: 2n }), {
      type: 'eip1559',
      chainId: 1,
      nonce: 7,
      to: TO,
      value: 5n,
      gas: 21000n,
      maxFeePerGas: 10n,
      maxPriorityFeePerGas: 2n,
    });
    assert.equal(toCustosTransaction({ chainId: 1, nonce: 0, to: TO, gas: 1n, gasPrice: 3n }).type, 'legacy');
    const t2930 = toCustosTransaction({ chainId: 1, nonce: 0, to: TO, gas: 1n, gasPrice: 3n, accessList: [{ address: TO, storageKeys: [] }] });
    assert.equal(t2930.type, 'eip2930');
    assert.deepEqual(t2930.accessList, [{ address: TO, storageKeys: [] }]);
    const deploy = toCustosTransaction({ type: 'eip1559', chainId: 1, nonce: 0, gas: 1n, maxFeePerGas: 1n, data: '0x6000' });
    assert.equal(deploy.to, null);
    assert.equal(deploy.data, '0x6000');
    const t7702 = toCustosTransaction({
      type: 'eip7702',
      chainId: 1,
      nonce: 0,
      to: TO,
      gas: 1n,
      maxFeePerGas: 1n,
      authorizationList: [{ address: TO, chainId: 1, nonce: 4, r: '0x01', s: '0x02', v: 28n } as never],
    });
    assert.deepEqual(t7702.authorizationList, [{ chainId: 1, address: TO, nonce: 4, r: '0x01', s: '0x02', yParity: 1 }]);
  });

  it('refuses EIP-4844, a missing chainId, nonce or gas, a legacy fee missing, naming the field', () => {
    const field = (f: string) => (e: unknown) => e instanceof CustosInputError && e.field === f;
    assert.throws(
      () =>
        toCustosTransaction({ chainId: 1, nonce: 0, to: TO, gas: 1n, maxFeePerGas: 1n, maxFeePerBlobGas: 1n, blobVersionedHashes: [`0x01${'00'.repeat(31)}`] }),
      field('transaction.type'),
    );
    assert.throws(() => toCustosTransaction({ nonce: 0, to: TO, gas: 1n, gasPrice: 1n } as TransactionSerializable), field('transaction.chainId'));
    assert.throws(() => toCustosTransaction({ chainId: 1, to: TO, gas: 1n, gasPrice: 1n }), field('transaction.nonce'));
    assert.throws(() => toCustosTransaction({ chainId: 1, nonce: 0, to: TO, gasPrice: 1n }), field('transaction.gas'));
    assert.throws(() => toCustosTransaction({ type: 'legacy', chainId: 1, nonce: 0, to: TO, gas: 1n } as never), field('transaction.gasPrice'));
  });
});

describe('custosAccount against a real kernel', () => {
  let signer: Awaited<ReturnType<typeof listenTestSigner>>;
  let client: CustosClient;
  before(async () => {
    signer = await listenTestSigner();
    client = createCustosClient({ url: signer.url, apiKey: signer.apiKey });
  });
  after(async () => {
    await signer.close();
  });

  it('signs a transaction for its address; the code callback is asked once per signature, with the operation and the request', async () => {
    const { otpauthUri } = await client.enrollTotp({ walletName: 'viem-unit' });
    const asked: CodeRequest[] = [];
    const account = await custosAccount(client, {
      walletName: 'viem-unit',
      keyIndex: 1,
      code: (request) => {
        asked.push(request);
        signer.clock.now += 30_000;
        return totpFromUri(otpauthUri, signer.clock.now);
      },
    });
    assert.equal(account.address, (await client.getKey({ walletName: 'viem-unit', keyIndex: 1 })).address);
    const tx = {
      type: 'eip1559',
      chainId: 10,
      nonce: 3,
      to: TO,
      value: 10n ** 18n,
      gas: 21000n,
      maxFeePerGas: 2n * 10n ** 9n,
      maxPriorityFeePerGas: 10n ** 9n,
    } as const;
    const serialized = await account.signTransaction(tx);
    assert.equal(await recoverTransactionAddress({ serializedTransaction: serialized as never }), account.address);
    const parsed = parseTransaction(serialized);
    assert.equal(parsed.chainId, 10);
    assert.equal(parsed.value, 10n ** 18n);
    assert.equal(asked.length, 1);
    assert.equal(asked[0]?.operation, 'transaction');
    assert.equal(asked[0]?.walletName, 'viem-unit');
    assert.ok(!('code' in (asked[0]?.payload as object)), 'the payload shown to the prompt has no code');
    const sig = await account.signMessage({ message: 'hi' });
    assert.ok(await verifyMessage({ address: account.address, message: 'hi', signature: sig }));
    assert.deepEqual(
      asked.map((r) => r.operation),
      ['transaction', 'message'],
    );
  });

  it('typed data with EIP712Domain in types, and a bigint in the message, verifies', async () => {
    const account = await custosAccount(client, { walletName: 'viem-plain', keyIndex: 0 });
    const typedData = {
      domain: { name: 'T', chainId: 1n },
      types: {
        EIP712Domain: [
          { name: 'name', type: 'string' },
          { name: 'chainId', type: 'uint256' },
        ],
        Pay: [{ name: 'amount', type: 'uint256' }],
      },
      primaryType: 'Pay',
      message: { amount: 2n ** 200n },
    } as const;
    const signature = await account.signTypedData(typedData);
    assert.ok(await verifyTypedData({ address: account.address, ...typedData, signature }));
  });

  it('refuses an EIP-4844 transaction before any request', async () => {
    let calls = 0;
    const counting: CustosClient = {
      ...client,
      signTransaction: (...args) => {
        calls++;
        return client.signTransaction(...args);
      },
    };
    const account = await custosAccount(counting, { walletName: 'viem-plain', keyIndex: 0 });
    const e = await account
      .signTransaction({ chainId: 1, nonce: 0, to: TO, gas: 1n, maxFeePerGas: 1n, maxFeePerBlobGas: 1n, blobVersionedHashes: [`0x01${'00'.repeat(31)}`] })
      .catch((error: unknown) => error);
    assert.ok(e instanceof CustosViemError);
    assert.ok(e.cause instanceof CustosInputError);
    assert.equal(e.cause.field, 'transaction.type');
    assert.equal(calls, 0);
  });

  it('a server error reaches the caller as CustosViemError carrying the code (and the CustosApiError as cause)', async () => {
    const account = await custosAccount(client, { walletName: 'viem-unit', keyIndex: 1 });
    const e = await account.signMessage({ message: 'no code' }).catch((error: unknown) => error);
    assert.ok(e instanceof CustosViemError);
    assert.equal(e.code, 'code_required');
    assert.equal(e.status, 403);
    assert.ok(e.cause instanceof CustosApiError);
  });

  /**
   * A path between the account and the kernel that alters requests or answers (a compromised proxy,
   * a misrouted key): the decorators below call the real kernel with something else than asked.
   */
  describe('answers are checked (tampered path)', () => {
    it('a transaction signed with other fields than asked is refused', async () => {
      const tampering: CustosClient = {
        ...client,
        signTransaction: (body, options) =>
          client.signTransaction({ ...body, transaction: { ...body.transaction, to: '0x000000000000000000000000000000000000dEaD' } }, options),
      };
      const account = await custosAccount(tampering, { walletName: 'viem-plain', keyIndex: 0 });
      const e = await account
        .signTransaction({ chainId: 1, nonce: 0, to: TO, gas: 21000n, maxFeePerGas: 1n, maxPriorityFeePerGas: 1n })
        .catch((error: unknown) => error);
      assert.ok(e instanceof CustosViemError);
      assert.ok(e.cause instanceof CustosRequestError);
      assert.equal(e.cause.reason, 'bad_response');
      assert.equal(e.cause.field, 'serializedTransaction');
    });

    it('a message signed by another key is refused', async () => {
      const tampering: CustosClient = { ...client, signMessage: (body, options) => client.signMessage({ ...body, keyIndex: body.keyIndex + 1 }, options) };
      const account = await custosAccount(tampering, { walletName: 'viem-plain', keyIndex: 0 });
      const e = await account.signMessage({ message: 'x' }).catch((error: unknown) => error);
      assert.ok(e instanceof CustosViemError);
      assert.ok(e.cause instanceof CustosRequestError);
      assert.equal(e.cause.reason, 'bad_response');
      assert.equal(e.cause.field, 'signature');
    });

    it('typed data signed with another message is refused', async () => {
      const tampering: CustosClient = {
        ...client,
        signTypedData: (body, options) => client.signTypedData({ ...body, typedData: { ...body.typedData, message: { amount: '1' } } }, options),
      };
      const account = await custosAccount(tampering, { walletName: 'viem-plain', keyIndex: 0 });
      const e = await account
        .signTypedData({ domain: { name: 'T' }, types: { Pay: [{ name: 'amount', type: 'uint256' }] }, primaryType: 'Pay', message: { amount: 2n } })
        .catch((error: unknown) => error);
      assert.ok(e instanceof CustosViemError);
      assert.ok(e.cause instanceof CustosRequestError);
      assert.equal(e.cause.reason, 'bad_response');
    });

    it('an authorization signed by another key is refused', async () => {
      const tampering: CustosClient = {
        ...client,
        signAuthorization: (body, options) => client.signAuthorization({ ...body, keyIndex: body.keyIndex + 1 }, options),
      };
      const account = await custosAccount(tampering, { walletName: 'viem-plain', keyIndex: 0 });
      assert.ok(account.signAuthorization);
      const e = await account.signAuthorization({ chainId: 1, address: TO, nonce: 5 }).catch((error: unknown) => error);
      assert.ok(e instanceof CustosViemError);
      assert.ok(e.cause instanceof CustosRequestError);
      assert.equal(e.cause.reason, 'bad_response');
      assert.equal(e.cause.field, 'authorization');
      assert.match(e.cause.message, /recovers to/);
    });

    it('an authorization for another nonce or delegate is refused', async () => {
      const tampering: CustosClient = {
        ...client,
        signAuthorization: (body, options) =>
          client.signAuthorization({ ...body, authorization: { ...body.authorization, nonce: body.authorization.nonce + 1 } }, options),
      };
      const account = await custosAccount(tampering, { walletName: 'viem-plain', keyIndex: 0 });
      assert.ok(account.signAuthorization);
      const e = await account.signAuthorization({ chainId: 1, address: TO, nonce: 5 }).catch((error: unknown) => error);
      assert.ok(e instanceof CustosViemError);
      assert.ok(e.cause instanceof CustosRequestError);
      assert.equal(e.cause.reason, 'bad_response');
      assert.equal(e.cause.field, 'authorization');
    });
  });

  it('sign({ hash }) is a raw-hash signature of this key', async () => {
    const account = await custosAccount(client, { walletName: 'viem-plain', keyIndex: 0 });
    assert.ok(account.sign);
    const hash: Hex = `0x${'42'.repeat(32)}`;
    const signature = await account.sign({ hash });
    const { recoverAddress } = await import('viem');
    assert.equal(await recoverAddress({ hash, signature }), account.address);
  });

  it('signMessage({ raw }) signs the bytes, given as a Uint8Array or as hex, leading zero bytes included', async () => {
    const account = await custosAccount(client, { walletName: 'viem-plain', keyIndex: 0 });
    const bytes = new Uint8Array([0x00, 0x01, 0x0f, 0x10, 0xff]);
    for (const raw of [bytes, '0x00010f10ff' as const]) {
      const signature = await account.signMessage({ message: { raw } });
      assert.ok(await verifyMessage({ address: account.address, message: { raw: '0x00010f10ff' }, signature }), String(raw));
    }
  });
});
