import type { Upstream } from './createUpstream.js';
import { invalidParams } from './JsonRpcError.js';

/**
 * An `eth_sendTransaction` / `eth_signTransaction` object (EIP-1474: 0x quantities, `data` or
 * `input`) → the `transaction` of the kernel's sign path, with what it lacks filled from the
 * upstream node: chainId (eth_chainId), nonce (eth_getTransactionCount, pending), gas
 * (eth_estimateGas) and fees (eth_gasPrice; eth_maxPriorityFeePerGas and the latest block's base
 * fee). The kernel validates every field again; here only the JSON-RPC form is read.
 */

const TYPE_NAMES: Record<string, string> = { '0x0': 'legacy', '0x1': 'eip2930', '0x2': 'eip1559', '0x4': 'eip7702' };
const KNOWN_FIELDS = new Set([
  'from',
  'to',
  'gas',
  'gasPrice',
  'maxFeePerGas',
  'maxPriorityFeePerGas',
  'value',
  'data',
  'input',
  'nonce',
  'chainId',
  'type',
  'accessList',
  'authorizationList',
]);

/** A 0x quantity of the request (EIP-1474: no leading zeros; leading zeros are accepted, as nodes do). */
function quantity(tx: Record<string, unknown>, field: string): string | undefined {
  const value = tx[field];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string' || !/^0x[0-9a-fA-F]{1,64}$/.test(value)) throw invalidParams(`transaction.${field}: expected a 0x-hex quantity`);
  return value;
}

/** A quantity the kernel takes as a JSON number (chainId, nonce). */
function safeNumber(value: string, field: string): number {
  const n = BigInt(value);
  if (n > BigInt(Number.MAX_SAFE_INTEGER)) throw invalidParams(`transaction.${field}: too large`);
  return Number(n);
}

function transactionType(tx: Record<string, unknown>): string {
  const type = tx.type;
  if (type !== undefined && type !== null) {
    if (typeof type !== 'string' || !/^0x[0-9a-fA-F]{1,2}$/.test(type)) throw invalidParams('transaction.type: expected a 0x-hex quantity');
    const name = TYPE_NAMES[`0x${Number.parseInt(type.slice(2), 16).toString(16)}`];
    if (name === undefined) throw invalidParams(`transaction.type: Custos signs types 0x0, 0x1, 0x2 and 0x4, not ${type}`);
    return name;
  }
  if (tx.authorizationList !== undefined && tx.authorizationList !== null) return 'eip7702';
  if (tx.maxFeePerGas != null || tx.maxPriorityFeePerGas != null) return 'eip1559';
  if (tx.gasPrice != null) return tx.accessList != null ? 'eip2930' : 'legacy';
  return 'eip1559';
}

/** The request's transaction object, read: what it says, before anything is filled. */
export function readRpcTransaction(value: unknown): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw invalidParams('params[0]: expected a transaction object');
  const tx = value as Record<string, unknown>;
  for (const key of Object.keys(tx)) {
    if (key === 'blobVersionedHashes' || key === 'maxFeePerBlobGas' || key === 'blobs' || key === 'sidecars')
      throw invalidParams(`transaction.${key}: Custos does not sign EIP-4844 blob transactions`);
    if (!KNOWN_FIELDS.has(key)) throw invalidParams(`transaction.${key}: not a transaction field Custos signs`);
  }
  if (typeof tx.from !== 'string') throw invalidParams('transaction.from: required, the sender’s address');
  if (tx.data !== undefined && tx.input !== undefined && tx.data !== tx.input) throw invalidParams('transaction: data and input differ');
  return tx;
}

/** Fills the transaction from the upstream node and returns the kernel's `transaction`. */
export async function fillTransaction(tx: Record<string, unknown>, upstream: Upstream): Promise<Record<string, unknown>> {
  const type = transactionType(tx);
  const data = tx.data ?? tx.input;
  if (data !== undefined && data !== null && typeof data !== 'string') throw invalidParams('transaction.data: expected 0x-hex bytes');
  const to = tx.to ?? null;
  if (to !== null && typeof to !== 'string') throw invalidParams('transaction.to: expected an address or null');
  const value = quantity(tx, 'value');

  const chainIdHex = quantity(tx, 'chainId') ?? (await upstream.call<string>('eth_chainId', []));
  const nonceHex = quantity(tx, 'nonce') ?? (await upstream.call<string>('eth_getTransactionCount', [tx.from, 'pending']));
  const out: Record<string, unknown> = { type, chainId: safeNumber(chainIdHex, 'chainId'), nonce: safeNumber(nonceHex, 'nonce'), to };
  if (value !== undefined) out.value = value;
  if (typeof data === 'string' && data !== '0x') out.data = data;
  if (type !== 'legacy' && tx.accessList != null) out.accessList = tx.accessList;
  if (type === 'eip7702') out.authorizationList = readAuthorizationList(tx.authorizationList);

  if (type === 'legacy' || type === 'eip2930') {
    out.gasPrice = quantity(tx, 'gasPrice') ?? (await upstream.call<string>('eth_gasPrice', []));
  } else {
    const givenTip = quantity(tx, 'maxPriorityFeePerGas');
    const tip = givenTip ?? (await upstream.call<string>('eth_maxPriorityFeePerGas', []));
    let cap = quantity(tx, 'maxFeePerGas');
    if (cap === undefined) {
      const block = await upstream.call<{ baseFeePerGas?: string } | null>('eth_getBlockByNumber', ['latest', false]);
      const baseFee = typeof block?.baseFeePerGas === 'string' ? BigInt(block.baseFeePerGas) : 0n;
      cap = `0x${(2n * baseFee + BigInt(tip)).toString(16)}`;
    }
    out.maxFeePerGas = cap;
    // a filled tip stays under the given cap; a given one is the caller's (the kernel refuses tip > cap)
    out.maxPriorityFeePerGas = givenTip === undefined && BigInt(tip) > BigInt(cap) ? cap : tip;
  }

  const gas = quantity(tx, 'gas');
  if (gas !== undefined) out.gas = gas;
  else {
    const estimate: Record<string, unknown> = { from: tx.from, to, data: typeof data === 'string' ? data : '0x' };
    if (value !== undefined) estimate.value = value;
    if (out.accessList !== undefined) estimate.accessList = out.accessList;
    if (tx.authorizationList != null) estimate.authorizationList = tx.authorizationList;
    out.gas = await upstream.call<string>('eth_estimateGas', [estimate]);
  }
  return out;
}

/** An EIP-7702 authorization list in its JSON-RPC form (quantities in hex) → the kernel's (numbers). */
function readAuthorizationList(value: unknown): unknown[] {
  if (!Array.isArray(value)) throw invalidParams('transaction.authorizationList: expected an array');
  return value.map((item: unknown, i) => {
    if (typeof item !== 'object' || item === null) throw invalidParams(`transaction.authorizationList[${i}]: expected an object`);
    const a = item as Record<string, unknown>;
    const num = (field: string) => {
      const v = a[field];
      if (typeof v === 'number') return v;
      if (typeof v !== 'string' || !/^0x[0-9a-fA-F]{1,16}$/.test(v))
        throw invalidParams(`transaction.authorizationList[${i}].${field}: expected a 0x-hex quantity`);
      return safeNumber(v, `authorizationList[${i}].${field}`);
    };
    return { chainId: num('chainId'), address: a.address, nonce: num('nonce'), r: a.r, s: a.s, yParity: num('yParity') };
  });
}
