import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import type { StoreLocation } from '@custos/server';
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

// `custos serve --public-listen HOST:PORT` and the passkey start-up lines, through the real binary
// (issue 11, points 4 and 5). The listeners themselves are tested in the server package
// (publicListener.test.ts); here: the options as a user gives them, and what serve prints.

const inputs = secretInputs('custos-cli-public-listen');

async function initialised(): Promise<{ store: StoreLocation; passphraseFile: string }> {
  const store = freshStoreLocation();
  const passphrase = `pp-${randomBytes(18).toString('base64url')}`;
  recordTestSecret('cli public-listen passphrase', passphrase);
  const passphraseFile = inputs.write('passphrase', `${passphrase}\n`);
  const result = await runCli(['init', ...storeArgs(store), '--passphrase-file', passphraseFile, '--scrypt-log-n', '10']);
  assert.equal(result.code, 0, result.stderr);
  return { store, passphraseFile };
}

/** Waits for a line of the serve log (the lines after `listening on` are written just after it). */
async function logLine(served: Served, pattern: RegExp): Promise<RegExpExecArray> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const m = pattern.exec(readFileSync(served.logFile, 'utf8'));
    if (m !== null) return m;
    if (Date.now() > deadline) assert.fail(`${pattern} not in the serve log: ${readFileSync(served.logFile, 'utf8')}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

describe('custos serve --public-listen', () => {
  it('starts with --public-listen 127.0.0.1:0, prints both addresses, and serves the pages apart from the API', { timeout: 60_000 }, async (t) => {
    const { store, passphraseFile } = await initialised();
    const served = await serve(store, ['--passphrase-file', passphraseFile, '--public-listen', '127.0.0.1:0']);
    t.after(() => served.stop());
    const pagesUrl = (await logLine(served, /^custos: pages on (http:\/\/127\.0\.0\.1:\d+) \(the API listener serves none\)$/m))[1] ?? '';
    assert.notEqual(pagesUrl, served.url);
    // port 0 and no --public-url: the pages' origin is not known before binding, passkeys off, said once
    const log = readFileSync(served.logFile, 'utf8');
    assert.match(log, /^custos: passkeys are off: .*port 0.*give --public-url$/m);

    const capability = randomBytes(32).toString('base64url');
    // the public listener: pages (an unknown link is the page's own 404), nothing else
    const page = await fetch(`${pagesUrl}/approve/${capability}`);
    assert.equal(page.status, 404);
    assert.equal(page.headers.get('content-type'), 'text/html; charset=utf-8');
    assert.match(page.headers.get('content-security-policy') ?? '', /frame-ancestors 'none'/);
    assert.match(await page.text(), /There is no signing request at this address/);
    for (const path of ['/v1/sys/status', '/healthz', '/sys/v1/session/auth']) {
      const answer = await fetch(`${pagesUrl}${path}`);
      assert.equal(answer.status, 404, path);
      assert.equal(answer.headers.get('content-type'), 'text/html; charset=utf-8', path);
      assert.match(await answer.text(), /Page not found/, path);
    }
    // the API listener: the API, and no pages
    const status = await fetch(`${served.url}/v1/sys/status`);
    assert.equal(status.status, 200);
    assert.equal(((await status.json()) as { sealed: boolean }).sealed, false);
    const noPage = await fetch(`${served.url}/approve/${capability}`);
    assert.equal(noPage.status, 404);
    assert.equal(((await noPage.json()) as { error: { code: string } }).error.code, 'not_found');
    assert.equal(await served.stop(), 0);
  });

  it('a public URL on an IP address: serve starts with passkeys off and says why in one line', { timeout: 60_000 }, async (t) => {
    const { store, passphraseFile } = await initialised();
    const served = await serve(store, ['--passphrase-file', passphraseFile, '--public-url', 'http://127.0.0.1:8420']);
    t.after(() => served.stop());
    const line = await logLine(served, /^custos: passkeys are off: .*$/m);
    assert.match(
      line[0],
      /^custos: passkeys are off: the public URL http:\/\/127\.0\.0\.1:8420 is an IP address, and browsers refuse passkeys \(WebAuthn\) on IP addresses; use a host name such as localhost/,
    );
    assert.equal(readFileSync(served.logFile, 'utf8').match(/^custos: passkeys/gm)?.length, 1, 'one line');
  });

  it('bad values: exit 2, one line invalid_input naming --public-listen', { timeout: 120_000 }, async () => {
    // in the test process (runCliInProcess), on a location never initialised: the option is refused
    // before the store is opened, and a serve that wrongly went on would stop at not_initialized
    const store = freshStoreLocation();
    // one of each kind (no port, port out of range, IPv6 without brackets, a name in brackets)
    for (const value of ['127.0.0.1', '127.0.0.1:65536', '::1:8443', '[localhost]:80'])
      assertFailure(await runCliInProcess(['serve', ...storeArgs(store), '--public-listen', value]), 2, 'invalid_input', '--public-listen');
    // plain HTTP on an address other than loopback, as for --host
    assertFailure(await runCliInProcess(['serve', ...storeArgs(store), '--public-listen', '0.0.0.0:8443']), 2, 'invalid_input', '--public-listen');
  });
});
