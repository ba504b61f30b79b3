#!/usr/bin/env node
// `npm start`: a development kernel in one command. Creates (once) a data directory with a random
// dev passphrase and a generated seed, creates a fresh API key, prints how to use it, and serves
// on 127.0.0.1 unsealed. Not for production: the passphrase file sits beside the data.
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { main } from '../packages/cli/dist/main.js';
import { openStore } from '../packages/server/dist/index.js';

const root = new URL('..', import.meta.url).pathname;
const dataDir = process.env.CUSTOS_DATA_DIR ?? join(root, '.custos-dev');
const port = process.env.CUSTOS_PORT ?? '8420';
const passphraseFile = join(dataDir, 'dev-passphrase');

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

mkdirSync(dataDir, { recursive: true, mode: 0o700 });
if (!existsSync(join(dataDir, 'custos.db'))) {
  writeFileSync(passphraseFile, randomBytes(24).toString('base64url'), { mode: 0o600 });
  console.log(`Creating a development signer in ${dataDir} (dev passphrase in ${passphraseFile}).`);
  await run(['init', '--data-dir', dataDir, '--passphrase-file', passphraseFile], { stdout: process.stdout, stderr: process.stderr });
}

const key = capture();
await run(['apikey', 'create', '--data-dir', dataDir, '--name', `dev-${new Date().toISOString()}`, '--scopes', 'register,derive,sign'], key.io);
const apiKey = key.text().trim().split(/\s+/).at(-1);

const store = await openStore({ dataDir });
const signerId = (await store.getMeta())?.signerId;
await store.close();

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
API reference: ${base}/v1/openapi.json   Stop with Ctrl-C.
`);
process.exitCode = await main(['serve', '--data-dir', dataDir, '--port', port, '--passphrase-file', passphraseFile]);
