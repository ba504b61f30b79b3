// store-independent: npm start (scripts/dev-start.mjs) always uses its own SQLite data directory (runs in the SQLite pass only)
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { ROOT, recordTestSecret, runCliInProcess, testArtifactsDir } from './testing/cliHarness.js';

// Issue 15 point 11: npm start checks its port before anything else and reuses its development API key.

/** This helper's assigned port for the one serving start (the script prints the URL with the port it was given). */
const DEV_PORT = 8623;
const SCRIPT = join(ROOT, 'scripts', 'dev-start.mjs');

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs npm start's script. `whileRunning` (for a serving start) is called once the start-up log line
 * is out, with that line parsed; the process is then sent SIGTERM.
 */
function devStart(
  env: NodeJS.ProcessEnv,
  args: string[] = [],
  whileRunning?: (startLine: Record<string, unknown>, stdout: string) => Promise<void>,
): Promise<Run> {
  const child = spawn(process.execPath, [SCRIPT, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  let failure: unknown;
  let started = false;
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString('utf8');
  });
  child.stdout.on('data', (chunk: Buffer) => {
    stdout += chunk.toString('utf8');
    const line = stdout.split('\n').find((l) => l.includes('"msg":"custos started"'));
    if (line === undefined || started || whileRunning === undefined) return;
    started = true;
    whileRunning(JSON.parse(line) as Record<string, unknown>, stdout)
      .catch((error: unknown) => {
        failure = error;
      })
      .finally(() => child.kill('SIGTERM'));
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      if (failure !== undefined) reject(failure);
      else resolve({ code, stdout, stderr });
    });
  });
}

function bannerKey(stdout: string): string {
  const key = /^ {2}API key {3}(\S+)$/m.exec(stdout)?.[1];
  assert.ok(key !== undefined, stdout);
  recordTestSecret('npm start development API key', key);
  return key;
}

describe('npm start (scripts/dev-start.mjs)', () => {
  let dataDir: string;
  let env: NodeJS.ProcessEnv;

  before(async () => {
    // A signer made here at a low scrypt cost (npm start would make one at the default cost, seconds of CPU).
    dataDir = join(mkdtempSync(join(testArtifactsDir(), 'dev-start-')), 'data');
    mkdirSync(dataDir, { mode: 0o700 });
    const passphrase = randomBytes(24).toString('base64url');
    recordTestSecret('npm start dev passphrase', passphrase);
    writeFileSync(join(dataDir, 'dev-passphrase'), passphrase, { mode: 0o600 });
    const init = await runCliInProcess(['init', '--data-dir', dataDir, '--passphrase-file', join(dataDir, 'dev-passphrase'), '--scrypt-log-n', '10']);
    assert.equal(init.code, 0, init.stderr);
    env = { CUSTOS_DATA_DIR: dataDir, CUSTOS_PORT: String(DEV_PORT) };
  });

  it('a port in use is said as such before anything else (exit 1, nothing printed, nothing created)', async () => {
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const { port } = blocker.address() as { port: number };
    const fresh = join(mkdtempSync(join(testArtifactsDir(), 'dev-start-busy-')), 'data');
    try {
      const result = await devStart({ CUSTOS_DATA_DIR: fresh, CUSTOS_PORT: String(port) });
      assert.equal(result.code, 1, result.stderr);
      assert.equal(result.stdout, '');
      assert.equal(result.stderr, `npm start: port ${port} is in use (another process listens on 127.0.0.1:${port}): stop it or set CUSTOS_PORT\n`);
      assert.ok(!existsSync(fresh), 'the data directory was created before the port was checked');
    } finally {
      await new Promise<void>((resolve) => blocker.close(() => resolve()));
    }
  });

  it('reuses its API key from start to start (kept 0600), makes a new one once it is revoked; serve logs its configuration, secrets masked, and its shutdown', async () => {
    const metricsToken = randomBytes(24).toString('base64url');
    recordTestSecret('npm start metrics token', metricsToken);
    const logLines: string[] = [];
    let firstKey = '';
    // 1. a serving start: the key works against the running kernel; the start-up line shows the effective configuration
    const first = await devStart({ ...env, CUSTOS_METRICS_TOKEN: metricsToken }, [], async (startLine, stdout) => {
      firstKey = bannerKey(stdout);
      const response = await fetch(`http://127.0.0.1:${DEV_PORT}/v1/keys?walletName=demo&keyIndex=0`, { headers: { authorization: `Bearer ${firstKey}` } });
      assert.equal(response.status, 200, await response.text());
      const config = startLine.config as Record<string, unknown>;
      assert.equal(config['data-dir'], dataDir);
      assert.equal(config.port, String(DEV_PORT));
      assert.equal(config.CUSTOS_METRICS_TOKEN, '***');
      assert.equal((startLine.configSources as Record<string, unknown>).port, 'flag');
      assert.ok(!JSON.stringify(startLine).includes(metricsToken));
    });
    for (const line of first.stdout.split('\n')) if (line.startsWith('{')) logLines.push(line);
    // only the log lines go to the artifacts (the banner shows the key, by design): the secret scan reads them
    writeFileSync(join(dataDir, '..', 'serve.log'), `${logLines.join('\n')}\n`);
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stdout, /Created a development API key/);
    const stopped = JSON.parse(logLines.find((l) => l.includes('"msg":"custos stopped"')) ?? '{}') as Record<string, unknown>;
    assert.equal(stopped.signal, 'SIGTERM');
    assert.equal(typeof stopped.uptimeSeconds, 'number');
    const keyFile = join(dataDir, 'dev-api-key');
    assert.equal(statSync(keyFile).mode & 0o777, 0o600);
    assert.equal(readFileSync(keyFile, 'utf8'), `${firstKey}\n`);

    // 2. the next start shows the same key and makes none
    const second = await devStart(env, ['--no-serve']);
    assert.equal(second.code, 0, second.stderr);
    assert.equal(bannerKey(second.stdout), firstKey);
    assert.doesNotMatch(second.stdout, /Created|created/);

    // 3. revoked: a new key, kept in its place
    const id = firstKey.split('.')[1] ?? '';
    assert.equal((await runCliInProcess(['apikey', 'revoke', '--data-dir', dataDir, '--id', id])).code, 0);
    const third = await devStart(env, ['--no-serve']);
    assert.equal(third.code, 0, third.stderr);
    const thirdKey = bannerKey(third.stdout);
    assert.notEqual(thirdKey, firstKey);
    assert.match(third.stdout, /The kept API key no longer works: created a new one/);
    assert.equal(readFileSync(keyFile, 'utf8'), `${thirdKey}\n`);
  });
});
