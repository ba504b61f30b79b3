import { CustosError, invalidInput } from '../errors.js';
import { assertBytes } from './assertBytes.js';
import { loadSecp256k1 } from './loadSecp256k1.js';

/** A secp256k1 ECDSA signature: r ‖ s (64 bytes, low-s) and the recovery id. */
export interface DigestSignature {
  /** 32 bytes, big-endian. */
  r: Uint8Array;
  /** 32 bytes, big-endian, always ≤ n/2 (low-s, as EIP-2 requires). */
  s: Uint8Array;
  /** Parity of R's y coordinate; Ethereum's yParity (v = recovery + 27, or + 35 + 2·chainId under EIP-155). */
  recovery: 0 | 1;
  /** The 64-byte compact signature r ‖ s. */
  signature: Uint8Array;
}

/**
 * Signs a 32-byte digest with libsecp256k1: ECDSA over secp256k1, deterministic nonce per
 * RFC 6979 (HMAC-SHA256), low-s normalised. The caller's key is copied in and the copy wiped.
 */
export function signDigest(privateKey: Uint8Array, digest: Uint8Array): DigestSignature {
  assertBytes(privateKey, 32, 'privateKey');
  assertBytes(digest, 32, 'digest');
  const secp = loadSecp256k1();
  const key = new Uint8Array(privateKey);
  try {
    // SEC 1 §3.2: a private key is an integer in [1, n - 1]
    if (!secp.privateKeyVerify(key)) throw invalidInput('privateKey', 'a secp256k1 private key in [1, n - 1]');
    const { signature, recid } = secp.ecdsaSign(digest, key);
    // recid 2 or 3 means r overflowed n (probability ~2^-127) and has no Ethereum encoding
    if (recid !== 0 && recid !== 1) {
      throw new CustosError('internal', `signature recovery id ${recid} cannot be encoded for Ethereum; nothing was signed`);
    }
    return { r: signature.slice(0, 32), s: signature.slice(32, 64), recovery: recid, signature };
  } finally {
    key.fill(0);
  }
}
