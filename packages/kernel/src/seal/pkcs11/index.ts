export {
  assertPinNotAtRisk,
  CKF_USER_PIN_COUNT_LOW,
  CKF_USER_PIN_FINAL_TRY,
  CKF_USER_PIN_LOCKED,
  type OpenPkcs11TokenOptions,
  openPkcs11Token,
  type Pkcs11Token,
  TOKEN_LABEL_MAX_BYTES,
} from './token.js';
export { destroyKek, type GenerateKekOptions, generateKek, KEK_ID_BYTES, KEK_LABEL_MAX_BYTES } from './kek.js';
export { type SealRootWithPkcs11Options, sealRootWithPkcs11, unsealRootWithPkcs11 } from './unsealer.js';
