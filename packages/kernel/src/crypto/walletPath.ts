import { createHash } from 'node:crypto';
import { invalidInput } from '../errors.js';
import { hashToHardenedWords } from './hashToHardenedWords.js';
import { type DerivationScheme, HARDENED_OFFSET } from './types.js';

/** custos-v1 purpose: ASCII "CUST" read as a big-endian uint32 (0x43555354 = 1129665364), hardened. */
const CUSTOS_V1_PURPOSE = 0x43555354;
const CUSTOS_V1_DOMAIN = Buffer.from('custos-v1:', 'utf8');

/**
 * The BIP32 path (child indexes, hardened ones with bit 2^31 set) of key `keyIndex` of wallet
 * `walletName` under `scheme`. Names are used as given (UTF-8 bytes, no Unicode normalisation,
 * no trimming or case folding). See docs/derivation.md.
 *
 * - custos-v1: h = SHA-256(UTF-8("custos-v1:") ‖ UTF-8(walletName));
 *   m / 1129665364' / a' / b' / c' / d' / e' / keyIndex' where a..e are the first five
 *   little-endian uint32 words of h (hardened bit set, 5 × 31 = 155 bits of h). All hardened.
 * - fortanix-v1 (Fortanix DSM "TOTP ETH Signer" plugin): h = SHA-256(base64(UTF-8(walletName)));
 *   m / w0 / … / w7 / keyIndex where w0..w7 are the big-endian uint32 words of h taken as indexes
 *   as they are (a word >= 2^31 is a hardened index); keyIndex is non-hardened.
 */
export function walletPath(scheme: DerivationScheme, walletName: string, keyIndex: number): number[] {
  if (scheme !== 'custos-v1' && scheme !== 'fortanix-v1') {
    throw invalidInput('scheme', "'custos-v1' or 'fortanix-v1'", typeof scheme === 'string' ? scheme : typeof scheme);
  }
  if (typeof walletName !== 'string') throw invalidInput('walletName', 'a non-empty string', typeof walletName);
  if (walletName.length === 0) throw invalidInput('walletName', 'a non-empty string', 'an empty string');
  // a lone surrogate has no UTF-8 encoding (it would become U+FFFD, so distinct names would collide)
  if (!walletName.isWellFormed()) throw invalidInput('walletName', 'well-formed Unicode (no lone surrogates)');
  if (typeof keyIndex !== 'number' || !Number.isInteger(keyIndex) || keyIndex < 0 || keyIndex >= HARDENED_OFFSET) {
    throw invalidInput('keyIndex', 'an integer in [0, 2^31)', typeof keyIndex === 'number' ? String(keyIndex) : typeof keyIndex);
  }
  if (scheme === 'custos-v1') {
    const h = createHash('sha256').update(CUSTOS_V1_DOMAIN).update(walletName, 'utf8').digest();
    return [(CUSTOS_V1_PURPOSE | HARDENED_OFFSET) >>> 0, ...hashToHardenedWords(h, 5), (keyIndex | HARDENED_OFFSET) >>> 0];
  }
  const h = createHash('sha256').update(Buffer.from(walletName, 'utf8').toString('base64'), 'ascii').digest();
  const path: number[] = [];
  for (let i = 0; i < 8; i++) path.push(h.readUInt32BE(4 * i));
  path.push(keyIndex);
  return path;
}
