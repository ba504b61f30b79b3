import { createRequire } from 'node:module';
import type * as Pkcs11js from 'pkcs11js';
import { pkcs11Error } from './pkcs11Error.js';

let loaded: typeof Pkcs11js | undefined;

/**
 * The pkcs11js binding (a native addon), loaded at the first PKCS#11 call rather than when the
 * kernel is imported: a deployment that does not use an HSM neither loads nor needs it. A binding
 * that fails to load is `hsm_unavailable`.
 */
export function loadPkcs11js(): typeof Pkcs11js {
  if (loaded === undefined) {
    try {
      loaded = createRequire(import.meta.url)('pkcs11js') as typeof Pkcs11js;
    } catch (error) {
      throw pkcs11Error('hsm_unavailable', 'loading the pkcs11js binding', error);
    }
  }
  return loaded;
}
