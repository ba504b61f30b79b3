// Machine facts and CPU accounting: what the machine is, and how much of it the processes of the
// bench used versus everything else running on it (the machine is shared).
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import os from 'node:os';
import { cpuSecondsOf } from './children.mjs';

export function machine() {
  const cpus = os.cpus();
  const models = [...new Set(cpus.map((c) => c.model.trim()))];
  return {
    cpuModel: models.join(' / '),
    cpuCount: cpus.length,
    cpuSpeedMHz: cpus[0]?.speed ?? null,
    totalMemBytes: os.totalmem(),
    node: process.version,
    platform: `${os.type()} ${os.release()} ${os.arch()}`,
    hostname: os.hostname(),
  };
}

export function loadavg() {
  return os.loadavg().map((v) => Number(v.toFixed(2)));
}

/** Busy and total CPU ticks of the whole machine (/proc/stat), 100 ticks a second per core. */
function machineTicks() {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0];
  const [user, nice, system, idle, iowait, irq, softirq, steal] = line.trim().split(/\s+/).slice(1).map(Number);
  const busy = user + nice + system + irq + softirq + (steal ?? 0);
  return { busy, total: busy + idle + iowait };
}

/**
 * Starts a CPU accounting window over the given pids (the bench's processes of a measurement);
 * stop() returns {wallSeconds, machineBusyCores, benchCores, otherCores, perPid}.
 */
export function cpuWindow(pids) {
  const t0 = performance.now();
  const m0 = machineTicks();
  const self0 = process.cpuUsage();
  const p0 = new Map(pids.map((pid) => [pid, cpuSecondsOf(pid) ?? 0]));
  return {
    stop() {
      const wall = (performance.now() - t0) / 1000;
      const m1 = machineTicks();
      const self1 = process.cpuUsage(self0);
      const perPid = {};
      let bench = (self1.user + self1.system) / 1e6;
      for (const [pid, before] of p0) {
        const after = cpuSecondsOf(pid);
        const used = after === null ? null : after - before;
        perPid[pid] = used === null ? null : used / wall;
        if (used !== null) bench += used;
      }
      const machineBusy = (m1.busy - m0.busy) / 100;
      return {
        wallSeconds: wall,
        machineBusyCores: machineBusy / wall,
        benchCores: bench / wall,
        otherCores: Math.max(0, (machineBusy - bench) / wall),
        perPidCores: perPid,
      };
    },
  };
}

export function gitInfo(cwd) {
  const run = (args) => {
    try {
      return execFileSync('git', args, { cwd, encoding: 'utf8', timeout: 10_000, stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    } catch {
      return null;
    }
  };
  const status = run(['status', '--porcelain', '--', 'packages']);
  return {
    commit: run(['rev-parse', '--short', 'HEAD']),
    uncommittedFilesUnderPackages: status === null ? null : status.split('\n').filter(Boolean).length,
  };
}

function allProcessTicks() {
  const ticks = new Map();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const text = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const comm = text.slice(text.indexOf('(') + 1, text.lastIndexOf(')'));
      const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
      let cmd = comm;
      try {
        cmd = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0').filter(Boolean).join(' ').slice(0, 120) || comm;
      } catch {
        // gone
      }
      ticks.set(Number(entry), { cmd, ticks: Number(fields[11]) + Number(fields[12]) });
    } catch {
      // the process ended meanwhile
    }
  }
  return ticks;
}

/** The processes that used the most CPU over the next `ms` (cores), this one excluded. */
export async function busiestProcesses(ms = 1000, n = 6) {
  const before = allProcessTicks();
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, ms));
  const after = allProcessTicks();
  const wall = (performance.now() - t0) / 1000;
  const rows = [];
  for (const [pid, { cmd, ticks }] of after) {
    if (pid === process.pid) continue;
    const used = (ticks - (before.get(pid)?.ticks ?? ticks)) / 100 / wall;
    if (used > 0.01) rows.push({ pid, cores: Number(used.toFixed(2)), cmd });
  }
  return rows.sort((a, b) => b.cores - a.cores).slice(0, n);
}
