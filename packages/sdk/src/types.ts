/** Request and response shapes of the `/v1` API (see README "The API" and the served OpenAPI document). */

export type Hex = `0x${string}`;
export type Address = `0x${string}`;

export interface UnsealProgress {
  submitted: number;
  threshold: number;
}

export interface SignerStatus {
  sealed: boolean;
  signerId: string | null;
  version: string;
  derivation: string | null;
  /** How the signer unseals; `progress` while a Shamir signer collects shares. */
  unsealer: {
    type: 'passphrase' | 'shamir' | 'pkcs11';
    threshold?: number;
    shares?: number;
    /** shamir: whether the share files are signed (false: an older set; `custos rekey` issues a signed one). */
    sharesSigned?: boolean;
    progress?: UnsealProgress;
    /** pkcs11: the token and the key that hold the KEK. */
    tokenLabel?: string;
    keyLabel?: string;
    keyId?: string;
  } | null;
  /** After a Shamir share was accepted below the threshold. */
  progress?: UnsealProgress;
  /** The audit public key (Ed25519, hex) while unsealed, null while sealed; the anchor is the one `custos init` printed. */
  auditPublicKey?: string | null;
}

/**
 * What `POST /v1/sys/unseal` takes: the passphrase, one operator's Shamir share file (text or parsed
 * JSON), or the PKCS#11 user PIN (only when the server was started with `--pkcs11-module`).
 */
export type UnsealBody = { passphrase: string } | { share: string | Record<string, unknown> } | { pin: string };

export interface EnrollTotpResult {
  walletName: string;
  /** otpauth:// URI holding the TOTP secret: show it to the wallet owner (QR), never log it. */
  otpauthUri: string;
  qrSvg: string;
  securityObject: string;
}

export interface KeyInfo {
  walletName: string;
  keyIndex: number;
  /** 33-byte compressed secp256k1 public key, hex. */
  publicKey: string;
  /** EIP-55 checksummed address. */
  address: Address;
}

export interface WalletInfo {
  walletName: string;
  factors: string[];
  createdAt: number;
}

/** A wallet of a page of `GET /v1/wallets/list`. */
export interface WalletListItem {
  walletName: string;
  createdAt: number;
  /** The kinds of its factors (as getWallet). */
  factors: string[];
  /** When it was frozen (ms since the epoch), or null. */
  frozenAt: number | null;
  /** Until when a factor's throttle locks it (the latest, ms since the epoch), or null. */
  lockedUntil: number | null;
  /** Its timelocked changes waiting out their delay. */
  pendingChanges: number;
}

/** A listed wallet whose rows fail their checks (record MACs, owner): its name only; its own routes answer record_unreadable. */
export interface UnreadableWalletListItem {
  walletName: string;
  unreadable: true;
}

/** A page of `GET /v1/wallets/list`: pass `nextCursor` as `cursor` for the next. */
export interface WalletListPage {
  wallets: Array<WalletListItem | UnreadableWalletListItem>;
  /** null only for an empty first page. */
  nextCursor: string | null;
  /** More wallets followed this page when it was read. */
  more: boolean;
}

/** Limits in base units (wei, or a token's smallest unit), decimal strings: no price oracle. */
export interface AmountLimit {
  perTx?: string;
  perWindow?: string;
}

/** A wallet policy (docs/policy.md); in an override every field is optional. */
export interface WalletPolicy {
  requiredStrength?: 'none' | 'present' | 'bound';
  windowSeconds?: number;
  maxSignaturesPerWindow?: number;
  /** Per chain id (decimal): the transactions' maximum cost (value + gas × max fee). */
  native?: Record<string, AmountLimit>;
  /** Per `<chainId>:<token address>`. */
  tokens?: Record<string, AmountLimit>;
  unknownToken?: 'deny' | 'allow';
  destinations?: string[];
  otherDestinations?: 'deny' | 'bound';
  deniedDestinations?: string[];
  contracts?: string[];
  rawHash?: 'deny' | 'allow';
  /** The consent an enrolled wallet without limits needs for flows the limits cannot count: `bound` (default) or `present` (weaker). */
  uncountable?: 'bound' | 'present';
}

/** `GET`/`PUT /v1/wallets/policy`: the policy in force, the wallet's override, the usage in the current window. */
export interface WalletPolicyView {
  walletName: string;
  policy: WalletPolicy & Required<Pick<WalletPolicy, 'requiredStrength' | 'windowSeconds' | 'unknownToken' | 'otherDestinations' | 'rawHash' | 'uncountable'>>;
  override: WalletPolicy | null;
  usage: { windowSeconds: number; since: number; signatures: number; amounts: Record<string, string> };
}

/**
 * Which key signs, and the consent when the wallet has a factor enrolled: the second-factor `code`,
 * or `approvalId`, an approval the owner approved for exactly this operation (not both).
 */
export interface KeyRef {
  walletName: string;
  keyIndex: number;
  code?: string | undefined;
  approvalId?: string | undefined;
}

export interface SignHashRequest extends KeyRef {
  hash: string;
}

export interface SignHashResult {
  walletName: string;
  keyIndex: number;
  r: string;
  s: string;
  recoveryId: 0 | 1;
  signature: Hex;
  publicKey: string;
  address: Address;
  opHash: string;
  auditSeq: number;
  /** What was signed, as far as the kernel can tell (a raw hash is blind: the summary says so). */
  summary?: OperationSummary;
  summaryText?: string;
}

/** A quantity: decimal or 0x-hex string (bigints and safe integers are converted by the SDK). */
export type Quantity = string | bigint | number;

export interface AccessListItem {
  address: Address;
  storageKeys: Hex[];
}

export interface SignedAuthorizationItem {
  chainId: number;
  address: Address;
  nonce: number;
  r: Hex;
  s: Hex;
  yParity: number;
}

/** The transaction of `POST /v1/sign/transaction` (the contract of the Ethereum operations). */
export interface TransactionRequest {
  type: 'legacy' | 'eip2930' | 'eip1559' | 'eip7702';
  chainId: number;
  nonce: number;
  /** Absent or null: a contract deployment. */
  to?: Address | null | undefined;
  value?: Quantity | undefined;
  data?: Hex | undefined;
  gas: Quantity;
  gasPrice?: Quantity | undefined;
  maxFeePerGas?: Quantity | undefined;
  maxPriorityFeePerGas?: Quantity | undefined;
  accessList?: AccessListItem[] | undefined;
  authorizationList?: SignedAuthorizationItem[] | undefined;
}

/**
 * What the kernel shows the owner of what is signed. Loosely typed: the documented fields, and
 * whatever else the server's codec decodes (ERC-20 transfer, fees, …).
 */
export interface OperationSummary {
  operation?: string;
  chain?: unknown;
  from?: string;
  to?: string | null;
  value?: string;
  [field: string]: unknown;
}

interface SignedOperation {
  walletName: string;
  keyIndex: number;
  address: Address;
  summary: OperationSummary;
  summaryText: string;
  opHash: string;
  auditSeq: number;
}

export interface SignTransactionRequest extends KeyRef {
  transaction: TransactionRequest;
}

export interface SignTransactionResult extends SignedOperation {
  serializedTransaction: Hex;
  transactionHash: Hex;
  signature: { r: Hex; s: Hex; yParity: number; v: number | string };
}

export type MessageInput = { text: string } | { raw: Hex };

export interface SignMessageRequest extends KeyRef {
  message: MessageInput;
}

export interface SignatureResult extends SignedOperation {
  /** 0x r ‖ s ‖ v, 65 bytes. */
  signature: Hex;
  r: Hex;
  s: Hex;
  yParity: number;
  digest: Hex;
}

export interface TypedDataInput {
  domain: Record<string, unknown>;
  types: Record<string, ReadonlyArray<{ name: string; type: string }>>;
  primaryType: string;
  message: Record<string, unknown>;
}

export interface SignTypedDataRequest extends KeyRef {
  typedData: TypedDataInput;
}

export interface AuthorizationInput {
  chainId: number;
  address: Address;
  nonce: number;
}

export interface SignAuthorizationRequest extends KeyRef {
  authorization: AuthorizationInput;
}

export interface SignAuthorizationResult extends Omit<SignedOperation, never> {
  authorization: SignedAuthorizationItem;
  digest: Hex;
}

/** The operation of an approval: exactly one of the sign routes' operations (a hash: 0x + 64 hex digits). */
export type SingleApprovalOperation =
  | { transaction: TransactionRequest }
  | { message: MessageInput }
  | { typedData: TypedDataInput }
  | { authorization: AuthorizationInput }
  | { hash: Hex };

/** One operation of a batch approval: a transaction or an EIP-7702 authorization, with its key index. */
export type BatchApprovalItem = { keyIndex: number; transaction: TransactionRequest } | { keyIndex: number; authorization: AuthorizationInput };

/** Up to 100 transactions and authorizations of one wallet, approved at once; each is then signed on its own route with the approval id. */
export interface BatchApprovalOperation {
  batch: BatchApprovalItem[];
}

export type ApprovalOperation = SingleApprovalOperation | BatchApprovalOperation;

/** `POST /v1/approvals` for one operation: its key index and the operation. */
export interface SingleApprovalRequest {
  walletName: string;
  keyIndex: number;
  operation: SingleApprovalOperation;
  /** How long the owner has to decide, 60–3600 s (default 600). */
  ttlSeconds?: number | undefined;
}

/** `POST /v1/approvals` for a batch: no top-level key index (each item names its own). */
export interface BatchApprovalRequest {
  walletName: string;
  keyIndex?: undefined;
  operation: BatchApprovalOperation;
  /** How long the owner has to decide, 60–3600 s (default 600). */
  ttlSeconds?: number | undefined;
}

export type CreateApprovalRequest = SingleApprovalRequest | BatchApprovalRequest;

/** A batch approval's operations as the view shows them: which are signed (the approval is consumed when all are). */
export interface BatchApprovalStatus {
  items: Array<{
    keyIndex: number;
    operationType: 'transaction' | 'authorization';
    /** The operation's own opHash (what its sign request recomputes). */
    opHash: string;
    signed: boolean;
    /** The audit record of its first signature, once signed. */
    auditSeq: number | null;
  }>;
  signed: number;
}

export type ApprovalState = 'pending' | 'approved' | 'rejected' | 'expired' | 'cancelled' | 'consumed';

/** An approval as `GET /v1/approvals/{id}` shows it. Times in ms since the epoch. */
export interface ApprovalView {
  id: string;
  walletName: string;
  /** null for a batch (each item has its own). */
  keyIndex: number | null;
  operationType: 'transaction' | 'message' | 'typedData' | 'authorization' | 'hash' | 'batch';
  opHash: string;
  summary: OperationSummary;
  summaryText: string;
  /** present: a TOTP code on the page suffices; bound: only the owner's passkey. */
  requiredStrength: 'present' | 'bound';
  state: ApprovalState;
  createdAt: number;
  expiresAt: number;
  decidedAt: number | null;
  factor: string | null;
  /** A batch approval only: its operations and which are signed. */
  batch?: BatchApprovalStatus;
}

/** `POST /v1/approvals`: the view, and the link to hand to the wallet owner (their approval page). */
export interface CreatedApproval extends ApprovalView {
  approveUrl: string;
}

export interface CreateEnrollmentRequest {
  walletName: string;
  /**
   * The factor to enrol: `totp` (the default) or `passkey` (created by the owner on the page; the
   * signer refuses `passkeys_unavailable` when it runs without passkeys).
   */
  kind?: 'totp' | 'passkey' | 'hwkey' | undefined;
  /** How long the link can be used, 300–604800 s (default 86400). */
  ttlSeconds?: number | undefined;
}

/** `POST /v1/enrollments`: the enrolment link to hand to the wallet owner (never the factor's secret). */
export interface CreatedEnrollment {
  /** 32 lowercase hex digits (named in the audit records). */
  id: string;
  walletName: string;
  kind: 'totp' | 'passkey' | 'hwkey';
  /** ms since the epoch. */
  expiresAt: number;
  /** The owner's enrolment page: hand it to the owner only; it is not shown again. */
  enrollUrl: string;
}

/**
 * `POST /v1/factors` with `kind: "hwkey"` (scope register): a hardware key (TAPSIGNER style) the
 * backend enrols for a wallet with no factor yet — the card's account `xpub` with a non-hardened
 * `subpath` of at most 2 steps ("0/5" or "m/0/5"), or a bare compressed `publicKey` (hex). Enrolled
 * this way, its answers count as `present` at most.
 */
export interface EnrollHwkeyRequest {
  walletName: string;
  xpub?: string | undefined;
  subpath?: string | undefined;
  publicKey?: string | undefined;
}

/** The enrolled hardware key: the key its answers are verified against (hex, compressed) and the canonical subpath. */
export interface EnrolledHwkey {
  walletName: string;
  kind: 'hwkey';
  publicKey: string;
  subpath: string;
  enrolledVia: 'api';
}

/** `POST /v1/approvals/{id}/hwkey-challenge`: the digest (hex) the card signs raw at `subpath`, until `expiresAt` (ms). */
export interface HwkeyChallenge {
  digest: string;
  subpath: string;
  expiresAt: number;
}

/** An entry of the tenant's JSON-RPC address book (POST /v1/rpc/accounts). */
export interface RpcAccount {
  /** 0x + 40 lowercase hex digits, derived by the kernel. */
  address: string;
  walletName: string;
  keyIndex: number;
  /** ms since the epoch, when it was first registered. */
  createdAt: number;
}

/** A page of the address book; `nextCursor` null on the last page. */
export interface RpcAccountPage {
  accounts: RpcAccount[];
  nextCursor: string | null;
}

/** A JSON-RPC 2.0 request as `POST /v1/rpc` takes it (no `id`: a notification, answered with nothing). */
export interface JsonRpcRequest {
  jsonrpc: '2.0';
  id?: string | number | null;
  method: string;
  params?: unknown[] | Record<string, unknown>;
}

/** A JSON-RPC 2.0 response: a result, or an error (4100 / 4001 / -326xx; a Custos refusal names its code in `data.code`). */
export interface JsonRpcResponse {
  jsonrpc: '2.0';
  id: string | number | null;
  result?: unknown;
  error?: { code: number; message: string; data?: unknown };
}

/** `POST /v1/changes`: a timelocked change of a wallet's protection (docs/timelock.md). */
export interface RequestChangeRequest {
  walletName: string;
  /** `2fa.disable` (no payload), `factor.remove` ({ kind, id }), `safeAddress.set` ({ address }), `policy.loosen` ({ policy }). */
  kind: '2fa.disable' | 'factor.remove' | 'safeAddress.set' | 'policy.loosen';
  payload?: Record<string, unknown> | undefined;
  /** How long the owner has to consent, 300–604800 s (default 86400). */
  ttlSeconds?: number | undefined;
}

/** A timelocked change as its tenant sees it. */
export interface ChangeView {
  /** 32 lowercase hex digits. */
  id: string;
  walletName: string;
  kind: string;
  /** The change in one line, as the owner's page and notices show it. */
  description: string;
  /** requested: waiting for the owner's consent; pending: takes effect at effectiveAt unless the owner cancels it. */
  state: 'requested' | 'pending' | 'applied' | 'cancelled' | 'expired';
  createdAt: number;
  expiresAt: number;
  effectiveAt: number | null;
  decidedAt: number | null;
  /** policy.loosen only: every field the change alters, old → new, as the kernel computed it (what the owner is shown). */
  policyDiff?: PolicyDiffEntry[];
  /** A TOTP-only wallet's change also needs the admin quorum: `waiting` until it approved, then `approved`; absent when not needed. */
  adminApproval?: 'waiting' | 'approved';
}

/** One field a policy change alters (docs/policy.md). */
export interface PolicyDiffEntry {
  /** `rawHash`, `native.<chainId>.perTx`, `tokens.<chainId>:<address>.perWindow`, `destinations`, … */
  field: string;
  label: string;
  from: string;
  to: string;
  /** A list: every entry added / removed. */
  added?: string[];
  removed?: string[];
  /** Whether this line allows more than before. */
  looser: boolean;
}

/** `POST /v1/changes`: the change and the owner's page (hand it to the owner only; it is not shown again). */
export interface CreatedChange extends ChangeView {
  requiredStrength: 'present' | 'bound';
  changeUrl: string;
}

// ---- issue 13: quorum ----
/** A quorum-protected change (`/v1/admin/proposals…`; docs/quorum.md). */
export interface ProposalView {
  id: string;
  kind: string;
  payload: unknown;
  payloadHash: string;
  description: string;
  proposer: string;
  createdAt: number;
  expiresAt: number;
  state: 'pending' | 'applied' | 'expired' | 'consumed';
  decidedAt: number | null;
  threshold: number;
  approvals: Array<{ admin: string; createdAt: number }>;
  result: unknown;
  /**
   * A pending proposal's subject as the signer stores it now (wallet.change.approve: the change itself,
   * a policy.loosen's diff in `lines`); `matches: false` — approving it is refused with `refusal.code`.
   */
  subject?: { lines: string[]; stored: unknown; matches: boolean; refusal?: { code: string; message: string } };
}

/**
 * A passkey admin's WebAuthn assertion (`AuthenticationResponseJSON`, as `@simplewebauthn/browser`'s
 * `startAuthentication` returns it), whose challenge is SHA-256 of the statement bytes a key-file
 * admin would sign (the kernel's `adminPasskeyChallenge(label, statement)`; docs/quorum.md).
 */
export interface AdminPasskeyAssertion {
  id: string;
  rawId: string;
  type: 'public-key';
  response: { clientDataJSON: string; authenticatorData: string; signature: string; userHandle?: string | null };
  clientExtensionResults?: Record<string, unknown>;
  authenticatorAttachment?: string | null;
}

/**
 * `POST /v1/admin/proposals`: the proposer's admin key signs
 * `custos.quorum.propose.v2 ‖ 0 ‖ signerId ‖ 0 ‖ id ‖ 0 ‖ proposer ‖ 0 ‖ expiresAt ‖ 0 ‖ payloadHash`
 * (the kernel's signAdminMessage; signerId from `GET /v1/sys/status`). An id is used once. A passkey
 * admin (`proposer: "pk:…"`) sends its assertion over SHA-256 of those bytes as `signature`.
 */
export interface ProposeChangeRequest {
  id: string;
  kind: string;
  payload: unknown;
  proposer: string;
  signature: string | AdminPasskeyAssertion;
  /** When the proposal expires, ms since the epoch (60 s to 30 days from now): part of what every admin signs. */
  expiresAt: number;
}

/**
 * `POST /v1/admin/proposals/{id}/approvals`: the admin signs
 * `custos.quorum.approve.v2 ‖ 0 ‖ signerId ‖ 0 ‖ id ‖ 0 ‖ proposer ‖ 0 ‖ expiresAt ‖ 0 ‖ payloadHash`,
 * with the payloadHash it computed from the payload it was shown.
 */
export interface ApproveProposalRequest {
  admin: string;
  payloadHash: string;
  /** The Ed25519 signature (hex), or a passkey admin's (`admin: "pk:…"`) assertion. */
  signature: string | AdminPasskeyAssertion;
}

/** A passkey admin's credential in the admin set (docs/quorum.md "Passkey admins"). */
export interface AdminPasskeyCredential {
  credentialId: string;
  /** COSE public key, base64url. */
  publicKey: string;
  rpId: string;
  transports: string[];
}

/** An admin of the set: a key-file admin (its Ed25519 public key) or a passkey admin (`pk:<64 hex>` with its `passkey`). */
export interface AdminEntry {
  publicKey: string;
  name: string;
  /** Where proposals, freezes and changes to approve are announced to this admin. */
  email?: string;
  passkey?: AdminPasskeyCredential;
}

export interface ProposalList {
  quorum: { threshold: number; admins: AdminEntry[] } | null;
  proposals: ProposalView[];
}

/** `POST /v1/admin/passkey-links`: a single-use admin enrolment link (shown once). */
export interface AdminEnrollmentLink {
  url: string;
  name: string;
  expiresAt: number;
}

/** `GET /v1/admin/passkey-candidates`: a registered admin passkey and the admin set entry that adds it. */
export interface AdminCandidate {
  adminId: string;
  name: string;
  createdAt: number;
  inAdminSet: boolean;
  entry: AdminEntry;
}

/** `GET /v1/admin/notices`: one notice every admin was told (its `admin.notice` audit record), in full. */
export interface AdminNotice {
  /** The seq of its audit record (`before` pages from it). */
  seq: number;
  ts: number;
  event: string;
  text: string;
  /** E-mails queued (one per admin with an address). */
  told: number;
  /** Admins of the set then in force without an address (told nothing). */
  untold: number;
  /** False when a part of the text could not be found in the log. */
  complete: boolean;
}

/** `GET /v1/admin/notices`: the notices, newest first, and the admins of the set in force who have no address. */
export interface AdminNoticeList {
  notices: AdminNotice[];
  untoldAdmins: string[];
}

/** One audit record as `GET /v1/audit` returns it (docs/audit.md). No secret is ever in one. */
export interface AuditRecord {
  seq: number;
  /** ms since the epoch, server clock. */
  ts: number;
  /** The API key id that asked; null for the operator (CLI) and the kernel itself. */
  appId: string | null;
  walletName: string | null;
  action: string;
  opHash: string | null;
  decision: 'allowed' | 'denied';
  /** The error code of a denial. */
  reason: string | null;
  detail: Record<string, unknown>;
  prevHash: string;
  hash: string;
}

/** `GET /v1/audit`'s filters and paging. Times are ms since the epoch: `since` inclusive, `until` exclusive. */
export interface AuditListQuery {
  cursor?: string;
  limit?: number;
  walletName?: string;
  appId?: string;
  action?: string;
  decision?: 'allowed' | 'denied';
  opHash?: string;
  since?: number;
  until?: number;
}

/** A page of `GET /v1/audit`: give `nextCursor` back as `cursor` for the records after it. */
export interface AuditPage {
  records: AuditRecord[];
  nextCursor: string;
  /** The page was full: more records may match now. */
  more: boolean;
}
