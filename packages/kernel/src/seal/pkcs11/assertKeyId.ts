import { invalidInput } from '../../errors.js';
import { KEK_ID_BYTES } from './generateKek.js';

const KEY_ID = new RegExp(`^[0-9a-f]{${2 * KEK_ID_BYTES}}$`);

/** A KEK id: the CKA_ID generateKek draws, 16 bytes as 32 lower-case hex digits (one spelling only). */
export function assertKeyId(value: unknown, field: string): string {
  if (typeof value !== 'string' || !KEY_ID.test(value)) {
    throw invalidInput(field, `${2 * KEK_ID_BYTES} lower-case hex digits`, typeof value === 'string' ? `${value.length} characters` : typeof value);
  }
  return value;
}
