// The load generator: autocannon's programmatic API in a process of its own, driven over IPC.
// It receives one job, runs it and replies {ok, result}.
//
// Job kinds:
//   sign  POST /v1/sign/hash, each request built in setupRequest with the next wallet and a fresh
//         valid TOTP code for it (steps t−1, t, t+1 in that order, never reused).
//   get   GET of a fixed path (the Fastify hello).
// Phases: time-based (warmupMs, durationMs, then a short tail of GET /healthz so that no sign
// request is in flight when autocannon tears its connections down — every sign answered is
// counted, and the audit log can be compared with the 200s exactly), or count-based
// (warmupCount, count; autocannon `amount`, which waits for every answer).
import { randomBytes } from 'node:crypto';
import autocannon from 'autocannon';
import { summarize } from '../lib/stats.mjs';
import { hotp, stepAt, totpSecret, walletName } from '../lib/totp.mjs';

// One job, one reply; then the process waits to be stopped (so that the bench can still read its
// CPU time), and leaves by itself if the bench goes away.
process.on('message', (job) => {
  run(job).then(
    (result) => process.send({ ok: true, result }),
    (error) => process.send({ ok: false, error: error?.stack ?? String(error) }),
  );
});
process.on('disconnect', () => process.exit(0));

/**
 * Wallet picker over a set of bench wallets {start, count, stride}: each use takes the smallest
 * step above the wallet's last one that the server will still accept when the request arrives
 * (≥ step(now + marginMs) − 1, ≤ step(now) + 1), at most `maxUses` uses per wallet; wallets are
 * visited round-robin so consecutive requests use different wallets. Indices ≡ skipMod − 1 are
 * skipped (reserved for another job).
 */
function walletPicker({ start, count, stride = 1, skipMod, maxUses = 3, marginMs }) {
  const last = new Float64Array(count).fill(-1);
  const uses = new Uint8Array(count);
  let cursor = 0;
  const stats = { picked: 0, exhausted: 0, walletsUsed: 0, maxUsesSeen: 0, steps: {} };
  return {
    stats,
    next(now) {
      const lo = stepAt(now + marginMs) - 1;
      const hi = stepAt(now) + 1;
      for (let scanned = 0; scanned < count; scanned++) {
        const j = cursor;
        cursor = cursor + 1 === count ? 0 : cursor + 1;
        if (uses[j] >= maxUses) continue;
        // every skipMod-th wallet (index ≡ skipMod − 1) is reserved for another job
        if (skipMod && (start + j * stride) % skipMod === skipMod - 1) continue;
        const step = Math.max(last[j] + 1, lo);
        if (step > hi) continue;
        if (uses[j] === 0) stats.walletsUsed += 1;
        last[j] = step;
        uses[j] += 1;
        if (uses[j] > stats.maxUsesSeen) stats.maxUsesSeen = uses[j];
        const rel = step - stepAt(now);
        stats.steps[rel] = (stats.steps[rel] ?? 0) + 1;
        stats.picked += 1;
        return { index: start + j * stride, step };
      }
      // Nothing usable: the run outgrew its wallet set. Send a request that will be refused
      // (counted as non-200, never hidden).
      stats.exhausted += 1;
      return { index: start, step: lo - 5 };
    },
  };
}

// Hashes to sign: 32 random bytes each, drawn 64 KiB at a time (one randomBytes call per
// request would cost more than the rest of building it).
let hashPool = randomBytes(65536);
let hashAt = 0;
function nextHash() {
  if (hashAt + 32 > hashPool.length) {
    hashPool = randomBytes(65536);
    hashAt = 0;
  }
  hashAt += 32;
  return hashPool.toString('hex', hashAt - 32, hashAt);
}

/** Longest wait, after the measured phase, for the last sign requests to be answered. */
const TAIL_LIMIT_MS = 45_000;

function emptyPhase() {
  return { sent: 0, answered: 0, ok: 0, status: {}, errorCodes: {}, latencies: [] };
}

async function run(job) {
  const benchKey = job.benchKey === undefined ? undefined : Buffer.from(job.benchKey, 'hex');
  const phases = { warm: emptyPhase(), main: emptyPhase(), tail: emptyPhase() };
  const picker = job.kind === 'sign' ? walletPicker({ ...job.wallets, marginMs: job.marginMs ?? 1_000 }) : undefined;
  const timed = job.count === undefined;
  let built = 0;
  let t0 = 0;
  let mainStartedAt = null;
  let mainEndedAt = null;
  // CLOCK_MONOTONIC µs, the clock of V8's CPU profiles: to cut the kernel's profile to this phase
  let mainStartHrUs = null;
  let mainEndHrUs = null;
  // this process's own CPU use during the measured phase
  let mainCpuStart;
  let mainCpu = null;

  function phaseOfNextRequest() {
    if (timed) {
      const t = performance.now() - t0;
      if (t < job.warmupMs) return 'warm';
      if (t < job.warmupMs + job.durationMs) return 'main';
      return 'tail';
    }
    return built < (job.warmupCount ?? 0) ? 'warm' : 'main';
  }

  const headers = { 'content-type': 'application/json' };
  if (job.apiKey !== undefined) headers.authorization = `Bearer ${job.apiKey}`;
  const healthHeaders = {};

  const request = {
    method: job.kind === 'sign' ? 'POST' : 'GET',
    path: job.kind === 'sign' ? '/v1/sign/hash' : job.path,
    headers: job.kind === 'sign' ? headers : {},
    setupRequest(req, context) {
      const phase = phaseOfNextRequest();
      built += 1;
      context.phase = phase;
      phases[phase].sent += 1;
      if (phase === 'main' && mainStartedAt === null) {
        mainStartedAt = performance.now();
        mainStartHrUs = Number(process.hrtime.bigint() / 1000n);
        mainCpuStart = process.cpuUsage();
      }
      if (phase === 'tail') {
        if (mainEndedAt === null) {
          mainEndedAt = performance.now();
          mainEndHrUs = Number(process.hrtime.bigint() / 1000n);
          mainCpu = process.cpuUsage(mainCpuStart);
        }
        req.method = 'GET';
        req.path = '/healthz';
        req.headers = healthHeaders;
        req.body = undefined;
        return req;
      }
      if (job.kind !== 'sign') return req;
      const now = Date.now();
      const { index, step } = picker.next(now);
      const name = walletName(index);
      const code = hotp(totpSecret(benchKey, name), step);
      req.body = `{"walletName":"${name}","keyIndex":0,"hash":"0x${nextHash()}","code":"${code}"}`;
      return req;
    },
    onResponse(status, body, context) {
      lastPhase = context.phase;
      lastOk = status === 200;
      const p = phases[context.phase];
      p.answered += 1;
      p.status[status] = (p.status[status] ?? 0) + 1;
      if (status === 200) p.ok += 1;
      else {
        let code = `http_${status}`;
        try {
          code = JSON.parse(body)?.error?.code ?? code;
        } catch {
          // not JSON
        }
        p.errorCodes[code] = (p.errorCodes[code] ?? 0) + 1;
      }
    },
  };
  let lastPhase = 'warm';
  let lastOk = false;

  const urls = job.urls;
  const options = {
    url: urls.length === 1 ? urls[0] : urls,
    connections: job.connections,
    pipelining: 1,
    timeout: 30,
    sampleInt: 100,
    requests: [request],
  };
  // Time-based: autocannon's own duration is only a backstop; the run is stopped once the
  // measured phase is over and no sign request is in flight any more (see the watcher below).
  if (timed) options.duration = (job.warmupMs + job.durationMs + TAIL_LIMIT_MS) / 1000;
  else options.amount = (job.warmupCount ?? 0) + job.count;
  // Paced: our even spacing alone sets the rate; otherwise autocannon's own overallRate does.
  if (job.paced) options.setupClient = pacer(job.overallRate, job.connections);
  else if (job.overallRate !== undefined) options.overallRate = job.overallRate;

  t0 = performance.now();
  const instance = autocannon(options);
  let errors = 0;
  instance.on('reqError', () => {
    errors += 1;
  });
  // autocannon's own response time (hrtime from the write of the request to its last byte).
  instance.on('response', (_client, _status, _bytes, responseTime) => {
    if (lastPhase === 'main' && lastOk) phases.main.latencies.push(responseTime);
  });
  let tailWatch;
  if (timed) {
    // After the measured phase every new request is a /healthz; stop as soon as every sign
    // request sent has been answered (so that the audit log can be compared with the 200s).
    tailWatch = setInterval(() => {
      if (performance.now() - t0 < job.warmupMs + job.durationMs + (job.tailMs ?? 100)) return;
      const signsSent = phases.warm.sent + phases.main.sent;
      const signsAnswered = phases.warm.answered + phases.main.answered;
      if (signsAnswered >= signsSent) {
        clearInterval(tailWatch);
        instance.stop();
      }
    }, 5);
  }
  const result = await new Promise((resolve, reject) => {
    instance.once('done', resolve);
    instance.once('error', reject);
  });
  clearInterval(tailWatch);
  const ended = performance.now();
  if (mainEndedAt === null) {
    mainEndedAt = ended;
    mainEndHrUs = Number(process.hrtime.bigint() / 1000n);
    if (mainCpuStart !== undefined) mainCpu = process.cpuUsage(mainCpuStart);
  }
  const mainSeconds = timed ? job.durationMs / 1000 : (mainEndedAt - (mainStartedAt ?? t0)) / 1000;

  return {
    kind: job.kind,
    connections: job.connections,
    overallRate: job.overallRate ?? null,
    paced: job.paced ?? false,
    wallSeconds: (ended - t0) / 1000,
    mainWindowHrUs: [mainStartHrUs, mainEndHrUs],
    generatorCoresInMain: mainCpu === null ? null : (mainCpu.user + mainCpu.system) / 1e6 / ((mainEndedAt - mainStartedAt) / 1000),
    mainSeconds,
    mainOkPerSecond: phases.main.ok / mainSeconds,
    signsUnanswered: phases.warm.sent + phases.main.sent - phases.warm.answered - phases.main.answered,
    phases: Object.fromEntries(
      Object.entries(phases).map(([k, v]) => [k, { sent: v.sent, answered: v.answered, ok: v.ok, status: v.status, errorCodes: v.errorCodes }]),
    ),
    latencyMs: summarize(phases.main.latencies),
    okTotalSign: job.kind === 'sign' ? phases.warm.ok + phases.main.ok : 0,
    wallets: picker?.stats ?? null,
    autocannon: {
      errors: result.errors,
      timeouts: result.timeouts,
      non2xx: result.non2xx,
      resets: result.resets,
      requestsAverage: result.requests.average,
      durationSeconds: result.duration,
      reqErrors: errors,
    },
  };
}

/**
 * Even pacing for a rate-limited run. autocannon's overallRate gives each connection a per-second
 * quota that it spends back-to-back at the start of every second (all connections in step), so
 * "50 % of capacity" arrives as full-capacity bursts for half of each second. This hook spaces
 * every connection's requests 1/rate apart, staggered across connections, so the offered load is
 * smooth at the same overall rate (the quota still applies on top).
 */
function pacer(overallRate, connections) {
  let clientNo = 0;
  const intervalMs = (1000 * connections) / overallRate;
  return (client) => {
    const offset = (clientNo++ * intervalMs) / connections;
    const original = client._doRequest.bind(client);
    let due = performance.now() + offset;
    client._doRequest = (...args) => {
      const now = performance.now();
      if (due <= now) {
        due = Math.max(due + intervalMs, now - intervalMs);
        return original(...args);
      }
      const wait = due - now;
      due += intervalMs;
      setTimeout(() => {
        if (!client.destroyed) original(...args);
      }, wait);
      return undefined;
    };
  };
}
