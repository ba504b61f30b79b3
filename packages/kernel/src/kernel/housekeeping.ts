import { CustosError } from '../errors.js';
import type { StoreTx } from '../store/types.js';
import type { KernelContext } from './context.js';
import { IDEMPOTENCY_TTL_MS } from './idempotency.js';

/**
 * Housekeeping (issue 15 point 13; docs/operations.md "Housekeeping"): rows whose life is over are
 * deleted on a schedule, so that the tables the request path reads stay the size of the live work.
 *
 * Each kind of row is one purge step: which rows, and how long after their end they are kept
 * (`retentionMs`). A step deletes at most `limit` rows per unit (short transactions: the request
 * path is never held up behind one long delete) and is run again until it deletes fewer.
 *
 * What is never deleted: the audit log (every decision, its evidence included — the signature
 * record carries the approval's evidence, so the approval row is not needed to verify it), the
 * audit checkpoints, and the rows the audit log anchors (kernel/rowAnchors.ts: freezes, policies,
 * pending changes, settings, API keys). Approvals, enrolment links and outbox rows carry no anchor:
 * their deletion can make nothing verify differently; a deleted row is simply not found (a link
 * opened afterwards shows "not found", a repeat of a consumed approval is refused approval_not_found).
 *
 * Safe across replicas: every step is a plain DELETE of rows past a time bound, in its own unit;
 * two replicas running it at once delete each row once (the second finds it gone), whichever wins.
 */

/** The longest an approval, an enrolment link or a message can live (their own TTLs are at most an hour or a day): retention counts from the end. */
export const DEFAULT_RETENTION_MS = 30 * 86_400_000;
/** Shorter than this, the outbox's hourly sending caps (counted over its rows of the last hour) would lose rows they count. */
export const MIN_RETENTION_MS = 86_400_000;
/** Rows deleted per unit of work. */
const PURGE_BATCH = 500;

export interface HousekeepingOptions {
  /** How long finished approvals, enrolment links and outbox rows are kept after their end (default 30 days, at least 1 day). */
  retentionMs?: number;
}

/** One kind of row the housekeeping deletes: those that ended before `before`, at most `limit` per call. */
export interface PurgeStep {
  /** The name in the sweep's result and in the logs. */
  name: string;
  /** How long after its end a row is kept. */
  retentionMs: number;
  purge(tx: StoreTx, before: number, limit: number): Promise<number>;
}

/**
 * The purge steps, in order. A table added by another part (e.g. idempotency records, kept 24 h)
 * adds its step here: one line, one store method.
 */
export function purgeSteps({ retentionMs = DEFAULT_RETENTION_MS }: HousekeepingOptions = {}): PurgeStep[] {
  if (!(Number.isSafeInteger(retentionMs) && retentionMs >= MIN_RETENTION_MS))
    throw new CustosError('invalid_input', `housekeeping retention: expected at least ${MIN_RETENTION_MS / 86_400_000} day`, {
      details: { field: 'housekeeping-retention-days' },
    });
  return [
    // rejected, expired, cancelled and consumed approvals whose expiry is older than the retention
    // (pending and approved ones are the expiry sweep's: it marks them expired first)
    { name: 'approvals', retentionMs, purge: (tx, before, limit) => tx.deleteFinishedApprovalsBefore(before, limit) },
    // enrolment links of any state whose expiry is older than the retention (a pending one is dead past its expiry)
    { name: 'enrollmentLinks', retentionMs, purge: (tx, before, limit) => tx.deleteEnrollmentLinksBefore(before, limit) },
    // sent, failed and expired messages (never a queued one) created and expired before the retention
    { name: 'outbox', retentionMs, purge: (tx, before, limit) => tx.deleteFinishedOutboxBefore(before, limit) },
    // idempotency records past their 24 h (docs/idempotency.md), whatever the retention: a stored result is
    // never answered after 24 h (kernel/idempotency.ts), so keeping it longer would only keep a sealed response
    { name: 'idempotency', retentionMs: IDEMPOTENCY_TTL_MS, purge: (tx, before, limit) => tx.deleteIdempotencyBefore(before + 1, limit) },
  ];
}

/** Runs every purge step to its end; returns how many rows each deleted. Needs the kernel unsealed (as every entry point). */
export async function runHousekeeping(ctx: KernelContext, steps: readonly PurgeStep[]): Promise<Record<string, number>> {
  ctx.requireBarrier();
  const deleted: Record<string, number> = {};
  for (const step of steps) {
    const before = ctx.now() - step.retentionMs;
    let total = 0;
    for (;;) {
      const n = await ctx.transact((tx) => step.purge(tx, before, PURGE_BATCH));
      total += n;
      if (n < PURGE_BATCH) break;
    }
    deleted[step.name] = total;
  }
  return deleted;
}
