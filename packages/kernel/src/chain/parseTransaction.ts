import { invalidInput } from '../errors.js';
import { assertAddress } from './assertAddress.js';
import { assertFields } from './assertFields.js';
import { assertHexData } from './assertHexData.js';
import { assertQuantity, MAX_UINT64 } from './assertQuantity.js';
import { assertSafeInteger } from './assertSafeInteger.js';
import { assertSignatureScalar } from './assertSignatureScalar.js';
import { type AccessListEntry, type ParsedTransaction, type SignedAuthorization, TRANSACTION_TYPES, type TransactionType } from './types.js';

const COMMON = ['type', 'chainId', 'nonce', 'to', 'value', 'data', 'gas'] as const;
/** The fields each transaction type carries (a field of another type is refused, not ignored). */
const FIELDS: Record<TransactionType, readonly string[]> = {
  legacy: [...COMMON, 'gasPrice'],
  eip2930: [...COMMON, 'gasPrice', 'accessList'],
  eip1559: [...COMMON, 'maxFeePerGas', 'maxPriorityFeePerGas', 'accessList'],
  eip7702: [...COMMON, 'maxFeePerGas', 'maxPriorityFeePerGas', 'accessList', 'authorizationList'],
};

/**
 * How much one transaction request may carry; more is refused (invalid_input naming where) before
 * the rest is read. Each authorization costs a public-key recovery for the summary, each access
 * list member a checksum; real transactions carry a few (published in docs/operations-ethereum.md).
 */
export const TRANSACTION_LIMITS = Object.freeze({
  /** Bytes of calldata or init code: 128 KiB, the largest transaction geth's pool accepts. */
  maxDataBytes: 128 * 1024,
  /** Addresses in an access list. */
  maxAccessListEntries: 256,
  /** Storage keys in an access list, all addresses together. */
  maxStorageKeys: 1024,
  /** EIP-7702 authorizations in a set-code transaction. */
  maxAuthorizations: 64,
});

/**
 * Validates a transaction request (the REST body's `transaction`) into a ParsedTransaction. Every
 * refusal is invalid_input naming the field by its path (`transaction.accessList[0].address`).
 * Legacy transactions are EIP-155 only: a chain id is required (an unprotected transaction could
 * be replayed on every chain).
 */
export function parseTransaction(input: unknown, field = 'transaction'): ParsedTransaction {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) throw invalidInput(field, 'a JSON object', input === null ? 'null' : typeof input);
  const raw = input as Record<string, unknown>;
  const type = raw.type;
  if (typeof type !== 'string' || !(TRANSACTION_TYPES as readonly string[]).includes(type)) {
    throw invalidInput(
      `${field}.type`,
      `one of ${TRANSACTION_TYPES.map((t) => `"${t}"`).join(', ')}`,
      typeof type === 'string' ? JSON.stringify(type.slice(0, 32)) : typeof type,
    );
  }
  const txType = type as TransactionType;
  assertFields(raw, field, FIELDS[txType], `of a ${txType} transaction`);

  // EIP-155: the chain id is signed (replay protection); chain id 0 and negatives protect nothing
  if (raw.chainId === undefined) throw invalidInput(`${field}.chainId`, 'a chain id (an integer ≥ 1): unprotected transactions are refused', 'nothing');
  const chainId = assertSafeInteger(raw.chainId, `${field}.chainId`, 1);
  // EIP-2681: the nonce is below 2^64-1 (safe integers always are)
  const nonce = assertSafeInteger(raw.nonce, `${field}.nonce`, 0);
  const to = raw.to === undefined || raw.to === null ? null : assertAddress(raw.to, `${field}.to`);
  const value = raw.value === undefined ? 0n : assertQuantity(raw.value, `${field}.value`);
  if (typeof raw.data === 'string' && raw.data.length > 2 + 2 * TRANSACTION_LIMITS.maxDataBytes)
    throw invalidInput(`${field}.data`, `at most ${TRANSACTION_LIMITS.maxDataBytes} bytes`, `${Math.floor((raw.data.length - 2) / 2)} bytes`);
  const data = raw.data === undefined ? '0x' : assertHexData(raw.data, `${field}.data`);
  // the gas limit is a 64-bit field in every client
  const gas = assertQuantity(raw.gas, `${field}.gas`, MAX_UINT64);
  const tx: ParsedTransaction = { type: txType, chainId, nonce, to, value, data, gas };

  if (txType === 'legacy' || txType === 'eip2930') {
    tx.gasPrice = assertQuantity(raw.gasPrice, `${field}.gasPrice`);
  } else {
    tx.maxFeePerGas = assertQuantity(raw.maxFeePerGas, `${field}.maxFeePerGas`);
    tx.maxPriorityFeePerGas = assertQuantity(raw.maxPriorityFeePerGas, `${field}.maxPriorityFeePerGas`);
    // EIP-1559: the tip is capped by the fee cap
    if (tx.maxPriorityFeePerGas > tx.maxFeePerGas) throw invalidInput(`${field}.maxPriorityFeePerGas`, 'at most maxFeePerGas', 'a larger value');
  }
  if (txType !== 'legacy' && raw.accessList !== undefined) tx.accessList = parseAccessList(raw.accessList, `${field}.accessList`);
  if (txType === 'eip7702') {
    // EIP-7702: a set-code transaction cannot create a contract, and carries at least one authorization
    if (to === null) throw invalidInput(`${field}.to`, 'an address (an eip7702 transaction cannot deploy a contract)', 'nothing');
    tx.authorizationList = parseAuthorizationList(raw.authorizationList, `${field}.authorizationList`);
  }
  return tx;
}

function parseAccessList(value: unknown, field: string): AccessListEntry[] {
  if (!Array.isArray(value)) throw invalidInput(field, 'an array of { address, storageKeys }', typeof value);
  if (value.length > TRANSACTION_LIMITS.maxAccessListEntries)
    throw invalidInput(field, `at most ${TRANSACTION_LIMITS.maxAccessListEntries} addresses`, String(value.length));
  let storageKeyCount = 0;
  return value.map((item: unknown, i) => {
    const path = `${field}[${i}]`;
    const entry = assertFields(item, path, ['address', 'storageKeys']);
    const address = assertAddress(entry.address, `${path}.address`);
    if (!Array.isArray(entry.storageKeys)) throw invalidInput(`${path}.storageKeys`, 'an array of 32-byte 0x-hex keys', typeof entry.storageKeys);
    storageKeyCount += entry.storageKeys.length;
    if (storageKeyCount > TRANSACTION_LIMITS.maxStorageKeys)
      throw invalidInput(`${path}.storageKeys`, `at most ${TRANSACTION_LIMITS.maxStorageKeys} storage keys in the access list`, `${storageKeyCount} so far`);
    const storageKeys = entry.storageKeys.map((key: unknown, k) => assertHexData(key, `${path}.storageKeys[${k}]`, 32));
    return { address, storageKeys };
  });
}

function parseAuthorizationList(value: unknown, field: string): SignedAuthorization[] {
  if (value === undefined) throw invalidInput(field, 'a non-empty array of signed authorizations', 'nothing');
  if (!Array.isArray(value)) throw invalidInput(field, 'a non-empty array of signed authorizations', typeof value);
  if (value.length === 0) throw invalidInput(field, 'a non-empty array of signed authorizations', 'an empty array');
  if (value.length > TRANSACTION_LIMITS.maxAuthorizations)
    throw invalidInput(field, `at most ${TRANSACTION_LIMITS.maxAuthorizations} signed authorizations`, String(value.length));
  return value.map((item: unknown, i) => {
    const path = `${field}[${i}]`;
    const auth = assertFields(item, path, ['chainId', 'address', 'nonce', 'r', 's', 'yParity']);
    const yParity = auth.yParity;
    if (yParity !== 0 && yParity !== 1) throw invalidInput(`${path}.yParity`, '0 or 1', typeof yParity === 'number' ? String(yParity) : typeof yParity);
    return {
      chainId: assertSafeInteger(auth.chainId, `${path}.chainId`, 0),
      address: assertAddress(auth.address, `${path}.address`),
      nonce: assertSafeInteger(auth.nonce, `${path}.nonce`, 0),
      r: assertSignatureScalar(auth.r, `${path}.r`, 'r'),
      s: assertSignatureScalar(auth.s, `${path}.s`, 's'),
      yParity,
    };
  });
}
