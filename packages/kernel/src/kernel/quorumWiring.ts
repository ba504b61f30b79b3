import { CustosError, type ErrorCode, invalidInput } from '../errors.js';
import type { StoreTx } from '../store/types.js';
import { canonicalJson } from '../util/canonicalJson.js';
import { assertTenantName } from '../util/assertTenantName.js';
import { assertWalletName } from '../util/assertWalletName.js';
import { auditRecord } from './auditRecord.js';
import type { KernelContext } from './context.js';
import { unfreezeWallet } from './freeze.js';
import {
  approveChangeByQuorum,
  assertChangeId,
  type ChangeQuorumRequest,
  changePayloadHash,
  describeChange,
  intact as changeIntact,
  policyDiffOfPayload,
  queuePendingChange,
  quorumApprovalOf,
  TIMELOCK_DELAY_MS,
} from './pendingChanges.js';
import type { AnyProposalKind, ProposalKind, ProposalSubject } from './quorum/proposalKinds.js';
import type { PendingChangeRecord } from '../store/types.js';
import type { FactorRecord } from '../consent/Factor.js';
import { FactorUnshowable, factorShown } from './changeFactorView.js';
import { MIN_TIMELOCK_DELAY_SECONDS, readDeploymentSettings, readQuorumSettings } from './quorum/settings.js';
import { tellAdmins } from './quorum/tellAdmins.js';
import { openWallet } from './walletRecord.js';

/**
 * The admin quorum wired into the timelock and the freeze (issue 13, docs/quorum.md "Wallet kinds"):
 *
 *   wallet.change.approve  {changeId, walletName, kind, payloadHash}  the admins' approval a TOTP-only
 *                          wallet's change needs besides its owner's factor, written on the change's
 *                          row (under its MAC); the change applies once the delay has passed AND this
 *   wallet.unfreeze        {tenant?, walletName}                       freeze.ts unfreezeWallet
 *   wallet.factor-reset     {tenant?, walletName}                       a pending `2fa.disable` through the
 *                          wallet's timelock (owner told on every channel, cancellable), never at once
 *
 * and the timelock's settings the kernel installs: `isFrozen`, `quorumApproved` (fail closed), the
 * delay in force (the deployment settings row's; under a quorum a flag never shortens it) and the
 * admins' notices.
 */

function exactObject(value: unknown, allowed: readonly string[]): Record<string, unknown> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw invalidInput('payload', 'an object');
  const extra = Object.keys(value).filter((k) => !allowed.includes(k));
  if (extra.length > 0) throw invalidInput('payload', `only ${allowed.join(', ')}`, extra.join(', '));
  return value as Record<string, unknown>;
}

/** `{ tenant?, walletName }`: a wallet, optionally pinned to its tenant. */
export interface WalletRef {
  tenant?: string;
  walletName: string;
}

function parseWalletRef(payload: unknown): WalletRef {
  const p = exactObject(payload, ['tenant', 'walletName']);
  const walletName = assertWalletName(p.walletName, 'payload.walletName');
  return p.tenant === undefined ? { walletName } : { tenant: assertTenantName(p.tenant, 'payload.tenant'), walletName };
}

function walletLabel(ref: WalletRef): string {
  return `${JSON.stringify(ref.walletName.slice(0, 200))}${ref.tenant === undefined ? '' : ` of tenant ${ref.tenant}`}`;
}

function walletNotFound(): CustosError {
  return new CustosError('wallet_not_found', 'no wallet of that name is known to the signer', { details: { field: 'payload.walletName' } });
}

/** `wallet.change.approve`: the admins' approval of one timelocked change, bound to its exact payload. */
export function changeApproveKind(ctx: KernelContext): ProposalKind<ChangeQuorumRequest> {
  return {
    kind: 'wallet.change.approve',
    parse(payload) {
      const p = exactObject(payload, ['changeId', 'walletName', 'kind', 'payloadHash']);
      const changeId = assertChangeId(p.changeId);
      const walletName = assertWalletName(p.walletName, 'payload.walletName');
      if (typeof p.kind !== 'string' || p.kind.length === 0 || p.kind.length > 64) throw invalidInput('payload.kind', 'the change kind');
      if (typeof p.payloadHash !== 'string' || !/^[0-9a-f]{64}$/.test(p.payloadHash)) throw invalidInput('payload.payloadHash', '32 bytes, lowercase hex');
      return { changeId, walletName, kind: p.kind, payloadHash: p.payloadHash };
    },
    describe: (p) =>
      `approve the timelocked change ${p.changeId} (${p.kind}) of wallet ${JSON.stringify(p.walletName.slice(0, 200))}, payload ${p.payloadHash}`,
    apply: (tx, _actx, p, meta) => approveChangeByQuorum(tx, ctx, p, { proposalId: meta.id, approvers: meta.approvers }),
    inspect: (tx, p) => inspectChange(tx, ctx, p),
  };
}

/** The change kinds whose stored payload holds no secret and is shown to the approvers in full. */
const SHOWN_CHANGE_PAYLOADS = new Set(['policy.loosen', 'safeAddress.set', '2fa.disable', 'factor.remove']);
/** The change kinds that carry a factor's record: shown opened and masked (changeFactorView.ts). */
const FACTOR_CHANGE_KINDS = new Set(['factor.add', 'factor.replace', 'delivery.change']);

/**
 * What a `wallet.change.approve` approves, as the kernel stores it: the change's kind, wallet, state,
 * effective time and payload — for a `policy.loosen` every field it changes (policyDiff.ts, from the
 * `from`/`to` the kernel stored) — after checking the row's MAC and that it is the change the payload
 * names (id, wallet, kind, the payload's hash). A factor's payload (factor.add/replace,
 * delivery.change: the factor's record, a sealed delivery address) is not shown as stored: the
 * kernel opens the record at view time and shows what identifies the factor (changeFactorView.ts:
 * a delivery address masked, never in full); a record that cannot be opened is not approved.
 */
export async function inspectChange(tx: StoreTx, ctx: KernelContext, p: ChangeQuorumRequest): Promise<ProposalSubject> {
  const barrier = ctx.requireBarrier();
  const record = await tx.getPendingChangeForUpdate(p.changeId);
  const refused = (code: ErrorCode, message: string, lines: string[], stored: unknown = null): ProposalSubject => ({
    lines: [`DOES NOT MATCH: ${message}`, ...lines],
    stored,
    matches: false,
    refusal: { code, message },
  });
  if (record === undefined) return refused('change_not_found', 'no pending change has this id', []);
  if (!changeIntact(barrier, record)) return refused('record_unreadable', 'the change row does not match its MAC (it was changed in the database)', []);
  const storedHash = changePayloadHash(record);
  let shownChange: { lines: string[]; stored: unknown };
  try {
    shownChange = await changeShown(tx, ctx, record);
  } catch (error) {
    // What the approvers cannot be shown, they do not approve (fail closed).
    if (error instanceof FactorUnshowable) return refused('record_unreadable', error.message, []);
    throw error;
  }
  const { lines, stored } = shownChange;
  const mismatch =
    record.walletName !== p.walletName
      ? 'the change belongs to another wallet than the payload names'
      : record.kind !== p.kind
        ? 'the change is of another kind than the payload names'
        : storedHash !== p.payloadHash
          ? `the stored change's payload hash is ${storedHash}, not the proposal's ${p.payloadHash}`
          : undefined;
  if (mismatch !== undefined) return refused('proposal_payload_mismatch', mismatch, lines, stored);
  return { lines: ['The stored change matches the proposal (id, wallet, kind, payload hash).', ...lines], stored, matches: true };
}

/** The factors a factor.add / factor.replace / delivery.change names, opened and shown (changeFactorView.ts). */
async function factorsShown(
  tx: StoreTx,
  ctx: KernelContext,
  record: PendingChangeRecord,
  payload: Record<string, unknown>,
): Promise<{ lines: string[]; stored: Record<string, unknown> }> {
  const barrier = ctx.requireBarrier();
  const added = payload.record as FactorRecord<object> | undefined;
  if (added === undefined || added === null || typeof added !== 'object') return { lines: [], stored: {} };
  if (added.walletName !== record.walletName) throw new FactorUnshowable('the new factor’s record names another wallet');
  const factor = factorShown(barrier, added);
  const lines = [`${record.kind === 'delivery.change' ? 'New' : 'Adds'} ${factor.line}`];
  const stored: Record<string, unknown> = { factor: factor.data };
  const removed = payload.remove as { kind?: unknown; id?: unknown } | undefined;
  if (record.kind === 'factor.replace' && removed !== undefined) {
    lines.push(`Removes the ${String(removed.kind)} factor ${String(removed.id).slice(0, 16)}`);
    stored.removes = { kind: String(removed.kind), idPrefix: String(removed.id).slice(0, 16) };
  }
  if (record.kind === 'delivery.change') {
    const oob = ctx.factors.find((f) => f.kind === 'oob');
    const [current] = oob === undefined ? [] : await oob.rows.read(tx, record.walletName);
    if (current !== undefined) {
      const now = factorShown(barrier, current as FactorRecord<object>);
      lines.push(`Replacing the current ${now.line}`);
      stored.current = now.data;
    }
  }
  if (factor.data.kind === 'oob' || stored.current !== undefined)
    lines.push(
      'The full address is never shown (issue 14): confirm it with the owner through a contact you already have for them, never one given in this request.',
    );
  return { lines, stored };
}

async function changeShown(tx: StoreTx, ctx: KernelContext, record: PendingChangeRecord): Promise<{ lines: string[]; stored: unknown }> {
  const nowMs = ctx.now();
  const payload = JSON.parse(record.payload) as Record<string, unknown>;
  const shown = SHOWN_CHANGE_PAYLOADS.has(record.kind);
  const factors = FACTOR_CHANGE_KINDS.has(record.kind) ? await factorsShown(tx, ctx, record, payload) : { lines: [], stored: {} };
  const state = record.state === 'requested' && nowMs >= record.expiresAt ? 'expired' : record.state;
  const diff = policyDiffOfPayload(record.kind, payload);
  const effective = record.effectiveAt === null ? 'not yet (the owner has not confirmed it)' : new Date(record.effectiveAt).toISOString();
  const lines = [
    `Change ${record.id} (${record.kind}) of wallet ${JSON.stringify(record.walletName)}`,
    `Requested: ${new Date(record.createdAt).toISOString()}`,
    `State: ${state}${quorumApprovalOf(record) === undefined ? '' : ' (approved by the quorum already)'}`,
    `Takes effect: ${effective}`,
    ...describeChange(record).split('\n'),
    ...factors.lines,
    shown
      ? `Payload as stored: ${canonicalJson(payload)}`
      : 'Payload as stored: not shown as such (it holds a factor’s sealed record); what identifies the factor is above',
  ];
  return {
    lines,
    stored: {
      changeId: record.id,
      walletName: record.walletName,
      kind: record.kind,
      state,
      requestedAt: record.createdAt,
      effectiveAt: record.effectiveAt,
      payloadHash: changePayloadHash(record),
      ...(shown ? { payload } : {}),
      ...factors.stored,
      ...(diff === undefined ? {} : { policyDiff: diff }),
    },
  };
}

/** `wallet.unfreeze`: unfreezes a frozen wallet (freeze.ts unfreezeWallet, audited with the proposal and its approvers). */
export function walletUnfreezeKind(ctx: KernelContext): ProposalKind<WalletRef> {
  return {
    kind: 'wallet.unfreeze',
    parse: parseWalletRef,
    describe: (p) => `unfreeze wallet ${walletLabel(p)}`,
    async apply(tx, _actx, p, meta) {
      const done = await unfreezeWallet(tx, ctx, p, { kind: 'quorum', proposalId: meta.id, approvals: meta.approvers });
      if (!done.ok) throw done.error;
      return { walletName: done.value.walletName, wasFrozen: done.value.wasFrozen };
    },
  };
}

/**
 * `wallet.factor-reset`: for an owner who lost every factor. It removes nothing at once: it queues a
 * `2fa.disable` through the wallet's timelock — effective after the delay in force, announced to the
 * owner on every channel, cancellable by the owner — already approved by this quorum.
 */
export function walletFactorResetKind(ctx: KernelContext): ProposalKind<WalletRef> {
  return {
    kind: 'wallet.factor-reset',
    parse: parseWalletRef,
    describe: (p) => `reset the factors of wallet ${walletLabel(p)}: every factor removed after the timelock's delay, unless its owner cancels`,
    async apply(tx, _actx, p, meta) {
      const barrier = ctx.requireBarrier();
      const now = ctx.now();
      const row = await tx.getWalletForUpdate(p.walletName);
      if (row === undefined || (p.tenant !== undefined && row.tenant !== p.tenant)) throw walletNotFound();
      const wallet = await openWallet(tx, barrier, ctx.factors, { tenant: row.tenant, walletName: row.name, nowMs: now, create: false });
      if (!wallet.ok) throw wallet.error;
      if (wallet.value.enrolled.length === 0)
        throw new CustosError('factor_required', 'the wallet has no factor: there is nothing to reset', { details: { field: 'payload.walletName' } });
      const quorumApproval = { proposalId: meta.id, approvers: meta.approvers, approvedAt: now };
      const { record, queued } = await queuePendingChange(tx, ctx, {
        wallet: wallet.value,
        kind: '2fa.disable',
        payload: {},
        consent: { by: 'quorum', quorumApproval },
        apiKeyId: null,
        now,
      });
      await tx.appendAudit(
        auditRecord(
          {
            ts: now,
            appId: null,
            walletName: row.name,
            action: 'change.request',
            opHash: null,
            detail: { changeId: record.id, kind: record.kind, via: 'quorum', proposalId: meta.id, effectiveAt: record.effectiveAt, announced: queued },
          },
          { allowed: {} },
        ),
      );
      return { changeId: record.id, kind: record.kind, effectiveAt: record.effectiveAt, ownerNotices: queued };
    },
  };
}

/** The wallet kinds the kernel registers beside the built-in ones. */
export function walletProposalKinds(ctx: KernelContext): AnyProposalKind[] {
  return [changeApproveKind(ctx), walletUnfreezeKind(ctx), walletFactorResetKind(ctx)];
}

/**
 * The delay in force (ms) for a change decided now: the deployment settings row's when one was
 * written (by a `deployment.settings` proposal), else the configured flag (`--timelock-delay`, or the
 * 48 h default). Once an admin set is configured the flag can lengthen it, never shorten it: the
 * delay is then the longer of the flag and the row's (or the 48 h default when no row was written).
 * Never below 1 h.
 */
export async function timelockDelayInForce(ctx: KernelContext, flagMs: number | undefined): Promise<number> {
  const barrier = ctx.requireBarrier();
  // Unlocked reads (this runs in the unit of every confirm, which holds the change's row: locking the
  // settings rows here too would invert the lock order of a proposal's unit). The quorum row only: no
  // search of the log for a deleted row.
  // Under a quorum (its row, or the sealed root's mark) a missing settings row is record_unreadable, never the flag's delay.
  const settings = await readDeploymentSettings(ctx.store, barrier, { quorum: ctx.quorumSealed?.() ?? false });
  const rowMs = settings.version > 0 ? settings.timelockDelaySeconds * 1000 : undefined;
  // A root sealed with the quorum mark whose set row is gone is record_unreadable, never "no quorum" (the flag's delay).
  const quorum = await readQuorumSettings(ctx.store, barrier, { sealed: ctx.quorumSealed?.() ?? false });
  const delay = quorum === undefined ? (rowMs ?? flagMs ?? TIMELOCK_DELAY_MS.default) : Math.max(rowMs ?? TIMELOCK_DELAY_MS.default, flagMs ?? 0);
  return Math.max(delay, MIN_TIMELOCK_DELAY_SECONDS * 1000);
}

/** The timelock's freeze hook: a wallet whose row is gone counts as frozen (fail closed); the caller opened (MAC-checked) it in this unit. */
export async function walletFrozen(tx: StoreTx, walletName: string): Promise<boolean> {
  const row = await tx.getWalletForUpdate(walletName);
  return row === undefined || typeof row.frozenAt === 'number';
}

/** The timelock's quorum hook: the approval a `wallet.change.approve` (or the factor reset) wrote on the change's row. */
export async function changeQuorumApproved(_tx: StoreTx, change: Parameters<typeof quorumApprovalOf>[0]): Promise<boolean> {
  return quorumApprovalOf(change) !== undefined;
}

export { tellAdmins };

/**
 * The webhook channel's URL in force: the deployment settings row's when one was written and names
 * a URL; else, without an admin set, the `--webhook-url` flag; under an admin set, a row's `null`
 * means no webhook (the flag, refused at start-up under a quorum, never adds one). Null: none.
 */
export function webhookUrlInForce(settings: { version: number; webhookUrl: string | null }, quorum: boolean, flagUrl: string | undefined): string | null {
  if (settings.version > 0 && settings.webhookUrl !== null) return settings.webhookUrl;
  if (quorum) return settings.version > 0 ? null : (flagUrl ?? null);
  return flagUrl ?? null;
}
