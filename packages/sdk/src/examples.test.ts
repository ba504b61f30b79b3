import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { createPublicClient, type Hex, http, parseEther, toHex } from 'viem';
import { foundry } from 'viem/chains';
import { createCustosClient } from './client.js';
import { listenTestSigner } from './testing/listenTestSigner.js';
import { totpFromUri } from './testing/serverTesting.js';
import { type Anvil, startAnvil } from '@custos/server/testing';

/**
 * The README's "Replace a private key with Custos" examples are the files in packages/sdk/examples
 * (checked byte for byte here), and each runs as a real program against a real kernel and anvil:
 * it prompts for the code on stdin, the test answers as the wallet owner would, and the
 * transaction it sends must be mined with status success.
 */
const SDK = fileURLToPath(new URL('..', import.meta.url)); // packages/sdk/
const README = readFileSync(join(SDK, '..', '..', 'README.md'), 'utf8');
const EXAMPLES = ['viem.mjs', 'ethers.mjs'];

describe('README examples', () => {
  it('the README shows each example file verbatim', () => {
    for (const name of EXAMPLES) {
      const marker = `<!-- packages/sdk/examples/${name} -->`;
      const at = README.indexOf(marker);
      assert.ok(at >= 0, `README has ${marker}`);
      const block = /```js\n([\s\S]*?)```/.exec(README.slice(at + marker.length));
      assert.ok(block?.[1] !== undefined, `a js block follows ${marker}`);
      assert.equal(block[1], readFileSync(join(SDK, 'examples', name), 'utf8'), `README block of ${name} = the file`);
    }
  });

  describe('run against a real kernel and anvil', () => {
    let anvil: Anvil | undefined;
    let signer: Awaited<ReturnType<typeof listenTestSigner>>;
    let otpauthUri = '';
    before(async () => {
      try {
        anvil = await startAnvil();
      } catch (error) {
        if (process.env.CI === 'true') throw error;
        console.error(`\n*** SKIPPED running the README examples: anvil cannot start (${String(error)}). CI fails here. ***\n`);
        return;
      }
      signer = await listenTestSigner();
      const client = createCustosClient({ url: signer.url, apiKey: signer.apiKey });
      ({ otpauthUri } = await client.enrollTotp({ walletName: 'alice' }));
      for (const keyIndex of [0, 1]) {
        const { address } = await client.getKey({ walletName: 'alice', keyIndex });
        await anvil.rpc('anvil_setBalance', [address, toHex(parseEther('1'))]);
      }
    });
    after(async () => {
      await anvil?.stop();
      await signer?.close();
    });

    for (const name of EXAMPLES) {
      it(`examples/${name} sends a transaction approved with a code typed at its prompt`, async (t) => {
        if (anvil === undefined) return t.skip('no anvil');
        const output = await runExample(name, { CUSTOS_URL: signer.url, CUSTOS_API_KEY: signer.apiKey, RPC_URL: anvil.url }, () => {
          signer.clock.now += 30_000; // a fresh code: one 30 s step later
          return totpFromUri(otpauthUri, signer.clock.now);
        });
        const m = /sent (0x[0-9a-f]{64}) from (0x[0-9a-fA-F]{40}): success/.exec(output);
        assert.ok(m, output);
        const receipt = await createPublicClient({ chain: foundry, transport: http(anvil.url) }).getTransactionReceipt({ hash: m[1] as Hex });
        assert.equal(receipt.status, 'success');
        assert.equal(receipt.from.toLowerCase(), m[2]?.toLowerCase());
      });
    }
  });
});

/** Runs `node examples/<name>`; answers each code prompt on stdin; resolves with stdout once it exits 0. */
function runExample(name: string, env: Record<string, string>, nextCode: () => string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(SDK, 'examples', name)], { env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let prompts = 0;
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${name} did not finish in 30 s: ${stdout} ${stderr}`));
    }, 30_000);
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk;
      const asked = stdout.split('authenticator app to approve').length - 1;
      while (prompts < asked) {
        prompts++;
        child.stdin.write(`${nextCode()}\n`);
      }
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk;
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      if (code === 0 && prompts === 1) resolve(stdout);
      else reject(new Error(`${name} exited ${code} after ${prompts} prompt(s): ${stdout}\n${stderr}`));
    });
  });
}
