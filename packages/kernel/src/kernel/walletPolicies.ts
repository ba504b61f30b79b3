import type { Barrier } from '../barrier/Barrier.js';
import { CustosError } from '../errors.js';
import type { StoreTx } from '../store/types.js';
import { assertWalletName } from '../util/assertWalletName.js';
import { type AuditBase, auditRecord } from './auditRecord.js';
import { assertScopeAudited, checkScope } from './authorize.js';
import { asCustosError, deny, type KernelContext, type Outcome, settle } from './context.js';
import { sumUsage } from './evaluatePolicy.js';
import { type CreatedChange, requestChange } from './pendingChanges.js';
import { applyWalletPolicy, countsUsage, openWalletPolicy, walletPolicyIn } from './policy.js';
import type { App } from './types.js';
import { latestAnchor, rolledBack } from './rowAnchors.js';
import { assertWalletPolicy, comparePolicies, type EffectivePolicy, effectivePolicy, type WalletPolicy } from './walletPolicy.js';
import { checkWalletRows, openWallet } from './walletRecord.js';

/**
 * The wallet policy routes (GET and PUT /v1/wallets/policy): the effective policy and the usage in
 * the current window, and a wallet's own override. A change that only tightens (comparePolicies)
 * applies at once; one that loosens — or adds an allowlisted destination or contract — becomes a
 * timelocked change `policy.loosen` (issue 13, point 2: the owner consents on the change's page with
 * the wallet's strongest factor; announced, cancellable), which calls applyWalletPolicy when it comes
 * due (the kernel's `applyPolicy` hook, applyPolicyHook below). A wallet with no factor has no owner
 * to consent: its loosening is refused `policy_change_timelocked`.
 */

export interface WalletPolicyView {
  walletName: string;
  /** The policy in force: the built-in defaults, the deployment's, then the wallet's override. */
  policy: EffectivePolicy;
  /** The wallet's own override, or null. */
  override: WalletPolicy | null;
  usage: {
    windowSeconds: number;
    /** The window's start (ms since the epoch): usage counted after it. */
    since: number;
    /** Signatures counted in the window (only while the policy has limits or a signature cap). */
    signatures: number;
    /** Per counted asset (`native:<chainId>`, `token:<chainId>:<address>`): base units in the window. */
    amounts: Record<string, string>;
  };
}

/** GET /v1/wallets/policy (scope `sign`): the effective policy and the usage in the current window, from unlocked reads. */
export async function getWalletPolicy(ctx: KernelContext, app: App, request: { walletName: unknown }): Promise<WalletPolicyView> {
  ctx.requireBarrier(); // sealed: refused before anything is read
  const walletName = assertWalletName(request.walletName);
  const forbidden = checkScope(app, 'sign');
  if (forbidden !== undefined) throw forbidden;
  return readPolicyView(ctx, app, walletName);
}

/** The view, from unlocked reads (the caller checked the scope). */
async function readPolicyView(ctx: KernelContext, app: App, walletName: string): Promise<WalletPolicyView> {
  const barrier = ctx.requireBarrier();
  const rows = await ctx.readStore(() => ctx.store.readWalletRows(walletName));
  const opened = checkWalletRows(barrier, ctx.factors, { tenant: app.tenant, walletPrefix: app.walletPrefix, walletName }, rows);
  if (!opened.ok) throw opened.error;
  // The override the audit log last recorded, as signing reads it (policy.ts walletPolicyIn): a row put
  // back from an earlier copy is record_unreadable here too, never shown as the policy in force.
  // The anchor is read before the row (rowAnchors.ts: an unlocked read).
  const anchor = await latestAnchor({ readRowAnchor: (subject) => ctx.readStore(() => ctx.store.readRowAnchor(subject)) }, 'wallet.policy', walletName);
  const record = await ctx.readStore(() => ctx.store.readWalletPolicy(walletName));
  if (anchor !== undefined && anchor.state !== (record?.mac ?? null)) throw rolledBack('wallet.policy', anchor.seq);
  const override = openWalletPolicy(barrier, app.tenant, record);
  const policy = effectivePolicy(ctx.policy.defaults, override);
  const now = ctx.now();
  const since = now - policy.windowSeconds * 1000;
  const used = sumUsage(countsUsage(policy) ? await ctx.readStore(() => ctx.store.readPolicyUsage(walletName, since)) : []);
  return {
    walletName,
    policy,
    override: override ?? null,
    usage: {
      windowSeconds: policy.windowSeconds,
      since,
      signatures: used.signatures,
      amounts: Object.fromEntries([...used.amounts].map(([k, v]) => [k, v.toString()])),
    },
  };
}

/** A loosening PUT: the timelocked change it created (the owner's link is `change.capability`). */
export interface TimelockedPolicyChange {
  timelocked: true;
  change: CreatedChange;
}

/**
 * PUT /v1/wallets/policy (scope `register`): replaces the wallet's override with `policy` when the
 * effective policy it gives is provably at least as strict as the one in force (audited
 * `policy.set`); else, for a wallet with a factor, creates a timelocked change `policy.loosen` with
 * that override as its payload (audited `change.request`; the policy in force stays until it
 * applies); a wallet without a factor: refused `policy_change_timelocked` (audited).
 */
export async function setWalletPolicy(
  ctx: KernelContext,
  app: App,
  request: { walletName: unknown; policy: unknown },
): Promise<WalletPolicyView | TimelockedPolicyChange> {
  const barrier = ctx.requireBarrier();
  const walletName = assertWalletName(request.walletName);
  await assertScopeAudited(ctx, app, 'register', { action: 'policy.set', walletName, detail: {} });
  const proposedOverride = assertWalletPolicy(request.policy);
  const decided = settle(
    await ctx.transact(async (tx): Promise<Outcome<'applied' | 'timelocked'>> => {
      const now = ctx.now();
      const base: AuditBase = { ts: now, appId: app.id, walletName, action: 'policy.set', opHash: null, detail: { policy: proposedOverride } };
      const forbidden = checkScope(app, 'register');
      if (forbidden !== undefined) return deny(tx, base, forbidden);
      const wallet = await openWallet(tx, barrier, ctx.factors, {
        tenant: app.tenant,
        walletPrefix: app.walletPrefix,
        walletName,
        nowMs: now,
        create: ctx.policy.unknownWallets === 'allow',
      });
      if (!wallet.ok) return deny(tx, base, wallet.error);
      let current: EffectivePolicy;
      try {
        current = (await walletPolicyIn(tx, barrier, ctx.policy, wallet.value)).policy;
      } catch (error) {
        return deny(tx, base, asCustosError(error));
      }
      const proposed = effectivePolicy(ctx.policy.defaults, proposedOverride);
      if (comparePolicies(current, proposed) !== 'tighter') {
        // A wallet with a factor: a timelocked change (requested below, in its own unit, audited there).
        if (wallet.value.enrolled.length > 0) return { ok: true, value: 'timelocked' };
        return deny(
          tx,
          { ...base, detail: { ...base.detail, change: 'looser' } },
          new CustosError(
            'policy_change_timelocked',
            "this change loosens the wallet's policy (or adds to an allowlist), and the wallet has no factor whose owner could consent to a timelocked change",
            {
              details: { field: 'policy', change: 'looser' },
            },
          ),
        );
      }
      await applyWalletPolicy(tx, barrier, { tenant: app.tenant, walletName, policy: proposedOverride, now });
      await tx.appendAudit(auditRecord(base, { allowed: { change: 'tighter', previous: current } }));
      return { ok: true, value: 'applied' };
    }),
  );
  if (decided === 'timelocked') {
    // Never applied here: the owner consents on the change's page; the old policy stays in force until it applies.
    const change = await requestChange(ctx, app, { walletName, kind: 'policy.loosen', payload: { policy: proposedOverride } });
    return { timelocked: true, change };
  }
  return readPolicyView(ctx, app, walletName);
}

/**
 * The timelock's `applyPolicy` hook (kind `policy.loosen`), which the kernel always installs: the
 * payload's policy checked again (a payload that is no policy is `change_not_applicable`, never
 * applied) and written as the wallet's override, in the apply loop's unit. When the change carries
 * the effective policy its owner was shown (`approved`, the payload's `to`), the policy the override
 * gives now — under the deployment's defaults read in this unit — must be at least as strict as that
 * one, else `change_not_applicable` (cancelled, the owner told): a loosening confirmed before the
 * deployment's defaults were loosened (and the wallet pinned, policyDefaults.ts) never lifts the pin
 * beyond what the owner approved; the pin's own change (and its delay) does that.
 */
export function applyPolicyHook(
  barrier: () => Barrier,
  defaultsIn: (tx: StoreTx) => Promise<WalletPolicy>,
): (tx: StoreTx, request: { walletName: string; tenant: string; policy: unknown; approved?: unknown; now: number }) => Promise<Record<string, unknown>> {
  return async (tx, request) => {
    let policy: WalletPolicy;
    let approved: EffectivePolicy | undefined;
    try {
      policy = assertWalletPolicy(request.policy, 'payload.policy');
      if (request.approved !== undefined) approved = effectivePolicy({}, assertWalletPolicy(request.approved, 'payload.to'));
    } catch (error) {
      throw new CustosError('change_not_applicable', `the change's policy is not a wallet policy: ${asCustosError(error).message}`, {
        details: { field: 'payload' },
      });
    }
    if (approved !== undefined && comparePolicies(approved, effectivePolicy(await defaultsIn(tx), policy)) !== 'tighter')
      throw new CustosError(
        'change_not_applicable',
        "the policy this change gives now is looser than the one its owner was shown (the deployment's defaults changed since): nothing was changed, ask again",
        { details: { field: 'payload' } },
      );
    const previous = (await tx.getWalletPolicy(request.walletName)) !== undefined;
    await applyWalletPolicy(tx, barrier(), { tenant: request.tenant, walletName: request.walletName, policy, now: request.now });
    return { policy, replacedOverride: previous };
  };
}

/** The longest window a policy can have (walletPolicy.ts): usage older than it counts in no window. */
const MAX_WINDOW_MS = 366 * 86_400_000;

/** Deletes usage rows older than any window can reach; returns how many (the server's sweep calls it). */
export async function sweepPolicyUsage(ctx: KernelContext): Promise<number> {
  ctx.requireBarrier();
  return ctx.transact((tx) => tx.deletePolicyUsageBefore(ctx.now() - MAX_WINDOW_MS));
}
