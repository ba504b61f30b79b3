import { invalidInput } from '../errors.js';
import { addressFromPoint } from './addressFromPoint.js';
import { assertBytes } from './assertBytes.js';
import { loadSecp256k1 } from './loadSecp256k1.js';

/**
 * The EIP-55 checksummed address (`0x` + 40 hex digits) of a 33- or 65-byte secp256k1 public key:
 * the last 20 bytes of keccak-256 of the 64-byte uncompressed point x ‖ y.
 */
export function toEthereumAddress(publicKey: Uint8Array): string {
  assertBytes(publicKey, [33, 65], 'publicKey');
  const secp = loadSecp256k1();
  // Yellow Paper eq. 284: A(pr) = B96..255(KEC(ECDSAPUBKEY(pr))), on the uncompressed point
  if (!secp.publicKeyVerify(publicKey)) throw invalidInput('publicKey', 'a point on secp256k1');
  return addressFromPoint(publicKey.length === 65 ? publicKey : secp.publicKeyConvert(publicKey, false));
}
