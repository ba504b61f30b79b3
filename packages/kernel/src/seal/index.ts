export type { RandomBytes } from './random.js';
export { type RootKeyring, type RootMaster, decodeRootKeyring, encodeRootKeyring, wipeRootKeyring } from './keyring.js';
export {
  DEFAULT_SCRYPT,
  deriveKek,
  SCRYPT_BOUNDS,
  type ScryptCost,
  type ScryptParams,
  type SealRootOptions,
  sealRoot,
  unsealRoot,
  validateScryptParams,
} from './passphrase.js';
export { decryptRecord, encryptRecord } from './recordEnvelope.js';
export {
  describeUnsealer,
  KEK_BYTES,
  type Pkcs11UnsealerParams,
  readSealedRootV2,
  SEALED_ROOT_V2,
  type SealedRoot,
  type SealedRootHeader,
  type SealedRootV2,
  type SealedRootV2Header,
  type ShamirUnsealerParams,
  sealedRootAadV2,
  sealedRootQuorum,
  sealRootWithKek,
  type UnsealerParamsV2,
  unsealRootWithKek,
} from './sealedRoot.js';
export * from './pkcs11/index.js';
export { encodeShareFile, parseShareFile } from './shareFile.js';
export { assertShareBelongs, type SealRootShamirOptions, sealRootShamir, unsealRootShamir } from './shamir.js';
export {
  type OpenSealedRootOptions,
  openSealedRoot,
  type SealStep,
  type ShareFileOut,
  sealRootFor,
  sealRootWithQuorumMark,
  type UnsealCredential,
  type UnsealerInfo,
  type UnsealerSpec,
  type UnsealerType,
  type UnsealShare,
} from './unsealers.js';
