import { invalidInput } from '../errors.js';
import { readSealedRootV2 } from './readSealedRootV2.js';
import { SEALED_ROOT_VERSION } from './sealedRootFormat.js';
import { SEALED_ROOT_V2 } from './sealedRootV2.js';
import type { UnsealerInfo } from './unsealerTypes.js';

/**
 * Which unsealer a sealed root needs, from its header (no secret is involved): version 1 is the
 * passphrase; version 2 names Shamir (threshold, shares, share set) or PKCS#11 (token, key).
 */
export function describeUnsealer(envelope: unknown): UnsealerInfo {
  const version = typeof envelope === 'object' && envelope !== null ? (envelope as Record<string, unknown>).version : undefined;
  if (version === SEALED_ROOT_VERSION) return { type: 'passphrase' };
  if (version === SEALED_ROOT_V2) return readSealedRootV2(envelope).envelope.unsealer;
  throw invalidInput('version', `${SEALED_ROOT_VERSION} or ${SEALED_ROOT_V2}`, typeof version === 'number' ? String(version) : typeof version);
}
