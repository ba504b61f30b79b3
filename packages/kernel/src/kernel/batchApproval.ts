import { createHash } from 'node:crypto';
import { type BatchItemSummary, type BatchSummary, summarizeBatch } from '../chain/summarizeBatch.js';
import { CustosError, invalidInput, isCustosError } from '../errors.js';
import { assertKeyIndex } from '../util/assertKeyIndex.js';
import { canonicalJson } from '../util/canonicalJson.js';
import type { KernelContext } from './context.js';
import { type OperationType, prepareSign } from './sign.js';

/**
 * Batch approvals: one approval for up to 100 operations of one wallet (an exchange's payouts). Its
 * opHash = SHA-256(utf8("custos.batch.v1\0") ‖ each operation's opHash, 32 bytes, in order), each
 * operation's opHash being the one its own sign request recomputes (prepareSign). Once approved,
 * each operation is signed once on its own route with the approval's id, matched by its opHash and
 * key index; the approval is consumed when every one is signed.
 *
 * The batch's state is kept in the approval row (`ApprovalRecord.batch`, under the row's MAC): the
 * items (key index, type, opHash) and, per item, the seq of the audit record of its first signature
 * (null until signed) — written in the sign unit, on the row locked for update, with that record.
 */

export const MAX_BATCH_ITEMS = 100;
const BATCH_ITEM_TYPES = ['transaction', 'authorization'] as const;
type BatchItemType = (typeof BATCH_ITEM_TYPES)[number];
const BATCH_LABEL = 'custos.batch.v1\0';

/** One operation of a batch as the approval row keeps it. */
export interface BatchItem {
  keyIndex: number;
  operationType: BatchItemType;
  /** 64 lowercase hex digits. */
  opHash: string;
}

/** The batch of an approval row: its items and, per item, the seq of its first signature's audit record. */
export interface BatchState {
  items: BatchItem[];
  signedSeqs: (number | null)[];
}

/** SHA-256(utf8("custos.batch.v1\0") ‖ opHash₀ ‖ … ‖ opHashₙ₋₁), hex: a batch approval's opHash. */
export function computeBatchOpHash(opHashes: readonly string[]): string {
  const hash = createHash('sha256').update(BATCH_LABEL, 'utf8');
  for (const opHash of opHashes) hash.update(Buffer.from(opHash, 'hex'));
  return hash.digest('hex');
}

/** A field error of an item's codec, named under the item (`batch[3].transaction.to`). */
function underItem(index: number, error: unknown): unknown {
  if (!isCustosError(error) || error.code !== 'invalid_input' || typeof error.details.field !== 'string') return error;
  const field = `batch[${index}].${error.details.field}`;
  return new CustosError('invalid_input', `batch[${index}].${error.message}`, { details: { ...error.details, field } });
}

/**
 * Parses a batch (`operation.batch`): 1 to 100 items, each `{ keyIndex, transaction | authorization }`,
 * each parsed by its chain codec as its sign route would (prepareSign). Errors name the field under
 * `batch[i]` (createApproval puts `operation.` before it). The work is bounded by the item count and
 * each codec's own limits.
 */
export function prepareBatch(
  ctx: KernelContext,
  walletName: string,
  input: unknown,
): { opHash: string; summary: BatchSummary; summaryText: string; state: BatchState } {
  if (!Array.isArray(input)) throw invalidInput('batch', `an array of 1 to ${MAX_BATCH_ITEMS} operations`, input === null ? 'null' : typeof input);
  if (input.length === 0 || input.length > MAX_BATCH_ITEMS) throw invalidInput('batch', `1 to ${MAX_BATCH_ITEMS} operations`, `${input.length}`);
  const items: BatchItem[] = [];
  const summaries: BatchItemSummary[] = [];
  input.forEach((entry: unknown, i) => {
    const at = `batch[${i}]`;
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry))
      throw invalidInput(at, '{ keyIndex, transaction | authorization }', entry === null ? 'null' : Array.isArray(entry) ? 'array' : typeof entry);
    const { keyIndex: rawKeyIndex, ...rest } = entry as Record<string, unknown>;
    const keyIndex = assertKeyIndex(rawKeyIndex, `${at}.keyIndex`);
    const keys = Object.keys(rest);
    const type = keys[0];
    if (keys.length !== 1 || type === undefined || !(BATCH_ITEM_TYPES as readonly string[]).includes(type))
      throw invalidInput(at, 'keyIndex and exactly one of transaction, authorization', keys.length === 0 ? 'none' : keys.slice(0, 4).join(', '));
    let op: ReturnType<typeof prepareSign>;
    try {
      op = prepareSign(ctx, type as OperationType, walletName, keyIndex, rest[type]);
    } catch (error) {
      throw underItem(i, error);
    }
    // The same operation twice would be one signature: the second could never be signed apart.
    const same = items.findIndex((item) => item.opHash === op.opHash);
    if (same !== -1) throw invalidInput(at, `an operation not already in the batch (it is batch[${same}] again)`);
    items.push({ keyIndex, operationType: type as BatchItemType, opHash: op.opHash });
    summaries.push({ keyIndex, summary: op.summary, summaryText: op.summaryText });
  });
  const { summary, summaryText } = summarizeBatch(summaries);
  return { opHash: computeBatchOpHash(items.map((item) => item.opHash)), summary, summaryText, state: { items, signedSeqs: items.map(() => null) } };
}

export function encodeBatch(state: BatchState): string {
  return canonicalJson(state);
}

/**
 * The batch state of a row whose MAC held (the kernel wrote it): read strictly all the same, and
 * checked against the approval's opHash, so that a row that does not hold together is refused, not
 * guessed at.
 */
export function decodeBatch(text: string, opHash: string): BatchState {
  const unreadable = () =>
    new CustosError('record_unreadable', 'the approval’s batch does not hold together (it was changed): refusing to act', { details: { field: 'id' } });
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw unreadable();
  }
  if (typeof value !== 'object' || value === null) throw unreadable();
  const { items, signedSeqs } = value as Record<string, unknown>;
  if (!Array.isArray(items) || !Array.isArray(signedSeqs) || items.length !== signedSeqs.length || items.length === 0) throw unreadable();
  for (const item of items as unknown[]) {
    const i = item as Record<string, unknown> | null;
    if (
      typeof i !== 'object' ||
      i === null ||
      typeof i.keyIndex !== 'number' ||
      typeof i.opHash !== 'string' ||
      !/^[0-9a-f]{64}$/.test(i.opHash) ||
      !(BATCH_ITEM_TYPES as readonly unknown[]).includes(i.operationType)
    )
      throw unreadable();
  }
  if (signedSeqs.some((seq) => seq !== null && !Number.isSafeInteger(seq))) throw unreadable();
  const state = { items, signedSeqs } as BatchState;
  if (computeBatchOpHash(state.items.map((item) => item.opHash)) !== opHash) throw unreadable();
  return state;
}

/** The batch as it was while pending (no item signed): what a cancelled or expired row's pending MAC covers. */
export function unsignedBatch(text: string): string {
  let items: unknown;
  try {
    items = (JSON.parse(text) as { items?: unknown }).items;
  } catch {
    return text; // not the kernel's: its MAC check fails on the text as it is
  }
  if (!Array.isArray(items)) return text;
  return encodeBatch({ items: items as BatchItem[], signedSeqs: items.map(() => null) });
}

/** The item of the batch that a sign request is: same opHash and key index; undefined when it is none of them. */
export function findBatchItem(state: BatchState, opHash: string, keyIndex: number): number | undefined {
  const index = state.items.findIndex((item) => item.opHash === opHash && item.keyIndex === keyIndex);
  return index === -1 ? undefined : index;
}

/** The batch as the API shows it: each item with whether it is signed (and the seq of its signature's audit record). */
export interface BatchView {
  items: { keyIndex: number; operationType: BatchItemType; opHash: string; signed: boolean; auditSeq: number | null }[];
  signed: number;
}

export function batchView(state: BatchState): BatchView {
  return {
    items: state.items.map((item, i) => {
      const seq = state.signedSeqs[i] ?? null;
      return { keyIndex: item.keyIndex, operationType: item.operationType, opHash: item.opHash, signed: seq !== null, auditSeq: seq };
    }),
    signed: state.signedSeqs.filter((seq) => seq !== null).length,
  };
}
