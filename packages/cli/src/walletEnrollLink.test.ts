import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import type { StoreLocation } from '@custos/server';
import jsqr from 'jsqr';
import QRCode from 'qrcode';
import { renderQrForTerminal } from './commands/wallet.js';
import {
  assertFailure,
  freshStoreLocation,
  recordTestSecret,
  runCli,
  runCliInProcess,
  secretInputs,
  type Served,
  serve,
  storeArgs,
} from './testing/cliHarness.js';

// `custos wallet enroll-link NAME` (issue 15, point 10): the owner's enrolment link from a running
// signer, printed with its QR code. One signer for the file; every call runs the CLI in-process
// against it (the binary itself is covered by the other CLI suites).

const jsQR = jsqr.default; // a CommonJS module whose types declare an ES default export
const inputs = secretInputs('custos-cli-enroll-link');
let store: StoreLocation;
let served: Served;
let registerKeyFile: string;
let signOnlyKeyFile: string;

async function createKey(name: string, scopes: string): Promise<string> {
  const result = await runCliInProcess(['apikey', 'create', ...storeArgs(store), '--name', name, '--scopes', scopes]);
  assert.equal(result.code, 0, result.stderr);
  const token = result.stdout.trim().split(/\s+/).at(-1) ?? '';
  recordTestSecret(`cli enroll-link apiKey ${name}`, token);
  return inputs.write(`key-${name}`, `${token}\n`);
}

/** The modules a printed QR code shows: each half-block character is two modules, top and bottom. */
function modulesOf(printed: string): boolean[][] {
  const rows: boolean[][] = [];
  for (const line of printed.split('\n').filter((l) => l !== '')) {
    const chars = [...line];
    assert.ok(
      chars.every((c) => ' ▀▄█'.includes(c)),
      `only half blocks and spaces in ${JSON.stringify(line)}`,
    );
    rows.push(chars.map((c) => c === '█' || c === '▀'));
    rows.push(chars.map((c) => c === '█' || c === '▄'));
  }
  return rows;
}

/** Decodes the printed code with a QR decoder (jsqr), as a phone's camera would read the screen. */
function decodePrinted(printed: string): string | undefined {
  const modules = modulesOf(printed);
  const scale = 4;
  const height = modules.length * scale;
  const width = (modules[0]?.length ?? 0) * scale;
  const pixels = new Uint8ClampedArray(width * height * 4);
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++) {
      const v = modules[Math.floor(y / scale)]?.[Math.floor(x / scale)] ? 0 : 255;
      pixels.set([v, v, v, 255], (y * width + x) * 4);
    }
  return jsQR(pixels, width, height)?.data;
}

describe('custos wallet enroll-link NAME', () => {
  // inside the suite: on Node 20.3.0 a file-level before() had not run when the suite's tests started
  before(async () => {
    store = freshStoreLocation();
    const passphrase = `pp-${randomBytes(18).toString('base64url')}`;
    recordTestSecret('cli enroll-link passphrase', passphrase);
    const passphraseFile = inputs.write('passphrase', `${passphrase}\n`);
    const init = await runCliInProcess(['init', ...storeArgs(store), '--passphrase-file', passphraseFile, '--scrypt-log-n', '10']);
    assert.equal(init.code, 0, init.stderr);
    registerKeyFile = await createKey('support', 'register');
    signOnlyKeyFile = await createKey('backend', 'derive,sign');
    served = await serve(store, ['--passphrase-file', passphraseFile]);
  });
  after(() => served?.stop());

  it(
    'prints the owner’s enrolment link and a QR code that decodes to it; the code is the encoder’s matrix with a 4-module quiet zone',
    { timeout: 60_000 },
    async () => {
      const wallet = 'customer 42 · ünïcode';
      const result = await runCliInProcess(['wallet', 'enroll-link', wallet, '--url', served.url, '--api-key-file', registerKeyFile]);
      assert.equal(result.code, 0, result.stderr);
      assert.equal(result.stderr, '');
      const [header, warning, link, blank, ...qrLines] = result.stdout.split('\n');
      assert.match(header ?? '', /^Enrolment link for wallet "customer 42 · ünïcode" \(totp; single use, until \d{4}-\d\d-\d\dT[\d:.]+Z\)\.$/);
      assert.match(warning ?? '', /owner only/);
      const capability = /^http:\/\/localhost:\d+\/enroll\/([A-Za-z0-9_-]{20,})$/.exec(link ?? '')?.[1];
      assert.ok(capability !== undefined, `an enrolment link: ${link}`);
      recordTestSecret('cli enroll-link link', link ?? '');
      recordTestSecret('cli enroll-link capability', capability);
      assert.equal(blank, '');
      const printed = qrLines.join('\n');
      assert.ok(!printed.includes('\x1b'), 'no colour codes when stdout is not a terminal');
      assert.equal(decodePrinted(printed), link, 'the printed QR code decodes to the printed link');

      // module for module: the library's matrix of the link, inside a 4-module quiet zone
      const { modules } = QRCode.create(link ?? '', { errorCorrectionLevel: 'M' });
      const shown = modulesOf(printed);
      const size = modules.size;
      assert.equal(shown[0]?.length, size + 8);
      for (let y = 0; y < size + 8; y++)
        for (let x = 0; x < size + 8; x++) {
          const inside = x >= 4 && y >= 4 && x < size + 4 && y < size + 4;
          assert.equal(shown[y]?.[x] ?? false, inside && modules.get(y - 4, x - 4) === 1, `module (${x}, ${y})`);
        }

      // the link works: the owner's page answers it (GET only shows the page)
      const page = await fetch((link ?? '').replace('//localhost:', '//127.0.0.1:'));
      assert.equal(page.status, 200);
      await page.body?.cancel();
    },
  );

  it(
    '--kind and --ttl-seconds go to the signer: a passkey link on a signer without passkeys is its refusal, a ttl out of range is invalid_input naming the field',
    { timeout: 30_000 },
    async () => {
      const passkey = await runCliInProcess([
        'wallet',
        'enroll-link',
        'w-passkey',
        '--kind',
        'passkey',
        '--url',
        served.url,
        '--api-key-file',
        registerKeyFile,
      ]);
      assertFailure(passkey, 1, 'passkeys_unavailable');
      const shortTtl = await runCliInProcess(['wallet', 'enroll-link', 'w-ttl', '--ttl-seconds', '60', '--url', served.url, '--api-key-file', registerKeyFile]);
      assertFailure(shortTtl, 2, 'invalid_input');
      const okTtl = await runCliInProcess([
        'wallet',
        'enroll-link',
        '--url',
        served.url,
        '--ttl-seconds',
        '600',
        '--api-key-file',
        registerKeyFile,
        '--',
        '-dash-name',
      ]);
      assert.equal(okTtl.code, 0, okTtl.stderr);
      assert.match(okTtl.stdout, /^Enrolment link for wallet "-dash-name" \(totp; /);
      const okLink = /^http:\/\/\S+\/enroll\/\S+$/m.exec(okTtl.stdout)?.[0] ?? '';
      recordTestSecret('cli enroll-link link (dash name)', okLink);
    },
  );

  it(
    'refuses a key without the register scope (forbidden_scope), a missing or second name, bad options — exit 2 for usage, nothing on stdout',
    { timeout: 30_000 },
    async () => {
      const noScope = await runCliInProcess(['wallet', 'enroll-link', 'w1', '--url', served.url, '--api-key-file', signOnlyKeyFile]);
      assertFailure(noScope, 1, 'forbidden_scope');
      assertFailure(
        await runCliInProcess(['wallet', 'enroll-link', '--url', served.url, '--api-key-file', registerKeyFile]),
        2,
        'invalid_input',
        'wallet name',
      );
      assertFailure(
        await runCliInProcess(['wallet', 'enroll-link', 'a', 'b', '--url', served.url, '--api-key-file', registerKeyFile]),
        2,
        'invalid_input',
        'one wallet name',
      );
      assertFailure(await runCliInProcess(['wallet', 'enroll-link', 'a', '--url', served.url]), 2, 'invalid_input', '--api-key-file');
      assertFailure(await runCliInProcess(['wallet', 'enroll-link', 'a', '--api-key-file', registerKeyFile]), 2, 'invalid_input', '--url');
      assertFailure(
        await runCliInProcess(['wallet', 'enroll-link', 'a', '--ttl-seconds', 'soon', '--url', served.url, '--api-key-file', registerKeyFile]),
        2,
        'invalid_input',
        '--ttl-seconds',
      );
      assertFailure(
        await runCliInProcess(['wallet', 'enroll-link', 'a', '--url', served.url, '--url', served.url, '--api-key-file', registerKeyFile]),
        2,
        'invalid_input',
        '--url',
      );
      assertFailure(await runCliInProcess(['wallet', 'enroll', 'a']), 2, 'invalid_input', 'wallet --help');
      assertFailure(
        await runCliInProcess(['wallet', 'enroll-link', 'a', '--colour', 'on', '--url', served.url, '--api-key-file', registerKeyFile]),
        2,
        'invalid_input',
        '--colour',
      );
      const unreachable = await runCliInProcess(['wallet', 'enroll-link', 'a', '--url', 'http://127.0.0.1:1', '--api-key-file', registerKeyFile]);
      assertFailure(unreachable, 1, 'signer_unreachable');
      const help = await runCli(['wallet', '--help']);
      assert.equal(help.code, 0);
      assert.match(help.stdout, /custos wallet enroll-link NAME --url U --api-key-file K/);
    },
  );

  it('on a terminal each line of the code is set black on white (it scans on a dark terminal too)', async () => {
    const text = 'http://localhost:1/enroll/x';
    const plain = await renderQrForTerminal(text, { color: false });
    const colored = await renderQrForTerminal(text, { color: true });
    const lines = colored.split('\n').filter((l) => l !== '');
    assert.ok(lines.every((l) => l.startsWith('\x1b[30;47m') && l.endsWith('\x1b[0m')));
    // biome-ignore lint/suspicious/noControlCharactersInRegex: the colour codes are the point
    assert.equal(colored.replace(/\x1b\[[0-9;]*m/g, ''), plain);
    assert.equal(decodePrinted(plain), text);
  });
});
