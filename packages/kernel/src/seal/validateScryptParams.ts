import { invalidInput } from '../errors.js';
import type { ScryptParams } from './types.js';

/**
 * What Custos accepts for scrypt. An envelope asking for more is refused before scrypt runs: the
 * parameters come from a file an attacker may have written, and N·r·p decides how much memory
 * and time opening it costs (denial-of-service guard).
 */
export const SCRYPT_BOUNDS = Object.freeze({
  minN: 2 ** 10,
  maxN: 2 ** 20,
  minR: 1,
  maxR: 32,
  minP: 1,
  maxP: 16,
  minSaltBytes: 16,
  maxSaltBytes: 64,
  /** scrypt's large array, 128·r·N bytes: at most 256 MiB, twice what the default cost (N = 2^17, r = 8) needs. */
  maxMemoryBytes: 2 ** 28,
  /** The work, 128·r·N·p bytes mixed: at most 512 MiB, four times the default's. */
  maxWorkBytes: 2 ** 29,
});

function describe(value: unknown): string {
  return typeof value === 'number' ? String(value) : typeof value;
}

/**
 * Checks scrypt parameters against SCRYPT_BOUNDS; throws invalid_input naming `${field}.N`,
 * `${field}.r`, `${field}.p` or `${field}.salt` (expected vs. got; never the salt's bytes).
 */
export function validateScryptParams(params: unknown, field = 'scrypt'): asserts params is ScryptParams {
  const b = SCRYPT_BOUNDS;
  // An object holding the parameters
  if (typeof params !== 'object' || params === null) throw invalidInput(field, 'an object', describe(params));
  const { N, r, p, salt } = params as Record<string, unknown>;
  // N: a power of two in [2^10, 2^20]
  if (typeof N !== 'number' || !Number.isSafeInteger(N) || N < b.minN || N > b.maxN || (N & (N - 1)) !== 0) {
    throw invalidInput(`${field}.N`, 'a power of two in [2^10, 2^20]', describe(N));
  }
  // r: an integer in [1, 32]
  if (typeof r !== 'number' || !Number.isSafeInteger(r) || r < b.minR || r > b.maxR) {
    throw invalidInput(`${field}.r`, `an integer in [${b.minR}, ${b.maxR}]`, describe(r));
  }
  // RFC 7914 §2: N < 2^(128·r/8); only binds when r = 1 (N < 2^16)
  if (r === 1 && N >= 2 ** 16) throw invalidInput(`${field}.N`, 'N < 2^16 when r = 1 (RFC 7914)', describe(N));
  // p: an integer in [1, 16]
  if (typeof p !== 'number' || !Number.isSafeInteger(p) || p < b.minP || p > b.maxP) {
    throw invalidInput(`${field}.p`, `an integer in [${b.minP}, ${b.maxP}]`, describe(p));
  }
  // Each parameter within its bound is not enough: N = 2^20 with r = 32 asks for 4 GiB (and p = 16
  // times that work). The envelope comes from the store — someone who can write to it could make
  // every unseal exhaust the server's memory — so bound the products too.
  if (128 * r * N > b.maxMemoryBytes) {
    throw invalidInput(`${field}.r`, `N and r needing at most ${b.maxMemoryBytes / 2 ** 20} MiB (128·r·N bytes)`, `${(128 * r * N) / 2 ** 20} MiB`);
  }
  if (128 * r * N * p > b.maxWorkBytes) {
    throw invalidInput(
      `${field}.p`,
      `N, r and p costing at most ${b.maxWorkBytes / 2 ** 20} MiB of mixing (128·r·N·p bytes)`,
      `${(128 * r * N * p) / 2 ** 20} MiB`,
    );
  }
  // salt: 16..64 bytes
  if (!(salt instanceof Uint8Array) || salt.length < b.minSaltBytes || salt.length > b.maxSaltBytes) {
    const got = salt instanceof Uint8Array ? `${salt.length} bytes` : typeof salt;
    throw invalidInput(`${field}.salt`, `${b.minSaltBytes}..${b.maxSaltBytes} bytes`, got);
  }
}
