import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { auditBudgetKey } from '../audit/auditBudgetKey.js';
import type { AuditCheckpoint } from '../audit/auditCheckpoint.js';
import { AuditRateLimiter, DEFAULT_AUDIT_BURST_BYTES, DEFAULT_AUDIT_BYTES_PER_SECOND, rateLimitedEntry } from '../audit/auditRateLimit.js';
import { meterAuditAppends } from '../audit/meterAuditAppends.js';
import type { AuditEntry } from '../audit/types.js';
import { Barrier, type BarrierSignature, type LeafPublicKey } from '../barrier/Barrier.js';
import { type AuthorizationSignatureResult, prepareAuthorization } from '../chain/prepareAuthorization.js';
import { prepareMessage } from '../chain/prepareMessage.js';
import { prepareTransaction, type TransactionSignatureResult } from '../chain/prepareTransaction.js';
import { prepareTypedData } from '../chain/prepareTypedData.js';
import type { EthereumSignatureResult } from '../chain/signatureResult.js';
import { summarizeHash } from '../chain/summarizeHash.js';
import type { OperationSummary, PreparedOperation } from '../chain/types.js';
import { loadSecp256k1 } from '../crypto/loadSecp256k1.js';
import { CustosError, invalidInput, isCustosError } from '../errors.js';
import { decodeRootKeyring } from '../seal/decodeRootKeyring.js';
import { wipeRootKeyring } from '../seal/wipeRootKeyring.js';
import { describeUnsealer } from '../seal/describeUnsealer.js';
import { openSealedRoot } from '../seal/openSealedRoot.js';
import { parseShareFile } from '../seal/parseShareFile.js';
import { assertShareBelongs } from '../seal/unsealRootShamir.js';
import { assertUnsealClient, LOCAL_UNSEAL_CLIENT, type UnsealClient } from '../seal/unsealClient.js';
import { UnsealQueue } from '../seal/UnsealQueue.js';
import { UnsealThrottles } from '../seal/UnsealThrottles.js';
import type { UnsealCredential, UnsealerInfo, UnsealerType, UnsealShare } from '../seal/unsealerTypes.js';
import { OPERATOR_TENANT, type Scope, type SignerMeta, type Store, type StoreTx, type TotpFactorState } from '../store/types.js';
import { buildOtpauthUri } from '../totp/buildOtpauthUri.js';
import { generateTotpSecret } from '../totp/generateTotpSecret.js';
import { renderQrSvg } from '../totp/renderQrSvg.js';
import { assertFactorNotThrottled, recordFactorFailure, recordFactorSuccess } from '../totp/throttle.js';
import { verifyTotp } from '../totp/verifyTotp.js';
import { assertHex } from '../util/assertHex.js';
import { assertKeyIndex } from '../util/assertKeyIndex.js';
import { assertWalletName } from '../util/assertWalletName.js';
import { toHex } from '../util/hex.js';
import { equalHashes, hashApiKeySecret, parseApiKeyToken } from './apiKeyToken.js';
import { type AuditCheckpointOptions, AuditCheckpointer } from './AuditCheckpointer.js';
import { computeOpHash } from './computeOpHash.js';
import { finishSignature } from './finishSignature.js';
import { addTotpFactor, checkWalletRows, macRecordsOnUpgrade, openWallet, refuseUnenrolledUnderDeny, type UnknownWallets } from './walletRecord.js';

export const KERNEL_VERSION = '0.1.0';

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
  /** Bound on the derivation cache (wallet nodes kept in memory). */
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
   * that a wallet whose rows were deleted from the database cannot sign). See walletRecord.ts.
   */
  unknownWallets?: UnknownWallets;
  /**
   * Audit bytes each tenant may add per second, sustained, and at once (see audit/auditRateLimit.ts
   * for the defaults: 256 KiB/s, burst 16 MiB). Over it, requests are refused `audit_rate_limited`.
   */
  auditBytesPerSecond?: number;
  auditBurstBytes?: number;
  /** Signed checkpoints of the audit log: how often, and who hears of them (see AuditCheckpointer). */
  auditCheckpoints?: AuditCheckpointOptions;
}

/** An authenticated caller (a wallet backend) and what its API key allows. */
export interface App {
  id: string;
  name: string;
  /** The tenant the API key belongs to: the key sees and touches only this tenant's wallets. */
  tenant: string;
  scopes: readonly Scope[];
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
}

/** The fields every chain operation request shares. */
export interface SignOperationRequest {
  walletName: unknown;
  keyIndex: unknown;
  code?: unknown;
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

type Outcome<T> = { ok: true; value: T } | { ok: false; error: CustosError };

/**
 * The kernel: the one path every request takes. HTTP-free; the store, clock and randomness are
 * passed in. Each security decision is made here, once:
 *   app auth → operation (opHash) → wallet state → consent (TOTP) → derive → sign →
 *   one transaction: consume consent + append audit → result (only after the commit).
 */
export class Kernel {
  readonly #store: Store;
  readonly #now: () => number;
  readonly #random: (n: number) => Uint8Array;
  readonly #totpIssuer: string;
  readonly #sessionTtlSeconds: number;
  readonly #maxCachedWallets: number;
  readonly #unknownWallets: UnknownWallets;
  #meta: SignerMeta | undefined;
  /** The unsealer of #meta's sealed root, read once per meta (status() runs on every request). */
  #unsealerInfo: UnsealerInfo | null = null;
  #barrier: Barrier | undefined;
  /** Shamir shares submitted one at a time (never more than threshold − 1 are kept), and their set. */
  #pendingShares: UnsealShare[] = [];
  #pendingShareSetId: string | undefined;
  /** When the first pending share was submitted (ms, the kernel's clock). */
  #pendingSince = 0;
  readonly #unsealShareTtlMs: number;
  /**
   * Every unseal attempt (passphrase, PIN, share submission) runs after the previous one ended, so
   * that a combine never interleaves with a submission, and parallel requests cannot slip past the
   * throttle: each attempt sees the back-off its predecessor's failure set. Bounded per network
   * client, operators first (see UnsealQueue).
   */
  readonly #unsealQueue = new UnsealQueue();
  /** Back-off of failed unseals, per client (in memory: this process's unseal endpoint is what it guards). */
  readonly #unsealThrottles = new UnsealThrottles();
  #installs = 0;
  #lastWiped: SecretBufferCounts | null = null;
  /** Counts seals, so that an unseal that was under way during a seal does not install its barrier. */
  #sealEpoch = 0;
  #lastSessionSweep = 0;
  /** The per-tenant audit byte budget, and the per-API-key tallies of the requests it refused. */
  readonly #auditLimiter: AuditRateLimiter;
  /** When the next signed checkpoint of the audit chain is due, and who hears of it. */
  readonly #checkpoints: AuditCheckpointer;

  private constructor(options: KernelOptions, meta: SignerMeta | undefined) {
    this.#store = options.store;
    this.#now = options.now ?? Date.now;
    this.#random = options.random ?? ((n) => new Uint8Array(randomBytes(n)));
    this.#totpIssuer = options.totpIssuer ?? 'Custos';
    this.#sessionTtlSeconds = options.sessionTtlSeconds ?? 900;
    this.#maxCachedWallets = options.maxCachedWallets ?? 100_000;
    this.#unsealShareTtlMs = options.unsealShareTtlMs ?? 15 * 60_000;
    this.#unknownWallets = options.unknownWallets ?? 'allow';
    this.#auditLimiter = new AuditRateLimiter({
      bytesPerSecond: options.auditBytesPerSecond ?? DEFAULT_AUDIT_BYTES_PER_SECOND,
      burstBytes: options.auditBurstBytes ?? DEFAULT_AUDIT_BURST_BYTES,
    });
    this.#checkpoints = new AuditCheckpointer(this.#store, this.#now, options.auditCheckpoints);
    this.#setMeta(meta);
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

  /** Whether the kernel is sealed: what every request checks (status() also builds the unsealer's view). */
  get sealed(): boolean {
    return this.#barrier === undefined;
  }

  #unsealerStatus(): UnsealerStatus | null {
    const info = this.#unsealerInfo;
    if (info === null) return null;
    if (info.type === 'pkcs11') return { type: 'pkcs11', tokenLabel: info.tokenLabel, keyLabel: info.keyLabel, keyId: info.keyId };
    if (info.type !== 'shamir') return { type: info.type };
    this.#expireShares();
    const status: UnsealerStatus = { type: 'shamir', threshold: info.threshold, shares: info.shares, sharesSigned: info.shareKey !== undefined };
    if (this.#barrier === undefined) status.progress = { submitted: this.#pendingShares.length, threshold: info.threshold };
    return status;
  }

  get signerId(): string | undefined {
    return this.#meta?.signerId;
  }

  /** Opens the sealed root with the passphrase; the passphrase buffer is not kept. */
  async unseal(passphrase: Uint8Array): Promise<void> {
    await this.unsealWith({ type: 'passphrase', passphrase });
  }

  /**
   * Opens the sealed root with the credential of its unsealer (passphrase, all M Shamir shares at
   * once, or PKCS#11). The sealed root is read from the store again first, so that a rekey done by
   * another process (`custos rekey`) is seen. The unseal is audited (`sys.unseal`), allowed or
   * denied; the barrier is installed only after its audit record committed. `client`: who asks
   * (the unit of the back-off; default the in-process operator), see UnsealClient.
   */
  async unsealWith(credential: UnsealCredential, client: UnsealClient = LOCAL_UNSEAL_CLIENT): Promise<void> {
    assertUnsealClient(client);
    const epoch = this.#sealEpoch;
    await this.#queueUnseal(client, async () => {
      if (this.#barrier !== undefined) throw new CustosError('already_unsealed', 'the signer is already unsealed');
      const meta = await this.#refreshMeta();
      await this.#openAndInstall(meta, credential, epoch, client);
    });
  }

  /** Runs one unseal attempt after the previous one ended (see #unsealQueue). */
  #queueUnseal<T>(client: UnsealClient, attempt: () => Promise<T>): Promise<T> {
    return this.#unsealQueue.run(client, attempt);
  }

  /**
   * `epoch`: #sealEpoch when the unseal was asked for; a seal (or a shutdown) since then wins.
   * The one place a credential is tried: refused unheard while the back-off of an earlier failure
   * runs (not audited: a refused attempt costs nothing and must not flood the log); a failure
   * (`unseal_failed`: wrong passphrase, PIN or combine) is audited and starts the next back-off.
   * Both are the client's own: another client's failures never delay it. A PKCS#11 PIN from the
   * network is not tried when the token says a wrong one would lock it (`hsm_pin_protect`).
   */
  async #openAndInstall(meta: SignerMeta, credential: UnsealCredential, epoch: number, client: UnsealClient): Promise<void> {
    this.#unsealThrottles.assertNotThrottled(client.key, this.#now());
    let root: Uint8Array;
    try {
      root = await openSealedRoot(meta.sealedRoot, meta.signerId, credential, { protectPin: !client.operator });
    } catch (error) {
      const e = asCustosError(error);
      if (e.code === 'unseal_failed') {
        this.#unsealThrottles.recordFailure(client.key, this.#now());
        await this.#auditSys('sys.unseal', 'denied', e.code, { unsealer: credential.type }).catch(() => undefined);
      }
      throw e;
    }
    this.#unsealThrottles.recordSuccess(client.key);
    let keyring: ReturnType<typeof decodeRootKeyring>;
    try {
      keyring = decodeRootKeyring(root);
    } finally {
      root.fill(0);
    }
    let barrier: Barrier;
    try {
      barrier = new Barrier(keyring, meta.derivation, { maxCachedWallets: this.#maxCachedWallets });
    } finally {
      wipeRootKeyring(keyring);
    }
    // Never install over another barrier, nor after a seal that came meanwhile; the check is made
    // inside the audit's unit (the time of the decision), so that the record says what happens:
    // allowed only for a barrier that is installed, denied with the reason for one that is not.
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
        const entry = { ts: this.#now(), appId: null, walletName: null, action: 'sys.unseal', opHash: null, detail: { unsealer: credential.type } };
        const refusal = superseded();
        if (refusal !== undefined) return this.#deny(tx, entry, refusal);
        // The upgrade's one MAC pass over rows made before it, committed before the barrier serves.
        await macRecordsOnUpgrade(tx, barrier, entry.ts);
        await tx.appendAudit({ ...entry, decision: 'allowed', reason: null });
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
    this.#discardShares();
    this.#barrier = barrier;
    this.#installs += 1;
  }

  /**
   * Shamir: takes one operator's share file (text, untrusted) and keeps it until `threshold` shares
   * are in; then recombines the KEK and unseals. A malformed share or bad checksum is
   * `share_invalid`, a share of another signer or set `share_foreign`, the same share twice
   * `share_duplicate` — each refused alone, the shares already in are kept. A combine that fails
   * (a corrupted share recombines into a wrong KEK, caught by the AEAD) is `unseal_failed` and
   * discards every pending share: the operators start again.
   */
  submitUnsealShare(text: unknown, client: UnsealClient = LOCAL_UNSEAL_CLIENT): Promise<ShareProgress> {
    assertUnsealClient(client);
    const epoch = this.#sealEpoch;
    return this.#queueUnseal(client, () => this.#submitShare(text, epoch, client));
  }

  async #submitShare(text: unknown, epoch: number, client: UnsealClient): Promise<ShareProgress> {
    if (this.#barrier !== undefined) throw new CustosError('already_unsealed', 'the signer is already unsealed');
    // While a failed combine's back-off runs, a share is refused before it is kept, so that the
    // shares already in are not spent by a combine that #openAndInstall would refuse.
    this.#unsealThrottles.assertNotThrottled(client.key, this.#now());
    const share = parseShareFile(text);
    try {
      const meta = await this.#refreshMeta();
      assertShareBelongs(meta.sealedRoot, meta.signerId, share);
      // Shares left too long are dropped; a rekey that replaced the share set since the first
      // submission makes what was pending useless.
      this.#expireShares();
      if (this.#pendingShareSetId !== share.shareSetId) this.#discardShares();
      const x = share.share[share.share.length - 1];
      if (this.#pendingShares.some((p) => p.index === share.index || p.share[p.share.length - 1] === x))
        throw new CustosError('share_duplicate', `share ${share.index} was already submitted`, { details: { field: 'share.index' } });
      this.#pendingShareSetId = share.shareSetId;
      if (this.#pendingShares.length === 0) this.#pendingSince = this.#now();
      this.#pendingShares.push({ ...share, share: Uint8Array.from(share.share) });
      const progress = { submitted: this.#pendingShares.length, threshold: share.threshold };
      if (this.#pendingShares.length < share.threshold) return { sealed: true, progress };
      const shares = this.#pendingShares;
      try {
        await this.#openAndInstall(meta, { type: 'shamir', shares }, epoch, client);
      } finally {
        // Unsealed or not, the shares are spent: a failed combine starts over.
        this.#discardShares();
      }
      return { sealed: false, progress };
    } finally {
      share.share.fill(0);
    }
  }

  /**
   * Discards the Shamir shares submitted so far (wiped), on the proof of one share of the current
   * set (text, untrusted): checked as a submitted share is — signature included, so only an
   * operator can reset (a set made before shares were signed: checksum, signer and set id only) —
   * then wiped, never kept. The reset is audited (`sys.unseal.reset`: how many were discarded, the
   * index of the share shown) before the shares go; a refused reset writes no record, so that
   * unauthenticated noise cannot grow the log. Returns how many were discarded. `client`: who asks
   * (its place in the unseal queue), see UnsealClient.
   */
  resetUnseal(text: unknown, client: UnsealClient = LOCAL_UNSEAL_CLIENT): Promise<{ discarded: number }> {
    assertUnsealClient(client);
    return this.#queueUnseal(client, async () => {
      if (this.#barrier !== undefined) throw new CustosError('already_unsealed', 'the signer is already unsealed');
      const share = parseShareFile(text);
      try {
        const meta = await this.#refreshMeta();
        assertShareBelongs(meta.sealedRoot, meta.signerId, share);
      } finally {
        share.share.fill(0);
      }
      this.#expireShares();
      const discarded = this.#pendingShares.length;
      await this.#auditSys('sys.unseal.reset', 'allowed', null, { discarded, shareIndex: share.index });
      this.#discardShares();
      return { discarded };
    });
  }

  #expireShares(): void {
    if (this.#pendingShares.length > 0 && this.#now() - this.#pendingSince > this.#unsealShareTtlMs) this.#discardShares();
  }

  #discardShares(): void {
    for (const p of this.#pendingShares) p.share.fill(0);
    this.#pendingShares = [];
    this.#pendingShareSetId = undefined;
  }

  /** Wipes all key material from memory and returns to the sealed state. */
  seal(): void {
    const barrier = this.#detachBarrier();
    if (barrier !== undefined) this.#wipe(barrier);
  }

  /** The first step of a seal: no request gets the barrier from here on. The caller wipes it. */
  #detachBarrier(): Barrier | undefined {
    this.#sealEpoch += 1;
    const barrier = this.#barrier;
    this.#barrier = undefined;
    this.#discardShares();
    return barrier;
  }

  /** Wipes a barrier and notes what its buffers hold right after (counts only, for secretBufferState). */
  #wipe(barrier: Barrier): void {
    barrier.wipe();
    this.#lastWiped = barrier.secretBufferState();
  }

  /**
   * A read-only test seam: how many barriers were installed, and how many secret buffers the
   * installed one and the last wiped one hold and how many of those still have a non-zero byte.
   * Counts only: no key material, no barrier (which could sign without audit) leaves the kernel.
   */
  secretBufferState(): KernelSecretBufferState {
    return { installs: this.#installs, installed: this.#barrier?.secretBufferState() ?? null, lastWiped: this.#lastWiped };
  }

  /**
   * Seal on demand (an operator, API key with the `admin` scope): wipes the key material first —
   * requests in flight then fail `sealed` before they sign, or finish with their audit record —
   * and appends `sys.seal` to the audit log. A refused caller is audited too. If the audit append
   * fails the signer is sealed all the same and the error is thrown (sealing is never refused).
   */
  async sealOnDemand(app: App): Promise<KernelStatus> {
    this.#requireBarrier();
    const denial = this.#checkScope(app, 'admin');
    if (denial !== undefined) {
      await this.#transact((tx) => this.#deny(tx, { ts: this.#now(), appId: app.id, walletName: null, action: 'sys.seal', opHash: null, detail: {} }, denial));
      throw denial;
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

  /**
   * Signs a checkpoint of the audit chain's head unless a stored one covers it already (the shell
   * calls it on a timer and at shutdown, before seal()); the checkpoint made, or undefined.
   */
  async checkpoint(): Promise<AuditCheckpoint | undefined> {
    const barrier = this.#requireBarrier();
    return this.#checkpoints.checkpoint((this.#meta as SignerMeta).signerId, barrier);
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

  /** The signer's meta read again from the store (a rekey may have replaced the sealed root). */
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

  // ── app authentication ────────────────────────────────────────────────────────────────────

  /** API key → app. Unknown, malformed and revoked keys are indistinguishable to the caller. */
  async authenticateApiKey(token: unknown): Promise<App> {
    this.#requireBarrier();
    if (typeof token !== 'string') throw new CustosError('unauthorized', 'missing API key');
    const { id, secret } = parseApiKeyToken(token);
    const record = await this.#readStore(() => this.#store.getApiKey(id));
    const presented = hashApiKeySecret(secret);
    const expected = record?.secretHash ?? new Uint8Array(32);
    const matches = equalHashes(presented, expected);
    if (record === undefined || !matches || record.revokedAt !== null) throw new CustosError('unauthorized', 'unknown or revoked API key');
    return this.#admitAudit({ id: record.id, name: record.name, tenant: record.tenant, scopes: record.scopes });
  }

  /** Compatibility API: API key → short-lived bearer token (only its hash is stored). */
  async createSession(app: App): Promise<{ accessToken: string; expiresIn: number }> {
    this.#requireBarrier();
    // Expired sessions are useless (and refused); sweep them at most once a minute.
    if (this.#now() - this.#lastSessionSweep > 60_000) {
      this.#lastSessionSweep = this.#now();
      await this.#readStore(() => this.#store.deleteExpiredSessions(this.#now()));
    }
    const accessToken = Buffer.from(this.#random(32)).toString('base64url');
    await this.#readStore(() =>
      this.#store.insertSession({ tokenHash: hashSessionToken(accessToken), apiKeyId: app.id, expiresAt: this.#now() + this.#sessionTtlSeconds * 1000 }),
    );
    return { accessToken, expiresIn: this.#sessionTtlSeconds };
  }

  async authenticateSession(token: unknown): Promise<App> {
    this.#requireBarrier();
    if (typeof token !== 'string' || !/^[A-Za-z0-9_-]{43}$/.test(token)) throw new CustosError('unauthorized', 'missing or malformed session token');
    const session = await this.#readStore(() => this.#store.getSession(hashSessionToken(token)));
    if (session === undefined || session.expiresAt <= this.#now()) throw new CustosError('unauthorized', 'unknown or expired session');
    const record = await this.#readStore(() => this.#store.getApiKey(session.apiKeyId));
    if (record === undefined || record.revokedAt !== null) throw new CustosError('unauthorized', 'the session’s API key is revoked');
    return this.#admitAudit({ id: record.id, name: record.name, tenant: record.tenant, scopes: record.scopes });
  }

  /**
   * Every authenticated request passes here before any work that writes audit: refused
   * `audit_rate_limited` (429, Retry-After) while its tenant's audit budget is spent — counted in
   * its API key's tally, not audited one by one. The tallies of past minutes are recorded first.
   */
  async #admitAudit(app: App): Promise<App> {
    // A tally whose record cannot be written now is kept (and retried): this request goes on to
    // its own audited unit, which meets the same store.
    if (this.#auditLimiter.hasDue(this.#now())) await this.flushAuditRateLimited().catch(() => undefined);
    this.#auditLimiter.admit(app.id, auditBudgetKey(app), this.#now());
    return app;
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

  // ── operations ────────────────────────────────────────────────────────────────────────────

  /** Which factors a wallet has; wallet_not_found for a name the signer has no record of. */
  async getWallet(app: App, request: { walletName: unknown }): Promise<{ walletName: string; factors: string[]; createdAt: number }> {
    this.#requireBarrier();
    const walletName = assertWalletName(request.walletName);
    const denial = this.#checkScope(app, 'derive');
    if (denial !== undefined) {
      await this.#transact((tx) => this.#deny(tx, { ts: this.#now(), appId: app.id, walletName, action: 'wallet.read', opHash: null, detail: {} }, denial));
      throw denial;
    }
    const rows = await this.#readStore(() => this.#store.readWalletRows(walletName));
    const checked = checkWalletRows(this.#requireBarrier(), app.tenant, rows);
    if (!checked.ok) throw checked.error;
    return { walletName, factors: checked.value.totp === undefined ? [] : ['totp'], createdAt: checked.value.wallet.createdAt };
  }

  /** Enrols a TOTP factor for a wallet (creating the wallet). Refused if one is enrolled. */
  async enrollTotp(app: App, request: { walletName: unknown }): Promise<TotpEnrollment> {
    const barrier = this.#requireBarrier();
    const walletName = assertWalletName(request.walletName);
    const base: Omit<AuditEntry, 'decision' | 'reason' | 'ts'> = { appId: app.id, walletName, action: 'totp.enroll', opHash: null, detail: {} };
    const secret = generateTotpSecret(this.#random);
    try {
      // Everything the user needs is rendered before the enrolment commits, so that a wallet is
      // never enrolled with a secret nobody received.
      const otpauthUri = buildOtpauthUri({ issuer: this.#totpIssuer, accountName: walletName, secret });
      const qrSvg = await renderQrSvg(otpauthUri);
      const outcome = await this.#transact(async (tx): Promise<Outcome<null>> => {
        const entry = { ...base, ts: this.#now() };
        const denial = this.#checkScope(app, 'register');
        if (denial !== undefined) return this.#deny(tx, entry, denial);
        const wallet = await openWallet(tx, barrier, { tenant: app.tenant, walletName, nowMs: entry.ts, create: true });
        if (!wallet.ok) return this.#deny(tx, entry, wallet.error);
        if (wallet.value.totp !== undefined)
          return this.#deny(tx, entry, new CustosError('already_enrolled', `wallet already has a TOTP factor`, { details: { field: 'walletName' } }));
        await addTotpFactor(tx, barrier, wallet.value.wallet, {
          secretEnvelope: barrier.encryptRecord(totpRecordKey(walletName), secret, this.#random),
          lastAcceptedStep: null,
          failures: 0,
          lockedUntilMs: null,
          createdAt: entry.ts,
        });
        await tx.appendAudit({ ...entry, decision: 'allowed', reason: null });
        return { ok: true, value: null };
      });
      if (!outcome.ok) throw outcome.error;
      return { walletName, otpauthUri, qrSvg, securityObject: `totp/${walletName}` };
    } finally {
      secret.fill(0);
    }
  }

  async getPublicKey(app: App, request: { walletName: unknown; keyIndex: unknown }): Promise<PublicKeyResult> {
    const barrier = this.#requireBarrier();
    const walletName = assertWalletName(request.walletName);
    const keyIndex = assertKeyIndex(request.keyIndex);
    const outcome = await this.#transact(async (tx): Promise<Outcome<LeafPublicKey>> => {
      const entry = { ts: this.#now(), appId: app.id, walletName, action: 'key.derive', opHash: null, detail: { keyIndex } };
      const denial = this.#checkScope(app, 'derive');
      if (denial !== undefined) return this.#deny(tx, entry, denial);
      const wallet = await openWallet(tx, barrier, { tenant: app.tenant, walletName, nowMs: entry.ts, create: true });
      if (!wallet.ok) return this.#deny(tx, entry, wallet.error);
      const leaf = barrier.publicKey(walletName, keyIndex);
      await tx.appendAudit({ ...entry, decision: 'allowed', reason: null });
      return { ok: true, value: leaf };
    });
    if (!outcome.ok) throw outcome.error;
    return { walletName, keyIndex, publicKey: toHex(outcome.value.publicKey), address: outcome.value.address };
  }

  /**
   * Signs a raw 32-byte hash. A wallet with an enrolled TOTP factor signs only with a valid,
   * unused code: the attempt is charged, the code checked, the step consumed and the audit record
   * appended in one transaction; the signature is returned only after that commit.
   */
  async signHash(app: App, request: SignHashRequest): Promise<HashSignature> {
    const barrier = this.#requireBarrier();
    const walletName = assertWalletName(request.walletName);
    const keyIndex = assertKeyIndex(request.keyIndex);
    await this.#assertSignScope(app, 'sign.hash', walletName, keyIndex);
    const digest = assertHex(request.hash, 'hash', 32);
    const code = request.code;
    if (code !== undefined && code !== null && typeof code !== 'string') throw invalidInput('code', 'a string of 6 digits', typeof code);
    const opHash = computeOpHash({ type: 'hash', walletName, keyIndex, hash: toHex(digest) });
    // The leaf's public key and address (not secret) are derived and cached here, before the unit
    // queues: inside the group-commit batch (which holds the event loop) only one CKDpriv remains.
    const { summary, summaryText } = summarizeHash(digest, barrier.publicKey(walletName, keyIndex).address as `0x${string}`);
    const { value: signature, auditSeq } = await this.#signDecided(
      app,
      { walletName, keyIndex, code, action: 'sign.hash', opHash, digest, detail: { keyIndex, summary, summaryText } },
      (signed) => signed,
    );
    const v = 27 + signature.recovery;
    return {
      walletName,
      keyIndex,
      r: toHex(signature.r),
      s: toHex(signature.s),
      recoveryId: signature.recovery,
      signature: `0x${toHex(signature.r)}${toHex(signature.s)}${v.toString(16)}`,
      publicKey: toHex(signature.publicKey),
      address: signature.address,
      summary,
      summaryText,
      opHash,
      auditSeq,
    };
  }

  /** EIP-155 / 2930 / 1559 / 7702 transaction: the kernel computes the digest and serialises the signed transaction. */
  signTransaction(app: App, request: SignOperationRequest & { transaction?: unknown }): Promise<OperationResult<TransactionSignatureResult>> {
    return this.#signOperation(app, request, 'transaction', 'sign.transaction', () => prepareTransaction(request.transaction));
  }

  /** EIP-191 personal_sign of a text (UTF-8) or raw bytes. */
  signMessage(app: App, request: SignOperationRequest & { message?: unknown }): Promise<OperationResult<EthereumSignatureResult>> {
    return this.#signOperation(app, request, 'message', 'sign.message', () => prepareMessage(request.message));
  }

  /** EIP-712 typed data. */
  signTypedData(app: App, request: SignOperationRequest & { typedData?: unknown }): Promise<OperationResult<EthereumSignatureResult>> {
    return this.#signOperation(app, request, 'typedData', 'sign.typedData', () => prepareTypedData(request.typedData));
  }

  /** EIP-7702 authorization tuple (the account hands control to the delegate contract). */
  signAuthorization(app: App, request: SignOperationRequest & { authorization?: unknown }): Promise<OperationResult<AuthorizationSignatureResult>> {
    return this.#signOperation(app, request, 'authorization', 'sign.authorization', () => prepareAuthorization(request.authorization));
  }

  /**
   * The chain operations' path: validate the request, check the scope, let the chain codec parse
   * the operation (digest, canonical form, summary), hash the opHash, then the one decision path.
   */
  async #signOperation<R extends object>(
    app: App,
    request: SignOperationRequest,
    type: 'transaction' | 'message' | 'typedData' | 'authorization',
    action: string,
    prepare: () => PreparedOperation<R>,
  ): Promise<OperationResult<R>> {
    const barrier = this.#requireBarrier();
    const walletName = assertWalletName(request.walletName);
    const keyIndex = assertKeyIndex(request.keyIndex);
    await this.#assertSignScope(app, action, walletName, keyIndex);
    const code = request.code;
    if (code !== undefined && code !== null && typeof code !== 'string') throw invalidInput('code', 'a string of 6 digits', typeof code);
    const op = prepare();
    const opHash = computeOpHash({ type, walletName, keyIndex, [type]: op.canonical, digest: toHex(op.digest) });
    const from = barrier.publicKey(walletName, keyIndex).address as `0x${string}`;
    const { summary, summaryText } = op.summarize(from);
    const { value, auditSeq } = await this.#signDecided(
      app,
      { walletName, keyIndex, code, action: op.action, opHash, digest: op.digest, detail: { keyIndex, summary, summaryText } },
      (signed) => ({ address: signed.address, ...op.finish({ r: signed.r, s: signed.s, yParity: signed.recovery }) }),
    );
    return { walletName, keyIndex, ...value, summary, summaryText, opHash, auditSeq };
  }

  /**
   * The `sign` scope, checked before any parsing, derivation or summary: a key without it costs the
   * kernel nothing more, and its denial is audited with the action, wallet and key index only (no
   * summary, opHash null), so that it cannot fill the append-only log with 64 KB summaries.
   */
  async #assertSignScope(app: App, action: string, walletName: string, keyIndex: number): Promise<void> {
    const denial = this.#checkScope(app, 'sign');
    if (denial === undefined) return;
    await this.#transact((tx) => this.#deny(tx, { ts: this.#now(), appId: app.id, walletName, action, opHash: null, detail: { keyIndex } }, denial));
    throw denial;
  }

  /**
   * The one sign decision, for every operation: scope → consent (charged, checked, consumed) →
   * sign → finish (e.g. serialise the signed transaction) → audit record, in one transaction; the
   * result is returned only after that commit, and a finish that fails rolls the unit back (no
   * allowed record without a result). A denial is audited with the same opHash and detail. (The
   * callers checked the `sign` scope already, before parsing; it is checked here again so that no
   * path reaches the signature without it.)
   */
  async #signDecided<R>(
    app: App,
    op: { walletName: string; keyIndex: number; code: unknown; action: string; opHash: string; digest: Uint8Array; detail: Record<string, unknown> },
    finish: (signature: BarrierSignature) => R,
  ): Promise<{ value: R; auditSeq: number }> {
    const barrier = this.#requireBarrier();
    const { walletName, keyIndex, code, opHash, digest } = op;
    type Signed = { value: R; auditSeq: number };
    const outcome = await this.#transact(async (tx): Promise<Outcome<Signed>> => {
      // The decision's time is taken inside the transaction (after any wait in the commit queue), so
      // that the TOTP window, the throttle and the audit record all use the time of the decision.
      const base: Omit<AuditEntry, 'decision' | 'reason'> = { ts: this.#now(), appId: app.id, walletName, action: op.action, opHash, detail: op.detail };
      const denial = this.#checkScope(app, 'sign');
      if (denial !== undefined) return this.#deny(tx, base, denial);
      // Another tenant's wallet, or rows that fail their MACs, are refused before any factor is read.
      const wallet = await openWallet(tx, barrier, { tenant: app.tenant, walletName, nowMs: base.ts, create: this.#unknownWallets === 'allow' });
      if (!wallet.ok) return this.#deny(tx, base, wallet.error);
      const unenrolled = refuseUnenrolledUnderDeny(this.#unknownWallets, wallet.value);
      if (unenrolled !== undefined) return this.#deny(tx, base, unenrolled);
      const consent = await this.#consumeTotpConsent(tx, walletName, typeof code === 'string' ? code : undefined, base.ts);
      if (!consent.ok) {
        if (consent.state !== undefined) await wallet.value.saveTotpState(consent.state);
        return this.#deny(tx, { ...base, detail: { ...base.detail, factor: 'totp' } }, consent.error);
      }
      // A finish that fails is a coding failure (internal), not the store's (see finishSignature).
      const value = finishSignature(finish, barrier.sign(walletName, keyIndex, digest));
      if (consent.state !== undefined) await wallet.value.saveTotpState(consent.state);
      const record = await tx.appendAudit({ ...base, detail: { ...base.detail, ...consent.evidence }, decision: 'allowed', reason: null });
      return { ok: true, value: { value, auditSeq: record.seq } };
    });
    if (!outcome.ok) throw outcome.error;
    return outcome.value;
  }

  /**
   * The one place a TOTP consent is decided. A wallet without a factor needs none (the TOTP ETH
   * Signer's semantics for wallets never enrolled). An enrolled wallet: throttle first, then a code
   * must be present, the record must decrypt (else refuse: fail closed), then the code is checked
   * and a wrong code charged (one failure per attempt); the caller persists the returned state in
   * the same transaction. The one refusal not charged is `code_reused`: the code is exactly that of
   * a step already accepted (in the ±1 window, at or below the last accepted step), i.e. the right
   * code of a consumed step, which tells a guesser nothing about the next one; so a backend that
   * retries a request that succeeded never locks the owner out.
   */
  async #consumeTotpConsent(
    tx: StoreTx,
    walletName: string,
    code: string | undefined,
    nowMs: number,
  ): Promise<{ ok: true; state?: TotpFactorState; evidence: Record<string, unknown> } | { ok: false; state?: TotpFactorState; error: CustosError }> {
    const factor = await tx.getTotpFactorForUpdate(walletName);
    if (factor === undefined) return { ok: true, evidence: { factor: 'none' } };
    const throttle = { failures: factor.failures, lockedUntilMs: factor.lockedUntilMs };
    try {
      assertFactorNotThrottled(throttle, nowMs);
    } catch (error) {
      return { ok: false, error: asCustosError(error) };
    }
    if (code === undefined)
      return { ok: false, error: new CustosError('code_required', 'this wallet has a TOTP factor: a code is required', { details: { field: 'code' } }) };
    const barrier = this.#requireBarrier();
    let secret: Uint8Array;
    try {
      secret = barrier.decryptRecord(totpRecordKey(walletName), factor.secretEnvelope);
    } catch (error) {
      // Fail closed: an enrolled wallet whose factor cannot be read is refused, never signed.
      return { ok: false, error: asCustosError(error) };
    }
    try {
      const { step } = verifyTotp({ secret, code, nowMs, lastAcceptedStep: factor.lastAcceptedStep });
      return { ok: true, state: { lastAcceptedStep: step, ...recordFactorSuccess() }, evidence: { factor: 'totp', totpStep: step } };
    } catch (error) {
      const e = asCustosError(error);
      if (e.code === 'invalid_input' || e.code === 'code_reused') return { ok: false, error: e };
      const failed = recordFactorFailure(throttle, nowMs);
      return { ok: false, error: e, state: { lastAcceptedStep: factor.lastAcceptedStep, ...failed } };
    } finally {
      secret.fill(0);
    }
  }

  #checkScope(app: App, scope: Scope): CustosError | undefined {
    // `admin` is an operator scope: held only by keys of the operator tenant.
    if (app.scopes.includes(scope) && (scope !== 'admin' || app.tenant === OPERATOR_TENANT)) return undefined;
    return new CustosError('forbidden_scope', `the API key lacks the '${scope}' scope`, { details: { scope } });
  }

  async #deny<T>(tx: StoreTx, base: Omit<AuditEntry, 'decision' | 'reason'>, error: CustosError): Promise<Outcome<T>> {
    await tx.appendAudit({ ...base, decision: 'denied', reason: error.code });
    return { ok: false, error };
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
}

function totpRecordKey(walletName: string): string {
  return `totp:${walletName}`;
}

function hashSessionToken(token: string): string {
  return createHash('sha256').update('custos.session.v1\0').update(token).digest('hex');
}

function asCustosError(error: unknown, fallback: 'store_unavailable' | 'internal' = 'internal'): CustosError {
  if (isCustosError(error)) return error;
  return new CustosError(fallback, fallback === 'store_unavailable' ? 'the store failed; nothing was signed' : 'internal failure', { cause: error });
}

export { randomUUID as newSignerId };
