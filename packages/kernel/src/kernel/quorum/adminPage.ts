import type { PublicKeyCredentialRequestOptionsJSON } from '@simplewebauthn/server';
import { CustosError, invalidInput } from '../../errors.js';
import { OPERATOR_TENANT } from '../../store/types.js';
import { assertTtlSeconds } from '../capabilityRecords.js';
import { deny, type KernelContext } from '../context.js';
import type { App } from '../types.js';
import { APPROVE_LABEL, computePayloadHash, PROPOSE_LABEL } from './adminKeys.js';
import { adminPasskeyChallenge, adminPasskeyId } from './adminPasskeyCredential.js';
import { adminAssertionOptions, checkAdminSession, passkeyAdminOf, passkeyAdmins } from './adminPasskeys.js';
import type { AnyProposalKind } from './proposalKinds.js';
import {
  approveProposal,
  checkProposalPayload,
  DEFAULT_PROPOSAL_TTL_SECONDS,
  getProposal,
  listProposals,
  MAX_PROPOSAL_TTL_SECONDS,
  MIN_PROPOSAL_TTL_SECONDS,
  type ProposalView,
  proposeChange,
} from './proposals.js';
import { type AdminEntry, readQuorumSettings } from './settings.js';

/**
 * The admin page's calls into the quorum (pages/adminPageRoutes.ts). The page is no API key: it
 * acts as this app, whose only power is what the proposal routes check anyway — every approval it
 * passes on is a passkey admin's assertion bound to the proposal's statement, verified and counted by
 * the same approveProposal as an Ed25519 approval (the page's login only lets an admin read).
 */
export const ADMIN_PAGE_APP: App = Object.freeze({ id: 'admin-page', name: 'admin page', tenant: OPERATOR_TENANT, scopes: Object.freeze(['admin'] as const) });

/** A proposal as the page shows it, and the options of the passkey assertion that approves it. */
export async function adminPageProposal(
  ctx: KernelContext,
  kinds: ReadonlyMap<string, AnyProposalKind>,
  id: unknown,
): Promise<{ proposal: ProposalView; optionsJSON: PublicKeyCredentialRequestOptionsJSON | undefined }> {
  const proposal = await getProposal(ctx, kinds, ADMIN_PAGE_APP, { id });
  const barrier = ctx.requireBarrier();
  const quorum = await ctx.readStore(() => readQuorumSettings(ctx.store, barrier, { sealed: ctx.quorumSealed?.() ?? false }));
  if (ctx.passkeys === undefined || proposal.state !== 'pending') return { proposal, optionsJSON: undefined };
  // The hash of the payload as shown (recomputed here from it, never the row's hash column).
  const statement = {
    signerId: ctx.signerId(),
    id: proposal.id,
    proposer: proposal.proposer,
    expiresAt: proposal.expiresAt,
    payloadHash: computePayloadHash(proposal.kind, proposal.payload),
  };
  return { proposal, optionsJSON: await adminAssertionOptions(ctx.passkeys, passkeyAdmins(quorum), adminPasskeyChallenge(APPROVE_LABEL, statement)) };
}

/** The page's list of proposals (newest first). */
export async function adminPageProposals(ctx: KernelContext, kinds: ReadonlyMap<string, AnyProposalKind>): Promise<ProposalView[]> {
  return (await listProposals(ctx, kinds, ADMIN_PAGE_APP, { limit: 50 })).proposals;
}

/**
 * A passkey admin approves on the page: the admin is the set's passkey admin whose credential made
 * the assertion (one not in the set is passed on as its `pk:` id, and refused admin_unknown, audited),
 * the payload hash the one of the payload the page showed (`payloadHash`, posted back by the form).
 */
export async function approveOnAdminPage(
  ctx: KernelContext,
  kinds: ReadonlyMap<string, AnyProposalKind>,
  request: { id: unknown; payloadHash: unknown; proof: unknown },
): Promise<ProposalView> {
  const barrier = ctx.requireBarrier();
  const quorum = await ctx.readStore(() => readQuorumSettings(ctx.store, barrier, { sealed: ctx.quorumSealed?.() ?? false }));
  const credentialId = request.proof !== null && typeof request.proof === 'object' ? (request.proof as { id?: unknown }).id : undefined;
  let admin: unknown;
  try {
    admin = passkeyAdminOf(quorum, request.proof).publicKey;
  } catch {
    admin = typeof credentialId === 'string' && /^[A-Za-z0-9_-]{16,1400}$/.test(credentialId) ? adminPasskeyId(credentialId) : credentialId;
  }
  return approveProposal(ctx, kinds, ADMIN_PAGE_APP, { id: request.id, admin, payloadHash: request.payloadHash, signature: request.proof });
}

// ---- proposing on the page (a passkey admin with a session) ----

/** The largest payload text the page takes (the canonical payload is bounded again by checkProposalPayload). */
const MAX_PAYLOAD_TEXT = 64 * 1024;
const PAGE_PROPOSAL_TTL = { default: DEFAULT_PROPOSAL_TTL_SECONDS, min: MIN_PROPOSAL_TTL_SECONDS, max: MAX_PROPOSAL_TTL_SECONDS };

/** What the page shows before the passkey step, and posts back with the assertion. */
export interface AdminPageDraft {
  /** Chosen by the kernel (32 random hex digits). */
  id: string;
  kind: string;
  /** The payload as parsed (the page shows it in full). */
  payload: unknown;
  /** Its canonical JSON: what the form posts back. */
  payloadText: string;
  payloadHash: string;
  description: string;
  /** The session's admin. */
  proposer: string;
  /** Chosen by the kernel: now + the time to live asked for. */
  expiresAt: number;
}

/** The passkey admin a session token names, or undefined (missing, expired, tampered, or no longer in the set). */
async function sessionAdmin(ctx: KernelContext, session: unknown): Promise<AdminEntry | undefined> {
  return typeof session === 'string' ? checkAdminSession(ctx, session) : undefined;
}

function noSession(): CustosError {
  return new CustosError('unauthorized', 'sign in on the admin page first: no session of an admin of the set in force', { details: { field: 'session' } });
}

/** The JSON text an admin typed: parsed, with no `__proto__` member (invalid_input naming `payload`). */
function parsePayloadText(text: unknown): unknown {
  if (typeof text !== 'string' || text.trim() === '') throw invalidInput('payload', 'the payload as JSON text');
  if (text.length > MAX_PAYLOAD_TEXT) throw invalidInput('payload', `at most ${MAX_PAYLOAD_TEXT} characters of JSON`);
  try {
    return JSON.parse(text, (key, value: unknown) => {
      if (key === '__proto__') throw new Error('__proto__');
      return value;
    }) as unknown;
  } catch {
    throw invalidInput('payload', 'JSON text (no __proto__ member)');
  }
}

/**
 * The page's draft of a proposal (reads and writes nothing): the session's admin as the proposer,
 * the kind and payload checked as proposeChange checks them, an id and expiry the kernel chooses,
 * and the options of the passkey assertion that proposes it — its challenge SHA-256 of the propose
 * statement (adminPasskeyChallenge), allowCredentials the session admin's credential only.
 */
export async function draftOnAdminPage(
  ctx: KernelContext,
  kinds: ReadonlyMap<string, AnyProposalKind>,
  request: { session: unknown; kind: unknown; payload: unknown; ttlSeconds?: unknown },
): Promise<{ draft: AdminPageDraft; optionsJSON: PublicKeyCredentialRequestOptionsJSON }> {
  ctx.requireBarrier();
  const admin = await sessionAdmin(ctx, request.session);
  if (admin === undefined) throw noSession();
  if (ctx.passkeys === undefined) throw new CustosError('passkeys_unavailable', 'this signer was started without a public URL: no passkey can be used', {});
  const payload = parsePayloadText(request.payload);
  const { kind, canonical, payloadHash, description } = checkProposalPayload(kinds, request.kind, payload);
  const ttl = assertTtlSeconds(request.ttlSeconds, PAGE_PROPOSAL_TTL);
  const id = Buffer.from(ctx.random(16)).toString('hex');
  const expiresAt = ctx.now() + ttl * 1000;
  const draft: AdminPageDraft = { id, kind: kind.kind, payload, payloadText: canonical, payloadHash, description, proposer: admin.publicKey, expiresAt };
  const challenge = adminPasskeyChallenge(PROPOSE_LABEL, { signerId: ctx.signerId(), id, proposer: admin.publicKey, expiresAt, payloadHash });
  return { draft, optionsJSON: await adminAssertionOptions(ctx.passkeys, [admin], challenge) };
}

/**
 * A passkey admin proposes on the page: the draft's fields as posted back (`payload` the JSON text,
 * `payloadHash` the one shown), the session's admin as the proposer, and the assertion over the
 * propose statement. A payload or kind that is not the one whose hash was shown is
 * proposal_payload_mismatch (audited); the rest is proposeChange's, whose every refusal is audited:
 * an assertion of another admin's credential, for another statement or label is
 * admin_signature_invalid, a replayed one passkey_counter_invalid (or proposal_exists).
 */
export async function proposeOnAdminPage(
  ctx: KernelContext,
  kinds: ReadonlyMap<string, AnyProposalKind>,
  request: { session: unknown; id: unknown; kind: unknown; payload: unknown; payloadHash: unknown; expiresAt: unknown; proof: unknown },
): Promise<ProposalView> {
  ctx.requireBarrier();
  const refuse = async (error: CustosError, detail: Record<string, unknown>): Promise<never> => {
    await ctx.transact((tx) => deny(tx, { ts: ctx.now(), appId: ADMIN_PAGE_APP.id, walletName: null, action: 'quorum.propose', opHash: null, detail }, error));
    throw error;
  };
  const admin = await sessionAdmin(ctx, request.session);
  if (admin === undefined) return refuse(noSession(), {});
  const payload = parsePayloadText(request.payload);
  if (typeof request.payloadHash !== 'string' || !/^[0-9a-f]{64}$/.test(request.payloadHash)) throw invalidInput('payloadHash', '32 bytes, lowercase hex');
  const { kind, payloadHash } = checkProposalPayload(kinds, request.kind, payload);
  if (payloadHash !== request.payloadHash)
    return refuse(
      new CustosError('proposal_payload_mismatch', 'the payload (or kind) posted is not the one whose hash the page showed: nothing was proposed', {
        details: { field: 'payload', expected: request.payloadHash },
      }),
      { proposalId: typeof request.id === 'string' ? request.id.slice(0, 32) : null, kind: kind.kind, payloadHash, proposer: admin.publicKey },
    );
  return proposeChange(ctx, kinds, ADMIN_PAGE_APP, {
    id: request.id,
    kind: kind.kind,
    payload,
    proposer: admin.publicKey,
    expiresAt: request.expiresAt,
    signature: request.proof,
  });
}
