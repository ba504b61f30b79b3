import { invalidInput } from '../errors.js';

/**
 * Asserts that `value` is a Uint8Array (a Buffer is one) of one of the allowed lengths.
 * The error names `field` and the expected/actual lengths, never the bytes.
 */
export function assertBytes(value: unknown, lengths: number | readonly number[], field: string): asserts value is Uint8Array {
  const allowed = typeof lengths === 'number' ? [lengths] : lengths;
  const expected = `a Uint8Array of ${allowed.join(' or ')} bytes`;
  if (!(value instanceof Uint8Array)) throw invalidInput(field, expected, typeof value);
  if (!allowed.includes(value.length)) throw invalidInput(field, expected, `${value.length} bytes`);
}
