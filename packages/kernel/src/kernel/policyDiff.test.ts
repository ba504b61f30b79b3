import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { diffPolicies, type PolicyDiffEntry, policyDiffLines } from './policyDiff.js';
import { assertWalletPolicy, comparePolicies, effectivePolicy, type WalletPolicy } from './walletPolicy.js';

/**
 * What the owner is shown of a policy change (policyDiff.ts): one line per field that differs, old →
 * new, each list's additions and removals in full, and whether the line loosens. Each field changed
 * alone, in both directions; the looser flag agrees with comparePolicies. Pure.
 */

const A = `0x${'aa'.repeat(20)}`;
const B = `0x${'bb'.repeat(20)}`;
const C = `0x${'cc'.repeat(20)}`;
const USDC = `1:0x${'a0'.repeat(20)}`;
const ETHER = 10n ** 18n;

const BASE: WalletPolicy = {
  requiredStrength: 'present',
  windowSeconds: 3600,
  maxSignaturesPerWindow: 10,
  native: { '1': { perTx: String(ETHER), perWindow: String(3n * ETHER) } },
  tokens: { [USDC]: { perTx: '1000000' } },
  unknownToken: 'deny',
  destinations: [A, B],
  otherDestinations: 'deny',
  deniedDestinations: [C],
  contracts: [A],
  rawHash: 'deny',
  uncountable: 'bound',
};

const eff = (p: WalletPolicy) => effectivePolicy({}, assertWalletPolicy(p));
const diff = (from: WalletPolicy, to: WalletPolicy) => diffPolicies(eff(from), eff(to));

/** Each case: a change of one field (looser), the one line it must give. */
const LOOSER: Array<[string, WalletPolicy, Omit<PolicyDiffEntry, 'label'>]> = [
  ['requiredStrength', { requiredStrength: 'none' }, { field: 'requiredStrength', from: 'present', to: 'none', looser: true }],
  ['windowSeconds', { windowSeconds: 60 }, { field: 'windowSeconds', from: '3600', to: '60', looser: true }],
  ['maxSignaturesPerWindow', { maxSignaturesPerWindow: 11 }, { field: 'maxSignaturesPerWindow', from: '10 signatures', to: '11 signatures', looser: true }],
  [
    'native perTx raised',
    { native: { '1': { perTx: String(5n * ETHER), perWindow: String(3n * ETHER) } } },
    {
      field: 'native.1.perTx',
      from: '1000000000000000000 wei (1 in the chain’s currency)',
      to: '5000000000000000000 wei (5 in the chain’s currency)',
      looser: true,
    },
  ],
  [
    'native perWindow removed',
    { native: { '1': { perTx: String(ETHER) } } },
    { field: 'native.1.perWindow', from: '3000000000000000000 wei (3 in the chain’s currency)', to: 'no limit', looser: true },
  ],
  [
    'token perTx removed (the entry kept)',
    { tokens: { [USDC]: {} } },
    { field: `tokens.${USDC}.perTx`, from: '1000000 base units', to: 'no limit', looser: true },
  ],
  ['unknownToken', { unknownToken: 'allow' }, { field: 'unknownToken', from: 'deny', to: 'allow', looser: true }],
  [
    'destination added',
    { destinations: [A, B, C.replace('cc', 'dd')] },
    { field: 'destinations', from: '2 addresses', to: '3 addresses', added: [C.replace('cc', 'dd')], removed: [], looser: true },
  ],
  [
    'allowlist removed',
    { destinations: undefined as never },
    { field: 'destinations', from: '2 addresses', to: 'any destination (no allowlist)', added: [], removed: [A, B], looser: true },
  ],
  ['otherDestinations', { otherDestinations: 'bound' }, { field: 'otherDestinations', from: 'deny', to: 'bound', looser: true }],
  [
    'denied destination removed',
    { deniedDestinations: [] },
    { field: 'deniedDestinations', from: '1 address', to: 'none', added: [], removed: [C], looser: true },
  ],
  ['contract added', { contracts: [A, B] }, { field: 'contracts', from: '1 contract', to: '2 contracts', added: [B], removed: [], looser: true }],
  ['rawHash', { rawHash: 'allow' }, { field: 'rawHash', from: 'deny', to: 'allow', looser: true }],
  ['uncountable', { uncountable: 'present' }, { field: 'uncountable', from: 'bound', to: 'present', looser: true }],
];

const REFUSED = 'refused (no limit of its own, unknownToken: deny)';
const EXIT_COVERED = 'covered: a payment to the safe address skips its limits, the allowlist and the signature cap';

function withoutUndefined(p: WalletPolicy): WalletPolicy {
  return Object.fromEntries(Object.entries(p).filter(([, v]) => v !== undefined)) as WalletPolicy;
}

function withField(change: WalletPolicy): WalletPolicy {
  const next: Record<string, unknown> = { ...BASE, ...change };
  for (const [k, v] of Object.entries(change)) if (v === undefined) delete next[k];
  return next as WalletPolicy;
}

describe('diffPolicies: every field, old → new', () => {
  test('equal policies: no line', () => {
    assert.deepEqual(diff(BASE, BASE), []);
    assert.deepEqual(policyDiffLines([]), ['No field of the policy in force changes.']);
  });

  for (const [name, change, expected] of LOOSER) {
    test(`${name}: one line, marked looser; the reverse is one line, not looser`, () => {
      const to = withField(change);
      const lines = diff(BASE, to);
      assert.equal(lines.length, 1, JSON.stringify(lines));
      const [line] = lines as [PolicyDiffEntry];
      const { label, ...rest } = line;
      assert.ok(label.length > 0);
      assert.deepEqual(rest, expected);
      // the flag agrees with the kernel's own comparison (the one that timelocks a change)
      assert.equal(comparePolicies(eff(BASE), eff(to)), 'looser');
      const [back] = diff(to, BASE) as [PolicyDiffEntry];
      assert.equal(back.looser, false, `${name} reversed is a tightening`);
      assert.equal(back.from, expected.to);
      assert.equal(back.to, expected.from);
      assert.deepEqual(back.added, expected.removed);
      assert.deepEqual(back.removed, expected.added);
    });
  }

  test('a destination swapped: both listed, looser (something new is allowed)', () => {
    const [line] = diff(BASE, withField({ destinations: [A, C] })) as [PolicyDiffEntry];
    assert.deepEqual([line.added, line.removed, line.looser], [[C], [B], true]);
  });

  test('a new allowlist where there was none is a tightening: any → the list, every address shown', () => {
    const [line] = diff({}, { destinations: [A, B] }) as [PolicyDiffEntry];
    assert.deepEqual([line.from, line.to, line.added, line.looser], ['any destination (no allowlist)', '2 addresses', [A, B], false]);
  });

  test('a new chain limit and a removed one each give their own lines, in a fixed order (unknownToken: deny: refused without an entry)', () => {
    const lines = diff({ native: { '1': { perTx: '5' } } }, { native: { '10': { perWindow: '7' } }, rawHash: 'allow' });
    assert.deepEqual(
      lines.map((l) => [l.field, l.from, l.to, l.looser]),
      [
        ['native.1', 'at most 5 wei (0.000000000000000005 in the chain’s currency) per transaction', REFUSED, false],
        ['native.10', REFUSED, 'at most 7 wei (0.000000000000000007 in the chain’s currency) per window', true],
        ['rawHash', 'deny', 'allow', true],
      ],
    );
    // under unknownToken: allow an asset without an entry has no limit: one line per limit
    const allowed = diff({ native: { '1': { perTx: '5' } }, unknownToken: 'allow' }, { native: { '10': { perWindow: '7' } }, unknownToken: 'allow' });
    assert.deepEqual(
      allowed.map((l) => [l.field, l.from, l.to, l.looser]),
      [
        ['native.1.perTx', '5 wei (0.000000000000000005 in the chain’s currency)', 'no limit', true],
        ['native.10.perWindow', 'no limit', '7 wei (0.000000000000000007 in the chain’s currency)', false],
      ],
    );
  });

  test('issue 13 review G1: an entry added for an asset the policy refused shows refused → no limit / at most X, looser (and agrees with comparePolicies)', () => {
    const OTHER = `1:0x${'0e'.repeat(20)}`;
    const cases: Array<[WalletPolicy, Array<[string, string, string, boolean]>]> = [
      // a token newly configured is also covered by the emergency exit (skipping its limits): a line of its own
      [
        { tokens: { [USDC]: { perTx: '1000000' }, [OTHER]: {} } },
        [
          [`tokens.${OTHER}`, REFUSED, 'no limit', true],
          [`tokens.${OTHER}.exit`, 'not covered', EXIT_COVERED, true],
        ],
      ],
      [
        { tokens: { [USDC]: { perTx: '1000000' }, [OTHER]: { perTx: '5' } } },
        [
          [`tokens.${OTHER}`, REFUSED, 'at most 5 base units per transaction', true],
          [`tokens.${OTHER}.exit`, 'not covered', EXIT_COVERED, true],
        ],
      ],
      [{ native: { '1': { perTx: String(ETHER), perWindow: String(3n * ETHER) }, '137': {} } }, [['native.137', REFUSED, 'no limit', true]]],
    ];
    // the rest of BASE, without the allowlist and the signature cap (the emergency exit's own line is shown below)
    const base: WalletPolicy = { ...BASE, destinations: undefined as never, maxSignaturesPerWindow: undefined as never };
    for (const [change, expected] of cases) {
      const to = { ...withField(change), destinations: undefined as never, maxSignaturesPerWindow: undefined as never };
      const lines = diffPolicies(eff(withoutUndefined(base)), eff(withoutUndefined(to)));
      assert.deepEqual(
        lines.map((l) => [l.field, l.from, l.to, l.looser]),
        expected,
      );
      assert.equal(comparePolicies(eff(withoutUndefined(base)), eff(withoutUndefined(to))), 'looser');
      assert.match(policyDiffLines(lines)[0] as string, /refused \(no limit of its own, unknownToken: deny\) → .*\[LOOSER\]$/);
      // the reverse: the asset refused again, a tightening
      const back = diffPolicies(eff(withoutUndefined(to)), eff(withoutUndefined(base)));
      assert.deepEqual(
        back.map((l) => [l.field, l.from, l.to, l.looser]),
        expected.map(([field, from, toText]) => [field, toText, from, false]),
      );
      assert.equal(comparePolicies(eff(withoutUndefined(to)), eff(withoutUndefined(base))), 'tighter');
    }
  });

  test('a token newly configured under an allowlist: the emergency exit covers it, its own line, looser', () => {
    const OTHER = `1:0x${'0e'.repeat(20)}`;
    const lines = diff({ destinations: [A] }, { destinations: [A], tokens: { [OTHER]: { perTx: '5' } } });
    assert.deepEqual(
      lines.map((l) => [l.field, l.looser]),
      [
        ['valueLimits', false],
        [`tokens.${OTHER}.perTx`, false],
        [`tokens.${OTHER}.exit`, true],
      ],
    );
    assert.equal(comparePolicies(eff({ destinations: [A] }), eff({ destinations: [A], tokens: { [OTHER]: { perTx: '5' } } })), 'looser');
    // with neither allowlist nor signature cap the exit gains nothing: no such line, a tightening
    assert.deepEqual(
      diff({}, { tokens: { [OTHER]: { perTx: '5' } } }).map((l) => [l.field, l.looser]),
      [
        ['valueLimits', false],
        [`tokens.${OTHER}.perTx`, false],
      ],
    );
  });

  test('every limit removed: the wallet no longer refuses what limits cannot count — a line of its own, looser', () => {
    const OTHER = `1:0x${'0e'.repeat(20)}`;
    const from: WalletPolicy = { tokens: { [OTHER]: {} }, unknownToken: 'allow' };
    const lines = diff(from, { unknownToken: 'allow' });
    assert.deepEqual(
      lines.map((l) => [l.field, l.from, l.to, l.looser]),
      [['valueLimits', 'set', 'none', true]],
    );
    assert.equal(comparePolicies(eff(from), eff({ unknownToken: 'allow' })), 'looser');
  });

  test('a long list is never cut: every one of 255 added addresses (the most a list holds) is a line of the text', () => {
    const many = Array.from({ length: 255 }, (_, i) => `0x${i.toString(16).padStart(40, '0')}`);
    const lines = policyDiffLines(diff({ destinations: [A] }, { destinations: [A, ...many] }));
    assert.equal(lines.length, 1 + 255);
    assert.match(lines[0] as string, /Allowed destinations.*1 address → 256 addresses {2}\[LOOSER\]/);
    for (const address of many) assert.ok(lines.includes(`    + ${address}`), address);
  });

  test('the text lines carry no control character (each line is one line)', () => {
    const lines = policyDiffLines(diff(BASE, { ...BASE, rawHash: 'allow', destinations: [A] }));
    for (const line of lines) assert.equal(/[\p{Cc}\u2028\u2029]/u.test(line), false, JSON.stringify(line));
    assert.deepEqual(lines, [
      '- Allowed destinations (allowlist): 2 addresses → 1 address',
      `    − ${B}`,
      '- Raw 32-byte hashes (blind signing): deny → allow  [LOOSER]',
    ]);
  });
});
