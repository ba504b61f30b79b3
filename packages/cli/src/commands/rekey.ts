import { CustosError, REKEY_STEPS, type RekeyStep, rekeySigner, type UnsealCredential, type UnsealerSpec } from '@custos/kernel';
import { type Io, parseOptions } from '../io.js';
import { describeLocation, openInitialisedStore, readStoreLocation } from '../openInitialisedStore.js';
import { assertShareDirFree, describeShareFiles, writeShareFiles } from '../shareFiles.js';
import { readCredential, readUnsealerSpec, wipeCredential } from '../unsealerOptions.js';

const HELP = `Usage: custos rekey (--data-dir D | --store postgres://…)
                    (--passphrase-file P | --share-file F --share-file F2 …)      the current credentials
                    (--new-passphrase-file P2 [--scrypt-log-n N]
                     | --new-unsealer shamir --shares N --threshold M --share-dir DIR)  the new ones

Re-wraps the sealed seed under a new key-encryption key: a new passphrase, a new set of Shamir
shares, or from one kind to the other. The seed is unchanged: every address stays. The old
credentials stop working when the store switches to the new envelope.

Order (a crash at any point leaves the old or the new credentials valid, never neither):
  1. open the current envelope with the current credentials;
  2. seal under the new unsealer and check the result opens with the new credentials;
  3. Shamir: write DIR/share-<i>.json (mode 0600, fsynced; DIR must hold no share files);
  4. switch the store with one compare-and-swap (and the sys.rekey audit record).
A running signer keeps serving; a sealed one unseals with the new credentials.
Test-only: CUSTOS_FAULT_INJECT=rekey:<step> (${REKEY_STEPS.join(', ')}) kills this process (SIGKILL) at that step.`;

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
  });
  if (opts.help) {
    io.stdout.write(`${HELP}\n`);
    return 0;
  }
  const location = readStoreLocation(opts);
  const onStep = faultInjection();
  let current: UnsealCredential | undefined;
  let next: { spec: UnsealerSpec; shareDir?: string } | undefined;
  try {
    current = readCredential(opts['passphrase-file'], opts['share-file']);
    if (current === undefined)
      throw new CustosError('invalid_input', 'the current credentials are required: --passphrase-file or --share-file (M of them)', {
        details: { field: 'passphrase-file' },
      });
    next = readUnsealerSpec({
      unsealer: opts['new-unsealer'],
      passphraseFile: opts['new-passphrase-file'],
      passphraseOption: 'new-passphrase-file',
      shares: opts.shares,
      threshold: opts.threshold,
      shareDir: opts['share-dir'],
      scryptLogN: opts['scrypt-log-n'],
    });
    const shareDir = next.shareDir;
    if (shareDir !== undefined) assertShareDirFree(shareDir);
    const store = await openInitialisedStore(location);
    let written = '';
    try {
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
        ...(onStep === undefined ? {} : { onStep }),
      });
      const spec = next.spec;
      const to = spec.type === 'shamir' ? `shamir (${spec.threshold} of ${spec.shares} shares, files in ${shareDir}/share-<i>.json)` : spec.type;
      io.stdout.write(
        `Rekeyed signer ${result.signerId} in ${describeLocation(location)}: ${result.from} → ${to}. Addresses are unchanged; the old credentials no longer open it.\n${written}`,
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
