#!/usr/bin/env node
// The Custos benchmark: `npm run bench` (or `node bench/run.mjs [--quick] [--no-build] [--pin]
// [--keep] [--no-pg] [--repeat N] [--baseline FILE]`). Measures in one run, (b) and (d) N times in
// interleaved rounds, writes bench/RESULTS.md and bench/out/results.json.
// Everything runs on 127.0.0.1 and stops by itself; every child is stopped at the end, also on
// failure. See bench/README.md.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  ask,
  configureChildren,
  cpuSecondsOf,
  forkModule,
  freePort,
  peakRssOf,
  rssOf,
  runNode,
  spawnNode,
  stopAll,
  stopChild,
  waitFor,
} from './lib/children.mjs';
import {
  auditCountsPostgres,
  auditCountsSqlite,
  createSigner,
  dropSchema,
  insertWalletsPostgres,
  insertWalletsSqlite,
  postgresSettings,
} from './lib/fixture.mjs';
import { commitDelta, keyNumbers, scrapeMetrics } from './lib/metrics.mjs';
import { summarizeProfile } from './lib/profile.mjs';
import { readBaseline } from './lib/noise.mjs';
import { writeReport } from './lib/report.mjs';
import { median } from './lib/stats.mjs';
import { busiestProcesses, cpuWindow, gitInfo, loadavg, machine } from './lib/sys.mjs';

const BENCH = dirname(fileURLToPath(import.meta.url));
const ROOT = dirname(BENCH);
const OUT = join(BENCH, 'out');
const CLI = join(ROOT, 'packages', 'cli', 'bin', 'custos.js');
const LOADGEN = join(BENCH, 'children', 'loadgen.mjs');
const HELLO = join(BENCH, 'children', 'hello.mjs');
const SECP = join(BENCH, 'children', 'secp-loop.cjs');
const PG_BASE = process.env.CUSTOS_BENCH_PG ?? 'postgres://postgres@127.0.0.1:5432/postgres';

const argv = process.argv.slice(2);
const FLAGS = ['--quick', '--no-build', '--pin', '--keep', '--no-pg', '--report-only', '--help'];
const VALUED = ['--repeat', '--baseline'];
const flags = new Set();
const values = {};
function usageError(message) {
  process.stderr.write(`bench: ${message}; options: ${FLAGS.join(' ')} ${VALUED.map((v) => `${v} X`).join(' ')}\n`);
  process.exit(2);
}
for (let i = 0; i < argv.length; i++) {
  const eq = argv[i].indexOf('=');
  const name = eq > 0 ? argv[i].slice(0, eq) : argv[i];
  if (FLAGS.includes(name) && eq < 0) flags.add(name);
  else if (VALUED.includes(name)) {
    const value = eq > 0 ? argv[i].slice(eq + 1) : argv[++i];
    if (value === undefined || value === '') usageError(`${name} needs a value`);
    values[name] = value;
  } else usageError(`unknown option ${argv[i]}`);
}
if (flags.has('--help')) {
  process.stdout.write(`Usage: node bench/run.mjs [--quick] [--no-build] [--pin] [--keep] [--no-pg] [--repeat N] [--baseline FILE]
  --quick     short durations and 100k instead of 1M wallets (a try-out, not a result)
  --no-build  do not run tsc -b first (measure the dist/ as it is)
  --pin       pin kernel processes to CPU 0 and the load generator to CPU 1 (taskset)
  --keep      keep the work directory (data dirs) under ${tmpdir()}
  --no-pg     skip the PostgreSQL measurements (c)
  --repeat N  measure (b) and (d) N times, in interleaved rounds (default 3); the median is the
              figure, the runs' spread is reported as run-to-run noise
  --baseline FILE  compare (b) and (d) with an earlier run's bench/out/results.json (copy it out of
              bench/out first: every run overwrites it); adds "Compared with the baseline"
  --report-only  rewrite bench/RESULTS.md from bench/out/results.json, measure nothing (with
              --baseline: compare that results.json with FILE)
`);
  process.exit(0);
}
const REPEAT = values['--repeat'] === undefined ? 3 : Number(values['--repeat']);
if (!Number.isInteger(REPEAT) || REPEAT < 1 || REPEAT > 20) usageError(`--repeat wants a whole number from 1 to 20, got ${values['--repeat']}`);
let baseline = null;
if (values['--baseline'] !== undefined) {
  const path = resolve(values['--baseline']);
  const shown = path.startsWith(`${ROOT}/`) ? relative(ROOT, path) : path;
  try {
    baseline = readBaseline(path, shown);
  } catch (error) {
    process.stderr.write(`bench: ${error.message}\n`);
    process.exit(2);
  }
}
if (flags.has('--report-only')) {
  const { readFileSync } = await import('node:fs');
  const earlier = JSON.parse(readFileSync(join(OUT, 'results.json'), 'utf8'));
  if (baseline) earlier.baseline = baseline;
  writeReport(join(BENCH, 'RESULTS.md'), earlier);
  process.stderr.write(`bench: rewrote bench/RESULTS.md from bench/out/results.json${baseline ? `, compared with ${baseline.path}` : ''}\n`);
  process.exit(0);
}
const QUICK = flags.has('--quick');
const PIN = flags.has('--pin');

const CFG = QUICK
  ? {
      bigWallets: 100_000,
      smallWallets: 1_000,
      pgWallets: 40_000,
      secpSeconds: 1,
      load: { connections: 64, warmupMs: 1_000, durationMs: 3_000, tailMs: 100 },
      profileMs: 3_000,
      seq: { count: 600, freshWarmup: 100, helloWarmup: 300 },
      fixedSetSize: 300,
      unsealRepeats: 2,
      watchdogMs: 10 * 60_000,
    }
  : {
      bigWallets: 1_000_000,
      smallWallets: 1_000,
      pgWallets: 200_000,
      secpSeconds: 3,
      load: { connections: 64, warmupMs: 2_000, durationMs: 10_000, tailMs: 100 },
      profileMs: 8_000,
      seq: { count: 2_000, freshWarmup: 200, helloWarmup: 1_000 },
      fixedSetSize: 1_000,
      unsealRepeats: 3,
      watchdogMs: 20 * 60_000,
    };

const PASSPHRASE = `bench-${randomBytes(9).toString('base64url')}`;
const BENCH_KEY = randomBytes(32);

const results = {
  command: `node bench/run.mjs${argv.length ? ` ${argv.join(' ')}` : ''}`,
  invokedAs: process.env.npm_lifecycle_event === 'bench' ? `npm run bench${argv.length ? ` -- ${argv.join(' ')}` : ''}` : null,
  quick: QUICK,
  pinned: PIN,
  repeat: REPEAT,
  config: CFG,
  startedAt: new Date().toISOString(),
  machine: machine(),
  loadavgStart: loadavg(),
  git: gitInfo(ROOT),
  steps: [],
  measurements: {},
  errors: [],
  baseline,
};

function log(message) {
  const line = `[bench ${((performance.now() - T0) / 1000).toFixed(1).padStart(6)}s] ${message}`;
  process.stderr.write(`${line}\n`);
}
const T0 = performance.now();
/** Audit bytes per second and burst the bench's kernels may write (1 GiB: never the limit). */
const BENCH_AUDIT_BUDGET = 1024 ** 3;

// ── kernel processes ──────────────────────────────────────────────────────────────────────────

async function startKernel(name, { location, passphraseFile, profileDir, sealed = false, pin = PIN }) {
  const port = await freePort();
  const where = 'dataDir' in location ? ['--data-dir', location.dataDir] : ['--store', location.url];
  const nodeArgs = [
    ...(profileDir ? ['--cpu-prof', '--cpu-prof-dir', profileDir] : []),
    CLI,
    'serve',
    ...where,
    '--host',
    '127.0.0.1',
    '--port',
    String(port),
    '--log-level',
    'warn',
    // The bench measures signing, not the per-tenant audit budget: at thousands of signs a second
    // one tenant spends the default budget (256 KiB/s, 16 MiB burst) within the first round, and
    // the later rounds would measure `audit_rate_limited` refusals.
    '--audit-bytes-per-second',
    String(BENCH_AUDIT_BUDGET),
    '--audit-burst-bytes',
    String(BENCH_AUDIT_BUDGET),
    ...(sealed ? [] : ['--passphrase-file', passphraseFile]),
  ];
  const child = spawnNode(name, nodeArgs, { cpu: pin ? 0 : undefined });
  const url = `http://127.0.0.1:${port}`;
  await waitFor(`${url}/v1/sys/status`, { child, timeoutMs: 60_000 });
  if (!sealed) await waitFor(`${url}/readyz`, { child, timeoutMs: 30_000 });
  return { name, child, url, pid: child.pid, command: `node ${nodeArgs.map((a) => (a.startsWith(`${ROOT}/`) ? relative(ROOT, a) : a)).join(' ')}` };
}

async function stopKernel(kernel) {
  const r = await stopChild(kernel.child, { signal: 'SIGINT', graceMs: 20_000 });
  if (r.killed) results.errors.push(`${kernel.name} did not stop on SIGINT within 20 s and was killed`);
  return r;
}

// ── load ──────────────────────────────────────────────────────────────────────────────────────

/**
 * Runs one load job in a fresh load-generator process; returns its result plus the CPU use of the
 * machine during the job and group-commit numbers from the kernels' /metrics.
 */
async function load(label, job, kernels, { pin = PIN } = {}) {
  const gen = forkModule(`loadgen-${label}`, LOADGEN, { cpu: pin ? 1 : undefined });
  const before = await Promise.all(kernels.map((k) => scrapeMetrics(k.url)));
  const cpu = cpuWindow([gen.pid, ...kernels.map((k) => k.pid)]);
  const kernelCpu0 = kernels.map((k) => cpuSecondsOf(k.pid));
  const timeoutMs = job.count === undefined ? job.warmupMs + job.durationMs + 110_000 : 180_000;
  const result = await ask(gen, { benchKey: BENCH_KEY.toString('hex'), ...job }, timeoutMs);
  const cpuUse = cpu.stop();
  const after = await Promise.all(kernels.map((k) => scrapeMetrics(k.url)));
  await stopChild(gen, { signal: 'SIGTERM', graceMs: 3_000 });
  const commits = kernels.map((_k, i) => {
    const d = commitDelta(keyNumbers(before[i]), keyNumbers(after[i]));
    if (d !== null) d.commitBusyShare = d.commitSeconds / cpuUse.wallSeconds;
    return d;
  });
  const kernelCores = kernels.map((k, i) => {
    const c1 = cpuSecondsOf(k.pid);
    return c1 === null || kernelCpu0[i] === null ? null : (c1 - kernelCpu0[i]) / cpuUse.wallSeconds;
  });
  if (result.signsUnanswered > 0)
    results.errors.push(`${label}: ${result.signsUnanswered} sign requests were never answered (timeouts or dropped connections)`);
  const summary = {
    label,
    job: { ...job, apiKey: undefined, benchKey: undefined },
    ...result,
    cpu: cpuUse,
    generatorCores: cpuUse.perPidCores[gen.pid] ?? null,
    kernelCores,
    commits,
  };
  const nonOk = result.phases.main.answered - result.phases.main.ok + (result.phases.warm.answered - result.phases.warm.ok);
  log(
    `${label}: ${result.phases.main.ok} ok in main phase, ${result.mainOkPerSecond.toFixed(0)}/s, p50 ${fmt(result.latencyMs.p50)} ms, p99 ${fmt(result.latencyMs.p99)} ms, non-200 ${nonOk}, other CPU ${cpuUse.otherCores.toFixed(2)} cores`,
  );
  return summary;
}

const fmt = (v, d = 3) => (v === null || v === undefined ? 'n/a' : Number(v).toFixed(d));

/** Wallet ranges of a fixture, handed out so that no two jobs share a wallet. */
function rangeAllocator(total, reservedStride) {
  let next = 0;
  return {
    /** A contiguous range of `count` usable wallets (skips the reserved spread set). */
    take(count) {
      const start = next;
      // every reservedStride-th wallet (index ≡ stride−1) belongs to the spread set; skip them
      const span = reservedStride ? Math.ceil((count * reservedStride) / (reservedStride - 1)) + 1 : count;
      if (start + span > total) throw new Error(`fixture too small: need ${span} more wallets from ${start}, have ${total}`);
      next = start + span;
      return { start, count: span, stride: 1, skipMod: reservedStride };
    },
    left() {
      return total - next;
    },
  };
}

/** Audit check: sign.hash allowed records added since `before` must equal the 200s counted. */
function auditCheck(label, before, after, okCounted, deniedAnswered) {
  const allowed = after.allowed - before.allowed;
  const denied = after.denied - before.denied;
  const check = { label, okCounted, allowedRecords: allowed, deniedRecords: denied, non200Answered: deniedAnswered, match: allowed === okCounted };
  if (!check.match) results.errors.push(`${label}: ${allowed} sign.hash allowed audit records but ${okCounted} HTTP 200s counted`);
  return check;
}

/** The run whose figure is the median (the lower one of an even count, see stats.median). */
function medianRun(runs, value) {
  const m = median(runs.map(value));
  return runs.find((r) => value(r) === m) ?? runs[0];
}

function okOf(r) {
  return r.phases.warm.ok + r.phases.main.ok;
}
function non200Of(r) {
  return r.phases.warm.answered - r.phases.warm.ok + (r.phases.main.answered - r.phases.main.ok);
}

// ── the run ───────────────────────────────────────────────────────────────────────────────────

async function main() {
  mkdirSync(OUT, { recursive: true });
  const logs = join(OUT, 'logs');
  rmSync(logs, { recursive: true, force: true });
  mkdirSync(logs, { recursive: true });
  const profDir = join(OUT, 'prof');
  rmSync(profDir, { recursive: true, force: true });
  mkdirSync(profDir, { recursive: true });
  configureChildren({ logs, pin: PIN });
  const work = mkdtempSync(join(tmpdir(), 'custos-bench-'));
  results.workDir = work;
  const M = results.measurements;

  try {
    results.background = await busiestProcesses(1000);
    if (!flags.has('--no-build')) {
      log('building (tsc -b)');
      const t = performance.now();
      execFileSync(process.execPath, [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-b'], {
        cwd: ROOT,
        stdio: ['ignore', 'inherit', 'inherit'],
        timeout: 300_000,
      });
      results.steps.push({ step: 'tsc -b', seconds: (performance.now() - t) / 1000 });
    }

    // (a) raw libsecp256k1
    log(`(a) libsecp256k1 ecdsaSign loop, ${CFG.secpSeconds} s`);
    {
      const cpu = cpuWindow([]);
      const r = await runNode('secp-loop', [SECP, String(CFG.secpSeconds)], { cpu: PIN ? 0 : undefined, timeoutMs: 60_000 });
      if (r.code !== 0) throw new Error(`secp loop failed: ${r.stderr}`);
      const secp = JSON.parse(r.stdout.trim().split('\n').at(-1));
      const usage = cpu.stop();
      // the loop's own process has exited: take its CPU out of "other" by its own account
      usage.otherCores = Math.max(0, usage.otherCores - secp.processCpuSeconds / usage.wallSeconds);
      usage.benchCores += secp.processCpuSeconds / usage.wallSeconds;
      M.secp = { ...secp, cpu: usage };
      log(`(a) ${M.secp.signsPerSecond.toFixed(0)} signs/s`);
    }

    // fixtures: the big one, and one small one per round (a wallet's steps t−1 … t+1, once used,
    // are refused until time moves on, so each round of the cached-wallet run needs fresh wallets)
    const big = { dataDir: join(work, 'big') };
    const smalls = Array.from({ length: REPEAT }, (_v, i) => {
      const name = REPEAT > 1 ? `small-${i + 1}` : 'small';
      const location = { dataDir: join(work, name) };
      return { name, location, db: join(location.dataDir, 'custos.db') };
    });
    log(`fixtures: custos init + apikey (big, ${smalls.map((s) => s.name).join(', ')})`);
    const bigSigner = await createSigner({ cli: CLI, workDir: work, name: 'big', location: big, passphrase: PASSPHRASE });
    for (const s of smalls) s.signer = await createSigner({ cli: CLI, workDir: work, name: s.name, location: s.location, passphrase: PASSPHRASE });
    log(`fixtures: inserting ${CFG.bigWallets} wallets (SQLite)`);
    M.fixtureBig = await insertWalletsSqlite({ dataDir: big.dataDir, passphrase: PASSPHRASE, benchKey: BENCH_KEY, count: CFG.bigWallets });
    M.fixtureBig.dbBytes = dbSize(big.dataDir);
    log(`fixtures: ${CFG.bigWallets} wallets in ${M.fixtureBig.seconds.toFixed(1)} s`);
    for (const s of smalls)
      s.fixture = await insertWalletsSqlite({ dataDir: s.location.dataDir, passphrase: PASSPHRASE, benchKey: BENCH_KEY, count: CFG.smallWallets });
    M.fixtureSmall = smalls[0].fixture;
    const bigDb = join(big.dataDir, 'custos.db');

    // The spread set of the big fixture: `fixedSetSize` wallets evenly spread over the table.
    const spreadStride = Math.floor(CFG.bigWallets / CFG.fixedSetSize);
    const spreadSet = { start: spreadStride - 1, count: CFG.fixedSetSize, stride: spreadStride };
    const bigRanges = rangeAllocator(CFG.bigWallets, spreadStride);
    M.audit = [];

    // (f) unseal-to-ready, on the big fixture; the last start stays up as kernel P1
    log('(f) unseal-to-ready');
    M.unseal = [];
    let p1;
    for (let i = 0; i < CFG.unsealRepeats; i++) {
      const k = await startKernel(`kernel-big-sealed-${i}`, { location: big, sealed: true });
      // warm the HTTP client's connection first
      await (await fetch(`${k.url}/v1/sys/status`)).arrayBuffer();
      const t0 = performance.now();
      const res = await fetch(`${k.url}/v1/sys/unseal`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ passphrase: PASSPHRASE }),
      });
      await res.arrayBuffer();
      const tUnsealed = performance.now();
      if (res.status !== 200) throw new Error(`unseal answered ${res.status}`);
      let polls = 0;
      for (;;) {
        polls += 1;
        const r = await fetch(`${k.url}/readyz`);
        await r.arrayBuffer();
        if (r.status === 200) break;
        if (performance.now() - t0 > 30_000) throw new Error('readyz not 200 within 30 s of unseal');
      }
      const tReady = performance.now();
      M.unseal.push({ unsealResponseMs: tUnsealed - t0, unsealToReadyMs: tReady - t0, readyzPolls: polls, rssAfterUnsealBytes: rssOf(k.pid) });
      log(`(f) unseal-to-ready ${(tReady - t0).toFixed(1)} ms`);
      if (i < CFG.unsealRepeats - 1) await stopKernel(k);
      else p1 = k;
    }
    results.kernelCommand = p1.command;
    M.unsealToReadyMedianMs = median(M.unseal.map((u) => u.unsealToReadyMs));

    const seqJob = (wallets, warmupCount, maxUses, apiKey, urls) => ({
      kind: 'sign',
      urls,
      connections: 1,
      warmupCount,
      count: CFG.seq.count,
      apiKey,
      marginMs: 200,
      wallets: { ...wallets, maxUses },
    });
    const loadJob = (apiKey, urls, wallets, extra = {}) => ({
      kind: 'sign',
      urls,
      apiKey,
      ...CFG.load,
      marginMs: 1_000,
      wallets: { ...wallets, maxUses: 3 },
      ...extra,
    });
    const loadSeconds = (CFG.load.warmupMs + CFG.load.durationMs + CFG.load.tailMs) / 1000;
    const assumedMax = 20_000;
    // Wallets of the big fixture for every round, taken up front: (d)'s new wallets, then (b)'s
    // share (45 % of what is left, as with one round, split between the rounds).
    const freshRanges = smalls.map(() => bigRanges.take(CFG.seq.freshWarmup + CFG.seq.count));
    const bEach = Math.min(Math.ceil(assumedMax * loadSeconds), Math.floor((bigRanges.left() * 0.45) / REPEAT));
    const bRanges = smalls.map(() => bigRanges.take(bEach));

    // (b) and (d), REPEAT rounds. Each round: (d) new-wallet signs on P1, (d) cached-wallet signs
    // on a fresh small fixture and kernel, the Fastify hello, then (b) on P1 — interleaved, so that
    // a change in the machine's background load spreads over all of them rather than one. Round 1
    // also runs (f)'s spread-set signs on P1, in the place they had before rounds existed.
    const rounds = { seqFreshBig: [], seqSetSmall: [], seqHello: [], loadSqlite: [] };
    M.repeated = rounds;
    const tag = (label, i) => (REPEAT > 1 ? `${label}-r${i + 1}` : label);
    for (let i = 0; i < REPEAT; i++) {
      const round = (label, run) => {
        run.round = i + 1;
        rounds[label].push(run);
        return run;
      };
      if (REPEAT > 1) log(`round ${i + 1} of ${REPEAT}: (d) new wallets, (d) cached wallets, (d) hello, (b)`);

      // (d, fresh) sequential signs, each a never-used wallet of the big fixture
      let before = auditCountsSqlite(bigDb);
      const fresh = round('seqFreshBig', await load(tag('seq-fresh-big', i), seqJob(freshRanges[i], CFG.seq.freshWarmup, 1, bigSigner.apiKey, [p1.url]), [p1]));
      let after = auditCountsSqlite(bigDb);
      M.audit.push(auditCheck(fresh.label, before, after, okOf(fresh), non200Of(fresh)));

      if (i === 0) {
        // (f) sequential signs on the spread set of the big fixture: first pass (step t−1) is the
        // warm-up, the measured passes are steps t and t+1
        before = after;
        M.seqSetBig = await load('seq-set-big', seqJob(spreadSet, CFG.fixedSetSize, 3, bigSigner.apiKey, [p1.url]), [p1]);
        after = auditCountsSqlite(bigDb);
        M.audit.push(auditCheck('seq-set-big', before, after, okOf(M.seqSetBig), non200Of(M.seqSetBig)));
        M.rssAfterSeqBigBytes = rssOf(p1.pid);
        M.metricsAfterSeqBig = keyNumbers(await scrapeMetrics(p1.url));
      }

      // (d, cached) and (f) the 1,000-wallet fixture, same sequential measurement, right after the
      // big one (so that both see the same background load), then (d)'s Fastify hello the same way
      log(`(f) sequential signs on the ${CFG.smallWallets}-wallet fixture${REPEAT > 1 ? ` ${smalls[i].name}` : ''}`);
      {
        const s = smalls[i];
        const k = await startKernel(`kernel-${s.name}`, { location: s.location, passphraseFile: s.signer.passphraseFile });
        const b0 = auditCountsSqlite(s.db);
        const set = { start: 0, count: Math.min(CFG.fixedSetSize, CFG.smallWallets), stride: 1 };
        const run = round('seqSetSmall', await load(tag('seq-set-small', i), seqJob(set, set.count, 3, s.signer.apiKey, [k.url]), [k]));
        M.audit.push(auditCheck(run.label, b0, auditCountsSqlite(s.db), okOf(run), non200Of(run)));
        run.rssBytes = rssOf(k.pid);
        await stopKernel(k);
      }

      // (d) Fastify hello, measured the same way
      log('(d) Fastify hello, sequential');
      {
        const port = await freePort();
        const hello = spawnNode(tag('hello', i), [HELLO, String(port)], { cpu: PIN ? 0 : undefined });
        const url = `http://127.0.0.1:${port}`;
        await waitFor(`${url}/`, { child: hello });
        const job = { kind: 'get', path: '/', urls: [url], connections: 1, warmupCount: CFG.seq.helloWarmup, count: CFG.seq.count };
        round('seqHello', await load(tag('seq-hello', i), job, [{ url, pid: hello.pid }]));
        await stopChild(hello, { signal: 'SIGTERM' });
      }

      // (b) throughput on SQLite, one kernel process
      log(`(b) SQLite throughput, ${CFG.load.connections} connections, ${CFG.load.durationMs / 1000} s after ${CFG.load.warmupMs / 1000} s warm-up`);
      before = auditCountsSqlite(bigDb);
      const b = round('loadSqlite', await load(tag('load-sqlite', i), loadJob(bigSigner.apiKey, [p1.url], bRanges[i]), [p1]));
      after = auditCountsSqlite(bigDb);
      M.audit.push(auditCheck(b.label, before, after, okOf(b), non200Of(b)));
    }
    // The figures of the tables and targets: the median run of each (a run, not an average)
    M.seqFreshBig = medianRun(rounds.seqFreshBig, (m) => m.latencyMs.p50);
    M.seqSetSmall = medianRun(rounds.seqSetSmall, (m) => m.latencyMs.p50);
    M.rssSmallBytes = M.seqSetSmall.rssBytes;
    M.seqHello = medianRun(rounds.seqHello, (m) => m.latencyMs.p50);
    M.loadSqlite = medianRun(rounds.loadSqlite, (m) => m.mainOkPerSecond);
    if (REPEAT > 1)
      log(
        `medians of ${REPEAT} rounds: (b) ${M.loadSqlite.mainOkPerSecond.toFixed(0)}/s (round ${M.loadSqlite.round}), (d) p50 new ${fmt(M.seqFreshBig.latencyMs.p50)} ms, cached ${fmt(M.seqSetSmall.latencyMs.p50)} ms, hello ${fmt(M.seqHello.latencyMs.p50)} ms`,
      );
    const bRate = M.loadSqlite.mainOkPerSecond;
    let after = auditCountsSqlite(bigDb);
    let before;

    // (e) the same workload at 50 % of (b): autocannon overallRate as it is (bursty), then paced
    const halfRate = Math.max(1, Math.round(bRate / 2));
    for (const paced of [false, true]) {
      const key = paced ? 'halfLoadPaced' : 'halfLoad';
      before = after;
      const range = bigRanges.take(Math.min(Math.ceil(halfRate * loadSeconds * 1.2) + 1000, Math.floor(bigRanges.left() * 0.3)));
      log(`(e) ${halfRate} req/s (50 % of (b))${paced ? ', evenly paced' : ', autocannon overallRate'}`);
      M[key] = await load(paced ? 'half-load-paced' : 'half-load', loadJob(bigSigner.apiKey, [p1.url], range, { overallRate: halfRate, paced }), [p1]);
      after = auditCountsSqlite(bigDb);
      M.audit.push(auditCheck(paced ? 'half-load-paced' : 'half-load', before, after, okOf(M[key]), non200Of(M[key])));
    }
    M.rssAfterLoadBigBytes = rssOf(p1.pid);
    M.peakRssBigBytes = peakRssOf(p1.pid);
    M.metricsAfterLoadBig = keyNumbers(await scrapeMetrics(p1.url));
    await stopKernel(p1);

    // CPU profile of the kernel under (b)'s workload (a separate, profiled process)
    log('profile: (b) workload under node --cpu-prof');
    {
      const kp = await startKernel('kernel-big-profiled', { location: big, passphraseFile: bigSigner.passphraseFile, profileDir: profDir });
      results.profiledKernelCommand = kp.command;
      before = auditCountsSqlite(bigDb);
      const range = bigRanges.take(Math.min(Math.ceil(Math.max(bRate, 1000) * 1.2 * (CFG.profileMs / 1000 + 1.5)), Math.floor(bigRanges.left() * 0.9)));
      M.loadSqliteProfiled = await load('load-sqlite-profiled', loadJob(bigSigner.apiKey, [kp.url], range, { warmupMs: 1_000, durationMs: CFG.profileMs }), [
        kp,
      ]);
      after = auditCountsSqlite(bigDb);
      M.audit.push(auditCheck('load-sqlite-profiled', before, after, okOf(M.loadSqliteProfiled), non200Of(M.loadSqliteProfiled)));
      await stopKernel(kp);
      const files = readdirSync(profDir).filter((f) => f.endsWith('.cpuprofile'));
      if (files.length === 0) results.errors.push('no .cpuprofile was written by the profiled kernel');
      else {
        const file = join(profDir, files.sort((a, b) => statSync(join(profDir, b)).mtimeMs - statSync(join(profDir, a)).mtimeMs)[0]);
        const [fromUs, toUs] = M.loadSqliteProfiled.mainWindowHrUs;
        M.profile = summarizeProfile(file, { top: 25, fromUs: fromUs ?? undefined, toUs: toUs ?? undefined });
        if (M.profile.samples < 100) M.profile = summarizeProfile(file, { top: 25 });
        M.profile.file = relative(ROOT, file);
      }
    }

    // audit chain of the big fixture after everything
    log('custos audit verify (big SQLite fixture)');
    M.auditVerifySqlite = await auditVerify('audit-verify-sqlite', ['--data-dir', big.dataDir]);

    // (c) PostgreSQL: one replica, then two replicas on one schema
    if (!flags.has('--no-pg')) await postgres(M);
  } finally {
    await stopAll();
    if (!flags.has('--keep')) rmSync(work, { recursive: true, force: true });
  }
}

async function auditVerify(name, where) {
  const t = performance.now();
  const r = await runNode(name, [CLI, 'audit', 'verify', ...where], { timeoutMs: 300_000 });
  return { code: r.code, output: r.stdout.trim() || r.stderr.trim(), seconds: (performance.now() - t) / 1000 };
}

async function postgres(M) {
  const schema = `bench_${Date.now().toString(36)}_${process.pid}`;
  const url = `${PG_BASE}?schema=${schema}`;
  const location = { url };
  const work = results.workDir;
  try {
    M.postgresSettings = await postgresSettings(url);
    log(`(c) PostgreSQL fixture: schema ${schema}, ${CFG.pgWallets} wallets`);
    const signer = await createSigner({ cli: CLI, workDir: work, name: 'pg', location, passphrase: PASSPHRASE });
    M.fixturePg = await insertWalletsPostgres({ url, passphrase: PASSPHRASE, benchKey: BENCH_KEY, count: CFG.pgWallets });
    log(`(c) ${CFG.pgWallets} wallets in ${M.fixturePg.seconds.toFixed(1)} s`);
    const half = Math.floor(CFG.pgWallets / 2);
    const job = (urls, range) => ({ kind: 'sign', urls, apiKey: signer.apiKey, ...CFG.load, marginMs: 1_000, wallets: { ...range, stride: 1, maxUses: 3 } });

    log('(c) PostgreSQL, one replica');
    const r1 = await startKernel('kernel-pg-1', { location, passphraseFile: signer.passphraseFile, pin: false });
    let before = await auditCountsPostgres(url);
    M.loadPg1 = await load('load-pg-1', job([r1.url], { start: 0, count: half }), [r1], { pin: false });
    let after = await auditCountsPostgres(url);
    M.audit.push(auditCheck('load-pg-1', before, after, okOf(M.loadPg1), non200Of(M.loadPg1)));
    M.rssPg1Bytes = rssOf(r1.pid);
    await stopKernel(r1);

    log('(c) PostgreSQL, two replicas, load split across both');
    const ra = await startKernel('kernel-pg-2a', { location, passphraseFile: signer.passphraseFile, pin: false });
    const rb = await startKernel('kernel-pg-2b', { location, passphraseFile: signer.passphraseFile, pin: false });
    before = after;
    M.loadPg2 = await load('load-pg-2', job([ra.url, rb.url], { start: half, count: CFG.pgWallets - half }), [ra, rb], { pin: false });
    after = await auditCountsPostgres(url);
    M.audit.push(auditCheck('load-pg-2', before, after, okOf(M.loadPg2), non200Of(M.loadPg2)));
    await Promise.all([stopKernel(ra), stopKernel(rb)]);

    log('custos audit verify (PostgreSQL schema)');
    M.auditVerifyPg = await auditVerify('audit-verify-pg', ['--store', url]);
  } finally {
    await stopAll();
    await dropSchema(url).catch((error) => results.errors.push(`could not drop schema ${schema}: ${error.message}`));
  }
}

function dbSize(dataDir) {
  let total = 0;
  for (const f of readdirSync(dataDir)) if (f.startsWith('custos.db')) total += statSync(join(dataDir, f)).size;
  return total;
}

// ── entry ─────────────────────────────────────────────────────────────────────────────────────

let finished = false;
async function finish(exitCode) {
  if (finished) return;
  finished = true;
  await stopAll().catch(() => undefined);
  results.finishedAt = new Date().toISOString();
  results.loadavgEnd = loadavg();
  results.totalSeconds = (performance.now() - T0) / 1000;
  try {
    mkdirSync(OUT, { recursive: true });
    writeFileSync(join(OUT, 'results.json'), `${JSON.stringify(results, null, 2)}\n`);
    writeReport(join(BENCH, 'RESULTS.md'), results);
    log(`wrote bench/RESULTS.md and bench/out/results.json (${results.totalSeconds.toFixed(0)} s)`);
  } catch (error) {
    process.stderr.write(`bench: could not write the report: ${error.stack}\n`);
    exitCode = exitCode || 1;
  }
  process.exit(exitCode);
}

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, () => {
    results.errors.push(`interrupted by ${signal}`);
    void finish(130);
  });
}
const watchdog = setTimeout(() => {
  results.errors.push(`watchdog: the run exceeded ${CFG.watchdogMs / 60_000} minutes and was stopped`);
  void finish(3);
}, CFG.watchdogMs);
watchdog.unref();

main().then(
  () => finish(results.errors.length > 0 ? 1 : 0),
  (error) => {
    results.errors.push(`failed: ${error.stack ?? error}`);
    process.stderr.write(`bench: ${error.stack ?? error}\n`);
    void finish(1);
  },
);
