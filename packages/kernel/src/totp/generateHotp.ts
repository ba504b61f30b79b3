import { createHmac } from 'node:crypto';
import { invalidInput } from '../errors.js';

export type OtpAlgorithm = 'SHA1' | 'SHA256' | 'SHA512';
export type OtpDigits = 6 | 7 | 8;

export interface HotpOptions {
  digits?: OtpDigits;
  algorithm?: OtpAlgorithm;
}

const HMAC_NAMES: Record<OtpAlgorithm, string> = { SHA1: 'sha1', SHA256: 'sha256', SHA512: 'sha512' };
const MODULI: Record<OtpDigits, number> = { 6: 1e6, 7: 1e7, 8: 1e8 };
/** RFC 4226 §4 R6: the shared secret is at least 128 bits. */
const MIN_SECRET_BYTES = 16;

/**
 * HOTP (RFC 4226 §5): HMAC over the 8-byte big-endian counter, dynamic truncation, modulo 10^digits,
 * zero-padded. The secret is only handed to node's HMAC (which copies it); nothing is kept.
 */
export function generateHotp(secret: Uint8Array, counter: number, { digits = 6, algorithm = 'SHA1' }: HotpOptions = {}): string {
  // RFC 4226 §4 R6: secret of at least 128 bits
  if (!(secret instanceof Uint8Array) || secret.length < MIN_SECRET_BYTES) {
    throw invalidInput('secret', `at least ${MIN_SECRET_BYTES} bytes`);
  }
  // RFC 4226 §5.1: C is an 8-byte counter (here bounded by the safe integers)
  if (!Number.isSafeInteger(counter) || counter < 0) {
    throw invalidInput('counter', 'a non-negative safe integer', String(counter));
  }
  // RFC 4226 §5.3: Digit is 6 to 8 here (RFC 6238 uses 8 in its vectors)
  if (!Object.hasOwn(MODULI, digits)) throw invalidInput('digits', '6, 7 or 8', String(digits));
  // RFC 6238 §1.2: HMAC-SHA-1, HMAC-SHA-256 or HMAC-SHA-512
  if (!Object.hasOwn(HMAC_NAMES, algorithm)) {
    throw invalidInput('algorithm', 'SHA1, SHA256 or SHA512', String(algorithm));
  }

  const message = new Uint8Array(8);
  new DataView(message.buffer).setBigUint64(0, BigInt(counter), false);
  const mac = createHmac(HMAC_NAMES[algorithm], secret).update(message).digest();

  // RFC 4226 §5.3: dynamic truncation; the offset is the low nibble of the last byte
  const offset = (mac[mac.length - 1] ?? 0) & 0x0f;
  const binary = (((mac[offset] ?? 0) & 0x7f) << 24) | ((mac[offset + 1] ?? 0) << 16) | ((mac[offset + 2] ?? 0) << 8) | (mac[offset + 3] ?? 0);
  mac.fill(0);
  return String(binary % MODULI[digits]).padStart(digits, '0');
}
