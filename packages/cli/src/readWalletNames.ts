import { readFileSync } from 'node:fs';
import { assertWalletName, CustosError, isCustosError } from '@custos/kernel';

/** Largest wallets file read (about a million names of 16 characters). */
export const MAX_WALLETS_FILE_BYTES = 16 * 1024 * 1024;

function refuse(message: string, line?: number, cause?: unknown): CustosError {
  return new CustosError('invalid_input', `--wallets${line === undefined ? '' : ` line ${line}`}: ${message}`, {
    details: line === undefined ? { field: 'wallets' } : { field: 'wallets', line },
    ...(cause === undefined ? {} : { cause }),
  });
}

/**
 * Reads a wallets file: UTF-8, one wallet name per line (LF or CRLF), exactly as the API takes it —
 * no trimming, no normalisation: the bytes of the name are the bytes hashed into its path. Every
 * line must be a valid wallet name (assertWalletName); an empty line, a byte-order mark or bytes
 * that are not UTF-8 are refused with the line number, since a silently altered name would print
 * another wallet's addresses. The final newline is optional.
 */
export function readWalletNames(path: string): string[] {
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (error) {
    throw refuse(`cannot read ${path}`, undefined, error);
  }
  if (bytes.length > MAX_WALLETS_FILE_BYTES) throw refuse(`the file exceeds ${MAX_WALLETS_FILE_BYTES} bytes`);
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes);
  } catch {
    throw refuse('the file is not UTF-8');
  }
  if (text.startsWith('\uFEFF')) throw refuse('starts with a byte-order mark (U+FEFF), which would become part of the name', 1);
  const lines = text.split('\n');
  if (lines.length > 1 && lines.at(-1) === '') lines.pop();
  if (lines.length === 1 && lines[0] === '') throw refuse('the file names no wallet');
  return lines.map((raw, i) => {
    const line = i + 1;
    const name = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (name === '') throw refuse('empty line (expected a wallet name)', line);
    try {
      return assertWalletName(name, 'name');
    } catch (error) {
      if (!isCustosError(error)) throw error;
      throw refuse(error.message, line);
    }
  });
}
