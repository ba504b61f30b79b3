import assert from 'node:assert/strict';
import { fork } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { LoadJob, LoadResult } from './testing/openLoopLoad.js';

// Issue 14, point 5 — load held: a real `custos serve` (the store of the pass, unsealed from a
// passphrase file) is offered twice the sign rate it serves, open loop, for CUSTOS_LOAD_SECONDS
// (`npm run soak load`: 60), against wallets never enrolled, by a load generator in a process of its
// own (testing/openLoopLoad.ts). It must answer only 200 or 503 `overloaded` with Retry-After (no
// client timeout at 10 s, no other status), its RSS at the end must be at most 1.5 × its RSS after
// 10 s of the load (peaks over 25 s on both sides: the heap is a sawtooth), and it must serve at
// full rate (90 % of the rate measured before, or of the rate it settles at after the load if lower
// — every sign created a wallet — which must be at least half the measured one) again within 5 s of
// the load stopping. The figures are printed and written to bench/out/load-held-<store>.json and
// .md (and the artifacts directory). Not part of `npm test`: without CUSTOS_LOAD_SECONDS the
// test is skipped.

const LOAD_SECONDS = process.env.CUSTOS_LOAD_SECONDS === undefined ? undefined : Number(process.env.CUSTOS_LOAD_SECONDS);
assert.ok(LOAD_SECONDS === undefined || (Number.isInteger(LOAD_SECONDS) && LOAD_SECONDS >= 15), 'CUSTOS_LOAD_SECONDS: expected an integer >= 15');
/** A one-second window at this share of the measured rate counts as full rate again. */
const RECOVERED_SHARE = 0.9;
const RECOVERY_LIMIT_MS = 5_000;
/**
 * After the load the kernel must serve at least this share of the rate measured before it: its store
 * grew by a wallet per sign (SQLite settled at 67–95 % of the measured rate in the runs of
 * 2026-12-07); below half it has not recovered, whatever the store's growth.
 */
const SETTLED_SHARE = 0.5;
const RSS_GROWTH_LIMIT = 1.5;
/** Arrivals the generator sent more than a second late: beyond this share it did not offer the rate, and the run proves nothing. */
const LATE_LIMIT = 0.02;
/** The kernels of the bench run with an audit budget no test's signing spends (the default per-tenant budget would answer 429 audit_rate_limited). */
const AUDIT_BUDGET = String(1024 ** 3);

describe('load held (issue 14, point 5)', { skip: LOAD_SECONDS === undefined ? 'set CUSTOS_LOAD_SECONDS (npm run soak load)' : false }, () => {
  it(`at 2 × the measured sign rate for ${LOAD_SECONDS ?? 60} s: only 200 or 503 overloaded, RSS bounded, full rate again within 5 s`, async () => {
    // imported here: in `npm test` the file is skipped, and loading the CLI harness (the server, its store drivers) would cost seconds
    const { freshStoreLocation, ROOT, recordTestSecret, runCliOk, secretInputs, serve, storeArgs, testArtifactsDir, testStoreKind } = await import(
      './testing/cliHarness.js'
    );
    const { http, waitFor } = await import('./testing/httpJson.js');
    const store = testStoreKind();
    const location = freshStoreLocation();
    const inputs = secretInputs('custos-load-inputs');
    const passphrase = `load-${randomBytes(12).toString('base64url')}`;
    recordTestSecret('load passphrase', passphrase);
    const passphraseFile = inputs.write('passphrase', `${passphrase}\n`);
    await runCliOk(['init', ...storeArgs(location), '--passphrase-file', passphraseFile, '--scrypt-log-n', '10']);
    const out = await runCliOk(['apikey', 'create', ...storeArgs(location), '--name', 'load', '--scopes', 'register,derive,sign']);
    const token = out.trim().split(/\s+/).at(-1) ?? '';
    recordTestSecret('load api key', token);
    const served = await serve(
      location,
      [
        '--host',
        '127.0.0.1',
        '--passphrase-file',
        passphraseFile,
        '--log-level',
        'warn',
        '--audit-bytes-per-second',
        AUDIT_BUDGET,
        '--audit-burst-bytes',
        AUDIT_BUDGET,
        // admission by expected wait as `custos serve` sets it by default; CUSTOS_LOAD_ADMISSION_MS tries another target
        ...(process.env.CUSTOS_LOAD_ADMISSION_MS === undefined ? [] : ['--admission-latency-ms', process.env.CUSTOS_LOAD_ADMISSION_MS]),
      ],
      { startTimeoutMs: 120_000 },
    );
    const serverPid = served.child.pid;
    assert.ok(serverPid !== undefined);
    try {
      await waitFor(
        'the kernel ready',
        () => http(`${served.url}/readyz`),
        (a) => a.status === 200,
        120_000,
      );
      const job: LoadJob = {
        url: served.url,
        token,
        serverPid,
        connections: 64,
        warmupMs: 2_000,
        measureMs: 10_000,
        factor: 2,
        loadMs: (LOAD_SECONDS ?? 60) * 1000,
        rssWarmupMs: 10_000,
        timeoutMs: 10_000,
        recoveryMs: 12_000,
        settledMs: 4_000,
        recoveredShare: RECOVERED_SHARE,
      };
      const result = await runGenerator(job);
      const report = describeRun(store, job, result);
      console.log(report);
      const outDir = join(ROOT, 'bench', 'out');
      mkdirSync(outDir, { recursive: true });
      const json = `${JSON.stringify({ date: new Date().toISOString(), store, job: { ...job, token: undefined }, result }, null, 2)}\n`;
      for (const dir of [outDir, testArtifactsDir()]) {
        writeFileSync(join(dir, `load-held-${store}.json`), json);
        writeFileSync(join(dir, `load-held-${store}.md`), `${report}\n`);
      }

      const unexpected = result.outcomes.filter((o) => o.outcome !== '200' && o.outcome !== '503 overloaded');
      assert.deepEqual(unexpected, [], 'only 200 and 503 overloaded with Retry-After (no client timeout, no other status)');
      assert.ok(
        result.lateArrivals <= LATE_LIMIT * result.offered,
        `the generator sent ${result.lateArrivals} of ${result.offered} arrivals over a second late: it did not offer the rate (machine too busy), no verdict`,
      );
      assert.ok(
        result.rssAtEndKiB <= RSS_GROWTH_LIMIT * result.rssAfterWarmupKiB,
        `RSS at the end (peak of the last 25 s) ${result.rssAtEndKiB} KiB > ${RSS_GROWTH_LIMIT} × ${result.rssAfterWarmupKiB} KiB after the warm-up (peak of the 25 s after it)`,
      );
      assert.ok(
        result.settledRate >= SETTLED_SHARE * result.measuredRate,
        `after the load the kernel settled at ${result.settledRate.toFixed(0)}/s, below ${SETTLED_SHARE} × the ${result.measuredRate.toFixed(0)}/s measured before it`,
      );
      const reference = Math.min(result.measuredRate, result.settledRate);
      assert.ok(
        result.recoveredAfterMs !== null && result.recoveredAfterMs <= RECOVERY_LIMIT_MS,
        `full rate (${RECOVERED_SHARE} × ${reference.toFixed(0)}/s in a 1 s window) again after ${result.recoveredAfterMs ?? `more than ${job.recoveryMs}`} ms; at most ${RECOVERY_LIMIT_MS} ms`,
      );
    } finally {
      await served.stop();
    }
  });
});

async function runGenerator(job: LoadJob): Promise<LoadResult> {
  const { trackChild } = await import('@custos/server/testing');
  const child = fork(fileURLToPath(new URL('./testing/openLoopLoad.js', import.meta.url)), [], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    execArgv: [],
  });
  trackChild(child);
  return new Promise((resolve, reject) => {
    child.once('message', (reply: { ok: true; result: LoadResult } | { ok: false; error: string }) => {
      child.disconnect();
      if (reply.ok) resolve(reply.result);
      else reject(new Error(`load generator: ${reply.error}`));
    });
    child.once('exit', (code, signal) => reject(new Error(`load generator exited (${code ?? signal}) without a result`)));
    child.send(job);
  });
}

function describeRun(store: string, job: LoadJob, r: LoadResult): string {
  const n = (x: number) => Math.round(x).toLocaleString('en');
  const total = r.outcomes.reduce((a, o) => a + o.count, 0);
  const lines = [
    `load held, ${store} store, ${new Date().toISOString()}: ${job.loadMs / 1000} s open loop at ${job.factor} × the measured rate`,
    `  measured (closed loop, ${job.connections} connections, ${job.measureMs / 1000} s after ${job.warmupMs / 1000} s): ${n(r.measuredRate)} signs/s; generator ${r.generatorCoresMeasure.toFixed(2)} cores`,
    `  offered: ${n(r.offeredRate)} req/s, ${n(r.offered)} requests (${r.lateArrivals} sent over 1 s late), up to ${r.maxSockets} sockets open`,
    `  answers: ${r.outcomes.map((o) => `${o.outcome} ${n(o.count)} (${((100 * o.count) / total).toFixed(1)} %)`).join(', ')}`,
    `  served during the load: ${n(r.servedRate)} signs/s; latency of the 200s p50 ${r.latencyP50Ms.toFixed(0)} ms, p99 ${r.latencyP99Ms.toFixed(0)} ms`,
    `  kernel RSS, peaks over 25 s: ${n(r.rssAfterWarmupKiB / 1024)} MiB after the ${job.rssWarmupMs / 1000} s warm-up, ${n(r.rssAtEndKiB / 1024)} MiB at the end (${(r.rssAtEndKiB / r.rssAfterWarmupKiB).toFixed(2)} ×, limit ${RSS_GROWTH_LIMIT} ×); single readings ${n(r.rssSamplesKiB.afterWarmup / 1024)} → ${n(r.rssSamplesKiB.atEnd / 1024)} MiB`,
    `  settled after the load (the last ${job.settledMs / 1000} s of ${job.recoveryMs / 1000} s of the closed loop): ${n(r.settledRate)} signs/s (${((100 * r.settledRate) / r.measuredRate).toFixed(0)} % of measured; at least ${SETTLED_SHARE * 100} %)`,
    `  full rate (${RECOVERED_SHARE * 100} % of the lower of measured and settled, in a 1 s window) again ${r.recoveredAfterMs === null ? `NOT within ${job.recoveryMs / 1000} s` : `${r.recoveredAfterMs} ms`} after the load stopped (limit ${RECOVERY_LIMIT_MS} ms); 200s per 250 ms: ${r.recoverySlots.join(' ')}`,
    `  load generator CPU during the load: ${r.generatorCores.toFixed(2)} cores (${((100 * r.generatorCores) / availableParallelism()).toFixed(0)} % of the ${availableParallelism()} cores)`,
    `  per second (200 / 503 / other): ${r.perSecond.map(([a, b, c]) => `${a}/${b}/${c}`).join(' ')}`,
  ];
  return lines.join('\n');
}
