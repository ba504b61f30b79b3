import { concatHex, type Hex, keccak256, toHex } from 'viem';

/**
 * A minimal ERC-20 for the integration tests, hand-written EVM bytecode (no compiler), assembled
 * below from mnemonics so that a reader can check it. It mints the whole supply to the deployer and
 * implements exactly what the tests call:
 *   balanceOf(address) 0x70a08231 → sload(owner)
 *   transfer(address,uint256) 0xa9059cbb → reverts if the sender's balance is short; moves the
 *     amount; emits Transfer(from, to, amount); returns true
 * Storage: the balance of an address is at the slot whose number is the address. Anything else
 * reverts. No approve/transferFrom (not needed here), no input masking (the tests send
 * well-formed calldata).
 */
/** keccak256("Transfer(address,address,uint256)"). */
export const TRANSFER_TOPIC = keccak256(toHex('Transfer(address,address,uint256)'));

type Item = string | { push: Hex } | { label: string } | { ref: string };

// biome-ignore format: an opcode table
const OPCODES: Record<string, number> = {
  STOP: 0x00, ADD: 0x01, SUB: 0x03, LT: 0x10, EQ: 0x14, SHR: 0x1c, CALLER: 0x33, CALLDATALOAD: 0x35,
  CODECOPY: 0x39, MSTORE: 0x52, SLOAD: 0x54, SSTORE: 0x55, JUMPI: 0x57, JUMPDEST: 0x5b,
  DUP1: 0x80, DUP2: 0x81, DUP3: 0x82, SWAP1: 0x90, LOG3: 0xa3, RETURN: 0xf3, REVERT: 0xfd,
};

/** Assembles mnemonics, PUSHn of a hex constant, labels (JUMPDEST positions) and 2-byte label references (PUSH2). */
export function assemble(items: Item[]): Hex {
  const size = (item: Item) => (typeof item === 'string' ? 1 : 'push' in item ? 1 + (item.push.length - 2) / 2 : 'ref' in item ? 3 : 0);
  const labels = new Map<string, number>();
  let at = 0;
  for (const item of items) {
    if (typeof item === 'object' && 'label' in item) labels.set(item.label, at);
    at += size(item);
  }
  let out = '';
  for (const item of items) {
    if (typeof item === 'string') {
      const op = OPCODES[item];
      if (op === undefined) throw new Error(`unknown opcode ${item}`);
      out += op.toString(16).padStart(2, '0');
    } else if ('push' in item) {
      const n = (item.push.length - 2) / 2;
      if (n < 1 || n > 32) throw new Error('PUSH1..PUSH32');
      out += (0x5f + n).toString(16) + item.push.slice(2);
    } else if ('ref' in item) {
      const target = labels.get(item.ref);
      if (target === undefined) throw new Error(`unknown label ${item.ref}`);
      out += `61${target.toString(16).padStart(4, '0')}`;
    }
  }
  return `0x${out}`;
}

const p = (hex: string): { push: Hex } => ({ push: `0x${hex}` });

// biome-ignore format: an assembly listing
export const RUNTIME = assemble([
  p('00'), 'CALLDATALOAD', p('e0'), 'SHR', // selector
  'DUP1', p('70a08231'), 'EQ', { ref: 'balanceOf' }, 'JUMPI',
  'DUP1', p('a9059cbb'), 'EQ', { ref: 'transfer' }, 'JUMPI',
  p('00'), 'DUP1', 'REVERT',
  { label: 'balanceOf' }, 'JUMPDEST',
  p('04'), 'CALLDATALOAD', 'SLOAD', p('00'), 'MSTORE', p('20'), p('00'), 'RETURN',
  { label: 'transfer' }, 'JUMPDEST',
  p('24'), 'CALLDATALOAD', // [amt]
  'CALLER', 'SLOAD', // [amt, bal]
  'DUP2', 'DUP2', 'LT', { ref: 'fail' }, 'JUMPI', // bal < amt → revert
  'DUP2', 'SWAP1', 'SUB', 'CALLER', 'SSTORE', // balance[caller] = bal - amt; [amt]
  p('04'), 'CALLDATALOAD', 'DUP1', 'SLOAD', 'DUP3', 'ADD', 'SWAP1', 'SSTORE', // balance[to] += amt; [amt]
  p('00'), 'MSTORE', // mem[0] = amt
  p('04'), 'CALLDATALOAD', 'CALLER', { push: TRANSFER_TOPIC }, p('20'), p('00'), 'LOG3', // Transfer(caller, to, amt)
  p('01'), p('00'), 'MSTORE', p('20'), p('00'), 'RETURN', // return true
  { label: 'fail' }, 'JUMPDEST', p('00'), 'DUP1', 'REVERT',
]);

/** Init code: balance[deployer] = supply, then return the runtime (appended after the init code). */
export function erc20InitCode(supply: bigint): Hex {
  const supplyHex = supply.toString(16).padStart(64, '0');
  const runtimeLength = (RUNTIME.length - 2) / 2;
  const prefix = (offset: number) =>
    // biome-ignore format: an assembly listing
    assemble([
      { push: `0x${supplyHex}` }, 'CALLER', 'SSTORE',
      p(runtimeLength.toString(16).padStart(4, '0')), 'DUP1', p(offset.toString(16).padStart(4, '0')), p('00'), 'CODECOPY',
      p('00'), 'RETURN',
    ]);
  const initLength = (prefix(0).length - 2) / 2; // PUSH2 operands: the length does not depend on the offset
  return concatHex([prefix(initLength), RUNTIME]);
}
