import { sha256 } from '@noble/hashes/sha2.js';
import { CustosError, invalidInput } from '../errors.js';
import type { ApprovalRecord } from '../store/types.js';
import { canonicalJson } from '../util/canonicalJson.js';
import { concatBytes, hexToBytes } from '@noble/hashes/utils.js';
import { toHex } from '../util/hex.js';

/**
 * The challenge the owner's factor answers on the approval page (passkeys; hardware keys next):
 *
 *   SHA-256( utf8("custos.approval.v1\0") ‖ signerId (16 bytes) ‖ approvalId (16 bytes) ‖ opHash (32 bytes) ‖ nonce (32 bytes) )
 *
 * The nonce is the kernel's (32 random bytes), stored with the approval under its MAC; the digest is
 * recomputed from the stored row when the answer arrives, never taken from the client. So an answer
 * is good for this signer, this approval and this operation only, and once: issuing a new challenge
 * replaces the nonce, and a decision (right or wrong) spends it.
 */

const LABEL = new TextEncoder().encode('custos.approval.v1\0');
const ENROLLMENT_LABEL = new TextEncoder().encode('custos.enrollment.v1\0');
const HWKEY_LABEL = new TextEncoder().encode('custos.hwkey.v1\0');
const HWKEY_ENROLL_LABEL = new TextEncoder().encode('custos.hwkey-enroll.v1\0');

/** A challenge as stored with the approval (`ApprovalRecord.challenge`, canonical JSON). */
export interface StoredChallenge {
  kind: string;
  /** 64 lowercase hex digits. */
  nonce: string;
  issuedAt: number;
  /**
   * hwkey only: who asked for it — `page` (the approval page, in the browser the card was enrolled
   * in: its device cookie was sent) or `relay` (the API, or the page without that cookie). Only an
   * answer to a `page` challenge, posted with the cookie, counts as posted on the page
   * (kernel/hwkeyDevice.ts). Absent on challenges of other kinds (and of before: treated as `relay`).
   */
  via?: 'page' | 'relay';
}

/** The signer id (a UUID) as its 16 bytes. */
function signerIdBytes(signerId: string): Uint8Array {
  const hex = signerId.replace(/-/g, '');
  if (!/^[0-9a-f]{32}$/i.test(hex)) throw new CustosError('internal', 'the signer id is not a UUID');
  return hexToBytes(hex.toLowerCase());
}

/** The digest a factor must answer for `approval` with `nonce` (hex). */
export function approvalChallengeDigest(signerId: string, approval: { id: string; opHash: string }, nonce: string): Uint8Array {
  return sha256(concatBytes(LABEL, signerIdBytes(signerId), hexToBytes(approval.id), hexToBytes(approval.opHash), hexToBytes(nonce)));
}

/**
 * The digest a hardware key (hwkey, TAPSIGNER style) signs raw for `approval` with `nonce` (hex):
 *
 *   SHA-256( utf8("custos.hwkey.v1\0") ‖ signerId (16 bytes) ‖ approvalId (16 bytes) ‖ opHash (32 bytes) ‖ nonce (32 bytes) )
 *
 * Its own label: a card's signature over it is never a passkey's challenge, nor a Bitcoin sighash
 * the kernel chose with meaning elsewhere (the card signs any 32 bytes it is given).
 */
export function hwkeyChallengeDigest(signerId: string, approval: { id: string; opHash: string }, nonce: string): Uint8Array {
  return sha256(concatBytes(HWKEY_LABEL, signerIdBytes(signerId), hexToBytes(approval.id), hexToBytes(approval.opHash), hexToBytes(nonce)));
}

/**
 * The digest a card signs on the enrolment page to prove it holds the key being enrolled:
 * SHA-256(utf8("custos.hwkey-enroll.v1\0") ‖ signerId ‖ linkId (16 bytes) ‖ the link's failures so
 * far (4 bytes, big-endian)) — enrollmentConsentDigest's pattern under its own label: a wrong answer
 * is counted on the link, which changes the digest.
 */
export function hwkeyEnrollmentDigest(signerId: string, linkId: string, failures: number): Uint8Array {
  return linkDigest(HWKEY_ENROLL_LABEL, signerId, linkId, failures);
}

/** The digest a factor proves possession with on the enrolment page (hwkey), or undefined for a factor that has its own ceremony. */
export function enrollmentChallengeFor(kind: string, signerId: string, linkId: string, failures: number): Uint8Array | undefined {
  return kind === 'hwkey' ? hwkeyEnrollmentDigest(signerId, linkId, failures) : undefined;
}

/** The digest a factor that answers the kernel's challenge signs for `approval`: the hwkey's, else the approval challenge. */
export function challengeDigestFor(kind: string, signerId: string, approval: { id: string; opHash: string }, nonce: string): Uint8Array {
  return kind === 'hwkey' ? hwkeyChallengeDigest(signerId, approval, nonce) : approvalChallengeDigest(signerId, approval, nonce);
}

/**
 * The digest an existing `bound` factor (a passkey) answers to consent to adding another factor
 * through one enrolment link: SHA-256(utf8("custos.enrollment.v1\0") ‖ signerId ‖ linkId (16
 * bytes) ‖ the link's failures so far (4 bytes, big-endian)). The link's id is random and the link
 * completes once; every post in which a consent was checked and that does not complete the link is
 * counted as a failure on it (completeEnrollment), so the count — and with it the digest — changes:
 * an accepted consent answers once, even for a passkey whose counter stays 0. The label keeps it
 * apart from any approval's.
 */
export function enrollmentConsentDigest(signerId: string, linkId: string, failures: number): Uint8Array {
  return linkDigest(ENROLLMENT_LABEL, signerId, linkId, failures);
}

/** SHA-256(label ‖ signerId ‖ linkId ‖ failures as 4 bytes big-endian). */
function linkDigest(label: Uint8Array, signerId: string, linkId: string, failures: number): Uint8Array {
  if (!Number.isSafeInteger(failures) || failures < 0 || failures > 0xffffffff) throw new CustosError('internal', 'a link failure count out of range');
  const count = new Uint8Array(4);
  new DataView(count.buffer).setUint32(0, failures);
  return sha256(concatBytes(label, signerIdBytes(signerId), hexToBytes(linkId), count));
}

/** A new stored challenge for `kind` with a nonce from `random`. */
export function newStoredChallenge(
  kind: string,
  random: (n: number) => Uint8Array,
  now: number,
  via?: 'page' | 'relay',
): { text: string; challenge: StoredChallenge } {
  const challenge: StoredChallenge = { kind, nonce: toHex(random(32)), issuedAt: now, ...(via === undefined ? {} : { via }) };
  return { text: canonicalJson(challenge), challenge };
}

/** The approval's unspent challenge for `kind`, or undefined. */
export function storedChallenge(record: ApprovalRecord, kind: string): StoredChallenge | undefined {
  if (record.challenge === null) return undefined;
  const parsed = JSON.parse(record.challenge) as StoredChallenge;
  return parsed.kind === kind && typeof parsed.nonce === 'string' && /^[0-9a-f]{64}$/.test(parsed.nonce) ? parsed : undefined;
}

/** The `kind` of an issue-challenge request: a registered factor that answers the kernel's challenge. */
export function assertChallengeKind(kind: unknown, kinds: readonly string[]): string {
  if (typeof kind !== 'string' || !kinds.includes(kind))
    throw invalidInput('kind', kinds.length === 0 ? 'a factor that answers a challenge (none is registered)' : `one of ${kinds.join(', ')}`, typeof kind);
  return kind;
}
