import type { Barrier } from '../barrier/Barrier.js';
import type { OperationSummary } from '../chain/types.js';
import { type Requirement, strongestOf } from '../consent/Factor.js';
import { CustosError } from '../errors.js';
import type { PolicyUsageRecord, StoreTx, WalletPolicyRecord } from '../store/types.js';
import { canonicalJson } from '../util/canonicalJson.js';
import { evaluatePolicy, type PolicyDecision } from './evaluatePolicy.js';
import { assertWalletPolicy, type EffectivePolicy, effectivePolicy, hasValueLimits, type WalletPolicy } from './walletPolicy.js';
import type { OpenedWallet } from './walletRecord.js';
import { anchorRow, assertAnchored } from './rowAnchors.js';

/**
 * Policy: what a wallet's operation requires before it is signed, decided in one place —
 * `decidePolicy` below, which reads the wallet's override and usage in the caller's unit and calls
 * the pure `evaluatePolicy` (evaluatePolicy.ts). The factors set the floor (`walletFloor`): a wallet
 * with a `bound` factor needs a `bound` consent (an approval decided with it); a wallet with an
 * enrolled factor needs `present` (the TOTP ETH Signer's rule); a wallet never enrolled needs none —
 * unless the deployment signs only for enrolled wallets (`deny`). The policy (walletPolicy.ts) can
 * only add to that floor: strength, limits, allowlists, raw hashes.
 */

/**
 * Whether a wallet with no enrolled factor may sign without consent: `allow` (the TOTP ETH Signer's
 * semantics for wallets never enrolled: a name with no wallet row is created, owned by the caller's
 * tenant, and signs) or `deny`: a name with no row is refused `wallet_not_found`, and a wallet whose
 * row has no factor `factor_required` (a database writer who deletes a wallet's rows and has the
 * row re-created by a derivation gets no signature). Enrolment and derivation create the row
 * either way. See walletRecord.ts.
 */
export type UnknownWallets = 'allow' | 'deny';

/**
 * Whether the backend may enrol a factor through the API (`on`, the default: the TOTP ETH Signer's
 * register, which hands the secret to the backend — the weaker mode, and only for a wallet with no
 * factor) or not at all (`off`: factors are enrolled on the kernel's enrolment page only).
 */
export type BackendEnrollment = 'on' | 'off';

export interface PolicySettings {
  unknownWallets: UnknownWallets;
  backendEnrollment: BackendEnrollment;
  /** The deployment's policy defaults (KernelOptions.policyDefaults; `custos serve --policy-file`). */
  defaults: WalletPolicy;
  /**
   * Raw hashes through the compatibility API (routes/compatRoutes.ts): `allow` (default: the TOTP
   * ETH Signer plugin's SDK signs hashes — the weaker mode) or `policy` (as on /v1/sign/hash).
   */
  compatRawHash: 'allow' | 'policy';
  /**
   * The emergency exit (issue 13, point 2), read in the decision's unit: the wallet's safe address
   * while a deactivation is pending, else undefined. Absent: no exit (the timelock wires it).
   */
  emergencyExit?: (tx: StoreTx, wallet: OpenedWallet, now: number) => Promise<{ safeAddress: string } | undefined>;
}

/** The consent a signature of `wallet` needs by its factors; throws `factor_required` when the policy refuses the wallet outright. */
export function walletFloor(settings: PolicySettings, wallet: OpenedWallet): Requirement {
  // A wallet with a `bound` factor (a passkey, or a card enrolled on the kernel's page) requires
  // `bound`: a relayed code or card answer can no longer sign for it. A card the backend enrolled
  // gives `present` at most (Factor.ts effectiveStrength), so it does not raise the requirement.
  if (wallet.enrolled.some((e) => strongestOf(e.factor, e.record) === 'bound')) return 'bound';
  if (wallet.enrolled.length > 0) return 'present';
  // Under `deny`, a wallet without an enrolled factor never signs.
  if (settings.unknownWallets === 'deny')
    throw new CustosError('factor_required', 'this deployment signs only for wallets with an enrolled second factor', {
      details: { field: 'walletName' },
    });
  return 'none';
}

const POLICY_MAC_LABEL = 'custos.walletPolicy.v1';
const encoder = new TextEncoder();

function policyMacBytes(record: Omit<WalletPolicyRecord, 'mac'>): Uint8Array {
  return encoder.encode(canonicalJson({ tenant: record.tenant, walletName: record.walletName, policy: record.policy, updatedAt: record.updatedAt }));
}

/** A wallet's override read back: its MAC checked (a row a database writer changed is refused, never ignored). */
export function openWalletPolicy(barrier: Barrier, tenant: string, record: WalletPolicyRecord | undefined): WalletPolicy | undefined {
  if (record === undefined) return undefined;
  if (record.tenant !== tenant || !barrier.verifyRecordMac(POLICY_MAC_LABEL, policyMacBytes(record), record.mac))
    throw new CustosError('record_unreadable', "the wallet's policy record does not match its MAC: refusing to act", { details: { field: 'walletName' } });
  return assertWalletPolicy(JSON.parse(record.policy));
}

/** The policy in force for `wallet`: the deployment's defaults under its own override (read in the caller's unit). */
export async function walletPolicyIn(
  tx: StoreTx,
  barrier: Barrier,
  settings: PolicySettings,
  wallet: OpenedWallet,
): Promise<{ policy: EffectivePolicy; override: WalletPolicy | undefined }> {
  const record = await tx.getWalletPolicy(wallet.wallet.name);
  // The override must be the one the audit log last recorded (rowAnchors.ts): an older one put back is refused.
  await assertAnchored(tx, 'wallet.policy', wallet.wallet.name, record?.mac ?? null);
  const override = openWalletPolicy(barrier, wallet.wallet.tenant, record);
  return { policy: effectivePolicy(settings.defaults, override), override };
}

/** Whether signatures of a wallet under `policy` are counted (usage rows): when it has limits or a signature cap. */
export function countsUsage(policy: EffectivePolicy): boolean {
  return hasValueLimits(policy) || policy.maxSignaturesPerWindow !== undefined;
}

/**
 * The policy decision for one operation of `wallet`, in the caller's unit (the wallet row is locked
 * by openWallet, so the usage read here cannot change before the unit commits): the factors' floor,
 * the effective policy, the usage in the window, then evaluatePolicy. Throws the refusal.
 */
export async function decidePolicy(
  tx: StoreTx,
  barrier: Barrier,
  settings: PolicySettings,
  input: {
    wallet: OpenedWallet;
    summary: OperationSummary;
    route?: 'api' | 'compat';
    now: number;
    exit?: { safeAddress: string } | undefined;
    /** The repeat of an approval's signature (approvalRepeats): a full window does not refuse it. */
    repeat?: boolean;
  },
): Promise<PolicyDecision & { policy: EffectivePolicy }> {
  const floor = walletFloor(settings, input.wallet);
  const { policy } = await walletPolicyIn(tx, barrier, settings, input.wallet);
  const usage: PolicyUsageRecord[] = countsUsage(policy) ? await tx.listPolicyUsage(input.wallet.wallet.name, input.now - policy.windowSeconds * 1000) : [];
  // The exit exempts only from limits, the signature cap and the allowlist: read only for a policy that has one.
  const restricts = countsUsage(policy) || policy.destinations !== undefined;
  const exit = input.exit ?? (restricts ? await settings.emergencyExit?.(tx, input.wallet, input.now) : undefined);
  const decision = evaluatePolicy({
    policy,
    floor,
    enrolled: input.wallet.enrolled.length > 0,
    summary: input.summary,
    route: input.route ?? 'api',
    compatRawHash: settings.compatRawHash,
    usage,
    exit,
    repeat: input.repeat === true,
  });
  return { ...decision, policy };
}

/** Writes what a signature counted, in its unit (after its audit record: one row per record). Nothing when the policy counts nothing. */
export async function recordPolicyUsage(
  tx: StoreTx,
  decision: PolicyDecision & { policy: EffectivePolicy },
  row: { walletName: string; auditSeq: number; ts: number },
): Promise<void> {
  if (!countsUsage(decision.policy)) return;
  await tx.insertPolicyUsage({ ...row, amounts: canonicalJson(decision.amounts) });
}

/**
 * Writes a wallet's override (the caller decided it may: a tightening, or a timelocked change that
 * came due), MAC'd under the barrier, in the caller's unit.
 */
export async function applyWalletPolicy(
  tx: StoreTx,
  barrier: Barrier,
  change: { tenant: string; walletName: string; policy: WalletPolicy; now: number },
): Promise<WalletPolicyRecord> {
  const record: Omit<WalletPolicyRecord, 'mac'> = {
    walletName: change.walletName,
    tenant: change.tenant,
    policy: canonicalJson(assertWalletPolicy(change.policy)),
    updatedAt: change.now,
  };
  const written: WalletPolicyRecord = { ...record, mac: barrier.macRecord(POLICY_MAC_LABEL, policyMacBytes(record)) };
  await tx.putWalletPolicy(written);
  await anchorRow(tx, { row: 'wallet.policy', key: change.walletName, state: written.mac, walletName: change.walletName, ts: change.now });
  return written;
}
