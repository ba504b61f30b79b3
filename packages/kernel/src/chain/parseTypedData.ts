import { CustosError, invalidInput } from '../errors.js';
import { assertAddress } from './assertAddress.js';
import { assertFields } from './assertFields.js';
import { assertHexData } from './assertHexData.js';
import type { Hex } from './types.js';

export interface TypedField {
  name: string;
  type: string;
}

/** EIP-712 typed data after validation: values normalised (integers as bigints, addresses EIP-55, bytes lower-case). */
export interface ParsedTypedData {
  domain: Record<string, unknown>;
  /** Includes EIP712Domain (given, or built from the domain's members in the standard order). */
  types: Record<string, TypedField[]>;
  primaryType: string;
  message: Record<string, unknown>;
}

/** EIP-712's domain members, in the order of the standard. */
const DOMAIN_FIELDS: readonly TypedField[] = [
  { name: 'name', type: 'string' },
  { name: 'version', type: 'string' },
  { name: 'chainId', type: 'uint256' },
  { name: 'verifyingContract', type: 'address' },
  { name: 'salt', type: 'bytes32' },
];

const IDENTIFIER = /^[A-Za-z_$][A-Za-z0-9_$]*$/;
const ARRAY_SUFFIX = /^(.*)\[([0-9]*)\]$/;
const INTEGER_TYPE = /^(u?)int([0-9]+)$/;
const BYTES_TYPE = /^bytes([0-9]+)$/;
/** Nesting of structs and arrays in a message; deeper is refused (no unbounded recursion). */
const MAX_DEPTH = 16;
/** A member's type string, e.g. `uint256[2][]`; longer is refused before it is parsed (the route schema says the same). */
const MAX_TYPE_LENGTH = 256;
/** Array dimensions of one member type; more is refused (viem's hashTypedData recurses once per dimension). */
const MAX_ARRAY_DIMENSIONS = 8;
/** How much of a caller's name or type is echoed into an error message (as assertFields does). */
const SHOWN = 64;

/**
 * Validates EIP-712 typed data and normalises it for hashing. Every refusal names the field:
 * `typedData.types.Mail[0].type`, `typedData.message.to.wallet`, `typedData.domain.chainId`.
 * Members not declared by a type are refused (they would be shown but not signed).
 */
export function parseTypedData(input: unknown, field = 'typedData'): ParsedTypedData {
  const raw = assertFields(input, field, ['domain', 'types', 'primaryType', 'message']);
  const typesRaw = assertFields(raw.types, `${field}.types`, Object.keys(raw.types ?? {}));
  // null-prototype maps: a struct named `toString` or `__proto__` is just a name
  const types: Record<string, TypedField[]> = Object.create(null);
  for (const [name, fields] of Object.entries(typesRaw)) {
    const path = `${field}.types.${name.slice(0, SHOWN)}`;
    if (!IDENTIFIER.test(name)) throw invalidInput(path, 'a struct name (an identifier)', 'a malformed name');
    // a struct named like an atomic type (`uint256`, `address`) would be read as one thing and hashed as another
    if (isAtomicType(name)) throw invalidInput(path, 'a struct name that is not an EIP-712 atomic type', JSON.stringify(name));
    if (!Array.isArray(fields)) throw invalidInput(path, 'an array of { name, type }', typeof fields);
    const seen = new Set<string>();
    types[name] = fields.map((f: unknown, i) => {
      const fieldPath = `${path}[${i}]`;
      const member = assertFields(f, fieldPath, ['name', 'type']);
      if (typeof member.name !== 'string' || !IDENTIFIER.test(member.name))
        throw invalidInput(`${fieldPath}.name`, 'a member name (an identifier)', typeof member.name);
      if (seen.has(member.name)) throw invalidInput(`${fieldPath}.name`, 'a name not used twice in the struct', JSON.stringify(member.name.slice(0, SHOWN)));
      seen.add(member.name);
      if (typeof member.type !== 'string') throw invalidInput(`${fieldPath}.type`, 'a type name', typeof member.type);
      if (member.type.length > MAX_TYPE_LENGTH)
        throw invalidInput(`${fieldPath}.type`, `a type name of at most ${MAX_TYPE_LENGTH} characters`, `${member.type.length} characters`);
      return { name: member.name, type: member.type };
    });
  }
  // every member type is an atomic type, a declared struct, or an array of one
  for (const [name, fields] of Object.entries(types)) {
    fields.forEach((f, i) => {
      const typePath = `${field}.types.${name.slice(0, SHOWN)}[${i}].type`;
      const { base, lengths } = splitArrayType(f.type);
      if (lengths.length > MAX_ARRAY_DIMENSIONS)
        throw invalidInput(typePath, `at most ${MAX_ARRAY_DIMENSIONS} array dimensions`, `more (${JSON.stringify(f.type.slice(0, SHOWN))})`);
      if (!isKnownType(base, lengths, types)) throw invalidInput(typePath, 'an EIP-712 type or a declared struct', JSON.stringify(f.type.slice(0, 64)));
    });
  }
  if (types.EIP712Domain !== undefined) {
    types.EIP712Domain.forEach((f, i) => {
      const standard = DOMAIN_FIELDS.find((d) => d.name === f.name);
      if (standard === undefined)
        throw invalidInput(
          `${field}.types.EIP712Domain[${i}].name`,
          'one of name, version, chainId, verifyingContract, salt',
          JSON.stringify(f.name.slice(0, SHOWN)),
        );
      if (standard.type !== f.type) throw invalidInput(`${field}.types.EIP712Domain[${i}].type`, standard.type, JSON.stringify(f.type.slice(0, 64)));
    });
  }

  const primaryType = raw.primaryType;
  if (typeof primaryType !== 'string' || types[primaryType] === undefined || primaryType === 'EIP712Domain') {
    throw invalidInput(
      `${field}.primaryType`,
      'the name of a struct declared in types (not EIP712Domain)',
      typeof primaryType === 'string' ? JSON.stringify(primaryType.slice(0, 64)) : typeof primaryType,
    );
  }

  const domainRaw = assertFields(
    raw.domain,
    `${field}.domain`,
    DOMAIN_FIELDS.map((d) => d.name),
  );
  const domainType = types.EIP712Domain ?? DOMAIN_FIELDS.filter((d) => domainRaw[d.name] !== undefined);
  for (const key of Object.keys(domainRaw)) {
    if (!domainType.some((d) => d.name === key)) throw invalidInput(`${field}.domain.${key}`, 'a member declared in types.EIP712Domain');
  }
  types.EIP712Domain = domainType;
  const domain = normaliseStruct(domainRaw, 'EIP712Domain', types, `${field}.domain`, 0);
  const message = normaliseStruct(raw.message, primaryType, types, `${field}.message`, 0);
  return { domain, types, primaryType, message };
}

/**
 * Splits `T[2][]` into `T` and its array lengths (outermost first), in a loop rather than by
 * recursion: the type string is the caller's, and a recursion per `[]` overflowed the stack.
 * Stops one suffix past MAX_ARRAY_DIMENSIONS (enough to refuse it).
 */
function splitArrayType(type: string): { base: string; lengths: string[] } {
  const lengths: string[] = [];
  let base = type;
  while (lengths.length <= MAX_ARRAY_DIMENSIONS) {
    const array = ARRAY_SUFFIX.exec(base);
    if (array === null) break;
    lengths.push(array[2] as string);
    base = array[1] as string;
  }
  return { base, lengths };
}

function isKnownType(base: string, lengths: readonly string[], types: Record<string, TypedField[]>): boolean {
  if (!lengths.every((length) => length === '' || /^[1-9][0-9]{0,5}$/.test(length))) return false;
  return isAtomicType(base) || (base !== 'EIP712Domain' && types[base] !== undefined);
}

/** address, bool, string, bytes, bytes1..32, (u)int8..256. */
function isAtomicType(type: string): boolean {
  if (type === 'address' || type === 'bool' || type === 'string' || type === 'bytes') return true;
  const int = INTEGER_TYPE.exec(type);
  if (int !== null) {
    const bits = Number(int[2]);
    return bits >= 8 && bits <= 256 && bits % 8 === 0 && String(bits) === int[2];
  }
  const bytes = BYTES_TYPE.exec(type);
  if (bytes !== null) {
    const n = Number(bytes[1]);
    return n >= 1 && n <= 32 && String(n) === bytes[1];
  }
  return false;
}

function normaliseStruct(value: unknown, typeName: string, types: Record<string, TypedField[]>, path: string, depth: number): Record<string, unknown> {
  if (depth > MAX_DEPTH) throw invalidInput(path, `at most ${MAX_DEPTH} levels of nesting`);
  const fields = types[typeName] as TypedField[];
  const object = assertFields(
    value,
    path,
    fields.map((f) => f.name),
    `of ${typeName}`,
  );
  const out: Record<string, unknown> = Object.create(null);
  for (const f of fields) {
    if (object[f.name] === undefined) throw invalidInput(`${path}.${f.name}`, `a value of type ${f.type}`, 'nothing');
    out[f.name] = normaliseValue(object[f.name], f.type, types, `${path}.${f.name}`, depth + 1);
  }
  return out;
}

function normaliseValue(value: unknown, type: string, types: Record<string, TypedField[]>, path: string, depth: number): unknown {
  const array = ARRAY_SUFFIX.exec(type);
  if (array !== null) {
    if (depth > MAX_DEPTH) throw invalidInput(path, `at most ${MAX_DEPTH} levels of nesting`);
    if (!Array.isArray(value)) throw invalidInput(path, `an array (${type})`, typeof value);
    const length = array[2] as string;
    if (length !== '' && value.length !== Number(length)) throw invalidInput(path, `an array of ${length} elements`, `${value.length}`);
    return value.map((v: unknown, i) => normaliseValue(v, array[1] as string, types, `${path}[${i}]`, depth + 1));
  }
  if (types[type] !== undefined) return normaliseStruct(value, type, types, path, depth);
  switch (type) {
    case 'address':
      return assertAddress(value, path);
    case 'bool':
      if (typeof value !== 'boolean') throw invalidInput(path, 'true or false', typeof value);
      return value;
    case 'string':
      if (typeof value !== 'string') throw invalidInput(path, 'a string', typeof value);
      if (!value.isWellFormed()) throw invalidInput(path, 'well-formed Unicode (no lone surrogates)');
      return value;
    case 'bytes':
      return assertHexData(value, path);
  }
  const bytes = BYTES_TYPE.exec(type);
  if (bytes !== null) return assertHexData(value, path, Number(bytes[1])) as Hex;
  const int = INTEGER_TYPE.exec(type);
  if (int !== null) return parseInteger(value, path, int[1] === 'u', Number(int[2]));
  throw new CustosError('internal', `typed data: unhandled type ${type}`);
}

/** An integer as a JSON number (safe integer) or a decimal / 0x-hex string, within its type's range. */
function parseInteger(value: unknown, path: string, unsigned: boolean, bits: number): bigint {
  const type = `${unsigned ? 'uint' : 'int'}${bits}`;
  let n: bigint;
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value)) throw invalidInput(path, `an integer (${type}); beyond 2^53 use a decimal string`, String(value));
    n = BigInt(value);
  } else if (typeof value === 'string' && value.length <= 80 && /^(-?(0|[1-9][0-9]*)|0x[0-9a-fA-F]+)$/.test(value)) {
    n = BigInt(value);
  } else {
    throw invalidInput(
      path,
      `an integer (${type}): a JSON number or a decimal / 0x-hex string`,
      typeof value === 'string' ? 'a malformed string' : typeof value,
    );
  }
  const min = unsigned ? 0n : -(1n << BigInt(bits - 1));
  const max = unsigned ? (1n << BigInt(bits)) - 1n : (1n << BigInt(bits - 1)) - 1n;
  if (n < min || n > max) throw invalidInput(path, `a ${type} in range`, 'a value out of range');
  return n;
}
