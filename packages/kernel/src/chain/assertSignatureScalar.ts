import { invalidInput } from '../errors.js';
import type { Hex } from './types.js';

/** The order n of secp256k1's group. */
export const SECP256K1_N = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;

const SCALAR = /^0x[0-9a-fA-F]{1,64}$/;

/**
 * An ECDSA signature scalar r or s as 0x-hex (1..64 digits). r must be in [1, n-1]; s in
 * [1, n/2] (low-s: EIP-2, and EIP-7702 treats a high-s authorization as invalid).
 * Returns 0x + 64 lower-case hex digits.
 */
export function assertSignatureScalar(value: unknown, field: string, which: 'r' | 's'): Hex {
  const what = which === 'r' ? 'a signature r, 0x-hex, 1 ≤ r < n' : 'a low-s signature s, 0x-hex, 1 ≤ s ≤ n/2';
  if (typeof value !== 'string') throw invalidInput(field, what, typeof value);
  if (!SCALAR.test(value)) throw invalidInput(field, what, 'a malformed string');
  const n = BigInt(value);
  const max = which === 'r' ? SECP256K1_N - 1n : SECP256K1_N / 2n;
  if (n < 1n || n > max) throw invalidInput(field, what, 'a value out of range');
  return `0x${n.toString(16).padStart(64, '0')}`;
}
