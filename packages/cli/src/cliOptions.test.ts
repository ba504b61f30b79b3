// store-independent: the CLI's option parsing and its connection errors, answered before any store is opened (runs in the SQLite pass only)
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { assertFailure, runCliInProcess } from './testing/cliHarness.js';

// Issue 15 point 9: a repeated single-valued option is an error, not "last one wins"; an unreachable
// --url (or admin socket) is a connection error (signer_unreachable), not invalid_input.

/** A TCP port on 127.0.0.1 that nothing listens on (bound, then closed). */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe('CLI options', () => {
  it('a single-valued option given twice is refused, naming it (exit 2, invalid_input)', async () => {
    for (const args of [
      ['unseal', '--url', 'http://127.0.0.1:1', '--url', 'http://127.0.0.1:2'],
      ['seal', '--admin-socket', '/tmp/a', '--admin-socket', '/tmp/b'],
      ['init', '--data-dir', '/tmp/x', '--data-dir', '/tmp/y'],
    ]) {
      const result = await runCliInProcess(args);
      assertFailure(result, 2, 'invalid_input', `--${String(args[1]).slice(2)} is given more than once`);
    }
  });

  it('rekey takes --pkcs11-module twice for a rotation (current and new unsealer) only with the same value', async () => {
    const result = await runCliInProcess(['rekey', '--data-dir', '/nonexistent/custos', '--pkcs11-module', '/a.so', '--pkcs11-module', '/b.so']);
    assertFailure(result, 2, 'invalid_input', '--pkcs11-module is given with different values');
    const same = await runCliInProcess(['rekey', '--data-dir', '/nonexistent/custos', '--pkcs11-module', '/a.so', '--pkcs11-module', '/a.so']);
    assert.ok(!same.stderr.includes('more than once') && !same.stderr.includes('different values'), same.stderr);
  });

  it('an option declared repeatable still repeats (unseal --share-file …)', async () => {
    // Two share files given: refused later for what they hold (files that do not exist), not for the repetition.
    const result = await runCliInProcess(['unseal', '--url', 'http://127.0.0.1:1', '--share-file', '/nonexistent/a', '--share-file', '/nonexistent/b']);
    assert.ok(!result.stderr.includes('more than once'), result.stderr);
  });

  it('nothing listening at --url, or no admin socket: signer_unreachable (exit 1), not invalid_input', async () => {
    const port = await closedPort();
    const dir = mkdtempSync(join(tmpdir(), 'custos-cli-options-'));
    try {
      const passphraseFile = join(dir, 'passphrase');
      writeFileSync(passphraseFile, 'not the real one\n', { mode: 0o600 });
      assertFailure(
        await runCliInProcess(['unseal', '--url', `http://127.0.0.1:${port}`, '--passphrase-file', passphraseFile]),
        1,
        'signer_unreachable',
        `http://127.0.0.1:${port}`,
      );
      assertFailure(await runCliInProcess(['seal', '--admin-socket', join(dir, 'no-such.sock')]), 1, 'signer_unreachable', 'no-such.sock');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
