import { invalidInput } from '../errors.js';
import { assertBytes } from './assertBytes.js';
import { loadSecp256k1 } from './loadSecp256k1.js';

/** The secp256k1 public key of `privateKey`: 33 bytes compressed (default) or 65 bytes uncompressed. */
export function getPublicKey(privateKey: Uint8Array, compressed = true): Uint8Array {
  assertBytes(privateKey, 32, 'privateKey');
  const secp = loadSecp256k1();
  const key = new Uint8Array(privateKey);
  try {
    if (!secp.privateKeyVerify(key)) throw invalidInput('privateKey', 'a secp256k1 private key in [1, n - 1]');
    return secp.publicKeyCreate(key, compressed === true);
  } finally {
    key.fill(0);
  }
}
