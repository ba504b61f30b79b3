/** A chain as the summary shows it: its id, and its name when the id is a well-known one. */
export interface ChainLabel {
  id: number;
  name: string | null;
  /** Symbol of the native currency (18 decimals); `ETH` for chains not in the table. */
  currency: string;
}

/** Well-known chain ids (chainlist.org). A chain id not listed is shown by its number only. */
const KNOWN_CHAINS: ReadonlyMap<number, readonly [name: string, currency: string]> = new Map([
  [1, ['Ethereum', 'ETH']],
  [10, ['OP Mainnet', 'ETH']],
  [56, ['BNB Smart Chain', 'BNB']],
  [100, ['Gnosis', 'xDAI']],
  [130, ['Unichain', 'ETH']],
  [137, ['Polygon', 'POL']],
  [324, ['zkSync Era', 'ETH']],
  [8453, ['Base', 'ETH']],
  [17000, ['Holesky', 'ETH']],
  [31337, ['Local development chain (Anvil/Hardhat)', 'ETH']],
  [42161, ['Arbitrum One', 'ETH']],
  [42220, ['Celo', 'CELO']],
  [43114, ['Avalanche C-Chain', 'AVAX']],
  [59144, ['Linea', 'ETH']],
  [81457, ['Blast', 'ETH']],
  [84532, ['Base Sepolia', 'ETH']],
  [534352, ['Scroll', 'ETH']],
  [560048, ['Hoodi', 'ETH']],
  [7777777, ['Zora', 'ETH']],
  [11155111, ['Sepolia', 'ETH']],
  [11155420, ['OP Sepolia', 'ETH']],
]);

export function describeChain(id: number): ChainLabel {
  const known = KNOWN_CHAINS.get(id);
  return { id, name: known?.[0] ?? null, currency: known?.[1] ?? 'ETH' };
}

/** `Ethereum (chain 1)` or `chain 123456`. */
export function chainText(chain: ChainLabel): string {
  return chain.name === null ? `chain ${chain.id}` : `${chain.name} (chain ${chain.id})`;
}
