// The PKCS#11 unsealer (sealed root version 2): the KEK is a non-extractable AES-256 key inside a token,
// which runs AES-GCM over the root. sealRootWithPkcs11 and unsealRootWithPkcs11 side by side.
import { timingSafeEqual } from 'node:crypto';
import type { AesGCM, Mechanism } from 'pkcs11js';
import { CustosError, invalidInput } from '../../errors.js';
import { GCM_IV_BYTES, GCM_TAG_BYTES } from '../aesGcm.js';
import { drawRandom, type RandomBytes } from '../random.js';
import {
  MAX_ROOT_BYTES,
  type Pkcs11UnsealerParams,
  readSealedRootV2,
  SEALED_ROOT_CIPHER,
  SEALED_ROOT_FORMAT,
  SEALED_ROOT_V2,
  type SealedRootV2,
  type SealedRootV2Header,
  sealedRootAadV2,
} from '../sealedRoot.js';
import { assertKeyId, findSecretKeys, KEK_LABEL_MAX_BYTES, kekDefect, readKekAttributes } from './kek.js';
import { assertPkcs11Label, loadPkcs11js, type Pkcs11Token, pkcs11Error, pkcs11ReturnCode } from './token.js';

/**
 * CKM_AES_GCM with a 96-bit IV, the given associated data and a 128-bit tag. `tagBits` must be
 * spelled out: pkcs11js leaves it 0 when missing and SoftHSM2 then produces a 0-bit tag — an
 * encryption with no authentication at all (docs/operations.md, PKCS#11 HSM). The callers also check the output length.
 */
export function aesGcmMechanism(iv: Uint8Array, aad: Uint8Array): Mechanism {
  const p = loadPkcs11js();
  const parameter: AesGCM = {
    type: p.CK_PARAMS_AES_GCM_v240,
    iv: Buffer.from(iv),
    ivBits: GCM_IV_BYTES * 8,
    aad: Buffer.from(aad),
    tagBits: GCM_TAG_BYTES * 8,
  };
  return { mechanism: p.CKM_AES_GCM, parameter };
}

export interface SealRootWithPkcs11Options {
  /** CKA_LABEL of the KEK (from generateKek). */
  keyLabel: string;
  /** CKA_ID of the KEK, hex (from generateKek). */
  keyId: string;
  /** Label of the token the KEK lives on; must be the open token's. Defaults to it. */
  tokenLabel?: string;
  /** Secure random bytes for the IV. */
  random: RandomBytes;
  /** Mark the envelope "an admin quorum is configured" (sealedRootQuorum). */
  quorum?: boolean;
}

/**
 * Seals the root (an encoded RootKeyring) with a KEK that never leaves the token: the HSM runs
 * AES-256-GCM (C_Encrypt, 96-bit IV drawn from `random`, 128-bit tag) over the root, with
 * `sealedRootAadV2(header)` as associated data, so that the token, key label, key id and IV in the
 * header are all authenticated. The key must be a proper KEK (AES-256, sensitive, never
 * extractable). Before returning, the envelope is opened once by the token and compared with the
 * root, so that an HSM that silently truncated the tag or ignored the AAD is caught at seal time,
 * not at the next unseal. Returns a JSON-serialisable SealedRootV2 with no secret in the clear.
 */
export async function sealRootWithPkcs11(root: Uint8Array, token: Pkcs11Token, options: SealRootWithPkcs11Options): Promise<SealedRootV2> {
  const { keyLabel, keyId, tokenLabel = token.tokenLabel, random, quorum = false } = options;
  // The root: 1..MAX_ROOT_BYTES bytes
  if (!(root instanceof Uint8Array) || root.length === 0 || root.length > MAX_ROOT_BYTES) {
    throw invalidInput('root', `1..${MAX_ROOT_BYTES} bytes`, root instanceof Uint8Array ? `${root.length} bytes` : typeof root);
  }
  // The key: its label and id as generateKek gave them; the token: the open one
  assertPkcs11Label(keyLabel, 'keyLabel', KEK_LABEL_MAX_BYTES);
  assertKeyId(keyId, 'keyId');
  if (tokenLabel !== token.tokenLabel)
    throw invalidInput('tokenLabel', `the open token's label ${JSON.stringify(token.tokenLabel)}`, JSON.stringify(tokenLabel));
  // The random source: a function
  if (typeof random !== 'function') throw invalidInput('random', 'a function (n) => Uint8Array', typeof random);
  const { module, session } = token.use();
  const keys = findSecretKeys(module, session, { keyId, keyLabel });
  if (keys.length !== 1) {
    throw invalidInput('keyId', `the CKA_ID of exactly one AES key labelled ${JSON.stringify(keyLabel)} on the token`, `${keys.length} keys`);
  }
  const key = keys[0] as Buffer;
  const defect = kekDefect(readKekAttributes(module, session, key), 'encrypt');
  if (defect !== undefined) throw invalidInput('keyId', 'a sensitive, never-extractable AES-256 key', defect);

  const iv = drawRandom(random, GCM_IV_BYTES, 'cipher.iv');
  const header: SealedRootV2Header = {
    format: SEALED_ROOT_FORMAT,
    version: SEALED_ROOT_V2,
    unsealer: { type: 'pkcs11', tokenLabel, keyLabel, keyId },
    cipher: { name: SEALED_ROOT_CIPHER, iv: Buffer.from(iv).toString('base64') },
    ...(quorum ? { quorum: true as const } : {}),
  };
  const mechanism = aesGcmMechanism(iv, sealedRootAadV2(header));
  // Copy the root now: the caller's buffer is theirs
  const plaintext = Buffer.from(root);
  let check: Buffer | undefined;
  try {
    let body: Buffer;
    try {
      module.C_EncryptInit(session, mechanism, key);
      // the output holds the ciphertext and the tag: sized for both, so no CKR_BUFFER_TOO_SMALL
      // (which would leave the operation active on the session)
      body = Buffer.from(module.C_Encrypt(session, plaintext, Buffer.alloc(plaintext.length + GCM_TAG_BYTES)));
    } catch (error) {
      throw pkcs11Error('hsm_unavailable', 'C_Encrypt (AES-GCM)', error);
    }
    // The tag: exactly 128 bits after the ciphertext (a 0-bit tag would authenticate nothing)
    if (body.length !== plaintext.length + GCM_TAG_BYTES) {
      throw new CustosError('internal', `PKCS#11: AES-GCM returned ${body.length} bytes for ${plaintext.length}, expected a 16-byte tag; nothing was sealed`);
    }
    // The check: the token opens what it sealed, with this header as AAD, to the same bytes
    try {
      module.C_DecryptInit(session, mechanism, key);
      check = module.C_Decrypt(session, body, Buffer.alloc(body.length));
    } catch (error) {
      throw pkcs11Error('hsm_unavailable', 'C_Decrypt (seal check)', error);
    }
    if (check.length !== plaintext.length || !timingSafeEqual(check, plaintext)) {
      throw new CustosError('internal', 'PKCS#11: the token did not decrypt the sealed root to the root; nothing was sealed');
    }
    return { ...header, ciphertext: body.toString('base64') };
  } finally {
    plaintext.fill(0);
    check?.fill(0);
  }
}

/** A version-2 sealed root whose unsealer is a PKCS#11 token, parsed: its header, IV and body. */
export interface ParsedPkcs11SealedRoot {
  header: SealedRootV2Header & { unsealer: Pkcs11UnsealerParams };
  iv: Uint8Array;
  /** ciphertext ‖ 16-byte tag */
  body: Uint8Array;
}

/**
 * Parses an untrusted version-2 envelope with a `pkcs11` unsealer: the one strict reader of version
 * 2 (readSealedRootV2: known members only, every field of the expected type and size, invalid_input
 * naming the field), then the unsealer must be `pkcs11`. Nothing here says the envelope is
 * authentic: the AES-GCM tag does, over the header rebuilt from the parsed fields.
 */
export function parsePkcs11SealedRoot(envelope: unknown): ParsedPkcs11SealedRoot {
  const { envelope: checked, iv, body } = readSealedRootV2(envelope);
  const { unsealer } = checked;
  if (unsealer.type !== 'pkcs11') throw invalidInput('unsealer.type', '"pkcs11"', JSON.stringify(unsealer.type));
  const { ciphertext: _ciphertext, ...header } = checked;
  return { header: { ...header, unsealer }, iv, body };
}

/** Return codes of C_Decrypt that mean "the token is unusable" rather than "this does not open". */
const TOKEN_TROUBLE = /^CKR_(DEVICE_|TOKEN_|SESSION_|CRYPTOKI_|USER_NOT_LOGGED_IN|HOST_MEMORY|DEVICE_MEMORY)/;

/**
 * Opens a version-2 sealed root whose unsealer is this PKCS#11 token and returns the root (the
 * caller's own copy: wipe it when done). The envelope is untrusted: it is parsed strictly
 * (invalid_input naming the field). The key is looked up by CKA_ID and CKA_LABEL and must be a
 * proper KEK; the token runs AES-256-GCM decryption with the header as associated data. Another
 * token, a missing or ambiguous key, and any change to the envelope — a header field, the IV, the
 * ciphertext or the tag — are 'unseal_failed'; nothing but the authentic root is ever returned.
 */
export async function unsealRootWithPkcs11(envelope: unknown, token: Pkcs11Token): Promise<Uint8Array> {
  const { header, iv, body } = parsePkcs11SealedRoot(envelope);
  const { tokenLabel, keyLabel, keyId } = header.unsealer;
  const { module, session } = token.use();
  // The token: the one the envelope names
  if (tokenLabel !== token.tokenLabel) {
    throw new CustosError('unseal_failed', `the sealed root names token ${JSON.stringify(tokenLabel)}, not the open token ${JSON.stringify(token.tokenLabel)}`);
  }
  // The key: exactly one AES key with that id and label, fit to be a KEK
  const keys = findSecretKeys(module, session, { keyId, keyLabel });
  if (keys.length !== 1) {
    throw new CustosError('unseal_failed', `the token holds ${keys.length} AES keys with the sealed root's key id and label, expected one`, {
      details: { keyLabel, keyId },
    });
  }
  const key = keys[0] as Buffer;
  const defect = kekDefect(readKekAttributes(module, session, key), 'decrypt');
  if (defect !== undefined) throw new CustosError('unseal_failed', `the key named by the sealed root is not a proper KEK: ${defect}`, { details: { keyId } });

  let opened: Buffer | undefined;
  const out = Buffer.alloc(body.length);
  try {
    try {
      module.C_DecryptInit(session, aesGcmMechanism(iv, sealedRootAadV2(header)), key);
      opened = module.C_Decrypt(session, Buffer.from(body), out);
    } catch (error) {
      // SoftHSM2 reports a bad tag as CKR_GENERAL_ERROR, others as CKR_ENCRYPTED_DATA_INVALID
      const code = pkcs11ReturnCode(error);
      if (code !== undefined && TOKEN_TROUBLE.test(code)) throw pkcs11Error('hsm_unavailable', 'C_Decrypt (AES-GCM)', error);
      throw pkcs11Error('unseal_failed', 'C_Decrypt (AES-GCM)', error, 'this key does not open the sealed root, or the envelope was altered');
    }
    if (opened.length !== body.length - GCM_TAG_BYTES) {
      throw new CustosError('unseal_failed', `PKCS#11: AES-GCM returned ${opened.length} bytes for a ${body.length - GCM_TAG_BYTES}-byte root`);
    }
    const root = new Uint8Array(opened.length);
    root.set(opened);
    return root;
  } finally {
    out.fill(0);
  }
}
