import type { LeafPublicKey } from '../barrier/Barrier.js';
import { assertKeyIndex } from '../util/assertKeyIndex.js';
import { assertWalletName } from '../util/assertWalletName.js';
import { toHex } from '../util/hex.js';
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
