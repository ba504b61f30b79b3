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

/**
 * How much work one typed-data request may ask for; more is refused (invalid_input naming where)
 * before anything is hashed. Sized so that real payloads pass with room to spare — Permit2's
 * PermitBatch (3 types), Seaport's OrderComponents (4 types, 11 members, one struct per item) —
 * while the hashing stays linear and small (published in docs/operations-ethereum.md).
 */
export const TYPED_DATA_LIMITS = Object.freeze({
  /** Struct types declared in `types` (EIP712Domain included). */
  maxTypes: 32,
  /** Members of one struct type. */
  maxFields: 64,
  /** A struct or member name, in characters. */
  maxNameLength: 128,
  /** A member's type string, e.g. `uint256[2][]` (the route schema says the same). */
  maxTypeLength: 256,
  /** Array dimensions of one member type. */
  maxArrayDimensions: 8,
  /** Nesting of structs and arrays in a message (no unbounded recursion). */
  maxDepth: 16,
  /** Elements of one array. */
  maxArrayLength: 1024,
  /** Struct values in domain and message together (array elements included). */
  maxStructValues: 512,
  /** Values in domain and message together: every member value and every array element. */
  maxValues: 4096,
});
const { maxDepth: MAX_DEPTH, maxTypeLength: MAX_TYPE_LENGTH, maxArrayDimensions: MAX_ARRAY_DIMENSIONS } = TYPED_DATA_LIMITS;

/** What the values of one request have used of TYPED_DATA_LIMITS so far. */
interface ValueBudget {
  structValues: number;
  values: number;
}
/** How much of a caller's name or type is echoed into an error message (as assertFields does). */
const SHOWN = 64;

/**
 * Validates EIP-712 typed data and normalises it for hashing. Every refusal names the field:
 * `typedData.types.Mail[0].type`, `typedData.message.to.wallet`, `typedData.domain.chainId`.
 * Members not declared by a type are refused (they would be shown but not signed).
 */
export function parseTypedData(input: unknown, field = 'typedData'): ParsedTypedData {
  const raw = assertFields(input, field, ['domain', 'types', 'primaryType', 'message']);
  if (typeof raw.types !== 'object' || raw.types === null || Array.isArray(raw.types)) {
    throw invalidInput(`${field}.types`, 'a JSON object', raw.types === null ? 'null' : Array.isArray(raw.types) ? 'an array' : typeof raw.types);
  }
  const typeCount = Object.keys(raw.types).length;
  if (typeCount > TYPED_DATA_LIMITS.maxTypes) throw invalidInput(`${field}.types`, `at most ${TYPED_DATA_LIMITS.maxTypes} struct types`, String(typeCount));
  const typesRaw = raw.types as Record<string, unknown>;
  // null-prototype maps: a struct named `toString` or `__proto__` is just a name
  const types: Record<string, TypedField[]> = Object.create(null);
  for (const [name, fields] of Object.entries(typesRaw)) {
    const path = `${field}.types.${name.slice(0, SHOWN)}`;
    if (name.length > TYPED_DATA_LIMITS.maxNameLength)
      throw invalidInput(path, `a struct name of at most ${TYPED_DATA_LIMITS.maxNameLength} characters`, `${name.length} characters`);
    if (!IDENTIFIER.test(name)) throw invalidInput(path, 'a struct name (an identifier)', 'a malformed name');
    // a struct named like an atomic type (`uint256`, `address`) would be read as one thing and hashed as another
    if (isAtomicType(name)) throw invalidInput(path, 'a struct name that is not an EIP-712 atomic type', JSON.stringify(name));
    if (!Array.isArray(fields)) throw invalidInput(path, 'an array of { name, type }', typeof fields);
    if (fields.length > TYPED_DATA_LIMITS.maxFields) throw invalidInput(path, `at most ${TYPED_DATA_LIMITS.maxFields} members`, String(fields.length));
    const seen = new Set<string>();
    types[name] = fields.map((f: unknown, i) => {
      const fieldPath = `${path}[${i}]`;
      const member = assertFields(f, fieldPath, ['name', 'type']);
      if (typeof member.name === 'string' && member.name.length > TYPED_DATA_LIMITS.maxNameLength)
        throw invalidInput(`${fieldPath}.name`, `a member name of at most ${TYPED_DATA_LIMITS.maxNameLength} characters`, `${member.name.length} characters`);
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
  const budget: ValueBudget = { structValues: 0, values: 0 };
  const domain = normaliseStruct(domainRaw, 'EIP712Domain', types, `${field}.domain`, 0, budget);
  const message = normaliseStruct(raw.message, primaryType, types, `${field}.message`, 0, budget);
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

function normaliseStruct(
  value: unknown,
  typeName: string,
  types: Record<string, TypedField[]>,
  path: string,
  depth: number,
  budget: ValueBudget,
): Record<string, unknown> {
  if (depth > MAX_DEPTH) throw invalidInput(path, `at most ${MAX_DEPTH} levels of nesting`);
  budget.structValues += 1;
  if (budget.structValues > TYPED_DATA_LIMITS.maxStructValues)
    throw invalidInput(path, `at most ${TYPED_DATA_LIMITS.maxStructValues} struct values in domain and message together`, 'more');
  const fields = types[typeName] as TypedField[];
  const object = assertFields(
    value,
    path,
    fields.map((f) => f.name),
    `of ${typeName}`,
  );
  const out: Record<string, unknown> = Object.create(null);
  for (const f of fields) {
    // an own member only: a member named `__proto__` or `constructor` must not be read from the prototype
    const member = Object.hasOwn(object, f.name) ? object[f.name] : undefined;
    if (member === undefined) throw invalidInput(`${path}.${f.name}`, `a value of type ${f.type}`, 'nothing');
    out[f.name] = normaliseValue(member, f.type, types, `${path}.${f.name}`, depth + 1, budget);
  }
  return out;
}

function normaliseValue(value: unknown, type: string, types: Record<string, TypedField[]>, path: string, depth: number, budget: ValueBudget): unknown {
  budget.values += 1;
  if (budget.values > TYPED_DATA_LIMITS.maxValues)
    throw invalidInput(path, `at most ${TYPED_DATA_LIMITS.maxValues} values in domain and message together`, 'more');
  const array = ARRAY_SUFFIX.exec(type);
  if (array !== null) {
    if (depth > MAX_DEPTH) throw invalidInput(path, `at most ${MAX_DEPTH} levels of nesting`);
    if (!Array.isArray(value)) throw invalidInput(path, `an array (${type})`, typeof value);
    // the length before any element is looked at: refusing costs nothing however long the array
    if (value.length > TYPED_DATA_LIMITS.maxArrayLength)
      throw invalidInput(path, `an array of at most ${TYPED_DATA_LIMITS.maxArrayLength} elements`, `${value.length}`);
    const length = array[2] as string;
    if (length !== '' && value.length !== Number(length)) throw invalidInput(path, `an array of ${length} elements`, `${value.length}`);
    return value.map((v: unknown, i) => normaliseValue(v, array[1] as string, types, `${path}[${i}]`, depth + 1, budget));
  }
  if (types[type] !== undefined) return normaliseStruct(value, type, types, path, depth, budget);
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
