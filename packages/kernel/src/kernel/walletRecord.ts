import { walletInReach } from './apiKeyLimits.js';
import type { AuditRecord } from '../audit/types.js';
import type { Barrier } from '../barrier/Barrier.js';
import { CustosError } from '../errors.js';
import { type EnrolledFactor, macFactorRecord, verifyFactorRecords } from '../consent/consent.js';
import type { Factor, FactorRecord } from '../consent/Factor.js';
import { totpRecordOf } from '../consent/totpFactor.js';
import type { StoreTx, WalletRecord, WalletRows } from '../store/types.js';
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

/** The MAC label of wallet rows (domain separation under the one record MAC key). */
const WALLET_MAC_LABEL = 'custos.wallet.v1';

/** A wallet's rows after their checks: owned by the caller's tenant, MACs valid, with its enrolled factors. */
export interface OpenedWallet {
  wallet: WalletRecord;
  /** Its factor rows of every registered kind, in the registry's order (the consent module's input). */
  enrolled: EnrolledFactor[];
}

type Checked<T> = { ok: true; value: T } | { ok: false; error: CustosError };

const encoder = new TextEncoder();

/** The fields of a wallet row its MAC covers (kernel/freeze.ts: `frozenAt` while the wallet is frozen). */
export type WalletMacFields = { tenant: string; name: string; frozenAt?: number | null | undefined };

/**
 * The MAC of a wallet row: its tenant, name and the list of its factors (kind, id, version), and
 * — only while the wallet is frozen — when it was frozen, so that a row unfrozen in the database
 * (frozen_at set back to NULL) fails its MAC, while rows of wallets never frozen keep the MACs
 * they had before freezing existed.
 */
export function macWallet(barrier: Barrier, wallet: WalletMacFields, factors: readonly FactorRecord<object>[]): string {
  return barrier.macRecord(WALLET_MAC_LABEL, walletMacBytes(wallet, factors));
}

function walletMacBytes(wallet: WalletMacFields, factors: readonly FactorRecord<object>[]): Uint8Array {
  const list = factors
    .map(({ kind, id, version }) => ({ kind, id, version }))
    .sort((a, b) => (a.kind === b.kind ? (a.id < b.id ? -1 : a.id > b.id ? 1 : 0) : a.kind < b.kind ? -1 : 1));
  const frozen = typeof wallet.frozenAt === 'number' ? { frozenAt: wallet.frozenAt } : {};
  return encoder.encode(canonicalJson({ tenant: wallet.tenant, name: wallet.name, factors: list, ...frozen }));
}

function walletNotFound(): CustosError {
  return new CustosError('wallet_not_found', 'no wallet of that name is known to the signer', { details: { field: 'walletName' } });
}

function unreadable(message: string): CustosError {
  return new CustosError('record_unreadable', message, { details: { field: 'walletName' } });
}

/**
 * The MAC checks of a wallet's rows (the caller checked the tenant first, so that another tenant's
 * factor row is never read): the wallet's MAC over the factor rows present, then each factor's MAC
 * (the consent module's check); any mismatch (or a row without a MAC) is `record_unreadable`.
 */
function checkMacs(barrier: Barrier, wallet: WalletRecord, factors: readonly FactorRecord<object>[]): CustosError | undefined {
  if (wallet.mac === null || !barrier.verifyRecordMac(WALLET_MAC_LABEL, walletMacBytes(wallet, factors), wallet.mac))
    return unreadable('the wallet record does not match its MAC (its owner or its list of factors was changed): refusing to act');
  return verifyFactorRecords(barrier, factors);
}

/**
 * Opens a wallet for a call of `tenant`, inside the call's unit of work (rows locked). A name with
 * no row is created, owned by `tenant`, when `create` (in this unit: with the call's audit record),
 * else `wallet_not_found`. A factor row without its wallet row is `record_unreadable`.
 */
export async function openWallet(
  tx: StoreTx,
  barrier: Barrier,
  factors: readonly Factor[],
  {
    tenant,
    walletPrefix,
    walletName,
    nowMs,
    create,
  }: { tenant: string; walletPrefix?: string | null | undefined; walletName: string; nowMs: number; create: boolean },
): Promise<Checked<OpenedWallet>> {
  // A wallet out of the API key's reach (its wallet prefix, apiKeyLimits.ts) is as unknown as another
  // tenant's: refused before any row is read, and never created.
  if (!walletInReach({ tenant, walletPrefix }, { tenant, walletName })) return { ok: false, error: walletNotFound() };
  const wallet = await tx.getWalletForUpdate(walletName);
  if (wallet === undefined) {
    if ((await readEnrolled(tx, factors, walletName)).length > 0)
      return { ok: false, error: unreadable('a factor record has no wallet record: refusing to act') };
    if (!create) return { ok: false, error: walletNotFound() };
    const created: WalletRecord = { name: walletName, tenant, createdAt: nowMs, mac: null };
    created.mac = macWallet(barrier, created, []);
    await tx.insertWallet(created);
    return { ok: true, value: { wallet: created, enrolled: [] } };
  }
  // Another tenant's wallet: refused before its factor rows are read (nothing of it is touched).
  if (wallet.tenant !== tenant) return { ok: false, error: walletNotFound() };
  const enrolled = await readEnrolled(tx, factors, walletName);
  const error = checkMacs(
    barrier,
    wallet,
    enrolled.map((e) => e.record),
  );
  return error === undefined ? { ok: true, value: { wallet, enrolled } } : { ok: false, error };
}

async function readEnrolled(tx: StoreTx, factors: readonly Factor[], walletName: string): Promise<EnrolledFactor[]> {
  const enrolled: EnrolledFactor[] = [];
  for (const factor of factors) for (const record of await factor.rows.read(tx, walletName)) enrolled.push({ factor, record });
  return enrolled;
}

/** Checks a wallet's rows read outside a unit of work (GET /v1/wallets): as openWallet, never creating. Returns the kinds enrolled. */
export function checkWalletRows(
  barrier: Barrier,
  factors: readonly Factor[],
  { tenant, walletPrefix, walletName }: { tenant: string; walletPrefix?: string | null | undefined; walletName: string },
  rows: WalletRows,
): Checked<{ wallet: WalletRecord; kinds: string[]; enrolled: EnrolledFactor[] }> {
  if (!walletInReach({ tenant, walletPrefix }, { tenant, walletName })) return { ok: false, error: walletNotFound() };
  const enrolled = factors.flatMap((factor) => factor.rows.fromWalletRows(rows, walletName).map((record) => ({ factor, record })));
  const records = enrolled.map((e) => e.record);
  if (rows.wallet === undefined)
    return { ok: false, error: records.length === 0 ? walletNotFound() : unreadable('a factor record has no wallet record: refusing to act') };
  if (rows.wallet.tenant !== tenant) return { ok: false, error: walletNotFound() };
  const error = checkMacs(barrier, rows.wallet, records);
  return error === undefined ? { ok: true, value: { wallet: rows.wallet, kinds: records.map((r) => r.kind), enrolled } } : { ok: false, error };
}

/** Adds a factor to an opened wallet: the factor row (made by the consent module) and the wallet's new MAC. */
export async function addFactor(tx: StoreTx, barrier: Barrier, wallet: OpenedWallet, factor: Factor, record: FactorRecord<object>): Promise<void> {
  await factor.rows.insert(tx, record);
  await tx.updateWalletMac(wallet.wallet.name, macWallet(barrier, wallet.wallet, [...wallet.enrolled.map((e) => e.record), record]));
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
    const factor = totp === undefined ? undefined : totpRecordOf(totp);
    const walletMac = wallet.mac ?? macWallet(barrier, wallet, factor === undefined ? [] : [factor]);
    const totpMac = factor === undefined ? null : (factor.mac ?? macFactorRecord(barrier, factor));
    if (walletMac === wallet.mac && totpMac === (totp?.mac ?? null)) continue;
    await tx.setRecordMacs(wallet.name, walletMac, totpMac);
    if (walletMac !== wallet.mac) wallets += 1;
    if (totp !== undefined && totpMac !== totp.mac) factors += 1;
  }
  return tx.appendAudit({ ...entry, decision: 'allowed', reason: null, detail: { wallets, factors } });
}
