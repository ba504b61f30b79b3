import { getTransactionType, type TransactionSerializable } from 'viem';
import { CustosInputError } from './errors.js';
import type { Address, Hex, TransactionRequest } from './types.js';

const TYPES = { legacy: 'legacy', eip2930: 'eip2930', eip1559: 'eip1559', eip7702: 'eip7702' } as const;

/**
 * Maps a viem transaction (bigint quantities, viem's type names) to the `transaction` of
 * `POST /v1/sign/transaction`. Refuses what the kernel cannot sign (EIP-4844 blob transactions,
 * a transaction without chainId or nonce) with an error naming the field, before any request.
 */
export function toCustosTransaction(tx: TransactionSerializable): TransactionRequest {
  const viemType = tx.type ?? getTransactionType(tx);
  const type = TYPES[viemType as keyof typeof TYPES];
  if (type === undefined)
    throw new CustosInputError('transaction.type', `Custos signs legacy, eip2930, eip1559 and eip7702 transactions, not ${String(viemType)}`);
  if (typeof tx.chainId !== 'number') throw new CustosInputError('transaction.chainId', 'required (Custos signs EIP-155 replay-protected transactions only)');
  if (typeof tx.nonce !== 'number') throw new CustosInputError('transaction.nonce', 'required');
  if (tx.gas === undefined) throw new CustosInputError('transaction.gas', 'required');
  const t = tx as unknown as {
    gasPrice?: bigint | undefined;
    maxFeePerGas?: bigint | undefined;
    maxPriorityFeePerGas?: bigint | undefined;
    accessList?: ReadonlyArray<{ address: Address; storageKeys: readonly Hex[] }>;
    authorizationList?: ReadonlyArray<{
      address?: Address;
      contractAddress?: Address;
      chainId: number;
      nonce: number;
      r: Hex;
      s: Hex;
      yParity?: number;
      v?: bigint;
    }>;
  };
  const out: TransactionRequest = { type, chainId: tx.chainId, nonce: tx.nonce, gas: tx.gas, to: tx.to ?? null };
  if (tx.value !== undefined) out.value = tx.value;
  if (tx.data !== undefined && tx.data !== '0x') out.data = tx.data;
  if (type === 'legacy' || type === 'eip2930') {
    if (t.gasPrice === undefined) throw new CustosInputError('transaction.gasPrice', `required for ${type}`);
    out.gasPrice = t.gasPrice;
  } else {
    if (t.maxFeePerGas === undefined) throw new CustosInputError('transaction.maxFeePerGas', `required for ${type}`);
    out.maxFeePerGas = t.maxFeePerGas;
    out.maxPriorityFeePerGas = t.maxPriorityFeePerGas ?? 0n;
  }
  if (type !== 'legacy' && t.accessList !== undefined && t.accessList.length > 0)
    out.accessList = t.accessList.map((item) => ({ address: item.address, storageKeys: [...item.storageKeys] }));
  if (type === 'eip7702') {
    const list = t.authorizationList ?? [];
    out.authorizationList = list.map((a, i) => {
      const address = a.address ?? a.contractAddress;
      if (address === undefined) throw new CustosInputError(`transaction.authorizationList[${i}].address`, 'required');
      const yParity = a.yParity ?? (a.v === undefined ? undefined : Number(a.v) - 27);
      if (yParity !== 0 && yParity !== 1) throw new CustosInputError(`transaction.authorizationList[${i}].yParity`, 'expected 0 or 1');
      return { chainId: a.chainId, address, nonce: a.nonce, r: a.r, s: a.s, yParity };
    });
  }
  return out;
}
