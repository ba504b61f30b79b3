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

/** A wallet's rows with passkeys (id → counter) and, optionally, a TOTP row. */
function rowsWithPasskeys(walletName: string, passkeys: Record<string, number>, totpStep?: number | null): WalletRows {
  return {
    wallet: { name: walletName, tenant: 'default', createdAt: 0, mac: 'm' },
    totp: totpStep === undefined ? undefined : rowsWithStep(walletName, totpStep).totp,
    passkeys: Object.entries(passkeys).map(([credentialId, counter]) => ({
      walletName,
      credentialId,
      publicKey: 'k',
      counter,
      transports: [],
      rpId: 'localhost',
      enrolledVia: 'page' as const,
      createdAt: 0,
      mac: 'm',
    })),
  };
}

describe('compareFactorRows: passkeys', () => {
  const approve = (walletName: string, credentialId: string, counter: number) =>
    record('approval.approve', walletName, { approvalId: 'a', factor: 'passkey', strength: 'bound', credentialId, counter, userVerified: true });
  const consent = (credentialId: string, counter: number) => ({ consent: { factor: 'passkey', credentialId, counter, userVerified: true } });
  const log = () => {
    seq = 0;
    return [
      record('passkey.enroll', 'p', { via: 'page', credentialId: 'cred-1' }),
      approve('p', 'cred-1', 3),
      // a second passkey and a TOTP added with the first one's consent: not a second first enrolment
      record('passkey.enroll', 'p', { via: 'page', credentialId: 'cred-2', ...consent('cred-1', 4) }),
      record('totp.enroll', 'p', { via: 'page', ...consent('cred-1', 5) }),
      approve('p', 'cred-2', 1),
      record('approval.approve', 'p', { factor: 'passkey', credentialId: 'cred-2', counter: 0 }, 'denied'), // denied: not counted
    ];
  };

  it('rows that match the log: nothing to report, factors added with consent are not enrolled twice', async () => {
    const { enrolled, discrepancies } = await compareFactorRows(pagesOf(log()), async (name) => rowsWithPasskeys(name, { 'cred-1': 5, 'cred-2': 1 }, null));
    assert.equal(enrolled, 1);
    assert.deepEqual(discrepancies, []);
  });

  it('a passkey wallet whose rows were deleted, a deleted passkey row, a counter rolled back', async () => {
    const gone = await compareFactorRows(pagesOf(log()), async () => ({ wallet: undefined, totp: undefined, passkeys: [] }));
    assert.deepEqual(gone.discrepancies, [{ walletName: 'p', problem: 'no_wallet_row' }]);
    const missing = await compareFactorRows(pagesOf(log()), async (name) => rowsWithPasskeys(name, { 'cred-1': 5 }, null));
    assert.deepEqual(missing.discrepancies, [{ walletName: 'p', problem: 'no_factor_row', credentialId: 'cred-2' }]);
    const rolledBack = await compareFactorRows(pagesOf(log()), async (name) => rowsWithPasskeys(name, { 'cred-1': 3, 'cred-2': 1 }, null));
    assert.deepEqual(rolledBack.discrepancies, [{ walletName: 'p', problem: 'state_differs', credentialId: 'cred-1', expectedCounter: 5, rowCounter: 3 }]);
  });

  it('a first enrolment again without consent (the rows were deleted, a factor enrolled anew): enrolled_twice', async () => {
    const again = [...log(), record('passkey.enroll', 'p', { via: 'page', credentialId: 'cred-3' })];
    const { discrepancies } = await compareFactorRows(pagesOf(again), async (name) => rowsWithPasskeys(name, { 'cred-1': 5, 'cred-2': 1, 'cred-3': 0 }, null));
    assert.deepEqual(discrepancies, [{ walletName: 'p', problem: 'enrolled_twice' }]);
  });
});

describe('compareFactorRows: hardware keys', () => {
  const key = `02${'ab'.repeat(32)}`;
  const rows = (walletName: string, hwkeyId: string | undefined): WalletRows => ({
    wallet: { name: walletName, tenant: 'default', createdAt: 0, mac: 'm' },
    totp: undefined,
    passkeys: [],
    ...(hwkeyId === undefined
      ? {}
      : {
          hwkey: { walletName, id: hwkeyId, xpub: null, subpath: '', windowStart: 0, issued: 0, enrolledVia: 'api' as const, createdAt: 0, mac: 'm' },
        }),
  });

  it('an hwkey.enroll record needs the card’s row with that key: present is fine; gone, or another key, is no_factor_row naming the key', async () => {
    seq = 0;
    const log = [record('hwkey.enroll', 'c', { publicKey: key }), record('approval.approve', 'c', { factor: 'hwkey', publicKey: key })];
    assert.deepEqual((await compareFactorRows(pagesOf(log), async (name) => rows(name, key))).discrepancies, []);
    assert.deepEqual((await compareFactorRows(pagesOf(log), async (name) => rows(name, undefined))).discrepancies, [
      { walletName: 'c', problem: 'no_factor_row', publicKey: key },
    ]);
    assert.deepEqual((await compareFactorRows(pagesOf(log), async (name) => rows(name, `03${'cd'.repeat(32)}`))).discrepancies, [
      { walletName: 'c', problem: 'no_factor_row', publicKey: key },
    ]);
    // and a second first enrolment is enrolled_twice, as for the other factors
    const twice = [...log, record('hwkey.enroll', 'c', { publicKey: key })];
    assert.deepEqual((await compareFactorRows(pagesOf(twice), async (name) => rows(name, key))).discrepancies, [
      { walletName: 'c', problem: 'enrolled_twice' },
    ]);
  });
});

describe('compareFactorRows: timelocked changes (issue 13)', () => {
  const empty = (walletName: string): WalletRows => ({
    wallet: { name: walletName, tenant: 'default', createdAt: 0, mac: 'm' },
    totp: undefined,
    passkeys: [],
  });

  it('a factor enrolled through a pending change exists from its change.apply on; a removal and 2FA off are followed', async () => {
    seq = 0;
    const pending = [record('totp.enroll', 't'), record('hwkey.enroll', 't', { publicKey: 'pk1', changeId: 'c1', consent: { factor: 'totp' } })];
    // Not applied yet: no card row is expected.
    assert.deepEqual((await compareFactorRows(pagesOf(pending), async (name) => rowsWithStep(name, null))).discrepancies, []);
    // Applied: the card row is expected, and missing.
    const applied = [...pending, record('change.apply', 't', { changeId: 'c1', kind: 'factor.add', result: { added: { kind: 'hwkey', id: 'pk1' } } })];
    assert.deepEqual((await compareFactorRows(pagesOf(applied), async (name) => rowsWithStep(name, null))).discrepancies, [
      { walletName: 't', problem: 'no_factor_row', publicKey: 'pk1' },
    ]);
    // 2FA off: no row is expected, and a new first enrolment is not "enrolled twice".
    const off = [
      record('totp.enroll', 'o'),
      record('change.apply', 'o', { changeId: 'c2', kind: '2fa.disable', result: { removed: [{ kind: 'totp', id: 'totp' }] } }),
    ];
    assert.deepEqual((await compareFactorRows(pagesOf(off), async (name) => empty(name))).discrepancies, []);
    const again = [...off, record('totp.enroll', 'o')];
    assert.deepEqual((await compareFactorRows(pagesOf(again), async (name) => rowsWithStep(name, null))).discrepancies, []);
  });
});

describe('compareFactorRows: recovery codes', () => {
  const codesRow = (walletName: string, createdAt: number, used: number, count = 10) => ({
    walletName,
    codes: JSON.stringify(Array.from({ length: count }, (_, i) => ({ tag: `t${i}`, usedAt: i < used ? 1 : null }))),
    failures: 0,
    windowStart: createdAt,
    createdAt,
    mac: 'm',
  });

  it('the row the log issued, with as many unused codes as its last use left: nothing to report', async () => {
    seq = 0;
    const log = [
      record('oob.enroll', 'r', { recoveryCodes: 10 }),
      record('recovery_code.use', 'r', { purpose: 'change.cancel', remaining: 9 }),
      record('recovery_code.use', 'r', { purpose: 'change.cancel', failures: 1 }, 'denied'),
    ];
    const result = await compareFactorRows(
      pagesOf(log),
      async (name) => rowsWithStep(name, null),
      async (name) => codesRow(name, 1, 1),
    );
    assert.deepEqual(result.discrepancies, []);
  });

  it('a deleted row, a row rolled back to before a use, another set put back: each reported', async () => {
    seq = 0;
    const log = [record('oob.enroll', 'r', { recoveryCodes: 10 }), record('recovery_code.use', 'r', { purpose: 'change.cancel', remaining: 9 })];
    const rows = async (name: string) => rowsWithStep(name, null);
    assert.deepEqual((await compareFactorRows(pagesOf(log), rows, async () => undefined)).discrepancies, [{ walletName: 'r', problem: 'no_recovery_row' }]);
    // the used code marked unused again (the row as it was before the use, its MAC valid then)
    assert.deepEqual((await compareFactorRows(pagesOf(log), rows, async (name) => codesRow(name, 1, 0))).discrepancies, [
      { walletName: 'r', problem: 'recovery_codes_differ', expectedUnused: 9, rowUnused: 10 },
    ]);
    // an older set (another issue time) with as many unused codes
    assert.deepEqual((await compareFactorRows(pagesOf(log), rows, async (name) => codesRow(name, 0, 1))).discrepancies, [
      { walletName: 'r', problem: 'recovery_codes_differ', expectedUnused: 9, rowUnused: null },
    ]);
    // without the reader (older callers) recovery rows are not checked
    assert.deepEqual((await compareFactorRows(pagesOf(log), rows)).discrepancies, []);
  });
});

describe('compareFactorRows: TOTP steps a change spends', () => {
  it('a change.confirm (or cancel) with a TOTP code moves the expected step; replayed, it is step_replayed', async () => {
    seq = 0;
    const log = [
      record('totp.enroll', 'c'),
      record('sign.hash', 'c', { totpStep: 9 }),
      record('change.confirm', 'c', { consent: { factor: 'totp', totpStep: 10 } }),
    ];
    assert.deepEqual((await compareFactorRows(pagesOf(log), async (name) => rowsWithStep(name, 10))).discrepancies, []);
    assert.deepEqual((await compareFactorRows(pagesOf(log), async (name) => rowsWithStep(name, 9))).discrepancies, [
      { walletName: 'c', problem: 'state_differs', expectedStep: 10, rowStep: 9 },
    ]);
    const replayed = [...log, record('change.cancel', 'c', { consent: { factor: 'totp', totpStep: 10 } })];
    assert.deepEqual((await compareFactorRows(pagesOf(replayed), async (name) => rowsWithStep(name, 10))).discrepancies, [
      { walletName: 'c', problem: 'step_replayed', seq: 4, step: 10 },
    ]);
  });
});
