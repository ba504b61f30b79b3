/**
 * The error codes the server answers with (the table in docs/errors.md). Typed as a union for
 * editors, open to codes a newer server may add.
 */
export type CustosErrorCode =
  | 'invalid_input'
  | 'unauthorized'
  | 'unseal_failed'
  | 'unseal_throttled'
  | 'forbidden_scope'
  | 'code_required'
  | 'code_invalid'
  | 'code_reused'
  | 'factor_required'
  | 'not_found'
  | 'signer_not_found'
  | 'wallet_not_found'
  | 'already_enrolled'
  | 'already_initialized'
  | 'already_unsealed'
  | 'body_too_large'
  | 'unsupported_media_type'
  | 'factor_throttled'
  | 'audit_rate_limited'
  | 'internal'
  | 'sealed'
  | 'not_initialized'
  | 'record_unreadable'
  | 'audit_unavailable'
  | 'store_unavailable'
  | 'overloaded'
  | 'consent_too_weak'
  | 'consent_not_required'
  | 'policy_limit_exceeded'
  | 'policy_destination_not_allowed'
  | 'policy_operation_not_allowed'
  | 'policy_change_timelocked'
  | 'approval_not_found'
  | 'approval_pending'
  | 'approval_mismatch'
  | 'approval_rejected'
  | 'approval_expired'
  | 'approval_cancelled'
  | 'too_many_approvals'
  | 'change_not_found'
  | 'change_expired'
  | 'change_not_pending'
  | 'change_not_applicable'
  | 'changes_limited'
  | 'change_cancel_throttled'
  | 'owner_consent_required'
  | 'quorum_threshold_invalid'
  | 'admin_unknown'
  | 'admin_signature_invalid'
  | 'proposal_self_approval'
  | 'proposal_payload_mismatch'
  | 'proposal_not_found'
  | 'proposal_exists'
  | 'proposal_expired'
  | 'proposal_not_pending'
  | 'proposal_already_approved'
  | 'quorum_not_configured'
  | 'quorum_required'
  | (string & {});

/**
 * The server answered with an error: `{ error: { code, message, details } }`. `code` is the
 * server's stable code; `retryAfter` (seconds) is the Retry-After header when the server sent one
 * (`overloaded`, `factor_throttled`, `unseal_throttled`).
 */
export class CustosApiError extends Error {
  override readonly name = 'CustosApiError';
  readonly code: CustosErrorCode;
  readonly status: number;
  readonly details: Record<string, unknown>;
  readonly retryAfter: number | undefined;

  constructor({
    code,
    message,
    status,
    details = {},
    retryAfter,
  }: {
    code: CustosErrorCode;
    message: string;
    status: number;
    details?: Record<string, unknown>;
    retryAfter?: number | undefined;
  }) {
    super(`${code}: ${message}`);
    this.code = code;
    this.status = status;
    this.details = details;
    this.retryAfter = retryAfter;
  }

  /** The page of docs/errors.md that explains the code. */
  get docsPath(): string {
    return `docs/errors.md#${this.code.replaceAll('_', '-')}`;
  }
}

/**
 * The request did not get a usable answer: `timeout` (the SDK's own deadline), `aborted` (the
 * caller's AbortSignal), `network` (no HTTP answer), `bad_response` (an answer that is not the
 * API's JSON). `mayHaveReachedServer` says whether the server may have acted on it: a sign that
 * may have reached the server may have consumed its one-time code, so it is never retried.
 */
export class CustosRequestError extends Error {
  override readonly name = 'CustosRequestError';
  readonly reason: 'timeout' | 'aborted' | 'network' | 'bad_response';
  readonly mayHaveReachedServer: boolean;
  /** For `bad_response` found by the SDK's checks: the part of the answer that is wrong. */
  readonly field: string | undefined;

  constructor(
    reason: CustosRequestError['reason'],
    message: string,
    { mayHaveReachedServer, cause, field }: { mayHaveReachedServer: boolean; cause?: unknown; field?: string },
  ) {
    super(message, cause === undefined ? undefined : { cause });
    this.reason = reason;
    this.mayHaveReachedServer = mayHaveReachedServer;
    this.field = field;
  }
}

/** The SDK was given something it will not send (checked before any request). */
export class CustosInputError extends Error {
  override readonly name = 'CustosInputError';
  readonly field: string;

  constructor(field: string, message: string) {
    super(`${field}: ${message}`);
    this.field = field;
  }
}

export function isCustosApiError(value: unknown, code?: CustosErrorCode): value is CustosApiError {
  return value instanceof CustosApiError && (code === undefined || value.code === code);
}

/** An answer that fails the SDK's checks (a signature by another key, a transaction other than the one asked for). */
export function unexpectedAnswer(field: string, message: string): CustosRequestError {
  return new CustosRequestError('bad_response', `${field}: ${message}`, { mayHaveReachedServer: true, field });
}

/**
 * The error of an HTTP answer that is not 2xx: the API's `{ error: { code, message, details } }`
 * as a CustosApiError (with Retry-After in seconds when sent), anything else as `bad_response`.
 * `where` names the request in the message (e.g. `POST /v1/sign/hash`).
 */
export function toApiError(response: Response, text: string, where: string): CustosApiError | CustosRequestError {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  const error = (parsed as { error?: { code?: unknown; message?: unknown; details?: unknown } } | null | undefined)?.error;
  if (typeof error !== 'object' || error === null || typeof error.code !== 'string') {
    return new CustosRequestError('bad_response', `${where}: HTTP ${response.status} without an API error body`, { mayHaveReachedServer: true });
  }
  const retryAfterHeader = response.headers.get('retry-after');
  const retryAfter = retryAfterHeader !== null && /^\d+$/.test(retryAfterHeader.trim()) ? Number(retryAfterHeader.trim()) : undefined;
  return new CustosApiError({
    code: error.code,
    message: typeof error.message === 'string' ? error.message : 'request refused',
    status: response.status,
    details: typeof error.details === 'object' && error.details !== null ? (error.details as Record<string, unknown>) : {},
    retryAfter,
  });
}
