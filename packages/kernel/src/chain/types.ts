import type { ChainLabel } from './describeChain.js';

export type Hex = `0x${string}`;
export type Address = `0x${string}`;

export const TRANSACTION_TYPES = ['legacy', 'eip2930', 'eip1559', 'eip7702'] as const;
export type TransactionType = (typeof TRANSACTION_TYPES)[number];

export interface AccessListEntry {
  address: Address;
  storageKeys: Hex[];
}

/** A signed EIP-7702 authorization tuple (what goes into a type-4 transaction's authorizationList). */
export interface SignedAuthorization {
  chainId: number;
  /** The delegate: the contract whose code the authority's account will run. */
  address: Address;
  nonce: number;
  /** 0x + 64 hex digits. */
  r: Hex;
  s: Hex;
  yParity: 0 | 1;
}

/** A validated transaction: every field checked against its type, quantities as bigints. */
export interface ParsedTransaction {
  type: TransactionType;
  chainId: number;
  nonce: number;
  /** null: contract deployment. */
  to: Address | null;
  value: bigint;
  data: Hex;
  gas: bigint;
  gasPrice?: bigint;
  maxFeePerGas?: bigint;
  maxPriorityFeePerGas?: bigint;
  accessList?: AccessListEntry[];
  authorizationList?: SignedAuthorization[];
}

/** The signature of an operation's digest, as the Barrier's libsecp256k1 signer returns it. */
export interface OperationSignature {
  r: Uint8Array;
  s: Uint8Array;
  yParity: 0 | 1;
}

/** Every summary names the operation, the signing address and (where there is one) the chain. */
export interface SummaryBase {
  operation: 'hash' | 'transaction' | 'message' | 'typedData' | 'authorization' | 'batch';
  from: Address;
  chain?: ChainLabel;
}

export type OperationSummary = SummaryBase & Record<string, unknown>;

/**
 * An operation parsed by the chain codec: what the kernel hashes into the opHash, the digest it
 * signs, the summary it shows and audits, and how a signature becomes the response.
 */
export interface PreparedOperation<Result> {
  /** The audit action, e.g. `sign.transaction`. */
  action: string;
  /** The canonical operation (JSON-safe: addresses lower-case, quantities decimal strings). */
  canonical: Record<string, unknown>;
  /** The 32 bytes that are signed; computed by the kernel, never taken from the caller. */
  digest: Uint8Array;
  summarize(from: Address): { summary: OperationSummary; summaryText: string };
  finish(signature: OperationSignature): Result;
}
