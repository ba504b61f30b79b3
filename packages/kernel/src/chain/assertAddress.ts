import { getAddress } from 'viem';
import { invalidInput } from '../errors.js';

const ADDRESS = /^0x[0-9a-fA-F]{40}$/;

/**
 * An Ethereum address: 0x + 40 hex digits. All lower-case or all upper-case digits carry no
 * checksum; a mixed-case address must match its EIP-55 checksum (a typo is caught, not signed).
 * Returns the EIP-55 checksummed form.
 */
export function assertAddress(value: unknown, field: string): `0x${string}` {
  if (typeof value !== 'string') throw invalidInput(field, 'an address (0x + 40 hex digits)', typeof value);
  if (!ADDRESS.test(value)) throw invalidInput(field, 'an address (0x + 40 hex digits)', 'a malformed string');
  const digits = value.slice(2);
  const checksummed = getAddress(`0x${digits.toLowerCase()}`);
  const uniformCase = digits === digits.toLowerCase() || digits === digits.toUpperCase();
  // EIP-55: a mixed-case address is a checksum, and must be the right one
  if (!uniformCase && checksummed !== value) throw invalidInput(field, 'an address with a valid EIP-55 checksum (or all one case)', 'a bad checksum');
  return checksummed;
}
