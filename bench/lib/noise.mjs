// The figures the bench measures several times in one run ((b) and (d)), their run-to-run noise,
// and their comparison with the same figures of an earlier run (`--baseline`).
import { readFileSync } from 'node:fs';
import { median } from './stats.mjs';

const p50 = (m) => m.latencyMs?.p50 ?? null;

/** The repeated measurements: key in `measurements`, what it is, and the figure taken from one run. */
const SERIES = [
  { id: 'b', key: 'loadSqlite', label: '(b) durable TOTP-gated signs/s on SQLite', unit: '/s', better: 'higher', value: (m) => m.mainOkPerSecond ?? null },
  { id: 'd-fresh', key: 'seqFreshBig', label: '(d) sign p50, a new wallet every request', unit: 'ms', better: 'lower', value: p50 },
  { id: 'd-cached', key: 'seqSetSmall', label: '(d) sign p50, wallets signing again (derivation cached)', unit: 'ms', better: 'lower', value: p50 },
  {
    id: 'd-hello',
    key: 'seqHello',
    label: '(d) Fastify hello p50 (what both (d) rows are divided by)',
    unit: 'ms',
    better: 'lower',
    value: p50,
    reference: true,
  },
];

/** The (d) targets: a sign p50 ÷ the hello p50, per round for the spread, medians ÷ median for the figure. */
const RATIOS = [
  { id: 'd-fresh-ratio', of: 'd-fresh', label: '(d) new wallet: sign p50 ÷ hello p50', unit: '×', better: 'lower' },
  { id: 'd-cached-ratio', of: 'd-cached', label: '(d) cached wallets: sign p50 ÷ hello p50', unit: '×', better: 'lower' },
];

/** The runs of one repeated measurement, in round order; a results file without repeats has one. */
export function runsOf(measurements, key) {
  const runs = measurements.repeated?.[key];
  if (Array.isArray(runs) && runs.length > 0) return runs;
  return measurements[key] ? [measurements[key]] : [];
}

/** {median, min, max, halfRange, halfRangePct} of some values (null when there are none). */
export function spreadOf(values, mid = median(values)) {
  if (values.length === 0 || mid === null) return { median: null, min: null, max: null, halfRange: null, halfRangePct: null };
  const min = Math.min(...values);
  const max = Math.max(...values);
  const halfRange = (max - min) / 2;
  return { median: mid, min, max, halfRange, halfRangePct: mid === 0 ? null : halfRange / mid };
}

/**
 * The repeated figures of a results object: for each, {id, label, unit, better, reference?, values
 * (one a run, in round order), otherCores (per run), median, min, max, halfRange, halfRangePct}.
 * The median is the figure the targets use.
 */
export function repeatedFigures(results) {
  const M = results.measurements ?? {};
  const figures = [];
  const byId = new Map();
  for (const s of SERIES) {
    const runs = runsOf(M, s.key).filter((m) => s.value(m) !== null);
    if (runs.length === 0) continue;
    const values = runs.map(s.value);
    const f = {
      id: s.id,
      label: s.label,
      unit: s.unit,
      better: s.better,
      reference: s.reference ?? false,
      values,
      otherCores: runs.map((m) => m.cpu?.otherCores ?? null),
      ...spreadOf(values),
    };
    figures.push(f);
    byId.set(s.id, f);
  }
  const hello = byId.get('d-hello');
  for (const q of RATIOS) {
    const sign = byId.get(q.of);
    if (!sign || !hello) continue;
    const rounds = Math.min(sign.values.length, hello.values.length);
    const values = [];
    for (let i = 0; i < rounds; i++) values.push(sign.values[i] / hello.values[i]);
    figures.push({
      id: q.id,
      label: q.label,
      unit: q.unit,
      better: q.better,
      reference: false,
      perRound: true,
      values,
      otherCores: [],
      ...spreadOf(values, sign.median / hello.median),
    });
  }
  return figures;
}

/** What a comparison needs of a run: its commit, when, how, and its repeated figures. */
export function summarizeRun(results, path) {
  return {
    path: path ?? null,
    commit: results.git?.commit ?? null,
    uncommittedFilesUnderPackages: results.git?.uncommittedFilesUnderPackages ?? null,
    startedAt: results.startedAt ?? null,
    command: results.invokedAs ?? results.command ?? null,
    quick: results.quick ?? false,
    pinned: results.pinned ?? false,
    repeat: results.repeat ?? 1,
    seqCount: results.config?.seq?.count ?? null,
    loadDurationMs: results.config?.load?.durationMs ?? null,
    bigWallets: results.config?.bigWallets ?? null,
    cpuModel: results.machine?.cpuModel ?? null,
    figures: repeatedFigures(results),
  };
}

/** Reads an earlier bench/out/results.json for `--baseline`; throws a message that names the file. */
export function readBaseline(path, shownAs = path) {
  let parsed;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new Error(`--baseline ${shownAs}: cannot read it as JSON (${error.message})`);
  }
  if (!parsed || typeof parsed !== 'object' || !parsed.measurements) throw new Error(`--baseline ${shownAs}: not a bench results.json (no "measurements")`);
  const summary = summarizeRun(parsed, shownAs);
  if (summary.figures.length === 0) throw new Error(`--baseline ${shownAs}: holds none of the (b) or (d) figures`);
  return summary;
}

/**
 * This run against the baseline, figure by figure: {id, label, unit, better, reference, base,
 * current, difference, differencePct, tolerance, ok}. No worse within noise: a rate at least the
 * baseline's median minus the larger of the two half-ranges; a latency (or ratio) at most the
 * baseline's median plus it. `ok` is null for the reference figure and where either side is missing.
 */
export function compareRuns(baseline, current) {
  const rows = [];
  for (const cur of current.figures) {
    const base = baseline.figures.find((f) => f.id === cur.id);
    if (!base || base.median === null || cur.median === null) {
      rows.push({ ...pick(cur), base: base ?? null, current: cur, difference: null, differencePct: null, tolerance: null, ok: null });
      continue;
    }
    const tolerance = Math.max(base.halfRange ?? 0, cur.halfRange ?? 0);
    const difference = cur.median - base.median;
    const ok = cur.reference ? null : cur.better === 'higher' ? cur.median >= base.median - tolerance : cur.median <= base.median + tolerance;
    rows.push({ ...pick(cur), base, current: cur, difference, differencePct: base.median === 0 ? null : difference / base.median, tolerance, ok });
  }
  return rows;
}

function pick(f) {
  return { id: f.id, label: f.label, unit: f.unit, better: f.better, reference: f.reference };
}

/** Why two runs may not be comparable (different mode, durations, fixture size, machine, pinning). */
export function comparabilityWarnings(baseline, current) {
  const w = [];
  if (baseline.quick !== current.quick) w.push(`one run is \`--quick\` and the other is not (${baseline.quick ? 'the baseline' : 'this run'} is quick)`);
  if (baseline.pinned !== current.pinned) w.push('one run is `--pin`ned and the other is not');
  if (baseline.seqCount !== current.seqCount) w.push(`sequential runs of ${baseline.seqCount} vs ${current.seqCount} requests`);
  if (baseline.loadDurationMs !== current.loadDurationMs) w.push(`(b) measured for ${baseline.loadDurationMs} vs ${current.loadDurationMs} ms`);
  if (baseline.bigWallets !== current.bigWallets) w.push(`${baseline.bigWallets} vs ${current.bigWallets} wallets in the big fixture`);
  if (baseline.cpuModel !== current.cpuModel) w.push(`different CPUs (${baseline.cpuModel} vs ${current.cpuModel})`);
  if (baseline.repeat < 2) w.push('the baseline measured each figure once, so only this run’s noise is known');
  if (current.repeat < 2) w.push('this run measured each figure once, so only the baseline’s noise is known');
  return w;
}
