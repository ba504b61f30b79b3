export { ckdPriv } from './ckdPriv.js';
export { createKeyDeriver, type KeyDeriver, type KeyDeriverOptions } from './createKeyDeriver.js';
export { formatPath } from './formatPath.js';
export { getPublicKey } from './getPublicKey.js';
export { hashToHardenedWords } from './hashToHardenedWords.js';
export { loadSecp256k1, type Secp256k1 } from './loadSecp256k1.js';
export { masterKeyFromSeed } from './masterKeyFromSeed.js';
export { masterKeyFromXprv } from './masterKeyFromXprv.js';
export { type DigestSignature, signDigest } from './signDigest.js';
export { toEthereumAddress } from './toEthereumAddress.js';
// DerivationScheme (types.ts) is the same union as store/types.ts's, which the package root already exports.
export { HARDENED_OFFSET, type HDNode } from './types.js';
export { walletPath } from './walletPath.js';
