import { hashAuthorization } from 'viem/utils';
import { loadSecp256k1 } from '../crypto/loadSecp256k1.js';
import { toEthereumAddress } from '../crypto/toEthereumAddress.js';
import type { Address, SignedAuthorization } from './types.js';

/**
 * The account (authority) that signed an EIP-7702 authorization, recovered with libsecp256k1;
 * null when the signature recovers no key (such an authorization is skipped by the chain).
 */
export function recoverAuthority(auth: SignedAuthorization): Address | null {
  const digest = hashAuthorization({ chainId: auth.chainId, address: auth.address, nonce: auth.nonce, to: 'bytes' });
  const signature = Buffer.from(`${auth.r.slice(2)}${auth.s.slice(2)}`, 'hex');
  try {
    return toEthereumAddress(loadSecp256k1().ecdsaRecover(new Uint8Array(signature), auth.yParity, digest, false)) as Address;
  } catch {
    return null;
  }
}
