import type { RecoveryCodesRecord, WalletRows } from '../store/types.js';
import type { AuditRecord } from './types.js';

/** What `custos audit verify --factors` found wrong with one wallet the audit log shows enrolled. */
export interface FactorDiscrepancy {
  walletName: string;
  /**
   * `no_wallet_row`: the log shows an enrolment, the wallet row is gone (deleted: the wallet would
   * sign without consent where unknown wallets are allowed). `no_factor_row`: the wallet row is
   * there, a factor row the log shows enrolled is not (`credentialId` names a passkey's).
   * `enrolled_twice`: the log shows more than one allowed first enrolment of the wallet (one without
   * the consent of a factor it had: refused while a factor exists, so its rows were deleted
   * between). `state_differs`: the TOTP row's last accepted step is not the step of the last
   * signature the log allowed with it (a reset or rolled-back row: a used code would be accepted
   * again), or a passkey row's counter is not the last one the log accepted (`credentialId`,
   * `expectedCounter`, `rowCounter`: a rolled-back counter lets a cloned authenticator through).
   * `step_replayed`: an allowed signature whose `totpStep` is not above that of the wallet's
   * previous allowed signature (since its enrolment): a used code was accepted again, so the factor
   * row had been put back as it was earlier (its then-valid MAC included) — which the kernel cannot
   * see online. `seq` is that signature's audit record.
   * `no_recovery_row`: the log shows recovery codes issued (an enrolment's `detail.recoveryCodes`),
   * the row is gone. `recovery_codes_differ`: the row is not the set the log issued last
   * (`createdAt` is not that record's time) or holds another number of unused codes than the log's
   * last `recovery_code.use` left (`expectedUnused`, `rowUnused`): a row put back as it was before a
   * code was used makes that code work again — which its MAC, valid then, cannot show online.
   */
  problem: 'no_wallet_row' | 'no_factor_row' | 'enrolled_twice' | 'state_differs' | 'step_replayed' | 'no_recovery_row' | 'recovery_codes_differ';
  /** For recovery_codes_differ: the unused codes per the log and per the row (null: a row that does not parse, or another set). */
  expectedUnused?: number;
  rowUnused?: number | null;
  /** For state_differs of a TOTP row: the last accepted step per the log and per the row. */
  expectedStep?: number | null;
  rowStep?: number | null;
  /** For a passkey's no_factor_row or state_differs: which passkey, and (state_differs) its counter per the log and per the row. */
  credentialId?: string;
  /** For a hardware key's no_factor_row: the public key the log shows enrolled (its row is gone, or holds another key). */
  publicKey?: string;
  expectedCounter?: number;
  rowCounter?: number;
  /** For step_replayed: the audit record of the signature, and its step. */
  seq?: number;
  step?: number;
}

/** What the log says of one wallet's factors. */
interface Logged {
  /** Allowed enrolments without the consent of a factor the wallet had (its first factor). */
  firstEnrolments: number;
  totp: boolean;
  lastStep: number | null;
  replays: FactorDiscrepancy[];
  /** The passkeys enrolled, each with the last counter the log shows accepted (null: none yet). */
  passkeys: Map<string, number | null>;
  /** The hardware key enrolled (its public key), if any. */
  hwkey?: string;
}

/** The credential id and counter of a passkey's evidence in a record's detail, if it is one. */
function passkeyEvidence(evidence: unknown): { credentialId: string; counter: number } | undefined {
  if (typeof evidence !== 'object' || evidence === null) return undefined;
  const { factor, credentialId, counter } = evidence as Record<string, unknown>;
  return factor === 'passkey' && typeof credentialId === 'string' && typeof counter === 'number' ? { credentialId, counter } : undefined;
}

/**
 * Compares the factor rows with the audit log, without any key: every wallet with an allowed
 * `totp.enroll`, `passkey.enroll` or `hwkey.enroll` record must still have its wallet row and each factor row the
 * log shows enrolled, and have been enrolled first once (a later factor is added with the consent
 * of one it had: `detail.consent`). A TOTP row's last accepted step must be the `totpStep` of the
 * last allowed signature of that wallet (each accepted step is written in the same transaction as
 * that record), and the steps of its allowed signatures must strictly increase in log order (else a
 * used code was accepted again: `step_replayed`). A passkey row's counter must be the last one the
 * log shows accepted for it (an approval's or a consent's evidence). This is what the rows' MACs
 * cannot show online: a wallet whose rows were all deleted, and a row put back as it was earlier.
 * With `readRecoveryCodes`, the same of each wallet's recovery codes row (no_recovery_row,
 * recovery_codes_differ).
 * What it cannot show: a tampered log (see the audit chain and its checkpoints).
 */
export async function compareFactorRows(
  pages: AsyncIterable<AuditRecord[]>,
  readWalletRows: (walletName: string) => Promise<WalletRows>,
  readRecoveryCodes?: (walletName: string) => Promise<RecoveryCodesRecord | undefined>,
): Promise<{ enrolled: number; discrepancies: FactorDiscrepancy[] }> {
  const wallets = new Map<string, Logged>();
  /** Per wallet, the recovery codes the log shows: the last set issued (its time) and its unused codes after the last use. */
  const recovery = new Map<string, { issuedAt: number; unused: number }>();
  /** Enrolments that wait out the timelock (issue 13): the factor exists from its `change.apply` on. */
  const timelocked = new Map<string, AuditRecord>();
  for await (const page of pages) {
    for (const record of page) {
      if (record.decision !== 'allowed' || record.walletName === null) continue;
      // Recovery codes (recoveryCodes.ts): issued with a first enrolment (`detail.recoveryCodes`, how many), used one by one.
      if (typeof record.detail.recoveryCodes === 'number') recovery.set(record.walletName, { issuedAt: record.ts, unused: record.detail.recoveryCodes });
      const codes = recovery.get(record.walletName);
      if (record.action === 'recovery_code.use' && codes !== undefined && typeof record.detail.remaining === 'number') codes.unused = record.detail.remaining;
      const consent = passkeyEvidence(record.detail.consent);
      let enrolment: AuditRecord | undefined;
      if (record.action === 'change.apply') {
        const result = record.detail.result as { removed?: Array<{ kind?: unknown; id?: unknown }> } | undefined;
        const wallet = wallets.get(record.walletName);
        for (const removed of result?.removed ?? []) {
          if (wallet === undefined) break;
          if (removed.kind === 'totp') wallet.totp = false;
          if (removed.kind === 'hwkey') delete wallet.hwkey;
          if (removed.kind === 'passkey' && typeof removed.id === 'string') wallet.passkeys.delete(removed.id);
        }
        // 2FA turned off: the wallet has no factor, so its next one is a first enrolment again.
        if (wallet !== undefined && record.detail.kind === '2fa.disable') wallet.firstEnrolments = 0;
        enrolment = typeof record.detail.changeId === 'string' ? timelocked.get(record.detail.changeId) : undefined;
        if (enrolment === undefined) continue;
      } else if (
        (record.action === 'totp.enroll' || record.action === 'passkey.enroll' || record.action === 'hwkey.enroll') &&
        typeof record.detail.changeId === 'string'
      ) {
        // Consented now, added when applied: its consent's counter counts now, the factor later.
        timelocked.set(record.detail.changeId, record);
        const wallet = wallets.get(record.walletName);
        if (consent !== undefined && wallet?.passkeys.has(consent.credentialId)) wallet.passkeys.set(consent.credentialId, consent.counter);
        continue;
      }
      const walletName = record.walletName;
      if (enrolment !== undefined || record.action === 'totp.enroll' || record.action === 'passkey.enroll' || record.action === 'hwkey.enroll') {
        const wallet: Logged = wallets.get(walletName) ?? { firstEnrolments: 0, totp: false, lastStep: null, replays: [], passkeys: new Map() };
        wallets.set(walletName, wallet);
        if (enrolment === undefined && consent !== undefined && wallet.passkeys.has(consent.credentialId))
          wallet.passkeys.set(consent.credentialId, consent.counter);
        const entry = enrolment ?? record;
        if (entry.detail.consent === undefined) wallet.firstEnrolments += 1;
        if (entry.action === 'totp.enroll') {
          // A new enrolment is a new secret: its steps start afresh (from the step its first code
          // spent, on the enrolment page).
          wallet.totp = true;
          wallet.lastStep = typeof entry.detail.totpStep === 'number' ? entry.detail.totpStep : null;
        } else if (entry.action === 'hwkey.enroll') {
          if (typeof entry.detail.publicKey === 'string') wallet.hwkey = entry.detail.publicKey;
        } else if (typeof entry.detail.credentialId === 'string') wallet.passkeys.set(entry.detail.credentialId, null);
        continue;
      }
      const wallet = wallets.get(record.walletName);
      if (wallet === undefined) continue;
      const approved = record.action === 'approval.approve' ? passkeyEvidence(record.detail) : undefined;
      if (approved !== undefined && wallet.passkeys.has(approved.credentialId)) {
        wallet.passkeys.set(approved.credentialId, approved.counter);
        continue;
      }
      // A TOTP step is spent by a signature (`totpStep`) and by a change's confirm or cancel (its consent's evidence).
      const consented = record.detail.consent as { factor?: unknown; totpStep?: unknown } | undefined;
      const step = record.action.startsWith('sign.')
        ? record.detail.totpStep
        : record.action.startsWith('change.') && consented?.factor === 'totp'
          ? consented.totpStep
          : undefined;
      if (!wallet.totp || typeof step !== 'number') continue;
      if (wallet.lastStep !== null && step <= wallet.lastStep)
        wallet.replays.push({ walletName: record.walletName, problem: 'step_replayed', seq: record.seq, step });
      wallet.lastStep = Math.max(step, wallet.lastStep ?? step);
    }
  }
  const discrepancies: FactorDiscrepancy[] = [];
  for (const [walletName, logged] of wallets) {
    if (logged.firstEnrolments > 1) discrepancies.push({ walletName, problem: 'enrolled_twice' });
    discrepancies.push(...logged.replays);
    const rows = await readWalletRows(walletName);
    if (rows.wallet === undefined) {
      discrepancies.push({ walletName, problem: 'no_wallet_row' });
      continue;
    }
    if (logged.totp) {
      if (rows.totp === undefined) discrepancies.push({ walletName, problem: 'no_factor_row' });
      else if (rows.totp.lastAcceptedStep !== logged.lastStep)
        discrepancies.push({ walletName, problem: 'state_differs', expectedStep: logged.lastStep, rowStep: rows.totp.lastAcceptedStep });
    }
    // A hardware key's row must hold the key the log shows enrolled (its challenge count is not in the log).
    if (logged.hwkey !== undefined && rows.hwkey?.id !== logged.hwkey) discrepancies.push({ walletName, problem: 'no_factor_row', publicKey: logged.hwkey });
    for (const [credentialId, counter] of logged.passkeys) {
      const row = rows.passkeys.find((p) => p.credentialId === credentialId);
      if (row === undefined) discrepancies.push({ walletName, problem: 'no_factor_row', credentialId });
      else if (counter !== null && row.counter !== counter)
        discrepancies.push({ walletName, problem: 'state_differs', credentialId, expectedCounter: counter, rowCounter: row.counter });
    }
  }
  if (readRecoveryCodes !== undefined)
    for (const [walletName, logged] of recovery) {
      const row = await readRecoveryCodes(walletName);
      if (row === undefined) {
        discrepancies.push({ walletName, problem: 'no_recovery_row' });
        continue;
      }
      const rowUnused = row.createdAt === logged.issuedAt ? unusedCodes(row.codes) : null;
      if (rowUnused !== logged.unused) discrepancies.push({ walletName, problem: 'recovery_codes_differ', expectedUnused: logged.unused, rowUnused });
    }
  return { enrolled: wallets.size, discrepancies };
}

/** The unused codes of a recovery codes row's JSON (null when it is not a list of `{ usedAt }` entries). */
function unusedCodes(text: string): number | null {
  try {
    const parsed = JSON.parse(text) as unknown;
    if (!Array.isArray(parsed)) return null;
    return parsed.filter((c) => typeof c === 'object' && c !== null && (c as { usedAt?: unknown }).usedAt === null).length;
  } catch {
    return null;
  }
}
