import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { CustosError } from '../errors.js';
import { finishSignature } from './finishSignature.js';

describe('finishSignature', () => {
  test('returns what finish returns', () => {
    assert.equal(
      finishSignature((s: number) => s * 2, 21),
      42,
    );
  });

  test('a coding failure in finish is internal (not store_unavailable), the cause kept off the public shape', () => {
    const cause = new RangeError('serialiser broke');
    assert.throws(
      () =>
        finishSignature(() => {
          throw cause;
        }, 0),
      (error: unknown) =>
        error instanceof CustosError &&
        error.code === 'internal' &&
        error.status === 500 &&
        error.cause === cause &&
        !JSON.stringify(error).includes('serialiser'),
    );
  });

  test('a kernel decision thrown by finish passes unchanged', () => {
    const decision = new CustosError('invalid_input', 'transaction: refused');
    assert.throws(
      () =>
        finishSignature(() => {
          throw decision;
        }, 0),
      (error: unknown) => error === decision,
    );
  });
});
