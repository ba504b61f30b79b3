import { zeroAddress } from 'viem';
import type { OperationSummary } from '../chain/types.js';
import type { Requirement } from '../consent/Factor.js';
import { CustosError } from '../errors.js';
import type { PolicyUsageRecord } from '../store/types.js';
import { assetAllowance, type EffectivePolicy, hasValueLimits } from './walletPolicy.js';

/**
 * The one policy decision of the kernel (issue 13, point 1): a pure function of the effective
 * policy, the wallet's consent floor, the operation's summary (the chain codec's: the same one the
 * owner is shown and the audit record keeps) and the usage in the current window. It runs before any
 * consent is charged or consumed — on the sign path, at an approval's creation and decision, and
 * again when an approval is used — and either refuses (a `policy_*` code naming the rule) or returns
 * the consent strength required and the amounts the signature counts, which the sign unit writes
 * with its audit record. Deny wins: every refusing rule is checked whatever the others allow, and
 * nothing is allowed that no rule allows (an operation the codec cannot read is an uncountable flow).
 */

export interface PolicyInput {
  policy: EffectivePolicy;
  /** What the wallet's factors require (policy.ts walletFloor): `bound` with a bound factor, `present` when enrolled, else `none`. */
  floor: Requirement;
  /** Whether the wallet has any enrolled factor. */
  enrolled: boolean;
  summary: OperationSummary;
  /** `compat`: a raw hash through the TOTP ETH Signer's API, which follows `compatRawHash`. */
  route: 'api' | 'compat';
  compatRawHash: 'allow' | 'policy';
  /** The wallet's usage rows in the current window. */
  usage: readonly PolicyUsageRecord[];
  /** The emergency exit (issue 13, point 2): an op whose only effect pays `safeAddress` skips limits and allowlist. */
  exit?: { safeAddress: string } | undefined;
  /**
   * The repeat of an approval's signature (the same bytes again): it counts nothing new, so a full
   * window (`perWindow`, `maxSignaturesPerWindow`) does not refuse it; every other rule applies.
   */
  repeat?: boolean;
}

export interface PolicyDecision {
  required: Requirement;
  /** What the signature counts (`native:<chainId>`, `token:<chainId>:<address>` → base units), decimal strings. */
  amounts: Record<string, string>;
  /** The rules that raised the requirement to `bound`, for the audit record. */
  boundBy: string[];
  /** True when the emergency exit applied. */
  exit?: true;
}

/** What one operation does, as far as the policy can count it. */
interface Effects {
  /** The total per counted asset (a batch: over its items). */
  amounts: Map<string, bigint>;
  /** Per operation (one, or a batch's items): what `perTx` limits apply to. */
  operations: Map<string, bigint>[];
  destinations: string[];
  /** Flows the limits cannot count: the contract that receives the power, and why. */
  uncountable: { contract: string | null; what: string }[];
  rawHash: boolean;
  /** The only effect is a payment (native transfer or ERC-20 transfer, no authorizations) to this address. */
  payment?: string;
  /** For an ERC-20 payment: the token's counted key (`token:<chainId>:<address>`). */
  paymentToken?: string;
  /** A transaction's fee part (gas × max fee, i.e. its maximum cost less its value), on its chain's native key. */
  fee?: { key: string; amount: bigint };
}

type Dict = Record<string, unknown>;
const isDict = (v: unknown): v is Dict => typeof v === 'object' && v !== null && !Array.isArray(v);
const lower = (v: unknown): string | null => (typeof v === 'string' ? v.toLowerCase() : null);
const PERMIT2_TYPES = new Set([
  'PermitSingle',
  'PermitBatch',
  'PermitTransferFrom',
  'PermitBatchTransferFrom',
  'PermitWitnessTransferFrom',
  'PermitBatchWitnessTransferFrom',
]);
const MAX_UINT256 = (1n << 256n) - 1n;

function add(amounts: Map<string, bigint>, key: string, amount: bigint): void {
  amounts.set(key, (amounts.get(key) ?? 0n) + amount);
}

function chainIdOf(summary: Dict): number | null {
  const chain = summary.chain;
  return isDict(chain) && typeof chain.id === 'number' ? chain.id : null;
}

/** The effects of one operation's summary (a batch: the union of its items'). */
function effectsOf(summary: OperationSummary): Effects {
  const e: Effects = { amounts: new Map(), operations: [], destinations: [], uncountable: [], rawHash: false };
  if (summary.operation !== 'batch') {
    collect(summary as Dict, e);
    e.operations.push(e.amounts);
    return e;
  }
  // a batch: each item is one operation (perTx), the batch's total counts in the window
  const items = Array.isArray((summary as Dict).items) ? ((summary as Dict).items as unknown[]) : [];
  for (const item of items) {
    const one: Effects = { amounts: new Map(), operations: [], destinations: [], uncountable: [], rawHash: false };
    if (isDict(item) && isDict(item.summary) && item.summary.operation !== 'batch') collect(item.summary, one);
    else one.uncountable.push({ contract: null, what: 'unknownOperation' });
    for (const [key, amount] of one.amounts) add(e.amounts, key, amount);
    e.operations.push(one.amounts);
    e.destinations.push(...one.destinations);
    e.uncountable.push(...one.uncountable);
    e.rawHash ||= one.rawHash;
  }
  return e;
}

function collect(s: Dict, e: Effects): void {
  const chainId = chainIdOf(s);
  switch (s.operation) {
    case 'hash':
      e.rawHash = true;
      return;
    case 'message':
      // EIP-191 text or bytes: no value flow the codec knows of (a login, a proof of ownership) — except
      // 32 raw bytes: the EIP-191 message of a 32-byte digest is what contracts verify as an approval of
      // that digest (OpenZeppelin's toEthSignedMessageHash(bytes32), a Safe's eth_sign owner signature),
      // so it is a raw hash with a prefix — blind, and under the rawHash rule like one.
      if (s.encoding === 'raw' && s.byteLength === 32) e.rawHash = true;
      return;
    case 'authorization': {
      const delegate = lower(s.delegate) ?? '';
      if (delegate === zeroAddress) return; // clearing a delegation gives no power away
      e.destinations.push(delegate);
      e.uncountable.push({ contract: delegate, what: 'eip7702Authorization' });
      return;
    }
    case 'typedData': {
      const domain = isDict(s.domain) ? s.domain : {};
      const contract = lower(domain.verifyingContract);
      const permit = isDict(s.permit) ? s.permit : undefined;
      if (permit !== undefined && contract !== null && chainId !== null && typeof permit.amount === 'string') {
        const spender = lower(permit.spender) ?? '';
        e.destinations.push(spender);
        add(e.amounts, `token:${chainId}:${contract}`, BigInt(permit.amount));
        return;
      }
      const primary = typeof s.primaryType === 'string' ? s.primaryType : '';
      const what = PERMIT2_TYPES.has(primary) || domain.name === 'Permit2' ? 'permit2' : 'undecodedTypedData';
      e.uncountable.push({ contract, what });
      if (contract !== null) e.destinations.push(contract);
      return;
    }
    case 'transaction':
      collectTransaction(s, chainId ?? -1, e);
      return;
    default:
      e.uncountable.push({ contract: null, what: 'unknownOperation' });
  }
}

/** A decoded amount that may be an NFT's token id: never counted as less than 1. */
function atLeastOne(amount: unknown): bigint {
  const n = BigInt(String(amount));
  return n > 0n ? n : 1n;
}

function collectTransaction(s: Dict, chainId: number, e: Effects): void {
  const maxCost = isDict(s.maxCost) && typeof s.maxCost.wei === 'string' ? BigInt(s.maxCost.wei) : MAX_UINT256;
  const value = isDict(s.value) && typeof s.value.wei === 'string' ? BigInt(s.value.wei) : MAX_UINT256;
  add(e.amounts, `native:${chainId}`, maxCost);
  e.fee = { key: `native:${chainId}`, amount: maxCost >= value ? maxCost - value : MAX_UINT256 };
  const action = isDict(s.action) ? s.action : { kind: 'unknownCall' };
  const token = lower(action.token);
  const tokenKey = `token:${chainId}:${token}`;
  const to = lower(s.to);
  const authorizations = Array.isArray(s.authorizations) ? s.authorizations : [];
  for (const a of authorizations) {
    const delegate = isDict(a) ? (lower(a.delegate) ?? '') : '';
    if (delegate === zeroAddress) continue;
    e.destinations.push(delegate);
    e.uncountable.push({ contract: delegate, what: 'eip7702Authorization' });
  }
  const paymentOnly = authorizations.length === 0;
  // The native value goes to `to`, whatever the calldata says: a transaction with value has `to` as
  // a destination too (a token call's decoded recipient receives the token, not the value). The
  // value itself is counted in the maximum cost above. Without value the token contract of a
  // decoded call is no destination (its recipient, spender or operator is).
  const valueTo = value > 0n && to !== null && action.kind !== 'nativeTransfer';
  if (valueTo) e.destinations.push(to);
  switch (action.kind) {
    case 'nativeTransfer':
      e.destinations.push(lower(action.recipient) ?? '');
      if (paymentOnly) e.payment = lower(action.recipient) ?? '';
      return;
    case 'erc20Transfer':
      e.destinations.push(lower(action.recipient) ?? '');
      // `transfer(address,uint256)` is also an old ERC-721's (the amount a token id): at least 1 is counted
      add(e.amounts, tokenKey, atLeastOne(action.amount));
      if (paymentOnly && value === 0n) {
        e.payment = lower(action.recipient) ?? '';
        e.paymentToken = tokenKey;
      }
      return;
    case 'erc20Approve':
    case 'erc20IncreaseAllowance':
      e.destinations.push(lower(action.spender) ?? '');
      add(e.amounts, tokenKey, BigInt(String(action.amount)));
      return;
    case 'transferFrom':
      // ERC-20 and ERC-721 `transferFrom` share one selector: the amount may be a token id, and id 0
      // moves a token, so at least 1 is counted (an id N counts N: see docs/policy.md)
      e.destinations.push(lower(action.recipient) ?? '');
      add(e.amounts, tokenKey, atLeastOne(action.amount));
      return;
    case 'erc721SafeTransferFrom':
      e.destinations.push(lower(action.recipient) ?? '');
      add(e.amounts, tokenKey, 1n);
      return;
    case 'erc1155SafeTransferFrom':
      e.destinations.push(lower(action.recipient) ?? '');
      add(e.amounts, tokenKey, BigInt(String(action.amount)));
      return;
    case 'erc1155SafeBatchTransferFrom':
      e.destinations.push(lower(action.recipient) ?? '');
      add(
        e.amounts,
        tokenKey,
        (Array.isArray(action.amounts) ? action.amounts : []).reduce((n: bigint, a) => n + BigInt(String(a)), 0n),
      );
      return;
    case 'setApprovalForAll':
      if (action.approved === true) {
        e.destinations.push(lower(action.operator) ?? '');
        e.uncountable.push({ contract: token, what: 'setApprovalForAll' });
      }
      return;
    case 'deployment':
      e.uncountable.push({ contract: null, what: 'deployment' });
      return;
    default:
      // a call the codec cannot decode: whatever it does, the limits cannot count it
      if (to !== null && !valueTo) e.destinations.push(to);
      e.uncountable.push({ contract: to, what: 'undecodedCall' });
  }
}

function refuse(code: 'policy_limit_exceeded' | 'policy_destination_not_allowed' | 'policy_operation_not_allowed', message: string, details: Dict): never {
  throw new CustosError(code, message, { details });
}

/** The sums of the usage rows, per counted key, and how many signatures they are. */
export function sumUsage(usage: readonly PolicyUsageRecord[]): { signatures: number; amounts: Map<string, bigint> } {
  const amounts = new Map<string, bigint>();
  for (const row of usage) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(row.amounts);
    } catch {
      parsed = undefined;
    }
    // a row that is not what the kernel writes (non-negative decimal amounts) is refused, never read as less
    if (!isDict(parsed) || !Object.values(parsed).every((v) => typeof v === 'string' && /^(0|[1-9][0-9]*)$/.test(v)))
      throw new CustosError('record_unreadable', "a policy usage row is not one the kernel wrote: refusing to decide on the wallet's limits", {
        details: { field: 'walletName', auditSeq: row.auditSeq },
      });
    for (const [key, amount] of Object.entries(parsed)) add(amounts, key, BigInt(amount as string));
  }
  return { signatures: usage.length, amounts };
}

/** A counted key (`native:<chainId>`, `token:<chainId>:<address>`) as the policy's kind and key. */
function assetOf(key: string): ['native' | 'tokens', string] {
  return key.startsWith('native:') ? ['native', key.slice('native:'.length)] : ['tokens', key.slice('token:'.length)];
}

/**
 * One asset's limits (a wallet with limits), as assetAllowance (walletPolicy.ts) reads them: no
 * limit under `unknownToken: deny` refuses the asset whatever the amount, zero included (a zero
 * `transferFrom` can be an ERC-721 token id 0; a call to a contract the policy does not know is no
 * "nothing"); each operation's amount (`perOperation`: a batch's items one by one) against `perTx`;
 * the window's usage plus `amount` against `perWindow` (not for a repeat). `more` joins the details.
 */
function checkAmount(
  policy: EffectivePolicy,
  key: string,
  amount: bigint,
  perOperation: readonly bigint[],
  used: { amounts: Map<string, bigint> },
  repeat: boolean,
  more: Dict = {},
): void {
  const limit = assetAllowance(policy, ...assetOf(key));
  if (limit.refused)
    refuse('policy_limit_exceeded', `no limit is configured for ${key} on this wallet (unknownToken: deny)`, { rule: 'unknownToken', asset: key, ...more });
  for (const one of perOperation)
    if (limit.perTx !== undefined && one > BigInt(limit.perTx))
      refuse('policy_limit_exceeded', `${key}: ${one} exceeds the per-transaction limit`, {
        rule: 'perTx',
        asset: key,
        limit: limit.perTx,
        amount: one.toString(),
        ...more,
      });
  const total = (used.amounts.get(key) ?? 0n) + amount;
  if (!repeat && limit.perWindow !== undefined && total > BigInt(limit.perWindow))
    refuse('policy_limit_exceeded', `${key}: this would bring the window's total to ${total}, over the limit`, {
      rule: 'perWindow',
      asset: key,
      limit: limit.perWindow,
      used: (used.amounts.get(key) ?? 0n).toString(),
      amount: amount.toString(),
      windowSeconds: policy.windowSeconds,
      ...more,
    });
}

const STRONGER: Record<Requirement, number> = { none: 0, present: 1, bound: 2 };

/** Decides `input.summary` under the policy: throws a `policy_*` refusal, or returns the requirement and what to count. */
export function evaluatePolicy(input: PolicyInput): PolicyDecision {
  const { policy, summary } = input;
  const effects = effectsOf(summary);
  const boundBy: string[] = [];
  let required: Requirement = input.floor;
  const raise = (to: Requirement, rule?: string) => {
    if (STRONGER[to] > STRONGER[required]) required = to;
    if (to === 'bound' && rule !== undefined && !boundBy.includes(rule)) boundBy.push(rule);
  };
  // the policy's own strength (never below the factors' floor); `none` only for a never-enrolled wallet
  raise(policy.requiredStrength, 'requiredStrength');
  if (input.enrolled) raise('present');

  // 1. Deny lists first: a denied destination is refused whatever allows it.
  const denied = policy.deniedDestinations ?? [];
  for (const d of effects.destinations)
    if (denied.includes(d))
      refuse('policy_destination_not_allowed', `the destination ${d} is on the wallet's denied list`, { rule: 'deniedDestinations', destination: d });

  // 2. Raw hashes (blind): refused for an enrolled wallet unless allowed; the compatibility API follows its deployment setting.
  //    A hash can be any chain's transaction: on a wallet with limits only the compatibility API's weaker mode signs one.
  const limited = hasValueLimits(policy);
  if (effects.rawHash) {
    const compatAllowed = input.route === 'compat' && input.compatRawHash === 'allow';
    if (!compatAllowed && input.enrolled && policy.rawHash !== 'allow')
      refuse('policy_operation_not_allowed', "this wallet's policy refuses raw hash signing (blind): sign the operation itself", { rule: 'rawHash' });
    if (!compatAllowed && limited)
      refuse('policy_operation_not_allowed', 'a raw hash (blind) is a value flow the limits cannot count: refused for a wallet with limits', {
        rule: 'rawHash',
        operation: 'hash',
      });
  }

  // The emergency exit: a payment to the safe address skips limits and allowlist (the consent stays) —
  // an ERC-20 payment only on a token the wallet's policy configures (a token limit entry: any other
  // contract's `transfer` can do anything), and never its fee part (below).
  const exit =
    input.exit !== undefined &&
    effects.payment !== undefined &&
    effects.payment === input.exit.safeAddress.toLowerCase() &&
    (effects.paymentToken === undefined || Object.hasOwn(policy.tokens ?? {}, assetOf(effects.paymentToken)[1]));
  if (exit) {
    // The fee part (gas × max fee) stays under the native rules: a 1-wei exit with a huge fee is a drain, not an exit.
    const fee = effects.fee ?? { key: '', amount: 0n };
    if (limited && fee.amount > 0n) checkAmount(policy, fee.key, fee.amount, [fee.amount], sumUsage(input.usage), input.repeat === true, { exit: true });
    // An exit counts only its fee part: the payment to the safe address is not counted against the window.
    return { required, amounts: fee.amount > 0n ? { [fee.key]: fee.amount.toString() } : {}, boundBy, exit: true };
  }
  const amounts: Record<string, string> = {};
  for (const [key, amount] of effects.amounts) amounts[key] = amount.toString();

  // 3. Flows the limits cannot count: refused on a wallet with limits unless the contract is allowlisted; always `bound`.
  for (const flow of effects.uncountable) {
    if (limited && (flow.contract === null || !(policy.contracts ?? []).includes(flow.contract)))
      refuse('policy_operation_not_allowed', `a value flow the limits cannot count (${flow.what}) to a contract not on the wallet's contract allowlist`, {
        rule: 'contracts',
        operation: flow.what,
        contract: flow.contract,
      });
    // What the limits cannot count needs `bound`: always on a wallet with limits (even allowlisted),
    // and on every enrolled wallet unless its policy says `uncountable: present` (the weaker mode).
    // A never-enrolled wallet without limits stays under the deployment's unknownWallets rule.
    if (limited || (input.enrolled && policy.uncountable !== 'present')) raise('bound', flow.what);
  }

  // 4. Destinations: an allowlist, when set, decides; another destination is refused or needs `bound`.
  if (policy.destinations !== undefined) {
    for (const d of effects.destinations) {
      if (policy.destinations.includes(d)) continue;
      if (policy.otherDestinations === 'deny')
        refuse('policy_destination_not_allowed', `the destination ${d} is not on the wallet's allowlist`, { rule: 'destinations', destination: d });
      raise('bound', 'otherDestinations');
    }
    // A contract deployment has no destination, and the contract it creates is on no allowlist: it
    // is another destination (refused under `deny`, `bound` under `bound`), never let through.
    if (effects.uncountable.some((flow) => flow.what === 'deployment')) {
      if (policy.otherDestinations === 'deny')
        refuse('policy_destination_not_allowed', "a contract deployment has no destination on the wallet's allowlist", {
          rule: 'destinations',
          destination: null,
          operation: 'deployment',
        });
      raise('bound', 'otherDestinations');
    }
  }

  // 5. Limits: per transaction and over the window, per chain's currency and per token; then the signature count.
  const used = sumUsage(input.usage);
  if (limited)
    for (const [key, amount] of effects.amounts)
      checkAmount(
        policy,
        key,
        amount,
        effects.operations.map((operation) => operation.get(key) ?? 0n),
        used,
        input.repeat === true,
      );
  if (input.repeat !== true && policy.maxSignaturesPerWindow !== undefined && used.signatures + 1 > policy.maxSignaturesPerWindow)
    refuse('policy_limit_exceeded', 'the maximum number of signatures in the window is reached', {
      rule: 'maxSignaturesPerWindow',
      limit: policy.maxSignaturesPerWindow,
      used: used.signatures,
      windowSeconds: policy.windowSeconds,
    });
  return { required, amounts, boundBy };
}
