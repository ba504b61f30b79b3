import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, describe, test } from 'node:test';
import fc from 'fast-check';
import { parseAuditCheckpoint } from './audit/auditCheckpoint.js';
import { prepareAuthorization } from './chain/prepareAuthorization.js';
import { prepareMessage } from './chain/prepareMessage.js';
import { prepareTransaction } from './chain/prepareTransaction.js';
import { prepareTypedData } from './chain/prepareTypedData.js';
import { parseTransaction } from './chain/parseTransaction.js';
import { parseTypedData } from './chain/parseTypedData.js';
import { hashTypedData } from './chain/hashTypedData.js';
import type { Address, PreparedOperation } from './chain/types.js';
import { signDigest } from './crypto/signDigest.js';
import { type ErrorCode, isCustosError } from './errors.js';
import { generateApiKeyToken, parseApiKeyToken } from './kernel/apiKeyToken.js';
import { decodeRootKeyring, encodeRootKeyring } from './seal/keyring.js';
import { sealRoot, unsealRoot } from './seal/passphrase.js';
import { decryptRecord, encryptRecord } from './seal/recordEnvelope.js';
import { describeUnsealer, readSealedRootV2, sealRootWithKek, unsealRootWithKek } from './seal/sealedRoot.js';
import { encodeShareFile, parseShareFile, shareFileChecksum, type ShareFileBody } from './seal/shareFile.js';
import type { UnsealShare } from './seal/unsealers.js';
import { buildOtpauthUri } from './totp/buildOtpauthUri.js';
import { parseOtpauthUri } from './totp/parseOtpauthUri.js';

/**
 * A fuzz of every kernel parser that takes outside bytes, called directly (no HTTP): transactions,
 * typed data, messages, authorizations, share files, sealed roots (both versions), the root keyring,
 * barrier record envelopes, otpauth URIs, API key tokens and audit checkpoints. Each is given
 * arbitrary values (fc.anything with every exotic kind of value), arbitrary text and bytes, and
 * mutations of valid inputs (so that the fuzz reaches past the first check). Each call either
 * returns or throws a CustosError with one of the parser's stable codes: never a TypeError, a
 * RangeError or another library's error. What a prepared operation returns is also used as the
 * kernel uses it (summary, canonical form, finish with a real signature), so that a value the
 * parser lets through cannot fail later, on the sign path.
 *
 * Cases per parser: PARSER_RUNS (2,000 by default; CUSTOS_FUZZ_CASES scales it: `npm run soak` sets
 * 1,000,000 route cases, i.e. 50× everything).
 */

const DEFAULT_ROUTE_CASES = 20_000;
const SCALE = Number(process.env.CUSTOS_FUZZ_CASES ?? DEFAULT_ROUTE_CASES) / DEFAULT_ROUTE_CASES;
const PARSER_RUNS = Math.max(100, Math.round(2_000 * SCALE));
/** Wide: a loaded 2-core machine runs these several times slower than an idle one. */
const TIMEOUT_MS = Math.max(300_000, 200 * PARSER_RUNS);

// ── generators ──────────────────────────────────────────────────────────────────────────────

/** Any JavaScript value, exotic ones included (null prototypes, boxed values, Maps, typed arrays, bigints, sparse arrays). */
const anything = fc.anything({
  maxDepth: 4,
  withBigInt: true,
  withBoxedValues: true,
  withDate: true,
  withMap: true,
  withSet: true,
  withNullPrototype: true,
  withObjectString: true,
  withSparseArray: true,
  withTypedArray: true,
  stringUnit: 'binary',
});
const anyText = fc.oneof(fc.string(), fc.string({ unit: 'binary' }), fc.string({ unit: 'grapheme' }), fc.string({ unit: 'binary', maxLength: 5000 }));
/** Values that break naive checks: edges of numbers, empty things, prototype names. */
const edgeValue = fc.constantFrom<unknown>(
  null,
  undefined,
  0,
  -0,
  -1,
  1,
  1.5,
  Number.NaN,
  Number.POSITIVE_INFINITY,
  2 ** 31,
  2 ** 53,
  2 ** 64,
  Number.MAX_SAFE_INTEGER,
  -Number.MAX_SAFE_INTEGER,
  '',
  '0',
  '0x',
  '0x0',
  '-1',
  '1e3',
  ' 1',
  'true',
  '__proto__',
  'constructor',
  'toString',
  '\u0000',
  '\ud800',
  'x'.repeat(5000),
  [],
  [[]],
  {},
  { __proto__: null },
  true,
  false,
  1n,
);

type Json = unknown;
type Path = Array<string | number>;

/** Every path of a JSON value (the root included). */
function pathsOf(value: Json, prefix: Path = [], out: Path[] = []): Path[] {
  out.push(prefix);
  if (Array.isArray(value)) {
    for (const [i, v] of value.entries()) pathsOf(v, [...prefix, i], out);
  } else if (typeof value === 'object' && value !== null) for (const [k, v] of Object.entries(value)) pathsOf(v, [...prefix, k], out);
  return out;
}

function getAt(value: Json, path: Path): Json {
  let v = value as Record<string | number, unknown>;
  for (const key of path) v = v[key] as Record<string | number, unknown>;
  return v;
}

interface Mutation {
  at: number;
  kind: 'replace' | 'delete' | 'add' | 'text' | 'wrap' | 'duplicate';
  value: unknown;
  key: string;
  textEdit: TextEdit;
}

/** One mutation of a JSON value: replace a node, delete or add a member, edit a string, wrap a node in an array. */
const mutation = (keys: readonly string[]): fc.Arbitrary<Mutation> =>
  fc.record({
    at: fc.nat(),
    kind: fc.constantFrom('replace', 'replace', 'delete', 'add', 'text', 'text', 'wrap', 'duplicate'),
    value: fc.oneof(edgeValue, fc.jsonValue({ maxDepth: 2 }), anything),
    key: fc.oneof(fc.constantFrom(...keys, '__proto__', 'constructor', 'toString', ''), fc.string({ maxLength: 10 })),
    textEdit,
  });

function applyMutation(root: Json, m: Mutation): Json {
  try {
    return mutate(root, m);
  } catch {
    // a typed array refuses some members, a boxed value some edits: that mutation is skipped
    return root;
  }
}

function mutate(root: Json, m: Mutation): Json {
  const copy = structuredClone(root);
  const paths = pathsOf(copy);
  const path = paths[m.at % paths.length] as Path;
  const node = getAt(copy, path);
  let replacement: unknown;
  switch (m.kind) {
    case 'replace':
      replacement = m.value;
      break;
    case 'delete':
    case 'add':
    case 'duplicate':
      if (Array.isArray(node)) {
        if (m.kind === 'delete') node.splice(m.at % Math.max(1, node.length), 1);
        else node.push(m.kind === 'duplicate' && node.length > 0 ? structuredClone(node[m.at % node.length]) : m.value);
        return copy;
      }
      if (typeof node === 'object' && node !== null) {
        const keys = Object.keys(node);
        const target = node as Record<string, unknown>;
        if (m.kind === 'delete' && keys.length > 0) delete target[keys[m.at % keys.length] as string];
        else Object.defineProperty(target, m.key, { value: m.value, enumerable: true, writable: true, configurable: true });
        return copy;
      }
      replacement = m.value;
      break;
    case 'text':
      replacement = typeof node === 'string' ? editText(node, m.textEdit) : typeof node === 'number' ? String(node) : m.value;
      break;
    case 'wrap':
      replacement = [node];
      break;
  }
  if (path.length === 0) return replacement;
  const parent = getAt(copy, path.slice(0, -1)) as Record<string | number, unknown>;
  parent[path[path.length - 1] as string | number] = replacement;
  return copy;
}

/** A valid value with 1..3 mutations. */
function mutated(valid: fc.Arbitrary<Json>, keys: readonly string[] = []): fc.Arbitrary<Json> {
  return fc
    .tuple(valid, fc.array(mutation(keys), { minLength: 1, maxLength: 3 }))
    .map(([value, mutations]) => mutations.reduce((v, m) => applyMutation(v, m), value));
}

interface TextEdit {
  kind: 'truncate' | 'delete' | 'insert' | 'replace' | 'swapCase' | 'repeat';
  at: number;
  length: number;
  text: string;
}

const textEdit: fc.Arbitrary<TextEdit> = fc.record({
  kind: fc.constantFrom('truncate', 'delete', 'insert', 'replace', 'swapCase', 'repeat'),
  at: fc.nat(),
  length: fc.nat({ max: 8 }),
  text: fc.oneof(
    fc.string({ maxLength: 4 }),
    fc.string({ unit: 'binary', maxLength: 4 }),
    fc.constantFrom('%', '%ZZ', ':', '&', '=', '#', '?', '"', '.', '=', '\\', '\u0000'),
  ),
});

function editText(text: string, e: TextEdit): string {
  const at = text.length === 0 ? 0 : e.at % (text.length + 1);
  switch (e.kind) {
    case 'truncate':
      return text.slice(0, at);
    case 'delete':
      return text.slice(0, at) + text.slice(at + Math.max(1, e.length));
    case 'insert':
      return text.slice(0, at) + e.text + text.slice(at);
    case 'replace':
      return text.slice(0, at) + e.text + text.slice(at + e.text.length);
    case 'swapCase':
      return (
        text.slice(0, at) +
        text.slice(at, at + 1 + e.length).replace(/./gu, (c) => (c === c.toUpperCase() ? c.toLowerCase() : c.toUpperCase())) +
        text.slice(at + 1 + e.length)
      );
    case 'repeat':
      return text + text.slice(at, at + 1 + e.length * 100).repeat(e.length + 1);
  }
}

/** A valid text with 1..4 edits. */
function editedText(valid: fc.Arbitrary<string>): fc.Arbitrary<string> {
  return fc.tuple(valid, fc.array(textEdit, { minLength: 1, maxLength: 4 })).map(([text, edits]) => edits.reduce(editText, text));
}

/** A parser's input: valid ones, mutations of valid ones, anything at all, arbitrary text. */
function inputs(valid: fc.Arbitrary<Json>, keys: readonly string[], text?: fc.Arbitrary<string>): fc.Arbitrary<unknown> {
  return fc.oneof(
    { arbitrary: valid, weight: 2 },
    { arbitrary: mutated(valid, keys), weight: 5 },
    { arbitrary: anything, weight: 2 },
    { arbitrary: edgeValue, weight: 1 },
    { arbitrary: text ?? anyText, weight: 1 },
  );
}

// ── valid inputs ────────────────────────────────────────────────────────────────────────────

type Hex = `0x${string}`;
const hexOf = (bytes: Uint8Array): Hex => `0x${Buffer.from(bytes).toString('hex')}`;
const bytes = (n: number) => fc.uint8Array({ minLength: n, maxLength: n });
const address = fc.oneof(bytes(20).map(hexOf), fc.constantFrom('0x0000000000000000000000000000000000000000', '0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48'));
const safeInt = (min: number) =>
  fc.oneof(fc.integer({ min, max: 1000 }), fc.constantFrom(Number.MAX_SAFE_INTEGER), fc.integer({ min, max: Number.MAX_SAFE_INTEGER }));
const quantity = (max: bigint) =>
  fc.tuple(fc.oneof(fc.bigInt({ min: 0n, max }), fc.constantFrom(0n, max)), fc.boolean()).map(([n, hex]) => (hex ? `0x${n.toString(16)}` : n.toString()));
const U256 = (1n << 256n) - 1n;
const U64 = (1n << 64n) - 1n;
const N_HALF = 0x7fffffffffffffffffffffffffffffff5d576e7357a4501ddfe92f46681b20a0n;
const scalar = (max: bigint) => fc.bigInt({ min: 1n, max }).map((n) => `0x${n.toString(16)}`);
const accessList = fc.array(fc.record({ address, storageKeys: fc.array(bytes(32).map(hexOf), { maxLength: 2 }) }), { maxLength: 2 });
const signedAuthorization = fc.record({
  chainId: safeInt(0),
  address,
  nonce: safeInt(0),
  r: scalar(N_HALF * 2n),
  s: scalar(N_HALF),
  yParity: fc.constantFrom(0, 1),
});
const common = {
  chainId: safeInt(1),
  nonce: safeInt(0),
  to: address,
  value: quantity(U256),
  data: fc.uint8Array({ maxLength: 64 }).map(hexOf),
  gas: quantity(U64),
};
const fees = quantity(U256).chain((max) => fc.record({ maxFeePerGas: fc.constant(max), maxPriorityFeePerGas: quantity(BigInt(max)) }));
const validTransaction = fc.oneof(
  fc.record({ type: fc.constant('legacy'), ...common, gasPrice: quantity(U256) }, { requiredKeys: ['type', 'chainId', 'nonce', 'gas', 'gasPrice'] }),
  fc.record(
    { type: fc.constant('eip2930'), ...common, gasPrice: quantity(U256), accessList },
    { requiredKeys: ['type', 'chainId', 'nonce', 'gas', 'gasPrice'] },
  ),
  fc
    .tuple(fc.record({ type: fc.constant('eip1559'), ...common, accessList }, { requiredKeys: ['type', 'chainId', 'nonce', 'gas'] }), fees)
    .map(([t, f]) => ({ ...t, ...f })),
  fc
    .tuple(
      fc.record({ type: fc.constant('eip7702'), ...common, accessList, authorizationList: fc.array(signedAuthorization, { minLength: 1, maxLength: 2 }) }),
      fees,
    )
    .map(([t, f]) => ({ ...t, ...f })),
);
const TRANSACTION_KEYS = [
  'type',
  'chainId',
  'nonce',
  'to',
  'value',
  'data',
  'gas',
  'gasPrice',
  'maxFeePerGas',
  'maxPriorityFeePerGas',
  'accessList',
  'authorizationList',
  'storageKeys',
  'address',
  'r',
  's',
  'yParity',
];

const MAIL = {
  domain: { name: 'Ether Mail', version: '1', chainId: 1, verifyingContract: '0xCcCCccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC' },
  types: {
    EIP712Domain: [
      { name: 'name', type: 'string' },
      { name: 'version', type: 'string' },
      { name: 'chainId', type: 'uint256' },
      { name: 'verifyingContract', type: 'address' },
    ],
    Person: [
      { name: 'name', type: 'string' },
      { name: 'wallet', type: 'address' },
    ],
    Mail: [
      { name: 'from', type: 'Person' },
      { name: 'to', type: 'Person[]' },
      { name: 'contents', type: 'string' },
      { name: 'amount', type: 'int64' },
      { name: 'tag', type: 'bytes4' },
      { name: 'blob', type: 'bytes' },
      { name: 'ok', type: 'bool' },
      { name: 'grid', type: 'uint8[2][]' },
    ],
  },
  primaryType: 'Mail',
  message: {
    from: { name: 'Cow', wallet: '0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826' },
    to: [{ name: 'Bob', wallet: '0xbBbBBBBbbBBBbbbBbbBbbbbBBbBbbbbBbBbbBBbB' }],
    contents: 'Hello, Bob!',
    amount: '-5',
    tag: '0x01020304',
    blob: '0x',
    ok: true,
    grid: [[1, 2]],
  },
};
const validTypedData = fc
  .record({
    contents: fc.string(),
    amount: fc.oneof(fc.integer({ min: -(2 ** 31), max: 2 ** 31 }), fc.bigInt({ min: -(1n << 63n), max: (1n << 63n) - 1n }).map(String)),
    chainId: fc.oneof(safeInt(0), quantity(U256)),
    grid: fc.array(fc.tuple(fc.nat({ max: 255 }), fc.nat({ max: 255 })), { maxLength: 3 }),
    to: fc.array(fc.record({ name: fc.string({ maxLength: 8 }), wallet: address }), { maxLength: 3 }),
  })
  .map((f) => ({
    ...MAIL,
    domain: { ...MAIL.domain, chainId: f.chainId },
    message: { ...MAIL.message, contents: f.contents, amount: f.amount, grid: f.grid, to: f.to },
  }));
const TYPED_DATA_KEYS = ['domain', 'types', 'primaryType', 'message', 'name', 'type', 'EIP712Domain', 'Person', 'Mail', 'wallet', 'salt', 'chainId'];

const validMessage = fc.oneof(fc.record({ text: fc.string({ unit: 'grapheme' }) }), fc.record({ raw: fc.uint8Array({ maxLength: 64 }).map(hexOf) }));
const validAuthorization = fc.record({ chainId: safeInt(0), address, nonce: safeInt(0) });

const uuid = fc.uuid();
const base64 = (n: number) => bytes(n).map((b) => Buffer.from(b).toString('base64'));
const shareBody = fc
  .record({
    signerId: uuid,
    shareSetId: base64(16),
    shares: fc.integer({ min: 2, max: 255 }),
    t: fc.nat(),
    i: fc.nat(),
    share: bytes(33).map((b) => Uint8Array.from([...b.subarray(0, 32), b[32] === 0 ? 1 : (b[32] as number)])),
    signature: fc.option(bytes(64), { nil: undefined }),
  })
  .map(({ t, i, shares, signature, ...rest }) => {
    const share: UnsealShare = { ...rest, shares, threshold: 2 + (t % (shares - 1)), index: 1 + (i % shares) };
    if (signature !== undefined) share.signature = signature;
    return share;
  });
const validShareFile = shareBody.map((s) => encodeShareFile(s));
/** A share file's JSON object, mutated, then given a correct checksum: the mutation reaches past the checksum. */
const reChecksummedShareFile = mutated(
  shareBody.map((s) => JSON.parse(encodeShareFile(s)) as Record<string, unknown>),
  ['format', 'version', 'signerId', 'shareSetId', 'index', 'threshold', 'shares', 'share', 'signature', 'checksum'],
).map((o) => {
  if (typeof o !== 'object' || o === null || Array.isArray(o)) return safeJson(o);
  const { checksum: _, ...body } = o as Record<string, unknown>;
  try {
    return JSON.stringify({ ...body, checksum: shareFileChecksum(body as unknown as ShareFileBody) });
  } catch {
    return safeJson(o);
  }
});

/** JSON text of a value, or a stand-in for one JSON cannot hold (a bigint). */
function safeJson(value: unknown): string {
  try {
    return JSON.stringify(value) ?? 'undefined';
  } catch {
    return `<${typeof value}>`;
  }
}

// sealed roots: one of each kind, made once (scrypt at its cheapest, so that a mutation that keeps the cost runs fast)
const PASSPHRASE = new TextEncoder().encode('fuzz passphrase');
const ROOT = encodeRootKeyring({ barrierKey: new Uint8Array(32).fill(7), master: { kind: 'seed', seed: new Uint8Array(32).fill(9) } });
const sealedV1 = await sealRoot(ROOT, PASSPHRASE, { random: randomBytes, scrypt: { N: 2 ** 10, r: 8, p: 1 } });
const KEK = new Uint8Array(randomBytes(32));
const sealedShamir = sealRootWithKek(
  ROOT,
  KEK,
  { type: 'shamir', threshold: 2, shares: 3, shareSetId: randomBytes(16).toString('base64'), shareKey: randomBytes(32).toString('base64') },
  randomBytes,
);
const sealedPkcs11 = sealRootWithKek(
  ROOT,
  KEK,
  { type: 'pkcs11', tokenLabel: 'custos', keyLabel: 'custos-kek', keyId: randomBytes(16).toString('hex') },
  randomBytes,
);
const SEALED_KEYS = [
  'format',
  'version',
  'kdf',
  'name',
  'N',
  'r',
  'p',
  'salt',
  'cipher',
  'iv',
  'ciphertext',
  'unsealer',
  'type',
  'threshold',
  'shares',
  'shareSetId',
  'shareKey',
  'tokenLabel',
  'keyLabel',
  'keyId',
];
/** Cheap scrypt costs only: a mutation may not make one case cost a second of scrypt. */
const cheapEdges = fc.constantFrom<unknown>(2 ** 10, 2 ** 11, 2 ** 9, 2 ** 21, 2 ** 16, 3, 0, -1, 1.5, 32, 33, 16, 17, '1024', null);
const validSealedV2 = fc.constantFrom<Json>(sealedShamir, sealedPkcs11);

const keyring = fc.oneof(
  fc.record({ barrierKey: bytes(32), master: fc.record({ kind: fc.constant('seed' as const), seed: fc.uint8Array({ minLength: 16, maxLength: 64 }) }) }),
  fc.record({ barrierKey: bytes(32), master: fc.record({ kind: fc.constant('xprv' as const), privateKey: bytes(32), chainCode: bytes(32) }) }),
);
const validKeyringBytes = keyring.map((k) => encodeRootKeyring(k));
const byteEdits = fc.array(fc.record({ at: fc.nat(), kind: fc.constantFrom('set', 'truncate', 'append', 'delete'), byte: fc.nat({ max: 255 }) }), {
  minLength: 1,
  maxLength: 4,
});
function editBytes(b: Uint8Array, edits: Array<{ at: number; kind: string; byte: number }>): Uint8Array {
  let out = Uint8Array.from(b);
  for (const e of edits) {
    const at = out.length === 0 ? 0 : e.at % out.length;
    if (e.kind === 'set' && out.length > 0) out[at] = e.byte;
    else if (e.kind === 'truncate') out = out.slice(0, at);
    else if (e.kind === 'append') out = Uint8Array.from([...out, e.byte]);
    else out = Uint8Array.from([...out.slice(0, at), ...out.slice(at + 1)]);
  }
  return out;
}

const RECORD_KEY = 'wallet/alice@acme.com/totp';
const BARRIER_KEY = new Uint8Array(randomBytes(32));
const validRecord = fc.uint8Array({ maxLength: 100 }).map((p) => encryptRecord(BARRIER_KEY, RECORD_KEY, p, randomBytes));

const validOtpauthUri = fc
  .record({
    issuer: fc.string({ minLength: 1, maxLength: 20 }).filter((s) => !s.includes(':') && s.isWellFormed()),
    accountName: fc.string({ unit: 'grapheme', minLength: 1, maxLength: 30 }).filter((s) => s.isWellFormed()),
    secret: fc.uint8Array({ minLength: 16, maxLength: 40 }),
  })
  .map((p) => buildOtpauthUri(p));

const validApiKey = fc.constant(null).map(() => generateApiKeyToken(randomBytes).token);

const validCheckpoint = fc.record({
  format: fc.constant('custos.audit-checkpoint'),
  version: fc.constant(1),
  signerId: uuid,
  seq: safeInt(1),
  headHash: bytes(32).map((b) => Buffer.from(b).toString('hex')),
  ts: safeInt(0),
  publicKey: bytes(32).map((b) => Buffer.from(b).toString('hex')),
  signature: bytes(64).map((b) => Buffer.from(b).toString('hex')),
});

// ── the property ────────────────────────────────────────────────────────────────────────────

const SIGNING_KEY = new Uint8Array(32).fill(1);
const FROM: Address = '0x1a642f0E3c3aF545E7AcBD38b07251B3990914F1';

/** Uses a prepared operation as the kernel's sign path does: a failure here would be a 500 after the parser said yes. */
function usePrepared(prepared: PreparedOperation<unknown>): void {
  assert.equal(prepared.digest.length, 32);
  JSON.stringify(prepared.canonical);
  const { summary, summaryText } = prepared.summarize(FROM);
  JSON.stringify(summary);
  assert.equal(typeof summaryText, 'string');
  const sig = signDigest(SIGNING_KEY, prepared.digest);
  JSON.stringify(prepared.finish({ r: sig.r, s: sig.s, yParity: sig.recovery }), (_k, v) => (typeof v === 'bigint' ? v.toString() : v));
}

interface Outcomes {
  runs: number;
  returned: number;
  codes: Map<string, number>;
}
const table: Array<[string, Outcomes, number]> = [];

/**
 * Runs `call` on PARSER_RUNS inputs: each returns, or throws a CustosError whose code is one of
 * `codes` (and whose public form serialises). Checks that both outcomes happened (the fuzz got past
 * the first check), and records the outcomes for the table printed at the end.
 */
async function fuzzParser(name: string, input: fc.Arbitrary<unknown>, codes: readonly ErrorCode[], call: (input: unknown) => unknown): Promise<void> {
  const outcomes: Outcomes = { runs: 0, returned: 0, codes: new Map() };
  const started = performance.now();
  await fc.assert(
    fc.asyncProperty(input, async (value) => {
      outcomes.runs++;
      try {
        await call(value);
        outcomes.returned++;
      } catch (error) {
        if (!isCustosError(error)) {
          const shown = safeJson(value).slice(0, 300);
          assert.fail(`${name}: threw ${error instanceof Error ? `${error.name}: ${error.message}` : String(error)} (not a CustosError) for ${shown}`);
        }
        assert.ok(codes.includes(error.code), `${name}: code ${error.code} (${error.message}) is not one of ${codes.join(', ')}`);
        assert.equal(typeof JSON.stringify(error.toJSON()), 'string');
        outcomes.codes.set(error.code, (outcomes.codes.get(error.code) ?? 0) + 1);
      }
    }),
    { numRuns: PARSER_RUNS, includeErrorInReport: true },
  );
  table.push([name, outcomes, performance.now() - started]);
  assert.equal(outcomes.runs, PARSER_RUNS);
  assert.ok(outcomes.returned > 0, `${name}: no input was accepted (the fuzz never got past the checks)`);
  assert.ok(outcomes.codes.size > 0, `${name}: no input was refused`);
}

after(() => {
  const total = table.reduce((n, [, o]) => n + o.runs, 0);
  const ms = table.reduce((n, [, , t]) => n + t, 0);
  console.log(`\nparser fuzz: ${total} cases in ${(ms / 1000).toFixed(1)} s (${PARSER_RUNS} per parser)`);
  for (const [name, o, t] of table) {
    const codes = [...o.codes].map(([c, n]) => `${c} ${n}`).join(', ');
    console.log(`  ${name.padEnd(28)} ${String(o.runs).padStart(7)} cases ${(t / 1000).toFixed(1).padStart(6)} s  returned ${o.returned}; ${codes}`);
  }
});

// ── the parsers ─────────────────────────────────────────────────────────────────────────────

describe('parser fuzz: every parser of outside bytes returns or throws a CustosError with a stable code', { timeout: TIMEOUT_MS * 20 }, () => {
  const opts = { timeout: TIMEOUT_MS };

  test('parseTransaction / prepareTransaction', opts, async () => {
    await fuzzParser('prepareTransaction', inputs(validTransaction, TRANSACTION_KEYS), ['invalid_input'], (input) => {
      const prepared = prepareTransaction(input);
      usePrepared(prepared);
      // the parser alone agrees with the prepared operation
      assert.deepEqual(parseTransaction(input), prepared.transaction);
    });
  });

  test('parseTypedData / prepareTypedData / hashTypedData', opts, async () => {
    await fuzzParser('prepareTypedData', inputs(validTypedData, TYPED_DATA_KEYS), ['invalid_input'], (input) => {
      const prepared = prepareTypedData(input);
      usePrepared(prepared);
      // the digest is hashTypedData's over the parsed data
      assert.equal(hexOf(prepared.digest), hashTypedData(parseTypedData(input)));
    });
  });

  test('prepareMessage', opts, async () => {
    await fuzzParser('prepareMessage', inputs(validMessage, ['text', 'raw']), ['invalid_input'], (input) => usePrepared(prepareMessage(input)));
  });

  test('prepareAuthorization', opts, async () => {
    await fuzzParser('prepareAuthorization', inputs(validAuthorization, ['chainId', 'address', 'nonce']), ['invalid_input'], (input) =>
      usePrepared(prepareAuthorization(input)),
    );
  });

  test('parseShareFile', opts, async () => {
    const input = fc.oneof(
      inputs(validShareFile, [], editedText(validShareFile)),
      { arbitrary: reChecksummedShareFile, weight: 2 },
      { arbitrary: editedText(validShareFile), weight: 2 },
    );
    await fuzzParser('parseShareFile', input, ['share_invalid'], (value) => {
      const share = parseShareFile(value);
      assert.equal(share.share.length, 33);
    });
  });

  test('unsealRoot (sealed root v1: the envelope and the passphrase)', opts, async () => {
    const envelope = fc.oneof(
      { arbitrary: inputs(fc.constant<Json>(sealedV1), SEALED_KEYS), weight: 4 },
      // the scrypt parameters: anything, but only cheap valid costs
      {
        arbitrary: fc
          .record({ N: cheapEdges, r: fc.oneof(cheapEdges, fc.constantFrom(1, 8)), p: fc.oneof(cheapEdges, fc.constantFrom(1, 2)) }, { requiredKeys: [] })
          .map((kdf) => ({ ...sealedV1, kdf: { ...sealedV1.kdf, ...kdf } })),
        weight: 1,
      },
    );
    const passphrase = fc.oneof({ arbitrary: fc.constant(PASSPHRASE), weight: 4 }, fc.uint8Array({ maxLength: 40 }), anything);
    let opened = 0;
    await fuzzParser('unsealRoot', fc.tuple(envelope, passphrase), ['invalid_input', 'unseal_failed'], async (value) => {
      const [env, pass] = value as [unknown, Uint8Array];
      // a cost that is valid but not cheap is not fuzzed (a second of scrypt per case)
      const kdf = (env as { kdf?: { N?: unknown; r?: unknown; p?: unknown } } | null)?.kdf;
      if (typeof kdf?.N === 'number' && typeof kdf.r === 'number' && typeof kdf.p === 'number' && 128 * kdf.N * kdf.r * kdf.p > 2 ** 26) return;
      const root = await unsealRoot(env, pass);
      assert.deepEqual(root, ROOT);
      opened++;
    });
    assert.ok(opened > 0);
  });

  test('readSealedRootV2, describeUnsealer, unsealRootWithKek (sealed root v2)', opts, async () => {
    const envelope = inputs(validSealedV2, SEALED_KEYS);
    await fuzzParser('readSealedRootV2', envelope, ['invalid_input'], (env) => readSealedRootV2(env));
    await fuzzParser('describeUnsealer', fc.oneof(envelope, inputs(fc.constant<Json>(sealedV1), SEALED_KEYS)), ['invalid_input'], (env) =>
      describeUnsealer(env),
    );
    await fuzzParser('unsealRootWithKek', envelope, ['invalid_input', 'unseal_failed'], (env) => {
      assert.deepEqual(unsealRootWithKek(env, KEK), ROOT);
    });
  });

  test('decodeRootKeyring', opts, async () => {
    // the keyring was authenticated by the seal: a malformed one is documented as `internal` (a bug, not an attack)
    const input = fc.oneof(
      { arbitrary: validKeyringBytes, weight: 2 },
      { arbitrary: fc.tuple(validKeyringBytes, byteEdits).map(([b, e]) => editBytes(b, e)), weight: 5 },
      fc.uint8Array({ maxLength: 120 }),
      anything,
    );
    await fuzzParser('decodeRootKeyring', input, ['internal'], (value) => {
      const keyring = decodeRootKeyring(value as Uint8Array);
      // a decoded keyring encodes back to the same bytes
      assert.deepEqual(encodeRootKeyring(keyring), value);
    });
  });

  test('decryptRecord (the barrier record envelope)', opts, async () => {
    const envelope = fc.oneof({ arbitrary: validRecord, weight: 2 }, { arbitrary: editedText(validRecord), weight: 5 }, anyText, anything, edgeValue);
    const recordKey = fc.oneof({ arbitrary: fc.constant(RECORD_KEY), weight: 8 }, anyText, anything);
    await fuzzParser('decryptRecord', fc.tuple(envelope, recordKey), ['record_unreadable', 'invalid_input'], (value) => {
      const [env, key] = value as [string, string];
      try {
        decryptRecord(BARRIER_KEY, key, env);
      } catch (error) {
        // invalid_input only for a bad record key (a caller bug); a bad envelope is always record_unreadable
        if (isCustosError(error) && error.code === 'invalid_input') assert.equal(error.details.field, 'recordKey');
        throw error;
      }
    });
  });

  test('parseOtpauthUri', opts, async () => {
    await fuzzParser('parseOtpauthUri', inputs(validOtpauthUri, [], editedText(validOtpauthUri)), ['invalid_input'], (value) => {
      const parsed = parseOtpauthUri(value as string);
      assert.ok(parsed.secret.length >= 16);
    });
  });

  test('parseApiKeyToken', opts, async () => {
    await fuzzParser('parseApiKeyToken', inputs(validApiKey, [], editedText(validApiKey)), ['unauthorized'], (value) => parseApiKeyToken(value as string));
  });

  test('parseAuditCheckpoint', opts, async () => {
    await fuzzParser(
      'parseAuditCheckpoint',
      inputs(validCheckpoint, ['format', 'version', 'signerId', 'seq', 'headHash', 'ts', 'publicKey', 'signature']),
      ['invalid_input'],
      (value) => parseAuditCheckpoint(value),
    );
  });
});

// ── what the fuzz (and writing it) found: regressions ───────────────────────────────────────

describe('regressions found while fuzzing the parsers', () => {
  test('parseApiKeyToken: a value that is not a string is unauthorized, not a TypeError from RegExp#exec', () => {
    for (const value of [Object.create(null), { toString: () => ({}) }, 42, null, undefined, ['ck1']]) {
      assert.throws(
        () => parseApiKeyToken(value as string),
        (error: unknown) => isCustosError(error) && error.code === 'unauthorized',
      );
    }
  });

  test('parseTypedData: a member named __proto__ (or constructor) must be in the message, not found on its prototype', () => {
    const data = {
      domain: { name: 'x' },
      types: { Mail: [{ name: '__proto__', type: 'Empty' }], Empty: [] },
      primaryType: 'Mail',
      message: {},
    };
    // before: the missing member was read from Object.prototype, an empty struct, and the data signed
    assert.throws(
      () => parseTypedData(data),
      (error: unknown) => isCustosError(error) && error.code === 'invalid_input' && error.details.field === 'typedData.message.__proto__',
    );
    const withConstructor = { ...data, types: { Mail: [{ name: 'constructor', type: 'string' }] } };
    assert.throws(
      () => parseTypedData(withConstructor),
      (error: unknown) => isCustosError(error) && error.code === 'invalid_input' && error.details.field === 'typedData.message.constructor',
    );
    // present as an own member, it is read (JSON.parse makes `__proto__` an own member)
    const own = parseTypedData({ ...data, message: JSON.parse('{"__proto__":{}}') });
    assert.ok(Object.hasOwn(own.message, '__proto__'));
  });
});
