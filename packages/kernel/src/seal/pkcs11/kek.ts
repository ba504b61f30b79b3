// The key-encryption key inside a PKCS#11 token: its id and label rules, finding it, generating it,
// checking its attributes, destroying it.
import type { AttributeResult, PKCS11, Template } from 'pkcs11js';
import { CustosError, invalidInput } from '../../errors.js';
import { drawRandom, type RandomBytes } from '../random.js';
import { assertPkcs11Label, loadPkcs11js, type Pkcs11Token, pkcs11Error } from './token.js';

/** Bytes of the random CKA_ID given to every KEK (hex in the sealed root's header). */
export const KEK_ID_BYTES = 16;
/** Longest key label accepted (UTF-8 bytes). */
export const KEK_LABEL_MAX_BYTES = 64;

const KEY_ID = new RegExp(`^[0-9a-f]{${2 * KEK_ID_BYTES}}$`);

/** A KEK id: the CKA_ID generateKek draws, 16 bytes as 32 lower-case hex digits (one spelling only). */
export function assertKeyId(value: unknown, field: string): string {
  if (typeof value !== 'string' || !KEY_ID.test(value)) {
    throw invalidInput(field, `${2 * KEK_ID_BYTES} lower-case hex digits`, typeof value === 'string' ? `${value.length} characters` : typeof value);
  }
  return value;
}

/** At most this many matches are read: more than one is already an ambiguity the callers refuse. */
const MAX_MATCHES = 16;

/**
 * Handles of the AES secret-key objects on the session's token matching `keyId` (CKA_ID, hex) and,
 * when given, `keyLabel` (CKA_LABEL). Private objects are visible because the session is logged in.
 */
export function findSecretKeys(module: PKCS11, session: Buffer, { keyId, keyLabel }: { keyId?: string; keyLabel?: string }): Buffer[] {
  const p = loadPkcs11js();
  const template: Template = [
    { type: p.CKA_CLASS, value: p.CKO_SECRET_KEY },
    { type: p.CKA_KEY_TYPE, value: p.CKK_AES },
  ];
  if (keyId !== undefined) template.push({ type: p.CKA_ID, value: Buffer.from(keyId, 'hex') });
  if (keyLabel !== undefined) template.push({ type: p.CKA_LABEL, value: keyLabel });
  try {
    module.C_FindObjectsInit(session, template);
  } catch (error) {
    throw pkcs11Error('hsm_unavailable', 'C_FindObjectsInit', error);
  }
  try {
    return module.C_FindObjects(session, MAX_MATCHES);
  } catch (error) {
    throw pkcs11Error('hsm_unavailable', 'C_FindObjects', error);
  } finally {
    try {
      module.C_FindObjectsFinal(session);
    } catch {
      // a failed search has already been reported; the next C_FindObjectsInit would say more
    }
  }
}

export interface GenerateKekOptions {
  /** CKA_LABEL of the new key. */
  keyLabel: string;
  /** Create the key even if a key with this label exists (its CKA_ID still tells them apart). */
  allowExistingLabel?: boolean;
  /** Source of the 16-byte CKA_ID; defaults to the token's own C_GenerateRandom. */
  random?: RandomBytes;
}

/**
 * Generates the key-encryption key inside the token: AES-256 (CKM_AES_KEY_GEN), a token object
 * (CKA_TOKEN, survives the session), private (CKA_PRIVATE: visible only after login), sensitive and
 * not extractable (its value can never leave the token, not even wrapped), usable for
 * C_Encrypt/C_Decrypt only (no wrap, unwrap, sign, verify or derive), with a random 16-byte CKA_ID
 * so that labels may repeat while the id pins one key. Refuses a label already on the token unless
 * `allowExistingLabel`. Returns the id (hex) to put in the sealed root's header.
 */
export function generateKek(token: Pkcs11Token, { keyLabel, allowExistingLabel = false, random }: GenerateKekOptions): { keyId: string } {
  // The label: 1..64 UTF-8 bytes
  assertPkcs11Label(keyLabel, 'keyLabel', KEK_LABEL_MAX_BYTES);
  if (random !== undefined && typeof random !== 'function') throw invalidInput('random', 'a function (n) => Uint8Array', typeof random);
  const { module, session } = token.use();
  const p = loadPkcs11js();
  // An existing key of that label: refused unless asked for (a second KEK would be easy to confuse)
  if (!allowExistingLabel && findSecretKeys(module, session, { keyLabel }).length > 0) {
    throw invalidInput('keyLabel', 'a label that no AES key on the token carries yet (or allowExistingLabel)', JSON.stringify(keyLabel));
  }
  let id: Uint8Array;
  if (random !== undefined) id = drawRandom(random, KEK_ID_BYTES, 'keyId');
  else {
    try {
      id = module.C_GenerateRandom(session, Buffer.alloc(KEK_ID_BYTES));
    } catch (error) {
      throw pkcs11Error('hsm_unavailable', 'C_GenerateRandom', error);
    }
  }
  const keyId = Buffer.from(id).toString('hex');
  const template: Template = [
    { type: p.CKA_CLASS, value: p.CKO_SECRET_KEY },
    { type: p.CKA_KEY_TYPE, value: p.CKK_AES },
    { type: p.CKA_VALUE_LEN, value: 32 },
    { type: p.CKA_TOKEN, value: true },
    { type: p.CKA_PRIVATE, value: true },
    { type: p.CKA_SENSITIVE, value: true },
    { type: p.CKA_EXTRACTABLE, value: false },
    { type: p.CKA_ENCRYPT, value: true },
    { type: p.CKA_DECRYPT, value: true },
    { type: p.CKA_WRAP, value: false },
    { type: p.CKA_UNWRAP, value: false },
    { type: p.CKA_SIGN, value: false },
    { type: p.CKA_VERIFY, value: false },
    { type: p.CKA_DERIVE, value: false },
    { type: p.CKA_LABEL, value: keyLabel },
    { type: p.CKA_ID, value: Buffer.from(id) },
  ];
  try {
    module.C_GenerateKey(session, { mechanism: p.CKM_AES_KEY_GEN }, template);
  } catch (error) {
    throw pkcs11Error('hsm_unavailable', 'C_GenerateKey', error);
  }
  return { keyId };
}

/**
 * Destroys the KEK with CKA_ID `keyId` (hex) on the token — after a rekey has sealed the root under
 * a new key, so that the old envelope can no longer be opened. Exactly one AES key must carry the
 * id: none is `not_found`, several are refused (invalid_input) rather than destroying a guess.
 */
export function destroyKek(token: Pkcs11Token, keyId: string): void {
  assertKeyId(keyId, 'keyId');
  const { module, session } = token.use();
  const keys = findSecretKeys(module, session, { keyId });
  if (keys.length === 0) {
    throw new CustosError('not_found', `PKCS#11: no AES key with CKA_ID ${keyId} on token ${JSON.stringify(token.tokenLabel)}`, {
      details: { field: 'keyId' },
    });
  }
  if (keys.length > 1) throw invalidInput('keyId', 'the CKA_ID of exactly one key', `${keys.length} keys`);
  try {
    module.C_DestroyObject(session, keys[0] as Buffer);
  } catch (error) {
    throw pkcs11Error('hsm_unavailable', 'C_DestroyObject', error);
  }
}

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
