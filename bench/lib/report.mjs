// Renders bench/RESULTS.md from the results object of run.mjs: machine, targets with PASS/MISS,
// every measurement with its unit, where the time goes for each MISS, and the method.
import { writeFileSync } from 'node:fs';
import { comparabilityWarnings, compareRuns, repeatedFigures, runsOf, summarizeRun } from './noise.mjs';

const MB = 1024 * 1024;
const n0 = (v) => (v === null || v === undefined || Number.isNaN(v) ? 'n/a' : Math.round(v).toLocaleString('en-US'));
const n1 = (v) => (v === null || v === undefined || Number.isNaN(v) ? 'n/a' : Number(v).toFixed(1));
const n2 = (v) => (v === null || v === undefined || Number.isNaN(v) ? 'n/a' : Number(v).toFixed(2));
const n3 = (v) => (v === null || v === undefined || Number.isNaN(v) ? 'n/a' : Number(v).toFixed(3));
const ms = (v) => (v === null || v === undefined ? 'n/a' : `${n3(v)} ms`);
const mb = (v) => (v === null || v === undefined ? 'n/a' : `${n1(v / MB)} MiB`);
const pct = (v) => (v === null || v === undefined ? 'n/a' : `${n1(100 * v)} %`);
const signed = (v, f) => (v === null || v === undefined || Number.isNaN(v) ? 'n/a' : `${v > 0 ? '+' : v < 0 ? '−' : '±'}${f(Math.abs(v))}`);

/** A value of a repeated figure in its unit: signs/s whole, milliseconds to 3 places, ratios to 2. */
function inUnit(v, unit) {
  if (v === null || v === undefined) return 'n/a';
  if (unit === '/s') return `${n0(v)} /s`;
  if (unit === 'ms') return ms(v);
  return n2(v);
}

/** "± 1.2 %" — half of the runs' min–max range as a share of their median. */
function noiseText(f) {
  if (!f || f.values.length < 2) return 'one run';
  return `± ${n1(100 * f.halfRangePct)} %`;
}

function verdict(ok) {
  if (ok === null || ok === undefined) return 'n/a (not measured)';
  return ok ? '**PASS**' : '**MISS**';
}

/** The targets, each {id, name, measured, limit, ok, why (for a MISS)}. */
export function evaluateTargets(r) {
  const M = r.measurements;
  const t = [];
  const figures = new Map(repeatedFigures(r).map((f) => [f.id, f]));
  const repeated = (id) => {
    const f = figures.get(id);
    return f && f.values.length > 1 ? f : null;
  };
  const big = r.config.bigWallets.toLocaleString('en-US');

  // (b) ≥ 0.35 × (a)
  if (M.secp && M.loadSqlite) {
    const ratio = M.loadSqlite.mainOkPerSecond / M.secp.signsPerSecond;
    t.push({
      id: 'b',
      name: '(b) durable TOTP-gated signs/s on SQLite ≥ 0.35 × (a) raw libsecp256k1 signs/s',
      measured: `${n0(M.loadSqlite.mainOkPerSecond)} /s${repeated('b') ? ` (median of ${repeated('b').values.length} runs, noise ${noiseText(repeated('b'))})` : ''} ÷ ${n0(M.secp.signsPerSecond)} /s = ${n3(ratio)}`,
      limit: '≥ 0.350',
      ok: ratio >= 0.35,
      why: () => whyThroughput(r),
    });
  }
  // (d) single-sign p50 ≤ 1.5 × Fastify hello p50
  if (M.seqHello) {
    const hello = M.seqHello.latencyMs.p50;
    for (const [key, label, id] of [
      ['seqFreshBig', 'a new wallet every request', 'd-fresh-ratio'],
      ['seqSetSmall', `wallets signing again (${r.config.fixedSetSize} wallets, derivation cached)`, 'd-cached-ratio'],
    ]) {
      if (!M[key]) continue;
      const ratio = M[key].latencyMs.p50 / hello;
      const f = repeated(id);
      t.push({
        id: `d-${key}`,
        name: `(d) single-sign round trip p50 ≤ 1.5 × Fastify hello p50 — ${label}`,
        measured: `${ms(M[key].latencyMs.p50)} ÷ ${ms(hello)} = ${n2(ratio)}${f ? ` (medians of ${f.values.length} runs; per round ${n2(f.min)} … ${n2(f.max)})` : ''}`,
        limit: '≤ 1.50',
        ok: ratio <= 1.5,
        why: () => whySingle(r, key),
      });
    }
  }
  // (e) p99 ≤ 5 ms at 50 % load
  for (const [key, label] of [
    ['halfLoad', 'autocannon overallRate (per-second bursts)'],
    ['halfLoadPaced', 'same rate, evenly paced'],
  ]) {
    if (!M[key]) continue;
    t.push({
      id: `e-${key}`,
      name: `(e) p99 at 50 % of (b) (${n0(M[key].overallRate)} req/s offered) ≤ 5 ms — ${label}`,
      measured: `p99 ${ms(M[key].latencyMs.p99)} (p50 ${ms(M[key].latencyMs.p50)}, ${n0(M[key].mainOkPerSecond)} /s served)`,
      limit: '≤ 5 ms',
      ok: M[key].latencyMs.p99 !== null && M[key].latencyMs.p99 <= 5 && non200(M[key]) === 0,
      why: () => whyHalf(r, key),
    });
  }
  // (f) 1M-wallet sign p50 within 20 % of the 1k-wallet one
  if (M.seqSetBig && M.seqSetSmall) {
    const ratio = M.seqSetBig.latencyMs.p50 / M.seqSetSmall.latencyMs.p50;
    t.push({
      id: 'f-p50',
      name: `(f) sign p50 with ${big} wallets within 20 % of the same with ${r.config.smallWallets.toLocaleString('en-US')} wallets`,
      measured: `${ms(M.seqSetBig.latencyMs.p50)} vs ${ms(M.seqSetSmall.latencyMs.p50)} = ${n3(ratio)}`,
      limit: '0.80 … 1.20',
      ok: Math.abs(ratio - 1) <= 0.2,
      why: () => whyScale(r),
    });
  }
  if (M.unseal?.length) {
    const worst = Math.max(...M.unseal.map((u) => u.unsealToReadyMs));
    t.push({
      id: 'f-unseal',
      name: `(f) unseal-to-ready with ${big} wallets ≤ 1 s (worst of ${M.unseal.length})`,
      measured: `${ms(worst)} (median ${ms(r.measurements.unsealToReadyMedianMs)})`,
      limit: '≤ 1000 ms',
      ok: worst <= 1000,
      why: () =>
        `Unseal itself answered in ${M.unseal.map((u) => ms(u.unsealResponseMs)).join(', ')}; the rest is /readyz (store ping). scrypt here is N = 2^10 (bench fixture); production's default N = 2^17 adds its own cost.`,
    });
  }
  if (M.rssAfterSeqBigBytes || M.rssAfterLoadBigBytes) {
    const worst = Math.max(M.rssAfterSeqBigBytes ?? 0, M.rssAfterLoadBigBytes ?? 0);
    t.push({
      id: 'f-rss',
      name: `(f) kernel RSS with ${big} wallets ≤ 512 MB (larger of: after the (f) run, after the (b)+(e) load)`,
      measured: `${mb(worst)} (after (f): ${mb(M.rssAfterSeqBigBytes)}, after load: ${mb(M.rssAfterLoadBigBytes)}, peak VmHWM ${mb(M.peakRssBigBytes)})`,
      limit: '≤ 512 MB (488.3 MiB)',
      ok: worst <= 512e6,
      why: () => {
        const k = M.metricsAfterLoadBig;
        return k
          ? `V8 heap used ${mb(k.heapUsedBytes)} of ${mb(k.heapTotalBytes)}, external ${mb(k.externalBytes)} (from /metrics); the derivation cache holds up to 100,000 wallets.`
          : 'no /metrics breakdown';
      },
    });
  }
  return t;
}

function non200(m) {
  return m.phases.main.answered - m.phases.main.ok + (m.phases.warm.answered - m.phases.warm.ok);
}

function topAreas(r, n = 6) {
  const p = r.measurements.profile;
  if (!p) return 'no CPU profile';
  return p.areas
    .slice(0, n)
    .map((a) => `${a.area} ${n1(a.pctOfBusy)} %`)
    .join(', ');
}

function topFns(r, n = 6) {
  const p = r.measurements.profile;
  if (!p) return '';
  return p.top
    .slice(0, n)
    .map((f) => `\`${f.fn}\` (${f.area}) ${n1(f.pctOfBusy)} %`)
    .join(', ');
}

function topInclusive(r, n = 6) {
  const p = r.measurements.profile;
  if (!p?.inclusive?.length) return '';
  return p.inclusive
    .slice(0, n)
    .map((f) => `\`${f.fn}\` (${f.where.replace(/^packages\//, '').replace('/dist/', '/')}) ${n1(f.pctOfBusy)} %`)
    .join(', ');
}

function commitText(c) {
  if (!c) return 'no /metrics';
  return `${n0(c.commits)} group commits of ${n1(c.meanBatch)} requests on average, ${ms(c.meanCommitMs)} each (BEGIN … the batch's TOTP checks, derivations, signatures and audit inserts … COMMIT), the batch runner busy ${pct(c.commitBusyShare)} of the time; commit-time p99 ≤ ${c.commitP99UpperBoundMs === null ? 'n/a' : `${c.commitP99UpperBoundMs} ms`} (histogram bucket)`;
}

function whyThroughput(r) {
  const b = r.measurements.loadSqlite;
  const prof = r.measurements.loadSqliteProfiled;
  const c = b.commits[0];
  const perReqMs = b.kernelCores[0] !== null ? (1000 * b.kernelCores[0]) / b.mainOkPerSecond : null;
  return [
    `The kernel process used ${n2(b.kernelCores[0])} cores during the run (${ms(perReqMs)} of CPU per signature, against ${ms(1000 / r.measurements.secp.signsPerSecond)} for the raw libsecp256k1 sign of (a)), the load generator ${n2(b.generatorCoresInMain ?? b.generatorCores)} cores, processes outside the bench ${n2(b.cpu.otherCores)} cores of the ${r.machine.cpuCount}${b.kernelCores[0] !== null && b.kernelCores[0] < 0.9 ? ' — the kernel did not get a whole core, so part of the shortfall is the shared machine' : ''}.`,
    `Group commit: ${commitText(c)}.`,
    prof
      ? `CPU profile of the same workload (profiled run: ${n0(prof.mainOkPerSecond)} /s, kernel ${n2(prof.kernelCores[0])} cores): self time by area ${topAreas(r)}; top functions by self time ${topFns(r)}; inclusive ${topInclusive(r)} (full tables below).`
      : '',
  ]
    .filter(Boolean)
    .join(' ');
}

function whySingle(r, key) {
  const s = r.measurements[key];
  const h = r.measurements.seqHello;
  const c = s.commits[0];
  const delta = s.latencyMs.p50 - h.latencyMs.p50;
  return [
    `A sign's p50 is ${n0(1000 * delta)} µs above the hello's (${ms(s.latencyMs.p50)} vs ${ms(h.latencyMs.p50)}).`,
    c
      ? `At one request at a time every sign is a group-commit batch of its own: ${commitText(c)}. That transaction (factor row read, TOTP decrypt + check, key derivation, ECDSA sign + public key, audit hash + insert, COMMIT with the WAL fsync) averages ${ms(c.meanCommitMs)} per sign; what is outside it — routing, body schema validation, API-key authentication (a SQLite read + hash per request), response serialisation — is what the hello also pays in part.`
      : '',
    `Background load during the two runs: ${n2(s.cpu.otherCores)} and ${n2(h.cpu.otherCores)} cores outside the bench.`,
    `CPU profile (under load): self time by area ${topAreas(r)}; inclusive ${topInclusive(r, 4)}.`,
  ]
    .filter(Boolean)
    .join(' ');
}

function whyHalf(r, key) {
  const e = r.measurements[key];
  const c = e.commits[0];
  const parts = [];
  if (non200(e) > 0) parts.push(`${n0(non200(e))} answers were not 200 (${JSON.stringify(e.phases.main.errorCodes)}).`);
  parts.push(`Group commit during the run: ${commitText(c)}.`);
  if (key === 'halfLoad') {
    parts.push(
      `autocannon's overallRate gives each of the ${e.connections} connections a per-second quota that it spends back-to-back at the start of every second, all connections in step: the kernel sees ${e.connections} concurrent requests (full load) for about half of each second and nothing for the rest, so this p99 is close to the full-load latency of (b) (p99 ${ms(r.measurements.loadSqlite.latencyMs.p99)}). The paced row sends the same rate evenly spread.`,
    );
  } else {
    parts.push(
      `Requests arrive evenly; latency above the single-request figure is queueing behind the batch being committed (a request that arrives during a commit waits for it and then for its own).`,
    );
  }
  parts.push(`Profile by area (full load): ${topAreas(r)}.`);
  return parts.join(' ');
}

function whyScale(r) {
  const big = r.measurements.seqSetBig;
  const small = r.measurements.seqSetSmall;
  const cb = big.commits[0];
  const cs = small.commits[0];
  const wallets = (n) => n.toLocaleString('en-US');
  return [
    `Mean per-sign transaction (from /metrics): ${ms(cb?.meanCommitMs)} with ${wallets(r.config.bigWallets)} wallets vs ${ms(cs?.meanCommitMs)} with ${wallets(r.config.smallWallets)}; p90 ${ms(big.latencyMs.p90)} vs ${ms(small.latencyMs.p90)}.`,
    `Background load during the two runs: ${n2(big.cpu.otherCores)} vs ${n2(small.cpu.otherCores)} cores outside the bench${Math.abs(big.cpu.otherCores - small.cpu.otherCores) > 0.2 ? ' — different enough to explain part of the gap; re-run on a quiet machine before reading much into it' : ''}.`,
    `The big fixture is a ${mb(r.measurements.fixtureBig?.dbBytes)} database (SQLite's own page cache is 2 MB by default, so factor rows spread over it are read through the OS page cache); the small one fits in SQLite's cache.`,
  ].join(' ');
}

/** "; median of 3 runs (round 2)" for a repeated measurement's row, nothing for a single run. */
function medianNote(M, key) {
  const runs = runsOf(M, key);
  if (runs.length < 2) return '';
  const m = M[key];
  return `; median of ${runs.length} runs${m?.round ? ` (round ${m.round})` : ''}, see run-to-run noise`;
}

/** The repeated figures of this run: every run's value, the median, the spread. */
function noiseSection(L, r) {
  const figures = repeatedFigures(r);
  if (figures.length === 0) return;
  L.push('### Run-to-run noise', '');
  const rounds = Math.max(...figures.map((f) => f.values.length));
  if (rounds < 2) {
    L.push(
      `(b) and (d) were measured once in this run (${r.repeat === undefined ? 'a results file from before `--repeat` existed' : '`--repeat 1`'}): no run-to-run noise is known. \`--repeat N\` measures them N times.`,
      '',
    );
    return;
  }
  L.push(
    `(b) and (d) were measured ${rounds} times in this run, in interleaved rounds (each round: (d) signs with a new wallet each on the ${r.config.bigWallets.toLocaleString('en-US')}-wallet kernel, (d) signs of cached wallets on a fresh ${r.config.smallWallets.toLocaleString('en-US')}-wallet fixture and kernel, the Fastify hello, then (b) on the big kernel). The targets and tables use the median run of each; the run-to-run noise is the runs' min – max range and half of it as a share of the median. For the ratio rows the median is the target's figure (median sign p50 ÷ median hello p50) and the runs are each round's sign p50 ÷ that round's hello p50.`,
    '',
  );
  L.push('| figure | median | every run (round 1, 2, …) | min – max | run-to-run noise | other cores per run |', '|---|---|---|---|---|---|');
  for (const f of figures) {
    const unit = (v) => inUnit(v, f.unit);
    L.push(
      `| ${f.label} | **${unit(f.median)}** | ${f.values.map(unit).join(', ')} | ${unit(f.min)} – ${unit(f.max)} | ± ${unit(f.halfRange)} (${noiseText(f)}) | ${f.otherCores.length ? f.otherCores.map(n2).join(', ') : ''} |`,
    );
  }
  L.push('');
}

/** "Compared with the baseline": (b) and each (d) figure of this run against an earlier run's. */
function baselineSection(L, r) {
  const base = r.baseline;
  const current = summarizeRun(r);
  const rows = compareRuns(base, current);
  const commit = (x) =>
    `commit ${x.commit ?? 'n/a'}${x.uncommittedFilesUnderPackages ? ` plus ${x.uncommittedFilesUnderPackages} uncommitted file(s) under packages/` : ''}`;
  // the CPU used outside the bench during each (b) run: a busier machine is slower, whatever the code
  const busy = (x) => {
    const cores = x.figures.find((f) => f.id === 'b')?.otherCores.filter((c) => c !== null) ?? [];
    return cores.length ? `; other processes used ${cores.map(n2).join(', ')} cores during its (b) runs` : '';
  };
  L.push('## Compared with the baseline', '');
  L.push(
    `- Baseline: \`${base.path}\`, ${commit(base)}, run ${base.startedAt ?? 'n/a'} by \`${base.command ?? 'n/a'}\`, ${base.repeat} run(s) of each figure${busy(base)}.`,
    `- This run: ${commit(current)}, run ${current.startedAt ?? 'n/a'}, ${current.repeat} run(s) of each figure${busy(current)}.`,
  );
  const warnings = comparabilityWarnings(base, current);
  if (warnings.length) L.push(`- Read with care: ${warnings.join('; ')}.`);
  L.push('');
  L.push(
    '| figure | baseline median | baseline min – max (noise) | this run median | this run min – max (noise) | difference | allowed (larger half-range) | verdict |',
    '|---|---|---|---|---|---|---|---|',
  );
  for (const row of rows) {
    const unit = (v) => inUnit(v, row.unit);
    const side = (f) => (f ? `${unit(f.min)} – ${unit(f.max)} (${noiseText(f)})` : 'n/a');
    const verdict = row.reference ? 'reference (no Custos code)' : row.ok === null ? 'n/a (not in both runs)' : row.ok ? 'no worse within noise' : '**WORSE**';
    L.push(
      `| ${row.label} | ${unit(row.base?.median)} | ${side(row.base)} | ${unit(row.current.median)} | ${side(row.current)} | ${signed(row.difference, unit)} (${signed(row.differencePct === null ? null : 100 * row.differencePct, n1)} %) | ${unit(row.tolerance)} | ${verdict} |`,
    );
  }
  L.push('');
  const judged = rows.filter((row) => !row.reference);
  const worse = judged.filter((row) => row.ok === false);
  const unknown = judged.filter((row) => row.ok === null);
  if (worse.length) L.push(`**WORSE than the baseline beyond the noise:** ${worse.map((row) => row.label).join('; ')}.`);
  else
    L.push(
      `**(b) and (d) no worse than the baseline within the run-to-run noise**${unknown.length ? ` (not compared: ${unknown.map((row) => row.label).join('; ')})` : ''}.`,
    );
  L.push(
    '',
    "A rate is no worse when this run's median is at least the baseline's median minus the larger of the two runs' half-ranges; a latency or a ratio, when it is at most the baseline's median plus it. The hello runs no Custos code: it shows how fast the machine was in each run. A sign p50 that is WORSE while its ratio to the hello is not means the whole machine was slower in this run.",
    '',
  );
}

function latencyRow(label, m, extra = '') {
  if (!m) return `| ${label} | not measured | | | | | | |`;
  const l = m.latencyMs;
  return `| ${label} | ${n0(l.count)} | ${ms(l.p50)} | ${ms(l.p90)} | ${ms(l.p99)} | ${ms(l.max)} | ${n0(non200(m))} | ${extra} |`;
}

function loadRow(label, m) {
  if (!m) return `| ${label} | not measured | | | | | | | | | |`;
  const kernels = m.kernelCores.map((c) => n2(c)).join(' + ');
  const c = m.commits.filter(Boolean);
  const batch = c.length ? c.map((x) => n1(x.meanBatch)).join(' / ') : 'n/a';
  const commitMs = c.length ? c.map((x) => n3(x.meanCommitMs)).join(' / ') : 'n/a';
  return `| ${label} | **${n0(m.mainOkPerSecond)}** | ${n0(m.phases.main.ok)} in ${n1(m.mainSeconds)} s | ${ms(m.latencyMs.p50)} | ${ms(m.latencyMs.p99)} | ${n0(non200(m))}${non200(m) ? ` ${JSON.stringify({ ...m.phases.warm.errorCodes, ...m.phases.main.errorCodes })}` : ''} | ${kernels} | ${n2(m.generatorCoresInMain)} | ${n2(m.cpu.otherCores)} | ${batch} | ${commitMs} |`;
}

export function writeReport(path, r) {
  const M = r.measurements;
  const targets = evaluateTargets(r);
  r.targets = targets.map(({ why, ...t }) => ({ ...t, why: t.ok === false ? why() : undefined }));
  const L = [];
  const big = r.config.bigWallets.toLocaleString('en-US');
  L.push('# Custos benchmark results', '');
  L.push(
    `Generated by \`${r.invokedAs ?? r.command}\` (\`${r.command}\`) on ${r.startedAt} (finished ${r.finishedAt}, ${n0(r.totalSeconds)} s). This file is overwritten by every run; raw numbers are in \`bench/out/results.json\`.`,
    '',
  );
  if (r.quick) L.push(`> **Quick mode** (\`--quick\`): short durations and ${big} instead of 1,000,000 wallets. A try-out, not a result.`, '');
  if (r.errors.length) {
    L.push('> **Errors during this run** — the numbers below are incomplete or suspect:', '');
    for (const e of r.errors) L.push(`> - ${e.split('\n')[0]}`);
    L.push('');
  }

  L.push('## Machine', '');
  L.push(
    `- CPU: ${r.machine.cpuModel}, ${r.machine.cpuCount} logical CPUs (os.cpus()); memory ${n1(r.machine.totalMemBytes / 1024 ** 3)} GiB (os.totalmem()); ${r.machine.platform}; Node ${r.machine.node}.`,
  );
  L.push(`- Load average (1/5/15 min) at start: ${r.loadavgStart.join(' / ')}; at end: ${(r.loadavgEnd ?? []).join(' / ')}.`);
  L.push(
    `- Code measured: commit ${r.git.commit ?? 'n/a'}${r.git.uncommittedFilesUnderPackages ? ` plus ${r.git.uncommittedFilesUnderPackages} uncommitted file(s) under packages/ (the tree is edited concurrently)` : ''}; built with \`tsc -b\` ${r.steps.find((s) => s.step === 'tsc -b') ? 'at the start of the run' : 'before the run (--no-build)'}.`,
  );
  L.push(
    `- CPU pinning: ${r.pinned ? 'SQLite kernel, hello and (a) on CPU 0, load generator on CPU 1 (taskset); the PostgreSQL runs are not pinned' : 'none (the scheduler places processes; the machine is shared, see "other cores")'}.`,
  );
  if (M.postgresSettings)
    L.push(
      `- PostgreSQL (127.0.0.1:5432): ${Object.entries(M.postgresSettings)
        .map(([k, v]) => `${k}=${v}`)
        .join(', ')}.`,
    );
  if (r.background?.length) {
    L.push(
      `- The machine is shared: the busiest other processes over 1 s at start: ${r.background.map((p) => `${p.cores} cores \`${p.cmd.slice(0, 80)}\``).join('; ')}. Each measurement below reports the CPU used by processes outside the bench during it ("other cores").`,
    );
  }
  L.push('');

  // every load run, each repeated round included (a median run is also one of the rounds: by label)
  const byLabel = new Map();
  for (const m of [...Object.values(M), ...Object.values(M.repeated ?? {}).flat()])
    if (m && typeof m === 'object' && m.cpu && m.phases) byLabel.set(m.label, m);
  const runs = [...byLabel];
  const noisy = runs.filter(([, m]) => m.cpu.otherCores > 0.25).map(([k, m]) => `${m.label ?? k} ${n2(m.cpu.otherCores)}`);
  L.push('## Targets', '');
  if (noisy.length) {
    L.push(
      `> Background load: processes outside the bench used more than 0.25 of the ${r.machine.cpuCount} cores during ${noisy.length} of ${runs.length} runs (${noisy.join(', ')} cores). Those runs are slower than on a quiet machine; re-run when the machine is idle for cleaner figures.`,
      '',
    );
  }
  L.push('| target | measured | limit | verdict |', '|---|---|---|---|');
  for (const t of targets) L.push(`| ${t.name} | ${t.measured} | ${t.limit} | ${verdict(t.ok)} |`);
  if (targets.length === 0) L.push('| (nothing measured) | | | |');
  L.push('');
  noiseSection(L, r);
  const misses = targets.filter((t) => t.ok === false);
  if (misses.length) {
    L.push('### Where the time goes (each MISS)', '');
    for (const t of misses) L.push(`- **${t.name}** — ${t.why()}`, '');
  }
  if (r.baseline) baselineSection(L, r);

  L.push('## Measurements', '');
  if (M.secp)
    L.push(
      `**(a) libsecp256k1, one core:** ${n0(M.secp.signsPerSecond)} signs/s (${n0(M.secp.signs)} \`ecdsaSign(msg32, key32)\` calls in ${n3(M.secp.seconds)} s, a different message each call, one process; other cores busy meanwhile: ${n2(M.secp.cpu?.otherCores)}).`,
      '',
    );

  L.push(
    '**(b), (c) Durable, TOTP-gated, audited signs over HTTP** — 64 connections, pipelining 1, each request a different wallet with a fresh valid code; rate = HTTP 200s in the measured phase ÷ its length; latency of the 200s.',
    '',
  );
  L.push(
    '| setup | signs/s | 200s | p50 | p99 | non-200 | kernel cores | generator cores | other cores | mean batch | mean batch ms |',
    '|---|---|---|---|---|---|---|---|---|---|---|',
  );
  L.push(loadRow(`(b) SQLite, 1 kernel process, ${big} wallets${medianNote(M, 'loadSqlite')}`, M.loadSqlite));
  L.push(loadRow('(b) same, under `--cpu-prof` (for the profile only)', M.loadSqliteProfiled));
  L.push(loadRow(`(c) PostgreSQL, 1 replica, ${n0(r.config.pgWallets)} wallets`, M.loadPg1));
  L.push(loadRow('(c) PostgreSQL, 2 replicas on one schema (load split across both)', M.loadPg2));
  L.push('');
  if (M.loadSqlite?.wallets) {
    const w = M.loadSqlite.wallets;
    L.push(
      `Wallet use in (b): ${n0(w.walletsUsed)} wallets, at most ${w.maxUsesSeen} use(s) each, codes by step relative to the current one: ${JSON.stringify(w.steps)}; ${n0(w.exhausted)} requests found no usable wallet.`,
      '',
    );
  }

  L.push(
    '**(d), (f) Round trip at low load** — one connection, one request at a time; latency measured by autocannon from the write of the request to the last byte of the answer.',
    '',
  );
  L.push('| what | requests measured | p50 | p90 | p99 | max | non-200 | notes |', '|---|---|---|---|---|---|---|---|');
  L.push(
    latencyRow('Fastify hello `{hello:"world"}`, own process', M.seqHello, `after ${r.config.seq.helloWarmup} warm-up requests${medianNote(M, 'seqHello')}`),
  );
  L.push(
    latencyRow(
      `sign, a new wallet every request (${big}-wallet fixture)`,
      M.seqFreshBig,
      `after ${r.config.seq.freshWarmup} warm-up signs${medianNote(M, 'seqFreshBig')}`,
    ),
  );
  L.push(
    latencyRow(
      `sign, ${r.config.fixedSetSize} wallets spread over the ${big}-wallet fixture, 2nd and 3rd code of each`,
      M.seqSetBig,
      'first pass (step t−1) = warm-up; measured: steps t, t+1',
    ),
  );
  L.push(
    latencyRow(
      `sign, the ${r.config.smallWallets.toLocaleString('en-US')}-wallet fixture, 2nd and 3rd code of each`,
      M.seqSetSmall,
      `same pattern, fresh kernel process${medianNote(M, 'seqSetSmall')}`,
    ),
  );
  L.push('');

  L.push("**(e) Latency at 50 % of (b)'s throughput** — the (b) workload (64 connections) with the offered rate capped at half of (b)'s measured rate.", '');
  L.push('| offered load | served /s | p50 | p90 | p99 | max | non-200 |', '|---|---|---|---|---|---|---|');
  for (const [key, label] of [
    ['halfLoad', 'autocannon `overallRate`'],
    ['halfLoadPaced', 'same rate, evenly paced (setupClient hook)'],
  ]) {
    const m = M[key];
    if (!m) L.push(`| ${label} | not measured | | | | | |`);
    else
      L.push(
        `| ${label}: ${n0(m.overallRate)} req/s | ${n0(m.mainOkPerSecond)} | ${ms(m.latencyMs.p50)} | ${ms(m.latencyMs.p90)} | ${ms(m.latencyMs.p99)} | ${ms(m.latencyMs.max)} | ${n0(non200(m))} |`,
      );
  }
  L.push('');

  L.push(`**(f) Scale: ${big} enrolled wallets (SQLite)**`, '');
  if (M.fixtureBig)
    L.push(
      `- Fixture: ${n0(M.fixtureBig.rows)} wallets + TOTP factors written in ${n1(M.fixtureBig.seconds)} s (prepared statements, one transaction per 50,000 rows, secrets sealed by encryptRecord in worker threads); database ${mb(M.fixtureBig.dbBytes)}.`,
    );
  if (M.unseal?.length)
    L.push(
      `- Unseal-to-ready (POST /v1/sys/unseal sent → GET /readyz answers 200): ${M.unseal.map((u) => ms(u.unsealToReadyMs)).join(', ')} (unseal answered after ${M.unseal.map((u) => ms(u.unsealResponseMs)).join(', ')}); scrypt N = 2^10 as initialised here.`,
    );
  L.push(
    `- Kernel RSS (VmRSS): ${mb(M.rssAfterSeqBigBytes)} after the (f) sequential runs, ${mb(M.rssAfterLoadBigBytes)} after the (b) and (e) load, peak (VmHWM) ${mb(M.peakRssBigBytes)}; the ${r.config.smallWallets.toLocaleString('en-US')}-wallet kernel: ${mb(M.rssSmallBytes)}.`,
  );
  if (M.fixturePg)
    L.push(
      `- PostgreSQL fixture: ${n0(M.fixturePg.rows)} wallets in ${n1(M.fixturePg.seconds)} s (multi-row INSERT … SELECT unnest(…), one transaction per 50,000 rows).`,
    );
  L.push('');

  L.push(
    '**Durability check** — `sign.hash` audit records with decision `allowed` added during each run (counted in the database after the run) against the HTTP 200s the load generator counted (warm-up included):',
    '',
  );
  L.push('| run | 200s counted | allowed records | denied records | non-200 answers | equal |', '|---|---|---|---|---|---|');
  for (const a of M.audit ?? [])
    L.push(`| ${a.label} | ${n0(a.okCounted)} | ${n0(a.allowedRecords)} | ${n0(a.deniedRecords)} | ${n0(a.non200Answered)} | ${a.match ? 'yes' : '**NO**'} |`);
  L.push('');
  for (const [key, label] of [
    ['auditVerifySqlite', 'SQLite fixture'],
    ['auditVerifyPg', 'PostgreSQL schema'],
  ]) {
    if (M[key]) L.push(`- \`custos audit verify\` on the ${label} after the runs: exit ${M[key].code}, “${M[key].output}” (${n1(M[key].seconds)} s).`);
  }
  L.push('');

  if (M.profile) {
    const p = M.profile;
    L.push("## CPU profile of the kernel under (b)'s workload", '');
    L.push(
      `\`${r.profiledKernelCommand ?? 'node --cpu-prof …'}\`; ${p.window} (${n1(p.totalMs / 1000)} s, ${n0(p.samples)} samples), idle ${pct(p.idleMs / p.totalMs)}; percentages are of the busy (non-idle) time. File: \`${p.file}\` (open it in Chrome DevTools or speedscope for the call tree).`,
      '',
    );
    L.push('| area | self time | share |', '|---|---|---|');
    for (const a of p.areas.slice(0, 14)) L.push(`| ${a.area} | ${n0(a.selfMs)} ms | ${n1(a.pctOfBusy)} % |`);
    L.push('');
    L.push('| function (self time) | where | area | self time | share |', '|---|---|---|---|---|');
    for (const f of p.top) L.push(`| \`${f.fn}\` | ${f.where} | ${f.area} | ${n0(f.selfMs)} ms | ${n1(f.pctOfBusy)} % |`);
    L.push('');
    if (p.inclusive?.length) {
      L.push(
        "Inclusive time of the kernel's and server's own functions (self + callees on the same synchronous stack; work after an `await` is counted under the function that resumes it, e.g. the group-commit flush):",
        '',
        '| function (inclusive) | where | time | share |',
        '|---|---|---|---|',
      );
      for (const f of p.inclusive) L.push(`| \`${f.fn}\` | ${f.where} | ${n0(f.inclusiveMs)} ms | ${n1(f.pctOfBusy)} % |`);
      L.push('');
    }
  }

  L.push('## Method', '');
  L.push(
    `- Kernel: \`${r.kernelCommand ?? 'custos serve …'}\` (the real CLI, one process; the sealed start is unsealed over HTTP for (f)). Signers are made with \`custos init --scrypt-log-n 10 --mnemonic-file …\` and \`custos apikey create --scopes register,derive,sign\`.`,
    '- Fixture: wallets `bw00000000…` are written straight into the store (the rows `Kernel.enrollTotp` writes: `wallets` + `totp_factors` with `secret_envelope = encryptRecord(barrierKey, "totp:" + name, secret, random)`, the barrier key from `unsealRoot` + `decodeRootKeyring`); each secret is HMAC-SHA1(bench key, wallet name), so the load generator computes codes without a table. No `totp.enroll` audit records are written for them.',
    '- Load: autocannon 8 (programmatic API) in a separate process; each request is built in `setupRequest` with the next wallet (round-robin, so consecutive requests use different wallets) and the code of the smallest step the wallet has not used that the server will still accept on arrival (t−1, then t, then t+1; at most 3 uses a wallet). Time-based runs end with a short tail of GET /healthz so that no sign request is cut off: every answered sign is counted, and the audit log must match exactly.',
    "- Throughput: HTTP 200s in the measured phase (after the warm-up) ÷ its duration. Latency: autocannon's per-request time (write → last byte) of the 200s, percentiles by nearest rank.",
    '- "kernel cores", "other cores": CPU time of the kernel process(es) and of everything outside the bench (from /proc; PostgreSQL\'s backends count as "other") ÷ wall time of the run; "generator cores": the load generator\'s own CPU during the measured phase. "mean batch", "mean batch ms": group-commit transactions from the kernel\'s /metrics (`custos_commit_batch_size`, `custos_audit_commit_duration_seconds`) between the start and end of the run.',
    '- The CPU profile comes from a separate kernel process running the (b) workload under `node --cpu-prof` (stopped with SIGINT so that the profile is written); the (b) figure itself is measured without the profiler.',
    '- All traffic is on 127.0.0.1; every process the bench starts is stopped at its end (also on failure or Ctrl-C); PostgreSQL schemas `bench_*` it creates are dropped.',
  );
  L.push('');
  writeFileSync(path, `${L.join('\n')}\n`);
}
