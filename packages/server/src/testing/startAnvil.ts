import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { testArtifactsDir } from './createTestSigner.js';

// A real local Ethereum node for the integration tests. The anvil binary is spawned directly (not
// node_modules/.bin/anvil, a Node wrapper whose SIGKILL would orphan the real binary) so that this
// process owns the PID; it binds 127.0.0.1 on a free port, logs into the artifacts directory, and
// is stopped by stop() — or SIGKILLed by the exit hook if a test crashed first.

/** dist/testing/startAnvil.js → repo root. */
const ROOT = fileURLToPath(new URL('../../../../', import.meta.url));
/** The anvil binary; CUSTOS_TEST_ANVIL_BIN overrides it (the harness test points it at a missing file). */
export const ANVIL_BIN = process.env.CUSTOS_TEST_ANVIL_BIN ?? join(ROOT, 'node_modules', '@foundry-rs', 'anvil-linux-amd64', 'bin', 'anvil');

const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

export interface Anvil {
  /** http://127.0.0.1:port */
  url: string;
  chainId: number;
  child: ChildProcess;
  /** One JSON-RPC call; throws on an RPC error. */
  rpc<T = unknown>(method: string, params?: unknown[]): Promise<T>;
  /** SIGTERM, then SIGKILL after 3 s; resolves once the process is gone. */
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

/** Starts anvil (prague hardfork: EIP-7702) and waits until it answers eth_chainId. Throws if it cannot start. */
export async function startAnvil({ chainId = 31337, timeoutMs = 15_000 }: { chainId?: number; timeoutMs?: number } = {}): Promise<Anvil> {
  if (!existsSync(ANVIL_BIN)) throw new Error(`anvil binary not found at ${ANVIL_BIN}`);
  let lastError: unknown;
  // A free port can be taken between the probe and anvil's bind: try a few.
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    const logFile = join(testArtifactsDir(), `anvil-${process.pid}-${port}.log`);
    const fd = openSync(logFile, 'a');
    const child = spawn(
      ANVIL_BIN,
      ['--host', '127.0.0.1', '--port', String(port), '--chain-id', String(chainId), '--hardfork', 'prague', '--accounts', '1', '--no-request-size-limit'],
      { stdio: ['ignore', fd, fd] },
    );
    closeSync(fd);
    live.add(child);
    const exited = new Promise<void>((resolve) =>
      child.once('exit', () => {
        live.delete(child);
        resolve();
      }),
    );
    const url = `http://127.0.0.1:${port}`;
    let id = 0;
    const rpc = async <T>(method: string, params: unknown[] = []): Promise<T> => {
      const response = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ jsonrpc: '2.0', id: ++id, method, params }),
        signal: AbortSignal.timeout(10_000),
      });
      const body = (await response.json()) as { result?: T; error?: { message?: string } };
      if (body.error !== undefined) throw new Error(`${method}: ${body.error.message ?? 'error'}`);
      return body.result as T;
    };
    const anvil: Anvil = {
      url,
      chainId,
      child,
      rpc,
      async stop() {
        if (child.exitCode !== null || child.signalCode !== null) return;
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 3_000);
        await exited;
        clearTimeout(timer);
      },
    };
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline && child.exitCode === null) {
      try {
        const id = await rpc<string>('eth_chainId');
        if (Number(BigInt(id)) === chainId) return anvil;
      } catch (error) {
        lastError = error;
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    await anvil.stop();
    lastError = new Error(`anvil did not answer on ${url}: ${readFileSync(logFile, 'utf8').slice(-2000)}`);
  }
  throw lastError instanceof Error ? lastError : new Error(String(lastError));
}
