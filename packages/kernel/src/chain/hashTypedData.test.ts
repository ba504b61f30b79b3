import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { hashTypedData as viemHashTypedData } from 'viem';
import { recoverTypedDataAddress } from 'viem';
import { signDigest } from '../crypto/signDigest.js';
import { loadVectors } from '../testing/loadVectors.js';
import { toHex } from '../util/hex.js';
import { hashTypedData } from './hashTypedData.js';
import { parseTypedData } from './parseTypedData.js';
import { prepareTypedData } from './prepareTypedData.js';

type Hex = `0x${string}`;
type Field = { name: string; type: string };
const hexOf = (bytes: Uint8Array): Hex => `0x${toHex(bytes)}`;

/** bigints as decimal strings: the JSON a caller sends (viem gets the bigints themselves). */
const toJson = (value: unknown): unknown =>
  typeof value === 'bigint'
    ? value.toString()
    : Array.isArray(value)
      ? value.map(toJson)
      : typeof value === 'object' && value !== null
        ? Object.fromEntries(Object.entries(value).map(([k, v]) => [k, toJson(v)]))
        : value;

// ---- random EIP-712 data: a few struct types (each may reference later ones, as members or arrays), random values

const ATOMIC = fc.oneof(
  fc.constantFrom('address', 'bool', 'string', 'bytes'),
  fc.integer({ min: 1, max: 32 }).map((n) => `bytes${n}`),
  fc.tuple(fc.constantFrom('uint', 'int'), fc.integer({ min: 1, max: 32 })).map(([kind, n]) => `${kind}${8 * n}`),
);
/** Names chosen so that the dependency sort (code-unit order: `$` < upper case < `_` < lower case) matters. */
const NAMES = ['Mail', 'alpha', 'Zeta', '_under', '$dollar', 'Beta2', 'a'];

const typedData = fc
  .tuple(
    fc.shuffledSubarray(NAMES, { minLength: 1, maxLength: 5 }),
    fc.array(fc.array(fc.tuple(ATOMIC, fc.nat(), fc.constantFrom('', '[]', '[2]', '[][1]')), { maxLength: 5 }), { minLength: 5, maxLength: 5 }),
  )
  .map(([names, members]) => {
    const types: Record<string, Field[]> = {};
    names.forEach((name, i) => {
      types[name] = (members[i] ?? []).map(([atomic, pick, suffix], k) => {
        // a later struct (no cycles) about a third of the time, else an atomic type
        const later = names.slice(i + 1);
        const base = later.length > 0 && pick % 3 === 0 ? (later[pick % later.length] as string) : atomic;
        return { name: `m${k}`, type: `${base}${suffix}` };
      });
    });
    return { types, primaryType: names[0] as string };
  })
  .chain(({ types, primaryType }) => {
    const arbitraryValue = (type: string): fc.Arbitrary<unknown> => {
      const array = /^(.*)\[([0-9]*)\]$/.exec(type);
      if (array !== null) {
        const element = arbitraryValue(array[1] as string);
        return array[2] === '' ? fc.array(element, { maxLength: 3 }) : fc.array(element, { minLength: Number(array[2]), maxLength: Number(array[2]) });
      }
      const fields = types[type];
      if (fields !== undefined) return fc.record(Object.fromEntries(fields.map((f) => [f.name, arbitraryValue(f.type)])));
      if (type === 'address') return fc.uint8Array({ minLength: 20, maxLength: 20 }).map(hexOf);
      if (type === 'bool') return fc.boolean();
      if (type === 'string') return fc.string({ unit: 'grapheme', maxLength: 40 });
      if (type === 'bytes') return fc.uint8Array({ maxLength: 70 }).map(hexOf);
      const bytes = /^bytes([0-9]+)$/.exec(type);
      if (bytes !== null) return fc.uint8Array({ minLength: Number(bytes[1]), maxLength: Number(bytes[1]) }).map(hexOf);
      const [, kind, bits] = /^(u?int)([0-9]+)$/.exec(type) as RegExpExecArray;
      const b = BigInt(bits as string);
      return kind === 'uint' ? fc.bigInt({ min: 0n, max: (1n << b) - 1n }) : fc.bigInt({ min: -(1n << (b - 1n)), max: (1n << (b - 1n)) - 1n });
    };
    const domain = fc.record(
      {
        name: fc.string({ maxLength: 20 }),
        version: fc.string({ maxLength: 5 }),
        chainId: fc.bigInt({ min: 0n, max: (1n << 256n) - 1n }),
        verifyingContract: fc.uint8Array({ minLength: 20, maxLength: 20 }).map(hexOf),
        salt: fc.uint8Array({ minLength: 32, maxLength: 32 }).map(hexOf),
      },
      { requiredKeys: [] },
    );
    return fc.record({ domain, types: fc.constant(types), primaryType: fc.constant(primaryType), message: arbitraryValue(primaryType) });
  });

test('property: the digest equals viem’s hashTypedData, byte for byte, for random typed data', () => {
  fc.assert(
    fc.property(typedData, (data) => {
      const ours = hashTypedData(parseTypedData(toJson(data)));
      const viem = viemHashTypedData(data as Parameters<typeof viemHashTypedData>[0]);
      assert.equal(ours, viem);
    }),
    { numRuns: 300 },
  );
});

test('a recursive type (a tree of nodes) hashes as viem does', () => {
  const data = {
    domain: { name: 'Tree', chainId: 1n },
    types: {
      Node: [
        { name: 'label', type: 'string' },
        { name: 'children', type: 'Node[]' },
      ],
    },
    primaryType: 'Node',
    message: {
      label: 'root',
      children: [
        { label: 'a', children: [] },
        { label: 'b', children: [{ label: 'c', children: [] }] },
      ],
    },
  };
  assert.equal(hashTypedData(parseTypedData(toJson(data))), viemHashTypedData(data as Parameters<typeof viemHashTypedData>[0]));
});

test('issue 9: each type hash is computed once per request, however many values share it', () => {
  // a chain of 31 long-named types (the most the caps allow with EIP712Domain) and 500 struct values
  const name = (i: number) => `T${i}_${'x'.repeat(120)}`;
  const types: Record<string, Field[]> = {};
  for (let i = 0; i < 31; i++)
    types[name(i)] =
      i < 30
        ? [
            { name: 'v', type: 'uint8' },
            { name: 'n', type: `${name(i + 1)}[]` },
          ]
        : [{ name: 'v', type: 'uint8' }];
  // values at depths 0..3 of the chain: T1 ×250, each of the first 100 with a T2, of which 50 with a T3
  const t3 = { v: 3, n: [] };
  const t2 = (i: number) => ({ v: 2, n: i < 50 ? [t3] : [] });
  const message = { v: 0, n: Array.from({ length: 250 }, (_, i) => ({ v: 1, n: i < 100 ? [t2(i)] : [] })) };
  const data = { domain: { name: 'chain' }, types, primaryType: name(0), message };
  const hashed: string[] = [];
  const started = performance.now();
  const prepared = prepareTypedData(data, { onTypeHash: (type) => hashed.push(type) });
  const ms = performance.now() - started;
  // EIP712Domain, T0, T1, T2, T3: once each (viem computed one per struct value: 402 here)
  assert.deepEqual(hashed.sort(), ['EIP712Domain', name(0), name(1), name(2), name(3)].sort());
  assert.equal(`0x${toHex(prepared.digest)}`, viemHashTypedData(data as Parameters<typeof viemHashTypedData>[0]));
  assert.ok(ms < 1000, `hashed in ${ms.toFixed(0)} ms`);
  console.log(`# 401 struct values over a chain of 31 types: ${hashed.length} type hashes, ${ms.toFixed(0)} ms`);
});

interface Payloads {
  privateKey: string;
  address: Hex;
  payloads: Array<{ name: string; typedData: Record<string, unknown>; digest: Hex; signature: Hex }>;
}

test('real payloads pass the caps and sign: Permit2 PermitBatch (10 details), Seaport 1.5 OrderComponents', async () => {
  const vectors = loadVectors<Payloads>('typed-data-payloads.json');
  assert.deepEqual(
    vectors.payloads.map((p) => p.name),
    ['permit2PermitBatch', 'seaportOrderComponents'],
  );
  const key = new Uint8Array(Buffer.from(vectors.privateKey, 'hex'));
  for (const { name, typedData: data, digest, signature } of vectors.payloads) {
    const prepared = prepareTypedData(data);
    assert.equal(`0x${toHex(prepared.digest)}`, digest, name);
    const sig = signDigest(key, prepared.digest);
    const result = prepared.finish({ r: sig.r, s: sig.s, yParity: sig.recovery as 0 | 1 });
    assert.equal(result.signature, signature, name);
    assert.equal(
      await recoverTypedDataAddress({ ...(data as Parameters<typeof viemHashTypedData>[0]), signature: result.signature as Hex }),
      vectors.address,
      name,
    );
  }
});
