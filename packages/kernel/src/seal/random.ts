// Randomness, always passed in: the RandomBytes source and the one checked way to draw from it.
import { CustosError } from '../errors.js';

/** A source of cryptographically secure random bytes, passed in (never a module-level global). */
export type RandomBytes = (n: number) => Uint8Array;

/**
 * Calls the injected random source for `n` bytes and returns a copy of exactly `n` bytes. A source
 * that returns anything else is a wiring bug: 'internal' (nothing is sealed or encrypted).
 */
export function drawRandom(random: RandomBytes, n: number, purpose: string): Uint8Array {
  const bytes: unknown = random(n);
  if (!(bytes instanceof Uint8Array) || bytes.length !== n) {
    const got = bytes instanceof Uint8Array ? `${bytes.length} bytes` : typeof bytes;
    throw new CustosError('internal', `random source returned ${got} for ${purpose}, expected ${n} bytes`, {
      details: { purpose },
    });
  }
  return Uint8Array.from(bytes);
}
