import { toHex } from '../util/hex.js';
import type { Address, OperationSummary } from './types.js';

/**
 * The summary of a raw 32-byte hash: the hash itself, and the plain statement that nothing more
 * can be shown (it may be a transaction of any chain, a permit, anything: blind signing).
 */
export function summarizeHash(digest: Uint8Array, from: Address): { summary: OperationSummary; summaryText: string } {
  const hash = `0x${toHex(digest)}`;
  return {
    summary: { operation: 'hash', from, hash, blind: true },
    summaryText: `Sign the raw 32-byte hash ${hash} as ${from} — blind signing: what it commits to cannot be shown`,
  };
}
