import assert from 'node:assert/strict';
import { isCustosError } from '@custos/kernel';

/** Awaits a kernel call that must be refused with `code`; returns the refusal's details. */
export async function expectCode(promise: Promise<unknown>, code: string): Promise<Record<string, unknown>> {
  try {
    await promise;
  } catch (error) {
    assert.ok(isCustosError(error), `expected a CustosError ${code}, got ${String(error)}`);
    assert.equal(error.code, code, error.message);
    return error.details;
  }
  assert.fail(`expected ${code}, but it succeeded`);
}
