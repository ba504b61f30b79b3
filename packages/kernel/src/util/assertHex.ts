import { invalidInput } from '../errors.js';

const HEX = /^[0-9a-fA-F]*$/;

/**
 * Parses a hex string of exactly `bytes` bytes (an optional 0x prefix is accepted) and returns the
 * bytes. Throws invalid_input naming `field` otherwise.
 */
export function assertHex(value: unknown, field: string, bytes: number): Uint8Array {
  if (typeof value !== 'string') throw invalidInput(field, `a hex string of ${bytes} bytes`, typeof value);
  const digits = value.startsWith('0x') || value.startsWith('0X') ? value.slice(2) : value;
  if (!HEX.test(digits)) throw invalidInput(field, `a hex string of ${bytes} bytes`, 'non-hex characters');
  if (digits.length !== bytes * 2) {
    throw invalidInput(field, `a hex string of ${bytes} bytes (${bytes * 2} hex digits)`, `${digits.length} hex digits`);
  }
  return Uint8Array.from(Buffer.from(digits, 'hex'));
}
