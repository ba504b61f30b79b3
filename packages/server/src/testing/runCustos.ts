import { type ChildProcess, spawn } from 'node:child_process';
import { delimiter, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

// Running the real `custos` binary from tests (the CLI's own tests and the replica tests). Every
// child started here is tracked; a last-resort exit hook SIGKILLs any that a crashed test left.

/** dist/testing/runCustos.js → repo root. */
export const REPO_ROOT = fileURLToPath(new URL('../../../../', import.meta.url));
/** The `custos` command as `npm ci` links it. */
export const CUSTOS_BIN = join(REPO_ROOT, 'node_modules', '.bin', 'custos');

const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

/** Tracks a child process so that the exit hook kills it if the test process ends first. */
export function trackChild(child: ChildProcess): void {
  live.add(child);
  child.once('exit', () => live.delete(child));
}

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** The arguments for a message: a store URL's password replaced by `***`. */
function shown(args: string[]): string {
  return args.map((arg) => arg.replace(/^(postgres(?:ql)?:\/\/[^:/@]*:)[^@]*@/, '$1***@')).join(' ');
}

/**
 * Runs `custos ...args` to completion; SIGKILLed (and rejected) after timeoutMs. `direct` executes
 * the bin file itself (its shebang finds `node` on PATH, so the test's node is put first on PATH).
 */
export function runCustos(
  args: string[],
  { timeoutMs = 30_000, direct = false, env: extraEnv = {} }: { timeoutMs?: number; direct?: boolean; env?: NodeJS.ProcessEnv } = {},
): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const env = { ...process.env, ...extraEnv, PATH: `${dirname(process.execPath)}${delimiter}${process.env.PATH ?? ''}` };
    const child = direct
      ? spawn(CUSTOS_BIN, args, { env, stdio: ['ignore', 'pipe', 'pipe'] })
      : spawn(process.execPath, [CUSTOS_BIN, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    trackChild(child);
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk;
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk;
    });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`custos ${shown(args)} did not finish within ${timeoutMs} ms`));
    }, timeoutMs);
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}
