import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

/**
 * docs/architecture.md is a reviewer's map of the repository: every file it links to and every path
 * it names in backquotes is a file of the repository (issue 15 point 12: it once sent readers to a
 * design note that lives outside it). Paths in backquotes are read from the repository root, from
 * docs/ or a package's source folder (the page names the kernel's files from packages/kernel/src/).
 */
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const DOC = join(ROOT, 'docs', 'architecture.md');

describe('docs/architecture.md', () => {
  it('links only to files of the repository, and every path it names exists in it', () => {
    const text = readFileSync(DOC, 'utf8');
    const links = [...text.matchAll(/\]\(([^)#\s]+)(?:#[^)]*)?\)/g)].map((m) => m[1] ?? '').filter((l) => !/^[a-z]+:/.test(l));
    assert.ok(links.length >= 5, `found ${links.length} links`);
    for (const link of links) {
      const target = resolve(dirname(DOC), link);
      assert.ok(target.startsWith(`${ROOT}/`), `${link} points outside the repository`);
      assert.ok(existsSync(target), `${link} does not exist`);
    }
    const named = [...text.matchAll(/`([A-Za-z0-9_.-]+(?:\/[A-Za-z0-9_.-]+)+\.(?:ts|md|mjs|json))`/g)].map((m) => m[1] ?? '');
    assert.ok(named.length >= 10, `found ${named.length} paths`);
    const bases = [ROOT, join(ROOT, 'docs'), ...['kernel/src', 'kernel/src/kernel', 'server/src', 'cli/src'].map((p) => join(ROOT, 'packages', p))];
    for (const path of named)
      assert.ok(
        bases.some((b) => existsSync(join(b, path))),
        `\`${path}\` is not a file of the repository`,
      );
  });
});
