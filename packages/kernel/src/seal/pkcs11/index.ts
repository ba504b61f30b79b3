export type { Pkcs11Token } from './types.js';
export { type OpenPkcs11TokenOptions, openPkcs11Token } from './openPkcs11Token.js';
export { type GenerateKekOptions, KEK_ID_BYTES, KEK_LABEL_MAX_BYTES, TOKEN_LABEL_MAX_BYTES, generateKek } from './generateKek.js';
export { type SealRootWithPkcs11Options, sealRootWithPkcs11 } from './sealRootWithPkcs11.js';
export { unsealRootWithPkcs11 } from './unsealRootWithPkcs11.js';
export { destroyKek } from './destroyKek.js';
export { assertPinNotAtRisk, CKF_USER_PIN_COUNT_LOW, CKF_USER_PIN_FINAL_TRY, CKF_USER_PIN_LOCKED } from './assertPinNotAtRisk.js';
