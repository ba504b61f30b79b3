import { invalidInput } from '../errors.js';
import { isCanonicalBase64 } from './isCanonicalBase64.js';

// The small strict readers every sealed-root parser shares (unsealRoot for version 1,
// readSealedRootV2 for version 2): one copy, so that both versions refuse the same things the same way.

/** A value as an error message may show it: numbers, short strings, else its type (never a long string). */
export function describeValue(value: unknown): string {
  if (typeof value === 'number') return String(value);
  if (typeof value === 'string') return value.length <= 40 ? JSON.stringify(value) : 'another string';
  return value === null ? 'null' : Array.isArray(value) ? 'an array' : typeof value;
}

/** A plain JSON object whose members are all among `allowed`; names the first stray member. */
export function readObject(value: unknown, field: string, allowed: readonly string[]): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw invalidInput(field, 'an object', describeValue(value));
  const prefix = field === 'envelope' ? '' : `${field}.`;
  for (const key of Object.keys(value)) {
    if (!allowed.includes(key)) throw invalidInput(`${prefix}${key}`, 'no such member (unknown field)');
  }
  return value as Record<string, unknown>;
}

/** Canonical base64 of minBytes..maxBytes bytes, decoded; the length is checked on the text first. */
export function readBase64(value: unknown, field: string, minBytes: number, maxBytes: number): Uint8Array {
  const expected = minBytes === maxBytes ? `base64 of ${minBytes} bytes` : `base64 of ${minBytes}..${maxBytes} bytes`;
  if (typeof value !== 'string') throw invalidInput(field, expected, describeValue(value));
  if (value.length > 4 * Math.ceil(maxBytes / 3)) throw invalidInput(field, expected, `${value.length} characters`);
  if (!isCanonicalBase64(value, 'base64')) throw invalidInput(field, `${expected} (canonical, padded)`, 'malformed base64');
  const bytes = new Uint8Array(Buffer.from(value, 'base64'));
  if (bytes.length < minBytes || bytes.length > maxBytes) throw invalidInput(field, expected, `${bytes.length} bytes`);
  return bytes;
}
