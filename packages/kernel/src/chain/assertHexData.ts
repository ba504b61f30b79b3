import { invalidInput } from '../errors.js';

const HEX_DATA = /^0x([0-9a-fA-F]{2})*$/;

/**
 * Bytes as 0x-hex of even length (`"0x"` is empty). With `bytes`, exactly that many bytes.
 * Returns the lower-case form.
 */
export function assertHexData(value: unknown, field: string, bytes?: number): `0x${string}` {
  const what = bytes === undefined ? '0x-hex bytes (an even number of hex digits)' : `0x + ${bytes * 2} hex digits (${bytes} bytes)`;
  if (typeof value !== 'string') throw invalidInput(field, what, typeof value);
  if (!HEX_DATA.test(value)) throw invalidInput(field, what, 'a malformed string');
  if (bytes !== undefined && value.length !== 2 + bytes * 2) throw invalidInput(field, what, `${(value.length - 2) / 2} bytes`);
  return value.toLowerCase() as `0x${string}`;
}
