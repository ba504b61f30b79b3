/** Constants of the sealed-root envelope, version 1 (shared by sealRoot and unsealRoot). */
export const SEALED_ROOT_FORMAT = 'custos.sealed-root';
export const SEALED_ROOT_VERSION = 1;
export const SEALED_ROOT_KDF = 'scrypt';
export const SEALED_ROOT_CIPHER = 'aes-256-gcm';
/** Salt drawn by sealRoot (unsealRoot accepts the scrypt bounds, 16..64). */
export const SEALED_ROOT_SALT_BYTES = 32;
export const GCM_IV_BYTES = 12;
export const GCM_TAG_BYTES = 16;
/** Largest plaintext sealRoot accepts (an encoded keyring is under 100 bytes). */
export const MAX_ROOT_BYTES = 4096;
