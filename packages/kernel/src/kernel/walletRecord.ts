import type { AuditRecord } from '../audit/types.js';
import type { Barrier } from '../barrier/Barrier.js';
import { CustosError } from '../errors.js';
import type { StoreTx, TotpFactorRecord, TotpFactorState, WalletRecord, WalletRows } from '../store/types.js';
import { canonicalJson } from '../util/canonicalJson.js';

/**
 * Wallet ownership and the MACs of the rows the kernel decides on.
 *
 * A wallet belongs to the tenant whose call first named it (enrolment, derivation, signature); its
 * row carries a MAC under the barrier over its tenant, name and list of factors (kind, id,
 * version), and each factor row a MAC over the wallet name, the factor's kind, id and version, its
 * secret envelope and its state (last accepted step, failures, locked-until), recomputed by every
 * state update. So a database writer cannot move a wallet to another tenant, delete or add a
 * factor row, or reset a factor's state without the kernel refusing the wallet as
 * `record_unreadable` (never "not enrolled"). What the MACs cannot show online is a wallet whose
 * rows were all deleted (see `UnknownWallets`), or a whole row put back as it was earlier (a
 * rollback): `custos audit verify --factors` compares the rows with the audit log for both.
 */

/**
 * Whether a wallet with no enrolled factor may sign without consent: `allow` (the TOTP ETH Signer's
 * semantics for wallets never enrolled: a name with no wallet row is created, owned by the caller's
 * tenant, and signs) or `deny`: a name with no row is refused `wallet_not_found`, and a wallet whose
 * row has no factor `factor_required` (a database writer who deletes a wallet's rows and has the
 * row re-created by a derivation gets no signature). Enrolment and derivation create the row
 * either way.
 */
export type UnknownWallets = 'allow' | 'deny';

/** Under `deny`, a wallet without an enrolled factor never signs: `factor_required`. */
export function refuseUnenrolledUnderDeny(unknownWallets: UnknownWallets, wallet: OpenedWallet): CustosError | undefined {
  if (unknownWallets !== 'deny' || wallet.totp !== undefined) return undefined;
  return new CustosError('factor_required', 'this deployment signs only for wallets with an enrolled second factor', {
    details: { field: 'walletName' },
  });
}

/** The MAC labels (domain separation under the one record MAC key). */
const WALLET_MAC_LABEL = 'custos.wallet.v1';
const FACTOR_MAC_LABEL = 'custos.factor.v1';

/** A wallet has at most one TOTP factor; its id and version are fixed until factors can be replaced. */
const TOTP_FACTOR = { kind: 'totp', id: 'totp', version: 1 } as const;

/** A wallet's rows after their checks: owned by the caller's tenant, MACs valid. */
export interface OpenedWallet {
  wallet: WalletRecord;
  totp: TotpFactorRecord | undefined;
  /** Writes the factor's new state with its MAC recomputed (the one way a factor state is written). */
  saveTotpState(state: TotpFactorState): Promise<void>;
}

type Checked<T> = { ok: true; value: T } | { ok: false; error: CustosError };

const encoder = new TextEncoder();

/** The MAC of a wallet row: its tenant, name and the list of its factors. */
export function macWallet(barrier: Barrier, wallet: { tenant: string; name: string }, totp: TotpFactorRecord | undefined): string {
  return barrier.macRecord(WALLET_MAC_LABEL, walletMacBytes(wallet, totp));
}

/** The MAC of a TOTP factor row: wallet name, kind, id, version, secret envelope and state. */
export function macTotpFactor(barrier: Barrier, factor: { walletName: string; secretEnvelope: string }, state: TotpFactorState): string {
  return barrier.macRecord(FACTOR_MAC_LABEL, factorMacBytes(factor, state));
}

function walletMacBytes(wallet: { tenant: string; name: string }, totp: TotpFactorRecord | undefined): Uint8Array {
  const factors = totp === undefined ? [] : [TOTP_FACTOR];
  return encoder.encode(canonicalJson({ tenant: wallet.tenant, name: wallet.name, factors }));
}

function factorMacBytes(factor: { walletName: string; secretEnvelope: string }, state: TotpFactorState): Uint8Array {
  return encoder.encode(
    canonicalJson({
      ...TOTP_FACTOR,
      walletName: factor.walletName,
      secretEnvelope: factor.secretEnvelope,
      lastAcceptedStep: state.lastAcceptedStep,
      failures: state.failures,
      lockedUntilMs: state.lockedUntilMs,
    }),
  );
}

function walletNotFound(): CustosError {
  return new CustosError('wallet_not_found', 'no wallet of that name is known to the signer', { details: { field: 'walletName' } });
}

function unreadable(message: string): CustosError {
  return new CustosError('record_unreadable', message, { details: { field: 'walletName' } });
}

/**
 * The MAC checks of a wallet's rows (the caller checked the tenant first, so that another tenant's
 * factor row is never read): the wallet's MAC over the factor rows present, then each factor's MAC;
 * any mismatch (or a row without a MAC) is `record_unreadable`.
 */
function checkMacs(barrier: Barrier, wallet: WalletRecord, totp: TotpFactorRecord | undefined): CustosError | undefined {
  if (wallet.mac === null || !barrier.verifyRecordMac(WALLET_MAC_LABEL, walletMacBytes(wallet, totp), wallet.mac))
    return unreadable('the wallet record does not match its MAC (its owner or its list of factors was changed): refusing to act');
  if (totp !== undefined && (totp.mac === null || !barrier.verifyRecordMac(FACTOR_MAC_LABEL, factorMacBytes(totp, totp), totp.mac)))
    return unreadable('the wallet’s factor record does not match its MAC (its state was changed): refusing to act');
  return undefined;
}

/**
 * Opens a wallet for a call of `tenant`, inside the call's unit of work (rows locked). A name with
 * no row is created, owned by `tenant`, when `create` (in this unit: with the call's audit record),
 * else `wallet_not_found`. A factor row without its wallet row is `record_unreadable`.
 */
export async function openWallet(
  tx: StoreTx,
  barrier: Barrier,
  { tenant, walletName, nowMs, create }: { tenant: string; walletName: string; nowMs: number; create: boolean },
): Promise<Checked<OpenedWallet>> {
  const wallet = await tx.getWalletForUpdate(walletName);
  if (wallet === undefined) {
    if ((await tx.getTotpFactorForUpdate(walletName)) !== undefined)
      return { ok: false, error: unreadable('a factor record has no wallet record: refusing to act') };
    if (!create) return { ok: false, error: walletNotFound() };
    const created: WalletRecord = { name: walletName, tenant, createdAt: nowMs, mac: null };
    created.mac = macWallet(barrier, created, undefined);
    await tx.insertWallet(created);
    return { ok: true, value: opened(tx, barrier, created, undefined) };
  }
  // Another tenant's wallet: refused before its factor row is read (nothing of it is touched).
  if (wallet.tenant !== tenant) return { ok: false, error: walletNotFound() };
  const totp = await tx.getTotpFactorForUpdate(walletName);
  const error = checkMacs(barrier, wallet, totp);
  return error === undefined ? { ok: true, value: opened(tx, barrier, wallet, totp) } : { ok: false, error };
}

function opened(tx: StoreTx, barrier: Barrier, wallet: WalletRecord, totp: TotpFactorRecord | undefined): OpenedWallet {
  return {
    wallet,
    totp,
    async saveTotpState(state) {
      if (totp === undefined) throw new CustosError('internal', 'no factor state to save for a wallet without a factor');
      await tx.updateTotpFactorState(wallet.name, state, macTotpFactor(barrier, totp, state));
    },
  };
}

/** Checks a wallet's rows read outside a unit of work (GET /v1/wallets): as openWallet, never creating. */
export function checkWalletRows(barrier: Barrier, tenant: string, rows: WalletRows): Checked<{ wallet: WalletRecord; totp: TotpFactorRecord | undefined }> {
  if (rows.wallet === undefined)
    return { ok: false, error: rows.totp === undefined ? walletNotFound() : unreadable('a factor record has no wallet record: refusing to act') };
  if (rows.wallet.tenant !== tenant) return { ok: false, error: walletNotFound() };
  const error = checkMacs(barrier, rows.wallet, rows.totp);
  return error === undefined ? { ok: true, value: { wallet: rows.wallet, totp: rows.totp } } : { ok: false, error };
}

/** Adds the TOTP factor to an opened wallet without one: the factor row and the wallet's new MAC. */
export async function addTotpFactor(tx: StoreTx, barrier: Barrier, wallet: WalletRecord, factor: Omit<TotpFactorRecord, 'mac' | 'walletName'>): Promise<void> {
  const record: TotpFactorRecord = { ...factor, walletName: wallet.name, mac: null };
  record.mac = macTotpFactor(barrier, record, record);
  await tx.insertTotpFactor(record);
  await tx.updateWalletMac(wallet.name, macWallet(barrier, wallet, record));
}

/** The audit action of the upgrade's MAC pass (and of a new signer's record that it needs none). */
const MAC_RECORDS_ACTION = 'store.mac_records';

/**
 * The record a signer initialised with this version writes first in its log: its rows are MAC'd
 * from their creation, so the upgrade's pass must never run on it (a database writer who sets the
 * store's "not yet MAC'd" mark finds this record, and the pass is refused).
 */
export function macRecordsAtInitEntry(nowMs: number) {
  return {
    ts: nowMs,
    appId: null,
    walletName: null,
    action: MAC_RECORDS_ACTION,
    opHash: null,
    decision: 'allowed' as const,
    reason: null,
    detail: { wallets: 0, factors: 0, atInit: true },
  };
}

/**
 * The upgrade's MAC pass (rows made before schema migration 2 carry no MAC): run once, in the unit
 * of the first unseal after the upgrade, before the barrier serves any request. MACs every wallet
 * row (its tenant, `default` after the upgrade) and its factor row as they are, and appends one
 * audit record `store.mac_records` with the counts; a unit that finds the pass already claimed
 * writes nothing. Returns the audit record, or undefined when there was nothing to do.
 *
 * The store's mark is an ordinary column that a database writer can set again after tampering
 * with rows (and nulling their MACs), so the pass (a) only fills MACs that are NULL, never
 * replacing one (a row whose MAC is bad stays record_unreadable), and (b) runs only if the audit
 * log holds no `store.mac_records` record yet (a signer initialised with this version has one from
 * its init). A mark found with such a record is cleared and refused: a denied `store.mac_records`
 * record, no MAC written, and the unseal goes on (rows without a valid MAC answer
 * record_unreadable). Deleting that record to re-arm the pass means rewriting the audit chain,
 * which its signed checkpoints show.
 */
export async function macRecordsOnUpgrade(tx: StoreTx, barrier: Barrier, nowMs: number): Promise<AuditRecord | undefined> {
  if (!(await tx.claimRecordMacMigration())) return undefined;
  const entry = { ts: nowMs, appId: null, walletName: null, action: MAC_RECORDS_ACTION, opHash: null };
  if (await tx.hasAuditAction(MAC_RECORDS_ACTION))
    return tx.appendAudit({
      ...entry,
      decision: 'denied',
      reason: 'record_unreadable',
      detail: { refused: 'the store was marked for the upgrade MAC pass again, but the log shows the pass (or a signer made with MACs): no MAC written' },
    });
  let wallets = 0;
  let factors = 0;
  for (const { wallet, totp } of await tx.listWalletRows()) {
    // Only NULL MACs are filled: a MAC present (good or bad) is never replaced.
    const walletMac = wallet.mac ?? macWallet(barrier, wallet, totp);
    const totpMac = totp === undefined ? null : (totp.mac ?? macTotpFactor(barrier, totp, totp));
    if (walletMac === wallet.mac && totpMac === (totp?.mac ?? null)) continue;
    await tx.setRecordMacs(wallet.name, walletMac, totpMac);
    if (walletMac !== wallet.mac) wallets += 1;
    if (totp !== undefined && totpMac !== totp.mac) factors += 1;
  }
  return tx.appendAudit({ ...entry, decision: 'allowed', reason: null, detail: { wallets, factors } });
}
