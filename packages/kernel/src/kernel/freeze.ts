import { createHash, timingSafeEqual } from 'node:crypto';
import type { Barrier } from '../barrier/Barrier.js';
import { ConsentRefused, decideConsent, issueChallenge } from '../consent/consent.js';
import type { OobIssued } from '../consent/oobFactor.js';
import { CustosError, invalidInput } from '../errors.js';
import { assertWalletName } from '../util/assertWalletName.js';
import type { StoreTx, WalletRecord } from '../store/types.js';
import { type AuditBase, auditRecord } from './auditRecord.js';
import { capabilityHashOf } from './capabilityRecords.js';
import { checkScope } from './authorize.js';
import { deny, type KernelContext, type Outcome, settle } from './context.js';
import type { App } from './types.js';
import { enqueueMessage } from './oobDelivery.js';
import { hwkeyDeviceMatches } from './hwkeyDevice.js';
import { type OwnerPageChange, openChangesForOwner } from './pendingChanges.js';
import { tellAdmins } from './quorum/tellAdmins.js';
import { checkWalletRows, macWallet, type OpenedWallet, openWallet } from './walletRecord.js';
import { toHex } from '../util/hex.js';
import { anchorRefusal, anchorRow } from './rowAnchors.js';

/**
 * "This was not me" (issue 13 point 3, docs/freeze.md): a wallet frozen by its owner gets no
 * signature of any kind until the owner, with a `bound` factor, or an admin quorum unfreezes it.
 *
 * - The freeze is the wallet row's `frozenAt`, covered by the row's MAC while set (walletRecord.ts),
 *   so a database writer who clears it makes the wallet `record_unreadable`, not unfrozen.
 * - `freezeRefusal` (the row checked against its anchor, then `frozenRefusal`) is the one check: the sign path (sign.ts, right after openWallet) and approvals
 *   (approvals.ts: create, approve, challenges, resends) call it; a refusal is `wallet_frozen`.
 * - The owner's page (freeze and activity) is reached by a capability per wallet: a MAC under the
 *   barrier over the wallet's tenant and name (deterministic, so every notification carries the same
 *   link without storing it); the wallet row keeps only its SHA-256 for the lookup. Its GET shows;
 *   only a POST (with the page's form token, checked by the shell) freezes; no factor is needed —
 *   freezing only takes power away. Idempotent and audited (`wallet.freeze`).
 */

const OWNER_LINK_LABEL = 'custos.owner-link.v1';
/** Recent records the activity page shows at most. */
export const ACTIVITY_LIMIT = 50;
const encoder = new TextEncoder();

/** The owner-page capability of a wallet (43 base64url characters): a MAC under the barrier, never stored. */
export function ownerCapability(barrier: Barrier, wallet: { tenant: string; name: string }): string {
  const mac = barrier.macRecord(OWNER_LINK_LABEL, encoder.encode(`${wallet.tenant}\0${wallet.name}`));
  return Buffer.from(mac, 'hex').toString('base64url');
}

/**
 * The wallet's owner-page capability, its hash recorded on the wallet row (once) in this unit: what
 * a notification or an approval page links to (`/owner/<capability>`).
 */
export async function ownerLinkOf(tx: StoreTx, barrier: Barrier, wallet: { tenant: string; name: string }): Promise<string> {
  const capability = ownerCapability(barrier, wallet);
  await tx.setWalletOwnerLink(wallet.name, capabilityHashOf(capability, ownerPageNotFound));
  return capability;
}

export function ownerPageNotFound(): CustosError {
  return new CustosError('owner_page_not_found', 'no wallet owner page matches this address', { details: { field: 'capability' } });
}

/** The one freeze check: `wallet_frozen` for a frozen wallet, else undefined. */
export function frozenRefusal(wallet: Pick<WalletRecord, 'frozenAt'>): CustosError | undefined {
  if (typeof wallet.frozenAt !== 'number') return undefined;
  return new CustosError('wallet_frozen', 'the wallet is frozen ("this was not me"): nothing is signed or approved until it is unfrozen', {
    details: { field: 'walletName', frozenAt: wallet.frozenAt },
  });
}

/** Whether `capability` is the owner capability of `wallet` (constant time): a row whose link hash was written by hand is refused. */
function capabilityMatches(barrier: Barrier, wallet: WalletRecord, capability: string): boolean {
  const expected = Buffer.from(ownerCapability(barrier, wallet), 'ascii');
  const given = Buffer.from(capability, 'ascii');
  return expected.length === given.length && timingSafeEqual(expected, given);
}

/** What the owner's page shows: the wallet, whether it is frozen, and its recent activity. */
export interface OwnerPage {
  walletName: string;
  frozenAt: number | null;
  /** The kinds of the wallet's enrolled factors (the page offers the unfreeze step a factor can take). */
  factors: string[];
  /**
   * While frozen, with a card enrolled on the page: what the card signs to unfreeze (this freeze's
   * digest, hex) and at which subpath; the answer counts only from the browser the card was enrolled in.
   */
  card?: { digest: string; subpath: string };
  activity: ActivityEntry[];
  /** The wallet's open changes of its protection (requested or pending), each cancellable on the page with any current factor. */
  changes: OwnerPageChange[];
  /** Open change rows of the wallet that fail their MAC: shown only as "a change that cannot be read", never their fields. */
  unreadableChanges: number;
}

/** One line of the activity page: no secret, no code, only what the audit record says was decided. */
export interface ActivityEntry {
  seq: number;
  ts: number;
  action: string;
  decision: 'allowed' | 'denied';
  reason: string | null;
  summaryText: string | null;
  approvalId: string | null;
}

const ACTIVITY_ACTIONS = /^(sign\.|approval\.|change\.|wallet\.(freeze|unfreeze)$)/;

function activityOf(records: Awaited<ReturnType<KernelContext['store']['readWalletAudit']>>): ActivityEntry[] {
  return records
    .filter((r) => ACTIVITY_ACTIONS.test(r.action))
    .slice(0, ACTIVITY_LIMIT)
    .map((r) => {
      const detail = (r.detail ?? {}) as Record<string, unknown>;
      // A change's record names its kind (the page labels it): never its payload.
      const summaryText =
        typeof detail.summaryText === 'string'
          ? detail.summaryText.slice(0, 2000)
          : r.action.startsWith('change.') && typeof detail.kind === 'string'
            ? detail.kind
            : null;
      const approvalId = typeof detail.approvalId === 'string' ? detail.approvalId : null;
      return { seq: r.seq, ts: r.ts, action: r.action, decision: r.decision, reason: r.reason, summaryText, approvalId };
    });
}

/** The wallet row of an owner capability (read, not locked), or `owner_page_not_found`. */
export async function findOwnerWallet(ctx: KernelContext, capability: unknown): Promise<WalletRecord> {
  const barrier = ctx.requireBarrier();
  const hash = capabilityHashOf(capability, ownerPageNotFound);
  const wallet = await ctx.readStore(() => ctx.store.readWalletByOwnerLink(hash));
  if (wallet === undefined || !capabilityMatches(barrier, wallet, capability as string)) throw ownerPageNotFound();
  return wallet;
}

/**
 * The owner's page (GET): decides nothing, writes nothing. An unknown or malformed capability, or a
 * row whose link hash does not match the wallet's capability, is `owner_page_not_found`; rows failing
 * their MACs `record_unreadable`.
 */
export async function openOwnerPage(ctx: KernelContext, capability: unknown): Promise<OwnerPage> {
  const barrier = ctx.requireBarrier();
  const wallet = await findOwnerWallet(ctx, capability);
  const rows = await ctx.readStore(() => ctx.store.readWalletRows(wallet.name));
  const checked = checkWalletRows(barrier, ctx.factors, { tenant: wallet.tenant, walletName: wallet.name }, rows);
  if (!checked.ok) throw checked.error;
  // A few more than shown: the filter drops key derivations and enrolment records.
  const records = await ctx.readStore(() => ctx.store.readWalletAudit(wallet.name, ACTIVITY_LIMIT * 4));
  const frozenAt = checked.value.wallet.frozenAt ?? null;
  const card = checked.value.enrolled.find((e) => e.factor.kind === 'hwkey' && e.record.enrolledVia === 'page');
  return {
    walletName: wallet.name,
    frozenAt,
    factors: [...new Set(checked.value.kinds)],
    ...(frozenAt === null || card === undefined
      ? {}
      : {
          card: {
            digest: toHex(unfreezeChallenge(ctx.signerId(), unfreezeRef(checked.value.wallet, ctx.now()).opHash)),
            subpath: String((card.record.state as { subpath?: unknown }).subpath ?? ''),
          },
        }),
    activity: activityOf(records),
    ...(await openChangesForOwner(ctx, wallet, checked.value.enrolled)),
  };
}

/** The wallet of an owner capability inside a unit, locked and checked (tenant, MACs). */
async function openOwnerWallet(tx: StoreTx, ctx: KernelContext, capability: unknown): Promise<OpenedWallet | CustosError> {
  const barrier = ctx.requireBarrier();
  const hash = capabilityHashOf(capability, ownerPageNotFound);
  const row = await tx.getWalletByOwnerLinkForUpdate(hash);
  if (row === undefined || !capabilityMatches(barrier, row, capability as string)) return ownerPageNotFound();
  const opened = await openWallet(tx, barrier, ctx.factors, { tenant: row.tenant, walletName: row.name, nowMs: ctx.now(), create: false });
  return opened.ok ? opened.value : opened.error;
}

/**
 * Writes a wallet's freeze state and the row's new MAC (over its factors as they are), and anchors the
 * state in the log (rowAnchors.ts): a wallet row put back from before a freeze is then refused.
 */
async function writeFrozen(tx: StoreTx, barrier: Barrier, wallet: OpenedWallet, frozenAt: number | null, now: number): Promise<void> {
  const mac = macWallet(
    barrier,
    { ...wallet.wallet, frozenAt },
    wallet.enrolled.map((e) => e.record),
  );
  await tx.setWalletFrozen(wallet.wallet.name, frozenAt, mac);
  await anchorRow(tx, { row: 'wallet.freeze', key: wallet.wallet.name, state: frozenAt, walletName: wallet.wallet.name, ts: now });
}

/**
 * The one freeze check of a unit that holds the wallet's lock: `wallet_frozen` for a frozen wallet;
 * `record_unreadable` when the row's freeze state is not the one the log last anchored (a row put back
 * from before a freeze, or from before an unfreeze); else undefined.
 */
export async function freezeRefusal(tx: Pick<StoreTx, 'latestRowAnchor'>, wallet: Pick<WalletRecord, 'frozenAt' | 'name'>): Promise<CustosError | undefined> {
  const rolled = await anchorRefusal(tx, 'wallet.freeze', wallet.name, typeof wallet.frozenAt === 'number' ? wallet.frozenAt : null);
  return rolled ?? frozenRefusal(wallet);
}

/**
 * The owner's "this was not me" (POST on the owner page; the shell checked the form token): freezes
 * the wallet, no factor needed. Idempotent: a frozen wallet stays frozen as it was (its `frozenAt`
 * kept), and the request is audited either way (`wallet.freeze`, detail `{ via, alreadyFrozen }`).
 */
export async function freezeWalletByOwner(ctx: KernelContext, capability: unknown): Promise<OwnerPage> {
  const barrier = ctx.requireBarrier();
  settle(
    await ctx.transact(async (tx): Promise<Outcome<true>> => {
      const opened = await openOwnerWallet(tx, ctx, capability);
      // An unknown capability is not audited: the page is public, and a guess names no wallet.
      if (opened instanceof CustosError) return { ok: false, error: opened };
      const now = ctx.now();
      const already = typeof opened.wallet.frozenAt === 'number';
      const base: AuditBase = {
        ts: now,
        appId: null,
        walletName: opened.wallet.name,
        action: 'wallet.freeze',
        opHash: null,
        detail: { via: 'owner-page', alreadyFrozen: already },
      };
      if (!already) await writeFrozen(tx, barrier, opened, now, now);
      // Every admin is told of a freeze (a repeated one changes nothing and is not told again).
      const adminsTold = already ? 0 : await tellAdmins(tx, ctx, freezeNotice(opened.wallet, 'frozen by its owner ("this was not me")', now), 'freeze');
      await tx.appendAudit(auditRecord({ ...base, detail: { ...base.detail, adminsTold } }, { allowed: {} }));
      return { ok: true, value: true };
    }),
  );
  ctx.deliveryQueued?.();
  return openOwnerPage(ctx, capability);
}

/**
 * An operator freezes a wallet (`POST /v1/wallets/freeze`, scope `admin`): single-admin, as every
 * action that only takes power away (issue 13 point 4), for speed in an incident; any tenant's
 * wallet (the operator's). Idempotent, audited `wallet.freeze` (detail `{ via: 'admin', alreadyFrozen }`).
 */
export async function freezeWalletByAdmin(ctx: KernelContext, app: App, request: { walletName: unknown }): Promise<{ walletName: string; frozenAt: number }> {
  const barrier = ctx.requireBarrier();
  const walletName = assertWalletName(request.walletName);
  const frozen = settle(
    await ctx.transact(async (tx): Promise<Outcome<{ walletName: string; frozenAt: number }>> => {
      const now = ctx.now();
      const base: AuditBase = { ts: now, appId: app.id, walletName, action: 'wallet.freeze', opHash: null, detail: { via: 'admin' } };
      const forbidden = checkScope(app, 'admin');
      if (forbidden !== undefined) return deny(tx, base, forbidden);
      const row = await tx.getWalletForUpdate(walletName);
      if (row === undefined)
        return deny(tx, base, new CustosError('wallet_not_found', 'no wallet of that name is known to the signer', { details: { field: 'walletName' } }));
      const opened = await openWallet(tx, barrier, ctx.factors, { tenant: row.tenant, walletName, nowMs: now, create: false });
      if (!opened.ok) return deny(tx, base, opened.error);
      const already = typeof opened.value.wallet.frozenAt === 'number';
      const frozenAt = already ? (opened.value.wallet.frozenAt as number) : now;
      if (!already) await writeFrozen(tx, barrier, opened.value, now, now);
      const adminsTold = already ? 0 : await tellAdmins(tx, ctx, freezeNotice(opened.value.wallet, `frozen by an operator (API key ${app.id})`, now), 'freeze');
      await tx.appendAudit(auditRecord({ ...base, detail: { via: 'admin', alreadyFrozen: already, adminsTold } }, { allowed: {} }));
      return { ok: true, value: { walletName, frozenAt } };
    }),
  );
  ctx.deliveryQueued?.();
  return frozen;
}

/** The text every admin gets of a freeze or an unfreeze (the wallet named in the text only). */
function freezeNotice(wallet: Pick<WalletRecord, 'tenant' | 'name'>, what: string, now: number): string {
  return `Wallet ${JSON.stringify(wallet.name.slice(0, 200))} of tenant ${wallet.tenant} was ${what} at ${new Date(now).toISOString()}.\nA frozen wallet signs nothing until its owner (with a bound factor) or an admin quorum (proposal kind wallet.unfreeze) unfreezes it.\n`;
}

/** Who unfreezes: the owner with a `bound` factor (its evidence), or an admin quorum's applied proposal. */
export type UnfreezeBy = { kind: 'owner'; evidence: Record<string, unknown> } | { kind: 'quorum'; proposalId: string; approvals?: readonly string[] };

/**
 * Unfreezes a wallet inside the caller's unit: the hook the admin quorum's `unfreeze` proposal kind
 * calls when its threshold is met (and the owner's page, once the owner proved a `bound` factor).
 * The caller has checked who may unfreeze; this checks the wallet's rows (MACs), clears the freeze
 * with the row's new MAC, and appends `wallet.unfreeze` (detail: by whom). A wallet not frozen is
 * left as it is (audited, `wasFrozen: false`). A refusal is audited and returned (not thrown).
 */
export async function unfreezeWallet(
  tx: StoreTx,
  ctx: KernelContext,
  walletRef: { walletName: string; tenant?: string },
  by: UnfreezeBy,
): Promise<Outcome<{ walletName: string; wasFrozen: boolean; auditSeq: number }>> {
  const barrier = ctx.requireBarrier();
  const now = ctx.now();
  const detail = by.kind === 'owner' ? { by: 'owner', evidence: by.evidence } : { by: 'quorum', proposalId: by.proposalId, approvals: by.approvals ?? [] };
  const base: AuditBase = { ts: now, appId: null, walletName: walletRef.walletName, action: 'wallet.unfreeze', opHash: null, detail };
  const row = await tx.getWalletForUpdate(walletRef.walletName);
  if (row === undefined || (walletRef.tenant !== undefined && row.tenant !== walletRef.tenant))
    return deny(tx, base, new CustosError('wallet_not_found', 'no wallet of that name is known to the signer', { details: { field: 'walletName' } }));
  const opened = await openWallet(tx, barrier, ctx.factors, { tenant: row.tenant, walletName: row.name, nowMs: now, create: false });
  if (!opened.ok) return deny(tx, base, opened.error);
  const wasFrozen = typeof opened.value.wallet.frozenAt === 'number';
  if (wasFrozen) await writeFrozen(tx, barrier, opened.value, null, now);
  const who = by.kind === 'owner' ? 'by its owner with a bound factor' : `by the admin quorum (proposal ${by.proposalId})`;
  const adminsTold = wasFrozen ? await tellAdmins(tx, ctx, freezeNotice(opened.value.wallet, `unfrozen ${who}`, now), 'unfreeze') : 0;
  const record = await tx.appendAudit(auditRecord({ ...base, detail: { ...detail, wasFrozen, adminsTold } }, { allowed: {} }));
  return { ok: true, value: { walletName: row.name, wasFrozen, auditSeq: record.seq } };
}

// ── the owner's unfreeze (a `bound` factor on the owner page) ─────────────────────────────

/** How long the owner has to type an unfreeze code (the oob factor's own code lifetime caps it). */
const UNFREEZE_CODE_WINDOW_MS = 3_600_000;

/**
 * What the owner's unfreeze consent is bound to: this wallet and this freeze (its `frozenAt`), so
 * a code sent for an earlier freeze, or for an approval, unfreezes nothing.
 */
function unfreezeRef(wallet: WalletRecord, now: number) {
  const frozenAt = wallet.frozenAt as number;
  const opHash = createHash('sha256').update(`custos.unfreeze.v1\0${wallet.tenant}\0${wallet.name}\0${frozenAt}`, 'utf8').digest('hex');
  return { id: `unfreeze:${frozenAt}`, opHash, expiresAt: now + UNFREEZE_CODE_WINDOW_MS };
}

/**
 * The digest a passkey answers to unfreeze: SHA-256("custos.unfreeze-challenge.v1\0" ‖ signerId ‖ the
 * freeze's opHash). It names this signer, this wallet and this freeze (its time), so an assertion
 * made for it unfreezes nothing else — not a later freeze, not another wallet — and no approval's
 * or enrolment's challenge (other labels) passes for it.
 */
function unfreezeChallenge(signerId: string, opHash: string): Uint8Array {
  return createHash('sha256')
    .update('custos.unfreeze-challenge.v1\0', 'utf8')
    .update(Buffer.from(signerId.replace(/-/g, ''), 'hex'))
    .update(Buffer.from(opHash, 'hex'))
    .digest();
}

function notFrozen(): CustosError {
  return new CustosError('invalid_input', 'the wallet is not frozen: there is nothing to unfreeze', { details: { field: 'decision' } });
}

/**
 * The owner asks, on the owner page of a frozen wallet, for a code to unfreeze it: the wallet's
 * delivery channel (oob) issues a code bound to this freeze (its sends, hourly cap and lock apply)
 * and the message goes out through the outbox. Audited `wallet.unfreeze_code`.
 */
export async function sendUnfreezeCode(ctx: KernelContext, capability: unknown): Promise<OwnerPage> {
  const barrier = ctx.requireBarrier();
  settle(
    await ctx.transact(async (tx): Promise<Outcome<true>> => {
      const opened = await openOwnerWallet(tx, ctx, capability);
      if (opened instanceof CustosError) return { ok: false, error: opened };
      const now = ctx.now();
      const base: AuditBase = { ts: now, appId: null, walletName: opened.wallet.name, action: 'wallet.unfreeze_code', opHash: null, detail: {} };
      if (typeof opened.wallet.frozenAt !== 'number') return deny(tx, base, notFrozen());
      const ref = unfreezeRef(opened.wallet, now);
      let issued: OobIssued;
      try {
        issued = (await issueChallenge(tx, barrier, {
          enrolled: opened.enrolled,
          kind: 'oob',
          tenant: opened.wallet.tenant,
          approval: ref,
          now,
          random: (n) => ctx.random(n),
        })) as OobIssued;
      } catch (error) {
        if (!(error instanceof ConsentRefused)) throw error;
        return deny(tx, base, error.error, 'oob');
      }
      await enqueueMessage(tx, barrier, (n) => ctx.random(n), {
        message: {
          kind: 'unfreeze',
          channel: issued.channel,
          address: issued.address,
          walletName: opened.wallet.name,
          subject: ref.id,
          counter: issued.counter,
        },
        approvalId: null,
        now,
        expiresAt: issued.expiresAt,
      });
      await tx.appendAudit(auditRecord({ ...base, detail: { counter: issued.counter } }, { allowed: {} }));
      return { ok: true, value: true };
    }),
  );
  ctx.deliveryQueued?.();
  return openOwnerPage(ctx, capability);
}

/**
 * What the owner's passkey answers to unfreeze (the owner page's script asks for it: POST
 * /owner/<capability>/challenge): the WebAuthn request options over this freeze's challenge, for
 * the wallet's passkeys. Decides nothing, writes nothing.
 */
export async function unfreezeChallengeOptions(
  ctx: KernelContext,
  capability: unknown,
  request: { kind: unknown },
): Promise<{ options: unknown; expiresAt: number }> {
  const barrier = ctx.requireBarrier();
  if (request.kind !== 'passkey') throw invalidInput('kind', "'passkey'");
  const factor = ctx.factors.find((f) => f.kind === 'passkey' && f.challengeOptions !== undefined);
  if (factor?.challengeOptions === undefined) throw new CustosError('passkeys_unavailable', 'passkeys are off on this signer', { details: { field: 'kind' } });
  const challengeOptions = factor.challengeOptions.bind(factor);
  const hash = capabilityHashOf(capability, ownerPageNotFound);
  const wallet = await ctx.readStore(() => ctx.store.readWalletByOwnerLink(hash));
  if (wallet === undefined || !capabilityMatches(barrier, wallet, capability as string)) throw ownerPageNotFound();
  const rows = await ctx.readStore(() => ctx.store.readWalletRows(wallet.name));
  const checked = checkWalletRows(barrier, ctx.factors, { tenant: wallet.tenant, walletName: wallet.name }, rows);
  if (!checked.ok) throw checked.error;
  if (typeof checked.value.wallet.frozenAt !== 'number') throw notFrozen();
  const records = checked.value.enrolled.filter((e) => e.factor.kind === 'passkey').map((e) => e.record);
  if (records.length === 0) throw new CustosError('factor_required', 'the wallet has no passkey', { details: { field: 'kind' } });
  const now = ctx.now();
  const ref = unfreezeRef(checked.value.wallet, now);
  const digest = unfreezeChallenge(ctx.signerId(), ref.opHash);
  const options = await challengeOptions({ records, challenge: digest, approval: { ...ref, challenge: digest }, now });
  return { options, expiresAt: ref.expiresAt };
}

/**
 * The owner unfreezes the wallet on the owner page with a `bound` factor: the code delivered for
 * this freeze (sendUnfreezeCode), typed on the page (`kind: 'oob'`), or the wallet's passkey's
 * answer to this freeze's challenge (`kind: 'passkey'`, unfreezeChallengeOptions). A factor that is only
 * `present` (a TOTP code, `kind: 'totp'`) is refused `consent_too_weak` before it is checked; a wrong
 * code is charged to the delivery factor's throttle. Success clears the freeze through
 * `unfreezeWallet` (audited `wallet.unfreeze`, `by: 'owner'` with the factor's evidence).
 */
export async function unfreezeWalletByOwner(
  ctx: KernelContext,
  capability: unknown,
  answer: { kind: unknown; proof: unknown; deviceTokens?: readonly string[] },
): Promise<OwnerPage> {
  const barrier = ctx.requireBarrier();
  if (typeof answer.kind !== 'string' || !ctx.factors.some((f) => f.kind === answer.kind)) throw invalidInput('kind', 'the kind of a registered factor');
  const kind = answer.kind;
  settle(
    await ctx.transact(async (tx): Promise<Outcome<true>> => {
      const opened = await openOwnerWallet(tx, ctx, capability);
      if (opened instanceof CustosError) return { ok: false, error: opened };
      const now = ctx.now();
      const base: AuditBase = { ts: now, appId: null, walletName: opened.wallet.name, action: 'wallet.unfreeze', opHash: null, detail: { by: 'owner', kind } };
      if (typeof opened.wallet.frozenAt !== 'number') return deny(tx, base, notFrozen());
      const ref = unfreezeRef(opened.wallet, now);
      // A card (no screen) is `bound` only from the browser it was enrolled in on the page (its
      // device cookie), as on the approval page; an API-enrolled card, or one answered from another
      // browser, is too weak — refused before its signature is checked.
      if (kind === 'hwkey') {
        const card = opened.enrolled.find((e) => e.factor.kind === 'hwkey');
        if (card !== undefined && !hwkeyDeviceMatches(barrier, card.record, answer.deviceTokens))
          return deny(
            tx,
            { ...base, opHash: ref.opHash, detail: { ...base.detail, device: false } },
            new CustosError(
              'consent_too_weak',
              "unfreezing needs a 'bound' factor: a card counts only when enrolled on the page and answered in that browser",
              {
                details: { field: 'kind', required: 'bound', given: 'present' },
              },
            ),
            'hwkey',
          );
      }
      let evidence: Record<string, unknown>;
      try {
        // A passkey or a card answers this freeze's challenge (derived, never taken from the proof).
        const challenge = kind === 'passkey' || kind === 'hwkey' ? unfreezeChallenge(ctx.signerId(), ref.opHash) : undefined;
        evidence = await decideConsent(tx, barrier, {
          enrolled: opened.enrolled,
          required: 'bound',
          tenant: opened.wallet.tenant,
          proofKind: kind,
          opHash: ref.opHash,
          proof: answer.proof,
          approval: challenge === undefined ? ref : { ...ref, challenge },
          channel: 'page',
          now,
        });
      } catch (error) {
        if (!(error instanceof ConsentRefused)) throw error;
        // A factor of that kind that cannot give `bound` (a TOTP code): too weak, its proof unchecked.
        const weak = error.error.code === 'factor_required' && opened.enrolled.some((e) => e.factor.kind === kind);
        const refusal = weak
          ? new CustosError('consent_too_weak', "unfreezing needs a 'bound' factor (a delivered code typed on the page); this factor's proof was not checked", {
              details: { field: 'kind', required: 'bound', given: 'present' },
            })
          : error.error;
        return deny(tx, { ...base, opHash: ref.opHash }, refusal, error.factor);
      }
      const done = await unfreezeWallet(tx, ctx, { walletName: opened.wallet.name, tenant: opened.wallet.tenant }, { kind: 'owner', evidence });
      return done.ok ? { ok: true, value: true } : done;
    }),
  );
  ctx.deliveryQueued?.();
  return openOwnerPage(ctx, capability);
}

/** A freeze or unfreeze every admin is told of (from the audit log). */
export interface FreezeNotice {
  seq: number;
  ts: number;
  walletName: string;
  action: 'wallet.freeze' | 'wallet.unfreeze';
  detail: Record<string, unknown>;
}

/**
 * The freezes and unfreezes recorded after `afterSeq` (allowed records only; a repeated freeze of a
 * frozen wallet is left out), at most `limit` scanned: what the admin notifier (issue 13 point 4)
 * tells every admin, resuming from the last seq it told.
 */
export async function listFreezeNotices(ctx: KernelContext, afterSeq: number, limit = 1000): Promise<{ notices: FreezeNotice[]; lastSeq: number }> {
  ctx.requireBarrier();
  const records = await ctx.readStore(() => ctx.store.readAudit(afterSeq + 1, limit));
  const notices: FreezeNotice[] = [];
  for (const r of records) {
    if ((r.action !== 'wallet.freeze' && r.action !== 'wallet.unfreeze') || r.decision !== 'allowed' || r.walletName === null) continue;
    const detail = (r.detail ?? {}) as Record<string, unknown>;
    if (detail.alreadyFrozen === true) continue;
    notices.push({ seq: r.seq, ts: r.ts, walletName: r.walletName, action: r.action, detail });
  }
  return { notices, lastSeq: records.at(-1)?.seq ?? afterSeq };
}
