import { parseArgs } from 'node:util';
import { CustosError } from '@custos/kernel';
import QRCode from 'qrcode';
import { type Io, parseOptions } from '../io.js';
import { callApi, escapeForTerminal } from './admin.js';

const HELP = `Usage:
  custos wallet enroll-link NAME --url U --api-key-file K [--kind totp|passkey|hwkey|oob] [--ttl-seconds S]

enroll-link asks a running signer (POST /v1/enrollments, an API key with the register scope) for a
one-time enrolment link for the wallet NAME and prints it with its QR code, for support staff who
onboard a wallet owner in person: the owner scans the code with the phone that will hold the factor
(the authenticator app for TOTP, the phone's passkey for passkey) and enrols there, on the
signer's enrolment page (docs/enrolment-page.md). The link is a capability: whoever opens it first
enrols. Show it to the owner only; it is not shown again and the signer never logs it.
  --kind         the factor the owner enrols: totp (default), passkey, hwkey or oob
  --ttl-seconds  how long the link can be used (300 to 604800; default 86400)
A wallet name that starts with "-" comes after "--": custos wallet enroll-link --url U … -- -name.
The code is printed in dark-on-light block characters (colours set on a terminal; NO_COLOR leaves
them out), with the 4-module quiet zone the QR standard asks for.`;

interface CreatedEnrollment {
  id: string;
  walletName: string;
  kind: string;
  expiresAt: number;
  enrollUrl: string;
}

/** `custos wallet <subcommand>`: wallet commands that talk to a running signer. */
export async function walletCommand(argv: string[], io: Io): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === undefined || sub === '--help' || sub === '-h') {
    io.stdout.write(`${HELP}\n`);
    return sub === undefined ? 2 : 0;
  }
  if (sub !== 'enroll-link') throw new CustosError('invalid_input', `unknown wallet command ${JSON.stringify(sub)}; run custos wallet --help`);
  const { names, options } = splitWalletNames(rest);
  const opts = parseOptions(options, {
    url: { type: 'string' },
    'api-key-file': { type: 'string' },
    kind: { type: 'string' },
    'ttl-seconds': { type: 'string' },
  });
  if (opts.help) {
    io.stdout.write(`${HELP}\n`);
    return 0;
  }
  // checked after the options, so that an unknown option is named as such, not taken for a second name
  if (names.length > 1)
    throw new CustosError('invalid_input', `expected one wallet name, got ${names.length} (quote a name with spaces)`, { details: { field: 'walletName' } });
  const name = names[0];
  if (name === undefined)
    throw new CustosError('invalid_input', 'expected the wallet name: custos wallet enroll-link NAME', { details: { field: 'walletName' } });
  const ttl = opts['ttl-seconds'];
  if (ttl !== undefined && !/^[0-9]{1,7}$/.test(ttl))
    throw new CustosError('invalid_input', '--ttl-seconds: expected a number of seconds', { details: { field: 'ttl-seconds' } });
  const created = await callApi<CreatedEnrollment>(opts.url, opts['api-key-file'], 'POST', '/v1/enrollments', {
    walletName: name,
    ...(opts.kind === undefined ? {} : { kind: opts.kind }),
    ...(ttl === undefined ? {} : { ttlSeconds: Number(ttl) }),
  });
  const link = created.enrollUrl;
  // the code must say what the text says: a link that a terminal would show otherwise is not printed
  if (!/^https?:\/\/[\x21-\x7e]+$/.test(link)) throw new CustosError('internal', 'the signer answered an enrolment link that is not a printable URL');
  const qr = await renderQrForTerminal(link, { color: isColorTerminal(io) });
  io.stdout.write(
    `Enrolment link for wallet ${JSON.stringify(escapeForTerminal(created.walletName))} (${escapeForTerminal(created.kind)}; single use, until ${new Date(created.expiresAt).toISOString()}).\n` +
      'Show it to the wallet owner only: whoever opens it first enrols.\n' +
      `${link}\n\n${qr}`,
  );
  return 0;
}

/** The positional arguments (the wallet name; also after `--`) and the options around them. */
function splitWalletNames(argv: string[]): { names: string[]; options: string[] } {
  const { tokens } = parseArgs({
    args: argv,
    options: { url: { type: 'string' }, 'api-key-file': { type: 'string' }, kind: { type: 'string' }, 'ttl-seconds': { type: 'string' } },
    strict: false,
    allowPositionals: true,
    tokens: true,
  });
  const positional = new Set<number>();
  for (const token of tokens) if (token.kind === 'positional' || token.kind === 'option-terminator') positional.add(token.index);
  const names = tokens.flatMap((t) => (t.kind === 'positional' ? [t.value] : []));
  return { names, options: argv.filter((_, i) => !positional.has(i)) };
}

/**
 * The QR code of `text` as lines of half-block characters (each character two modules high; a dark
 * module is the character's foreground), with a quiet zone of 4 modules. With `color`, each line is
 * set black on white, so the code scans on a dark terminal too (scanners expect dark on light).
 */
export async function renderQrForTerminal(text: string, { color }: { color: boolean }): Promise<string> {
  const rendered = await QRCode.toString(text, { type: 'utf8', margin: 4, errorCorrectionLevel: 'M' });
  const lines = rendered.split('\n').filter((line) => line !== '');
  return `${lines.map((line) => (color ? `\x1b[30;47m${line}\x1b[0m` : line)).join('\n')}\n`;
}

function isColorTerminal(io: Io): boolean {
  return (io.stdout as { isTTY?: boolean }).isTTY === true && process.env.NO_COLOR === undefined;
}
