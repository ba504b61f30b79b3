import { sha256 } from '@noble/hashes/sha2.js';
import { walletInReach } from './apiKeyLimits.js';
import { utf8ToBytes } from '@noble/hashes/utils.js';
import { CustosError, invalidInput } from '../errors.js';
import type { RpcAccountRecord } from '../store/types.js';
import { assertKeyIndex } from '../util/assertKeyIndex.js';
import { assertWalletName } from '../util/assertWalletName.js';
import { canonicalJson } from '../util/canonicalJson.js';
import { toHex } from '../util/hex.js';
import { auditRecord } from './auditRecord.js';
import { checkScope } from './authorize.js';
import { deny, type KernelContext, type Outcome, settle } from './context.js';
import type { App } from './types.js';
import { openWallet } from './walletRecord.js';

/**
 * The JSON-RPC signer's state in the kernel (the server's rpc routes speak the protocol): each
 * tenant's address book — an address the kernel derived, mapped to its wallet and key index — and
 * the signing requests that wait for an approval, keyed by the request as sent. Scope `sign`.
 */

/** One address of a tenant's book. */
export interface RpcAccount {
  /** 0x + 40 lowercase hex digits. */
  address: string;
  walletName: string;
  keyIndex: number;
  /** ms since the epoch. */
  createdAt: number;
}

/** A signing request's stored approval: its id and the operation as filled when it was made. */
export interface RpcStoredRequest {
  approvalId: string;
  operation: unknown;
}

/** The most addresses one page of the book holds. */
export const MAX_RPC_ACCOUNTS_PAGE = 1000;
/** How long a waiting request is remembered (longer than an approval lives: 3600 s at most). */
export const RPC_REQUEST_TTL_MS = 2 * 3600_000;

const ADDRESS = /^0x[0-9a-fA-F]{40}$/;
const CURSOR = /^([0-9]{1,16})\.(0x[0-9a-f]{40})$/;
const REQUEST_DOMAIN = 'custos.rpc.request.v1\0';

const view = (r: RpcAccountRecord): RpcAccount => ({ address: r.address, walletName: r.walletName, keyIndex: r.keyIndex, createdAt: r.createdAt });

/**
 * Adds the address of (walletName, keyIndex) to the caller's tenant's book, derived by the kernel
 * (the wallet row is created for the tenant, as a derivation would; another tenant's wallet is
 * wallet_not_found). Registering it again answers the stored entry. Audited `rpc.account.add`.
 */
export async function registerRpcAccount(ctx: KernelContext, app: App, request: { walletName: unknown; keyIndex: unknown }): Promise<RpcAccount> {
  const barrier = ctx.requireBarrier();
  const walletName = assertWalletName(request.walletName);
  const keyIndex = assertKeyIndex(request.keyIndex);
  const { record, inserted } = settle(
    await ctx.transact(async (tx): Promise<Outcome<{ record: RpcAccountRecord; inserted: boolean }>> => {
      const entry = { ts: ctx.now(), appId: app.id, walletName, action: 'rpc.account.add', opHash: null, detail: { keyIndex } };
      const forbidden = checkScope(app, 'sign');
      if (forbidden !== undefined) return deny(tx, entry, forbidden);
      const wallet = await openWallet(tx, barrier, ctx.factors, {
        tenant: app.tenant,
        walletPrefix: app.walletPrefix,
        walletName,
        nowMs: entry.ts,
        create: true,
      });
      if (!wallet.ok) return deny(tx, entry, wallet.error);
      const record: RpcAccountRecord = {
        tenant: app.tenant,
        address: barrier.publicKey(walletName, keyIndex).address.toLowerCase(),
        walletName,
        keyIndex,
        createdAt: entry.ts,
      };
      const inserted = await tx.insertRpcAccount(record);
      await tx.appendAudit(auditRecord({ ...entry, detail: { keyIndex, address: record.address, inserted } }, { allowed: {} }));
      return { ok: true, value: { record, inserted } };
    }),
  );
  // registered before (an address is one key's): answered as it was stored
  const stored = inserted ? record : await ctx.readStore(() => ctx.store.readRpcAccount(app.tenant, record.address));
  return view(stored ?? record);
}

/** One page of the tenant's book in insertion order; `nextCursor` continues it (null on the last page). */
export async function listRpcAccounts(
  ctx: KernelContext,
  app: App,
  request: { cursor?: unknown; limit?: unknown },
): Promise<{ accounts: RpcAccount[]; nextCursor: string | null }> {
  ctx.requireBarrier();
  const limit = request.limit ?? 100;
  if (typeof limit !== 'number' || !Number.isSafeInteger(limit) || limit < 1 || limit > MAX_RPC_ACCOUNTS_PAGE)
    throw invalidInput('limit', `an integer from 1 to ${MAX_RPC_ACCOUNTS_PAGE}`);
  let after: { createdAt: number; address: string } | undefined;
  if (request.cursor !== undefined) {
    const match = typeof request.cursor === 'string' ? CURSOR.exec(request.cursor) : null;
    if (match === null) throw invalidInput('cursor', 'a nextCursor of an earlier page');
    after = { createdAt: Number(match[1]), address: match[2] as string };
  }
  await requireSignScope(ctx, app, 'rpc.account.list', {});
  const rows = await ctx.readStore(() => ctx.store.listRpcAccounts(app.tenant, limit + 1, after));
  const slice = rows.slice(0, limit);
  const last = slice.at(-1);
  // A key with a wallet prefix sees only its wallets' entries (a page may then hold fewer than `limit`).
  const page = slice.filter((r) => walletInReach(app, r)).map(view);
  return { accounts: page, nextCursor: rows.length > limit && last !== undefined ? `${last.createdAt}.${last.address}` : null };
}

/**
 * The wallet and key index of an address of the caller's tenant's book: `rpc_account_unknown` for an
 * address it did not register (another tenant's included). The address is derived again from the
 * wallet and key index: a row that does not match (altered in the database) is `record_unreadable`.
 */
export async function resolveRpcAccount(ctx: KernelContext, app: App, request: { address: unknown }): Promise<RpcAccount> {
  const barrier = ctx.requireBarrier();
  await requireSignScope(ctx, app, 'rpc.account.resolve', {});
  if (typeof request.address !== 'string' || !ADDRESS.test(request.address)) throw invalidInput('from', '0x + 40 hex digits');
  const address = request.address.toLowerCase();
  const found = await ctx.readStore(() => ctx.store.readRpcAccount(app.tenant, address));
  const record = found !== undefined && walletInReach(app, found) ? found : undefined;
  if (record === undefined)
    throw new CustosError('rpc_account_unknown', `${address} is not in this API key's address book (POST /v1/rpc/accounts)`, { details: { field: 'from' } });
  if (barrier.publicKey(record.walletName, record.keyIndex).address.toLowerCase() !== address)
    throw new CustosError('record_unreadable', 'an address book row does not match the key it names: refusing to act');
  return view(record);
}

/** The key of a JSON-RPC request as sent: SHA-256 over its method and canonical params (hex). */
export function rpcRequestKey(method: string, params: unknown): string {
  return toHex(sha256(utf8ToBytes(REQUEST_DOMAIN + canonicalJson({ method, params: params ?? null }))));
}

/** The approval stored for this tenant's identical request, if any. */
export async function findRpcRequest(ctx: KernelContext, app: App, request: { requestKey: string }): Promise<RpcStoredRequest | undefined> {
  ctx.requireBarrier();
  const record = await ctx.readStore(() => ctx.store.readRpcRequest(app.tenant, request.requestKey));
  if (record === undefined || record.createdAt < ctx.now() - RPC_REQUEST_TTL_MS) return undefined;
  return { approvalId: record.approvalId, operation: JSON.parse(record.operation) as unknown };
}

/** Stores the approval made for a request and the operation it was made for (replacing an older one); forgets requests past their time. */
export async function rememberRpcRequest(ctx: KernelContext, app: App, request: { requestKey: string; approvalId: string; operation: unknown }): Promise<void> {
  ctx.requireBarrier();
  await ctx.transact(async (tx) => {
    const now = ctx.now();
    await tx.deleteRpcRequestsBefore(now - RPC_REQUEST_TTL_MS);
    await tx.putRpcRequest({
      tenant: app.tenant,
      requestKey: request.requestKey,
      approvalId: request.approvalId,
      operation: canonicalJson(request.operation),
      createdAt: now,
    });
  });
}

/** Forgets a request's approval once it is spent (signed, rejected, expired): the identical request then asks again. */
export async function forgetRpcRequest(ctx: KernelContext, app: App, request: { requestKey: string; approvalId: string }): Promise<void> {
  ctx.requireBarrier();
  await ctx.transact((tx) => tx.deleteRpcRequest(app.tenant, request.requestKey, request.approvalId));
}

/** A method the JSON-RPC signer forwards to the upstream node needs scope `sign` (a denial audited `rpc.forward`). */
export async function authorizeRpcForward(ctx: KernelContext, app: App, request: { method: string }): Promise<void> {
  ctx.requireBarrier();
  await requireSignScope(ctx, app, 'rpc.forward', { method: request.method.slice(0, 64) });
}

/** Scope `sign`, or the refusal audited (action, no wallet) and thrown. */
async function requireSignScope(ctx: KernelContext, app: App, action: string, detail: Record<string, unknown>): Promise<void> {
  const forbidden = checkScope(app, 'sign');
  if (forbidden === undefined) return;
  await ctx.transact((tx) => deny(tx, { ts: ctx.now(), appId: app.id, walletName: null, action, opHash: null, detail }, forbidden));
  throw forbidden;
}
