export type { RandomBytes, RootKeyring, RootMaster, ScryptCost, ScryptParams, SealedRoot, SealedRootHeader } from './types.js';
export { DEFAULT_SCRYPT, KEK_BYTES, deriveKek } from './deriveKek.js';
export { SCRYPT_BOUNDS, validateScryptParams } from './validateScryptParams.js';
export { type SealRootOptions, sealRoot } from './sealRoot.js';
export { unsealRoot } from './unsealRoot.js';
export { encodeRootKeyring } from './encodeRootKeyring.js';
export { decodeRootKeyring } from './decodeRootKeyring.js';
export { wipeRootKeyring } from './wipeRootKeyring.js';
export { encryptRecord } from './encryptRecord.js';
export { decryptRecord } from './decryptRecord.js';
export {
  type Pkcs11UnsealerParams,
  SEALED_ROOT_V2,
  type SealedRootV2,
  type SealedRootV2Header,
  type ShamirUnsealerParams,
  type UnsealerParamsV2,
  sealedRootAadV2,
} from './sealedRootV2.js';
export * from './pkcs11/index.js';
export type { ShareFileOut, UnsealCredential, UnsealerInfo, UnsealerSpec, UnsealerType, UnsealShare } from './unsealerTypes.js';
export { encodeShareFile } from './encodeShareFile.js';
export { parseShareFile } from './parseShareFile.js';
export { sealRootWithKek } from './sealRootWithKek.js';
export { unsealRootWithKek } from './unsealRootWithKek.js';
export { readSealedRootV2 } from './readSealedRootV2.js';
export { type SealRootShamirOptions, sealRootShamir } from './sealRootShamir.js';
export { assertShareBelongs, unsealRootShamir } from './unsealRootShamir.js';
export { describeUnsealer } from './describeUnsealer.js';
export { openSealedRoot } from './openSealedRoot.js';
export { type SealStep, sealRootFor } from './sealRootFor.js';
export { assertUnsealClient, LOCAL_UNSEAL_CLIENT, MAX_UNSEAL_CLIENT_KEY_LENGTH, type UnsealClient } from './unsealClient.js';
export { MAX_UNSEAL_CLIENTS, UnsealThrottles } from './UnsealThrottles.js';
export { MAX_QUEUED_UNSEALS_PER_CLIENT, UnsealQueue } from './UnsealQueue.js';
export type { OpenSealedRootOptions } from './openSealedRoot.js';
