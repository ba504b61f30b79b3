#!/usr/bin/env node
// `npm start`: a development kernel in one command. Checks that the port is free (before anything
// else: a port in use is said as such, exit 1), creates (once) a data directory with a random dev
// passphrase and a generated seed, reuses its development API key (kept in <data dir>/dev-api-key,
// mode 0600; a new one is created only when that file is missing or its key no longer works:
// revoked, or the data directory was made anew), prints how to use it, and serves on 127.0.0.1
// unsealed. Not for production: the passphrase and the key sit beside the data.
// `npm start -- --no-serve`: the same, but exits after printing (to see the key and the URL again).
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const dataDir = process.env.CUSTOS_DATA_DIR ?? join(root, '.custos-dev');
const port = process.env.CUSTOS_PORT ?? '8420';
const passphraseFile = join(dataDir, 'dev-passphrase');
/** The development API key: reused from run to run. scripts/scan-secrets.mjs knows this file name (it holds a secret on purpose). */
const apiKeyFile = join(dataDir, 'dev-api-key');
const args = process.argv.slice(2);
if (args.some((arg) => arg !== '--no-serve'))
  fail(`unknown argument ${JSON.stringify(args.find((arg) => arg !== '--no-serve'))}; expected --no-serve or nothing`);
const serve = !args.includes('--no-serve');

function fail(message) {
  process.stderr.write(`npm start: ${message}\n`);
  process.exit(1);
}

/** Resolves when nothing listens on 127.0.0.1:port (bound, then closed); a port in use fails with that message. */
async function checkPortFree(value) {
  if (!/^[0-9]{1,5}$/.test(value) || Number(value) > 65535) fail(`CUSTOS_PORT: expected a port number 0..65535, got ${JSON.stringify(value)}`);
  const server = createServer();
  await new Promise((resolve) => {
    server.once('error', (error) => {
      if (error.code === 'EADDRINUSE') fail(`port ${value} is in use (another process listens on 127.0.0.1:${value}): stop it or set CUSTOS_PORT`);
      fail(`cannot listen on 127.0.0.1:${value}: ${error.message}`);
    });
    server.listen(Number(value), '127.0.0.1', resolve);
  });
  await new Promise((resolve) => server.close(resolve));
}

function capture() {
  let text = '';
  const stdout = {
    write(s) {
      text += s;
    },
  };
  return { io: { stdout, stderr: process.stderr }, text: () => text };
}

async function run(args, io) {
  const code = await main(args, io);
  if (code !== 0) process.exit(code);
}

/** The kept key, if it still works: its row is there, not revoked, and its secret matches. */
function reusableKey(store, token) {
  const m = /^ck1\.([0-9a-f]{16})\.([A-Za-z0-9_-]{43})$/.exec(token);
  if (m === null) return Promise.resolve(undefined);
  return store.getApiKey(m[1]).then((record) => {
    if (record === undefined || record.revokedAt !== null) return undefined;
    const presented = hashApiKeySecret(m[2]);
    return presented.length === record.secretHash.length && timingSafeEqual(presented, record.secretHash) ? token : undefined;
  });
}

// The port first, before anything is printed or loaded (the kernel's modules take a while to load).
if (serve) await checkPortFree(port);
const { main } = await import('../packages/cli/dist/main.js');
const { hashApiKeySecret } = await import('../packages/kernel/dist/index.js');
const { openStore } = await import('../packages/server/dist/index.js');
mkdirSync(dataDir, { recursive: true, mode: 0o700 });
if (!existsSync(join(dataDir, 'custos.db'))) {
  writeFileSync(passphraseFile, randomBytes(24).toString('base64url'), { mode: 0o600 });
  console.log(`Creating a development signer in ${dataDir} (dev passphrase in ${passphraseFile}).`);
  await run(['init', '--data-dir', dataDir, '--passphrase-file', passphraseFile], { stdout: process.stdout, stderr: process.stderr });
}

const store = await openStore({ dataDir });
const signerId = (await store.getMeta())?.signerId;
const kept = existsSync(apiKeyFile) ? readFileSync(apiKeyFile, 'utf8').trim() : undefined;
let apiKey = kept === undefined ? undefined : await reusableKey(store, kept);
await store.close();
if (apiKey === undefined) {
  const key = capture();
  await run(['apikey', 'create', '--data-dir', dataDir, '--name', `dev-${new Date().toISOString()}`, '--scopes', 'register,derive,sign'], key.io);
  apiKey = key.text().trim().split(/\s+/).at(-1);
  writeFileSync(apiKeyFile, `${apiKey}\n`, { mode: 0o600 });
  chmodSync(apiKeyFile, 0o600);
  console.log(
    kept === undefined
      ? `Created a development API key (kept in ${apiKeyFile}).`
      : `The kept API key no longer works: created a new one (kept in ${apiKeyFile}).`,
  );
}

const base = `http://127.0.0.1:${port}`;
const demoHash = `0x${'ab'.repeat(32)}`;
console.log(`
Custos development kernel
  URL       ${base}
  API key   ${apiKey}
  signerId  ${signerId}   (TOTP ETH Signer SDK: signerUrl ${base}/sys/)

Demo wallet "demo":
  # its address (key index 0)
  curl -s -H "Authorization: Bearer ${apiKey}" '${base}/v1/keys?walletName=demo&keyIndex=0'
  # sign a hash (the wallet has no second factor yet, so no code is needed)
  curl -s -H "Authorization: Bearer ${apiKey}" -H 'content-type: application/json' \\
       -d '{"walletName":"demo","keyIndex":0,"hash":"${demoHash}"}' ${base}/v1/sign/hash
Register a wallet with TOTP, then sign a message with the code from the authenticator app
(an enrolled wallet's policy refuses raw hashes by default: it signs what it can show, docs/policy.md):
  curl -s -H "Authorization: Bearer ${apiKey}" -H 'content-type: application/json' \\
       -d '{"walletName":"alice"}' ${base}/v1/totp/enroll
  curl -s -H "Authorization: Bearer ${apiKey}" -H 'content-type: application/json' \\
       -d '{"walletName":"alice","keyIndex":0,"message":{"text":"hello"},"code":"123456"}' ${base}/v1/sign/message
API reference: ${base}/v1/openapi.json   ${serve ? 'Stop with Ctrl-C.' : '(not started: --no-serve)'}
`);
if (serve) process.exitCode = await main(['serve', '--data-dir', dataDir, '--port', port, '--passphrase-file', passphraseFile]);
