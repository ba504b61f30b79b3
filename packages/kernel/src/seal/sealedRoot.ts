// The sealed root at rest, versions 1 and 2: the envelope's constants and types, its associated data,
// the strict readers of a stored envelope, which unsealer it names, and the AEAD under a KEK held in
// this process (version 2: the Shamir unsealer). The unsealers that use it: passphrase.ts (version 1),
// shamir.ts and pkcs11/ (version 2); the dispatch over them: unsealers.ts.
import { CustosError, invalidInput } from '../errors.js';
import { canonicalJson } from '../util/canonicalJson.js';
import { GCM_IV_BYTES, GCM_TAG_BYTES, openAesGcm, sealAesGcm } from './aesGcm.js';
import { isCanonicalBase64 } from './isCanonicalBase64.js';
import { assertKeyId, KEK_LABEL_MAX_BYTES } from './pkcs11/kek.js';
import { assertPkcs11Label, TOKEN_LABEL_MAX_BYTES } from './pkcs11/token.js';
import { drawRandom, type RandomBytes } from './random.js';
import { SHARE_KEY_BYTES } from './shareFile.js';
import type { UnsealerInfo } from './unsealers.js';

/** Constants of the sealed-root envelope, version 1 (shared by sealRoot and unsealRoot). */
export const SEALED_ROOT_FORMAT = 'custos.sealed-root';
export const SEALED_ROOT_VERSION = 1;
export const SEALED_ROOT_KDF = 'scrypt';
export const SEALED_ROOT_CIPHER = 'aes-256-gcm';
/** Salt drawn by sealRoot (unsealRoot accepts the scrypt bounds, 16..64). */
export const SEALED_ROOT_SALT_BYTES = 32;
/** Largest plaintext sealRoot accepts (an encoded keyring is under 100 bytes). */
export const MAX_ROOT_BYTES = 4096;

/** Length of the key-encryption key: an AES-256 key. */
export const KEK_BYTES = 32;

/**
 * The sealed root at rest: a versioned, JSON-serialisable envelope. Holds no secret in the clear;
 * every header field is authenticated (it is the AEAD's associated data), so lowering N or
 * swapping the salt or IV makes opening fail.
 */
export type SealedRoot = {
  format: 'custos.sealed-root';
  version: 1;
  kdf: { name: 'scrypt'; N: number; r: number; p: number /** base64, 16..64 bytes */; salt: string };
  cipher: { name: 'aes-256-gcm' /** base64, 12 bytes */; iv: string };
  /** base64 of AES-256-GCM ciphertext ‖ 16-byte tag */
  ciphertext: string;
  /** An admin quorum is configured on this signer (issue 13; see sealedRootQuorum). Absent: none. Authenticated. */
  quorum?: true;
};

/** The header of a sealed root: the envelope without its ciphertext. */
export type SealedRootHeader = Omit<SealedRoot, 'ciphertext'>;

/**
 * The associated data of a sealed root: every header field, in a fixed order, as a JSON array
 * (numbers are integers and salt / iv are canonical base64, so the text is canonical). Changing
 * any parameter of the envelope — format, version, KDF name or cost, salt, cipher, IV — changes
 * these bytes and the tag no longer verifies.
 */
export function sealedRootAad(header: SealedRootHeader): Uint8Array {
  const { format, version, kdf, cipher } = header;
  const fields: Array<string | number> = [format, version, kdf.name, kdf.N, kdf.r, kdf.p, kdf.salt, cipher.name, cipher.iv];
  // The quorum mark is one more field; an envelope without it keeps the bytes it always had.
  if (header.quorum === true) fields.push('quorum');
  return new Uint8Array(Buffer.from(JSON.stringify(fields), 'utf8'));
}

/**
 * The sealed root, version 2: the same AES-256-GCM envelope as version 1, but the key-encryption key
 * comes from an **unsealer** other than a passphrase. Version 1 (scrypt of a passphrase) stays the
 * passphrase format; version 2 carries the unsealer's public parameters in its header:
 *   - `shamir`: the KEK is 32 random bytes split M-of-N among operators (shamir-secret-sharing);
 *     `shareSetId` names the set, so that a share of another set (or another signer) is refused
 *     before any combining, and the recombined KEK is checked by the AEAD tag.
 *   - `pkcs11`: the KEK is a non-extractable AES-256 key inside a PKCS#11 token; the HSM itself runs
 *     AES-GCM over the root (C_Encrypt / C_Decrypt), so the KEK never enters this process.
 * Every header field is authenticated: the associated data is `sealedRootAadV2(header)`.
 */
export const SEALED_ROOT_V2 = 2;

export type ShamirUnsealerParams = {
  type: 'shamir';
  /** M: shares needed to unseal (2..255). */
  threshold: number;
  /** N: shares issued (threshold..255). */
  shares: number;
  /** base64 of 16 random bytes, drawn for each new share set (init, rekey). */
  shareSetId: string;
  /**
   * base64 of the Ed25519 public key of the share set's one-time signing key (see signShareSet):
   * every share file of the set carries a signature under it, checked before a share is kept.
   * Absent from a share set made before shares were signed (its files are version 1, unsigned):
   * such a set keeps working until `custos rekey` issues a signed one. Part of the header, so
   * covered by the AEAD's associated data like every other member.
   */
  shareKey?: string;
};

export type Pkcs11UnsealerParams = {
  type: 'pkcs11';
  /** CKA_LABEL of the token (the slot is found by its token's label). */
  tokenLabel: string;
  /** CKA_LABEL of the AES key object. */
  keyLabel: string;
  /** CKA_ID of the AES key object, hex (labels can repeat; the id pins the key). */
  keyId: string;
};

export type UnsealerParamsV2 = ShamirUnsealerParams | Pkcs11UnsealerParams;

export type SealedRootV2 = {
  format: 'custos.sealed-root';
  version: 2;
  unsealer: UnsealerParamsV2;
  cipher: { name: 'aes-256-gcm' /** base64, 12 bytes */; iv: string };
  /** base64 of AES-256-GCM ciphertext ‖ 16-byte tag */
  ciphertext: string;
  /** An admin quorum is configured on this signer (see sealedRootQuorum). Absent: none. Authenticated. */
  quorum?: true;
};

export type SealedRootV2Header = Omit<SealedRootV2, 'ciphertext'>;

/**
 * The associated data of a version-2 sealed root: a domain prefix and the canonical JSON of the
 * whole header (format, version, unsealer parameters, cipher and IV). Changing any of them — the
 * threshold, the share set, the HSM key id, the IV — makes the tag fail.
 */
export function sealedRootAadV2(header: SealedRootV2Header): Uint8Array {
  const { format, version, unsealer, cipher } = header;
  // canonicalJson drops an undefined member: an envelope without the quorum mark keeps its bytes.
  const quorum = header.quorum === true ? true : undefined;
  return new Uint8Array(Buffer.from(`custos.sealed-root.v2\n${canonicalJson({ format, version, unsealer, cipher, quorum })}`, 'utf8'));
}

/**
 * Whether the sealed root is marked "an admin quorum is configured" (issue 13): set when the root is
 * sealed by an init with an admin set or by the bootstrap of one, and carried over by every rekey.
 * The mark is part of the envelope's associated data, so a database writer cannot remove it (nor
 * add it) without the envelope failing to open: once a quorum is configured, its deletion from the
 * database cannot switch it off. Read from the header (no credential needed: the CLI's direct
 * writes ask it); trustworthy once the envelope has opened. Only `true` or absent is valid.
 */
export function sealedRootQuorum(envelope: unknown): boolean {
  const mark = typeof envelope === 'object' && envelope !== null ? (envelope as Record<string, unknown>).quorum : undefined;
  if (mark === undefined) return false;
  if (mark === true) return true;
  throw invalidInput('quorum', 'true or absent', describeValue(mark));
}

// The small strict readers every sealed-root parser shares (unsealRoot for version 1,
// readSealedRootV2 for version 2): one copy, so that both versions refuse the same things the same way.

/** A value as an error message may show it: numbers, short strings, else its type (never a long string). */
export function describeValue(value: unknown): string {
  if (typeof value === 'number') return String(value);
  if (typeof value === 'string') return value.length <= 40 ? JSON.stringify(value) : 'another string';
  return value === null ? 'null' : Array.isArray(value) ? 'an array' : typeof value;
}

/** A plain JSON object whose members are all among `allowed`; names the first stray member. */
export function readObject(value: unknown, field: string, allowed: readonly string[]): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw invalidInput(field, 'an object', describeValue(value));
  const prefix = field === 'envelope' ? '' : `${field}.`;
  for (const key of Object.keys(value)) {
    if (!allowed.includes(key)) throw invalidInput(`${prefix}${key}`, 'no such member (unknown field)');
  }
  return value as Record<string, unknown>;
}

/** Canonical base64 of minBytes..maxBytes bytes, decoded; the length is checked on the text first. */
export function readBase64(value: unknown, field: string, minBytes: number, maxBytes: number): Uint8Array {
  const expected = minBytes === maxBytes ? `base64 of ${minBytes} bytes` : `base64 of ${minBytes}..${maxBytes} bytes`;
  if (typeof value !== 'string') throw invalidInput(field, expected, describeValue(value));
  if (value.length > 4 * Math.ceil(maxBytes / 3)) throw invalidInput(field, expected, `${value.length} characters`);
  if (!isCanonicalBase64(value, 'base64')) throw invalidInput(field, `${expected} (canonical, padded)`, 'malformed base64');
  const bytes = new Uint8Array(Buffer.from(value, 'base64'));
  if (bytes.length < minBytes || bytes.length > maxBytes) throw invalidInput(field, expected, `${bytes.length} bytes`);
  return bytes;
}

function readInt(value: unknown, field: string, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max)
    throw invalidInput(field, `an integer ${min}..${max}`, describeValue(value));
  return value;
}

/**
 * Reads a version-2 sealed root (untrusted JSON from the store) strictly: known members only,
 * canonical base64, bounded sizes, unsealer parameters in range (PKCS#11: labels as
 * assertPkcs11Label accepts them — 1..32 / 1..64 UTF-8 bytes, no control characters, no edge
 * blanks — and the key id as generateKek draws it, 16 bytes in lower-case hex). Returns the envelope rebuilt from
 * the checked values, plus its decoded IV and body. invalid_input names the first bad field.
 */
export function readSealedRootV2(envelope: unknown): { envelope: SealedRootV2; iv: Uint8Array; body: Uint8Array } {
  if (typeof envelope !== 'object' || envelope === null || Array.isArray(envelope))
    throw invalidInput('envelope', 'a sealed-root object', describeValue(envelope));
  const { format, version } = envelope as Record<string, unknown>;
  if (format !== SEALED_ROOT_FORMAT) throw invalidInput('format', JSON.stringify(SEALED_ROOT_FORMAT), describeValue(format));
  if (version !== SEALED_ROOT_V2) throw invalidInput('version', String(SEALED_ROOT_V2), describeValue(version));
  const top = readObject(envelope, 'envelope', ['format', 'version', 'unsealer', 'cipher', 'ciphertext', 'quorum']);
  const quorum = sealedRootQuorum(top);
  const u = readObject(top.unsealer, 'unsealer', ['type', 'threshold', 'shares', 'shareSetId', 'shareKey', 'tokenLabel', 'keyLabel', 'keyId']);
  let unsealer: UnsealerParamsV2;
  if (u.type === 'shamir') {
    readObject(u, 'unsealer', ['type', 'threshold', 'shares', 'shareSetId', 'shareKey']);
    const shares = readInt(u.shares, 'unsealer.shares', 2, 255);
    const threshold = readInt(u.threshold, 'unsealer.threshold', 2, shares);
    readBase64(u.shareSetId, 'unsealer.shareSetId', 16, 16);
    unsealer = { type: 'shamir', threshold, shares, shareSetId: u.shareSetId as string };
    // the share set's signing public key (absent: a set made before shares were signed)
    if (u.shareKey !== undefined) {
      readBase64(u.shareKey, 'unsealer.shareKey', SHARE_KEY_BYTES, SHARE_KEY_BYTES);
      unsealer.shareKey = u.shareKey as string;
    }
  } else if (u.type === 'pkcs11') {
    readObject(u, 'unsealer', ['type', 'tokenLabel', 'keyLabel', 'keyId']);
    // the same rules as when the token is opened and the key generated (one reader for both)
    const tokenLabel = assertPkcs11Label(u.tokenLabel, 'unsealer.tokenLabel', TOKEN_LABEL_MAX_BYTES);
    const keyLabel = assertPkcs11Label(u.keyLabel, 'unsealer.keyLabel', KEK_LABEL_MAX_BYTES);
    const keyId = assertKeyId(u.keyId, 'unsealer.keyId');
    unsealer = { type: 'pkcs11', tokenLabel, keyLabel, keyId };
  } else {
    throw invalidInput('unsealer.type', '"shamir" or "pkcs11"', describeValue(u.type));
  }
  const cipher = readObject(top.cipher, 'cipher', ['name', 'iv']);
  if (cipher.name !== SEALED_ROOT_CIPHER) throw invalidInput('cipher.name', JSON.stringify(SEALED_ROOT_CIPHER), describeValue(cipher.name));
  const iv = readBase64(cipher.iv, 'cipher.iv', GCM_IV_BYTES, GCM_IV_BYTES);
  const body = readBase64(top.ciphertext, 'ciphertext', 1 + GCM_TAG_BYTES, MAX_ROOT_BYTES + GCM_TAG_BYTES);
  return {
    envelope: {
      format: SEALED_ROOT_FORMAT,
      version: SEALED_ROOT_V2,
      unsealer,
      cipher: { name: SEALED_ROOT_CIPHER, iv: cipher.iv as string },
      ciphertext: top.ciphertext as string,
      ...(quorum ? { quorum: true as const } : {}),
    },
    iv,
    body,
  };
}

/**
 * Which unsealer a sealed root needs, from its header (no secret is involved): version 1 is the
 * passphrase; version 2 names Shamir (threshold, shares, share set) or PKCS#11 (token, key).
 */
export function describeUnsealer(envelope: unknown): UnsealerInfo {
  const version = typeof envelope === 'object' && envelope !== null ? (envelope as Record<string, unknown>).version : undefined;
  if (version === SEALED_ROOT_VERSION) return { type: 'passphrase' };
  if (version === SEALED_ROOT_V2) return readSealedRootV2(envelope).envelope.unsealer;
  throw invalidInput('version', `${SEALED_ROOT_VERSION} or ${SEALED_ROOT_V2}`, typeof version === 'number' ? String(version) : typeof version);
}

/**
 * Seals the root under a KEK held in this process (the Shamir unsealer: the KEK is random and then
 * split): AES-256-GCM with a fresh IV and the version-2 header — unsealer parameters included — as
 * associated data. The caller keeps and wipes its root and KEK; the copy of the root is wiped here.
 */
export function sealRootWithKek(root: Uint8Array, kek: Uint8Array, unsealer: UnsealerParamsV2, random: RandomBytes, quorum = false): SealedRootV2 {
  // The root: 1..MAX_ROOT_BYTES bytes
  if (!(root instanceof Uint8Array) || root.length === 0 || root.length > MAX_ROOT_BYTES) {
    throw invalidInput('root', `1..${MAX_ROOT_BYTES} bytes`, root instanceof Uint8Array ? `${root.length} bytes` : typeof root);
  }
  // The KEK: an AES-256 key
  if (!(kek instanceof Uint8Array) || kek.length !== KEK_BYTES) throw invalidInput('kek', `${KEK_BYTES} bytes`);
  const iv = drawRandom(random, GCM_IV_BYTES, 'cipher.iv');
  const header: SealedRootV2Header = {
    format: SEALED_ROOT_FORMAT,
    version: SEALED_ROOT_V2,
    unsealer,
    cipher: { name: SEALED_ROOT_CIPHER, iv: Buffer.from(iv).toString('base64') },
    ...(quorum ? { quorum: true as const } : {}),
  };
  const plaintext = Uint8Array.from(root);
  try {
    const body = sealAesGcm(kek, iv, sealedRootAadV2(header), plaintext);
    return { ...header, ciphertext: body.toString('base64') };
  } finally {
    plaintext.fill(0);
  }
}

/**
 * Opens a version-2 sealed root with a KEK held in this process (the recombined Shamir KEK) and
 * returns the plaintext root (the caller's copy: wipe it). The envelope is read strictly first. A
 * wrong KEK — a corrupted or foreign share recombined into the wrong key — or any change to the
 * envelope, unsealer parameters included, fails the tag: `unseal_failed`, never a wrong root.
 */
export function unsealRootWithKek(envelope: unknown, kek: Uint8Array): Uint8Array {
  if (!(kek instanceof Uint8Array) || kek.length !== KEK_BYTES) throw invalidInput('kek', `${KEK_BYTES} bytes`);
  const { envelope: checked, iv, body } = readSealedRootV2(envelope);
  return openAesGcm(
    kek,
    iv,
    sealedRootAadV2(checked),
    body,
    (cause) =>
      new CustosError('unseal_failed', 'the shares do not open the sealed root (a wrong, corrupted or foreign share), or the envelope was altered', {
        cause,
      }),
  );
}
