import { getContractAddress, zeroAddress } from 'viem';
import { chainText, describeChain } from './describeChain.js';
import { decodeCall } from './decodeCall.js';
import { type Amount, formatEther, toAmount } from './formatAmount.js';
import { recoverAuthority } from './recoverAuthority.js';
import type { Address, OperationSummary, ParsedTransaction } from './types.js';

/** What a transaction does: a plain transfer, a deployment, or a (decoded or unknown) call. */
export type TransactionAction =
  | { kind: 'nativeTransfer'; recipient: Address }
  | { kind: 'deployment'; contractAddress: Address; initCodeLength: number }
  | ReturnType<typeof decodeCall>;

export interface AuthorizationInList {
  chainId: number;
  /** true for chain id 0: the authorization is valid on every chain. */
  allChains: boolean;
  delegate: Address;
  nonce: number;
  /** The account that signed it (recovered); null when the signature recovers no key. */
  authority: Address | null;
}

export interface TransactionSummary extends OperationSummary {
  operation: 'transaction';
  type: ParsedTransaction['type'];
  chain: ReturnType<typeof describeChain>;
  from: Address;
  to: Address | null;
  nonce: number;
  value: Amount;
  gas: string;
  gasPrice?: string;
  maxFeePerGas?: string;
  maxPriorityFeePerGas?: string;
  /** The most the fees can cost: gas × (gasPrice | maxFeePerGas). */
  maxFee: Amount;
  /** value + maxFee: the most the sender's balance can drop. */
  maxCost: Amount;
  action: TransactionAction;
  accessList?: { addresses: number; storageKeys: number };
  authorizations?: AuthorizationInList[];
}

const UNLIMITED = 'UNLIMITED (max uint256)';

/** The structured summary and the one-line text of a parsed transaction signed by `from`. */
export function summarizeTransaction(tx: ParsedTransaction, from: Address): { summary: TransactionSummary; summaryText: string } {
  const chain = describeChain(tx.chainId);
  const feePerGas = tx.gasPrice ?? tx.maxFeePerGas ?? 0n;
  const maxFeeWei = tx.gas * feePerGas;
  const action: TransactionAction =
    tx.to === null
      ? { kind: 'deployment', contractAddress: getContractAddress({ from, nonce: BigInt(tx.nonce) }), initCodeLength: (tx.data.length - 2) / 2 }
      : tx.data === '0x'
        ? { kind: 'nativeTransfer', recipient: tx.to }
        : decodeCall(tx.to, tx.data);
  const summary: TransactionSummary = {
    operation: 'transaction',
    type: tx.type,
    chain,
    from,
    to: tx.to,
    nonce: tx.nonce,
    value: toAmount(tx.value),
    gas: tx.gas.toString(),
    maxFee: toAmount(maxFeeWei),
    maxCost: toAmount(maxFeeWei + tx.value),
    action,
  };
  if (tx.gasPrice !== undefined) summary.gasPrice = tx.gasPrice.toString();
  if (tx.maxFeePerGas !== undefined) summary.maxFeePerGas = tx.maxFeePerGas.toString();
  if (tx.maxPriorityFeePerGas !== undefined) summary.maxPriorityFeePerGas = tx.maxPriorityFeePerGas.toString();
  if (tx.accessList !== undefined && tx.accessList.length > 0) {
    summary.accessList = { addresses: tx.accessList.length, storageKeys: tx.accessList.reduce((n, e) => n + e.storageKeys.length, 0) };
  }
  if (tx.authorizationList !== undefined) {
    summary.authorizations = tx.authorizationList.map((a) => ({
      chainId: a.chainId,
      allChains: a.chainId === 0,
      delegate: a.address,
      nonce: a.nonce,
      authority: recoverAuthority(a),
    }));
  }

  const currency = chain.currency;
  const eth = (wei: bigint) => `${formatEther(wei)} ${currency}`;
  const sending = tx.value > 0n ? `, sending ${eth(tx.value)}` : '';
  let what: string;
  switch (action.kind) {
    case 'nativeTransfer':
      what = `Send ${eth(tx.value)} to ${action.recipient}`;
      break;
    case 'deployment':
      what = `Deploy a contract (${action.initCodeLength} bytes of init code) at ${action.contractAddress}${sending}`;
      break;
    case 'erc20Transfer':
      what = `ERC-20 transfer of ${action.amount} base units of token ${action.token} to ${action.recipient}${sending}`;
      break;
    case 'erc20Approve':
      what = `ERC-20 approve: spender ${action.spender} may spend ${action.unlimited ? UNLIMITED : action.amount} base units of token ${action.token}${sending}`;
      break;
    case 'erc20IncreaseAllowance':
      what = `ERC-20 increaseAllowance: spender ${action.spender} may spend ${action.unlimited ? UNLIMITED : action.amount} more base units of token ${action.token}${sending}`;
      break;
    case 'transferFrom':
      what = `transferFrom of ${action.amount} (ERC-20 base units, or ERC-721 token id) of token ${action.token} from ${action.owner} to ${action.recipient}${sending}`;
      break;
    case 'erc721SafeTransferFrom':
      what = `ERC-721 transfer of token id ${action.tokenId} of ${action.token} from ${action.owner} to ${action.recipient}${sending}`;
      break;
    case 'erc1155SafeTransferFrom':
      what = `ERC-1155 transfer of ${action.amount} of id ${action.id} of ${action.token} from ${action.owner} to ${action.recipient}${sending}`;
      break;
    case 'erc1155SafeBatchTransferFrom':
      what = `ERC-1155 batch transfer of ${action.ids.length} ids of ${action.token} from ${action.owner} to ${action.recipient}${sending}`;
      break;
    case 'setApprovalForAll':
      what = action.approved
        ? `setApprovalForAll: operator ${action.operator} may move ALL tokens of collection ${action.token} (unlimited)${sending}`
        : `setApprovalForAll: revoke operator ${action.operator} on collection ${action.token}${sending}`;
      break;
    case 'unknownCall':
      what =
        action.selector === null
          ? `Call ${tx.to} with ${action.dataLength} bytes of data (no function selector)${sending}`
          : `Call ${tx.to}: unknown function ${action.selector} (${action.dataLength} bytes of data)${sending}`;
      break;
  }
  const parts = [`${what} on ${chainText(chain)}`, `nonce ${tx.nonce}`, `max fee ${eth(maxFeeWei)}`];
  if (summary.accessList !== undefined) parts.push(`access list of ${summary.accessList.addresses} addresses, ${summary.accessList.storageKeys} storage keys`);
  for (const a of summary.authorizations ?? []) {
    const where = a.allChains ? 'on EVERY chain (chainId 0)' : `on ${chainText(describeChain(a.chainId))}`;
    const account = a.authority ?? '(invalid signature: recovers no account)';
    // EIP-7702: delegating to the zero address clears the account's code
    parts.push(
      a.delegate === zeroAddress
        ? `EIP-7702 authorization of account ${account} ${where}: clears its delegation`
        : `EIP-7702 authorization of account ${account} ${where}: delegate: ${a.delegate} — this contract will control the account`,
    );
  }
  return { summary, summaryText: parts.join(', ') };
}
