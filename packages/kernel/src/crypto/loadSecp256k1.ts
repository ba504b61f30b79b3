import { createRequire } from 'node:module';
import { CustosError } from '../errors.js';

/**
 * The functions of libsecp256k1 (through the `secp256k1` package's native binding, wrapped by its
 * own `lib/index.js`) that Custos uses. The wrapper checks argument types and lengths, turns the
 * addon's status codes into thrown `Error`s, and allocates outputs as plain `Uint8Array`s unless an
 * output buffer is passed.
 */
export interface Secp256k1 {
  /** true iff 0 < key < n. */
  privateKeyVerify(privateKey: Uint8Array): boolean;
  /** privateKey := privateKey + tweak (mod n), IN PLACE; returns the same buffer. Throws if tweak >= n or the sum is 0. */
  privateKeyTweakAdd(privateKey: Uint8Array, tweak: Uint8Array): Uint8Array;
  /** The public key of privateKey, 33 bytes compressed (default) or 65 uncompressed. Throws on an invalid key. */
  publicKeyCreate(privateKey: Uint8Array, compressed?: boolean, output?: Uint8Array): Uint8Array;
  /** Re-serialises a 33- or 65-byte public key. Throws if it is not a point on the curve. */
  publicKeyConvert(publicKey: Uint8Array, compressed?: boolean, output?: Uint8Array): Uint8Array;
  /** true iff the 33- or 65-byte input is a valid point. */
  publicKeyVerify(publicKey: Uint8Array): boolean;
  /** ECDSA with the RFC 6979 nonce (unless `noncefn`/`data` change it); the signature is always low-s. */
  ecdsaSign(digest: Uint8Array, privateKey: Uint8Array, options?: { data?: Uint8Array }, output?: Uint8Array): { signature: Uint8Array; recid: number };
  ecdsaVerify(signature: Uint8Array, digest: Uint8Array, publicKey: Uint8Array): boolean;
  ecdsaRecover(signature: Uint8Array, recid: number, digest: Uint8Array, compressed?: boolean, output?: Uint8Array): Uint8Array;
}

let cached: Secp256k1 | undefined;

// Known answer checked once at load: the public key of the private key 1 is the generator G.
const ONE = new Uint8Array(32);
ONE[31] = 1;
const G_COMPRESSED = '0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798';

/**
 * Returns the libsecp256k1 native binding, loaded once and cached.
 *
 * It requires `secp256k1/bindings` (the addon wrapped by the package's `lib/index.js`) and never the
 * package root, whose `index.js` silently falls back to the pure-JS `elliptic` implementation when
 * the native build is missing: here a missing or broken native build is an error.
 */
export function loadSecp256k1(): Secp256k1 {
  if (cached !== undefined) return cached;
  let binding: Secp256k1;
  try {
    const require = createRequire(import.meta.url);
    binding = require('secp256k1/bindings') as Secp256k1;
    const g = Buffer.from(binding.publicKeyCreate(ONE, true)).toString('hex');
    if (g !== G_COMPRESSED) throw new Error('known-answer test failed: publicKeyCreate(1) is not G');
  } catch (cause) {
    throw new CustosError('internal', 'libsecp256k1 native binding could not be loaded (secp256k1/bindings); no JavaScript fallback is used', { cause });
  }
  cached = binding;
  return binding;
}
