import { createHash } from 'node:crypto';
import { canonicalJson } from '../util/canonicalJson.js';

/**
 * The opHash binds a decision to the exact operation: which wallet, which key, what is signed.
 * opHash = SHA-256("custos.op.v1\0" ‖ canonicalJson(operation)), hex. Consent, audit records and
 * (later) approvals refer to it.
 */
export function computeOpHash(operation: Record<string, unknown>): string {
  return createHash('sha256').update('custos.op.v1\0').update(canonicalJson(operation)).digest('hex');
}
