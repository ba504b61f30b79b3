import { invalidInput } from '../../errors.js';

/**
 * A PKCS#11 label we accept: 1..maxBytes UTF-8 bytes, well-formed, no control characters, no
 * leading or trailing blank (token labels are blank-padded, so trailing blanks could not be told
 * apart).
 */
export function assertPkcs11Label(value: unknown, field: string, maxBytes: number): string {
  if (typeof value !== 'string') throw invalidInput(field, 'a string', typeof value);
  const bytes = Buffer.byteLength(value, 'utf8');
  if (bytes === 0 || bytes > maxBytes) throw invalidInput(field, `1..${maxBytes} UTF-8 bytes`, `${bytes} bytes`);
  if (!value.isWellFormed()) throw invalidInput(field, 'well-formed Unicode (no lone surrogates)');
  // biome-ignore lint/suspicious/noControlCharactersInRegex: rejecting control characters is the point
  if (/[\u0000-\u001f\u007f]/.test(value)) throw invalidInput(field, 'no control characters');
  if (value.trim() !== value) throw invalidInput(field, 'no leading or trailing blanks');
  return value;
}
