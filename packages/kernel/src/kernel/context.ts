import type { Barrier } from '../barrier/Barrier.js';
import type { Factor } from '../consent/Factor.js';
import { CustosError, isCustosError } from '../errors.js';
import type { Store, StoreTx } from '../store/types.js';
import { type AuditBase, auditRecord } from './auditRecord.js';
import type { KeyLocks } from './idempotency.js';
import type { TimelockSettings } from './pendingChanges.js';
import type { PolicySettings } from './policy.js';

/**
 * What the kernel's modules (sign path, enrolment, wallets, sessions, unseal) get from the Kernel
 * object: the store and how to run a unit of work on it, the clock and randomness, the barrier
 * while unsealed, the registered factors and the policy settings. The Kernel keeps the state that
 * lives across calls (the barrier, the seal epoch); the modules are functions of this context.
 */
export interface KernelContext {
  readonly store: Store;
  now(): number;
  random(n: number): Uint8Array;
  /** The barrier, or `sealed`: every entry point asks for it first. */
  requireBarrier(): Barrier;
  /** The signer's id (a UUID; known whenever the barrier is), or `sealed`. */
  signerId(): string;
  /**
   * Runs a unit of work; any failure that is not a kernel decision becomes store_unavailable. The
   * bytes of each audit record it appends are charged to the caller's tenant's audit budget.
   */
  transact<T>(work: (tx: StoreTx) => Promise<T>): Promise<T>;
  /** A read outside a unit; its failures become store_unavailable. */
  readStore<T>(read: () => Promise<T>): Promise<T>;
  /** The factors consent can be given with, in the order the consent module considers them. */
  readonly factors: readonly Factor[];
  readonly policy: PolicySettings;
  /** Timelocked changes: the deployment's delay and the other parts' hooks (pendingChanges.ts). */
  readonly timelock: TimelockSettings;
  /** Pending approvals allowed at once (approvals.ts). */
  readonly approvalLimits: { perWallet: number; perTenant: number };
  /** Idempotency keys in this process: the work of one key runs after the earlier work of that key (idempotency.ts). */
  readonly idempotencyLocks: KeyLocks;
  /** Tells watchers (long polls) that an approval's state changed; called after the unit committed. */
  approvalChanged(id: string): void;
  /** Tells the delivery sender that a message was queued; called after the unit committed (absent: the sender polls). */
  deliveryQueued?(): void;
  /**
   * Whether the sealed root this kernel opened carries the quorum mark (issue 13; sealedRootQuorum):
   * then a missing admin-set row is record_unreadable, never "no quorum". Absent: false.
   */
  quorumSealed?(): boolean;
  /** Where passkeys are valid (the public URL's host and origin): admin passkeys verify against it (quorum/adminPasskeys.ts). Absent: no passkey counts. */
  readonly passkeys?: { rpId: string; origin: string; rpName: string };
}

/** A unit's decision, returned out of the unit so that a denial commits its audit record before it is thrown. */
export type Outcome<T> = { ok: true; value: T } | { ok: false; error: CustosError };

/** Appends the denial's audit record in the unit and returns the refusal (thrown by the caller after the commit). */
export async function deny<T>(tx: StoreTx, base: AuditBase, error: CustosError, factor?: string): Promise<Outcome<T>> {
  await tx.appendAudit(auditRecord(base, factor === undefined ? { denied: error } : { denied: error, factor }));
  return { ok: false, error };
}

/** The value of a committed unit, or its refusal thrown. */
export function settle<T>(outcome: Outcome<T>): T {
  if (!outcome.ok) throw outcome.error;
  return outcome.value;
}

/** A CustosError as is; anything else as `store_unavailable` (a store's failure) or `internal` (a coding failure). */
export function asCustosError(error: unknown, fallback: 'store_unavailable' | 'internal' = 'internal'): CustosError {
  if (isCustosError(error)) return error;
  return new CustosError(fallback, fallback === 'store_unavailable' ? 'the store failed; nothing was signed' : 'internal failure', { cause: error });
}
