import type { AuditCheckpoint } from '../audit/auditCheckpoint.js';
import type { AuditEntry, AuditQuery, AuditRecord } from '../audit/types.js';

import type { DerivationScheme } from '../crypto/types.js';

export type { DerivationScheme };
/** `admin`: operator actions over the API (seal on demand). */
export type Scope = 'register' | 'derive' | 'sign' | 'admin';
export const SCOPES: readonly Scope[] = ['register', 'derive', 'sign', 'admin'];

/** The signer's identity and its sealed root; written once by `custos init`. */
export interface SignerMeta {
  signerId: string;
  derivation: DerivationScheme;
  /** The versioned sealed-root envelope (JSON), opened only by the seal module. */
  sealedRoot: unknown;
  createdAt: number;
}

/** The tenant of every API key and wallet of a single-tenant deployment (and of every row made before tenants). */
export const DEFAULT_TENANT = 'default';
/** The operator tenant: the only one whose keys may hold the `admin` scope. */
export const OPERATOR_TENANT = 'system';

export interface ApiKeyRecord {
  id: string;
  name: string;
  /** The backend the key belongs to: it sees and touches only the wallets of this tenant. */
  tenant: string;
  scopes: Scope[];
  /** SHA-256 of the key's secret part (domain-separated); the key itself is never stored. */
  secretHash: Uint8Array;
  createdAt: number;
  revokedAt: number | null;
  /**
   * MAC under the barrier over the key's id, name, tenant, scopes, secret hash and creation time
   * (kernel/quorum/apiKeyMac.ts): set for keys made by an applied proposal and for every key at the
   * quorum's bootstrap. Once a quorum is configured a key without a valid MAC is refused. Absent or
   * null: a key made by `custos apikey create` while no quorum is configured.
   */
  mac?: string | null;
  /** When the key stops working (ms); null or absent: never. Covered by the MAC and anchored (manageApiKeys.ts). */
  expiresAt?: number | null;
  /** The key acts only on wallets whose name starts with this (case-sensitive, code unit by code unit); null or absent: any wallet of its tenant. */
  walletPrefix?: string | null;
  /** When the key last authenticated (ms, recorded at most once a minute); informational, not MAC'd. */
  lastUsedAt?: number | null;
}

/** A bearer session of the compatibility API; only the token's hash is stored. */
export interface SessionRecord {
  tokenHash: string;
  apiKeyId: string;
  expiresAt: number;
  /** MAC under the barrier over the three fields (issue 13: under a quorum a session row without a valid one is refused). */
  mac?: string | null;
}

/**
 * A wallet's row: the tenant that owns it (the one whose call first named the wallet) and a MAC
 * under the barrier over its tenant, name and list of factors (see kernel/walletRecord.ts), so
 * that a changed owner or a deleted or added factor row is seen.
 */
export interface WalletRecord {
  name: string;
  tenant: string;
  createdAt: number;
  /** Hex MAC (walletRecord.ts); null only on a row from before the upgrade that no unseal has MAC'd yet. */
  mac: string | null;
  /** When the wallet was frozen ("this was not me", kernel/freeze.ts), covered by the MAC while set; null or absent: not frozen. */
  frozenAt?: number | null;
}

/**
 * A wallet's recovery codes (kernel/recoveryCodes.ts): a keyed tag (MAC under the barrier) of each
 * code, when each was used (null: unused), a throttle of their own (failures in the current
 * window), the row MAC'd under the barrier over every field but `mac`.
 */
export interface RecoveryCodesRecord {
  walletName: string;
  /** JSON text: `[{ "tag": hex, "usedAt": ms | null }, …]`. */
  codes: string;
  failures: number;
  windowStart: number;
  createdAt: number;
  mac: string;
}

/**
 * A cancel budget (kernel/ownerDevice.ts): the wrong cancel answers and the cancel codes sent through
 * one channel the wallet backend cannot reach — an owner-device cookie (`device:<tag>`) or a change's
 * delivered link (`notice:<changeId>`) — counted apart from the change's shared counter and the
 * wallet's shared caps, which the backend can use up. MAC'd under the barrier over every field but `mac`.
 */
export interface CancelBudgetRecord {
  walletName: string;
  budgetKey: string;
  /** Wrong cancel codes (TOTP or delivered) through this budget. */
  codeFailures: number;
  /** Wrong recovery codes in the current window, and the window's start. */
  recoveryFailures: number;
  recoveryWindowStart: number;
  /** Cancel codes sent in the current hour, and the hour's start. */
  sentInWindow: number;
  sendWindowStart: number;
  createdAt: number;
  mac: string;
}

/** How a factor was enrolled: `api` — by the backend (POST /v1/totp/enroll, the compatibility register), which saw its secret; `page` — by the owner on the kernel's enrolment page. */
export type EnrolledVia = 'api' | 'page';

export interface TotpFactorRecord {
  walletName: string;
  /** `api` for every row made before the enrolment page (the column's default). */
  enrolledVia: EnrolledVia;
  /** The TOTP secret, encrypted by the barrier under record key `totp:<walletName>`. */
  secretEnvelope: string;
  lastAcceptedStep: number | null;
  failures: number;
  lockedUntilMs: number | null;
  createdAt: number;
  /** Hex MAC over the wallet name, the factor's kind, id and version, its envelope and its state; recomputed by every state update. */
  mac: string | null;
}

/**
 * A passkey (WebAuthn credential) registered by the owner on the kernel's enrolment page
 * (consent/passkeyFactor.ts). Nothing here is secret (the private key never leaves the
 * authenticator), but every field is under the row's MAC, so that a database writer cannot swap
 * the public key, move the credential to another wallet or roll its counter back.
 */
export interface PasskeyCredentialRecord {
  walletName: string;
  /** The credential id, base64url (unique in the signer: one credential serves one wallet). */
  credentialId: string;
  /** The credential's COSE public key, base64url. */
  publicKey: string;
  /** The authenticator's signature counter as last accepted (0 for authenticators that keep none). */
  counter: number;
  /** The transports the browser reported at registration (`internal`, `hybrid`, `usb`, …). */
  transports: string[];
  /** The rpID it was registered for: the host of the public URL at the time (a passkey works for that host only). */
  rpId: string;
  /** Always `page` today (passkeys are registered on the kernel's enrolment page only). */
  enrolledVia: EnrolledVia;
  createdAt: number;
  /** Hex MAC (consent/consent.ts macFactorRecord); null never for a passkey (they came after MACs). */
  mac: string | null;
}

/** The state of a passkey row the kernel MACs and may change (the counter); the rest is fixed at registration. */
export interface PasskeyFactorState {
  publicKey: string;
  counter: number;
  transports: string[];
  rpId: string;
}

/**
 * A hardware key (hwkey, TAPSIGNER style: consent/hwkeyFactor.ts): the card's account xpub and a
 * non-hardened subpath, or a bare public key, and the key derived from them, which every answer is
 * verified against. Nothing is secret; every field is under the row's MAC. One per wallet.
 */
export interface HwkeyFactorRecord {
  walletName: string;
  /** The derived compressed public key, 66 hex digits: the factor's id. */
  id: string;
  /** The account xpub as enrolled (base58check), or null for a bare public key. */
  xpub: string | null;
  /** The canonical subpath below the xpub ("0/5", "" for none). */
  subpath: string;
  /** When the current challenge window began (ms), and how many challenges were issued in it (the per-wallet rate limit). */
  windowStart: number;
  issued: number;
  enrolledVia: EnrolledVia;
  createdAt: number;
  mac: string | null;
}

/** The state of an hwkey row the kernel MACs: the key (fixed at enrolment) and the rate limit's window (changed by each challenge). */
export interface HwkeyFactorState {
  xpub: string | null;
  subpath: string;
  windowStart: number;
  issued: number;
}

/** A wallet's rows as the store holds them: any may be missing (a row deleted behind the kernel's back). */
export interface WalletRows {
  wallet: WalletRecord | undefined;
  totp: TotpFactorRecord | undefined;
  /** Its passkeys, oldest first (by createdAt, then credentialId). */
  passkeys: PasskeyCredentialRecord[];
  /** Its hardware key (absent from stores and fakes made before hwkeys: none). */
  hwkey?: HwkeyFactorRecord | undefined;
  /** Its delivery channel (consent/oobFactor.ts), when it has one (absent on stores that do not read it). */
  oob?: OobChannelRecord | undefined;
}

/** A wallet of a page of Store.readWalletPage: its rows and its number of pending timelocked changes. */
export interface WalletPageEntry {
  walletName: string;
  rows: WalletRows;
  pendingChanges: number;
}

/**
 * A wallet's delivery channel for codes the kernel sends itself (consent/oobFactor.ts): the address
 * sealed by the barrier (record key `oob:<walletName>`), the factor's state as JSON text, a MAC
 * under the barrier over both (consent.ts macFactorRecord).
 */
export interface OobChannelRecord {
  walletName: string;
  /** The barrier's envelope of `{ channel, address }` (JSON). */
  secretEnvelope: string;
  /** OobFactorState as canonical JSON text. */
  state: string;
  enrolledVia: EnrolledVia;
  createdAt: number;
  mac: string | null;
}

/** Where a message of the outbox is: queued (or being sent, under a lease), sent, failed for good, expired unsent. */
export type OutboxStatus = 'queued' | 'sent' | 'failed' | 'expired';

/**
 * One message the kernel delivers itself (kernel/oobDelivery.ts), written in the unit of the decision
 * that causes it and sent after its commit. Everything the sender needs is in `envelope`, sealed by
 * the barrier under record key `outbox:<id>` (the recipient, the approval link's capability, what
 * the code is computed from — never the code itself); the other columns only schedule it.
 */
export interface OutboxRecord {
  /** 32 lowercase hex digits. */
  id: string;
  walletName: string;
  /** The approval the message is for, when it is for one (GET /v1/approvals/{id} shows its status). */
  approvalId: string | null;
  status: OutboxStatus;
  attempts: number;
  /** ms since the epoch: not sent before (back-off). */
  nextAttemptAt: number;
  /** ms since the epoch: a sender holds the message until then (a crashed sender's lease runs out). */
  leaseUntil: number | null;
  createdAt: number;
  /** ms since the epoch: not sent after (the code in it would be dead). */
  expiresAt: number;
  sentAt: number | null;
  /** The last failure's short reason (the channel's, never a secret), or null. */
  lastError: string | null;
  envelope: string;
  /**
   * A keyed tag of the recipient (a MAC under the barrier of its channel and lowercased address: the
   * address itself stays sealed in `envelope`), so that the messages sent to one address can be
   * counted across wallets; null on rows from before migration 11.
   */
  addressTag: string | null;
}

/** What a sender writes back about a message: its new status, the next attempt, the reason. */
export type OutboxChange = Pick<OutboxRecord, 'status' | 'attempts' | 'nextAttemptAt' | 'leaseUntil' | 'sentAt' | 'lastError'>;

export interface TotpFactorState {
  lastAcceptedStep: number | null;
  failures: number;
  lockedUntilMs: number | null;
}

/** Where an approval is in its life; `expired` is written by the sweep (a pending row past expiresAt reads as expired before that). */
export type ApprovalState = 'pending' | 'approved' | 'rejected' | 'expired' | 'cancelled' | 'consumed';
export const APPROVAL_STATES: readonly ApprovalState[] = ['pending', 'approved', 'rejected', 'expired', 'cancelled', 'consumed'];

/**
 * One operation the owner is asked to approve (kernel/approvals.ts). Every field but `mac` is
 * covered by the MAC under the barrier, recomputed by every change, so that a database writer
 * cannot approve, re-open, re-point or extend an approval.
 */
export interface ApprovalRecord {
  /** 32 lowercase hex digits (16 random bytes). */
  id: string;
  /** The tenant of the API key that created it: only that tenant sees or uses it. */
  tenant: string;
  /** The API key that created it (its revocation cancels the approval while pending). */
  apiKeyId: string;
  walletName: string;
  keyIndex: number;
  /** `transaction`, `message`, `typedData`, `authorization` or `hash`. */
  opType: string;
  /** 64 lowercase hex digits: what a signature with this approval must recompute. */
  opHash: string;
  /** The summary shown to the owner, as canonical JSON text. */
  summary: string;
  summaryText: string;
  requiredStrength: 'present' | 'bound';
  /** Hex SHA-256 of the approval page's capability token (the token itself is never stored). */
  capabilityHash: string;
  state: ApprovalState;
  createdAt: number;
  expiresAt: number;
  decidedAt: number | null;
  /** The decision's evidence as canonical JSON text (factor, credential id, counter, user verification), or null. */
  evidence: string | null;
  /** The seq of the allowed audit record of the signature that consumed it, or null. */
  consumedSeq: number | null;
  /**
   * The challenge issued for the owner's factor on the approval page, as canonical JSON text
   * `{ kind, nonce, issuedAt }` (nonce: 64 hex digits chosen by the kernel), or null: none issued,
   * or spent (a challenge answers once, right or wrong). Covered by the MAC when not null.
   */
  challenge: string | null;
  /**
   * A batch approval's operations (kernel/batchApproval.ts), as canonical JSON text `{ items:
   * [{ keyIndex, operationType, opHash }], signedSeqs: [seq | null] }`: absent for an approval of one
   * operation (a NULL column). Covered by the MAC when present; the signed seqs change in the sign unit.
   */
  batch?: string;
  /** Hex MAC under the barrier (kernel/approvals.ts). */
  mac: string;
}

/**
 * The fields of an approval a decision changes (the MAC recomputed over the whole new record). A
 * `batch` left out is kept as stored (a batch approval stays one).
 */
export type ApprovalChange = Pick<ApprovalRecord, 'state' | 'decidedAt' | 'evidence' | 'consumedSeq' | 'challenge' | 'mac' | 'batch'>;

/** Where an enrolment link is in its life; `failed`: too many wrong first codes (the link is spent). */
export type EnrollmentLinkState = 'pending' | 'completed' | 'expired' | 'cancelled' | 'failed';

/**
 * A one-time enrolment link (kernel/enrollmentLinks.ts): the owner opens it, is shown the new
 * factor's secret (TOTP: the QR code) by the kernel, and activates the factor by answering its
 * ceremony (TOTP: a first valid code). MAC'd under the barrier over every field but `mac`.
 */
export interface EnrollmentLinkRecord {
  /** 32 lowercase hex digits. */
  id: string;
  tenant: string;
  /** The API key that asked for the link. */
  apiKeyId: string;
  walletName: string;
  /** The factor kind the link enrols (`totp`). */
  kind: string;
  /** Hex SHA-256 of the page's capability token. */
  capabilityHash: string;
  state: EnrollmentLinkState;
  createdAt: number;
  expiresAt: number;
  completedAt: number | null;
  /** The new factor's secret, sealed by the barrier under record key `enrollment:<id>` (null for a factor with none). */
  secretEnvelope: string | null;
  /** The ceremony's pending data as canonical JSON text (TOTP: `null`). */
  pending: string;
  /** Wrong answers so far (the link fails at the kernel's limit). */
  failures: number;
  mac: string;
}

/** The fields of an enrolment link a step changes (the MAC recomputed over the whole new record). */
export type EnrollmentLinkChange = Pick<EnrollmentLinkRecord, 'state' | 'completedAt' | 'failures' | 'mac'>;

/**
 * A timelocked change of a wallet's protection (kernel/pendingChanges.ts): asked for by the backend
 * (`requested`: waiting for the owner's consent on the kernel's page), then `pending` until
 * `effectiveAt`, when the apply loop makes it take effect (`applied`), unless the owner cancelled it
 * first. A requested change not consented by `expiresAt` is expired (as its state is read). The row
 * carries a MAC under the barrier over every field; cancelling and expiring keep the MAC of the row
 * as it was before (they only take power away).
 */
export type PendingChangeState = 'requested' | 'pending' | 'applied' | 'cancelled' | 'expired';

export interface PendingChangeRecord {
  /** 32 lowercase hex digits. */
  id: string;
  tenant: string;
  /** The API key that asked for it (null: the kernel's own page flow made it, e.g. an enrolment link's completion). */
  apiKeyId: string | null;
  walletName: string;
  /** The kind's name in the registry (`factor.add`, `2fa.disable`, …). */
  kind: string;
  /** The kind's payload as canonical JSON text. */
  payload: string;
  /** Hex SHA-256 of the page's capability token (the page that consents to and cancels the change; the backend that asked holds it). */
  capabilityHash: string;
  /**
   * Hex SHA-256 of the notice link's capability: the cancel link the kernel delivers on the wallet's
   * channel (derived under the barrier from the change's id, never given to the backend).
   */
  noticeCapabilityHash: string;
  state: PendingChangeState;
  createdAt: number;
  /** While `requested`: the owner's consent must come before this. */
  expiresAt: number;
  /** When it takes effect (set when it becomes `pending`). */
  effectiveAt: number | null;
  /** When it was applied, cancelled or expired. */
  decidedAt: number | null;
  /** Reminder times passed, sent or skipped at the decision (0; 1: 24 h before; 2: 1 h before; 3: 30 min before, or the 1 h one sent). */
  reminders: number;
  /** Wrong cancel answers: the change's own counter (never a factor's lock). */
  cancelFailures: number;
  /** The consent's evidence as canonical JSON text (null while requested). */
  consent: string | null;
  mac: string;
}

/** The fields of a pending change a step changes (the MAC recomputed over the whole new record). */
export type PendingChangeChange = Pick<PendingChangeRecord, 'state' | 'effectiveAt' | 'decidedAt' | 'reminders' | 'cancelFailures' | 'consent' | 'mac'>;

/** A wallet's safe address (the emergency exit's destination), set only through a timelocked change; MAC'd. */
export interface SafeAddressRecord {
  walletName: string;
  /** 0x + 40 lowercase hex digits. */
  address: string;
  updatedAt: number;
  mac: string;
}

/**
 * An address of a tenant's JSON-RPC address book (`POST /v1/rpc/accounts`, kernel/rpcAccounts.ts):
 * `eth_accounts` lists them, and a request's `from` resolves to the wallet and key index. The kernel
 * derives the address again from the wallet and key index before it signs, so a row altered in the
 * database cannot point an address at another key (it is refused, not signed).
 */
export interface RpcAccountRecord {
  tenant: string;
  /** 0x + 40 lowercase hex digits. */
  address: string;
  walletName: string;
  keyIndex: number;
  createdAt: number;
}

/**
 * A JSON-RPC signing request that waits for its approval (kernel/rpcAccounts.ts): the identical
 * request (same tenant, method and parameters as sent) finds the approval again, and signs the
 * operation stored here — filled once (nonce, gas, fees) when the approval was made.
 */
export interface RpcRequestRecord {
  tenant: string;
  /** 64 hex digits: SHA-256 of the method and its parameters as sent (canonical JSON). */
  requestKey: string;
  approvalId: string;
  /** The operation as filled and sent for approval, canonical JSON text (the approval's opHash binds it). */
  operation: string;
  createdAt: number;
}

/**
 * A sign or approval request's stored result under its Idempotency-Key (kernel/idempotency.ts):
 * keyed by (tenant, API key id, key), kept 24 h. `requestHash` is what the retry must match (the
 * operation without its consent); `response` is the result sealed under the barrier (record key:
 * tenant, API key id, key, request hash and creation time), so that a database writer can neither
 * read it (an approval's link holds its capability) nor alter or move it.
 */
export interface IdempotencyRecord {
  tenant: string;
  apiKeyId: string;
  idempotencyKey: string;
  /** 64 hex digits. */
  requestHash: string;
  /** Barrier envelope of the result's canonical JSON. */
  response: string;
  createdAt: number;
}

/**
 * A wallet's own policy (kernel/walletPolicy.ts), overriding the deployment's defaults field by
 * field: the override as canonical JSON text, with a MAC under the barrier over the tenant, the
 * wallet name, the text and the time it was set, so that a database writer cannot loosen it.
 */
export interface WalletPolicyRecord {
  walletName: string;
  tenant: string;
  /** The override, canonical JSON text. */
  policy: string;
  updatedAt: number;
  mac: string;
}

/**
 * What one signature counted against its wallet's limits (kernel/evaluatePolicy.ts), written in the
 * unit of the signature and its audit record; the rolling window sums the rows younger than it.
 */
export interface PolicyUsageRecord {
  walletName: string;
  /** The seq of the signature's audit record (one row per signature). */
  auditSeq: number;
  ts: number;
  /** What was counted, canonical JSON text: `{ "native:<chainId>": "<wei>", "token:<chainId>:<address>": "<base units>" }`. */
  amounts: string;
}

/**
 * The operations of one unit of work. Everything written through a StoreTx becomes durable in the
 * same database transaction — or not at all. The store may group several units of work into one
 * transaction (group commit); a unit that throws is undone alone, and a unit's promise settles only
 * after the commit. A unit may be run more than once (the store re-runs a batch, each unit in a
 * savepoint, when one of its units throws), so a unit must not act outside its StoreTx: no
 * delivery, no outside state changed, only reads, pure computation and writes through the StoreTx.
 */
export interface StoreTx {
  /** Reads the wallet row, locking it against concurrent units (row lock / single writer). */
  getWalletForUpdate(walletName: string): Promise<WalletRecord | undefined>;
  /** Creates a wallet row; throws if one of that name exists. */
  insertWallet(record: WalletRecord): Promise<void>;
  /** Replaces the wallet row's MAC (its factor list changed). */
  updateWalletMac(walletName: string, mac: string): Promise<void>;
  /** Sets or clears a wallet's freeze with the row's new MAC (kernel/freeze.ts); throws if no row was updated. */
  setWalletFrozen(walletName: string, frozenAt: number | null, mac: string): Promise<void>;
  /** Records the hash of the wallet's owner-page capability (deterministic: the same hash every time; any other value in the column is replaced). */
  setWalletOwnerLink(walletName: string, linkHash: string): Promise<void>;
  /** The wallet whose owner-page capability hashes to `linkHash`, locked (row lock / single writer). */
  getWalletByOwnerLinkForUpdate(linkHash: string): Promise<WalletRecord | undefined>;
  /** A wallet's recovery codes, locked (row lock / single writer). */
  getRecoveryCodesForUpdate(walletName: string): Promise<RecoveryCodesRecord | undefined>;
  /** Stores a wallet's recovery codes, replacing its row if it has one. */
  putRecoveryCodes(record: RecoveryCodesRecord): Promise<void>;
  /**
   * A cancel budget (kernel/ownerDevice.ts), locked (row lock / single writer): `fresh` is inserted
   * first when the wallet has no row under its key, and the row in force is returned.
   */
  lockCancelBudget(fresh: CancelBudgetRecord): Promise<CancelBudgetRecord>;
  /** Writes a cancel budget's counts and MAC (the row exists: lockCancelBudget made it). */
  updateCancelBudget(record: CancelBudgetRecord): Promise<void>;
  /** Reads the factor row, locking it against concurrent units (row lock / single writer). */
  getTotpFactorForUpdate(walletName: string): Promise<TotpFactorRecord | undefined>;
  /** Creates the TOTP factor of an existing wallet row; throws already_enrolled if one exists. */
  insertTotpFactor(record: TotpFactorRecord): Promise<void>;
  /** Writes a factor's new state with its MAC recomputed over it (consent/consent.ts macFactorRecord). */
  updateTotpFactorState(walletName: string, state: TotpFactorState, mac: string): Promise<void>;
  /** A wallet's passkeys, locked (row lock / single writer), oldest first (by createdAt, then credentialId). */
  listPasskeysForUpdate(walletName: string): Promise<PasskeyCredentialRecord[]>;
  /** Stores a new passkey of an existing wallet row; throws CustosError `already_enrolled` (field `credentialId`) when the credential id is stored already (for any wallet). */
  insertPasskey(record: PasskeyCredentialRecord): Promise<void>;
  /** Writes a passkey's new counter with its MAC recomputed over it; throws if no row was updated. */
  updatePasskeyCounter(credentialId: string, counter: number, mac: string): Promise<void>;
  /** A wallet's hardware key, locked (row lock / single writer), or undefined. */
  getHwkeyFactorForUpdate(walletName: string): Promise<HwkeyFactorRecord | undefined>;
  /** Stores the hardware key of an existing wallet row; throws CustosError `already_enrolled` when the wallet has one. */
  insertHwkeyFactor(record: HwkeyFactorRecord): Promise<void>;
  /** Writes an hwkey's new state (its challenge window) with its MAC recomputed over it; throws if no row was updated. */
  updateHwkeyFactorState(walletName: string, state: { windowStart: number; issued: number }, mac: string): Promise<void>;
  /**
   * The upgrade's one-time MAC pass: true once, for the unit that clears the store's "records not
   * yet MAC'd" mark (set by schema migration 2 on a store that held a signer); false ever after.
   */
  claimRecordMacMigration(): Promise<boolean>;
  /** Every wallet row with its factor row (for the MAC pass of the upgrade). */
  listWalletRows(): Promise<Array<{ wallet: WalletRecord; totp: TotpFactorRecord | undefined }>>;
  /** Sets the MACs of a wallet row and (when it has one) of its factor row, written by the MAC pass. */
  setRecordMacs(walletName: string, walletMac: string, totpMac: string | null): Promise<void>;
  /** Whether the audit log holds a record of `action` (any decision): a scan, used only by the upgrade's MAC pass. */
  hasAuditAction(action: string): Promise<boolean>;
  /**
   * The newest `row.anchor` audit record whose opHash is `subject` (kernel/rowAnchors.ts), or
   * undefined: an index lookup (migration 17), read in the unit that uses the anchored row.
   */
  latestRowAnchor(subject: string): Promise<AuditRecord | undefined>;
  /** Stores a new approval; throws when one with that id or capability hash exists. */
  insertApproval(record: ApprovalRecord): Promise<void>;
  /** Reads an approval by id, locking it against concurrent units (row lock / single writer). */
  getApprovalForUpdate(id: string): Promise<ApprovalRecord | undefined>;
  /** Reads an approval by its capability hash, locking it (the approval page's lookup). */
  getApprovalByCapabilityForUpdate(capabilityHash: string): Promise<ApprovalRecord | undefined>;
  /** Writes a decision (state, decidedAt, evidence, consumedSeq) with its new MAC. */
  updateApproval(id: string, change: ApprovalChange): Promise<void>;
  /** How many approvals are `pending` and unexpired (expiresAt > now): of the wallet, and of the tenant. */
  countPendingApprovals(tenant: string, walletName: string, now: number): Promise<{ wallet: number; tenant: number }>;
  /**
   * `pending` and `approved` (not yet used) approvals with expiresAt <= now, by expiry then id, at
   * most `limit`, locked (the expiry sweep); with `after`, only those past it in that order (the
   * sweep's cursor, so that rows it leaves as they are do not hold it up).
   */
  listExpiredOpenApprovals(now: number, limit: number, after?: { expiresAt: number; id: string }): Promise<ApprovalRecord[]>;
  /** The `pending` approvals (expired or not) created by one API key, locked (its revocation cancels them). */
  listPendingApprovalsOfApiKey(apiKeyId: string): Promise<ApprovalRecord[]>;
  /** Stores a new enrolment link; throws when one with that id or capability hash exists. */
  insertEnrollmentLink(record: EnrollmentLinkRecord): Promise<void>;
  /** Reads an enrolment link by its capability hash, locking it. */
  getEnrollmentLinkByCapabilityForUpdate(capabilityHash: string): Promise<EnrollmentLinkRecord | undefined>;
  /** The `pending` enrolment links of a wallet (expired or not), locked, oldest first (a new link replaces them). */
  listPendingEnrollmentLinksOfWallet(walletName: string): Promise<EnrollmentLinkRecord[]>;
  /** Writes a step of an enrolment link (state, completedAt, failures) with its new MAC; throws if no row was updated. */
  updateEnrollmentLink(id: string, change: EnrollmentLinkChange): Promise<void>;
  /** Stores a new pending change; throws when one with that id or capability hash exists. */
  insertPendingChange(record: PendingChangeRecord): Promise<void>;
  /** A pending change by id, locked. */
  getPendingChangeForUpdate(id: string): Promise<PendingChangeRecord | undefined>;
  /** A pending change by its page's or its notice link's capability hash, locked (the page's lookup). */
  getPendingChangeByCapabilityForUpdate(capabilityHash: string): Promise<PendingChangeRecord | undefined>;
  /** The `requested` and `pending` changes of a wallet (expired or not), locked, oldest first. */
  listOpenPendingChangesOfWallet(walletName: string): Promise<PendingChangeRecord[]>;
  /**
   * `pending` changes with effectiveAt <= `by`, by effectiveAt then id, at most `limit`, locked (the
   * apply loop: due ones and reminders); with `after`, only those after it in that order (keyset paging).
   */
  listPendingChangesDueBy(by: number, limit: number, after?: { effectiveAt: number; id: string }): Promise<PendingChangeRecord[]>;
  /** Writes a step of a pending change with its new MAC; throws if no row was updated. */
  updatePendingChange(id: string, change: PendingChangeChange): Promise<void>;
  /** The wallet's safe address, locked, or undefined. */
  getSafeAddressForUpdate(walletName: string): Promise<SafeAddressRecord | undefined>;
  /** Sets (inserts or replaces) the wallet's safe address. */
  putSafeAddress(record: SafeAddressRecord): Promise<void>;
  /** Deletes one factor row of a wallet (a timelocked removal; the caller rewrites the wallet's MAC); throws if no row was deleted. */
  deleteFactorRow(kind: 'totp' | 'passkey' | 'hwkey' | 'oob', walletName: string, id: string): Promise<void>;
  /** Adds an address to its tenant's JSON-RPC address book; false (nothing written) when the tenant has it already. */
  insertRpcAccount(record: RpcAccountRecord): Promise<boolean>;
  /** Stores a JSON-RPC request's approval, replacing the one stored under the same tenant and request key. */
  putRpcRequest(record: RpcRequestRecord): Promise<void>;
  /** Forgets a JSON-RPC request's approval, only while it is still `approvalId` (a newer one is kept). */
  deleteRpcRequest(tenant: string, requestKey: string, approvalId: string): Promise<void>;
  /** Forgets every JSON-RPC request stored before `createdBefore` (their approvals have expired); how many. */
  deleteRpcRequestsBefore(createdBefore: number): Promise<number>;
  /**
   * Housekeeping (kernel/housekeeping.ts): deletes at most `limit` approvals in a final state
   * (rejected, expired, cancelled, consumed) whose expiresAt < `before`; returns how many.
   */
  deleteFinishedApprovalsBefore(before: number, limit: number): Promise<number>;
  /** Housekeeping: deletes at most `limit` enrolment links (any state) whose expiresAt < `before`; returns how many. */
  deleteEnrollmentLinksBefore(before: number, limit: number): Promise<number>;
  /** Housekeeping: deletes at most `limit` outbox messages no longer queued (sent, failed, expired) created and expired before `before`; returns how many. */
  deleteFinishedOutboxBefore(before: number, limit: number): Promise<number>;
  /** The stored result under (tenant, API key id, Idempotency-Key), whatever its age (the caller ignores one older than 24 h). */
  getIdempotency(tenant: string, apiKeyId: string, idempotencyKey: string): Promise<IdempotencyRecord | undefined>;
  /** Stores (inserts, or replaces an expired row under the same key) a result. */
  putIdempotency(record: IdempotencyRecord): Promise<void>;
  /** Forgets at most `limit` stored results created before `createdBefore` (oldest first); how many (a bounded unit: housekeeping calls it until fewer come back). */
  deleteIdempotencyBefore(createdBefore: number, limit: number): Promise<number>;
  /** A wallet's policy override (the wallet row is locked by the unit's getWalletForUpdate). */
  getWalletPolicy(walletName: string): Promise<WalletPolicyRecord | undefined>;
  /** Writes (inserts or replaces) a wallet's policy override. */
  putWalletPolicy(record: WalletPolicyRecord): Promise<void>;
  /** The usage rows of a wallet with `ts` > `since`, oldest first. */
  listPolicyUsage(walletName: string, since: number): Promise<PolicyUsageRecord[]>;
  insertPolicyUsage(record: PolicyUsageRecord): Promise<void>;
  /** Deletes usage rows with `ts` < `before` (older than any window); returns how many. */
  deletePolicyUsageBefore(before: number): Promise<number>;
  /** Replaces a pending enrolment link's sealed secret and ceremony data (a delivery address set on the page) with its new MAC; throws if no row was updated. */
  updateEnrollmentLinkSecret(id: string, change: Pick<EnrollmentLinkRecord, 'secretEnvelope' | 'pending' | 'mac'>): Promise<void>;
  /** A wallet's delivery channel, locked (row lock / single writer). */
  getOobChannelForUpdate(walletName: string): Promise<OobChannelRecord | undefined>;
  /** Stores the delivery channel of an existing wallet row; throws already_enrolled if it has one. */
  insertOobChannel(record: OobChannelRecord): Promise<void>;
  /** Writes the channel's new state (JSON text) with its MAC; throws if no row was updated. */
  updateOobChannelState(walletName: string, state: string, mac: string): Promise<void>;
  /** Deletes the wallet's delivery channel (a change of address replaces it in the same unit); throws if no row was deleted. */
  deleteOobChannel(walletName: string): Promise<void>;
  /** Queues a message (sent after the unit commits). */
  insertOutbox(record: OutboxRecord): Promise<void>;
  /** How many messages were queued for `walletName` after `since` (ms): the wallet's hourly cap across its enrolment links' address checks. */
  countOutboxSince(walletName: string, since: number): Promise<number>;
  /** How many messages were queued for the recipient with `addressTag` after `since` (ms), whatever the wallet: an address's own hourly cap. */
  countOutboxToAddressSince(addressTag: string, since: number): Promise<number>;
  /**
   * Claims up to `limit` queued messages due at `now` whose lease is free (none, or run out), setting
   * their lease to `leaseUntil`: one sender (one replica) holds each (`FOR UPDATE SKIP LOCKED` on
   * PostgreSQL; SQLite has one writer). Oldest first.
   */
  claimOutbox(now: number, limit: number, leaseUntil: number): Promise<OutboxRecord[]>;
  /** Writes a message's delivery result; throws if no row was updated. */
  updateOutbox(id: string, change: OutboxChange): Promise<void>;
  insertApiKey(record: ApiKeyRecord): Promise<void>;
  /** Marks the key revoked; false when no such (unrevoked) key exists. */
  revokeApiKey(id: string, revokedAt: number): Promise<boolean>;
  /**
   * Replaces the sealed root if, and only if, it is still `expected` (compare-and-swap on the stored
   * JSON text: `UPDATE meta SET sealed_root = next WHERE sealed_root = expected`). False when it
   * changed meanwhile (another rekey won): nothing is written. The rekey's one switch.
   */
  swapSealedRoot(expected: unknown, next: unknown): Promise<boolean>;
  /** Appends to the one audit chain; throws audit_unavailable when the record cannot be written. */
  appendAudit(entry: AuditEntry): Promise<AuditRecord>;
  /** The audit chain's head as this unit sees it (under the batch's lock): seq 0 for an empty log. */
  auditHead(): Promise<{ seq: number; hash: string }>;
  /** The highest seq a stored checkpoint commits to, 0 when there is none. */
  latestAuditCheckpointSeq(): Promise<number>;
  /** Stores a signed checkpoint; false (nothing written) when one for that seq is stored already. */
  appendAuditCheckpoint(checkpoint: AuditCheckpoint): Promise<boolean>;

  // ---- issue 13: quorum (migration 15; kernel/quorum/) ----
  /** A kernel setting row (`quorum`, `deployment`), locked (row lock / single writer). */
  getSettingForUpdate(name: string): Promise<SettingRecord | undefined>;
  /** Writes a setting row (insert or replace). */
  putSetting(record: SettingRecord): Promise<void>;
  /** Every API key row (the quorum bootstrap MACs them). */
  listApiKeysForUpdate(): Promise<ApiKeyRecord[]>;
  /** Sets an API key row's MAC; throws if no row was updated. */
  setApiKeyMac(id: string, mac: string): Promise<void>;
  /** Stores a new proposal; throws CustosError `proposal_exists` when one with that id exists. */
  insertProposal(record: ProposalRecord): Promise<void>;
  /** A proposal by id, locked (row lock / single writer). */
  getProposalForUpdate(id: string): Promise<ProposalRecord | undefined>;
  /** Writes a proposal's decision (state, decidedAt, result) with its new MAC; throws if no row was updated. */
  updateProposal(id: string, change: Pick<ProposalRecord, 'state' | 'decidedAt' | 'result' | 'mac'>): Promise<void>;
  /** Stores one admin's approval of a proposal; false (nothing written) when that admin approved it already. */
  insertProposalApproval(record: ProposalApprovalRecord): Promise<boolean>;
  /** A proposal's approvals, oldest first. */
  listProposalApprovals(proposalId: string): Promise<ProposalApprovalRecord[]>;
  /**
   * Whether the audit log holds an allowed `quorum.propose` or `quorum.apply` record of this
   * proposal id (a scan; the proposal routes only): an id once proposed is never proposed again,
   * even if its row was deleted.
   */
  hasProposalAudit(proposalId: string): Promise<boolean>;

  // ---- issue 13: admin passkeys (migration 16; kernel/quorum/adminPasskeys.ts) ----
  insertAdminEnrollmentLink(record: AdminEnrollmentLinkRecord): Promise<void>;
  /** An admin enrolment link by the hash of its capability, locked. */
  getAdminEnrollmentLinkForUpdate(tokenHash: string): Promise<AdminEnrollmentLinkRecord | undefined>;
  /** Marks a link used (the candidate it made) with its new MAC; throws if no row was updated. */
  updateAdminEnrollmentLink(tokenHash: string, change: Pick<AdminEnrollmentLinkRecord, 'usedAt' | 'adminId' | 'mac'>): Promise<void>;
  /** Stores a registered admin passkey (a candidate); false (nothing written) when its id or credential id is stored already. */
  insertAdminPasskey(record: AdminPasskeyRecord): Promise<boolean>;
  /** An admin passkey by admin id (`pk:…`), locked. */
  getAdminPasskeyForUpdate(id: string): Promise<AdminPasskeyRecord | undefined>;
  /** Saves an admin passkey's signature counter with the row's new MAC; throws if no row was updated. */
  updateAdminPasskeyCounter(id: string, counter: number, mac: string): Promise<void>;
}

/** A single-use link on which a new admin registers a passkey (kernel/quorum/adminPasskeys.ts). */
export interface AdminEnrollmentLinkRecord {
  /** SHA-256 (hex) of the link's capability; the capability itself is never stored. */
  tokenHash: string;
  /** A label for people, at most 64 characters. */
  name: string;
  /** The registration ceremony's challenge and WebAuthn user handle (base64url, random). */
  challenge: string;
  userId: string;
  createdAt: number;
  expiresAt: number;
  usedAt: number | null;
  /** The candidate it made (`pk:…`), once used. */
  adminId: string | null;
  /** Hex MAC under the barrier over every other field. */
  mac: string;
}

/** An admin passkey registered on an enrolment link: a candidate, an admin once the admin set names it. */
export interface AdminPasskeyRecord {
  /** `pk:` and SHA-256 (hex) of the credential id's bytes. */
  id: string;
  /** base64url. */
  credentialId: string;
  /** The COSE public key, base64url. */
  publicKey: string;
  rpId: string;
  /** JSON array of transport hints. */
  transports: string;
  name: string;
  /** The authenticator's signature counter as last seen. */
  counter: number;
  createdAt: number;
  /** Hex MAC under the barrier over every other field. */
  mac: string;
}

/** A kernel setting: one MAC'd JSON row per name (kernel/quorum/settings.ts). */
export interface SettingRecord {
  name: string;
  /** Canonical JSON. */
  value: string;
  /** 1 for the first write, +1 for each change. */
  version: number;
  updatedAt: number;
  /** Hex MAC under the barrier over name, value, version and updatedAt. */
  mac: string;
}

/** `pending` → `applied` (threshold met) | `expired`; `consumed`: an applied authorization used up (rekey). */
export type ProposalState = 'pending' | 'applied' | 'expired' | 'consumed';

/** A change that M admins must approve (kernel/quorum/proposals.ts). */
export interface ProposalRecord {
  /** Chosen by the proposer: 32 lowercase hex digits. */
  id: string;
  kind: string;
  /** The exact change, canonical JSON. */
  payload: string;
  /** SHA-256 (hex) of the domain label and canonical JSON of { kind, payload }. */
  payloadHash: string;
  /** The proposing admin's Ed25519 public key (hex) and its signature over (label, id, payloadHash). */
  proposer: string;
  proposerSignature: string;
  createdAt: number;
  expiresAt: number;
  state: ProposalState;
  decidedAt: number | null;
  /** What applying it returned (canonical JSON, no secret), or null. */
  result: string | null;
  /** Hex MAC under the barrier over every other field. */
  mac: string;
}

/** One admin's Ed25519 signature over (label, proposal id, payloadHash). Self-authenticating: no MAC. */
export interface ProposalApprovalRecord {
  proposalId: string;
  admin: string;
  signature: string;
  createdAt: number;
}

export interface Store {
  readonly kind: 'sqlite' | 'postgres';
  getMeta(): Promise<SignerMeta | undefined>;
  /** Writes the signer's meta once; throws already_initialized if present. */
  initMeta(meta: SignerMeta): Promise<void>;

  getApiKey(id: string): Promise<ApiKeyRecord | undefined>;
  listApiKeys(): Promise<ApiKeyRecord[]>;
  /** Sets the key's last use to `at` unless a later one is recorded (an informational column, outside any unit and not audited). */
  touchApiKey(id: string, at: number): Promise<void>;

  insertSession(record: SessionRecord): Promise<void>;
  getSession(tokenHash: string): Promise<SessionRecord | undefined>;
  deleteExpiredSessions(now: number): Promise<number>;

  /** A wallet's rows, unlocked (reads and `custos audit verify --factors`); the kernel checks their MACs. */
  readWalletRows(walletName: string): Promise<WalletRows>;
  /**
   * One page of a tenant's wallets (GET /v1/wallets/list), unlocked, in one snapshot: the wallets of
   * `tenant` whose names come after `after` (all when null) and, when `prefix` is given, start with it
   * — the bound is in the query, not a filter after it — in code point order, at most `limit`; each
   * with its rows as readWalletRows reads them (the kernel checks their MACs) and its number of
   * pending timelocked changes (state `pending`).
   */
  readWalletPage(query: { tenant: string; prefix: string | null; after: string | null; limit: number }): Promise<WalletPageEntry[]>;
  /** The wallet whose owner-page capability hashes to `linkHash`, unlocked (the owner pages' GET). */
  readWalletByOwnerLink(linkHash: string): Promise<WalletRecord | undefined>;
  /** As the unit's latestRowAnchor, outside a unit (an unlocked read of an anchored row: read the anchor first, then the row). */
  readRowAnchor(subject: string): Promise<AuditRecord | undefined>;
  /** A wallet's audit records with seq < `beforeSeq` (all when undefined), newest first, at most `limit` (the owner's activity page). */
  readWalletAudit(walletName: string, limit: number, beforeSeq?: number): Promise<AuditRecord[]>;
  /**
   * The `admin.notice` audit records (kernel/quorum/tellAdmins.ts) with seq < `beforeSeq` (all when
   * undefined), newest first, at most `limit`: the admin page's and `custos admin notices`' list.
   */
  readAdminNotices(limit: number, beforeSeq?: number): Promise<AuditRecord[]>;

  /** Runs one unit of work; see StoreTx. The result is returned only after the commit. */
  transact<T>(work: (tx: StoreTx) => Promise<T>): Promise<T>;

  /** Audit records with seq ≥ fromSeq, ascending, at most `limit`. */
  readAudit(fromSeq: number, limit: number): Promise<AuditRecord[]>;
  /** The audit records matching `query` (seq > afterSeq and every filter given), ascending, at most `limit`. */
  queryAudit(query: AuditQuery): Promise<AuditRecord[]>;
  /** Stored audit checkpoints with seq ≥ fromSeq, ascending, at most `limit`. */
  readAuditCheckpoints(fromSeq: number, limit: number): Promise<AuditCheckpoint[]>;

  /** An approval by id, unlocked (GET /v1/approvals/{id} and its long poll); the kernel checks its MAC. */
  readApproval(id: string): Promise<ApprovalRecord | undefined>;
  /** An approval by its capability hash, unlocked (the approval page's GET: it decides nothing, so it never waits on writers). */
  readApprovalByCapability(capabilityHash: string): Promise<ApprovalRecord | undefined>;
  /** The newest outbox message of an approval, unlocked (GET /v1/approvals/{id} shows its status), or undefined. */
  readApprovalDelivery(approvalId: string): Promise<Pick<OutboxRecord, 'status' | 'attempts' | 'sentAt'> | undefined>;
  /** An enrolment link by its capability hash, unlocked (the enrolment page's GET). */
  readEnrollmentLinkByCapability(capabilityHash: string): Promise<EnrollmentLinkRecord | undefined>;

  /** A pending change by its page's or its notice link's capability hash, unlocked (the page's GET). */
  readPendingChangeByCapability(capabilityHash: string): Promise<PendingChangeRecord | undefined>;
  /** A pending change by id, unlocked (GET /v1/changes). */
  readPendingChange(id: string): Promise<PendingChangeRecord | undefined>;

  /** An address of the tenant's JSON-RPC address book (address: 0x + 40 lowercase hex digits). */
  readRpcAccount(tenant: string, address: string): Promise<RpcAccountRecord | undefined>;
  /** The tenant's address book in insertion order (createdAt, then address), at most `limit`, after `after` when given. */
  listRpcAccounts(tenant: string, limit: number, after?: { createdAt: number; address: string }): Promise<RpcAccountRecord[]>;
  /** A JSON-RPC request's approval, by tenant and request key. */
  readRpcRequest(tenant: string, requestKey: string): Promise<RpcRequestRecord | undefined>;
  /** As the unit's getWalletPolicy / listPolicyUsage, outside a unit (GET /v1/wallets/policy). */
  readWalletPolicy(walletName: string): Promise<WalletPolicyRecord | undefined>;
  readPolicyUsage(walletName: string, since: number): Promise<PolicyUsageRecord[]>;

  /** The distinct rpIDs the stored passkeys (owners' and admins') were registered for (the start-up check that the public URL's host did not change). */
  listPasskeyRpIds(): Promise<string[]>;

  // ---- issue 13: quorum (migration 15) ----
  /** A kernel setting row, unlocked; the kernel checks its MAC. */
  readSetting(name: string): Promise<SettingRecord | undefined>;
  /** A proposal by id, unlocked; the kernel checks its MAC. */
  readProposal(id: string): Promise<ProposalRecord | undefined>;
  /** The newest proposals first, at most `limit`. */
  listProposals(limit: number): Promise<ProposalRecord[]>;
  /** A proposal's approvals, oldest first. */
  readProposalApprovals(proposalId: string): Promise<ProposalApprovalRecord[]>;

  // ---- issue 13: admin passkeys (migration 16) ----
  readAdminEnrollmentLink(tokenHash: string): Promise<AdminEnrollmentLinkRecord | undefined>;
  readAdminPasskey(id: string): Promise<AdminPasskeyRecord | undefined>;
  /** Every registered admin passkey (candidates and admins), oldest first. */
  listAdminPasskeys(): Promise<AdminPasskeyRecord[]>;

  /** Whether the database answers (readiness). */
  ping(): Promise<boolean>;

  /**
   * Whether writes (audit appends) work (readiness, docs/audit.md "When the audit cannot be
   * written"): true while no write failed since the last unit of work that committed; after a
   * failure (audit_unavailable, a failed COMMIT), one probe — a `sys.audit-resumed` audit record in
   * a unit of work of its own, at most one at a time — whose commit clears the failure. Optional: a
   * store without it is taken as writable.
   */
  writable?(): Promise<boolean>;

  /**
   * How long the oldest unit of work waiting for the next transaction has waited (ms; 0 when none
   * waits): the HTTP shell refuses new requests `overloaded` while it is over its limit, before any
   * work is done for them (issue 14, point 5). Optional: a store without it never looks congested.
   */
  queueDelayMs?(): number;

  close(): Promise<void>;
}
