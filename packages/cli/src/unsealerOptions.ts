import { CustosError, type ScryptCost, type UnsealCredential, type UnsealerSpec } from '@custos/kernel';
import { readSecretFile } from './io.js';
import { readShareFiles } from './shareFiles.js';

/** `--scrypt-log-n N` (tests lower it), else the default cost. */
export function readScryptCost(value: string | undefined): ScryptCost | undefined {
  if (value === undefined) return undefined;
  const logN = Number(value);
  if (!Number.isInteger(logN) || logN < 10 || logN > 20)
    throw new CustosError('invalid_input', '--scrypt-log-n: expected an integer 10..20', { details: { field: 'scrypt-log-n' } });
  return { N: 2 ** logN, r: 8, p: 1 };
}

function readCount(value: string | undefined, option: string, min: number, max: number): number {
  if (value === undefined) throw new CustosError('invalid_input', `--${option} is required`, { details: { field: option } });
  const n = /^[0-9]{1,3}$/.test(value) ? Number(value) : Number.NaN;
  if (!Number.isInteger(n) || n < min || n > max)
    throw new CustosError('invalid_input', `--${option}: expected an integer ${min}..${max}`, { details: { field: option } });
  return n;
}

/**
 * The new unsealer of an init or a rekey, from the command line: `--unsealer passphrase` with a
 * passphrase file (given by the caller's option name), or `--unsealer shamir --shares N --threshold M
 * --share-dir D`. The passphrase buffer is the caller's to wipe.
 */
export function readUnsealerSpec(opts: {
  unsealer: string | undefined;
  passphraseFile: string | undefined;
  passphraseOption: string;
  shares: string | undefined;
  threshold: string | undefined;
  shareDir: string | undefined;
  scryptLogN: string | undefined;
}): { spec: UnsealerSpec; shareDir?: string } {
  const type = opts.unsealer ?? 'passphrase';
  if (type === 'passphrase') {
    for (const [value, option] of [
      [opts.shares, 'shares'],
      [opts.threshold, 'threshold'],
      [opts.shareDir, 'share-dir'],
    ] as const) {
      if (value !== undefined) throw new CustosError('invalid_input', `--${option} applies to the shamir unsealer only`, { details: { field: option } });
    }
    const passphrase = readSecretFile(opts.passphraseFile, opts.passphraseOption);
    const scrypt = readScryptCost(opts.scryptLogN);
    return { spec: { type: 'passphrase', passphrase, ...(scrypt === undefined ? {} : { scrypt }) } };
  }
  if (type === 'shamir') {
    if (opts.passphraseFile !== undefined)
      throw new CustosError('invalid_input', `--${opts.passphraseOption} applies to the passphrase unsealer only`, {
        details: { field: opts.passphraseOption },
      });
    const shares = readCount(opts.shares, 'shares', 2, 255);
    const threshold = readCount(opts.threshold, 'threshold', 2, shares);
    if (opts.shareDir === undefined || opts.shareDir === '')
      throw new CustosError('invalid_input', '--share-dir is required with --unsealer shamir', { details: { field: 'share-dir' } });
    return { spec: { type: 'shamir', shares, threshold }, shareDir: opts.shareDir };
  }
  if (type === 'pkcs11')
    throw new CustosError('unsealer_unavailable', '--unsealer pkcs11: this build cannot use a PKCS#11 unsealer yet', { details: { field: 'unsealer' } });
  throw new CustosError('invalid_input', '--unsealer: expected passphrase or shamir', { details: { field: 'unsealer' } });
}

/** The current credentials, from `--passphrase-file P` or `--share-file F` (repeated, M of them). */
export function readCredential(passphraseFile: string | undefined, shareFiles: readonly string[] | undefined): UnsealCredential | undefined {
  const shares = shareFiles ?? [];
  if (passphraseFile !== undefined && shares.length > 0)
    throw new CustosError('invalid_input', 'give either --passphrase-file or --share-file, not both', { details: { field: 'share-file' } });
  if (passphraseFile !== undefined) return { type: 'passphrase', passphrase: readSecretFile(passphraseFile, 'passphrase-file') };
  if (shares.length > 0) return { type: 'shamir', shares: readShareFiles(shares) };
  return undefined;
}

/** Wipes the secret buffers of a credential or spec. */
export function wipeCredential(credential: UnsealCredential | UnsealerSpec | undefined): void {
  if (credential === undefined) return;
  if (credential.type === 'passphrase') credential.passphrase.fill(0);
  else if (credential.type === 'shamir' && 'shares' in credential && Array.isArray(credential.shares)) for (const s of credential.shares) s.share.fill(0);
  else if (credential.type === 'pkcs11') credential.pin.fill(0);
}
