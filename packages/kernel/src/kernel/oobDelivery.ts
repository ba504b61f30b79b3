import { ownerLinkOf } from './freeze.js';
import type { Barrier } from '../barrier/Barrier.js';
import { ConsentRefused, type EnrolledFactor, factorRecordKey, issueChallenge } from '../consent/consent.js';
import type { ApprovalRef, FactorRecord } from '../consent/Factor.js';
import { computeOobCode, type OobAddress, type OobChannel, type OobIssued, parseOobAddress } from '../consent/oobFactor.js';
import type { CustosError } from '../errors.js';
import { invalidInput } from '../errors.js';
import type { OutboxRecord, StoreTx } from '../store/types.js';
import { toHex } from '../util/hex.js';
import type { KernelContext } from './context.js';

/**
 * The outbox of the messages the kernel delivers itself. A message is written in the unit of the
 * decision that causes it (an approval's creation, an address set on the enrolment page), so it
 * exists if and only if the decision committed; a sender (the server's loop) claims due messages
 * under a lease after the commit, the kernel computes each code at that moment (never stored: see
 * consent/oobFactor.ts), the channel delivers it, and the result is written back: sent, retried
 * with back-off, failed for good, or expired (a code no longer worth sending). A sender killed
 * between claim and result loses nothing: the lease runs out and another claim takes the message.
 *
 * The row's envelope, sealed by the barrier under `outbox:<id>`, holds everything the sender needs
 * (recipient, the approval link's capability, what the code is computed from): a database writer
 * can neither read nor re-point a message.
 */

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** How long a claim holds a message (a crashed sender's message is claimed again after it). */
export const DELIVERY_LEASE_MS = 60_000;
/** Attempts before a message fails for good. */
const MAX_ATTEMPTS = 10;

/** What a message says, sealed in its row. */
export interface OutboxMessage {
  /**
   * `change`: the code consenting to a change of address, sent to the current one; `changed`: the
   * notice to the old address; `unfreeze`: the owner's code to unfreeze the wallet (kernel/freeze.ts);
   * `timelock`: a notice about a timelocked change (kernel/pendingChanges.ts); `quorum`: an
   * announcement to an admin (kernel/quorum).
   */
  kind: 'approval' | 'verify' | 'locked' | 'change' | 'changed' | 'unfreeze' | 'timelock' | 'quorum';
  channel: OobChannel;
  address: string;
  walletName: string;
  /** The approval (or enrolment link) the code is bound to, and the send counter. */
  subject?: string;
  counter?: number;
  /** The approval page's capability (the link in the message). */
  capability?: string;
  summaryText?: string;
  /** The wallet owner's page ("this was not me" and activity, kernel/freeze.ts): on every message. */
  ownerCapability?: string;
  /** A timelock notice: what happened to the change, its kind and when it takes (took) effect. The capability is its cancel link's. */
  change?: TimelockNotice;
}

/** What a timelock notice tells: the change announced, a reminder before it takes effect, applied, cancelled, not applied, or held (its wallet cannot be read: kept pending). */
export interface TimelockNotice {
  event: 'announced' | 'reminder' | 'applied' | 'cancelled' | 'failed' | 'held';
  changeKind: string;
  effectiveAt: number | null;
}

/** A claimed message, ready for its channel: the code computed now. */
export interface DeliveryMessage {
  id: string;
  kind: OutboxMessage['kind'];
  channel: OobChannel;
  address: string;
  walletName: string;
  approvalId: string | null;
  code?: string;
  capability?: string;
  summaryText?: string;
  /** The wallet owner's page ("this was not me" and activity): every message links to it. */
  ownerCapability?: string;
  change?: TimelockNotice;
  /** ms since the epoch: the code (and the message) is dead after it. */
  expiresAt: number;
  /** Attempts before this one. */
  attempts: number;
}

export type DeliveryResult = { ok: true } | { ok: false; permanent: boolean; reason: string };

function recordKey(id: string): string {
  return `outbox:${id}`;
}

/** Queues a message in the caller's unit; returns its id. */
export async function enqueueMessage(
  tx: StoreTx,
  barrier: Barrier,
  random: (n: number) => Uint8Array,
  { message: asked, approvalId, now, expiresAt }: { message: OutboxMessage; approvalId: string | null; now: number; expiresAt: number },
): Promise<string> {
  const id = toHex(random(16));
  // Every message carries the wallet owner's "this was not me" link (kernel/freeze.ts).
  const wallet = asked.ownerCapability === undefined ? await tx.getWalletForUpdate(asked.walletName) : undefined;
  const message = wallet === undefined ? asked : { ...asked, ownerCapability: await ownerLinkOf(tx, barrier, wallet) };
  await tx.insertOutbox({
    id,
    walletName: message.walletName,
    approvalId,
    status: 'queued',
    attempts: 0,
    nextAttemptAt: now,
    leaseUntil: null,
    createdAt: now,
    expiresAt,
    sentAt: null,
    lastError: null,
    envelope: barrier.encryptRecord(recordKey(id), encoder.encode(JSON.stringify(message)), random),
    addressTag: addressTagOf(barrier, message),
  });
  return id;
}

/**
 * Sends the owner a delivered code bound to `ref` — a change's consent on its page, the cancel of a
 * pending change (`ref.cancel`), a change asked on an enrolment link — in the caller's unit: the
 * wallet's oob factor issues it (its lock, hourly cap and sends per subject apply; a cancel's only
 * the cancel codes' own cap, consent/oobFactor.ts) and the message (`kind: change`) is queued in the
 * outbox. Returns the send's counter, or the factor's refusal for the caller to audit (ConsentRefused
 * caught here; anything else thrown). The caller tells the sender after the commit.
 */
export async function sendOobConsentCode(
  tx: StoreTx,
  ctx: Pick<KernelContext, 'random'>,
  barrier: Barrier,
  {
    oob,
    tenant,
    walletName,
    ref,
    summaryText,
    now,
  }: { oob: EnrolledFactor; tenant: string; walletName: string; ref: ApprovalRef; summaryText?: string; now: number },
): Promise<{ ok: true; counter: number } | { ok: false; error: CustosError }> {
  let issued: OobIssued;
  try {
    issued = (await issueChallenge(tx, barrier, { enrolled: [oob], kind: 'oob', tenant, approval: ref, now, random: (n) => ctx.random(n) })) as OobIssued;
  } catch (error) {
    if (!(error instanceof ConsentRefused)) throw error;
    return { ok: false, error: error.error };
  }
  await enqueueMessage(tx, barrier, (n) => ctx.random(n), {
    message: {
      kind: 'change',
      channel: issued.channel,
      address: issued.address,
      walletName,
      subject: ref.id,
      counter: issued.counter,
      ...(summaryText === undefined ? {} : { summaryText }),
    },
    approvalId: null,
    now,
    expiresAt: issued.expiresAt,
  });
  return { ok: true, counter: issued.counter };
}

/**
 * The recipient's keyed tag: a MAC under the barrier of the channel and the lowercased address, so
 * that messages to one address can be counted across wallets without the address in the clear.
 */
export function addressTagOf(barrier: Barrier, { channel, address }: { channel: string; address: string }): string {
  return barrier.macRecord('custos.oob.address-tag.v1', encoder.encode(`${channel}\n${address.toLowerCase()}`));
}

/**
 * Claims the due messages (at most `limit`) for this sender, with their codes computed now. A
 * message whose code is dead is marked expired, one whose envelope does not open failed; neither is
 * returned. Skipped while sealed (`sealed` is thrown: the caller waits for the unseal).
 */
export async function claimDeliveries(
  ctx: KernelContext,
  { limit = 16, leaseMs = DELIVERY_LEASE_MS }: { limit?: number; leaseMs?: number } = {},
): Promise<DeliveryMessage[]> {
  const barrier = ctx.requireBarrier();
  if (!Number.isSafeInteger(limit) || limit < 1 || limit > 1000) throw invalidInput('limit', 'an integer 1–1000');
  return ctx.transact(async (tx) => {
    const now = ctx.now();
    const out: DeliveryMessage[] = [];
    // A batch of rows that all died unsent (expired, unreadable) claims the next one: an empty answer
    // means nothing is due, so that the sender never stops while due messages wait behind dead ones.
    for (let claimed = await tx.claimOutbox(now, limit, now + leaseMs); ; claimed = await tx.claimOutbox(now, limit, now + leaseMs)) {
      await settleClaimed(claimed);
      if (out.length > 0 || claimed.length < limit) return out;
    }

    async function settleClaimed(claimed: OutboxRecord[]): Promise<void> {
      for (const row of claimed) {
        if (now >= row.expiresAt) {
          await tx.updateOutbox(row.id, { ...changeOf(row), status: 'expired', leaseUntil: null, lastError: 'expired before it could be sent' });
          continue;
        }
        let message: OutboxMessage;
        try {
          message = JSON.parse(decoder.decode(barrier.decryptRecord(recordKey(row.id), row.envelope))) as OutboxMessage;
        } catch {
          await tx.updateOutbox(row.id, { ...changeOf(row), status: 'failed', leaseUntil: null, lastError: 'record_unreadable' });
          continue;
        }
        // An approval decided, cancelled or expired meanwhile: its code is of no use to anyone, not sent.
        if (message.kind === 'approval' && row.approvalId !== null) {
          const approval = await tx.getApprovalForUpdate(row.approvalId);
          if (approval === undefined || approval.state !== 'pending' || now >= approval.expiresAt) {
            await tx.updateOutbox(row.id, { ...changeOf(row), status: 'expired', leaseUntil: null, lastError: 'the approval is no longer pending' });
            continue;
          }
        }
        const code =
          message.subject === undefined || message.counter === undefined
            ? undefined
            : computeOobCode(barrier, message.walletName, message.subject, message.counter);
        out.push({
          id: row.id,
          kind: message.kind,
          channel: message.channel,
          address: message.address,
          walletName: message.walletName,
          approvalId: row.approvalId,
          ...(code === undefined ? {} : { code }),
          ...(message.capability === undefined ? {} : { capability: message.capability }),
          ...(message.summaryText === undefined ? {} : { summaryText: message.summaryText }),
          ...(message.ownerCapability === undefined ? {} : { ownerCapability: message.ownerCapability }),
          ...(message.change === undefined ? {} : { change: message.change }),
          expiresAt: row.expiresAt,
          attempts: row.attempts,
        });
      }
    }
  });
}

function changeOf(row: OutboxRecord) {
  return {
    status: row.status,
    attempts: row.attempts,
    nextAttemptAt: row.nextAttemptAt,
    leaseUntil: row.leaseUntil,
    sentAt: row.sentAt,
    lastError: row.lastError,
  };
}

/** The back-off before attempt n+1: 2 s, 4 s, … at most 5 minutes. */
export function deliveryBackoffMs(attempts: number): number {
  return Math.min(2_000 * 2 ** Math.max(0, attempts - 1), 300_000);
}

/**
 * Writes a delivery's result: sent; or retried after a back-off (the lease released); or failed for
 * good (a permanent refusal, or too many attempts); or expired (the next attempt would be too late).
 * The reason is the channel's short text (never a secret: the channels keep codes out of it).
 */
export async function settleDelivery(ctx: KernelContext, id: string, attempts: number, expiresAt: number, result: DeliveryResult): Promise<void> {
  ctx.requireBarrier();
  await ctx.transact(async (tx) => {
    const now = ctx.now();
    if (result.ok) {
      await tx.updateOutbox(id, { status: 'sent', attempts: attempts + 1, nextAttemptAt: now, leaseUntil: null, sentAt: now, lastError: null });
      return;
    }
    const tried = attempts + 1;
    const nextAttemptAt = now + deliveryBackoffMs(tried);
    const reason = result.reason.slice(0, 200);
    const status = result.permanent || tried >= MAX_ATTEMPTS ? 'failed' : nextAttemptAt >= expiresAt ? 'expired' : 'queued';
    await tx.updateOutbox(id, { status, attempts: tried, nextAttemptAt, leaseUntil: null, sentAt: null, lastError: reason });
  });
}

/** The delivery address of a wallet's oob factor row, opened by the barrier (the caller holds the unit). */
export function oobAddressOf(barrier: Barrier, record: FactorRecord<object>): OobAddress {
  if (record.secretEnvelope === null) throw new Error('the oob factor holds no address');
  const secret = barrier.decryptRecord(factorRecordKey(record.kind, record.walletName), record.secretEnvelope);
  try {
    return parseOobAddress(secret);
  } finally {
    secret.fill(0);
  }
}
