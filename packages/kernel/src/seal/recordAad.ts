import { invalidInput } from '../errors.js';
import { RECORD_AAD_PREFIX } from './recordFormat.js';

const LONE_SURROGATE = /\p{Surrogate}/u;

/**
 * The associated data of a barrier record: UTF-8("custos.record.v1\0" + recordKey). Binding the
 * record key means a ciphertext copied into another record (another wallet's row) does not open.
 * The record key must be non-empty, well-formed Unicode: two different strings with lone
 * surrogates would encode to the same UTF-8 bytes, and so to the same associated data.
 */
export function recordAad(recordKey: unknown): Uint8Array {
  if (typeof recordKey !== 'string' || recordKey.length === 0) {
    throw invalidInput('recordKey', 'a non-empty string', typeof recordKey === 'string' ? 'an empty string' : typeof recordKey);
  }
  if (LONE_SURROGATE.test(recordKey)) throw invalidInput('recordKey', 'well-formed Unicode (no lone surrogates)');
  return new Uint8Array(Buffer.from(RECORD_AAD_PREFIX + recordKey, 'utf8'));
}
