import { CustosError } from '@custos/kernel';
import { validateMnemonic } from '@scure/bip39';
import { wordlist } from '@scure/bip39/wordlists/english';
import { readSecretFile } from './io.js';

/**
 * The words of a mnemonic file (whitespace-separated), checked: 12, 15, 18, 21 or 24 words of the
 * BIP39 English wordlist whose last bits are the checksum. Refusals name `--mnemonic-file` and
 * what is wrong, never a word. Used by `init --mnemonic-file` and `recover`.
 */
export function readMnemonicFile(path: string | undefined): string {
  const bytes = readSecretFile(path, 'mnemonic-file');
  const words = Buffer.from(bytes).toString('utf8').trim().split(/\s+/);
  bytes.fill(0);
  const refuse = (reason: string) => new CustosError('invalid_input', `--mnemonic-file: ${reason}`, { details: { field: 'mnemonic-file' } });
  if (![12, 15, 18, 21, 24].includes(words.length)) throw refuse(`expected 12, 15, 18, 21 or 24 words, got ${words.length}`);
  const unknown = words.findIndex((word) => !wordlist.includes(word));
  if (unknown >= 0) throw refuse(`word ${unknown + 1} is not in the BIP39 English wordlist`);
  const mnemonic = words.join(' ');
  if (!validateMnemonic(mnemonic, wordlist)) throw refuse('the BIP39 checksum does not match (a word is wrong or out of order)');
  return mnemonic;
}
