import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

/**
 * docs/dependencies.md lists every runtime dependency (`dependencies` and `peerDependencies`) of
 * every package with why it is there, and names nothing else; every `dependencies` entry is
 * imported by the package's shipped code (a dependency only tests use belongs in devDependencies).
 */
const ROOT = fileURLToPath(new URL('../../../', import.meta.url)); // the repository (from packages/kernel/dist/)

interface Manifest {
  name: string;
  dependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
}

function packages(): { dir: string; manifest: Manifest }[] {
  return readdirSync(join(ROOT, 'packages'))
    .map((name) => join(ROOT, 'packages', name))
    .filter((dir) => statSync(join(dir, 'package.json'), { throwIfNoEntry: false })?.isFile())
    .map((dir) => ({ dir, manifest: JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as Manifest }));
}

/** The rows of each `## <package>` section of docs/dependencies.md: the first cell's package name. */
function documented(): Map<string, Set<string>> {
  const sections = new Map<string, Set<string>>();
  let current: Set<string> | undefined;
  for (const line of readFileSync(join(ROOT, 'docs', 'dependencies.md'), 'utf8').split('\n')) {
    const heading = /^## (.+)$/.exec(line);
    if (heading) {
      // a package's section, or another section (whose tables list no dependency)
      const name = heading[1] ?? '';
      current = name.startsWith('@custos/') ? new Set() : undefined;
      if (current) sections.set(name, current);
      continue;
    }
    const row = /^\| `([^`]+)`/.exec(line);
    if (row && current) current.add(row[1] ?? '');
  }
  return sections;
}

/** The package names a built file imports (static, dynamic, require, createRequire, require.resolve, import.meta.resolve). */
function importedPackages(source: string): Set<string> {
  const specs = [
    ...source.matchAll(/\bfrom\s*['"]([^'"]+)['"]/g),
    ...source.matchAll(/\bimport\s*\(\s*['"]([^'"]+)['"]\s*\)/g),
    ...source.matchAll(/\brequire\s*\(\s*['"]([^'"]+)['"]\s*\)/g),
    // a native addon loaded on first use: createRequire(import.meta.url)('name')
    ...source.matchAll(/\bcreateRequire\([^)]*\)\s*\(\s*['"]([^'"]+)['"]\s*\)/g),
    // a package whose files are read, not run, resolved as an import or a require would be:
    // import.meta.resolve('name'), createRequire(import.meta.url).resolve('name')
    ...source.matchAll(/\bimport\.meta\.resolve\s*\(\s*['"]([^'"]+)['"]\s*\)/g),
    ...source.matchAll(/\bcreateRequire\([^)]*\)\s*\.resolve\s*\(\s*['"]([^'"]+)['"]\s*\)/g),
  ].map((m) => m[1] ?? '');
  return new Set(
    specs
      .filter((s) => !s.startsWith('.') && !s.startsWith('node:'))
      .map((s) =>
        s
          .split('/')
          .slice(0, s.startsWith('@') ? 2 : 1)
          .join('/'),
      ),
  );
}

function shippedSources(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) {
      if (name !== 'testing') out.push(...shippedSources(p));
    } else if (name.endsWith('.js') && !name.endsWith('.test.js')) out.push(readFileSync(p, 'utf8'));
  }
  return out;
}

describe('runtime dependencies (docs/dependencies.md)', () => {
  const docs = documented();
  const all = packages();

  it('every dependency and peer dependency of every package has its row, and no row names anything else', () => {
    assert.ok(all.length >= 4, `found ${all.length} packages`);
    for (const { manifest } of all) {
      const expected = [...Object.keys(manifest.dependencies ?? {}), ...Object.keys(manifest.peerDependencies ?? {})].sort();
      const rows = docs.get(manifest.name);
      assert.ok(rows !== undefined, `docs/dependencies.md has a section "## ${manifest.name}"`);
      assert.deepEqual([...rows].sort(), expected, manifest.name);
    }
    assert.deepEqual([...docs.keys()].sort(), all.map(({ manifest }) => manifest.name).sort());
  });

  it('every runtime dependency is imported by the package’s shipped code', () => {
    for (const { dir, manifest } of all) {
      const imported = new Set(shippedSources(join(dir, 'dist')).flatMap((source) => [...importedPackages(source)]));
      for (const dependency of Object.keys(manifest.dependencies ?? {})) {
        assert.ok(imported.has(dependency), `${manifest.name} declares ${dependency} but no shipped file imports it`);
      }
    }
  });
});
