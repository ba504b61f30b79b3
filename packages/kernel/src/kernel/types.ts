import type { OperationSummary } from '../chain/types.js';
import type { UnsealerType } from '../seal/unsealers.js';
import type { BatchView } from './batchApproval.js';
import type { ApprovalState, EnrolledVia, EnrollmentLinkState, Scope } from '../store/types.js';

/** The kernel's public shapes: callers, statuses, requests and results. */

/** An authenticated caller (a wallet backend) and what its API key allows. */
export interface App {
  id: string;
  name: string;
  /** The tenant the API key belongs to: the key sees and touches only this tenant's wallets. */
  tenant: string;
  scopes: readonly Scope[];
  /** The key's wallet-name prefix (apiKeyLimits.ts walletInReach): it reaches only its tenant's wallets named so. Absent or null: all of them. */
  walletPrefix?: string | null;
}

/** The unsealer of the sealed root as status shows it: public parameters and unseal progress. */
export interface UnsealerStatus {
  type: UnsealerType;
  /** Shamir: shares needed. */
  threshold?: number;
  /** Shamir: shares issued. */
  shares?: number;
  /**
   * Shamir: whether the share set's files are signed (false: a set made before shares were signed,
   * whose forged shares only the combine can catch — `custos rekey` issues a signed set).
   */
  sharesSigned?: boolean;
  /** PKCS#11: the token's label (the slot is found by it). */
  tokenLabel?: string;
  /** PKCS#11: the KEK's CKA_LABEL. */
  keyLabel?: string;
  /** PKCS#11: the KEK's CKA_ID, hex (labels may repeat; this names the one key the envelope needs). */
  keyId?: string;
  /** Shamir, while sealed: shares submitted so far (discarded by reset, a failed combine or a seal). */
  progress?: { submitted: number; threshold: number };
}

export interface KernelStatus {
  initialized: boolean;
  sealed: boolean;
  signerId: string | null;
  version: string;
  derivation: string | null;
  unsealer: UnsealerStatus | null;
  /** The audit public key (Ed25519, hex) while unsealed; null while sealed. `custos init` printed it first. */
  auditPublicKey: string | null;
}

/** Counts of secret buffers (never their bytes): what tests read to show that seal wipes. */
export interface SecretBufferCounts {
  buffers: number;
  nonZero: number;
}

/** Kernel.secretBufferState(): how many barriers were installed and what their buffers hold. */
export interface KernelSecretBufferState {
  /** Barriers installed since open (one per successful unseal). */
  installs: number;
  /** The installed barrier's buffers, or null while sealed. */
  installed: SecretBufferCounts | null;
  /** Read right after the last wipe (a seal, or an unseal that installed nothing): nonZero 0 when it zeroed all. */
  lastWiped: SecretBufferCounts | null;
}

/** The answer to one submitted share: still sealed (with the progress), or unsealed. */
export interface ShareProgress {
  sealed: boolean;
  progress: { submitted: number; threshold: number };
}

export interface TotpEnrollment {
  walletName: string;
  otpauthUri: string;
  qrSvg: string;
  securityObject: string;
}

export interface PublicKeyResult {
  walletName: string;
  keyIndex: number;
  publicKey: string;
  address: string;
}

export interface HashSignature {
  walletName: string;
  keyIndex: number;
  r: string;
  s: string;
  recoveryId: 0 | 1;
  /** 65-byte r ‖ s ‖ v with v = 27 + recoveryId, hex with 0x. */
  signature: string;
  publicKey: string;
  address: string;
  /** What was signed, as far as a raw hash can say (it cannot: blind signing). */
  summary: OperationSummary;
  summaryText: string;
  opHash: string;
  auditSeq: number;
}

export interface SignHashRequest {
  walletName: unknown;
  keyIndex: unknown;
  hash: unknown;
  code?: unknown;
  /** An approved approval's id (32 hex digits), instead of `code` (both: invalid_input). */
  approvalId?: unknown;
  /** The Idempotency-Key header (idempotency.ts): a retry with the same key and operation gets the stored result. */
  idempotencyKey?: unknown;
}

/** The fields every chain operation request shares. */
export interface SignOperationRequest {
  walletName: unknown;
  keyIndex: unknown;
  code?: unknown;
  /** An approved approval's id (32 hex digits), instead of `code` (both: invalid_input). */
  approvalId?: unknown;
  /** The Idempotency-Key header (idempotency.ts): a retry with the same key and operation gets the stored result. */
  idempotencyKey?: unknown;
}

/** A signed chain operation: the codec's result, the summary shown and audited, and the audit link. */
export type OperationResult<R> = R & {
  walletName: string;
  keyIndex: number;
  address: string;
  summary: OperationSummary;
  summaryText: string;
  opHash: string;
  auditSeq: number;
};

/** POST /v1/approvals: one operation, exactly one of the sign routes' bodies under its key. */
export interface CreateApprovalRequest {
  walletName: unknown;
  /** The key of the operation; absent for a batch (each item names its own). */
  keyIndex?: unknown;
  /** Exactly one of { transaction }, { message }, { typedData }, { authorization }, { hash }, { batch } (kernel/batchApproval.ts). */
  operation: unknown;
  /** 60–3600, default 600. */
  ttlSeconds?: unknown;
  /** The Idempotency-Key header (idempotency.ts): a retry with the same key and operation gets the approval it created. */
  idempotencyKey?: unknown;
}

/** An approval as its tenant's API keys see it (GET /v1/approvals/{id}). Times in ms since the epoch. */
export interface ApprovalView {
  id: string;
  walletName: string;
  /** null for a batch (its items carry their key indexes). */
  keyIndex: number | null;
  /** `transaction`, `message`, `typedData`, `authorization`, `hash` or `batch`. */
  operationType: string;
  opHash: string;
  summary: OperationSummary;
  summaryText: string;
  requiredStrength: 'present' | 'bound';
  /** `expired` as soon as expiresAt has passed while pending (the sweep writes it later). */
  state: ApprovalState;
  createdAt: number;
  expiresAt: number;
  decidedAt: number | null;
  /** The factor kind that decided it (approved or rejected on the page), else null. */
  factor: string | null;
  /** A batch approval's operations and which of them are signed (absent for one operation). */
  batch?: BatchView;
  /** The newest message the kernel queued for it on the wallet's delivery channel (GET only): its status, never its content; null when none. */
  delivery?: { status: 'queued' | 'sent' | 'failed' | 'expired'; attempts: number; sentAt: number | null } | null;
}

/** A new approval, with the approval page's capability token (shown once: the server makes approveUrl of it). */
export interface CreatedApproval extends ApprovalView {
  capability: string;
}

/** One of the wallet's factors as the approval page lists it. */
export interface ApprovalPageFactor {
  kind: string;
  /** Which factor of that kind (TOTP: `totp`; a passkey: its credential id, base64url). */
  id: string;
  label: string;
  strength: 'present' | 'bound';
  /** ms since the epoch. */
  createdAt: number;
  /** `api`: enrolled by the backend (which may hold its secret); `page`: by the owner on the kernel's enrolment page. */
  enrolledVia: EnrolledVia;
}

/** What the approval page shows: the approval, and the wallet's factors (which of them can decide it). */
export interface ApprovalPage {
  approval: ApprovalView;
  factors: ApprovalPageFactor[];
  /** The wallet owner's page ("this was not me" and activity, kernel/freeze.ts): the page links to `/owner/<ownerCapability>`. */
  ownerCapability?: string;
}

/** The owner's decision on the approval page: approve with a factor's proof, or reject. */
export interface ApprovalDecision {
  decision: unknown;
  /** The factor kind the proof is for (approve only): `totp` or `passkey`. */
  kind?: unknown;
  /** The factor's proof: a TOTP code (a string), or a passkey's assertion (WebAuthn AuthenticationResponseJSON, an object). */
  proof?: unknown;
}

/**
 * A challenge the kernel issued for an approval on its page (POST from the page's script): what the
 * owner's device needs to answer it (passkey: WebAuthn PublicKeyCredentialRequestOptionsJSON).
 * Answering it is the next decision's proof; a new challenge replaces the previous one.
 */
export interface ApprovalChallengeIssued {
  kind: string;
  options: unknown;
  /** ms since the epoch: the approval's expiry (a challenge never outlives it). */
  expiresAt: number;
}

/**
 * Where passkeys are valid: the public URL's host (rpID) and origin, exactly. Passkeys are
 * registered (and the factor exists) only when the kernel is given these (`--public-url` with a
 * host name, not an IP address).
 */
export interface PasskeySettings {
  /** The host of the public URL (no port), e.g. `custos.example.com` or `localhost`. */
  rpId: string;
  /** The public URL's origin, e.g. `https://custos.example.com` or `http://localhost:8420`. */
  origin: string;
  /** What the browser names the relying party in its passkey dialog (the operator's brand). */
  rpName: string;
}

/** A new enrolment link, with the page's capability token (shown once: the server makes enrollUrl of it). */
export interface CreatedEnrollment {
  id: string;
  walletName: string;
  kind: string;
  /** ms since the epoch. */
  expiresAt: number;
  capability: string;
}

/** What the enrolment page shows: the link's state and, while pending, what the factor shows the owner (TOTP: otpauthUri, qrSvg). */
export interface EnrollmentPage {
  walletName: string;
  kind: string;
  /** `expired` once expiresAt has passed while pending. */
  state: EnrollmentLinkState;
  expiresAt: number;
  shown: unknown | null;
  /**
   * When the wallet already has a `bound` factor (a passkey), adding another needs its consent on
   * this page: what the owner's device needs to answer the link's consent challenge (passkey:
   * WebAuthn request options), posted with the new factor's proof as `consent`. A link that changes
   * the delivery address of a wallet without a passkey: `{ kind: 'oob', options: { currentAddress: true } }`
   * — the consent is the code sent to the current address (sendEnrollmentChangeCode). Absent otherwise.
   */
  consent?: { kind: string; options: unknown };
  /**
   * The wallet's recovery codes (kernel/recoveryCodes.ts), only in the answer that enrolled its
   * first factor on this page: shown once, never stored in the clear, never shown again.
   */
  recoveryCodes?: string[];
  /**
   * The wallet's owner page (`/owner/<ownerCapability>`: its activity, its open changes, "this was not
   * me"), a capability: only in the answer that shows the recovery codes or a change it queued.
   */
  ownerCapability?: string;
  /**
   * Issue 13 (timelock): the link completed a change of a wallet that had a factor — the new factor
   * or address takes effect at this time (ms), unless the owner cancels it through the link the
   * signer delivered. Absent when it took effect at once (the wallet's first factor).
   */
  effectiveAt?: number;
}
