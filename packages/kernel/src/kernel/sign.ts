import type { BarrierSignature } from '../barrier/Barrier.js';
import { type AuthorizationSignatureResult, prepareAuthorization } from '../chain/prepareAuthorization.js';
import { prepareMessage } from '../chain/prepareMessage.js';
import { prepareTransaction, type TransactionSignatureResult } from '../chain/prepareTransaction.js';
import { prepareTypedData } from '../chain/prepareTypedData.js';
import type { EthereumSignatureResult } from '../chain/signatureResult.js';
import { summarizeHash } from '../chain/summarizeHash.js';
import type { OperationSummary, PreparedOperation } from '../chain/types.js';
import { ConsentRefused, decideConsent } from '../consent/consent.js';
import type { Requirement } from '../consent/Factor.js';
import { CustosError, invalidInput } from '../errors.js';
import { assertHex } from '../util/assertHex.js';
import { assertKeyIndex } from '../util/assertKeyIndex.js';
import { assertWalletName } from '../util/assertWalletName.js';
import { toHex } from '../util/hex.js';
import { type AuditBase, auditRecord } from './auditRecord.js';
import { assertScopeAudited, checkScope } from './authorize.js';
import { computeOpHash } from './computeOpHash.js';
import { asCustosError, deny, type KernelContext, type Outcome, settle } from './context.js';
import { finishSignature } from './finishSignature.js';
import { freezeRefusal } from './freeze.js';
import { assertIdempotencyKey, findStoredResult, type Idempotency, idempotencyOf, storeResult } from './idempotency.js';
import { approvalRepeats, assertApprovalId, useApproval } from './approvals.js';
import type { PolicyDecision } from './evaluatePolicy.js';
import { decidePolicy, recordPolicyUsage } from './policy.js';
import type { EffectivePolicy } from './walletPolicy.js';
import type { App, HashSignature, OperationResult, SignHashRequest, SignOperationRequest } from './types.js';
import { openWallet } from './walletRecord.js';

/**
 * The sign path: every signature the kernel makes passes through `signDecided`, below, and each
 * decision on it is one call into the module that owns it:
 *
 *   request  →  checkScope (authorize.ts)            the API key holds `sign`, checked before any parsing
 *            →  prepare* (chain/)                    the operation parsed: digest, canonical form, summary
 *            →  computeOpHash (computeOpHash.ts)     what consent and audit refer to
 *            →  KeyLocks (idempotency.ts)            an Idempotency-Key's duplicate waits for the first
 *   one unit of work (store transaction), at the time of the decision:
 *            →  checkScope again                     no path reaches the signature without it
 *            →  findStoredResult (idempotency.ts)    a retry under its key gets the stored result, decided once
 *            →  openWallet (walletRecord.ts)         the caller's tenant owns the wallet; row MACs hold
 *            →  freezeRefusal (freeze.ts)            a frozen wallet ("this was not me") signs nothing
 *            →  decidePolicy (policy.ts)             the wallet's policy: refuses, or says the consent needed
 *                                                    (limits, allowlists, strength: evaluatePolicy.ts)
 *            →  decideConsent (consent/consent.ts)   the factor verifies the proof; its state change persisted
 *            →  barrier.sign (barrier/Barrier.ts)    the signature
 *            →  auditRecord (auditRecord.ts)         allowed or denied, one function; appended in the unit
 *            →  recordPolicyUsage (policy.ts)        what the signature counts against the limits, in the unit
 *            →  storeResult (idempotency.ts)         the result under its Idempotency-Key, in the unit
 *   the result is returned only after the unit commits: no audit record, no signature.
 */

const OPERATIONS = {
  transaction: { action: 'sign.transaction', prepare: prepareTransaction },
  message: { action: 'sign.message', prepare: prepareMessage },
  typedData: { action: 'sign.typedData', prepare: prepareTypedData },
  authorization: { action: 'sign.authorization', prepare: prepareAuthorization },
} as const;

export type OperationType = keyof typeof OPERATIONS;

/** The result each chain operation's codec finishes with. */
export interface OperationResults {
  transaction: TransactionSignatureResult;
  message: EthereumSignatureResult;
  typedData: EthereumSignatureResult;
  authorization: AuthorizationSignatureResult;
}

/** One operation the unit decides on: whose, what, and what the audit record shows of it. */
interface SignRequest {
  walletName: string;
  keyIndex: number;
  /** The caller's consent proof (today a TOTP code); validated by the factor. */
  proof: unknown;
  /** Instead of a proof: the approval the owner gave for this operation (approvals.ts). */
  approvalId: string | undefined;
  action: string;
  opHash: string;
  digest: Uint8Array;
  detail: Record<string, unknown>;
  /** The codec's summary: what the policy decides on. */
  summary: OperationSummary;
  /** `compat`: the TOTP ETH Signer's API (its raw hashes follow the deployment's compatRawHash). */
  route: 'api' | 'compat';
  /** The emergency exit (issue 13, point 2; evaluatePolicy.ts): set by the kernel (a pending deactivation), never by the request. */
  exit?: { safeAddress: string } | undefined;
  /** The request's Idempotency-Key, bound to its route and opHash (idempotency.ts). */
  idempotency?: Idempotency | undefined;
}

/**
 * Signs a raw 32-byte hash (blind: the summary says so). The leaf's public key and address (not
 * secret) are derived and cached before the unit queues: inside the group-commit batch (which holds
 * the event loop) only one CKDpriv remains.
 */
export async function signHash(ctx: KernelContext, app: App, request: SignHashRequest, route: 'api' | 'compat' = 'api'): Promise<HashSignature> {
  ctx.requireBarrier();
  const walletName = assertWalletName(request.walletName);
  const keyIndex = assertKeyIndex(request.keyIndex);
  const idempotencyKey = assertIdempotencyKey(request.idempotencyKey);
  await assertScopeAudited(ctx, app, 'sign', { action: 'sign.hash', walletName, detail: { keyIndex } });
  const consent = assertConsent(request);
  const op = prepareSign(ctx, 'hash', walletName, keyIndex, request.hash);
  return signDecided(
    ctx,
    app,
    {
      walletName,
      keyIndex,
      ...consent,
      action: op.action,
      opHash: op.opHash,
      digest: op.digest,
      detail: { keyIndex, summary: op.summary, summaryText: op.summaryText },
      summary: op.summary,
      route,
      idempotency: idempotencyOf(idempotencyKey, { route, action: op.action, opHash: op.opHash }),
    },
    (signature, auditSeq): HashSignature => {
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
        summary: op.summary,
        summaryText: op.summaryText,
        opHash: op.opHash,
        auditSeq,
      };
    },
  );
}

/**
 * A chain operation (EIP-155/2930/1559/7702 transaction, EIP-191 message, EIP-712 typed data,
 * EIP-7702 authorization): validate the request, check the scope, let the chain codec parse the
 * operation (digest, canonical form, summary), hash the opHash, then the one decision path; the
 * codec finishes the result (e.g. serialises the signed transaction) from the signature.
 */
export async function signOperation<T extends OperationType>(
  ctx: KernelContext,
  app: App,
  type: T,
  request: SignOperationRequest & Partial<Record<T, unknown>>,
): Promise<OperationResult<OperationResults[T]>> {
  ctx.requireBarrier();
  const walletName = assertWalletName(request.walletName);
  const keyIndex = assertKeyIndex(request.keyIndex);
  const idempotencyKey = assertIdempotencyKey(request.idempotencyKey);
  await assertScopeAudited(ctx, app, 'sign', { action: OPERATIONS[type].action, walletName, detail: { keyIndex } });
  const consent = assertConsent(request);
  const op = prepareSign(ctx, type, walletName, keyIndex, request[type]);
  const { summary, summaryText } = op;
  return signDecided(
    ctx,
    app,
    {
      walletName,
      keyIndex,
      ...consent,
      action: op.action,
      opHash: op.opHash,
      digest: op.digest,
      detail: { keyIndex, summary, summaryText },
      summary,
      route: 'api',
      idempotency: idempotencyOf(idempotencyKey, { route: 'api', action: op.action, opHash: op.opHash }),
    },
    (signed, auditSeq) =>
      ({
        walletName,
        keyIndex,
        address: signed.address,
        ...(op.finish(signed) as object),
        summary,
        summaryText,
        opHash: op.opHash,
        auditSeq,
      }) as OperationResult<OperationResults[T]>,
  );
}

/** An operation parsed for signing (or for an approval): what is signed, its opHash and summary, and how the result is finished. */
export interface PreparedSign {
  action: string;
  opHash: string;
  digest: Uint8Array;
  summary: OperationSummary;
  summaryText: string;
  /** The codec's result from the signature (the serialised transaction, the authorization tuple…). */
  finish(signed: BarrierSignature): unknown;
}

/**
 * Parses one operation of `type` — the chain codec's digest, canonical form and summary, or a raw
 * hash (blind) — and computes its opHash: the one computation that the sign routes and approvals
 * share, so that an approval's opHash is the one its signature recomputes.
 */
export function prepareSign(ctx: KernelContext, type: OperationType | 'hash', walletName: string, keyIndex: number, input: unknown): PreparedSign {
  const barrier = ctx.requireBarrier();
  if (type === 'hash') {
    const digest = assertHex(input, 'hash', 32);
    const opHash = computeOpHash({ type: 'hash', walletName, keyIndex, hash: toHex(digest) });
    const { summary, summaryText } = summarizeHash(digest, barrier.publicKey(walletName, keyIndex).address as `0x${string}`);
    return { action: 'sign.hash', opHash, digest, summary, summaryText, finish: (signed) => signed };
  }
  const { prepare } = OPERATIONS[type];
  const op = (prepare as (input: unknown) => PreparedOperation<unknown>)(input);
  const opHash = computeOpHash({ type, walletName, keyIndex, [type]: op.canonical, digest: toHex(op.digest) });
  const from = barrier.publicKey(walletName, keyIndex).address as `0x${string}`;
  const { summary, summaryText } = op.summarize(from);
  return {
    action: op.action,
    opHash,
    digest: op.digest,
    summary,
    summaryText,
    finish: (signed) => op.finish({ r: signed.r, s: signed.s, yParity: signed.recovery }),
  };
}

/**
 * The one sign decision, for every operation (see the map at the top of this file). A refusal at
 * any step is audited with the same opHash and detail and thrown after the commit; a finish that
 * fails rolls the unit back (no allowed record without a result). `finish` makes the response
 * from the signature and its audit record's seq (in the unit: it is what an Idempotency-Key stores).
 */
async function signDecided<R>(ctx: KernelContext, app: App, op: SignRequest, finish: (signature: BarrierSignature, auditSeq: number) => R): Promise<R> {
  // An Idempotency-Key's duplicate in this process waits for the first, then finds its result (idempotency.ts).
  return ctx.idempotencyLocks.run(app, op.idempotency, () => decideSignature(ctx, app, op, finish));
}

async function decideSignature<R>(ctx: KernelContext, app: App, op: SignRequest, finish: (signature: BarrierSignature, auditSeq: number) => R): Promise<R> {
  const barrier = ctx.requireBarrier();
  const { walletName, keyIndex, idempotency } = op;
  const outcome = await ctx.transact(async (tx): Promise<Outcome<{ value: R; replayed: boolean }>> => {
    // The decision's time is taken inside the transaction (after any wait in the commit queue), so
    // that the TOTP window, the throttle and the audit record all use the time of the decision.
    const base: AuditBase = { ts: ctx.now(), appId: app.id, walletName, action: op.action, opHash: op.opHash, detail: op.detail };
    // 1. Authorization: the API key's scope.
    const forbidden = checkScope(app, 'sign');
    if (forbidden !== undefined) return deny(tx, base, forbidden);
    // 1b. A retry under its Idempotency-Key: the stored result, decided once (no consent checked, no
    //     record); the key used for another operation: refused (idempotency.ts).
    if (idempotency !== undefined) {
      const stored = await findStoredResult<R>(tx, barrier, app, idempotency, base.ts);
      if (stored !== undefined && 'conflict' in stored) return deny(tx, base, stored.conflict);
      if (stored !== undefined) return { ok: true, value: { value: stored.value, replayed: true } };
    }
    // 2. The wallet: another tenant's, or rows that fail their MACs, are refused before any factor is read.
    const wallet = await openWallet(tx, barrier, ctx.factors, {
      tenant: app.tenant,
      walletPrefix: app.walletPrefix,
      walletName,
      nowMs: base.ts,
      create: ctx.policy.unknownWallets === 'allow',
    });
    if (!wallet.ok) return deny(tx, base, wallet.error);
    // 2b. A frozen wallet ("this was not me", freeze.ts) gets no signature of any kind; nor does a
    //     wallet row whose freeze state is not the one the audit log last recorded (rowAnchors.ts).
    const frozen = await freezeRefusal(tx, wallet.value.wallet);
    if (frozen !== undefined) return deny(tx, base, frozen);
    // 3. Policy: refused here, before any consent is charged, or the consent this operation needs
    //    and what it counts against the wallet's limits (written with the audit record, step 6).
    //    The repeat of an approval's signature (the same bytes again) counts nothing new: a full window does not refuse it.
    const repeat =
      op.approvalId !== undefined &&
      (await approvalRepeats(tx, ctx, { app, approvalId: op.approvalId, opHash: op.opHash, keyIndex, walletName: wallet.value.wallet.name }));
    const policyInput = { wallet: wallet.value, summary: op.summary, route: op.route, now: base.ts, exit: op.exit };
    let policy: PolicyDecision & { policy: EffectivePolicy };
    try {
      policy = await decidePolicy(tx, barrier, ctx.policy, { ...policyInput, repeat });
    } catch (error) {
      return denyByPolicy(tx, base, error);
    }
    const required: Requirement = policy.required;
    // 4. Consent: charged, checked, consumed — the factor's state persisted in this unit; or the
    //    owner's approval of this very opHash, checked and consumed (approvals.ts).
    let evidence: Record<string, unknown>;
    let consumed: ((auditSeq: number) => Promise<void>) | undefined;
    if (op.approvalId !== undefined) {
      const approval = await useApproval(tx, ctx, {
        app,
        approvalId: op.approvalId,
        opHash: op.opHash,
        keyIndex,
        required,
        boundBy: policy.boundBy,
        wallet: wallet.value,
        now: base.ts,
      });
      if (!approval.ok) return deny(tx, { ...base, detail: { ...base.detail, ...approval.detail } }, approval.error);
      // Fail closed: decided as a repeat, the approval must be used as one (else the whole policy again).
      if (repeat && approval.evidence.repeatOf === undefined) {
        try {
          policy = await decidePolicy(tx, barrier, ctx.policy, policyInput);
        } catch (error) {
          return denyByPolicy(tx, base, error);
        }
      }
      evidence = approval.evidence;
      consumed = approval.consume;
    } else if (required === 'bound') {
      // A relayed code proves presence only: refused before it is checked (not charged, not consumed: no oracle for phished codes).
      // When the policy raised the requirement, its rules are named (details and audit record).
      const boundBy = policy.boundBy.length > 0 ? { boundBy: policy.boundBy } : {};
      return deny(
        tx,
        policy.boundBy.length > 0 ? { ...base, detail: { ...base.detail, policy: boundBy } } : base,
        new CustosError(
          'consent_too_weak',
          "this wallet requires a 'bound' consent (an approval decided on the kernel's page); a relayed code is not checked",
          {
            details: { field: 'code', required, ...boundBy },
          },
        ),
      );
    } else {
      try {
        evidence = await decideConsent(tx, barrier, {
          enrolled: wallet.value.enrolled,
          required,
          tenant: app.tenant,
          opHash: op.opHash,
          proof: op.proof,
          now: base.ts,
        });
      } catch (error) {
        if (error instanceof ConsentRefused) return deny(tx, base, error.error, error.factor);
        throw error;
      }
    }
    // 5. The signature.
    const signature = barrier.sign(walletName, keyIndex, op.digest);
    // 6. The audit record, in the same unit: committed before the signature leaves. The response is
    //    made from both (a finish that fails is a coding failure, internal, not the store's).
    const record = await tx.appendAudit(auditRecord(base, { allowed: { ...evidence, ...policyEvidence(policy) } }));
    const value = finishSignature((signed: BarrierSignature) => finish(signed, record.seq), signature);
    // A repeat of an approval's signature (the same bytes again) counts nothing new.
    if (evidence.repeatOf === undefined) await recordPolicyUsage(tx, policy, { walletName, auditSeq: record.seq, ts: base.ts });
    // 7. An approval used for the first time is consumed in this unit, pointing at this record.
    if (consumed !== undefined) await consumed(record.seq);
    // 8. The result under its Idempotency-Key, in the same unit as the record.
    if (idempotency !== undefined) await storeResult(tx, barrier, ctx.random, app, idempotency, value, base.ts, ctx.idempotencyLocks);
    return { ok: true, value: { value, replayed: false } };
  });
  // Watchers (long polls) hear of a consumed approval after the commit.
  if (outcome.ok && !outcome.value.replayed && op.approvalId !== undefined) ctx.approvalChanged(op.approvalId);
  return settle(outcome).value;
}

/** A policy refusal, audited with its rule (the error's details) in the record's detail; anything else as before. */
export function denyByPolicy<T>(tx: Parameters<typeof deny>[0], base: AuditBase, error: unknown): Promise<Outcome<T>> {
  const refusal = asCustosError(error);
  if (!refusal.code.startsWith('policy_')) return deny(tx, base, refusal);
  return deny(tx, { ...base, detail: { ...base.detail, policy: { ...refusal.details } } }, refusal);
}

/** What the audit record of a signature shows of the policy: only what it did (counted, raised to bound, exit), so plain wallets' records are as before. */
export function policyEvidence(decision: PolicyDecision & { policy: EffectivePolicy }): Record<string, unknown> {
  const shown: Record<string, unknown> = {};
  if (decision.boundBy.length > 0) shown.boundBy = decision.boundBy;
  if (decision.exit === true) shown.exit = true;
  if (
    decision.policy.maxSignaturesPerWindow !== undefined ||
    Object.keys(decision.policy.native ?? {}).length > 0 ||
    Object.keys(decision.policy.tokens ?? {}).length > 0
  )
    shown.counted = decision.amounts;
  return Object.keys(shown).length === 0 ? {} : { policy: shown };
}

/**
 * The consent of a sign request: a proof (a string; the factor checks its form), or the id of an
 * approval (32 lowercase hex digits), or neither — never both.
 */
function assertConsent(request: { code?: unknown; approvalId?: unknown }): { proof: string | undefined; approvalId: string | undefined } {
  const { code, approvalId } = request;
  if (code !== undefined && code !== null && typeof code !== 'string') throw invalidInput('code', 'a string of 6 digits', typeof code);
  const proof = typeof code === 'string' ? code : undefined;
  if (approvalId === undefined || approvalId === null) return { proof, approvalId: undefined };
  if (proof !== undefined) throw invalidInput('approvalId', 'either code or approvalId, not both');
  return { proof: undefined, approvalId: assertApprovalId(approvalId, 'approvalId') };
}
