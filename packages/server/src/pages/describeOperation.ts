import type { OperationSummary } from '@custos/kernel';
import { type Html, html, joinHtml, showText } from './html.js';
import { formatUnits, type TokenList } from './tokenList.js';

/** One line of the summary: what it is, and its value (kernel-computed, or app text shown by showText). */
export interface SummaryRow {
  label: string;
  value: Html;
}

/**
 * An operation as the approval page lays it out: a headline, the facts the kernel computed (chain,
 * from, to, amounts, fees), the warnings, and the text the app supplied (shown apart, unverified).
 */
export interface OperationView {
  headline: string;
  rows: SummaryRow[];
  warnings: string[];
  appText: SummaryRow[];
  /** Part of the operation could not be shown (typed data beyond the page's limits): the page must not offer to approve it. */
  incomplete?: boolean;
}

type Dict = Record<string, unknown>;

const isDict = (v: unknown): v is Dict => typeof v === 'object' && v !== null && !Array.isArray(v);
const str = (o: Dict, key: string): string | undefined => (typeof o[key] === 'string' ? (o[key] as string) : undefined);
const num = (o: Dict, key: string): number | undefined => (typeof o[key] === 'number' ? (o[key] as number) : undefined);
const dict = (o: Dict, key: string): Dict | undefined => (isDict(o[key]) ? (o[key] as Dict) : undefined);

/** An address or a hash: set apart in a monospace face so that it is read character by character. */
function code(text: string): Html {
  return html`<span class="mono">${showText(text)}</span>`;
}

function plain(text: string): Html {
  return html`${showText(text)}`;
}

function chainOf(summary: Dict): { id: number; text: string; currency: string } | undefined {
  const chain = dict(summary, 'chain');
  const id = chain === undefined ? undefined : num(chain, 'id');
  if (chain === undefined || id === undefined) return undefined;
  const name = str(chain, 'name');
  return { id, text: name === undefined ? `chain ${id} (a chain Custos has no name for)` : `${name} (chain ${id})`, currency: str(chain, 'currency') ?? 'ETH' };
}

/** `1.5 ETH (1500000000000000000 wei)`. */
function nativeAmount(amount: Dict | undefined, currency: string): Html | undefined {
  if (amount === undefined) return undefined;
  const ether = str(amount, 'ether');
  const wei = str(amount, 'wei');
  if (ether === undefined || wei === undefined) return undefined;
  return html`<strong>${ether} ${currency}</strong> <span class="aside">(${wei} wei)</span>`;
}

function isDecimal(text: string | undefined): text is string {
  return text !== undefined && /^[0-9]{1,80}$/.test(text);
}

/** A token amount: in the token's unit when the operator's list knows the token, else in base units. */
function tokenAmount(tokens: TokenList, chainId: number | undefined, token: string, amount: string, unlimited = false): Html {
  const known = chainId === undefined ? undefined : tokens.find(chainId, token);
  if (unlimited)
    return html`<strong>UNLIMITED${known === undefined ? '' : ` ${known.symbol}`}</strong> <span class="aside">(${amount} base units: the largest uint256)</span>`;
  if (known !== undefined && isDecimal(amount))
    return html`<strong>${formatUnits(amount, known.decimals)} ${known.symbol}</strong> <span class="aside">(${amount} base units)</span>`;
  return html`<strong>${amount} base units</strong> <span class="aside">(of a token not in the operator's token list: its decimals are unknown)</span>`;
}

function tokenName(tokens: TokenList, chainId: number | undefined, token: string): Html {
  const known = chainId === undefined ? undefined : tokens.find(chainId, token);
  if (known !== undefined) return html`<strong>${known.symbol}</strong>, contract ${code(token)}`;
  return html`a token not in the operator's token list, contract ${code(token)}`;
}

/**
 * Lays out an operation summary (the kernel's OperationSummary: see summarizeTransaction,
 * prepareMessage, prepareTypedData, prepareAuthorization, summarizeHash). Every value is read
 * defensively: a summary of an unexpected shape gets a warning and the kernel's one-line text.
 */
export function describeOperation(summary: OperationSummary, summaryText: string, tokens: TokenList): OperationView {
  const s = summary as Dict;
  const view: OperationView = { headline: '', rows: [], warnings: [], appText: [] };
  let known: boolean;
  switch (s.operation) {
    case 'transaction':
      known = describeTransaction(s, tokens, view);
      break;
    case 'message':
      known = describeMessage(s, view);
      break;
    case 'typedData':
      known = describeTypedData(s, tokens, view);
      break;
    case 'authorization':
      known = describeAuthorization(s, view);
      break;
    case 'hash':
      known = describeHash(s, view);
      break;
    case 'batch':
      known = describeBatch(s, tokens, view);
      break;
    default:
      known = false;
  }
  if (!known) {
    view.headline = 'Sign an operation';
    view.warnings.push('Custos cannot lay this operation out in detail. Its description follows; approve only if you expected exactly this.');
    // the kernel's one-line text may quote the app's (a message's text): it goes in the app's box
    view.appText.push({ label: 'Description', value: plain(summaryText) });
  }
  return view;
}

function describeTransaction(s: Dict, tokens: TokenList, view: OperationView): boolean {
  const chain = chainOf(s);
  const from = str(s, 'from');
  const action = dict(s, 'action');
  const kind = action === undefined ? undefined : str(action, 'kind');
  if (chain === undefined || from === undefined || action === undefined || kind === undefined) return false;
  const to = str(s, 'to');
  const value = nativeAmount(dict(s, 'value'), chain.currency);
  const valueEther = str(dict(s, 'value') ?? {}, 'ether');
  const rows = view.rows;
  const token = str(action, 'token');
  rows.push({ label: 'Chain', value: plain(chain.text) });
  rows.push({ label: 'From', value: code(from) });
  // a call's `to` is the contract called (a token's recipient is a row of its own)
  const toLabel = kind === 'nativeTransfer' || to === undefined ? 'To' : 'To (the contract called)';
  rows.push({ label: toLabel, value: to === undefined ? plain('nobody: this creates a new contract') : code(to) });
  switch (kind) {
    case 'nativeTransfer':
      view.headline = `Send ${valueEther ?? '?'} ${chain.currency}`;
      break;
    case 'deployment': {
      view.headline = 'Deploy a contract';
      const address = str(action, 'contractAddress');
      if (address !== undefined) rows.push({ label: 'New contract’s address', value: code(address) });
      rows.push({ label: 'Contract code', value: plain(`${num(action, 'initCodeLength') ?? '?'} bytes of init code`) });
      view.warnings.push('Contract deployment: this creates a new contract from code that Custos cannot check.');
      break;
    }
    case 'erc20Transfer': {
      view.headline = 'Send a token (ERC-20 transfer)';
      const recipient = str(action, 'recipient');
      const amount = str(action, 'amount');
      if (token === undefined || recipient === undefined || amount === undefined) return false;
      rows.push({ label: 'Token', value: tokenName(tokens, chain.id, token) });
      rows.push({ label: 'Token recipient', value: code(recipient) });
      rows.push({ label: 'Token amount', value: tokenAmount(tokens, chain.id, token, amount) });
      break;
    }
    case 'erc20Approve':
    case 'erc20IncreaseAllowance': {
      const spender = str(action, 'spender');
      const amount = str(action, 'amount');
      const unlimited = action.unlimited === true;
      if (token === undefined || spender === undefined || amount === undefined) return false;
      const increase = kind === 'erc20IncreaseAllowance';
      view.headline = increase
        ? unlimited
          ? 'Allow UNLIMITED spending of a token (ERC-20 increaseAllowance)'
          : 'Allow more spending of a token (ERC-20 increaseAllowance)'
        : unlimited
          ? 'Allow UNLIMITED spending of a token (ERC-20 approve)'
          : 'Allow spending of a token (ERC-20 approve)';
      rows.push({ label: 'Token', value: tokenName(tokens, chain.id, token) });
      rows.push({ label: 'Spender (may take the tokens)', value: code(spender) });
      rows.push({ label: increase ? 'Allowance added' : 'Allowance', value: tokenAmount(tokens, chain.id, token, amount, unlimited) });
      if (unlimited) view.warnings.push('Unlimited allowance: the spender may take ALL of this token from the account, now and at any time later.');
      break;
    }
    case 'transferFrom': {
      view.headline = 'Move tokens (transferFrom)';
      const owner = str(action, 'owner');
      const recipient = str(action, 'recipient');
      const amount = str(action, 'amount');
      if (token === undefined || owner === undefined || recipient === undefined || amount === undefined) return false;
      rows.push({ label: 'Token', value: tokenName(tokens, chain.id, token) });
      rows.push({ label: 'Taken from', value: code(owner) });
      rows.push({ label: 'Token recipient', value: code(recipient) });
      rows.push({ label: 'Amount (ERC-20) or token id (ERC-721)', value: tokenAmount(tokens, chain.id, token, amount) });
      break;
    }
    case 'erc721SafeTransferFrom': {
      view.headline = 'Send an NFT (ERC-721)';
      const owner = str(action, 'owner');
      const recipient = str(action, 'recipient');
      const tokenId = str(action, 'tokenId');
      if (token === undefined || owner === undefined || recipient === undefined || tokenId === undefined) return false;
      rows.push({ label: 'Collection', value: code(token) });
      rows.push({ label: 'Token id', value: plain(tokenId) });
      rows.push({ label: 'Taken from', value: code(owner) });
      rows.push({ label: 'Token recipient', value: code(recipient) });
      break;
    }
    case 'erc1155SafeTransferFrom':
    case 'erc1155SafeBatchTransferFrom': {
      const batch = kind === 'erc1155SafeBatchTransferFrom';
      view.headline = batch ? 'Send tokens in a batch (ERC-1155)' : 'Send tokens (ERC-1155)';
      const owner = str(action, 'owner');
      const recipient = str(action, 'recipient');
      if (token === undefined || owner === undefined || recipient === undefined) return false;
      rows.push({ label: 'Collection', value: code(token) });
      rows.push({ label: 'Taken from', value: code(owner) });
      rows.push({ label: 'Token recipient', value: code(recipient) });
      const ids = batch ? action.ids : [action.id];
      const amounts = batch ? action.amounts : [action.amount];
      if (!Array.isArray(ids) || !Array.isArray(amounts)) return false;
      rows.push({
        label: 'Token ids and amounts',
        value: joinHtml(
          ids.map((id, i) => html`<span class="item">id ${String(id)}: ${String(amounts[i])} base units</span>`),
          html`<br>`,
        ),
      });
      break;
    }
    case 'setApprovalForAll': {
      const operator = str(action, 'operator');
      if (token === undefined || operator === undefined) return false;
      const approved = action.approved === true;
      view.headline = approved ? 'Allow an operator to move ALL tokens of a collection' : 'Revoke an operator of a collection';
      rows.push({ label: 'Collection', value: code(token) });
      rows.push({ label: approved ? 'Operator (may move all of them)' : 'Operator (loses its permission)', value: code(operator) });
      if (approved) view.warnings.push('Unlimited allowance: the operator may move ALL tokens of this collection from the account, now and at any time later.');
      break;
    }
    case 'unknownCall': {
      view.headline = 'Call a contract';
      const selector = str(action, 'selector');
      rows.push({
        label: 'Call data',
        value: plain(`${num(action, 'dataLength') ?? '?'} bytes${selector === undefined ? ' (no function selector)' : `, function selector ${selector}`}`),
      });
      view.warnings.push('Unknown function: Custos cannot decode what this call does. Approve only if you trust the contract and expected this call.');
      break;
    }
    default:
      return false;
  }
  if (value !== undefined) rows.push({ label: `Amount of ${chain.currency} sent`, value });
  const maxFee = nativeAmount(dict(s, 'maxFee'), chain.currency);
  if (maxFee !== undefined) rows.push({ label: 'Maximum fee', value: maxFee });
  const maxCost = nativeAmount(dict(s, 'maxCost'), chain.currency);
  if (maxCost !== undefined) rows.push({ label: 'Most it can cost in all', value: maxCost });
  const nonce = num(s, 'nonce');
  if (nonce !== undefined) rows.push({ label: 'Nonce', value: plain(String(nonce)) });
  const type = str(s, 'type');
  if (type !== undefined) rows.push({ label: 'Transaction type', value: plain(type) });
  const accessList = dict(s, 'accessList');
  if (accessList !== undefined)
    rows.push({
      label: 'Access list',
      value: plain(`${num(accessList, 'addresses') ?? '?'} addresses, ${num(accessList, 'storageKeys') ?? '?'} storage keys`),
    });
  if (Array.isArray(s.authorizations)) {
    for (const a of s.authorizations) {
      if (!isDict(a)) return false;
      const delegate = str(a, 'delegate');
      const authority = str(a, 'authority');
      const allChains = a.allChains === true;
      const where = allChains ? 'on EVERY chain' : `on chain ${num(a, 'chainId') ?? '?'}`;
      const account = authority ?? '(an invalid signature: no account)';
      rows.push({ label: 'EIP-7702 delegation', value: html`account ${code(account)} ${where}: delegate ${code(delegate ?? '?')}` });
      if (delegate !== undefined && /^0x0{40}$/i.test(delegate)) continue;
      view.warnings.push(
        `Delegation (EIP-7702): the contract ${delegate ?? '?'} will control the account ${account} ${where} and can move everything it holds.`,
      );
    }
  }
  return true;
}

function describeMessage(s: Dict, view: OperationView): boolean {
  const from = str(s, 'from');
  if (from === undefined) return false;
  view.headline = 'Sign a message';
  view.rows.push({ label: 'Signed by', value: code(from) });
  view.rows.push({ label: 'Size', value: plain(`${num(s, 'byteLength') ?? '?'} bytes`) });
  const text = str(s, 'text');
  const raw = str(s, 'raw');
  if (s.encoding === 'text' && text !== undefined) {
    view.appText.push({ label: 'Message', value: html`<span class="message">${showText(text)}</span>` });
    return true;
  }
  if (s.encoding === 'raw' && raw !== undefined) {
    view.appText.push({ label: 'Message (raw bytes, hexadecimal)', value: code(raw) });
    return true;
  }
  return false;
}

/** The most values of typed data shown; the rest is counted, not shown. */
const MAX_TYPED_VALUES = 500;
const MAX_TYPED_DEPTH = 12;

/** Typed-data values as nested lists: names and values are the app's, shown by showText. */
function typedValue(value: unknown, depth: number, budget: { left: number; cut: boolean }): Html {
  if (budget.left <= 0) {
    budget.cut = true;
    return html`<span class="aside">…</span>`;
  }
  budget.left--;
  if (value === null || value === undefined) return html`<span class="aside">(none)</span>`;
  if (typeof value === 'string') return showText(value);
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') return html`${String(value)}`;
  if (depth >= MAX_TYPED_DEPTH) {
    budget.cut = true;
    return html`<span class="aside">(nested too deep to show)</span>`;
  }
  if (Array.isArray(value)) {
    if (value.length === 0) return html`<span class="aside">(empty list)</span>`;
    return html`<ol class="typed" start="0">${value.map((v) => html`<li>${typedValue(v, depth + 1, budget)}</li>`)}</ol>`;
  }
  if (isDict(value)) {
    const entries = Object.entries(value);
    if (entries.length === 0) return html`<span class="aside">(empty)</span>`;
    return html`<dl class="typed">${entries.map(([k, v]) => html`<dt>${showText(k)}</dt><dd>${typedValue(v, depth + 1, budget)}</dd>`)}</dl>`;
  }
  return html`<span class="aside">(unknown value)</span>`;
}

function describeTypedData(s: Dict, tokens: TokenList, view: OperationView): boolean {
  const from = str(s, 'from');
  const domain = dict(s, 'domain');
  const primaryType = str(s, 'primaryType');
  if (from === undefined || domain === undefined || primaryType === undefined) return false;
  const chain = chainOf(s);
  view.headline = 'Sign typed data (EIP-712)';
  // a chain id too large for a number has no label: shown as the domain has it
  const chainId = domain.chainId;
  const chainText =
    chain !== undefined ? chain.text : chainId === undefined || chainId === null ? 'any chain: the data names none' : `chain ${String(chainId)}`;
  view.rows.push({ label: 'Chain', value: plain(chainText) });
  view.rows.push({ label: 'Signed by', value: code(from) });
  const contract = str(domain, 'verifyingContract');
  if (contract !== undefined) view.rows.push({ label: 'Contract (verifies the signature)', value: code(contract) });
  if (chain === undefined && (chainId === undefined || chainId === null))
    view.warnings.push('No chain: this signature is valid on every chain where the contract exists.');
  const permit = dict(s, 'permit');
  if (permit !== undefined) {
    const spender = str(permit, 'spender');
    const amount = str(permit, 'amount');
    const token = str(permit, 'token');
    const unlimited = permit.unlimited === true;
    if (spender !== undefined && amount !== undefined) {
      view.headline = unlimited ? 'Allow UNLIMITED spending of a token (ERC-20 permit)' : 'Allow spending of a token (ERC-20 permit)';
      if (token !== undefined) view.rows.push({ label: 'Token', value: tokenName(tokens, chain?.id, token) });
      view.rows.push({ label: 'Spender (may take the tokens)', value: code(spender) });
      view.rows.push({
        label: 'Allowance',
        value: token === undefined ? html`<strong>${amount} base units</strong>` : tokenAmount(tokens, chain?.id, token, amount, unlimited),
      });
      const deadline = str(permit, 'deadline');
      if (deadline !== undefined && deadline !== '') view.rows.push({ label: 'Permit valid until (Unix time)', value: plain(deadline) });
      if (unlimited) view.warnings.push('Unlimited allowance: the spender may take ALL of this token from the account, now and at any time later.');
    }
  }
  const budget = { left: MAX_TYPED_VALUES, cut: false };
  const shownDomain = Object.fromEntries(Object.entries(domain).filter(([k]) => k !== 'verifyingContract'));
  view.appText.push({ label: 'Domain', value: typedValue(shownDomain, 0, budget) });
  view.appText.push({ label: 'Type', value: showText(primaryType) });
  view.appText.push({ label: 'Data', value: typedValue(s.message, 0, budget) });
  // What is not shown cannot be approved here: a field past the limits (a spender after a long
  // list) would otherwise be approved unseen.
  if (budget.cut) {
    view.incomplete = true;
    view.warnings.push('This request is too large to show in full on this page, so it cannot be approved here. Reject it unless you know exactly what it is.');
  }
  return true;
}

function describeAuthorization(s: Dict, view: OperationView): boolean {
  const from = str(s, 'from');
  const delegate = str(s, 'delegate');
  const chain = chainOf(s);
  if (from === undefined || delegate === undefined || chain === undefined) return false;
  const allChains = s.allChains === true;
  const revokes = s.revokesDelegation === true;
  view.headline = revokes ? 'Clear your account’s delegation (EIP-7702)' : 'Hand control of your account to a contract (EIP-7702)';
  view.rows.push({ label: 'Chain', value: allChains ? html`<strong>EVERY chain</strong> (chain id 0)` : plain(chain.text) });
  view.rows.push({ label: 'Account', value: code(from) });
  view.rows.push({ label: revokes ? 'Delegate' : 'Delegate (will control the account)', value: revokes ? plain('none (the zero address)') : code(delegate) });
  const nonce = num(s, 'nonce');
  if (nonce !== undefined) view.rows.push({ label: 'Account nonce', value: plain(String(nonce)) });
  if (!revokes) view.warnings.push(`Delegation: the contract ${delegate} will control this account and can move everything it holds.`);
  if (allChains) view.warnings.push('Every chain: this authorization is valid on all chains, not one.');
  return true;
}

function describeHash(s: Dict, view: OperationView): boolean {
  const from = str(s, 'from');
  const hash = str(s, 'hash');
  if (from === undefined || hash === undefined) return false;
  view.headline = 'Sign a raw hash (blind signing)';
  view.rows.push({ label: 'Signed by', value: code(from) });
  view.rows.push({ label: 'Hash', value: code(hash) });
  view.warnings.push(
    'Blind signing: Custos cannot show what this hash commits to. It may be a transaction on any chain, a token permit, anything. Approve only if you know exactly where it comes from.',
  );
  return true;
}

/** The most items a batch's page lays out (the kernel allows 100); more is not shown, so not approvable here. */
const MAX_BATCH_ITEMS_SHOWN = 100;

/**
 * A batch (kernel/batchApproval.ts): the totals per asset first — native value and maximum fees per
 * chain, each ERC-20 contract's total —, the signers and the number of recipients, then every item
 * laid out as its own operation would be (numbered from 1), and each item's warnings, naming the items.
 */
function describeBatch(s: Dict, tokens: TokenList, view: OperationView): boolean {
  const count = num(s, 'count');
  const totals = dict(s, 'totals');
  const items = s.items;
  if (count === undefined || totals === undefined || !Array.isArray(items) || items.length !== count || !Array.isArray(s.signers)) return false;
  const native = Array.isArray(totals.native) ? totals.native : [];
  const tokenTotals = Array.isArray(totals.tokens) ? totals.tokens : [];
  const subs: OperationView[] = [];
  for (const item of items) {
    if (!isDict(item) || !isDict(item.summary) || typeof item.summaryText !== 'string' || item.summary.operation === 'batch') return false;
    subs.push(describeOperation(item.summary as OperationSummary, item.summaryText, tokens));
  }
  const payments = subs.every((sub) => /^Send /.test(sub.headline));
  view.headline = `Approve a batch of ${count} ${payments ? (count === 1 ? 'payment' : 'payments') : count === 1 ? 'operation' : 'operations'}`;
  const rows = view.rows;
  rows.push({ label: 'Operations in the batch', value: plain(String(count)) });
  for (const n of native) {
    if (!isDict(n)) return false;
    const chain = chainOf(n);
    if (chain === undefined) return false;
    const value = nativeAmount(dict(n, 'value'), chain.currency);
    if (value !== undefined) rows.push({ label: `Total ${chain.currency} sent on ${chain.text}`, value });
    const maxFee = nativeAmount(dict(n, 'maxFee'), chain.currency);
    if (maxFee !== undefined) rows.push({ label: `Maximum fees in all on ${chain.text}`, value: maxFee });
  }
  for (const t of tokenTotals) {
    if (!isDict(t)) return false;
    const chain = chainOf(t);
    const token = str(t, 'token');
    const amount = str(t, 'amount');
    if (chain === undefined || token === undefined || amount === undefined) return false;
    rows.push({
      label: `Total of a token sent on ${chain.text}`,
      value: html`${tokenAmount(tokens, chain.id, token, amount)} of ${tokenName(tokens, chain.id, token)}`,
    });
  }
  const recipients = Array.isArray(s.recipients) ? s.recipients.filter(isDict) : [];
  rows.push({ label: 'Recipients', value: plain(String(new Set(recipients.map((r) => String(r.recipient).toLowerCase())).size)) });
  rows.push({
    label: 'Signed by',
    value: joinHtml(
      (s.signers as unknown[]).map((a) => code(String(a))),
      html`<br>`,
    ),
  });
  if (count > MAX_BATCH_ITEMS_SHOWN) {
    view.incomplete = true;
    view.warnings.push('This batch is too large to show in full on this page, so it cannot be approved here.');
  }
  const warned = new Map<string, number[]>();
  subs.slice(0, MAX_BATCH_ITEMS_SHOWN).forEach((sub, i) => {
    const keyIndex = num(items[i] as Dict, 'keyIndex');
    rows.push({
      label: `Item ${i + 1} of ${count}`,
      value: html`<strong>${sub.headline}</strong><dl class="item">${sub.rows.map((row) => html`<dt>${row.label}</dt><dd>${row.value}</dd>`)}<dt>Key index</dt><dd>${String(keyIndex ?? '?')}</dd></dl>`,
    });
    for (const w of sub.warnings) warned.set(w, [...(warned.get(w) ?? []), i + 1]);
    if (sub.incomplete === true) view.incomplete = true;
  });
  for (const [w, at] of warned) view.warnings.push(`${at.length === 1 ? `Item ${at[0]}` : `Items ${at.join(', ')}`}: ${w}`);
  return true;
}
