import type { Barrier } from '../../barrier/Barrier.js';
import { AUDIT_DETAIL_MAX_BYTES } from '../../audit/boundAuditDetail.js';
import { CustosError, invalidInput } from '../../errors.js';
import type { ApiKeyRecord, ProposalApprovalRecord, ProposalRecord, StoreTx } from '../../store/types.js';
import { canonicalJson } from '../../util/canonicalJson.js';
import { checkScope } from '../authorize.js';
import { auditRecord } from '../auditRecord.js';
import { macRow, rowIntact } from '../capabilityRecords.js';
import { deny, type KernelContext, type Outcome, settle } from '../context.js';
import type { App } from '../types.js';
import {
  type AdminStatement,
  APPROVE_LABEL,
  assertAdminPublicKey,
  assertAdminSignature,
  assertProposalId,
  computePayloadHash,
  PROPOSE_LABEL,
} from './adminKeys.js';
import { adminPasskeyChallenge, isPasskeyAdminId, storedAssertionHolds } from './adminPasskeyCredential.js';
import { useAdminPasskey } from './adminPasskeys.js';
import { apiKeyMacHolds, macApiKey } from './apiKeyMac.js';
import type { AnyProposalKind, ProposalSubject, UnsealerChangePayload } from './proposalKinds.js';
import { noticeAdmins } from './tellAdmins.js';
import { assertWalletPolicy } from '../walletPolicy.js';
import {
  type AdminEntry,
  DEFAULT_DEPLOYMENT_SETTINGS,
  DEPLOYMENT_SETTING,
  parseDeploymentSettings,
  parseQuorumSettings,
  putAnchoredSetting,
  QUORUM_BOOTSTRAP_ACTION,
  QUORUM_SETTING,
  type QuorumSettings,
  readQuorumSettings,
  settingRow,
  writeSetting,
} from './settings.js';

/**
 * M-of-N admin proposals (docs/quorum.md). A proposal is a change of a registered kind with its
 * exact payload, bound to payloadHash (adminKeys.ts computePayloadHash), proposed by an admin's
 * signature and approved by the signatures of M other admins over (label, id, payloadHash). The
 * proposer's own approval does not count, an admin counts once, an approval over another payload
 * hash or after the expiry is refused, and M−1 approvals change nothing. The approval that meets
 * the threshold applies the payload exactly as stored (parsed again, its hash checked), in the
 * unit that records that approval and the `quorum.apply` audit record. Every decision, allowed or
 * refused, has its audit record.
 */

const PROPOSAL_MAC_LABEL = 'custos.proposal.v1';
export const DEFAULT_PROPOSAL_TTL_SECONDS = 72 * 3600;
export const MIN_PROPOSAL_TTL_SECONDS = 60;
export const MAX_PROPOSAL_TTL_SECONDS = 30 * 24 * 3600;
const MAX_PAYLOAD_BYTES = 16 * 1024;
/** How deep a payload may nest (a deeper one is invalid_input before it is parsed or hashed). */
const MAX_PAYLOAD_DEPTH = 16;
/** Slack for the proposer's clock when it picks `expiresAt` (the bounds are MIN/MAX_PROPOSAL_TTL_SECONDS from now). */
const EXPIRY_CLOCK_SLACK_MS = 10 * 60_000;

export interface ProposalView {
  id: string;
  kind: string;
  payload: unknown;
  payloadHash: string;
  description: string;
  proposer: string;
  createdAt: number;
  expiresAt: number;
  /** `pending` past its expiry reads `expired`. */
  state: ProposalRecord['state'];
  decidedAt: number | null;
  /** M at the time of reading, and the approvals that count towards it (the proposer's never does). */
  threshold: number;
  approvals: Array<{ admin: string; createdAt: number }>;
  result: unknown;
  /**
   * What the proposal acts on as stored now (a kind with `inspect`, e.g. wallet.change.approve: the
   * change itself), read for a pending proposal; `matches: false` says approving it is refused.
   */
  subject?: ProposalSubject;
}

/** The proposal's subject as stored (kinds with `inspect`), for a pending proposal; a payload this signer cannot read has none. */
async function subjectOf(ctx: KernelContext, kinds: ReadonlyMap<string, AnyProposalKind>, v: ProposalView): Promise<ProposalView> {
  if (v.state !== 'pending') return v;
  const kind = kinds.get(v.kind);
  if (kind?.inspect === undefined) return v;
  let parsed: unknown;
  try {
    parsed = kind.parse(v.payload);
  } catch {
    return v;
  }
  const subject = await ctx.transact((tx) => kind.inspect?.(tx, parsed) as Promise<ProposalSubject>);
  return { ...v, subject };
}

/** The operator scope, checked first; a refusal is audited. */
async function assertAdminScope(ctx: KernelContext, app: App, action: string): Promise<void> {
  const forbidden = checkScope(app, 'admin');
  if (forbidden === undefined) return;
  await ctx.transact((tx) => deny(tx, { ts: ctx.now(), appId: app.id, walletName: null, action, opHash: null, detail: {} }, forbidden));
  throw forbidden;
}

function macProposal(barrier: Barrier, record: ProposalRecord): string {
  return macRow(barrier, PROPOSAL_MAC_LABEL, record);
}

function proposalNotFound(): CustosError {
  return new CustosError('proposal_not_found', 'no proposal with that id', { details: { field: 'id' } });
}

function unreadableProposal(id: string): CustosError {
  return new CustosError('record_unreadable', 'the proposal does not match its MAC: refusing to act', { details: { proposalId: id } });
}

/** A kernel refusal (to be audited) returned; anything else (the store) thrown. */
function refusalOrThrow(error: unknown): CustosError {
  if (error instanceof CustosError) return error;
  throw error;
}

function notConfigured(): CustosError {
  return new CustosError('quorum_not_configured', 'no admin set is configured on this signer', {});
}

function kindOf(kinds: ReadonlyMap<string, AnyProposalKind>, kind: unknown): AnyProposalKind {
  const found = typeof kind === 'string' ? kinds.get(kind) : undefined;
  if (found === undefined)
    throw invalidInput('kind', `one of ${[...kinds.keys()].join(', ')}`, typeof kind === 'string' ? JSON.stringify(kind.slice(0, 64)) : typeof kind);
  return found;
}

/** An admin's id: an Ed25519 public key, or a passkey admin's `pk:…`. */
function assertAdminId(value: unknown, field: string): string {
  return typeof value === 'string' && isPasskeyAdminId(value) ? value : assertAdminPublicKey(value, field);
}

/**
 * An admin's proof over (label, statement), checked in the unit: a key-file admin's Ed25519
 * signature (hex), or a passkey admin's WebAuthn assertion whose challenge is SHA-256 of the same
 * statement bytes (adminPasskeyCredential.ts) — its counter checked and moved on in this unit.
 * Returns what the proposal or approval row stores. Throws the refusal.
 */
async function verifyAdminProof(
  ctx: KernelContext,
  tx: StoreTx,
  barrier: Barrier,
  entry: AdminEntry,
  proof: unknown,
  label: typeof PROPOSE_LABEL | typeof APPROVE_LABEL,
  statement: AdminStatement,
): Promise<string> {
  if (entry.passkey === undefined) return assertAdminSignature(entry.publicKey, proof, label, statement);
  return (await useAdminPasskey(tx, barrier, ctx.passkeys, entry, proof, adminPasskeyChallenge(label, statement))).stored;
}

/** Whether a stored approval verifies over the proposal's statement (an Ed25519 signature, or a passkey assertion again). */
async function approvalHolds(ctx: KernelContext, entry: AdminEntry, stored: string, statement: AdminStatement): Promise<boolean> {
  if (entry.passkey !== undefined) return storedAssertionHolds(entry.passkey, stored, adminPasskeyChallenge(APPROVE_LABEL, statement), ctx.passkeys);
  try {
    assertAdminSignature(entry.publicKey, stored, APPROVE_LABEL, statement);
    return true;
  } catch {
    return false;
  }
}

/** The approvals that count: of admins in the set, not the proposer, each signature (or passkey assertion) verified again, one per admin. */
async function countingApprovals(
  ctx: KernelContext,
  proposal: ProposalRecord,
  approvals: readonly ProposalApprovalRecord[],
  quorum: QuorumSettings,
): Promise<ProposalApprovalRecord[]> {
  const admins = new Map(quorum.admins.map((a) => [a.publicKey, a]));
  const statement = statementOf(ctx.signerId(), proposal, proposal.payloadHash);
  const seen = new Set<string>();
  const counting: ProposalApprovalRecord[] = [];
  for (const a of approvals) {
    const entry = admins.get(a.admin);
    if (a.admin === proposal.proposer || entry === undefined || seen.has(a.admin)) continue;
    // a row written by hand, or moved from another proposal, with no valid signature, never counts
    if (!(await approvalHolds(ctx, entry, a.signature, statement))) continue;
    seen.add(a.admin);
    counting.push(a);
  }
  return counting;
}

/** What the admins of a stored proposal signed (the approver's payloadHash, for an approval being checked). */
function statementOf(signerId: string, proposal: ProposalRecord, payloadHash: string): AdminStatement {
  return { signerId, id: proposal.id, proposer: proposal.proposer, expiresAt: proposal.expiresAt, payloadHash };
}

/** A JSON value's nesting depth and size, walked without recursion: bounded before anything recursive (parse, canonicalJson) sees it. */
function assertBoundedJson(value: unknown, field: string, maxDepth: number, maxBytes: number): void {
  const tooBig = () => invalidInput(field, `JSON nested at most ${maxDepth} deep and at most ${maxBytes} bytes`);
  const stack: Array<[unknown, number]> = [[value, 1]];
  let bytes = 0;
  while (stack.length > 0) {
    const [v, depth] = stack.pop() as [unknown, number];
    bytes += typeof v === 'string' ? v.length + 2 : 8;
    if (bytes > maxBytes) throw tooBig();
    if (v === null || typeof v !== 'object') continue;
    if (depth > maxDepth) throw tooBig();
    if (Array.isArray(v)) for (const item of v) stack.push([item, depth + 1]);
    else
      for (const [k, item] of Object.entries(v as Record<string, unknown>)) {
        bytes += k.length + 3;
        stack.push([item, depth + 1]);
      }
  }
}

/**
 * Characters of a proposal's canonical payload one audit record carries: at most 3 UTF-8 bytes a
 * character, twice that once escaped inside the record's JSON, well under the log's 4 KB bound.
 */
export const PAYLOAD_AUDIT_PART_CHARS = 600;

/** A canonical payload cut into the parts the log holds, in order (never inside a surrogate pair). */
export function payloadParts(text: string): string[] {
  const parts: string[] = [];
  let at = 0;
  while (at < text.length || parts.length === 0) {
    let end = Math.min(at + PAYLOAD_AUDIT_PART_CHARS, text.length);
    const last = text.charCodeAt(end - 1);
    if (end < text.length && last >= 0xd800 && last <= 0xdbff) end -= 1;
    parts.push(text.slice(at, end));
    at = end;
  }
  return parts;
}

function view(
  kinds: ReadonlyMap<string, AnyProposalKind>,
  p: ProposalRecord,
  approvals: ProposalApprovalRecord[],
  threshold: number,
  nowMs: number,
): ProposalView {
  const payload = JSON.parse(p.payload) as unknown;
  let description: string;
  try {
    const kind = kindOf(kinds, p.kind);
    description = kind.describe(kind.parse(payload));
  } catch {
    description = `(a ${p.kind} proposal this signer cannot read)`;
  }
  return {
    id: p.id,
    kind: p.kind,
    payload,
    payloadHash: p.payloadHash,
    description,
    proposer: p.proposer,
    createdAt: p.createdAt,
    expiresAt: p.expiresAt,
    state: p.state === 'pending' && p.expiresAt <= nowMs ? 'expired' : p.state,
    decidedAt: p.decidedAt,
    threshold,
    approvals: approvals.map((a) => ({ admin: a.admin, createdAt: a.createdAt })),
    result: p.result === null ? null : (JSON.parse(p.result) as unknown),
  };
}

/**
 * A proposal's kind and payload checked as proposeChange checks them (the admin page's draft too):
 * a registered kind, the payload bounded (before anything recursive sees it), parsed by its kind, at
 * most MAX_PAYLOAD_BYTES of canonical JSON. Returns its canonical text, hash and description.
 */
export function checkProposalPayload(
  kinds: ReadonlyMap<string, AnyProposalKind>,
  kindName: unknown,
  payload: unknown,
): { kind: AnyProposalKind; canonical: string; payloadHash: string; description: string } {
  const kind = kindOf(kinds, kindName);
  // Bounded first: a deeply nested payload would overflow the stack of the parser or of canonicalJson.
  assertBoundedJson(payload, 'payload', MAX_PAYLOAD_DEPTH, MAX_PAYLOAD_BYTES);
  const parsed = kind.parse(payload);
  const canonical = canonicalJson(payload);
  if (Buffer.byteLength(canonical) > MAX_PAYLOAD_BYTES) throw invalidInput('payload', `at most ${MAX_PAYLOAD_BYTES} bytes of JSON`);
  return { kind, canonical, payloadHash: computePayloadHash(kind.kind, payload), description: kind.describe(parsed) };
}

/**
 * An admin proposes a change (scope `admin`): `id` (32 hex, chosen by the proposer, never used
 * before on this signer), `kind`, `payload`, `proposer` (public key), `expiresAt` (ms, chosen by the
 * proposer) and `signature` over (PROPOSE_LABEL, signerId, id, proposer, expiresAt, payloadHash).
 */
export async function proposeChange(
  ctx: KernelContext,
  kinds: ReadonlyMap<string, AnyProposalKind>,
  app: App,
  request: { id: unknown; kind: unknown; payload: unknown; proposer: unknown; signature: unknown; expiresAt: unknown },
): Promise<ProposalView> {
  const barrier = ctx.requireBarrier();
  const signerId = ctx.signerId();
  await assertAdminScope(ctx, app, 'quorum.propose');
  const id = assertProposalId(request.id);
  const { kind, canonical: payload, payloadHash, description } = checkProposalPayload(kinds, request.kind, request.payload);
  const proposer = assertAdminId(request.proposer, 'proposer');
  const nowMs = ctx.now();
  const expiresAt = request.expiresAt;
  if (
    typeof expiresAt !== 'number' ||
    !Number.isSafeInteger(expiresAt) ||
    expiresAt < nowMs + MIN_PROPOSAL_TTL_SECONDS * 1000 - EXPIRY_CLOCK_SLACK_MS ||
    expiresAt > nowMs + MAX_PROPOSAL_TTL_SECONDS * 1000 + EXPIRY_CLOCK_SLACK_MS ||
    expiresAt <= nowMs
  )
    throw invalidInput('expiresAt', `a time (ms since the epoch) from ${MIN_PROPOSAL_TTL_SECONDS} s to ${MAX_PROPOSAL_TTL_SECONDS} s from now`);
  const outcome = await ctx.transact(async (tx): Promise<Outcome<ProposalView>> => {
    const base = {
      ts: nowMs,
      appId: app.id,
      walletName: null,
      action: 'quorum.propose',
      opHash: null,
      detail: { proposalId: id, kind: kind.kind, payloadHash, proposer },
    };
    // A row the log does not vouch for (deleted, or an older admin set put back: rowAnchors.ts) is refused, audited.
    const quorum = await readQuorumSettings(tx, barrier, { sealed: ctx.quorumSealed?.() ?? false }).catch(refusalOrThrow);
    if (quorum instanceof CustosError) return deny(tx, base, quorum);
    if (quorum === undefined) return deny(tx, base, notConfigured());
    const proposerEntry = quorum.admins.find((a) => a.publicKey === proposer);
    if (proposerEntry === undefined)
      return deny(tx, base, new CustosError('admin_unknown', 'the proposer is not in the admin set', { details: { field: 'proposer' } }));
    let proposerSignature: string;
    try {
      proposerSignature = await verifyAdminProof(ctx, tx, barrier, proposerEntry, request.signature, PROPOSE_LABEL, {
        signerId,
        id,
        proposer,
        expiresAt,
        payloadHash,
      });
    } catch (error) {
      if (!(error instanceof CustosError)) throw error;
      return deny(tx, base, error);
    }
    // Single use: an id proposed once (its row, or — should the row have been deleted — its allowed
    // quorum.propose / quorum.apply record in the log) is never proposed again, so that signatures
    // over it cannot be replayed.
    if ((await tx.getProposalForUpdate(id)) !== undefined || (await tx.hasProposalAudit(id)))
      return deny(tx, base, new CustosError('proposal_exists', 'a proposal with that id exists or existed already', { details: { field: 'id' } }));
    const record: ProposalRecord = {
      id,
      kind: kind.kind,
      payload,
      payloadHash,
      proposer,
      proposerSignature,
      createdAt: nowMs,
      expiresAt,
      state: 'pending',
      decidedAt: null,
      result: null,
      mac: '',
    };
    record.mac = macProposal(barrier, record);
    await tx.insertProposal(record);
    const announced = await noticeAdmins(tx, ctx, barrier, quorum, {
      event: 'proposal',
      text: `Proposal ${id} (${kind.kind}) by admin ${proposer.slice(0, 16)}…: ${description}\nIt needs ${quorum.threshold} approvals by other admins before ${new Date(record.expiresAt).toISOString()}. Read it in full before approving: custos admin show --id ${id}\n`,
      nowMs,
    });
    // The log holds the exact payload (its canonical JSON text: computePayloadHash(kind, JSON.parse(text)) is payloadHash):
    // inline when the record stays under the log's 4 KB detail bound (boundAuditDetail), else in `quorum.payload` records right after.
    const detail = { ...base.detail, description: description.slice(0, 512), expiresAt: record.expiresAt, announced };
    const inline = Buffer.byteLength(canonicalJson({ ...detail, payload }), 'utf8') <= AUDIT_DETAIL_MAX_BYTES;
    const parts = inline ? [] : payloadParts(payload);
    await tx.appendAudit(auditRecord({ ...base, detail: { ...detail, ...(inline ? { payload } : { payloadParts: parts.length }) } }, { allowed: {} }));
    if (!inline)
      for (const [i, text] of parts.entries())
        await tx.appendAudit(
          auditRecord({ ...base, action: 'quorum.payload', detail: { proposalId: id, part: i + 1, parts: parts.length, text } }, { allowed: {} }),
        );
    return { ok: true, value: view(kinds, record, [], quorum.threshold, nowMs) };
  });
  ctx.deliveryQueued?.();
  return settle(outcome);
}

/**
 * An admin approves a proposal (scope `admin`): `admin` (public key), `payloadHash` (what the
 * admin was shown and checked) and `signature` over (APPROVE_LABEL, id, payloadHash). The approval
 * that meets the threshold applies the change in the same unit.
 */
export async function approveProposal(
  ctx: KernelContext,
  kinds: ReadonlyMap<string, AnyProposalKind>,
  app: App,
  request: { id: unknown; admin: unknown; payloadHash: unknown; signature: unknown },
): Promise<ProposalView> {
  const barrier = ctx.requireBarrier();
  const signerId = ctx.signerId();
  await assertAdminScope(ctx, app, 'quorum.approve');
  const id = assertProposalId(request.id);
  const admin = assertAdminId(request.admin, 'admin');
  if (typeof request.payloadHash !== 'string' || !/^[0-9a-f]{64}$/.test(request.payloadHash)) throw invalidInput('payloadHash', '32 bytes, lowercase hex');
  const payloadHash = request.payloadHash;
  const nowMs = ctx.now();
  // The unit; a kind's apply that refuses is audited in a unit of its own (auditRefusedApply).
  const decide = async (tx: StoreTx): Promise<Outcome<ProposalView>> => {
    const base = { ts: nowMs, appId: app.id, walletName: null, action: 'quorum.approve', opHash: null, detail: { proposalId: id, admin, payloadHash } };
    const proposal = await tx.getProposalForUpdate(id);
    if (proposal === undefined) return deny(tx, base, proposalNotFound());
    if (!rowIntact(barrier, PROPOSAL_MAC_LABEL, proposal, undefined)) return deny(tx, base, unreadableProposal(id));
    // A row the log does not vouch for (deleted, or an older admin set put back: rowAnchors.ts) is refused, audited.
    const quorum = await readQuorumSettings(tx, barrier, { sealed: ctx.quorumSealed?.() ?? false }).catch(refusalOrThrow);
    if (quorum instanceof CustosError) return deny(tx, base, quorum);
    if (quorum === undefined) return deny(tx, base, notConfigured());
    // Guard clauses in order: who signs, what they signed, then the proposal's state.
    const entry = quorum.admins.find((a) => a.publicKey === admin);
    if (entry === undefined) return deny(tx, base, new CustosError('admin_unknown', 'the approver is not in the admin set', { details: { field: 'admin' } }));
    let signature: string;
    try {
      signature = await verifyAdminProof(ctx, tx, barrier, entry, request.signature, APPROVE_LABEL, statementOf(signerId, proposal, payloadHash));
    } catch (error) {
      if (!(error instanceof CustosError)) throw error;
      return deny(tx, base, error);
    }
    if (payloadHash !== proposal.payloadHash)
      return deny(
        tx,
        base,
        new CustosError('proposal_payload_mismatch', 'the approval is for another payload than the stored proposal’s', {
          details: { field: 'payloadHash', expected: proposal.payloadHash },
        }),
      );
    if (proposal.state === 'expired' || (proposal.state === 'pending' && proposal.expiresAt <= nowMs)) {
      if (proposal.state === 'pending') {
        const expired: ProposalRecord = { ...proposal, state: 'expired', decidedAt: nowMs };
        expired.mac = macProposal(barrier, expired);
        await tx.updateProposal(id, expired);
      }
      return deny(
        tx,
        base,
        new CustosError('proposal_expired', 'the proposal expired before it reached its quorum', { details: { expiresAt: proposal.expiresAt } }),
      );
    }
    if (proposal.state !== 'pending')
      return deny(tx, base, new CustosError('proposal_not_pending', `the proposal is ${proposal.state}`, { details: { state: proposal.state } }));
    if (admin === proposal.proposer)
      return deny(tx, base, new CustosError('proposal_self_approval', 'the proposer’s own approval does not count', { details: { field: 'admin' } }));
    // What it approves, as stored now (kinds with `inspect`): a subject that no longer matches the proposal is refused at every approval, not only at the one that applies.
    const inspecting = kinds.get(proposal.kind);
    if (inspecting?.inspect !== undefined) {
      const subject = await inspecting.inspect(tx, inspecting.parse(JSON.parse(proposal.payload) as unknown));
      if (!subject.matches) {
        return deny(
          tx,
          base,
          new CustosError(subject.refusal?.code ?? 'proposal_payload_mismatch', subject.refusal?.message ?? 'the proposal does not match what is stored', {
            details: { proposalId: id },
          }),
        );
      }
    }
    const fresh = await tx.insertProposalApproval({ proposalId: id, admin, signature, createdAt: nowMs });
    if (!fresh)
      return deny(tx, base, new CustosError('proposal_already_approved', 'this admin approved the proposal already', { details: { field: 'admin' } }));
    const counting = await countingApprovals(ctx, proposal, await tx.listProposalApprovals(id), quorum);
    await tx.appendAudit(auditRecord({ ...base, detail: { ...base.detail, approvals: counting.length, threshold: quorum.threshold } }, { allowed: {} }));
    if (counting.length < quorum.threshold) return { ok: true, value: view(kinds, proposal, counting, quorum.threshold, nowMs) };
    // The threshold is met: apply exactly what is stored — its hash checked again, its payload parsed again.
    const stored = JSON.parse(proposal.payload) as unknown;
    if (computePayloadHash(proposal.kind, stored) !== proposal.payloadHash) return deny(tx, base, unreadableProposal(id));
    const kind = kindOf(kinds, proposal.kind);
    const approvers = counting.map((a) => a.admin);
    const result = await kind.apply(tx, { barrier, nowMs }, kind.parse(stored), {
      id,
      kind: kind.kind,
      payloadHash: proposal.payloadHash,
      proposer: proposal.proposer,
      approvers,
    });
    const announced = await noticeAdmins(tx, ctx, barrier, quorum, {
      event: 'proposal.applied',
      text: `Proposal ${id} (${kind.kind}) was approved by ${approvers.length} admins and applied: ${kind.describe(kind.parse(stored))}\n`,
      nowMs,
    });
    const applied: ProposalRecord = { ...proposal, state: 'applied', decidedAt: nowMs, result: canonicalJson(result ?? null) };
    applied.mac = macProposal(barrier, applied);
    await tx.updateProposal(id, applied);
    await tx.appendAudit(
      auditRecord(
        {
          ts: nowMs,
          appId: app.id,
          walletName: null,
          action: 'quorum.apply',
          opHash: null,
          detail: {
            proposalId: id,
            kind: kind.kind,
            payloadHash: proposal.payloadHash,
            proposer: proposal.proposer,
            approvers,
            result: result ?? null,
            announced,
          },
        },
        { allowed: {} },
      ),
    );
    return { ok: true, value: view(kinds, applied, counting, quorum.threshold, nowMs) };
  };
  const outcome = await ctx.transact(decide).catch((error: unknown) => auditRefusedApply(ctx, app, id, error));
  ctx.deliveryQueued?.();
  return settle(outcome);
}

/**
 * A kind's `apply` that refused (the change no longer fits: another change, a wallet gone, nothing to
 * reset): its unit rolled back — the approval that met the threshold with it, so the proposal stays
 * pending — and the refusal is audited `quorum.apply` denied in a unit of its own. A store failure is
 * thrown as it is.
 */
async function auditRefusedApply(ctx: KernelContext, app: App, id: string, error: unknown): Promise<Outcome<ProposalView>> {
  if (!(error instanceof CustosError) || error.code === 'store_unavailable' || error.code === 'internal' || error.code === 'sealed') throw error;
  return ctx.transact((tx) =>
    deny(tx, { ts: ctx.now(), appId: app.id, walletName: null, action: 'quorum.apply', opHash: null, detail: { proposalId: id } }, error),
  );
}

/** A proposal with its counting approvals (scope `admin`). */
export async function getProposal(ctx: KernelContext, kinds: ReadonlyMap<string, AnyProposalKind>, app: App, request: { id: unknown }): Promise<ProposalView> {
  const barrier = ctx.requireBarrier();
  await assertAdminScope(ctx, app, 'quorum.read');
  const id = assertProposalId(request.id);
  const proposal = await ctx.readStore(() => ctx.store.readProposal(id));
  if (proposal === undefined) throw proposalNotFound();
  if (!rowIntact(barrier, PROPOSAL_MAC_LABEL, proposal, undefined)) throw unreadableProposal(id);
  const quorum = await ctx.readStore(() => readQuorumSettings(ctx.store, barrier, { sealed: ctx.quorumSealed?.() ?? false }));
  const approvals = await ctx.readStore(() => ctx.store.readProposalApprovals(id));
  return subjectOf(
    ctx,
    kinds,
    view(kinds, proposal, quorum === undefined ? [] : await countingApprovals(ctx, proposal, approvals, quorum), quorum?.threshold ?? 0, ctx.now()),
  );
}

/** The newest proposals first (scope `admin`); a row whose MAC does not hold is left out. Also the admin set. */
export async function listProposals(
  ctx: KernelContext,
  kinds: ReadonlyMap<string, AnyProposalKind>,
  app: App,
  request: { limit?: unknown },
): Promise<{ quorum: QuorumSettings | null; proposals: ProposalView[] }> {
  const barrier = ctx.requireBarrier();
  await assertAdminScope(ctx, app, 'quorum.read');
  const limit = request.limit ?? 50;
  if (typeof limit !== 'number' || !Number.isSafeInteger(limit) || limit < 1 || limit > 200) throw invalidInput('limit', 'an integer from 1 to 200');
  const quorum = await ctx.readStore(() => readQuorumSettings(ctx.store, barrier, { sealed: ctx.quorumSealed?.() ?? false }));
  const rows = await ctx.readStore(() => ctx.store.listProposals(limit));
  const proposals: ProposalView[] = [];
  for (const p of rows) {
    if (!rowIntact(barrier, PROPOSAL_MAC_LABEL, p, undefined)) continue;
    const approvals = await ctx.readStore(() => ctx.store.readProposalApprovals(p.id));
    proposals.push(
      await subjectOf(
        ctx,
        kinds,
        view(kinds, p, quorum === undefined ? [] : await countingApprovals(ctx, p, approvals, quorum), quorum?.threshold ?? 0, ctx.now()),
      ),
    );
  }
  return { quorum: quorum === undefined ? null : { threshold: quorum.threshold, admins: quorum.admins }, proposals };
}

/**
 * The bootstrap of the first admin set (custos init --admin, custos admin bootstrap): only when
 * none exists (quorum_required otherwise; a deleted row is record_unreadable). In the same unit,
 * every API key row without a MAC is MAC'd as it is (the operator attests the keys present at
 * bootstrap), the deployment settings row is written (`deployment`: the operator's first settings,
 * checked as a `deployment.settings` payload; default DEFAULT_DEPLOYMENT_SETTINGS) — from then on
 * the defaults change only through a proposal, and a missing row is record_unreadable — and the
 * `quorum.bootstrap` audit record is appended.
 */
export async function bootstrapQuorum(
  tx: StoreTx,
  barrier: Barrier,
  quorumInput: unknown,
  nowMs: number,
  newKeys: readonly ApiKeyRecord[] = [],
  { sealed = false, deployment }: { sealed?: boolean; deployment?: unknown } = {},
): Promise<{ threshold: number; admins: number; apiKeysMacd: number }> {
  const quorum = parseQuorumSettings(quorumInput, { requireEmail: true });
  const settings = parseDeploymentSettings(deployment ?? DEFAULT_DEPLOYMENT_SETTINGS);
  assertWalletPolicy(settings.policyDefaults, 'deployment.policyDefaults');
  // `sealed`: the root the caller opened carries the quorum mark already (a row deleted by hand is record_unreadable)
  if ((await readQuorumSettings(tx, barrier, { sealed })) !== undefined)
    throw new CustosError('quorum_required', 'an admin set exists already: change it with a quorum.set proposal (custos admin propose)');
  await putAnchoredSetting(tx, settingRow(barrier, QUORUM_SETTING, quorum, 1, nowMs));
  // The deployment settings the quorum starts from (a row present already, e.g. restored, is replaced by its next version).
  await writeSetting(tx, barrier, DEPLOYMENT_SETTING, settings, nowMs);
  // Keys made with the bootstrap (custos init --admin … --api-key-out: the operator's admin key), MAC'd below with the rest.
  for (const key of newKeys) await tx.insertApiKey({ ...key, mac: null });
  let apiKeysMacd = 0;
  for (const key of await tx.listApiKeysForUpdate()) {
    if (key.mac !== null && key.mac !== undefined) continue; // a MAC present (good or bad) is never replaced
    await tx.setApiKeyMac(key.id, macApiKey(barrier, key));
    apiKeysMacd += 1;
  }
  await tx.appendAudit({
    ts: nowMs,
    appId: null,
    walletName: null,
    action: QUORUM_BOOTSTRAP_ACTION,
    opHash: null,
    decision: 'allowed',
    reason: null,
    detail: { threshold: quorum.threshold, admins: quorum.admins.map((a) => a.publicKey), apiKeysMacd, deploymentSettings: settings },
  });
  return { threshold: quorum.threshold, admins: quorum.admins.length, apiKeysMacd };
}

/** Whether an API key row passes under the quorum rule (see Kernel.#admitApiKey). */
export { apiKeyMacHolds };

/**
 * The rekey's check under a quorum (rekeySigner, in the unit that switches the sealed root): no
 * admin set → nothing to check; else `proposalId` must name an applied `unsealer.change` proposal
 * (MAC holds) whose payload matches the new unsealer, which is marked `consumed` in this unit.
 */
export async function consumeUnsealerChange(
  tx: StoreTx,
  barrier: Barrier,
  proposalId: string | undefined,
  next: UnsealerChangePayload,
  nowMs: number,
  { dryRun = false, sealed = false }: { dryRun?: boolean; sealed?: boolean } = {},
): Promise<string | undefined> {
  if ((await readQuorumSettings(tx, barrier, { sealed })) === undefined) return undefined;
  if (proposalId === undefined)
    throw new CustosError(
      'quorum_required',
      'an admin quorum is configured: a rekey needs an applied unsealer.change proposal (custos admin propose, then --proposal ID)',
    );
  const proposal = await tx.getProposalForUpdate(assertProposalId(proposalId));
  if (proposal === undefined) throw proposalNotFound();
  if (!rowIntact(barrier, PROPOSAL_MAC_LABEL, proposal, undefined)) throw unreadableProposal(proposal.id);
  if (proposal.kind !== 'unsealer.change') throw invalidInput('proposal', 'an unsealer.change proposal', proposal.kind);
  if (proposal.state !== 'applied')
    throw new CustosError(proposal.state === 'pending' ? 'quorum_required' : 'proposal_not_pending', `the proposal is ${proposal.state}, not applied`, {
      details: { state: proposal.state },
    });
  if (proposal.payload !== canonicalJson(next))
    throw new CustosError('proposal_payload_mismatch', 'the new unsealer is not the one the proposal allows', { details: { field: 'proposal' } });
  if (dryRun) return proposal.id;
  const consumed: ProposalRecord = { ...proposal, state: 'consumed', decidedAt: nowMs };
  consumed.mac = macProposal(barrier, consumed);
  await tx.updateProposal(proposal.id, consumed);
  return proposal.id;
}
