/**
 * True when `value` is the one canonical encoding of some bytes: `base64` with its padding, or
 * `base64url` without padding, no whitespace, no stray characters, zero trailing bits. Node's
 * decoder is lenient (it skips what it does not understand), so the check is a round trip; a
 * canonical form keeps two spellings of the same bytes from passing as different envelopes.
 */
export function isCanonicalBase64(value: unknown, encoding: 'base64' | 'base64url'): value is string {
  if (typeof value !== 'string') return false;
  return Buffer.from(value, encoding).toString(encoding) === value;
}
