import { type AssetAllowance, assetAllowance, type EffectivePolicy, exitGainsToken, hasValueLimits } from './walletPolicy.js';

/**
 * What a policy change does, field by field (issue 13: what the owner sees of a `policy.loosen`):
 * computed by the kernel from two effective policies — the one in force when the change was asked
 * for and the one it gives — never from text a backend supplied. The change page, the code e-mail,
 * every notice of the change and `GET /v1/changes` show it. Pure: no I/O.
 */

/** One line of the difference: a field whose value differs, old → new (as text), and for a list the entries added and removed. */
export interface PolicyDiffEntry {
  /** The field's path: `rawHash`, `native.1.perTx`, `tokens.1:0x….perWindow`, `destinations`, … */
  field: string;
  /** What the field is, in words (with its unit). */
  label: string;
  /** The old value as text (`not set` when the field had none). */
  from: string;
  /** The new value as text. */
  to: string;
  /** For a list: every entry added (all of them, never cut). */
  added?: string[];
  /** For a list: every entry removed. */
  removed?: string[];
  /** Whether this line allows more than before (raises or removes a limit, adds to an allowlist, relaxes a rule). */
  looser: boolean;
}

const STRENGTH_RANK = { none: 0, present: 1, bound: 2 } as const;
const NOT_SET = 'not set';
const NO_LIMIT = 'no limit';

function compareAmounts(a: string | undefined, b: string | undefined): number {
  // absent = unlimited, the largest
  if (a === b) return 0;
  if (a === undefined) return 1;
  if (b === undefined) return -1;
  const x = BigInt(a);
  const y = BigInt(b);
  return x === y ? 0 : x < y ? -1 : 1;
}

/** `1500000000000000000` wei → `1.5`: the amount in whole units of 18 decimals (exact, no rounding). */
function wholeUnits(amount: string, decimals: number): string {
  const padded = amount.padStart(decimals + 1, '0');
  const whole = padded.slice(0, padded.length - decimals);
  const fraction = padded.slice(padded.length - decimals).replace(/0+$/, '');
  return fraction === '' ? whole : `${whole}.${fraction}`;
}

function nativeAmount(amount: string | undefined): string {
  return amount === undefined ? NO_LIMIT : `${amount} wei (${wholeUnits(amount, 18)} in the chain’s currency)`;
}

function tokenAmount(amount: string | undefined): string {
  return amount === undefined ? NO_LIMIT : `${amount} base units`;
}

/** An asset's allowance as text: `refused (…)`, `no limit`, or its limits. */
function describeAllowance(a: AssetAllowance, show: (amount: string | undefined) => string): string {
  if (a.refused) return 'refused (no limit of its own, unknownToken: deny)';
  const parts: string[] = [];
  if (a.perTx !== undefined) parts.push(`at most ${show(a.perTx)} per transaction`);
  if (a.perWindow !== undefined) parts.push(`at most ${show(a.perWindow)} per window`);
  return parts.length === 0 ? NO_LIMIT : parts.join(', ');
}

/**
 * The lines of one kind of limit: per asset either policy names, what each allows (assetAllowance,
 * the function evaluatePolicy decides with). An asset refused on one side gives one line for the
 * asset (`refused → at most X`, looser; or the reverse); otherwise one line per `perTx` /
 * `perWindow` that differs. A token newly configured, which the emergency exit then covers, gives a
 * line of its own when that lets the exit through where the old policy did not (exitGainsToken).
 */
function limitLines(kind: 'native' | 'tokens', from: EffectivePolicy, to: EffectivePolicy): PolicyDiffEntry[] {
  const keys = [...new Set([...Object.keys(from[kind] ?? {}), ...Object.keys(to[kind] ?? {})])].sort();
  const out: PolicyDiffEntry[] = [];
  const show = kind === 'native' ? nativeAmount : tokenAmount;
  for (const key of keys) {
    const a = assetAllowance(from, kind, key);
    const b = assetAllowance(to, kind, key);
    const [chain, token] = kind === 'native' ? [key, undefined] : key.split(':');
    if (a.refused || b.refused) {
      if (!(a.refused && b.refused)) {
        const label = kind === 'native' ? `The currency of chain ${chain} (maximum cost: value + gas × fee)` : `Token ${token} of chain ${chain}`;
        out.push({ field: `${kind}.${key}`, label, from: describeAllowance(a, show), to: describeAllowance(b, show), looser: a.refused });
      }
    } else {
      for (const which of ['perTx', 'perWindow'] as const) {
        const x = a[which];
        const y = b[which];
        if (x === y) continue;
        const per = which === 'perTx' ? 'per transaction' : 'per window';
        const label =
          kind === 'native'
            ? `Limit ${per} on the currency of chain ${chain} (maximum cost: value + gas × fee)`
            : `Limit ${per} on token ${token} of chain ${chain}`;
        out.push({ field: `${kind}.${key}.${which}`, label, from: show(x), to: show(y), looser: compareAmounts(y, x) > 0 });
      }
    }
    if (kind === 'tokens' && (exitGainsToken(from, to, key) || exitGainsToken(to, from, key))) {
      const covered = 'covered: a payment to the safe address skips its limits, the allowlist and the signature cap';
      const gained = exitGainsToken(from, to, key);
      out.push({
        field: `${kind}.${key}.exit`,
        label: `Emergency exit (while a deactivation is pending) for token ${token} of chain ${chain}`,
        from: gained ? 'not covered' : covered,
        to: gained ? covered : 'not covered',
        looser: gained,
      });
    }
  }
  return out;
}

function listLine(
  field: 'destinations' | 'deniedDestinations' | 'contracts',
  from: readonly string[] | undefined,
  to: readonly string[] | undefined,
): PolicyDiffEntry[] {
  const a = from ?? [];
  const b = to ?? [];
  const added = b.filter((x) => !a.includes(x));
  const removed = a.filter((x) => !b.includes(x));
  const absentChanged = field === 'destinations' && (from === undefined) !== (to === undefined);
  if (added.length === 0 && removed.length === 0 && !absentChanged) return [];
  // An absent allowlist lets any destination through; an absent denied list or contract list holds none.
  const describe = (list: readonly string[] | undefined): string => {
    if (field === 'destinations' && list === undefined) return 'any destination (no allowlist)';
    const n = list?.length ?? 0;
    const noun = field === 'contracts' ? 'contract' : 'address';
    return n === 0 ? `none` : `${n} ${noun}${n === 1 ? '' : noun === 'address' ? 'es' : 's'}`;
  };
  const labels = {
    destinations: 'Allowed destinations (allowlist)',
    deniedDestinations: 'Denied destinations (always refused)',
    contracts: 'Contracts allowed for flows the limits cannot count',
  } as const;
  const looser =
    field === 'destinations'
      ? to === undefined
        ? from !== undefined
        : from !== undefined && added.length > 0
      : field === 'deniedDestinations'
        ? removed.length > 0
        : added.length > 0;
  return [{ field, label: labels[field], from: describe(from), to: describe(to), added, removed, looser }];
}

function choiceLine<T extends string | number>(field: string, label: string, from: T | undefined, to: T | undefined, looser: boolean): PolicyDiffEntry[] {
  if (from === to) return [];
  return [{ field, label, from: from === undefined ? NOT_SET : String(from), to: to === undefined ? NOT_SET : String(to), looser }];
}

/**
 * The difference between two effective policies, field by field, in a fixed order: every field that
 * differs gives one line (a limit: one line per chain or token and per `perTx` / `perWindow`; a
 * list: its additions and removals, all of them). Equal policies give no line.
 */
export function diffPolicies(from: EffectivePolicy, to: EffectivePolicy): PolicyDiffEntry[] {
  const caps = (n: number | undefined) => (n === undefined ? NO_LIMIT : `${n} signatures`);
  return [
    ...choiceLine(
      'requiredStrength',
      'Consent each signature needs at least',
      from.requiredStrength,
      to.requiredStrength,
      STRENGTH_RANK[to.requiredStrength] < STRENGTH_RANK[from.requiredStrength],
    ),
    ...choiceLine(
      'windowSeconds',
      'Rolling window of the per-window limits (seconds)',
      from.windowSeconds,
      to.windowSeconds,
      to.windowSeconds < from.windowSeconds,
    ),
    ...(from.maxSignaturesPerWindow === to.maxSignaturesPerWindow
      ? []
      : [
          {
            field: 'maxSignaturesPerWindow',
            label: 'Signatures per window (cap)',
            from: caps(from.maxSignaturesPerWindow),
            to: caps(to.maxSignaturesPerWindow),
            looser: compareAmounts(to.maxSignaturesPerWindow?.toString(), from.maxSignaturesPerWindow?.toString()) > 0,
          },
        ]),
    // a wallet with limits refuses what they cannot count, raw hashes, and (unknownToken: deny) any asset without a limit
    ...choiceLine(
      'valueLimits',
      'Value limits on this wallet',
      hasValueLimits(from) ? 'set' : 'none',
      hasValueLimits(to) ? 'set' : 'none',
      hasValueLimits(from) && !hasValueLimits(to),
    ),
    ...limitLines('native', from, to),
    ...limitLines('tokens', from, to),
    ...choiceLine(
      'unknownToken',
      'A token or currency with no limit (on a wallet with limits)',
      from.unknownToken,
      to.unknownToken,
      to.unknownToken === 'allow',
    ),
    ...listLine('destinations', from.destinations, to.destinations),
    ...choiceLine('otherDestinations', 'A destination not on the allowlist', from.otherDestinations, to.otherDestinations, to.otherDestinations === 'bound'),
    ...listLine('deniedDestinations', from.deniedDestinations, to.deniedDestinations),
    ...listLine('contracts', from.contracts, to.contracts),
    ...choiceLine('rawHash', 'Raw 32-byte hashes (blind signing)', from.rawHash, to.rawHash, to.rawHash === 'allow'),
    ...choiceLine(
      'uncountable',
      'Consent for flows the limits cannot count (wallet without limits)',
      from.uncountable,
      to.uncountable,
      to.uncountable === 'present',
    ),
  ];
}

/** Any control or invisible formatting character: stripped from the text a message carries. */
const CONTROL = /[\p{Cc}\p{Cf}\u2028\u2029]/gu;

function plain(text: string): string {
  return text.replace(CONTROL, '?');
}

/**
 * The difference as plain text lines, for the e-mail and the notices (every line, every list entry:
 * nothing cut). Control characters are replaced, so no line can forge another.
 */
export function policyDiffLines(diff: readonly PolicyDiffEntry[]): string[] {
  if (diff.length === 0) return ['No field of the policy in force changes.'];
  const lines: string[] = [];
  for (const entry of diff) {
    lines.push(plain(`- ${entry.label}: ${entry.from} → ${entry.to}${entry.looser ? '  [LOOSER]' : ''}`));
    for (const added of entry.added ?? []) lines.push(plain(`    + ${added}`));
    for (const removed of entry.removed ?? []) lines.push(plain(`    − ${removed}`));
  }
  return lines;
}
