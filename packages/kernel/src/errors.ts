/**
 * The one error type of Custos. Every failure carries a stable `code`; `ERROR_CODES` is the single
 * table that maps a code to its HTTP status and a one-line title (docs/errors.md explains each).
 * Messages must never contain secret material: they name fields, not values of secrets.
 */
export const ERROR_CODES = {
  invalid_input: { status: 400, title: 'A request field is missing, of the wrong type or malformed' },
  share_invalid: { status: 400, title: 'An unseal share is malformed, truncated or fails its checksum' },
  share_foreign: { status: 400, title: 'An unseal share belongs to another signer or another share set' },
  share_forged: { status: 400, title: 'An unseal share’s signature does not verify under its share set’s key (forged or altered)' },
  unsealer_mismatch: { status: 400, title: 'The credential is not of the kind the sealed root needs (passphrase, Shamir share or PKCS#11)' },
  unauthorized: { status: 401, title: 'Missing, unknown, revoked or expired credential' },
  unseal_failed: { status: 401, title: 'The unseal secret does not open the sealed root' },
  forbidden_scope: { status: 403, title: 'The API key lacks the scope this operation needs' },
  forbidden_host: { status: 403, title: "The Host header names none of this signer's addresses (operator routes)" },
  forbidden_address: { status: 403, title: "The client's address is not in the API listener's allowlist (--allow-from)" },
  forbidden_origin: {
    status: 403,
    title: 'A web page of another origin called an operator route, or a page’s script request came without the page’s origin or form token',
  },
  code_required: { status: 403, title: 'The wallet has a second factor enrolled and no code was given' },
  code_invalid: { status: 403, title: 'The second-factor code is wrong' },
  code_reused: { status: 403, title: 'The second-factor code (or an earlier one) was already used' },
  code_expired: { status: 403, title: 'The delivered code expired: ask for a new one' },
  consent_too_weak: {
    status: 403,
    title: 'The wallet requires a stronger consent than the one given (a bound approval, not a relayed code); the proof was not checked',
  },
  passkey_invalid: { status: 403, title: 'The passkey response does not verify for this challenge, origin and credential' },
  passkey_counter_invalid: {
    status: 403,
    title: 'The passkey’s signature counter did not increase: the credential may have been cloned; nothing was approved',
  },
  passkey_user_not_verified: {
    status: 403,
    title: 'The passkey response does not show user verification (PIN or biometric), which this signer requires',
  },
  hwkey_invalid: { status: 403, title: "The hardware key's signature does not verify against the enrolled key for this challenge" },
  hwkey_signature_high_s: { status: 403, title: "The hardware key's signature has a high s (a card answers with low s): refused" },
  hwkey_challenge_rate_limited: { status: 429, title: 'Too many hardware-key challenges for this wallet: retry after the Retry-After delay' },
  challenge_required: { status: 409, title: 'No unspent challenge was issued for this approval: ask for a new one and answer it' },
  delivery_unavailable: { status: 409, title: 'This signer delivers no codes: it was started without --smtp-url or --webhook-url' },
  passkeys_unavailable: {
    status: 409,
    title: 'Passkeys are off on this signer: its public URL is not a host name a browser accepts as a passkey’s relying party',
  },
  recovery_code_invalid: { status: 403, title: 'The recovery code is not one of the wallet’s unused recovery codes' },
  approval_mismatch: { status: 403, title: 'The operation is not the one the approval was given for (its opHash differs); nothing was signed' },
  approval_rejected: { status: 403, title: 'The wallet owner rejected the approval' },
  backend_enrollment_disabled: { status: 403, title: "This deployment enrols second factors only on the kernel's enrolment page, not through the API" },
  factor_required: { status: 403, title: 'This deployment signs only for wallets with an enrolled second factor' },
  rpc_account_unknown: { status: 403, title: 'The JSON-RPC request names a `from` address that is not in the API key’s tenant’s address book' },
  not_found: { status: 404, title: 'No such route or resource' },
  signer_not_found: { status: 404, title: 'The signerId in the path is not this signer' },
  approval_not_found: { status: 404, title: 'No approval with that id belongs to the API key’s tenant' },
  enrollment_not_found: { status: 404, title: 'No enrolment link matches this address' },
  owner_page_not_found: { status: 404, title: 'No wallet owner page matches this address' },
  wallet_not_found: { status: 404, title: 'No wallet of that name is known to the signer' },
  approval_pending: { status: 409, title: 'The approval has not been decided yet: wait for the owner' },
  approval_expired: { status: 409, title: 'The approval expired before it was used' },
  approval_cancelled: { status: 409, title: 'The approval was cancelled (by the backend, or by the revocation of the API key that created it)' },
  idempotency_conflict: {
    status: 409,
    title: 'The Idempotency-Key was used by this API key within 24 h for another request (another operation or route); nothing was done',
  },
  approval_decided: { status: 409, title: 'The approval was already decided (approved, or used): it cannot be decided again' },
  policy_limit_exceeded: {
    status: 403,
    title: "The operation would exceed one of the wallet's limits (per transaction, per window, signatures per window, or a token with no limit)",
  },
  policy_destination_not_allowed: { status: 403, title: "The operation's destination is not on the wallet's allowlist, or is on its denied list" },
  policy_operation_not_allowed: {
    status: 403,
    title: "The wallet's policy refuses this kind of operation (a raw hash, or a value flow its limits cannot count to a contract not allowlisted)",
  },
  policy_change_timelocked: { status: 409, title: "The policy change loosens the wallet's protection: it can only take effect through a timelocked change" },
  consent_not_required: { status: 409, title: 'The wallet needs no consent: sign without an approval' },
  enrollment_expired: { status: 409, title: 'The enrolment link expired before the factor was activated: ask for a new one' },
  enrollment_used: { status: 409, title: 'The enrolment link was already used, replaced by a newer one, or spent by wrong codes: ask for a new one' },
  change_not_found: { status: 404, title: 'No pending change matches this id or link' },
  change_expired: { status: 409, title: 'The change was not confirmed by its owner in time: ask for it again' },
  change_not_pending: { status: 409, title: 'The change was already confirmed, applied or cancelled (its state allows no such step)' },
  change_not_applicable: { status: 409, title: 'The change no longer fits the wallet (its factor is gone, or it would enrol one twice): it was not applied' },
  changes_limited: { status: 429, title: 'The wallet has as many open timelocked changes as allowed: let one expire, or have the owner cancel one' },
  change_cancel_throttled: { status: 429, title: 'Too many wrong answers to cancel this change through this link: use the link the signer delivered' },
  owner_consent_required: {
    status: 403,
    title: "Only the wallet's owner, on the signer's page with a factor, may confirm or cancel a timelocked change: an API key cannot",
  },
  already_enrolled: { status: 409, title: 'The wallet already has this factor enrolled' },
  already_initialized: { status: 409, title: 'The store (data directory or database) already holds an initialised signer' },
  already_unsealed: { status: 409, title: 'The signer is already unsealed' },
  share_duplicate: { status: 409, title: 'A share with this index was already submitted for this unseal' },
  passkey_rp_id_changed: {
    status: 409,
    title: 'The public URL’s host is not the rpID the stored passkeys were registered for: they would stop working, so the server does not start',
  },
  sealed_root_changed: { status: 409, title: 'The sealed root changed under a rekey (another rekey won); nothing was changed' },
  body_too_large: { status: 413, title: 'The request body exceeds the size limit' },
  unsupported_media_type: { status: 415, title: 'The request body is not JSON' },
  wallet_frozen: {
    status: 423,
    title: 'The wallet is frozen ("this was not me"): nothing is signed or approved until the owner, with a bound factor, or an admin quorum unfreezes it',
  },
  hsm_pin_protect: {
    status: 423,
    title: 'The HSM token says a wrong PIN would lock it (or it is locked): a PIN from the network is not tried; unseal over the admin socket',
  },
  too_many_approvals: { status: 429, title: 'Too many pending approvals for the wallet or the tenant: let some be decided, cancelled or expire' },
  code_tries_exhausted: { status: 429, title: 'Too many wrong delivered codes were typed for this approval: it can no longer be approved with a code' },
  delivery_limited: { status: 429, title: 'No message was sent: the wallet’s hourly cap, or the approval’s resends, are spent' },
  recovery_code_throttled: { status: 429, title: 'Too many wrong recovery codes for this wallet: retry after the Retry-After delay' },
  factor_throttled: { status: 429, title: 'Too many failed attempts: the factor is locked for a back-off period' },
  audit_rate_limited: { status: 429, title: "The API key's tenant has spent its audit budget: retry after the Retry-After delay" },
  unseal_throttled: { status: 429, title: 'An unseal failed moments ago: the next attempt waits for a back-off period' },
  internal: { status: 500, title: 'An unexpected internal failure; nothing was signed' },
  upstream_unavailable: { status: 502, title: 'The JSON-RPC signer has no upstream node (--upstream-rpc), or the node did not answer' },
  signer_unreachable: { status: 502, title: 'The CLI could not reach the signer: nothing answered at --url (or on --admin-socket)' },
  sealed: { status: 503, title: 'The signer is sealed: only status and unseal are served' },
  not_initialized: { status: 503, title: 'The data directory holds no initialised signer' },
  record_unreadable: {
    status: 503,
    title: 'An encrypted record (such as an enrolled factor) cannot be read: tampered, swapped or under another key; refusing to act',
  },
  audit_unavailable: { status: 503, title: 'The audit record could not be written; nothing was signed' },
  store_unavailable: { status: 503, title: 'The store failed or is unreachable; nothing was signed' },
  hsm_unavailable: { status: 503, title: 'The PKCS#11 module or token cannot be used (not loadable, token absent, or the token refused the operation)' },
  unsealer_unavailable: { status: 503, title: 'The signer is sealed by an HSM and this server has no PKCS#11 module to reach it (--pkcs11-module)' },
  overloaded: { status: 503, title: 'The signer is at its concurrency limit; retry after the Retry-After delay' },
  // ---- issue 13: quorum (kernel/quorum/) ----
  quorum_threshold_invalid: { status: 400, title: 'The admin quorum needs 1 ≤ M ≤ N−1 distinct admins (M of N, the proposer not counting)' },
  admin_unknown: { status: 403, title: 'The public key is not one of the admin set’s' },
  admin_signature_invalid: { status: 403, title: 'The admin’s Ed25519 signature does not verify over this proposal id and payload hash' },
  proposal_self_approval: { status: 403, title: 'The proposer’s own approval does not count towards the quorum' },
  proposal_payload_mismatch: {
    status: 403,
    title: 'The approval is for another payload than the stored proposal’s (its payload hash differs); nothing was counted',
  },
  proposal_not_found: { status: 404, title: 'No proposal with that id' },
  proposal_exists: { status: 409, title: 'A proposal with that id exists already' },
  proposal_expired: { status: 409, title: 'The proposal expired before it reached its quorum' },
  proposal_not_pending: { status: 409, title: 'The proposal was already applied (or used): it cannot be approved again' },
  proposal_already_approved: { status: 409, title: 'This admin approved the proposal already: one admin counts once' },
  quorum_not_configured: { status: 409, title: 'No admin set is configured: bootstrap one first (custos init --admin, custos admin bootstrap)' },
  quorum_required: { status: 409, title: 'An admin quorum is configured: this change needs a proposal (custos admin propose), not a direct write' },
} as const satisfies Record<string, { status: number; title: string }>;

export type ErrorCode = keyof typeof ERROR_CODES;

export interface CustosErrorOptions {
  /** Structured, non-secret details (field names, limits, retry hints). */
  details?: Record<string, unknown>;
  cause?: unknown;
  /**
   * A second factor's new state when a refused attempt is charged (a wrong code counts against the
   * throttle): the consent module persists it before the denial is returned (consent/Factor.ts).
   * Never serialised (not in toJSON, not enumerable).
   */
  stateChange?: object;
}

export class CustosError extends Error {
  override readonly name = 'CustosError';
  readonly code: ErrorCode;
  readonly details: Record<string, unknown>;
  declare readonly stateChange?: object;

  constructor(code: ErrorCode, message: string, options: CustosErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.details = options.details ?? {};
    if (options.stateChange !== undefined) Object.defineProperty(this, 'stateChange', { value: options.stateChange, enumerable: false });
  }

  get status(): number {
    return ERROR_CODES[this.code].status;
  }

  get docsPath(): string {
    return `docs/errors.md#${this.code.replaceAll('_', '-')}`;
  }

  /** The public shape of the error: code, message, details. Never the cause (it may hold internals). */
  toJSON(): { code: ErrorCode; message: string; details: Record<string, unknown> } {
    return { code: this.code, message: this.message, details: this.details };
  }
}

export function isCustosError(value: unknown): value is CustosError {
  return value instanceof CustosError;
}

/** Shorthand for the most common failure: a named input field is wrong. */
export function invalidInput(field: string, expected: string, got?: string): CustosError {
  const suffix = got === undefined ? '' : `, got ${got}`;
  return new CustosError('invalid_input', `${field}: expected ${expected}${suffix}`, { details: { field } });
}
