// Summarises a V8 .cpuprofile (node --cpu-prof): self time per function and per area (kernel,
// server, each node_modules package, node internals, GC, idle), from samples × timeDeltas.
import { readFileSync } from 'node:fs';

const ROOT_MARKERS = ['/packages/', '/node_modules/'];

/** Where a script lives, for grouping: 'kernel', 'server', 'cli', 'npm:<pkg>', 'node:<internal>', '(native)'... */
export function areaOf(url, functionName) {
  if (functionName === '(garbage collector)') return 'GC';
  if (functionName === '(idle)') return 'idle';
  if (functionName === '(program)') return '(program: native, not attributed)';
  if (functionName === '(root)') return '(root)';
  if (!url) return '(native / builtins)';
  if (url.startsWith('node:')) return `node:${url.slice(5).split('/')[0]}`;
  const path = url.replace(/^file:\/\//, '');
  const nm = path.lastIndexOf('/node_modules/');
  if (nm >= 0) {
    const rest = path.slice(nm + '/node_modules/'.length).split('/');
    const pkg = rest[0].startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0];
    if (pkg.startsWith('@custos/')) return pkg.slice('@custos/'.length);
    return `npm:${pkg}`;
  }
  const pk = path.indexOf('/packages/');
  if (pk >= 0) return path.slice(pk + '/packages/'.length).split('/')[0];
  return path;
}

function shortUrl(url) {
  if (!url) return '';
  const path = url.replace(/^file:\/\//, '');
  for (const marker of ROOT_MARKERS) {
    const i = path.lastIndexOf(marker);
    if (i >= 0) return path.slice(i + 1);
  }
  return path;
}

/**
 * Self time per function and per area, and inclusive time of the project's own functions, of the
 * samples taken in [fromUs, toUs] (CLOCK_MONOTONIC µs, the clock of process.hrtime; whole profile
 * when not given). Shares are of the busy (non-idle) time.
 */
export function summarizeProfile(path, { top = 25, fromUs, toUs } = {}) {
  const profile = JSON.parse(readFileSync(path, 'utf8'));
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const { samples, timeDeltas } = profile;
  const from = fromUs ?? -Infinity;
  const to = toUs ?? Infinity;
  const self = new Map();
  let total = 0;
  let counted = 0;
  let t = profile.startTime;
  const stamps = new Float64Array(samples.length);
  for (let i = 0; i < samples.length; i++) {
    t += timeDeltas[i];
    stamps[i] = t;
  }
  const inclusive = new Map();
  for (let i = 0; i < samples.length; i++) {
    if (stamps[i] < from || stamps[i] > to) continue;
    // the time until the next sample is attributed to this one (as DevTools does)
    const dt = i + 1 < samples.length ? (stamps[i + 1] - stamps[i]) / 1000 : 0;
    total += dt;
    counted += 1;
    self.set(samples[i], (self.get(samples[i]) ?? 0) + dt);
    // inclusive: every distinct function on the stack of this sample
    const seen = new Set();
    for (let id = samples[i]; id !== undefined; id = parent.get(id)) {
      const { callFrame } = byId.get(id);
      const area = areaOf(callFrame.url, callFrame.functionName);
      if (!['kernel', 'server', 'cli'].includes(area)) continue;
      const key = `${callFrame.functionName || '(anonymous)'}\u0000${shortUrl(callFrame.url)}:${callFrame.lineNumber + 1}`;
      if (seen.has(key)) continue;
      seen.add(key);
      inclusive.set(key, (inclusive.get(key) ?? 0) + dt);
    }
  }
  const perFn = new Map();
  const perArea = new Map();
  let idle = 0;
  for (const [id, ms] of self) {
    const { callFrame } = byId.get(id);
    const fn = callFrame.functionName || '(anonymous)';
    const area = areaOf(callFrame.url, callFrame.functionName);
    if (area === 'idle') idle += ms;
    const where = callFrame.url ? `${shortUrl(callFrame.url)}:${callFrame.lineNumber + 1}` : '';
    const key = `${fn}\u0000${where}`;
    const entry = perFn.get(key) ?? { fn, where, area, selfMs: 0 };
    entry.selfMs += ms;
    perFn.set(key, entry);
    perArea.set(area, (perArea.get(area) ?? 0) + ms);
  }
  const busy = total - idle;
  const pctOf = (ms) => (busy > 0 ? (100 * ms) / busy : 0);
  return {
    file: path,
    window: fromUs === undefined ? 'whole profile' : 'measured phase only',
    totalMs: total,
    idleMs: idle,
    busyMs: busy,
    samples: counted,
    top: [...perFn.values()]
      .filter((e) => e.area !== 'idle')
      .sort((a, b) => b.selfMs - a.selfMs)
      .slice(0, top)
      .map((e) => ({ ...e, pctOfBusy: pctOf(e.selfMs) })),
    areas: [...perArea.entries()]
      .filter(([area]) => area !== 'idle')
      .sort((a, b) => b[1] - a[1])
      .map(([area, ms]) => ({ area, selfMs: ms, pctOfBusy: pctOf(ms) })),
    inclusive: [...inclusive.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, 20)
      .map(([key, ms]) => {
        const [fn, where] = key.split('\u0000');
        return { fn, where, inclusiveMs: ms, pctOfBusy: pctOf(ms) };
      }),
  };
}
