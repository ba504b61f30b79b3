import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fromRlp, keccak256, toRlp } from 'viem/utils';
import { signDigest } from '../crypto/signDigest.js';
import { loadVectors } from '../testing/loadVectors.js';
import { toHex } from '../util/hex.js';
import { prepareTransaction } from './prepareTransaction.js';
import { prepareTypedData } from './prepareTypedData.js';

/**
 * Published vectors, byte for byte: the EIP-155 example, ethereumjs's EIP-1559 and EIP-2930
 * signed transactions and EIP-712's Ether Mail (sources recorded in test/vectors). Each is signed
 * with libsecp256k1 (RFC 6979, so deterministic) through the codec the kernel uses.
 */

type Hex = `0x${string}`;
interface Eip155 {
  privateKey: string;
  tx: { nonce: number; gasPrice: string; gas: string; to: string; value: string; data: string; chainId: number };
  signingHash: string;
  signed: string;
}
interface Operations {
  eip1559: {
    chainId: number;
    vectors: Array<{
      nonce: number;
      value: number;
      gasLimit: number;
      maxInclusionFeePerGas: number;
      maxFeePerGas: number;
      to: string;
      privateKey: string;
      signedTransactionRLP: Hex;
    }>;
  };
  eip2930: { signingKey: string; vectors: Array<{ privateKey: string; raw: unknown[]; data: Record<string, unknown> & { accessList: unknown[] } }> };
  eip712: { privateKey: string; typedData: unknown; digest: string; v: number; r: string; s: string };
}

const eip155 = loadVectors<{ eip155: Eip155 }>('secp256k1-ethereum.json').eip155;
const ops = loadVectors<Operations>('ethereum-operations.json');
const key = (h: string) => new Uint8Array(Buffer.from(h.replace(/^0x/, ''), 'hex'));

/** Signs a prepared transaction with a raw key through the same signer and serialiser as the kernel. */
function signWith(privateKey: string, input: unknown) {
  const prepared = prepareTransaction(input);
  const sig = signDigest(key(privateKey), prepared.digest);
  return { prepared, result: prepared.finish({ r: sig.r, s: sig.s, yParity: sig.recovery as 0 | 1 }) };
}

test('EIP-155 example: signing hash and signed legacy transaction, byte for byte', () => {
  const { tx } = eip155;
  const { prepared, result } = signWith(eip155.privateKey, { type: 'legacy', ...tx });
  assert.equal(`0x${toHex(prepared.digest)}`, eip155.signingHash);
  assert.equal(result.serializedTransaction, eip155.signed);
  assert.equal(result.signature.v, 37, 'v = chainId·2 + 35 + yParity');
  assert.equal(result.transactionHash, keccak256(eip155.signed as Hex));
});

test('EIP-1559 (ethereumjs eip1559.json): signed transactions, byte for byte', () => {
  assert.ok(ops.eip1559.vectors.length >= 4);
  for (const v of ops.eip1559.vectors) {
    const expected = fromRlp(v.signedTransactionRLP, 'hex') as Hex; // the typed transaction inside the RLP byte string
    assert.ok(expected.startsWith('0x02'));
    const { result } = signWith(v.privateKey, {
      type: 'eip1559',
      chainId: ops.eip1559.chainId,
      nonce: v.nonce,
      to: v.to,
      value: String(v.value),
      gas: String(v.gasLimit),
      maxFeePerGas: String(v.maxFeePerGas),
      maxPriorityFeePerGas: String(v.maxInclusionFeePerGas),
    });
    assert.equal(result.serializedTransaction, expected, `nonce ${v.nonce}`);
  }
});

test('EIP-2930 (ethereumjs eip2930txs.json): signature and signed transaction, byte for byte', () => {
  for (const v of ops.eip2930.vectors) {
    const d = v.data as Record<string, string> & { accessList: unknown[] };
    // the vector's signature belongs to the ethereum/tests sender key (see signingKeyNote in the file)
    const { result } = signWith(ops.eip2930.signingKey, {
      type: 'eip2930',
      chainId: Number(d.chainId),
      nonce: d.nonce === '0x' ? 0 : Number(d.nonce),
      to: d.to,
      value: d.value,
      data: d.data,
      gas: d.gasLimit,
      gasPrice: d.gasPrice,
      accessList: d.accessList,
    });
    assert.equal(result.signature.r, d.r);
    assert.equal(result.signature.s, d.s);
    assert.equal(result.signature.yParity, Number(d.v));
    assert.equal(result.serializedTransaction, `0x01${toRlp(v.raw as Hex[]).slice(2)}`);
  }
});

test('EIP-712 Ether Mail: digest and signature of the EIP’s reference example', () => {
  const v = ops.eip712;
  const prepared = prepareTypedData(v.typedData);
  assert.equal(`0x${toHex(prepared.digest)}`, v.digest);
  const sig = signDigest(key(v.privateKey), prepared.digest);
  const result = prepared.finish({ r: sig.r, s: sig.s, yParity: sig.recovery as 0 | 1 });
  assert.equal(result.r, v.r);
  assert.equal(result.s, v.s);
  assert.equal(27 + result.yParity, v.v);
  assert.equal(result.signature, `${v.r}${v.s.slice(2)}${v.v.toString(16)}`);
  // the same data without types.EIP712Domain (built from the domain's members) hashes the same
  const withoutDomainType = structuredClone(v.typedData) as { types: Record<string, unknown> };
  delete withoutDomainType.types.EIP712Domain;
  assert.equal(`0x${toHex(prepareTypedData(withoutDomainType).digest)}`, v.digest);
});
