import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

/**
 * The anvil integration tests must fail in CI when anvil cannot start (and only skip, loudly, on a
 * developer machine): run them with the binary pointed at a missing file, with and without CI=true.
 */
const INTEGRATION = fileURLToPath(new URL('./anvil.integration.test.js', import.meta.url));

function runWithoutAnvil(ci: boolean) {
  const env: NodeJS.ProcessEnv = { ...process.env, CUSTOS_TEST_ANVIL_BIN: '/nonexistent/anvil' };
  delete env.NODE_TEST_CONTEXT; // run as a standalone test process, not as a child of this runner
  if (ci) env.CI = 'true';
  else delete env.CI;
  // the TAP reporter by name: the default for a pipe was TAP up to Node 22 and is spec since Node 23
  return spawnSync(process.execPath, ['--test', '--test-reporter=tap', INTEGRATION], { env, encoding: 'utf8', timeout: 60_000 });
}

describe('anvil integration harness', () => {
  it('CI=true and no anvil: the integration test file fails', () => {
    const result = runWithoutAnvil(true);
    assert.notEqual(result.status, 0, result.stdout);
    assert.match(result.stdout, /anvil binary not found/);
  });

  it('no CI and no anvil: skipped with a loud notice, not passed silently', () => {
    const result = runWithoutAnvil(false);
    assert.equal(result.status, 0, result.stdout + result.stderr);
    assert.match(result.stdout + result.stderr, /\*\*\* SKIPPED the anvil integration tests/);
    assert.match(result.stdout, /# skipped [1-9]/);
    assert.match(result.stdout, /# pass 0/);
  });
});
