import { decodeFunctionData, encodeFunctionData, parseAbi } from 'viem';
import { MAX_UINT256 } from './assertQuantity.js';
import type { Address, Hex } from './types.js';

/**
 * The token calls a summary decodes. ERC-20 `transferFrom` and ERC-721 `transferFrom` share one
 * selector, so that call is shown as `transferFrom` with an amount that is a token id for ERC-721.
 */
const TOKEN_ABI = parseAbi([
  'function transfer(address to, uint256 amount)',
  'function approve(address spender, uint256 amount)',
  'function increaseAllowance(address spender, uint256 addedValue)',
  'function transferFrom(address from, address to, uint256 amount)',
  'function safeTransferFrom(address from, address to, uint256 tokenId)',
  'function safeTransferFrom(address from, address to, uint256 tokenId, bytes data)',
  'function safeTransferFrom(address from, address to, uint256 id, uint256 amount, bytes data)',
  'function safeBatchTransferFrom(address from, address to, uint256[] ids, uint256[] amounts, bytes data)',
  'function setApprovalForAll(address operator, bool approved)',
]);

/** What a call to a contract does, as far as Custos can tell from its calldata. */
export type DecodedCall =
  | { kind: 'erc20Transfer'; token: Address; recipient: Address; amount: string }
  | { kind: 'erc20Approve'; token: Address; spender: Address; amount: string; unlimited: boolean }
  /** OpenZeppelin's `increaseAllowance`: the allowance grows by `amount` (not an ERC-20 function, but widely deployed). */
  | { kind: 'erc20IncreaseAllowance'; token: Address; spender: Address; amount: string; unlimited: boolean }
  | { kind: 'transferFrom'; token: Address; owner: Address; recipient: Address; amount: string }
  | { kind: 'erc721SafeTransferFrom'; token: Address; owner: Address; recipient: Address; tokenId: string; dataLength: number }
  | { kind: 'erc1155SafeTransferFrom'; token: Address; owner: Address; recipient: Address; id: string; amount: string; dataLength: number }
  | { kind: 'erc1155SafeBatchTransferFrom'; token: Address; owner: Address; recipient: Address; ids: string[]; amounts: string[]; dataLength: number }
  | { kind: 'setApprovalForAll'; token: Address; operator: Address; approved: boolean; unlimited: boolean }
  | { kind: 'unknownCall'; selector: Hex | null; dataLength: number };

/**
 * Decodes calldata sent to `to` as one of the token calls above. Calldata that does not decode to
 * exactly these bytes (a known selector with malformed or extra arguments) is an unknown call:
 * selector and length only, never a guess.
 */
export function decodeCall(to: Address, data: Hex): DecodedCall {
  const dataLength = (data.length - 2) / 2;
  const unknown: DecodedCall = { kind: 'unknownCall', selector: dataLength >= 4 ? (data.slice(0, 10) as Hex) : null, dataLength };
  if (dataLength < 4) return unknown;
  let decoded: ReturnType<typeof decodeFunctionData<typeof TOKEN_ABI>>;
  try {
    decoded = decodeFunctionData({ abi: TOKEN_ABI, data });
    // the canonical encoding of what was decoded must be the calldata itself (no trailing bytes)
    if (encodeFunctionData({ abi: TOKEN_ABI, functionName: decoded.functionName, args: decoded.args } as never).toLowerCase() !== data) return unknown;
  } catch {
    return unknown;
  }
  const token = to;
  const d = decoded;
  switch (d.functionName) {
    case 'transfer':
      return { kind: 'erc20Transfer', token, recipient: d.args[0], amount: d.args[1].toString() };
    case 'approve':
      return { kind: 'erc20Approve', token, spender: d.args[0], amount: d.args[1].toString(), unlimited: d.args[1] === MAX_UINT256 };
    case 'increaseAllowance':
      return { kind: 'erc20IncreaseAllowance', token, spender: d.args[0], amount: d.args[1].toString(), unlimited: d.args[1] === MAX_UINT256 };
    case 'transferFrom':
      return { kind: 'transferFrom', token, owner: d.args[0], recipient: d.args[1], amount: d.args[2].toString() };
    case 'safeTransferFrom': {
      const args = d.args as readonly unknown[];
      if (args.length === 5) {
        const [owner, recipient, id, amount, bytes] = args as [Address, Address, bigint, bigint, Hex];
        return { kind: 'erc1155SafeTransferFrom', token, owner, recipient, id: id.toString(), amount: amount.toString(), dataLength: (bytes.length - 2) / 2 };
      }
      const [owner, recipient, tokenId, bytes] = args as [Address, Address, bigint, Hex | undefined];
      return {
        kind: 'erc721SafeTransferFrom',
        token,
        owner,
        recipient,
        tokenId: tokenId.toString(),
        dataLength: bytes === undefined ? 0 : (bytes.length - 2) / 2,
      };
    }
    case 'safeBatchTransferFrom':
      return {
        kind: 'erc1155SafeBatchTransferFrom',
        token,
        owner: d.args[0],
        recipient: d.args[1],
        ids: d.args[2].map(String),
        amounts: d.args[3].map(String),
        dataLength: (d.args[4].length - 2) / 2,
      };
    case 'setApprovalForAll':
      return { kind: 'setApprovalForAll', token, operator: d.args[0], approved: d.args[1], unlimited: d.args[1] };
    default:
      return unknown;
  }
}
