import type { Mechanism, AesGCM } from 'pkcs11js';
import { loadPkcs11js } from './loadPkcs11js.js';
import { GCM_IV_BYTES, GCM_TAG_BYTES } from '../sealedRootFormat.js';

/**
 * CKM_AES_GCM with a 96-bit IV, the given associated data and a 128-bit tag. `tagBits` must be
 * spelled out: pkcs11js leaves it 0 when missing and SoftHSM2 then produces a 0-bit tag — an
 * encryption with no authentication at all (docs/operations.md, PKCS#11 HSM). The callers also check the output length.
 */
export function aesGcmMechanism(iv: Uint8Array, aad: Uint8Array): Mechanism {
  const p = loadPkcs11js();
  const parameter: AesGCM = {
    type: p.CK_PARAMS_AES_GCM_v240,
    iv: Buffer.from(iv),
    ivBits: GCM_IV_BYTES * 8,
    aad: Buffer.from(aad),
    tagBits: GCM_TAG_BYTES * 8,
  };
  return { mechanism: p.CKM_AES_GCM, parameter };
}
