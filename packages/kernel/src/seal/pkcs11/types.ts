import type { PKCS11 } from 'pkcs11js';

/**
 * An open, logged-in PKCS#11 session on one token (from openPkcs11Token). The PIN is not kept: the
 * session is what stays logged in. `close()` logs out, closes the session and, when it was the last
 * open token of its module, finalizes the module; every later use throws `hsm_unavailable`.
 */
export interface Pkcs11Token {
  /** CKA_LABEL of the token, as given (the slot was found by it). */
  readonly tokenLabel: string;
  /** Whether close() has run. */
  readonly closed: boolean;
  /** The loaded module and the session handle; throws `hsm_unavailable` once closed. */
  use(): { module: PKCS11; session: Buffer };
  close(): void;
}
