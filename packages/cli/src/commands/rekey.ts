import { CustosError, describeUnsealer, REKEY_STEPS, type RekeyStep, rekeySigner, type UnsealCredential, type UnsealerSpec } from '@custos/kernel';
import { type Io, parseOptions } from '../io.js';
import { createProgress, type ProgressStream } from '../progress.js';
import { describeLocation, openInitialisedStore, readStoreLocation } from '../openInitialisedStore.js';
import { assertShareDirFree, describeShareFiles, writeShareFiles } from '../shareFiles.js';
import { DEFAULT_KEK_LABEL, readCredential, readUnsealerSpec, wipeCredential } from '../unsealerOptions.js';

const HELP = `Usage: custos rekey (--data-dir D | --store postgres://…)
                    (--passphrase-file P | --share-file F --share-file F2 …
                     | --pkcs11-module M --pkcs11-pin-file F)                     the current credentials
                    (--new-passphrase-file P2 [--scrypt-log-n N]
                     | --new-unsealer shamir --shares N --threshold M --share-dir DIR
                     | --new-unsealer pkcs11 --pkcs11-module M --pkcs11-token T
                       [--pkcs11-key-label L] [--new-pkcs11-pin-file F2])          the new ones
                    [--proposal ID]       under an admin quorum: the applied unsealer.change proposal
                    [--quiet]             no progress on stderr (a bar on a terminal, lines in a log after 5 s)

Re-wraps the sealed seed under a new key-encryption key: a new passphrase, a new set of Shamir
shares, a new key in an HSM (PKCS#11 → PKCS#11 rotates the key), or from one kind to another. The
seed is unchanged: every address stays. The old credentials stop working when the store switches
to the new envelope. The new PIN is --new-pkcs11-pin-file, else --pkcs11-pin-file (the current
token's PIN when rotating; the only PIN given when coming from a passphrase or shares); the new
key is labelled L (default ${DEFAULT_KEK_LABEL}).

Order (a crash at any point leaves the old or the new credentials valid, never neither):
  1. open the current envelope with the current credentials;
  2. PKCS#11: generate the new key in the token (a crash after this leaves an unused key);
  3. seal under the new unsealer and check the result opens with the new credentials;
  4. Shamir: write DIR/share-<i>.json (mode 0600, fsynced; DIR must hold no share files);
  5. switch the store with one compare-and-swap (and the sys.rekey audit record);
  6. PKCS#11 (from): destroy the old key on its token, only now (a crash before leaves it unused).
A running signer keeps serving; a sealed one unseals with the new credentials. New shares are
signed by a one-time key of the new set: rekeying a set made before shares were signed (status:
sharesSigned false) is how it gets signed shares.
Under an admin quorum (docs/quorum.md) a rekey needs --proposal: an applied unsealer.change proposal
whose payload names the new unsealer; it is used up by the switch (quorum_required without one).
Test-only: CUSTOS_FAULT_INJECT=rekey:<step> (${REKEY_STEPS.join(', ')}) kills this process (SIGKILL) at that step.`;

/** The key id of the envelope the store holds (after a rekey to PKCS#11). */
async function keyIdOf(store: { getMeta(): Promise<{ sealedRoot: unknown } | undefined> }): Promise<string> {
  const info = describeUnsealer((await store.getMeta())?.sealedRoot);
  return info.type === 'pkcs11' ? info.keyId : '?';
}

/** The test-only fault injection point: `CUSTOS_FAULT_INJECT=rekey:<step>` SIGKILLs the process at that step. */
function faultInjection(): ((step: RekeyStep) => void) | undefined {
  const value = process.env.CUSTOS_FAULT_INJECT;
  if (value === undefined || value === '') return undefined;
  const step = /^rekey:(.+)$/.exec(value)?.[1];
  if (step === undefined || !(REKEY_STEPS as readonly string[]).includes(step))
    throw new CustosError('invalid_input', `CUSTOS_FAULT_INJECT: expected rekey:<${REKEY_STEPS.join('|')}>`, { details: { field: 'CUSTOS_FAULT_INJECT' } });
  return (at) => {
    if (at === step) process.kill(process.pid, 'SIGKILL');
  };
}

export async function rekeyCommand(argv: string[], io: Io): Promise<number> {
  const opts = parseOptions(argv, {
    'data-dir': { type: 'string' },
    store: { type: 'string' },
    'passphrase-file': { type: 'string' },
    'share-file': { type: 'string', multiple: true },
    'new-passphrase-file': { type: 'string' },
    'new-unsealer': { type: 'string' },
    shares: { type: 'string' },
    threshold: { type: 'string' },
    'share-dir': { type: 'string' },
    'scrypt-log-n': { type: 'string' },
    quiet: { type: 'boolean' },
    // May appear twice, with the same value: once among the current credentials, once with --new-unsealer pkcs11 (a rotation).
    'pkcs11-module': { type: 'string', multiple: true },
    'pkcs11-pin-file': { type: 'string' },
    'pkcs11-token': { type: 'string' },
    'pkcs11-key-label': { type: 'string' },
    'new-pkcs11-pin-file': { type: 'string' },
    proposal: { type: 'string' },
  });
  if (opts.help) {
    io.stdout.write(`${HELP}\n`);
    return 0;
  }
  const modules = [...new Set(opts['pkcs11-module'] ?? [])];
  if (modules.length > 1)
    throw new CustosError('invalid_input', '--pkcs11-module is given with different values: one PKCS#11 module serves the current and the new unsealer', {
      details: { field: 'pkcs11-module' },
    });
  const pkcs11Module = modules[0];
  const location = readStoreLocation(opts);
  const onStep = faultInjection();
  let current: UnsealCredential | undefined;
  let next: { spec: UnsealerSpec; shareDir?: string } | undefined;
  try {
    // --pkcs11-pin-file is the current PIN, unless the current credentials are a passphrase or
    // shares: then it can only be the PIN of the new PKCS#11 unsealer (as --new-pkcs11-pin-file)
    const otherCurrent = opts['passphrase-file'] !== undefined || (opts['share-file'] ?? []).length > 0;
    const newPinFile = opts['new-pkcs11-pin-file'] ?? opts['pkcs11-pin-file'];
    const currentPinFile = otherCurrent && opts['new-unsealer'] === 'pkcs11' && opts['new-pkcs11-pin-file'] === undefined ? undefined : opts['pkcs11-pin-file'];
    current = readCredential(opts['passphrase-file'], opts['share-file'], { module: pkcs11Module, pinFile: currentPinFile });
    if (current === undefined)
      throw new CustosError('invalid_input', 'the current credentials are required: --passphrase-file, --share-file (M of them) or --pkcs11-pin-file', {
        details: { field: 'passphrase-file' },
      });
    if (opts['new-unsealer'] !== 'pkcs11' && opts['new-pkcs11-pin-file'] !== undefined)
      throw new CustosError('invalid_input', '--new-pkcs11-pin-file applies to --new-unsealer pkcs11 only', { details: { field: 'new-pkcs11-pin-file' } });
    if (opts['new-unsealer'] !== 'pkcs11' && current.type !== 'pkcs11' && pkcs11Module !== undefined)
      throw new CustosError('invalid_input', '--pkcs11-module applies to a PKCS#11 unsealer only', { details: { field: 'pkcs11-module' } });
    next = readUnsealerSpec({
      unsealer: opts['new-unsealer'],
      passphraseFile: opts['new-passphrase-file'],
      passphraseOption: 'new-passphrase-file',
      shares: opts.shares,
      threshold: opts.threshold,
      shareDir: opts['share-dir'],
      scryptLogN: opts['scrypt-log-n'],
      pkcs11: {
        module: pkcs11Module,
        token: opts['pkcs11-token'],
        keyLabel: opts['pkcs11-key-label'],
        pinFile: newPinFile,
        pinOption: opts['new-pkcs11-pin-file'] === undefined ? 'pkcs11-pin-file' : 'new-pkcs11-pin-file',
      },
    });
    const shareDir = next.shareDir;
    if (shareDir !== undefined) assertShareDirFree(shareDir);
    const store = await openInitialisedStore(location);
    let written = '';
    try {
      // the steps of the rekey (scrypt, the HSM) as progress on stderr
      const progress = createProgress({ stream: io.stderr as ProgressStream, label: 'rekey', total: REKEY_STEPS.length, quiet: opts.quiet === true });
      const result = await rekeySigner({
        store,
        current,
        next: next.spec,
        ...(shareDir === undefined
          ? {}
          : {
              persistShares: async (files) => {
                writeShareFiles(shareDir, files);
                written = describeShareFiles(shareDir, files);
              },
            }),
        onStep: (step) => {
          progress.update(REKEY_STEPS.indexOf(step) + 1);
          onStep?.(step);
        },
        ...(opts.proposal === undefined ? {} : { proposalId: opts.proposal }),
      });
      progress.update(REKEY_STEPS.length);
      progress.finish();
      const spec = next.spec;
      const to =
        spec.type === 'shamir'
          ? `shamir (${spec.threshold} of ${spec.shares} shares, files in ${shareDir}/share-<i>.json)`
          : spec.type === 'pkcs11'
            ? `pkcs11 (token ${JSON.stringify(spec.tokenLabel)}, key ${JSON.stringify(spec.keyLabel)} id ${await keyIdOf(store)})`
            : spec.type;
      io.stdout.write(
        `Rekeyed signer ${result.signerId} in ${describeLocation(location)}: ${result.from} → ${to}. Addresses are unchanged; the old credentials no longer open it.\n${written}`,
      );
      const old = result.oldKey;
      if (old?.destroyed)
        io.stdout.write(`Destroyed the old key (token ${JSON.stringify(old.tokenLabel)}, id ${old.keyId}): older backups of the store no longer open.\n`);
      else if (old !== undefined)
        io.stdout.write(
          `WARNING: the old key (token ${JSON.stringify(old.tokenLabel)}, label ${JSON.stringify(old.keyLabel)}, id ${old.keyId}) could not be destroyed (${old.reason ?? 'unknown'}); the rekey stands. Remove that key from the token by hand (docs/operations.md, orphan keys).\n`,
        );
      return 0;
    } finally {
      await store.close();
    }
  } finally {
    wipeCredential(current);
    wipeCredential(next?.spec);
  }
}
