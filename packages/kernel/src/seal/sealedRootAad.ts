import type { SealedRootHeader } from './types.js';

/**
 * The associated data of a sealed root: every header field, in a fixed order, as a JSON array
 * (numbers are integers and salt / iv are canonical base64, so the text is canonical). Changing
 * any parameter of the envelope — format, version, KDF name or cost, salt, cipher, IV — changes
 * these bytes and the tag no longer verifies.
 */
export function sealedRootAad(header: SealedRootHeader): Uint8Array {
  const { format, version, kdf, cipher } = header;
  const fields = [format, version, kdf.name, kdf.N, kdf.r, kdf.p, kdf.salt, cipher.name, cipher.iv];
  return new Uint8Array(Buffer.from(JSON.stringify(fields), 'utf8'));
}
