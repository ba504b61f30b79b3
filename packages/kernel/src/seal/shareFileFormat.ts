import { createHash } from 'node:crypto';
import { canonicalJson } from '../util/canonicalJson.js';

/** Constants of the share file (one per operator), shared by encodeShareFile and parseShareFile. */
export const SHARE_FILE_FORMAT = 'custos.unseal-share';
/** Version 2: the file carries the share set's signature over the share (see shareSignature.ts). */
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
  /** Version 2 only: base64 of the Ed25519 signature (shareSignature.ts). */
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
