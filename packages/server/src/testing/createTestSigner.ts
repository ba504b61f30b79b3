import { mkdirSync, mkdtempSync, appendFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createApiKey, type DerivationScheme, initializeSigner, Kernel, type Scope } from '@custos/kernel';
import { mnemonicToSeedSync } from '@scure/bip39';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../buildApp.js';
import { createLogger } from '../createLogger.js';
import { openStore } from '../openStore.js';
import type { SqliteStore } from '../stores/sqlite/SqliteStore.js';

/** The BIP39 test mnemonic whose seed and fortanix-v1 vectors are in test/vectors. */
export const TEST_MNEMONIC = 'abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about';
export const TEST_PASSPHRASE = 'correct horse battery staple (test only)';

/**
 * Where every test run leaves its logs and data directories, so that the secret-leak check can
 * grep all of them after the suite (see scripts/test.mjs). Defaults to a per-process temp dir.
 */
export function testArtifactsDir(): string {
  const dir = process.env.CUSTOS_TEST_ARTIFACTS ?? join(tmpdir(), `custos-test-${process.pid}`);
  mkdirSync(dir, { recursive: true });
  return dir;
}

/**
 * Records a secret a test has seen (a TOTP secret, a code, an API key) so that the final
 * secret-leak scan can look for it in every log and database file of the run.
 */
export function recordTestSecret(label: string, value: string): void {
  appendFileSync(join(testArtifactsDir(), 'secrets.jsonl'), `${JSON.stringify({ label, value })}\n`);
}

export interface TestSigner {
  app: FastifyInstance;
  kernel: Kernel;
  store: SqliteStore;
  dataDir: string;
  signerId: string;
  apiKey: string;
  /** A clock the test controls (ms). */
  clock: { now: number };
  /** Authorization header for the native API. */
  auth(key?: string): { authorization: string };
  /** Closes the app, seals the kernel, closes the store. */
  close(): Promise<void>;
  /** Re-opens kernel and app on the same data directory (a restart). */
  restart(): Promise<void>;
}

export interface TestSignerOptions {
  derivation?: DerivationScheme;
  scopes?: Scope[];
  /** Start time of the controlled clock (ms). Defaults to the real time. */
  startMs?: number;
}

/**
 * A real signer for tests: a fresh data directory with a real SQLite file, initialised from the
 * BIP39 test mnemonic with a cheap scrypt cost, an API key, an unsealed kernel whose clock the test
 * controls, and the Fastify app (exercised with inject, or listening when a test needs sockets).
 * Logs go to a file in the artifacts directory.
 */
export async function createTestSigner({ derivation = 'custos-v1', scopes = ['register', 'derive', 'sign'], startMs = Date.now() }: TestSignerOptions = {}): Promise<TestSigner> {
  const artifacts = testArtifactsDir();
  const dataDir = mkdtempSync(join(artifacts, 'data-'));
  const logFile = join(artifacts, `server-${process.pid}-${Date.now()}-${Math.random().toString(36).slice(2)}.log`);
  const logger = createLogger({ level: 'debug', destination: (await import('pino')).pino.destination({ dest: logFile, sync: true }) });
  const clock = { now: startMs };
  const passphrase = new TextEncoder().encode(TEST_PASSPHRASE);

  let store = openStore(dataDir);
  const { signerId } = await initializeSigner({
    store,
    passphrase,
    master: { kind: 'seed', seed: mnemonicToSeedSync(TEST_MNEMONIC) },
    derivation,
    scrypt: { N: 2 ** 10, r: 8, p: 1 },
  });
  const { token: apiKey } = await createApiKey(store, { name: 'test', scopes });
  recordTestSecret('apiKey', apiKey);

  const open = async () => {
    const kernel = await Kernel.open({ store, now: () => clock.now });
    await kernel.unseal(passphrase);
    const app = await buildApp({ kernel, logger });
    return { kernel, app };
  };
  let { kernel, app } = await open();

  const signer: TestSigner = {
    get app() {
      return app;
    },
    get kernel() {
      return kernel;
    },
    get store() {
      return store;
    },
    dataDir,
    signerId,
    apiKey,
    clock,
    auth: (key = apiKey) => ({ authorization: `Bearer ${key}` }),
    async close() {
      await app.close();
      kernel.seal();
      await store.close();
    },
    async restart() {
      await signer.close();
      store = openStore(dataDir);
      ({ kernel, app } = await open());
    },
  };
  return signer;
}
