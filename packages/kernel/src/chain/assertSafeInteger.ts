import { invalidInput } from '../errors.js';

/** A JSON integer (a safe integer: exact in a double) in [min, 2^53-1]; chain ids and nonces. */
export function assertSafeInteger(value: unknown, field: string, min = 0): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value)) {
    throw invalidInput(field, `an integer ${min} ≤ n ≤ 2^53-1 (a JSON number)`, typeof value === 'number' ? String(value) : typeof value);
  }
  if (value < min) throw invalidInput(field, `an integer ≥ ${min}`, String(value));
  return value;
}
