import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { importsOf, shippedFiles } from './testing/scanImports.js';

/**
 * The kernel's import rules (docs/architecture.md, "Which code may import which"), checked on the
 * built files a server loads (tests and packages/kernel/src/testing excluded):
 * - the kernel imports no other Custos package, no HTTP framework, database driver or logger, and
 *   reads no environment: clock, randomness and storage are passed in;
 * - inside the kernel, each folder imports only the folders below it, so that the security core
 *   can be reviewed bottom-up: `kernel/` wires everything; `consent/` (factors) sits on `barrier/`,
 *   `store/` and `totp/`; `barrier/` on `seal/`, `crypto/` and `audit/`; the codecs and primitives
 *   (`chain/`, `crypto/`, `totp/`, `seal/`, `audit/`) on nothing of the kernel but `util/` and the
 *   error type.
 */
const DIST = fileURLToPath(new URL('.', import.meta.url)); // packages/kernel/dist/

/** Folder → the kernel folders its built files may import (besides itself, `util/` and errors.js). */
const MAY_IMPORT: Record<string, readonly string[]> = {
  util: [],
  crypto: [],
  totp: [],
  chain: ['crypto'],
  seal: [],
  audit: ['store'],
  store: [],
  barrier: ['audit', 'crypto', 'seal'],
  consent: ['barrier', 'store', 'totp'],
  kernel: ['audit', 'barrier', 'chain', 'consent', 'crypto', 'seal', 'store'],
};

const FORBIDDEN_PACKAGES = /^(@custos\/|fastify|@fastify\/|pg$|pg\/|better-sqlite3|pino|prom-client)/;

/** The top folder of a dist file (`''` for files at the root such as index.js and errors.js). */
function folderOf(file: string): string {
  const parts = relative(DIST, file).split(sep);
  return parts.length > 1 ? (parts[0] ?? '') : '';
}

describe('the built kernel', () => {
  const files = shippedFiles(DIST);

  it('imports no other Custos package, HTTP framework, database driver or logger, and reads no environment', () => {
    assert.ok(files.length >= 50, `found ${files.length} built files`);
    for (const file of files) {
      const source = readFileSync(file, 'utf8');
      for (const spec of importsOf(source)) assert.ok(!FORBIDDEN_PACKAGES.test(spec), `${relative(DIST, file)} imports ${spec}`);
      assert.ok(!/\bprocess\.env\b/.test(source), `${relative(DIST, file)} reads process.env`);
    }
  });

  it('each folder imports only the folders below it', () => {
    for (const file of files) {
      const folder = folderOf(file);
      if (folder === '') continue; // index.js (the public surface) and errors.js
      const allowed = MAY_IMPORT[folder];
      assert.ok(allowed !== undefined, `${folder}/ has no import rule: add it to MAY_IMPORT and to docs/architecture.md`);
      for (const spec of importsOf(readFileSync(file, 'utf8'))) {
        if (!spec.startsWith('.')) continue;
        const target = folderOf(join(file, '..', spec));
        if (target === '' || target === folder || target === 'util') continue;
        assert.ok(allowed.includes(target), `${relative(DIST, file)} imports ${spec}: ${folder}/ may import ${allowed.join(', ') || 'no other folder'}`);
      }
    }
  });

  it('the import scan sees imports (it would catch a forbidden one)', () => {
    assert.deepEqual(importsOf("import { a } from '../kernel/Kernel.js';\nexport { b } from \"./b.js\";\nawait import('fastify');"), [
      '../kernel/Kernel.js',
      './b.js',
      'fastify',
    ]);
  });
});
