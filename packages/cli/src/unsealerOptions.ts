import { CustosError, type ScryptCost, type UnsealCredential, type UnsealerSpec } from '@custos/kernel';
import { readSecretFile } from './io.js';
import { readShareFiles } from './shareFiles.js';

/** `--scrypt-log-n N` (tests lower it), else the default cost. */
export function readScryptCost(value: string | undefined): ScryptCost | undefined {
  if (value === undefined) return undefined;
  const logN = Number(value);
  if (!Number.isInteger(logN) || logN < 10 || logN > 18)
    throw new CustosError('invalid_input', '--scrypt-log-n: expected an integer 10..18', { details: { field: 'scrypt-log-n' } });
  return { N: 2 ** logN, r: 8, p: 1 };
}

function readCount(value: string | undefined, option: string, min: number, max: number): number {
  if (value === undefined) throw new CustosError('invalid_input', `--${option} is required`, { details: { field: option } });
  const n = /^[0-9]{1,3}$/.test(value) ? Number(value) : Number.NaN;
  if (!Number.isInteger(n) || n < min || n > max)
    throw new CustosError('invalid_input', `--${option}: expected an integer ${min}..${max}`, { details: { field: option } });
  return n;
}

/** The key label `custos init|rekey --unsealer pkcs11` gives the new KEK unless --pkcs11-key-label says otherwise. */
export const DEFAULT_KEK_LABEL = 'custos-kek';
/** Longest PIN file accepted (bytes, after the trailing newline): PKCS#11 PINs are far shorter. */
const MAX_PIN_FILE_BYTES = 256;

/** The PKCS#11 options of a command line (any may be absent). */
export interface Pkcs11Options {
  /** --pkcs11-module: the PKCS#11 library. */
  module: string | undefined;
  /** --pkcs11-token: the label of the token the new KEK is generated on. */
  token: string | undefined;
  /** --pkcs11-key-label: the new KEK's label. */
  keyLabel: string | undefined;
  /** The file of the PIN for the new unsealer, and the option that named it. */
  pinFile: string | undefined;
  pinOption: string;
}

/** Reads a PIN file: non-empty, at most 256 bytes (one trailing newline dropped). The caller wipes it. */
export function readPinFile(path: string | undefined, option: string): Uint8Array {
  const pin = readSecretFile(path, option);
  if (pin.length > MAX_PIN_FILE_BYTES) {
    pin.fill(0);
    throw new CustosError('invalid_input', `--${option}: expected a PIN of at most ${MAX_PIN_FILE_BYTES} bytes`, { details: { field: option } });
  }
  return pin;
}

function requirePkcs11Module(value: string | undefined): string {
  if (value === undefined || value === '')
    throw new CustosError('invalid_input', '--pkcs11-module is required with a PKCS#11 unsealer (e.g. /usr/lib/softhsm/libsofthsm2.so)', {
      details: { field: 'pkcs11-module' },
    });
  return value;
}

/**
 * The new unsealer of an init or a rekey, from the command line: `--unsealer passphrase` with a
 * passphrase file (given by the caller's option name), `--unsealer shamir --shares N --threshold M
 * --share-dir D`, or `--unsealer pkcs11 --pkcs11-module M --pkcs11-token T [--pkcs11-key-label L]`
 * with the PIN file `pkcs11.pinFile`. The secret buffers are the caller's to wipe.
 */
export function readUnsealerSpec(opts: {
  unsealer: string | undefined;
  passphraseFile: string | undefined;
  passphraseOption: string;
  shares: string | undefined;
  threshold: string | undefined;
  shareDir: string | undefined;
  scryptLogN: string | undefined;
  pkcs11?: Pkcs11Options;
}): { spec: UnsealerSpec; shareDir?: string } {
  const type = opts.unsealer ?? 'passphrase';
  if (type !== 'passphrase' && type !== 'shamir' && type !== 'pkcs11')
    throw new CustosError('invalid_input', '--unsealer: expected passphrase, shamir or pkcs11', { details: { field: 'unsealer' } });
  const only = (options: Array<[string | undefined, string]>, kind: string) => {
    for (const [value, option] of options)
      if (value !== undefined) throw new CustosError('invalid_input', `--${option} applies to the ${kind} unsealer only`, { details: { field: option } });
  };
  if (type !== 'shamir')
    only(
      [
        [opts.shares, 'shares'],
        [opts.threshold, 'threshold'],
        [opts.shareDir, 'share-dir'],
      ],
      'shamir',
    );
  // --pkcs11-module may name the current unsealer's library (rekey): the caller checks it
  if (type !== 'pkcs11')
    only(
      [
        [opts.pkcs11?.token, 'pkcs11-token'],
        [opts.pkcs11?.keyLabel, 'pkcs11-key-label'],
      ],
      'pkcs11',
    );
  if (type === 'pkcs11') {
    only([[opts.passphraseFile, opts.passphraseOption]], 'passphrase');
    const p = opts.pkcs11;
    const modulePath = requirePkcs11Module(p?.module);
    if (p?.token === undefined || p.token === '')
      throw new CustosError('invalid_input', '--pkcs11-token is required with --unsealer pkcs11 (the token label)', { details: { field: 'pkcs11-token' } });
    const pin = readPinFile(p.pinFile, p.pinOption);
    return { spec: { type: 'pkcs11', modulePath, pin, tokenLabel: p.token, keyLabel: p.keyLabel ?? DEFAULT_KEK_LABEL } };
  }
  if (type === 'passphrase') {
    const passphrase = readSecretFile(opts.passphraseFile, opts.passphraseOption);
    const scrypt = readScryptCost(opts.scryptLogN);
    return { spec: { type: 'passphrase', passphrase, ...(scrypt === undefined ? {} : { scrypt }) } };
  }
  {
    only([[opts.passphraseFile, opts.passphraseOption]], 'passphrase');
    const shares = readCount(opts.shares, 'shares', 2, 255);
    const threshold = readCount(opts.threshold, 'threshold', 2, shares);
    if (opts.shareDir === undefined || opts.shareDir === '')
      throw new CustosError('invalid_input', '--share-dir is required with --unsealer shamir', { details: { field: 'share-dir' } });
    return { spec: { type: 'shamir', shares, threshold }, shareDir: opts.shareDir };
  }
}

/**
 * The current credentials, from `--passphrase-file P`, `--share-file F` (repeated, M of them) or
 * `--pkcs11-pin-file F` with `--pkcs11-module M` (the envelope names the token and the key).
 */
export function readCredential(
  passphraseFile: string | undefined,
  shareFiles: readonly string[] | undefined,
  pkcs11: { module: string | undefined; pinFile: string | undefined } = { module: undefined, pinFile: undefined },
): UnsealCredential | undefined {
  const shares = shareFiles ?? [];
  const given = [passphraseFile !== undefined, shares.length > 0, pkcs11.pinFile !== undefined].filter(Boolean).length;
  if (given > 1)
    throw new CustosError('invalid_input', 'give one of --passphrase-file, --share-file or --pkcs11-pin-file, not several', {
      details: { field: 'share-file' },
    });
  if (passphraseFile !== undefined) return { type: 'passphrase', passphrase: readSecretFile(passphraseFile, 'passphrase-file') };
  if (shares.length > 0) return { type: 'shamir', shares: readShareFiles(shares) };
  if (pkcs11.pinFile !== undefined) {
    const modulePath = requirePkcs11Module(pkcs11.module);
    return { type: 'pkcs11', modulePath, pin: readPinFile(pkcs11.pinFile, 'pkcs11-pin-file') };
  }
  return undefined;
}

/** Wipes the secret buffers of a credential or spec. */
export function wipeCredential(credential: UnsealCredential | UnsealerSpec | undefined): void {
  if (credential === undefined) return;
  if (credential.type === 'passphrase') credential.passphrase.fill(0);
  else if (credential.type === 'shamir' && 'shares' in credential && Array.isArray(credential.shares)) for (const s of credential.shares) s.share.fill(0);
  else if (credential.type === 'pkcs11') credential.pin.fill(0);
}
