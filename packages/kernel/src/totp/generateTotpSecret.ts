import { invalidInput } from '../errors.js';

/** RFC 4226 §4 R6 recommends 160 bits, the length of an HMAC-SHA-1 output. */
const TOTP_SECRET_BYTES = 20;

/**
 * A new 20-byte TOTP secret from the injected CSPRNG. The result is a fresh plain Uint8Array (not a
 * Buffer, whose toJSON would serialize the bytes); the buffer the source returned is wiped.
 */
export function generateTotpSecret(random: (n: number) => Uint8Array): Uint8Array {
  const bytes = random(TOTP_SECRET_BYTES);
  // the source must give exactly what was asked for
  if (!(bytes instanceof Uint8Array) || bytes.length !== TOTP_SECRET_BYTES) {
    throw invalidInput('random', `a source returning ${TOTP_SECRET_BYTES} bytes`);
  }
  const secret = new Uint8Array(bytes);
  bytes.fill(0);
  return secret;
}
