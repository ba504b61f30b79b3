import { CustosApiError, CustosInputError, CustosRequestError, toApiError } from './errors.js';
import type {
  ApprovalOperation,
  ApprovalView,
  CreateApprovalRequest,
  CreatedApproval,
  ChangeView,
  CreatedChange,
  CreatedEnrollment,
  RequestChangeRequest,
  CreateEnrollmentRequest,
  EnrolledHwkey,
  EnrollHwkeyRequest,
  EnrollTotpResult,
  HwkeyChallenge,
  JsonRpcRequest,
  JsonRpcResponse,
  KeyInfo,
  RpcAccount,
  RpcAccountPage,
  SignAuthorizationRequest,
  SignAuthorizationResult,
  SignatureResult,
  SignerStatus,
  UnsealBody,
  SignHashRequest,
  SignHashResult,
  SignMessageRequest,
  SignTransactionRequest,
  SignTransactionResult,
  SignTypedDataRequest,
  WalletInfo,
  WalletListPage,
  ApproveProposalRequest,
  ProposalList,
  AdminCandidate,
  AdminNoticeList,
  AuditListQuery,
  AuditPage,
  AdminEnrollmentLink,
  ProposalView,
  ProposeChangeRequest,
  WalletPolicy,
  WalletPolicyView,
} from './types.js';
import { toJsonQuantities } from './toJsonQuantities.js';
import { wasNeverSent } from './wasNeverSent.js';

export interface CustosClientOptions {
  /** Base URL of the kernel, e.g. `http://127.0.0.1:8420`. */
  url: string;
  /** An API key (`ck1.…`) with the scopes the calls need. Kept in this closure only. */
  apiKey: string;
  /** Deadline of one HTTP attempt (ms). */
  timeoutMs?: number;
  /** How many times an idempotent request (or one the server refused as `overloaded`) is retried. */
  retries?: number;
  /** A Retry-After longer than this (ms) is not waited for: the error is thrown with `.retryAfter`. */
  maxRetryDelayMs?: number;
  /** The fetch to use (defaults to the global one). */
  fetch?: typeof fetch;
}

/** Per call: an AbortSignal of the caller (cancels the request and any wait before a retry). */
export interface CallOptions {
  signal?: AbortSignal | undefined;
}

/**
 * The sign calls and `createApproval`: every request carries an Idempotency-Key (a random one unless
 * given), and is retried under it on network errors, timeouts and 503 (`overloaded`,
 * `store_unavailable`, a proxy's 502–504): the server answers a retry with the stored result, so a
 * lost response neither signs twice nor costs the owner a new code (docs/idempotency.md).
 */
export interface SignCallOptions extends CallOptions {
  /** 1–128 characters of A–Z a–z 0–9 . _ : ~ + / = - ; default: a random UUID per call. Give your own to retry across restarts of your process. */
  idempotencyKey?: string | undefined;
}

/** `getApproval`: how long the server may wait for the owner's decision before it answers (0–60 s). */
export interface GetApprovalOptions extends CallOptions {
  waitSeconds?: number | undefined;
}

/** The server's longest wait for one `GET /v1/approvals/{id}?waitSeconds=…`. */
export const MAX_WAIT_SECONDS = 60;

export interface CustosClient {
  readonly url: string;
  /** `GET /v1/sys/status` (no auth). */
  status(options?: CallOptions): Promise<SignerStatus>;
  /** `POST /v1/sys/unseal` (no auth): the passphrase, or one Shamir share per call (the answer shows the progress). */
  unseal(body: UnsealBody, options?: CallOptions): Promise<SignerStatus>;
  /**
   * `POST /v1/sys/unseal/reset` (no API key): discards the Shamir shares submitted so far, on the
   * proof of one share file of the current set (checked, signature included, and not kept).
   */
  resetUnseal(body: { share: string | Record<string, unknown> }, options?: CallOptions): Promise<{ discarded: number }>;
  /** `POST /v1/sys/seal` (scope admin): wipes the keys from memory; the signer is sealed afterwards. */
  seal(options?: CallOptions): Promise<SignerStatus>;
  /** `GET /v1/openapi.json`. */
  openApi(options?: CallOptions): Promise<Record<string, unknown>>;
  /** `POST /v1/totp/enroll` (scope register). */
  enrollTotp(body: { walletName: string }, options?: CallOptions): Promise<EnrollTotpResult>;
  /**
   * `POST /v1/enrollments` (scope register): a one-time link on which the wallet owner enrols a
   * factor on the kernel's page — TOTP (the default; the backend never sees the secret) or, with
   * `kind: 'passkey'`, a passkey (`passkeys_unavailable` when the signer runs without passkeys).
   * Hand `enrollUrl` to the owner only. A wallet that already has a factor is refused `already_enrolled`.
   */
  createEnrollment(body: CreateEnrollmentRequest, options?: CallOptions): Promise<CreatedEnrollment>;
  /**
   * `POST /v1/changes` (scope register): asks for a timelocked change of a wallet's protection. Hand
   * `changeUrl` to the owner, who consents on the kernel's page; it takes effect after the signer's
   * delay (default 48 h) unless the owner cancels it (docs/timelock.md).
   */
  requestChange(body: RequestChangeRequest, options?: CallOptions): Promise<CreatedChange>;
  /** `GET /v1/changes?id=` (scope register): a change's state. */
  getChange(id: string, options?: CallOptions): Promise<ChangeView>;
  /**
   * `POST /v1/changes/confirm`: always refused `owner_consent_required` (audited) — only the owner
   * confirms, on the kernel's page. Present so that a backend sees the refusal, not a missing route.
   */
  confirmChange(id: string, options?: CallOptions): Promise<never>;
  /** `POST /v1/changes/cancel`: always refused `owner_consent_required` (audited) — only the owner cancels, with a factor. */
  cancelChange(id: string, options?: CallOptions): Promise<never>;
  /** `GET /v1/keys` (scope derive). */
  getKey(query: { walletName: string; keyIndex: number }, options?: CallOptions): Promise<KeyInfo>;
  /** `GET /v1/wallets` (scope derive). */
  getWallet(query: { walletName: string }, options?: CallOptions): Promise<WalletInfo>;
  /**
   * `GET /v1/wallets/list` (scope derive): one page of the tenant's wallets in name order (a key with a
   * wallet prefix: only those under it); `limit` 1–200 (default 50), `cursor` the nextCursor of the page before.
   */
  listWallets(query?: { cursor?: string; limit?: number }, options?: CallOptions): Promise<WalletListPage>;
  /** `POST /v1/wallets/freeze` (scope admin): freezes a wallet at once (docs/freeze.md); idempotent. */
  freezeWallet(body: { walletName: string }, options?: CallOptions): Promise<{ walletName: string; frozenAt: number }>;
  /** `GET /v1/wallets/policy` (scope sign): the effective policy and the usage in the current window. */
  getWalletPolicy(query: { walletName: string }, options?: CallOptions): Promise<WalletPolicyView>;
  /**
   * `PUT /v1/wallets/policy` (scope register): replaces the wallet's override when it only tightens
   * (the view, HTTP 200); a change that loosens the policy (or adds to an allowlist) becomes a
   * timelocked change `policy.loosen` (HTTP 202: the CreatedChange, `changeUrl` for the owner — tell
   * them apart with `'changeUrl' in result`); on a wallet without a factor it is refused
   * policy_change_timelocked.
   */
  setWalletPolicy(body: { walletName: string; policy: WalletPolicy }, options?: CallOptions): Promise<WalletPolicyView | CreatedChange>;
  /** `POST /v1/sign/hash` (scope sign). */
  signHash(body: SignHashRequest, options?: SignCallOptions): Promise<SignHashResult>;
  /** `POST /v1/sign/transaction` (scope sign). */
  signTransaction(body: SignTransactionRequest, options?: SignCallOptions): Promise<SignTransactionResult>;
  /** `POST /v1/sign/message` (scope sign). */
  signMessage(body: SignMessageRequest, options?: SignCallOptions): Promise<SignatureResult>;
  /** `POST /v1/sign/typed-data` (scope sign); bigints in the message are sent as decimal strings. */
  signTypedData(body: SignTypedDataRequest, options?: SignCallOptions): Promise<SignatureResult>;
  /** `POST /v1/sign/authorization` (scope sign, EIP-7702). */
  signAuthorization(body: SignAuthorizationRequest, options?: SignCallOptions): Promise<SignAuthorizationResult>;
  /**
   * `POST /v1/approvals` (scope sign): asks the wallet owner to approve one operation on the
   * kernel's page. Hand `approveUrl` to the owner (only them: it is their approval page), wait with
   * `waitForApproval`, then sign the identical operation with `approvalId: id`.
   */
  createApproval(body: CreateApprovalRequest, options?: SignCallOptions): Promise<CreatedApproval>;
  /**
   * `GET /v1/approvals/{id}` (scope sign). With `waitSeconds` (0–60) the server answers as soon as
   * the state leaves pending, or after that long with the state then; this request's deadline is
   * waitSeconds + 10 s (without waitSeconds, the client's timeoutMs).
   */
  getApproval(id: string, options?: GetApprovalOptions): Promise<ApprovalView>;
  /**
   * Long-polls `GET /v1/approvals/{id}` until the state leaves pending, and resolves with the view
   * (approved, rejected, expired, cancelled or consumed). Rejects with the client's errors (a
   * CustosApiError such as approval_not_found, a CustosRequestError) and when `signal` aborts.
   */
  waitForApproval(id: string, options?: CallOptions): Promise<ApprovalView>;
  /** `POST /v1/approvals/{id}/cancel` (scope sign): a pending approval becomes cancelled; a decided one keeps its state. */
  cancelApproval(id: string, options?: CallOptions): Promise<ApprovalView>;
  /**
   * `POST /v1/factors` `{ kind: "hwkey" }` (scope register): enrols a hardware key for a wallet with
   * no factor yet (else already_enrolled). Its answers count as `present` at most.
   */
  enrollHwkey(body: EnrollHwkeyRequest, options?: CallOptions): Promise<EnrolledHwkey>;
  /** `POST /v1/approvals/{id}/hwkey-challenge` (scope sign): the digest the wallet's card signs raw, at the subpath (rate-limited per wallet). */
  hwkeyChallenge(id: string, options?: CallOptions): Promise<HwkeyChallenge>;
  /**
   * `POST /v1/approvals/{id}/hwkey` (scope sign): relays the card's signature (64 bytes r‖s or 65
   * with a header byte, hex). A relayed answer counts as `present`: an approval that requires
   * `bound` is refused consent_too_weak.
   */
  answerHwkeyChallenge(id: string, signature: string, options?: CallOptions): Promise<ApprovalView>;
  /**
   * `POST /v1/approvals/{id}/resend` (scope sign): the kernel sends the approval's delivered code
   * again on the wallet's channel (a new code; the earlier one dies). Never resets the approval's
   * wrong tries; limited per approval and per wallet and hour (delivery_limited).
   */
  resendApprovalCode(id: string, options?: CallOptions): Promise<ApprovalView>;
  /** `POST /v1/rpc/accounts` (scope sign): adds a wallet key's address to the tenant's JSON-RPC address book (the entry, also when it was there). */
  registerRpcAccount(body: { walletName: string; keyIndex: number }, options?: CallOptions): Promise<RpcAccount>;
  /** `GET /v1/rpc/accounts` (scope sign): the tenant's address book, in the order registered, a page at a time. */
  listRpcAccounts(query?: { cursor?: string; limit?: number }, options?: CallOptions): Promise<RpcAccountPage>;
  /**
   * `POST /v1/rpc`: one JSON-RPC 2.0 request, or a batch, as an Ethereum tool sends it; the answer is
   * the JSON-RPC response(s), with refusals inside (`error`), not thrown. Tools point at the URL
   * directly (docs/json-rpc.md); this is for a backend that wants the same answers.
   */
  rpc(request: JsonRpcRequest | JsonRpcRequest[], options?: CallOptions): Promise<JsonRpcResponse | JsonRpcResponse[]>;
  // ---- issue 13: quorum (operator scope admin; docs/quorum.md) ----
  /** `POST /v1/admin/proposals`: proposes a quorum-protected change, signed by the proposer's admin key. */
  proposeChange(body: ProposeChangeRequest, options?: CallOptions): Promise<ProposalView>;
  /** `GET /v1/admin/proposals`: the admin set and the newest proposals. */
  listProposals(query?: { limit?: number }, options?: CallOptions): Promise<ProposalList>;
  /** `GET /v1/admin/proposals/{id}`: one proposal in full — check its payload (and recompute its hash) before approving. */
  getProposal(id: string, options?: CallOptions): Promise<ProposalView>;
  /** `POST /v1/admin/proposals/{id}/approvals`: one admin's approval; the one that meets the threshold applies the change. */
  approveProposal(id: string, body: ApproveProposalRequest, options?: CallOptions): Promise<ProposalView>;
  /** `POST /v1/admin/passkey-links`: a single-use link on which a new admin registers a passkey (a candidate until the set names it). */
  createAdminPasskeyLink(body?: { name?: string; ttlSeconds?: number }, options?: CallOptions): Promise<AdminEnrollmentLink>;
  /** `GET /v1/admin/passkey-candidates`: the registered admin passkeys, each with the entry a quorum.set payload names to add it. */
  listAdminPasskeyCandidates(options?: CallOptions): Promise<{ candidates: AdminCandidate[] }>;
  /** `GET /v1/admin/notices`: what every admin was told (freezes, proposals, held changes), newest first, in full; `before` a notice's seq pages back. */
  listAdminNotices(query?: { limit?: number; before?: number }, options?: CallOptions): Promise<AdminNoticeList>;
  /** `GET /v1/audit` (scope admin, operator tenant): the audit log filtered, oldest first; pass `nextCursor` back as `cursor` for the next page. */
  listAudit(query?: AuditListQuery, options?: CallOptions): Promise<AuditPage>;
  /** `GET /v1/apikeys` (scope admin): every API key — tenant, scopes, expiry, wallet prefix, last use; never a secret. */
  listApiKeys(options?: CallOptions): Promise<{ apiKeys: ApiKeyView[] }>;
  /**
   * `POST /v1/apikeys` (scope admin): a new key; `token` is shown once. Under an admin quorum a key
   * with `sign` or `admin` is refused `quorum_required` (it is made by an `apikey.create` proposal).
   */
  createApiKey(body: CreateApiKeyRequest, options?: CallOptions): Promise<{ token: string; apiKey: ApiKeyView }>;
  /** `DELETE /v1/apikeys?id=` (scope admin): revokes a key. */
  revokeApiKey(query: { id: string }, options?: CallOptions): Promise<{ id: string; revokedAt: number }>;
}

/** An API key as the operator sees it (GET /v1/apikeys). */
export interface ApiKeyView {
  id: string;
  name: string;
  tenant: string;
  scopes: string[];
  createdAt: number;
  revokedAt: number | null;
  /** When it stops working (ms); null: never. */
  expiresAt: number | null;
  /** It reaches only its tenant's wallets whose names start with this; null: all of them. */
  walletPrefix: string | null;
  /** Its last authentication (ms, recorded at most once a minute). */
  lastUsedAt: number | null;
}

export interface CreateApiKeyRequest {
  name: string;
  scopes: Array<'register' | 'derive' | 'sign' | 'admin'>;
  /** Default `default`; `admin` only on tenant `system`. */
  tenant?: string;
  /** 60 s to ten years; absent: never expires. */
  expiresInSeconds?: number;
  walletPrefix?: string;
}

/** Server codes after which a GET may be retried (a refusal before any decision, or a transient store failure). */
const RETRY_GET = new Set(['overloaded', 'store_unavailable']);

/**
 * A client of the Custos `/v1` API. Retries only what cannot sign twice or burn a one-time code:
 * GETs (on network errors, timeouts, `overloaded`, `store_unavailable`), the sign and approval POSTs
 * under their Idempotency-Key (the same cases: the server answers a retry with the stored result),
 * any request the server refused with 503 `overloaded` (refused before any decision; Retry-After
 * honoured), and any request that provably never left this machine (the connect or the DNS look-up
 * failed). Any other POST that may have reached the server is never retried.
 */
export function createCustosClient({
  url,
  apiKey,
  timeoutMs = 30_000,
  retries = 2,
  maxRetryDelayMs = 10_000,
  fetch: fetchImpl = globalThis.fetch,
}: CustosClientOptions): CustosClient {
  if (typeof url !== 'string' || !/^https?:\/\//.test(url)) throw new CustosInputError('url', 'expected an http(s) URL');
  if (typeof apiKey !== 'string' || apiKey === '') throw new CustosInputError('apiKey', 'expected an API key');
  const base = url.replace(/\/+$/, '');

  async function call<T>(
    method: 'GET' | 'POST' | 'PUT' | 'DELETE',
    path: string,
    {
      body,
      auth = true,
      signal,
      timeoutMs: callTimeoutMs = timeoutMs,
      idempotencyKey,
    }: { body?: unknown; auth?: boolean; signal?: AbortSignal | undefined; timeoutMs?: number; idempotencyKey?: string | undefined },
  ): Promise<T> {
    // a PUT of the same policy again gives the same result; a POST under its Idempotency-Key gets the stored result;
    // a revocation (DELETE) is refused not_found when repeated, never doubled
    const idempotent = method === 'GET' || method === 'PUT' || idempotencyKey !== undefined;
    const headers: Record<string, string> = { accept: 'application/json' };
    if (auth) headers.authorization = `Bearer ${apiKey}`;
    if (idempotencyKey !== undefined) headers['idempotency-key'] = idempotencyKey;
    if (body !== undefined) headers['content-type'] = 'application/json';
    const payload = body === undefined ? undefined : JSON.stringify(body);
    for (let attempt = 0; ; attempt++) {
      const canRetry = attempt < retries;
      let response: Response;
      const attemptSignal = signal === undefined ? AbortSignal.timeout(callTimeoutMs) : AbortSignal.any([signal, AbortSignal.timeout(callTimeoutMs)]);
      try {
        // redirect 'error': the API never redirects, and following one would send the body (a code) elsewhere.
        response = await fetchImpl(`${base}${path}`, {
          method,
          headers,
          redirect: 'error',
          signal: attemptSignal,
          ...(payload === undefined ? {} : { body: payload }),
        });
      } catch (error) {
        const failure = toRequestError(error, signal, method, path, callTimeoutMs);
        // A redirect (refused, redirect 'error') would only come again: not retried.
        if (canRetry && failure.reason !== 'aborted' && !wasRedirected(error) && (idempotent || !failure.mayHaveReachedServer)) {
          await sleep(backoffMs(attempt), signal);
          continue;
        }
        throw failure;
      }
      const text = await readText(response, signal, method, path, callTimeoutMs);
      if (response.ok) {
        try {
          return JSON.parse(text) as T;
        } catch (cause) {
          throw new CustosRequestError('bad_response', `${method} ${path}: HTTP ${response.status} with a body that is not JSON`, {
            mayHaveReachedServer: true,
            cause,
          });
        }
      }
      const error = toApiError(response, text, `${method} ${path}`);
      if (error instanceof CustosApiError) {
        const retryable = error.code === 'overloaded' || (idempotent && RETRY_GET.has(error.code));
        if (canRetry && retryable) {
          const delay = error.retryAfter === undefined ? backoffMs(attempt) : error.retryAfter * 1000;
          if (delay <= maxRetryDelayMs) {
            await sleep(delay, signal);
            continue;
          }
        }
      } else if (canRetry && idempotent && response.status >= 502 && response.status <= 504) {
        // A proxy's answer, not the API's: a GET may try again.
        await sleep(backoffMs(attempt), signal);
        continue;
      }
      throw error;
    }
  }

  const post = <T>(path: string, body: unknown, options: CallOptions = {}) => call<T>('POST', path, { body, signal: options.signal });
  const get = <T>(path: string, options: CallOptions = {}, auth = true) => call<T>('GET', path, { auth, signal: options.signal });
  // A sign or approval POST: under its Idempotency-Key (the caller's, else a random one), so that it may be retried.
  const postOnce = <T>(path: string, body: unknown, { signal, idempotencyKey = randomIdempotencyKey() }: SignCallOptions = {}) =>
    call<T>('POST', path, { body, signal, idempotencyKey: assertIdempotencyKey(idempotencyKey) });

  const getApproval = async (id: string, { waitSeconds = 0, signal }: GetApprovalOptions = {}): Promise<ApprovalView> => {
    assertApprovalId(id);
    if (!Number.isInteger(waitSeconds) || waitSeconds < 0 || waitSeconds > MAX_WAIT_SECONDS)
      throw new CustosInputError('waitSeconds', `expected an integer 0..${MAX_WAIT_SECONDS}, got ${waitSeconds}`);
    if (waitSeconds === 0) return call('GET', `/v1/approvals/${id}`, { signal });
    // the server holds a long poll up to waitSeconds: the deadline is that plus 10 s
    return call('GET', `/v1/approvals/${id}?waitSeconds=${waitSeconds}`, { signal, timeoutMs: waitSeconds * 1000 + 10_000 });
  };

  return {
    url: base,
    status: (options) => get('/v1/sys/status', options, false),
    unseal: (body, options) => call('POST', '/v1/sys/unseal', { body, auth: false, signal: options?.signal }),
    resetUnseal: (body, options) => call('POST', '/v1/sys/unseal/reset', { body, auth: false, signal: options?.signal }),
    seal: (options) => call('POST', '/v1/sys/seal', { signal: options?.signal }),
    openApi: (options) => get('/v1/openapi.json', options, false),
    enrollTotp: (body, options) => post('/v1/totp/enroll', body, options),
    createEnrollment: (body, options) => post('/v1/enrollments', withoutUndefined(body), options),
    requestChange: (body, options) => post('/v1/changes', withoutUndefined(body), options),
    getChange: (id, options) => get(`/v1/changes?${new URLSearchParams({ id }).toString()}`, options),
    confirmChange: (id, options) => post('/v1/changes/confirm', { id }, options),
    cancelChange: (id, options) => post('/v1/changes/cancel', { id }, options),
    getKey: ({ walletName, keyIndex }, options) => get(`/v1/keys?${new URLSearchParams({ walletName, keyIndex: String(keyIndex) }).toString()}`, options),
    getWallet: ({ walletName }, options) => get(`/v1/wallets?${new URLSearchParams({ walletName }).toString()}`, options),
    listWallets: (query = {}, options) => {
      const params = new URLSearchParams();
      if (query.cursor !== undefined) params.set('cursor', query.cursor);
      if (query.limit !== undefined) params.set('limit', String(query.limit));
      const search = params.toString();
      return get(`/v1/wallets/list${search === '' ? '' : `?${search}`}`, options);
    },
    freezeWallet: (body, options) => call('POST', '/v1/wallets/freeze', { body, signal: options?.signal }),
    getWalletPolicy: ({ walletName }, options) => get(`/v1/wallets/policy?${new URLSearchParams({ walletName }).toString()}`, options),
    setWalletPolicy: (body, options) => call('PUT', '/v1/wallets/policy', { body, signal: options?.signal }),
    signHash: async (body, options) => postOnce('/v1/sign/hash', withoutUndefined(body), options),
    signTransaction: async (body, options) =>
      postOnce(
        '/v1/sign/transaction',
        withoutUndefined({ ...body, transaction: toJsonQuantities(withoutUndefined(body.transaction), 'transaction') }),
        options,
      ),
    signMessage: async (body, options) => postOnce('/v1/sign/message', withoutUndefined(body), options),
    signTypedData: async (body, options) =>
      postOnce('/v1/sign/typed-data', withoutUndefined({ ...body, typedData: toJsonQuantities(body.typedData, 'typedData') }), options),
    signAuthorization: async (body, options) => postOnce('/v1/sign/authorization', withoutUndefined(body), options),
    createApproval: async (body, options) =>
      postOnce('/v1/approvals', withoutUndefined({ ...body, operation: approvalOperationForWire(body.operation) }), options),
    getApproval,
    waitForApproval: async (id, { signal } = {}) => {
      assertApprovalId(id);
      for (;;) {
        const started = Date.now();
        const view = await getApproval(id, { waitSeconds: MAX_WAIT_SECONDS, signal });
        if (view.state !== 'pending') return view;
        // a server that answered pending early (it was shutting down): not a busy loop
        if (Date.now() - started < 1_000) await sleep(1_000, signal);
      }
    },
    cancelApproval: async (id, options) => {
      assertApprovalId(id);
      return call('POST', `/v1/approvals/${id}/cancel`, { signal: options?.signal });
    },
    enrollHwkey: (body, options) => post('/v1/factors', withoutUndefined({ ...body, kind: 'hwkey' }), options),
    hwkeyChallenge: async (id, options) => {
      assertApprovalId(id);
      return call('POST', `/v1/approvals/${id}/hwkey-challenge`, { signal: options?.signal });
    },
    answerHwkeyChallenge: async (id, signature, options) => {
      assertApprovalId(id);
      return post(`/v1/approvals/${id}/hwkey`, { signature }, options);
    },
    resendApprovalCode: async (id, options) => {
      assertApprovalId(id);
      return call('POST', `/v1/approvals/${id}/resend`, { signal: options?.signal });
    },
    registerRpcAccount: (body, options) => post('/v1/rpc/accounts', body, options),
    listRpcAccounts: (query = {}, options) => {
      const params = new URLSearchParams();
      if (query.cursor !== undefined) params.set('cursor', query.cursor);
      if (query.limit !== undefined) params.set('limit', String(query.limit));
      const search = params.toString();
      return get(`/v1/rpc/accounts${search === '' ? '' : `?${search}`}`, options);
    },
    rpc: (request, options) => post('/v1/rpc', request, options),
    proposeChange: (body, options) => post('/v1/admin/proposals', withoutUndefined(body), options),
    listProposals: (query = {}, options) => get(`/v1/admin/proposals${query.limit === undefined ? '' : `?limit=${query.limit}`}`, options),
    getProposal: async (id, options) => {
      assertProposalId(id);
      return get(`/v1/admin/proposals/${id}`, options);
    },
    approveProposal: async (id, body, options) => {
      assertProposalId(id);
      return post(`/v1/admin/proposals/${id}/approvals`, body, options);
    },
    createAdminPasskeyLink: (body = {}, options) => post('/v1/admin/passkey-links', withoutUndefined(body), options),
    listAdminPasskeyCandidates: (options) => get('/v1/admin/passkey-candidates', options),
    listAdminNotices: (query = {}, options) => {
      const params = new URLSearchParams();
      if (query.limit !== undefined) params.set('limit', String(query.limit));
      if (query.before !== undefined) params.set('before', String(query.before));
      const search = params.toString();
      return get(`/v1/admin/notices${search === '' ? '' : `?${search}`}`, options);
    },
    listAudit: (query = {}, options) => {
      const params = new URLSearchParams();
      for (const [name, value] of Object.entries(query)) if (value !== undefined) params.set(name, String(value));
      const search = params.toString();
      return get(`/v1/audit${search === '' ? '' : `?${search}`}`, options);
    },
    listApiKeys: (options) => get('/v1/apikeys', options),
    createApiKey: (body, options) => post('/v1/apikeys', withoutUndefined(body), options),
    revokeApiKey: ({ id }, options) => call('DELETE', `/v1/apikeys?${new URLSearchParams({ id }).toString()}`, { signal: options?.signal }),
  };
}

/** Whether fetch refused a redirect (undici: TypeError with the cause 'unexpected redirect'). */
function wasRedirected(error: unknown): boolean {
  const cause = (error as { cause?: { message?: unknown } } | null)?.cause;
  return typeof cause?.message === 'string' && /redirect/i.test(cause.message);
}

/** A random Idempotency-Key: a UUID (Web Crypto, in Node ≥ 19 and browsers). */
function randomIdempotencyKey(): string {
  return globalThis.crypto.randomUUID();
}

/** An Idempotency-Key of the caller: the server's form, checked before any request. */
function assertIdempotencyKey(key: string): string {
  if (typeof key !== 'string' || !/^[A-Za-z0-9._:~+/=-]{1,128}$/.test(key))
    throw new CustosInputError('idempotencyKey', 'expected 1 to 128 characters of A-Z a-z 0-9 . _ : ~ + / = -');
  return key;
}

/** A proposal id goes into a URL path: 32 lowercase hex digits, checked before any request. */
function assertProposalId(id: string): void {
  if (typeof id !== 'string' || !/^[0-9a-f]{32}$/.test(id)) throw new CustosInputError('id', 'expected a proposal id: 32 lowercase hex digits');
}

/** An approval id goes into a URL path: exactly the server's form (32 lowercase hex digits), checked before any request. */
function assertApprovalId(id: string): void {
  if (typeof id !== 'string' || !/^[0-9a-f]{32}$/.test(id)) throw new CustosInputError('id', 'expected an approval id: 32 lowercase hex digits');
}

/** The approval's operation as the sign routes take it: quantities and EIP-712 integers as strings. */
function approvalOperationForWire(operation: ApprovalOperation): ApprovalOperation {
  if (typeof operation !== 'object' || operation === null) return operation;
  const out: Record<string, unknown> = {};
  for (const [member, value] of Object.entries(operation)) {
    if (member === 'transaction') out[member] = toJsonQuantities(value, 'operation.transaction');
    else if (member === 'typedData') out[member] = toJsonQuantities(value, 'operation.typedData');
    else if (member === 'batch' && Array.isArray(value))
      out[member] = value.map((item: unknown, i) =>
        typeof item === 'object' && item !== null && 'transaction' in item
          ? { ...item, transaction: toJsonQuantities((item as { transaction: unknown }).transaction, `operation.batch[${i}].transaction`) }
          : item,
      );
    else out[member] = value;
  }
  return out as ApprovalOperation;
}

/** Drops members whose value is undefined (`code: undefined` must not be sent as a field). */
function withoutUndefined<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T;
}

function toRequestError(error: unknown, signal: AbortSignal | undefined, method: string, path: string, timeoutMs: number): CustosRequestError {
  if (signal?.aborted === true)
    return new CustosRequestError('aborted', `${method} ${path}: aborted by the caller`, { mayHaveReachedServer: true, cause: error });
  const name = (error as { name?: unknown } | null)?.name;
  if (name === 'TimeoutError' || name === 'AbortError')
    return new CustosRequestError('timeout', `${method} ${path}: no answer within ${timeoutMs} ms`, { mayHaveReachedServer: true, cause: error });
  const notSent = wasNeverSent(error);
  const code = ((error as { cause?: { code?: unknown } } | null)?.cause as { code?: unknown } | undefined)?.code;
  return new CustosRequestError('network', `${method} ${path}: ${notSent ? (typeof code === 'string' ? code : 'not connected') : 'the connection failed'}`, {
    mayHaveReachedServer: !notSent,
    cause: error,
  });
}

async function readText(response: Response, signal: AbortSignal | undefined, method: string, path: string, timeoutMs: number): Promise<string> {
  try {
    return await response.text();
  } catch (error) {
    throw toRequestError(error, signal, method, path, timeoutMs);
  }
}

function backoffMs(attempt: number): number {
  return Math.min(2_000, 100 * 2 ** attempt) * (0.5 + Math.random() / 2);
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted === true) {
      reject(new CustosRequestError('aborted', 'aborted by the caller', { mayHaveReachedServer: false }));
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      reject(new CustosRequestError('aborted', 'aborted by the caller', { mayHaveReachedServer: false }));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
