import type { EnrolledVia, StoreTx, WalletRows } from '../store/types.js';

/**
 * The seam every second factor plugs into: TOTP today; passkeys, hardware-key challenges and
 * kernel-delivered codes next. A factor is one module that implements `Factor`; the consent module
 * (consent.ts) is the only caller, and the only code that knows which factor decided.
 *
 * A factor is pure: it gets its record (state and, through `openSecret`, its sealed secret), the
 * time and randomness, and returns the state change for the consent module to persist in the same
 * unit of work as the audit record (SimpleWebAuthn returns `newCounter`; otpauth takes `timestamp`).
 * It never writes, never audits and never checks its row's MAC: the consent module does.
 *
 * One way to fail: a refused verification THROWS a CustosError. When the attempt is charged (a wrong
 * code counts against the factor's throttle), the error carries the new state in `stateChange`
 * (`new CustosError(code, message, { stateChange })`), which the consent module persists before the
 * denial is returned. An error without `stateChange` changes nothing.
 */

/**
 * What a consent proves. `present`: the owner (or someone holding the owner's factor) took part in
 * this request — a relayed TOTP code. `bound`: the owner saw this exact operation and approved it
 * (a passkey assertion over the approval's challenge on the kernel's own page).
 */
export type Strength = 'present' | 'bound';

/** What a policy asks of a request: no consent (never-enrolled wallets), or at least this strength. */
export type Requirement = 'none' | Strength;

/** Whether a factor's `strength` meets `required`. */
export function meetsRequirement(strength: Strength, required: Requirement): boolean {
  if (required === 'none') return true;
  return required === 'present' || strength === 'bound';
}

/**
 * Where a proof was posted: on the kernel's own page (`page`: the owner saw the summary and the
 * challenge there), or relayed by the wallet backend (`relay`: the sign routes, the API's answer
 * routes). A factor whose strength depends on it (hwkey) says so in `strengthOf`.
 */
export type ProofChannel = 'page' | 'relay';

/** The lower of two strengths. */
function weaker(a: Strength, b: Strength): Strength {
  return a === 'bound' && b === 'bound' ? 'bound' : 'present';
}

/**
 * The strength a proof from `record` posted through `channel` gives: the factor's registered
 * `strength`, or — for a factor whose strength depends on the channel and the enrolment
 * (`strengthOf`: hwkey) — what it says, never above its registered strength and never above
 * `present` for a record the backend enrolled (`api`: it may hold the key itself). A factor without
 * `strengthOf` keeps its registered strength (TOTP is `present`; a passkey is never enrolled
 * through the API; the test seam's stand-ins for passkeys are enrolled through Kernel.enrollFactor).
 */
export function effectiveStrength(factor: Factor, record: FactorRecord<object>, channel: ProofChannel): Strength {
  if (factor.strengthOf === undefined) return factor.strength;
  const capped = weaker(factor.strengthOf(record, channel), factor.strength);
  return record.enrolledVia === 'api' ? weaker(capped, 'present') : capped;
}

/** The most a record can give (a proof on the kernel's page): what policy and enrolment rules read. */
export function strongestOf(factor: Factor, record: FactorRecord<object>): Strength {
  return effectiveStrength(factor, record, 'page');
}

/** A factor's row as the consent module sees it, whatever table holds it (see FactorRows). */
export interface FactorRecord<S> {
  kind: string;
  /** Which of the wallet's factors of this kind (TOTP: always `totp`; a passkey: its credential id). */
  id: string;
  /** The record format's version (part of the MAC). */
  version: number;
  walletName: string;
  /** The factor's secret sealed by the barrier under record key `<kind>:<walletName>`, or null. */
  secretEnvelope: string | null;
  /** The factor's mutable state (last accepted step, counters, throttle, a pending challenge). */
  state: S;
  createdAt: number;
  /** By the backend through the API (`api`: it may hold the secret), or by the owner on the kernel's enrolment page (`page`). */
  enrolledVia: EnrolledVia;
  /** Hex MAC over kind, id, version, wallet name, envelope, enrolledVia (when `page`) and state (consent.ts); null only on rows from before MACs. */
  mac: string | null;
}

/**
 * Where a factor kind's rows are stored: read locked in a unit, read from rows fetched outside one
 * (GET /v1/wallets), inserted at enrolment, state replaced (with the MAC the consent module
 * computed). The store's tables stay the store's business; this adapter is the one place that maps
 * them to FactorRecord.
 */
export interface FactorRows<S> {
  /**
   * The state as the rows store it (the fields they keep, nothing else): the consent module MACs
   * and saves this, so that a state with a field the table does not keep never makes a row whose
   * MAC cannot be checked again.
   */
  stored(state: S): S;
  read(tx: StoreTx, walletName: string): Promise<FactorRecord<S>[]>;
  fromWalletRows(rows: WalletRows, walletName: string): FactorRecord<S>[];
  insert(tx: StoreTx, record: FactorRecord<S>): Promise<void>;
  saveState(tx: StoreTx, record: FactorRecord<S>, state: S, mac: string): Promise<void>;
}

/** The wallet as a factor sees it: its own record, and its secret opened on demand. */
export interface FactorWallet<S> {
  name: string;
  tenant: string;
  factor: FactorRecord<S>;
  /**
   * The factor's secret, opened by the barrier (`record_unreadable` when it cannot be: fail closed).
   * The consent module wipes it when the call returns or throws; the factor must not keep it.
   */
  openSecret(): Uint8Array;
}

/** The approval a challenge is issued for: the one operation (opHash) the owner is asked to approve. */
export interface ApprovalRef {
  id: string;
  opHash: string;
  /** Milliseconds since the epoch: a challenge never outlives its approval. */
  expiresAt: number;
  /**
   * The challenge the kernel derived for this approval (kernel/approvalChallenge.ts: SHA-256 over
   * a label, the signer, the approval, its opHash and a nonce the kernel chose and stored with the
   * approval), when one is issued and unspent: a factor that answers the kernel's challenge
   * (passkeys) verifies against exactly these bytes, never against one the proof names.
   */
  challenge?: Uint8Array;
  /**
   * The owner cancelling a pending change (kernel/pendingChanges.ts): a factor that delivers codes
   * sends this one whatever its lock and its hourly cap — which a backend can provoke or use up —
   * under a cap of its own (the delivered-code factor's `cancelPerHour`), so a cancel is never blocked.
   */
  cancel?: true;
  /**
   * With `cancel`: the send is counted on a cancel budget of the caller's that the backend cannot reach
   * (kernel/ownerDevice.ts: an owner device's, or a change's delivered link's), so the factor's own
   * cancel cap neither refuses nor counts it.
   */
  ownCap?: true;
}

export interface EnrollBeginContext {
  walletName: string;
  now: number;
  random: (n: number) => Uint8Array;
}

/** The first half of an enrolment: the secret to seal (if any), what the owner is shown, the ceremony's pending data. */
export interface EnrollBegun<Shown, Pending> {
  /** A fresh secret the kernel seals into the record (the consent module wipes it), or null. */
  secret: Uint8Array | null;
  shown: Shown;
  pending: Pending;
}

export interface EnrollFinishContext<Pending> {
  walletName: string;
  pending: Pending;
  /**
   * On the kernel's enrolment page (`page`), the owner must answer the ceremony before the factor
   * is active (TOTP: a first valid code from the secret shown); through the API (`api`), the factor
   * is enrolled as shown.
   */
  via: EnrolledVia;
  /** The secret `begin` made (null if none), for checking the owner's first answer; the caller wipes it. */
  secret: Uint8Array | null;
  /** The owner's answer to the ceremony (a passkey's attestation, a first code), when the factor asks for one. */
  proof: unknown;
  /**
   * On the enrolment page, the digest the kernel derived for this link (kernel/approvalChallenge.ts
   * hwkeyEnrollmentDigest) for a factor that proves possession by signing it (hwkey); else absent.
   */
  challenge?: Uint8Array;
  now: number;
}

/** The second half: the new factor's id and initial state. Throws a CustosError when the proof is refused. */
export interface EnrollFinished<S> {
  id: string;
  state: S;
}

export interface ChallengeContext<S> {
  wallet: FactorWallet<S>;
  approval: ApprovalRef;
  now: number;
  random: (n: number) => Uint8Array;
}

export interface VerifyContext<S> {
  wallet: FactorWallet<S>;
  approval?: ApprovalRef;
  /** The operation the consent is for: a proof bound to another opHash must be refused. */
  opHash: string;
  /** The caller's proof (a code, an assertion, a signature): untrusted, the factor validates it. */
  proof: unknown;
  now: number;
}

export interface Verified<S> {
  /** The state to persist with the decision (the accepted step, the new counter); undefined: unchanged. */
  stateChange?: S;
  /** What the audit record shows of the consent (never a secret or a code). */
  evidence: Record<string, unknown>;
}

// biome-ignore lint/suspicious/noExplicitAny: a registry holds factors of every state type.
export interface Factor<S extends object = any, Shown = unknown, Pending = unknown> {
  readonly kind: string;
  /** The strength a successful verification gives (the most it can give, when `strengthOf` says more). */
  readonly strength: Strength;
  /**
   * The strength a proof from this record gives when posted through `channel` (hwkey: `bound` only
   * for a page-enrolled card answering on the page); default `strength`. Never read directly: see
   * effectiveStrength, which caps it.
   */
  strengthOf?(record: FactorRecord<S>, channel: ProofChannel): Strength;
  /** How the factor is named to people (`TOTP`, `passkey`): in messages. */
  readonly label: string;
  readonly rows: FactorRows<S>;
  readonly enroll: {
    begin(ctx: EnrollBeginContext): Promise<EnrollBegun<Shown, Pending>>;
    /**
     * What the owner is shown again for a secret `begin` made (the enrolment page renders it on
     * every visit until the factor is active, from the secret sealed in the link). The caller wipes the secret.
     * `challenge`: the link's enrolment digest, for a factor that proves possession by signing it (hwkey).
     */
    show?(ctx: { walletName: string; secret: Uint8Array | null; pending: Pending; challenge?: Uint8Array }): Promise<Shown>;
    finish(ctx: EnrollFinishContext<Pending>): EnrollFinished<S> | Promise<EnrollFinished<S>>;
  };
  /** Issues a challenge bound to an approval (factors that answer one: passkeys, hardware keys, delivered codes). */
  challenge?(ctx: ChallengeContext<S>): { challenge: unknown; stateChange: S };
  /**
   * For a factor that answers the kernel's own challenge (passkeys): what the owner's device needs
   * to answer `challenge` (WebAuthn request options) with any of the wallet's `records` of this
   * kind. The kernel chose and stored the nonce; the factor only presents it.
   */
  challengeOptions?(ctx: { records: readonly FactorRecord<S>[]; challenge: Uint8Array; approval: ApprovalRef; now: number }): Promise<unknown>;
  /** Checks a proof for one operation; throws a CustosError (with `stateChange` when charged) to refuse. */
  verify(ctx: VerifyContext<S>): Verified<S> | Promise<Verified<S>>;
}
