#!/usr/bin/env node
// Runs every compiled test file (packages/*/dist/**/*.test.js) with node's test runner, then scans
// what the tests left behind for leaked secrets.
// Usage: node scripts/test.mjs [filter-substring ...]
//
// The test processes get a fresh artifacts directory (CUSTOS_TEST_ARTIFACTS) for their logs, data
// directories and secrets.jsonl; scripts/scan-secrets.mjs then looks for every recorded secret in
// every file there. The directory is removed after a fully green run and kept otherwise.
//
// Durations (issue 14, point 9): the runner prints its spec output as before, and
// scripts/duration-reporter.mjs prints each test file's wall time after its results. After each
// pass this prints the pass's wall time, the CPU time of its processes and its 15 slowest files
// (with the CPU time of each file's own process, from scripts/cpu-probe.mjs); every file's figures
// go to test-durations.json (at the repository root, gitignored, and in the artifacts directory).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { reportScan } from './scan-secrets.mjs';

const root = new URL('..', import.meta.url).pathname;
const filters = process.argv.slice(2);

function walk(dir, out) {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p, out);
    else if (p.endsWith('.test.js')) out.push(p);
  }
  return out;
}

const files = [];
for (const pkg of readdirSync(join(root, 'packages'))) {
  const dist = join(root, 'packages', pkg, 'dist');
  try {
    walk(dist, files);
  } catch {
    // a package without compiled output has no tests
  }
}
const selected = files.filter((f) => filters.length === 0 || filters.some((s) => f.includes(s))).sort();
if (selected.length === 0) {
  console.error('no test files found: run `tsc -b` first');
  process.exit(1);
}
/**
 * Pass 1 runs everything on the embedded SQLite store. Pass 2 runs the store-dependent tests (the
 * server and cli packages) again on PostgreSQL (CUSTOS_TEST_STORE=postgres, CUSTOS_TEST_PG_URL,
 * default postgres://postgres@127.0.0.1:5432/postgres), leaving out the SQLite store's unit tests
 * and the files marked store-independent. In CI a PostgreSQL that cannot be reached fails the run;
 * on a developer machine the pass is skipped with a loud notice.
 *
 * A test file of those packages that never touches the store of the pass (a parser, a page
 * renderer, a document check) says so with a line comment of its own near its top:
 *   // store-independent: <why> (runs in the SQLite pass only)
 * and runs once. The marker is checked: the test harness's testStoreKind() — which every way of
 * getting the pass's store goes through (createTestSigner, freshTestStoreLocation, the CLI's
 * freshStoreLocation) — notes the file that called it in STORE_READERS under the artifacts
 * directory, and a marked file found there fails the run.
 */
const storeDependent = ['/packages/server/', '/packages/cli/'];
const STORE_INDEPENDENT = /^\/\/ store-independent: /m;
const STORE_READERS = 'store-kind-readers.txt';
const marked = new Set(selected.filter((f) => STORE_INDEPENDENT.test(readFileSync(f, 'utf8'))));
const passes = [
  { name: 'sqlite', env: { CUSTOS_TEST_STORE: 'sqlite' }, files: selected.filter((f) => !f.includes('/stores/postgres/')) },
  {
    name: 'postgres',
    env: { CUSTOS_TEST_STORE: 'postgres' },
    files: selected.filter((f) => storeDependent.some((pkg) => f.includes(pkg)) && !f.includes('/stores/sqlite/') && !marked.has(f)),
  },
];

const artifacts = mkdtempSync(join(tmpdir(), 'custos-test-'));
const durationReporter = join(root, 'scripts', 'duration-reporter.mjs');
const cpuProbe = join(root, 'scripts', 'cpu-probe.mjs');
const recordResponses = join(root, 'scripts', 'record-responses.mjs');
const durations = { started: new Date().toISOString(), passes: [] };
const SLOWEST = 15;
/**
 * Test files run at once: 2 by default (CUSTOS_TEST_CONCURRENCY chooses). The pass's summary prints
 * how many cores its processes kept busy on average, which says whether more would help.
 */
const CONCURRENCY = /^[1-9][0-9]?$/.test(process.env.CUSTOS_TEST_CONCURRENCY ?? '') ? Number(process.env.CUSTOS_TEST_CONCURRENCY) : 2;
let testStatus = 0;
for (const pass of passes) {
  if (pass.files.length === 0) continue;
  if (pass.name === 'postgres') {
    const reachable = await postgresReachable();
    if (reachable !== true) {
      const message = `PostgreSQL pass: cannot reach ${pgUrl()} (${reachable})`;
      if (process.env.CI === 'true') {
        console.error(`${message}: failing (CI needs the service)`);
        testStatus = 1;
        continue;
      }
      console.error(`\n*** SKIPPED ${message}. Start PostgreSQL to run the suite on both stores. ***\n`);
      continue;
    }
  }
  const once = pass.name === 'postgres' ? `; ${marked.size} store-independent files ran in the SQLite pass only` : '';
  console.log(`\n== test pass: ${pass.name} store (${pass.files.length} files${once})`);
  const durationFile = join(artifacts, `durations-${pass.name}.jsonl`);
  const cpuFile = join(artifacts, `cpu-${pass.name}.jsonl`);
  const passStarted = Date.now();
  const cpuBefore = childrenCpuMs();
  const result = spawnSync(
    process.execPath,
    [
      // --import came with Node 20.6 (the engines field allows 20.3): older ones go without the CPU figures
      // and without the responses received through fetch (scripts/record-responses.mjs: the secret scan reads them)
      ...(importSupported() ? [`--import=${cpuProbe}`, `--import=${recordResponses}`] : []),
      '--test',
      // --test-concurrency came with Node 20.10: older ones run their default (available cores − 1)
      ...(testConcurrencySupported() ? [`--test-concurrency=${CONCURRENCY}`] : []),
      '--test-reporter=spec',
      '--test-reporter-destination=stdout',
      `--test-reporter=${durationReporter}`,
      '--test-reporter-destination=stdout',
      ...pass.files,
    ],
    {
      stdio: 'inherit',
      cwd: root,
      env: { ...process.env, ...pass.env, CUSTOS_TEST_ARTIFACTS: artifacts, CUSTOS_TEST_DURATIONS_FILE: durationFile, CUSTOS_TEST_CPU_FILE: cpuFile },
    },
  );
  if ((result.status ?? 1) !== 0) testStatus = result.status ?? 1;
  const cpuAfter = childrenCpuMs();
  reportDurations(pass, durationFile, cpuFile, Date.now() - passStarted, cpuAfter === null || cpuBefore === null ? null : cpuAfter - cpuBefore);
  if (pass.name === 'sqlite' && !markersHold(artifacts)) testStatus = testStatus || 1;
}
const scanStatus = reportScan(artifacts);
writeDurations();
if (testStatus === 0 && scanStatus === 0) {
  rmSync(artifacts, { recursive: true, force: true });
  process.exit(0);
}
console.log(`test artifacts kept in ${artifacts}`);
process.exit(testStatus !== 0 ? testStatus : scanStatus);

/** Prints the pass's wall time and its slowest files; keeps every file's duration for test-durations.json. */
function reportDurations(pass, durationFile, cpuFile, wallMs, cpuMs) {
  const byFile = readJsonLines(durationFile);
  const cpuByFile = readJsonLines(cpuFile);
  const files = pass.files.map((f) => ({
    file: relative(root, f),
    ms: byFile.get(f)?.ms ?? null,
    cpuMs: cpuByFile.get(f)?.cpuMs ?? null,
    passed: byFile.get(f)?.passed ?? false,
  }));
  files.sort((a, b) => (b.ms ?? Number.POSITIVE_INFINITY) - (a.ms ?? Number.POSITIVE_INFINITY));
  durations.passes.push({ name: pass.name, wallMs, cpuMs, concurrency: CONCURRENCY, files });
  const slowest = files.slice(0, SLOWEST);
  const cpu = cpuMs === null ? '' : `, ${formatMs(cpuMs)} CPU time of the test processes (${(cpuMs / wallMs).toFixed(2)} cores busy on average)`;
  console.log(`\n== test pass: ${pass.name} store: ${files.length} files in ${formatMs(wallMs)} wall time${cpu}; the ${slowest.length} slowest files:`);
  for (const f of slowest) {
    const cpuOfFile = f.cpuMs === null ? '' : `  (CPU ${formatMs(f.cpuMs)})`;
    console.log(`  ${(f.ms === null ? 'no result' : formatMs(f.ms)).padStart(9)}  ${f.file}${cpuOfFile}${f.passed ? '' : '  (FAILED)'}`);
  }
  const missing = files.filter((f) => f.ms === null).length;
  if (missing > 0) console.log(`  (${missing} files reported no duration: see the runner's output above)`);
}

/** Writes every file's duration to test-durations.json at the root (gitignored, kept for CI logs) and in the artifacts directory. */
function writeDurations() {
  if (durations.passes.length === 0) return;
  const text = `${JSON.stringify({ ...durations, filters }, null, 2)}\n`;
  writeFileSync(join(artifacts, 'test-durations.json'), text);
  writeFileSync(join(root, 'test-durations.json'), text);
  console.log('per-file durations: test-durations.json');
}

function importSupported() {
  const [major, minor] = process.versions.node.split('.').map(Number);
  return major > 20 || (major === 20 && minor >= 6);
}

function testConcurrencySupported() {
  const [major, minor] = process.versions.node.split('.').map(Number);
  return major > 20 || (major === 20 && minor >= 10);
}

/** The entries of a JSON-lines file by their `file` (the last one wins); empty when there is none. */
function readJsonLines(path) {
  const byFile = new Map();
  if (!existsSync(path)) return byFile;
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    try {
      const entry = JSON.parse(line);
      byFile.set(entry.file, entry);
    } catch {
      // an empty line, or one cut short by a process killed while writing it
    }
  }
  return byFile;
}

/**
 * The CPU time (user + system, ms) of this process's finished children and their descendants, from
 * /proc/self/stat (cutime + cstime): spawnSync has waited for the runner, which waited for the test
 * files. Null where there is no /proc.
 */
function childrenCpuMs() {
  try {
    const stat = readFileSync('/proc/self/stat', 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // fields[0] is the state (field 3 of proc(5)); cutime and cstime are fields 16 and 17, in clock ticks (100 a second on Linux)
    return (Number(fields[13]) + Number(fields[14])) * 10;
  } catch {
    return null;
  }
}

function formatMs(ms) {
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const seconds = Math.round(ms / 1000);
  return `${Math.floor(seconds / 60)} min ${seconds % 60} s`;
}

/** False (and says which) when a file marked store-independent read the store kind in the SQLite pass. */
function markersHold(dir) {
  const readersFile = join(dir, STORE_READERS);
  const readers = new Set(existsSync(readersFile) ? readFileSync(readersFile, 'utf8').split('\n').filter(Boolean) : []);
  const wrong = [...marked].filter((f) => readers.has(f));
  for (const f of wrong) {
    console.error(`${f} is marked store-independent but asked for the store of the pass (testStoreKind): remove its marker`);
  }
  return wrong.length === 0;
}

function pgUrl() {
  return process.env.CUSTOS_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
}

async function postgresReachable() {
  const { default: pg } = await import('pg');
  const client = new pg.Client({ connectionString: pgUrl(), connectionTimeoutMillis: 3000 });
  try {
    await client.connect();
    await client.query('SELECT 1');
    return true;
  } catch (error) {
    return error instanceof Error ? error.message : String(error);
  } finally {
    await client.end().catch(() => undefined);
  }
}
