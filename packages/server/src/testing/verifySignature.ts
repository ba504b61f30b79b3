import { secp256k1 } from '@noble/curves/secp256k1.js';

/**
 * Independent check (noble, not the kernel's libsecp256k1) that (r, s) signs `hashHex` under
 * `publicKeyHex`, that s is low, and — when given — that the recovery id recovers that key.
 */
export function verifySignature({
  r,
  s,
  hash,
  publicKey,
  recoveryId,
}: {
  r: string;
  s: string;
  hash: string;
  publicKey: string;
  recoveryId?: number;
}): boolean {
  const compact = Buffer.from(`${r}${s}`, 'hex');
  const msg = Buffer.from(hash.replace(/^0x/, ''), 'hex');
  const pub = Buffer.from(publicKey, 'hex');
  const ok = secp256k1.verify(compact, msg, pub, { prehash: false, lowS: true, format: 'compact' });
  if (!ok) return false;
  if (recoveryId === undefined) return true;
  const recovered = secp256k1.Signature.fromBytes(compact, 'compact').addRecoveryBit(recoveryId).recoverPublicKey(msg).toBytes(true);
  return Buffer.from(recovered).toString('hex') === publicKey;
}

/** The recovery id (0 or 1) whose recovered key is `publicKey` — what the TOTP ETH Signer's SDK computes as v. */
export function findRecoveryId({ r, s, hash, publicKey }: { r: string; s: string; hash: string; publicKey: string }): number | undefined {
  for (const id of [0, 1]) if (verifySignature({ r, s, hash, publicKey, recoveryId: id })) return id;
  return undefined;
}
