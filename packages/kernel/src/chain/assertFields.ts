import { CustosError, invalidInput } from '../errors.js';

/**
 * A JSON object whose members are all among `allowed` (a member the kernel does not know is
 * refused: it would be signed without being shown, or silently dropped).
 */
export function assertFields(value: unknown, field: string, allowed: readonly string[], context = 'here'): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw invalidInput(field, 'a JSON object', value === null ? 'null' : Array.isArray(value) ? 'an array' : typeof value);
  }
  for (const key of Object.keys(value)) {
    if (!allowed.includes(key)) {
      const path = `${field}.${key.slice(0, 64)}`;
      throw new CustosError('invalid_input', `${path}: is not a field ${context} (known: ${allowed.join(', ')})`, { details: { field: path } });
    }
  }
  return value as Record<string, unknown>;
}
