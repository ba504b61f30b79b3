import { secp256k1 } from '@noble/curves/secp256k1.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex, hexToBytes } from '@noble/hashes/utils.js';
import { createBase58check } from '@scure/base';
import { HDKey } from '@scure/bip32';
import { CustosError, invalidInput } from '../errors.js';
import type { HwkeyFactorRecord, HwkeyFactorState, StoreTx, WalletRows } from '../store/types.js';
import type { Factor, FactorRecord, FactorRows, ProofChannel, Strength } from './Factor.js';

/**
 * A hardware key (`hwkey`, TAPSIGNER style) as a Factor. The owner enrols the card's account xpub
 * (BIP32, as the card's `xpub` command returns it: mainnet `xpub` or testnet `tpub` version bytes)
 * and a non-hardened subpath of at most 2 steps, or a bare compressed public key; the key derived
 * from them (@scure/bip32) is the factor, and every answer is verified against it — never against
 * a key the answer names (a 65-byte answer's header byte is checked for form and then ignored).
 *
 * The card signs the raw 32-byte digest the kernel derives for one approval
 * (kernel/approvalChallenge.ts hwkeyChallengeDigest, from a nonce the kernel chose and stored with
 * the approval): r‖s, low-s (a high-s answer is refused with its own code), verified with
 * @noble/curves (prehash off). The nonce is spent by any decision, so an answer is single use.
 *
 * Strength: the card has no screen. An answer posted on the kernel's approval page, which showed
 * the summary and the digest, by a card the owner enrolled on the kernel's page is `bound`; an
 * answer the backend relays (POST /v1/approvals/{id}/hwkey), or any answer of a card the backend
 * enrolled (`api`: it may have enrolled a key of its own), is `present`.
 *
 * Challenge issuance is limited per wallet (HWKEY_CHALLENGE_LIMIT), counted in the factor's row
 * (under its MAC), so the limit holds across replicas.
 */

const KIND = 'hwkey';

/** At most `max` challenges per wallet in a window of `windowMs` (fixed window, counted in the hwkey row). */
export const HWKEY_CHALLENGE_LIMIT = { max: 20, windowMs: 600_000 } as const;

/** BIP32 version bytes of the extended keys a card returns: public (accepted) and private (refused). */
const VERSIONS = {
  xpub: { public: 0x0488b21e, private: 0x0488ade4 },
  tpub: { public: 0x043587cf, private: 0x04358394 },
} as const;
const PRIVATE_VERSIONS: readonly number[] = [VERSIONS.xpub.private, VERSIONS.tpub.private];
const base58check = createBase58check(sha256);
/** An xpub is 111 base58 characters; bounded before any decoding. */
const XPUB_TEXT = /^[1-9A-HJ-NP-Za-km-z]{100,120}$/;
/** One non-hardened step: a decimal below 2^31 without leading zeros. */
const STEP = /^(0|[1-9][0-9]{0,9})$/;
const MAX_STEPS = 2;
/** Header bytes host libraries put before r‖s: 27–34 (27 + recid, + 4 compressed), 39–42 (segwit forms). */
const HEADER_RANGES: readonly (readonly [number, number])[] = [
  [27, 34],
  [39, 42],
];
const HALF_N = secp256k1.Point.CURVE().n >> 1n;
const N = secp256k1.Point.CURVE().n;

/** What the backend (API) or the owner (enrolment page) gives to enrol a card: an xpub and subpath, or a public key. */
export interface HwkeyEnrollInput {
  xpub?: unknown;
  publicKey?: unknown;
  subpath?: unknown;
  /** On the enrolment page: the card's signature over the enrolment digest (hex). */
  signature?: unknown;
}

/** The factor's enrolment challenge on the page, for `show`: filled in by the kernel. */
export interface HwkeyShown {
  /** The digest the card must sign to prove it holds the key (hex), on the enrolment page; null through the API. */
  digest: string | null;
}

/** The hwkey_factors table, mapped to FactorRecord (id: the derived compressed public key, hex). */
const hwkeyRows: FactorRows<HwkeyFactorState> = {
  stored: hwkeyState,
  async read(tx: StoreTx, walletName: string) {
    const row = await tx.getHwkeyFactorForUpdate(walletName);
    return row === undefined ? [] : [hwkeyRecordOf(row)];
  },
  fromWalletRows(rows: WalletRows) {
    return rows.hwkey === undefined ? [] : [hwkeyRecordOf(rows.hwkey)];
  },
  async insert(tx, record) {
    await tx.insertHwkeyFactor({
      walletName: record.walletName,
      id: record.id,
      ...hwkeyState(record.state),
      enrolledVia: record.enrolledVia,
      createdAt: record.createdAt,
      mac: record.mac,
    });
  },
  async saveState(tx, record, state, mac) {
    await tx.updateHwkeyFactorState(record.walletName, { windowStart: state.windowStart, issued: state.issued }, mac);
  },
};

function hwkeyState({ xpub, subpath, windowStart, issued }: HwkeyFactorState): HwkeyFactorState {
  return { xpub, subpath, windowStart, issued };
}

function hwkeyRecordOf(row: HwkeyFactorRecord): FactorRecord<HwkeyFactorState> {
  return {
    kind: KIND,
    id: row.id,
    version: 1,
    walletName: row.walletName,
    secretEnvelope: null,
    state: hwkeyState(row),
    createdAt: row.createdAt,
    enrolledVia: row.enrolledVia,
    mac: row.mac,
  };
}

// ── enrolment input ──────────────────────────────────────────────────────────────────────

/**
 * A subpath in its canonical form: "" (none) or up to 2 non-hardened decimal steps joined by "/"
 * ("0/5"); accepted with a leading "m/" ("m/0/5", "m"). Throws invalid_input naming `subpath`.
 */
export function canonicalSubpath(subpath: unknown): { text: string; steps: number[] } {
  if (subpath === undefined || subpath === null) return { text: '', steps: [] };
  if (typeof subpath !== 'string' || subpath.length > 40) throw invalidInput('subpath', 'a non-hardened path of at most 2 steps, e.g. "0/5"', typeof subpath);
  if (subpath === 'm' || subpath === '') return { text: '', steps: [] };
  const body = subpath.startsWith('m/') ? subpath.slice(2) : subpath;
  const parts = body.split('/');
  if (parts.length > MAX_STEPS) throw invalidInput('subpath', `at most ${MAX_STEPS} steps below the account xpub`, `${parts.length}`);
  const steps = parts.map((part) => {
    if (/['hH]$/.test(part)) throw invalidInput('subpath', 'non-hardened steps only (the card derives them from its xpub)', 'a hardened step');
    if (!STEP.test(part) || Number(part) >= 0x80000000) throw invalidInput('subpath', 'decimal steps below 2^31, e.g. "0/5"');
    return Number(part);
  });
  return { text: steps.join('/'), steps };
}

/** An account xpub as the card returns it: base58check, 78 bytes, mainnet or testnet public version; a private key is refused. */
export function parseXpub(xpub: unknown): { text: string; key: HDKey } {
  if (typeof xpub !== 'string' || !XPUB_TEXT.test(xpub)) throw invalidInput('xpub', 'an extended public key (xpub or tpub, base58)', typeof xpub);
  let bytes: Uint8Array;
  try {
    bytes = base58check.decode(xpub);
  } catch {
    throw invalidInput('xpub', 'an extended public key with a valid checksum');
  }
  if (bytes.length !== 78) throw invalidInput('xpub', 'an extended key of 78 bytes', `${bytes.length}`);
  const version = new DataView(bytes.buffer, bytes.byteOffset).getUint32(0);
  bytes.fill(0);
  // A private extended key must never be given to the signer: refused before it is parsed.
  if (PRIVATE_VERSIONS.includes(version))
    throw invalidInput('xpub', 'an extended PUBLIC key: this is a private key (xprv/tprv) — never paste it anywhere', 'a private extended key');
  const versions = version === VERSIONS.xpub.public ? VERSIONS.xpub : version === VERSIONS.tpub.public ? VERSIONS.tpub : undefined;
  if (versions === undefined) throw invalidInput('xpub', 'an xpub (mainnet) or tpub (testnet) extended public key', `version 0x${version.toString(16)}`);
  try {
    const key = HDKey.fromExtendedKey(xpub, versions);
    if (key.privateKey !== null) throw new Error('private');
    return { text: xpub, key };
  } catch {
    throw invalidInput('xpub', 'a valid extended public key');
  }
}

/** A bare compressed secp256k1 public key: 66 hex digits, on the curve. */
export function parsePublicKey(publicKey: unknown): string {
  if (typeof publicKey !== 'string' || !/^0[23][0-9a-fA-F]{64}$/.test(publicKey))
    throw invalidInput('publicKey', 'a compressed public key: 66 hex digits starting 02 or 03', typeof publicKey);
  const hex = publicKey.toLowerCase();
  try {
    secp256k1.Point.fromHex(hex);
  } catch {
    throw invalidInput('publicKey', 'a point on secp256k1');
  }
  return hex;
}

/** The key a card's answers are verified against: derived from the xpub along the subpath (@scure/bip32 CKDpub). */
export function derivedPublicKey(xpub: string, subpath: string): string {
  const { key } = parseXpub(xpub);
  const { steps } = canonicalSubpath(subpath);
  const child = steps.length === 0 ? key : key.derive(`m/${steps.join('/')}`);
  if (child.publicKey === null) throw new CustosError('internal', 'the derived key has no public key');
  return bytesToHex(child.publicKey);
}

/** The enrolment input checked: the state to keep and the derived key (the row's id). Throws invalid_input naming the field. */
export function parseHwkeyEnrollment(input: unknown): { id: string; state: HwkeyFactorState } {
  if (typeof input !== 'object' || input === null || Array.isArray(input))
    throw invalidInput('xpub', 'an object with xpub and subpath, or publicKey', Array.isArray(input) ? 'array' : typeof input);
  const { xpub, publicKey, subpath } = input as HwkeyEnrollInput;
  const hasXpub = xpub !== undefined && xpub !== null && xpub !== '';
  const hasKey = publicKey !== undefined && publicKey !== null && publicKey !== '';
  if (hasXpub === hasKey) throw invalidInput(hasXpub ? 'publicKey' : 'xpub', 'exactly one of xpub (with subpath) or publicKey');
  if (hasKey) {
    if (subpath !== undefined && subpath !== null && subpath !== '') throw invalidInput('subpath', 'no subpath with a bare publicKey', 'a subpath');
    const id = parsePublicKey(publicKey);
    return { id, state: { xpub: null, subpath: '', windowStart: 0, issued: 0 } };
  }
  const parsed = parseXpub(xpub);
  const path = canonicalSubpath(subpath);
  const state: HwkeyFactorState = { xpub: parsed.text, subpath: path.text, windowStart: 0, issued: 0 };
  return { id: derivedPublicKey(parsed.text, path.text), state };
}

// ── answers ──────────────────────────────────────────────────────────────────────────────

function hwkeyInvalid(reason: string): CustosError {
  return new CustosError('hwkey_invalid', `the card's signature was refused: ${reason}`, { details: { field: 'signature', reason } });
}

/**
 * A card's answer: 64 bytes r‖s (the card's own form) or 65 bytes with a header byte first (as
 * host libraries add one), hex (an optional 0x). The header's range is checked; it never selects
 * the key. Throws invalid_input naming `signature`.
 */
export function parseHwkeySignature(signature: unknown): Uint8Array {
  if (typeof signature !== 'string') throw invalidInput('signature', 'the card’s signature: 128 or 130 hex digits', typeof signature);
  const hex = signature.startsWith('0x') ? signature.slice(2) : signature;
  if (!/^[0-9a-fA-F]*$/.test(hex) || (hex.length !== 128 && hex.length !== 130))
    throw invalidInput('signature', 'the card’s signature: 64 bytes r‖s or 65 bytes with a header byte, in hex');
  const bytes = hexToBytes(hex.toLowerCase());
  if (bytes.length === 64) return bytes;
  const header = bytes[0] as number;
  if (!HEADER_RANGES.some(([low, high]) => header >= low && header <= high))
    throw invalidInput('signature', 'a header byte of 27–34 or 39–42 before r‖s', `${header}`);
  return bytes.slice(1);
}

/**
 * Verifies a card's r‖s over `digest` against `publicKey` (hex, compressed): r and s in range, s
 * in the lower half (high-s: its own code), then ECDSA with the digest used raw (no prehash).
 */
export function verifyHwkeySignature(compact: Uint8Array, digest: Uint8Array, publicKey: string): void {
  const r = BigInt(`0x${bytesToHex(compact.subarray(0, 32))}`);
  const s = BigInt(`0x${bytesToHex(compact.subarray(32, 64))}`);
  if (r === 0n || r >= N || s === 0n || s >= N) throw hwkeyInvalid('r or s is out of range');
  if (s > HALF_N)
    throw new CustosError('hwkey_signature_high_s', 'the card’s signature has a high s: a card answers with low s, so this one was altered', {
      details: { field: 'signature' },
    });
  let ok = false;
  try {
    ok = secp256k1.verify(compact, digest, hexToBytes(publicKey), { prehash: false, lowS: true, format: 'compact' });
  } catch {
    ok = false;
  }
  if (!ok) throw hwkeyInvalid('it is not the enrolled key’s signature over this challenge');
}

/** The hwkey factor. */
export function hwkeyFactor(): Factor<HwkeyFactorState, HwkeyShown, null> {
  return {
    kind: KIND,
    strength: 'bound',
    label: 'hardware key',
    rows: hwkeyRows,
    strengthOf(record: FactorRecord<HwkeyFactorState>, channel: ProofChannel): Strength {
      return channel === 'page' && record.enrolledVia === 'page' ? 'bound' : 'present';
    },
    enroll: {
      async begin() {
        return { secret: null, shown: { digest: null }, pending: null };
      },
      async show({ challenge }) {
        return { digest: challenge === undefined ? null : bytesToHex(challenge) };
      },
      finish({ via, proof, challenge }) {
        const { id, state } = parseHwkeyEnrollment(proof);
        // On the page, the card proves it holds the key before the factor is active.
        if (via === 'page') {
          if (challenge === undefined) throw new CustosError('internal', 'no enrolment challenge for the card');
          const signature = (proof as HwkeyEnrollInput).signature;
          if (signature === undefined || signature === null || signature === '')
            throw new CustosError('code_required', 'sign the enrolment challenge with the card and paste its signature', { details: { field: 'signature' } });
          verifyHwkeySignature(parseHwkeySignature(signature), challenge, id);
        }
        return { id, state };
      },
    },
    /** Counts one challenge in the wallet's window; refuses over the limit (not counted). */
    challenge({ wallet, now }) {
      const state = wallet.factor.state;
      const fresh = now - state.windowStart >= HWKEY_CHALLENGE_LIMIT.windowMs || now < state.windowStart;
      if (!fresh && state.issued >= HWKEY_CHALLENGE_LIMIT.max) {
        const retryAfterSeconds = Math.max(1, Math.ceil((state.windowStart + HWKEY_CHALLENGE_LIMIT.windowMs - now) / 1000));
        throw new CustosError(
          'hwkey_challenge_rate_limited',
          `at most ${HWKEY_CHALLENGE_LIMIT.max} hardware-key challenges per wallet per ${HWKEY_CHALLENGE_LIMIT.windowMs / 60_000} minutes: try again later`,
          { details: { field: 'id', retryAfterSeconds, limit: HWKEY_CHALLENGE_LIMIT.max } },
        );
      }
      const stateChange = fresh ? { ...state, windowStart: now, issued: 1 } : { ...state, issued: state.issued + 1 };
      return { challenge: { subpath: state.subpath }, stateChange };
    },
    async challengeOptions({ records, challenge, approval }) {
      const [record] = records;
      return { digest: bytesToHex(challenge), subpath: record?.state.subpath ?? '', expiresAt: approval.expiresAt };
    },
    /**
     * The answer must be the enrolled key's low-s signature over the digest the kernel derived for
     * this approval from the nonce stored with it. Refusals are not charged: a signature cannot be guessed.
     */
    verify({ wallet, approval, proof }) {
      if (approval?.challenge === undefined)
        throw new CustosError('challenge_required', 'no unspent hardware-key challenge was issued for this approval: ask for a new one', {
          details: { field: 'signature' },
        });
      const compact = parseHwkeySignature(typeof proof === 'object' && proof !== null ? (proof as { signature?: unknown }).signature : proof);
      verifyHwkeySignature(compact, approval.challenge, wallet.factor.id);
      return { evidence: { factor: KIND, publicKey: wallet.factor.id, enrolledVia: wallet.factor.enrolledVia } };
    },
  };
}
