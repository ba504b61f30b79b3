import type { Barrier } from '../barrier/Barrier.js';
import { CustosError, isCustosError } from '../errors.js';
import type { EnrolledVia, StoreTx } from '../store/types.js';
import { canonicalJson } from '../util/canonicalJson.js';
import {
  type ApprovalRef,
  effectiveStrength,
  type Factor,
  type FactorRecord,
  type FactorWallet,
  meetsRequirement,
  type ProofChannel,
  type Requirement,
  type Strength,
} from './Factor.js';

/**
 * The consent module: the one place a consent is decided, a challenge issued and a factor enrolled,
 * whatever the factor. It picks the factor, hands it its record (state, and its secret through the
 * barrier, wiped after the call), persists the state change the factor returns — or the one a
 * refusal carries (a charged attempt) — in the caller's unit of work, and owns the factor rows'
 * integrity: every factor row carries a MAC under the barrier over its kind, id, version, wallet
 * name, sealed secret and state, checked when the wallet is opened (verifyFactorRecords) and
 * recomputed with every state written here. No factor reads or writes a row, a MAC or an audit
 * record itself.
 */

/** The MAC label of factor rows (domain separation under the one record MAC key). */
const FACTOR_MAC_LABEL = 'custos.factor.v1';

const encoder = new TextEncoder();

/** A wallet's factor rows of every registered kind, as opened inside a unit (walletRecord.ts). */
export interface EnrolledFactor {
  factor: Factor;
  record: FactorRecord<object>;
}

/** The consent refused: the error for the caller, and which factor refused (for the audit record; none when no factor was chosen). */
export class ConsentRefused extends Error {
  constructor(
    readonly error: CustosError,
    readonly factor?: string,
  ) {
    super(error.message);
  }
}

/** A factor row's own fields, which a state must not shadow in the MAC's bytes. */
const RECORD_FIELDS = ['kind', 'id', 'version', 'walletName', 'secretEnvelope', 'enrolledVia'] as const;

/**
 * The bytes a factor row's MAC covers: the state's fields and the row's own fields in one canonical
 * JSON object (TOTP's format since the hardening issue, unchanged). `enrolledVia` is covered when it
 * is `page` (absent for `api`, so that the MACs of rows made before the enrolment page still hold,
 * and a row relabelled either way fails). A state field named like a row field would drop out of
 * the MAC, so it is refused.
 */
function factorMacBytes(record: FactorRecord<object>, state: object): Uint8Array {
  const shadowed = RECORD_FIELDS.filter((field) => Object.hasOwn(state, field));
  if (shadowed.length > 0) throw new CustosError('internal', `a factor state may not hold the record field(s) ${shadowed.join(', ')}`);
  return encoder.encode(
    canonicalJson({
      ...(state as Record<string, unknown>),
      kind: record.kind,
      id: record.id,
      version: record.version,
      walletName: record.walletName,
      secretEnvelope: record.secretEnvelope,
      ...(record.enrolledVia === 'api' ? {} : { enrolledVia: record.enrolledVia }),
    }),
  );
}

/** The MAC of a factor row with `state`. */
export function macFactorRecord(barrier: Barrier, record: FactorRecord<object>, state: object = record.state): string {
  return barrier.macRecord(FACTOR_MAC_LABEL, factorMacBytes(record, state));
}

/** The integrity check of a wallet's factor rows: the first row whose MAC is missing or wrong, as `record_unreadable`. */
export function verifyFactorRecords(barrier: Barrier, records: readonly FactorRecord<object>[]): CustosError | undefined {
  for (const record of records) {
    if (record.mac === null || !barrier.verifyRecordMac(FACTOR_MAC_LABEL, factorMacBytes(record, record.state), record.mac))
      return new CustosError('record_unreadable', 'the wallet’s factor record does not match its MAC (its state was changed): refusing to act', {
        details: { field: 'walletName' },
      });
  }
  return undefined;
}

/** The record key a factor's secret is sealed under. */
export function factorRecordKey(kind: string, walletName: string): string {
  return `${kind}:${walletName}`;
}

/**
 * Decides the consent of one operation inside the caller's unit: nothing is needed when the policy
 * requires none; else the factor the proof is for (`proofKind`; without it, the wallet's first
 * factor in registration order whose strength meets the requirement) verifies the proof — a
 * factor too weak for the requirement is refused before it sees the proof. Its state change is persisted here, before the answer: on success
 * (the accepted step), and on a charged refusal (a wrong code) before `ConsentRefused` is thrown.
 * Returns the evidence for the allowed audit record. Throws ConsentRefused for every refusal (a
 * decision, to be audited as denied); any other throw is the store's.
 */
export async function decideConsent(tx: StoreTx, barrier: Barrier, request: ConsentRequest): Promise<Record<string, unknown>> {
  return (await decideConsentStrength(tx, barrier, request)).evidence;
}

export interface ConsentRequest {
  enrolled: readonly EnrolledFactor[];
  required: Requirement;
  tenant: string;
  /** The kind of factor the proof is for, when the request names it; else the first factor strong enough. */
  proofKind?: string;
  /** Which of the wallet's factors of `proofKind` (a passkey's credential id), when the proof names one; else the first of that kind. */
  proofId?: string;
  opHash: string;
  proof: unknown;
  approval?: ApprovalRef;
  /**
   * Where the proof was posted (Factor.ts effectiveStrength); default `relay`, the weaker. A function
   * gives it per factor kind: a page that cannot tell the card's enrolling browser (no device cookie)
   * takes a card's answer as relayed, the other factors' as posted on the page.
   */
  channel?: ProofChannel | ((kind: string) => ProofChannel);
  now: number;
}

/**
 * decideConsent, also returning the strength the accepted proof gave (the chosen record's effective
 * strength through `channel`), which an approval records in its evidence. A factor is chosen by
 * that effective strength, so a proof too weak through this channel is refused unchecked.
 */
export async function decideConsentStrength(
  tx: StoreTx,
  barrier: Barrier,
  { enrolled, required, tenant, opHash, proof, proofKind, proofId, approval, channel: channelOf = 'relay', now }: ConsentRequest,
): Promise<{ evidence: Record<string, unknown>; strength: Strength | 'none' }> {
  if (required === 'none') return { evidence: { factor: 'none' }, strength: 'none' };
  const channel = (kind: string): ProofChannel => (typeof channelOf === 'function' ? channelOf(kind) : channelOf);
  const strong = (e: EnrolledFactor) => meetsRequirement(effectiveStrength(e.factor, e.record, channel(e.factor.kind)), required);
  const chosen =
    proofKind === undefined
      ? enrolled.find(strong)
      : enrolled.find((e) => e.factor.kind === proofKind && (proofId === undefined || e.record.id === proofId) && strong(e));
  if (chosen === undefined)
    throw new ConsentRefused(
      new CustosError(
        'factor_required',
        proofKind === undefined
          ? `this operation needs a consent of strength '${required}', and no enrolled factor gives it`
          : proofId === undefined
            ? `this operation needs a consent of strength '${required}' by a '${proofKind}' factor, and the wallet has none`
            : `the wallet has no '${proofKind}' factor with that id`,
        { details: { field: proofId === undefined ? 'walletName' : 'proof' } },
      ),
    );
  const { factor, record } = chosen;
  let verified: Awaited<ReturnType<Factor['verify']>>;
  try {
    verified = await withWallet(barrier, record, tenant, (wallet) =>
      factor.verify({ wallet, opHash, proof, now, ...(approval === undefined ? {} : { approval }) }),
    );
  } catch (error) {
    const refusal = asDecision(error);
    if (refusal.stateChange !== undefined) await saveState(tx, barrier, chosen, refusal.stateChange);
    throw new ConsentRefused(refusal, factor.kind);
  }
  if (verified.stateChange !== undefined) await saveState(tx, barrier, chosen, verified.stateChange);
  return { evidence: verified.evidence, strength: effectiveStrength(factor, record, channel(factor.kind)) };
}

/**
 * Verifies one factor's proof with the factor's own throttle lifted (issue 13: cancelling a pending
 * change, which a throttle lock a backend can provoke must never block). The factor sees its record
 * with `failures` 0 and no lock; a refusal is NOT charged to the factor (the caller counts it on a
 * counter of its own), and an accepted proof saves the factor's new state (a TOTP's accepted step,
 * a passkey's counter: single use holds) with the original throttle fields kept as they were.
 * Throws ConsentRefused for every refusal.
 */
export async function verifyUnthrottled(
  tx: StoreTx,
  barrier: Barrier,
  {
    chosen,
    tenant,
    opHash,
    proof,
    approval,
    now,
  }: { chosen: EnrolledFactor; tenant: string; opHash: string; proof: unknown; approval?: ApprovalRef; now: number },
): Promise<Record<string, unknown>> {
  const { factor, record } = chosen;
  const original = record.state as Record<string, unknown>;
  const lifted = { ...record, state: 'lockedUntilMs' in original ? { ...original, failures: 0, lockedUntilMs: null } : original };
  let verified: Awaited<ReturnType<Factor['verify']>>;
  try {
    verified = await withWallet(barrier, lifted, tenant, (wallet) =>
      factor.verify({ wallet, opHash, proof, now, ...(approval === undefined ? {} : { approval }) }),
    );
  } catch (error) {
    throw new ConsentRefused(asDecision(error), factor.kind);
  }
  if (verified.stateChange !== undefined) {
    const next = { ...(verified.stateChange as Record<string, unknown>) };
    if ('lockedUntilMs' in original) {
      next.failures = original.failures;
      next.lockedUntilMs = original.lockedUntilMs;
    }
    await saveState(tx, barrier, chosen, next);
  }
  return verified.evidence;
}

/**
 * Issues a factor's challenge for an approval inside the caller's unit, persisting the state it
 * returns (the pending nonce). Throws ConsentRefused when the wallet has no factor of that kind, the
 * factor answers no challenge, or it refuses.
 */
export async function issueChallenge(
  tx: StoreTx,
  barrier: Barrier,
  {
    enrolled,
    kind,
    tenant,
    approval,
    now,
    random,
  }: { enrolled: readonly EnrolledFactor[]; kind: string; tenant: string; approval: ApprovalRef; now: number; random: (n: number) => Uint8Array },
): Promise<unknown> {
  const chosen = enrolled.find((e) => e.factor.kind === kind);
  if (chosen === undefined || chosen.factor.challenge === undefined)
    throw new ConsentRefused(
      new CustosError('factor_required', `the wallet has no enrolled factor of kind '${kind}' that answers a challenge`, { details: { field: 'kind' } }),
      kind,
    );
  const challenge = chosen.factor.challenge.bind(chosen.factor);
  let issued: ReturnType<NonNullable<Factor['challenge']>>;
  try {
    issued = await withWallet(barrier, chosen.record, tenant, (wallet) => challenge({ wallet, approval, now, random }));
  } catch (error) {
    const refusal = asDecision(error);
    if (refusal.stateChange !== undefined) await saveState(tx, barrier, chosen, refusal.stateChange);
    throw new ConsentRefused(refusal, kind);
  }
  await saveState(tx, barrier, chosen, issued.stateChange);
  return issued.challenge;
}

/**
 * A factor record for a new enrolment: the secret sealed under the factor's record key, the initial
 * state, the MAC. The caller inserts it (factor.rows.insert) with the wallet's new MAC.
 */
export function newFactorRecord(
  barrier: Barrier,
  factor: Factor,
  {
    walletName,
    id,
    secret,
    state,
    enrolledVia,
    now,
    random,
  }: { walletName: string; id: string; secret: Uint8Array | null; state: object; enrolledVia: EnrolledVia; now: number; random: (n: number) => Uint8Array },
): FactorRecord<object> {
  const record: FactorRecord<object> = {
    kind: factor.kind,
    id,
    version: 1,
    walletName,
    secretEnvelope: secret === null ? null : barrier.encryptRecord(factorRecordKey(factor.kind, walletName), secret, random),
    state: factor.rows.stored(state),
    createdAt: now,
    enrolledVia,
    mac: null,
  };
  record.mac = macFactorRecord(barrier, record);
  return record;
}

/**
 * A state change the kernel decides about a factor outside its own verification (a locked
 * delivered-code factor unlocked by the owner's approval with another factor), written as every
 * state is: through the kind's rows, with its MAC.
 */
export async function saveFactorState(tx: StoreTx, barrier: Barrier, enrolled: EnrolledFactor, state: object): Promise<void> {
  await saveState(tx, barrier, enrolled, state);
}

/** The one way a factor state is written: through the kind's rows, as they store it, with the MAC recomputed over that. */
async function saveState(tx: StoreTx, barrier: Barrier, { factor, record }: EnrolledFactor, state: object): Promise<void> {
  const stored = factor.rows.stored(state);
  await factor.rows.saveState(tx, record, stored, macFactorRecord(barrier, record, stored));
}

/** Runs a factor call with its wallet view; every secret it opened is wiped when the call (or its promise) settles. */
async function withWallet<T>(
  barrier: Barrier,
  record: FactorRecord<object>,
  tenant: string,
  call: (wallet: FactorWallet<object>) => T | Promise<T>,
): Promise<T> {
  const opened: Uint8Array[] = [];
  const wallet: FactorWallet<object> = {
    name: record.walletName,
    tenant,
    factor: record,
    openSecret() {
      // Fail closed: a factor whose secret cannot be read refuses, never signs.
      if (record.secretEnvelope === null) throw new CustosError('record_unreadable', 'the factor holds no secret', { details: { field: 'walletName' } });
      const secret = barrier.decryptRecord(factorRecordKey(record.kind, record.walletName), record.secretEnvelope);
      opened.push(secret);
      return secret;
    },
  };
  try {
    return await call(wallet);
  } finally {
    for (const secret of opened) secret.fill(0);
  }
}

/**
 * Whatever a factor throws is its refusal (anything but a CustosError a coding failure, `internal`),
 * except `sealed`: a seal that wiped the barrier during the unit (the factor's secret could not be
 * opened) fails the unit — no record, nothing charged — as every other step does when sealed.
 */
function asDecision(error: unknown): CustosError {
  if (isCustosError(error)) {
    if (error.code === 'sealed') throw error;
    return error;
  }
  return new CustosError('internal', 'internal failure', { cause: error });
}
