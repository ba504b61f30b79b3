import {
  bytesToHex,
  isAddressEqual,
  type LocalAccount,
  recoverAddress,
  recoverMessageAddress,
  recoverTransactionAddress,
  recoverTypedDataAddress,
  type SerializeTransactionFn,
  serializeTransaction,
  type TransactionSerializable,
  type TypedDataDefinition,
} from 'viem';
import { toAccount } from 'viem/accounts';
import { recoverAuthorizationAddress } from 'viem/utils';
import type { CustosClient } from './client.js';
import { CustosViemError } from './CustosViemError.js';
import { CustosInputError, unexpectedAnswer } from './errors.js';
import type { CodeSource } from './resolveCode.js';
import { type ApprovalCallback, assertOneConsent, resolveConsent } from './resolveConsent.js';
import { toCustosTransaction } from './toCustosTransaction.js';
import type { Address, MessageInput } from './types.js';

export { CustosViemError } from './CustosViemError.js';
export { toCustosTransaction } from './toCustosTransaction.js';
export type { CodeRequest, CodeSource } from './resolveCode.js';
export type { ApprovalCallback, ApprovalPrompt } from './resolveConsent.js';

export interface CustosAccountOptions {
  walletName: string;
  keyIndex: number;
  /** The second-factor code, or a callback asked once per signature (a code is single use). */
  code?: CodeSource;
  /**
   * Instead of `code`: the owner approves each operation on the kernel's page. Called once per
   * signature with the link for the owner (`approveUrl`) and the summary; the account then waits for
   * the decision and signs with the approval (a rejection throws approval_rejected, and so on).
   */
  approval?: ApprovalCallback;
}

/**
 * A viem `LocalAccount` whose keys stay in Custos: `signTransaction`, `signMessage`,
 * `signTypedData`, `signAuthorization` (EIP-7702) and `sign` (a raw hash) each make one sign
 * request, with a code from `code`. Usable wherever viem takes an account (a wallet client's
 * `sendTransaction`, `signAuthorization`, …). The address comes from `GET /v1/keys`.
 *
 * Every answer is checked before it is returned: the signature must recover to this account's
 * address and a signed transaction must be exactly the one asked for (re-serialized locally), so
 * a misrouted or altered answer fails here rather than on chain.
 */
export async function custosAccount(client: CustosClient, { walletName, keyIndex, code, approval }: CustosAccountOptions): Promise<LocalAccount> {
  const consent = { code, approval };
  assertOneConsent(consent);
  const { address } = await client.getKey({ walletName, keyIndex });
  const key = { walletName, keyIndex };
  const expectSigner = (recovered: Address, what: string) => {
    if (!isAddressEqual(recovered, address)) throw unexpectedAnswer(what, `the signature returned by Custos recovers to ${recovered}, not ${address}`);
  };

  return toAccount({
    address,
    sign: viemErrors(async ({ hash }) => {
      const request = { ...key, hash };
      const signed = await client.signHash({ ...request, ...(await resolveConsent(client, consent, { operation: 'hash', ...key, payload: request })) });
      expectSigner(await recoverAddress({ hash, signature: signed.signature }), 'signature');
      return signed.signature;
    }),
    signMessage: viemErrors(async ({ message }) => {
      const input: MessageInput =
        typeof message === 'string' ? { text: message } : { raw: typeof message.raw === 'string' ? message.raw : bytesToHex(message.raw) };
      const request = { ...key, message: input };
      const signed = await client.signMessage({ ...request, ...(await resolveConsent(client, consent, { operation: 'message', ...key, payload: request })) });
      expectSigner(await recoverMessageAddress({ message, signature: signed.signature }), 'signature');
      return signed.signature;
    }),
    signTypedData: viemErrors(async (parameters) => {
      const { domain = {}, types, primaryType, message } = parameters as unknown as TypedDataDefinition & { domain?: Record<string, unknown> };
      const typedData = {
        domain: domain as Record<string, unknown>,
        types: types as Record<string, ReadonlyArray<{ name: string; type: string }>>,
        primaryType: primaryType as string,
        message: (message ?? {}) as Record<string, unknown>,
      };
      const request = { ...key, typedData };
      const signed = await client.signTypedData({
        ...request,
        ...(await resolveConsent(client, consent, { operation: 'typedData', ...key, payload: request })),
      });
      expectSigner(await recoverTypedDataAddress({ ...(parameters as TypedDataDefinition), signature: signed.signature }), 'signature');
      return signed.signature;
    }),
    signTransaction: viemErrors(async (transaction, options) => {
      const tx = transaction as TransactionSerializable;
      const request = { ...key, transaction: toCustosTransaction(tx) };
      const signed = await client.signTransaction({
        ...request,
        ...(await resolveConsent(client, consent, { operation: 'transaction', ...key, payload: request })),
      });
      const serializer = (options?.serializer ?? serializeTransaction) as SerializeTransactionFn<TransactionSerializable>;
      const { r, s, yParity } = signed.signature;
      // viem's legacy serializer needs v (27/28; it applies EIP-155 from chainId), typed ones yParity.
      const expected = await serializer(tx, { r, s, yParity, v: 27n + BigInt(yParity) });
      if (expected.toLowerCase() !== signed.serializedTransaction.toLowerCase())
        throw unexpectedAnswer('serializedTransaction', 'Custos returned a transaction that differs from the one requested');
      expectSigner(await recoverTransactionAddress({ serializedTransaction: signed.serializedTransaction as never }), 'serializedTransaction');
      return signed.serializedTransaction;
    }),
    signAuthorization: viemErrors(async (authorization) => {
      const target = authorization.address ?? (authorization as { contractAddress?: Address }).contractAddress;
      if (target === undefined) throw new CustosInputError('authorization.address', 'required');
      if (typeof authorization.nonce !== 'number') throw new CustosInputError('authorization.nonce', 'required');
      const request = { ...key, authorization: { chainId: authorization.chainId, address: target, nonce: authorization.nonce } };
      const signed = await client.signAuthorization({
        ...request,
        ...(await resolveConsent(client, consent, { operation: 'authorization', ...key, payload: request })),
      });
      const a = signed.authorization;
      if (a.chainId !== authorization.chainId || a.nonce !== authorization.nonce || !isAddressEqual(a.address, target))
        throw unexpectedAnswer('authorization', 'Custos returned an authorization that differs from the one requested');
      const signedAuthorization = { address: a.address, chainId: a.chainId, nonce: a.nonce, r: a.r, s: a.s, yParity: a.yParity };
      expectSigner(await recoverAuthorizationAddress({ authorization: signedAuthorization }), 'authorization');
      return signedAuthorization;
    }),
  });
}

/** Rethrows any failure as a CustosViemError (a viem BaseError that viem's actions can wrap). */
function viemErrors<A extends unknown[], R>(fn: (...args: A) => Promise<R>): (...args: A) => Promise<R> {
  return async (...args) => {
    try {
      return await fn(...args);
    } catch (error) {
      throw error instanceof CustosViemError ? error : new CustosViemError(error instanceof Error ? error : new Error(String(error)));
    }
  };
}
