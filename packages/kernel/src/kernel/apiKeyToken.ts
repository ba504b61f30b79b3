import { createHash, timingSafeEqual } from 'node:crypto';
import { CustosError } from '../errors.js';

/**
 * API keys look like `ck1.<id: 16 hex>.<secret: 43 base64url chars (32 random bytes)>`.
 * Only SHA-256("custos.apikey.v1\0" ‖ secret) is stored; the secret has 256 bits of entropy, so a
 * fast hash is enough (no password stretching needed), and lookups go by id.
 */
const TOKEN = /^ck1\.([0-9a-f]{16})\.([A-Za-z0-9_-]{43})$/;

export function generateApiKeyToken(random: (n: number) => Uint8Array): { id: string; token: string; secretHash: Uint8Array } {
  const id = Buffer.from(random(8)).toString('hex');
  const secret = Buffer.from(random(32)).toString('base64url');
  return { id, token: `ck1.${id}.${secret}`, secretHash: hashApiKeySecret(secret) };
}

export function parseApiKeyToken(token: string): { id: string; secret: string } {
  // a string: RegExp#exec would coerce anything else (and throw a TypeError on an object without toString)
  if (typeof token !== 'string') throw new CustosError('unauthorized', 'malformed API key');
  const m = TOKEN.exec(token);
  if (m === null || m[1] === undefined || m[2] === undefined) throw new CustosError('unauthorized', 'malformed API key');
  return { id: m[1], secret: m[2] };
}

export function hashApiKeySecret(secret: string): Uint8Array {
  return new Uint8Array(createHash('sha256').update('custos.apikey.v1\0').update(secret).digest());
}

/** Constant-time comparison of two 32-byte hashes. */
export function equalHashes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}
