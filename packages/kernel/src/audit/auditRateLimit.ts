import { CustosError, invalidInput } from '../errors.js';
import type { AuditEntry } from './types.js';

/**
 * The per-tenant budget of audit bytes: a token bucket of bytes. The defaults are far above what a
 * real backend writes (a signature's record is about 1 KB, at most ~5 KB with its detail bounded):
 * 256 KiB/s sustained (~250 signatures a second, every second) after a burst of 16 MiB (~16,000
 * signatures at once). What they bound is an attack: 63 KB denied requests in a loop.
 */
export const DEFAULT_AUDIT_BYTES_PER_SECOND = 256 * 1024;
export const DEFAULT_AUDIT_BURST_BYTES = 16 * 1024 * 1024;

export interface AuditBudget {
  /** Bytes of audit records a tenant may add per second, sustained. */
  bytesPerSecond: number;
  /** Bytes a tenant may add at once (the bucket's size; it starts full). */
  burstBytes: number;
}

/** A tenant's bucket: its tokens (bytes; negative while in debt) at `atMs`. */
export interface TokenBucket {
  tokens: number;
  atMs: number;
}

/** The refusals of one API key in one minute, written as one `audit.rate_limited` record. */
export interface RateLimitedTally {
  apiKeyId: string;
  budgetKey: string;
  count: number;
  firstTs: number;
  lastTs: number;
}

/** Checks a budget's numbers (KernelOptions, `custos serve --audit-*` flags). */
export function assertAuditBudget(budget: AuditBudget): AuditBudget {
  if (!Number.isSafeInteger(budget.bytesPerSecond) || budget.bytesPerSecond < 1)
    throw invalidInput('auditBytesPerSecond', 'a positive integer', String(budget.bytesPerSecond));
  if (!Number.isSafeInteger(budget.burstBytes) || budget.burstBytes < 1) throw invalidInput('auditBurstBytes', 'a positive integer', String(budget.burstBytes));
  return budget;
}

/** The bucket at `nowMs`: refilled at the budget's rate, never above the burst (a full bucket for a new tenant). */
export function refillBucket(bucket: TokenBucket | undefined, nowMs: number, budget: AuditBudget): TokenBucket {
  if (bucket === undefined) return { tokens: budget.burstBytes, atMs: nowMs };
  const elapsedMs = Math.max(0, nowMs - bucket.atMs);
  return { tokens: Math.min(budget.burstBytes, bucket.tokens + (elapsedMs * budget.bytesPerSecond) / 1000), atMs: Math.max(nowMs, bucket.atMs) };
}

/**
 * Whether a request may write audit: yes while the tenant's bucket holds any tokens. Its records
 * are charged after they are written (their size is known then), so a bucket may go into debt by
 * what the requests in flight write; the next request waits until the debt is paid back. Returns
 * null, or the seconds to wait (at least 1).
 */
export function auditRetryAfterSeconds(bucket: TokenBucket, budget: AuditBudget): number | null {
  if (bucket.tokens > 0) return null;
  return Math.max(1, Math.ceil((1 - bucket.tokens) / budget.bytesPerSecond));
}

/**
 * The kernel's audit budget state (in memory, per process): a bucket per tenant, and per API key
 * the refusals of the current minute, which are recorded as one record rather than one each. Time
 * is passed in; it owns no timer: the kernel takes the tallies of past minutes when a request
 * comes in, and the server flushes them periodically and at shutdown.
 */
export class AuditRateLimiter {
  readonly #budget: AuditBudget;
  readonly #buckets = new Map<string, TokenBucket>();
  /** Tenant of each API key seen, for charging its records (keys are few: bounded by the store). */
  readonly #budgetKeyOf = new Map<string, string>();
  readonly #tallies = new Map<string, RateLimitedTally>();

  constructor(budget: AuditBudget) {
    this.#budget = assertAuditBudget(budget);
  }

  /**
   * Admits an authenticated caller's request, or refuses it `audit_rate_limited` (429, Retry-After)
   * and counts the refusal in its API key's tally of this minute (not audited one by one).
   */
  admit(apiKeyId: string, budgetKey: string, nowMs: number): void {
    this.#budgetKeyOf.set(apiKeyId, budgetKey);
    const bucket = refillBucket(this.#buckets.get(budgetKey), nowMs, this.#budget);
    this.#buckets.set(budgetKey, bucket);
    const retryAfterSeconds = auditRetryAfterSeconds(bucket, this.#budget);
    if (retryAfterSeconds === null) return;
    const tally = this.#tallies.get(apiKeyId);
    if (tally === undefined) this.#tallies.set(apiKeyId, { apiKeyId, budgetKey, count: 1, firstTs: nowMs, lastTs: nowMs });
    else {
      tally.count += 1;
      tally.lastTs = nowMs;
    }
    throw new CustosError('audit_rate_limited', `the tenant's audit budget is spent: retry in ${retryAfterSeconds} s`, {
      details: { retryAfterSeconds },
    });
  }

  /** Charges the bytes of a record written for an API key to its tenant's bucket (unknown keys: operator records, uncharged). */
  charge(apiKeyId: string | null, bytes: number, nowMs: number): void {
    if (apiKeyId === null) return;
    const budgetKey = this.#budgetKeyOf.get(apiKeyId);
    if (budgetKey === undefined) return;
    const bucket = refillBucket(this.#buckets.get(budgetKey), nowMs, this.#budget);
    this.#buckets.set(budgetKey, { tokens: bucket.tokens - bytes, atMs: bucket.atMs });
  }

  /** Whether a tally of a minute before `nowMs`'s is waiting to be recorded (cheap: checked on every request). */
  hasDue(nowMs: number): boolean {
    for (const tally of this.#tallies.values()) if (minuteOf(tally.firstTs) < minuteOf(nowMs)) return true;
    return false;
  }

  /** Removes and returns the tallies of minutes before `nowMs`'s, or all of them (`all`: at shutdown). */
  takeDue(nowMs: number, { all = false }: { all?: boolean } = {}): RateLimitedTally[] {
    const due: RateLimitedTally[] = [];
    for (const [apiKeyId, tally] of this.#tallies) {
      if (!all && minuteOf(tally.firstTs) >= minuteOf(nowMs)) continue;
      due.push(tally);
      this.#tallies.delete(apiKeyId);
    }
    return due;
  }

  /** Puts back tallies whose record could not be written (the store failed): they are retried at the next flush. */
  restore(tallies: RateLimitedTally[]): void {
    for (const tally of tallies) {
      const current = this.#tallies.get(tally.apiKeyId);
      if (current === undefined) this.#tallies.set(tally.apiKeyId, tally);
      else this.#tallies.set(tally.apiKeyId, { ...tally, count: tally.count + current.count, lastTs: current.lastTs });
    }
  }
}

/** The one record of an API key's refusals in one minute: `audit.rate_limited`, denied, with their count and span. */
export function rateLimitedEntry({ apiKeyId, count, firstTs, lastTs }: RateLimitedTally, ts: number): AuditEntry {
  return {
    ts,
    appId: apiKeyId,
    walletName: null,
    action: 'audit.rate_limited',
    opHash: null,
    decision: 'denied',
    reason: 'audit_rate_limited',
    detail: { count, firstTs, lastTs },
  };
}

function minuteOf(ms: number): number {
  return Math.floor(ms / 60_000);
}
