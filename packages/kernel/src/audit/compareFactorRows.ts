import type { WalletRows } from '../store/types.js';
import type { AuditRecord } from './types.js';

/** What `custos audit verify --factors` found wrong with one wallet the audit log shows enrolled. */
export interface FactorDiscrepancy {
  walletName: string;
  /**
   * `no_wallet_row`: the log shows an enrolment, the wallet row is gone (deleted: the wallet would
   * sign without a code where unknown wallets are allowed). `no_factor_row`: the wallet row is
   * there, its factor row is not. `enrolled_twice`: the log shows more than one allowed enrolment
   * of the wallet (an enrolment is refused while a factor exists: its rows were deleted between).
   * `state_differs`: the factor row's last accepted step is not the step of the last signature the
   * log allowed with it (a reset or rolled-back row: a used code would be accepted again).
   * `step_replayed`: an allowed signature whose `totpStep` is not above that of the wallet's
   * previous allowed signature (since its enrolment): a used code was accepted again, so the factor
   * row had been put back as it was earlier (its then-valid MAC included) — which the kernel cannot
   * see online. `seq` is that signature's audit record.
   */
  problem: 'no_wallet_row' | 'no_factor_row' | 'enrolled_twice' | 'state_differs' | 'step_replayed';
  /** For state_differs: the last accepted step per the log and per the row. */
  expectedStep?: number | null;
  rowStep?: number | null;
  /** For step_replayed: the audit record of the signature, and its step. */
  seq?: number;
  step?: number;
}

/**
 * Compares the factor rows with the audit log, without any key: every wallet with an allowed
 * `totp.enroll` record must still have its wallet row and its TOTP factor row, have been enrolled
 * once, and its row's last accepted step must be the `totpStep` of the last allowed signature of
 * that wallet (each accepted step is written in the same transaction as that record), and the
 * steps of its allowed signatures must strictly increase in log order (else a used code was
 * accepted again: `step_replayed`). This is
 * what the rows' MACs cannot show online: a wallet whose rows were all deleted, and a row put back
 * as it was earlier. What it cannot show: a tampered log (see the audit chain and its checkpoints).
 */
export async function compareFactorRows(
  pages: AsyncIterable<AuditRecord[]>,
  readWalletRows: (walletName: string) => Promise<WalletRows>,
): Promise<{ enrolled: number; discrepancies: FactorDiscrepancy[] }> {
  const wallets = new Map<string, { enrolments: number; lastStep: number | null; replays: FactorDiscrepancy[] }>();
  for await (const page of pages) {
    for (const record of page) {
      if (record.decision !== 'allowed' || record.walletName === null) continue;
      if (record.action === 'totp.enroll') {
        const seen = wallets.get(record.walletName);
        // A new enrolment is a new secret: its steps start afresh.
        wallets.set(record.walletName, { enrolments: (seen?.enrolments ?? 0) + 1, lastStep: null, replays: seen?.replays ?? [] });
        continue;
      }
      const step = record.detail.totpStep;
      const wallet = wallets.get(record.walletName);
      if (wallet === undefined || !record.action.startsWith('sign.') || typeof step !== 'number') continue;
      if (wallet.lastStep !== null && step <= wallet.lastStep)
        wallet.replays.push({ walletName: record.walletName, problem: 'step_replayed', seq: record.seq, step });
      wallet.lastStep = Math.max(step, wallet.lastStep ?? step);
    }
  }
  const discrepancies: FactorDiscrepancy[] = [];
  for (const [walletName, logged] of wallets) {
    if (logged.enrolments > 1) discrepancies.push({ walletName, problem: 'enrolled_twice' });
    discrepancies.push(...logged.replays);
    const rows = await readWalletRows(walletName);
    if (rows.wallet === undefined) discrepancies.push({ walletName, problem: 'no_wallet_row' });
    else if (rows.totp === undefined) discrepancies.push({ walletName, problem: 'no_factor_row' });
    else if (rows.totp.lastAcceptedStep !== logged.lastStep)
      discrepancies.push({ walletName, problem: 'state_differs', expectedStep: logged.lastStep, rowStep: rows.totp.lastAcceptedStep });
  }
  return { enrolled: wallets.size, discrepancies };
}
