import { invalidInput } from '../errors.js';

/**
 * A key index is an integer 0 ≤ k < 2^31. The TOTP ETH Signer sends it as a decimal string, so a
 * canonical decimal string (no sign, no leading zeros, no spaces) is accepted as well.
 */
export function assertKeyIndex(value: unknown, field = 'keyIndex'): number {
  let n: number;
  if (typeof value === 'number') n = value;
  else if (typeof value === 'string' && /^(0|[1-9][0-9]{0,9})$/.test(value)) n = Number(value);
  else throw invalidInput(field, 'an integer 0 ≤ k < 2^31 (number or decimal string)', typeof value === 'string' ? 'a non-decimal string' : typeof value);
  if (!Number.isSafeInteger(n) || n < 0 || n >= 2 ** 31) throw invalidInput(field, 'an integer 0 ≤ k < 2^31', String(n));
  return n;
}
