import assert from 'node:assert/strict';
import { ERROR_CODES, type ErrorCode } from '@custos/kernel';
import type { LightMyRequestResponse } from 'fastify';

/**
 * The property every response keeps under bad input: never a 5xx (but for the 503 codes the test
 * makes legitimately happen, `allowed5xx`); an error body always names a known code with that code's
 * status and a message, and an `invalid_input` names its field.
 */
export function assertWellFormed(res: LightMyRequestResponse, label: string, { allowed5xx = [] as readonly ErrorCode[] } = {}): void {
  if (res.statusCode < 400) return;
  const body = res.json() as { error?: { code?: unknown; message?: unknown; details?: { field?: unknown } } };
  const code = body.error?.code;
  if (!(res.statusCode >= 500 && typeof code === 'string' && (allowed5xx as readonly string[]).includes(code)))
    assert.ok(res.statusCode < 500, `${label}: ${res.statusCode} ${res.body}`);
  assert.ok(typeof code === 'string' && Object.hasOwn(ERROR_CODES, code), `${label}: unknown error code in ${res.body}`);
  assert.equal(ERROR_CODES[code as ErrorCode].status, res.statusCode, `${label}: status of ${code}`);
  assert.equal(typeof body.error?.message, 'string', `${label}: ${res.body}`);
  if (code === 'invalid_input') assert.equal(typeof body.error?.details?.field, 'string', `${label}: ${res.body}`);
}
