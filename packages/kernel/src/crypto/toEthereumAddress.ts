import { keccak_256 } from '@noble/hashes/sha3.js';
import { bytesToHex } from '@noble/hashes/utils.js';
import { invalidInput } from '../errors.js';
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
  const uncompressed = secp.publicKeyConvert(publicKey, false);
  const lower = bytesToHex(keccak_256(uncompressed.subarray(1)).subarray(12));
  // EIP-55: upper-case the i-th hex letter when the i-th nibble of keccak-256(lower-case hex) is >= 8
  const hash = keccak_256(new TextEncoder().encode(lower));
  let out = '0x';
  for (let i = 0; i < 40; i++) {
    const char = lower[i] as string;
    const nibble = ((hash[i >> 1] as number) >> (i % 2 === 0 ? 4 : 0)) & 0x0f;
    out += nibble >= 8 ? char.toUpperCase() : char;
  }
  return out;
}
