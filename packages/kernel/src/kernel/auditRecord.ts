import type { AuditEntry } from '../audit/types.js';
import { CustosError } from '../errors.js';

/** An audit record before its decision: who, which wallet, what (action, opHash, detail), when. */
export type AuditBase = Omit<AuditEntry, 'decision' | 'reason'>;

/**
 * The one function that builds a decision's audit record, allowed or denied alike: an allowed
 * record adds the consent's evidence (which factor, which step) to the detail; a denied one names
 * the refusal's code as its reason, and the factor that refused when one did.
 */
export function auditRecord(base: AuditBase, decision: { allowed: Record<string, unknown> } | { denied: CustosError; factor?: string }): AuditEntry {
  if ('allowed' in decision) {
    // Evidence adds to the detail; it never replaces what the request recorded (key index, summary).
    const clash = Object.keys(decision.allowed).filter((key) => Object.hasOwn(base.detail, key));
    if (clash.length > 0) throw new CustosError('internal', `consent evidence would overwrite the audit detail's ${clash.join(', ')}`);
    return { ...base, detail: { ...base.detail, ...decision.allowed }, decision: 'allowed', reason: null };
  }
  const detail = decision.factor === undefined ? base.detail : { ...base.detail, factor: decision.factor };
  return { ...base, detail, decision: 'denied', reason: decision.denied.code };
}
