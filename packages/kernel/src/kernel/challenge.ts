import { ConsentRefused, issueChallenge } from '../consent/consent.js';
import type { ApprovalRef } from '../consent/Factor.js';
import { invalidInput } from '../errors.js';
import { assertWalletName } from '../util/assertWalletName.js';
import { auditRecord } from './auditRecord.js';
import { checkScope } from './authorize.js';
import { deny, type KernelContext, type Outcome, settle } from './context.js';
import type { App } from './types.js';
import { openWallet } from './walletRecord.js';

/**
 * A factor's challenge for one approval (scope `sign`): the wallet is opened (never created), the
 * factor of `kind` issues the challenge bound to the approval's opHash, and its state (the pending
 * nonce) commits with the audit record `<kind>.challenge`. Today only the tests' challenge factor
 * answers one (approvals and their routes come with the consent issues); the seam is the one
 * passkeys, hardware keys and delivered codes use.
 */
export async function challengeFactor(
  ctx: KernelContext,
  app: App,
  request: { walletName: unknown; kind: unknown; approval: unknown },
): Promise<{ walletName: string; kind: string; challenge: unknown }> {
  const barrier = ctx.requireBarrier();
  const walletName = assertWalletName(request.walletName);
  const kind = request.kind;
  if (typeof kind !== 'string' || !ctx.factors.some((f) => f.kind === kind)) throw invalidInput('kind', 'the kind of a registered factor', typeof kind);
  const approval = assertApproval(request.approval);
  const challenge = settle(
    await ctx.transact(async (tx): Promise<Outcome<unknown>> => {
      const entry = { ts: ctx.now(), appId: app.id, walletName, action: `${kind}.challenge`, opHash: approval.opHash, detail: { approvalId: approval.id } };
      const forbidden = checkScope(app, 'sign');
      if (forbidden !== undefined) return deny(tx, entry, forbidden);
      const wallet = await openWallet(tx, barrier, ctx.factors, {
        tenant: app.tenant,
        walletPrefix: app.walletPrefix,
        walletName,
        nowMs: entry.ts,
        create: false,
      });
      if (!wallet.ok) return deny(tx, entry, wallet.error);
      let issued: unknown;
      try {
        issued = await issueChallenge(tx, barrier, {
          enrolled: wallet.value.enrolled,
          kind,
          tenant: app.tenant,
          approval,
          now: entry.ts,
          random: (n) => ctx.random(n),
        });
      } catch (error) {
        if (error instanceof ConsentRefused) return deny(tx, entry, error.error, error.factor);
        throw error;
      }
      await tx.appendAudit(auditRecord(entry, { allowed: { factor: kind } }));
      return { ok: true, value: issued };
    }),
  );
  return { walletName, kind, challenge };
}

/** The approval a challenge is bound to: an id, the opHash (64 hex digits) and an expiry (ms). */
function assertApproval(approval: unknown): ApprovalRef {
  if (typeof approval !== 'object' || approval === null) throw invalidInput('approval', 'an object { id, opHash, expiresAt }', typeof approval);
  const { id, opHash, expiresAt } = approval as Record<string, unknown>;
  if (typeof id !== 'string' || !/^[A-Za-z0-9_-]{1,64}$/.test(id)) throw invalidInput('approval.id', '1 to 64 letters, digits, _ or -');
  if (typeof opHash !== 'string' || !/^[0-9a-f]{64}$/.test(opHash)) throw invalidInput('approval.opHash', '64 lowercase hex digits');
  if (typeof expiresAt !== 'number' || !Number.isSafeInteger(expiresAt) || expiresAt < 0)
    throw invalidInput('approval.expiresAt', 'a non-negative integer of milliseconds', typeof expiresAt);
  return { id, opHash, expiresAt };
}
