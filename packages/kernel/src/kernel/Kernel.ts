import { useRecoveryCode } from './recoveryCodes.js';
import { type ApiKeyView, createApiKeyAsOperator, listApiKeysAsOperator, revokeApiKeyAsOperator } from './manageApiKeys.js';
import {
  type FreezeNotice,
  freezeWalletByAdmin,
  freezeWalletByOwner,
  listFreezeNotices,
  type OwnerPage,
  openOwnerPage,
  sendUnfreezeCode,
  type UnfreezeBy,
  unfreezeChallengeOptions,
  unfreezeWallet,
  unfreezeWalletByOwner,
} from './freeze.js';
import { randomBytes, randomUUID } from 'node:crypto';
import { auditBudgetKey } from '../audit/auditBudgetKey.js';
import type { AuditCheckpoint } from '../audit/auditCheckpoint.js';
import { AuditRateLimiter, DEFAULT_AUDIT_BURST_BYTES, DEFAULT_AUDIT_BYTES_PER_SECOND, rateLimitedEntry } from '../audit/auditRateLimit.js';
import { meterAuditAppends } from '../audit/meterAuditAppends.js';
import type { Barrier } from '../barrier/Barrier.js';
import type { AuthorizationSignatureResult } from '../chain/prepareAuthorization.js';
import type { TransactionSignatureResult } from '../chain/prepareTransaction.js';
import type { EthereumSignatureResult } from '../chain/signatureResult.js';
import type { Factor } from '../consent/Factor.js';
import { hwkeyFactor, parseHwkeyEnrollment } from '../consent/hwkeyFactor.js';
import { passkeyFactor } from '../consent/passkeyFactor.js';
import { computeOobCode, DEFAULT_OOB_LIMITS, MAX_OOB_CODE_TTL_MS, type OobChannel, type OobLimits, oobFactor } from '../consent/oobFactor.js';
import { claimDeliveries, type DeliveryMessage, type DeliveryResult, settleDelivery } from './oobDelivery.js';
import { type TotpShown, totpFactor } from '../consent/totpFactor.js';
import { CustosError, invalidInput } from '../errors.js';
import { DEFAULT_MAX_CACHED_WALLETS } from '../crypto/createKeyDeriver.js';
import { loadSecp256k1 } from '../crypto/loadSecp256k1.js';
import { describeUnsealer, sealedRootQuorum } from '../seal/sealedRoot.js';
import type { UnsealCredential, UnsealerInfo } from '../seal/unsealers.js';
import type { ApiKeyRecord, PendingChangeRecord, SessionRecord, SignerMeta, Store, StoreTx } from '../store/types.js';
import { toHex } from '../util/hex.js';
import { type AuditCheckpointOptions, AuditCheckpointer } from './AuditCheckpointer.js';
import { auditRecord } from './auditRecord.js';
import { appOfApiKey, checkScope } from './authorize.js';
import {
  cancelApproval,
  createApproval,
  DEFAULT_APPROVAL_LIMITS,
  decideApproval,
  decideApprovalRelayed,
  expireApprovals,
  getApproval,
  issueApprovalChallenge,
  issueHwkeyChallenge,
  openApprovalPage,
  resendApprovalCode,
} from './approvals.js';
import { challengeFactor } from './challenge.js';
import { checkPageFormToken, pageFormToken } from './pageForms.js';
import { asCustosError, deny, type KernelContext, type Outcome, settle } from './context.js';
import { enrollFactor } from './enrollment.js';
import { completeEnrollment, createEnrollment, openEnrollmentPage, sendChangeCode, setEnrollmentAddress } from './enrollmentLinks.js';
import type { BackendEnrollment, UnknownWallets } from './policy.js';
import { type HousekeepingOptions, type PurgeStep, purgeSteps, runHousekeeping } from './housekeeping.js';
import { applyPolicyHook, getWalletPolicy, setWalletPolicy, sweepPolicyUsage, type TimelockedPolicyChange, type WalletPolicyView } from './walletPolicies.js';
import { assertWalletPolicy, type WalletPolicy } from './walletPolicy.js';
import {
  authorizeRpcForward,
  findRpcRequest,
  forgetRpcRequest,
  listRpcAccounts,
  registerRpcAccount,
  rememberRpcRequest,
  resolveRpcAccount,
  type RpcAccount,
  type RpcStoredRequest,
} from './rpcAccounts.js';
import { Sessions, sessionMacHolds } from './sessions.js';
import { signHash, signOperation } from './sign.js';
import { IDEMPOTENCY_TTL_MS, KeyLocks } from './idempotency.js';
import type {
  App,
  ApprovalChallengeIssued,
  ApprovalDecision,
  ApprovalPage,
  ApprovalView,
  CreateApprovalRequest,
  CreatedApproval,
  CreatedEnrollment,
  EnrollmentPage,
  HashSignature,
  KernelSecretBufferState,
  KernelStatus,
  OperationResult,
  PasskeySettings,
  PublicKeyResult,
  SecretBufferCounts,
  ShareProgress,
  SignHashRequest,
  SignOperationRequest,
  TotpEnrollment,
  UnsealerStatus,
} from './types.js';
import { UnsealDesk } from './unseal/UnsealDesk.js';
import { LOCAL_UNSEAL_CLIENT, type UnsealClient } from './unseal/unsealClient.js';
import { getPublicKey, getWallet, listWallets, type WalletList } from './wallets.js';
import { macRecordsOnUpgrade } from './walletRecord.js';
import { enrolledHwkeyDeviceToken } from './hwkeyDevice.js';
import { issueOwnerDeviceToken } from './ownerDevice.js';
import {
  applyDueChanges,
  assertTimelockDelayMs,
  type TimelockSettings,
  cancelChange,
  cancelChangeFromOwnerPage,
  type ChangePage,
  type CreatedChange,
  confirmChange,
  emergencyExitFor,
  needsQuorum,
  getChange,
  openChangePage,
  type PendingChangeView,
  refuseApiDecision,
  requestChange,
  sendChangeCode as sendTimelockCode,
  type TimelockHooks,
} from './pendingChanges.js';
import { type AnyProposalKind, BUILT_IN_PROPOSAL_KINDS, proposalRegistry } from './quorum/proposalKinds.js';
import { changeQuorumApproved, tellAdmins, timelockDelayInForce, walletFrozen, walletProposalKinds, webhookUrlInForce } from './quorumWiring.js';
import { ADMIN_PAGE_APP, adminPageProposal, adminPageProposals, approveOnAdminPage, draftOnAdminPage, proposeOnAdminPage } from './quorum/adminPage.js';
import { type AdminNoticeList, listAdminNotices } from './quorum/tellAdmins.js';
import { type AuditListRequest, type AuditPage, listAudit } from './listAudit.js';
import {
  type AdminCandidate,
  type AdminEnrollmentLink,
  type AdminEnrollmentPage,
  adminLoginOptions,
  checkAdminSession,
  completeAdminEnrollment,
  createAdminEnrollmentLink,
  finishAdminLogin,
  listAdminCandidates,
  openAdminEnrollmentPage,
} from './quorum/adminPasskeys.js';
import { apiKeyMacHolds, approveProposal, getProposal, listProposals, type ProposalView, proposeChange } from './quorum/proposals.js';
import {
  type AdminEntry,
  adminsWithoutEmail,
  type DeploymentSettings,
  deploymentSettingsMissing,
  QUORUM_BOOTSTRAP_ACTION,
  QUORUM_SETTING,
  type QuorumSettings,
  quorumRequired,
  readDeploymentSettings,
  readQuorumSettings,
} from './quorum/settings.js';
import { policyDefaultsInUnit, wirePolicyDefaults } from './policyDefaults.js';

export const KERNEL_VERSION = '0.1.0';

const FACTOR_KIND = /^[a-z][a-z0-9-]{0,31}$/;

export interface KernelOptions {
  store: Store;
  /** Server clock, milliseconds since the epoch. */
  now?: () => number;
  /** CSPRNG. */
  random?: (n: number) => Uint8Array;
  /** Issuer shown in authenticator apps (otpauth label prefix). */
  totpIssuer?: string;
  /** Lifetime of a compatibility-API bearer session. */
  sessionTtlSeconds?: number;
  /** Bound on the derivation cache (wallet nodes kept in memory; default DEFAULT_MAX_CACHED_WALLETS, 10,000). */
  maxCachedWallets?: number;
  /**
   * How long submitted Shamir shares wait for the rest (default 15 minutes): a share older than
   * this is discarded (wiped) at the next submission or status, so that a forgotten half-finished
   * unseal does not keep operators' shares in memory, and a stale one is not completed by accident.
   */
  unsealShareTtlMs?: number;
  /**
   * Whether a wallet name with no (authenticated) row signs without consent, its row then created
   * for the caller's tenant (`allow`, the default: the TOTP ETH Signer's semantics for wallets never
   * enrolled), or is refused `wallet_not_found` (`deny`: for deployments that enrol every wallet, so
   * that a wallet whose rows were deleted from the database cannot sign). See policy.ts.
   */
  unknownWallets?: UnknownWallets;
  /**
   * Factors registered besides TOTP (which is always registered, first): consent considers a
   * wallet's factors in this order (see consent/Factor.ts). Trusted code, like the kernel itself:
   * a factor decides consent. Today only the tests register one.
   */
  factors?: readonly Factor[];
  /** Whether the backend may enrol TOTP through the API (`on`, default) — see policy.ts BackendEnrollment. */
  backendEnrollment?: BackendEnrollment;
  /**
   * The deployment's wallet policy defaults (walletPolicy.ts; `custos serve --policy-file`), under
   * each wallet's own override. Validated at construction (invalid_input names the field).
   */
  policyDefaults?: WalletPolicy;
  /** Housekeeping's retention of finished approvals, enrolment links and outbox rows (housekeeping.ts; default 30 days). */
  housekeeping?: HousekeepingOptions;
  /** Raw hashes through the compatibility API: `allow` (default, the weaker mode) or `policy` (as /v1/sign/hash). See policy.ts. */
  compatRawHash?: 'allow' | 'policy';
  /**
   * Audit bytes each tenant may add per second, sustained, and at once (see audit/auditRateLimit.ts
   * for the defaults: 256 KiB/s, burst 16 MiB). Over it, requests are refused `audit_rate_limited`.
   */
  auditBytesPerSecond?: number;
  auditBurstBytes?: number;
  /** Signed checkpoints of the audit log: how often, and who hears of them (see AuditCheckpointer). */
  auditCheckpoints?: AuditCheckpointOptions;
  /** Pending approvals allowed at once per wallet and per tenant (default 16 and 1000). */
  approvalLimits?: { perWallet?: number; perTenant?: number };
  /**
   * Where passkeys are valid (the public URL's host and origin): the passkey factor is registered,
   * after TOTP, only with these (consent/passkeyFactor.ts). Without them, no passkey can be
   * registered, and a wallet that has one is refused `record_unreadable` (fail closed).
   */
  passkeys?: PasskeySettings;
  /**
   * Codes the kernel delivers itself (consent/oobFactor.ts): the `oob` factor is registered, after
   * passkeys, only when the shell has a channel to send them (`--smtp-url`, `--webhook-url`).
   * `codeTtlSeconds`: a code's life (default 300, at most 600); `limits` for tests.
   */
  oob?: { codeTtlSeconds?: number; limits?: Partial<OobLimits>; channels?: readonly OobChannel[]; webhookTrusted?: boolean };
  /**
   * Timelocked changes (pendingChanges.ts): the delay before a change of a wallet's protection takes
   * effect (default 48 h; below 1 h the kernel refuses to start, invalid_input), and the hooks the
   * policy, freeze and quorum parts fill.
   */
  timelock?: { delayMs?: number; hooks?: TimelockHooks; applyPaging?: { page: number; passMax: number } };
  /** Proposal kinds besides the built-in ones (quorum/proposalKinds.ts): trusted code, like factors. */
  proposalKinds?: readonly AnyProposalKind[];
}

/**
 * The kernel: HTTP-free; the store, clock and randomness are passed in. The object keeps what must
 * live across calls — the barrier (while unsealed), the seal epoch, the signer's meta, the unseal
 * desk, the sessions, the audit budget and checkpoints — and wires each entry point to the module
 * that decides it: the sign path (sign.ts), enrolment (enrollment.ts), wallet reads (wallets.ts),
 * app authorization (authorize.ts), sessions (sessions.ts), unseal (unseal/UnsealDesk.ts). Every entry point
 * checks "sealed" first. docs/architecture.md has the reviewer's map.
 */
export class Kernel {
  readonly #store: Store;
  readonly #now: () => number;
  readonly #purgeSteps: readonly PurgeStep[];
  readonly #ctx: KernelContext;
  readonly #totp: Factor<object, TotpShown, null>;
  readonly #passkeys: PasskeySettings | undefined;
  readonly #maxCachedWallets: number;
  #meta: SignerMeta | undefined;
  /** The unsealer of #meta's sealed root, read once per meta (status() runs on every request). */
  #unsealerInfo: UnsealerInfo | null = null;
  #barrier: Barrier | undefined;
  readonly #unseal: UnsealDesk;
  readonly #sessions: Sessions;
  #installs = 0;
  #lastWiped: SecretBufferCounts | null = null;
  /** Counts seals, so that an unseal that was under way during a seal does not install its barrier. */
  #sealEpoch = 0;
  /** The per-tenant audit byte budget, and the per-API-key tallies of the requests it refused. */
  readonly #auditLimiter: AuditRateLimiter;
  /** When the next signed checkpoint of the audit chain is due, and who hears of it. */
  readonly #checkpoints: AuditCheckpointer;
  /** Who hears of approval state changes made in this process (watchApprovals). */
  readonly #approvalListeners = new Set<(id: string) => void>();
  /** Who hears that a message was queued (the delivery sender). */
  readonly #deliveryListeners = new Set<() => void>();

  private constructor(options: KernelOptions, meta: SignerMeta | undefined) {
    this.#store = options.store;
    const now = options.now ?? Date.now;
    this.#now = now;
    this.#purgeSteps = purgeSteps(options.housekeeping);
    const random = options.random ?? ((n: number) => new Uint8Array(randomBytes(n)));
    this.#maxCachedWallets = options.maxCachedWallets ?? DEFAULT_MAX_CACHED_WALLETS;
    this.#auditLimiter = new AuditRateLimiter({
      bytesPerSecond: options.auditBytesPerSecond ?? DEFAULT_AUDIT_BYTES_PER_SECOND,
      burstBytes: options.auditBurstBytes ?? DEFAULT_AUDIT_BURST_BYTES,
    });
    this.#checkpoints = new AuditCheckpointer(this.#store, now, options.auditCheckpoints);
    this.#totp = totpFactor({ issuer: options.totpIssuer ?? 'Custos' });
    this.#passkeys = options.passkeys;
    const factors = [
      this.#totp,
      ...(options.passkeys === undefined ? [] : [passkeyFactor(options.passkeys)]),
      hwkeyFactor(),
      ...(options.oob === undefined ? [] : [this.#oobFactor(options.oob)]),
      ...(options.factors ?? []),
    ];
    // A kind names audit actions (`<kind>.enroll`) and record keys (`<kind>:<wallet>`): short, lowercase, unique.
    for (const factor of factors)
      if (!FACTOR_KIND.test(factor.kind)) throw invalidInput('factors', `kinds of 1–32 lowercase letters, digits or '-' (starting with a letter)`, factor.kind);
    if (new Set(factors.map((f) => f.kind)).size !== factors.length) throw invalidInput('factors', 'one factor per kind');
    const configDefaults = assertWalletPolicy(options.policyDefaults ?? {}, 'policyDefaults');
    const compatFlag = options.compatRawHash;
    if (compatFlag !== undefined && compatFlag !== 'allow' && compatFlag !== 'policy')
      throw invalidInput('compatRawHash', 'allow or policy', String(compatFlag));
    const inForce = () => {
      // Under a quorum whose settings row is gone: record_unreadable, never the configuration (fail closed).
      if (this.#deploymentSettingsState.kind === 'missing') throw deploymentSettingsMissing();
      // Not read since the unseal (the read failed): nothing decides on defaults it could not read —
      // under a quorum the configuration's would be the built-in ones, looser than the quorum's.
      if (this.#deploymentSettingsState.kind === 'unknown')
        throw new CustosError('store_unavailable', 'the deployment settings could not be read since the unseal: refusing to decide on a policy', {
          details: { setting: 'deployment' },
        });
      return this.#deploymentSettingsState;
    };
    this.#ctx = {
      store: this.#store,
      now,
      random,
      requireBarrier: () => this.#requireBarrier(),
      signerId: () => {
        this.#requireBarrier();
        return (this.#meta as SignerMeta).signerId;
      },
      transact: (work) => this.#transact(work),
      readStore: (read) => this.#readStore(read),
      factors,
      policy: {
        unknownWallets: options.unknownWallets ?? 'allow',
        backendEnrollment: options.backendEnrollment ?? 'on',
        // issue 13 policy wiring: the quorum's deployment settings row, once there, gives the defaults (#policyDefaults)
        get defaults(): WalletPolicy {
          const state = inForce();
          return state.kind === 'row' ? state.defaults : configDefaults;
        },
        // Under the quorum's settings row: the row's, and the flag can only make it stricter.
        get compatRawHash(): 'allow' | 'policy' {
          const state = inForce();
          if (state.kind === 'config') return compatFlag ?? 'allow';
          return compatFlag === 'policy' ? 'policy' : state.compatRawHash;
        },
        // issue 13 policy wiring: the emergency exit (a pending deactivation's safe address) in the decision's unit
        emergencyExit: (tx, wallet, nowMs) =>
          emergencyExitFor(tx, {
            walletName: wallet.wallet.name,
            barrier: this.#requireBarrier(),
            now: nowMs,
            // A TOTP-only wallet's deactivation opens the exit only once the admin quorum approved it (fail closed without the hook).
            ...(needsQuorum(wallet.enrolled)
              ? { quorumApproved: async (change: PendingChangeRecord) => (await this.#ctx.timelock.hooks?.quorumApproved?.(tx, change)) ?? false }
              : {}),
          }),
      },
      approvalLimits: { ...DEFAULT_APPROVAL_LIMITS, ...options.approvalLimits },
      idempotencyLocks: new KeyLocks(),
      timelock: this.#wiredTimelock(options.timelock, configDefaults),
      deliveryQueued: () => {
        for (const listener of this.#deliveryListeners) {
          try {
            listener();
          } catch {
            // The sender's failure is its own: the message is committed and will be claimed by polling.
          }
        }
      },
      quorumSealed: () => this.#quorumSealed,
      ...(options.passkeys === undefined ? {} : { passkeys: options.passkeys }),
      approvalChanged: (id) => {
        for (const listener of this.#approvalListeners) {
          try {
            listener(id);
          } catch {
            // A watcher's failure is its own: the decision is committed.
          }
        }
      },
    };
    this.#unseal = new UnsealDesk({
      now,
      refreshMeta: () => this.#refreshMeta(),
      unsealed: () => this.#barrier !== undefined,
      sealEpoch: () => this.#sealEpoch,
      install: (barrier, epoch, unsealer) => this.#install(barrier, epoch, unsealer),
      auditSys: (action, decision, reason, detail) => this.#auditSys(action, decision, reason, detail),
      maxCachedWallets: this.#maxCachedWallets,
      shareTtlMs: options.unsealShareTtlMs ?? 15 * 60_000,
    });
    this.#sessions = new Sessions(this.#ctx, options.sessionTtlSeconds ?? 900);
    // issue 13 policy wiring: deployment.settings pins and timelocks the wallets its new defaults loosen (policyDefaults.ts)
    const wired = wirePolicyDefaults(BUILT_IN_PROPOSAL_KINDS, { ctx: () => this.#ctx, factors });
    this.#proposalKinds = proposalRegistry([...wired, ...walletProposalKinds(this.#ctx), ...(options.proposalKinds ?? [])]);
    this.#setMeta(meta);
  }

  /** The delivered-code factor, its codes computed under this kernel's barrier. */
  #oobFactor({ codeTtlSeconds = DEFAULT_OOB_LIMITS.codeTtlMs / 1000, limits, channels, webhookTrusted }: NonNullable<KernelOptions['oob']>): Factor {
    if (!Number.isSafeInteger(codeTtlSeconds) || codeTtlSeconds < 30 || codeTtlSeconds * 1000 > MAX_OOB_CODE_TTL_MS)
      throw invalidInput('oob.codeTtlSeconds', `an integer 30–${MAX_OOB_CODE_TTL_MS / 1000}`, String(codeTtlSeconds));
    return oobFactor({
      codeOf: (walletName, subject, counter) => computeOobCode(this.#requireBarrier(), walletName, subject, counter),
      limits: { ...DEFAULT_OOB_LIMITS, ...limits, codeTtlMs: codeTtlSeconds * 1000 },
      ...(channels === undefined ? {} : { channels }),
      ...(webhookTrusted === undefined ? {} : { webhookTrusted }),
    });
  }

  /**
   * Opens a kernel over a store. It starts sealed. The native libsecp256k1 binding is loaded here,
   * so that a broken native build stops the start instead of surfacing at the first signature.
   */
  static async open(options: KernelOptions): Promise<Kernel> {
    loadSecp256k1();
    return new Kernel(options, await options.store.getMeta());
  }

  get store(): Store {
    return this.#store;
  }

  // ── status ────────────────────────────────────────────────────────────────────────────────

  status(): KernelStatus {
    return {
      initialized: this.#meta !== undefined,
      sealed: this.#barrier === undefined,
      signerId: this.#meta?.signerId ?? null,
      version: KERNEL_VERSION,
      derivation: this.#meta?.derivation ?? null,
      unsealer: this.#unsealerStatus(),
      auditPublicKey: this.#barrier === undefined ? null : toHex(this.#barrier.auditPublicKey),
    };
  }

  /**
   * status() after a read of the signer's row: what GET /v1/sys/status answers, so that a rekey made
   * by another process (`custos rekey` against the same store) shows at once. The store unreachable:
   * the status as this process last read it (status answers while the store is down).
   */
  async currentStatus(): Promise<KernelStatus> {
    const meta = await this.#store.getMeta().catch(() => undefined);
    if (meta !== undefined && meta.signerId === this.#meta?.signerId) this.#setMeta(meta);
    return this.status();
  }

  /** Whether the kernel is sealed: what every request checks (status() also builds the unsealer's view). */
  get sealed(): boolean {
    return this.#barrier === undefined;
  }

  get signerId(): string | undefined {
    return this.#meta?.signerId;
  }

  #unsealerStatus(): UnsealerStatus | null {
    const info = this.#unsealerInfo;
    if (info === null) return null;
    if (info.type === 'pkcs11') return { type: 'pkcs11', tokenLabel: info.tokenLabel, keyLabel: info.keyLabel, keyId: info.keyId };
    if (info.type !== 'shamir') return { type: info.type };
    const submitted = this.#unseal.submittedShares();
    const status: UnsealerStatus = { type: 'shamir', threshold: info.threshold, shares: info.shares, sharesSigned: info.shareKey !== undefined };
    if (this.#barrier === undefined) status.progress = { submitted, threshold: info.threshold };
    return status;
  }

  /**
   * A read-only test seam: how many barriers were installed, and how many secret buffers the
   * installed one and the last wiped one hold and how many of those still have a non-zero byte.
   * Counts only: no key material, no barrier (which could sign without audit) leaves the kernel.
   */
  secretBufferState(): KernelSecretBufferState {
    return { installs: this.#installs, installed: this.#barrier?.secretBufferState() ?? null, lastWiped: this.#lastWiped };
  }

  // ── unseal (unseal/UnsealDesk.ts) and seal ──────────────────────────────────────────────────────────

  /** Opens the sealed root with the passphrase; the passphrase buffer is not kept. */
  async unseal(passphrase: Uint8Array): Promise<void> {
    await this.unsealWith({ type: 'passphrase', passphrase });
  }

  /**
   * Opens the sealed root with the credential of its unsealer (see UnsealDesk.unsealWith). The
   * unseal is audited (`sys.unseal`), allowed or denied; the barrier is installed only after its
   * audit record committed. `client`: who asks (the unit of the back-off; default the in-process
   * operator), see UnsealClient.
   */
  unsealWith(credential: UnsealCredential, client: UnsealClient = LOCAL_UNSEAL_CLIENT): Promise<void> {
    return this.#unseal.unsealWith(credential, client);
  }

  /** Shamir: one operator's share file (see UnsealDesk.submitShare). */
  submitUnsealShare(text: unknown, client: UnsealClient = LOCAL_UNSEAL_CLIENT): Promise<ShareProgress> {
    return this.#unseal.submitShare(text, client);
  }

  /** Shamir: discards the shares submitted so far, on the proof of one share (see UnsealDesk.reset). */
  resetUnseal(text: unknown, client: UnsealClient = LOCAL_UNSEAL_CLIENT): Promise<{ discarded: number }> {
    return this.#unseal.reset(text, client);
  }

  /**
   * Installs a barrier the unseal desk opened. Never over another barrier, nor after a seal that
   * came meanwhile; the check is made inside the audit's unit (the time of the decision), so that
   * the record says what happens: allowed only for a barrier that is installed, denied with the
   * reason for one that is not.
   */
  async #install(barrier: Barrier, epoch: number, unsealer: UnsealCredential['type']): Promise<void> {
    const superseded = (): CustosError | undefined =>
      this.#barrier !== undefined
        ? new CustosError('already_unsealed', 'the signer was unsealed meanwhile')
        : this.#sealEpoch !== epoch
          ? new CustosError('sealed', 'the signer was sealed while this unseal was under way')
          : undefined;
    let outcome: Outcome<null>;
    try {
      // No audit record, no unsealed signer.
      outcome = await this.#transact(async (tx): Promise<Outcome<null>> => {
        const entry = { ts: this.#now(), appId: null, walletName: null, action: 'sys.unseal', opHash: null, detail: { unsealer } };
        const refusal = superseded();
        if (refusal !== undefined) return deny(tx, entry, refusal);
        // The upgrade's one MAC pass over rows made before it, committed before the barrier serves.
        await macRecordsOnUpgrade(tx, barrier, entry.ts);
        await tx.appendAudit(auditRecord(entry, { allowed: {} }));
        return { ok: true, value: null };
      });
    } catch (error) {
      this.#wipe(barrier);
      throw asCustosError(error, 'store_unavailable');
    }
    // A seal that lands during the commit itself is a seal right after this unseal: it wins (the
    // barrier is wiped, never installed), as it would have a moment later.
    const late = outcome.ok ? superseded() : outcome.error;
    if (late !== undefined) {
      this.#wipe(barrier);
      throw late;
    }
    this.#barrier = barrier;
    this.#installs += 1;
    this.#noteQuorumMark();
    // issue 13 policy wiring: the quorum's policy defaults from the start (a row that does not open is refused at the next refresh too)
    await this.refreshPolicyDefaults().catch(() => undefined);
  }

  /** Wipes all key material from memory and returns to the sealed state. */
  seal(): void {
    const barrier = this.#detachBarrier();
    if (barrier !== undefined) this.#wipe(barrier);
    this.#deploymentSettingsState = { kind: 'unknown' };
  }

  /**
   * Seal on demand (an operator, API key with the `admin` scope): wipes the key material first —
   * requests in flight then fail `sealed` before they sign, or finish with their audit record —
   * and appends `sys.seal` to the audit log. A refused caller is audited too. If the audit append
   * fails the signer is sealed all the same and the error is thrown (sealing is never refused).
   */
  async sealOnDemand(app: App): Promise<KernelStatus> {
    this.#requireBarrier();
    const forbidden = checkScope(app, 'admin');
    if (forbidden !== undefined) {
      await this.#transact((tx) => deny(tx, { ts: this.#now(), appId: app.id, walletName: null, action: 'sys.seal', opHash: null, detail: {} }, forbidden));
      throw forbidden;
    }
    return this.#sealAudited({}, app.id);
  }

  /**
   * Seal asked over a channel only an operator can reach (the server's admin socket: its file
   * permissions are the credential, as with Vault's and Docker's control sockets), without an API
   * key. Audited as sys.seal with `detail.via` naming the channel.
   */
  async sealAsOperator(via: 'admin-socket'): Promise<KernelStatus> {
    this.#requireBarrier();
    return this.#sealAudited({ via }, null);
  }

  /** Seals, appends `sys.seal`, and signs the checkpoint over it: wallet keys first, the audit key last. */
  async #sealAudited(detail: Record<string, unknown>, appId: string | null): Promise<KernelStatus> {
    const barrier = this.#detachBarrier();
    const signerId = this.#meta?.signerId;
    barrier?.wipeAllButAuditKey();
    try {
      await this.#auditSys('sys.seal', 'allowed', null, detail, appId);
      if (barrier !== undefined && signerId !== undefined) await this.#checkpoints.checkpoint(signerId, barrier);
    } finally {
      if (barrier !== undefined) this.#wipe(barrier);
    }
    return this.status();
  }

  /** The first step of a seal: no request gets the barrier from here on. The caller wipes it. */
  #detachBarrier(): Barrier | undefined {
    this.#sealEpoch += 1;
    const barrier = this.#barrier;
    this.#barrier = undefined;
    this.#unseal.discardShares();
    return barrier;
  }

  /** Wipes a barrier and notes what its buffers hold right after (counts only, for secretBufferState). */
  #wipe(barrier: Barrier): void {
    barrier.wipe();
    this.#lastWiped = barrier.secretBufferState();
  }

  // ── app authentication (authorize.ts, sessions.ts) ───────────────────────────────────────

  /** API key → app. Unknown, malformed and revoked keys are indistinguishable to the caller. */
  async authenticateApiKey(token: unknown): Promise<App> {
    this.#requireBarrier();
    return this.#admitAudit(await appOfApiKey(this.#ctx, token, (record) => this.#admitApiKeyRow(record)));
  }

  // ── API keys over the API (manageApiKeys.ts; scope admin) ──────────────────────────────────

  /** Every API key (GET /v1/apikeys): names, tenants, scopes, limits, last use; never a secret. */
  listApiKeys(app: App): Promise<ApiKeyView[]> {
    return listApiKeysAsOperator(this.#ctx, app);
  }

  /** Makes an API key (POST /v1/apikeys); under a quorum, `sign` and `admin` keys only by proposal. The token is returned once. */
  createApiKey(
    app: App,
    request: { name?: unknown; scopes?: unknown; tenant?: unknown; expiresInSeconds?: unknown; walletPrefix?: unknown },
  ): Promise<{ token: string; key: ApiKeyView }> {
    return createApiKeyAsOperator(this.#ctx, app, request);
  }

  /** Revokes an API key (DELETE /v1/apikeys). */
  revokeApiKey(app: App, request: { id?: unknown }): Promise<{ id: string; revokedAt: number }> {
    return revokeApiKeyAsOperator(this.#ctx, app, request);
  }

  /** Compatibility API: API key → short-lived bearer token (only its hash is stored). */
  async createSession(app: App): Promise<{ accessToken: string; expiresIn: number }> {
    this.#requireBarrier();
    return this.#sessions.create(app);
  }

  async authenticateSession(token: unknown): Promise<App> {
    this.#requireBarrier();
    // The session's row and its key's row pass the quorum's MAC checks too (issue 13: quorum).
    return this.#admitAudit(await this.#sessions.authenticate(token, (session, key) => this.#admitSessionRow(session, key)));
  }

  /** When each key's last use was last written (ms): at most one write a minute per key, off the sign path's units. */
  readonly #keyUseWritten = new Map<string, number>();

  /** Records an authenticated key's last use (GET /v1/apikeys shows it): at most once a minute per key, a plain update outside any unit. */
  async #noteKeyUse(id: string): Promise<void> {
    const now = this.#now();
    const written = this.#keyUseWritten.get(id);
    if (written !== undefined && now - written < 60_000 && now >= written) return;
    if (this.#keyUseWritten.size >= 10_000) this.#keyUseWritten.clear();
    this.#keyUseWritten.set(id, now);
    // informational: a store hiccup here never fails the request it was noted for (review LOW); the
    // next minute's use writes it again
    await this.#readStore(() => this.#store.touchApiKey(id, now)).catch(() => this.#keyUseWritten.delete(id));
  }

  /**
   * Every authenticated request passes here before any work that writes audit: refused
   * `audit_rate_limited` (429, Retry-After) while its tenant's audit budget is spent — counted in
   * its API key's tally, not audited one by one. The tallies of past minutes are recorded first.
   */
  async #admitAudit(app: App): Promise<App> {
    await this.#noteKeyUse(app.id);
    // A tally whose record cannot be written now is kept (and retried): this request goes on to
    // its own audited unit, which meets the same store.
    if (this.#auditLimiter.hasDue(this.#now())) await this.flushAuditRateLimited().catch(() => undefined);
    this.#auditLimiter.admit(app.id, auditBudgetKey(app), this.#now());
    return app;
  }

  // ── wallets, enrolment, consent challenges (wallets.ts, enrollment.ts, challenge.ts) ─────

  /** Which factors a wallet has; wallet_not_found for a name the signer has no record of. */
  getWallet(app: App, request: { walletName: unknown }): Promise<{ walletName: string; factors: string[]; createdAt: number }> {
    return getWallet(this.#ctx, app, request);
  }

  /** One page of the caller's tenant's wallets (GET /v1/wallets/list, scope derive; wallets.ts). */
  listWallets(app: App, request: { limit?: unknown; cursor?: unknown }): Promise<WalletList> {
    return listWallets(this.#ctx, app, request);
  }

  getPublicKey(app: App, request: { walletName: unknown; keyIndex: unknown }): Promise<PublicKeyResult> {
    return getPublicKey(this.#ctx, app, request);
  }

  /**
   * The backend enrols a TOTP factor for a wallet (creating the wallet) and receives its secret:
   * refused for a wallet with a factor of any kind, and when the deployment switched it off.
   */
  async enrollTotp(app: App, request: { walletName: unknown }): Promise<TotpEnrollment> {
    const { walletName, shown } = await enrollFactor(this.#ctx, app, this.#totp, { walletName: request.walletName }, { byBackend: true });
    return { walletName, otpauthUri: shown.otpauthUri, qrSvg: shown.qrSvg, securityObject: `totp/${walletName}` };
  }

  /** Enrols a factor of a registered kind (the factor seam; TOTP has enrollTotp). Returns what the factor shows the owner. */
  async enrollFactor(app: App, request: { walletName: unknown; kind: unknown; proof?: unknown }): Promise<{ walletName: string; shown: unknown }> {
    this.#requireBarrier();
    const factor = this.#ctx.factors.find((f) => f.kind === request.kind);
    if (factor === undefined) throw new CustosError('invalid_input', 'kind: expected the kind of a registered factor', { details: { field: 'kind' } });
    return enrollFactor(this.#ctx, app, factor, { walletName: request.walletName, proof: request.proof });
  }

  /**
   * Enrols a hardware key through the API (scope `register`; POST /v1/factors `kind: "hwkey"`):
   * only for a wallet with no factor yet, marked enrolled by the backend (`api`), so that it gives
   * `present` at most (the backend may have enrolled a key of its own). The input is checked first
   * (invalid_input naming xpub, publicKey or subpath). Returns the key its answers are verified against.
   */
  async enrollHwkey(
    app: App,
    request: { walletName: unknown; xpub?: unknown; publicKey?: unknown; subpath?: unknown },
  ): Promise<{ walletName: string; kind: 'hwkey'; publicKey: string; subpath: string; enrolledVia: 'api' }> {
    this.#requireBarrier();
    const factor = this.#ctx.factors.find((f) => f.kind === 'hwkey') as Factor;
    const input = { xpub: request.xpub, publicKey: request.publicKey, subpath: request.subpath };
    const { id, state } = parseHwkeyEnrollment(input);
    const { walletName } = await enrollFactor(this.#ctx, app, factor, { walletName: request.walletName, proof: input }, { byBackend: true });
    return { walletName, kind: 'hwkey', publicKey: id, subpath: state.subpath, enrolledVia: 'api' };
  }

  /** A hardware-key challenge for an approval of the caller's tenant (scope `sign`; approvals.ts issueHwkeyChallenge). */
  issueHwkeyChallenge(app: App, request: { id: unknown }): Promise<{ digest: string; subpath: string; expiresAt: number }> {
    return issueHwkeyChallenge(this.#ctx, app, request);
  }

  /** A hardware key's answer relayed by the backend (scope `sign`): decides the approval with strength `present` at most. */
  answerHwkeyChallenge(app: App, request: { id: unknown; signature: unknown }): Promise<ApprovalView> {
    return decideApprovalRelayed(this.#ctx, app, { id: request.id, kind: 'hwkey', proof: request.signature });
  }

  /**
   * A one-time enrolment link for the wallet's owner (scope `register`; enrollmentLinks.ts): the
   * factor's secret is made and sealed now and shown only on the kernel's page. Returns the page's
   * capability token once.
   */
  createEnrollment(app: App, request: { walletName: unknown; kind?: unknown; ttlSeconds?: unknown }): Promise<CreatedEnrollment> {
    return createEnrollment(this.#ctx, app, request);
  }

  /** What the enrolment page behind `capability` shows (enrollment_not_found for an unknown one). */
  openEnrollmentPage(capability: unknown): Promise<EnrollmentPage> {
    return openEnrollmentPage(this.#ctx, capability);
  }

  /** The owner's answer on the enrolment page (TOTP: the first code); the factor is active when it returns. */
  completeEnrollment(capability: unknown, answer: { proof?: unknown; consent?: unknown }): Promise<EnrollmentPage> {
    return completeEnrollment(this.#ctx, capability, answer);
  }

  /** A factor's challenge for an approval (see challenge.ts). */
  challengeFactor(
    app: App,
    request: { walletName: unknown; kind: unknown; approval: unknown },
  ): Promise<{ walletName: string; kind: string; challenge: unknown }> {
    return challengeFactor(this.#ctx, app, request);
  }

  // ── approvals (approvals.ts): one operation, approved by the owner on the kernel's page ──

  /**
   * Creates an approval for one operation (scope `sign`): the operation parsed and summarised as a
   * sign route would, its opHash fixed. Returns the approval page's capability token once.
   */
  createApproval(app: App, request: CreateApprovalRequest): Promise<CreatedApproval> {
    return createApproval(this.#ctx, app, request);
  }

  /** An approval of the caller's tenant (approval_not_found for any other). */
  getApproval(app: App, request: { id: unknown }): Promise<ApprovalView> {
    return getApproval(this.#ctx, app, request);
  }

  /** Cancels a pending approval of the caller's tenant; an approval already decided keeps its state. */
  cancelApproval(app: App, request: { id: unknown }): Promise<ApprovalView> {
    return cancelApproval(this.#ctx, app, request);
  }

  /** What the approval page behind `capability` shows (approval_not_found for an unknown capability). */
  openApprovalPage(capability: unknown): Promise<ApprovalPage> {
    return openApprovalPage(this.#ctx, capability);
  }

  /**
   * The owner's decision posted on the approval page: approve with a factor's proof, or reject.
   * `deviceTokens`: the request's hardware-key device cookies (a card's answer counts as posted on
   * the page only with its card's; kernel/hwkeyDevice.ts).
   */
  decideApproval(capability: unknown, decision: ApprovalDecision, deviceTokens?: readonly string[]): Promise<ApprovalView> {
    return decideApproval(this.#ctx, capability, decision, deviceTokens);
  }

  /**
   * The device token of a wallet's card enrolled on the page, for the enrolment page's response
   * that completed it to set as a cookie (never anywhere else); undefined without such a card.
   */
  enrolledHwkeyDeviceToken(walletName: string): Promise<string | undefined> {
    return enrolledHwkeyDeviceToken(this.#ctx, walletName);
  }

  /**
   * A new owner-device token of a wallet (kernel/ownerDevice.ts), for a page's response to set as its
   * cookie after the owner proved a factor on that page (and never anywhere else): cancel answers and
   * cancel codes that come with it are counted on the device's own budget, which the backend cannot
   * reach. Undefined when the wallet has no row.
   */
  issueOwnerDeviceToken(walletName: string): Promise<{ token: string; maxAgeSeconds: number } | undefined> {
    return issueOwnerDeviceToken(this.#ctx, walletName);
  }

  /**
   * A challenge for the approval behind `capability`, for a factor that answers the kernel's own
   * challenge (`passkey`): the kernel picks a nonce, stores it with the approval (single use, a new
   * one replaces it) and returns what the owner's device needs to answer it.
   */
  issueApprovalChallenge(capability: unknown, request: { kind: unknown; deviceTokens?: readonly string[] }): Promise<ApprovalChallengeIssued> {
    return issueApprovalChallenge(this.#ctx, capability, request);
  }

  /** The owner sets the delivery address on an `oob` enrolment page: a code is sent to it (enrollmentLinks.ts). */
  setEnrollmentAddress(capability: unknown, request: { channel: unknown; address: unknown }): Promise<EnrollmentPage> {
    return setEnrollmentAddress(this.#ctx, capability, request);
  }

  /** On a link that changes the delivery address of a wallet without a passkey: sends the consent code to the current address. */
  sendEnrollmentChangeCode(capability: unknown): Promise<EnrollmentPage> {
    return sendChangeCode(this.#ctx, capability);
  }

  /** Sends an approval's code again: by the page's capability, or by the backend (scope `sign`); never resets a count. */
  resendApprovalCode(by: { app: App; id: unknown } | { capability: unknown }): Promise<ApprovalView> {
    return resendApprovalCode(this.#ctx, by);
  }

  /** Claims due outbox messages for this sender, with their codes computed now (oobDelivery.ts). */
  claimDeliveries(options?: { limit?: number; leaseMs?: number }): Promise<DeliveryMessage[]> {
    return claimDeliveries(this.#ctx, options);
  }

  /** Writes a claimed message's delivery result (sent, retried, failed, expired). */
  settleDelivery(message: Pick<DeliveryMessage, 'id' | 'attempts' | 'expiresAt'>, result: DeliveryResult): Promise<void> {
    return settleDelivery(this.#ctx, message.id, message.attempts, message.expiresAt, result);
  }

  /** Calls `listener` after a unit of this process queued a message (the sender wakes on it). Returns the unsubscribe function. */
  watchDeliveries(listener: () => void): () => void {
    this.#deliveryListeners.add(listener);
    return () => this.#deliveryListeners.delete(listener);
  }

  /** Where passkeys are valid, or undefined when the kernel was started without them (see KernelOptions.passkeys). */
  get passkeys(): PasskeySettings | undefined {
    return this.#passkeys;
  }

  /** Marks pending approvals past their expiry `expired`, each audited; returns how many (the shell runs it on a timer). */
  expireApprovals(): Promise<number> {
    return expireApprovals(this.#ctx);
  }

  /** The CSRF token of a page form: bound to the page's capability and the browser's cookie value (pageForms.ts). */
  pageFormToken(capability: string, browserNonce: string): string {
    return pageFormToken(this.#ctx, capability, browserNonce);
  }

  /** Whether a posted page form's token matches its capability and the browser's cookie value (constant-time). */
  checkPageFormToken(capability: string, browserNonce: string, token: string): boolean {
    return checkPageFormToken(this.#ctx, capability, browserNonce, token);
  }

  /**
   * Calls `listener` whenever an approval's state changes in this process (long polls wake on it;
   * other replicas' changes are seen by polling the store). Returns the unsubscribe function.
   */
  watchApprovals(listener: (id: string) => void): () => void {
    this.#approvalListeners.add(listener);
    return () => this.#approvalListeners.delete(listener);
  }

  // ── the JSON-RPC signer's address book and waiting requests (rpcAccounts.ts) ──────────────

  /** Whether the caller may have a JSON-RPC method forwarded to the upstream node (scope `sign`; a denial audited `rpc.forward`). */
  authorizeRpcForward(app: App, request: { method: string }): Promise<void> {
    return authorizeRpcForward(this.#ctx, app, request);
  }

  /** Adds the address of a wallet key to the caller's tenant's JSON-RPC address book (scope `sign`; audited `rpc.account.add`). */
  registerRpcAccount(app: App, request: { walletName: unknown; keyIndex: unknown }): Promise<RpcAccount> {
    return registerRpcAccount(this.#ctx, app, request);
  }

  /** One page of the caller's tenant's address book, in insertion order (scope `sign`). */
  listRpcAccounts(app: App, request: { cursor?: unknown; limit?: unknown }): Promise<{ accounts: RpcAccount[]; nextCursor: string | null }> {
    return listRpcAccounts(this.#ctx, app, request);
  }

  /** The wallet and key index of a `from` address of the caller's tenant's book (rpc_account_unknown for any other). */
  resolveRpcAccount(app: App, request: { address: unknown }): Promise<RpcAccount> {
    return resolveRpcAccount(this.#ctx, app, request);
  }

  /** The approval stored for the caller's tenant's identical JSON-RPC request (rpcRequestKey), if any. */
  findRpcRequest(app: App, request: { requestKey: string }): Promise<RpcStoredRequest | undefined> {
    return findRpcRequest(this.#ctx, app, request);
  }

  /** Stores the approval made for a JSON-RPC request and the (filled) operation it was made for. */
  rememberRpcRequest(app: App, request: { requestKey: string; approvalId: string; operation: unknown }): Promise<void> {
    return rememberRpcRequest(this.#ctx, app, request);
  }

  /** Forgets a JSON-RPC request's spent approval (the identical request then asks the owner again). */
  forgetRpcRequest(app: App, request: { requestKey: string; approvalId: string }): Promise<void> {
    return forgetRpcRequest(this.#ctx, app, request);
  }

  // ── signing (sign.ts: the sign path) ─────────────────────────────────────────────────────

  /**
   * Signs a raw 32-byte hash. A wallet with an enrolled factor signs only with a valid, unused
   * consent: the attempt is charged, the proof checked, the factor's state and the audit record
   * written in one transaction; the signature is returned only after that commit.
   */
  signHash(app: App, request: SignHashRequest): Promise<HashSignature> {
    return signHash(this.#ctx, app, request);
  }

  /** EIP-155 / 2930 / 1559 / 7702 transaction: the kernel computes the digest and serialises the signed transaction. */
  signTransaction(app: App, request: SignOperationRequest & { transaction?: unknown }): Promise<OperationResult<TransactionSignatureResult>> {
    return signOperation(this.#ctx, app, 'transaction', request);
  }

  /** EIP-191 personal_sign of a text (UTF-8) or raw bytes. */
  signMessage(app: App, request: SignOperationRequest & { message?: unknown }): Promise<OperationResult<EthereumSignatureResult>> {
    return signOperation(this.#ctx, app, 'message', request);
  }

  /** EIP-712 typed data. */
  signTypedData(app: App, request: SignOperationRequest & { typedData?: unknown }): Promise<OperationResult<EthereumSignatureResult>> {
    return signOperation(this.#ctx, app, 'typedData', request);
  }

  /** EIP-7702 authorization tuple (the account hands control to the delegate contract). */
  signAuthorization(app: App, request: SignOperationRequest & { authorization?: unknown }): Promise<OperationResult<AuthorizationSignatureResult>> {
    return signOperation(this.#ctx, app, 'authorization', request);
  }

  // ── audit: checkpoints and the budget's tallies ──────────────────────────────────────────

  /**
   * Signs a checkpoint of the audit chain's head unless a stored one covers it already (the shell
   * calls it on a timer and at shutdown, before seal()); the checkpoint made, or undefined.
   */
  async checkpoint(): Promise<AuditCheckpoint | undefined> {
    const barrier = this.#requireBarrier();
    return this.#checkpoints.checkpoint((this.#meta as SignerMeta).signerId, barrier);
  }

  /**
   * Records the requests refused `audit_rate_limited`: one `audit.rate_limited` record per API key
   * and minute (detail: count, firstTs, lastTs). Tallies of past minutes only, or all of them
   * (`all`, at shutdown). The kernel owns no timer: the server calls this periodically and when it
   * closes. A tally whose record fails to commit is kept for the next flush.
   */
  async flushAuditRateLimited({ all = false }: { all?: boolean } = {}): Promise<number> {
    const due = this.#auditLimiter.takeDue(this.#now(), { all });
    if (due.length === 0) return 0;
    try {
      await this.#transact(async (tx) => {
        for (const tally of due) await tx.appendAudit(rateLimitedEntry(tally, this.#now()));
      });
    } catch (error) {
      this.#auditLimiter.restore(due);
      throw error;
    }
    return due.length;
  }

  async #auditSys(
    action: string,
    decision: 'allowed' | 'denied',
    reason: string | null,
    detail: Record<string, unknown>,
    appId: string | null = null,
  ): Promise<void> {
    await this.#transact((tx) => tx.appendAudit({ ts: this.#now(), appId, walletName: null, action, opHash: null, decision, reason, detail }));
  }

  // ── state ────────────────────────────────────────────────────────────────────────────────

  /** The signer's meta read again from the store (a rekey may have replaced the sealed root). */
  // ---- issue 13: wallet policy ----

  /** GET /v1/wallets/policy: the effective policy of a wallet of the caller's tenant and its usage in the current window (scope `sign`). */
  getWalletPolicy(app: App, request: { walletName: unknown }): Promise<WalletPolicyView> {
    return getWalletPolicy(this.#ctx, app, request);
  }

  /** PUT /v1/wallets/policy: a tightening applies at once; a loosening becomes a timelocked change `policy.loosen` (scope `register`). */
  setWalletPolicy(app: App, request: { walletName: unknown; policy: unknown }): Promise<WalletPolicyView | TimelockedPolicyChange> {
    return setWalletPolicy(this.#ctx, app, request);
  }

  /** Deletes finished approvals, enrolment links and outbox rows past the retention (the server's housekeeping timer); how many of each. */
  runHousekeeping(): Promise<Record<string, number>> {
    return runHousekeeping(this.#ctx, this.#purgeSteps);
  }

  /** Deletes policy usage rows older than the longest window (the server's periodic sweep); returns how many. */
  sweepPolicyUsage(): Promise<number> {
    return sweepPolicyUsage(this.#ctx);
  }

  /**
   * Deletes the stored results of idempotency keys older than 24 h (`now` defaults to the kernel's
   * clock); returns how many. Expired rows are ignored anyway (a retry after 24 h is a new
   * operation); this only reclaims space. The sign path also calls it at most once a minute per
   * process, in the unit that stores a result (docs/idempotency.md); a housekeeping schedule may call it too.
   */
  async purgeExpiredIdempotency(now: number = this.#ctx.now()): Promise<number> {
    this.#requireBarrier();
    // in bounded units (500 rows each), as the housekeeping's steps: a unit never holds the store long
    let total = 0;
    for (;;) {
      const deleted = await this.#ctx.transact((tx) => tx.deleteIdempotencyBefore(now - IDEMPOTENCY_TTL_MS + 1, 500));
      total += deleted;
      if (deleted < 500) return total;
    }
  }

  /** A raw hash through the TOTP ETH Signer's compatibility API: as signHash, its policy check following `compatRawHash`. */
  signCompatHash(app: App, request: SignHashRequest): Promise<HashSignature> {
    return signHash(this.#ctx, app, request, 'compat');
  }

  async #refreshMeta(): Promise<SignerMeta> {
    const meta = await this.#readStore(() => this.#store.getMeta());
    if (meta === undefined) throw new CustosError('not_initialized', 'the data directory holds no initialised signer; run `custos init`');
    this.#setMeta(meta);
    return meta;
  }

  #setMeta(meta: SignerMeta | undefined): void {
    this.#meta = meta;
    this.#unsealerInfo = null;
    if (meta === undefined) return;
    try {
      this.#unsealerInfo = describeUnsealer(meta.sealedRoot);
    } catch {
      // An unreadable envelope: status still answers (unsealer null); unseal names the fault.
    }
  }

  #requireBarrier(): Barrier {
    if (this.#barrier === undefined) throw new CustosError('sealed', 'the signer is sealed');
    return this.#barrier;
  }

  /**
   * Runs a unit of work; any failure that is not a kernel decision becomes store_unavailable. The
   * bytes of each audit record it appends are charged to the caller's tenant's audit budget.
   */
  async #transact<T>(work: (tx: StoreTx) => Promise<T>): Promise<T> {
    try {
      const result = await this.#store.transact((tx) => work(meterAuditAppends(tx, (appId, bytes) => this.#auditLimiter.charge(appId, bytes, this.#now()))));
      this.#checkpoints.noteCommit(() =>
        this.#barrier === undefined || this.#meta === undefined ? undefined : { signerId: this.#meta.signerId, signer: this.#barrier },
      );
      return result;
    } catch (error) {
      throw asCustosError(error, 'store_unavailable');
    }
  }

  async #readStore<T>(read: () => Promise<T>): Promise<T> {
    try {
      return await read();
    } catch (error) {
      throw asCustosError(error, 'store_unavailable');
    }
  }

  // ---- issue 13: freeze ("this was not me", activity page, recovery codes) ----

  /** The wallet owner's page (GET /owner/<capability>): the wallet, whether it is frozen, its recent activity. Decides nothing. */
  openOwnerPage(capability: unknown): Promise<OwnerPage> {
    return openOwnerPage(this.#ctx, capability);
  }

  /** "This was not me" (POST on the owner page, form token checked by the shell): freezes the wallet; idempotent; audited `wallet.freeze`. */
  freezeWalletByOwner(capability: unknown): Promise<OwnerPage> {
    return freezeWalletByOwner(this.#ctx, capability);
  }

  /** An operator freezes a wallet (`POST /v1/wallets/freeze`, scope admin): single-admin, idempotent, audited. */
  freezeWalletByAdmin(app: App, request: { walletName: unknown }): Promise<{ walletName: string; frozenAt: number }> {
    return freezeWalletByAdmin(this.#ctx, app, request);
  }

  /** The owner page's "send me a code to unfreeze" (POST, form token checked by the shell): a delivered code bound to this freeze. */
  sendUnfreezeCode(capability: unknown): Promise<OwnerPage> {
    return sendUnfreezeCode(this.#ctx, capability);
  }

  /** What the owner's passkey answers to unfreeze (the owner page's script asks for it); decides nothing. */
  unfreezeChallengeOptions(capability: unknown, request: { kind: unknown }): Promise<{ options: unknown; expiresAt: number }> {
    return unfreezeChallengeOptions(this.#ctx, capability, request);
  }

  /** The owner unfreezes on the owner page with a `bound` factor (the delivered code, `kind: 'oob'`, or a passkey, `kind: 'passkey'`); `present` is refused. */
  unfreezeWalletByOwner(capability: unknown, answer: { kind: unknown; proof: unknown; deviceTokens?: readonly string[] }): Promise<OwnerPage> {
    return unfreezeWalletByOwner(this.#ctx, capability, answer);
  }

  /** Unfreezes a wallet in its own unit (the admin quorum's applied proposal, or the owner's proven `bound` factor): see freeze.ts unfreezeWallet. */
  async unfreezeWallet(
    walletRef: { walletName: string; tenant?: string },
    by: UnfreezeBy,
  ): Promise<{ walletName: string; wasFrozen: boolean; auditSeq: number }> {
    // issue 13: quorum wiring — under an admin set the quorum unfreezes only through an applied
    // wallet.unfreeze proposal (and the owner through the owner page): this direct path is refused.
    if (await this.#quorumActive()) throw quorumRequired('unfreezing a wallet (a wallet.unfreeze proposal)');
    return settle(await this.#transact((tx) => unfreezeWallet(tx, this.#ctx, walletRef, by)));
  }

  /**
   * Verifies and consumes one of a wallet's recovery codes in its own unit (recoveryCodes.ts
   * useRecoveryCode: single use, its own throttle, audited `recovery_code.use` with `purpose`); the
   * timelock's cancel calls useRecoveryCode inside its own unit instead. Refusals thrown after the commit.
   */
  async useRecoveryCode(request: { walletName: string; code: unknown; purpose: string }): Promise<{ remaining: number; auditSeq: number }> {
    const barrier = this.#requireBarrier();
    return settle(await this.#transact((tx) => useRecoveryCode(tx, barrier, { ...request, now: this.#now() })));
  }

  /** The freezes and unfreezes after `afterSeq` that every admin is told of (freeze.ts listFreezeNotices). */
  listFreezeNotices(afterSeq: number, limit?: number): Promise<{ notices: FreezeNotice[]; lastSeq: number }> {
    return listFreezeNotices(this.#ctx, afterSeq, limit);
  }

  // ---- issue 13: timelock ----

  /** The delay before a change of a wallet's protection takes effect (milliseconds). */
  get timelockDelayMs(): number {
    return this.#ctx.timelock.delayMs;
  }

  /** The backend asks for a timelocked change (scope `register`): the owner confirms it on the page behind the returned capability. */
  requestChange(app: App, request: { walletName: unknown; kind: unknown; payload?: unknown; ttlSeconds?: unknown }): Promise<CreatedChange> {
    return requestChange(this.#ctx, app, request);
  }

  /** A change of the caller's tenant (scope `register`). */
  getChange(app: App, request: { id: unknown }): Promise<PendingChangeView> {
    return getChange(this.#ctx, app, request);
  }

  /** A confirm or cancel with only the API key: always refused `owner_consent_required`, audited. */
  refuseChangeByApi(app: App, request: { id: unknown }, step: 'confirm' | 'cancel'): Promise<never> {
    return refuseApiDecision(this.#ctx, app, request, step);
  }

  /** What the change's page (or the delivered link) shows. */
  openChangePage(capability: unknown): Promise<ChangePage> {
    return openChangePage(this.#ctx, capability);
  }

  /** The owner's consent on the change's page (a factor of the wallet's strongest strength; a card's with its browser's device cookies). */
  confirmChange(capability: unknown, answer: { kind?: unknown; proof?: unknown; deviceTokens?: readonly string[] }): Promise<PendingChangeView> {
    return confirmChange(this.#ctx, capability, answer);
  }

  /**
   * The owner cancels a change with any current factor (its throttle lifted), or by the delivered e-mail
   * link. `deviceTokens`: the request's owner-device cookies (a valid one counts the answer on the
   * device's own budget; kernel/ownerDevice.ts).
   */
  cancelChange(capability: unknown, answer: { kind?: unknown; proof?: unknown; deviceTokens?: readonly string[] }): Promise<PendingChangeView> {
    return cancelChange(this.#ctx, capability, answer);
  }

  /** The owner cancels one of the wallet's open changes on the wallet's owner page: the same rules as cancelChange (any current factor, its throttle lifted). */
  cancelChangeFromOwnerPage(
    ownerCapability: unknown,
    changeId: unknown,
    answer: { kind?: unknown; proof?: unknown; deviceTokens?: readonly string[] },
  ): Promise<PendingChangeView> {
    return cancelChangeFromOwnerPage(this.#ctx, ownerCapability, changeId, answer);
  }

  /**
   * On the change's page: a code sent to the wallet's delivery address, for this change's consent (or
   * cancel; with a valid owner-device cookie among `deviceTokens`, under the device's own cap).
   */
  sendChangeCode(capability: unknown, deviceTokens?: readonly string[]): Promise<ChangePage> {
    return sendTimelockCode(this.#ctx, capability, deviceTokens);
  }

  /** One pass of the apply loop: reminders, then due changes applied atomically with their audit record (the shell runs it on a timer). */
  async applyDueChanges(): Promise<number> {
    await this.refreshPolicyDefaults();
    return applyDueChanges(this.#ctx);
  }

  // ---- issue 13: quorum ----
  /** The proposal kinds (built in, then KernelOptions.proposalKinds). */
  readonly #proposalKinds: ReadonlyMap<string, AnyProposalKind>;
  /** Sticky: an admin set was seen (its row, its bootstrap record, or the sealed root's mark): API key rows must carry a valid MAC from then on. */
  #quorumSeen = false;
  /** The sealed root this kernel opened carries the quorum mark (sealedRootQuorum; authenticated by the open). Sticky. */
  #quorumSealed = false;

  /**
   * At each unseal: the envelope just opened (#meta, read by the unseal desk before the open) says
   * whether an admin quorum is configured. Its header is the envelope's associated data: a mark that
   * was removed or added in the database would have failed the open.
   */
  #noteQuorumMark(): void {
    let marked = false;
    try {
      marked = this.#meta !== undefined && sealedRootQuorum(this.#meta.sealedRoot);
    } catch {
      marked = true; // an unreadable mark fails closed (the open would have refused it anyway)
    }
    if (marked) {
      this.#quorumSealed = true;
      this.#quorumSeen = true;
    }
  }
  /** When the audit log was last searched for a bootstrap record (at most once a minute, for rows without a MAC only). */
  #quorumLogCheckedAt = Number.NEGATIVE_INFINITY;

  /**
   * Whether an API key row may authenticate: a valid MAC always passes; a MAC that does not hold
   * never does; a row without a MAC only while no admin set is configured (its row, or the
   * `quorum.bootstrap` record should the row have been deleted).
   */
  async #admitApiKeyRow(record: ApiKeyRecord): Promise<boolean> {
    const barrier = this.#requireBarrier();
    if (apiKeyMacHolds(barrier, record)) return true;
    if (record.mac !== null && record.mac !== undefined) return false;
    return !(await this.#quorumActive());
  }

  /** Whether an admin set is configured: sticky once seen (its row, or its bootstrap record, searched at most once a minute). */
  async #quorumActive(): Promise<boolean> {
    if (this.#quorumSeen) return true;
    if ((await this.#readStore(() => this.#store.readSetting(QUORUM_SETTING))) !== undefined) this.#quorumSeen = true;
    else if (this.#now() - this.#quorumLogCheckedAt > 60_000) {
      this.#quorumLogCheckedAt = this.#now();
      // A read in a transaction of the store's own (it writes nothing: not a unit of work the audit checkpoints count).
      if (await this.#readStore(() => this.#store.transact((tx) => tx.hasAuditAction(QUORUM_BOOTSTRAP_ACTION)))) this.#quorumSeen = true;
    }
    return this.#quorumSeen;
  }

  /** A compatibility session's row: a valid MAC (or none while no quorum is configured), and its key's row admitted. */
  async #admitSessionRow(session: SessionRecord, key: ApiKeyRecord): Promise<boolean> {
    const barrier = this.#requireBarrier();
    if (sessionMacHolds(barrier, session)) return this.#admitApiKeyRow(key);
    // A MAC that does not hold never passes; a row without one only while no quorum is configured.
    if (session.mac !== null && session.mac !== undefined) return false;
    return !(await this.#quorumActive()) && this.#admitApiKeyRow(key);
  }

  /** An admin proposes a change (scope `admin`; quorum/proposals.ts). */
  proposeChange(
    app: App,
    request: { id: unknown; kind: unknown; payload: unknown; proposer: unknown; signature: unknown; expiresAt: unknown },
  ): Promise<ProposalView> {
    return proposeChange(this.#ctx, this.#proposalKinds, app, request);
  }

  /** An admin approves a proposal (scope `admin`); the approval that meets the threshold applies it. */
  async approveProposal(app: App, request: { id: unknown; admin: unknown; payloadHash: unknown; signature: unknown }): Promise<ProposalView> {
    const view = await approveProposal(this.#ctx, this.#proposalKinds, app, request);
    await this.refreshPolicyDefaults();
    return view;
  }

  /** A proposal in full, with the approvals that count (scope `admin`). */
  getProposal(app: App, request: { id: unknown }): Promise<ProposalView> {
    return getProposal(this.#ctx, this.#proposalKinds, app, request);
  }

  /** The admin set and the newest proposals (scope `admin`). */
  listProposals(app: App, request: { limit?: unknown }): Promise<{ quorum: QuorumSettings | null; proposals: ProposalView[] }> {
    return listProposals(this.#ctx, this.#proposalKinds, app, request);
  }

  // ---- issue 13: admin passkeys and the admin page (quorum/adminPasskeys.ts, adminPage.ts) ----
  /** An operator makes a single-use admin enrolment link (scope `admin`). */
  createAdminEnrollmentLink(app: App, request: { name?: unknown; ttlSeconds?: unknown }): Promise<AdminEnrollmentLink> {
    return createAdminEnrollmentLink(this.#ctx, this.#passkeys, app, request);
  }

  /** The admin enrolment page of a link (reads only). */
  openAdminEnrollmentPage(capability: unknown): Promise<AdminEnrollmentPage> {
    return openAdminEnrollmentPage(this.#ctx, this.#passkeys, capability);
  }

  /** The admin's passkey registered on a link: a candidate (`pk:…`), not yet an admin. */
  completeAdminEnrollment(capability: unknown, proof: unknown): Promise<{ adminId: string; name: string }> {
    return completeAdminEnrollment(this.#ctx, this.#passkeys, capability, proof);
  }

  /** The registered admin passkeys and their admin set entries (scope `admin`). */
  listAdminCandidates(app: App): Promise<AdminCandidate[]> {
    return listAdminCandidates(this.#ctx, app);
  }

  /** The admin page's login options. */
  adminLoginOptions(request: { adminId?: unknown } = {}): ReturnType<typeof adminLoginOptions> {
    return adminLoginOptions(this.#ctx, this.#passkeys, request);
  }

  /** The admin page's login: a passkey admin's assertion → a session token. */
  finishAdminLogin(request: { issuedAt: unknown; nonce: unknown; proof: unknown }): ReturnType<typeof finishAdminLogin> {
    return finishAdminLogin(this.#ctx, this.#passkeys, request);
  }

  /** The passkey admin a session token names (still in the set), or undefined. */
  checkAdminSession(token: string | undefined): Promise<AdminEntry | undefined> {
    return checkAdminSession(this.#ctx, token);
  }

  /** A proposal for the admin page, with the options of the assertion that approves it. */
  adminPageProposal(id: unknown): ReturnType<typeof adminPageProposal> {
    return adminPageProposal(this.#ctx, this.#proposalKinds, id);
  }

  /** The admin page's list of proposals. */
  adminPageProposals(): Promise<ProposalView[]> {
    return adminPageProposals(this.#ctx, this.#proposalKinds);
  }

  /** What every admin was told (freezes, proposals), newest first, full text (scope `admin`; quorum/tellAdmins.ts). */
  listAdminNotices(app: App, request: { limit?: unknown; before?: unknown }): Promise<AdminNoticeList> {
    return listAdminNotices(this.#ctx, app, request);
  }

  /** A filtered page of the audit log, oldest first (GET /v1/audit; scope `admin`, operator tenant; listAudit.ts). */
  listAudit(app: App, request: AuditListRequest): Promise<AuditPage> {
    return listAudit(this.#ctx, app, request);
  }

  /** The admin page's list of notices (the route checked the session). */
  adminPageNotices(): Promise<AdminNoticeList> {
    return listAdminNotices(this.#ctx, ADMIN_PAGE_APP, {});
  }

  /**
   * The admins of the set in force told nothing (no e-mail address: a set made by an earlier version),
   * by public key; empty without a set. For the shell's warning at each unseal (docs/quorum.md).
   */
  async untoldAdmins(): Promise<string[]> {
    const barrier = this.#requireBarrier();
    const quorum = await this.#readStore(() => readQuorumSettings(this.#store, barrier, { sealed: this.#ctx.quorumSealed?.() ?? false }));
    return quorum === undefined ? [] : adminsWithoutEmail(quorum);
  }

  /** A passkey admin's approval on the admin page (the same approveProposal as an Ed25519 approval). */
  async approveOnAdminPage(request: { id: unknown; payloadHash: unknown; proof: unknown }): Promise<ProposalView> {
    const view = await approveOnAdminPage(this.#ctx, this.#proposalKinds, request);
    await this.refreshPolicyDefaults();
    return view;
  }

  /** The proposal kinds this kernel knows (the admin page's choice). */
  get proposalKinds(): string[] {
    return [...this.#proposalKinds.keys()];
  }

  /** The admin page's draft of a passkey admin's proposal (reads and writes nothing), with the options of the assertion that proposes it. */
  draftOnAdminPage(request: { session: unknown; kind: unknown; payload: unknown; ttlSeconds?: unknown }): ReturnType<typeof draftOnAdminPage> {
    return draftOnAdminPage(this.#ctx, this.#proposalKinds, request);
  }

  /** A passkey admin's proposal on the admin page (the same proposeChange as an Ed25519 proposal). */
  proposeOnAdminPage(request: {
    session: unknown;
    id: unknown;
    kind: unknown;
    payload: unknown;
    payloadHash: unknown;
    expiresAt: unknown;
    proof: unknown;
  }): Promise<ProposalView> {
    return proposeOnAdminPage(this.#ctx, this.#proposalKinds, request);
  }

  /** The deployment settings row (defaults until a `deployment.settings` proposal applied), MAC checked. */
  async readDeploymentSettings(): Promise<DeploymentSettings & { version: number }> {
    const barrier = this.#requireBarrier();
    const quorum = await this.#quorumActive();
    return this.#readStore(() => readDeploymentSettings(this.#store, barrier, { quorum }));
  }

  // ---- issue 13: quorum wiring ----
  /** The `--timelock-delay` flag as configured (undefined: none given). */
  #timelockFlagMs: number | undefined;

  /**
   * The timelock's settings as the kernel installs them (quorumWiring.ts): the freeze and quorum hooks
   * always present (a change that needs the quorum waits for it: fail closed; options may replace a
   * hook, as trusted code), the delay in force read from the deployment settings, the admins told.
   */
  #wiredTimelock(given: KernelOptions['timelock'], configDefaults: WalletPolicy): TimelockSettings {
    // issue 13 (what the owner sees of a policy.loosen): the defaults read in the unit, for the change's stored diff and the apply's bound
    const policyDefaultsIn = (tx: StoreTx) => policyDefaultsInUnit(tx, this.#ctx, configDefaults);
    const flagMs = given?.delayMs === undefined ? undefined : assertTimelockDelayMs(given.delayMs);
    this.#timelockFlagMs = flagMs;
    return {
      delayMs: assertTimelockDelayMs(given?.delayMs),
      hooks: {
        isFrozen: walletFrozen,
        quorumApproved: changeQuorumApproved,
        applyPolicy: applyPolicyHook(() => this.#requireBarrier(), policyDefaultsIn),
        ...given?.hooks,
      },
      policyDefaultsIn,
      delayInForce: () => timelockDelayInForce(this.#ctx, flagMs),
      tellAdmins: (tx, text) => tellAdmins(tx, this.#ctx, text, 'change'),
      ...(given?.applyPaging === undefined ? {} : { applyPaging: given.applyPaging }),
    };
  }

  /** The delay a change confirmed now would wait (ms): the deployment settings row's, never shortened by the flag under a quorum. */
  timelockDelayInForceMs(): Promise<number> {
    this.#requireBarrier();
    return this.#readStore(() => timelockDelayInForce(this.#ctx, this.#timelockFlagMs));
  }

  /**
   * The webhook URL in force for the delivery channel (quorumWiring.ts webhookUrlInForce): the
   * deployment settings row's when it names one, else the flag (only while no admin set exists, or
   * no row was written). Null: no webhook.
   */
  async webhookUrlInForce(flagUrl: string | undefined): Promise<string | null> {
    const barrier = this.#requireBarrier();
    const quorum = await this.#quorumActive();
    const settings = await this.#readStore(() => readDeploymentSettings(this.#store, barrier, { quorum }));
    return webhookUrlInForce(settings, await this.#quorumActive(), flagUrl);
  }

  // ---- issue 13: policy wiring ----
  /**
   * The deployment settings in force for the policy (refreshPolicyDefaults): the row's policy defaults
   * and compatibility raw-hash mode once a row exists; the configuration's (`--policy-file`,
   * `--compat-raw-hash`) while there is no row and no quorum; `missing` under a quorum whose row is
   * gone (every policy decision refused record_unreadable); `unknown` until a read succeeds after the
   * unseal (every policy decision refused store_unavailable).
   */
  #deploymentSettingsState:
    | { kind: 'unknown' }
    | { kind: 'config' }
    | { kind: 'row'; defaults: WalletPolicy; compatRawHash: 'allow' | 'policy' }
    | { kind: 'missing' } = { kind: 'unknown' };

  /**
   * Reads the deployment settings row again (MAC checked) and takes its `policyDefaults` and
   * `compatRawHash` as the deployment's (no row and no quorum: the configuration's; no row under a
   * quorum: record_unreadable from then on, thrown here too). Called at each unseal, after an approval
   * in this kernel and on every pass of the apply loop, so another replica follows within that loop's
   * period; a loosening never waits on it (the affected wallets are pinned in the proposal's unit).
   */
  async refreshPolicyDefaults(): Promise<WalletPolicy> {
    const barrier = this.#requireBarrier();
    // Version 0: no row, and none the log anchors (a deleted or older row is record_unreadable: rowAnchors.ts).
    try {
      const quorum = await this.#quorumActive();
      const settings = await this.#readStore(() => readDeploymentSettings(this.#store, barrier, { quorum }));
      this.#deploymentSettingsState =
        settings.version === 0
          ? { kind: 'config' }
          : { kind: 'row', defaults: assertWalletPolicy(settings.policyDefaults, 'policyDefaults'), compatRawHash: settings.compatRawHash };
    } catch (error) {
      // A row that is gone or does not open: nothing decides on the last good copy (fail closed).
      // Any other failure (the store, a lock, a timeout): unknown until a read succeeds — never the
      // configuration's defaults, which under a quorum are the built-in ones (fail closed).
      this.#deploymentSettingsState = asCustosError(error).code === 'record_unreadable' ? { kind: 'missing' } : { kind: 'unknown' };
      throw error;
    }
    return this.#ctx.policy.defaults;
  }
}

export { randomUUID as newSignerId };
