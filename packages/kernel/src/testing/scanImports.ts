import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

/**
 * The import scan of the package-boundary tests (kernel and SDK): which built files a package
 * ships, and which module specifiers a built file names.
 */

/** The built files a consumer loads: every .js under `dir` except tests and `testing/` helpers. */
export function shippedFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) {
      if (name !== 'testing') out.push(...shippedFiles(p));
    } else if (name.endsWith('.js') && !name.endsWith('.test.js')) out.push(p);
  }
  return out;
}

/** Every module specifier a built file imports: static and dynamic imports, re-exports, bare imports, require. */
export function importsOf(source: string): string[] {
  const specs = new Set<string>();
  for (const m of source.matchAll(/\b(?:import|export)\s[^'"]*?from\s*['"]([^'"]+)['"]/g)) specs.add(m[1] ?? '');
  for (const m of source.matchAll(/\bimport\s*\(\s*['"]([^'"]+)['"]\s*\)/g)) specs.add(m[1] ?? '');
  for (const m of source.matchAll(/^\s*import\s*['"]([^'"]+)['"]/gm)) specs.add(m[1] ?? '');
  for (const m of source.matchAll(/\brequire\s*\(\s*['"]([^'"]+)['"]\s*\)/g)) specs.add(m[1] ?? '');
  return [...specs];
}
