import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';
import { skipUnlessCi } from './requirePart.js';

/** Debian's softhsm2 package puts the PKCS#11 module here (and .ci/run installs it). */
export const SOFTHSM2_MODULE = '/usr/lib/softhsm/libsofthsm2.so';
const SOFTHSM2_UTIL = 'softhsm2-util';

/** Where SoftHSM2 is (the defaults are Debian's); other paths only for testing this helper. */
export interface SoftHsmPaths {
  modulePath?: string;
  util?: string;
}

/** A SoftHSM2 set up for one test process: its own token directory and configuration file. */
export interface SoftHsm {
  modulePath: string;
  /** The temporary directory holding the configuration and the tokens (removed by cleanup). */
  dir: string;
  /** Initialises a token on a free slot (softhsm2-util --init-token --free), as an operator would. */
  initToken(label: string, { soPin, pin }: { soPin: string; pin: string }): void;
  /** Removes the token directory (the tokens hold test keys); call after closing every token. */
  cleanup(): void;
}

/**
 * Sets up SoftHSM2 for this process: a temporary token directory, a configuration file naming it
 * (file object store), and SOFTHSM2_CONF pointing at it — which SoftHSM2 reads at C_Initialize,
 * so it must be set before the first token is opened (node's test runner gives every test file a
 * process of its own). Returns a reason string instead when SoftHSM2 is not installed: under
 * CI=true the caller must fail with it, elsewhere the test may skip loudly.
 */
export function setUpSoftHsm({ modulePath = SOFTHSM2_MODULE, util = SOFTHSM2_UTIL }: SoftHsmPaths = {}): SoftHsm | { missing: string } {
  if (!existsSync(modulePath)) return { missing: `SoftHSM2 module ${modulePath} not found (apt-get install softhsm2)` };
  const probe = spawnSync(util, ['--version'], { encoding: 'utf8' });
  if (probe.error !== undefined || probe.status !== 0) return { missing: `${util} cannot run (apt-get install softhsm2)` };
  const dir = mkdtempSync(join(tmpdir(), 'custos-softhsm-'));
  const tokens = join(dir, 'tokens');
  mkdirSync(tokens, { mode: 0o700 });
  const conf = join(dir, 'softhsm2.conf');
  writeFileSync(conf, `directories.tokendir = ${tokens}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n`);
  process.env.SOFTHSM2_CONF = conf;
  return {
    modulePath,
    dir,
    initToken(label, { soPin, pin }) {
      const result = spawnSync(util, ['--init-token', '--free', '--label', label, '--so-pin', soPin, '--pin', pin], {
        encoding: 'utf8',
        env: { ...process.env, SOFTHSM2_CONF: conf },
      });
      if (result.status !== 0) throw new Error(`softhsm2-util --init-token --label ${label} failed: ${result.stderr || result.stdout}`);
    },
    cleanup() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * SoftHSM2 for a test file: set up once per process, removed after the file. When it is missing the
 * file fails under CI=true (the tests need the real module there) and otherwise returns `skip`, a
 * reason to give to describe() — printed loudly, so that a skipped suite is not taken for a pass.
 */
export function softHsmForTests(paths: SoftHsmPaths = {}): { hsm: SoftHsm; skip: false } | { hsm: undefined; skip: string } {
  const result = setUpSoftHsm(paths);
  if ('missing' in result) return { hsm: undefined, skip: skipUnlessCi(result.missing, { tests: 'the PKCS#11 tests', part: 'SoftHSM2' }) };
  after(() => result.cleanup());
  return { hsm: result, skip: false };
}

let tokenCounter = 0;
/** A token label not used before in this process (the tokens of one file share a directory). */
export function freshTokenLabel(prefix = 'custos'): string {
  tokenCounter += 1;
  return `${prefix}-${process.pid}-${tokenCounter}`;
}
