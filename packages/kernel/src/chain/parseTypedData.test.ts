import assert from 'node:assert/strict';
import { test } from 'node:test';
import { hashTypedData } from 'viem';
import { CustosError } from '../errors.js';
import { loadVectors } from '../testing/loadVectors.js';
import { toHex } from '../util/hex.js';
import { TYPED_DATA_LIMITS } from './parseTypedData.js';
import { prepareTypedData } from './prepareTypedData.js';

const { typedData: MAIL } = loadVectors<{ eip712: { typedData: Record<string, unknown> } }>('ethereum-operations.json').eip712;
const FROM = '0x13767Ad8c74C0E68686aAa34d40aA710DcCd684A';

/** The Ether Mail data as a loosely typed tree, for tests that break one member of it. */
// biome-ignore lint/suspicious/noExplicitAny: a test edits arbitrary members of a JSON tree
type Json = any;

function mail(edit: (data: Json) => void): unknown {
  const data = structuredClone(MAIL);
  edit(data);
  return data;
}

function refuses(input: unknown, field: string): void {
  assert.throws(
    () => prepareTypedData(input),
    (e: unknown) => e instanceof CustosError && e.code === 'invalid_input' && e.details.field === field,
    field,
  );
}

test('refuses typed data that fails EIP-712 validation, naming the field', () => {
  refuses(
    mail((d) => {
      d.types.Mail[0].type = 'Persn';
    }),
    'typedData.types.Mail[0].type',
  );
  refuses(
    mail((d) => {
      d.types.Mail[2].type = 'uint7';
    }),
    'typedData.types.Mail[2].type',
  );
  refuses(
    mail((d) => {
      d.types.Mail[2].type = 'bytes33';
    }),
    'typedData.types.Mail[2].type',
  );
  refuses(
    mail((d) => {
      d.types.Mail[2].type = 'toString';
    }),
    'typedData.types.Mail[2].type',
  );
  refuses(
    mail((d) => {
      d.types.Mail[1].name = 'from';
    }),
    'typedData.types.Mail[1].name',
  );
  refuses(
    mail((d) => {
      d.types.Mail[1] = { name: 'to' };
    }),
    'typedData.types.Mail[1].type',
  );
  refuses(
    mail((d) => {
      d.types.Mail = {};
    }),
    'typedData.types.Mail',
  );
  refuses(
    mail((d) => {
      d.primaryType = 'Letter';
    }),
    'typedData.primaryType',
  );
  refuses(
    mail((d) => {
      d.primaryType = 'EIP712Domain';
    }),
    'typedData.primaryType',
  );
  refuses(
    mail((d) => {
      d.types.EIP712Domain[2].type = 'uint64';
    }),
    'typedData.types.EIP712Domain[2].type',
  );
  refuses(
    mail((d) => {
      d.domain.chainId = 'one';
    }),
    'typedData.domain.chainId',
  );
  refuses(
    mail((d) => {
      d.domain.verifyingContract = '0xCCCCccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC';
    }),
    'typedData.domain.verifyingContract',
  );
  refuses(
    mail((d) => {
      d.domain.salt = '0x01';
    }),
    'typedData.domain.salt',
  );
  refuses(
    mail((d) => {
      d.domain.extra = 1;
    }),
    'typedData.domain.extra',
  );
  refuses(
    mail((d) => {
      delete d.domain.version;
    }),
    'typedData.domain.version',
  );
  refuses(
    mail((d) => {
      d.message.to.wallet = '0x12';
    }),
    'typedData.message.to.wallet',
  );
  refuses(
    mail((d) => {
      delete d.message.contents;
    }),
    'typedData.message.contents',
  );
  refuses(
    mail((d) => {
      d.message.bcc = 'x';
    }),
    'typedData.message.bcc',
  );
  refuses(
    mail((d) => {
      d.message.from = 'Cow';
    }),
    'typedData.message.from',
  );
});

test('a huge or deeply nested array type is refused as bad input, not a stack overflow', () => {
  const typed = (type: string) => ({ domain: { name: 'T' }, types: { T: [{ name: 'v', type }] }, primaryType: 'T', message: { v: [] } });
  // these overflowed the stack (a RangeError, a 500) when the suffixes were parsed by recursion
  for (const type of [`uint256${'[]'.repeat(20000)}`, `uint256${'[]'.repeat(15000)}`, `uint256${'[]'.repeat(127)}`]) {
    refuses(typed(type), 'typedData.types.T[0].type');
  }
  // within 256 characters but more than 8 dimensions
  refuses(typed(`uint256${'[]'.repeat(9)}`), 'typedData.types.T[0].type');
  assert.throws(() => prepareTypedData(typed(`uint256${'[]'.repeat(9)}`)), /at most 8 array dimensions/);
  assert.throws(() => prepareTypedData(typed(`uint256${'[]'.repeat(20000)}`)), /at most 256 characters/);
  // 8 dimensions are accepted and hash as viem does
  const eight = typed(`uint256${'[]'.repeat(8)}`);
  assert.equal(`0x${toHex(prepareTypedData(eight).digest)}`, hashTypedData(eight as Parameters<typeof hashTypedData>[0]));
});

test('names from the caller are cut to 64 characters in error messages', () => {
  const long = `A${'a'.repeat(10_000)}`;
  const messageOf = (input: unknown): string => {
    try {
      prepareTypedData(input);
    } catch (e) {
      assert.ok(e instanceof CustosError && e.code === 'invalid_input', String(e));
      return e.message;
    }
    assert.fail('accepted');
  };
  // a struct name in the field path; a member name used twice; an EIP712Domain member
  const inPath = messageOf({ domain: {}, types: { [long]: [{ name: 'a', type: 'nope' }] }, primaryType: long, message: {} });
  const twice = messageOf({
    domain: {},
    types: {
      T: [
        { name: long, type: 'bool' },
        { name: long, type: 'bool' },
      ],
    },
    primaryType: 'T',
    message: {},
  });
  const domain = messageOf({ domain: {}, types: { EIP712Domain: [{ name: long, type: 'string' }], T: [] }, primaryType: 'T', message: {} });
  for (const message of [inPath, twice, domain]) assert.ok(message.length < 400, `${message.length} characters: ${message.slice(0, 200)}`);
});

test('a struct may not be named like an atomic type', () => {
  for (const name of ['uint256', 'address', 'bytes32', 'string']) {
    refuses(
      { domain: {}, types: { [name]: [{ name: 'a', type: 'bool' }], T: [{ name: 'x', type: name }] }, primaryType: 'T', message: { x: { a: true } } },
      `typedData.types.${name}`,
    );
  }
});

test('integers: JSON numbers or decimal/hex strings, in range; arrays of fixed length; bytes', () => {
  const data = (type: string, value: unknown) => ({ domain: { name: 'T' }, types: { T: [{ name: 'v', type }] }, primaryType: 'T', message: { v: value } });
  const digest = (type: string, value: unknown) => toHex(prepareTypedData(data(type, value)).digest);
  assert.equal(digest('uint256', 255), digest('uint256', '255'));
  assert.equal(digest('uint256', '0xff'), digest('uint256', '255'));
  assert.equal(digest('int8', -128), digest('int8', '-128'));
  refuses(data('uint8', 256), 'typedData.message.v');
  refuses(data('uint8', -1), 'typedData.message.v');
  refuses(data('int8', 128), 'typedData.message.v');
  refuses(data('uint256', 2 ** 53), 'typedData.message.v');
  refuses(data('uint256', 1.5), 'typedData.message.v');
  refuses(data('uint256', (2n ** 256n).toString()), 'typedData.message.v');
  refuses(data('uint256', '1e3'), 'typedData.message.v');
  refuses(data('bool', 'true'), 'typedData.message.v');
  refuses(data('bytes4', '0x010203'), 'typedData.message.v');
  refuses(data('bytes', '0x123'), 'typedData.message.v');
  refuses(data('uint8[2]', [1]), 'typedData.message.v');
  refuses(data('uint8[]', [1, 2, 300]), 'typedData.message.v[2]');
  refuses(data('string', 1), 'typedData.message.v');
  // the digest agrees with viem's for the same data
  const ok = data('uint8[2][]', [
    [1, 2],
    [3, 4],
  ]);
  assert.equal(
    `0x${toHex(prepareTypedData(ok).digest)}`,
    hashTypedData({
      domain: { name: 'T' },
      types: { T: [{ name: 'v', type: 'uint8[2][]' }] },
      primaryType: 'T',
      message: {
        v: [
          [1, 2],
          [3, 4],
        ],
      },
    }),
  );
  // recursion deeper than the limit is refused, not a stack overflow: more than 8 array
  // dimensions are refused in the type (see above), so nest a self-referencing struct instead
  let deep: unknown = { n: [] };
  for (let i = 0; i < 40; i++) deep = { n: [deep] };
  assert.throws(
    () => prepareTypedData({ domain: { name: 'T' }, types: { N: [{ name: 'n', type: 'N[]' }] }, primaryType: 'N', message: deep }),
    (e: unknown) => e instanceof CustosError && e.code === 'invalid_input' && /levels of nesting/.test(e.message),
  );
});

test('the summary shows domain, primary type and chain; an EIP-2612 Permit is decoded, unlimited flagged', () => {
  const { summary, summaryText } = prepareTypedData(MAIL).summarize(FROM);
  assert.equal(summary.primaryType, 'Mail');
  assert.deepEqual(summary.chain, { id: 1, name: 'Ethereum', currency: 'ETH' });
  assert.deepEqual(summary.domain, { name: 'Ether Mail', version: '1', chainId: '1', verifyingContract: '0xCcCCccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC' });
  assert.equal(
    summaryText,
    `Sign EIP-712 Mail as ${FROM}, for "Ether Mail" version "1", contract 0xCcCCccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC, on Ethereum (chain 1)`,
  );

  const permit = {
    domain: { name: 'USD Coin', version: '2', chainId: 8453, verifyingContract: '0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913' },
    types: {
      Permit: [
        { name: 'owner', type: 'address' },
        { name: 'spender', type: 'address' },
        { name: 'value', type: 'uint256' },
        { name: 'nonce', type: 'uint256' },
        { name: 'deadline', type: 'uint256' },
      ],
    },
    primaryType: 'Permit',
    message: { owner: FROM, spender: '0x000000000000000000000000000000000000dEaD', value: (2n ** 256n - 1n).toString(), nonce: 0, deadline: 1893456000 },
  };
  const p = prepareTypedData(permit).summarize(FROM);
  assert.deepEqual(p.summary.permit, {
    token: '0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913',
    spender: '0x000000000000000000000000000000000000dEaD',
    amount: (2n ** 256n - 1n).toString(),
    unlimited: true,
    deadline: '1893456000',
  });
  assert.match(p.summaryText, /on Base \(chain 8453\), ERC-20 permit: spender 0x0+dEaD may spend UNLIMITED/);
});

/**
 * The issue-9 attack: a chain of `depth` struct types with long names (T0 → T1[] → …), and `values`
 * struct values of T1 in the primary's array. 60 types, 4,000 values and 170-character names make
 * about 58 KB of JSON, which took viem's hashTypedData 13 s or more (each value re-walked the chain).
 */
function typeChain(depth: number, values: number, nameLength: number): Record<string, unknown> {
  const name = (i: number) => `T${i}_${'x'.repeat(Math.max(0, nameLength - 2 - String(i).length))}`;
  const types: Record<string, Array<{ name: string; type: string }>> = {};
  for (let i = 0; i < depth; i++) types[name(i)] = i < depth - 1 ? [{ name: 'n', type: `${name(i + 1)}[]` }] : [];
  return { domain: { name: 'x' }, types, primaryType: name(0), message: { n: Array.from({ length: values }, () => ({ n: [] })) } };
}

test('issue 9: the 58 KB chain of 60 types and 4,000 values is refused at once, before any hashing', () => {
  const attack = typeChain(60, 4000, 170);
  assert.ok(JSON.stringify(attack).length > 55_000);
  const started = performance.now();
  refuses(attack, 'typedData.types');
  const ms = performance.now() - started;
  // the old code hashed for 13 s and more; the caps refuse it in milliseconds (1 s: a wide margin)
  assert.ok(ms < 1000, `refused in ${ms.toFixed(0)} ms`);
  // within the type caps, the 4,000 values are refused by the array cap, as fast
  const within = typeChain(TYPED_DATA_LIMITS.maxTypes, 4000, TYPED_DATA_LIMITS.maxNameLength);
  const again = performance.now();
  refuses(within, 'typedData.message.n');
  assert.ok(performance.now() - again < 1000);
});

test('each cap on typed data is refused with invalid_input naming where', () => {
  const L = TYPED_DATA_LIMITS;
  const messageOf = (message: unknown, fields: Array<{ name: string; type: string }>) => ({
    domain: { name: 'T' },
    types: { T: fields },
    primaryType: 'T',
    message,
  });
  // more struct types than maxTypes (EIP712Domain counts)
  const manyTypes = mail((d) => {
    for (let i = 0; Object.keys(d.types).length <= L.maxTypes; i++) d.types[`Extra${i}`] = [];
  });
  refuses(manyTypes, 'typedData.types');
  assert.throws(() => prepareTypedData(manyTypes), { message: `typedData.types: expected at most ${L.maxTypes} struct types, got ${L.maxTypes + 1}` });
  prepareTypedData(
    mail((d) => {
      for (let i = 0; Object.keys(d.types).length < L.maxTypes; i++) d.types[`Extra${i}`] = [];
    }),
  );
  // more members in one struct than maxFields
  const fields = (n: number) => Array.from({ length: n }, (_, i) => ({ name: `f${i}`, type: 'bool' }));
  const flags = (n: number) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`f${i}`, true]));
  refuses(messageOf(flags(L.maxFields + 1), fields(L.maxFields + 1)), 'typedData.types.T');
  prepareTypedData(messageOf(flags(L.maxFields), fields(L.maxFields)));
  // names longer than maxNameLength
  const long = 'N'.repeat(L.maxNameLength + 1);
  refuses(
    mail((d) => {
      d.types[long] = [];
    }),
    `typedData.types.${long.slice(0, 64)}`,
  );
  refuses(
    mail((d) => {
      d.types.Mail[2].name = long;
    }),
    'typedData.types.Mail[2].name',
  );
  // an array longer than maxArrayLength, refused before its elements are read
  refuses(messageOf({ v: new Array(L.maxArrayLength + 1).fill(1) }, [{ name: 'v', type: 'uint8[]' }]), 'typedData.message.v');
  refuses(messageOf({ v: new Array(L.maxArrayLength + 1).fill(1) }, [{ name: 'v', type: `uint8[${L.maxArrayLength + 1}]` }]), 'typedData.message.v');
  prepareTypedData(messageOf({ v: new Array(L.maxArrayLength).fill(1) }, [{ name: 'v', type: 'uint8[]' }]));
  // more struct values than maxStructValues: the domain is one, the message another, then the elements
  const structs = (n: number) => ({
    domain: { name: 'T' },
    types: { T: [{ name: 'items', type: 'I[]' }], I: [{ name: 'b', type: 'bool' }] },
    primaryType: 'T',
    message: { items: Array.from({ length: n }, () => ({ b: true })) },
  });
  prepareTypedData(structs(L.maxStructValues - 2));
  refuses(structs(L.maxStructValues - 1), `typedData.message.items[${L.maxStructValues - 2}]`);
  assert.throws(() => prepareTypedData(structs(L.maxStructValues - 1)), {
    message: `typedData.message.items[${L.maxStructValues - 2}]: expected at most ${L.maxStructValues} struct values in domain and message together, got more`,
  });
  // more values than maxValues in all: the domain's one (name), then the members and elements
  const perArray = L.maxValues / 4;
  const lists = { a: 'uint8[]', b: 'uint8[]', c: 'uint8[]', d: 'uint8[]' };
  const listFields = Object.entries(lists).map(([name, type]) => ({ name, type }));
  const full = (last: number) => ({
    a: new Array(perArray - 2).fill(0),
    b: new Array(perArray - 1).fill(0),
    c: new Array(perArray - 1).fill(0),
    d: new Array(last).fill(0),
  });
  // 1 (domain.name) + 4 arrays + (perArray - 2) + 2·(perArray - 1) + last elements
  prepareTypedData(messageOf(full(perArray - 1), listFields));
  refuses(messageOf(full(perArray), listFields), `typedData.message.d[${perArray - 1}]`);
});
