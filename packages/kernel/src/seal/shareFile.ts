// The share file, one per operator of a Shamir share set: its constants and checksum, encodeShareFile
// and parseShareFile side by side. Whether a parsed share belongs to a sealed root: shamir.ts.
import { createHash, timingSafeEqual } from 'node:crypto';
import { CustosError } from '../errors.js';
import { canonicalJson } from '../util/canonicalJson.js';
import { isCanonicalBase64 } from './isCanonicalBase64.js';
import type { UnsealShare } from './unsealers.js';

/** Constants of the share file (one per operator), shared by encodeShareFile and parseShareFile. */
export const SHARE_FILE_FORMAT = 'custos.unseal-share';
/** Version 2: the file carries the share set's signature over the share (see signShareSet, shamir.ts). */
export const SHARE_FILE_VERSION = 2;
/**
 * Version 1: the unsigned files of a share set made before shares were signed. Still read (such a
 * set keeps working until `custos rekey` issues a signed one), never written by init or rekey.
 */
export const SHARE_FILE_VERSION_UNSIGNED = 1;
/** A share file is small (≈ 500 bytes); anything much larger is not one. */
export const MAX_SHARE_FILE_CHARS = 4096;
/** The KEK is 32 bytes; a share of it is 33 (the last byte is the x coordinate). */
export const SHARE_BYTES = 33;
/** An Ed25519 public key (the sealed root's `unsealer.shareKey`) and signature (the file's `signature`). */
export const SHARE_KEY_BYTES = 32;
export const SHARE_SIGNATURE_BYTES = 64;

/** The members a checksum covers: every member of the file but the checksum itself. */
export interface ShareFileBody {
  format: typeof SHARE_FILE_FORMAT;
  version: typeof SHARE_FILE_VERSION | typeof SHARE_FILE_VERSION_UNSIGNED;
  signerId: string;
  shareSetId: string;
  index: number;
  threshold: number;
  shares: number;
  /** base64 of the share bytes */
  share: string;
  /** Version 2 only: base64 of the Ed25519 signature (signShareSet, shamir.ts). */
  signature?: string;
}

/**
 * The checksum of a share file: SHA-256 over a domain prefix and the canonical JSON of every other
 * member, hex. It catches a typo, a truncated copy or a field edited by hand before any combining;
 * it is not a secret check (anyone can recompute it) — the signature (version 2) and the AEAD tag of
 * the sealed root are.
 */
export function shareFileChecksum(body: ShareFileBody): string {
  return createHash('sha256')
    .update(`custos.unseal-share.v1\n${canonicalJson(body)}`, 'utf8')
    .digest('hex');
}

/**
 * The text of one operator's share file: a small JSON object (format, version, signerId, shareSetId,
 * index, threshold, shares, the share in base64, its signature) and a checksum over all of it. A
 * share with a signature is written as version 2; one without as version 1, the format of a set made
 * before shares were signed (init and rekey always sign: only tests write version 1 now). The text
 * holds a secret: it is written only to the operator's file (mode 0600), never logged or printed.
 */
export function encodeShareFile(share: UnsealShare): string {
  const body: ShareFileBody = {
    format: SHARE_FILE_FORMAT,
    version: share.signature === undefined ? SHARE_FILE_VERSION_UNSIGNED : SHARE_FILE_VERSION,
    signerId: share.signerId,
    shareSetId: share.shareSetId,
    index: share.index,
    threshold: share.threshold,
    shares: share.shares,
    share: Buffer.from(share.share).toString('base64'),
  };
  if (share.signature !== undefined) body.signature = Buffer.from(share.signature).toString('base64');
  return `${JSON.stringify({ ...body, checksum: shareFileChecksum(body) }, null, 2)}\n`;
}

const MEMBERS = ['format', 'version', 'signerId', 'shareSetId', 'index', 'threshold', 'shares', 'share', 'signature', 'checksum'];

function invalidShare(field: string, expected: string): CustosError {
  // The message names the member and what was expected, never the value (the share is a secret).
  return new CustosError('share_invalid', `share.${field}: expected ${expected}`, { details: { field: `share.${field}` } });
}

/**
 * Parses one operator's share file (untrusted text: from a file or an API request) and checks its
 * checksum. Version 2 carries a signature (64 bytes, base64); version 1 (a set made before shares
 * were signed) carries none. Everything is validated before the share bytes are decoded:
 * `share_invalid` names the member at fault (never its value). The returned share bytes are a fresh
 * buffer: wipe them when done. Whether the share belongs to this signer and share set, and whether
 * its signature verifies under the set's key, is the caller's check (assertShareBelongs).
 */
export function parseShareFile(text: unknown): UnsealShare {
  // Text of bounded length, JSON, an object with exactly the known members
  if (typeof text !== 'string' || text.length === 0 || text.length > MAX_SHARE_FILE_CHARS) {
    throw invalidShare('file', `the text of a share file (1..${MAX_SHARE_FILE_CHARS} characters)`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw invalidShare('file', 'JSON (the file is truncated or was edited)');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw invalidShare('file', 'a JSON object');
  const o = value as Record<string, unknown>;
  for (const key of Object.keys(o)) if (!MEMBERS.includes(key)) throw invalidShare(key.slice(0, 32), 'no such member (unknown field)');
  // Format and version first: a file of another kind is named as such
  if (o.format !== SHARE_FILE_FORMAT) throw invalidShare('format', JSON.stringify(SHARE_FILE_FORMAT));
  if (o.version !== SHARE_FILE_VERSION && o.version !== SHARE_FILE_VERSION_UNSIGNED)
    throw invalidShare('version', `${SHARE_FILE_VERSION} (or ${SHARE_FILE_VERSION_UNSIGNED}, an unsigned share set)`);
  const version = o.version;
  // Identity and parameters
  if (typeof o.signerId !== 'string' || !/^[0-9a-f-]{36}$/.test(o.signerId)) throw invalidShare('signerId', 'a signer id (UUID)');
  if (typeof o.shareSetId !== 'string' || o.shareSetId.length !== 24 || !isCanonicalBase64(o.shareSetId, 'base64'))
    throw invalidShare('shareSetId', 'base64 of 16 bytes');
  const int = (field: 'index' | 'threshold' | 'shares', min: number, max: number): number => {
    const n = o[field];
    if (typeof n !== 'number' || !Number.isInteger(n) || n < min || n > max) throw invalidShare(field, `an integer ${min}..${max}`);
    return n;
  };
  const shares = int('shares', 2, 255);
  const threshold = int('threshold', 2, shares);
  const index = int('index', 1, shares);
  const shareLength = 4 * Math.ceil(SHARE_BYTES / 3);
  if (typeof o.share !== 'string' || o.share.length !== shareLength || !isCanonicalBase64(o.share, 'base64'))
    throw invalidShare('share', `base64 of ${SHARE_BYTES} bytes`);
  // Version 2: the signature, always; version 1: none
  const signatureLength = 4 * Math.ceil(SHARE_SIGNATURE_BYTES / 3);
  if (version === SHARE_FILE_VERSION_UNSIGNED) {
    if (o.signature !== undefined) throw invalidShare('signature', 'no signature in a version-1 file');
  } else if (typeof o.signature !== 'string' || o.signature.length !== signatureLength || !isCanonicalBase64(o.signature, 'base64')) {
    throw invalidShare('signature', `base64 of ${SHARE_SIGNATURE_BYTES} bytes`);
  }
  if (typeof o.checksum !== 'string' || !/^[0-9a-f]{64}$/.test(o.checksum)) throw invalidShare('checksum', '64 lowercase hex digits');
  // The checksum over every other member: catches a typo or a hand edit before any combining
  const body: ShareFileBody = {
    format: SHARE_FILE_FORMAT,
    version,
    signerId: o.signerId,
    shareSetId: o.shareSetId,
    index,
    threshold,
    shares,
    share: o.share,
  };
  if (typeof o.signature === 'string') body.signature = o.signature;
  const expected = Buffer.from(shareFileChecksum(body), 'hex');
  if (!timingSafeEqual(expected, Buffer.from(o.checksum, 'hex'))) {
    throw new CustosError('share_invalid', 'share.checksum: the share file does not match its checksum (typo, truncation or edit)', {
      details: { field: 'share.checksum' },
    });
  }
  const decoded = Buffer.from(o.share, 'base64');
  const share = Uint8Array.from(decoded);
  decoded.fill(0);
  // 33 bytes (the text length alone allows 32), and x = 0 would be the secret itself:
  // shamir-secret-sharing never issues it
  if (share.length !== SHARE_BYTES || share[SHARE_BYTES - 1] === 0) {
    share.fill(0);
    throw invalidShare('share', `${SHARE_BYTES} bytes with a non-zero x coordinate`);
  }
  const parsed: UnsealShare = { signerId: o.signerId, shareSetId: o.shareSetId, index, threshold, shares, share };
  if (typeof o.signature === 'string') {
    const signature = new Uint8Array(Buffer.from(o.signature, 'base64'));
    if (signature.length !== SHARE_SIGNATURE_BYTES) {
      share.fill(0);
      throw invalidShare('signature', `base64 of ${SHARE_SIGNATURE_BYTES} bytes`);
    }
    parsed.signature = signature;
  }
  return parsed;
}
