#!/usr/bin/env node
// Runs every compiled test file (packages/*/dist/**/*.test.js) with node's test runner, then scans
// what the tests left behind for leaked secrets.
// Usage: node scripts/test.mjs [filter-substring ...]
//
// The test processes get a fresh artifacts directory (CUSTOS_TEST_ARTIFACTS) for their logs, data
// directories and secrets.jsonl; scripts/scan-secrets.mjs then looks for every recorded secret in
// every file there. The directory is removed after a fully green run and kept otherwise.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { reportScan } from './scan-secrets.mjs';

const root = new URL('..', import.meta.url).pathname;
const filters = process.argv.slice(2);

function walk(dir, out) {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p, out);
    else if (p.endsWith('.test.js')) out.push(p);
  }
  return out;
}

const files = [];
for (const pkg of readdirSync(join(root, 'packages'))) {
  const dist = join(root, 'packages', pkg, 'dist');
  try {
    walk(dist, files);
  } catch {
    // a package without compiled output has no tests
  }
}
const selected = files.filter((f) => filters.length === 0 || filters.some((s) => f.includes(s))).sort();
if (selected.length === 0) {
  console.error('no test files found: run `tsc -b` first');
  process.exit(1);
}
const artifacts = mkdtempSync(join(tmpdir(), 'custos-test-'));
const result = spawnSync(process.execPath, ['--test', '--test-concurrency=2', ...selected], {
  stdio: 'inherit',
  cwd: root,
  env: { ...process.env, CUSTOS_TEST_ARTIFACTS: artifacts },
});
const testStatus = result.status ?? 1;
const scanStatus = reportScan(artifacts);
if (testStatus === 0 && scanStatus === 0) {
  rmSync(artifacts, { recursive: true, force: true });
  process.exit(0);
}
console.log(`test artifacts kept in ${artifacts}`);
process.exit(testStatus !== 0 ? testStatus : scanStatus);
