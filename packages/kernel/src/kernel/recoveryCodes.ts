import { timingSafeEqual } from 'node:crypto';
import type { Barrier } from '../barrier/Barrier.js';
import { CustosError } from '../errors.js';
import type { RecoveryCodesRecord, StoreTx } from '../store/types.js';
import { type AuditBase, auditRecord } from './auditRecord.js';
import { macRow, rowIntact } from './capabilityRecords.js';
import { deny, type Outcome } from './context.js';

/**
 * A wallet's recovery codes (issue 13 point 3, docs/freeze.md): 10 single-use codes shown once on
 * the enrolment page when the wallet's first factor is enrolled there. Stored only as keyed tags (a
 * MAC under the barrier of the wallet name and the code), in one row MAC'd under the barrier with
 * each code's use and a throttle of their own (5 wrong codes per 15 minutes), so that a factor's
 * throttle lock — which a backend can provoke — never blocks them, and wrong codes never lock a factor.
 *
 * What a code does: it counts as "any current factor" of the owner for cancelling a pending
 * timelocked change (issue 13 point 2: `useRecoveryCode` is the timelock's verify-and-consume). It
 * does not approve a signature, unfreeze a wallet or add a factor: a code written on paper proves
 * that the person once saw the enrolment page, not that they see this operation.
 */

const CODE_TAG_LABEL = 'custos.recovery-code.v1';
const ROW_MAC_LABEL = 'custos.recovery-codes.v1';
/** Codes per set. */
export const RECOVERY_CODE_COUNT = 10;
/** Wrong codes allowed per window, and the window (ms). */
export const RECOVERY_THROTTLE = { maxFailures: 5, windowMs: 15 * 60_000 } as const;
/** Crockford's base32 alphabet (no i, l, o, u): 10 characters carry 50 bits. */
const ALPHABET = '0123456789abcdefghjkmnpqrstvwxyz';
const CODE_LENGTH = 10;
const encoder = new TextEncoder();

type StoredCode = { tag: string; usedAt: number | null };

/** A code as typed: case, spaces and dashes ignored, Crockford's look-alikes (i, l → 1; o → 0) read as meant. */
function normalize(code: unknown): string | undefined {
  if (typeof code !== 'string' || code.length > 64) return undefined;
  const text = code.toLowerCase().replace(/[\s-]/g, '').replace(/[il]/g, '1').replace(/o/g, '0');
  if (text.length !== CODE_LENGTH) return undefined;
  for (const c of text) if (!ALPHABET.includes(c)) return undefined;
  return text;
}

function tagOf(barrier: Barrier, walletName: string, normalized: string): string {
  return barrier.macRecord(CODE_TAG_LABEL, encoder.encode(`${walletName}\0${normalized}`));
}

function sameTag(a: string, b: string): boolean {
  const x = Buffer.from(a, 'utf8');
  const y = Buffer.from(b, 'utf8');
  return x.length === y.length && timingSafeEqual(x, y);
}

function parseCodes(text: string): StoredCode[] {
  const parsed = JSON.parse(text) as unknown;
  if (!Array.isArray(parsed)) throw new TypeError('recovery codes: not a list');
  return parsed.map((c) => {
    const { tag, usedAt } = c as { tag: unknown; usedAt: unknown };
    if (typeof tag !== 'string' || (usedAt !== null && typeof usedAt !== 'number')) throw new TypeError('recovery codes: bad entry');
    return { tag, usedAt };
  });
}

function withMac(barrier: Barrier, record: Omit<RecoveryCodesRecord, 'mac'>): RecoveryCodesRecord {
  const row: RecoveryCodesRecord = { ...record, mac: '' };
  row.mac = macRow(barrier, ROW_MAC_LABEL, row);
  return row;
}

/**
 * Issues a new set of recovery codes for a wallet in the caller's unit (replacing any earlier set:
 * its codes stop working) and returns them, formatted `xxxxx-xxxxx`, to be shown once. The caller
 * audits (the enrolment's record says that codes were issued; never the codes).
 */
export async function issueRecoveryCodes(
  tx: StoreTx,
  barrier: Barrier,
  random: (n: number) => Uint8Array,
  { walletName, now }: { walletName: string; now: number },
): Promise<string[]> {
  const codes: string[] = [];
  const bytes = random(RECOVERY_CODE_COUNT * CODE_LENGTH);
  for (let i = 0; i < RECOVERY_CODE_COUNT; i++) {
    let text = '';
    // 256 is a multiple of 32: each byte's low 5 bits are uniform.
    for (let j = 0; j < CODE_LENGTH; j++) text += ALPHABET[(bytes[i * CODE_LENGTH + j] as number) & 31];
    codes.push(text);
  }
  bytes.fill(0);
  const stored: StoredCode[] = codes.map((code) => ({ tag: tagOf(barrier, walletName, code), usedAt: null }));
  await tx.putRecoveryCodes(withMac(barrier, { walletName, codes: JSON.stringify(stored), failures: 0, windowStart: now, createdAt: now }));
  return codes.map((c) => `${c.slice(0, 5)}-${c.slice(5)}`);
}

function invalid(): CustosError {
  return new CustosError('recovery_code_invalid', 'that is not one of the wallet’s unused recovery codes', { details: { field: 'recoveryCode' } });
}

/**
 * Verifies and consumes one recovery code of `walletName` in the caller's unit — charged before it
 * is checked (the attempt counts on the codes' own throttle, and is given back when the code is
 * right), single use (a used code is refused like a wrong one) — and appends the audit record
 * (`recovery_code.use`, `purpose` in its detail; never the code). Returns the refusal (audited)
 * rather than throwing it, so that the caller's unit commits the charge: `recovery_code_throttled`
 * (with retryAfterSeconds) past 5 wrong codes in 15 minutes, `recovery_code_invalid`, or
 * `record_unreadable` for a row that fails its MAC.
 */
export async function useRecoveryCode(
  tx: StoreTx,
  barrier: Barrier,
  {
    walletName,
    code,
    now,
    appId = null,
    purpose,
    sharedThrottle = true,
  }: {
    walletName: string;
    code: unknown;
    now: number;
    appId?: string | null;
    purpose: string;
    /**
     * false: the caller counts this attempt on a budget of its own that the backend cannot reach (a
     * cancel from an owner device, kernel/ownerDevice.ts) — the wallet's shared throttle neither refuses
     * nor counts it.
     */
    sharedThrottle?: boolean;
  },
): Promise<Outcome<{ remaining: number; auditSeq: number }>> {
  const base: AuditBase = { ts: now, appId, walletName, action: 'recovery_code.use', opHash: null, detail: { purpose } };
  const row = await tx.getRecoveryCodesForUpdate(walletName);
  if (row === undefined) return deny(tx, base, invalid());
  let codes: StoredCode[];
  try {
    if (!rowIntact(barrier, ROW_MAC_LABEL, row, undefined)) throw new TypeError('MAC');
    codes = parseCodes(row.codes);
  } catch {
    return deny(
      tx,
      base,
      new CustosError('record_unreadable', 'the recovery codes record does not match its MAC: refusing to act', { details: { field: 'walletName' } }),
    );
  }
  // The throttle: a new window once the last one has passed; at the limit, nothing is checked.
  const fresh = now >= row.windowStart + RECOVERY_THROTTLE.windowMs;
  const windowStart = fresh ? now : row.windowStart;
  const failures = fresh ? 0 : row.failures;
  if (sharedThrottle && failures >= RECOVERY_THROTTLE.maxFailures) {
    const retryAfterSeconds = Math.max(1, Math.ceil((windowStart + RECOVERY_THROTTLE.windowMs - now) / 1000));
    return deny(
      tx,
      base,
      new CustosError('recovery_code_throttled', 'too many wrong recovery codes for this wallet: try again later', {
        details: { field: 'recoveryCode', retryAfterSeconds },
      }),
    );
  }
  const normalized = normalize(code);
  const tag = normalized === undefined ? undefined : tagOf(barrier, walletName, normalized);
  // Every unused code's tag compared in constant time.
  let index = -1;
  if (tag !== undefined)
    codes.forEach((c, i) => {
      if (c.usedAt === null && sameTag(c.tag, tag) && index < 0) index = i;
    });
  if (index < 0) {
    if (!sharedThrottle) return deny(tx, { ...base, detail: { ...base.detail, throttle: 'own' } }, invalid());
    await tx.putRecoveryCodes(withMac(barrier, { ...row, failures: failures + 1, windowStart }));
    return deny(tx, { ...base, detail: { ...base.detail, failures: failures + 1 } }, invalid());
  }
  const used = codes.map((c, i) => (i === index ? { tag: c.tag, usedAt: now } : c));
  await tx.putRecoveryCodes(withMac(barrier, { ...row, codes: JSON.stringify(used), failures, windowStart }));
  const remaining = used.filter((c) => c.usedAt === null).length;
  const record = await tx.appendAudit(auditRecord({ ...base, detail: { ...base.detail, remaining } }, { allowed: {} }));
  return { ok: true, value: { remaining, auditSeq: record.seq } };
}

/** How many unused recovery codes a wallet has (0 without a set); a row failing its MAC is record_unreadable. */
export async function countRecoveryCodes(tx: StoreTx, barrier: Barrier, walletName: string): Promise<number> {
  const row = await tx.getRecoveryCodesForUpdate(walletName);
  if (row === undefined) return 0;
  if (!rowIntact(barrier, ROW_MAC_LABEL, row, undefined))
    throw new CustosError('record_unreadable', 'the recovery codes record does not match its MAC: refusing to act', { details: { field: 'walletName' } });
  return parseCodes(row.codes).filter((c) => c.usedAt === null).length;
}
