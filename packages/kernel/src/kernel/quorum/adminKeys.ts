import { createHash } from 'node:crypto';
import { ed25519 } from '@noble/curves/ed25519.js';
import { CustosError, invalidInput } from '../../errors.js';
import { canonicalJson } from '../../util/canonicalJson.js';

/**
 * Admin keys: Ed25519 key pairs (noble), the private key in a file the admin holds. An admin is
 * named by its public key (64 lowercase hex digits). What an admin signs (AdminStatement):
 *   label ‖ 0 ‖ signerId ‖ 0 ‖ proposal id ‖ 0 ‖ proposer ‖ 0 ‖ expiresAt ‖ 0 ‖ payloadHash
 * with label `custos.quorum.propose.v2` or `custos.quorum.approve.v2`, expiresAt in decimal
 * milliseconds, and payloadHash = SHA-256(`custos.quorum.payload.v1` ‖ 0 ‖ canonicalJson({ kind, payload })).
 * The labels differ, so that a proposer's signature can never be replayed as an approval; the
 * signer id binds it to one deployment (a staging approval never counts on production), the
 * expiry and the proposer to one proposal.
 */

export const PROPOSE_LABEL = 'custos.quorum.propose.v2';
export const APPROVE_LABEL = 'custos.quorum.approve.v2';

/** What an admin's signature covers besides its label. */
export interface AdminStatement {
  /** The signer (deployment) the proposal is for: KernelStatus.signerId. */
  signerId: string;
  /** The proposal id (32 lowercase hex digits). */
  id: string;
  /** The proposer's public key. */
  proposer: string;
  /** When the proposal expires (ms since the epoch), chosen and signed by the proposer. */
  expiresAt: number;
  payloadHash: string;
}
const PAYLOAD_LABEL = 'custos.quorum.payload.v1';
const PUBLIC_KEY = /^[0-9a-f]{64}$/;
const SIGNATURE = /^[0-9a-f]{128}$/;
export const PROPOSAL_ID = /^[0-9a-f]{32}$/;
const encoder = new TextEncoder();

/** The file `custos admin keygen` writes (mode 0600). */
export interface AdminKeyFile {
  type: 'custos-admin-key';
  version: 1;
  publicKey: string;
  privateKey: string;
}

/** A fresh admin key pair, as the key file's JSON object. */
export function generateAdminKey(random?: (n: number) => Uint8Array): AdminKeyFile {
  const privateKey = random === undefined ? ed25519.utils.randomSecretKey() : random(32);
  const file: AdminKeyFile = {
    type: 'custos-admin-key',
    version: 1,
    publicKey: Buffer.from(ed25519.getPublicKey(privateKey)).toString('hex'),
    privateKey: Buffer.from(privateKey).toString('hex'),
  };
  privateKey.fill(0);
  return file;
}

/** Reads a key file's text: its private key (32 bytes; the caller wipes it) and public key (checked to match). */
export function parseAdminKeyFile(text: string): { publicKey: string; privateKey: Uint8Array } {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw invalidInput('key', 'a custos admin key file (JSON)');
  }
  const file = value as Partial<AdminKeyFile> | null;
  if (file === null || typeof file !== 'object' || file.type !== 'custos-admin-key' || file.version !== 1) throw invalidInput('key', 'a custos admin key file');
  if (typeof file.privateKey !== 'string' || !/^[0-9a-f]{64}$/.test(file.privateKey)) throw invalidInput('key', 'a 32-byte private key in hex');
  const privateKey = new Uint8Array(Buffer.from(file.privateKey, 'hex'));
  const publicKey = Buffer.from(ed25519.getPublicKey(privateKey)).toString('hex');
  if (file.publicKey !== publicKey) {
    privateKey.fill(0);
    throw invalidInput('key', 'a public key that matches the private key');
  }
  return { publicKey, privateKey };
}

/** An admin's public key: 64 lowercase hex digits, a valid Ed25519 point. */
export function assertAdminPublicKey(value: unknown, field = 'admin'): string {
  if (typeof value !== 'string' || !PUBLIC_KEY.test(value)) throw invalidInput(field, 'an Ed25519 public key (64 lowercase hex digits)');
  try {
    ed25519.Point.fromHex(value).assertValidity();
  } catch {
    throw invalidInput(field, 'an Ed25519 public key (a point on the curve)');
  }
  return value;
}

export function assertProposalId(value: unknown): string {
  if (typeof value !== 'string' || !PROPOSAL_ID.test(value)) throw invalidInput('id', 'a proposal id (32 lowercase hex digits)');
  return value;
}

/** The payload hash of a change: what every admin's signature is bound to. */
export function computePayloadHash(kind: string, payload: unknown): string {
  return createHash('sha256')
    .update(PAYLOAD_LABEL)
    .update(new Uint8Array([0]))
    .update(canonicalJson({ kind, payload }))
    .digest('hex');
}

/** The bytes an admin signs to propose (PROPOSE_LABEL) or approve (APPROVE_LABEL) a proposal. */
export function adminMessage(label: typeof PROPOSE_LABEL | typeof APPROVE_LABEL, s: AdminStatement): Uint8Array {
  if (!Number.isSafeInteger(s.expiresAt)) throw invalidInput('expiresAt', 'an integer (ms since the epoch)');
  for (const part of [s.signerId, s.id, s.proposer, s.payloadHash]) if (part.includes('\0')) throw invalidInput('statement', 'no NUL characters');
  return encoder.encode(`${label}\0${s.signerId}\0${s.id}\0${s.proposer}\0${s.expiresAt}\0${s.payloadHash}`);
}

/** Signs with an admin's private key (hex signature, 64 bytes). */
export function signAdminMessage(privateKey: Uint8Array, label: typeof PROPOSE_LABEL | typeof APPROVE_LABEL, statement: AdminStatement): string {
  return Buffer.from(ed25519.sign(adminMessage(label, statement), privateKey)).toString('hex');
}

/** Throws admin_signature_invalid unless `signature` is the admin's over (label, statement); strict (no ZIP-215 leniency). */
export function assertAdminSignature(
  publicKey: string,
  signature: unknown,
  label: typeof PROPOSE_LABEL | typeof APPROVE_LABEL,
  statement: AdminStatement,
): string {
  const refused = new CustosError('admin_signature_invalid', 'the admin signature does not verify over this proposal', { details: { field: 'signature' } });
  if (typeof signature !== 'string' || !SIGNATURE.test(signature)) throw refused;
  let ok = false;
  try {
    ok = ed25519.verify(Buffer.from(signature, 'hex'), adminMessage(label, statement), Buffer.from(publicKey, 'hex'), { zip215: false });
  } catch {
    ok = false;
  }
  if (!ok) throw refused;
  return signature;
}
