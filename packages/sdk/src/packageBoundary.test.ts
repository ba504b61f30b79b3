import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join, posix } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { importsOf, shippedFiles } from '@custos/kernel/testing/scanImports';

/**
 * The SDK is what a wallet backend installs: the built files must import nothing of the server
 * (no @custos/kernel, no @custos/server, no database driver) — only node built-ins, each other,
 * and viem / ethers (optional peers of their subpaths).
 */
const DIST = fileURLToPath(new URL('.', import.meta.url)); // packages/sdk/dist/
const PACKAGE = JSON.parse(readFileSync(join(DIST, '..', 'package.json'), 'utf8')) as {
  dependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  peerDependenciesMeta?: Record<string, { optional?: boolean }>;
  exports: Record<string, { types: string; default: string }>;
  engines?: { node?: string };
};

const ALLOWED = (spec: string) => spec.startsWith('./') || spec.startsWith('node:') || /^(viem|ethers)(\/|$)/.test(spec);

describe('the built SDK', () => {
  it('imports only node built-ins, its own files, viem and ethers (never @custos/kernel or @custos/server)', () => {
    const files = shippedFiles(DIST);
    assert.ok(files.length >= 6, `found ${files.length} built files`);
    for (const file of files) {
      for (const spec of importsOf(readFileSync(file, 'utf8'))) {
        assert.ok(!spec.startsWith('@custos/'), `${file} imports ${spec}`);
        assert.ok(ALLOWED(spec), `${file} imports ${spec}`);
      }
    }
  });

  it('the import scan sees imports (it would catch one of the server)', () => {
    assert.deepEqual(importsOf("import { a } from '@custos/kernel';\nexport { b } from \"./b.js\";\nawait import('@custos/server');"), [
      '@custos/kernel',
      './b.js',
      '@custos/server',
    ]);
  });

  it('the client entry does not load viem or ethers; the subpaths load only their own library', () => {
    for (const [entry, forbidden] of [
      ['index.js', ['viem', 'ethers']],
      ['viem.js', ['ethers']],
      ['ethers.js', ['viem']],
      ['fortanix.js', ['ethers']],
    ] as const) {
      const seen = new Set<string>();
      const visit = (file: string) => {
        if (seen.has(file)) return;
        seen.add(file);
        for (const spec of importsOf(readFileSync(join(DIST, file), 'utf8'))) {
          for (const lib of forbidden) assert.ok(!(spec === lib || spec.startsWith(`${lib}/`)), `${entry} → ${file} imports ${spec}`);
          if (spec.startsWith('./')) visit(spec.slice(2));
        }
      };
      visit(entry);
    }
  });

  it('package.json: no runtime dependencies; kernel and server are devDependencies; viem and ethers optional peers', () => {
    assert.deepEqual(PACKAGE.dependencies ?? {}, {});
    assert.ok(PACKAGE.devDependencies?.['@custos/kernel'] !== undefined);
    assert.ok(PACKAGE.devDependencies?.['@custos/server'] !== undefined);
    assert.equal(PACKAGE.peerDependencies?.['@custos/kernel'], undefined);
    for (const peer of ['viem', 'ethers']) assert.equal(PACKAGE.peerDependenciesMeta?.[peer]?.optional, true, peer);
  });

  it('the subpath exports resolve by package name and export what the README shows', async () => {
    assert.deepEqual(Object.keys(PACKAGE.exports).sort(), ['.', './ethers', './fortanix', './viem']);
    const sdk = await import('@custos/sdk');
    assert.equal(typeof sdk.createCustosClient, 'function');
    assert.equal(typeof sdk.CustosApiError, 'function');
    assert.equal(typeof (await import('@custos/sdk/viem')).custosAccount, 'function');
    assert.equal(typeof (await import('@custos/sdk/ethers')).CustosSigner, 'function');
    assert.equal(typeof (await import('@custos/sdk/fortanix')).Accounts, 'function');
  });

  it('the published tarball (npm pack) holds the built SDK without tests or test helpers', () => {
    const packed = spawnSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: join(DIST, '..'), encoding: 'utf8' });
    assert.equal(packed.status, 0, packed.stderr);
    const files = (JSON.parse(packed.stdout) as Array<{ files: Array<{ path: string }> }>)[0]?.files.map((f) => f.path) ?? [];
    for (const entry of ['dist/index.js', 'dist/index.d.ts', 'dist/viem.js', 'dist/ethers.js', 'dist/fortanix.js', 'dist/errors.js', 'package.json'])
      assert.ok(files.includes(entry), `${entry} is packed`);
    const unwanted = files.filter((f) => /\.test\./.test(f) || f.startsWith('dist/testing/') || f.startsWith('src/testing/') || f.endsWith('.tsbuildinfo'));
    assert.deepEqual(unwanted, []);
    // Its README (issue 15 point 12), and no source map that points at a file the tarball lacks.
    assert.ok(files.includes('README.md'), 'README.md is packed');
    const root = join(DIST, '..');
    const maps = files.filter((f) => f.endsWith('.map'));
    assert.ok(maps.length >= 10, `${maps.length} source maps packed`);
    for (const map of maps) {
      const { sources } = JSON.parse(readFileSync(join(root, map), 'utf8')) as { sources: string[] };
      for (const source of sources) assert.ok(files.includes(posix.join(posix.dirname(map), source)), `${map} points at ${source}, which is not packed`);
    }
    for (const file of files.filter((f) => /\.(js|d\.ts)$/.test(f))) {
      const url = /\/\/# sourceMappingURL=(\S+)\s*$/.exec(readFileSync(join(root, file), 'utf8'))?.[1];
      if (url !== undefined) assert.ok(files.includes(posix.join(posix.dirname(file), url)), `${file} names ${url}, which is not packed`);
    }
  });

  it('engines: Node ≥ 20.3, the first with AbortSignal.any (the client combines the caller’s signal with its deadline)', () => {
    assert.ok(readFileSync(join(DIST, 'client.js'), 'utf8').includes('AbortSignal.any('));
    assert.equal(PACKAGE.engines?.node, '>=20.3');
  });
});
