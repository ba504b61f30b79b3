import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Agent, request } from 'node:http';

// The load generator of loadHeld.test.ts (issue 14, point 5), run as a process of its own (the
// kernel's CPU is not shared with it inside one event loop): `node openLoopLoad.js`, one job over
// IPC, one reply { ok, result }. Every request is POST /v1/sign/hash for a wallet name never used
// before (no code: `--unknown-wallets allow` signs for a never-enrolled wallet and creates its row),
// on keep-alive sockets of node:http.
//
// Phases, in one run:
//   measure   closed loop: `connections` clients, each sending its next request when the last one
//             is answered (the bench's (b) method), warm-up then `measureMs`: the rate the kernel
//             serves.
//   load      open loop: requests arrive at `factor` × that rate, evenly paced, for `loadMs`,
//             whatever the kernel answers (an arrival never waits for an answer); each one given
//             up after `timeoutMs` (counted as a client timeout). The kernel's RSS (VmRSS of
//             `serverPid`) is read every 250 ms: its peak over the 25 s after `rssWarmupMs`, and
//             over the last 25 s of the phase.
//   recovery  from the moment the arrivals stop: the closed loop again for `recoveryMs`; its last
//             `settledMs` give the rate after the load (settledRate); the time until a one-second
//             window served `recoveredShare` × the lower of the measured and the settled rate.

export interface LoadJob {
  url: string;
  token: string;
  serverPid: number;
  connections: number;
  warmupMs: number;
  measureMs: number;
  factor: number;
  loadMs: number;
  rssWarmupMs: number;
  timeoutMs: number;
  recoveryMs: number;
  /** The end of the recovery phase, this long, measures the rate the kernel serves after the load (its store grown by it). */
  settledMs: number;
  recoveredShare: number;
}

export interface StatusCount {
  /** `200`, `503 overloaded`, `503 overloaded without Retry-After`, `timeout (connecting)` / `(sent, no answer)` / `(answer started)`, `error ECONNRESET`… */
  outcome: string;
  count: number;
}

export interface LoadResult {
  measuredRate: number;
  offeredRate: number;
  offered: number;
  /** Arrivals that could not be sent on time (the generator fell behind its schedule by > 1 s). */
  lateArrivals: number;
  outcomes: StatusCount[];
  servedRate: number;
  latencyP50Ms: number;
  latencyP99Ms: number;
  maxSockets: number;
  /**
   * The kernel's RSS after the warm-up: its peak from rssWarmupMs over the next RSS_WINDOW_MS (read
   * every 250 ms). A garbage-collected heap is a sawtooth — between two major collections the
   * kernel's heap grew from ~100 to ~200 MB and fell back, with the same live data — so single
   * readings compare a trough with a peak; peaks over windows longer than a collection cycle compare
   * like with like, and growth (a leak, an unbounded queue) still raises the later peak.
   */
  rssAfterWarmupKiB: number;
  /** The kernel's RSS at the end: its peak over the last RSS_WINDOW_MS of the load (read every 250 ms). */
  rssAtEndKiB: number;
  /** Single readings, for the record: at rssWarmupMs and at the end of the load. */
  rssSamplesKiB: { afterWarmup: number; atEnd: number };
  /** One entry per second of the load phase: [200s, 503s, other] answered in that second. */
  perSecond: Array<[number, number, number]>;
  /** The 200s per second of the recovery phase's last settledMs: the rate after the load, with the store it left. */
  settledRate: number;
  /** ms from the end of the arrivals to the end of the first one-second window at recoveredShare × min(measuredRate, settledRate); null: not within recoveryMs. */
  recoveredAfterMs: number | null;
  /** The recovery phase's 200s per 250 ms slot. */
  recoverySlots: number[];
  /** CPU time of this process (user + system) over the load phase ÷ its wall time (cores). */
  generatorCores: number;
  generatorCoresMeasure: number;
}

const prefix = `load-${randomBytes(4).toString('hex')}-`;
let walletSeq = 0;
function nextBody(): string {
  walletSeq += 1;
  return `{"walletName":"${prefix}${walletSeq}","keyIndex":0,"hash":"0x${randomBytes(32).toString('hex')}"}`;
}

/** The window whose peak RSS is compared (after the warm-up, and at the end of the load). */
const RSS_WINDOW_MS = 25_000;

function rssKiB(pid: number): number {
  const match = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (match === null) throw new Error(`no VmRSS for ${pid}`);
  return Number(match[1]);
}

interface Answer {
  outcome: string;
  ms: number;
}

export async function runLoad(job: LoadJob): Promise<LoadResult> {
  const target = new URL('/v1/sign/hash', job.url);
  const agent = new Agent({ keepAlive: true, maxSockets: 8192, maxFreeSockets: 8192 });
  let openSockets = 0;
  let maxSockets = 0;
  const headers = { authorization: `Bearer ${job.token}`, 'content-type': 'application/json' };

  /** One request; resolves with its outcome, never rejects. */
  const send = (): Promise<Answer> =>
    new Promise((resolve) => {
      const started = performance.now();
      let done = false;
      const finish = (outcome: string) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        resolve({ outcome, ms: performance.now() - started });
      };
      const body = nextBody();
      const req = request(target, { method: 'POST', agent, headers: { ...headers, 'content-length': Buffer.byteLength(body) } }, (res) => {
        const status = res.statusCode ?? 0;
        if (status === 200) {
          res.resume();
          res.once('end', () => finish('200'));
          return;
        }
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.once('end', () => {
          let code = '?';
          try {
            code = (JSON.parse(Buffer.concat(chunks).toString('utf8')) as { error?: { code?: string } }).error?.code ?? '?';
          } catch {
            // not JSON: the code stays '?'
          }
          const retryAfter = res.headers['retry-after'] === undefined ? ' without Retry-After' : '';
          finish(`${status} ${code}${status === 503 ? retryAfter : ''}`);
        });
      });
      req.on('socket', (socket) => {
        if ((socket as { custosCounted?: boolean }).custosCounted) return;
        (socket as { custosCounted?: boolean }).custosCounted = true;
        openSockets += 1;
        if (openSockets > maxSockets) maxSockets = openSockets;
        socket.once('close', () => {
          openSockets -= 1;
        });
      });
      req.on('error', (error: NodeJS.ErrnoException) => finish(`error ${error.code ?? error.message}`));
      // where a timed-out request stood: still connecting, sent and unanswered, or answered in part
      let stage = 'connecting';
      req.once('socket', (socket) => {
        if (!socket.connecting) stage = 'sent, no answer';
        else
          socket.once('connect', () => {
            stage = 'sent, no answer';
          });
      });
      req.once('response', () => {
        stage = 'answer started';
      });
      const timer = setTimeout(() => {
        finish(`timeout (${stage})`);
        req.destroy();
      }, job.timeoutMs);
      req.end(body);
    });

  /** The closed loop: `connections` clients until `until()` says stop; calls onAnswer for each. */
  const closedLoop = async (until: () => boolean, onAnswer: (answer: Answer, at: number) => void) => {
    await Promise.all(
      Array.from({ length: job.connections }, async () => {
        while (!until()) onAnswer(await send(), performance.now());
      }),
    );
  };

  // ── measure ──
  const measureStart = performance.now();
  const measureCpu = process.cpuUsage();
  let measured = 0;
  await closedLoop(
    () => performance.now() - measureStart >= job.warmupMs + job.measureMs,
    (answer, at) => {
      if (answer.outcome === '200' && at - measureStart >= job.warmupMs) measured += 1;
    },
  );
  const measureWall = performance.now() - measureStart;
  const measureCpuUsed = process.cpuUsage(measureCpu);
  const measuredRate = measured / (job.measureMs / 1000);
  if (measuredRate <= 0) throw new Error('the kernel served no signature while measuring');

  // ── load: open loop at factor × the measured rate ──
  const offeredRate = measuredRate * job.factor;
  const interval = 1000 / offeredRate;
  const outcomes = new Map<string, number>();
  const latencies: number[] = [];
  const perSecond: Array<[number, number, number]> = [];
  const pending = new Set<Promise<void>>();
  let offered = 0;
  let lateArrivals = 0;
  let rssAfterWarmupKiB = 0;
  // [ms into the load, RSS KiB], every 250 ms
  const rssReadings: Array<[number, number]> = [];
  const rssTimer = setInterval(() => rssReadings.push([performance.now() - loadStart, rssKiB(job.serverPid)]), 250);
  const loadStart = performance.now();
  const loadCpu = process.cpuUsage();
  const arrive = () => {
    offered += 1;
    const p = send().then((answer) => {
      outcomes.set(answer.outcome, (outcomes.get(answer.outcome) ?? 0) + 1);
      if (answer.outcome === '200') latencies.push(answer.ms);
      const second = Math.floor((performance.now() - loadStart) / 1000);
      while (perSecond.length <= second) perSecond.push([0, 0, 0]);
      const row = perSecond[second] as [number, number, number];
      if (answer.outcome === '200') row[0] += 1;
      else if (answer.outcome.startsWith('503 overloaded')) row[1] += 1;
      else row[2] += 1;
      pending.delete(p);
    });
    pending.add(p);
  };
  await new Promise<void>((resolve) => {
    const tick = () => {
      const elapsed = performance.now() - loadStart;
      if (rssAfterWarmupKiB === 0 && elapsed >= job.rssWarmupMs) rssAfterWarmupKiB = rssKiB(job.serverPid);
      const due = Math.min(Math.floor(elapsed / interval) + 1, Math.ceil(job.loadMs / interval));
      // arrivals more than a second behind their time: the generator could not keep up (counted, then sent)
      if (due - offered > offeredRate) lateArrivals += due - offered - Math.ceil(offeredRate);
      while (offered < due) arrive();
      if (elapsed >= job.loadMs) return resolve();
      setTimeout(tick, Math.max(1, Math.min(5, interval)));
    };
    tick();
  });
  const loadEnd = performance.now();
  const loadCpuUsed = process.cpuUsage(loadCpu);
  clearInterval(rssTimer);
  const rssLastKiB = rssKiB(job.serverPid);
  rssReadings.push([loadEnd - loadStart, rssLastKiB]);
  const peak = (from: number, to: number) => Math.max(0, ...rssReadings.filter(([at]) => at >= from && at <= to).map(([, kib]) => kib));
  const rssPeakAfterWarmupKiB = Math.max(rssAfterWarmupKiB, peak(job.rssWarmupMs, job.rssWarmupMs + RSS_WINDOW_MS));
  const rssAtEndKiB = peak(loadEnd - loadStart - RSS_WINDOW_MS, loadEnd - loadStart);

  // ── recovery: the closed loop again, from the end of the arrivals (the open requests still draining) ──
  const slotMs = 250;
  const recoverySlots: number[] = [];
  await closedLoop(
    () => performance.now() - loadEnd >= job.recoveryMs,
    (answer, at) => {
      if (answer.outcome !== '200') return;
      const slot = Math.floor((at - loadEnd) / slotMs);
      while (recoverySlots.length <= slot) recoverySlots.push(0);
      recoverySlots[slot] = (recoverySlots[slot] ?? 0) + 1;
    },
  );
  await Promise.all(pending);
  // The kernel's rate once settled (the last settledMs of the phase): every sign of the load created
  // a wallet, so its store is larger than when the rate was measured, and a little slower (SQLite:
  // 10–15 % after 60 s at twice the rate, 1.3 MB a second of new rows). Full rate is judged against
  // the lower of the two rates, so that the store's growth is not taken for a hangover; how far the
  // settled rate may fall below the measured one is the caller's check.
  const settledSlots = Math.round(job.settledMs / slotMs);
  const settledRate = recoverySlots.slice(-settledSlots).reduce((a, b) => a + b, 0) / (job.settledMs / 1000);
  const reference = Math.min(measuredRate, settledRate);
  let recoveredAfterMs: number | null = null;
  const perWindow = 1000 / slotMs;
  for (let end = perWindow; end <= recoverySlots.length; end++) {
    const served = recoverySlots.slice(end - perWindow, end).reduce((a, b) => a + b, 0);
    if (served >= job.recoveredShare * reference) {
      recoveredAfterMs = end * slotMs;
      break;
    }
  }
  agent.destroy();

  latencies.sort((a, b) => a - b);
  const at = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? 0;
  const cores = (cpu: NodeJS.CpuUsage, wallMs: number) => (cpu.user + cpu.system) / 1000 / wallMs;
  return {
    measuredRate,
    offeredRate,
    offered,
    lateArrivals,
    outcomes: [...outcomes].map(([outcome, count]) => ({ outcome, count })).sort((a, b) => b.count - a.count),
    servedRate: (outcomes.get('200') ?? 0) / ((loadEnd - loadStart) / 1000),
    latencyP50Ms: at(0.5),
    latencyP99Ms: at(0.99),
    maxSockets,
    rssAfterWarmupKiB: rssPeakAfterWarmupKiB,
    rssAtEndKiB,
    rssSamplesKiB: { afterWarmup: rssAfterWarmupKiB, atEnd: rssLastKiB },
    perSecond,
    settledRate,
    recoveredAfterMs,
    recoverySlots,
    generatorCores: cores(loadCpuUsed, loadEnd - loadStart),
    generatorCoresMeasure: cores(measureCpuUsed, measureWall),
  };
}

// As a child process: one job over IPC, one reply.
if (process.send !== undefined && process.argv[1] !== undefined && import.meta.url.endsWith(process.argv[1].split('/').at(-1) ?? '\0')) {
  process.once('message', (job: LoadJob) => {
    runLoad(job).then(
      (result) => process.send?.({ ok: true, result }),
      (error: unknown) => process.send?.({ ok: false, error: error instanceof Error ? (error.stack ?? error.message) : String(error) }),
    );
  });
  process.on('disconnect', () => process.exit(0));
}
