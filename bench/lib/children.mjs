// Child processes of the bench: every one is tracked, and all are stopped at the end, on failure,
// on SIGINT/SIGTERM of the bench and (SIGKILL) when the bench process exits.
import { spawn } from 'node:child_process';
import { createWriteStream, existsSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';

const live = new Set();
let logDir;
let pinning = true;

export function configureChildren({ logs, pin }) {
  logDir = logs;
  pinning = pin;
}

process.once('exit', () => {
  for (const child of live) {
    try {
      child.kill('SIGKILL');
    } catch {
      // already gone
    }
  }
});

function track(child, name) {
  live.add(child);
  child.benchName = name;
  child.once('exit', () => live.delete(child));
  return child;
}

export function exited(child) {
  return child.exitCode !== null || child.signalCode !== null;
}

/** `taskset -c CPU` prefix when pinning is on and a CPU is asked for. */
function pinned(cpu, command, args) {
  if (!pinning || cpu === undefined) return [command, args];
  return ['taskset', ['-c', String(cpu), command, ...args]];
}

/**
 * Spawns `node ...nodeArgs` with stdout/stderr to bench/out/logs/<name>.log; stderr is also
 * kept in memory (last 64 KiB) to show in errors. taskset execs node, so child.pid is node's.
 */
export function spawnNode(name, nodeArgs, { cpu, env, cwd } = {}) {
  const [command, args] = pinned(cpu, process.execPath, nodeArgs);
  const child = spawn(command, args, { cwd, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  track(child, name);
  const log = createWriteStream(join(logDir, `${name}.log`), { flags: 'a' });
  log.write(`$ ${[command, ...args].join(' ')}\n`);
  child.stderrTail = '';
  child.stdoutText = '';
  child.stdout.on('data', (chunk) => {
    log.write(chunk);
    if (child.stdoutText.length < 1 << 20) child.stdoutText += chunk.toString();
  });
  child.stderr.on('data', (chunk) => {
    log.write(chunk);
    child.stderrTail = (child.stderrTail + chunk.toString()).slice(-65536);
  });
  child.once('exit', (code, signal) => log.end(`\n[exit code=${code} signal=${signal}]\n`));
  return child;
}

/** Forks a bench child module with an IPC channel (stdout/stderr to its log). */
export function forkModule(name, modulePath, { cpu, execArgv = [] } = {}) {
  const [command, args] = pinned(cpu, process.execPath, [...execArgv, modulePath]);
  // fork() cannot go through taskset; spawn with an 'ipc' stdio slot does the same.
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe', 'ipc'], env: process.env });
  track(child, name);
  const log = createWriteStream(join(logDir, `${name}.log`), { flags: 'a' });
  log.write(`$ ${[command, ...args].join(' ')}\n`);
  child.stderrTail = '';
  child.stdout.on('data', (chunk) => log.write(chunk));
  child.stderr.on('data', (chunk) => {
    log.write(chunk);
    child.stderrTail = (child.stderrTail + chunk.toString()).slice(-65536);
  });
  child.once('exit', (code, signal) => log.end(`\n[exit code=${code} signal=${signal}]\n`));
  return child;
}

/** Sends `message` to an IPC child and resolves with its one reply ({ok, result} or {ok:false, error}). */
export function ask(child, message, timeoutMs) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${child.benchName}: no answer within ${timeoutMs} ms`));
    }, timeoutMs);
    const onExit = (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`${child.benchName} exited (code ${code}, signal ${signal}) before answering: ${child.stderrTail.slice(-2000)}`));
    };
    child.once('exit', onExit);
    child.once('message', (reply) => {
      clearTimeout(timer);
      child.off('exit', onExit);
      if (reply?.ok) resolve(reply.result);
      else reject(new Error(`${child.benchName}: ${reply?.error ?? 'bad reply'}`));
    });
    child.send(message);
  });
}

/** Runs `node ...args` to completion (bounded), resolving with {code, stdout, stderr}. */
export function runNode(name, nodeArgs, { timeoutMs = 120_000, cpu, env } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawnNode(name, nodeArgs, { cpu, env });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${name} did not finish within ${timeoutMs} ms`));
    }, timeoutMs);
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout: child.stdoutText, stderr: child.stderrTail });
    });
  });
}

/** Stops a child: `signal` (SIGINT lets custos serve close and node write its --cpu-prof), SIGKILL after graceMs. */
export async function stopChild(child, { signal = 'SIGINT', graceMs = 15_000 } = {}) {
  if (exited(child)) return { code: child.exitCode, signal: child.signalCode, killed: false };
  const done = new Promise((resolve) => child.once('exit', (code, sig) => resolve({ code, signal: sig })));
  child.kill(signal);
  let killed = false;
  const timer = setTimeout(() => {
    killed = true;
    child.kill('SIGKILL');
  }, graceMs);
  const result = await done;
  clearTimeout(timer);
  return { ...result, killed };
}

export async function stopAll() {
  await Promise.all([...live].map((child) => stopChild(child, { signal: 'SIGTERM', graceMs: 5_000 }).catch(() => undefined)));
}

export function liveChildren() {
  return [...live];
}

/** A TCP port free on 127.0.0.1 right now. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Polls `url` until it answers `status` (default 200); rejects after timeoutMs or if `child` exits. */
export async function waitFor(url, { status = 200, timeoutMs = 30_000, child, intervalMs = 20 } = {}) {
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer';
  while (Date.now() < deadline) {
    if (child !== undefined && exited(child)) throw new Error(`${child.benchName} exited (code ${child.exitCode}): ${child.stderrTail.slice(-2000)}`);
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(2_000) });
      await res.arrayBuffer();
      if (res.status === status) return;
      last = `HTTP ${res.status}`;
    } catch (error) {
      last = error.message;
    }
    await sleep(intervalMs);
  }
  throw new Error(`${url} did not answer ${status} within ${timeoutMs} ms (last: ${last})`);
}

/** Resident set size of a process, bytes (VmRSS of /proc/<pid>/status), or null. */
export function rssOf(pid) {
  const path = `/proc/${pid}/status`;
  if (!existsSync(path)) return null;
  const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(path, 'utf8'));
  return match ? Number(match[1]) * 1024 : null;
}

/** Peak RSS (VmHWM), bytes, or null. */
export function peakRssOf(pid) {
  const path = `/proc/${pid}/status`;
  if (!existsSync(path)) return null;
  const match = /^VmHWM:\s+(\d+)\s+kB/m.exec(readFileSync(path, 'utf8'));
  return match ? Number(match[1]) * 1024 : null;
}

/** user+system CPU seconds of a process so far (from /proc/<pid>/stat), or null. */
export function cpuSecondsOf(pid) {
  const path = `/proc/${pid}/stat`;
  if (!existsSync(path)) return null;
  const text = readFileSync(path, 'utf8');
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  // fields[11] = utime, fields[12] = stime (after pid and comm), in clock ticks (100/s on Linux)
  return (Number(fields[11]) + Number(fields[12])) / 100;
}
