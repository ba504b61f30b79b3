/** Constants of the barrier's record envelope `v1.<iv>.<ciphertext‖tag>` (base64url, no padding). */
export const RECORD_VERSION = 'v1';
/** The associated data is this prefix followed by the record key, as UTF-8. */
export const RECORD_AAD_PREFIX = 'custos.record.v1\0';
export const RECORD_KEY_BYTES = 32;
