import { invalidInput } from '../errors.js';

export const WALLET_NAME_MAX_LENGTH = 256;

/**
 * A wallet name is an opaque, case-sensitive string of 1..256 UTF-16 code units with no control
 * characters. Names are not normalised: the bytes given are the bytes hashed into the path.
 */
export function assertWalletName(value: unknown, field = 'walletName'): string {
  if (typeof value !== 'string') throw invalidInput(field, 'a string', typeof value);
  if (value.length === 0 || value.length > WALLET_NAME_MAX_LENGTH) {
    throw invalidInput(field, `1..${WALLET_NAME_MAX_LENGTH} characters`, `${value.length}`);
  }
  // biome-ignore lint/suspicious/noControlCharactersInRegex: rejecting control characters is the point
  if (/[\u0000-\u001f\u007f]/.test(value)) throw invalidInput(field, 'no control characters');
  if (!value.isWellFormed()) throw invalidInput(field, 'well-formed Unicode (no lone surrogates)');
  return value;
}
