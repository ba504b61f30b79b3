import { createHash, timingSafeEqual } from 'node:crypto';
import { hexToBytes } from '@noble/hashes/utils.js';
import type { Barrier } from '../barrier/Barrier.js';
import { CustosError } from '../errors.js';
import type { CancelBudgetRecord, StoreTx } from '../store/types.js';
import { canonicalJson } from '../util/canonicalJson.js';
import { toHex } from '../util/hex.js';
import { macRow, rowIntact } from './capabilityRecords.js';
import type { KernelContext } from './context.js';

/**
 * The owner device (issue 13 point 2, docs/timelock.md "Cancelling"): a cancel budget the wallet
 * backend cannot reach.
 *
 * The backend holds a change's page link (it hands it to the owner) and reaches the wallet's owner
 * page (the page's "not me" link), so a budget counted there — the change's 10 wrong codes, the
 * wallet's 6 cancel codes an hour, the recovery codes' 5 wrong per 15 minutes — is one the backend
 * can use up. When the owner proves a factor on one of the kernel's own pages (enrolment, approval,
 * change, owner page), the page sets an **owner-device cookie** in the owner's browser, on the
 * kernel's origin (HttpOnly, SameSite=Strict): a random device id and an expiry, MAC'd under the
 * barrier with the wallet's tenant and name. The backend never sees it. Cancel answers and cancel-code
 * sends that come with a valid one for the change's wallet are counted on that device's own budget
 * (a `cancel_budgets` row, MAC'd), never on the shared one, and never refused because the shared one
 * is used up. A change's delivered link (`notice:<changeId>`) has a budget of its own too: it is sent
 * only to the owner's address.
 *
 * A cookie that does not check (forged, of another wallet, expired, malformed) counts as none.
 */

const DEVICE_LABEL = 'custos.owner-device.v1';
const BUDGET_MAC_LABEL = 'custos.cancel-budget.v1';
/** How long an owner-device cookie is good for (the longest a browser keeps a cookie). */
export const OWNER_DEVICE_TTL_MS = 400 * 86_400_000;
/** The most owner-device cookie values one request's answer is compared with. */
export const MAX_OWNER_DEVICE_TOKENS = 4;
const ID_BYTES = 16;
const TOKEN_BYTES = ID_BYTES + 8 + 32;
/** 56 bytes, base64url without padding. */
export const OWNER_DEVICE_TOKEN = /^[A-Za-z0-9_-]{75}$/;

const encoder = new TextEncoder();

function deviceMac(barrier: Barrier, wallet: { tenant: string; name: string }, deviceId: Uint8Array, expiresAt: number): Uint8Array {
  return hexToBytes(
    barrier.macRecord(DEVICE_LABEL, encoder.encode(canonicalJson({ tenant: wallet.tenant, walletName: wallet.name, deviceId: toHex(deviceId), expiresAt }))),
  );
}

/** A new owner-device token of `wallet`: a random device id, its expiry, and their MAC under the barrier. */
export function newOwnerDeviceToken(
  barrier: Barrier,
  random: (n: number) => Uint8Array,
  wallet: { tenant: string; name: string },
  now: number,
): { token: string; expiresAt: number } {
  const deviceId = random(ID_BYTES);
  const expiresAt = now + OWNER_DEVICE_TTL_MS;
  const bytes = Buffer.alloc(TOKEN_BYTES);
  bytes.set(deviceId, 0);
  bytes.writeBigUInt64BE(BigInt(expiresAt), ID_BYTES);
  bytes.set(deviceMac(barrier, wallet, deviceId, expiresAt), ID_BYTES + 8);
  return { token: bytes.toString('base64url'), expiresAt };
}

/**
 * The device tag (what its budget is stored under) of the first of `tokens` that is a valid, unexpired
 * owner-device token of `wallet`; undefined when none is. Each well-formed token's MAC is compared in
 * constant time, all of them whatever the outcome.
 */
export function ownerDeviceOf(
  barrier: Barrier,
  wallet: { tenant: string; name: string },
  tokens: readonly unknown[] | undefined,
  now: number,
): string | undefined {
  if (tokens === undefined) return undefined;
  let tag: string | undefined;
  for (const token of tokens.slice(0, MAX_OWNER_DEVICE_TOKENS)) {
    if (typeof token !== 'string' || !OWNER_DEVICE_TOKEN.test(token)) continue;
    const bytes = Buffer.from(token, 'base64url');
    if (bytes.length !== TOKEN_BYTES) continue;
    const deviceId = bytes.subarray(0, ID_BYTES);
    const expiresAt = Number(bytes.readBigUInt64BE(ID_BYTES));
    const good = timingSafeEqual(deviceMac(barrier, wallet, deviceId, expiresAt), bytes.subarray(ID_BYTES + 8));
    if (good && now < expiresAt && expiresAt <= now + OWNER_DEVICE_TTL_MS && tag === undefined)
      tag = createHash('sha256').update(deviceId).digest('hex').slice(0, 32);
  }
  return tag;
}

/**
 * A new owner-device token for `walletName`'s owner, for a page to set as its cookie in the response
 * to a step where the owner proved a factor there (and for nothing else; docs/timelock.md). Undefined
 * when the wallet has no row.
 */
export async function issueOwnerDeviceToken(ctx: KernelContext, walletName: string): Promise<{ token: string; maxAgeSeconds: number } | undefined> {
  const barrier = ctx.requireBarrier();
  const rows = await ctx.readStore(() => ctx.store.readWalletRows(walletName));
  if (rows.wallet === undefined) return undefined;
  const { token } = newOwnerDeviceToken(barrier, (n) => ctx.random(n), { tenant: rows.wallet.tenant, name: walletName }, ctx.now());
  return { token, maxAgeSeconds: OWNER_DEVICE_TTL_MS / 1000 };
}

// ── the budgets ───────────────────────────────────────────────────────────────────────────

/** Which budget a cancel step is counted on: an owner device's, a change's delivered link's, or (undefined) the shared one. */
export function cancelBudgetKey(device: string | undefined, viaNotice: boolean, changeId: string): string | undefined {
  if (device !== undefined) return `device:${device}`;
  return viaNotice ? `notice:${changeId}` : undefined;
}

/** The kind of a budget key, for audit records (never the device's tag). */
export function budgetKind(key: string | undefined): 'device' | 'notice' | 'shared' {
  return key === undefined ? 'shared' : key.startsWith('device:') ? 'device' : 'notice';
}

function withMac(barrier: Barrier, record: CancelBudgetRecord): CancelBudgetRecord {
  const row = { ...record, mac: '' };
  row.mac = macRow(barrier, BUDGET_MAC_LABEL, row);
  return row;
}

/** The budget under `key`, locked in the caller's unit (made, zero, when the wallet has none); a row failing its MAC is record_unreadable. */
export async function lockCancelBudget(tx: StoreTx, barrier: Barrier, walletName: string, key: string, now: number): Promise<CancelBudgetRecord> {
  const fresh = withMac(barrier, {
    walletName,
    budgetKey: key,
    codeFailures: 0,
    recoveryFailures: 0,
    recoveryWindowStart: now,
    sentInWindow: 0,
    sendWindowStart: now,
    createdAt: now,
    mac: '',
  });
  const row = await tx.lockCancelBudget(fresh);
  if (row.walletName !== walletName || row.budgetKey !== key || !rowIntact(barrier, BUDGET_MAC_LABEL, row, undefined))
    throw new CustosError('record_unreadable', 'a cancel budget does not match its MAC: refusing to act', { details: { field: 'walletName' } });
  return row;
}

/** Writes the budget's new counts with its MAC (in the unit that locked it). */
export async function saveCancelBudget(tx: StoreTx, barrier: Barrier, record: CancelBudgetRecord): Promise<void> {
  await tx.updateCancelBudget(withMac(barrier, record));
}

/** A windowed count at `now`: a new window once `windowMs` has passed since its start. */
export function windowed(count: number, start: number, now: number, windowMs: number): { count: number; start: number } {
  return now - start >= windowMs ? { count: 0, start: now } : { count, start };
}
