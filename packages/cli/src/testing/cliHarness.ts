import {
  type CliResult,
  CUSTOS_BIN,
  dumpTestSchema,
  REPO_ROOT,
  recordTestSecret,
  runCustos,
  testArtifactsDir,
  testPostgresUrl,
  testStoreKind,
} from '@custos/server/testing';
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';
import { DB_FILE, type OpenedStore, openStore, PostgresStore, SqliteStore, type StoreLocation } from '@custos/server';
import { main } from '../main.js';

// What the CLI tests share: the real `custos` binary spawned as a user would run it, `custos serve`
// started and stopped, the artifacts directory and its secrets.jsonl (scanned by
// scripts/scan-secrets.mjs after the suite), and the store of the test pass: a data directory
// (embedded SQLite) or a fresh schema of the test PostgreSQL database (CUSTOS_TEST_STORE=postgres,
// see scripts/test.mjs), with the artifacts rules of @custos/server/testing.

export { recordTestSecret, testArtifactsDir };

export const ROOT = REPO_ROOT;
export const BIN = CUSTOS_BIN;

// ── artifacts and secrets ──────────────────────────────────────────────────────────────────

/**
 * A directory for the secret input files (passphrase, mnemonic, seed, xprv): they hold secrets on
 * purpose, so they live outside the artifacts directory and are removed at the end of the file.
 */
export function secretInputs(prefix: string): { dir: string; write(name: string, content: string): string } {
  const dir = mkdtempSync(join(tmpdir(), `${prefix}-`));
  after(() => rmSync(dir, { recursive: true, force: true }));
  let counter = 0;
  return {
    dir,
    write(name, content) {
      counter += 1;
      const path = join(dir, `${counter}-${name}`);
      writeFileSync(path, content, { mode: 0o600 });
      return path;
    },
  };
}

// ── the store of the pass ──────────────────────────────────────────────────────────────────

export type StoreKind = 'sqlite' | 'postgres';

export { testPostgresUrl, testStoreKind };

const TEST_SCHEMA = /^t_[a-z0-9_]+$/;
function freshSchemaName(): string {
  return `t_${process.pid}_${Date.now().toString(36)}_${randomBytes(4).toString('hex')}`;
}

/** The PostgreSQL schemas this file created; dumped into the artifacts and dropped at its end. */
const schemas = new Set<string>();

/**
 * A fresh store location of the given kind (default: the pass's): a data directory that does not
 * exist yet under the artifacts directory, or the test database with a new `schema=t_…` (created by
 * the first command that opens it). `password` goes into the URL's userinfo (trust auth ignores it);
 * it is recorded as a secret so that the scan looks for it in every log.
 */
export function freshStoreLocation({ kind = testStoreKind(), password }: { kind?: StoreKind; password?: string } = {}): StoreLocation {
  if (kind === 'sqlite') return { dataDir: join(mkdtempSync(join(testArtifactsDir(), 'cli-')), 'data') };
  const url = new URL(testPostgresUrl());
  const schema = freshSchemaName();
  url.searchParams.set('schema', schema);
  if (password !== undefined) {
    url.password = password;
    recordTestSecret('store URL password', password);
    if (url.password !== password) recordTestSecret('store URL password (percent-encoded)', url.password);
  }
  schemas.add(schema);
  return { url: url.toString() };
}

/** The command-line options naming a location: `--data-dir D` or `--store URL`. */
export function storeArgs(location: StoreLocation): string[] {
  return 'dataDir' in location ? ['--data-dir', location.dataDir] : ['--store', location.url];
}

/** The PostgreSQL schema of a location (`schema=` parameter, default public). */
export function schemaOf(location: { url: string }): string {
  return new URL(location.url).searchParams.get('schema') ?? 'public';
}

/** Opens the location's store (which applies pending migrations), runs work, closes it. */
export async function withStore<T>(location: StoreLocation, work: (store: OpenedStore) => Promise<T>): Promise<T> {
  const store = await openStore(location);
  try {
    return await work(store);
  } finally {
    await store.close();
  }
}

/** Runs SQL with `$n` placeholders on an open store of either kind; returns the rows (use RETURNING to see what changed). */
export async function runSqlOn(store: OpenedStore, sql: string, params: unknown[] = []): Promise<Array<Record<string, unknown>>> {
  if (store instanceof PostgresStore) return store.query(sql, params);
  if (!(store instanceof SqliteStore)) throw new Error('unknown store');
  const statement = store.database.prepare(sql.replace(/\$\d+/g, '?'));
  if (statement.reader) return statement.all(...params) as Array<Record<string, unknown>>;
  statement.run(...params);
  return [];
}

/** Runs one SQL statement on the location's store (opened and closed around it). */
export function runSql(location: StoreLocation, sql: string, params: unknown[] = []): Promise<Array<Record<string, unknown>>> {
  return withStore(location, (store) => runSqlOn(store, sql, params));
}

/** The number of rows of a table of the location's store. */
export async function countRows(location: StoreLocation, table: string): Promise<number> {
  const [row] = await runSql(location, `SELECT count(*) AS n FROM ${table}`);
  return Number(row?.n);
}

/**
 * A connection for looking at a PostgreSQL schema without opening (and so creating) it: a store on
 * a schema of its own, opened at the first use and dropped at the end of the file.
 */
let inspector: Promise<PostgresStore> | undefined;
function inspect(sql: string, params: unknown[] = []): Promise<Array<Record<string, unknown>>> {
  inspector ??= (async () => {
    const url = new URL(testPostgresUrl());
    url.searchParams.set('schema', freshSchemaName());
    return (await openStore({ url: url.toString() })) as PostgresStore;
  })();
  return inspector.then((store) => store.query(sql, params));
}

/** The tables of a PostgreSQL schema ([] when the schema does not exist), without creating it. */
export async function schemaTables(location: { url: string }): Promise<string[]> {
  const rows = await inspect('SELECT table_name FROM information_schema.tables WHERE table_schema = $1 ORDER BY table_name', [schemaOf(location)]);
  return rows.map((row) => String(row.table_name));
}

/**
 * Whether the location holds a signer, looked at without creating anything: a `custos.db` in the
 * data directory with a meta row, or a meta row in the schema.
 */
export async function holdsSigner(location: StoreLocation): Promise<boolean> {
  if ('dataDir' in location) {
    if (!existsSync(join(location.dataDir, DB_FILE))) return false;
    return (await countRows(location, 'meta')) > 0;
  }
  if (!(await schemaTables(location)).includes('meta')) return false;
  const [row] = await inspect(`SELECT count(*) AS n FROM ${quoteSchema(schemaOf(location))}.meta`);
  return Number(row?.n) > 0;
}

function quoteSchema(schema: string): string {
  assert.match(schema, /^[a-z_][a-z0-9_]*$/);
  return `"${schema}"`;
}

/** The tables of the store and every cell of them as text (BLOB/BYTEA as latin1), read without creating the store. */
export async function dumpStoreCells(location: StoreLocation): Promise<{ tables: string[]; cells: string[] }> {
  const asText = (cell: unknown) => (Buffer.isBuffer(cell) ? cell.toString('latin1') : String(cell));
  if ('dataDir' in location) {
    if (!existsSync(join(location.dataDir, DB_FILE))) return { tables: [], cells: [] };
    return withStore(location, async (store) => {
      const db = (store as SqliteStore).database;
      const tables = (db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as Array<{ name: string }>).map((t) => t.name);
      const cells = tables.flatMap((table) => (db.prepare(`SELECT * FROM "${table}"`).raw().all() as unknown[][]).flatMap((row) => row.map(asText)));
      return { tables, cells };
    });
  }
  const schema = quoteSchema(schemaOf(location));
  const tables = await schemaTables(location);
  const cells: string[] = [];
  for (const table of tables) {
    for (const row of await inspect(`SELECT * FROM ${schema}."${table}"`)) cells.push(...Object.values(row).map(asText));
  }
  return { tables, cells };
}

/**
 * At the end of the file, in the PostgreSQL pass: every schema the file created is dumped as text into
 * the artifacts directory (dumpTestSchema: pg-dumps/<schema>.dump.txt, scanned by
 * scripts/scan-secrets.mjs) and dropped. Data directories stay in the artifacts directory.
 */
after(async () => {
  await Promise.all([...running].map((s) => s.stop()));
  if (schemas.size === 0) return;
  for (const schema of schemas) {
    if (!TEST_SCHEMA.test(schema)) continue;
    await dumpTestSchema(inspect, schema);
    await inspect(`DROP SCHEMA IF EXISTS ${quoteSchema(schema)} CASCADE`);
  }
  const store = await inspector;
  if (store !== undefined) {
    await store.query(`DROP SCHEMA IF EXISTS ${quoteSchema(store.schema)} CASCADE`);
    await store.close();
  }
});

// ── the binary ─────────────────────────────────────────────────────────────────────────────

export type { CliResult };

/** Runs `custos ...args` to completion (killed after timeoutMs). `direct` executes the bin file itself (shebang). */
export function runCli(args: string[], options: { timeoutMs?: number; direct?: boolean; env?: NodeJS.ProcessEnv } = {}): Promise<CliResult> {
  return runCustos(args, options);
}

/**
 * Runs `custos ...args` inside the test process: the CLI's main() with its stdout and stderr
 * captured, and its return value as the exit status. For cases about the arguments, which the CLI
 * answers before it opens a store, a socket or a server: a spawned `custos` spends about a second
 * of CPU loading its modules, and the suites run hundreds of such cases. The process around main()
 * (bin/custos.js, the shebang, exit statuses, signals, what reaches the real stderr) is what the
 * spawned cases test. A case that needs environment variables spawns (runCli with env).
 */
export async function runCliInProcess(args: string[]): Promise<CliResult> {
  let stdout = '';
  let stderr = '';
  const code = await main(args, {
    stdout: {
      write: (chunk: string) => {
        stdout += chunk;
        return true;
      },
    },
    stderr: {
      write: (chunk: string) => {
        stderr += chunk;
        return true;
      },
    },
  });
  return { code, signal: null, stdout, stderr };
}

/** Runs `custos ...args` (with `env` added to the child's environment), asserts exit 0 and an empty stderr, returns stdout. */
export async function runCliOk(args: string[], env: NodeJS.ProcessEnv = {}): Promise<string> {
  const result = await runCli(args, { timeoutMs: 60_000, env });
  assert.equal(result.code, 0, `custos ${args[0]} failed: ${result.stderr}`);
  assert.equal(result.stderr, '');
  return result.stdout;
}

/** A failed command: the exit status, nothing on stdout, and exactly one line `custos: <code>: ...` on stderr. */
export function assertFailure(result: CliResult, exit: number, code: string, mentions?: string): void {
  assert.equal(result.code, exit, `exit status; stderr: ${result.stderr}`);
  assert.equal(result.stdout, '');
  const lines = result.stderr.split('\n');
  assert.equal(lines.length, 2, `one line on stderr, got ${JSON.stringify(result.stderr)}`);
  assert.equal(lines[1], '');
  assert.ok(lines[0]?.startsWith(`custos: ${code}: `), `stderr line: ${lines[0]}`);
  if (mentions !== undefined) assert.ok(lines[0]?.includes(mentions), `stderr line ${JSON.stringify(lines[0])} should mention ${mentions}`);
}

// ── custos serve ───────────────────────────────────────────────────────────────────────────

export interface Served {
  url: string;
  child: ChildProcess;
  logFile: string;
  /** SIGTERM, then SIGKILL after 5 s; resolves with the exit status. */
  stop(): Promise<number | null>;
}

/** Servers still running; stopped at the end of the file. */
const running = new Set<Served>();

/**
 * Starts `custos serve` on the location, on a free port, with stdout and stderr appended to logFile
 * (default: a new file in the artifacts directory); resolves once it listens.
 */
export async function serve(
  location: StoreLocation,
  extra: string[] = [],
  {
    logFile = newLogFile('cli-serve'),
    env = {},
    startTimeoutMs = 20_000,
  }: { logFile?: string; env?: NodeJS.ProcessEnv /** how long it may take to listen (a loaded machine starts node slowly) */; startTimeoutMs?: number } = {},
): Promise<Served> {
  const fd = openSync(logFile, 'a');
  const child = spawn(process.execPath, [BIN, 'serve', ...storeArgs(location), '--port', '0', ...extra], {
    stdio: ['ignore', fd, fd],
    env: { ...process.env, ...env },
  });
  closeSync(fd);
  const stop = async (): Promise<number | null> => {
    running.delete(served);
    if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
    const code = await exited;
    clearTimeout(timer);
    return code;
  };
  const served: Served = { url: '', child, logFile, stop };
  running.add(served);
  const deadline = Date.now() + startTimeoutMs;
  for (;;) {
    const log = readFileSync(logFile, 'utf8');
    const url = /^custos: listening on (https?:\/\/\S+) \(/m.exec(log)?.[1];
    if (url !== undefined) {
      served.url = url;
      return served;
    }
    if (child.exitCode !== null || child.signalCode !== null || Date.now() > deadline) {
      await stop();
      throw new Error(`custos serve did not start: ${log}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

function newLogFile(prefix: string): string {
  return join(testArtifactsDir(), `${prefix}-${process.pid}-${Date.now()}-${randomBytes(4).toString('hex')}.log`);
}
