import { BaseError } from 'viem';
import { CustosApiError } from './errors.js';

/**
 * What a Custos viem account throws. viem's actions (`sendTransaction`, …) read `details` of an
 * account's error as a string and wrap it, so the SDK's errors (whose `details` is the server's
 * object) travel inside this viem `BaseError`: `cause` is the original (`CustosApiError`,
 * `CustosRequestError`, `CustosInputError`) and `code` / `status` / `retryAfter` are copied from a
 * `CustosApiError`. Find it in a viem error with `error.walk((e) => e instanceof CustosViemError)`.
 */
export class CustosViemError extends BaseError {
  override name = 'CustosViemError';
  readonly code: string | undefined;
  readonly status: number | undefined;
  readonly retryAfter: number | undefined;

  constructor(cause: Error) {
    super(cause.message, { cause });
    this.code = cause instanceof CustosApiError ? cause.code : undefined;
    this.status = cause instanceof CustosApiError ? cause.status : undefined;
    this.retryAfter = cause instanceof CustosApiError ? cause.retryAfter : undefined;
  }
}
