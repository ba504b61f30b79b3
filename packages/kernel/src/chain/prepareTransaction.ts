import type { TransactionSerializable } from 'viem';
import { keccak256, serializeTransaction } from 'viem/utils';
import { CustosError } from '../errors.js';
import { toHex } from '../util/hex.js';
import { parseTransaction } from './parseTransaction.js';
import { summarizeTransaction } from './summarizeTransaction.js';
import type { Hex, OperationSignature, ParsedTransaction, PreparedOperation } from './types.js';

export interface TransactionSignatureResult {
  /** The signed transaction, ready for eth_sendRawTransaction. */
  serializedTransaction: Hex;
  /** keccak-256 of the signed transaction. */
  transactionHash: Hex;
  /** v: legacy = chainId·2 + 35 + yParity (EIP-155), typed = yParity; a decimal string when not a safe integer. */
  signature: { r: Hex; s: Hex; yParity: 0 | 1; v: number | string };
  /** The digest that was signed (keccak-256 of the unsigned serialisation). */
  digest: Hex;
}

/** The viem serialisable form of a parsed transaction (addresses lower-case, quantities bigints). */
export function toViemTransaction(tx: ParsedTransaction): TransactionSerializable {
  const base = {
    chainId: tx.chainId,
    nonce: tx.nonce,
    ...(tx.to === null ? {} : { to: tx.to.toLowerCase() as Hex }),
    value: tx.value,
    data: tx.data,
    gas: tx.gas,
  };
  const accessList = (tx.accessList ?? []).map((e) => ({ address: e.address.toLowerCase() as Hex, storageKeys: e.storageKeys }));
  switch (tx.type) {
    case 'legacy':
      return { ...base, type: 'legacy', gasPrice: tx.gasPrice };
    case 'eip2930':
      return { ...base, type: 'eip2930', gasPrice: tx.gasPrice, accessList };
    case 'eip1559':
      return { ...base, type: 'eip1559', maxFeePerGas: tx.maxFeePerGas, maxPriorityFeePerGas: tx.maxPriorityFeePerGas, accessList };
    case 'eip7702':
      return {
        ...base,
        type: 'eip7702',
        maxFeePerGas: tx.maxFeePerGas,
        maxPriorityFeePerGas: tx.maxPriorityFeePerGas,
        accessList,
        authorizationList: (tx.authorizationList ?? []).map((a) => ({
          chainId: a.chainId,
          address: a.address.toLowerCase() as Hex,
          nonce: a.nonce,
          r: a.r,
          s: a.s,
          yParity: a.yParity,
        })),
      } as TransactionSerializable;
  }
}

/**
 * The canonical form hashed into the opHash: every field, addresses lower-case, quantities decimal.
 * A typed transaction always has an access list (an absent one is `[]`): both are serialised as
 * the same empty RLP list and signed as the same bytes, so they must give the same opHash.
 */
export function canonicalTransaction(tx: ParsedTransaction): Record<string, unknown> {
  return {
    type: tx.type,
    chainId: tx.chainId,
    nonce: tx.nonce,
    to: tx.to === null ? null : tx.to.toLowerCase(),
    value: tx.value.toString(),
    data: tx.data,
    gas: tx.gas.toString(),
    gasPrice: tx.gasPrice?.toString(),
    maxFeePerGas: tx.maxFeePerGas?.toString(),
    maxPriorityFeePerGas: tx.maxPriorityFeePerGas?.toString(),
    accessList: tx.type === 'legacy' ? undefined : (tx.accessList ?? []).map((e) => ({ address: e.address.toLowerCase(), storageKeys: e.storageKeys })),
    authorizationList: tx.authorizationList?.map((a) => ({ ...a, address: a.address.toLowerCase() })),
  };
}

/**
 * The transaction operation: parse and validate, compute the signing digest
 * (keccak-256 of viem's unsigned serialisation, which for legacy is EIP-155's
 * rlp([nonce, gasPrice, gas, to, value, data, chainId, 0, 0])), and on a signature serialise the
 * signed transaction with viem.
 */
export function prepareTransaction(input: unknown): PreparedOperation<TransactionSignatureResult> & { transaction: ParsedTransaction } {
  const tx = parseTransaction(input);
  const viemTx = toViemTransaction(tx);
  let unsigned: Hex;
  try {
    unsigned = serializeTransaction(viemTx);
  } catch (error) {
    // every rule viem checks is checked above with the field named; this is a last line
    throw new CustosError('invalid_input', 'transaction: refused by the serialiser', { details: { field: 'transaction' }, cause: error });
  }
  const digestHex = keccak256(unsigned);
  return {
    action: 'sign.transaction',
    transaction: tx,
    canonical: canonicalTransaction(tx),
    digest: Uint8Array.from(Buffer.from(digestHex.slice(2), 'hex')),
    summarize: (from) => summarizeTransaction(tx, from),
    finish: (signature) => serializeSignedTransaction(tx, viemTx, signature, digestHex),
  };
}

function serializeSignedTransaction(tx: ParsedTransaction, viemTx: TransactionSerializable, sig: OperationSignature, digest: Hex): TransactionSignatureResult {
  const r = `0x${toHex(sig.r)}` as Hex;
  const s = `0x${toHex(sig.s)}` as Hex;
  // viem derives a legacy v (EIP-155) from v = 27 + yParity, a typed one from yParity
  const serializedTransaction = serializeTransaction(viemTx, { r, s, v: 27n + BigInt(sig.yParity), yParity: sig.yParity });
  const v = tx.type === 'legacy' ? BigInt(tx.chainId) * 2n + 35n + BigInt(sig.yParity) : BigInt(sig.yParity);
  return {
    serializedTransaction,
    transactionHash: keccak256(serializedTransaction),
    signature: { r, s, yParity: sig.yParity, v: v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v.toString() },
    digest,
  };
}
