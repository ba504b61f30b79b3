import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { generateTotpSecret } from './generateTotpSecret.js';

describe('generateTotpSecret', () => {
  it('returns 20 bytes from the injected source, asking it for exactly 20', () => {
    const asked: number[] = [];
    const secret = generateTotpSecret((n) => {
      asked.push(n);
      return Uint8Array.from({ length: n }, (_, i) => i + 1);
    });
    assert.deepEqual(asked, [20]);
    assert.deepEqual(
      secret,
      Uint8Array.from({ length: 20 }, (_, i) => i + 1),
    );
  });

  it('returns a plain Uint8Array copy (no alias, no Buffer whose toJSON would leak it) and wipes the source buffer', () => {
    const source = randomBytes(20);
    const expected = new Uint8Array(source);
    const secret = generateTotpSecret(() => source);
    assert.equal(Object.getPrototypeOf(secret), Uint8Array.prototype);
    assert.notEqual(secret.buffer, source.buffer);
    assert.deepEqual(secret, expected);
    assert.deepEqual(new Uint8Array(source), new Uint8Array(20));
  });

  it('gives different secrets from a real CSPRNG', () => {
    const a = generateTotpSecret(randomBytes);
    const b = generateTotpSecret(randomBytes);
    assert.equal(a.length, 20);
    assert.notDeepEqual(a, b);
  });

  it('refuses a source that returns another length or type', () => {
    for (const bad of [new Uint8Array(19), new Uint8Array(21), new Uint8Array(0), 'x'.repeat(20), null]) {
      assert.throws(() => generateTotpSecret(() => bad as Uint8Array), {
        code: 'invalid_input',
        details: { field: 'random' },
      });
    }
  });
});
