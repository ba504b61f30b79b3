import { type ChainLabel, chainText, describeChain } from './describeChain.js';
import { type Amount, formatEther, toAmount } from './formatAmount.js';
import type { Address, OperationSummary } from './types.js';

/** One operation of a batch as its summary lists it: its key and its own summary (the chain codec's). */
export interface BatchItemSummary {
  keyIndex: number;
  summary: OperationSummary;
  summaryText: string;
}

/** A payment of a batch: who receives what (native value in wei, or ERC-20 base units of `asset`). */
export interface BatchRecipient {
  /** The item's position in the batch, from 0. */
  item: number;
  chain: ChainLabel;
  recipient: Address;
  /** `native` (the chain's currency, amount in wei) or the ERC-20 token contract (amount in base units). */
  asset: 'native' | Address;
  amount: string;
}

/** An EIP-7702 delegation a batch makes: a standalone authorization, or one carried by a type-4 transaction. */
export interface BatchAuthorization {
  item: number;
  chainId: number;
  allChains: boolean;
  delegate: Address;
  /** The account delegated (the signer of a standalone authorization; the recovered authority in a transaction, or null). */
  account: Address | null;
}

export interface BatchSummary extends OperationSummary {
  operation: 'batch';
  /** The first item's signing address (`signers` lists every one). */
  from: Address;
  count: number;
  signers: Address[];
  totals: {
    /** Per chain: the native value sent by the batch's transactions, and the most their fees can cost. */
    native: { chain: ChainLabel; value: Amount; maxFee: Amount }[];
    /** Per chain and ERC-20 contract: the base units moved by decoded `transfer` calls. */
    tokens: { chain: ChainLabel; token: Address; amount: string }[];
  };
  recipients: BatchRecipient[];
  authorizations: BatchAuthorization[];
  /** Items that are neither a payment (native value, ERC-20 transfer) nor an authorization: see their own summaries. */
  otherOperations: number;
  items: BatchItemSummary[];
}

type Dict = Record<string, unknown>;
const isDict = (v: unknown): v is Dict => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * The summary of a batch (PSD2's dynamic linking covers a batch by its total and its payees): the
 * total per asset — native value and maximum fees per chain, ERC-20 amounts per token contract from
 * the decoded `transfer` calls —, every recipient with its amount, every EIP-7702 delegation, and
 * each item's own summary. Amounts are summed as bigints over the codec's decimal strings.
 */
export function summarizeBatch(items: BatchItemSummary[]): { summary: BatchSummary; summaryText: string } {
  const native = new Map<number, { chain: ChainLabel; value: bigint; maxFee: bigint }>();
  const tokens = new Map<string, { chain: ChainLabel; token: Address; amount: bigint }>();
  const recipients: BatchRecipient[] = [];
  const authorizations: BatchAuthorization[] = [];
  const signers: Address[] = [];
  let otherOperations = 0;
  let payments = 0;
  items.forEach(({ summary }, item) => {
    if (!signers.includes(summary.from)) signers.push(summary.from);
    const s = summary as Dict;
    const chain = summary.chain ?? describeChain(0);
    if (summary.operation === 'authorization') {
      authorizations.push({ item, chainId: chain.id, allChains: s.allChains === true, delegate: s.delegate as Address, account: summary.from });
      return;
    }
    // transaction (a batch holds transactions and authorizations only)
    const value = BigInt((s.value as Amount).wei);
    const maxFee = BigInt((s.maxFee as Amount).wei);
    const perChain = native.get(chain.id) ?? { chain, value: 0n, maxFee: 0n };
    perChain.value += value;
    perChain.maxFee += maxFee;
    native.set(chain.id, perChain);
    const action = s.action as Dict;
    if (value > 0n) {
      const to = (action.kind === 'deployment' ? action.contractAddress : s.to) as Address;
      recipients.push({ item, chain, recipient: to, asset: 'native', amount: value.toString() });
    }
    if (action.kind === 'erc20Transfer') {
      const token = action.token as Address;
      const key = `${chain.id}:${token.toLowerCase()}`;
      const total = tokens.get(key) ?? { chain, token, amount: 0n };
      total.amount += BigInt(action.amount as string);
      tokens.set(key, total);
      recipients.push({ item, chain, recipient: action.recipient as Address, asset: token, amount: action.amount as string });
    }
    for (const a of Array.isArray(s.authorizations) ? s.authorizations : []) {
      if (!isDict(a)) continue;
      authorizations.push({
        item,
        chainId: a.chainId as number,
        allChains: a.allChains === true,
        delegate: a.delegate as Address,
        account: (a.authority as Address | null) ?? null,
      });
    }
    // What recipients and authorizations show in full: a plain transfer, an ERC-20 transfer; anything else is counted apart.
    if (action.kind === 'nativeTransfer' || action.kind === 'erc20Transfer') payments++;
    else otherOperations++;
  });
  const summary: BatchSummary = {
    operation: 'batch',
    from: signers[0] as Address,
    count: items.length,
    signers,
    totals: {
      native: [...native.values()].map((n) => ({ chain: n.chain, value: toAmount(n.value), maxFee: toAmount(n.maxFee) })),
      tokens: [...tokens.values()].map((t) => ({ chain: t.chain, token: t.token, amount: t.amount.toString() })),
    },
    recipients,
    authorizations,
    otherOperations,
    items,
  };
  return { summary, summaryText: batchText(summary, payments) };
}

/** `Batch of 12 payments: 3.5 ETH on Ethereum (chain 1), 12000000 base units of token 0x… on Ethereum (chain 1), to 12 recipients, max fees 0.01 ETH`. */
function batchText(summary: BatchSummary, payments: number): string {
  const { count, totals } = summary;
  const noun = payments === count ? (count === 1 ? 'payment' : 'payments') : count === 1 ? 'operation' : 'operations';
  const sent = [
    ...totals.native.filter((n) => n.value.wei !== '0').map((n) => `${n.value.ether} ${n.chain.currency} on ${chainText(n.chain)}`),
    ...totals.tokens.map((t) => `${t.amount} base units of token ${t.token} on ${chainText(t.chain)}`),
  ];
  const parts = [sent.length === 0 ? 'no value sent' : sent.join(', ')];
  const payees = new Set(summary.recipients.map((r) => r.recipient.toLowerCase())).size;
  if (payees > 0) parts.push(`to ${payees} ${payees === 1 ? 'recipient' : 'recipients'}`);
  if (summary.authorizations.length > 0)
    parts.push(
      `${summary.authorizations.length} EIP-7702 ${summary.authorizations.length === 1 ? 'delegation' : 'delegations'} (${[...new Set(summary.authorizations.map((a) => a.delegate))].join(', ')} will control the account)`,
    );
  if (summary.otherOperations > 0) parts.push(`${summary.otherOperations} other ${summary.otherOperations === 1 ? 'operation' : 'operations'}`);
  const fees = totals.native.filter((n) => n.maxFee.wei !== '0').map((n) => `${formatEther(BigInt(n.maxFee.wei))} ${n.chain.currency}`);
  if (fees.length > 0) parts.push(`max fees ${fees.join(' + ')}`);
  if (summary.signers.length > 1) parts.push(`from ${summary.signers.length} addresses`);
  return `Batch of ${count} ${noun}: ${parts.join(', ')}`;
}
