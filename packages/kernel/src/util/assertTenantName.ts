import { invalidInput } from '../errors.js';

/**
 * A tenant name (the backend an API key belongs to): 1..64 characters of lower-case letters,
 * digits, `.`, `_` and `-`, starting with a letter or a digit (it is typed on command lines and
 * printed in lists; `default` and `system` are the built-in ones).
 */
export function assertTenantName(value: unknown, field = 'tenant'): string {
  if (typeof value !== 'string') throw invalidInput(field, 'a string', typeof value);
  if (!/^[a-z0-9][a-z0-9._-]{0,63}$/.test(value)) throw invalidInput(field, '1..64 characters of a-z, 0-9, ".", "_", "-", starting with a letter or digit');
  return value;
}
