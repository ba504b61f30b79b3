import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { CustosError } from '../errors.js';
import type { TotpFactorState } from '../store/types.js';
import { generateTotp } from '../totp/generateTotp.js';
import type { FactorWallet, Verified } from './Factor.js';
import { totpFactor } from './totpFactor.js';

/**
 * The brute-force bound of docs/security-testing.md, recomputed from the implementation: an
 * attacker (a compromised backend) guesses TOTP codes for one wallet through the TOTP factor's
 * real verify (throttle, ±1 step window, code_reused), on a fake clock, spending every attempt the
 * throttle allows; the owner's successful signatures reset the counter. The guesses per year the
 * simulation reaches must be the figures the document states, parsed from its table.
 */

const SECRET = Uint8Array.from({ length: 20 }, (_, i) => (i * 37 + 11) & 0xff);
/** A step boundary (1.8e12 ms is a multiple of 30 s), so that lock ends fall on whole seconds. */
const T0 = 1_800_000_000_000;
const MINUTE = 60_000;
const HOUR = 3_600_000;
const DAY = 86_400_000;
const YEAR = 365 * DAY;
/** With ±1 step, a guess is compared with at most 3 codes out of 10^6. */
const P_GUESS = 3 / 1e6;

const totp = totpFactor({ issuer: 'Custos' });
const FRESH: TotpFactorState = { lastAcceptedStep: null, failures: 0, lockedUntilMs: null };

function walletWith(state: TotpFactorState): FactorWallet<TotpFactorState> {
  return {
    name: 'w',
    tenant: 'default',
    factor: { kind: 'totp', id: 'totp', version: 1, walletName: 'w', secretEnvelope: 'sealed', state, createdAt: 0, enrolledVia: 'api', mac: null },
    openSecret: () => Uint8Array.from(SECRET),
  };
}

type Outcome = { code: 'accepted' | 'code_invalid' | 'code_reused' | 'factor_throttled'; state: TotpFactorState; retryAfterSeconds?: number };

/**
 * One attempt as the consent module makes it (consent.ts): the factor verifies; the state change
 * it returns, or the one its refusal carries (a charged attempt), becomes the row's new state.
 */
function attempt(state: TotpFactorState, code: string, nowMs: number): Outcome {
  try {
    const verified = totp.verify({ wallet: walletWith(state), opHash: 'aa', proof: code, now: nowMs }) as Verified<TotpFactorState>;
    return { code: 'accepted', state: verified.stateChange as TotpFactorState };
  } catch (error) {
    assert.ok(error instanceof CustosError, String(error));
    assert.ok(['code_invalid', 'code_reused', 'factor_throttled'].includes(error.code), error.code);
    const next = (error.stateChange as TotpFactorState | undefined) ?? state;
    const outcome: Outcome = { code: error.code as Outcome['code'], state: next };
    if (error.code === 'factor_throttled') outcome.retryAfterSeconds = error.details.retryAfterSeconds as number;
    return outcome;
  }
}

/** A code that matches none of the steps in the window at `nowMs`: the attacker's guesses all miss, so the count means something. */
function wrongCode(n: number, nowMs: number): string {
  const window = [-1, 0, 1].map((d) => generateTotp(SECRET, nowMs / 1000 + d * 30));
  for (let k = n; ; k++) {
    const code = String((k * 7_919) % 1_000_000).padStart(6, '0');
    if (!window.includes(code)) return code;
  }
}

interface Run {
  guesses: number;
  ownerSignatures: number;
  ownerRefused: number;
  probesRefused: number;
  state: TotpFactorState;
}

/**
 * From `start` (ms after T0), until `horizonMs`: the attacker makes a guess whenever the throttle
 * lets one reach verification (at once, or the instant the lock ends); during each lock it also
 * probes twice (just after the failure and 1 ms before the lock ends), which must be refused
 * `factor_throttled` and change nothing. The owner, every `ownerEveryMs` (none if null), signs
 * with the right code; refused while locked, they retry the instant the lock ends (a persistent
 * owner). At equal times the owner goes first (a reset just before a guess is the attacker's best case).
 */
function simulate({
  state: initial,
  start = 0,
  horizonMs,
  ownerEveryMs,
}: {
  state: TotpFactorState;
  start?: number;
  horizonMs: number;
  ownerEveryMs: number | null;
}): Run {
  let state = initial;
  let t = start;
  let nextOwner = ownerEveryMs === null ? Number.POSITIVE_INFINITY : start + ownerEveryMs;
  const run = { guesses: 0, ownerSignatures: 0, ownerRefused: 0, probesRefused: 0 };
  for (;;) {
    const lockEnd = state.lockedUntilMs === null ? t : Math.max(t, state.lockedUntilMs - T0);
    if (nextOwner <= lockEnd && nextOwner < horizonMs && ownerEveryMs !== null) {
      const now = T0 + nextOwner;
      const result = attempt(state, generateTotp(SECRET, now / 1000), now);
      if (result.code === 'factor_throttled') {
        // the lock refuses the owner as well; nothing is charged
        assert.deepEqual(result.state, state);
        run.ownerRefused++;
        nextOwner = (state.lockedUntilMs ?? now) - T0;
        continue;
      }
      assert.equal(result.code, 'accepted');
      // a success resets the counter and the lock entirely
      assert.equal(result.state.failures, 0);
      assert.equal(result.state.lockedUntilMs, null);
      state = result.state;
      run.ownerSignatures++;
      t = nextOwner;
      nextOwner = (Math.floor(t / ownerEveryMs) + 1) * ownerEveryMs;
      continue;
    }
    if (lockEnd >= horizonMs) break;
    if (lockEnd > t) {
      for (const probeAt of [t, lockEnd - 1]) {
        const now = T0 + probeAt;
        const probe = attempt(state, wrongCode(run.guesses + 1, now), now);
        assert.equal(probe.code, 'factor_throttled');
        assert.equal(probe.retryAfterSeconds, Math.max(1, Math.ceil((lockEnd - probeAt) / 1000)));
        // not counted: the state is exactly as before
        assert.deepEqual(probe.state, state);
        run.probesRefused++;
      }
    }
    t = lockEnd;
    const now = T0 + t;
    const guess = attempt(state, wrongCode(run.guesses, now), now);
    assert.equal(guess.code, 'code_invalid');
    assert.equal(guess.state.failures, state.failures + 1);
    state = guess.state;
    run.guesses++;
  }
  return { ...run, state };
}

/** G(L): the guesses that fit in an interval of length L right after an owner's success (a real one, on a factor 17 failures deep). */
function guessesAfterReset(intervalMs: number): number {
  const spent: TotpFactorState = { lastAcceptedStep: null, failures: 17, lockedUntilMs: T0 };
  const success = attempt(spent, generateTotp(SECRET, T0 / 1000), T0);
  assert.equal(success.code, 'accepted');
  return simulate({ state: success.state, horizonMs: intervalMs, ownerEveryMs: null }).guesses;
}

/** P(at least one of N guesses hits) = 1 − (1 − p)^N, computed without losing precision for small p. */
function successProbability(guesses: number): number {
  return -Math.expm1(guesses * Math.log1p(-P_GUESS));
}

/** The percentage as the document writes it: 3 significant digits. */
function asPercent(probability: number): string {
  return `${Number((probability * 100).toPrecision(3))} %`;
}

/** The rows of the bound's table in docs/security-testing.md, by their first cell. */
function documentedBound(): Map<string, { resets: number; perInterval: string; guesses: number; probability: string }> {
  const doc = readFileSync(new URL('../../../../docs/security-testing.md', import.meta.url), 'utf8');
  const start = doc.indexOf('<!-- brute-force-bound:begin -->');
  const end = doc.indexOf('<!-- brute-force-bound:end -->');
  assert.ok(start >= 0 && end > start, 'docs/security-testing.md has the brute-force-bound table between its markers');
  const rows = new Map<string, { resets: number; perInterval: string; guesses: number; probability: string }>();
  for (const line of doc.slice(start, end).split('\n')) {
    const cells = line.split('|').map((cell) => cell.trim());
    // | scenario | resets per year | G(L) | N | P |
    if (cells.length !== 7 || !/^[0-9,]+$/.test(cells[4] ?? '')) continue;
    const number = (text: string | undefined) => Number((text ?? '').replaceAll(',', ''));
    rows.set(cells[1] ?? '', { resets: number(cells[2]), perInterval: cells[3] ?? '', guesses: number(cells[4]), probability: cells[5] ?? '' });
  }
  return rows;
}

describe('TOTP brute-force bound (docs/security-testing.md), through the factor’s verify on a fake clock', () => {
  const documented = documentedBound();

  it('no owner activity: a year of every allowed guess is the documented N, and P follows', () => {
    const t = performance.now();
    const run = simulate({ state: FRESH, horizonMs: YEAR, ownerEveryMs: null });
    const row = documented.get('no owner activity');
    assert.ok(row !== undefined, 'the table has the row "no owner activity"');
    // 5 at once, 11 more within 17 h 4 min, then one per 24 h lock
    assert.equal(run.guesses, 380);
    assert.equal(row.guesses, run.guesses);
    assert.equal(row.resets, 0);
    assert.equal(row.probability, asPercent(successProbability(run.guesses)));
    assert.equal(run.state.failures, 380);
    // every lock was probed twice, and each probe was refused without being counted
    assert.equal(run.probesRefused, 2 * (380 - 4 - 1));
    console.log(
      `no owner activity: ${run.guesses} guesses/year, P = ${asPercent(successProbability(run.guesses))}, ${run.probesRefused} probes refused uncounted (${Math.round(performance.now() - t)} ms)`,
    );
  });

  it('an owner who signs every 24 h, every hour, every 10 minutes: N = resets × G(L), as documented', () => {
    const scenarios = [
      { label: 'owner signs every 24 h', every: DAY, perInterval: 16 },
      { label: 'owner signs every hour', every: HOUR, perInterval: 11 },
      { label: 'owner signs every 10 minutes', every: 10 * MINUTE, perInterval: 9 },
    ];
    for (const { label, every, perInterval } of scenarios) {
      const row = documented.get(label);
      assert.ok(row !== undefined, `the table has the row "${label}"`);
      const g = guessesAfterReset(every);
      assert.equal(g, perInterval, label);
      const resets = YEAR / every;
      const guesses = resets * g;
      assert.equal(row.resets, resets, label);
      assert.equal(row.perInterval, String(g), label);
      assert.equal(row.guesses, guesses, label);
      assert.equal(row.probability, asPercent(successProbability(guesses)), label);
      console.log(`${label}: G = ${g}, N = ${resets} × ${g} = ${guesses}/year, P = ${asPercent(successProbability(guesses))}`);
    }
    // nothing else in the table that this test does not check
    assert.equal(documented.size, 1 + scenarios.length);
  });

  it('a whole year with a real owner signing daily stays within the documented bound (the locks also delay the owner)', () => {
    const t = performance.now();
    const run = simulate({ state: FRESH, horizonMs: YEAR, ownerEveryMs: DAY });
    const bound = documented.get('owner signs every 24 h')?.guesses;
    assert.ok(bound !== undefined);
    assert.ok(run.guesses <= bound, `${run.guesses} guesses > the documented bound ${bound}`);
    // the resets matter: far more guesses than with no owner
    assert.ok(run.guesses > 380 * 5, `${run.guesses} guesses`);
    assert.ok(run.ownerSignatures > 0);
    console.log(
      `owner signs daily (persistent: ${run.ownerSignatures} signatures, ${run.ownerRefused} refused while locked): ${run.guesses} guesses/year ≤ bound ${bound} (${Math.round(performance.now() - t)} ms)`,
    );
  });

  it('the code of a consumed step costs nothing and never succeeds: the owner’s own code replayed is code_reused, uncharged', () => {
    const now = T0 + 45_000;
    const code = generateTotp(SECRET, now / 1000);
    const signed = attempt(FRESH, code, now);
    assert.equal(signed.code, 'accepted');
    let state = signed.state;
    for (let i = 0; i < 20; i++) {
      const replay = attempt(state, code, now + i * 1_000);
      assert.equal(replay.code, 'code_reused');
      assert.deepEqual(replay.state, state);
      state = replay.state;
    }
    assert.equal(state.failures, 0);
  });
});
