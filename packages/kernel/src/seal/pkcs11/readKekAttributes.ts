import type { PKCS11, AttributeResult } from 'pkcs11js';
import { loadPkcs11js } from './loadPkcs11js.js';
import { pkcs11Error } from './pkcs11Error.js';

/** What the kernel checks of a KEK object before it trusts it with the root. */
export interface KekAttributes {
  keyType: number;
  valueLength: number;
  sensitive: boolean;
  extractable: boolean;
  neverExtractable: boolean;
  encrypt: boolean;
  decrypt: boolean;
}

/** A CK_ULONG attribute value (native-endian, 4 or 8 bytes) as a number. */
function readUlong(value: Buffer): number {
  if (value.length === 8) return Number(value.readBigUInt64LE(0));
  if (value.length === 4) return value.readUInt32LE(0);
  return Number.NaN;
}

/** Reads the key's attributes that decide whether it is a proper KEK (none of them secret). */
export function readKekAttributes(module: PKCS11, session: Buffer, key: Buffer): KekAttributes {
  const p = loadPkcs11js();
  const types = [p.CKA_KEY_TYPE, p.CKA_VALUE_LEN, p.CKA_SENSITIVE, p.CKA_EXTRACTABLE, p.CKA_NEVER_EXTRACTABLE, p.CKA_ENCRYPT, p.CKA_DECRYPT];
  let values: AttributeResult[];
  try {
    values = module.C_GetAttributeValue(
      session,
      key,
      types.map((type) => ({ type })),
    );
  } catch (error) {
    throw pkcs11Error('hsm_unavailable', 'C_GetAttributeValue', error);
  }
  const attribute = (type: number): Buffer => values.find((v) => v.type === type)?.value ?? Buffer.alloc(0);
  const bool = (type: number): boolean => attribute(type).length === 1 && attribute(type)[0] === 1;
  return {
    keyType: readUlong(attribute(p.CKA_KEY_TYPE)),
    valueLength: readUlong(attribute(p.CKA_VALUE_LEN)),
    sensitive: bool(p.CKA_SENSITIVE),
    extractable: bool(p.CKA_EXTRACTABLE),
    neverExtractable: bool(p.CKA_NEVER_EXTRACTABLE),
    encrypt: bool(p.CKA_ENCRYPT),
    decrypt: bool(p.CKA_DECRYPT),
  };
}

/**
 * Why a key is not fit to be the KEK, or undefined when it is: AES-256, sensitive, not extractable
 * and never extractable (so it was generated inside the token, never imported or exported), with
 * the use asked for.
 */
export function kekDefect(attributes: KekAttributes, use: 'encrypt' | 'decrypt'): string | undefined {
  const p = loadPkcs11js();
  if (attributes.keyType !== p.CKK_AES) return 'it is not an AES key';
  if (attributes.valueLength !== 32) return `it is ${attributes.valueLength * 8}-bit AES, not AES-256`;
  if (!attributes.sensitive) return 'CKA_SENSITIVE is false';
  if (attributes.extractable) return 'CKA_EXTRACTABLE is true';
  if (!attributes.neverExtractable) return 'CKA_NEVER_EXTRACTABLE is false (the key was extractable once)';
  if (!attributes[use]) return `CKA_${use.toUpperCase()} is false`;
  return undefined;
}
