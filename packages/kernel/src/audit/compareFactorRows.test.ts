import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { WalletRows } from '../store/types.js';
import { compareFactorRows } from './compareFactorRows.js';
import type { AuditRecord } from './types.js';

let seq = 0;
function record(action: string, walletName: string, detail: Record<string, unknown> = {}, decision: 'allowed' | 'denied' = 'allowed'): AuditRecord {
  seq += 1;
  return { seq, ts: seq, appId: 'app', walletName, action, opHash: null, decision, reason: null, detail, prevHash: '', hash: '' };
}

async function* pagesOf(records: AuditRecord[]): AsyncIterable<AuditRecord[]> {
  yield records;
}

function rowsWithStep(walletName: string, lastAcceptedStep: number | null): WalletRows {
  return {
    wallet: { name: walletName, tenant: 'default', createdAt: 0, mac: 'm' },
    totp: { walletName, enrolledVia: 'api', secretEnvelope: 'e', lastAcceptedStep, failures: 0, lockedUntilMs: null, createdAt: 0, mac: 'm' },
    passkeys: [],
  };
}

describe('compareFactorRows: step_replayed', () => {
  it('reports each allowed signature whose totpStep is not above the previous one (the row matches the log at the end)', async () => {
    seq = 0;
    const log = [
      record('totp.enroll', 'w'),
      record('sign.hash', 'w', { totpStep: 100 }),
      record('sign.hash', 'w', { totpStep: 100 }), // the same step again: a restored row
      record('sign.hash', 'w', { totpStep: 101 }),
      record('sign.hash', 'w', { totpStep: 99 }, 'denied'), // denied records do not count
      record('sign.hash', 'w', { totpStep: 101 }),
    ];
    const { discrepancies } = await compareFactorRows(pagesOf(log), async (name) => rowsWithStep(name, 101));
    assert.deepEqual(discrepancies, [
      { walletName: 'w', problem: 'step_replayed', seq: 3, step: 100 },
      { walletName: 'w', problem: 'step_replayed', seq: 6, step: 101 },
    ]);
  });

  it('strictly increasing steps, and steps that start afresh after a new enrolment, are not replays', async () => {
    seq = 0;
    const log = [record('totp.enroll', 'v'), record('sign.hash', 'v', { totpStep: 5 }), record('sign.hash', 'v', { totpStep: 7 })];
    assert.deepEqual((await compareFactorRows(pagesOf(log), async (name) => rowsWithStep(name, 7))).discrepancies, []);
    seq = 0;
    const again = [
      record('totp.enroll', 'u'),
      record('sign.hash', 'u', { totpStep: 9 }),
      record('totp.enroll', 'u'),
      record('sign.hash', 'u', { totpStep: 9 }),
    ];
    assert.deepEqual((await compareFactorRows(pagesOf(again), async (name) => rowsWithStep(name, 9))).discrepancies, [
      { walletName: 'u', problem: 'enrolled_twice' },
    ]);
  });
});
