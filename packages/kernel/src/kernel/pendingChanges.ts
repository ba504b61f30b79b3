import { sha256 } from '@noble/hashes/sha2.js';
import { walletInReach } from './apiKeyLimits.js';
import type { Barrier } from '../barrier/Barrier.js';
import { ConsentRefused, type EnrolledFactor, decideConsentStrength, macFactorRecord, verifyFactorRecords, verifyUnthrottled } from '../consent/consent.js';
import { type Factor, type FactorRecord, type Strength, strongestOf } from '../consent/Factor.js';
import type { OobFactorState } from '../consent/oobFactor.js';
import { CustosError, invalidInput } from '../errors.js';
import type { CancelBudgetRecord, PendingChangeRecord, PendingChangeState, SafeAddressRecord, StoreTx } from '../store/types.js';
import { assertWalletName } from '../util/assertWalletName.js';
import { canonicalJson } from '../util/canonicalJson.js';
import { hexToBytes } from '@noble/hashes/utils.js';
import { toHex } from '../util/hex.js';
import { type AuditBase, auditRecord } from './auditRecord.js';
import { checkScope } from './authorize.js';
import { assertTtlSeconds, capabilityHashOf, creatorRevoked, macRow, newCapability, rowIntact } from './capabilityRecords.js';
import { proofIdOf } from './approvals.js';
import { asCustosError, deny, type KernelContext, type Outcome, settle } from './context.js';
import { findOwnerWallet, freezeRefusal, ownerCapability, ownerLinkOf } from './freeze.js';
import { hwkeyDeviceMatches } from './hwkeyDevice.js';
import { anchorRefusal, anchorRow, latestAnchor, rolledBack, TERMINAL_CHANGE_STATES } from './rowAnchors.js';
import { RECOVERY_THROTTLE, useRecoveryCode } from './recoveryCodes.js';
import { budgetKind, cancelBudgetKey, lockCancelBudget, ownerDeviceOf, saveCancelBudget, windowed } from './ownerDevice.js';
import { DEFAULT_OOB_LIMITS, isOobFactor } from '../consent/oobFactor.js';
import { enqueueMessage, oobAddressOf, sendOobConsentCode, type TimelockNotice } from './oobDelivery.js';
import type { App } from './types.js';
import { macWallet, type OpenedWallet, openWallet } from './walletRecord.js';
import { diffPolicies, type PolicyDiffEntry, policyDiffLines } from './policyDiff.js';
import { walletPolicyIn } from './policy.js';
import { assertWalletPolicy, type EffectivePolicy, effectivePolicy, type WalletPolicy } from './walletPolicy.js';

/**
 * Timelocked changes (issue 13 point 2): a change that weakens or re-points a wallet's protection —
 * disabling 2FA, adding, removing or replacing a factor, changing the delivery address, setting the
 * safe address, loosening the policy — takes effect only after the deployment's delay (default 48 h,
 * never below 1 h), during which the old protection stays fully in force and the owner can cancel it.
 *
 *   requestChange    (API, scope register)  the backend asks; the row is `requested`, with a page link
 *   confirmChange    (the page)             the owner consents with the strongest strength the wallet
 *                                           has enrolled → `pending`, effective after the delay;
 *                                           announced at once on the wallet's delivery channel
 *   cancelChange     (the page, or the      the owner with ANY current factor, checked with the
 *                     delivered link)        factor's throttle lifted and counted on the change itself;
 *                                           on the delivered link (e-mail), the link is the proof
 *   applyDueChanges  (the server's loop)    reminders (24 h and 1 h before; 30 min for a short delay), then the change applied
 *                                           atomically with its audit record and confirmation notice
 *   queuePendingChange (kernel flows)       the enrolment page's changes (a factor added to a wallet
 *                                           with one, a new delivery address) become pending changes
 *
 * Over the API, a confirm or cancel is refused `owner_consent_required` (audited): the backend may be
 * the attacker the delay exists for. Every row carries a MAC under the barrier over all its fields, so
 * a database writer can neither swap a payload nor advance a change's time.
 */

const CHANGE_MAC_LABEL = 'custos.pending-change.v1';
const SAFE_ADDRESS_MAC_LABEL = 'custos.safe-address.v1';
const NOTICE_LABEL = 'custos.change.notice.v1';
const CHANGE_ID = /^[0-9a-f]{32}$/;
const HOUR_MS = 3_600_000;

/** The delay: default 48 h; a deployment may set another, never below 1 h (refused at start-up). */
export const TIMELOCK_DELAY_MS = { default: 48 * HOUR_MS, min: HOUR_MS } as const;
/** How long a requested change waits for the owner's consent (seconds). */
export const CHANGE_TTL_SECONDS = { default: 86_400, min: 300, max: 604_800 } as const;
/** Open (requested and unexpired, or pending) changes allowed at once per wallet. */
export const MAX_OPEN_CHANGES_PER_WALLET = 8;
/** The answer kind of a cancel with one of the wallet's recovery codes (not a factor: it only cancels). */
export const RECOVERY_KIND = 'recovery';
/** Wrong cancel answers through the page link before that link stops taking them (the delivered link is not counted). */
export const CANCEL_MAX_FAILURES = 10;
/**
 * Reminder times before the change takes effect: 24 h, 1 h, and 30 min — the last only for a change
 * whose delay left no room for the 1 h one (the 1 h reminder counts for it too). docs/timelock.md.
 */
const REMINDERS_MS = [24 * HOUR_MS, HOUR_MS, HOUR_MS / 2] as const;
/** At the decision, a reminder due less than this after it is skipped (it would follow the announcement at once). */
const REMINDER_GAP_MS = HOUR_MS / 2;
/** How long a notice is retried. */
const NOTICE_TTL_MS = 24 * HOUR_MS;
/** Rows of the due set one read of the apply loop takes (keyset paging by effectiveAt, id). */
const APPLY_PAGE = 100;
/**
 * Rows one apply pass looks at, at most (bounded work per pass). A pass pages past the rows that
 * wait (frozen wallet, quorum missing, reminder not yet due) until the due set is exhausted; one
 * that stops at this bound leaves its place, and the next pass continues after it (then starts over).
 */
const APPLY_PASS_MAX = 1000;
/** Where the last apply pass of a kernel stopped at APPLY_PASS_MAX (absent: the next pass starts at the head). */
const applyCursors = new WeakMap<KernelContext, { effectiveAt: number; id: string }>();
/**
 * The failure last reported (audited, admins and owner told) for each due change that could not be
 * applied and stays pending (changeId → code and message), so that a change failing at every pass is
 * reported once per distinct failure, not every 30 s. In memory, per kernel: a restart or another
 * replica reports it once more. Bounded: the oldest entries go first.
 */
const applyFailures = new WeakMap<KernelContext, Map<string, string>>();
const APPLY_FAILURES_MAX = 10_000;

/**
 * Seams the other parts of issue 13 fill. The kernel installs `isFrozen` (freeze.ts) and
 * `quorumApproved` (quorumApprovalOf: the admins' approval recorded on the change's own row) itself;
 * KernelOptions.timelock.hooks may replace them (trusted code). `quorumApproved` absent fails closed:
 * a change that needs the quorum then never applies.
 */
export interface TimelockHooks {
  /**
   * hook: policy — applies a loosened wallet policy (kind `policy.loosen`); absent, that change is not
   * applicable. `approved` is the effective policy the owner was shown (the payload's `to`): the hook
   * refuses (`change_not_applicable`) when the policy would now be looser than it (policyDiff.ts).
   */
  applyPolicy?(
    tx: StoreTx,
    request: { walletName: string; tenant: string; policy: unknown; approved?: unknown; now: number },
  ): Promise<Record<string, unknown>>;
  /**
   * hook: freeze — an extra check whether the wallet is frozen (a due change then waits). The kernel
   * always checks the wallet row's own `frozenAt` (freeze.ts freezeRefusal) first, hook or no hook.
   */
  isFrozen?(tx: StoreTx, walletName: string): Promise<boolean>;
  /**
   * hook: quorum — a wallet with no kernel-delivered channel and no `bound` factor (TOTP only) needs an
   * admin quorum approval besides the owner's factor: called for such a wallet's due change; `false`
   * keeps it waiting. Absent, the change keeps waiting (fail closed).
   */
  quorumApproved?(tx: StoreTx, change: PendingChangeRecord): Promise<boolean>;
}

export interface TimelockSettings {
  /** The configured delay (the `--timelock-delay` flag, or the default); see delayMs below for the one in force. */
  delayMs: number;
  hooks: TimelockHooks;
  /**
   * The delay in force for a change decided now (quorum wiring: the deployment settings row's when
   * present, never weakened by the flag under a quorum). Absent: `delayMs`.
   */
  delayInForce?(tx: StoreTx): Promise<number>;
  /** Queues a message to every admin with an address (quorum wiring); returns how many. Absent: the audit record only. */
  tellAdmins?(tx: StoreTx, text: string): Promise<number>;
  /** The deployment's policy defaults read in the caller's unit (the quorum's settings row, else the configuration's). Absent: `ctx.policy.defaults`. */
  policyDefaultsIn?(tx: StoreTx): Promise<WalletPolicy>;
  /**
   * The apply loop's paging: due rows read `page` at a time, at most `passMax` per pass (defaults
   * APPLY_PAGE and APPLY_PASS_MAX). Smaller values let a test cross the bound with a few rows.
   */
  applyPaging?: { page: number; passMax: number };
}

/** The delay a deployment configured, checked: an integer number of milliseconds, at least 1 h. */
export function assertTimelockDelayMs(delayMs: unknown): number {
  if (delayMs === undefined) return TIMELOCK_DELAY_MS.default;
  if (typeof delayMs !== 'number' || !Number.isSafeInteger(delayMs) || delayMs < TIMELOCK_DELAY_MS.min)
    throw invalidInput('timelockDelay', 'at least 1 hour (3600 seconds)', String(delayMs));
  return delayMs;
}

// ── the kinds ──────────────────────────────────────────────────────────────────────────────

interface ApplyContext {
  barrier: Barrier;
  factors: readonly Factor[];
  wallet: OpenedWallet;
  tenant: string;
  now: number;
  random(n: number): Uint8Array;
  hooks: TimelockHooks;
}

interface ChangeKind {
  /** Parses a payload the backend sent over the API; absent: the kind is made only by the kernel's own flows. */
  parse?(payload: unknown, wallet: OpenedWallet): Record<string, unknown>;
  /** One line for the page and the notices. */
  describe(payload: Record<string, unknown>): string;
  /** Makes the change in the caller's unit; returns the audit evidence. Throws `change_not_applicable` when it no longer fits. */
  apply(tx: StoreTx, actx: ApplyContext, payload: Record<string, unknown>): Promise<Record<string, unknown>>;
}

type FactorRef = { kind: string; id: string };

const ROW_KINDS = ['totp', 'passkey', 'hwkey', 'oob'] as const;
/** Kinds a wallet has at most one of (their table is keyed by the wallet). */
const ONE_PER_WALLET = new Set(['totp', 'hwkey', 'oob']);

function notApplicable(message: string): CustosError {
  return new CustosError('change_not_applicable', message, { details: { field: 'payload' } });
}

function rowKind(kind: string): (typeof ROW_KINDS)[number] {
  const found = ROW_KINDS.find((k) => k === kind);
  if (found === undefined) throw notApplicable(`factors of kind '${kind}' cannot be removed by a change`);
  return found;
}

function parseFactorRef(payload: unknown, wallet: OpenedWallet): FactorRef {
  const p = payload as { kind?: unknown; id?: unknown } | null;
  if (typeof p !== 'object' || p === null || typeof p.kind !== 'string' || typeof p.id !== 'string')
    throw invalidInput('payload', '{ kind, id } of an enrolled factor');
  if (!wallet.enrolled.some((e) => e.record.kind === p.kind && e.record.id === p.id))
    throw invalidInput('payload', 'a factor the wallet has (GET /v1/wallets lists them)');
  return { kind: p.kind, id: p.id };
}

/** Removes factor rows and writes the wallet's new MAC over the rows that remain. */
async function removeFactors(tx: StoreTx, actx: ApplyContext, remove: readonly FactorRef[]): Promise<EnrolledFactor[]> {
  const remaining = actx.wallet.enrolled.filter((e) => !remove.some((r) => r.kind === e.record.kind && r.id === e.record.id));
  if (remaining.length !== actx.wallet.enrolled.length - remove.length) throw notApplicable('the factor to remove is no longer enrolled');
  for (const r of remove) await tx.deleteFactorRow(rowKind(r.kind), actx.wallet.wallet.name, r.id);
  await tx.updateWalletMac(
    actx.wallet.wallet.name,
    macWallet(
      actx.barrier,
      actx.wallet.wallet,
      remaining.map((e) => e.record),
    ),
  );
  return remaining;
}

/** A factor record carried in a payload (made and MAC'd by the enrolment page), checked before it is inserted. */
function payloadRecord(actx: ApplyContext, payload: Record<string, unknown>): { factor: Factor; record: FactorRecord<object> } {
  const record = payload.record as FactorRecord<object> | undefined;
  const factor = actx.factors.find((f) => f.kind === record?.kind);
  if (record === undefined || factor === undefined || record.walletName !== actx.wallet.wallet.name)
    throw notApplicable('the new factor does not belong to this wallet');
  const broken = verifyFactorRecords(actx.barrier, [record]);
  if (broken !== undefined) throw broken;
  return { factor, record };
}

async function insertFactor(
  tx: StoreTx,
  actx: ApplyContext,
  remaining: readonly EnrolledFactor[],
  factor: Factor,
  record: FactorRecord<object>,
): Promise<void> {
  if (remaining.some((e) => e.record.kind === record.kind && (ONE_PER_WALLET.has(record.kind) || e.record.id === record.id)))
    throw notApplicable(`the wallet has a ${record.kind} factor already`);
  try {
    await factor.rows.insert(tx, record);
  } catch (error) {
    if (error instanceof CustosError && error.code === 'already_enrolled') throw notApplicable('this factor is enrolled already (for this or another wallet)');
    throw error;
  }
  await tx.updateWalletMac(actx.wallet.wallet.name, macWallet(actx.barrier, actx.wallet.wallet, [...remaining.map((e) => e.record), record]));
}

/**
 * A factor as the owner and the admins read it in a change's line ("Add a …", "Remove the …"): what it
 * is, never a secret — a delivery factor by its channel only (the address itself stays sealed in the
 * record; the approver's view shows it masked, changeFactorView.ts), a passkey by the start of its
 * credential id.
 */
function factorLabel(ref: { kind?: unknown; id?: unknown; state?: unknown }): string {
  switch (ref.kind) {
    case 'totp':
      return 'authenticator app (TOTP)';
    case 'passkey':
      return `passkey ${String(ref.id).slice(0, 12)}…`;
    case 'hwkey':
      return 'hardware key (card)';
    case 'oob': {
      const channel = (ref.state as { channel?: unknown } | undefined)?.channel;
      return channel === 'email'
        ? 'e-mail address for signing codes'
        : channel === 'webhook'
          ? 'webhook recipient for signing codes'
          : 'delivery address for signing codes';
    }
    default:
      return `${String(ref.kind)} factor`;
  }
}

function withArticle(label: string): string {
  return `${/^[aeiou]/i.test(label) ? 'an' : 'a'} ${label}`;
}

const KINDS: Record<string, ChangeKind> = {
  '2fa.disable': {
    parse(payload) {
      if (payload !== undefined && payload !== null && (typeof payload !== 'object' || Object.keys(payload).length > 0))
        throw invalidInput('payload', 'none (or {})');
      return {};
    },
    describe: () => 'Turn off two-factor protection (remove every factor)',
    async apply(tx, actx) {
      const removed = actx.wallet.enrolled.map((e) => ({ kind: e.record.kind, id: e.record.id }));
      await removeFactors(tx, actx, removed);
      return { removed };
    },
  },
  'factor.remove': {
    parse: (payload, wallet) => parseFactorRef(payload, wallet),
    describe: (payload) => `Remove the ${factorLabel(payload)}`,
    async apply(tx, actx, payload) {
      const ref = { kind: String(payload.kind), id: String(payload.id) };
      await removeFactors(tx, actx, [ref]);
      return { removed: [ref] };
    },
  },
  'factor.add': {
    describe: (payload) => `Add ${withArticle(factorLabel(payload.record as FactorRef))}`,
    async apply(tx, actx, payload) {
      const { factor, record } = payloadRecord(actx, payload);
      await insertFactor(tx, actx, actx.wallet.enrolled, factor, record);
      return { added: { kind: record.kind, id: record.id } };
    },
  },
  'factor.replace': {
    describe: (payload) => `Replace the ${factorLabel(payload.remove as FactorRef)} by ${withArticle(factorLabel(payload.record as FactorRef))}`,
    async apply(tx, actx, payload) {
      const remove = payload.remove as FactorRef;
      const { factor, record } = payloadRecord(actx, payload);
      const remaining = await removeFactors(tx, actx, [remove]);
      await insertFactor(tx, actx, remaining, factor, record);
      return { removed: [remove], added: { kind: record.kind, id: record.id } };
    },
  },
  'delivery.change': {
    describe: () => 'Change the address that receives your signing codes and notices',
    async apply(tx, actx, payload) {
      const { factor, record } = payloadRecord(actx, payload);
      const current = actx.wallet.enrolled.find((e) => e.record.kind === 'oob');
      if (current === undefined) throw notApplicable('the wallet has no delivery address to change');
      // The counts that protect the owner (consecutive failures, the lock, the hour's messages) carry
      // over from the row in force now; the codes sent to the old address die with it.
      const old = current.record.state as OobFactorState;
      const next: FactorRecord<object> = { ...record, state: factor.rows.stored({ ...old, channel: (record.state as OobFactorState).channel, codes: [] }) };
      next.mac = macFactorRecord(actx.barrier, next);
      const remaining = await removeFactors(tx, actx, [{ kind: 'oob', id: current.record.id }]);
      await insertFactor(tx, actx, remaining, factor, next);
      return { replaced: true, channel: (record.state as OobFactorState).channel, previousChannel: old.channel };
    },
  },
  'safeAddress.set': {
    parse(payload) {
      const address = (payload as { address?: unknown } | null)?.address;
      if (typeof address !== 'string' || !/^0x[0-9a-fA-F]{40}$/.test(address)) throw invalidInput('payload.address', 'an address: 0x and 40 hex digits');
      return { address: address.toLowerCase() };
    },
    describe: (payload) => `Set the wallet’s safe address (emergency exit) to ${String(payload.address)}`,
    async apply(tx, actx, payload) {
      const previous = await tx.getSafeAddressForUpdate(actx.wallet.wallet.name);
      const record: SafeAddressRecord = { walletName: actx.wallet.wallet.name, address: String(payload.address), updatedAt: actx.now, mac: '' };
      record.mac = macRow(actx.barrier, SAFE_ADDRESS_MAC_LABEL, record);
      await tx.putSafeAddress(record);
      return { safeAddress: record.address, previousSafeAddress: previous?.address ?? null };
    },
  },
  'policy.loosen': {
    parse(payload) {
      // The override to take effect, checked now (walletPolicy.ts): a payload that is no policy is refused at the request.
      return { policy: assertWalletPolicy((payload as { policy?: unknown } | null)?.policy, 'payload.policy') };
    },
    describe: () => 'Loosen the wallet’s policy (limits or allowed destinations)',
    async apply(tx, actx, payload) {
      // hook: policy — the policy part of issue 13 applies it (and checks it is a policy, and no looser than the owner was shown).
      if (actx.hooks.applyPolicy === undefined) throw notApplicable('this signer has no wallet policy to loosen');
      return actx.hooks.applyPolicy(tx, {
        walletName: actx.wallet.wallet.name,
        tenant: actx.tenant,
        policy: payload.policy,
        ...(payload.to === undefined ? {} : { approved: payload.to }),
        now: actx.now,
      });
    },
  },
};

/** The kinds the backend may ask for over the API. */
export const REQUESTABLE_CHANGE_KINDS = Object.keys(KINDS).filter((kind) => KINDS[kind]?.parse !== undefined);

function kindOf(kind: string): ChangeKind {
  const found = KINDS[kind];
  if (found === undefined) throw new CustosError('record_unreadable', 'a pending change names an unknown kind');
  return found;
}

function storedEffective(value: unknown, field: string): EffectivePolicy {
  return effectivePolicy({}, assertWalletPolicy(value, field));
}

/**
 * A `policy.loosen`'s difference, field by field, from the two effective policies the kernel stored in
 * its payload when it was asked for (`from`: in force then; `to`: what it gives) — never from text a
 * backend supplied. Undefined for another kind, or a row stored before the kernel recorded them.
 */
export function policyDiffOfPayload(kind: string, payload: Record<string, unknown>): PolicyDiffEntry[] | undefined {
  if (kind !== 'policy.loosen' || payload.from === undefined || payload.to === undefined) return undefined;
  return diffPolicies(storedEffective(payload.from, 'payload.from'), storedEffective(payload.to, 'payload.to'));
}

/**
 * The change as text: its one line, then — for a `policy.loosen` — every field it changes, old → new
 * (policyDiffLines: every list entry, control characters replaced). What the code e-mail and every
 * notice of the change carry (the first line is their subject line).
 */
export function describeChange(record: Pick<PendingChangeRecord, 'kind' | 'payload'>): string {
  const payload = JSON.parse(record.payload) as Record<string, unknown>;
  const line = kindOf(record.kind).describe(payload);
  if (record.kind !== 'policy.loosen') return line;
  const diff = policyDiffOfPayload(record.kind, payload);
  if (diff === undefined)
    return `${line}\nThe new override, in full (asked for before the signer recorded the difference): ${canonicalJson(payload.policy ?? null)}`;
  return [line, 'What changes (old → new):', ...policyDiffLines(diff)].join('\n');
}

/**
 * The payload of a `policy.loosen` as the kernel stores it: the override to write (`policy`), the
 * effective policy in force now (`from`) and the one the override gives under the deployment's
 * defaults read in this unit (`to`). The owner is shown `from` → `to`; the apply refuses a result
 * looser than `to` (walletPolicies.ts applyPolicyHook).
 */
export async function policyLoosenPayload(tx: StoreTx, ctx: KernelContext, wallet: OpenedWallet, policy: WalletPolicy): Promise<Record<string, unknown>> {
  const defaults = ctx.timelock.policyDefaultsIn === undefined ? ctx.policy.defaults : await ctx.timelock.policyDefaultsIn(tx);
  const from = (await walletPolicyIn(tx, ctx.requireBarrier(), { ...ctx.policy, defaults }, wallet)).policy;
  return { policy, from, to: effectivePolicy(defaults, policy) };
}

// ── rows, views, capabilities ──────────────────────────────────────────────────────────────

export interface PendingChangeView {
  id: string;
  walletName: string;
  kind: string;
  description: string;
  /** A `policy.loosen`: every field it changes, old → new (policyDiff.ts), computed from the policies the kernel stored. */
  policyDiff?: PolicyDiffEntry[];
  /**
   * A change of a wallet that needs the admin quorum besides its owner (needsQuorum: TOTP only):
   * `waiting` until the quorum's `wallet.change.approve` is recorded on the row, then `approved`.
   * Absent when the wallet needs no quorum (or the view was read without the wallet's rows).
   */
  adminApproval?: 'waiting' | 'approved';
  state: PendingChangeState;
  createdAt: number;
  expiresAt: number;
  effectiveAt: number | null;
  decidedAt: number | null;
}

export interface CreatedChange extends PendingChangeView {
  /** The page's capability token (once): the owner confirms (and may cancel) on `/changes/<capability>`. */
  capability: string;
  /** The strength the owner's consent needs (the strongest the wallet has enrolled). */
  requiredStrength: Strength;
}

export interface ChangePage extends PendingChangeView {
  /** The wallet's owner page (`/owner/<ownerCapability>`): its activity, its open changes, "this was not me". */
  ownerCapability: string;
  /** What the page asks for: the consent (requested) or a cancel (pending); none once decided. */
  action: 'confirm' | 'cancel' | null;
  /** The strength the answer needs, and the wallet's factor kinds that can give it. */
  consent?: {
    required: Strength | 'present';
    kinds: string[];
    passkey?: unknown;
    byLink?: boolean;
    /**
     * With a card among `kinds`: what it signs for this change and step (hex, the 32 bytes as they
     * are) and at which subpath. A card's confirmation counts `bound` only when posted from the
     * browser it was enrolled in on the page (its device cookie), as an unfreeze does.
     */
    card?: { digest: string; subpath: string };
  };
}

function macChange(barrier: Barrier, record: PendingChangeRecord): string {
  return macRow(barrier, CHANGE_MAC_LABEL, record);
}

/** The change row's MAC holds (also read by quorumWiring.ts to show an approver the change). */
export function intact(barrier: Barrier, record: PendingChangeRecord): boolean {
  return rowIntact(barrier, CHANGE_MAC_LABEL, record, undefined);
}

function stateAt(record: PendingChangeRecord, now: number): PendingChangeState {
  return record.state === 'requested' && now >= record.expiresAt ? 'expired' : record.state;
}

function viewOf(record: PendingChangeRecord, now: number, enrolled?: readonly EnrolledFactor[]): PendingChangeView {
  const payload = JSON.parse(record.payload) as Record<string, unknown>;
  const diff = policyDiffOfPayload(record.kind, payload);
  const quorum = enrolled !== undefined && needsQuorum(enrolled) ? { adminApproval: quorumApprovalOf(record) === undefined ? 'waiting' : 'approved' } : {};
  return {
    id: record.id,
    walletName: record.walletName,
    kind: record.kind,
    description: kindOf(record.kind).describe(payload),
    ...(diff === undefined ? {} : { policyDiff: diff }),
    ...(quorum as { adminApproval?: 'waiting' | 'approved' }),
    state: stateAt(record, now),
    createdAt: record.createdAt,
    expiresAt: record.expiresAt,
    effectiveAt: record.effectiveAt,
    decidedAt: record.decidedAt,
  };
}

function changeNotFound(field = 'id'): CustosError {
  return new CustosError('change_not_found', 'no pending change matches this id or link', { details: { field } });
}

function unreadable(): CustosError {
  return new CustosError('record_unreadable', 'the pending change does not match its MAC (it was changed): refusing to act', { details: { field: 'id' } });
}

function stateError(state: PendingChangeState): CustosError {
  if (state === 'expired') return new CustosError('change_expired', 'the change was not confirmed in time: ask for it again', { details: { state } });
  return new CustosError('change_not_pending', `the change is ${state}: this step is not possible`, { details: { state } });
}

export function assertChangeId(id: unknown): string {
  if (typeof id !== 'string' || !CHANGE_ID.test(id)) throw invalidInput('id', 'a change id: 32 lowercase hex digits', typeof id);
  return id;
}

/** The notice link's capability: derived under the barrier from the change's id, so only the kernel (and the channel it delivers to) knows it. */
export function noticeCapabilityOf(barrier: Barrier, id: string): string {
  return Buffer.from(hexToBytes(barrier.macRecord(NOTICE_LABEL, encoder.encode(id))).subarray(0, 32)).toString('base64url');
}

function noticeCapabilityHash(barrier: Barrier, id: string): string {
  return capabilityHashOf(noticeCapabilityOf(barrier, id), () => new CustosError('internal', 'a notice capability is malformed'));
}

/** The hash a consent to this change is bound to: the signer, the change's id, tenant, wallet, kind and exact payload. */
function changeOpHash(signerId: string, record: PendingChangeRecord): string {
  return toHex(
    sha256(
      encoder.encode(
        canonicalJson({
          label: 'custos.change.v1',
          signerId,
          id: record.id,
          tenant: record.tenant,
          walletName: record.walletName,
          kind: record.kind,
          payload: record.payload,
        }),
      ),
    ),
  );
}

/** The challenge a passkey answers on the change's page: bound to the change, the step and (cancel) the count so far. */
function changeChallenge(signerId: string, record: PendingChangeRecord, step: 'confirm' | 'cancel'): Uint8Array {
  return sha256(encoder.encode(`custos.change.${step}.v1\0${signerId}\0${record.id}\0${changeOpHash(signerId, record)}\0${record.cancelFailures}`));
}

function consentRef(signerId: string, record: PendingChangeRecord, step: 'confirm' | 'cancel') {
  const challenge = changeChallenge(signerId, record, step);
  // The id a delivered code is bound to (its subject): this change and this step, never an approval's.
  return {
    id: `timelock-${step}:${record.id}`,
    opHash: toHex(challenge),
    expiresAt: step === 'confirm' ? record.expiresAt : (record.effectiveAt ?? record.expiresAt),
    challenge,
  };
}

/**
 * A cancel's consent reference: with a budget of its own (an owner device's, a delivered link's;
 * kernel/ownerDevice.ts), a delivered code is bound to that budget's subject, so that codes the backend
 * asks for through the page link (the shared subject) never void the owner's.
 */
function cancelRef(signerId: string, record: PendingChangeRecord, budgetKey: string | undefined) {
  const ref = consentRef(signerId, record, 'cancel');
  return budgetKey === undefined ? ref : { ...ref, id: `${ref.id}:${budgetKey}` };
}

/** The strongest strength among the wallet's factors (what a request's consent needs). */
function strongestEnrolled(enrolled: readonly EnrolledFactor[]): Strength {
  return enrolled.some((e) => strongestOf(e.factor, e.record) === 'bound') ? 'bound' : 'present';
}

/**
 * Whether the wallet needs an admin quorum besides its owner: no kernel-delivered channel the backend
 * cannot read and no `bound` factor (TOTP only). A delivery factor counts only when it can give
 * `bound` (e-mail, a trusted webhook): an untrusted webhook's notices may reach the backend alone,
 * which could drop them, so it counts as no channel.
 */
export function needsQuorum(enrolled: readonly EnrolledFactor[]): boolean {
  return strongestEnrolled(enrolled) !== 'bound';
}

/**
 * Queues a timelock notice to EVERY delivery channel the wallet has enrolled (each oob row's address),
 * and to `also` (a delivery address the change adds, told when it takes effect), each address once.
 */
async function notify(
  tx: StoreTx,
  ctx: KernelContext,
  barrier: Barrier,
  enrolled: readonly EnrolledFactor[],
  record: PendingChangeRecord,
  event: TimelockNotice['event'],
  now: number,
  also: readonly FactorRecord<object>[] = [],
): Promise<number> {
  let queued = 0;
  const told = new Set<string>();
  for (const row of [...enrolled.map((e) => e.record), ...also]) {
    if (row.kind !== 'oob') continue;
    const address = oobAddressOf(barrier, row);
    const key = `${address.channel}\0${address.address}`;
    if (told.has(key)) continue;
    told.add(key);
    await enqueueMessage(tx, barrier, (n) => ctx.random(n), {
      message: {
        kind: 'timelock',
        ...address,
        walletName: record.walletName,
        capability: noticeCapabilityOf(barrier, record.id),
        summaryText: describeChange(record),
        change: { event, changeKind: record.kind, effectiveAt: record.effectiveAt },
      },
      approvalId: null,
      now,
      expiresAt: now + NOTICE_TTL_MS,
    });
    queued += 1;
  }
  return queued;
}

function settings(ctx: KernelContext): TimelockSettings {
  return ctx.timelock;
}

/** The delay for a change decided now in this unit (the deployment settings' when the kernel reads them). */
async function delayInForce(tx: StoreTx, ctx: KernelContext): Promise<number> {
  const { delayInForce: read, delayMs } = settings(ctx);
  return read === undefined ? delayMs : read(tx);
}

/**
 * The reminders a change decided `now` skips (its `reminders` at the decision): the 24 h one when
 * the delay is at most 24 h 30 min, the 1 h one when it is at most 1 h 30 min. The 30 min one is
 * never skipped, and the delay is at least 1 h: every change is reminded at least once, at least
 * 30 min after its announcement.
 */
function remindersSkipped(effectiveAt: number, now: number): number {
  return [REMINDERS_MS[0], REMINDERS_MS[1]].filter((before) => effectiveAt - now <= before + REMINDER_GAP_MS).length;
}

/** The reminder times (REMINDERS_MS) passed at `now`. */
function remindersPassed(effectiveAt: number, now: number): number {
  return REMINDERS_MS.filter((before) => effectiveAt - now <= before).length;
}

/** Writes a change's next step with its MAC; a terminal state is anchored in the log (rowAnchors.ts: a row put back to `pending` is refused). */
async function writeChange(tx: StoreTx, barrier: Barrier, next: PendingChangeRecord, now?: number): Promise<PendingChangeRecord> {
  next.mac = macChange(barrier, next);
  await tx.updatePendingChange(next.id, {
    state: next.state,
    effectiveAt: next.effectiveAt,
    decidedAt: next.decidedAt,
    reminders: next.reminders,
    cancelFailures: next.cancelFailures,
    consent: next.consent,
    mac: next.mac,
  });
  if (TERMINAL_CHANGE_STATES.includes(next.state))
    await anchorRow(tx, { row: 'change', key: next.id, state: next.state, walletName: next.walletName, ts: now ?? next.decidedAt ?? next.createdAt });
  return next;
}

async function openChanges(tx: StoreTx, walletName: string, now: number): Promise<PendingChangeRecord[]> {
  return (await tx.listOpenPendingChangesOfWallet(walletName)).filter((r) => stateAt(r, now) === 'requested' || r.state === 'pending');
}

function baseOf(record: PendingChangeRecord, action: string, now: number, appId: string | null): AuditBase {
  return { ts: now, appId, walletName: record.walletName, action, opHash: null, detail: { changeId: record.id, kind: record.kind } };
}

// ── request (API) ─────────────────────────────────────────────────────────────────────────

/**
 * The backend asks for a change (scope `register`): the wallet must have a factor (the owner consents
 * with it); the payload is parsed by its kind; the row is `requested` until the owner confirms on the
 * page behind the returned capability, or it expires. Audited `change.request`.
 */
export async function requestChange(
  ctx: KernelContext,
  app: App,
  request: { walletName: unknown; kind: unknown; payload?: unknown; ttlSeconds?: unknown },
): Promise<CreatedChange> {
  const barrier = ctx.requireBarrier();
  const walletName = assertWalletName(request.walletName);
  const kind = request.kind;
  if (typeof kind !== 'string' || !REQUESTABLE_CHANGE_KINDS.includes(kind)) throw invalidInput('kind', `one of ${REQUESTABLE_CHANGE_KINDS.join(', ')}`);
  const ttlSeconds = assertTtlSeconds(request.ttlSeconds, CHANGE_TTL_SECONDS);
  const id = toHex(ctx.random(16));
  const { capability, capabilityHash } = newCapability(ctx);
  const outcome = await ctx.transact(async (tx): Promise<Outcome<{ record: PendingChangeRecord; required: Strength; enrolled: EnrolledFactor[] }>> => {
    const now = ctx.now();
    const base: AuditBase = { ts: now, appId: app.id, walletName, action: 'change.request', opHash: null, detail: { changeId: id, kind } };
    const forbidden = checkScope(app, 'register');
    if (forbidden !== undefined) return deny(tx, base, forbidden);
    const wallet = await openWallet(tx, barrier, ctx.factors, { tenant: app.tenant, walletPrefix: app.walletPrefix, walletName, nowMs: now, create: false });
    if (!wallet.ok) return deny(tx, base, wallet.error);
    if (wallet.value.enrolled.length === 0)
      return deny(
        tx,
        base,
        new CustosError('factor_required', 'the wallet has no factor: nothing to protect, and no owner to consent', { details: { field: 'walletName' } }),
      );
    let payload: Record<string, unknown>;
    try {
      payload = (KINDS[kind] as Required<ChangeKind>).parse(request.payload, wallet.value);
      // A loosening carries the policy in force and the one it gives, computed here (what the owner is shown, and the apply's bound).
      if (kind === 'policy.loosen') payload = await policyLoosenPayload(tx, ctx, wallet.value, payload.policy as WalletPolicy);
    } catch (error) {
      if (error instanceof CustosError) return deny(tx, base, error);
      throw error;
    }
    // hook: policy — without the policy module there is no policy to loosen: refused now, not after the delay.
    if (kind === 'policy.loosen' && settings(ctx).hooks.applyPolicy === undefined)
      return deny(tx, base, notApplicable('this signer has no wallet policy to loosen'));
    if ((await openChanges(tx, walletName, now)).length >= MAX_OPEN_CHANGES_PER_WALLET)
      return deny(
        tx,
        base,
        new CustosError('changes_limited', `a wallet has at most ${MAX_OPEN_CHANGES_PER_WALLET} open changes at once`, { details: { field: 'walletName' } }),
      );
    const required = strongestEnrolled(wallet.value.enrolled);
    const record: PendingChangeRecord = {
      id,
      tenant: app.tenant,
      apiKeyId: app.id,
      walletName,
      kind,
      payload: canonicalJson(payload),
      capabilityHash,
      noticeCapabilityHash: noticeCapabilityHash(barrier, id),
      state: 'requested',
      createdAt: now,
      expiresAt: now + ttlSeconds * 1000,
      effectiveAt: null,
      decidedAt: null,
      reminders: 0,
      cancelFailures: 0,
      consent: null,
      mac: '',
    };
    record.mac = macChange(barrier, record);
    await tx.insertPendingChange(record);
    // The change page's "not me" link opens the wallet's owner page: its lookup hash is recorded now.
    await ownerLinkOf(tx, barrier, wallet.value.wallet);
    await tx.appendAudit(
      auditRecord({ ...base, detail: { ...base.detail, requiredStrength: required, quorum: needsQuorum(wallet.value.enrolled) } }, { allowed: {} }),
    );
    return { ok: true, value: { record, required, enrolled: wallet.value.enrolled } };
  });
  const { record, required, enrolled } = settle(outcome);
  return { ...viewOf(record, ctx.now(), enrolled), capability, requiredStrength: required };
}

/** A change of the caller's tenant, by id (change_not_found for any other). */
export async function getChange(ctx: KernelContext, app: App, request: { id: unknown }): Promise<PendingChangeView> {
  const barrier = ctx.requireBarrier();
  const id = assertChangeId(request.id);
  const forbidden = checkScope(app, 'register');
  if (forbidden !== undefined) throw forbidden;
  const record = await ctx.readStore(() => ctx.store.readPendingChange(id));
  if (record === undefined || !walletInReach(app, record)) throw changeNotFound();
  if (!intact(barrier, record)) throw unreadable();
  return viewOf(record, ctx.now(), await enrolledOf(ctx, record.walletName));
}

/** The wallet's factors as its rows hold them now (for what a view shows: the apply opens the wallet, MACs checked, itself). */
async function enrolledOf(ctx: KernelContext, walletName: string): Promise<EnrolledFactor[]> {
  const rows = await ctx.readStore(() => ctx.store.readWalletRows(walletName));
  return ctx.factors.flatMap((factor) => factor.rows.fromWalletRows(rows, walletName).map((r) => ({ factor, record: r })));
}

/**
 * A confirm or cancel over the API: refused `owner_consent_required`, audited — only the owner on the
 * kernel's page (or the delivered link) decides a change. A change of another tenant is not found.
 */
export async function refuseApiDecision(ctx: KernelContext, app: App, request: { id: unknown }, step: 'confirm' | 'cancel'): Promise<never> {
  ctx.requireBarrier();
  const id = assertChangeId(request.id);
  const record = await ctx.readStore(() => ctx.store.readPendingChange(id));
  if (record === undefined || !walletInReach(app, record)) throw changeNotFound();
  const refusal = new CustosError(
    'owner_consent_required',
    `a change is ${step === 'confirm' ? 'confirmed' : 'cancelled'} only by its owner, on the signer’s page`,
    {
      details: { field: 'id' },
    },
  );
  await ctx.transact(async (tx) =>
    deny(tx, { ...baseOf(record, `change.${step}`, ctx.now(), app.id), detail: { changeId: id, kind: record.kind, via: 'api' } }, refusal),
  );
  throw refusal;
}

// ── the page ──────────────────────────────────────────────────────────────────────────────

/** What the change's page shows (its page link or its delivered link): the change, and what the owner may do. */
export async function openChangePage(ctx: KernelContext, capability: unknown): Promise<ChangePage> {
  const barrier = ctx.requireBarrier();
  const capabilityHash = capabilityHashOf(capability, () => changeNotFound('capability'));
  const record = await ctx.readStore(() => ctx.store.readPendingChangeByCapability(capabilityHash));
  if (record === undefined) throw changeNotFound('capability');
  if (!intact(barrier, record)) throw unreadable();
  const now = ctx.now();
  const state = stateAt(record, now);
  const action = state === 'requested' ? 'confirm' : state === 'pending' ? 'cancel' : null;
  const owner = { ownerCapability: ownerCapability(barrier, { tenant: record.tenant, name: record.walletName }) };
  if (action === null) return { ...viewOf(record, now), ...owner, action };
  const enrolled = await enrolledOf(ctx, record.walletName);
  const view = viewOf(record, now, enrolled);
  const required = action === 'confirm' ? strongestEnrolled(enrolled) : 'present';
  const kinds = [...new Set(enrolled.filter((e) => required === 'present' || strongestOf(e.factor, e.record) === 'bound').map((e) => e.factor.kind))];
  const consent: NonNullable<ChangePage['consent']> = { required, kinds, ...(await answerSteps(ctx, record, enrolled, action, kinds)) };
  if (
    action === 'cancel' &&
    byDeliveredLink(record, capabilityHash) &&
    enrolled.some((e) => e.record.kind === 'oob' && (e.record.state as OobFactorState).channel === 'email')
  )
    consent.byLink = true;
  return { ...view, ...owner, action, consent };
}

/** What a card signs (this change and step's digest, at its subpath) and the passkey's options for this change and step, where the wallet has them. */
async function answerSteps(
  ctx: KernelContext,
  record: PendingChangeRecord,
  enrolled: readonly EnrolledFactor[],
  action: 'confirm' | 'cancel',
  kinds: readonly string[],
): Promise<{ card?: { digest: string; subpath: string }; passkey?: unknown }> {
  const steps: { card?: { digest: string; subpath: string }; passkey?: unknown } = {};
  const card = enrolled.find((e) => e.factor.kind === 'hwkey');
  if (card !== undefined && kinds.includes('hwkey'))
    steps.card = {
      digest: consentRef(ctx.signerId(), record, action).opHash,
      subpath: String((card.record.state as { subpath?: unknown }).subpath ?? ''),
    };
  const passkeys = enrolled.filter((e) => e.factor.kind === 'passkey' && e.factor.challengeOptions !== undefined);
  const [first] = passkeys;
  if (first !== undefined) {
    const ref = consentRef(ctx.signerId(), record, action);
    steps.passkey = await (first.factor.challengeOptions as NonNullable<Factor['challengeOptions']>).call(first.factor, {
      records: passkeys.map((e) => e.record),
      challenge: ref.challenge,
      approval: ref,
      now: ctx.now(),
    });
  }
  return steps;
}

/** One open change of a wallet as its owner page shows it: the change, and what cancels it there (any current factor, or a recovery code). */
export interface OwnerPageChange extends PendingChangeView {
  cancel: { kinds: string[]; passkey?: unknown; card?: { digest: string; subpath: string } };
}

/**
 * The wallet's open changes (requested, or pending) for its owner page, the ones the kernel queued
 * itself included (a quorum's factor reset, an enrolment page's factor): each with what cancels it
 * (cancelChangeFromOwnerPage). A row failing its MAC is only counted (`unreadableChanges`): none of
 * its fields is shown, and the page — its freeze button first — is still shown.
 */
export async function openChangesForOwner(
  ctx: KernelContext,
  wallet: { tenant: string; name: string },
  enrolled: readonly EnrolledFactor[],
): Promise<{ changes: OwnerPageChange[]; unreadableChanges: number }> {
  const barrier = ctx.requireBarrier();
  const now = ctx.now();
  const records = await ctx.transact((tx) => openChanges(tx, wallet.name, now));
  const kinds = [...new Set(enrolled.map((e) => e.factor.kind))];
  const changes: OwnerPageChange[] = [];
  let unreadableChanges = 0;
  for (const record of records) {
    // A row failing its MAC first: its tenant may be what was changed (re-pointed to this wallet).
    if (!intact(barrier, record)) {
      unreadableChanges += 1;
      continue;
    }
    if (record.tenant !== wallet.tenant) continue;
    changes.push({ ...viewOf(record, now, enrolled), cancel: { kinds, ...(await answerSteps(ctx, record, enrolled, 'cancel', kinds)) } });
  }
  return { changes, unreadableChanges };
}

function byDeliveredLink(record: PendingChangeRecord, capabilityHash: string): boolean {
  return record.noticeCapabilityHash === capabilityHash;
}

/**
 * The owner asks, on the change's page, for a code on the wallet's delivery channel (a wallet whose
 * consent is a delivered code): the oob factor issues a send bound to this change and step, queued
 * through the outbox (sendOobConsentCode); audited `change.code`. A confirm's code is under the
 * factor's sends per subject, hourly cap and lock; a cancel's under the cancel codes' own cap only
 * (a lock or a used-up cap that a backend provoked never keeps the owner from cancelling).
 */
export async function sendChangeCode(ctx: KernelContext, capability: unknown, deviceTokens?: readonly string[]): Promise<ChangePage> {
  const barrier = ctx.requireBarrier();
  const capabilityHash = capabilityHashOf(capability, () => changeNotFound('capability'));
  const outcome = await ctx.transact(async (tx): Promise<Outcome<PendingChangeRecord>> => {
    const record = await tx.getPendingChangeByCapabilityForUpdate(capabilityHash);
    if (record === undefined) return { ok: false, error: changeNotFound('capability') };
    const now = ctx.now();
    const base = baseOf(record, 'change.code', now, null);
    if (!intact(barrier, record)) return deny(tx, base, unreadable());
    const state = stateAt(record, now);
    if (state !== 'requested' && state !== 'pending') return deny(tx, base, stateError(state));
    const step = state === 'requested' ? 'confirm' : 'cancel';
    if (step === 'confirm' && byDeliveredLink(record, capabilityHash)) return deny(tx, base, stateError('pending'));
    const wallet = await openWallet(tx, barrier, ctx.factors, { tenant: record.tenant, walletName: record.walletName, nowMs: now, create: false });
    if (!wallet.ok) return deny(tx, base, wallet.error);
    const oob = wallet.value.enrolled.find((e) => e.record.kind === 'oob');
    if (oob === undefined) return deny(tx, base, new CustosError('factor_required', 'the wallet has no delivery address', { details: { field: 'kind' } }));
    // A cancel's code is sent whatever the factor's lock and hourly cap (its own cap: oobFactor.ts).
    // From an owner device, or through the delivered link, it is counted on that budget's own cap
    // (kernel/ownerDevice.ts: the backend cannot use it up) and bound to that budget's subject (a code
    // the backend asks for through the page link never voids it).
    const budgetKey =
      step === 'cancel'
        ? cancelBudgetKey(
            ownerDeviceOf(barrier, { tenant: record.tenant, name: record.walletName }, deviceTokens, now),
            byDeliveredLink(record, capabilityHash),
            record.id,
          )
        : undefined;
    let budget: CancelBudgetRecord | undefined;
    let sends: { count: number; start: number } | undefined;
    if (budgetKey !== undefined) {
      try {
        budget = await lockCancelBudget(tx, barrier, record.walletName, budgetKey, now);
      } catch (error) {
        if (error instanceof CustosError) return deny(tx, base, error);
        throw error;
      }
      const cap = isOobFactor(oob.factor) ? oob.factor.limits.cancelPerHour : DEFAULT_OOB_LIMITS.cancelPerHour;
      sends = windowed(budget.sentInWindow, budget.sendWindowStart, now, HOUR_MS);
      if (sends.count >= cap)
        return deny(
          tx,
          { ...base, detail: { ...base.detail, budget: budgetKind(budgetKey) } },
          new CustosError(
            'delivery_limited',
            `no code was sent: at most ${cap} cancel codes per hour ${budgetKind(budgetKey) === 'device' ? 'from this browser' : 'through this link'}`,
            {
              details: { field: 'walletName' },
            },
          ),
          'oob',
        );
    }
    const ref =
      step === 'cancel'
        ? { ...cancelRef(ctx.signerId(), record, budgetKey), cancel: true as const, ...(budgetKey === undefined ? {} : { ownCap: true as const }) }
        : consentRef(ctx.signerId(), record, step);
    const sent = await sendOobConsentCode(tx, ctx, barrier, {
      oob,
      tenant: record.tenant,
      walletName: record.walletName,
      ref,
      summaryText: describeChange(record),
      now,
    });
    if (!sent.ok) return deny(tx, base, sent.error, 'oob');
    if (budget !== undefined && sends !== undefined)
      await saveCancelBudget(tx, barrier, { ...budget, sentInWindow: sends.count + 1, sendWindowStart: sends.start });
    await tx.appendAudit(
      auditRecord(
        { ...base, detail: { ...base.detail, step, counter: sent.counter, ...(step === 'cancel' ? { budget: budgetKind(budgetKey) } : {}) } },
        { allowed: {} },
      ),
    );
    return { ok: true, value: record };
  });
  settle(outcome);
  ctx.deliveryQueued?.();
  return openChangePage(ctx, capability);
}

/**
 * The owner's consent on the change's page: the proof of a factor of the strongest strength the wallet
 * has enrolled (a wrong one charged to that factor, as any consent), bound to this change. The change
 * becomes `pending`, effective after the delay, announced on the wallet's channel, audited `change.confirm`.
 */
export async function confirmChange(
  ctx: KernelContext,
  capability: unknown,
  answer: { kind?: unknown; proof?: unknown; deviceTokens?: readonly string[] },
): Promise<PendingChangeView> {
  const barrier = ctx.requireBarrier();
  const capabilityHash = capabilityHashOf(capability, () => changeNotFound('capability'));
  let queued = 0;
  const outcome = await ctx.transact(async (tx): Promise<Outcome<PendingChangeRecord>> => {
    const record = await tx.getPendingChangeByCapabilityForUpdate(capabilityHash);
    if (record === undefined) return { ok: false, error: changeNotFound('capability') };
    const now = ctx.now();
    const base = { ...baseOf(record, 'change.confirm', now, null), detail: { changeId: record.id, kind: record.kind, via: 'page' } };
    if (!intact(barrier, record)) return deny(tx, base, unreadable());
    // A change the log says was decided (applied, cancelled, expired) and whose row says otherwise was put back: refused.
    const rolled = await anchorRefusal(tx, 'change', record.id, record.state);
    if (rolled !== undefined) return deny(tx, base, rolled);
    // Only the page link the backend handed over confirms; the delivered link only cancels.
    if (byDeliveredLink(record, capabilityHash)) return deny(tx, base, stateError('pending'));
    const state = stateAt(record, now);
    if (state !== 'requested') return deny(tx, base, stateError(state));
    if (record.apiKeyId !== null && (await creatorRevoked(ctx, record.apiKeyId))) return deny(tx, base, stateError('cancelled'));
    const wallet = await openWallet(tx, barrier, ctx.factors, { tenant: record.tenant, walletName: record.walletName, nowMs: now, create: false });
    if (!wallet.ok) return deny(tx, base, wallet.error);
    const required = strongestEnrolled(wallet.value.enrolled);
    const card = wallet.value.enrolled.find((e) => e.factor.kind === 'hwkey');
    const cardDevice = card !== undefined && hwkeyDeviceMatches(barrier, card.record, answer.deviceTokens);
    let evidence: Record<string, unknown>;
    try {
      ({ evidence } = await decideConsentStrength(tx, barrier, {
        enrolled: wallet.value.enrolled,
        required,
        tenant: record.tenant,
        ...(typeof answer.kind === 'string' ? { proofKind: answer.kind } : {}),
        ...proofIdOf(answer.proof),
        opHash: changeOpHash(ctx.signerId(), record),
        proof: answer.proof,
        approval: consentRef(ctx.signerId(), record, 'confirm'),
        // The card's digest here is one the backend can compute, and a backend could have the
        // screenless card sign it in its own app: a card's answer counts as posted on the page
        // (`bound`) only with the device cookie of the browser the card was enrolled in on the page
        // (Path=/changes/), as an unfreeze; else it is relayed (`present`). Passkeys and delivered
        // codes are bound to the page.
        channel: (kind) => (kind !== 'hwkey' ? 'page' : cardDevice ? 'page' : 'relay'),
        now,
      }));
    } catch (error) {
      if (!(error instanceof ConsentRefused)) throw error;
      return deny(tx, { ...base, detail: { ...base.detail, requiredStrength: required } }, error.error, error.factor);
    }
    const effectiveAt = now + (await delayInForce(tx, ctx));
    const next = await writeChange(tx, barrier, {
      ...record,
      state: 'pending',
      effectiveAt,
      reminders: remindersSkipped(effectiveAt, now),
      consent: canonicalJson(evidence),
    });
    queued = await notify(tx, ctx, barrier, wallet.value.enrolled, next, 'announced', now);
    const admins = await askAdmins(tx, ctx, wallet.value.enrolled, next);
    queued += admins.adminsTold ?? 0;
    await tx.appendAudit(auditRecord({ ...base, detail: { ...base.detail, effectiveAt, announced: queued, ...admins } }, { allowed: { consent: evidence } }));
    return { ok: true, value: next };
  });
  const record = settle(outcome);
  if (queued > 0) ctx.deliveryQueued?.();
  return viewOf(record, ctx.now());
}

/**
 * The owner cancels a requested or pending change: with ANY current factor (`present` is enough),
 * checked with the factor's throttle lifted (a lock a backend provoked never blocks a cancel) and a
 * wrong answer counted on the change's own counter (at CANCEL_MAX_FAILURES the page link takes no
 * more answers); on the link the kernel delivered by e-mail, the link itself is the proof (only the
 * owner's mailbox has it). Audited `change.cancel`; the owner is told on the channel.
 */
export async function cancelChange(
  ctx: KernelContext,
  capability: unknown,
  answer: { kind?: unknown; proof?: unknown; deviceTokens?: readonly string[] },
): Promise<PendingChangeView> {
  const capabilityHash = capabilityHashOf(capability, () => changeNotFound('capability'));
  return cancelLocated(
    ctx,
    async (tx) => {
      const record = await tx.getPendingChangeByCapabilityForUpdate(capabilityHash);
      if (record === undefined) return changeNotFound('capability');
      const viaLink = byDeliveredLink(record, capabilityHash);
      return { record, viaLink, via: viaLink ? 'notice' : 'page' };
    },
    answer,
  );
}

/**
 * The owner cancels one of the wallet's open changes on the wallet's owner page (`/owner/<capability>`):
 * the same rules as on the change's page (cancelChange: ANY current factor, its throttle lifted, the
 * change's own counter; a recovery code), for a change the kernel queued itself too (no page link was
 * ever handed out). A change id of another wallet, or none, is `change_not_found` (not audited: the
 * owner page names no other wallet). Audited `change.cancel` with `via: 'owner-page'`.
 */
export async function cancelChangeFromOwnerPage(
  ctx: KernelContext,
  ownerCapability: unknown,
  changeId: unknown,
  answer: { kind?: unknown; proof?: unknown; deviceTokens?: readonly string[] },
): Promise<PendingChangeView> {
  const id = assertChangeId(changeId);
  // The wallet is read (not locked) first: the unit then locks the change before the wallet, as cancelChange does.
  const owner = await findOwnerWallet(ctx, ownerCapability);
  return cancelLocated(
    ctx,
    async (tx) => {
      const record = await tx.getPendingChangeForUpdate(id);
      if (record === undefined || record.tenant !== owner.tenant || record.walletName !== owner.name) return changeNotFound('changeId');
      return { record, viaLink: false, via: 'owner-page' };
    },
    answer,
  );
}

/** cancelChange's one core: the change `locate` finds (locked, in the unit), cancelled with the owner's answer. */
async function cancelLocated(
  ctx: KernelContext,
  locate: (tx: StoreTx) => Promise<{ record: PendingChangeRecord; viaLink: boolean; via: string } | CustosError>,
  answer: { kind?: unknown; proof?: unknown; deviceTokens?: readonly string[] },
): Promise<PendingChangeView> {
  const barrier = ctx.requireBarrier();
  let queued = 0;
  const outcome = await ctx.transact(async (tx): Promise<Outcome<PendingChangeRecord>> => {
    const located = await locate(tx);
    if (located instanceof CustosError) return { ok: false, error: located };
    const { record, viaLink, via } = located;
    const now = ctx.now();
    const base = { ...baseOf(record, 'change.cancel', now, null), detail: { changeId: record.id, kind: record.kind, via } };
    if (!intact(barrier, record)) return deny(tx, base, unreadable());
    // A change the log says was decided and whose row says otherwise was put back: refused (as a confirm).
    const rolled = await anchorRefusal(tx, 'change', record.id, record.state);
    if (rolled !== undefined) return deny(tx, base, rolled);
    const state = stateAt(record, now);
    if (state !== 'requested' && state !== 'pending') return deny(tx, base, stateError(state));
    const wallet = await openWallet(tx, barrier, ctx.factors, { tenant: record.tenant, walletName: record.walletName, nowMs: now, create: false });
    if (!wallet.ok) return deny(tx, base, wallet.error);
    let evidence: Record<string, unknown>;
    const mailbox = wallet.value.enrolled.find((e) => e.record.kind === 'oob' && (e.record.state as OobFactorState).channel === 'email');
    // The budget the answer is counted on (kernel/ownerDevice.ts): an owner device's (its cookie, set
    // on the kernel's origin where the owner proved a factor: the backend never sees it), the delivered
    // link's (sent only to the owner's address), or the shared one (the page link, the owner page —
    // both of which the backend can reach).
    const budgetKey = cancelBudgetKey(ownerDeviceOf(barrier, { tenant: record.tenant, name: record.walletName }, answer.deviceTokens, now), viaLink, record.id);
    const counted = { ...base, detail: { ...base.detail, budget: budgetKind(budgetKey) } };
    let budget: CancelBudgetRecord | undefined;
    const openBudget = async (): Promise<CancelBudgetRecord | CustosError> => {
      if (budgetKey === undefined) throw new Error('no budget of its own');
      try {
        budget ??= await lockCancelBudget(tx, barrier, record.walletName, budgetKey, now);
        return budget;
      } catch (error) {
        if (error instanceof CustosError) return error;
        throw error;
      }
    };
    if (viaLink && mailbox !== undefined && (answer.proof === undefined || answer.proof === null || answer.proof === '')) {
      evidence = { factor: 'oob', via: 'notice-link' };
    } else if (answer.kind === RECOVERY_KIND) {
      // A recovery code counts as "any current factor" for a cancel (docs/freeze.md): verified and
      // consumed with its own throttle (5 wrong per 15 min per wallet, recoveryCodes.ts), never the
      // change's counter nor a factor's; a refusal is audited by it and committed with this unit.
      // With a budget of its own, that budget's throttle (the same size) stands in for the wallet's.
      let recovery: { count: number; start: number } | undefined;
      if (budgetKey !== undefined) {
        const own = await openBudget();
        if (own instanceof CustosError) return deny(tx, counted, own);
        recovery = windowed(own.recoveryFailures, own.recoveryWindowStart, now, RECOVERY_THROTTLE.windowMs);
        if (recovery.count >= RECOVERY_THROTTLE.maxFailures) {
          const retryAfterSeconds = Math.max(1, Math.ceil((recovery.start + RECOVERY_THROTTLE.windowMs - now) / 1000));
          return deny(
            tx,
            { ...counted, detail: { ...counted.detail, factor: RECOVERY_KIND } },
            new CustosError('recovery_code_throttled', 'too many wrong recovery codes from here: try again later', {
              details: { field: 'recoveryCode', retryAfterSeconds },
            }),
          );
        }
      }
      const used = await useRecoveryCode(tx, barrier, {
        walletName: record.walletName,
        code: answer.proof,
        now,
        purpose: 'change.cancel',
        sharedThrottle: budgetKey === undefined,
      });
      if (!used.ok) {
        if (budget !== undefined && recovery !== undefined && used.error.code === 'recovery_code_invalid')
          await saveCancelBudget(tx, barrier, { ...budget, recoveryFailures: recovery.count + 1, recoveryWindowStart: recovery.start });
        return deny(tx, { ...counted, detail: { ...counted.detail, factor: RECOVERY_KIND } }, used.error);
      }
      evidence = { factor: RECOVERY_KIND, remaining: used.value.remaining, recoveryAuditSeq: used.value.auditSeq };
    } else {
      const kind = typeof answer.kind === 'string' ? answer.kind : undefined;
      const { proofId } = proofIdOf(answer.proof);
      const chosen = wallet.value.enrolled.find((e) => (kind === undefined || e.factor.kind === kind) && (proofId === undefined || e.record.id === proofId));
      if (chosen === undefined)
        return deny(tx, base, new CustosError('factor_required', `the wallet has no '${String(kind)}' factor`, { details: { field: 'kind' } }));
      // Only a code can be guessed: wrong codes are counted on the change and capped. A passkey's or a
      // card's answer is a signature no one without the device can make, so a wrong one is neither
      // counted nor capped — the backend, which holds the page link, cannot use the cap up to keep a
      // passkey or card wallet's owner from cancelling (on this page or the owner page).
      const guessable = chosen.factor.kind !== 'passkey' && chosen.factor.kind !== 'hwkey';
      // A code with a budget of its own is counted there only, and never refused because the shared
      // counter (which the backend can use up through the page link) is at its limit.
      if (guessable && budgetKey !== undefined) {
        const own = await openBudget();
        if (own instanceof CustosError) return deny(tx, counted, own);
        if (own.codeFailures >= CANCEL_MAX_FAILURES)
          return deny(
            tx,
            counted,
            new CustosError(
              'change_cancel_throttled',
              budgetKind(budgetKey) === 'device'
                ? 'too many wrong codes from this browser: cancel with a recovery code, or prove a factor on one of the signer’s pages again'
                : 'too many wrong codes through this link',
              { details: { field: 'proof', budget: budgetKind(budgetKey) } },
            ),
          );
      } else if (guessable && record.cancelFailures >= CANCEL_MAX_FAILURES)
        return deny(
          tx,
          counted,
          new CustosError('change_cancel_throttled', 'too many wrong answers through this link: use the link the signer sent you', {
            details: { field: 'proof', budget: 'shared' },
          }),
        );
      try {
        evidence = await verifyUnthrottled(tx, barrier, {
          chosen,
          tenant: record.tenant,
          opHash: changeOpHash(ctx.signerId(), record),
          proof: answer.proof,
          approval: cancelRef(ctx.signerId(), record, budgetKey),
          now,
        });
      } catch (error) {
        if (!(error instanceof ConsentRefused)) throw error;
        const refusal = error.error;
        // A missing or malformed answer costs nothing; a wrong one counts on its budget (never on the factor).
        if (refusal.code === 'invalid_input' || refusal.code === 'code_required') return deny(tx, counted, refusal, error.factor);
        if (!guessable) return deny(tx, counted, refusal, error.factor);
        if (budget !== undefined) {
          await saveCancelBudget(tx, barrier, { ...budget, codeFailures: budget.codeFailures + 1 });
          return deny(tx, { ...counted, detail: { ...counted.detail, cancelFailures: budget.codeFailures + 1 } }, refusal, error.factor);
        }
        const next = await writeChange(tx, barrier, { ...record, cancelFailures: record.cancelFailures + 1 });
        return deny(tx, { ...counted, detail: { ...counted.detail, cancelFailures: next.cancelFailures } }, refusal, error.factor);
      }
    }
    const next = await writeChange(tx, barrier, { ...record, state: 'cancelled', decidedAt: now });
    queued = await notify(tx, ctx, barrier, wallet.value.enrolled, next, 'cancelled', now);
    await tx.appendAudit(auditRecord({ ...counted, detail: { ...counted.detail, previousState: state } }, { allowed: { consent: evidence } }));
    return { ok: true, value: next };
  });
  const record = settle(outcome);
  if (queued > 0) ctx.deliveryQueued?.();
  return viewOf(record, ctx.now());
}

// ── the kernel's own flows ────────────────────────────────────────────────────────────────

/**
 * A TOTP-only wallet's change also needs the admins (needsQuorum): they are told what to approve
 * (wallet.change.approve) in the change's unit, whatever queued it — the owner's confirm, or the
 * kernel for an enrolment page's factor — unless the quorum itself asked for it (a factor reset, a
 * defaults pin: its approval is on the row). Returns what the change's audit record carries:
 * `quorumNeeded` (the payload to propose) and `adminsTold`; nothing when no approval is needed.
 */
async function askAdmins(
  tx: StoreTx,
  ctx: KernelContext,
  enrolled: readonly EnrolledFactor[],
  record: PendingChangeRecord,
): Promise<{ quorumNeeded?: ChangeQuorumRequest; adminsTold?: number }> {
  if (!needsQuorum(enrolled) || quorumApprovalOf(record) !== undefined) return {};
  const quorumNeeded = quorumRequestOf(record);
  const tell = settings(ctx).tellAdmins;
  return { quorumNeeded, adminsTold: tell === undefined ? 0 : await tell(tx, quorumNotice(record, quorumNeeded)) };
}

/**
 * A change the kernel's own page flow makes, its consent already given there (a factor added to a
 * wallet that has one, with the consent of its passkey; a new delivery address, with the consent of
 * the current one): `pending` at once, effective after the delay, announced. In the caller's unit.
 * Returns the row (its effectiveAt), how many notices were queued (the owner's and the admins'), and
 * — for a change that needs the admins as well — what its audit record says of them (askAdmins).
 */
export async function queuePendingChange(
  tx: StoreTx,
  ctx: KernelContext,
  {
    wallet,
    kind,
    payload,
    consent,
    apiKeyId,
    now,
  }: {
    wallet: OpenedWallet;
    kind: 'factor.add' | 'factor.replace' | 'delivery.change' | '2fa.disable' | 'policy.loosen';
    payload: Record<string, unknown>;
    consent: Record<string, unknown>;
    apiKeyId: string | null;
    now: number;
  },
): Promise<{ record: PendingChangeRecord; queued: number; admins: { quorumNeeded?: ChangeQuorumRequest; adminsTold?: number } }> {
  const barrier = ctx.requireBarrier();
  const id = toHex(ctx.random(16));
  const effectiveAt = now + (await delayInForce(tx, ctx));
  const record: PendingChangeRecord = {
    id,
    tenant: wallet.wallet.tenant,
    apiKeyId,
    walletName: wallet.wallet.name,
    kind,
    payload: canonicalJson(payload),
    // Nobody holds this page link: the owner cancels on the wallet's owner page, or through the delivered link.
    capabilityHash: newCapability(ctx).capabilityHash,
    noticeCapabilityHash: noticeCapabilityHash(barrier, id),
    state: 'pending',
    createdAt: now,
    expiresAt: now,
    effectiveAt,
    decidedAt: null,
    reminders: remindersSkipped(effectiveAt, now),
    cancelFailures: 0,
    consent: canonicalJson(consent),
    mac: '',
  };
  record.mac = macChange(barrier, record);
  await tx.insertPendingChange(record);
  // Nobody holds its page link: the owner sees and cancels it on the wallet's owner page (whatever the
  // wallet's factors), whose lookup hash is recorded now.
  await ownerLinkOf(tx, barrier, wallet.wallet);
  const queued = await notify(tx, ctx, barrier, wallet.enrolled, record, 'announced', now);
  const admins = await askAdmins(tx, ctx, wallet.enrolled, record);
  return { record, queued: queued + (admins.adminsTold ?? 0), admins };
}

// ── the apply loop ────────────────────────────────────────────────────────────────────────

/**
 * One pass of the apply loop (the server runs it on a timer): for each pending change due within the
 * next reminder window, a reminder when one is due; for each change whose time has come, the change
 * applied in one unit with its `change.apply` record and the confirmation notice — unless the wallet
 * is frozen or a quorum it needs is missing (it waits). A change that no longer fits is not applied
 * (denied, cancelled). A change that cannot be applied for another reason (its wallet unreadable or
 * gone, a factor row, a hook, a store error on its row) stays pending, is reported once per distinct
 * failure and never holds up the others; only a store-wide failure ends the pass (thrown). Returns
 * how many were applied.
 */
export async function applyDueChanges(ctx: KernelContext): Promise<number> {
  const barrier = ctx.requireBarrier();
  const { hooks } = settings(ctx);
  let applied = 0;
  let queuedAny = false;
  for await (const candidate of dueChanges(ctx)) {
    const outcome = await ctx
      .transact(async (tx): Promise<Outcome<PassStep>> => {
        const record = await tx.getPendingChangeForUpdate(candidate.id);
        const now = ctx.now();
        if (record === undefined || record.state !== 'pending' || record.effectiveAt === null) return { ok: true, value: { applied: false, queued: 0 } };
        const base = baseOf(record, 'change.apply', now, null);
        if (!intact(barrier, record)) {
          // Never applied. Set aside (cancelled, its broken MAC kept: it stays unreadable) so that
          // the refusal is audited once, not at every pass.
          await tx.updatePendingChange(record.id, { ...record, state: 'cancelled', decidedAt: now });
          return deny(tx, base, unreadable());
        }
        // A change the log says was decided (cancelled, applied, expired) but whose row is `pending` again was
        // put back by a database writer: never applied; set back to what the log says (audited once, not every pass).
        const anchored = await latestAnchor(tx, 'change', record.id);
        if (anchored !== undefined && anchored.state !== record.state) {
          await writeChange(tx, barrier, { ...record, state: anchored.state as PendingChangeState, decidedAt: record.decidedAt ?? now }, now);
          return deny(tx, base, rolledBack('change', anchored.seq));
        }
        const wallet = await openWallet(tx, barrier, ctx.factors, { tenant: record.tenant, walletName: record.walletName, nowMs: now, create: false });
        // A wallet that is gone: the change has nothing to apply to (a wallet of the same name made
        // later is another wallet) — set aside as cancelled, audited.
        if (!wallet.ok && wallet.error.code === 'wallet_not_found') {
          await writeChange(tx, barrier, { ...record, state: 'cancelled', decidedAt: now }, now);
          return deny(tx, base, wallet.error);
        }
        // A wallet that is unreadable (its row or a factor fails its MAC): never applied while so, but
        // not dropped either — kept pending, so that a row broken for a moment by a database writer does
        // not kill the owner's own change; and postponed, so that it cannot apply the moment the row is
        // put right either: the owner, who cannot cancel while the wallet is unreadable, gets a fresh
        // delay to cancel in once it reads again (docs/timelock.md).
        if (!wallet.ok) return holdChange(tx, ctx, barrier, record, base, wallet.error, now);
        if (now < record.effectiveAt) {
          const passed = remindersPassed(record.effectiveAt, now);
          if (passed <= record.reminders) return { ok: true, value: { applied: false, queued: 0 } };
          // One reminder for every time passed since the last; the 1 h one also stands for the 30 min
          // one (only a change that skipped the 1 h reminder at its decision hears the 30 min one).
          const next = await writeChange(tx, barrier, { ...record, reminders: passed === 2 ? 3 : passed });
          return { ok: true, value: { applied: false, queued: await notify(tx, ctx, barrier, wallet.value.enrolled, next, 'reminder', now) } };
        }
        // A pending change does not take effect while the wallet is frozen: the wallet row's own
        // `frozenAt` (under its MAC; freeze.ts freezeRefusal) always, and the hook besides if set.
        // A wallet row put back from before its freeze (rowAnchors.ts) is refused, audited.
        const frozen = await freezeRefusal(tx, wallet.value.wallet);
        if (frozen?.code === 'record_unreadable') return holdChange(tx, ctx, barrier, record, base, frozen, now);
        if (frozen !== undefined) return { ok: true, value: { applied: false, queued: 0 } };
        if (hooks.isFrozen !== undefined && (await hooks.isFrozen(tx, record.walletName))) return { ok: true, value: { applied: false, queued: 0 } };
        // hook: quorum — a TOTP-only wallet's change also waits for the admins' approval (no hook: it waits, fail closed).
        if (needsQuorum(wallet.value.enrolled) && !(hooks.quorumApproved !== undefined && (await hooks.quorumApproved(tx, record))))
          return { ok: true, value: { applied: false, queued: 0 } };
        const evidence = await kindOf(record.kind).apply(
          tx,
          { barrier, factors: ctx.factors, wallet: wallet.value, tenant: record.tenant, now, random: (n) => ctx.random(n), hooks },
          JSON.parse(record.payload) as Record<string, unknown>,
        );
        const next = await writeChange(tx, barrier, { ...record, state: 'applied', decidedAt: now });
        // Told on every channel the wallet had (a removed or replaced address hears of it too) and on
        // a delivery address the change adds (the new address learns it is now in force).
        const added = (JSON.parse(record.payload) as { record?: FactorRecord<object> }).record;
        const queued = await notify(tx, ctx, barrier, wallet.value.enrolled, next, 'applied', now, added?.kind === 'oob' ? [added] : []);
        await tx.appendAudit(auditRecord({ ...base, detail: { ...base.detail, effectiveAt: record.effectiveAt } }, { allowed: { result: evidence } }));
        return { ok: true, value: { applied: true, queued } };
      })
      .catch((error: unknown) => failApply(ctx, barrier, candidate, error));
    if (outcome.ok) {
      if (outcome.value.applied) applied += 1;
      if (outcome.value.queued > 0) queuedAny = true;
      rememberFailure(ctx, candidate.id, outcome.value.failure);
    } else queuedAny = true; // a decision, audited in its unit (not applicable, a broken or put-back change row)
  }
  if (queuedAny) ctx.deliveryQueued?.();
  return applied;
}

/**
 * The rows of one apply pass: `pending` changes due within the next reminder window, by effectiveAt
 * then id, read a page at a time after the last row seen (so rows that wait never hide later ones),
 * at most APPLY_PASS_MAX per pass, starting where the previous pass stopped at that bound.
 */
async function* dueChanges(ctx: KernelContext): AsyncGenerator<PendingChangeRecord> {
  const by = ctx.now() + (REMINDERS_MS[0] as number);
  let after = applyCursors.get(ctx);
  let seen = 0;
  const { page: pageSize, passMax } = ctx.timelock.applyPaging ?? { page: APPLY_PAGE, passMax: APPLY_PASS_MAX };
  for (;;) {
    const cursor = after;
    const page = await ctx.transact((tx) => tx.listPendingChangesDueBy(by, pageSize, cursor));
    for (const row of page) {
      if (seen >= passMax) {
        if (after !== undefined) applyCursors.set(ctx, after);
        return;
      }
      seen += 1;
      after = { effectiveAt: row.effectiveAt as number, id: row.id };
      yield row;
    }
    if (page.length < pageSize) {
      applyCursors.delete(ctx);
      return;
    }
  }
}

/** One due change's step in a pass; `failure`: why it stays pending (code and message), once reported (applyFailures). */
interface PassStep {
  applied: boolean;
  queued: number;
  failure?: string;
}

function failureKey(error: CustosError): string {
  return `${error.code}\u0000${error.message}`;
}

/** After a change's unit committed: remembers the failure it reported (or saw reported), or forgets one that is over. */
function rememberFailure(ctx: KernelContext, id: string, failure: string | undefined): void {
  let reported = applyFailures.get(ctx);
  if (failure === undefined) {
    reported?.delete(id);
    return;
  }
  if (reported === undefined) {
    reported = new Map();
    applyFailures.set(ctx, reported);
  }
  reported.delete(id);
  reported.set(id, failure);
  if (reported.size > APPLY_FAILURES_MAX) reported.delete(reported.keys().next().value as string);
}

function reportedFailure(ctx: KernelContext, id: string): string | undefined {
  return applyFailures.get(ctx)?.get(id);
}

/** The admins' message about a due change that cannot be applied (the wallet's name in the text only). */
function heldNotice(record: PendingChangeRecord, error: CustosError, walletName: string | null): string {
  return (
    `A timelocked change (${record.kind}, id ${record.id}) of wallet ${JSON.stringify(walletName ?? '(unverified row)')} ` +
    `could not be applied: ${error.code}. It stays pending and is tried again at every pass; it is never applied while this lasts` +
    (record.effectiveAt === null ? '. ' : `, nor before ${new Date(record.effectiveAt).toISOString()} (a full delay after the last pass that found it so). `) +
    'See the audit log (change.apply, denied).'
  );
}

/**
 * The wallet's factor rows whose own MAC still holds (read in the unit), for telling the owner when
 * the wallet as a whole is unreadable: every channel that can still be trusted hears of it.
 */
async function readableFactors(tx: StoreTx, ctx: KernelContext, barrier: Barrier, walletName: string): Promise<EnrolledFactor[]> {
  const readable: EnrolledFactor[] = [];
  for (const factor of ctx.factors)
    for (const record of await factor.rows.read(tx, walletName))
      if (record.walletName === walletName && verifyFactorRecords(barrier, [record]) === undefined) readable.push({ factor, record });
  return readable;
}

/**
 * A due change whose wallet cannot be read (its row or a factor row fails its MAC, a row put back from
 * before a freeze) or is gone: not applied, kept pending, tried again at every pass. Reported once per
 * distinct failure, in this unit: audited denied (`kept: 'pending'`), the admins told, and the owner
 * told (`held`) on every delivery channel whose own row still holds.
 */
async function holdChange(
  tx: StoreTx,
  ctx: KernelContext,
  barrier: Barrier,
  record: PendingChangeRecord,
  base: AuditBase,
  error: CustosError,
  now: number,
): Promise<Outcome<PassStep>> {
  // Postponed at every pass that finds the wallet unreadable: it takes effect no earlier than a full
  // delay after the last such pass, its reminders sent again before it (the row's own write, MAC'd).
  const postponedTo = now + (await delayInForce(tx, ctx));
  const held =
    (record.effectiveAt ?? 0) < postponedTo
      ? await writeChange(tx, barrier, { ...record, effectiveAt: postponedTo, reminders: remindersSkipped(postponedTo, now) })
      : record;
  const failure = failureKey(error);
  if (reportedFailure(ctx, record.id) === failure) return { ok: true, value: { applied: false, queued: 0, failure } };
  const ownerNotices = await notify(tx, ctx, barrier, await readableFactors(tx, ctx, barrier, record.walletName), held, 'held', now);
  const adminsTold = (await settings(ctx).tellAdmins?.(tx, heldNotice(held, error, record.walletName))) ?? 0;
  await tx.appendAudit(
    auditRecord({ ...base, detail: { ...base.detail, kept: 'pending', postponedTo: held.effectiveAt, ownerNotices, adminsTold } }, { denied: error }),
  );
  return { ok: true, value: { applied: false, queued: ownerNotices + adminsTold, failure } };
}

/**
 * A change whose unit threw. As a decision (it no longer fits, `change_not_applicable`): in a new unit
 * it is marked cancelled, audited denied, and the owner told. Any other failure of this one change (a
 * factor row, a hook, a store error on its row) must not stop the pass: the change stays pending, is
 * tried again next pass, and is reported once per distinct failure (audited, the admins told). Whether
 * the store itself failed is told by a probe: the report's own unit, or — the failure reported already
 * — a ping; a store that fails it ends the pass (thrown; the server's loop tries again), as do a
 * sealed kernel and an audit log that cannot be written.
 */
async function failApply(ctx: KernelContext, barrier: Barrier, candidate: PendingChangeRecord, error: unknown): Promise<Outcome<PassStep>> {
  const failure = asCustosError(error, 'store_unavailable');
  if (failure.code === 'sealed' || failure.code === 'audit_unavailable') throw failure;
  if (failure.code !== 'change_not_applicable') {
    const key = failureKey(failure);
    if (reportedFailure(ctx, candidate.id) === key) {
      if (!(await ctx.readStore(() => ctx.store.ping())))
        throw new CustosError('store_unavailable', 'the store does not answer: the apply pass ends here (the next one tries again)', { cause: failure });
      return { ok: true, value: { applied: false, queued: 0, failure: key } };
    }
    // The listing's copy of the row: its fields name the wallet only when its MAC holds.
    const walletName = intact(barrier, candidate) ? candidate.walletName : null;
    try {
      return await ctx.transact(async (tx) => {
        const now = ctx.now();
        const base = { ...baseOf(candidate, 'change.apply', now, null), walletName };
        const adminsTold = (await settings(ctx).tellAdmins?.(tx, heldNotice(candidate, failure, walletName))) ?? 0;
        await tx.appendAudit(auditRecord({ ...base, detail: { ...base.detail, kept: 'pending', adminsTold } }, { denied: failure }));
        return { ok: true, value: { applied: false, queued: adminsTold, failure: key } };
      });
    } catch (reportError) {
      // The report's own unit failed: a store that does not answer ends the pass (as above); else this
      // change's report alone fails (its text, an admin row) — the pass goes on past it, and the report
      // is tried again next pass (no failure remembered), so one change never holds up the ones after it.
      const reportFailure = asCustosError(reportError, 'store_unavailable');
      if (reportFailure.code === 'sealed' || reportFailure.code === 'audit_unavailable') throw reportFailure;
      if (!(await ctx.readStore(() => ctx.store.ping()).catch(() => false)))
        throw new CustosError('store_unavailable', 'the store does not answer: the apply pass ends here (the next one tries again)', { cause: failure });
      return { ok: true, value: { applied: false, queued: 0 } };
    }
  }
  return ctx.transact(async (tx) => {
    const record = await tx.getPendingChangeForUpdate(candidate.id);
    if (record === undefined || record.state !== 'pending' || !intact(barrier, record)) return { ok: false, error: failure };
    const now = ctx.now();
    const next = await writeChange(tx, barrier, { ...record, state: 'cancelled', decidedAt: now });
    const wallet = await openWallet(tx, barrier, ctx.factors, { tenant: record.tenant, walletName: record.walletName, nowMs: now, create: false });
    if (wallet.ok) await notify(tx, ctx, barrier, wallet.value.enrolled, next, 'failed', now);
    return deny(tx, baseOf(record, 'change.apply', now, null), failure);
  });
}

/**
 * The newest factor row of `kind` that waits in a pending `factor.add` of the wallet (MAC'd rows
 * only), for the enrolment page that made it: a card's device cookie is set in that response, and
 * holds once the card is added (hwkeyDevice.ts derives it from the row as it will be inserted).
 */
export async function pendingFactorRecord(ctx: KernelContext, walletName: string, kind: string): Promise<FactorRecord<object> | undefined> {
  const barrier = ctx.requireBarrier();
  const open = await ctx.transact((tx) => tx.listOpenPendingChangesOfWallet(walletName));
  const found = open
    .filter((r) => r.state === 'pending' && r.kind === 'factor.add' && intact(barrier, r))
    .map((r) => (JSON.parse(r.payload) as { record?: FactorRecord<object> }).record)
    .filter((record): record is FactorRecord<object> => record?.kind === kind && record.walletName === walletName);
  return found.at(-1);
}

// ── the emergency exit ────────────────────────────────────────────────────────────────────

/**
 * The emergency exit for the policy evaluation (issue 13 point 2): while a deactivation of the
 * wallet's 2FA is pending and a safe address is registered, a transaction whose only effect is a
 * native transfer or an ERC-20 `transfer` to that address is exempt from limits and allowlist (it
 * still needs the current factor). Returns the safe address then, else undefined. A safe-address
 * row whose MAC fails is `record_unreadable` (fail closed).
 */
export async function emergencyExitFor(
  tx: StoreTx,
  wallet: {
    walletName: string;
    barrier: Barrier;
    now: number;
    /**
     * For a wallet that needs the admin quorum besides its owner (needsQuorum: TOTP only), the
     * deactivation opens the exit only once the quorum approved it (the timelock's quorum hook):
     * else a backend that phished one TOTP code could confirm a deactivation and so lift the limits.
     */
    quorumApproved?: (change: PendingChangeRecord) => Promise<boolean>;
  },
): Promise<{ safeAddress: string } | undefined> {
  const open = await tx.listOpenPendingChangesOfWallet(wallet.walletName);
  let deactivating = false;
  for (const r of open) {
    if (r.state !== 'pending' || r.kind !== '2fa.disable' || !intact(wallet.barrier, r)) continue;
    if (wallet.quorumApproved !== undefined && !(await wallet.quorumApproved(r))) continue;
    deactivating = true;
    break;
  }
  if (!deactivating) return undefined;
  const safe = await tx.getSafeAddressForUpdate(wallet.walletName);
  if (safe === undefined) return undefined;
  if (!rowIntact(wallet.barrier, SAFE_ADDRESS_MAC_LABEL, safe, undefined))
    throw new CustosError('record_unreadable', 'the wallet’s safe address does not match its MAC: refusing to act', { details: { field: 'walletName' } });
  return { safeAddress: safe.address };
}

const encoder = new TextEncoder();

// ── the admin quorum (issue 13 point 2, third bullet) ─────────────────────────────────────

/** What a `wallet.change.approve` proposal names: the change, its wallet and kind, and SHA-256 of its exact payload. */
export interface ChangeQuorumRequest {
  changeId: string;
  walletName: string;
  kind: string;
  payloadHash: string;
}

/** The admins' approval recorded on a change's row (inside `consent`, so the row's MAC covers it). */
export interface ChangeQuorumApproval {
  proposalId: string;
  approvers: string[];
  approvedAt: number;
}

/** SHA-256 (hex) of a change's payload as stored (canonical JSON text). */
export function changePayloadHash(record: Pick<PendingChangeRecord, 'payload'>): string {
  return toHex(sha256(encoder.encode(record.payload)));
}

/** The proposal payload that approves this change. */
export function quorumRequestOf(record: PendingChangeRecord): ChangeQuorumRequest {
  return { changeId: record.id, walletName: record.walletName, kind: record.kind, payloadHash: changePayloadHash(record) };
}

/**
 * The admins' notice of a TOTP-only wallet's confirmed change: what to propose first (the exact
 * payload), then the change itself — for a policy.loosen every field it changes (describeChange). The
 * outbox keeps 1000 characters: a long diff is cut there, and `custos admin show` shows it in full.
 */
function quorumNotice(record: PendingChangeRecord, request: ChangeQuorumRequest): string {
  return (
    `Wallet ${record.walletName}: its owner confirmed a change that also needs an admin quorum (the wallet has no delivery address and no bound factor).\n` +
    `It takes effect no earlier than ${new Date(record.effectiveAt ?? 0).toISOString()}, and only once approved: ` +
    `custos admin propose --kind wallet.change.approve with the payload ${canonicalJson(request)}\n` +
    `Every approver sees the change as stored, in full, with custos admin show --id <proposal>.\n` +
    `Change: ${describeChange(record)}\n`
  );
}

/**
 * The quorum's approval on a change's row, or undefined: read from the row's `consent` (MAC'd with the
 * row; the caller checked the MAC). What the kernel's `quorumApproved` hook answers.
 */
export function quorumApprovalOf(record: PendingChangeRecord): ChangeQuorumApproval | undefined {
  if (record.consent === null) return undefined;
  const approval = (JSON.parse(record.consent) as { quorumApproval?: ChangeQuorumApproval }).quorumApproval;
  if (approval === undefined || typeof approval.proposalId !== 'string' || !Array.isArray(approval.approvers)) return undefined;
  return approval;
}

function proposalMismatch(field: string): CustosError {
  return new CustosError('proposal_payload_mismatch', 'the proposal does not name this change as it is stored (another change, or one modified since)', {
    details: { field },
  });
}

/**
 * Applies a `wallet.change.approve` proposal (in the unit that met the threshold): the change must be
 * the one the proposal names — same id, wallet, kind and payload hash (else proposal_payload_mismatch),
 * its row intact (else record_unreadable) and `pending` (confirmed by its owner: else change_not_pending
 * or change_expired). The approval is written into the row's `consent` under a new MAC and audited
 * `change.quorum`. It does not shorten the delay: the change applies when both are met.
 */
export async function approveChangeByQuorum(
  tx: StoreTx,
  ctx: KernelContext,
  request: ChangeQuorumRequest,
  meta: { proposalId: string; approvers: string[] },
): Promise<{ changeId: string; effectiveAt: number | null }> {
  const barrier = ctx.requireBarrier();
  const record = await tx.getPendingChangeForUpdate(request.changeId);
  if (record === undefined) throw changeNotFound('payload.changeId');
  if (!intact(barrier, record)) throw unreadable();
  if (record.walletName !== request.walletName) throw proposalMismatch('payload.walletName');
  if (record.kind !== request.kind) throw proposalMismatch('payload.kind');
  if (changePayloadHash(record) !== request.payloadHash) throw proposalMismatch('payload.payloadHash');
  const now = ctx.now();
  const state = stateAt(record, now);
  if (state !== 'pending') throw stateError(state);
  if (quorumApprovalOf(record) !== undefined)
    throw new CustosError('change_not_pending', 'the admin quorum approved this change already', { details: { state, field: 'payload.changeId' } });
  const approval: ChangeQuorumApproval = { proposalId: meta.proposalId, approvers: meta.approvers, approvedAt: now };
  const consent = { ...(JSON.parse(record.consent ?? '{}') as Record<string, unknown>), quorumApproval: approval };
  await writeChange(tx, barrier, { ...record, consent: canonicalJson(consent) });
  await tx.appendAudit(
    auditRecord(
      {
        ...baseOf(record, 'change.quorum', now, null),
        detail: { changeId: record.id, kind: record.kind, proposalId: meta.proposalId, approvers: meta.approvers },
      },
      { allowed: {} },
    ),
  );
  return { changeId: record.id, effectiveAt: record.effectiveAt };
}
