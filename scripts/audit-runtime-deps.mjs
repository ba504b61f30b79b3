#!/usr/bin/env node
// CI's dependency audit: `npm audit --omit=dev` (what a user installs). A high or critical advisory
// fails (exit 1). When the registry's advisory endpoint does not answer (a mirror that serves only
// GET answers the bulk POST with 405), nothing is known: a loud warning, exit 0 — unless
// CUSTOS_REQUIRE_AUDIT=1, where an unanswered audit fails too. docs/dependencies.md.
import { spawnSync } from 'node:child_process';

const run = spawnSync('npm', ['audit', '--omit=dev', '--json'], { encoding: 'utf8', timeout: 120_000 });
let report;
try {
  report = JSON.parse(run.stdout);
} catch {
  report = undefined;
}
const counts = report?.metadata?.vulnerabilities;
if (counts === undefined) {
  const why = report?.message ?? run.stderr?.trim().split('\n').at(-1) ?? `npm exited ${run.status}`;
  const notice = `npm audit: the advisory endpoint did not answer (${why}): runtime dependencies were NOT checked for advisories`;
  if (process.env.CUSTOS_REQUIRE_AUDIT === '1') {
    console.error(`${notice}; CUSTOS_REQUIRE_AUDIT=1: failing`);
    process.exit(1);
  }
  console.error(`\n*** WARNING ${notice}. ***\n`);
  process.exit(0);
}
const serious = (counts.high ?? 0) + (counts.critical ?? 0);
console.log(`npm audit --omit=dev: ${JSON.stringify(counts)}`);
if (serious > 0) {
  for (const [name, v] of Object.entries(report.vulnerabilities ?? {}))
    if (v.severity === 'high' || v.severity === 'critical') console.error(`  ${v.severity}: ${name} ${v.range ?? ''}`);
  console.error(`npm audit: ${serious} high or critical advisories in runtime dependencies: failing`);
  process.exit(1);
}
