import { invalidInput } from '../errors.js';
import { HARDENED_OFFSET } from './types.js';

/** Formats BIP32 child indexes as a path string: [2^31 + 1, 2] → "m/1'/2". */
export function formatPath(indexes: readonly number[]): string {
  let path = 'm';
  for (const index of indexes) {
    if (!Number.isInteger(index) || index < 0 || index > 0xffffffff) {
      throw invalidInput('indexes', 'integers in [0, 2^32)', String(index));
    }
    path += index >= HARDENED_OFFSET ? `/${index - HARDENED_OFFSET}'` : `/${index}`;
  }
  return path;
}
