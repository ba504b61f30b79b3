// AES-256-GCM, the one AEAD of every envelope here (sealed roots, records): its sizes, seal and open.
import { createCipheriv, createDecipheriv } from 'node:crypto';

/** A 96-bit IV and a 128-bit tag, for every envelope. */
export const GCM_IV_BYTES = 12;
export const GCM_TAG_BYTES = 16;

/**
 * AES-256-GCM with a 128-bit tag, the one construction of every envelope (sealed roots, records).
 * Returns ciphertext ‖ tag.
 */
export function sealAesGcm(key: Uint8Array, iv: Uint8Array, aad: Uint8Array, plaintext: Uint8Array): Buffer {
  const cipher = createCipheriv('aes-256-gcm', key, iv, { authTagLength: GCM_TAG_BYTES });
  cipher.setAAD(aad);
  return Buffer.concat([cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]);
}

/**
 * Opens ciphertext ‖ tag (the caller checked that `body` holds at least the tag). Returns a fresh
 * buffer the caller owns (and wipes). On any failure the plaintext update() released before the
 * tag was checked is wiped, and `failure(cause)` is thrown: never unauthenticated bytes.
 */
export function openAesGcm(key: Uint8Array, iv: Uint8Array, aad: Uint8Array, body: Uint8Array, failure: (cause: unknown) => Error): Uint8Array {
  let opened: Buffer | undefined;
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, iv, { authTagLength: GCM_TAG_BYTES });
    decipher.setAAD(aad);
    decipher.setAuthTag(body.subarray(body.length - GCM_TAG_BYTES));
    opened = decipher.update(body.subarray(0, body.length - GCM_TAG_BYTES));
    decipher.final();
  } catch (cause) {
    opened?.fill(0);
    throw failure(cause);
  }
  const plaintext = Uint8Array.from(opened);
  opened.fill(0);
  return plaintext;
}
