import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { CUSTOS_BIN as BIN, runCustos, trackChild } from './runCustos.js';
import { dropTestSchema, recordTestSecret, TEST_MNEMONIC, testArtifactsDir, testPostgresUrl } from './createTestSigner.js';
import { retryOverloaded } from './retryOverloaded.js';

// Several stateless kernel replicas (separate OS processes running the real `custos` binary) on
// one PostgreSQL schema, for the tests that check that single use, throttling and the audit chain
// hold across replicas. Every child process started here is tracked and stopped (SIGTERM, then
// SIGKILL) by close(); a last-resort exit hook SIGKILLs any that a crashed test left behind.

const API_KEY = /^ck1\.[0-9a-f]{16}\.[A-Za-z0-9_-]{43}$/;
const track = trackChild;

function exited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

/** Waits for the child to exit: SIGTERM, then SIGKILL after graceMs. Resolves with the exit status (null if killed by a signal). */
export async function stopChild(child: ChildProcess, graceMs = 5_000): Promise<number | null> {
  if (exited(child)) return child.exitCode;
  const done = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  try {
    return await done;
  } finally {
    clearTimeout(timer);
  }
}

/** A fresh `postgres://…?schema=t_…` URL on the test server (nothing created yet). */
export function newTestSchemaUrl(label: string): string {
  const url = new URL(testPostgresUrl());
  url.searchParams.set('schema', `t_${label}_${process.pid}_${Date.now().toString(36)}_${randomBytes(3).toString('hex')}`);
  return url.toString();
}

/** Secret input files (passphrase, mnemonic) live outside the artifacts directory and are removed by cleanup(). */
export interface SignerInputs {
  passphraseFile: string;
  mnemonicFile: string;
  cleanup(): void;
}

export function writeSignerInputs(): SignerInputs {
  const dir = mkdtempSync(join(tmpdir(), 'custos-replica-inputs-'));
  const passphrase = `pp-${randomBytes(18).toString('base64url')}`;
  recordTestSecret('replicas passphrase', passphrase);
  const passphraseFile = join(dir, 'passphrase');
  const mnemonicFile = join(dir, 'mnemonic');
  writeFileSync(passphraseFile, `${passphrase}\n`, { mode: 0o600 });
  writeFileSync(mnemonicFile, `${TEST_MNEMONIC}\n`, { mode: 0o600 });
  return { passphraseFile, mnemonicFile, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** `custos init` from the BIP39 test mnemonic (custos-v1, cheap scrypt); returns the signerId. */
export async function initSigner(storeUrl: string, inputs: SignerInputs): Promise<string> {
  const result = await runCustos(initArgs(storeUrl, inputs));
  if (result.code !== 0) throw new Error(`custos init failed (${result.code}): ${result.stderr}`);
  const signerId = /^signerId (\S+)$/m.exec(result.stdout)?.[1];
  if (signerId === undefined) throw new Error(`custos init printed no signerId: ${result.stdout}`);
  return signerId;
}

export function initArgs(storeUrl: string, inputs: SignerInputs): string[] {
  return [
    'init',
    '--store',
    storeUrl,
    '--passphrase-file',
    inputs.passphraseFile,
    '--mnemonic-file',
    inputs.mnemonicFile,
    '--derivation',
    'custos-v1',
    '--scrypt-log-n',
    '10',
  ];
}

/** `custos apikey create`; returns the key (the last word of stdout). */
export async function createApiKeyWithCli(storeUrl: string, name: string, scopes = 'register,derive,sign'): Promise<string> {
  const result = await runCustos(['apikey', 'create', '--store', storeUrl, '--name', name, '--scopes', scopes]);
  if (result.code !== 0) throw new Error(`custos apikey create failed (${result.code}): ${result.stderr}`);
  const token = result.stdout.trim().split(/\s+/).at(-1) ?? '';
  if (!API_KEY.test(token)) throw new Error('custos apikey create: the last word is not an API key');
  recordTestSecret(`replicas apiKey ${name}`, token);
  return token;
}

export interface Replica {
  /** http://127.0.0.1:port */
  url: string;
  child: ChildProcess;
  logFile: string;
  /** SIGTERM, then SIGKILL after 5 s; resolves with the exit status. */
  stop(): Promise<number | null>;
  /** SIGKILL now (no graceful shutdown); resolves once the process is gone. */
  kill(): Promise<void>;
}

/**
 * Starts `custos serve --store URL --port 0 --passphrase-file P --log-level warn [...serveArgs]` (the
 * OS picks a free port, read back from the `listening on` line), logs into the artifacts directory;
 * resolves once GET /v1/sys/status answers unsealed.
 */
export async function startReplica(
  storeUrl: string,
  passphraseFile: string,
  { timeoutMs = 20_000, serveArgs = [] }: { timeoutMs?: number; serveArgs?: readonly string[] } = {},
): Promise<Replica> {
  const logFile = join(testArtifactsDir(), `replica-${process.pid}-${Date.now()}-${randomBytes(4).toString('hex')}.log`);
  const fd = openSync(logFile, 'a');
  const child = spawn(
    process.execPath,
    [BIN, 'serve', '--store', storeUrl, '--host', '127.0.0.1', '--port', '0', '--passphrase-file', passphraseFile, '--log-level', 'warn', ...serveArgs],
    { stdio: ['ignore', fd, fd] },
  );
  closeSync(fd);
  track(child);
  const replica: Replica = {
    url: '',
    child,
    logFile,
    stop: () => stopChild(child),
    async kill() {
      if (exited(child)) return;
      const done = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.kill('SIGKILL');
      await done;
    },
  };
  const deadline = Date.now() + timeoutMs;
  try {
    for (;;) {
      const log = readFileSync(logFile, 'utf8');
      const url = /^custos: listening on (http:\/\/127\.0\.0\.1:\d+) \(/m.exec(log)?.[1];
      if (url !== undefined) {
        replica.url = url;
        break;
      }
      if (exited(child) || Date.now() > deadline) throw new Error(`custos serve did not start: ${log}`);
      await sleep(25);
    }
    for (;;) {
      const status = await fetch(`${replica.url}/v1/sys/status`, { signal: AbortSignal.timeout(2_000) }).then(
        async (r) => (r.status === 200 ? ((await r.json()) as { sealed?: unknown }) : undefined),
        () => undefined,
      );
      if (status?.sealed === false) return replica;
      if (exited(child) || Date.now() > deadline) throw new Error(`custos serve at ${replica.url} did not answer unsealed`);
      await sleep(25);
    }
  } catch (error) {
    await replica.stop();
    throw error;
  }
}

export interface ReplicaCluster {
  storeUrl: string;
  signerId: string;
  apiKey: string;
  inputs: SignerInputs;
  replicas: Replica[];
  /** SQL on the cluster's schema (the test's own connection, not a replica's). */
  sql(text: string, params?: unknown[]): Promise<Array<Record<string, unknown>>>;
  /** Starts one more replica on the same schema. */
  addReplica(): Promise<Replica>;
  /** Stops every replica, closes the SQL pool, drops the schema, removes the secret inputs. */
  close(): Promise<void>;
}

/** A signer initialised by the real CLI in a fresh schema, one API key, and `count` replicas started together (each with serveArgs). */
export async function createReplicaCluster({ count, serveArgs = [] }: { count: number; serveArgs?: readonly string[] }): Promise<ReplicaCluster> {
  const storeUrl = newTestSchemaUrl('rep');
  const inputs = writeSignerInputs();
  const replicas: Replica[] = [];
  const pool = schemaPool(storeUrl);
  const cluster: ReplicaCluster = {
    storeUrl,
    signerId: '',
    apiKey: '',
    inputs,
    replicas,
    sql: async (text, params = []) => (await pool.query(text, params)).rows as Array<Record<string, unknown>>,
    async addReplica() {
      const replica = await startReplica(storeUrl, inputs.passphraseFile, { serveArgs });
      replicas.push(replica);
      return replica;
    },
    async close() {
      await Promise.all(replicas.map((r) => r.stop()));
      await pool.end().catch(() => undefined);
      await dropTestSchema(storeUrl);
      inputs.cleanup();
    },
  };
  try {
    cluster.signerId = await initSigner(storeUrl, inputs);
    cluster.apiKey = await createApiKeyWithCli(storeUrl, 'replicas');
    const started = await Promise.allSettled(Array.from({ length: count }, () => startReplica(storeUrl, inputs.passphraseFile, { serveArgs })));
    for (const s of started) if (s.status === 'fulfilled') replicas.push(s.value);
    const failed = started.find((s) => s.status === 'rejected');
    if (failed !== undefined) throw failed.reason;
  } catch (error) {
    await cluster.close();
    throw error;
  }
  return cluster;
}

/** A pg pool whose search_path is the URL's `schema` parameter. */
export function schemaPool(storeUrl: string): pg.Pool {
  const url = new URL(storeUrl);
  const schema = url.searchParams.get('schema') ?? 'public';
  if (!/^[a-z_][a-z0-9_]*$/.test(schema)) throw new Error('schema: expected [a-z_][a-z0-9_]*');
  url.searchParams.delete('schema');
  const pool = new pg.Pool({ connectionString: url.toString(), max: 2, options: `-c search_path=${schema}` });
  pool.on('error', () => undefined);
  return pool;
}

export interface HttpResult {
  status: number;
  body: unknown;
  /** The Retry-After header, if any. */
  retryAfter: string | null;
}

/**
 * One HTTP request to a replica (fetch; undici keeps connections alive), each attempt aborted after
 * timeoutMs; a 503 `overloaded` is sent again after its Retry-After, as a well-behaved client does
 * (retryOverloaded.ts).
 */
export async function callReplica(
  replica: Replica,
  path: string,
  { method = 'GET', token, json, timeoutMs = 30_000 }: { method?: string; token?: string; json?: unknown; timeoutMs?: number } = {},
): Promise<HttpResult> {
  const headers: Record<string, string> = {};
  if (token !== undefined) headers.authorization = `Bearer ${token}`;
  if (json !== undefined) headers['content-type'] = 'application/json';
  const send = async (): Promise<HttpResult> => {
    const response = await fetch(`${replica.url}${path}`, {
      method,
      headers,
      signal: AbortSignal.timeout(timeoutMs),
      ...(json === undefined ? {} : { body: JSON.stringify(json) }),
    });
    const text = await response.text();
    return { status: response.status, body: text === '' ? undefined : (JSON.parse(text) as unknown), retryAfter: response.headers.get('retry-after') };
  };
  return retryOverloaded(send, { code: errorCodeOf, retryAfter: (answer) => answer.retryAfter });
}

/** The error code of an error response, or undefined. */
export function errorCodeOf(result: HttpResult): string | undefined {
  const code = (result.body as { error?: { code?: unknown } } | undefined)?.error?.code;
  return typeof code === 'string' ? code : undefined;
}

/** Runs the tasks with at most `limit` in flight; results in task order (a task that throws rejects the whole run after all settle). */
export async function runBounded<T>(tasks: ReadonlyArray<() => Promise<T>>, limit: number): Promise<T[]> {
  const results = new Array<T>(tasks.length);
  let next = 0;
  let failure: { error: unknown } | undefined;
  const worker = async () => {
    while (next < tasks.length) {
      const i = next++;
      const task = tasks[i];
      if (task === undefined) continue;
      try {
        results[i] = await task();
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, tasks.length) }, worker));
  if (failure !== undefined) throw failure.error;
  return results;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
