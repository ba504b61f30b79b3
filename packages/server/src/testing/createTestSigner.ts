import { appendFileSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { createHash, createHmac } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  type AuditCheckpointOptions,
  createApiKey,
  type DerivationScheme,
  initializeSigner,
  Kernel,
  type KernelOptions,
  type Scope,
  type UnknownWallets,
  type WalletPolicy,
} from '@custos/kernel';
import { mnemonicToSeedSync } from '@scure/bip39';
import type { FastifyInstance } from 'fastify';
import { type BuildAppOptions, buildApp } from '../buildApp.js';
import { createLogger } from '../createLogger.js';
import { type OpenedStore, openStore, type StoreLocation } from '../openStore.js';
import { PostgresStore } from '../stores/postgres/PostgresStore.js';
import { SqliteStore } from '../stores/sqlite/SqliteStore.js';

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

/**
 * Which store the suite runs against: `CUSTOS_TEST_STORE=postgres` (see scripts/test.mjs) or SQLite.
 * Every way of getting the pass's store asks here; the first call of a test file notes the file in
 * the artifacts directory, where scripts/test.mjs checks that no file marked store-independent
 * (run in the SQLite pass only) asked.
 */
export function testStoreKind(): 'sqlite' | 'postgres' {
  noteStoreKindReader();
  return process.env.CUSTOS_TEST_STORE === 'postgres' ? 'postgres' : 'sqlite';
}

let storeKindNoted = false;
function noteStoreKindReader(): void {
  const artifacts = process.env.CUSTOS_TEST_ARTIFACTS;
  const file = process.argv[1];
  if (storeKindNoted || artifacts === undefined || file === undefined) return;
  storeKindNoted = true;
  mkdirSync(artifacts, { recursive: true });
  appendFileSync(join(artifacts, 'store-kind-readers.txt'), `${file}\n`);
}

/** The PostgreSQL server the tests use (trust auth on this machine and in CI). */
export function testPostgresUrl(): string {
  return process.env.CUSTOS_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
}

/** A fresh store location of the suite's kind: a temp data dir, or a new schema in the test database. */
export function freshTestStoreLocation(): StoreLocation {
  if (testStoreKind() === 'postgres') {
    const url = new URL(testPostgresUrl());
    url.searchParams.set('schema', `t_${process.pid}_${Date.now().toString(36)}_${Math.random().toString(36).slice(2, 8)}`);
    return { url: url.toString() };
  }
  return { dataDir: mkdtempSync(join(testArtifactsDir(), 'data-')) };
}

/** Runs SQL with `$n` placeholders on either store (tests use it to inspect and tamper with rows). */
export async function runSql(store: OpenedStore, sql: string, params: unknown[] = []): Promise<Array<Record<string, unknown>>> {
  if (store instanceof PostgresStore) return store.query(sql, params);
  if (!(store instanceof SqliteStore)) throw new Error('unknown store');
  const statement = store.database.prepare(sql.replace(/\$\d+/g, '?'));
  if (statement.reader) return statement.all(...params) as Array<Record<string, unknown>>;
  statement.run(...params);
  return [];
}

/**
 * Makes every audit append fail inside the database itself (a real failure of the real store, not a
 * mock): a trigger in SQLite, a NOT VALID check constraint in PostgreSQL. Returns the undo.
 */
export async function forceAuditFailure(store: OpenedStore): Promise<() => Promise<void>> {
  if (store instanceof PostgresStore) {
    await store.query('ALTER TABLE audit_log ADD CONSTRAINT forced_audit_failure CHECK (seq < 0) NOT VALID');
    return async () => {
      await store.query('ALTER TABLE audit_log DROP CONSTRAINT forced_audit_failure');
    };
  }
  await runSql(store, "CREATE TRIGGER forced_audit_failure BEFORE INSERT ON audit_log BEGIN SELECT RAISE(ABORT, 'audit write failed (forced by test)'); END");
  return async () => {
    await runSql(store, 'DROP TRIGGER forced_audit_failure');
  };
}

/**
 * The deployment policy of tests that sign raw hashes for enrolled wallets only incidentally (to
 * exercise TOTP, approvals, throttles…): the kernel's default refuses them (policy.test.ts shows it
 * on every route), so these tests say explicitly that their deployment allows them.
 */
export const RAW_HASHES_ALLOWED: WalletPolicy = { rawHash: 'allow' };

/**
 * A stand-in for the admin quorum's approval of a TOTP-only wallet's timelocked change (a wallet
 * with no delivered channel and no `bound` factor needs one besides its owner: pendingChanges.ts
 * needsQuorum). For suites whose subject is the timelock, not the quorum: quorumWiring.kernel.test.ts
 * tests the real approval. Named as the stand-in it is.
 */
export const QUORUM_APPROVED_STAND_IN = { quorumApproved: async () => true } as const;

/**
 * The deployment policy of tests that sign uncountable flows (typed data that is no permit, 7702
 * authorizations…) with a TOTP-only wallet only incidentally: the kernel's default requires `bound`
 * for them (policy.test.ts and evaluatePolicy.test.ts attack it); `present` is the weaker mode.
 */
export const UNCOUNTABLE_PRESENT: WalletPolicy = { uncountable: 'present' };

export interface TestSigner {
  app: FastifyInstance;
  kernel: Kernel;
  store: OpenedStore;
  /** Runs SQL (`$n` placeholders) on the signer's store. */
  sql(sql: string, ...params: unknown[]): Promise<Array<Record<string, unknown>>>;
  location: StoreLocation;
  signerId: string;
  /** The audit public key `custos init` prints (hex). */
  auditPublicKey: string;
  apiKey: string;
  /** The file the server's log lines go to (debug level). */
  logFile: string;
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
  /** The app's in-flight request limit. */
  maxInFlight?: number;
  /** The tenant of the signer's API key: `system` when the scopes hold `admin` (only it may), else `default`. */
  tenant?: string;
  /** KernelOptions.unknownWallets (default: the kernel's, `allow`). */
  unknownWallets?: UnknownWallets;
  /**
   * KernelOptions.policyDefaults: the deployment's policy (default: the kernel's built-in one). Tests
   * whose subject is not the policy but that sign raw hashes or uncountable flows with an enrolled
   * wallet say so here, e.g. `{ rawHash: 'allow' }` or `{ uncountable: 'present' }`.
   */
  policyDefaults?: WalletPolicy;
  /** More options of the app (the overload guard's window and clock, the public URL, the metrics token). */
  appOptions?: Omit<BuildAppOptions, 'kernel' | 'logger' | 'maxInFlight'>;
  /** Kernel options beyond the store and the clock (e.g. the audit budget). */
  kernelOptions?: Omit<KernelOptions, 'store' | 'now'>;
  /** The kernel's audit checkpoint options (default: every 1000 units, nobody hears of them). */
  auditCheckpoints?: AuditCheckpointOptions;
}

/**
 * A real signer for tests: a fresh data directory with a real SQLite file, initialised from the
 * BIP39 test mnemonic with a cheap scrypt cost, an API key, an unsealed kernel whose clock the test
 * controls, and the Fastify app (exercised with inject, or listening when a test needs sockets).
 * Logs go to a file in the artifacts directory.
 */
export async function createTestSigner({
  derivation = 'custos-v1',
  scopes = ['register', 'derive', 'sign'],
  startMs = Date.now(),
  maxInFlight,
  tenant = scopes.includes('admin') ? 'system' : 'default',
  unknownWallets,
  policyDefaults,
  appOptions = {},
  kernelOptions = {},
  auditCheckpoints,
}: TestSignerOptions = {}): Promise<TestSigner> {
  const artifacts = testArtifactsDir();
  const location = freshTestStoreLocation();
  const logFile = join(artifacts, `server-${process.pid}-${Date.now()}-${Math.random().toString(36).slice(2)}.log`);
  const logger = createLogger({ level: 'debug', destination: (await import('pino')).pino.destination({ dest: logFile, sync: true }) });
  const clock = { now: startMs };
  const passphrase = new TextEncoder().encode(TEST_PASSPHRASE);

  let store = await openStore(location);
  const { signerId, auditPublicKey } = await initializeSigner({
    store,
    passphrase,
    master: { kind: 'seed', seed: mnemonicToSeedSync(TEST_MNEMONIC) },
    derivation,
    scrypt: { N: 2 ** 10, r: 8, p: 1 },
  });
  const { token: apiKey } = await createApiKey(store, { name: 'test', scopes, tenant });
  recordTestSecret('apiKey', apiKey);
  recordTestMaster();

  const open = async () => {
    const kernel = await Kernel.open({
      ...kernelOptions,
      store,
      now: () => clock.now,
      ...(unknownWallets === undefined ? {} : { unknownWallets }),
      ...(policyDefaults === undefined ? {} : { policyDefaults }),
      ...(auditCheckpoints === undefined ? {} : { auditCheckpoints }),
    });
    await kernel.unseal(passphrase);
    const app = await buildApp({ ...appOptions, kernel, logger, ...(maxInFlight === undefined ? {} : { maxInFlight }) });
    recordResponsesOfInject(app);
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
    location,
    signerId,
    auditPublicKey,
    logFile,
    sql: (sql, ...params) => runSql(store, sql, params),
    apiKey,
    clock,
    auth: (key = apiKey) => ({ authorization: `Bearer ${key}` }),
    async close() {
      await app.close();
      kernel.seal();
      await store.close();
      if ('url' in location) await dropInBackground(location.url);
    },
    async restart() {
      await app.close();
      kernel.seal();
      await store.close();
      store = await openStore(location);
      ({ kernel, app } = await open());
    },
  };
  return signer;
}

let masterRecorded = false;
/** Records the test mnemonic, its seed and the BIP32 master private key once per process (the scan looks for each). */
function recordTestMaster(): void {
  if (masterRecorded) return;
  masterRecorded = true;
  const seed = mnemonicToSeedSync(TEST_MNEMONIC);
  const master = createHmac('sha512', 'Bitcoin seed').update(seed).digest();
  recordTestSecret('test mnemonic', TEST_MNEMONIC);
  recordTestSecret('test seed (hex)', Buffer.from(seed).toString('hex'));
  recordTestSecret('test master private key (hex)', master.subarray(0, 32).toString('hex'));
}

/**
 * Every answer of `app.inject({...})` is recorded for the secret scan (recordTestResponse), and every
 * cookie the app sets in one (the page forms' cookie, a card's device token, an admin session) is
 * recorded as a secret: the scan then looks for it in every log, database dump and other response.
 * Inject's chained form (no argument) is left as it is. Exported for tests that build their app
 * themselves (buildApp).
 */
export function recordResponsesOfInject(app: FastifyInstance): void {
  const inject = app.inject.bind(app) as (options: unknown) => Promise<{ headers: Record<string, unknown>; statusCode: number; body: string }>;
  (app as unknown as { inject: unknown }).inject = (...args: unknown[]) => {
    if (args.length !== 1 || typeof args[0] !== 'object' || args[0] === null) return (inject as (...a: unknown[]) => unknown)(...args);
    const options = args[0] as { method?: string; url?: unknown; path?: unknown };
    return inject(options).then((response) => {
      const header = response.headers['set-cookie'];
      for (const cookie of Array.isArray(header) ? header : header === undefined ? [] : [header]) {
        const pair = String(cookie).split(';', 1)[0] ?? '';
        const value = pair.slice(pair.indexOf('=') + 1);
        if (value !== '') recordTestSecret(`cookie ${pair.slice(0, pair.indexOf('='))}`, value);
      }
      const url = options.url ?? options.path;
      const path = typeof url === 'string' ? url : typeof url === 'object' && url !== null && 'pathname' in url ? String(url.pathname) : '';
      recordTestResponse({ via: 'inject', method: (options.method ?? 'GET').toUpperCase(), path, status: response.statusCode, body: response.body });
      return response;
    });
  };
}

const responsesSeen = new Set<string>();
/**
 * Appends one HTTP answer a test received to <artifacts>/responses/<pid>.jsonl, for the secret
 * scan (scripts/scan-secrets.mjs accepts a secret in a response only where the design hands it
 * out: HANDED_OUT there). The same path, status and body are written once per process. Answers
 * received through fetch are recorded by scripts/record-responses.mjs (preloaded by
 * scripts/test.mjs) in the same format; only when CUSTOS_TEST_ARTIFACTS is set.
 */
export function recordTestResponse({ via, method, path, status, body }: { via: string; method: string; path: string; status: number; body: string }): void {
  const artifacts = process.env.CUSTOS_TEST_ARTIFACTS;
  if (artifacts === undefined || artifacts === '') return;
  const pathname = path.split('?', 1)[0] ?? '';
  const digest = createHash('sha256').update(`${method} ${pathname} ${status}\n`).update(body).digest('base64');
  if (responsesSeen.has(digest)) return;
  responsesSeen.add(digest);
  const dir = join(artifacts, 'responses');
  mkdirSync(dir, { recursive: true });
  appendFileSync(join(dir, `${process.pid}.jsonl`), `${JSON.stringify({ via, method, path: pathname, status, body })}\n`);
}

/**
 * The schemas of closed test signers still being dumped and dropped. A signer's close() does not
 * wait for its schema's drop (the database drops it while the file's next test runs) unless two are
 * in progress already. The drops' connections keep the process alive until they are done; one that
 * fails fails the file (the error is printed, and the exit code is 1).
 */
const dropping = new Set<Promise<void>>();
async function dropInBackground(url: string): Promise<void> {
  while (dropping.size >= 2) await Promise.race(dropping);
  const drop: Promise<void> = dropTestSchema(url)
    .catch((error: unknown) => {
      console.error(`the test schema of ${url} was not dumped and dropped:`, error);
      process.exitCode = 1;
    })
    .finally(() => dropping.delete(drop));
  dropping.add(drop);
}

/**
 * Removes a test's PostgreSQL schema, dumped first into the artifacts directory (as dumpTestSchema
 * does): the table list, then every table's rows and the DROP in one simple-protocol query (one
 * implicit transaction, so the dump reads what the drop removes) — a test signer's schema has
 * some thirty tables, and a round trip each was a good part of closing one.
 */
export async function dropTestSchema(url: string): Promise<void> {
  const parsed = new URL(url);
  const schema = parsed.searchParams.get('schema');
  if (schema === null || !TEST_SCHEMA.test(schema)) return;
  parsed.searchParams.delete('schema');
  const { default: pg } = await import('pg');
  const client = new pg.Client({ connectionString: parsed.toString() });
  await client.connect();
  try {
    const artifacts = process.env.CUSTOS_TEST_ARTIFACTS;
    const names =
      artifacts === undefined || artifacts === '' ? [] : (await client.query(TABLES_SQL, [schema])).rows.map((r: { name: unknown }) => String(r.name));
    const drop = `DROP SCHEMA IF EXISTS ${schema} CASCADE`;
    if (names.length === 0) {
      await client.query(drop);
      return;
    }
    // no parameters: the simple protocol, which takes several statements and answers each
    const results = (await client.query([...names.map((name) => selectAllSql(schema, name)), drop].join(';\n'))) as unknown as Array<{
      rows: Array<Record<string, unknown>>;
    }>;
    writeDump(
      schema,
      names.map((name, i) => ({ name, rows: results[i]?.rows ?? [] })),
    );
  } finally {
    await client.end();
  }
}

const TEST_SCHEMA = /^t_[a-z0-9_]+$/;
const TABLES_SQL = 'SELECT tablename AS name FROM pg_catalog.pg_tables WHERE schemaname = $1 ORDER BY tablename';
const selectAllSql = (schema: string, table: string) => `SELECT * FROM ${schema}."${table.replaceAll('"', '""')}"`;

/** One cell of a database dump, as scripts/scan-secrets.mjs writes SQLite's (dumpCell there). */
function dumpCell(cell: unknown): string {
  if (cell === null || cell === undefined) return 'NULL';
  if (cell instanceof Uint8Array) return `x'${Buffer.from(cell).toString('hex')}'`;
  if (typeof cell === 'object') return cell instanceof Date ? cell.toISOString() : JSON.stringify(cell);
  return String(cell).replaceAll('\0', '\\0');
}

/**
 * Before a test's PostgreSQL schema is dropped: when CUSTOS_TEST_ARTIFACTS is set, every table of the
 * schema, every row one per line (cells separated by tabs, BYTEA in hex), into
 * <artifacts>/pg-dumps/<schema>.dump.txt, where scripts/scan-secrets.mjs looks for the run's
 * secrets as in every other file (and for one-time codes as whole tokens: the dump is text).
 */
export async function dumpTestSchema(query: (sql: string, params?: unknown[]) => Promise<Array<Record<string, unknown>>>, schema: string): Promise<void> {
  const artifacts = process.env.CUSTOS_TEST_ARTIFACTS;
  if (artifacts === undefined || artifacts === '' || !TEST_SCHEMA.test(schema)) return;
  const tables = await query(TABLES_SQL, [schema]);
  if (tables.length === 0) return;
  const dumped: Array<{ name: string; rows: Array<Record<string, unknown>> }> = [];
  for (const { name } of tables) dumped.push({ name: String(name), rows: await query(selectAllSql(schema, String(name))) });
  writeDump(schema, dumped);
}

/** Writes <artifacts>/pg-dumps/<schema>.dump.txt: each table's name, then its rows one per line (dumpCell). */
function writeDump(schema: string, tables: Array<{ name: string; rows: Array<Record<string, unknown>> }>): void {
  const artifacts = process.env.CUSTOS_TEST_ARTIFACTS;
  if (artifacts === undefined || artifacts === '') return;
  const lines: string[] = [];
  for (const { name, rows } of tables) {
    lines.push(`-- table ${name}`);
    for (const row of rows) lines.push(Object.values(row).map(dumpCell).join('\t'));
  }
  const dir = join(artifacts, 'pg-dumps');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, `${schema}.dump.txt`), `${lines.join('\n')}\n`);
}
