import { keccak_256 } from '@noble/hashes/sha3.js';
import { bytesToHex } from '@noble/hashes/utils.js';
import { assertBytes } from './assertBytes.js';

const encoder = new TextEncoder();

/**
 * The EIP-55 checksummed address of an uncompressed secp256k1 point (65 bytes, 0x04 ‖ x ‖ y) that
 * the caller knows to be on the curve (libsecp256k1 just produced it): no point check, no
 * conversion. toEthereumAddress is the checked entry point for a point from outside.
 */
export function addressFromPoint(uncompressed: Uint8Array): string {
  assertBytes(uncompressed, 65, 'uncompressed');
  // Yellow Paper eq. 284: A(pr) = B96..255(KEC(ECDSAPUBKEY(pr))), on x ‖ y
  const lower = bytesToHex(keccak_256(uncompressed.subarray(1)).subarray(12));
  // EIP-55: upper-case the i-th hex letter when the i-th nibble of keccak-256(lower-case hex) is >= 8
  const hash = keccak_256(encoder.encode(lower));
  let out = '0x';
  for (let i = 0; i < 40; i++) {
    const char = lower[i] as string;
    const nibble = ((hash[i >> 1] as number) >> (i % 2 === 0 ? 4 : 0)) & 0x0f;
    out += nibble >= 8 ? char.toUpperCase() : char;
  }
  return out;
}
