#!/usr/bin/env node
// The long variants of the suite (issue 14, point 9): `npm run soak`. Each step runs some compiled
// test files through scripts/test.mjs (so with its artifacts directory, secret scan and PostgreSQL
// pass) with a larger workload set in the environment, and prints its duration.
// Usage: node scripts/soak.mjs [step-name ...]   (all steps by default: fuzz, crash, load)
import { spawnSync } from 'node:child_process';

const root = new URL('..', import.meta.url).pathname;

const steps = [
  {
    // issue 14, point 4: 1,000,000 route cases (SQLite pass; the PostgreSQL pass runs a tenth), every parser 50× its npm test count
    name: 'fuzz',
    env: { CUSTOS_FUZZ_CASES: process.env.CUSTOS_FUZZ_CASES ?? '1000000' },
    filters: ['/dist/fuzz.test.js', '/dist/routeFuzz.test.js'],
  },
  {
    // issue 14, point 2: 50 SIGKILLs under load per store (SQLite: one serve; PostgreSQL: two replicas, one killed at a time)
    name: 'crash',
    env: { CUSTOS_CRASH_KILLS: process.env.CUSTOS_CRASH_KILLS ?? '50' },
    filters: ['/dist/crashSafety.test.js'],
  },
  {
    // issue 14, point 5: 2 × the measured sign rate, open loop, for 60 s against a real serve per store (figures in bench/out/load-held-*.md)
    name: 'load',
    env: { CUSTOS_LOAD_SECONDS: process.env.CUSTOS_LOAD_SECONDS ?? '60' },
    filters: ['/dist/loadHeld.test.js'],
  },
];

const wanted = process.argv.slice(2);
let status = 0;
for (const step of steps.filter((s) => wanted.length === 0 || wanted.includes(s.name))) {
  const started = Date.now();
  console.log(
    `\n== soak step ${step.name} (${Object.entries(step.env)
      .map(([k, v]) => `${k}=${v}`)
      .join(' ')})`,
  );
  const result = spawnSync(process.execPath, ['scripts/test.mjs', ...step.filters], { stdio: 'inherit', cwd: root, env: { ...process.env, ...step.env } });
  const code = result.status ?? 1;
  console.log(`== soak step ${step.name}: ${code === 0 ? 'passed' : `FAILED (${code})`} in ${((Date.now() - started) / 60_000).toFixed(1)} min`);
  if (code !== 0) status = code;
}
process.exit(status);
