import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ERROR_CODES, type ErrorCode } from '@custos/kernel';
import type { InjectOptions, LightMyRequestResponse } from 'fastify';
import fc from 'fast-check';
import { createTestSigner, type TestSigner } from './testing/createTestSigner.js';

/**
 * Bad input on the Ethereum operations is a 4xx (`invalid_input`) with the field named by its path
 * — whether the route schema or the kernel's chain codec refuses it — never a 5xx: a table of
 * known bad operations per route, then a fuzz over the operation schemas (mostly well-formed
 * operations with one part broken, so that the fuzz reaches the codec and the signer).
 */

const START_MS = 1_700_000_000_000;
const TO = '0x3535353535353535353535353535353535353535';
const USDC = '0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48';
const R = `0x${'11'.repeat(32)}`;
const AUTH = { chainId: 1, address: TO, nonce: 0, r: R, s: R, yParity: 0 };
const TX = {
  legacy: { type: 'legacy', chainId: 1, nonce: 0, to: TO, value: '1', gas: '21000', gasPrice: '1' },
  eip2930: { type: 'eip2930', chainId: 1, nonce: 0, to: TO, gas: '21000', gasPrice: '1', accessList: [] },
  eip1559: { type: 'eip1559', chainId: 1, nonce: 0, to: TO, gas: '21000', maxFeePerGas: '2', maxPriorityFeePerGas: '1' },
  eip7702: { type: 'eip7702', chainId: 1, nonce: 0, to: TO, gas: '21000', maxFeePerGas: '2', maxPriorityFeePerGas: '1', authorizationList: [AUTH] },
} as const;
const MAIL = {
  domain: { name: 'Ether Mail', version: '1', chainId: 1, verifyingContract: '0xCcCCccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC' },
  types: {
    Person: [
      { name: 'name', type: 'string' },
      { name: 'wallet', type: 'address' },
    ],
    Mail: [
      { name: 'from', type: 'Person' },
      { name: 'to', type: 'Person' },
      { name: 'contents', type: 'string' },
    ],
  },
  primaryType: 'Mail',
  message: { from: { name: 'Cow', wallet: TO }, to: { name: 'Bob', wallet: USDC }, contents: 'Hello, Bob!' },
};

let signer: TestSigner;
before(async () => {
  signer = await createTestSigner({ startMs: START_MS });
});
after(async () => {
  await signer.close();
});

const post = (url: string, body: unknown): InjectOptions => ({
  method: 'POST',
  url,
  headers: { 'content-type': 'application/json', ...signer.auth() },
  payload: JSON.stringify(body),
});

async function refuses(url: string, operation: Record<string, unknown>, field: string): Promise<void> {
  const res = await signer.app.inject(post(url, { walletName: 'alice@acme.com', keyIndex: 0, ...operation }));
  const label = `${url} ${JSON.stringify(operation).slice(0, 160)}`;
  assert.equal(res.statusCode, 400, `${label}: ${res.body}`);
  const error = (res.json() as { error: { code: string; message: string; details: { field?: string } } }).error;
  assert.equal(error.code, 'invalid_input', `${label}: ${res.body}`);
  assert.equal(error.details.field, field, `${label}: ${res.body}`);
  assert.ok(error.message.startsWith(field), `${label}: the message names the field: ${error.message}`);
}

function mail(edit: (data: typeof MAIL & Record<string, unknown>) => void): unknown {
  const data = structuredClone(MAIL) as typeof MAIL & Record<string, unknown>;
  edit(data);
  return data;
}

describe('Ethereum operations: bad requests are 4xx with the field named', () => {
  test('POST /v1/sign/transaction', async () => {
    const url = '/v1/sign/transaction';
    const tx = (t: Record<string, unknown>, field: string) => refuses(url, { transaction: t }, field);
    const { chainId: _, ...unprotected } = TX.legacy;
    await tx(unprotected, 'transaction.chainId');
    await tx({ ...TX.legacy, chainId: 0 }, 'transaction.chainId');
    await tx({ ...TX.eip1559, chainId: '1' }, 'transaction.chainId');
    await tx({ ...TX.eip1559, chainId: '0x1' }, 'transaction.chainId');
    await tx({ ...TX.eip1559, chainId: 1.5 }, 'transaction.chainId');
    await tx({ ...TX.eip1559, chainId: 2 ** 53 }, 'transaction.chainId');
    await tx({ ...TX.eip1559, chainId: null }, 'transaction.chainId');
    await tx({ ...TX.eip1559, type: 'eip4844' }, 'transaction.type');
    await tx({ ...TX.eip1559, type: 2 }, 'transaction.type');
    await tx({ ...TX.eip1559, gas: undefined }, 'transaction.gas');
    await tx({ ...TX.eip1559, nonce: undefined }, 'transaction.nonce');
    await tx({ ...TX.legacy, gasPrice: undefined }, 'transaction.gasPrice');
    await tx({ ...TX.eip1559, maxFeePerGas: undefined }, 'transaction.maxFeePerGas');
    await tx({ ...TX.eip1559, gas: (2n ** 64n).toString() }, 'transaction.gas');
    await tx({ ...TX.eip1559, gas: '0x10000000000000000' }, 'transaction.gas');
    await tx({ ...TX.eip1559, gas: 21000 }, 'transaction.gas');
    await tx({ ...TX.eip1559, value: (2n ** 256n).toString() }, 'transaction.value');
    await tx({ ...TX.eip1559, value: '9'.repeat(81) }, 'transaction.value');
    await tx({ ...TX.eip1559, value: '1.5' }, 'transaction.value');
    await tx({ ...TX.eip1559, value: '-1' }, 'transaction.value');
    await tx({ ...TX.eip1559, maxFeePerGas: (2n ** 256n).toString(), maxPriorityFeePerGas: '1' }, 'transaction.maxFeePerGas');
    await tx({ ...TX.eip1559, maxFeePerGas: '1', maxPriorityFeePerGas: '2' }, 'transaction.maxPriorityFeePerGas');
    await tx({ ...TX.eip1559, nonce: 2 ** 64 }, 'transaction.nonce');
    await tx({ ...TX.eip1559, nonce: -1 }, 'transaction.nonce');
    await tx({ ...TX.eip1559, to: '0x1234' }, 'transaction.to');
    await tx({ ...TX.eip1559, to: '0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB49' }, 'transaction.to');
    await tx({ ...TX.eip1559, data: '0xabc' }, 'transaction.data');
    await tx({ ...TX.legacy, maxFeePerGas: '1' }, 'transaction.maxFeePerGas');
    await tx({ ...TX.legacy, accessList: [] }, 'transaction.accessList');
    await tx({ ...TX.eip1559, gasPrice: '1' }, 'transaction.gasPrice');
    await tx({ ...TX.eip1559, authorizationList: [AUTH] }, 'transaction.authorizationList');
    await tx({ ...TX.eip1559, from: TO }, 'transaction.from');
    await tx({ ...TX.eip1559, accessList: {} }, 'transaction.accessList');
    await tx({ ...TX.eip1559, accessList: [{ address: TO }] }, 'transaction.accessList[0].storageKeys');
    await tx(
      {
        ...TX.eip1559,
        accessList: [
          { address: TO, storageKeys: [] },
          { address: '0x12', storageKeys: [] },
        ],
      },
      'transaction.accessList[1].address',
    );
    await tx({ ...TX.eip1559, accessList: [{ address: TO, storageKeys: ['0x01'] }] }, 'transaction.accessList[0].storageKeys[0]');
    await tx({ ...TX.eip1559, accessList: [{ address: USDC.replace('A0b', 'a0b'), storageKeys: [] }] }, 'transaction.accessList[0].address');
    await tx({ ...TX.eip7702, authorizationList: [] }, 'transaction.authorizationList');
    await tx({ ...TX.eip7702, authorizationList: undefined }, 'transaction.authorizationList');
    await tx({ ...TX.eip7702, to: null }, 'transaction.to');
    await tx({ ...TX.eip7702, authorizationList: [{ ...AUTH, yParity: 2 }] }, 'transaction.authorizationList[0].yParity');
    await tx({ ...TX.eip7702, authorizationList: [AUTH, { ...AUTH, chainId: -1 }] }, 'transaction.authorizationList[1].chainId');
    await tx({ ...TX.eip7702, authorizationList: [{ ...AUTH, s: `0x${'ff'.repeat(32)}` }] }, 'transaction.authorizationList[0].s');
    await tx({ ...TX.eip7702, authorizationList: [{ ...AUTH, r: '0x0' }] }, 'transaction.authorizationList[0].r');
    await tx({ ...TX.eip7702, authorizationList: [{ ...AUTH, extra: 1 }] }, 'transaction.authorizationList[0].extra');
    await refuses(url, {}, 'transaction');
    await refuses(url, { transaction: '0x02f8' }, 'transaction');
    await refuses(url, { transaction: TX.eip1559, code: '12345' }, 'code');
    await refuses(url, { transaction: TX.eip1559, keyIndex: -1 }, 'keyIndex');
    await refuses(url, { transaction: TX.eip1559, hash: R }, 'hash');
  });

  test('POST /v1/sign/message', async () => {
    const url = '/v1/sign/message';
    await refuses(url, {}, 'message');
    await refuses(url, { message: {} }, 'message');
    await refuses(url, { message: 'hello' }, 'message');
    await refuses(url, { message: { text: 'a', raw: '0x' } }, 'message');
    await refuses(url, { message: { text: 1 } }, 'message.text');
    await refuses(url, { message: { text: '\ud800' } }, 'message.text');
    await refuses(url, { message: { raw: '0x1' } }, 'message.raw');
    await refuses(url, { message: { raw: 'abcd' } }, 'message.raw');
    await refuses(url, { message: { hash: R } }, 'message.hash');
  });

  test('POST /v1/sign/typed-data', async () => {
    const url = '/v1/sign/typed-data';
    const typed = (typedData: unknown, field: string) => refuses(url, { typedData }, field);
    await typed(
      mail((d) => {
        d.types.Mail[0] = { name: 'from', type: 'Persn' };
      }),
      'typedData.types.Mail[0].type',
    );
    await typed(
      mail((d) => {
        d.types.Mail[2] = { name: 'contents', type: 'uint7' };
      }),
      'typedData.types.Mail[2].type',
    );
    await typed(
      mail((d) => {
        d.types.Mail[1] = { name: 'from', type: 'Person' };
      }),
      'typedData.types.Mail[1].name',
    );
    await typed(
      mail((d) => {
        (d.types.Mail as unknown[])[1] = { name: 'to' };
      }),
      'typedData.types.Mail[1].type',
    );
    await typed(
      mail((d) => {
        d.primaryType = 'Letter';
      }),
      'typedData.primaryType',
    );
    await typed(
      mail((d) => {
        (d.domain as Record<string, unknown>).chainId = 'one';
      }),
      'typedData.domain.chainId',
    );
    await typed(
      mail((d) => {
        (d.domain as Record<string, unknown>).extra = 1;
      }),
      'typedData.domain.extra',
    );
    await typed(
      mail((d) => {
        d.message.to.wallet = '0x12';
      }),
      'typedData.message.to.wallet',
    );
    await typed(
      mail((d) => {
        (d.message as Record<string, unknown>).bcc = 'x';
      }),
      'typedData.message.bcc',
    );
    await typed(
      mail((d) => {
        (d.types as Record<string, unknown>).EIP712Domain = [{ name: 'name', type: 'uint256' }];
      }),
      'typedData.types.EIP712Domain[0].type',
    );
    // ~40 KB of array suffixes, under the body limit: overflowed the stack (a 500) before types were bounded
    const started = Date.now();
    await typed(
      mail((d) => {
        d.types.Mail[2] = { name: 'contents', type: `uint256${'[]'.repeat(20000)}` };
      }),
      'typedData.types.Mail[2].type',
    );
    assert.ok(Date.now() - started < 2000, `refused in ${Date.now() - started} ms`);
    // short enough for the route schema, too many dimensions for the kernel
    await typed(
      mail((d) => {
        d.types.Mail[2] = { name: 'contents', type: `uint256${'[]'.repeat(9)}` };
      }),
      'typedData.types.Mail[2].type',
    );
    // a huge unknown member is named, cut to 64 characters
    const res = await signer.app.inject(post(url, { walletName: 'alice@acme.com', keyIndex: 0, typedData: { ...MAIL, [`x${'y'.repeat(20000)}`]: 1 } }));
    assert.equal(res.statusCode, 400, res.body);
    const error = (res.json() as { error: { message: string; details: { field: string } } }).error;
    assert.equal(error.details.field, `typedData.x${'y'.repeat(63)}`);
    assert.ok(error.message.length < 200, error.message);
    // a member named __proto__ missing from the message: was read from Object.prototype (an empty struct) and signed
    await typed(
      { domain: MAIL.domain, types: { Mail: [{ name: '__proto__', type: 'Empty' }], Empty: [] }, primaryType: 'Mail', message: {} },
      'typedData.message.__proto__',
    );
    await typed({ ...MAIL, primaryType: undefined }, 'typedData.primaryType');
    await typed({ ...MAIL, extra: 1 }, 'typedData.extra');
    await typed([], 'typedData');
  });

  test('POST /v1/sign/authorization', async () => {
    const url = '/v1/sign/authorization';
    const auth = (authorization: unknown, field: string) => refuses(url, { authorization }, field);
    await auth({ chainId: -1, address: TO, nonce: 0 }, 'authorization.chainId');
    await auth({ chainId: '1', address: TO, nonce: 0 }, 'authorization.chainId');
    await auth({ chainId: 1, address: '0x35', nonce: 0 }, 'authorization.address');
    await auth({ chainId: 1, address: '0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB49', nonce: 0 }, 'authorization.address');
    await auth({ chainId: 1, address: TO }, 'authorization.nonce');
    await auth({ chainId: 1, address: TO, nonce: 2 ** 64 }, 'authorization.nonce');
    await auth({ chainId: 1, address: TO, nonce: 0, r: R }, 'authorization.r');
    await auth(null, 'authorization');
  });
});

// ── fuzz ────────────────────────────────────────────────────────────────────────────────────

const RUNS = 300;
const FUZZ_TIMEOUT_MS = 180_000;

/** Never a 5xx; an error body always names a known code with that code's status, and a 400 names its field. */
function assertWellFormed(res: LightMyRequestResponse, label: string): void {
  if (res.statusCode < 400) return;
  assert.ok(res.statusCode < 500, `${label}: ${res.statusCode} ${res.body}`);
  const body = res.json() as { error?: { code?: unknown; message?: unknown; details?: { field?: unknown } } };
  const code = body.error?.code;
  assert.ok(typeof code === 'string' && Object.hasOwn(ERROR_CODES, code), `${label}: unknown error code in ${res.body}`);
  assert.equal(ERROR_CODES[code as ErrorCode].status, res.statusCode, `${label}: status of ${code}`);
  assert.equal(typeof body.error?.message, 'string');
  if (code === 'invalid_input') assert.equal(typeof body.error?.details?.field, 'string', `${label}: ${res.body}`);
}

const anyValue = fc.oneof(fc.jsonValue({ maxDepth: 3 }), fc.string(), fc.string({ unit: 'binary' }));
/** A valid value mostly; sometimes an edge value or anything at all. */
function field<T>(valid: fc.Arbitrary<T>): fc.Arbitrary<unknown> {
  return fc.oneof(
    { arbitrary: valid, weight: 8 },
    { arbitrary: fc.constantFrom(null, -1, 0, 1.5, 2 ** 53, 2 ** 64, '', '0x', [], {}, '0', 'true'), weight: 1 },
    { arbitrary: anyValue, weight: 1 },
  );
}
const hexBytes = (min: number, max: number) => fc.uint8Array({ minLength: min, maxLength: max }).map((b) => `0x${Buffer.from(b).toString('hex')}`);
const address = fc.oneof(
  hexBytes(20, 20),
  hexBytes(20, 20).map((a) => a.toUpperCase().replace('0X', '0x')),
  fc.constantFrom(TO, USDC, '0xa0B86991c6218b36c1d19D4a2e9Eb0cE3606eB48', '0x0000000000000000000000000000000000000000'),
);
const bigQuantity = fc.oneof(
  fc.bigInt({ min: 0n, max: 2n ** 64n }),
  fc.bigInt({ min: 0n, max: 2n ** 257n }),
  fc.constantFrom(0n, 2n ** 64n - 1n, 2n ** 64n, 2n ** 256n - 1n, 2n ** 256n),
);
const quantity = fc.tuple(bigQuantity, fc.boolean()).map(([n, hex]) => (hex ? `0x${n.toString(16)}` : n.toString()));
const safeInt = fc.oneof(fc.nat({ max: 100 }), fc.constantFrom(Number.MAX_SAFE_INTEGER), fc.nat());
const accessList = fc.array(
  fc.record({ address: field(address), storageKeys: field(fc.array(field(hexBytes(32, 32)), { maxLength: 3 })) }, { requiredKeys: [] }),
  {
    maxLength: 3,
  },
);
const authorization = fc.record(
  {
    chainId: field(safeInt),
    address: field(address),
    nonce: field(safeInt),
    r: field(hexBytes(1, 32)),
    s: field(fc.oneof(hexBytes(1, 16), hexBytes(32, 32))),
    yParity: field(fc.constantFrom(0, 1)),
  },
  { requiredKeys: [] },
);
/** Wallets without a factor (they sign without a code, so that the fuzz reaches the signer); fresh names mostly. */
const walletName = fc.oneof(fc.constantFrom('alice@acme.com', 'ünïcødé wallet'), fc.stringMatching(/^[a-z0-9@._-]{1,20}$/));

const OPERATIONS: Record<string, [string, fc.Arbitrary<unknown>]> = {
  transaction: [
    '/v1/sign/transaction',
    fc.oneof(
      { arbitrary: fc.constantFrom(...Object.values(TX)), weight: 1 },
      {
        arbitrary: fc.record(
          {
            type: field(fc.constantFrom('legacy', 'eip2930', 'eip1559', 'eip7702')),
            chainId: field(fc.oneof(fc.constantFrom(1, 8453), safeInt)),
            nonce: field(safeInt),
            to: field(fc.option(address, { nil: null })),
            value: field(quantity),
            data: field(hexBytes(0, 100)),
            gas: field(quantity),
            gasPrice: field(quantity),
            maxFeePerGas: field(quantity),
            maxPriorityFeePerGas: field(quantity),
            accessList: field(accessList),
            authorizationList: field(fc.array(authorization, { maxLength: 2 })),
          },
          { requiredKeys: ['type', 'chainId', 'nonce', 'gas'] },
        ),
        weight: 6,
      },
      { arbitrary: anyValue, weight: 1 },
    ),
  ],
  message: [
    '/v1/sign/message',
    fc.oneof(
      fc.record({ text: field(fc.oneof(fc.string(), fc.string({ unit: 'binary' }))) }),
      fc.record({ raw: field(hexBytes(0, 64)) }),
      fc.record({ text: anyValue, raw: anyValue }, { requiredKeys: [] }),
      anyValue,
    ),
  ],
  typedData: [
    '/v1/sign/typed-data',
    fc.oneof(
      { arbitrary: fc.constant(MAIL), weight: 1 },
      {
        arbitrary: fc
          .record({
            contentsType: field(fc.constantFrom('string', 'bytes', 'uint256', 'int8', 'bool', 'address', 'bytes32', 'Person', 'Person[]', 'uint8[2]', 'Mail')),
            contents: anyValue,
            chainId: field(fc.oneof(safeInt, fc.constantFrom('1', '0x1', '-1'))),
            wallet: field(address),
            primaryType: field(fc.constantFrom('Mail', 'Person', 'EIP712Domain', 'Nope')),
            extraDomain: fc.option(fc.dictionary(fc.constantFrom('name', 'version', 'salt', 'verifyingContract', 'x'), anyValue, { maxKeys: 2 }), {
              nil: undefined,
            }),
          })
          .map((f) => ({
            domain: { ...MAIL.domain, chainId: f.chainId, ...(f.extraDomain ?? {}) },
            types: { ...MAIL.types, Mail: [MAIL.types.Mail[0], MAIL.types.Mail[1], { name: 'contents', type: f.contentsType }] },
            primaryType: f.primaryType,
            message: { ...MAIL.message, from: { name: 'Cow', wallet: f.wallet }, contents: f.contents },
          })),
        weight: 6,
      },
      { arbitrary: anyValue, weight: 1 },
    ),
  ],
  authorization: [
    '/v1/sign/authorization',
    fc.oneof(
      { arbitrary: fc.record({ chainId: field(safeInt), address: field(address), nonce: field(safeInt) }, { requiredKeys: [] }), weight: 6 },
      { arbitrary: anyValue, weight: 1 },
    ),
  ],
};

describe('fuzz: arbitrary operations never give a 5xx', { timeout: FUZZ_TIMEOUT_MS * 4 }, () => {
  for (const [key, [url, operation]] of Object.entries(OPERATIONS)) {
    test(`POST ${url}`, { timeout: FUZZ_TIMEOUT_MS }, async () => {
      const statuses = new Set<number>();
      await fc.assert(
        fc.asyncProperty(walletName, field(fc.nat({ max: 3 })), operation, async (name, keyIndex, op) => {
          const res = await signer.app.inject(post(url, { walletName: name, keyIndex, [key]: op }));
          statuses.add(res.statusCode);
          assertWellFormed(res, `${url} ${JSON.stringify(op)?.slice(0, 300)}`);
        }),
        { numRuns: RUNS },
      );
      // the fuzz got past the schemas to the codec and the signer
      assert.ok(statuses.has(200) && statuses.has(400), [...statuses].join(', '));
    });
  }
});
