import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Transaction } from 'ethers';
import fc from 'fast-check';
import { type Address, type Hex, parseTransaction, recoverTransactionAddress, type TransactionSerializable } from 'viem';
import { createCustosClient } from './client.js';
import { CustosSigner } from './ethers.js';
import { listenTestSigner } from './testing/listenTestSigner.js';
import { custosAccount } from './viem.js';

/**
 * Property: for any well-formed transaction of the four types, what the SDK sends is what the
 * kernel signs — the kernel's serialized transaction equals the one viem (resp. ethers) builds
 * locally from the same fields (the account / signer compare them and throw otherwise), and it
 * recovers to the key's address. Runs against a real kernel.
 */
const N = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;
const hexBytes = (min: number, max: number) => fc.uint8Array({ minLength: min, maxLength: max }).map((b) => `0x${Buffer.from(b).toString('hex')}` as Hex);
const address = hexBytes(20, 20).map((h) => h as Address);
const scalar = (max: bigint) => fc.bigInt({ min: 1n, max }).map((v) => `0x${v.toString(16).padStart(64, '0')}` as Hex);
const accessList = fc.array(fc.record({ address, storageKeys: fc.array(hexBytes(32, 32), { maxLength: 2 }) }), { maxLength: 2 });
const authorizationList = fc.array(
  fc.record({
    chainId: fc.integer({ min: 0, max: 1_000_000 }),
    address,
    nonce: fc.integer({ min: 0, max: 2 ** 32 }),
    r: scalar(N - 1n),
    s: scalar(N / 2n),
    yParity: fc.constantFrom(0, 1),
  }),
  { minLength: 1, maxLength: 2 },
);

const transaction: fc.Arbitrary<TransactionSerializable> = fc
  .record({
    type: fc.constantFrom('legacy', 'eip2930', 'eip1559', 'eip7702'),
    chainId: fc.integer({ min: 1, max: 1_000_000 }),
    nonce: fc.integer({ min: 0, max: 2 ** 40 }),
    to: fc.option(address, { nil: undefined }),
    value: fc.bigInt({ min: 0n, max: 2n ** 128n }),
    data: fc.option(hexBytes(1, 68), { nil: undefined }),
    gas: fc.bigInt({ min: 21_000n, max: 30_000_000n }),
    fee: fc.bigInt({ min: 1n, max: 2n ** 64n }),
    tipShare: fc.bigInt({ min: 0n, max: 100n }),
    accessList,
    authorizationList,
  })
  .map(({ type, fee, tipShare, to, accessList, authorizationList, ...rest }): TransactionSerializable => {
    switch (type) {
      case 'legacy':
        return { ...rest, type, to, gasPrice: fee };
      case 'eip2930':
        return { ...rest, type, to, gasPrice: fee, accessList };
      case 'eip1559':
        return { ...rest, type, to, maxFeePerGas: fee, maxPriorityFeePerGas: (fee * tipShare) / 100n, accessList };
      default:
        // EIP-7702 transactions cannot create contracts: `to` is required.
        return {
          ...rest,
          type: 'eip7702',
          to: to ?? '0x000000000000000000000000000000000000bEEF',
          maxFeePerGas: fee,
          maxPriorityFeePerGas: (fee * tipShare) / 100n,
          accessList,
          authorizationList,
        };
    }
  });

describe('transaction mapping: SDK ↔ kernel (property, real kernel)', () => {
  let signer: Awaited<ReturnType<typeof listenTestSigner>>;
  before(async () => {
    signer = await listenTestSigner();
  });
  after(async () => {
    await signer.close();
  });

  it('viem: the kernel signs exactly the transaction viem serializes', async () => {
    const client = createCustosClient({ url: signer.url, apiKey: signer.apiKey });
    const account = await custosAccount(client, { walletName: 'property', keyIndex: 0 });
    await fc.assert(
      fc.asyncProperty(transaction, async (tx) => {
        const serialized = await account.signTransaction(tx);
        assert.equal(parseTransaction(serialized).type, tx.type);
        assert.equal(await recoverTransactionAddress({ serializedTransaction: serialized as never }), account.address);
      }),
      { numRuns: 40 },
    );
  });

  it('ethers: the kernel signs exactly the transaction ethers serializes', async () => {
    const client = createCustosClient({ url: signer.url, apiKey: signer.apiKey });
    const ethersSigner = new CustosSigner(client, { walletName: 'property', keyIndex: 1 });
    const from = await ethersSigner.getAddress();
    const TYPES = { legacy: 0, eip2930: 1, eip1559: 2, eip7702: 4 } as const;
    await fc.assert(
      fc.asyncProperty(transaction, async (tx) => {
        const t = tx as TransactionSerializable & Record<string, unknown>;
        const request = {
          type: TYPES[tx.type as keyof typeof TYPES],
          chainId: tx.chainId,
          nonce: tx.nonce,
          to: tx.to ?? null,
          value: tx.value,
          data: tx.data,
          gasLimit: tx.gas,
          gasPrice: t.gasPrice as bigint | undefined,
          maxFeePerGas: t.maxFeePerGas as bigint | undefined,
          maxPriorityFeePerGas: t.maxPriorityFeePerGas as bigint | undefined,
          accessList: t.accessList as never,
          authorizationList: (
            t.authorizationList as Array<{ chainId: number; address: string; nonce: number; r: Hex; s: Hex; yParity: 0 | 1 }> | undefined
          )?.map((a) => ({
            chainId: a.chainId,
            address: a.address,
            nonce: a.nonce,
            signature: { r: a.r, s: a.s, yParity: a.yParity },
          })),
        };
        const raw = await ethersSigner.signTransaction(request as never);
        const parsed = Transaction.from(raw);
        assert.equal(parsed.type, request.type);
        assert.equal(parsed.from, from);
      }),
      { numRuns: 40 },
    );
  });
});
