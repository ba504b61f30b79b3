import type { Barrier } from '../barrier/Barrier.js';
import { walletInReach } from './apiKeyLimits.js';
import type { OperationSummary } from '../chain/types.js';
import { ConsentRefused, decideConsentStrength, type EnrolledFactor, issueChallenge, saveFactorState } from '../consent/consent.js';
import { effectiveStrength, type Factor, meetsRequirement, type ProofChannel, type Requirement, type Strength, strongestOf } from '../consent/Factor.js';
import type { OobIssued } from '../consent/oobFactor.js';
import { enqueueMessage, oobAddressOf } from './oobDelivery.js';
import { CustosError, invalidInput, isCustosError } from '../errors.js';
import type { ApprovalRecord, ApprovalState, StoreTx } from '../store/types.js';
import { assertKeyIndex } from '../util/assertKeyIndex.js';
import { assertWalletName } from '../util/assertWalletName.js';
import { canonicalJson } from '../util/canonicalJson.js';
import { toHex } from '../util/hex.js';
import { type AuditBase, auditRecord } from './auditRecord.js';
import { assertScopeAudited, checkScope } from './authorize.js';
import { assertTtlSeconds, capabilityHashOf, creatorRevoked, macRow, newCapability, rowIntact } from './capabilityRecords.js';
import { asCustosError, deny, type KernelContext, type Outcome, settle } from './context.js';
import { decidePolicy } from './policy.js';
import { denyByPolicy, type OperationType, prepareSign } from './sign.js';
import { assertChallengeKind, challengeDigestFor, newStoredChallenge, storedChallenge } from './approvalChallenge.js';
import { batchView, decodeBatch, encodeBatch, findBatchItem, prepareBatch, unsignedBatch } from './batchApproval.js';
import type { ApprovalChallengeIssued, ApprovalDecision, ApprovalPage, ApprovalView, App, CreateApprovalRequest, CreatedApproval } from './types.js';
import { hwkeyDeviceMatches, hwkeyPageChannel } from './hwkeyDevice.js';
import { freezeRefusal, ownerCapability, ownerLinkOf } from './freeze.js';
import { assertIdempotencyKey, findStoredResult, idempotencyOf, storeResult } from './idempotency.js';
import { checkWalletRows, type OpenedWallet, openWallet } from './walletRecord.js';

/**
 * Approvals: one operation (one opHash) the wallet's owner approves on the kernel's own page, with a
 * factor the backend cannot replay for anything else; the signature that uses the approval recomputes
 * the opHash from its own request and is refused unless it is the approved one.
 *
 *   createApproval   (scope sign)  the operation parsed and summarised as a sign route would
 *                                  (sign.ts prepareSign), the policy's requirement fixed, pending
 *   decideApproval   (the page)    approve with a factor's proof over this approval, or reject
 *   useApproval      (sign.ts)     in the sign unit: same tenant, same opHash, approved, unexpired,
 *                                  strong enough now → consumed in the unit of the audit record; the
 *                                  identical operation again → the same signature, audited as a repeat
 *   cancelApproval, expireApprovals, and the revocation of the creating API key (manageApiKeys.ts)
 *
 * Every row carries a MAC under the barrier over all its fields (state included), so a database
 * writer cannot approve, re-open, re-point or extend one. Cancelling and expiring are the two
 * transitions that can only take signing power away; they keep the MAC of the pending row (so that
 * the revocation of an API key, which runs without the barrier, can cancel its approvals).
 */

const APPROVAL_MAC_LABEL = 'custos.approval.v1';
const APPROVAL_ID = /^[0-9a-f]{32}$/;
const OPERATION_TYPES = ['transaction', 'message', 'typedData', 'authorization', 'hash', 'batch'] as const;

export const APPROVAL_TTL_SECONDS = { default: 600, min: 60, max: 3600 } as const;
/** Pending approvals allowed at once, per wallet and per tenant (KernelOptions.approvalLimits). */
export const DEFAULT_APPROVAL_LIMITS = { perWallet: 16, perTenant: 1000 } as const;
/** How many expired approvals one sweep unit marks. */
const SWEEP_BATCH = 100;

/** An approval's id as a request names it: 32 lowercase hex digits. */
export function assertApprovalId(id: unknown, field = 'id'): string {
  if (typeof id !== 'string' || !APPROVAL_ID.test(id)) throw invalidInput(field, 'an approval id: 32 lowercase hex digits', typeof id);
  return id;
}

function approvalNotFound(field = 'id'): CustosError {
  return new CustosError('approval_not_found', 'no approval with that id belongs to this API key’s tenant', { details: { field } });
}

// ── integrity ────────────────────────────────────────────────────────────────────────────

/** The MAC of an approval row over every field but the MAC. */
export function macApproval(barrier: Barrier, record: ApprovalRecord): string {
  return macRow(barrier, APPROVAL_MAC_LABEL, macForm(record));
}

/**
 * The fields a MAC covers: all but the MAC, the challenge only when one is issued (so that the MACs
 * of rows made before challenges, with no such field, still hold); a batch when there is one (an
 * absent field is not in the canonical JSON).
 */
function macForm(record: ApprovalRecord): Omit<ApprovalRecord, 'challenge'> & { challenge?: string | null } {
  const { challenge, ...rest } = record;
  return challenge === null ? rest : record;
}

/**
 * The row as it was while pending: what a cancelled or expired row's MAC may still cover. A batch's
 * signed items are not part of it: a cancelled or expired row keeps them to show, uncovered (it
 * signs nothing more).
 */
function asPending(record: ApprovalRecord): ApprovalRecord {
  const pending: ApprovalRecord = { ...record, state: 'pending', decidedAt: null, evidence: null, consumedSeq: null };
  if (record.batch !== undefined) pending.batch = unsignedBatch(record.batch);
  return pending;
}

/**
 * Cancels the pending approvals an API key created, in the unit of its revocation (no barrier: the
 * revocation runs from the CLI on a sealed store), each audited. The rows keep their pending MAC.
 */
export async function cancelApprovalsOfApiKey(tx: StoreTx, apiKeyId: string, now: number): Promise<number> {
  const pending = await tx.listPendingApprovalsOfApiKey(apiKeyId);
  for (const record of pending) {
    await tx.updateApproval(record.id, {
      state: 'cancelled',
      decidedAt: now,
      evidence: null,
      consumedSeq: null,
      challenge: record.challenge,
      mac: record.mac,
      ...(record.batch === undefined ? {} : { batch: record.batch }),
    });
    await tx.appendAudit(
      auditRecord(
        {
          ts: now,
          appId: null,
          walletName: record.walletName,
          action: 'approval.cancel',
          opHash: record.opHash,
          detail: { approvalId: record.id, ...keyOf(record), previousState: 'pending', by: 'apikey.revoke', apiKeyId },
        },
        { allowed: {} },
      ),
    );
  }
  return pending.length;
}

/** Whether the row's MAC holds: over the row, or — cancelled or expired, transitions that only take power away — over its pending form. */
function approvalIntact(barrier: Barrier, record: ApprovalRecord): boolean {
  return rowIntact(
    barrier,
    APPROVAL_MAC_LABEL,
    macForm(record),
    record.state === 'cancelled' || record.state === 'expired' ? macForm(asPending(record)) : undefined,
  );
}

function unreadable(): CustosError {
  return new CustosError('record_unreadable', 'the approval record does not match its MAC (it was changed): refusing to act', { details: { field: 'id' } });
}

/** The state an approval is in at `now`: a pending one past its expiry is expired, whether or not the sweep wrote it. */
function stateAt(record: ApprovalRecord, now: number): ApprovalState {
  if ((record.state === 'pending' || record.state === 'approved') && now >= record.expiresAt) return 'expired';
  return record.state;
}

function parseJson(text: string | null): Record<string, unknown> | null {
  return text === null ? null : (JSON.parse(text) as Record<string, unknown>);
}

/** What an approval's audit records name of its key: the key index, or for a batch `batch: true` (each item has its own). */
function keyOf(record: ApprovalRecord): { keyIndex: number } | { batch: true } {
  return record.batch === undefined ? { keyIndex: record.keyIndex } : { batch: true };
}

/** The approval as the API shows it. */
export function approvalView(record: ApprovalRecord, now: number): ApprovalView {
  const evidence = parseJson(record.evidence);
  const batch = record.batch === undefined ? undefined : decodeBatch(record.batch, record.opHash);
  return {
    id: record.id,
    walletName: record.walletName,
    keyIndex: batch === undefined ? record.keyIndex : null,
    operationType: record.opType,
    opHash: record.opHash,
    summary: JSON.parse(record.summary) as OperationSummary,
    summaryText: record.summaryText,
    requiredStrength: record.requiredStrength,
    state: stateAt(record, now),
    createdAt: record.createdAt,
    expiresAt: record.expiresAt,
    decidedAt: record.decidedAt,
    factor: typeof evidence?.factor === 'string' ? evidence.factor : null,
    ...(batch === undefined ? {} : { batch: batchView(batch) }),
  };
}

/** A new state with its MAC recomputed, written in the unit. */
async function writeState(
  tx: StoreTx,
  barrier: Barrier,
  record: ApprovalRecord,
  change: Partial<Pick<ApprovalRecord, 'state' | 'decidedAt' | 'evidence' | 'consumedSeq' | 'challenge' | 'batch'>>,
): Promise<ApprovalRecord> {
  const next: ApprovalRecord = { ...record, ...change };
  next.mac = macApproval(barrier, next);
  await tx.updateApproval(record.id, {
    state: next.state,
    decidedAt: next.decidedAt,
    evidence: next.evidence,
    consumedSeq: next.consumedSeq,
    challenge: next.challenge,
    mac: next.mac,
    ...(next.batch === undefined ? {} : { batch: next.batch }),
  });
  return next;
}

/** The stricter of two requirements. */
function stricter(a: Requirement, b: Requirement): Requirement {
  const rank = { none: 0, present: 1, bound: 2 } as const;
  return rank[a] >= rank[b] ? a : b;
}

// ── create ───────────────────────────────────────────────────────────────────────────────

/** Whether a request's operation is a batch (`{ batch: [...] }`), before it is checked in full. */
function isBatchOperation(operation: unknown): boolean {
  return typeof operation === 'object' && operation !== null && !Array.isArray(operation) && Object.hasOwn(operation, 'batch');
}

/** The operation of a request: exactly one member, of a known type. */
function assertOperation(operation: unknown): { type: OperationType | 'hash' | 'batch'; input: unknown } {
  if (typeof operation !== 'object' || operation === null || Array.isArray(operation))
    throw invalidInput('operation', `an object with exactly one of ${OPERATION_TYPES.join(', ')}`, Array.isArray(operation) ? 'array' : typeof operation);
  const keys = Object.keys(operation);
  const type = keys[0];
  if (keys.length !== 1 || type === undefined || !(OPERATION_TYPES as readonly string[]).includes(type))
    throw invalidInput('operation', `exactly one of ${OPERATION_TYPES.join(', ')}`, keys.length === 0 ? 'none' : keys.join(', '));
  return { type: type as OperationType | 'hash' | 'batch', input: (operation as Record<string, unknown>)[type] };
}

/** A field error of the operation's codec, named under `operation.` as the request names it. */
function underOperation(error: unknown): unknown {
  if (!isCustosError(error) || error.code !== 'invalid_input' || typeof error.details.field !== 'string') return error;
  return new CustosError('invalid_input', `operation.${error.message}`, { details: { ...error.details, field: `operation.${error.details.field}` } });
}

export async function createApproval(ctx: KernelContext, app: App, request: CreateApprovalRequest): Promise<CreatedApproval> {
  const barrier = ctx.requireBarrier();
  const walletName = assertWalletName(request.walletName);
  const isBatch = isBatchOperation(request.operation);
  // A batch's items name their keys; the request names none (kernel/batchApproval.ts).
  if (isBatch && request.keyIndex !== undefined) throw invalidInput('keyIndex', 'no keyIndex for a batch (each item names its own)', typeof request.keyIndex);
  const requestKeyIndex = isBatch ? undefined : assertKeyIndex(request.keyIndex);
  const idempotencyKey = assertIdempotencyKey(request.idempotencyKey);
  // The scope first (its denial audited without the operation).
  await assertScopeAudited(ctx, app, 'sign', { action: 'approval.create', walletName, detail: isBatch ? { batch: true } : { keyIndex: requestKeyIndex } });
  const { type, input } = assertOperation(request.operation);
  const ttlSeconds = assertTtlSeconds(request.ttlSeconds, APPROVAL_TTL_SECONDS);
  let op: { opHash: string; summary: OperationSummary; summaryText: string };
  let batch: string | undefined;
  let keyIndex: number;
  try {
    if (type === 'batch') {
      const prepared = prepareBatch(ctx, walletName, input);
      op = prepared;
      batch = encodeBatch(prepared.state);
      // the row's key column holds the first item's (the view shows null: each item has its own)
      keyIndex = (prepared.state.items[0] as { keyIndex: number }).keyIndex;
    } else {
      keyIndex = requestKeyIndex as number;
      op = prepareSign(ctx, type, walletName, keyIndex, input);
    }
  } catch (error) {
    throw underOperation(error);
  }
  const id = toHex(ctx.random(16));
  const { capability, capabilityHash } = newCapability(ctx);
  // A retry under its Idempotency-Key gets the approval it created (and its link): no second approval, no second message to the owner.
  const idempotency = idempotencyOf(idempotencyKey, { route: 'approval.create', opHash: op.opHash, ttlSeconds });
  // Under its Idempotency-Key, the unit runs after any earlier one of the same key in this process.
  const transact = <T>(work: (tx: StoreTx) => Promise<T>) => ctx.idempotencyLocks.run(app, idempotency, () => ctx.transact(work));
  const result = settle(
    await transact(async (tx): Promise<Outcome<{ created: CreatedApproval; replayed: boolean }>> => {
      const now = ctx.now();
      const expiresAt = now + ttlSeconds * 1000;
      const base: AuditBase = {
        ts: now,
        appId: app.id,
        walletName,
        action: 'approval.create',
        opHash: op.opHash,
        detail: {
          ...(batch === undefined ? { keyIndex } : { batch: true }),
          approvalId: id,
          operationType: type,
          summary: op.summary,
          summaryText: op.summaryText,
          expiresAt,
        },
      };
      if (idempotency !== undefined) {
        const stored = await findStoredResult<CreatedApproval>(tx, barrier, app, idempotency, now);
        if (stored !== undefined && 'conflict' in stored) return deny(tx, base, stored.conflict);
        if (stored !== undefined) return { ok: true, value: { created: stored.value, replayed: true } };
      }
      const opened = await openWallet(tx, barrier, ctx.factors, { tenant: app.tenant, walletPrefix: app.walletPrefix, walletName, nowMs: now, create: false });
      if (!opened.ok) {
        // A wallet never named needs no consent where unknown wallets sign (the TOTP ETH Signer's rule) —
        // but a name out of a prefix-restricted key's reach is the key's wallet_not_found, as on every route.
        if (opened.error.code === 'wallet_not_found' && ctx.policy.unknownWallets === 'allow' && walletInReach(app, { tenant: app.tenant, walletName }))
          return deny(tx, base, consentNotRequired());
        return deny(tx, base, opened.error);
      }
      // A frozen wallet ("this was not me", freeze.ts) gets no new approval.
      const frozen = await freezeRefusal(tx, opened.value.wallet);
      if (frozen !== undefined) return deny(tx, base, frozen);
      // The approval page links to the owner's page: its capability's hash is recorded (once) now.
      await ownerLinkOf(tx, barrier, opened.value.wallet);
      // The wallet's policy, before anything is sent: a refusal now spares the owner a message (evaluatePolicy.ts).
      let required: Requirement;
      try {
        required = (await decidePolicy(tx, barrier, ctx.policy, { wallet: opened.value, summary: op.summary, now })).required;
      } catch (error) {
        return denyByPolicy(tx, base, error);
      }
      if (required === 'none') return deny(tx, base, consentNotRequired());
      const pending = await tx.countPendingApprovals(app.tenant, walletName, now);
      const limits = ctx.approvalLimits;
      if (pending.wallet >= limits.perWallet || pending.tenant >= limits.perTenant)
        return deny(
          tx,
          base,
          new CustosError('too_many_approvals', 'too many approvals are pending for this wallet or tenant: let some be decided, cancelled or expire', {
            details: pending.wallet >= limits.perWallet ? { field: 'walletName', limit: limits.perWallet } : { limit: limits.perTenant },
          }),
        );
      const created: ApprovalRecord = {
        id,
        tenant: app.tenant,
        apiKeyId: app.id,
        walletName,
        keyIndex,
        opType: type,
        opHash: op.opHash,
        summary: canonicalJson(op.summary),
        summaryText: op.summaryText,
        requiredStrength: required,
        capabilityHash,
        challenge: null,
        state: 'pending',
        createdAt: now,
        expiresAt,
        decidedAt: null,
        evidence: null,
        consumedSeq: null,
        ...(batch === undefined ? {} : { batch }),
        mac: '',
      };
      created.mac = macApproval(barrier, created);
      await tx.insertApproval(created);
      // A wallet with a delivery channel: the message (summary, link, code) leaves through the outbox
      // after this unit commits; a channel that may not send now (locked, capped) refuses the creation.
      let delivery: Record<string, unknown> = {};
      try {
        delivery = await sendApprovalCode(tx, ctx, barrier, opened.value.enrolled, created, capability, now);
      } catch (error) {
        if (!(error instanceof ConsentRefused)) throw error;
        // Another factor can still approve it (a passkey): created without a message, the reason audited.
        const others = opened.value.enrolled.some((e) => e.factor.kind !== 'oob' && meetsRequirement(strongestOf(e.factor, e.record), required));
        if (!others) return deny(tx, base, error.error, error.factor);
        delivery = { delivery: { refused: error.error.code } };
      }
      await tx.appendAudit(auditRecord(base, { allowed: { requiredStrength: required, ...delivery } }));
      const view: CreatedApproval = { ...approvalView(created, created.createdAt), capability };
      // The stored result holds the capability: sealed under the barrier like every secret the store keeps (idempotency.ts).
      if (idempotency !== undefined) await storeResult(tx, barrier, ctx.random, app, idempotency, view, now, ctx.idempotencyLocks);
      return { ok: true, value: { created: view, replayed: false } };
    }),
  );
  if (result.replayed) return result.created;
  ctx.approvalChanged(result.created.id);
  ctx.deliveryQueued?.();
  return result.created;
}

/**
 * Queues the approval's message on the wallet's delivery channel, in the caller's unit: the oob
 * factor issues the send (its counter, the hourly cap, the approval's resends) and the outbox row
 * seals the recipient, the link's capability and what the code is computed from. Nothing for a
 * wallet without a channel. Throws ConsentRefused when the factor refuses to send (locked, capped).
 */
async function sendApprovalCode(
  tx: StoreTx,
  ctx: KernelContext,
  barrier: Barrier,
  enrolled: readonly EnrolledFactor[],
  record: ApprovalRecord,
  capability: string | undefined,
  now: number,
): Promise<Record<string, unknown>> {
  const channel = enrolled.find((e) => e.factor.kind === 'oob');
  if (channel === undefined) return {};
  const issued = (await issueChallenge(tx, barrier, {
    enrolled,
    kind: 'oob',
    tenant: record.tenant,
    approval: { id: record.id, opHash: record.opHash, expiresAt: record.expiresAt },
    now,
    random: (n) => ctx.random(n),
  })) as OobIssued;
  const messageId = await enqueueMessage(tx, barrier, (n) => ctx.random(n), {
    message: {
      kind: 'approval',
      channel: issued.channel,
      address: issued.address,
      walletName: record.walletName,
      subject: record.id,
      counter: issued.counter,
      ...(capability === undefined ? {} : { capability }),
      summaryText: record.summaryText,
    },
    approvalId: record.id,
    now,
    expiresAt: issued.expiresAt,
  });
  return { delivery: { messageId, channel: issued.channel, counter: issued.counter } };
}

/** The summary an approval was created with (the codec's, stored as canonical JSON): what the policy decides on again. */
function summaryOf(record: ApprovalRecord): OperationSummary {
  return JSON.parse(record.summary) as OperationSummary;
}

function consentNotRequired(): CustosError {
  return new CustosError('consent_not_required', 'the wallet needs no consent: sign without an approval', { details: { field: 'walletName' } });
}

// ── read, cancel, expire ─────────────────────────────────────────────────────────────────

export async function getApproval(ctx: KernelContext, app: App, request: { id: unknown }): Promise<ApprovalView> {
  const barrier = ctx.requireBarrier();
  const id = assertApprovalId(request.id);
  const forbidden = checkScope(app, 'sign');
  if (forbidden !== undefined) throw forbidden;
  const record = await ctx.readStore(() => ctx.store.readApproval(id));
  // Another tenant's approval is as absent as one never made.
  if (record === undefined || !walletInReach(app, record)) throw approvalNotFound();
  if (!approvalIntact(barrier, record)) throw unreadable();
  // The delivery only for an approval the kernel sent a message for (a wallet with a channel).
  const delivery = await approvalDelivery(ctx, record.id);
  return delivery === null ? approvalView(record, ctx.now()) : { ...approvalView(record, ctx.now()), delivery };
}

/**
 * Cancels a pending or approved (not yet used) approval of the caller's tenant, audited; an
 * approval already cancelled, rejected, expired or consumed is returned as it is (its state says
 * what happened), without a record.
 */
export async function cancelApproval(ctx: KernelContext, app: App, request: { id: unknown }): Promise<ApprovalView> {
  const barrier = ctx.requireBarrier();
  const id = assertApprovalId(request.id);
  const result = settle(
    await ctx.transact(async (tx): Promise<Outcome<{ record: ApprovalRecord; changed: boolean }>> => {
      const now = ctx.now();
      const base: AuditBase = { ts: now, appId: app.id, walletName: null, action: 'approval.cancel', opHash: null, detail: { approvalId: id } };
      const forbidden = checkScope(app, 'sign');
      if (forbidden !== undefined) return deny(tx, base, forbidden);
      const record = await tx.getApprovalForUpdate(id);
      if (record === undefined || !walletInReach(app, record)) return deny(tx, base, approvalNotFound());
      const audited: AuditBase = { ...base, walletName: record.walletName, opHash: record.opHash };
      if (!approvalIntact(barrier, record)) return deny(tx, audited, unreadable());
      const state = stateAt(record, now);
      if (state === 'expired' && record.state !== 'expired') {
        // Past its expiry: written (and audited) as expired, the sweep's job done early.
        return { ok: true, value: { record: await expire(tx, barrier, record, now, app.id), changed: true } };
      }
      if (state !== 'pending' && state !== 'approved') return { ok: true, value: { record, changed: false } };
      // The pending row's MAC (cancelling only takes power away), recomputed when it was approved.
      const cancelled: ApprovalRecord = { ...record, state: 'cancelled', decidedAt: now, evidence: null, consumedSeq: null };
      cancelled.mac = record.state === 'pending' ? record.mac : macApproval(barrier, asPending(record));
      await tx.updateApproval(id, { state: 'cancelled', decidedAt: now, evidence: null, consumedSeq: null, challenge: record.challenge, mac: cancelled.mac });
      await tx.appendAudit(auditRecord(audited, { allowed: { ...keyOf(record), previousState: state } }));
      return { ok: true, value: { record: cancelled, changed: true } };
    }),
  );
  if (result.changed) ctx.approvalChanged(id);
  return approvalView(result.record, ctx.now());
}

/**
 * Writes an expired state, audited. Its MAC is the pending row's (expiry only takes power away),
 * recomputed from the row when it was approved and not used.
 */
async function expire(tx: StoreTx, barrier: Barrier, record: ApprovalRecord, now: number, appId: string | null): Promise<ApprovalRecord> {
  const expired: ApprovalRecord = { ...record, state: 'expired', decidedAt: now, evidence: null, consumedSeq: null };
  expired.mac = record.state === 'pending' ? record.mac : macApproval(barrier, asPending(record));
  await tx.updateApproval(record.id, { state: 'expired', decidedAt: now, evidence: null, consumedSeq: null, challenge: record.challenge, mac: expired.mac });
  await tx.appendAudit(
    auditRecord(
      {
        ts: now,
        appId,
        walletName: record.walletName,
        action: 'approval.expire',
        opHash: record.opHash,
        detail: { approvalId: record.id, ...keyOf(record), previousState: record.state, expiresAt: record.expiresAt },
      },
      { allowed: {} },
    ),
  );
  return expired;
}

/** Marks pending and approved (unused) approvals past their expiry as expired, each audited, paging by (expiry, id); returns how many. */
export async function expireApprovals(ctx: KernelContext): Promise<number> {
  const barrier = ctx.requireBarrier();
  let total = 0;
  let after: { expiresAt: number; id: string } | undefined;
  for (;;) {
    const batch = await ctx.transact(async (tx) => {
      const now = ctx.now();
      const due = await tx.listExpiredOpenApprovals(now, SWEEP_BATCH, after);
      const done: string[] = [];
      for (const record of due) {
        // A row that fails its MAC is left as it is (every use of it refuses it): not rewritten into a valid-looking one.
        if (!approvalIntact(barrier, record)) continue;
        await expire(tx, barrier, record, now, null);
        done.push(record.id);
      }
      const last = due.at(-1);
      return { done, next: due.length === SWEEP_BATCH && last !== undefined ? { expiresAt: last.expiresAt, id: last.id } : undefined };
    });
    for (const id of batch.done) ctx.approvalChanged(id);
    total += batch.done.length;
    if (batch.next === undefined) return total;
    after = batch.next;
  }
}

// ── the owner's decision (the approval page) ─────────────────────────────────────────────

/** The approval behind a page's capability, with the wallet's factors (for the page to list). */
export async function openApprovalPage(ctx: KernelContext, capability: unknown): Promise<ApprovalPage> {
  const barrier = ctx.requireBarrier();
  const capabilityHash = capabilityHashOf(capability, () => approvalNotFound('capability'));
  // Unlocked reads: a GET decides nothing, so it never queues behind signatures (nor can a flood of
  // guessed links hold up the store's writer); the MACs are checked as in a unit.
  const record = await ctx.readStore(() => ctx.store.readApprovalByCapability(capabilityHash));
  if (record === undefined) throw approvalNotFound('capability');
  if (!approvalIntact(barrier, record)) throw unreadable();
  const rows = await ctx.readStore(() => ctx.store.readWalletRows(record.walletName));
  const opened = checkWalletRows(barrier, ctx.factors, { tenant: record.tenant, walletName: record.walletName }, rows);
  if (!opened.ok) throw opened.error;
  return {
    approval: approvalView(record, ctx.now()),
    factors: opened.value.enrolled.map(({ factor, record: row }) => ({
      kind: factor.kind,
      id: row.id,
      label: factor.label,
      strength: strongestOf(factor, row),
      createdAt: row.createdAt,
      enrolledVia: row.enrolledVia,
    })),
    ownerCapability: ownerCapability(barrier, { tenant: record.tenant, name: record.walletName }),
  };
}

/**
 * The owner's decision on the approval page. Reject needs no factor (whoever holds the link may
 * refuse the operation; the backend could cancel it anyway). Approve needs a proof from a factor of
 * the wallet strong enough for the approval — the stricter of its requirement when created and the
 * policy's now — verified over this approval's opHash: a factor too weak is refused before its
 * proof is checked (not charged), a wrong proof is charged to the factor's one throttle. The proof
 * was posted on the kernel's page: channel `page` (Factor.ts effectiveStrength) — for a hardware
 * key only when `deviceTokens` (the request's device cookies) hold the card's device token and the
 * challenge answered was issued with it too (kernel/hwkeyDevice.ts); else `relay`.
 */
export async function decideApproval(
  ctx: KernelContext,
  capability: unknown,
  decision: ApprovalDecision,
  deviceTokens?: readonly string[],
): Promise<ApprovalView> {
  const capabilityHash = capabilityHashOf(capability, () => approvalNotFound('capability'));
  return decide(ctx, decision, 'page', {
    deviceTokens,
    appId: null,
    find: async (tx) => tx.getApprovalByCapabilityForUpdate(capabilityHash),
    notFound: () => approvalNotFound('capability'),
  });
}

/**
 * An hwkey's answer relayed by the backend (POST /v1/approvals/{id}/hwkey, scope `sign`, the
 * caller's tenant's approval): the card proved possession for this approval, but not what the owner
 * was shown — channel `relay`, so `present` at most; a `bound`-requiring approval is refused
 * (consent_too_weak) before the signature is checked.
 */
export async function decideApprovalRelayed(ctx: KernelContext, app: App, request: { id: unknown; kind: string; proof: unknown }): Promise<ApprovalView> {
  const id = assertApprovalId(request.id);
  const forbidden = checkScope(app, 'sign');
  if (forbidden !== undefined) throw forbidden;
  return decide(ctx, { decision: 'approve', kind: request.kind, proof: request.proof }, 'relay', {
    appId: app.id,
    find: async (tx) => {
      const record = await tx.getApprovalForUpdate(id);
      // Another tenant's approval is as absent as one never made.
      return record === undefined || !walletInReach(app, record) ? undefined : record;
    },
    notFound: () => approvalNotFound(),
  });
}

/** The effective strength `kind` can give this wallet through `channel`: the best of its records (the static strength when it has none). */
function kindStrength(enrolled: readonly EnrolledFactor[], factor: Factor, channel: ProofChannel, proofId: string | undefined): Strength {
  const records = enrolled.filter((e) => e.factor.kind === factor.kind && (proofId === undefined || e.record.id === proofId));
  if (records.length === 0) return factor.strength;
  return records.some((e) => effectiveStrength(e.factor, e.record, channel) === 'bound') ? 'bound' : 'present';
}

async function decide(
  ctx: KernelContext,
  decision: ApprovalDecision,
  channel: ProofChannel,
  where: {
    appId: string | null;
    find: (tx: StoreTx) => Promise<ApprovalRecord | undefined>;
    notFound: () => CustosError;
    deviceTokens?: readonly string[] | undefined;
  },
): Promise<ApprovalView> {
  const barrier = ctx.requireBarrier();
  if (decision.decision !== 'approve' && decision.decision !== 'reject') throw invalidInput('decision', "'approve' or 'reject'");
  const approve = decision.decision === 'approve';
  let factor: Factor | undefined;
  if (approve) {
    factor = ctx.factors.find((f) => f.kind === decision.kind);
    if (factor === undefined && decision.kind === 'passkey') throw passkeysUnavailable();
    if (factor === undefined) throw invalidInput('kind', 'the kind of a registered factor', typeof decision.kind);
  }
  const outcome = await ctx.transact(async (tx): Promise<Outcome<ApprovalRecord>> => {
    const record = await where.find(tx);
    // An unknown capability is not audited: the page is public, and a guess names no wallet.
    if (record === undefined) return { ok: false, error: where.notFound() };
    const now = ctx.now();
    let base: AuditBase = {
      ts: now,
      appId: where.appId,
      walletName: record.walletName,
      action: approve ? 'approval.approve' : 'approval.reject',
      opHash: record.opHash,
      detail: { approvalId: record.id, ...keyOf(record), ...(channel === 'relay' ? { channel } : {}) },
    };
    if (!approvalIntact(barrier, record)) return deny(tx, base, unreadable());
    const state = stateAt(record, now);
    if (state !== 'pending') return deny(tx, base, stateError(state));
    if (!approve) {
      const rejected = await writeState(tx, barrier, record, { state: 'rejected', decidedAt: now, evidence: null, consumedSeq: null, challenge: null });
      await tx.appendAudit(auditRecord(base, { allowed: {} }));
      return { ok: true, value: rejected };
    }
    const opened = await openWallet(tx, barrier, ctx.factors, { tenant: record.tenant, walletName: record.walletName, nowMs: now, create: false });
    if (!opened.ok) return deny(tx, base, opened.error);
    // A frozen wallet's approvals cannot be approved (rejecting one, above, only takes power away).
    const frozen = await freezeRefusal(tx, opened.value.wallet);
    if (frozen !== undefined) return deny(tx, base, frozen);
    // The policy now (limits, allowlists, strength), before the proof is charged; the stricter requirement wins.
    let required: Requirement;
    let boundBy: string[];
    try {
      const decided = await decidePolicy(tx, barrier, ctx.policy, { wallet: opened.value, summary: summaryOf(record), now });
      required = stricter(record.requiredStrength, decided.required);
      boundBy = decided.boundBy;
    } catch (error) {
      return denyByPolicy(tx, base, error);
    }
    const chosen = factor as Factor;
    const proofId = proofIdOf(decision.proof);
    // A factor that answers the kernel's challenge verifies against the digest of the nonce stored
    // with the approval (recomputed here, never taken from the proof); any answer spends it.
    const stored = chosen.challengeOptions === undefined ? undefined : storedChallenge(record, chosen.kind);
    // A card's answer counts as posted on the page only from the browser the card was enrolled in
    // (its device cookie), answering a challenge issued to that browser: else it is relayed.
    let proofChannel = channel;
    if (channel === 'page' && chosen.kind === 'hwkey') {
      const card = opened.value.enrolled.find((e) => e.factor.kind === 'hwkey');
      const device = card !== undefined && hwkeyDeviceMatches(barrier, card.record, where.deviceTokens);
      proofChannel = hwkeyPageChannel(device, stored);
      if (proofChannel === 'relay') {
        base = { ...base, detail: { ...base.detail, channel: 'relay', device } };
      }
    }
    const given = kindStrength(opened.value.enrolled, chosen, proofChannel, proofId.proofId);
    // When the policy raised the requirement, its rules are named (details and audit record), as on the sign path.
    if (!meetsRequirement(given, required)) return deny(tx, withBoundBy(base, boundBy), tooWeak(required, given, boundBy), chosen.kind);
    const challenge = stored === undefined ? undefined : challengeDigestFor(chosen.kind, ctx.signerId(), record, stored.nonce);
    let consent: Awaited<ReturnType<typeof decideConsentStrength>>;
    try {
      consent = await decideConsentStrength(tx, barrier, {
        enrolled: opened.value.enrolled,
        required,
        tenant: record.tenant,
        proofKind: chosen.kind,
        ...proofId,
        opHash: record.opHash,
        proof: decision.proof,
        approval: { id: record.id, opHash: record.opHash, expiresAt: record.expiresAt, ...(challenge === undefined ? {} : { challenge }) },
        channel: proofChannel,
        now,
      });
    } catch (error) {
      if (error instanceof ConsentRefused) {
        if (record.challenge !== null) await writeState(tx, barrier, record, { challenge: null });
        // The delivered-code factor just locked: the owner is told on its channel.
        if (error.error.code === 'factor_throttled' && error.error.details.locked === true) {
          const oob = opened.value.enrolled.find((e) => e.factor.kind === 'oob');
          if (oob !== undefined)
            await enqueueMessage(tx, barrier, (n) => ctx.random(n), {
              message: { kind: 'locked', ...oobAddressOf(barrier, oob.record), walletName: record.walletName },
              approvalId: null,
              now,
              expiresAt: now + 86_400_000,
            });
        }
        return deny(tx, base, error.error, error.factor);
      }
      throw error;
    }
    // The strength this proof gave through this channel, last so that no factor's evidence can
    // overstate it (useApproval checks it again, capped by the factor's strength then).
    const withFactor: Record<string, unknown> = { factor: chosen.kind, ...consent.evidence, strength: consent.strength };
    // A locked delivered-code factor is unlocked by the owner's approval with another factor, on this
    // page (never by an answer the backend relayed).
    const oob = opened.value.enrolled.find((e) => e.factor.kind === 'oob');
    const oobState = oob?.record.state as { lockedUntilMs?: unknown; failures?: unknown } | undefined;
    if (proofChannel === 'page' && oob !== undefined && chosen.kind !== 'oob' && typeof oobState?.lockedUntilMs === 'number') {
      await saveFactorState(tx, barrier, oob, { ...oobState, lockedUntilMs: null, failures: 0 });
      withFactor.unlocked = 'oob';
    }
    const approved = await writeState(tx, barrier, record, {
      state: 'approved',
      decidedAt: now,
      evidence: canonicalJson(withFactor),
      consumedSeq: null,
      challenge: null,
    });
    await tx.appendAudit(auditRecord(base, { allowed: withFactor }));
    return { ok: true, value: approved };
  });
  if (outcome.ok) ctx.approvalChanged(outcome.value.id);
  return approvalView(settle(outcome), ctx.now());
}

/** A proof object that names an `id` (a passkey's credential id) is for that one of the wallet's factors of its kind. */
export function proofIdOf(proof: unknown): { proofId?: string } {
  if (typeof proof !== 'object' || proof === null) return {};
  const id = (proof as Record<string, unknown>).id;
  return typeof id === 'string' ? { proofId: id } : {};
}

/**
 * A challenge for the approval behind a page's capability, for a factor that answers the kernel's
 * own challenge (passkeys, hardware keys): the approval must be pending and intact, its wallet must
 * have such a factor; a fresh nonce replaces any earlier one under the approval's MAC, and the
 * factor turns the digest into what the owner's device needs. A factor that counts its challenges
 * (hwkey: a per-wallet rate limit) counts this one in its row, in the same unit. Not audited (it
 * decides nothing; the decision's record carries the evidence); a page visitor can only replace the
 * nonce of a page it holds.
 */
export async function issueApprovalChallenge(
  ctx: KernelContext,
  capability: unknown,
  request: { kind: unknown; deviceTokens?: readonly string[] },
): Promise<ApprovalChallengeIssued> {
  const capabilityHash = capabilityHashOf(capability, () => approvalNotFound('capability'));
  const answering = ctx.factors.filter((f) => f.challengeOptions !== undefined);
  if (request.kind === 'passkey' && answering.every((f) => f.kind !== 'passkey')) throw passkeysUnavailable();
  const kind = assertChallengeKind(
    request.kind,
    answering.map((f) => f.kind),
  );
  return issue(ctx, kind, {
    find: async (tx) => tx.getApprovalByCapabilityForUpdate(capabilityHash),
    notFound: () => approvalNotFound('capability'),
    deviceTokens: request.deviceTokens ?? [],
  });
}

/**
 * A hardware-key challenge for an approval of the caller's tenant (scope `sign`), for the backend
 * to relay to the card: `{ digest, subpath, expiresAt }` — the digest the kernel derived from a
 * nonce it chose (never the caller's). Rate-limited per wallet (hwkeyFactor.ts HWKEY_CHALLENGE_LIMIT).
 * Issued `via: relay`: when a relayed answer cannot meet the approval's requirement (the wallet
 * requires `bound`) it is refused up front (consent_too_weak), not counted, the page's nonce kept.
 */
export async function issueHwkeyChallenge(
  ctx: KernelContext,
  app: App,
  request: { id: unknown },
): Promise<{ digest: string; subpath: string; expiresAt: number }> {
  const id = assertApprovalId(request.id);
  const forbidden = checkScope(app, 'sign');
  if (forbidden !== undefined) throw forbidden;
  if (!ctx.factors.some((f) => f.kind === 'hwkey' && f.challengeOptions !== undefined)) throw invalidInput('kind', 'a signer with the hwkey factor');
  const issued = await issue(ctx, 'hwkey', {
    find: async (tx) => {
      const record = await tx.getApprovalForUpdate(id);
      return record === undefined || !walletInReach(app, record) ? undefined : record;
    },
    notFound: () => approvalNotFound(),
    deviceTokens: undefined,
  });
  const options = issued.options as { digest: string; subpath: string };
  return { digest: options.digest, subpath: options.subpath, expiresAt: issued.expiresAt };
}

async function issue(
  ctx: KernelContext,
  kind: string,
  where: {
    find: (tx: StoreTx) => Promise<ApprovalRecord | undefined>;
    notFound: () => CustosError;
    /** hwkey: the device cookies of the page's request; undefined for the API. */
    deviceTokens: readonly string[] | undefined;
  },
): Promise<ApprovalChallengeIssued> {
  const barrier = ctx.requireBarrier();
  const factor = ctx.factors.find((f) => f.kind === kind && f.challengeOptions !== undefined) as Factor;
  const challengeOptions = (factor.challengeOptions as NonNullable<Factor['challengeOptions']>).bind(factor);
  return settle(
    await ctx.transact(async (tx): Promise<Outcome<ApprovalChallengeIssued>> => {
      const record = await where.find(tx);
      if (record === undefined) return { ok: false, error: where.notFound() };
      const now = ctx.now();
      if (!approvalIntact(barrier, record)) return { ok: false, error: unreadable() };
      const state = stateAt(record, now);
      if (state !== 'pending') return { ok: false, error: stateError(state) };
      const opened = await openWallet(tx, barrier, ctx.factors, { tenant: record.tenant, walletName: record.walletName, nowMs: now, create: false });
      if (!opened.ok) return { ok: false, error: opened.error };
      // A challenge refused by a rule of the wallet (frozen, its policy, the card's relay too weak) is audited.
      const base: AuditBase = {
        ts: now,
        appId: null,
        walletName: record.walletName,
        action: 'approval.challenge',
        opHash: record.opHash,
        detail: { approvalId: record.id, kind },
      };
      const frozen = await freezeRefusal(tx, opened.value.wallet);
      if (frozen !== undefined) return deny(tx, base, frozen);
      const records = opened.value.enrolled.filter((e) => e.factor.kind === kind).map((e) => e.record);
      if (records.length === 0)
        return { ok: false, error: new CustosError('factor_required', `the wallet has no ${factor.label}`, { details: { field: 'kind' } }) };
      const ref = { id: record.id, opHash: record.opHash, expiresAt: record.expiresAt };
      // A card's challenge is tagged with who asked: the page in the browser the card was enrolled
      // in (its device cookie), or a relay. One whose answer cannot meet the approval's requirement
      // is refused before it is counted or replaces the nonce (the backend cannot spend the owner's).
      let via: 'page' | 'relay' | undefined;
      if (kind === 'hwkey') {
        const card = opened.value.enrolled.find((e) => e.factor.kind === 'hwkey');
        via = card !== undefined && hwkeyDeviceMatches(barrier, card.record, where.deviceTokens) ? 'page' : 'relay';
        if (via === 'relay') {
          let required: Requirement;
          let boundBy: string[];
          try {
            const decided = await decidePolicy(tx, barrier, ctx.policy, { wallet: opened.value, summary: summaryOf(record), now });
            required = stricter(record.requiredStrength, decided.required);
            boundBy = decided.boundBy;
          } catch (error) {
            return deny(tx, base, asCustosError(error));
          }
          const given = kindStrength(opened.value.enrolled, factor, 'relay', undefined);
          if (!meetsRequirement(given, required)) return deny(tx, base, tooWeak(required, given, boundBy));
        }
      }
      // A factor that counts its challenges counts this one (its state, in this unit), or refuses.
      if (factor.challenge !== undefined) {
        try {
          await issueChallenge(tx, barrier, { enrolled: opened.value.enrolled, kind, tenant: record.tenant, approval: ref, now, random: (n) => ctx.random(n) });
        } catch (error) {
          if (error instanceof ConsentRefused) return { ok: false, error: error.error };
          throw error;
        }
      }
      const { text, challenge } = newStoredChallenge(kind, (n) => ctx.random(n), now, via);
      const digest = challengeDigestFor(kind, ctx.signerId(), record, challenge.nonce);
      const options = await challengeOptions({ records, challenge: digest, approval: { ...ref, challenge: digest }, now });
      await writeState(tx, barrier, record, { challenge: text });
      return { ok: true, value: { kind, options, expiresAt: record.expiresAt } };
    }),
  );
}

export function passkeysUnavailable(): CustosError {
  return new CustosError('passkeys_unavailable', 'passkeys are off on this signer (its public URL is not a host name browsers accept for passkeys)', {
    details: { field: 'kind' },
  });
}

/** `boundBy`: the policy's rules that raised the requirement to `bound` (policyEvidence), named in the details when any. */
function tooWeak(required: Requirement, given: Strength, boundBy: readonly string[] = []): CustosError {
  return new CustosError(
    'consent_too_weak',
    `this wallet requires a consent of strength '${required}'; a '${given}' one is not enough (the proof was not checked)`,
    {
      details: { required, given, ...(boundBy.length > 0 ? { boundBy: [...boundBy] } : {}) },
    },
  );
}

/** The audit base with the policy's rules that raised the requirement (`detail.policy.boundBy`, as the sign path records them), when any. */
function withBoundBy<T extends { detail: Record<string, unknown> }>(base: T, boundBy: readonly string[]): T {
  return boundBy.length > 0 ? { ...base, detail: { ...base.detail, policy: { boundBy: [...boundBy] } } } : base;
}

/** The refusal for using or deciding an approval in `state` (anything but the expected one). */
function stateError(state: ApprovalState): CustosError {
  switch (state) {
    case 'pending':
      return new CustosError('approval_pending', 'the owner has not decided this approval yet', { details: { state } });
    case 'rejected':
      return new CustosError('approval_rejected', 'the owner rejected this approval', { details: { state } });
    case 'expired':
      return new CustosError('approval_expired', 'the approval expired', { details: { state } });
    case 'cancelled':
      return new CustosError('approval_cancelled', 'the approval was cancelled', { details: { state } });
    default:
      return new CustosError('approval_decided', `the approval was already decided (${state})`, { details: { state } });
  }
}

// ── use, in the sign unit (sign.ts step 4) ───────────────────────────────────────────────

/** What the sign unit gets from an approval: the evidence for its record and the consumption to write after it; or the refusal. */
export type ApprovalUse =
  | { ok: true; evidence: Record<string, unknown>; consume: ((auditSeq: number) => Promise<void>) | undefined }
  | { ok: false; error: CustosError; detail: Record<string, unknown> };

/**
 * Checks an approval for the operation being signed, inside its unit: the caller's tenant's, intact,
 * for this very opHash (else approval_mismatch — a swap), approved and unexpired, and its factor
 * still strong enough for the policy now (the stricter result wins). A consumed approval and the
 * identical operation again: allowed as a repeat (the same deterministic signature), its record
 * pointing at the first one; nothing is consumed twice. Refusals carry both opHashes for the audit.
 */
export async function useApproval(
  tx: StoreTx,
  ctx: KernelContext,
  {
    app,
    approvalId,
    opHash,
    keyIndex,
    required,
    boundBy = [],
    wallet,
    now,
  }: {
    app: App;
    approvalId: string;
    opHash: string;
    keyIndex: number;
    required: Requirement;
    /** The policy's rules that raised `required` to bound (named when the approval is too weak). */
    boundBy?: readonly string[];
    wallet: OpenedWallet;
    now: number;
  },
): Promise<ApprovalUse> {
  const barrier = ctx.requireBarrier();
  const record = await tx.getApprovalForUpdate(approvalId);
  if (record === undefined || !walletInReach(app, record))
    return { ok: false, error: approvalNotFound('approvalId'), detail: { approvalId, approvalOpHash: null } };
  const detail = { approvalId, approvalOpHash: record.opHash };
  if (!approvalIntact(barrier, record)) return { ok: false, error: unreadable(), detail };
  if (record.batch !== undefined) return useBatchApproval(tx, ctx, record, { opHash, keyIndex, required, boundBy, wallet, now });
  if (record.opHash !== opHash || record.walletName !== wallet.wallet.name) return { ok: false, error: mismatch(record.opHash, opHash), detail };
  const state = record.state === 'consumed' ? 'consumed' : stateAt(record, now);
  if (state !== 'approved' && state !== 'consumed') return { ok: false, error: stateError(state), detail };
  // Approved for a backend whose key was revoked since, and not used: void (the revocation cancelled its pending ones).
  if (state === 'approved' && (await creatorRevoked(ctx, record.apiKeyId))) return { ok: false, error: stateError('cancelled'), detail };
  const evidence = parseJson(record.evidence) ?? {};
  const kind = typeof evidence.factor === 'string' ? evidence.factor : '';
  const factor = ctx.factors.find((f) => f.kind === kind);
  // The policy now, and the approval's own requirement: the stricter wins; the factor's strength as registered now.
  const needed = stricter(required, record.requiredStrength);
  const given = decidedStrength(factor, evidence);
  if (factor === undefined || !meetsRequirement(given, needed))
    return { ok: false, error: tooWeak(needed, given, boundBy), detail: withBoundBy({ detail }, boundBy).detail };
  const approval = { id: record.id, ...evidence };
  if (state === 'consumed') return { ok: true, evidence: { approval, repeatOf: record.consumedSeq }, consume: undefined };
  return {
    ok: true,
    evidence: { approval },
    consume: async (auditSeq) => {
      await writeState(tx, barrier, record, { state: 'consumed', decidedAt: record.decidedAt, evidence: record.evidence, consumedSeq: auditSeq });
    },
  };
}

/**
 * Whether signing `opHash` with approval `approvalId` would be the repeat of a signature already
 * made (the same bytes again: a consumed approval of this very operation, or a batch item signed
 * before), read in the sign unit before the policy decides (a repeat counts nothing new, so a full
 * window does not refuse it). Only a hint for the policy: useApproval checks everything again and
 * the sign unit refuses when the two disagree.
 */
export async function approvalRepeats(
  tx: StoreTx,
  ctx: KernelContext,
  { app, approvalId, opHash, keyIndex, walletName }: { app: App; approvalId: string; opHash: string; keyIndex: number; walletName: string },
): Promise<boolean> {
  const record = await tx.getApprovalForUpdate(approvalId);
  if (record === undefined || !walletInReach(app, record) || record.walletName !== walletName) return false;
  if (!approvalIntact(ctx.requireBarrier(), record)) return false;
  if (record.batch === undefined) return record.state === 'consumed' && record.opHash === opHash;
  try {
    const batch = decodeBatch(record.batch, record.opHash);
    const item = findBatchItem(batch, opHash, keyIndex);
    return item !== undefined && (batch.signedSeqs[item] ?? null) !== null;
  } catch {
    return false;
  }
}

/** The strength the approval's proof gave (recorded in its evidence at its decision), capped by its factor's registered strength now. */
function decidedStrength(factor: Factor | undefined, evidence: Record<string, unknown>): Strength {
  const recorded: Strength = evidence.strength === 'bound' ? 'bound' : 'present';
  return factor !== undefined && factor.strength === 'bound' ? recorded : 'present';
}

function mismatch(approvalOpHash: string, opHash: string): CustosError {
  return new CustosError('approval_mismatch', 'this operation is not the one the approval was given for; nothing was signed', {
    details: { field: 'approvalId', approvalOpHash, opHash },
  });
}

/**
 * useApproval for a batch (kernel/batchApproval.ts): the operation must be one of the batch's items
 * (its opHash and key index; else approval_mismatch), the approval approved and unexpired (or
 * consumed), its factor strong enough now. An item signed for the first time is marked with its
 * audit record's seq, in the unit of that record, on the row locked for update — the approval is
 * consumed with the last item; an item signed before is a repeat pointing at its first record.
 */
async function useBatchApproval(
  tx: StoreTx,
  ctx: KernelContext,
  record: ApprovalRecord,
  {
    opHash,
    keyIndex,
    required,
    boundBy,
    wallet,
    now,
  }: { opHash: string; keyIndex: number; required: Requirement; boundBy: readonly string[]; wallet: OpenedWallet; now: number },
): Promise<ApprovalUse> {
  const barrier = ctx.requireBarrier();
  const detail = { approvalId: record.id, approvalOpHash: record.opHash };
  let batch: ReturnType<typeof decodeBatch>;
  try {
    batch = decodeBatch(record.batch as string, record.opHash);
  } catch (error) {
    return { ok: false, error: asCustosError(error), detail };
  }
  const item = record.walletName === wallet.wallet.name ? findBatchItem(batch, opHash, keyIndex) : undefined;
  if (item === undefined) return { ok: false, error: mismatch(record.opHash, opHash), detail };
  const itemDetail = { ...detail, batchItem: item };
  const state = record.state === 'consumed' ? 'consumed' : stateAt(record, now);
  if (state !== 'approved' && state !== 'consumed') return { ok: false, error: stateError(state), detail: itemDetail };
  const firstSeq = batch.signedSeqs[item] ?? null;
  // A new signature from an approval whose creating key was revoked since: void (as for one operation).
  if (firstSeq === null && (await creatorRevoked(ctx, record.apiKeyId))) return { ok: false, error: stateError('cancelled'), detail: itemDetail };
  const evidence = parseJson(record.evidence) ?? {};
  const kind = typeof evidence.factor === 'string' ? evidence.factor : '';
  const factor = ctx.factors.find((f) => f.kind === kind);
  const needed = stricter(required, record.requiredStrength);
  const given = decidedStrength(factor, evidence);
  if (factor === undefined || !meetsRequirement(given, needed))
    return { ok: false, error: tooWeak(needed, given, boundBy), detail: withBoundBy({ detail: itemDetail }, boundBy).detail };
  const approval = { id: record.id, ...evidence, batchItem: item };
  if (firstSeq !== null) return { ok: true, evidence: { approval, repeatOf: firstSeq }, consume: undefined };
  return {
    ok: true,
    evidence: { approval },
    consume: async (auditSeq) => {
      const signedSeqs = batch.signedSeqs.map((seq, i) => (i === item ? auditSeq : seq));
      const done = signedSeqs.every((seq) => seq !== null);
      await writeState(tx, barrier, record, {
        state: done ? 'consumed' : 'approved',
        consumedSeq: done ? auditSeq : null,
        batch: encodeBatch({ items: batch.items, signedSeqs }),
      });
    },
  };
}

// ── resend of the delivered code ─────────────────────────────────────────────────────────

/**
 * Sends the approval's code again (the page's button by its capability, or the backend with scope
 * `sign`): a new code (the send counter advances: the earlier code dies), the approval's wrong tries
 * kept as they are, the wallet's hourly cap and the approval's resends counted (`delivery_limited`).
 * The message carries no link when asked by the backend without the page (the capability is not
 * stored): the owner already has it from the first message. Audited as `approval.resend`.
 */
export async function resendApprovalCode(ctx: KernelContext, by: { app: App; id: unknown } | { capability: unknown }): Promise<ApprovalView> {
  const barrier = ctx.requireBarrier();
  const byPage = 'capability' in by;
  const capability = byPage ? by.capability : undefined;
  const capabilityHash = byPage ? capabilityHashOf(by.capability, () => approvalNotFound('capability')) : undefined;
  const id = byPage ? undefined : assertApprovalId(by.id);
  const outcome = await ctx.transact(async (tx): Promise<Outcome<ApprovalRecord>> => {
    const record = capabilityHash !== undefined ? await tx.getApprovalByCapabilityForUpdate(capabilityHash) : await tx.getApprovalForUpdate(id as string);
    if (record === undefined || (!byPage && !walletInReach(by.app, record))) return { ok: false, error: approvalNotFound(byPage ? 'capability' : 'id') };
    const now = ctx.now();
    const base: AuditBase = {
      ts: now,
      appId: byPage ? null : by.app.id,
      walletName: record.walletName,
      action: 'approval.resend',
      opHash: record.opHash,
      detail: { approvalId: record.id, by: byPage ? 'page' : 'api' },
    };
    if (!byPage) {
      const forbidden = checkScope(by.app, 'sign');
      if (forbidden !== undefined) return deny(tx, base, forbidden);
    }
    if (!approvalIntact(barrier, record)) return deny(tx, base, unreadable());
    const state = stateAt(record, now);
    if (state !== 'pending') return deny(tx, base, stateError(state));
    const opened = await openWallet(tx, barrier, ctx.factors, { tenant: record.tenant, walletName: record.walletName, nowMs: now, create: false });
    if (!opened.ok) return deny(tx, base, opened.error);
    const frozen = await freezeRefusal(tx, opened.value.wallet);
    if (frozen !== undefined) return deny(tx, base, frozen);
    if (!opened.value.enrolled.some((e) => e.factor.kind === 'oob'))
      return deny(tx, base, new CustosError('factor_required', 'the wallet has no delivery channel', { details: { field: 'walletName' } }));
    let delivery: Record<string, unknown>;
    try {
      delivery = await sendApprovalCode(tx, ctx, barrier, opened.value.enrolled, record, typeof capability === 'string' ? capability : undefined, now);
    } catch (error) {
      if (error instanceof ConsentRefused) return deny(tx, base, error.error, error.factor);
      throw error;
    }
    await tx.appendAudit(auditRecord(base, { allowed: delivery }));
    return { ok: true, value: record };
  });
  ctx.deliveryQueued?.();
  return approvalView(settle(outcome), ctx.now());
}

/** The approval's delivery as the backend sees it: the newest message's status, never its content. */
export async function approvalDelivery(ctx: KernelContext, id: string): Promise<NonNullable<ApprovalView['delivery']> | null> {
  const row = await ctx.readStore(() => ctx.store.readApprovalDelivery(id));
  return row === undefined ? null : { status: row.status, attempts: row.attempts, sentAt: row.sentAt };
}
