import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { test } from 'node:test';
import { loadSecp256k1 } from './loadSecp256k1.js';

const require = createRequire(import.meta.url);

test('loadSecp256k1 returns the native binding, cached', () => {
  const secp = loadSecp256k1();
  assert.equal(loadSecp256k1(), secp);
  // the object is the package's native wrapper, not its pure-JS `elliptic` fallback
  assert.equal(secp, require('secp256k1/bindings'));
  assert.notEqual(secp, require('secp256k1/elliptic'));
  const addons = Object.keys(require.cache).filter((path) => path.endsWith('.node'));
  assert.ok(
    addons.some((path) => path.includes('secp256k1')),
    'a secp256k1 .node addon is loaded',
  );
});

test('loadSecp256k1 throws internal, without falling back to JS, when the native addon cannot load', () => {
  // A child process where the addon loader (node-gyp-build) fails, as with a broken native build:
  // the package root `secp256k1` would silently fall back to elliptic there; loadSecp256k1 must not.
  const moduleUrl = new URL('./loadSecp256k1.js', import.meta.url).href;
  const script = `
    import Module from 'node:module';
    const load = Module._load;
    Module._load = function (request, ...rest) {
      if (request === 'node-gyp-build') throw new Error('simulated: no native build');
      return load.call(this, request, ...rest);
    };
    const fallback = Module.createRequire(${JSON.stringify(moduleUrl)})('secp256k1');
    const { loadSecp256k1 } = await import(${JSON.stringify(moduleUrl)});
    try {
      loadSecp256k1();
      console.log(JSON.stringify({ loaded: true }));
    } catch (error) {
      console.log(JSON.stringify({ name: error.name, code: error.code, message: error.message, cause: String(error.cause), fallbackWorks: typeof fallback.ecdsaSign === 'function' }));
    }
  `;
  const child = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
  assert.equal(child.status, 0, child.stderr);
  const result = JSON.parse(child.stdout) as Record<string, unknown>;
  assert.equal(result.name, 'CustosError');
  assert.equal(result.code, 'internal');
  assert.match(String(result.message), /^libsecp256k1 native binding could not be loaded/);
  assert.match(String(result.cause), /simulated: no native build/);
  assert.equal(result.fallbackWorks, true, 'the package root would have fallen back to elliptic');
});
