import { readFileSync } from 'node:fs';
import { CustosError } from '@custos/kernel';

/** A token the operator vouches for (`custos serve --token-list FILE`): how its amounts are shown. */
export interface KnownToken {
  chainId: number;
  /** Lower case. */
  address: string;
  symbol: string;
  decimals: number;
}

/** The operator's token list, looked up by chain and contract address. Never filled from a request. */
export interface TokenList {
  find(chainId: number, address: string): KnownToken | undefined;
  readonly size: number;
}

const ADDRESS = /^0x[0-9a-fA-F]{40}$/;
/** A symbol is shown as the unit of an amount: short, printable ASCII, no spaces (operator input, escaped anyway). */
const SYMBOL = /^[A-Za-z0-9.$_+-]{1,16}$/;
const MAX_TOKENS = 100_000;

function invalid(what: string): CustosError {
  return new CustosError('invalid_input', `--token-list: ${what}`, { details: { field: 'token-list' } });
}

/**
 * Checks a token list: a JSON array of `{ chainId, address, symbol, decimals }` (chainId a positive
 * safe integer, address 0x + 40 hex digits, symbol 1–16 of `A–Z a–z 0–9 . $ _ + -`, decimals 0–36),
 * each (chainId, address) at most once.
 */
export function parseTokenList(value: unknown): TokenList {
  if (!Array.isArray(value)) throw invalid('expected a JSON array of { chainId, address, symbol, decimals }');
  if (value.length > MAX_TOKENS) throw invalid(`expected at most ${MAX_TOKENS} tokens, got ${value.length}`);
  const tokens = new Map<string, KnownToken>();
  value.forEach((entry: unknown, i) => {
    const where = `[${i}]`;
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) throw invalid(`${where}: expected an object`);
    const { chainId, address, symbol, decimals, ...rest } = entry as Record<string, unknown>;
    const extra = Object.keys(rest)[0];
    if (extra !== undefined) throw invalid(`${where}.${extra.slice(0, 64)}: is not a known field`);
    if (typeof chainId !== 'number' || !Number.isSafeInteger(chainId) || chainId < 1) throw invalid(`${where}.chainId: expected a positive integer`);
    if (typeof address !== 'string' || !ADDRESS.test(address)) throw invalid(`${where}.address: expected 0x and 40 hex digits`);
    if (typeof symbol !== 'string' || !SYMBOL.test(symbol)) throw invalid(`${where}.symbol: expected 1 to 16 of A-Z a-z 0-9 . $ _ + -`);
    if (typeof decimals !== 'number' || !Number.isInteger(decimals) || decimals < 0 || decimals > 36)
      throw invalid(`${where}.decimals: expected an integer from 0 to 36`);
    const key = `${chainId}:${address.toLowerCase()}`;
    if (tokens.has(key)) throw invalid(`${where}: chain ${chainId} address ${address} is listed twice`);
    tokens.set(key, { chainId, address: address.toLowerCase(), symbol, decimals });
  });
  return {
    find: (chainId, address) => tokens.get(`${chainId}:${address.toLowerCase()}`),
    size: tokens.size,
  };
}

/** Reads and checks the token list file (JSON). */
export function readTokenList(path: string): TokenList {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new CustosError('invalid_input', `--token-list: cannot read ${path}`, { details: { field: 'token-list' }, cause: error });
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw invalid(`${path} is not valid JSON`);
  }
  return parseTokenList(value);
}

export const EMPTY_TOKEN_LIST: TokenList = { find: () => undefined, size: 0 };

/** An amount of base units as a decimal of `decimals` places, exactly: (1500000, 6) → "1.5". */
export function formatUnits(baseUnits: string, decimals: number): string {
  const value = BigInt(baseUnits);
  if (decimals === 0) return value.toString();
  const scale = 10n ** BigInt(decimals);
  const fraction = (value % scale).toString().padStart(decimals, '0').replace(/0+$/, '');
  return fraction === '' ? (value / scale).toString() : `${value / scale}.${fraction}`;
}
