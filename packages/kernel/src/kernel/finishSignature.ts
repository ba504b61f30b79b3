import { CustosError, isCustosError } from '../errors.js';

/**
 * Runs a codec's `finish` (e.g. serialising the signed transaction) on a fresh signature. It runs
 * inside the store unit, whose failures become `store_unavailable`; a `finish` that throws is a
 * coding failure, not the store's, so anything but a CustosError becomes `internal` here (the unit
 * is rolled back all the same: nothing is signed, no allowed record).
 */
export function finishSignature<S, R>(finish: (signature: S) => R, signature: S): R {
  try {
    return finish(signature);
  } catch (error) {
    if (isCustosError(error)) throw error;
    throw new CustosError('internal', 'internal failure after signing; nothing was returned', { cause: error });
  }
}
