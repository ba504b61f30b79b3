import { createHash } from 'node:crypto';
import type { AuditRecord } from '../audit/types.js';
import { CustosError } from '../errors.js';
import type { Store, StoreTx } from '../store/types.js';
import { auditRecord } from './auditRecord.js';

/**
 * Rows bound to the audit log (issue 13 review: row rollback by a database writer; docs/threat-model.md).
 *
 * Every protected row carries a MAC under the barrier, so an edited or forged row is refused. A row
 * put back as it was EARLIER, with the MAC it had then, still verifies. So each write of such a row
 * also appends, in the same unit, an allowed audit record `row.anchor` that says what the row now is
 * (its `state`), and the use of the row compares the row with the NEWEST anchor of its subject:
 *
 *   subject                 state anchored                     checked when the row is used
 *   `wallet.freeze` name    frozenAt (number | null)           sign path; the apply loop of pending changes
 *   `wallet.policy` name    the override row's MAC (| null)    every read of the override in a unit (sign, approvals)
 *   `change` id             its terminal state (applied,       confirm (page) and the apply loop
 *                           cancelled, expired)
 *   `setting` name          the row's version                  every read of the admin set / deployment settings
 *   `apikey` id             revokedAt; at the creation of a    API key authentication (and every
 *                           key with limits: `limits:{…}`      compatibility session's request)
 *                           (apiKeyLimits.ts)
 *
 * The anchor's `op_hash` is the subject's hash (anchorSubject): one partial index (migration 17,
 * `audit_log_row_anchor` on (op_hash, seq) WHERE action = 'row.anchor') answers "the newest anchor of
 * this subject" in O(log n), never by scanning a wallet's history. Records are hash-chained: a writer
 * who wants a consistent rollback must now roll the log back too, which only `custos audit verify`
 * against checkpoints kept outside the database (docs/audit.md) shows.
 *
 * A row written before migration 17 has no anchor and is taken as it is (there is nothing to compare
 * it with) until its next write anchors it.
 */

export const ROW_ANCHOR_ACTION = 'row.anchor';
const SUBJECT_LABEL = 'custos.row-anchor.v1\0';

export type AnchoredRow = 'wallet.freeze' | 'wallet.policy' | 'change' | 'setting' | 'apikey';
export type AnchorState = string | number | null;

/** The subject's hash (64 hex digits): the anchor record's opHash, what the index is looked up by. */
export function anchorSubject(row: AnchoredRow, key: string): string {
  return createHash('sha256').update(`${SUBJECT_LABEL}${row}\0${key}`, 'utf8').digest('hex');
}

/**
 * Appends the anchor of a row just written, in the writer's unit (the caller's record of the decision
 * is appended as well; this one only says what the row now is). `walletName` puts a wallet's anchors on
 * its own history (null for signer-wide rows).
 */
export async function anchorRow(
  tx: Pick<StoreTx, 'appendAudit'>,
  anchor: { row: AnchoredRow; key: string; state: AnchorState; walletName: string | null; ts: number },
): Promise<void> {
  await tx.appendAudit(
    auditRecord(
      {
        ts: anchor.ts,
        appId: null,
        walletName: anchor.walletName,
        action: ROW_ANCHOR_ACTION,
        opHash: anchorSubject(anchor.row, anchor.key),
        detail: { row: anchor.row, key: anchor.key, state: anchor.state },
      },
      { allowed: {} },
    ),
  );
}

/** Where anchors are read: a unit (the row's lock held) or the store (an unlocked read). */
export type AnchorSource = Pick<StoreTx, 'latestRowAnchor'> | Pick<Store, 'readRowAnchor'>;

/** The newest anchor of a subject, or undefined when the log has none. A record that does not say what its index entry says is refused. */
export async function latestAnchor(source: AnchorSource, row: AnchoredRow, key: string): Promise<{ state: AnchorState; seq: number } | undefined> {
  const subject = anchorSubject(row, key);
  const record: AuditRecord | undefined = 'latestRowAnchor' in source ? await source.latestRowAnchor(subject) : await source.readRowAnchor(subject);
  if (record === undefined) return undefined;
  const detail = record.detail as Record<string, unknown>;
  const state = detail.state;
  // The record's hashed fields must name this subject (a column edited to point elsewhere is refused).
  if (
    record.action !== ROW_ANCHOR_ACTION ||
    record.decision !== 'allowed' ||
    record.opHash !== subject ||
    detail.row !== row ||
    detail.key !== key ||
    !(state === null || typeof state === 'string' || typeof state === 'number')
  )
    throw rolledBack(row, record.seq);
  return { state, seq: record.seq };
}

/** The refusal of a row that is not what the log's newest anchor says: `record_unreadable` (a rollback, or a log out of order). */
export function rolledBack(row: AnchoredRow, seq: number): CustosError {
  return new CustosError(
    'record_unreadable',
    `the ${row} row is not what the audit log last recorded of it (seq ${seq}): a row put back from earlier? refusing to act`,
    {
      details: { row, anchorSeq: seq },
    },
  );
}

/**
 * Whether the row's current state is the one the log last anchored: undefined when it is (or when the
 * log has no anchor of it), else the refusal. `compare` decides what "the same" is (default: equal).
 */
export async function anchorRefusal(
  source: AnchorSource,
  row: AnchoredRow,
  key: string,
  current: AnchorState,
  compare: (current: AnchorState, anchored: AnchorState) => boolean = (a, b) => a === b,
): Promise<CustosError | undefined> {
  const anchor = await latestAnchor(source, row, key);
  if (anchor === undefined || compare(current, anchor.state)) return undefined;
  return rolledBack(row, anchor.seq);
}

/** Throws the refusal of anchorRefusal (for readers that throw, e.g. the settings). */
export async function assertAnchored(
  source: AnchorSource,
  row: AnchoredRow,
  key: string,
  current: AnchorState,
  compare?: (current: AnchorState, anchored: AnchorState) => boolean,
): Promise<void> {
  const refusal = await anchorRefusal(source, row, key, current, compare);
  if (refusal !== undefined) throw refusal;
}

/** Terminal states of a pending change: once the log says one, a row in any other state is a rollback. */
export const TERMINAL_CHANGE_STATES: readonly string[] = ['applied', 'cancelled', 'expired'];
