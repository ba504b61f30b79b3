import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type AuthorizationRequest, JsonRpcProvider, Transaction, verifyAuthorization, verifyMessage, verifyTypedData } from 'ethers';
import type { CustosClient } from './client.js';
import { createCustosClient } from './client.js';
import { CustosApiError, CustosInputError, CustosRequestError } from './errors.js';
import { CustosSigner, toCustosTransaction } from './ethers.js';
import { listenTestSigner } from './testing/listenTestSigner.js';
import { totpFromUri, UNCOUNTABLE_PRESENT } from './testing/serverTesting.js';

const TO = '0x000000000000000000000000000000000000bEEF';

describe('toCustosTransaction (ethers → the REST contract)', () => {
  it('infers the type as ethers does, refuses type 3 and chainId 0', () => {
    assert.equal(toCustosTransaction(Transaction.from({ type: 0, chainId: 1, nonce: 0, to: TO, gasLimit: 1, gasPrice: 1 })).type, 'legacy');
    // Without a type, ethers infers the newest type the fields allow (as its own serializer does): gasPrice alone → 2930.
    assert.equal(toCustosTransaction(Transaction.from({ chainId: 1, nonce: 0, to: TO, gasLimit: 1, gasPrice: 1 })).type, 'eip2930');
    assert.equal(toCustosTransaction(Transaction.from({ chainId: 1, nonce: 0, to: TO, gasLimit: 1, maxFeePerGas: 2 })).type, 'eip1559');
    const field = (f: string) => (e: unknown) => e instanceof CustosInputError && e.field === f;
    assert.throws(
      () =>
        toCustosTransaction(
          Transaction.from({ type: 3, chainId: 1, nonce: 0, to: TO, gasLimit: 1, maxFeePerGas: 2, maxFeePerBlobGas: 1, blobVersionedHashes: [] }),
        ),
      field('transaction.type'),
    );
    assert.throws(
      () => toCustosTransaction(Transaction.from({ type: 0, chainId: 0, nonce: 0, to: TO, gasLimit: 1, gasPrice: 1 })),
      field('transaction.chainId'),
    );
  });
});

describe('CustosSigner against a real kernel', () => {
  let signer: Awaited<ReturnType<typeof listenTestSigner>>;
  let client: CustosClient;
  before(async () => {
    signer = await listenTestSigner({ policyDefaults: UNCOUNTABLE_PRESENT });
    client = createCustosClient({ url: signer.url, apiKey: signer.apiKey });
  });
  after(async () => {
    await signer.close();
  });

  it('signs a fully given transaction (no provider) for its address; the callback gives a fresh code each time', async () => {
    const { otpauthUri } = await client.enrollTotp({ walletName: 'ethers-unit' });
    const ops: string[] = [];
    const ethersSigner = new CustosSigner(client, {
      walletName: 'ethers-unit',
      keyIndex: 0,
      code: async ({ operation }) => {
        ops.push(operation);
        signer.clock.now += 30_000;
        return totpFromUri(otpauthUri, signer.clock.now);
      },
    });
    const address = await ethersSigner.getAddress();
    assert.equal(address, (await client.getKey({ walletName: 'ethers-unit', keyIndex: 0 })).address);
    const raw = await ethersSigner.signTransaction({
      type: 2,
      chainId: 5,
      nonce: 9,
      to: TO,
      value: 1n,
      gasLimit: 21000,
      maxFeePerGas: 10,
      maxPriorityFeePerGas: 1,
      from: address.toLowerCase(),
    });
    const parsed = Transaction.from(raw);
    assert.equal(parsed.from, address);
    assert.equal(parsed.chainId, 5n);
    assert.equal(parsed.nonce, 9);
    const message = 'hello';
    assert.equal(verifyMessage(message, await ethersSigner.signMessage(message)), address);
    const domain = { name: 'T', chainId: 5 };
    const types = { Pay: [{ name: 'amount', type: 'uint256' }] };
    assert.equal(verifyTypedData(domain, types, { amount: 2n ** 100n }, await ethersSigner.signTypedData(domain, types, { amount: 2n ** 100n })), address);
    const auth = await ethersSigner.authorize({ address: TO, chainId: 5, nonce: 3 });
    assert.equal(verifyAuthorization(auth, auth.signature), address);
    assert.deepEqual(ops, ['transaction', 'message', 'typedData', 'authorization']);
  });

  it('a `from` that is not this key is refused before any request', async () => {
    let calls = 0;
    const counting: CustosClient = {
      ...client,
      signTransaction: (...args) => {
        calls++;
        return client.signTransaction(...args);
      },
    };
    const s = new CustosSigner(counting, { walletName: 'ethers-plain', keyIndex: 0 });
    await assert.rejects(
      s.signTransaction({ chainId: 1, nonce: 0, to: TO, gasLimit: 21000, gasPrice: 1, from: '0x0000000000000000000000000000000000000001' }),
      (e: unknown) => e instanceof CustosInputError && e.field === 'transaction.from',
    );
    assert.equal(calls, 0);
  });

  it('server errors are CustosApiError with the code', async () => {
    const s = new CustosSigner(client, { walletName: 'ethers-unit', keyIndex: 0 });
    await assert.rejects(s.signMessage('no code'), (e: unknown) => e instanceof CustosApiError && e.code === 'code_required' && e.status === 403);
  });

  it('connect(provider) keeps the key and the cached address, and uses the new provider', async () => {
    const s = new CustosSigner(client, { walletName: 'ethers-plain', keyIndex: 4 });
    const address = await s.getAddress();
    const provider = new JsonRpcProvider('http://127.0.0.1:9', 1, { staticNetwork: true });
    try {
      const connected = s.connect(provider);
      assert.equal(connected.provider, provider);
      assert.equal(await connected.getAddress(), address);
      assert.equal(s.provider, null);
    } finally {
      provider.destroy();
    }
  });

  it('a failed address lookup is not cached (the next call asks again); the address is checksummed whatever the server’s casing', async () => {
    let calls = 0;
    const flaky: CustosClient = {
      ...client,
      getKey: async (query, options) => {
        calls++;
        if (calls === 1) throw new CustosRequestError('network', 'GET /v1/keys: the connection failed', { mayHaveReachedServer: true });
        const key = await client.getKey(query, options);
        return { ...key, address: key.address.toLowerCase() as typeof key.address };
      },
    };
    const s = new CustosSigner(flaky, { walletName: 'ethers-plain', keyIndex: 7 });
    const failing = s.getAddress();
    const connectedBeforeFailure = s.connect(null); // takes the pending lookup with it
    await assert.rejects(failing, (e: unknown) => e instanceof CustosRequestError && e.reason === 'network');
    const expected = (await client.getKey({ walletName: 'ethers-plain', keyIndex: 7 })).address;
    assert.equal(await s.getAddress(), expected);
    assert.equal(await connectedBeforeFailure.getAddress(), expected);
    assert.equal(verifyMessage('x', await s.signMessage('x')), expected);
    const raw = await s.signTransaction({ chainId: 1, nonce: 0, to: TO, gasLimit: 21000, gasPrice: 1, from: expected.toLowerCase() });
    assert.equal(Transaction.from(raw).from, expected);
    assert.equal(calls, 3, 'one failure, then one lookup each for the signer and the copy connected while the failing one was pending');
  });

  it('authorize never signs an authorization without chainId or nonce (no silent chainId 0, valid on every chain)', async () => {
    let calls = 0;
    const counting: CustosClient = {
      ...client,
      signAuthorization: (...args) => {
        calls++;
        return client.signAuthorization(...args);
      },
    };
    /** A signer whose populateAuthorization leaves the request as it is (as a subclass or a future ethers might). */
    class UnpopulatedSigner extends CustosSigner {
      override async populateAuthorization(request: AuthorizationRequest): Promise<AuthorizationRequest> {
        return request;
      }
    }
    const s = new UnpopulatedSigner(counting, { walletName: 'ethers-plain', keyIndex: 0 });
    const field = (f: string) => (e: unknown) => e instanceof CustosInputError && e.field === f;
    await assert.rejects(s.authorize({ address: TO, nonce: 0 }), field('authorization.chainId'));
    await assert.rejects(s.authorize({ address: TO, chainId: 1 }), field('authorization.nonce'));
    assert.equal(calls, 0);
    const auth = await s.authorize({ address: TO, chainId: 1, nonce: 0 }); // both given: signed
    assert.equal(verifyAuthorization(auth, auth.signature), await s.getAddress());
    assert.equal(calls, 1);
  });

  describe('answers are checked (tampered path)', () => {
    it('a transaction signed with other fields than asked is refused', async () => {
      const tampering: CustosClient = {
        ...client,
        signTransaction: (body, options) => client.signTransaction({ ...body, transaction: { ...body.transaction, value: '999' } }, options),
      };
      const s = new CustosSigner(tampering, { walletName: 'ethers-plain', keyIndex: 0 });
      await assert.rejects(
        s.signTransaction({ chainId: 1, nonce: 0, to: TO, value: 1, gasLimit: 21000, gasPrice: 1 }),
        (e: unknown) => e instanceof CustosRequestError && e.reason === 'bad_response' && e.field === 'serializedTransaction',
      );
    });

    it('a message or typed data signed by another key is refused', async () => {
      const tampering: CustosClient = {
        ...client,
        signMessage: (body, options) => client.signMessage({ ...body, walletName: `${body.walletName}-other` }, options),
        signTypedData: (body, options) => client.signTypedData({ ...body, walletName: `${body.walletName}-other` }, options),
      };
      const s = new CustosSigner(tampering, { walletName: 'ethers-plain', keyIndex: 0 });
      await assert.rejects(s.signMessage('x'), (e: unknown) => e instanceof CustosRequestError && e.reason === 'bad_response' && e.field === 'signature');
      await assert.rejects(
        s.signTypedData({ name: 'T' }, { Pay: [{ name: 'amount', type: 'uint256' }] }, { amount: 1 }),
        (e: unknown) => e instanceof CustosRequestError && e.reason === 'bad_response' && e.field === 'signature',
      );
    });

    it('an authorization for another delegate is refused', async () => {
      const tampering: CustosClient = {
        ...client,
        signAuthorization: (body, options) =>
          client.signAuthorization({ ...body, authorization: { ...body.authorization, address: '0x000000000000000000000000000000000000dEaD' } }, options),
      };
      const s = new CustosSigner(tampering, { walletName: 'ethers-plain', keyIndex: 0 });
      await assert.rejects(
        s.authorize({ address: TO, chainId: 1, nonce: 0 }),
        (e: unknown) => e instanceof CustosRequestError && e.reason === 'bad_response' && e.field === 'authorization',
      );
    });
  });
});
