import type { PublicKeyCredentialRequestOptionsJSON } from '@simplewebauthn/server';
import { OPERATOR_TENANT } from '../../store/types.js';
import type { KernelContext } from '../context.js';
import type { App } from '../types.js';
import { APPROVE_LABEL, computePayloadHash } from './adminKeys.js';
import { adminPasskeyChallenge, adminPasskeyId } from './adminPasskeyCredential.js';
import { adminAssertionOptions, passkeyAdminOf } from './adminPasskeys.js';
import type { AnyProposalKind } from './proposalKinds.js';
import { approveProposal, getProposal, listProposals, type ProposalView } from './proposals.js';
import { readQuorumSettings } from './settings.js';

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
  return { proposal, optionsJSON: await adminAssertionOptions(ctx.passkeys, quorum, adminPasskeyChallenge(APPROVE_LABEL, statement)) };
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
