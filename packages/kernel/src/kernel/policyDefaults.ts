import type { Factor } from '../consent/Factor.js';
import type { StoreTx } from '../store/types.js';
import type { KernelContext } from './context.js';
import { queuePendingChange } from './pendingChanges.js';
import { applyWalletPolicy, openWalletPolicy } from './policy.js';
import { assertAnchored } from './rowAnchors.js';
import type { AnyProposalKind, ProposalKind } from './quorum/proposalKinds.js';
import { type DeploymentSettings, readDeploymentSettings } from './quorum/settings.js';
import { assertWalletPolicy, comparePolicies, effectivePolicy, type WalletPolicy } from './walletPolicy.js';
import { openWallet } from './walletRecord.js';

/**
 * The deployment's policy defaults under the admin quorum (issue 13, points 1, 2 and 4): once a
 * `deployment.settings` row exists, its `policyDefaults` are the deployment's defaults (else the
 * configuration's, `--policy-file`, while no quorum is configured: the bootstrap writes the row, and
 * under a quorum a missing row is record_unreadable). A `deployment.settings` proposal whose new defaults LOOSEN a
 * wallet's effective policy runs through that wallet's timelock: in the proposal's own unit, every
 * such wallet with an enrolled factor gets its effective policy of now pinned as its override, and a
 * pending `policy.loosen` change (announced to the owner, cancellable) that puts its previous
 * override back after the delay; a cancel keeps the pin. A wallet with no factor has no owner to
 * consent or cancel: the new defaults apply to it at once.
 */

/**
 * The deployment's policy defaults in a proposal's unit: the settings row's. This runs under the
 * quorum only, whose bootstrap wrote the row: a missing row was deleted (record_unreadable), never
 * the configuration's `--policy-file`.
 */
export async function currentPolicyDefaults(tx: StoreTx, ctx: KernelContext): Promise<WalletPolicy> {
  return assertWalletPolicy((await readDeploymentSettings(tx, ctx.requireBarrier(), { quorum: true })).policyDefaults, 'policyDefaults');
}

/**
 * The deployment's policy defaults read in any unit (a policy.loosen's stored difference, and the
 * bound its apply is checked against): the settings row's; with no row — only possible without an
 * admin quorum, and with no anchor of one in the log — the configuration's (`--policy-file`).
 */
export async function policyDefaultsInUnit(tx: StoreTx, ctx: KernelContext, configDefaults: WalletPolicy): Promise<WalletPolicy> {
  const settings = await readDeploymentSettings(tx, ctx.requireBarrier());
  return settings.version === 0 ? configDefaults : assertWalletPolicy(settings.policyDefaults, 'policyDefaults');
}

/**
 * Wraps the built-in `deployment.settings` kind: its `policyDefaults` checked as a wallet policy at
 * the proposal, and the wallets whose effective policy the new defaults loosen pinned and timelocked
 * (above) before the row is written, in the same unit. The evidence lists the pinned wallets, if any.
 */
export function withPolicyDefaultsTimelock(
  base: ProposalKind<DeploymentSettings>,
  kernel: { ctx(): KernelContext; factors: readonly Factor[] },
): ProposalKind<DeploymentSettings> {
  return {
    kind: base.kind,
    parse(payload) {
      const parsed = base.parse(payload);
      return { ...parsed, policyDefaults: assertWalletPolicy(parsed.policyDefaults, 'policyDefaults') as Record<string, unknown> };
    },
    describe: (p) => base.describe(p),
    async apply(tx, actx, p, meta) {
      const ctx = kernel.ctx();
      const before = await currentPolicyDefaults(tx, ctx);
      const after = assertWalletPolicy(p.policyDefaults, 'policyDefaults');
      const pinned: string[] = [];
      for (const { wallet } of await tx.listWalletRows()) {
        const opened = await openWallet(tx, actx.barrier, kernel.factors, { tenant: wallet.tenant, walletName: wallet.name, nowMs: actx.nowMs, create: false });
        // A wallet whose rows do not open is not pinned (it signs nothing anyway); one with no factor follows the new defaults.
        if (!opened.ok || opened.value.enrolled.length === 0) continue;
        const record = await tx.getWalletPolicy(wallet.name);
        // The override must be the one the audit log last recorded (rowAnchors.ts): pinning an older one put
        // back by a database writer would anchor it and queue it as the owner's. Refused: the apply fails, audited.
        await assertAnchored(tx, 'wallet.policy', wallet.name, record?.mac ?? null);
        const override = openWalletPolicy(actx.barrier, wallet.tenant, record);
        const old = effectivePolicy(before, override);
        if (comparePolicies(old, effectivePolicy(after, override)) === 'tighter') continue;
        await applyWalletPolicy(tx, actx.barrier, { tenant: wallet.tenant, walletName: wallet.name, policy: old, now: actx.nowMs });
        await queuePendingChange(tx, ctx, {
          wallet: opened.value,
          kind: 'policy.loosen',
          // What the owner is shown and the apply's bound (policyDiff.ts): the pinned policy → the new defaults under the previous override.
          payload: { policy: override ?? {}, from: old, to: effectivePolicy(after, override) },
          // The quorum's approval on the change (as a factor reset's): a TOTP-only wallet's unpinning waits for the delay only.
          consent: { by: 'quorum', quorumApproval: { proposalId: meta.id, approvers: meta.approvers, approvedAt: actx.nowMs } },
          apiKeyId: null,
          now: actx.nowMs,
        });
        pinned.push(wallet.name);
      }
      const evidence = await base.apply(tx, actx, p, meta);
      // The evidence names the pinned wallets (only when there are: a change that pins nobody reads as before).
      return pinned.length === 0 ? evidence : { ...(evidence as Record<string, unknown>), pinnedWallets: pinned };
    },
  };
}

/** The built-in kinds with `deployment.settings` wrapped (withPolicyDefaultsTimelock). */
export function wirePolicyDefaults(kinds: readonly AnyProposalKind[], kernel: { ctx(): KernelContext; factors: readonly Factor[] }): AnyProposalKind[] {
  return kinds.map((k) => (k.kind === 'deployment.settings' ? withPolicyDefaultsTimelock(k as ProposalKind<DeploymentSettings>, kernel) : k));
}
