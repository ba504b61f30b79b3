import { issueRecoveryCodes } from './recoveryCodes.js';
import { ownerCapability, ownerLinkOf } from './freeze.js';
import { sha256 } from '@noble/hashes/sha2.js';
import type { Barrier } from '../barrier/Barrier.js';
import { ConsentRefused, decideConsent, type EnrolledFactor, newFactorRecord } from '../consent/consent.js';
import { type Factor, strongestOf } from '../consent/Factor.js';
import { CustosError, invalidInput, isCustosError } from '../errors.js';
import type { EnrollmentLinkRecord, EnrollmentLinkState, StoreTx } from '../store/types.js';
import { assertWalletName } from '../util/assertWalletName.js';
import { canonicalJson } from '../util/canonicalJson.js';
import { toHex } from '../util/hex.js';
import { type AuditBase, auditRecord } from './auditRecord.js';
import { assertScopeAudited, checkScope } from './authorize.js';
import { assertTtlSeconds, capabilityHashOf, creatorRevoked, macRow, newCapability, rowIntact } from './capabilityRecords.js';
import { asCustosError, deny, type KernelContext, type Outcome, settle } from './context.js';
import type { App, CreatedEnrollment, EnrollmentPage } from './types.js';
import { enrollmentChallengeFor, enrollmentConsentDigest } from './approvalChallenge.js';
import { assertOobAddress, deliveryLimited, isOobFactor, OOB_CHANNELS, type OobFactorState, type OobPending } from '../consent/oobFactor.js';
import { addressTagOf, enqueueMessage, sendOobConsentCode } from './oobDelivery.js';
import { passkeysUnavailable, proofIdOf } from './approvals.js';
import { addFactor, checkWalletRows, openWallet } from './walletRecord.js';
import { queuePendingChange } from './pendingChanges.js';

/**
 * Enrolment on the kernel's own page: the backend asks for a one-time link (scope `register`) and
 * hands it to the owner; the kernel shows the owner the new factor (TOTP: the secret as a QR code)
 * and activates it only when the owner answers its ceremony on the page (TOTP: a first valid code).
 * The backend never sees the secret — it is generated when the link is made, sealed under the
 * barrier in the link's row, and opened only to render the page and check the first code.
 *
 * Trust on first use: the first factor trusts whoever opens the link the backend handed over (a
 * compromised backend may open it itself). Adding a factor to a wallet that has one needs the
 * consent of the strongest factor it has: with a `bound` one (a passkey), the owner answers the
 * link's consent challenge with it on the page, in the unit that adds the new factor. A wallet whose
 * strongest factor is `present` (TOTP only: a code, which a backend may have phished) consents with
 * a code of its app typed on the page. Either way the new factor is a timelocked change
 * (pendingChanges.ts): it waits out a delay the owner is told of and can cancel.
 *
 * Every link row carries a MAC under the barrier over all its fields; being replaced by a newer
 * link (cancelled) or expiring only takes power away and keeps the pending row's MAC.
 */

const LINK_MAC_LABEL = 'custos.enrollment-link.v1';
export const ENROLLMENT_TTL_SECONDS = { default: 86_400, min: 300, max: 604_800 } as const;
/** Wrong first answers before a link is spent (`failed`): a new link is needed. */
export const ENROLLMENT_MAX_FAILURES = 5;
/** The factor kinds an enrolment page can enrol today. */
const PAGE_KINDS = ['totp', 'passkey', 'hwkey', 'oob'] as const;

function macLink(barrier: Barrier, record: EnrollmentLinkRecord): string {
  return macRow(barrier, LINK_MAC_LABEL, record);
}

function asPending(record: EnrollmentLinkRecord): EnrollmentLinkRecord {
  return { ...record, state: 'pending', completedAt: null };
}

/** The row's MAC holds — over the row, or (cancelled or expired: power only taken away) over its pending form. */
function linkIntact(barrier: Barrier, record: EnrollmentLinkRecord): boolean {
  return rowIntact(barrier, LINK_MAC_LABEL, record, record.state === 'cancelled' || record.state === 'expired' ? asPending(record) : undefined);
}

function linkRecordKey(id: string): string {
  return `enrollment:${id}`;
}

function linkNotFound(): CustosError {
  return new CustosError('enrollment_not_found', 'no enrolment link matches this address', { details: { field: 'capability' } });
}

function unreadable(): CustosError {
  return new CustosError('record_unreadable', 'the enrolment link does not match its MAC (it was changed): refusing to act', {
    details: { field: 'capability' },
  });
}

function stateAt(record: EnrollmentLinkRecord, now: number): EnrollmentLinkState {
  return record.state === 'pending' && now >= record.expiresAt ? 'expired' : record.state;
}

function pageFactor(ctx: KernelContext, kind: string): Factor {
  const factor = ctx.factors.find((f) => f.kind === kind);
  if (factor === undefined) throw new CustosError('internal', `no registered factor of kind '${kind}'`);
  return factor;
}

function alreadyEnrolled(kinds: string[], message = 'the wallet’s strongest factor cannot confirm a new factor on this page'): CustosError {
  return new CustosError('already_enrolled', message, { details: { field: 'walletName', enrolled: kinds } });
}

/**
 * What adding a factor to a wallet with `enrolled` needs: nothing (no factor yet), the consent of
 * its passkey (it has a `bound` factor), or it is refused (its strongest factor is `present`).
 */
function consentToAdd(
  enrolled: readonly EnrolledFactor[],
): { needs: 'none' } | { needs: 'bound'; passkeys: EnrolledFactor[] } | { needs: 'code'; totp: EnrolledFactor } | { needs: 'refused' } {
  if (enrolled.length === 0) return { needs: 'none' };
  // Only a passkey answers the link's consent challenge on this page today; a wallet whose only
  // `bound` factor is a card gets no link (refused) until the page asks the card for its consent.
  const bound = enrolled.filter((e) => e.factor.kind === 'passkey' && strongestOf(e.factor, e.record) === 'bound' && e.factor.challengeOptions !== undefined);
  if (bound.length > 0) return { needs: 'bound', passkeys: bound };
  // A wallet whose strongest factor is a code (TOTP only: nothing `bound`): a code from its
  // authenticator app, typed on this page, is its strongest consent; the new factor then waits out
  // the timelock, announced on any channel and cancellable (issue 13 point 2).
  const totp = enrolled.find((e) => e.factor.kind === 'totp');
  if (totp !== undefined && !enrolled.some((e) => strongestOf(e.factor, e.record) === 'bound')) return { needs: 'code', totp };
  return { needs: 'refused' };
}

type Consent = ReturnType<typeof consentToAdd> | { needs: 'current'; oob: EnrolledFactor };

/**
 * What a link of `kind` needs on a wallet with `enrolled`: as consentToAdd, except that a delivery
 * address link for a wallet that has one is a CHANGE of address: it needs the consent of a current
 * factor — the wallet's passkey when it has one, else a code the kernel sends to the current address
 * for this link (`current`). The policy issue adds a delay to the change.
 */
function consentFor(enrolled: readonly EnrolledFactor[], kind: string): Consent {
  const needed = consentToAdd(enrolled);
  // A wallet has one authenticator app and one card: a second one is refused now, not when the change applies.
  if ((kind === 'totp' || kind === 'hwkey') && enrolled.some((e) => e.factor.kind === kind)) return { needs: 'refused' };
  const oob = enrolled.find((e) => e.factor.kind === 'oob');
  if (oob === undefined || needed.needs === 'bound') return needed;
  // A wallet with a delivery address and no passkey: a code sent to that address (its strongest,
  // `bound`, consent) confirms a new address — or any new factor (issue 13: then a timelocked change).
  return { needs: 'current', oob };
}

/** What a TOTP code consenting to a link is bound to (its step is spent: single use; a TOTP code cannot bind more). */
function addRef(link: EnrollmentLinkRecord) {
  const opHash = toHex(barrierFreeDigest(`custos.enrollment.add.v1\0${link.id}`));
  return { id: `add:${link.id}`, opHash, expiresAt: link.expiresAt };
}

/** The subject a change link's current-address code is bound to: never the link's own id (the new address's codes use that). */
function changeRef(link: EnrollmentLinkRecord) {
  const opHash = toHex(barrierFreeDigest(`custos.oob.change.v1\0${link.id}`));
  return { id: `change:${link.id}`, opHash, expiresAt: link.expiresAt };
}

function barrierFreeDigest(text: string): Uint8Array {
  return sha256(encoder.encode(text));
}

/**
 * A one-time enrolment link for a wallet (scope `register`): the wallet is opened (created for the
 * caller's tenant), refused when it has a factor; the factor's secret is made and sealed in the
 * link's row; any earlier pending link of the wallet is cancelled (the newest link is the one).
 */
export async function createEnrollment(
  ctx: KernelContext,
  app: App,
  request: { walletName: unknown; kind?: unknown; ttlSeconds?: unknown },
): Promise<CreatedEnrollment> {
  const barrier = ctx.requireBarrier();
  const walletName = assertWalletName(request.walletName);
  const kind = request.kind ?? 'totp';
  if (typeof kind !== 'string' || !(PAGE_KINDS as readonly string[]).includes(kind)) throw invalidInput('kind', `one of ${PAGE_KINDS.join(', ')}`);
  if (kind === 'passkey' && !ctx.factors.some((f) => f.kind === 'passkey')) throw passkeysUnavailable();
  if (kind === 'oob' && !ctx.factors.some((f) => f.kind === 'oob'))
    throw new CustosError('delivery_unavailable', 'this signer delivers no codes (no --smtp-url or --webhook-url)', { details: { field: 'kind' } });
  const ttlSeconds = assertTtlSeconds(request.ttlSeconds, ENROLLMENT_TTL_SECONDS);
  // The scope first: a key without `register` costs nothing more (no secret made, no QR rendered).
  await assertScopeAudited(ctx, app, 'register', { action: 'enrollment.create', walletName, detail: { kind } });
  const factor = pageFactor(ctx, kind);
  const id = toHex(ctx.random(16));
  const { capability, capabilityHash } = newCapability(ctx);
  const begun = await factor.enroll.begin({ walletName, now: ctx.now(), random: (n) => ctx.random(n) });
  try {
    const secretEnvelope = begun.secret === null ? null : barrier.encryptRecord(linkRecordKey(id), begun.secret, (n) => ctx.random(n));
    const created = settle(
      await ctx.transact(async (tx): Promise<Outcome<EnrollmentLinkRecord>> => {
        const now = ctx.now();
        const expiresAt = now + ttlSeconds * 1000;
        const base: AuditBase = {
          ts: now,
          appId: app.id,
          walletName,
          action: 'enrollment.create',
          opHash: null,
          detail: { enrollmentId: id, kind, expiresAt },
        };
        const forbidden = checkScope(app, 'register');
        if (forbidden !== undefined) return deny(tx, base, forbidden);
        const wallet = await openWallet(tx, barrier, ctx.factors, { tenant: app.tenant, walletPrefix: app.walletPrefix, walletName, nowMs: now, create: true });
        if (!wallet.ok) return deny(tx, base, wallet.error);
        const consent = consentFor(wallet.value.enrolled, kind);
        if (consent.needs === 'refused') return deny(tx, base, alreadyEnrolled(wallet.value.enrolled.map((e) => e.factor.kind)));
        if (consent.needs === 'bound') base.detail = { ...base.detail, consent: 'bound' };
        if (consent.needs === 'current') base.detail = { ...base.detail, consent: 'current-address' };
        if (consent.needs === 'code') base.detail = { ...base.detail, consent: 'totp' };
        if (kind === 'oob' && wallet.value.enrolled.some((e) => e.factor.kind === 'oob')) base.detail = { ...base.detail, change: true };
        const replaced = await cancelPendingLinks(tx, walletName, now, app.id);
        const record: EnrollmentLinkRecord = {
          id,
          tenant: app.tenant,
          apiKeyId: app.id,
          walletName,
          kind,
          capabilityHash,
          state: 'pending',
          createdAt: now,
          expiresAt,
          completedAt: null,
          secretEnvelope,
          pending: canonicalJson(begun.pending ?? null),
          failures: 0,
          mac: '',
        };
        record.mac = macLink(barrier, record);
        await tx.insertEnrollmentLink(record);
        await tx.appendAudit(auditRecord(base, { allowed: replaced.length > 0 ? { replaced } : {} }));
        return { ok: true, value: record };
      }),
    );
    return { id: created.id, walletName, kind, expiresAt: created.expiresAt, capability };
  } finally {
    begun.secret?.fill(0);
  }
}

/** Cancels the wallet's pending links (a newer one replaces them), keeping their pending MAC, each audited; returns their ids. */
async function cancelPendingLinks(tx: StoreTx, walletName: string, now: number, appId: string): Promise<string[]> {
  const pending = await tx.listPendingEnrollmentLinksOfWallet(walletName);
  for (const link of pending) {
    await tx.updateEnrollmentLink(link.id, { state: 'cancelled', completedAt: now, failures: link.failures, mac: link.mac });
    await tx.appendAudit(
      auditRecord(
        { ts: now, appId, walletName, action: 'enrollment.cancel', opHash: null, detail: { enrollmentId: link.id, by: 'enrollment.create' } },
        { allowed: {} },
      ),
    );
  }
  return pending.map((link) => link.id);
}

/**
 * What the enrolment page shows: the wallet, the link's state and, while pending, what the factor
 * shows the owner (TOTP: the otpauth URI and its QR code), rendered from the sealed secret.
 */
export async function openEnrollmentPage(ctx: KernelContext, capability: unknown): Promise<EnrollmentPage> {
  const barrier = ctx.requireBarrier();
  const capabilityHash = capabilityHashOf(capability, linkNotFound);
  // An unlocked read: a GET decides nothing, so it never queues behind signatures.
  const link = await ctx.readStore(() => ctx.store.readEnrollmentLinkByCapability(capabilityHash));
  if (link === undefined) throw linkNotFound();
  if (!linkIntact(barrier, link)) throw unreadable();
  // A link asked for by a key revoked since is void: shown as replaced, without its secret.
  const current = stateAt(link, ctx.now());
  const state = current === 'pending' && (await creatorRevoked(ctx, link.apiKeyId)) ? 'cancelled' : current;
  const page: EnrollmentPage = { walletName: link.walletName, kind: link.kind, state, expiresAt: link.expiresAt, shown: null };
  if (state !== 'pending') return page;
  // The wallet's factors now: adding to a wallet with a passkey asks for its consent on the page.
  const rows = await ctx.readStore(() => ctx.store.readWalletRows(link.walletName));
  const opened = checkWalletRows(barrier, ctx.factors, { tenant: link.tenant, walletName: link.walletName }, rows);
  if (!opened.ok && opened.error.code !== 'wallet_not_found') throw opened.error;
  const consent = consentFor(opened.ok ? opened.value.enrolled : [], link.kind);
  if (consent.needs === 'bound') page.consent = await consentOptions(ctx, link, consent.passkeys);
  // A change of address on a wallet without a passkey: a code sent to the current address (its own button).
  if (consent.needs === 'current') page.consent = { kind: 'oob', options: { currentAddress: true } };
  if (consent.needs === 'code') page.consent = { kind: 'totp', options: { currentCode: true } };
  const factor = pageFactor(ctx, link.kind);
  if (factor.enroll.show === undefined) return page;
  const secret = link.secretEnvelope === null ? null : barrier.decryptRecord(linkRecordKey(link.id), link.secretEnvelope);
  try {
    const challenge = enrollmentChallengeFor(link.kind, ctx.signerId(), link.id, link.failures);
    return {
      ...page,
      shown: await factor.enroll.show({
        walletName: link.walletName,
        secret,
        pending: JSON.parse(link.pending),
        ...(challenge === undefined ? {} : { challenge }),
      }),
    };
  } finally {
    secret?.fill(0);
  }
}

/** What the owner's passkey needs to answer the link's consent challenge. */
async function consentOptions(
  ctx: KernelContext,
  link: EnrollmentLinkRecord,
  passkeys: readonly EnrolledFactor[],
): Promise<{ kind: string; options: unknown }> {
  const [first] = passkeys;
  const factor = (first as EnrolledFactor).factor;
  const challenge = enrollmentConsentDigest(ctx.signerId(), link.id, link.failures);
  const options = await (factor.challengeOptions as NonNullable<Factor['challengeOptions']>).call(factor, {
    records: passkeys.map((e) => e.record),
    challenge,
    approval: consentRef(link, challenge),
    now: ctx.now(),
  });
  return { kind: factor.kind, options };
}

/** The consent challenge as the factor sees it (an ApprovalRef: the link stands for the approval). */
function consentRef(link: EnrollmentLinkRecord, challenge: Uint8Array) {
  return { id: link.id, opHash: toHex(challenge), expiresAt: link.expiresAt, challenge };
}

/**
 * The owner's answer on the enrolment page: the factor finishes its ceremony with the sealed secret
 * (TOTP: the first code must be valid, and its step is spent), and the factor row (enrolledVia
 * `page`), the wallet's new MAC, the completed link and the audit record `<kind>.enroll` commit
 * together. A wrong answer is counted on the link (audited); at the limit the link is spent.
 */
export async function completeEnrollment(ctx: KernelContext, capability: unknown, answer: { proof?: unknown; consent?: unknown }): Promise<EnrollmentPage> {
  const barrier = ctx.requireBarrier();
  const capabilityHash = capabilityHashOf(capability, linkNotFound);
  let noticeQueued = false;
  let recoveryCodes: string[] | undefined;
  let effectiveAt: number | undefined;
  let ownerLink: string | undefined;
  const outcome = await ctx.transact(async (tx): Promise<Outcome<EnrollmentLinkRecord>> => {
    recoveryCodes = undefined;
    ownerLink = undefined;
    const link = await tx.getEnrollmentLinkByCapabilityForUpdate(capabilityHash);
    // An unknown capability is not audited: the page is public, and a guess names no wallet.
    if (link === undefined) return { ok: false, error: linkNotFound() };
    const now = ctx.now();
    const factor = pageFactor(ctx, link.kind);
    const base: AuditBase = {
      ts: now,
      appId: null,
      walletName: link.walletName,
      action: `${link.kind}.enroll`,
      opHash: null,
      detail: { via: 'page', enrollmentId: link.id },
    };
    if (!linkIntact(barrier, link)) return deny(tx, base, unreadable());
    const state = stateAt(link, now);
    if (state !== 'pending') return deny(tx, base, linkStateError(state));
    if (await creatorRevoked(ctx, link.apiKeyId)) return deny(tx, base, linkStateError('cancelled'));
    const wallet = await openWallet(tx, barrier, ctx.factors, { tenant: link.tenant, walletName: link.walletName, nowMs: now, create: false });
    if (!wallet.ok) return deny(tx, base, wallet.error);
    const needed = consentFor(wallet.value.enrolled, link.kind);
    if (needed.needs === 'refused') return deny(tx, base, alreadyEnrolled(wallet.value.enrolled.map((e) => e.factor.kind)));
    const replacing = link.kind === 'oob' ? wallet.value.enrolled.find((e) => e.factor.kind === 'oob') : undefined;
    /** A wrong answer (the new factor's, or the consent's) counts on the link; at the limit the link is spent. */
    const charge = async (refusal: CustosError, kind: string): Promise<Outcome<EnrollmentLinkRecord>> => {
      const failures = link.failures + 1;
      const spent = failures >= ENROLLMENT_MAX_FAILURES;
      const next: EnrollmentLinkRecord = { ...link, failures, state: spent ? 'failed' : 'pending', completedAt: spent ? now : null };
      next.mac = macLink(barrier, next);
      await tx.updateEnrollmentLink(link.id, { state: next.state, completedAt: next.completedAt, failures, mac: next.mac });
      return deny(tx, { ...base, detail: { ...base.detail, failures, spent } }, refusal, kind);
    };
    /**
     * A code consents to the new factor (the current address's code, or a TOTP-only wallet's app code):
     * checked by `factor` under `required` against `ref`; no code is `code_required`, and a malformed
     * answer (or one of `free`) is refused uncharged; any other wrong answer is charged to the link.
     */
    const codeConsent = async (spec: {
      factor: EnrolledFactor;
      required: 'bound' | 'present';
      ref: ReturnType<typeof changeRef>;
      consentKind: 'current-address' | 'totp';
      missing: string;
      free: readonly string[];
    }): Promise<{ refused: Outcome<EnrollmentLinkRecord> } | { consent: Record<string, unknown> }> => {
      const proofKind = spec.factor.factor.kind;
      const withConsent = { ...base, detail: { ...base.detail, consent: spec.consentKind } };
      if (typeof answer.consent !== 'string' || answer.consent === '')
        return { refused: await deny(tx, withConsent, new CustosError('code_required', spec.missing, { details: { field: 'consent' } })) };
      try {
        const consent = await decideConsent(tx, barrier, {
          enrolled: [spec.factor],
          required: spec.required,
          tenant: link.tenant,
          proofKind,
          opHash: spec.ref.opHash,
          proof: answer.consent,
          approval: spec.ref,
          channel: 'page',
          now,
        });
        return { consent };
      } catch (error) {
        if (!(error instanceof ConsentRefused)) throw error;
        const refusal = error.error;
        if (refusal.code === 'invalid_input' || refusal.code === 'code_required' || spec.free.includes(refusal.code))
          return { refused: await deny(tx, withConsent, refusal, proofKind) };
        return { refused: await charge(refusal, proofKind) };
      }
    };
    // Adding to a wallet with a passkey: that passkey's answer to the link's consent challenge first
    // (its counter advances in this unit), so that a backend holding the link adds nothing alone.
    let consent: Record<string, unknown> | undefined;
    if (needed.needs === 'current' || needed.needs === 'code') {
      // 'current': a change of address (or a new factor) without a passkey: the code the kernel sent to
      // the CURRENT address for this link (sendChangeCode), checked by the oob factor (its tries, its
      // lock) — never the new address's code, whose subject is the link itself.
      // 'code': a TOTP-only wallet: a code from its authenticator app, typed on this page, consents (the
      // strongest strength the wallet has); a wrong one is charged to the factor and to the link.
      const decided = await codeConsent(
        needed.needs === 'current'
          ? {
              factor: needed.oob,
              required: 'bound',
              ref: changeRef(link),
              consentKind: 'current-address',
              missing: `${link.kind === 'oob' ? 'changing the address' : 'adding a factor'} needs the code sent to the current address for this link`,
              free: ['challenge_required'],
            }
          : {
              factor: needed.totp,
              required: 'present',
              ref: addRef(link),
              consentKind: 'totp',
              missing: 'this wallet has an authenticator app: confirm the new factor with a code from it',
              free: [],
            },
      );
      if ('refused' in decided) return decided.refused;
      consent = decided.consent;
    }
    if (needed.needs === 'bound') {
      if (answer.consent === undefined || answer.consent === null || answer.consent === '')
        return deny(
          tx,
          { ...base, detail: { ...base.detail, consent: 'bound' } },
          new CustosError('code_required', 'this wallet has a passkey: confirm the new factor with it', { details: { field: 'consent' } }),
        );
      const challenge = enrollmentConsentDigest(ctx.signerId(), link.id, link.failures);
      try {
        consent = await decideConsent(tx, barrier, {
          enrolled: needed.passkeys,
          required: 'bound',
          tenant: link.tenant,
          proofKind: (needed.passkeys[0] as EnrolledFactor).factor.kind,
          ...proofIdOf(answer.consent),
          opHash: toHex(challenge),
          proof: answer.consent,
          approval: consentRef(link, challenge),
          channel: 'page',
          now,
        });
      } catch (error) {
        if (!(error instanceof ConsentRefused)) throw error;
        const refusal = error.error;
        const withConsent = { ...base, detail: { ...base.detail, consent: 'bound' } };
        if (refusal.code === 'invalid_input' || refusal.code === 'code_required' || refusal.code === 'challenge_required')
          return deny(tx, withConsent, refusal, error.factor);
        return charge(refusal, error.factor ?? factor.kind);
      }
    }
    const secret = link.secretEnvelope === null ? null : barrier.decryptRecord(linkRecordKey(link.id), link.secretEnvelope);
    try {
      let finished: Awaited<ReturnType<Factor['enroll']['finish']>>;
      try {
        finished = await factor.enroll.finish({
          walletName: link.walletName,
          pending: JSON.parse(link.pending),
          via: 'page',
          secret,
          proof: answer.proof,
          ...withChallenge(enrollmentChallengeFor(link.kind, ctx.signerId(), link.id, link.failures)),
          now,
        });
      } catch (error) {
        const refusal = asCustosError(error);
        if (isCustosError(error) && error.code === 'sealed') throw error;
        // A malformed or missing answer costs nothing; a wrong one is counted on the link.
        // A malformed or missing answer costs nothing — unless a consent was accepted in this post:
        // then the post is counted, which changes the consent's digest (it answers once).
        if ((refusal.code !== 'invalid_input' && refusal.code !== 'code_required') || consent !== undefined) return charge(refusal, factor.kind);
        return deny(tx, base, refusal, factor.kind);
      }
      const record = newFactorRecord(barrier, factor, {
        walletName: link.walletName,
        id: finished.id,
        secret,
        state: finished.state,
        enrolledVia: 'page',
        now,
        random: (n) => ctx.random(n),
      });
      if (replacing !== undefined || consent !== undefined) {
        // Issue 13 (timelock): a wallet that has a factor changes only after the deployment's delay.
        // The new factor (or address) waits as a pending change, with the consent given here; it is
        // announced at once on the wallet's current channel (whose link cancels it), and applied by
        // the apply loop. Until then the wallet's protection is the one in force now.
        const evidence =
          replacing !== undefined
            ? { replaced: true, channel: (finished.state as OobFactorState).channel, previousChannel: (replacing.record.state as OobFactorState).channel }
            : enrolmentEvidence(record);
        const queued = await queuePendingChange(tx, ctx, {
          wallet: wallet.value,
          kind: replacing !== undefined ? 'delivery.change' : 'factor.add',
          payload: { record },
          consent: consent ?? { factor: 'oob', via: 'current-address' },
          apiKeyId: link.apiKeyId,
          now,
        });
        const completed: EnrollmentLinkRecord = { ...link, state: 'completed', completedAt: now };
        completed.mac = macLink(barrier, completed);
        await tx.updateEnrollmentLink(link.id, { state: 'completed', completedAt: now, failures: link.failures, mac: completed.mac });
        noticeQueued = queued.queued > 0;
        ownerLink = ownerCapability(barrier, wallet.value.wallet);
        effectiveAt = queued.record.effectiveAt ?? undefined;
        const pending = { ...evidence, changeId: queued.record.id, effectiveAt, ...queued.admins };
        await tx.appendAudit(auditRecord(base, { allowed: consent === undefined ? pending : { ...pending, consent } }));
        return { ok: true, value: completed };
      }
      try {
        await addFactor(tx, barrier, wallet.value, factor, record);
      } catch (error) {
        // One credential serves one wallet: the store refuses a passkey's id it holds already (the
        // same authenticator's credential registered again for another wallet), inserting nothing.
        // A refusal like the others, audited; not charged (the answer was valid, not a guess) — unless
        // a consent was accepted in this post: then it is counted, so that the consent answers once.
        if (isCustosError(error) && error.code === 'already_enrolled')
          return consent === undefined ? deny(tx, base, error, factor.kind) : charge(error, factor.kind);
        throw error;
      }
      const completed: EnrollmentLinkRecord = { ...link, state: 'completed', completedAt: now };
      completed.mac = macLink(barrier, completed);
      await tx.updateEnrollmentLink(link.id, { state: 'completed', completedAt: now, failures: link.failures, mac: completed.mac });
      // The wallet's first factor: its recovery codes, shown once on this page (recoveryCodes.ts).
      recoveryCodes =
        wallet.value.enrolled.length === 0 ? await issueRecoveryCodes(tx, barrier, (n) => ctx.random(n), { walletName: link.walletName, now }) : undefined;
      // Shown beside the recovery codes: the wallet's owner page (activity, open changes, "this was not me").
      if (recoveryCodes !== undefined) ownerLink = await ownerLinkOf(tx, barrier, wallet.value.wallet);
      const which = { ...enrolmentEvidence(record), ...(recoveryCodes === undefined ? {} : { recoveryCodes: recoveryCodes.length }) };
      await tx.appendAudit(auditRecord(base, { allowed: consent === undefined ? which : { ...which, consent } }));
      return { ok: true, value: completed };
    } finally {
      secret?.fill(0);
    }
  });
  const link = settle(outcome);
  // Only a timelocked change queues a message (its announcement on the wallet's channel).
  if (noticeQueued) ctx.deliveryQueued?.();
  return {
    walletName: link.walletName,
    kind: link.kind,
    state: link.state,
    expiresAt: link.expiresAt,
    shown: null,
    ...(recoveryCodes === undefined ? {} : { recoveryCodes }),
    ...(effectiveAt === undefined ? {} : { effectiveAt }),
    ...(ownerLink === undefined ? {} : { ownerCapability: ownerLink }),
  };
}

/**
 * The owner asks, on a change-of-address link of a wallet without a passkey, for the code that
 * consents to the change: the oob factor issues a send bound to this link (`change:<link id>`;
 * its sends per subject, the hourly cap and the lock apply) and the message goes to the CURRENT
 * address through the outbox. The code is computed at send time; only its counter is kept.
 */
export async function sendChangeCode(ctx: KernelContext, capability: unknown): Promise<EnrollmentPage> {
  const barrier = ctx.requireBarrier();
  const capabilityHash = capabilityHashOf(capability, linkNotFound);
  const outcome = await ctx.transact(async (tx): Promise<Outcome<EnrollmentLinkRecord>> => {
    const link = await tx.getEnrollmentLinkByCapabilityForUpdate(capabilityHash);
    if (link === undefined) return { ok: false, error: linkNotFound() };
    const now = ctx.now();
    const base: AuditBase = { ts: now, appId: null, walletName: link.walletName, action: 'oob.change_code', opHash: null, detail: { enrollmentId: link.id } };
    if (!linkIntact(barrier, link)) return deny(tx, base, unreadable());
    const state = stateAt(link, now);
    if (state !== 'pending') return deny(tx, base, linkStateError(state));
    if (await creatorRevoked(ctx, link.apiKeyId)) return deny(tx, base, linkStateError('cancelled'));
    const wallet = await openWallet(tx, barrier, ctx.factors, { tenant: link.tenant, walletName: link.walletName, nowMs: now, create: false });
    if (!wallet.ok) return deny(tx, base, wallet.error);
    const needed = consentFor(wallet.value.enrolled, link.kind);
    if (needed.needs !== 'current') return deny(tx, base, invalidInput('decision', 'a link for a wallet whose consent is a code sent to its current address'));
    const sent = await sendOobConsentCode(tx, ctx, barrier, {
      oob: needed.oob,
      tenant: link.tenant,
      walletName: link.walletName,
      ref: changeRef(link),
      // A new factor (not a new address): the message says which, on the enrolment page.
      ...(link.kind === 'oob'
        ? {}
        : {
            summaryText: `Add ${link.kind === 'totp' ? 'an authenticator app' : link.kind === 'hwkey' ? 'a hardware key' : 'a passkey'} (on the enrolment page)`,
          }),
      now,
    });
    if (!sent.ok) return deny(tx, base, sent.error, 'oob');
    await tx.appendAudit(auditRecord({ ...base, detail: { ...base.detail, counter: sent.counter } }, { allowed: {} }));
    return { ok: true, value: link };
  });
  settle(outcome);
  const page = await openEnrollmentPage(ctx, capability);
  ctx.deliveryQueued?.();
  return page;
}

/**
 * What the enrolment's audit record shows of the new factor, so that `custos audit verify
 * --factors` can follow its row from the log: a passkey's credential id; the TOTP step its first
 * code spent (the row's last accepted step from the start).
 */
function enrolmentEvidence(record: { kind: string; id: string; state: object }): Record<string, unknown> {
  if (record.kind === 'passkey') return { credentialId: record.id };
  if (record.kind === 'hwkey') return { publicKey: record.id };
  const step = (record.state as { lastAcceptedStep?: unknown }).lastAcceptedStep;
  return record.kind === 'totp' && typeof step === 'number' ? { totpStep: step } : {};
}

function withChallenge(challenge: Uint8Array | undefined): { challenge?: Uint8Array } {
  return challenge === undefined ? {} : { challenge };
}

function linkStateError(state: EnrollmentLinkState): CustosError {
  switch (state) {
    case 'expired':
      return new CustosError('enrollment_expired', 'the enrolment link expired: ask for a new one', { details: { state } });
    default:
      return new CustosError('enrollment_used', `the enrolment link was already used or replaced (${state}): ask for a new one`, { details: { state } });
  }
}

/** Messages (codes) one enrolment link may send: the first and two more. */
const ADDRESS_SENDS_PER_LINK = 3;

/**
 * The owner sets the delivery address on an `oob` enrolment page: sealed in the link's row (record
 * key `enrollment:<id>`), and a code sent to it through the outbox in the same unit; the factor is
 * active only when that code is typed back (completeEnrollment). Setting it again sends a new code
 * (the earlier one dies), at most ADDRESS_SENDS_PER_LINK times per link. Audited without the address.
 */
export async function setEnrollmentAddress(ctx: KernelContext, capability: unknown, request: { channel: unknown; address: unknown }): Promise<EnrollmentPage> {
  const barrier = ctx.requireBarrier();
  const capabilityHash = capabilityHashOf(capability, linkNotFound);
  const factor = ctx.factors.find(isOobFactor);
  const address = assertOobAddress(request.channel, request.address);
  if (factor !== undefined && !factor.channels.includes(address.channel))
    throw invalidInput('channel', `one of ${factor.channels.join(', ')} (the channels this signer delivers on)`, address.channel);
  const outcome = await ctx.transact(async (tx): Promise<Outcome<EnrollmentLinkRecord>> => {
    const link = await tx.getEnrollmentLinkByCapabilityForUpdate(capabilityHash);
    if (link === undefined) return { ok: false, error: linkNotFound() };
    const now = ctx.now();
    const base: AuditBase = {
      ts: now,
      appId: null,
      walletName: link.walletName,
      action: 'oob.address',
      opHash: null,
      detail: { enrollmentId: link.id, channel: address.channel },
    };
    if (!linkIntact(barrier, link)) return deny(tx, base, unreadable());
    if (link.kind !== 'oob' || factor === undefined) return deny(tx, base, invalidInput('channel', 'an enrolment link of kind oob'));
    const state = stateAt(link, now);
    if (state !== 'pending') return deny(tx, base, linkStateError(state));
    if (await creatorRevoked(ctx, link.apiKeyId)) return deny(tx, base, linkStateError('cancelled'));
    const pending = JSON.parse(link.pending) as OobPending | null;
    const counter = (pending?.counter ?? 0) + 1;
    if (counter > ADDRESS_SENDS_PER_LINK) return deny(tx, base, deliveryLimited(`at most ${ADDRESS_SENDS_PER_LINK} codes per enrolment link`));
    // The wallet's hourly cap counts every message queued for it (codes, notices, every link's address
    // checks): new links never add to what a backend can make the kernel send (review: 5 links sent 15).
    if ((await tx.countOutboxSince(link.walletName, now - HOUR_MS)) >= factor.limits.perHour)
      return deny(tx, base, deliveryLimited(`at most ${factor.limits.perHour} messages per wallet per hour`));
    // …and one address gets at most a few checks an hour, whatever the wallet: fresh wallet names do
    // not make the kernel send code mails to any address a backend names (review 2: 6 wallets, 18 mails).
    if ((await tx.countOutboxToAddressSince(addressTagOf(barrier, address), now - HOUR_MS)) >= ADDRESS_CHECKS_PER_ADDRESS_HOUR)
      return deny(
        tx,
        base,
        deliveryLimited(`an address gets at most ${ADDRESS_CHECKS_PER_ADDRESS_HOUR} address checks an hour (every message sent to it counts)`),
      );
    const expiresAt = Math.min(now + factor.limits.codeTtlMs, link.expiresAt);
    const next: EnrollmentLinkRecord = {
      ...link,
      secretEnvelope: barrier.encryptRecord(linkRecordKey(link.id), encoder.encode(JSON.stringify(address)), (n) => ctx.random(n)),
      pending: canonicalJson({ subject: link.id, counter, expiresAt, channel: address.channel } satisfies OobPending),
    };
    next.mac = macLink(barrier, next);
    await tx.updateEnrollmentLinkSecret(link.id, { secretEnvelope: next.secretEnvelope, pending: next.pending, mac: next.mac });
    await enqueueMessage(tx, barrier, (n) => ctx.random(n), {
      message: { kind: 'verify', ...address, walletName: link.walletName, subject: link.id, counter },
      approvalId: null,
      now,
      expiresAt,
    });
    await tx.appendAudit(auditRecord({ ...base, detail: { ...base.detail, counter } }, { allowed: {} }));
    return { ok: true, value: next };
  });
  const link = settle(outcome);
  ctx.deliveryQueued?.();
  return {
    walletName: link.walletName,
    kind: link.kind,
    state: link.state,
    expiresAt: link.expiresAt,
    shown: { channels: OOB_CHANNELS, sentTo: address.channel },
  };
}

const encoder = new TextEncoder();
const HOUR_MS = 3_600_000;
/** Address checks one address may get in an hour, across every wallet and link. */
export const ADDRESS_CHECKS_PER_ADDRESS_HOUR = 3;
