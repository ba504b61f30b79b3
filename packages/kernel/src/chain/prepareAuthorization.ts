import { zeroAddress } from 'viem';
import { hashAuthorization } from 'viem/utils';
import { assertAddress } from './assertAddress.js';
import { assertFields } from './assertFields.js';
import { assertSafeInteger } from './assertSafeInteger.js';
import { chainText, describeChain } from './describeChain.js';
import { toEthereumSignature } from './signatureResult.js';
import type { Hex, PreparedOperation, SignedAuthorization } from './types.js';

export interface AuthorizationSignatureResult {
  /** Exactly what goes into a type-4 transaction's authorizationList. */
  authorization: SignedAuthorization;
  digest: Hex;
}

/**
 * EIP-7702 authorization: digest = keccak-256(0x05 ‖ rlp([chain_id, address, nonce])). Signing it
 * hands the account to the delegate contract's code; chain id 0 makes it valid on every chain.
 */
export function prepareAuthorization(input: unknown): PreparedOperation<AuthorizationSignatureResult> {
  const fields = assertFields(input, 'authorization', ['chainId', 'address', 'nonce']);
  const chainId = assertSafeInteger(fields.chainId, 'authorization.chainId', 0);
  const address = assertAddress(fields.address, 'authorization.address');
  const nonce = assertSafeInteger(fields.nonce, 'authorization.nonce', 0);
  const digest = hashAuthorization({ chainId, address, nonce });
  return {
    action: 'sign.authorization',
    canonical: { chainId, address: address.toLowerCase(), nonce },
    digest: Uint8Array.from(Buffer.from(digest.slice(2), 'hex')),
    summarize: (from) => {
      const allChains = chainId === 0;
      // EIP-7702: delegating to the zero address clears the account's code
      const revokes = address === zeroAddress;
      const chain = describeChain(chainId);
      const where = allChains ? 'on EVERY chain (chainId 0: valid on all chains)' : `on ${chainText(chain)}`;
      const what = revokes
        ? `EIP-7702 authorization: clear the delegation of account ${from} (delegate: the zero address)`
        : `EIP-7702 authorization for account ${from}: delegate: ${address} — this contract will control the account`;
      return {
        summary: {
          operation: 'authorization',
          from,
          chain: allChains ? { id: 0, name: null, currency: 'ETH' } : chain,
          allChains,
          delegate: address,
          revokesDelegation: revokes,
          nonce,
          warning: revokes ? 'clears the account’s delegation' : `delegate: ${address} — this contract will control the account`,
        },
        summaryText: `${what}, ${where}, account nonce ${nonce}`,
      };
    },
    finish: (signature) => {
      const sig = toEthereumSignature(signature, digest);
      return { authorization: { chainId, address, nonce, r: sig.r, s: sig.s, yParity: sig.yParity }, digest };
    },
  };
}
