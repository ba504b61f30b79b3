import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { Barrier } from '../barrier/Barrier.js';
import { CustosError } from '../errors.js';
import type { StoreTx } from '../store/types.js';
import { canonicalJson } from '../util/canonicalJson.js';
import { ConsentRefused, decideConsent, type EnrolledFactor, macFactorRecord, newFactorRecord, verifyFactorRecords } from './consent.js';
import type { Factor, FactorRecord, FactorRows, Strength } from './Factor.js';

/**
 * The consent module against stand-in factors (no store: their rows record what was saved). What
 * it owns: which factor decides, that a charged refusal is saved (with its MAC) before the denial,
 * that what a factor opened is wiped, and that a seal during the unit is not a refusal.
 */

type State = { tries: number };

function newBarrier(): Barrier {
  return new Barrier({ barrierKey: new Uint8Array(randomBytes(32)), master: { kind: 'seed', seed: new Uint8Array(randomBytes(64)) } }, 'custos-v1');
}

/** Rows that keep what the consent module saved, in order. */
function recordingRows(): FactorRows<State> & { saved: Array<{ state: State; mac: string }> } {
  const saved: Array<{ state: State; mac: string }> = [];
  return {
    saved,
    stored: ({ tries }) => ({ tries }),
    read: async () => [],
    fromWalletRows: () => [],
    insert: async () => undefined,
    saveState: async (_tx, _record, state, mac) => {
      saved.push({ state, mac });
    },
  };
}

/** A stand-in factor: `verify` runs `behaviour` with the opened secret. */
function standIn(
  kind: string,
  strength: Strength,
  rows: FactorRows<State>,
  behaviour: (secret: Uint8Array, state: State) => ReturnType<Factor<State>['verify']>,
): Factor<State, null, null> {
  return {
    kind,
    strength,
    label: kind,
    rows,
    enroll: { begin: async () => ({ secret: null, shown: null, pending: null }), finish: () => ({ id: kind, state: { tries: 0 } }) },
    verify: ({ wallet }) => behaviour(wallet.openSecret(), wallet.factor.state),
  };
}

function enrolledWith(barrier: Barrier, factor: Factor<State, null, null>): EnrolledFactor {
  const record = newFactorRecord(barrier, factor, {
    walletName: 'w',
    id: factor.kind,
    secret: new Uint8Array(32).fill(9),
    state: { tries: 0 },
    enrolledVia: 'api',
    now: 1,
    random: (n) => new Uint8Array(randomBytes(n)),
  });
  return { factor, record };
}

const tx = {} as StoreTx;
const base = { tenant: 'default', opHash: 'ab'.repeat(32), now: 1_000 };

describe('the consent module', () => {
  it('a charged refusal is saved, with the MAC over the saved state, before ConsentRefused names the factor', async () => {
    const barrier = newBarrier();
    const rows = recordingRows();
    const factor = standIn('stand-in', 'present', rows, (_secret, state) => {
      throw new CustosError('code_invalid', 'wrong', { stateChange: { tries: state.tries + 1, ignored: true } as State });
    });
    const enrolled = enrolledWith(barrier, factor);
    await assert.rejects(
      decideConsent(tx, barrier, { ...base, enrolled: [enrolled], required: 'present', proof: 'x' }),
      (error: unknown) => error instanceof ConsentRefused && error.error.code === 'code_invalid' && error.factor === 'stand-in',
    );
    assert.deepEqual(
      rows.saved.map((s) => s.state),
      [{ tries: 1 }],
      'the state as the rows store it (the stray field dropped)',
    );
    const savedRecord: FactorRecord<object> = { ...enrolled.record, state: { tries: 1 }, mac: rows.saved[0]?.mac ?? null };
    assert.equal(verifyFactorRecords(barrier, [savedRecord]), undefined, 'the saved MAC checks against the saved state');
  });

  it('every secret a factor opened is wiped when it returns', async () => {
    const barrier = newBarrier();
    const seen: Uint8Array[] = [];
    const factor = standIn('stand-in', 'present', recordingRows(), (secret) => {
      seen.push(secret);
      assert.ok(
        secret.some((byte) => byte !== 0),
        'the factor sees the secret',
      );
      return { evidence: { factor: 'stand-in' } };
    });
    const evidence = await decideConsent(tx, barrier, { ...base, enrolled: [enrolledWith(barrier, factor)], required: 'present', proof: 'x' });
    assert.deepEqual(evidence, { factor: 'stand-in' });
    assert.equal(seen.length, 1);
    assert.ok(seen[0]?.every((byte) => byte === 0));
  });

  it('a seal during the unit (the barrier wiped) is not a refusal: `sealed` fails the unit, nothing is saved', async () => {
    const barrier = newBarrier();
    const rows = recordingRows();
    const factor = standIn('stand-in', 'present', rows, () => ({ evidence: {} }));
    const enrolled = enrolledWith(barrier, factor);
    barrier.wipe();
    await assert.rejects(
      decideConsent(tx, barrier, { ...base, enrolled: [enrolled], required: 'present', proof: 'x' }),
      (error: unknown) => error instanceof CustosError && error.code === 'sealed',
    );
    assert.equal(rows.saved.length, 0);
  });

  it('the proof goes to the factor it names; a factor too weak for the requirement never sees it', async () => {
    const barrier = newBarrier();
    const calls: string[] = [];
    const weak = standIn('weak', 'present', recordingRows(), () => {
      calls.push('weak');
      return { evidence: { factor: 'weak' } };
    });
    const strong = standIn('strong', 'bound', recordingRows(), () => {
      calls.push('strong');
      return { evidence: { factor: 'strong' } };
    });
    const enrolled = [enrolledWith(barrier, weak), enrolledWith(barrier, strong)];
    assert.deepEqual(await decideConsent(tx, barrier, { ...base, enrolled, required: 'present', proof: 'x' }), { factor: 'weak' });
    assert.deepEqual(await decideConsent(tx, barrier, { ...base, enrolled, required: 'present', proof: 'x', proofKind: 'strong' }), { factor: 'strong' });
    assert.deepEqual(await decideConsent(tx, barrier, { ...base, enrolled, required: 'bound', proof: 'x' }), { factor: 'strong' });
    await assert.rejects(
      decideConsent(tx, barrier, { ...base, enrolled, required: 'bound', proof: 'x', proofKind: 'weak' }),
      (error: unknown) => error instanceof ConsentRefused && error.error.code === 'factor_required' && error.factor === undefined,
    );
    assert.deepEqual(calls, ['weak', 'strong', 'strong']);
  });

  it('no consent is needed where the policy requires none', async () => {
    assert.deepEqual(await decideConsent(tx, newBarrier(), { ...base, enrolled: [], required: 'none', proof: undefined }), { factor: 'none' });
  });

  it('a state field named like a record field would escape the MAC: refused', () => {
    const barrier = newBarrier();
    const record: FactorRecord<object> = {
      kind: 'k',
      id: 'k',
      version: 1,
      walletName: 'w',
      secretEnvelope: null,
      state: {},
      createdAt: 0,
      enrolledVia: 'api',
      mac: null,
    };
    assert.match(macFactorRecord(barrier, record, { tries: 1 }), /^[0-9a-f]{64}$/);
    for (const field of ['kind', 'id', 'version', 'walletName', 'secretEnvelope', 'enrolledVia'])
      assert.throws(
        () => macFactorRecord(barrier, record, { [field]: 'x' }),
        (error: unknown) => error instanceof CustosError && error.code === 'internal',
      );
  });

  it('enrolledVia: rows made by the API keep the MAC format of before the enrolment page; relabelling either way breaks the MAC', () => {
    const barrier = newBarrier();
    const record: FactorRecord<object> = {
      kind: 'totp',
      id: 'totp',
      version: 1,
      walletName: 'w',
      secretEnvelope: 'sealed',
      state: { failures: 0 },
      createdAt: 0,
      enrolledVia: 'api',
      mac: null,
    };
    // The bytes of the format from before the field existed: an old row's MAC still holds.
    const before = barrier.macRecord(
      'custos.factor.v1',
      new TextEncoder().encode(canonicalJson({ failures: 0, kind: 'totp', id: 'totp', version: 1, walletName: 'w', secretEnvelope: 'sealed' })),
    );
    assert.equal(macFactorRecord(barrier, record), before);
    const viaPage = { ...record, enrolledVia: 'page' as const };
    const pageMac = macFactorRecord(barrier, viaPage);
    assert.notEqual(pageMac, before);
    assert.equal(verifyFactorRecords(barrier, [{ ...viaPage, mac: pageMac }]), undefined);
    assert.equal(verifyFactorRecords(barrier, [{ ...record, mac: pageMac }])?.code, 'record_unreadable', 'page relabelled api');
    assert.equal(verifyFactorRecords(barrier, [{ ...viaPage, mac: before }])?.code, 'record_unreadable', 'api relabelled page');
  });
});
