import { timingSafeEqual } from 'node:crypto';
import type { Barrier } from '../barrier/Barrier.js';
import { CustosError, invalidInput } from '../errors.js';
import type { OobChannelRecord, StoreTx, WalletRows } from '../store/types.js';
import { canonicalJson } from '../util/canonicalJson.js';
import type { Factor, FactorRecord, FactorRows } from './Factor.js';

/**
 * Codes the kernel delivers itself (`oob`), as a Factor: the owner's delivery address (an e-mail
 * address, or a recipient of the deployment's signed webhook) is set on the kernel's enrolment page
 * and becomes active only when a code sent to it is typed back there; for an approval, the kernel
 * sends the approval's summary, its link and an 8-digit code bound to that one approval, which the
 * owner types on the kernel's approval page: `bound`.
 *
 * No code is stored: the code of a message is computed when it is sent, and again when it is
 * checked, as HOTP (RFC 4226 dynamic truncation, 8 digits) over HMAC-SHA256 under a key the
 * barrier derives (its record MAC key with the label `custos.oob.code.v1`: domain-separated from
 * every record MAC) of the wallet, the subject (the approval's id, or the enrolment link's) and the
 * send counter. The state keeps, per approval, the counter, the code's expiry, the wrong tries and
 * whether it was used; per wallet, the consecutive failures, the lock, and the messages sent in the
 * current hour — all under the row's MAC.
 */

const KIND = 'oob';
const CODE_LABEL = 'custos.oob.code.v1';
const CODE = /^[0-9]{8}$/;

export type OobChannel = 'email' | 'webhook';
export const OOB_CHANNELS: readonly OobChannel[] = ['email', 'webhook'];

/** The code of one approval (or enrolment link): which send, until when, how many wrong tries. */
export interface OobCode {
  subject: string;
  counter: number;
  issuedAt: number;
  expiresAt: number;
  /** Until when the entry is kept (the approval's expiry): a resend never starts a fresh count. */
  keepUntil: number;
  tries: number;
  sends: number;
  used: boolean;
}

export interface OobFactorState {
  channel: OobChannel;
  /** Consecutive wrong codes (any approval); reset by a right one. */
  failures: number;
  lockedUntilMs: number | null;
  /** The current hour's start, and the messages sent in it (the mail-bomb cap). */
  windowStart: number;
  sentInWindow: number;
  /** The cancel codes' own hour window (absent until the first): never the lock's nor the hourly cap's. */
  cancelWindowStart?: number;
  cancelSentInWindow?: number;
  codes: OobCode[];
}

/** What the enrolment ceremony keeps between setting the address and typing its code back. */
export interface OobPending {
  subject?: string;
  counter?: number;
  expiresAt?: number;
  channel?: OobChannel;
}

/** The address a channel delivers to, as sealed (the factor's secret). */
export interface OobAddress {
  channel: OobChannel;
  address: string;
}

export interface OobLimits {
  /** How long a code is valid (ms; at most 10 minutes). */
  codeTtlMs: number;
  /** Wrong tries per approval. */
  maxTries: number;
  /** Consecutive wrong codes per wallet before the factor locks. */
  maxFailures: number;
  /** How long the lock lasts (ms). */
  lockMs: number;
  /** Messages per wallet per hour. */
  perHour: number;
  /** Messages per approval (the first and its resends). */
  sendsPerApproval: number;
  /** Codes that cancel a pending change, per wallet per hour: a cap of their own (ApprovalRef.cancel). */
  cancelPerHour: number;
}

export const DEFAULT_OOB_LIMITS: OobLimits = {
  codeTtlMs: 5 * 60_000,
  maxTries: 5,
  maxFailures: 100,
  lockMs: 24 * 3_600_000,
  perHour: 10,
  sendsPerApproval: 3,
  cancelPerHour: 6,
};
export const MAX_OOB_CODE_TTL_MS = 10 * 60_000;
const HOUR_MS = 3_600_000;
/** Code entries kept per wallet (pending approvals are capped at 16 per wallet by default). */
const MAX_CODES = 64;

const encoder = new TextEncoder();

/** The 8-digit code of (wallet, subject, counter): HOTP truncation of HMAC-SHA256 under the barrier's derived key. */
export function computeOobCode(barrier: Barrier, walletName: string, subject: string, counter: number): string {
  const mac = Buffer.from(barrier.macRecord(CODE_LABEL, encoder.encode(canonicalJson({ walletName, subject, counter }))), 'hex');
  // RFC 4226 §5.3 dynamic truncation (offset from the low nibble of the last byte).
  const offset = (mac[mac.length - 1] as number) & 0x0f;
  const binary =
    (((mac[offset] as number) & 0x7f) << 24) | ((mac[offset + 1] as number) << 16) | ((mac[offset + 2] as number) << 8) | (mac[offset + 3] as number);
  return String(binary % 1e8).padStart(8, '0');
}

/** A delivery address as a request names it: an e-mail address, or a webhook recipient (1–256 printable characters). Throws invalid_input. */
export function assertOobAddress(channel: unknown, address: unknown): OobAddress {
  if (channel !== 'email' && channel !== 'webhook') throw invalidInput('channel', "'email' or 'webhook'", typeof channel);
  if (typeof address !== 'string' || address.length === 0 || address.length > 254) throw invalidInput('address', '1–254 characters', typeof address);
  if (channel === 'email' && !/^[^\s@<>"',;:\\()[\]]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}\.)*[A-Za-z0-9-]{1,63}$/.test(address))
    throw invalidInput('address', 'an e-mail address (local@domain)');
  if (channel === 'webhook' && !/^[\x21-\x7e]+$/.test(address)) throw invalidInput('address', 'a recipient id of printable ASCII characters');
  return { channel, address };
}

export function parseOobAddress(secret: Uint8Array): OobAddress {
  const parsed = JSON.parse(new TextDecoder().decode(secret)) as OobAddress;
  return assertOobAddress(parsed.channel, parsed.address);
}

function codesEqual(a: string, b: string): boolean {
  return a.length === b.length && timingSafeEqual(Buffer.from(a), Buffer.from(b));
}

function throttled(until: number): CustosError {
  return new CustosError(
    'factor_throttled',
    'too many wrong codes: the delivered-code factor is locked; unlock it on the approval page with another factor, or wait',
    {
      details: { field: 'proof', retryAfterSeconds: Math.max(1, Math.ceil(until / 1000)) },
    },
  );
}

export function deliveryLimited(reason: string): CustosError {
  return new CustosError('delivery_limited', `no code was sent: ${reason}`, { details: { field: 'walletName' } });
}

function storedState(state: OobFactorState): OobFactorState {
  return {
    channel: state.channel,
    failures: state.failures,
    lockedUntilMs: state.lockedUntilMs,
    windowStart: state.windowStart,
    sentInWindow: state.sentInWindow,
    // the cancel codes' window, once there is one (rows written before it hold none)
    ...(state.cancelWindowStart === undefined ? {} : { cancelWindowStart: state.cancelWindowStart, cancelSentInWindow: state.cancelSentInWindow ?? 0 }),
    codes: state.codes.map(({ subject, counter, issuedAt, expiresAt, keepUntil, tries, sends, used }) => ({
      subject,
      counter,
      issuedAt,
      expiresAt,
      keepUntil,
      tries,
      sends,
      used,
    })),
  };
}

function recordOf(row: OobChannelRecord): FactorRecord<OobFactorState> {
  return {
    kind: KIND,
    id: KIND,
    version: 1,
    walletName: row.walletName,
    secretEnvelope: row.secretEnvelope,
    state: JSON.parse(row.state) as OobFactorState,
    createdAt: row.createdAt,
    enrolledVia: row.enrolledVia,
    mac: row.mac,
  };
}

const oobRows: FactorRows<OobFactorState> = {
  stored: storedState,
  async read(tx: StoreTx, walletName: string) {
    const row = await tx.getOobChannelForUpdate(walletName);
    return row === undefined ? [] : [recordOf(row)];
  },
  fromWalletRows(rows: WalletRows) {
    return rows.oob === undefined ? [] : [recordOf(rows.oob)];
  },
  async insert(tx, record) {
    await tx.insertOobChannel({
      walletName: record.walletName,
      secretEnvelope: record.secretEnvelope as string,
      state: canonicalJson(storedState(record.state)),
      enrolledVia: record.enrolledVia,
      createdAt: record.createdAt,
      mac: record.mac,
    });
  },
  async saveState(tx, record, state, mac) {
    await tx.updateOobChannelState(record.walletName, canonicalJson(state), mac);
  },
};

/** A new state's hour window: the counter starts again when the hour is over. */
function windowAt(state: OobFactorState, now: number): Pick<OobFactorState, 'windowStart' | 'sentInWindow'> {
  return now - state.windowStart >= HOUR_MS ? { windowStart: now, sentInWindow: 0 } : { windowStart: state.windowStart, sentInWindow: state.sentInWindow };
}

/** What the kernel sends for a challenge: where to, and which counter the code is computed from. */
export interface OobIssued extends OobAddress {
  counter: number;
  expiresAt: number;
}

/** The oob factor, with its limits (the enrolment page and the approvals read the code TTL). */
/** What the enrolment page shows: the channels this signer delivers on, and whether (and how) a code was sent. */
export interface OobShown {
  channels: readonly OobChannel[];
  sent: { channel: OobChannel; expiresAt: number } | null;
}

export type OobFactor = Factor<OobFactorState, OobShown, OobPending> & { readonly limits: OobLimits; readonly channels: readonly OobChannel[] };

export function isOobFactor(factor: Factor): factor is OobFactor {
  return factor.kind === KIND && typeof (factor as Partial<OobFactor>).limits === 'object';
}

export function oobFactor({
  codeOf,
  limits = DEFAULT_OOB_LIMITS,
  channels = OOB_CHANNELS,
  webhookTrusted = true,
}: {
  /** The code of (wallet, subject, counter): computeOobCode with the kernel's barrier. */
  codeOf: (walletName: string, subject: string, counter: number) => string;
  limits?: OobLimits;
  /** The channels the shell delivers on (an address of another channel is refused). */
  channels?: readonly OobChannel[];
  /**
   * Whether the deployment's webhook receiver is outside the wallet backend's trust domain (the
   * operator says so: `--webhook-trusted`, default true). When it is not, a code delivered by it may
   * be read by the backend: a webhook wallet's code proves presence only (`present`).
   */
  webhookTrusted?: boolean;
}): OobFactor {
  const shownOf = (pending: OobPending): OobShown => ({
    channels,
    sent: pending.channel === undefined || pending.expiresAt === undefined ? null : { channel: pending.channel, expiresAt: pending.expiresAt },
  });
  return {
    limits,
    channels,
    kind: KIND,
    strength: 'bound',
    label: 'code sent to you',
    rows: oobRows,
    // A code typed on the kernel's page, delivered where the backend cannot read it, is `bound`; one
    // relayed by the backend, or delivered to a webhook not trusted to be outside its reach, proves presence only.
    strengthOf(record, channel) {
      return channel === 'relay' || (record.state.channel === 'webhook' && !webhookTrusted) ? 'present' : 'bound';
    },
    enroll: {
      async begin() {
        return { secret: null, shown: shownOf({}), pending: {} };
      },
      async show({ pending }) {
        return shownOf(pending ?? {});
      },
      finish({ walletName, via, pending, secret, proof, now }) {
        // The backend never sets an address: it would be its own.
        if (via !== 'page') throw invalidInput('kind', "a factor the backend may enrol ('oob' is set by its owner on the enrolment page)");
        if (secret === null || pending.subject === undefined || pending.counter === undefined || pending.expiresAt === undefined)
          throw new CustosError('code_required', 'set the delivery address on this page first', { details: { field: 'address' } });
        if (typeof proof !== 'string' || proof === '')
          throw new CustosError('code_required', 'type the code sent to the address', { details: { field: 'proof' } });
        if (!CODE.test(proof)) throw invalidInput('proof', 'the 8-digit code');
        if (now >= pending.expiresAt)
          throw new CustosError('code_expired', 'the code expired: set the address again for a new one', { details: { field: 'proof' } });
        if (!codesEqual(codeOf(walletName, pending.subject, pending.counter), proof))
          throw new CustosError('code_invalid', 'the code is wrong', { details: { field: 'proof' } });
        const { channel } = parseOobAddress(secret);
        return { id: KIND, state: { channel, failures: 0, lockedUntilMs: null, windowStart: now, sentInWindow: 0, codes: [] } };
      },
    },
    /**
     * A message for an approval (its creation, or a resend): refused while locked, over the hourly
     * cap, or past the approval's sends; a resend keeps the tries counted so far (it only gives a
     * new code), and the codes of earlier sends stop being valid.
     */
    challenge({ wallet, approval, now }) {
      const state = wallet.factor.state;
      // A cancel's code: neither the lock nor the hourly cap (a backend can provoke the one and use up
      // the other) nor the sends per subject (the backend holds the change's page link too), only the
      // cancel codes' own hourly cap — still no mail bomb.
      const cancel = approval.cancel === true;
      if (!cancel && state.lockedUntilMs !== null && now < state.lockedUntilMs) throw throttled(state.lockedUntilMs - now);
      const window = windowAt(state, now);
      if (!cancel && window.sentInWindow >= limits.perHour) throw deliveryLimited(`at most ${limits.perHour} messages per wallet per hour`);
      const cancelWindow =
        state.cancelWindowStart === undefined || now - state.cancelWindowStart >= HOUR_MS
          ? { cancelWindowStart: now, cancelSentInWindow: 0 }
          : { cancelWindowStart: state.cancelWindowStart, cancelSentInWindow: state.cancelSentInWindow ?? 0 };
      const ownCap = cancel && approval.ownCap === true;
      if (cancel && !ownCap && cancelWindow.cancelSentInWindow >= limits.cancelPerHour)
        throw deliveryLimited(`at most ${limits.cancelPerHour} cancel codes per wallet per hour`);
      const codes = state.codes.filter((c) => c.keepUntil > now);
      const earlier = codes.find((c) => c.subject === approval.id);
      if (earlier !== undefined && ((!cancel && earlier.sends >= limits.sendsPerApproval) || earlier.used || earlier.tries >= limits.maxTries))
        throw deliveryLimited(
          !earlier.used && earlier.tries < limits.maxTries ? `at most ${limits.sendsPerApproval} messages per approval` : 'this approval’s code is spent',
        );
      const expiresAt = Math.min(now + limits.codeTtlMs, approval.expiresAt);
      const code: OobCode =
        earlier === undefined
          ? { subject: approval.id, counter: 1, issuedAt: now, expiresAt, keepUntil: approval.expiresAt, tries: 0, sends: 1, used: false }
          : { ...earlier, counter: earlier.counter + 1, issuedAt: now, expiresAt, sends: earlier.sends + 1 };
      const others = codes.filter((c) => c.subject !== approval.id);
      if (others.length >= MAX_CODES) throw deliveryLimited('too many approvals hold codes');
      const address = parseOobAddress(wallet.openSecret());
      const issued: OobIssued = { ...address, counter: code.counter, expiresAt };
      return {
        challenge: issued,
        stateChange: ownCap
          ? { ...state, codes: [...others, code] }
          : cancel
            ? { ...state, cancelWindowStart: cancelWindow.cancelWindowStart, cancelSentInWindow: cancelWindow.cancelSentInWindow + 1, codes: [...others, code] }
            : {
                ...state,
                lockedUntilMs: state.lockedUntilMs,
                windowStart: window.windowStart,
                sentInWindow: window.sentInWindow + 1,
                codes: [...others, code],
              },
      };
    },
    /**
     * The code typed on the approval page: for this approval's latest send, unexpired, unused, within
     * its tries, the factor unlocked. A wrong code is charged to the approval's tries and to the
     * wallet's consecutive failures (the lock at the limit).
     */
    verify({ wallet, approval, proof, now }) {
      if (typeof proof !== 'string' || proof === '') throw new CustosError('code_required', 'type the code sent to you', { details: { field: 'proof' } });
      if (!CODE.test(proof)) throw invalidInput('proof', 'the 8-digit code');
      const state = wallet.factor.state;
      if (state.lockedUntilMs !== null && now < state.lockedUntilMs) throw throttled(state.lockedUntilMs - now);
      const unlocked = state.lockedUntilMs !== null ? { ...state, lockedUntilMs: null, failures: 0 } : state;
      const entry = approval === undefined ? undefined : unlocked.codes.find((c) => c.subject === approval.id);
      if (entry === undefined) throw new CustosError('challenge_required', 'no code was sent for this approval: ask for one', { details: { field: 'proof' } });
      if (entry.used) throw new CustosError('code_reused', 'this approval’s code was already used', { details: { field: 'proof' } });
      if (entry.tries >= limits.maxTries)
        throw new CustosError('code_tries_exhausted', `${limits.maxTries} wrong codes were typed for this approval: it can no longer be approved with a code`, {
          details: { field: 'proof', limit: limits.maxTries },
        });
      if (now >= entry.expiresAt) throw new CustosError('code_expired', 'the code expired: ask for a new one', { details: { field: 'proof' } });
      const others = unlocked.codes.filter((c) => c !== entry);
      if (!codesEqual(codeOf(wallet.name, entry.subject, entry.counter), proof)) {
        const failures = unlocked.failures + 1;
        const locks = failures >= limits.maxFailures;
        const stateChange: OobFactorState = {
          ...unlocked,
          failures: locks ? 0 : failures,
          lockedUntilMs: locks ? now + limits.lockMs : null,
          codes: [...others, { ...entry, tries: entry.tries + 1 }],
        };
        if (locks) {
          const error = throttled(limits.lockMs);
          throw new CustosError(error.code, error.message, { details: { ...error.details, locked: true }, stateChange });
        }
        throw new CustosError('code_invalid', 'the code is wrong', { details: { field: 'proof', triesLeft: limits.maxTries - entry.tries - 1 }, stateChange });
      }
      return {
        stateChange: { ...unlocked, failures: 0, codes: [...others, { ...entry, used: true }] },
        evidence: { factor: KIND, channel: state.channel, counter: entry.counter },
      };
    },
  };
}
