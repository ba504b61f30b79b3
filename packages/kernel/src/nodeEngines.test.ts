import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

/**
 * The supported Node.js versions (README "Supported Node.js versions", issue 15 point 2): every
 * package declares the lowest version it runs on, and no installed package declares more than that
 * (npm would warn EBADENGINE) — neither on the lowest version nor on the newest LTS line that
 * scripts/test-other-node.sh tests. The versions come from the lockfile, so a dependency upgrade
 * that raises a floor fails here before a user sees the warning.
 */
const ROOT = fileURLToPath(new URL('../../../', import.meta.url)); // the repository (from packages/kernel/dist/)
const semver = createRequire(import.meta.url)('semver') as {
  satisfies(version: string, range: string): boolean;
  minVersion(range: string): { version: string } | null;
};

interface LockEntry {
  version?: string;
  link?: boolean;
  resolved?: string;
  dev?: boolean;
  engines?: { node?: string };
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
}
const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, LockEntry> };

/** The Node.js version scripts/test-other-node.sh installs by default (the newest LTS line's). */
function otherNodeVersion(): string {
  const script = readFileSync(join(ROOT, 'scripts', 'test-other-node.sh'), 'utf8');
  const version = /^NODE_VERSION="\$\{CUSTOS_OTHER_NODE_VERSION:-(\d+\.\d+\.\d+)\}"$/m.exec(script)?.[1];
  assert.ok(version !== undefined, 'scripts/test-other-node.sh names its default NODE_VERSION');
  return version;
}

/**
 * The lockfile paths a package at `from` installs (dependencies and optional ones), by Node's
 * lookup; with `peers`, also what its own peer dependencies install (the SDK's viem and ethers).
 */
function runtimeClosure(from: string, { peers = false } = {}): Set<string> {
  const seen = new Set<string>();
  const visit = (path: string): void => {
    const entry = lock.packages[path];
    assert.ok(entry !== undefined, `${path} is in package-lock.json`);
    if (entry.link === true && entry.resolved !== undefined) {
      visit(entry.resolved);
      return;
    }
    if (seen.has(path)) return;
    seen.add(path);
    const own = path === from && peers ? entry.peerDependencies : {};
    for (const name of Object.keys({ ...entry.dependencies, ...entry.optionalDependencies, ...own })) {
      const found = lookup(path, name);
      if (found !== undefined) visit(found);
      else assert.ok(entry.optionalDependencies?.[name] !== undefined, `${path} needs ${name}, not in the lockfile`);
    }
  };
  visit(from);
  return seen;
}

function lookup(from: string, name: string): string | undefined {
  let dir = from;
  for (;;) {
    const candidate = dir === '' ? `node_modules/${name}` : `${dir}/node_modules/${name}`;
    if (lock.packages[candidate] !== undefined) return candidate;
    if (dir === '') return undefined;
    const cut = dir.lastIndexOf('/node_modules/');
    dir = cut < 0 ? '' : dir.slice(0, cut);
  }
}

function declaredFloor(path: string): { range: string; floor: string } {
  const range = lock.packages[path]?.engines?.node;
  assert.ok(range !== undefined, `${path || 'the root package'} declares engines.node`);
  const floor = semver.minVersion(range)?.version;
  assert.ok(floor !== undefined, `${path}: engines.node ${range} is a range`);
  return { range, floor };
}

/** Each installed package whose engines.node refuses `version`, as `name@version (range)`. */
function refusing(paths: Iterable<string>, version: string): string[] {
  const out: string[] = [];
  for (const path of paths) {
    const range = lock.packages[path]?.engines?.node;
    if (range !== undefined && !semver.satisfies(version, range)) out.push(`${path}@${lock.packages[path]?.version} (${range})`);
  }
  return out;
}

describe('supported Node.js versions (engines)', () => {
  it('the server, the CLI and the kernel declare >=20.3 and run on it and on the newest LTS: no dependency of theirs refuses either', () => {
    const other = otherNodeVersion();
    for (const pkg of ['packages/kernel', 'packages/server', 'packages/cli']) {
      const { range, floor } = declaredFloor(pkg);
      assert.equal(range, '>=20.3', `${pkg}: the floor the README states`);
      assert.ok(semver.satisfies('20.20.2', `>=${floor}`), `${pkg}: the machines' Node 20 is supported`);
      const closure = runtimeClosure(pkg);
      assert.ok(closure.size > 10, `${pkg}: its dependencies found (${closure.size})`);
      for (const version of [floor, other]) assert.deepEqual(refusing(closure, version), [], `${pkg} on Node ${version}: EBADENGINE`);
    }
  });

  it('the SDK keeps >=20.3 until its next major: neither it nor its peers (viem, ethers) install anything that needs more', () => {
    const { range, floor } = declaredFloor('packages/sdk');
    assert.equal(range, '>=20.3');
    const closure = runtimeClosure('packages/sdk', { peers: true });
    assert.ok(closure.has('node_modules/viem') && closure.has('node_modules/ethers'), 'the peers are followed');
    for (const version of [floor, otherNodeVersion()]) assert.deepEqual(refusing(closure, version), [], `the SDK on Node ${version}: EBADENGINE`);
  });

  it('a development install (every package of the lockfile) warns on neither the root’s floor (>=20.3) nor the newest LTS', () => {
    const { range, floor } = declaredFloor('');
    assert.equal(range, '>=20.3');
    const all = Object.keys(lock.packages).filter((p) => p !== '');
    for (const version of [floor, otherNodeVersion()]) assert.deepEqual(refusing(all, version), [], `on Node ${version}: EBADENGINE`);
  });
});
