import { invalidInput } from '../errors.js';

export const MAX_UINT256 = (1n << 256n) - 1n;
export const MAX_UINT64 = (1n << 64n) - 1n;

const DECIMAL = /^(0|[1-9][0-9]*)$/;
const HEX = /^0x[0-9a-fA-F]+$/;

/**
 * A quantity (value, gas, fee) is a string: decimal without leading zeros (`"21000"`) or 0x-hex
 * (`"0x5208"`). Strings, not JSON numbers, so that no amount ever passes through a float.
 * Returns the value as a bigint in [0, max]; `max` is 2^256-1 unless the field is narrower.
 */
export function assertQuantity(value: unknown, field: string, max: bigint = MAX_UINT256): bigint {
  if (typeof value !== 'string') throw invalidInput(field, 'a quantity string, decimal ("21000") or 0x-hex ("0x5208")', typeof value);
  if (value.length > 80 || !(DECIMAL.test(value) || HEX.test(value))) {
    throw invalidInput(field, 'a quantity string, decimal without leading zeros ("21000") or 0x-hex ("0x5208")', 'a malformed string');
  }
  const n = BigInt(value);
  if (n > max) throw invalidInput(field, `a quantity ≤ ${max === MAX_UINT64 ? '2^64-1' : '2^256-1'}`, 'a larger number');
  return n;
}
