import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

// Another process holding a signer's SQLite write lock (testing/holdSqliteLock.ts), for tests.

const HOLDER = fileURLToPath(new URL('./holdSqliteLock.js', import.meta.url));
/** Starts a process that holds the write lock of `file` for `holdMs`; resolves once it holds it. */
export async function holdLock(file: string, holdMs: number) {
  const child = spawn(process.execPath, [HOLDER, file, String(holdMs)], { stdio: ['ignore', 'pipe', 'inherit'] });
  const lines = createInterface({ input: child.stdout });
  const events: Record<string, number> = {};
  const said = (word: string) =>
    new Promise<void>((resolve, reject) => {
      lines.on('line', (line) => {
        events[line] = performance.now();
        if (line === word) resolve();
      });
      child.on('exit', (code) => reject(new Error(`lock holder exited (${code}) before '${word}'`)));
    });
  const locked = said('locked');
  const exited = once(child, 'exit');
  await locked;
  return { events, exited };
}
