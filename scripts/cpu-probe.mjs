// Loaded into every test file's process by scripts/test.mjs (`--import`, which node's test runner
// passes on to the files' processes): at exit, appends the process's own CPU time (user + system,
// ms; not that of the processes it spawned — a `custos serve`, Chromium) as {file, cpuMs} to
// CUSTOS_TEST_CPU_FILE. The runner's own process (not a test file) writes nothing.
import { appendFileSync } from 'node:fs';

const out = process.env.CUSTOS_TEST_CPU_FILE;
const file = process.argv[1];
if (out !== undefined && out !== '' && file !== undefined && file.endsWith('.test.js')) {
  process.on('exit', () => {
    const { user, system } = process.cpuUsage();
    try {
      appendFileSync(out, `${JSON.stringify({ file, cpuMs: Math.round((user + system) / 1000) })}\n`);
    } catch {
      // the artifacts directory is gone: no figure, no failure
    }
  });
}
