import { CustosInputError } from './errors.js';

/**
 * Deep copy for the wire: a bigint becomes its decimal string (the API takes quantities and
 * EIP-712 integers as strings); a number that is not a safe integer is refused rather than
 * silently rounded.
 */
export function toJsonQuantities<T>(value: T, path = 'value'): T {
  if (typeof value === 'bigint') return value.toString(10) as T;
  if (typeof value === 'number') {
    if (Number.isInteger(value) && !Number.isSafeInteger(value)) throw new CustosInputError(path, `${value} is not a safe integer; pass a bigint or a string`);
    return value;
  }
  if (Array.isArray(value)) return value.map((item, i) => toJsonQuantities(item, `${path}[${i}]`)) as T;
  if (value instanceof Uint8Array) return `0x${Array.from(value, (b) => b.toString(16).padStart(2, '0')).join('')}` as T;
  if (typeof value === 'object' && value !== null) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) if (v !== undefined) out[k] = toJsonQuantities(v, `${path}.${k}`);
    return out as T;
  }
  return value;
}
