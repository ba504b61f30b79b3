import { keccak_256 } from '@noble/hashes/sha3.js';
import type { ParsedTypedData, TypedField } from './parseTypedData.js';
import type { Hex } from './types.js';

/** What a test may watch while a digest is computed: each type hash as it is computed. */
export interface TypedDataHashObserver {
  onTypeHash?: (type: string) => void;
}

const WORD = 32;
const ARRAY_SUFFIXES = /(\[[0-9]*\])+$/;
const utf8 = new TextEncoder();

/**
 * EIP-712: keccak-256(0x19 0x01 ‖ hashStruct(EIP712Domain, domain) ‖ hashStruct(primaryType, message)),
 * over data parseTypedData has validated and normalised (integers as bigints, addresses and bytes
 * as 0x-hex). Each struct type's typeHash = keccak-256(encodeType) is computed once per call and
 * reused: viem's hashTypedData recomputes encodeType (a walk of every dependency) for every struct
 * value, which made a long chain of types with many values cost seconds. The encoding is EIP-712's
 * encodeData, one 32-byte word per member; a property test checks the digest against viem's
 * hashTypedData, byte for byte.
 */
export function hashTypedData(data: ParsedTypedData, observer: TypedDataHashObserver = {}): Hex {
  const { types } = data;
  const typeHashes = new Map<string, Uint8Array>();

  const typeHash = (type: string): Uint8Array => {
    let hash = typeHashes.get(type);
    if (hash === undefined) {
      hash = keccak_256(utf8.encode(encodeType(type, types)));
      typeHashes.set(type, hash);
      observer.onTypeHash?.(type);
    }
    return hash;
  };

  // encodeData: typeHash ‖ enc(member) for each member, hashed
  const hashStruct = (type: string, value: Record<string, unknown>): Uint8Array => {
    const fields = types[type] as TypedField[];
    const words = new Uint8Array(WORD * (1 + fields.length));
    words.set(typeHash(type), 0);
    fields.forEach((field, i) => {
      encodeField(field.type, value[field.name], words, WORD * (1 + i));
    });
    return keccak_256(words);
  };

  // enc(value) into the word at `at`: structs, bytes, strings and arrays by their hash, atomic values as one ABI word
  const encodeField = (type: string, value: unknown, out: Uint8Array, at: number): void => {
    if (types[type] !== undefined) {
      out.set(hashStruct(type, value as Record<string, unknown>), at);
    } else if (type === 'bytes') {
      out.set(keccak_256(hexBytes(value as Hex)), at);
    } else if (type === 'string') {
      out.set(keccak_256(utf8.encode(value as string)), at);
    } else if (type.endsWith(']')) {
      const element = type.slice(0, type.lastIndexOf('['));
      const items = value as unknown[];
      const words = new Uint8Array(WORD * items.length);
      items.forEach((item, i) => {
        encodeField(element, item, words, WORD * i);
      });
      out.set(keccak_256(words), at);
    } else {
      encodeAtomic(type, value, out, at);
    }
  };

  const digest = new Uint8Array(2 + 2 * WORD);
  digest.set([0x19, 0x01], 0);
  digest.set(hashStruct('EIP712Domain', data.domain), 2);
  digest.set(hashStruct(data.primaryType, data.message), 2 + WORD);
  return `0x${Buffer.from(keccak_256(digest)).toString('hex')}`;
}

/** An atomic value as its ABI word (the word at `at` is zero on entry). */
function encodeAtomic(type: string, value: unknown, out: Uint8Array, at: number): void {
  if (type === 'address') {
    // 20 bytes, left-padded
    out.set(hexBytes(value as Hex), at + WORD - 20);
  } else if (type === 'bool') {
    out[at + WORD - 1] = value === true ? 1 : 0;
  } else if (type.startsWith('bytes')) {
    // bytes1..bytes32: right-padded
    out.set(hexBytes(value as Hex), at);
  } else {
    // (u)int8..256: big-endian, negative numbers in two's complement over 256 bits
    out.set(
      Buffer.from(
        BigInt.asUintN(256, value as bigint)
          .toString(16)
          .padStart(2 * WORD, '0'),
        'hex',
      ),
      at,
    );
  }
}

function hexBytes(hex: Hex): Uint8Array {
  return Buffer.from(hex.slice(2), 'hex');
}

/**
 * EIP-712 encodeType: `Primary(type name,…)` followed by every struct type it references, directly
 * or not, sorted by name. The dependencies are found with an explicit stack (no recursion on the
 * caller's types).
 */
export function encodeType(primaryType: string, types: Record<string, readonly TypedField[]>): string {
  const found = new Set<string>([primaryType]);
  const pending = [primaryType];
  for (let type = pending.pop(); type !== undefined; type = pending.pop()) {
    for (const field of types[type] ?? []) {
      const base = field.type.replace(ARRAY_SUFFIXES, '');
      if (types[base] !== undefined && !found.has(base)) {
        found.add(base);
        pending.push(base);
      }
    }
  }
  found.delete(primaryType);
  return [primaryType, ...[...found].sort()].map((type) => `${type}(${(types[type] ?? []).map((f) => `${f.type} ${f.name}`).join(',')})`).join('');
}
