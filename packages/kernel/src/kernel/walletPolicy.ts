import type { Requirement } from '../consent/Factor.js';
import { invalidInput } from '../errors.js';

/**
 * A wallet's policy (issue 13, point 1): the deployment's defaults (KernelOptions.policyDefaults,
 * `custos serve --policy-file`) overridden field by field by the wallet's own (PUT
 * /v1/wallets/policy). Amounts are integers in base units — wei for a chain's currency, the token's
 * smallest unit for an ERC-20 — as decimal strings: no price oracle, no conversion between assets.
 * evaluatePolicy.ts decides an operation against the effective policy.
 */

/** A limit in base units (decimal strings): per transaction and over the rolling window. */
export interface AmountLimit {
  perTx?: string;
  perWindow?: string;
}

export interface WalletPolicy {
  /** The least consent strength every signature needs; the wallet's factors raise it (policy floor). */
  requiredStrength?: Requirement;
  /** The rolling window of the `perWindow` limits and of `maxSignaturesPerWindow`, in seconds. */
  windowSeconds?: number;
  maxSignaturesPerWindow?: number;
  /** Native value per chain (key: the chain id in decimal), counted as the transaction's maximum cost. */
  native?: Record<string, AmountLimit>;
  /** ERC-20 (and NFT) amounts per token contract (key: `<chainId>:<0x-address, lowercase>`). */
  tokens?: Record<string, AmountLimit>;
  /** A token (or a chain's currency) with no limit, on a wallet with limits: `deny` (default) or `allow` (uncounted). */
  unknownToken?: 'deny' | 'allow';
  /** The destination allowlist (lowercase addresses); absent: any destination. */
  destinations?: string[];
  /** A destination not on the allowlist: refused (`deny`, default) or allowed with a `bound` consent. */
  otherDestinations?: 'deny' | 'bound';
  /** Destinations always refused, whatever else allows them (deny wins). */
  deniedDestinations?: string[];
  /** Contracts that may receive the value flows the limits cannot count (7702 delegates, operators, Permit2, undecoded calls). */
  contracts?: string[];
  /** Raw 32-byte hashes (blind): `deny` (default) or `allow` for wallets with an enrolled factor. */
  rawHash?: 'deny' | 'allow';
  /**
   * The consent an enrolled wallet without limits needs for a value flow the limits cannot count
   * (7702, setApprovalForAll, Permit2, undecoded calls and typed data): `bound` (default) or
   * `present` (the weaker mode: a relayed code signs them). A wallet with limits always needs `bound`.
   */
  uncountable?: 'bound' | 'present';
}

/** The policy in force: every field with a value. */
type Defaulted = 'requiredStrength' | 'windowSeconds' | 'unknownToken' | 'otherDestinations' | 'rawHash' | 'uncountable';
export type EffectivePolicy = Required<Pick<WalletPolicy, Defaulted>> & Omit<WalletPolicy, Defaulted>;

/**
 * The built-in defaults: nothing limited, `unknownToken: deny` (it applies only once a wallet has
 * limits), raw hashes refused for enrolled wallets (a deployment or a wallet allows them with
 * `rawHash: 'allow'`; the compatibility API follows `compatRawHash` instead), and the flows the
 * limits cannot count need `bound` from every enrolled wallet — see docs/policy.md.
 */
export const BUILT_IN_POLICY: EffectivePolicy = {
  requiredStrength: 'none',
  windowSeconds: 86_400,
  unknownToken: 'deny',
  otherDestinations: 'deny',
  rawHash: 'deny',
  uncountable: 'bound',
};

const FIELDS = [
  'requiredStrength',
  'windowSeconds',
  'maxSignaturesPerWindow',
  'native',
  'tokens',
  'unknownToken',
  'destinations',
  'otherDestinations',
  'deniedDestinations',
  'contracts',
  'rawHash',
  'uncountable',
] as const;

const ADDRESS = /^0x[0-9a-fA-F]{40}$/;
const AMOUNT = /^(0|[1-9][0-9]{0,77})$/;
const CHAIN_KEY = /^(0|[1-9][0-9]{0,15})$/;
const MAX_LIST = 256;
const MAX_UINT256 = (1n << 256n) - 1n;

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function assertChoice<T extends string>(value: unknown, field: string, choices: readonly T[]): T {
  if (typeof value !== 'string' || !(choices as readonly string[]).includes(value))
    throw invalidInput(field, choices.map((c) => `'${c}'`).join(' | '), typeof value);
  return value as T;
}

function assertCount(value: unknown, field: string, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max)
    throw invalidInput(field, `an integer from ${min} to ${max}`, typeof value);
  return value;
}

function assertAmount(value: unknown, field: string): string {
  if (typeof value !== 'string' || !AMOUNT.test(value) || BigInt(value) > MAX_UINT256)
    throw invalidInput(field, 'a decimal integer in base units (up to 2^256 - 1)', typeof value);
  return value;
}

function assertLimits(value: unknown, field: string, key: (k: string) => string): Record<string, AmountLimit> {
  if (!isObject(value)) throw invalidInput(field, 'an object of limits', typeof value);
  const entries = Object.entries(value);
  if (entries.length > MAX_LIST) throw invalidInput(field, `at most ${MAX_LIST} entries`);
  const out: Record<string, AmountLimit> = {};
  for (const [k, limit] of entries) {
    const name = key(k);
    if (!isObject(limit)) throw invalidInput(`${field}.${k}`, '{ perTx?, perWindow? }', typeof limit);
    const extra = Object.keys(limit).find((f) => f !== 'perTx' && f !== 'perWindow');
    if (extra !== undefined) throw invalidInput(`${field}.${k}.${extra}`, 'no such field (perTx, perWindow)');
    const l: AmountLimit = {};
    if (limit.perTx !== undefined) l.perTx = assertAmount(limit.perTx, `${field}.${k}.perTx`);
    if (limit.perWindow !== undefined) l.perWindow = assertAmount(limit.perWindow, `${field}.${k}.perWindow`);
    Object.defineProperty(out, name, { value: l, enumerable: true, writable: true, configurable: true });
  }
  return out;
}

function assertAddresses(value: unknown, field: string): string[] {
  if (!Array.isArray(value) || value.length > MAX_LIST) throw invalidInput(field, `an array of at most ${MAX_LIST} addresses`, typeof value);
  const out = value.map((a, i) => {
    if (typeof a !== 'string' || !ADDRESS.test(a)) throw invalidInput(`${field}[${i}]`, 'an address: 0x + 40 hex digits', typeof a);
    return a.toLowerCase();
  });
  return [...new Set(out)].sort();
}

/** `<chainId>:<address>` with the address in lower case. */
function tokenKey(k: string, field: string): string {
  const [chain, address, ...rest] = k.split(':');
  if (chain === undefined || address === undefined || rest.length > 0 || !CHAIN_KEY.test(chain) || !ADDRESS.test(address))
    throw invalidInput(`${field}.${k}`, "a key '<chainId>:<0x token address>'");
  return `${chain}:${address.toLowerCase()}`;
}

/**
 * A policy as a request or the policy file gives it, validated (every field named when wrong) and
 * normalised: addresses lower case, lists sorted and deduplicated. Unknown fields are refused.
 */
export function assertWalletPolicy(value: unknown, field = 'policy'): WalletPolicy {
  if (!isObject(value)) throw invalidInput(field, 'a policy object', typeof value);
  const unknown = Object.keys(value).find((k) => !(FIELDS as readonly string[]).includes(k));
  if (unknown !== undefined) throw invalidInput(`${field}.${unknown}`, `no such policy field (${FIELDS.join(', ')})`);
  const p: WalletPolicy = {};
  if (value.requiredStrength !== undefined)
    p.requiredStrength = assertChoice(value.requiredStrength, `${field}.requiredStrength`, ['none', 'present', 'bound']);
  if (value.windowSeconds !== undefined) p.windowSeconds = assertCount(value.windowSeconds, `${field}.windowSeconds`, 60, 366 * 86_400);
  if (value.maxSignaturesPerWindow !== undefined)
    p.maxSignaturesPerWindow = assertCount(value.maxSignaturesPerWindow, `${field}.maxSignaturesPerWindow`, 0, 1_000_000_000);
  if (value.native !== undefined)
    p.native = assertLimits(value.native, `${field}.native`, (k) => {
      if (!CHAIN_KEY.test(k)) throw invalidInput(`${field}.native.${k}`, 'a chain id in decimal as the key');
      return k;
    });
  if (value.tokens !== undefined) p.tokens = assertLimits(value.tokens, `${field}.tokens`, (k) => tokenKey(k, `${field}.tokens`));
  if (value.unknownToken !== undefined) p.unknownToken = assertChoice(value.unknownToken, `${field}.unknownToken`, ['deny', 'allow']);
  if (value.destinations !== undefined) p.destinations = assertAddresses(value.destinations, `${field}.destinations`);
  if (value.otherDestinations !== undefined) p.otherDestinations = assertChoice(value.otherDestinations, `${field}.otherDestinations`, ['deny', 'bound']);
  if (value.deniedDestinations !== undefined) p.deniedDestinations = assertAddresses(value.deniedDestinations, `${field}.deniedDestinations`);
  if (value.contracts !== undefined) p.contracts = assertAddresses(value.contracts, `${field}.contracts`);
  if (value.rawHash !== undefined) p.rawHash = assertChoice(value.rawHash, `${field}.rawHash`, ['deny', 'allow']);
  if (value.uncountable !== undefined) p.uncountable = assertChoice(value.uncountable, `${field}.uncountable`, ['bound', 'present']);
  return p;
}

/** The deployment's defaults over the built-in ones, then the wallet's override over both (field by field). */
export function effectivePolicy(defaults: WalletPolicy, override: WalletPolicy | undefined): EffectivePolicy {
  return { ...BUILT_IN_POLICY, ...defaults, ...(override ?? {}) } as EffectivePolicy;
}

/** Whether a wallet has value limits (then `unknownToken` and the rule on uncountable flows apply). */
export function hasValueLimits(policy: WalletPolicy): boolean {
  return Object.keys(policy.native ?? {}).length > 0 || Object.keys(policy.tokens ?? {}).length > 0;
}

/**
 * What a policy allows of one asset — a chain's currency (`native`, key: the chain id) or a token
 * (`tokens`, key: `<chainId>:<address>`) — exactly as evaluatePolicy decides it: a wallet without
 * limits counts nothing (any amount); on a wallet with limits an asset with its own entry is allowed
 * up to that entry's limits (a limit absent: none), and an asset with no entry follows
 * `unknownToken` — `deny`: refused, whatever the amount (zero included: a call to a token contract
 * the policy does not know is refused, not counted as nothing); `allow`: any amount, uncounted.
 * `key: null` is any asset with no entry of its own. evaluatePolicy, comparePolicies and the
 * owner's diff (policyDiff.ts) all read an asset through this one function.
 */
export type AssetAllowance = { refused: true } | { refused: false; perTx?: string; perWindow?: string };

export function assetAllowance(policy: WalletPolicy, kind: 'native' | 'tokens', key: string | null): AssetAllowance {
  if (!hasValueLimits(policy)) return { refused: false };
  const entries = policy[kind] ?? {};
  if (key !== null && Object.hasOwn(entries, key)) {
    const limit = entries[key] as AmountLimit;
    const out: AssetAllowance = { refused: false };
    if (limit.perTx !== undefined) out.perTx = limit.perTx;
    if (limit.perWindow !== undefined) out.perWindow = limit.perWindow;
    return out;
  }
  return policy.unknownToken === 'allow' ? { refused: false } : { refused: true };
}

/** Whether `a` allows nothing that `b` does not (refused < any limits < no limit; each limit at most the other's). */
export function allowanceAtMost(a: AssetAllowance, b: AssetAllowance): boolean {
  if (a.refused) return true;
  if (b.refused) return false;
  return amountAtMost(a.perTx, b.perTx) && amountAtMost(a.perWindow, b.perWindow);
}

/** Whether an asset is allowed in any amount with nothing counted against a limit. */
function unlimited(a: AssetAllowance): boolean {
  return !a.refused && a.perTx === undefined && a.perWindow === undefined;
}

/**
 * Whether the emergency exit (evaluatePolicy.ts), which covers an ERC-20 payment only on a token the
 * policy configures and then skips its limits, the allowlist and the signature cap, gains a token
 * when `to` configures `key` and `from` does not: unless `from` let the same payment through anyway
 * (the token unlimited, no allowlist, no signature cap), the exit newly allows something.
 */
export function exitGainsToken(from: EffectivePolicy, to: EffectivePolicy, key: string): boolean {
  if (!Object.hasOwn(to.tokens ?? {}, key) || Object.hasOwn(from.tokens ?? {}, key)) return false;
  return !unlimited(assetAllowance(from, 'tokens', key)) || from.destinations !== undefined || from.maxSignaturesPerWindow !== undefined;
}

const STRENGTH_RANK = { none: 0, present: 1, bound: 2 } as const;

/** `a` ≤ `b` as limits, where absent means unlimited. */
function amountAtMost(a: string | undefined, b: string | undefined): boolean {
  if (b === undefined) return true;
  if (a === undefined) return false;
  return BigInt(a) <= BigInt(b);
}

/**
 * Whether `proposed` allows no amount of any asset that `current` did not: every asset either
 * policy names, and every other asset (no entry in either: `unknownToken`, or no limits at all). An
 * entry ADDED for an asset `current` refused (a wallet with limits under `unknownToken: deny`) is a
 * loosening, even with limits (refused → at most X), and so is one `{}` (refused → no limit).
 */
function assetsTighter(current: EffectivePolicy, proposed: EffectivePolicy): boolean {
  // a wallet with limits also refuses what they cannot count and raw hashes: dropping every limit loosens that
  if (hasValueLimits(current) && !hasValueLimits(proposed)) return false;
  for (const kind of ['native', 'tokens'] as const) {
    const keys = new Set([...Object.keys(current[kind] ?? {}), ...Object.keys(proposed[kind] ?? {})]);
    for (const key of keys) if (!allowanceAtMost(assetAllowance(proposed, kind, key), assetAllowance(current, kind, key))) return false;
    if (!allowanceAtMost(assetAllowance(proposed, kind, null), assetAllowance(current, kind, null))) return false;
  }
  // a newly configured token the emergency exit then covers
  return Object.keys(proposed.tokens ?? {}).every((key) => !exitGainsToken(current, proposed, key));
}

function subset(a: readonly string[], b: readonly string[]): boolean {
  return a.every((x) => b.includes(x));
}

/**
 * Whether `proposed` is provably at least as strict as `current` (both effective policies):
 * `tighter` only when every operation `proposed` allows `current` allowed too — every rule at least
 * as strict, every asset allowed at most as much (assetsTighter: a limit entry added for an asset
 * that was refused is looser) — anything else, including an added allowlisted destination or
 * contract or a shorter window, is `looser`. A loosening change is a timelocked change (issue 13,
 * point 2); a tightening one applies at once.
 */
export function comparePolicies(current: EffectivePolicy, proposed: EffectivePolicy): 'tighter' | 'looser' {
  const checks = [
    STRENGTH_RANK[proposed.requiredStrength] >= STRENGTH_RANK[current.requiredStrength],
    // a window at least as long counts at least as much (a shorter one forgets sooner)
    proposed.windowSeconds >= current.windowSeconds,
    proposed.maxSignaturesPerWindow === undefined
      ? current.maxSignaturesPerWindow === undefined
      : current.maxSignaturesPerWindow === undefined || proposed.maxSignaturesPerWindow <= current.maxSignaturesPerWindow,
    assetsTighter(current, proposed),
    // `allow` over `deny` is looser even where no asset changes today (a later limit would inherit it)
    !(proposed.unknownToken === 'allow' && current.unknownToken === 'deny'),
    // an allowlist where there was none, or a smaller one, is tighter; removing it or adding to it is looser
    current.destinations === undefined || (proposed.destinations !== undefined && subset(proposed.destinations, current.destinations)),
    !(proposed.otherDestinations === 'bound' && current.otherDestinations === 'deny'),
    subset(current.deniedDestinations ?? [], proposed.deniedDestinations ?? []),
    // no contract list = none allowlisted
    subset(proposed.contracts ?? [], current.contracts ?? []),
    !(proposed.rawHash === 'allow' && current.rawHash === 'deny'),
    !(proposed.uncountable === 'present' && current.uncountable === 'bound'),
  ];
  return checks.every(Boolean) ? 'tighter' : 'looser';
}
