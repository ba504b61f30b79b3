import { newFactorRecord } from '../consent/consent.js';
import { type Factor, strongestOf } from '../consent/Factor.js';
import { CustosError } from '../errors.js';
import { assertWalletName } from '../util/assertWalletName.js';
import { auditRecord } from './auditRecord.js';
import { checkScope } from './authorize.js';
import { asCustosError, deny, type KernelContext, type Outcome, settle } from './context.js';
import type { App } from './types.js';
import { addFactor, openWallet } from './walletRecord.js';

/**
 * Enrolment of a second factor (scope `register`), whatever its kind (`byBackend`: through the
 * backend's API — POST /v1/totp/enroll and the compatibility register —, refused for a wallet that
 * has any factor, and when the deployment switched it off): the factor begins its
 * ceremony (a TOTP secret and its QR code) before the unit, so that a wallet is never enrolled with
 * a secret nobody received; then, in one unit, the wallet is opened (created for the caller's
 * tenant), a factor of that kind already enrolled refuses, the factor finishes the ceremony, and
 * the factor row (its secret sealed, its MAC), the wallet's new MAC and the audit record
 * `<kind>.enroll` commit together. The fresh secret is wiped whatever happens.
 */
export async function enrollFactor<Shown, Pending>(
  ctx: KernelContext,
  app: App,
  factor: Factor<object, Shown, Pending>,
  request: { walletName: unknown; proof?: unknown },
  { byBackend = false }: { byBackend?: boolean } = {},
): Promise<{ walletName: string; shown: Shown }> {
  const barrier = ctx.requireBarrier();
  const walletName = assertWalletName(request.walletName);
  const begun = await factor.enroll.begin({ walletName, now: ctx.now(), random: (n) => ctx.random(n) });
  try {
    settle(
      await ctx.transact(async (tx): Promise<Outcome<null>> => {
        const entry = { ts: ctx.now(), appId: app.id, walletName, action: `${factor.kind}.enroll`, opHash: null, detail: {} };
        const forbidden = checkScope(app, 'register');
        if (forbidden !== undefined) return deny(tx, entry, forbidden);
        const wallet = await openWallet(tx, barrier, ctx.factors, {
          tenant: app.tenant,
          walletPrefix: app.walletPrefix,
          walletName,
          nowMs: entry.ts,
          create: true,
        });
        if (!wallet.ok) return deny(tx, entry, wallet.error);
        // The backend's enrolment hands the factor's secret to the backend: the plugin's weaker mode,
        // only for a wallet with no factor at all (a new factor is the owner's to add, on the kernel's
        // enrolment page), and only where the deployment allows it.
        if (byBackend && ctx.policy.backendEnrollment === 'off')
          return deny(
            tx,
            entry,
            new CustosError('backend_enrollment_disabled', "this deployment enrols factors only on the kernel's enrolment page (--backend-enrollment off)", {
              details: { field: 'walletName' },
            }),
          );
        if (byBackend && wallet.value.enrolled.length > 0)
          return deny(
            tx,
            entry,
            new CustosError('already_enrolled', 'the wallet already has a second factor: another one is added by its owner, not through the API', {
              details: { field: 'walletName', enrolled: wallet.value.enrolled.map((e) => e.factor.kind) },
            }),
          );
        // A wallet with a `bound` factor (a passkey) takes another only with that factor's consent,
        // on the enrolment page (enrollmentLinks.ts): never through this seam.
        if (wallet.value.enrolled.some((e) => strongestOf(e.factor, e.record) === 'bound'))
          return deny(
            tx,
            entry,
            new CustosError('already_enrolled', 'the wallet has a passkey: another factor is added on the enrolment page, with its consent', {
              details: { field: 'walletName', enrolled: wallet.value.enrolled.map((e) => e.factor.kind) },
            }),
          );
        if (wallet.value.enrolled.some((e) => e.factor.kind === factor.kind))
          return deny(tx, entry, new CustosError('already_enrolled', `wallet already has a ${factor.label} factor`, { details: { field: 'walletName' } }));
        let finished: Awaited<ReturnType<typeof factor.enroll.finish>>;
        try {
          finished = await factor.enroll.finish({ walletName, pending: begun.pending, via: 'api', secret: begun.secret, proof: request.proof, now: entry.ts });
        } catch (error) {
          return deny(tx, entry, asCustosError(error), factor.kind);
        }
        const record = newFactorRecord(barrier, factor, {
          walletName,
          id: finished.id,
          secret: begun.secret,
          state: finished.state,
          enrolledVia: 'api',
          now: entry.ts,
          random: (n) => ctx.random(n),
        });
        await addFactor(tx, barrier, wallet.value, factor, record);
        // A hardware key's record names the key it enrolled (audit verify --factors follows its row from it).
        await tx.appendAudit(auditRecord(entry, { allowed: factor.kind === 'hwkey' ? { publicKey: record.id } : {} }));
        return { ok: true, value: null };
      }),
    );
  } finally {
    begun.secret?.fill(0);
  }
  return { walletName, shown: begun.shown };
}
