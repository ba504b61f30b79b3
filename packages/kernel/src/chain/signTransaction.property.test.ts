import assert from 'node:assert/strict';
import { test } from 'node:test';
import { mnemonicToSeedSync } from '@scure/bip39';
import fc from 'fast-check';
import type { TransactionSerializable } from 'viem';
import { privateKeyToAccount } from 'viem/accounts';
import { recoverTransactionAddress } from 'viem';
import { Barrier } from '../barrier/Barrier.js';
import { createKeyDeriver } from '../crypto/createKeyDeriver.js';
import { masterKeyFromSeed } from '../crypto/masterKeyFromSeed.js';
import { toHex } from '../util/hex.js';
import { SECP256K1_N } from './assertSignatureScalar.js';
import { prepareTransaction } from './prepareTransaction.js';

/**
 * For random valid transactions of all four types, the bytes Custos signs (chain codec + the
 * Barrier's libsecp256k1 signer, as in the kernel) equal viem's own signTransaction with the same
 * derived key. The viem transaction is built from the random values independently of the codec.
 */

const TEST_MNEMONIC = 'abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about';
type Hex = `0x${string}`;
const hexOf = (bytes: Uint8Array): Hex => `0x${toHex(bytes)}`;
const bigintUpTo = (max: bigint) => fc.oneof(fc.bigInt({ min: 0n, max }), fc.constantFrom(0n, 1n, max));
const U256 = (1n << 256n) - 1n;
const U64 = (1n << 64n) - 1n;
const address = fc.uint8Array({ minLength: 20, maxLength: 20 }).map(hexOf);
const safeInt = (min: number) =>
  fc.oneof(fc.integer({ min, max: 1000 }), fc.constantFrom(Number.MAX_SAFE_INTEGER), fc.integer({ min, max: Number.MAX_SAFE_INTEGER }));

const accessList = fc.array(fc.record({ address, storageKeys: fc.array(fc.uint8Array({ minLength: 32, maxLength: 32 }).map(hexOf), { maxLength: 3 }) }), {
  maxLength: 3,
});
const authorization = fc.record({
  chainId: safeInt(0),
  address,
  nonce: safeInt(0),
  r: fc.bigInt({ min: 1n, max: SECP256K1_N - 1n }).map((n): Hex => `0x${n.toString(16).padStart(64, '0')}`),
  s: fc.bigInt({ min: 1n, max: SECP256K1_N / 2n }).map((n): Hex => `0x${n.toString(16).padStart(64, '0')}`),
  yParity: fc.constantFrom(0 as const, 1 as const),
});

const transaction = fc
  .record({
    type: fc.constantFrom('legacy', 'eip2930', 'eip1559', 'eip7702'),
    chainId: safeInt(1),
    nonce: safeInt(0),
    to: fc.option(address, { nil: null }),
    value: bigintUpTo(U256),
    data: fc.uint8Array({ maxLength: 80 }).map(hexOf),
    gas: bigintUpTo(U64),
    gasPrice: bigintUpTo(U256),
    maxFeePerGas: bigintUpTo(U256),
    tipShare: fc.bigInt({ min: 0n, max: 1000n }),
    accessList,
    authorizationList: fc.array(authorization, { minLength: 1, maxLength: 3 }),
    toAddress: address,
    format: fc.integer({ min: 0, max: 1 << 10 }),
  })
  .map((t) => ({ ...t, maxPriorityFeePerGas: (t.maxFeePerGas * t.tipShare) / 1000n }));

test('Custos signs every transaction type exactly as viem’s signTransaction with the same derived key', async () => {
  const seed = mnemonicToSeedSync(TEST_MNEMONIC);
  const barrier = new Barrier({ barrierKey: new Uint8Array(32).fill(7), master: { kind: 'seed', seed } }, 'custos-v1');
  const deriver = createKeyDeriver({ master: masterKeyFromSeed(seed), scheme: 'custos-v1' });
  const wallets = fc.record({ walletName: fc.constantFrom('alice@acme.com', 'bob', 'ünïcødé wallet'), keyIndex: fc.constantFrom(0, 1, 2 ** 31 - 1) });
  try {
    await fc.assert(
      fc.asyncProperty(transaction, wallets, fc.context(), async (t, w, ctx) => {
        const to = t.type === 'eip7702' ? t.toAddress : t.to;
        // the REST form: quantities as decimal or hex strings (chosen per field by a bit of `format`)
        const q = (n: bigint, bit: number) => ((t.format >> bit) & 1 ? `0x${n.toString(16)}` : n.toString());
        const request: Record<string, unknown> = { type: t.type, chainId: t.chainId, nonce: t.nonce, value: q(t.value, 0), data: t.data, gas: q(t.gas, 1) };
        if (to !== null || (t.format >> 2) & 1) request.to = to;
        let viemTx: TransactionSerializable;
        const base = { chainId: t.chainId, nonce: t.nonce, value: t.value, data: t.data, gas: t.gas, ...(to === null ? {} : { to }) };
        switch (t.type) {
          case 'legacy':
            request.gasPrice = q(t.gasPrice, 3);
            viemTx = { ...base, type: 'legacy', gasPrice: t.gasPrice };
            break;
          case 'eip2930':
            Object.assign(request, { gasPrice: q(t.gasPrice, 3), accessList: t.accessList });
            viemTx = { ...base, type: 'eip2930', gasPrice: t.gasPrice, accessList: t.accessList };
            break;
          case 'eip1559':
            Object.assign(request, { maxFeePerGas: q(t.maxFeePerGas, 4), maxPriorityFeePerGas: q(t.maxPriorityFeePerGas, 5), accessList: t.accessList });
            viemTx = { ...base, type: 'eip1559', maxFeePerGas: t.maxFeePerGas, maxPriorityFeePerGas: t.maxPriorityFeePerGas, accessList: t.accessList };
            break;
          default:
            Object.assign(request, {
              maxFeePerGas: q(t.maxFeePerGas, 4),
              maxPriorityFeePerGas: q(t.maxPriorityFeePerGas, 5),
              accessList: t.accessList,
              authorizationList: t.authorizationList,
            });
            viemTx = {
              ...base,
              type: 'eip7702',
              maxFeePerGas: t.maxFeePerGas,
              maxPriorityFeePerGas: t.maxPriorityFeePerGas,
              accessList: t.accessList,
              authorizationList: t.authorizationList,
            } as TransactionSerializable;
        }
        const prepared = prepareTransaction(request);
        const signature = barrier.sign(w.walletName, w.keyIndex, prepared.digest);
        const ours = prepared.finish({ r: signature.r, s: signature.s, yParity: signature.recovery });

        const privateKey = deriver.derivePrivateKey(w.walletName, w.keyIndex);
        const account = privateKeyToAccount(hexOf(privateKey));
        privateKey.fill(0);
        const theirs = await account.signTransaction(viemTx);
        ctx.log(JSON.stringify(request));
        assert.equal(ours.serializedTransaction, theirs);
        assert.equal(account.address, signature.address);
        assert.equal(await recoverTransactionAddress({ serializedTransaction: ours.serializedTransaction as never }), signature.address);
      }),
      { numRuns: 300 },
    );
  } finally {
    barrier.wipe();
    deriver.wipe();
  }
});
