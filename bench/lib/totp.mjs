// Bench wallets and their TOTP codes. Every bench wallet's 20-byte TOTP secret is derived from a
// per-run bench key (HMAC-SHA1(benchKey, walletName)), so the fixture builder and the load
// generator agree on it without a table. RFC 4226 HOTP / RFC 6238 TOTP (SHA-1, 6 digits, 30 s).
import { createHmac } from 'node:crypto';

export const PERIOD_MS = 30_000;

/** The name of bench wallet number i (fixed width keeps the names and the B-tree keys uniform). */
export function walletName(i) {
  return `bw${String(i).padStart(8, '0')}`;
}

/** The wallet's 20-byte TOTP secret. */
export function totpSecret(benchKey, name) {
  return createHmac('sha1', benchKey).update(name).digest();
}

const counter = Buffer.alloc(8);

/** The 6-digit HOTP code of `secret` at counter `step`. */
export function hotp(secret, step) {
  counter.writeBigUInt64BE(BigInt(step), 0);
  const mac = createHmac('sha1', secret).update(counter).digest();
  const offset = mac[mac.length - 1] & 0x0f;
  const binary = ((mac[offset] & 0x7f) << 24) | (mac[offset + 1] << 16) | (mac[offset + 2] << 8) | mac[offset + 3];
  return String(binary % 1_000_000).padStart(6, '0');
}

export function stepAt(ms) {
  return Math.floor(ms / PERIOD_MS);
}
