import { base64urlnopad } from '@scure/base';
import type { LeafPublicKey } from '../barrier/Barrier.js';
import { invalidInput } from '../errors.js';
import { assertKeyIndex } from '../util/assertKeyIndex.js';
import { assertWalletName } from '../util/assertWalletName.js';
import { toHex } from '../util/hex.js';
import { walletInReach } from './apiKeyLimits.js';
import { auditRecord } from './auditRecord.js';
import { checkScope } from './authorize.js';
import { deny, type KernelContext, type Outcome, settle } from './context.js';
import type { App, PublicKeyResult } from './types.js';
import { checkWalletRows, openWallet } from './walletRecord.js';

/** What a backend may read of its wallets: a key's public half and address, and which factors a wallet has. */

/** Derives a wallet key's public key and address (scope `derive`; the wallet row is created for the caller's tenant). Audited `key.derive`. */
export async function getPublicKey(ctx: KernelContext, app: App, request: { walletName: unknown; keyIndex: unknown }): Promise<PublicKeyResult> {
  const barrier = ctx.requireBarrier();
  const walletName = assertWalletName(request.walletName);
  const keyIndex = assertKeyIndex(request.keyIndex);
  const leaf = settle(
    await ctx.transact(async (tx): Promise<Outcome<LeafPublicKey>> => {
      const entry = { ts: ctx.now(), appId: app.id, walletName, action: 'key.derive', opHash: null, detail: { keyIndex } };
      const forbidden = checkScope(app, 'derive');
      if (forbidden !== undefined) return deny(tx, entry, forbidden);
      const wallet = await openWallet(tx, barrier, ctx.factors, {
        tenant: app.tenant,
        walletPrefix: app.walletPrefix,
        walletName,
        nowMs: entry.ts,
        create: true,
      });
      if (!wallet.ok) return deny(tx, entry, wallet.error);
      const leaf = barrier.publicKey(walletName, keyIndex);
      await tx.appendAudit(auditRecord(entry, { allowed: {} }));
      return { ok: true, value: leaf };
    }),
  );
  return { walletName, keyIndex, publicKey: toHex(leaf.publicKey), address: leaf.address };
}

/** Which factors a wallet has; wallet_not_found for a name the signer has no record of (or another tenant's). */
export async function getWallet(
  ctx: KernelContext,
  app: App,
  request: { walletName: unknown },
): Promise<{ walletName: string; factors: string[]; createdAt: number }> {
  ctx.requireBarrier();
  const walletName = assertWalletName(request.walletName);
  const forbidden = checkScope(app, 'derive');
  if (forbidden !== undefined) {
    await ctx.transact((tx) => deny(tx, { ts: ctx.now(), appId: app.id, walletName, action: 'wallet.read', opHash: null, detail: {} }, forbidden));
    throw forbidden;
  }
  const rows = await ctx.readStore(() => ctx.store.readWalletRows(walletName));
  const checked = checkWalletRows(ctx.requireBarrier(), ctx.factors, { tenant: app.tenant, walletPrefix: app.walletPrefix, walletName }, rows);
  if (!checked.ok) throw checked.error;
  return { walletName, factors: [...new Set(checked.value.kinds)], createdAt: checked.value.wallet.createdAt };
}

/** The most wallets a page of GET /v1/wallets/list holds, and how many when the caller does not say. */
export const MAX_WALLET_PAGE = 200;
export const DEFAULT_WALLET_PAGE = 50;

/** A wallet of the list: what getWallet reads, its freeze, its throttle lock and its pending timelocked changes. */
export interface WalletListItem {
  walletName: string;
  createdAt: number;
  /** The kinds of its factors, as getWallet lists them. */
  factors: string[];
  /** When it was frozen (kernel/freeze.ts), or null. */
  frozenAt: number | null;
  /** The latest lockedUntil of its factors' throttles when still in the future (ms since the epoch), else null. */
  lockedUntil: number | null;
  /** Its timelocked changes waiting out their delay (state `pending`). */
  pendingChanges: number;
}

/** A wallet whose rows fail their checks (MAC, tenant): its name only, never its contents. */
export interface UnreadableWalletListItem {
  walletName: string;
  unreadable: true;
}

export interface WalletList {
  wallets: Array<WalletListItem | UnreadableWalletListItem>;
  /** Give back as cursor for the wallets after this page (null: an empty first page). */
  nextCursor: string | null;
  /** More wallets followed this page when it was read. */
  more: boolean;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** A cursor of listWallets: base64url (no padding) of the UTF-8 of the last name of a page. */
function encodeWalletCursor(walletName: string): string {
  return base64urlnopad.encode(new TextEncoder().encode(walletName));
}

function decodeWalletCursor(cursor: unknown): string {
  const expected = 'a nextCursor of an earlier page';
  if (typeof cursor !== 'string' || cursor.length === 0) throw invalidInput('cursor', expected);
  let name: string;
  try {
    name = utf8.decode(base64urlnopad.decode(cursor));
  } catch {
    throw invalidInput('cursor', expected);
  }
  // one spelling per position (no second encoding of the same name), and a name a wallet could have
  if (encodeWalletCursor(name) !== cursor) throw invalidInput('cursor', expected);
  assertWalletName(name, 'cursor');
  return name;
}

/**
 * One page of the caller's tenant's wallets in name order (code point order), scope `derive` like
 * getWallet: for a key with a wallet prefix only the wallets in its reach — the store's query is
 * bounded by the prefix, so a page is full of them and a cursor naming a wallet outside it only
 * moves the position. Each wallet's rows are checked as getWallet checks them (checkWalletRows); a
 * wallet whose rows fail is listed by name as unreadable (its own routes refuse it, record_unreadable):
 * one tampered row must neither hide the other wallets nor make the whole list fail. The cursor is the
 * last name of the page, so a wallet created between two pages appears in a later page when its name
 * sorts after the cursor, and none is listed twice or skipped.
 */
export async function listWallets(ctx: KernelContext, app: App, request: { limit?: unknown; cursor?: unknown }): Promise<WalletList> {
  const barrier = ctx.requireBarrier();
  const limit = request.limit ?? DEFAULT_WALLET_PAGE;
  if (typeof limit !== 'number' || !Number.isSafeInteger(limit) || limit < 1 || limit > MAX_WALLET_PAGE)
    throw invalidInput('limit', `an integer from 1 to ${MAX_WALLET_PAGE}`);
  const after = request.cursor === undefined ? null : decodeWalletCursor(request.cursor);
  const forbidden = checkScope(app, 'derive');
  if (forbidden !== undefined) {
    await ctx.transact((tx) => deny(tx, { ts: ctx.now(), appId: app.id, walletName: null, action: 'wallet.list', opHash: null, detail: {} }, forbidden));
    throw forbidden;
  }
  const read = await ctx.readStore(() => ctx.store.readWalletPage({ tenant: app.tenant, prefix: app.walletPrefix ?? null, after, limit: limit + 1 }));
  const page = read.slice(0, limit);
  const now = ctx.now();
  const wallets: WalletList['wallets'] = [];
  for (const { walletName, rows, pendingChanges } of page) {
    // the store's bounds are the rule's; a name outside them (never expected) is not shown at all
    if (!walletInReach(app, { tenant: app.tenant, walletName })) continue;
    const checked = checkWalletRows(barrier, ctx.factors, { tenant: app.tenant, walletPrefix: app.walletPrefix, walletName }, rows);
    if (!checked.ok) {
      wallets.push({ walletName, unreadable: true });
      continue;
    }
    const { wallet, kinds, enrolled } = checked.value;
    const locks = enrolled
      .map(({ record }) => (record.state as { lockedUntilMs?: unknown }).lockedUntilMs)
      .filter((t): t is number => typeof t === 'number' && t > now);
    wallets.push({
      walletName,
      createdAt: wallet.createdAt,
      factors: [...new Set(kinds)],
      frozenAt: typeof wallet.frozenAt === 'number' ? wallet.frozenAt : null,
      lockedUntil: locks.length === 0 ? null : Math.max(...locks),
      pendingChanges,
    });
  }
  const last = page.at(-1)?.walletName;
  return {
    wallets,
    nextCursor: last !== undefined ? encodeWalletCursor(last) : typeof request.cursor === 'string' ? request.cursor : null,
    more: read.length > limit,
  };
}
