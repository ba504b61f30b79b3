import { CustosError } from '@custos/kernel';
import { type Io, parseOptions, readSecretFile } from '../io.js';
import { postToSigner, readSignerTarget } from '../postToSigner.js';
import { readShareText } from '../shareFiles.js';
import { readPinFile } from '../unsealerOptions.js';

const HELP = `Usage: custos unseal (--url http://127.0.0.1:8420 | --admin-socket PATH)
                     (--share-file F [--share-file F2 …] | --passphrase-file P | --pin-file F | --share-file F --reset)

Submits an unseal credential to a running signer (custos serve):
  --passphrase-file P  a signer sealed under a passphrase
  --share-file F       a signer sealed under Shamir shares: one operator's share file; each operator
                       may run this from their own machine. The signer unseals when the threshold of
                       shares is in; until then it reports the progress ("1 of 3 shares").
  --pin-file F         a signer sealed by a PKCS#11 HSM: the token's user PIN (the server must run
                       with --pkcs11-module; the sealed seed names the token and the key)
  --share-file F --reset
                       discard the shares submitted so far (the operators start again); the share
                       file proves the caller is an operator of the current set (it is checked,
                       signature included, and not submitted)
  --url U              the signer's HTTP address. After a failed unseal, the next attempt from the
                       same address waits (1 s doubling to 5 min): 429 unseal_throttled.
  --admin-socket PATH  the signer's admin socket (custos serve --admin-socket), instead of --url:
                       the operator's channel, never delayed by other clients' failures, served
                       before their queued attempts, and the only one that tries a PKCS#11 PIN when
                       the token warns that a wrong one would lock it (423 hsm_pin_protect over --url)
The credential travels in the request body: use https or a loopback/private address.`;

export async function unsealCommand(argv: string[], io: Io): Promise<number> {
  const opts = parseOptions(argv, {
    url: { type: 'string' },
    'admin-socket': { type: 'string' },
    'share-file': { type: 'string', multiple: true },
    'passphrase-file': { type: 'string' },
    'pin-file': { type: 'string' },
    reset: { type: 'boolean' },
  });
  if (opts.help) {
    io.stdout.write(`${HELP}\n`);
    return 0;
  }
  const target = readSignerTarget(opts);
  const shareFiles = opts['share-file'] ?? [];
  const given = [shareFiles.length > 0, opts['passphrase-file'] !== undefined, opts['pin-file'] !== undefined].filter(Boolean).length;
  if (given !== 1)
    throw new CustosError('invalid_input', 'give exactly one of --share-file, --passphrase-file, --pin-file', { details: { field: 'share-file' } });
  if (opts.reset === true) {
    // A reset needs one share of the current set (the server checks it and does not keep it).
    if (shareFiles.length !== 1)
      throw new CustosError('invalid_input', '--reset: give exactly one --share-file (your share of the current set)', { details: { field: 'share-file' } });
    const answer = await postToSigner(target, '/v1/sys/unseal/reset', { share: readShareText(shareFiles[0] as string) });
    io.stdout.write(`Discarded ${answer.discarded ?? 0} submitted share(s)\n`);
    return 0;
  }
  if (opts['passphrase-file'] !== undefined) {
    const passphrase = readSecretFile(opts['passphrase-file'], 'passphrase-file');
    let text: string;
    try {
      text = Buffer.from(passphrase).toString('utf8');
    } finally {
      passphrase.fill(0);
    }
    await postToSigner(target, '/v1/sys/unseal', { passphrase: text });
    io.stdout.write('Unsealed\n');
    return 0;
  }
  if (opts['pin-file'] !== undefined) {
    const pin = readPinFile(opts['pin-file'], 'pin-file');
    let text: string;
    try {
      text = Buffer.from(pin).toString('utf8');
    } finally {
      pin.fill(0);
    }
    await postToSigner(target, '/v1/sys/unseal', { pin: text });
    io.stdout.write('Unsealed\n');
    return 0;
  }
  for (const file of shareFiles) {
    const answer = await postToSigner(target, '/v1/sys/unseal', { share: readShareText(file) });
    const p = answer.progress;
    if (answer.sealed === false) {
      io.stdout.write(`Share accepted (${p?.submitted ?? '?'} of ${p?.threshold ?? '?'}): unsealed\n`);
      return 0;
    }
    io.stdout.write(`Share accepted (${p?.submitted ?? '?'} of ${p?.threshold ?? '?'}): still sealed\n`);
  }
  return 0;
}
